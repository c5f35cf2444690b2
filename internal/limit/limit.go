// Package limit holds the per-connection command rate limit that the IMAP
// and POP3 servers share: a token bucket that spaces out a client sending
// faster than limits.commands_per_second, and tells a client that never
// stops doing so with commands that achieve nothing (a pipeline of NOOPs
// or garbage without end) from one with a burst, or with a long pipeline
// of real work (mbsync's first sync of a large folder, one UID FETCH per
// message), which is only slowed down.
package limit

import (
	"context"
	"errors"
	"time"
)

// Flood is how long a client may keep the bucket empty with commands that
// achieve nothing before it is disconnected: longer than an honest burst
// at the default rate.
const Flood = 10 * time.Second

// Rate is a token bucket holding two seconds' worth of commands. The zero
// value and a Rate with a rate of 0 allow everything. A Rate serves one
// connection; it is not safe for concurrent use.
type Rate struct {
	perSecond float64
	tokens    float64
	last      time.Time // when tokens was last brought up to date
	// emptySince is when the client last began to wait for a token, since
	// when it has not been well within its rate nor sent a command that
	// did some work (Useful); zero when it is.
	emptySince time.Time
	flood      time.Duration // Flood, unless SetFlood changed it
}

// NewRate allows perSecond commands per second, with bursts of twice as
// many.
func NewRate(perSecond float64) *Rate {
	return &Rate{perSecond: perSecond, tokens: 2 * perSecond, flood: Flood}
}

// SetFlood makes d, when positive, how long the client may keep the
// bucket empty before it is a flood, instead of Flood: tests shorten it.
func (r *Rate) SetFlood(d time.Duration) {
	if d > 0 {
		r.flood = d
	}
}

// Take accounts for one command arriving at now. It returns how long to
// wait before running it, and flood true when the client has been over
// its rate for longer than Flood (or SetFlood's) without a pause and
// without a useful command.
func (r *Rate) Take(now time.Time) (wait time.Duration, flood bool) {
	if r == nil || r.perSecond <= 0 {
		return 0, false
	}
	if !r.last.IsZero() {
		r.tokens = min(2*r.perSecond, r.tokens+now.Sub(r.last).Seconds()*r.perSecond)
	}
	r.last = now
	r.tokens--
	if r.tokens >= r.perSecond/2 {
		// Half a second of commands in hand: the client is within its
		// rate, whatever it did before.
		r.emptySince = time.Time{}
	}
	if r.tokens >= 0 {
		return 0, false
	}
	// Waiting. A client that sends again as soon as it may keeps the bucket
	// near empty, even when the server sleeps a little longer than asked.
	if r.emptySince.IsZero() {
		r.emptySince = now
	}
	wait = time.Duration(-r.tokens / r.perSecond * float64(time.Second))
	return wait, now.Sub(r.emptySince) > r.flood
}

// ErrFlood is Wait's answer to a client over its rate for longer than
// Flood: the session ends.
var ErrFlood = errors.New("client kept sending over its command rate")

// Wait accounts for a command arriving now and waits until it may run.
// Before a wait it calls flush, so that the answers so far reach the
// client meanwhile. It returns ErrFlood, without waiting, for a client
// Take calls a flood, and ctx's error when ctx ends during the wait.
func (r *Rate) Wait(ctx context.Context, flush func()) error {
	wait, flood := r.Take(time.Now())
	if flood {
		return ErrFlood
	}
	if wait <= 0 {
		return nil
	}
	flush()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Useful records that the last command did some work for the client (it
// succeeded, and was more than a NOOP): a pipeline of such commands is
// slowed down to the rate but never called a flood.
func (r *Rate) Useful() {
	if r != nil {
		r.emptySince = time.Time{}
	}
}
