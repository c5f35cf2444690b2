package smtpserver

import (
	"testing"
	"time"
)

// TestSendRates: an account sends its hour's worth at once, then one
// more for each share of the hour that passes; accounts count apart; 0
// allows everything.
func TestSendRates(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	r := &sendRates{perHour: 3}
	for i, step := range []struct {
		account int64
		at      time.Duration
		want    bool
	}{
		{1, 0, true}, {1, 0, true}, {1, 0, true}, {1, 0, false},
		{2, 0, true},
		{1, 19 * time.Minute, false}, {1, 20 * time.Minute, true}, {1, 21 * time.Minute, false},
		{1, 3 * time.Hour, true}, {1, 3 * time.Hour, true}, {1, 3 * time.Hour, true}, {1, 3 * time.Hour, false},
	} {
		if got := r.take(step.account, t0.Add(step.at)); got != step.want {
			t.Errorf("step %d: account %d at %v: %v, want %v", i+1, step.account, step.at, got, step.want)
		}
	}
	unlimited := &sendRates{}
	for range 1000 {
		if !unlimited.take(1, t0) {
			t.Fatal("no limit refused a message")
		}
	}
}

// TestSendRatesForget: past maxBuckets, the full buckets are dropped and
// the others kept.
func TestSendRatesForget(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	r := &sendRates{perHour: 2}
	for id := range int64(maxBuckets) {
		r.take(id, t0)
	}
	r.take(0, t0) // account 0 is now empty, the others half full
	// Half an hour on, the others are full again and account 0 is not.
	r.take(maxBuckets, t0.Add(30*time.Minute))
	if len(r.buckets) != 2 || r.buckets[0] == nil {
		t.Fatalf("%d buckets kept, account 0's: %v", len(r.buckets), r.buckets[0])
	}
}
