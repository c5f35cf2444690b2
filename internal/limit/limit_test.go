package limit

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestRate(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := NewRate(10)
	// A burst of twice the rate goes through at once.
	for i := range 20 {
		if wait, flood := r.Take(start); wait != 0 || flood {
			t.Fatalf("command %d of the burst: wait %v flood %v", i, wait, flood)
		}
	}
	// The next waits a tenth of a second.
	if wait, _ := r.Take(start); wait != 100*time.Millisecond {
		t.Errorf("past the burst: wait %v, want 100ms", wait)
	}
	// After a pause the bucket refills.
	later := start.Add(5 * time.Second)
	if wait, flood := r.Take(later); wait != 0 || flood {
		t.Errorf("after a pause: wait %v flood %v", wait, flood)
	}
}

// TestFlood: a client that sends without end, sleeping only as long as
// it is told, is a flood once it has been over its rate for Flood.
func TestFlood(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := NewRate(100)
	var flooded time.Duration
	for i := 0; i < 100*int(2*Flood/time.Second); i++ {
		wait, flood := r.Take(now)
		if flood {
			flooded = now.Sub(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			break
		}
		// The server sleeps, a little longer than asked as timers do;
		// the next command is already there.
		now = now.Add(wait + 3*time.Millisecond)
	}
	if flooded == 0 {
		t.Fatal("an endless pipeline was never called a flood")
	}
	if flooded < Flood {
		t.Errorf("flood declared after %v, before %v of saturation", flooded, Flood)
	}
}

func TestRateUnlimited(t *testing.T) {
	for _, r := range []*Rate{nil, NewRate(0)} {
		for range 1000 {
			if wait, flood := r.Take(time.Now()); wait != 0 || flood {
				t.Fatalf("unlimited rate: wait %v flood %v", wait, flood)
			}
		}
	}
}

// TestNoFloodWithPauses: a client that pauses now and then is never a
// flood, however long it goes on.
func TestNoFloodWithPauses(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := NewRate(100)
	for range 100 { // 100 rounds of a 300-command burst and a second's pause
		for range 300 {
			wait, flood := r.Take(now)
			if flood {
				t.Fatal("bursts with pauses called a flood")
			}
			now = now.Add(wait)
		}
		now = now.Add(time.Second)
	}
}

// TestNoFloodWhenUseful: a pipeline of useful commands, longer than the
// rate lets through in Flood, is slowed down but never a flood; once the
// commands stop being useful, it is one after Flood.
func TestNoFloodWhenUseful(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start
	r := NewRate(100)
	for now.Sub(start) < 10*Flood {
		wait, flood := r.Take(now)
		if flood {
			t.Fatalf("flood declared after %v of useful commands", now.Sub(start))
		}
		r.Useful()
		now = now.Add(wait + time.Millisecond)
	}
	useless := now
	for {
		wait, flood := r.Take(now)
		if flood {
			if d := now.Sub(useless); d < Flood {
				t.Errorf("flood declared %v after the useful commands stopped", d)
			}
			return
		}
		now = now.Add(wait + time.Millisecond)
		if now.Sub(useless) > 2*Flood {
			t.Fatal("useless commands over the rate for twice Flood are not a flood")
		}
	}
}

// TestWait: within the burst Wait neither flushes nor waits; past it, it
// flushes and then waits, giving up when the context ends; a flood is
// answered at once, with nothing flushed.
func TestWait(t *testing.T) {
	r := NewRate(1)
	flushes := 0
	flush := func() { flushes++ }
	for i := range 2 {
		if err := r.Wait(t.Context(), flush); err != nil || flushes != 0 {
			t.Fatalf("command %d of the burst: %v, %d flushes", i, err, flushes)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := r.Wait(ctx, flush); !errors.Is(err, context.Canceled) || flushes != 1 {
		t.Errorf("past the burst, cancelled: %v, %d flushes; want context.Canceled after one flush", err, flushes)
	}
	r.emptySince = time.Now().Add(-2 * Flood) // over its rate for twice Flood
	if err := r.Wait(t.Context(), flush); !errors.Is(err, ErrFlood) || flushes != 1 {
		t.Errorf("a flood: %v, %d flushes; want ErrFlood and no flush", err, flushes)
	}
	var none *Rate
	if err := none.Wait(ctx, flush); err != nil {
		t.Errorf("no limit: %v", err)
	}
}
