package smtpserver

import (
	"crypto/sha256"
	"sync"
	"time"
)

// SMTP answers one reply for the whole message, so a message stored for
// some recipients and not others gets 451 and comes again whole
// (messageReply). retries remembers the copies stored before such a 451,
// so that the retry stores only those still missing: a recipient whose
// copy keeps failing (a full mailbox the RCPT check could not see, with no
// SIZE= declared) would otherwise give the others a copy at every retry,
// for the days the sender's queue keeps trying. A copy is known by a hash
// of the message as the client sent it (not the trace fields added here),
// its sender and its recipient.
//
// The memory is this process's, bounded by retryMax and retryKeep: after a
// restart, or when the retry reaches another node, a recipient may still
// get one more copy. Duplicates stay the price of never losing a copy.

const (
	// retryKeep is how long a stored copy is remembered: about as long
	// as senders keep retrying (RFC 5321 4.5.4.1: at least 4 to 5 days).
	retryKeep = 5 * 24 * time.Hour
	// retryMax bounds the copies remembered, the oldest forgotten first.
	retryMax = 10000
)

// retryKey names one stored copy.
type retryKey struct {
	sum  [sha256.Size]byte // of the sender and the message
	from string            // the sender
	rcpt string            // the recipient's key
}

type retryEntry struct {
	key    retryKey
	stored time.Time
}

// retries is the memory of copies stored before a 451 for the whole
// message. Its zero value is ready to use.
type retries struct {
	mu    sync.Mutex
	kept  map[retryKey]time.Time // guarded by mu
	order []retryEntry           // guarded by mu; oldest first, some forgotten
}

// stored reports whether key's copy was stored at an earlier try.
func (r *retries) stored(key retryKey, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.kept[key]
	return ok && now.Sub(t) < retryKeep
}

// remember records copies stored before a 451 for the whole message.
func (r *retries) remember(keys []retryKey, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.kept == nil {
		r.kept = map[retryKey]time.Time{}
	}
	for _, k := range keys {
		r.kept[k] = now
		r.order = append(r.order, retryEntry{k, now})
	}
	// Drop the oldest entries, and those forgotten or remembered again
	// since, until the memory is within bounds.
	drop := 0
	for drop < len(r.order) && (len(r.kept) > retryMax || len(r.order)-drop > 2*retryMax ||
		now.Sub(r.order[drop].stored) >= retryKeep || r.kept[r.order[drop].key] != r.order[drop].stored) {
		e := r.order[drop]
		if r.kept[e.key] == e.stored {
			delete(r.kept, e.key)
		}
		drop++
	}
	r.order = append(r.order[:0], r.order[drop:]...)
}

// forget drops the copies of a message the sender has now heard 250 for:
// it will not send the message again.
func (r *retries) forget(keys []retryKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range keys {
		delete(r.kept, k)
	}
}

// waiting reports whether a copy for rcpt of a message from this sender
// is remembered: that message's retry may be this transaction, and the
// copy it has is in the recipient's quota (see conn.checkQuota). Asked
// only of a full mailbox, it may walk the whole memory.
func (r *retries) waiting(from, rcpt string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, t := range r.kept {
		if k.from == from && k.rcpt == rcpt && now.Sub(t) < retryKeep {
			return true
		}
	}
	return false
}
