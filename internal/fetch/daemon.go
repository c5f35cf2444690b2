package fetch

import (
	"context"
	"sync"
	"time"
)

// Daemon fetches every account until ctx ends: each on its own interval,
// IMAP accounts at once when IDLE reports new mail, each backing off on
// its own after failures (backoff doubling up to max_backoff), so one
// account's trouble never holds up the others. A message being stored
// when ctx ends is finished; Daemon returns when every account has
// stopped.
func (f *Fetcher) Daemon(ctx context.Context) error {
	var wg sync.WaitGroup
	for i := range f.cfg.Accounts {
		a := &f.cfg.Accounts[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.loop(ctx, a)
		}()
	}
	wg.Wait()
	return nil
}

// loop runs one account until ctx ends.
func (f *Fetcher) loop(ctx context.Context, a *Account) {
	log := f.log.With("account", a.Name)
	var w *worker
	defer func() {
		if w != nil {
			w.close()
		}
	}()
	var backoff time.Duration
	for ctx.Err() == nil {
		var err error
		if w == nil {
			w, err = f.newWorker(ctx, a)
			if err != nil {
				f.logSummary(Summary{Account: a.Name, Err: err})
			}
		}
		if w != nil {
			err = w.run(ctx).Err
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			backoff = nextBackoff(backoff, f.cfg.Backoff.D(), f.cfg.MaxBackoff.D())
			log.Info("next attempt", "in", backoff)
			sleep(ctx, backoff)
			continue
		}
		backoff = 0
		if !w.idle(ctx, a.Interval.D()) {
			if w.imap != nil {
				// No IDLE: no point keeping the connection between polls.
				w.imap.logout()
				w.imap = nil
			}
			sleep(ctx, a.Interval.D())
		}
	}
}

// nextBackoff doubles the wait after each failure, from first up to
// limit.
func nextBackoff(cur, first, limit time.Duration) time.Duration {
	if cur <= 0 {
		return first
	}
	return min(cur*2, limit)
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
