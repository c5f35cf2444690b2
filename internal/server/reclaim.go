package server

import (
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// Reclaimer gives the memory of a burst of connections back to the
// operating system once most of them have closed.
//
// Every connection holds a goroutine stack and its session's state, about
// 20 KiB for an IMAP connection in IDLE. When thousands close, the Go
// runtime has that memory free but keeps it: its scavenger returns free
// memory only down to a little over the heap goal set by the last garbage
// collection, and a server that has gone quiet allocates nothing and so
// collects nothing until the runtime forces a collection every two
// minutes. Until then the goal is the one the burst set, and the process
// stays as large as the burst made it: 10,000 IDLE connections took buzon
// from 87 to 292 MiB resident, and it was still 238 MiB a minute after
// they had all closed.
//
// So when the connections open fall to half their peak or less, by at
// least MinDrop, the Reclaimer waits Delay for the rest of the burst to
// close, then calls debug.FreeOSMemory once: a collection, which also
// frees the stacks of the goroutines that ended, and then the return of
// every free page at once. Of the alternatives, runtime.GC alone would
// leave the return to the background scavenger, which paces itself to
// about 1% of a CPU and keeps a tenth over the new goal; and GOMEMLIMIT is
// a ceiling, not a trigger: it returns memory only once the process
// reaches it, and set low enough to matter here it makes the collector
// run without pause under a load that needs the memory. (The runtime still
// honours GOGC and GOMEMLIMIT from the environment.) FreeOSMemory costs a
// collection of what is left live, a few milliseconds when the burst has
// gone, and the pages it returns are faulted in again by the next burst,
// small change beside what that burst's logins and handshakes cost; it
// runs in a goroutine of its own, at most once at a time, and at most
// log2(peak/MinDrop) times as a large burst drains.
//
// Share one Reclaimer among all of a server's listeners (see
// ListenerConfig.Reclaim), so that it counts every connection. A nil
// *Reclaimer does nothing.
type Reclaimer struct {
	cfg ReclaimConfig
	log *slog.Logger

	mu    sync.Mutex
	open  int         // guarded by mu; connections open now
	peak  int         // guarded by mu; the most open since the last reclaim
	timer *time.Timer // guarded by mu; set while a reclaim is due
}

// ReclaimConfig configures a Reclaimer. Zero values get the defaults
// stated.
type ReclaimConfig struct {
	// MinDrop is the fewest connections whose closing is worth a
	// collection: below it, what they held is within what the runtime
	// keeps spare anyway. Default: 1000 (about 20 MiB of IDLE sessions).
	MinDrop int
	// Delay is how long after the fall the memory is reclaimed, for the
	// rest of the burst to close meanwhile. Default: one second.
	Delay time.Duration
	// Logger receives one line per reclaim; nil discards.
	Logger *slog.Logger

	// free returns the memory; debug.FreeOSMemory when nil. Tests count
	// its calls instead.
	free func()
}

// NewReclaimer returns a Reclaimer for cfg, with defaults filled in.
func NewReclaimer(cfg ReclaimConfig) *Reclaimer {
	if cfg.MinDrop <= 0 {
		cfg.MinDrop = 1000
	}
	if cfg.Delay <= 0 {
		cfg.Delay = time.Second
	}
	if cfg.free == nil {
		cfg.free = debug.FreeOSMemory
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reclaimer{cfg: cfg, log: log}
}

// opened counts a connection accepted.
func (r *Reclaimer) opened() {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.open++
	r.peak = max(r.peak, r.open)
}

// closed counts a connection closed, and schedules a reclaim when the
// connections have fallen sharply.
func (r *Reclaimer) closed() {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.open--
	if r.timer == nil && r.peak-r.open >= r.cfg.MinDrop && r.open <= r.peak/2 {
		r.timer = time.AfterFunc(r.cfg.Delay, r.reclaim)
	}
}

// reclaim returns the free memory to the operating system, and starts
// counting the next burst from the connections open now.
func (r *Reclaimer) reclaim() {
	r.mu.Lock()
	closed := r.peak - r.open
	r.mu.Unlock()

	before := heapReleased()
	start := time.Now()
	r.cfg.free()
	r.log.Info("memory returned to the system after connections closed",
		"closed", closed, "released_mib", (int64(heapReleased())-int64(before))>>20, "took", time.Since(start))

	r.mu.Lock()
	defer r.mu.Unlock()
	r.peak, r.timer = r.open, nil
}

// heapReleased is the memory of the heap returned to the system, in
// bytes.
func heapReleased() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
