package server

import (
	"net"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"
)

// TestReclaimerRule: a reclaim is due when the connections open fall to
// half their peak or less, by MinDrop or more, and the next burst is
// counted from what is left open then.
func TestReclaimerRule(t *testing.T) {
	// A step opens n connections (n > 0) or closes -n; due is whether a
	// reclaim is due after it. A due reclaim runs before the next step.
	type step struct {
		n   int
		due bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"burst closes", []step{{10, false}, {-4, false}, {-1, true}}},
		{"all of a small burst", []step{{6, false}, {-6, true}}},
		{"fewer than MinDrop", []step{{6, false}, {-3, false}}},
		{"not to half", []step{{20, false}, {-8, false}, {5, false}, {-5, false}}},
		{"churn at the peak", []step{{10, false}, {-1, false}, {1, false}, {-1, false}, {1, false}, {-3, false}}},
		{"the next burst counts from what is left", []step{{10, false}, {-5, true}, {-2, false}, {-3, true}}},
		{"a new peak after a reclaim", []step{{10, false}, {-6, true}, {16, false}, {-9, false}, {-1, true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var freed atomic.Int32
			r := NewReclaimer(ReclaimConfig{MinDrop: 4, Delay: time.Hour, free: func() { freed.Add(1) }})
			want := int32(0)
			for i, s := range tt.steps {
				for range s.n {
					r.opened()
				}
				for range -s.n {
					r.closed()
				}
				r.mu.Lock()
				timer := r.timer
				r.mu.Unlock()
				if due := timer != nil; due != s.due {
					t.Fatalf("step %d (%+d): reclaim due %v, want %v", i, s.n, due, s.due)
				}
				if timer != nil && timer.Stop() {
					// The delay passes.
					r.reclaim()
					want++
				}
			}
			if got := freed.Load(); got != want {
				t.Errorf("memory freed %d times, want %d", got, want)
			}
		})
	}
}

// TestListenerReclaim: the connections of listeners sharing a Reclaimer
// count together, and once most have closed, memory is returned.
func TestListenerReclaim(t *testing.T) {
	freed := make(chan struct{}, 1)
	free := func() {
		select {
		case freed <- struct{}{}:
		default: // one is all the test waits for
		}
	}
	r := NewReclaimer(ReclaimConfig{MinDrop: 8, Delay: time.Millisecond, free: free})
	var conns []net.Conn
	for range 2 {
		inner, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l := NewListener(inner, ListenerConfig{Reclaim: r})
		defer l.Close()
		// Five each: only together are they MinDrop or more.
		for range 5 {
			c := dial(t, l.Addr(), "")
			defer c.Close()
			sc, err := l.Accept()
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, sc)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	select {
	case <-freed:
	case <-time.After(30 * time.Second):
		t.Fatal("no reclaim after the connections closed")
	}
	r.mu.Lock()
	open := r.open
	r.mu.Unlock()
	if open != 0 {
		t.Errorf("open %d after every connection closed, want 0", open)
	}
}

// TestReclaimReturnsMemory: what a reclaim frees goes back to the system
// at once, not when the runtime next collects.
func TestReclaimReturnsMemory(t *testing.T) {
	const size = 64 << 20
	r := NewReclaimer(ReclaimConfig{})
	keep := make([][]byte, 0, size>>20)
	for range size >> 20 {
		b := make([]byte, 1<<20)
		b[0] = 1 // touched: resident
		keep = append(keep, b)
	}
	runtime.KeepAlive(keep) // and no longer
	r.reclaim()
	// The heap the process keeps: its objects, dead or alive, and its
	// free pages not returned.
	s := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
	}
	metrics.Read(s)
	var kept uint64
	for _, v := range s {
		kept += v.Value.Uint64()
	}
	if kept > size/2 {
		t.Errorf("the heap keeps %d MiB from the system after a reclaim; want what was freed returned", kept>>20)
	}
}
