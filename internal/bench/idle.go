package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// rcptsPerTransaction is how many recipients idle-fanout names in one LMTP
// transaction: half the 100 RFC 5321 4.5.3.1.8 asks servers to accept.
const rcptsPerTransaction = 50

// idleFanout opens cfg.Connections IDLE connections spread over the users,
// delivers one message to each watched user, and measures how long each
// connection took to hear of it (RFC 2177), and the server's memory per
// idle connection.
func (b *bench) idleFanout(ctx context.Context, warmup bool) (RunResult, error) {
	n := b.cfg.Connections
	if warmup {
		n = min(n, 10)
	}
	watched := min(b.cfg.Users, n)
	measureMem := b.watch != nil && !warmup
	var before procSnapshot
	if measureMem {
		// Let the processes and memory of earlier connections (the
		// warm-up's, a previous run's) go before the baseline is taken.
		select {
		case <-time.After(b.cfg.Settle):
		case <-ctx.Done():
			return RunResult{}, ctx.Err()
		}
		var err error
		if before, err = b.watch.snapshot(ctx, true); err != nil {
			return RunResult{}, fmt.Errorf("server processes: %w", err)
		}
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	conns := make([]*imapConn, n)
	tags := make([]string, n)
	setup := make([]time.Duration, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.close()
			}
		}
	}()
	var idling atomic.Int64
	sem := make(chan struct{}, b.cfg.Concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	b.cfg.Logger.Info("opening IDLE connections", "connections", n, "users", watched)
open:
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break open
		}
		wg.Go(func() {
			defer func() { <-sem }()
			t := time.Now()
			user := b.cfg.user(i % watched)
			c, err := dialIMAP(ctx, b.d, nodeAddr(b.imapAddrs, i), b.cfg.Timeout, 1024)
			if err != nil {
				cancel(fmt.Errorf("connection %d: %w", i+1, err))
				return
			}
			conns[i] = c
			if err := c.login(user, b.cfg.Password); err != nil {
				cancel(fmt.Errorf("connection %d, %s: %w", i+1, user, err))
				return
			}
			if _, err := c.selectMailbox("INBOX"); err != nil {
				cancel(fmt.Errorf("connection %d, %s: %w", i+1, user, err))
				return
			}
			if tags[i], err = c.idle(); err != nil {
				cancel(fmt.Errorf("connection %d, %s: %w", i+1, user, err))
				return
			}
			setup[i] = time.Since(t)
			idling.Add(1)
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return RunResult{}, fmt.Errorf("%d of %d connections idling: %w", idling.Load(), n, err)
	}
	setupTime := time.Since(start)

	var idle procSnapshot
	if measureMem {
		select {
		case <-time.After(b.cfg.Settle):
		case <-ctx.Done():
			return RunResult{}, ctx.Err()
		}
		var err error
		if idle, err = b.watch.snapshot(ctx, true); err != nil {
			return RunResult{}, fmt.Errorf("server processes: %w", err)
		}
	}

	// Each connection waits for more messages than it has now.
	seen := make([]time.Time, n)
	var heard atomic.Int64
	for i, c := range conns {
		known := c.exists
		wg.Go(func() {
			if err := c.waitExists(known); err != nil {
				cancel(fmt.Errorf("connection %d: %w", i+1, err))
				return
			}
			seen[i] = time.Now()
			heard.Add(1)
		})
	}
	msg := slices.MinFunc(b.pool, func(x, y poolMessage) int { return len(x.raw) - len(y.raw) })
	sent := time.Now()
	if err := b.deliverEach(ctx, watched, msg); err != nil {
		cancel(err)
	}
	delivered := time.Since(sent)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return RunResult{}, fmt.Errorf("%d of %d connections saw the new message: %w", heard.Load(), n, err)
	}
	if warmup {
		return RunResult{}, nil
	}

	rec := newRecorder()
	for i := range n {
		rec.record("setup", setup[i])
	}
	var last time.Duration
	for i := range n {
		d := seen[i].Sub(sent)
		last = max(last, d)
		rec.record("notify", d)
	}
	rec.ops = int64(n)
	metrics := []Metric{
		metric("connections", "", float64(n), true),
		metric("connections set up/s", "1/s", perSecond(int64(n), setupTime), true),
		metric("delivery", "ms", ms(delivered), false),
		metric("all notified", "ms", ms(last), false),
	}
	if measureMem {
		metrics = append(metrics,
			metric("server RSS per idle connection", "KiB", float64(idle.rssKiB-before.rssKiB)/float64(n), false),
			metric("server PSS per idle connection", "KiB", float64(idle.pssKiB-before.pssKiB)/float64(n), false),
			metric("server processes per idle connection", "", float64(idle.procs-before.procs)/float64(n), false),
		)
	}
	return result(rec, setupTime+delivered+last, metrics...), nil
}

// deliverEach delivers msg to the first users users, rcptsPerTransaction
// recipients at a time over up to cfg.Concurrency connections, spread over
// the nodes, so that with several nodes IDLE sessions on one hear of
// deliveries another took.
func (b *bench) deliverEach(ctx context.Context, users int, msg poolMessage) error {
	var batches [][]string
	for u := 0; u < users; u += rcptsPerTransaction {
		var rcpts []string
		for k := u; k < min(users, u+rcptsPerTransaction); k++ {
			rcpts = append(rcpts, b.cfg.user(k))
		}
		batches = append(batches, rcpts)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan []string, len(batches))
	for _, batch := range batches {
		next <- batch
	}
	close(next)
	var wg sync.WaitGroup
	for w := range min(b.cfg.Concurrency, len(batches)) {
		wg.Go(func() {
			conn, err := dialLMTP(ctx, b.d, nodeAddr(b.lmtpAddrs, w), b.cfg.Timeout)
			if err != nil {
				cancel(fmt.Errorf("connect LMTP: %w", err))
				return
			}
			defer conn.quit()
			for rcpts := range next {
				if err := conn.deliver(sender, rcpts, msg.data); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}
