package bench

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// bench is one benchmark under way.
type bench struct {
	cfg   Config
	d     *dialer
	pool  []poolMessage // what deliver, APPEND and idle-fanout send
	watch *procWatcher  // the server's processes; nil when not given

	// imapAddrs, pop3Addrs and lmtpAddrs are the server's addresses, one
	// per node; see nodeAddr.
	imapAddrs, pop3Addrs, lmtpAddrs []string

	// next hands out users and messages to clients in turn.
	next atomic.Uint64

	mu sync.Mutex
	// synced marks the users an imap-sync session has synced, so the
	// next one is a resync; guarded by mu.
	synced map[int]bool
}

// hostPorts makes an address of each port on host.
func hostPorts(host string, ports []int) []string {
	addrs := make([]string, len(ports))
	for i, p := range ports {
		addrs[i] = net.JoinHostPort(host, strconv.Itoa(p))
	}
	return addrs
}

// nodeAddr is the address client i uses: the nodes in turn, so that the
// clients of a server with several nodes are spread evenly over them.
func nodeAddr(addrs []string, i int) string {
	return addrs[i%len(addrs)]
}

// workFunc does one run of a profile; a warm-up run records nothing.
type workFunc func(ctx context.Context, warmup bool) (RunResult, error)

// sender is the envelope sender of every delivery.
const sender = "bench@example.net"

// Run runs the profile cfg describes: a warm-up, then cfg.Repeat measured
// runs (fill runs once). It returns the runs measured so far with any
// error.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg = cfg.Defaults()
	res := Result{Config: cfg, Started: time.Now()}
	if err := cfg.Validate(); err != nil {
		return res, err
	}
	b := &bench{
		cfg:       cfg,
		d:         &dialer{sources: cfg.Sources, timeout: cfg.Timeout},
		imapAddrs: hostPorts(cfg.Host, cfg.IMAPPorts),
		pop3Addrs: hostPorts(cfg.Host, cfg.POP3Ports),
		lmtpAddrs: hostPorts(cfg.Host, cfg.LMTPPorts),
		synced:    map[int]bool{},
	}
	if len(cfg.PIDs) > 0 || cfg.PIDCmd != "" {
		b.watch = &procWatcher{root: "/proc", pids: cfg.PIDs, cmd: cfg.PIDCmd}
	}
	files := 2*cfg.Concurrency + 64
	var work workFunc
	switch cfg.Profile {
	case ProfileFill:
		work = b.fill
		cfg.Repeat = 1
	case ProfileDeliver:
		work = b.deliver
	case ProfilePOP3Download:
		work = b.pop3Download
	case ProfileIMAPSync:
		work = b.imapSync
	case ProfileIMAPMixed:
		work = b.imapMixed
	case ProfileIDLEFanout:
		work = b.idleFanout
		files += cfg.Connections
	}
	res.Config = cfg
	if err := raiseNoFile(uint64(files)); err != nil {
		return res, err
	}
	switch cfg.Profile {
	case ProfileDeliver, ProfileIMAPMixed, ProfileIDLEFanout:
		var err error
		if b.pool, err = messagePool(&cfg); err != nil {
			return res, err
		}
	}
	log := cfg.Logger.With("profile", cfg.Profile)
	if cfg.Warmup > 0 {
		log.Info("warming up", "for", cfg.Warmup)
		if _, err := work(ctx, true); err != nil {
			return res, fmt.Errorf("%s warm-up: %w", cfg.Profile, err)
		}
	}
	for i := range cfg.Repeat {
		log.Info("run", "n", i+1, "of", cfg.Repeat)
		r, err := b.measure(ctx, work)
		if err != nil {
			return res, fmt.Errorf("%s run %d: %w", cfg.Profile, i+1, err)
		}
		res.Runs = append(res.Runs, r)
		res.Median = medianRun(res.Runs)
	}
	return res, nil
}

// measure does one measured run and, when the server's processes are
// known, adds the CPU time and memory they used.
func (b *bench) measure(ctx context.Context, work workFunc) (RunResult, error) {
	if b.watch == nil {
		return work(ctx, false)
	}
	before, err := b.watch.snapshot(ctx, false)
	if err != nil {
		return RunResult{}, fmt.Errorf("server processes: %w", err)
	}
	stop := make(chan struct{})
	peak := make(chan int64, 1)
	go func() { peak <- b.watch.peak(ctx, 500*time.Millisecond, stop) }()
	r, err := work(ctx, false)
	close(stop)
	top := <-peak
	if err != nil {
		return r, err
	}
	after, err := b.watch.snapshot(ctx, false)
	if err != nil {
		return r, fmt.Errorf("server processes: %w", err)
	}
	u := &Usage{
		Processes:    after.procs,
		CPUSeconds:   (after.cpu - before.cpu).Seconds(),
		RSSBeforeKiB: before.rssKiB,
		RSSAfterKiB:  after.rssKiB,
		RSSPeakKiB:   max(top, before.rssKiB, after.rssKiB),
	}
	r.Server = u
	if r.Ops > 0 {
		r.Metrics = append(r.Metrics, metric("server CPU per op", "ms", 1000*u.CPUSeconds/float64(r.Ops), false))
	}
	r.Metrics = append(r.Metrics, metric("server peak RSS", "MiB", float64(u.RSSPeakKiB)/1024, false))
	return r, nil
}

// client is one closed-loop client: it does one operation per step.
type client interface {
	step(ctx context.Context, rec *recorder) error
	close()
}

// loop runs cfg.Concurrency clients, each stepping until the run's time
// is up (an operation under way finishes) or cfg.Count operations were
// started. The first error ends the run.
func (b *bench) loop(ctx context.Context, warmup bool, newClient func(i int) client) (*recorder, time.Duration, error) {
	runFor, count := b.cfg.Duration, int64(b.cfg.Count)
	if warmup {
		runFor, count = b.cfg.Warmup, 0
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	recs := make([]*recorder, b.cfg.Concurrency)
	var started atomic.Int64
	start := time.Now()
	end := start.Add(runFor)
	var wg sync.WaitGroup
	for i := range recs {
		if !warmup {
			recs[i] = newRecorder()
		}
		wg.Go(func() {
			c := newClient(i)
			defer c.close()
			for ctx.Err() == nil && time.Now().Before(end) {
				if count > 0 && started.Add(1) > count {
					return
				}
				if err := c.step(ctx, recs[i]); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return nil, elapsed, err
	}
	all := newRecorder()
	for _, r := range recs {
		all.merge(r)
	}
	return all, elapsed, nil
}

// result makes a RunResult of a loop's records.
func result(rec *recorder, elapsed time.Duration, metrics ...Metric) RunResult {
	return RunResult{Seconds: elapsed.Seconds(), Ops: rec.ops, Metrics: metrics, Latencies: rec.latencies()}
}

func perSecond(n int64, d time.Duration) float64 { return float64(n) / d.Seconds() }

func mbPerSecond(n int64, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }

// timed runs f and records its latency as op.
func timed(rec *recorder, op string, f func() error) error {
	t := time.Now()
	if err := f(); err != nil {
		return err
	}
	rec.record(op, time.Since(t))
	return nil
}
