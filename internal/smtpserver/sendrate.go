package smtpserver

import (
	"sync"
	"time"
)

// sendRates bound how many messages each account sends through
// submission: a token bucket per account, across its sessions, holding
// an hour's worth and refilled evenly, so that a stolen password sends
// at most that many an hour before the owner or the admin notices.
type sendRates struct {
	// perHour is the rate; 0 allows everything.
	perHour int

	mu sync.Mutex
	// buckets maps an account's ID to its bucket; guarded by mu. Full
	// buckets are dropped now and then: an account that sent nothing
	// for an hour needs none.
	buckets map[int64]*sendBucket
}

// sendBucket is one account's tokens as of last.
type sendBucket struct {
	tokens float64
	last   time.Time
}

// maxBuckets is how many buckets are kept before the full ones are
// dropped.
const maxBuckets = 10_000

// take spends one of the account's tokens at now, and reports false when
// it has none left.
func (r *sendRates) take(account int64, now time.Time) bool {
	if r.perHour <= 0 {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.buckets == nil {
		r.buckets = map[int64]*sendBucket{}
	}
	b := r.buckets[account]
	if b == nil {
		if len(r.buckets) >= maxBuckets {
			r.dropFullLocked(now)
		}
		b = &sendBucket{tokens: float64(r.perHour), last: now}
		r.buckets[account] = b
	}
	b.refill(r.perHour, now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// refill adds the tokens earned since last.
func (b *sendBucket) refill(perHour int, now time.Time) {
	if now.After(b.last) {
		b.tokens = min(float64(perHour), b.tokens+now.Sub(b.last).Hours()*float64(perHour))
		b.last = now
	}
}

// dropFullLocked forgets the buckets that are full at now.
func (r *sendRates) dropFullLocked(now time.Time) {
	for id, b := range r.buckets {
		b.refill(r.perHour, now)
		if b.tokens >= float64(r.perHour) {
			delete(r.buckets, id)
		}
	}
}
