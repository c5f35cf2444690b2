package smtpserver

import (
	"crypto/sha256"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/buzon-mail/buzon/internal/delivery"
)

// SMTP answers one reply for the whole message, so a message stored for
// some recipients and not others gets 451 and comes again whole
// (messageReply). retries remembers the copies stored before such a 451,
// so that the retry stores only those still missing: a recipient whose
// copy keeps failing (a full mailbox the RCPT check could not see, with no
// SIZE= declared) would otherwise give the others a copy at every retry,
// for the days the sender's queue keeps trying. A copy is known by a hash
// of the message as spooled, below the trace fields added here (which
// differ at each try), its sender and its recipient. Most messages are
// stored for every recipient at their first try and never meet the
// memory: a message is hashed, from the spool, only when a recipient
// has a copy from its sender remembered (it may be that copy's retry),
// or when it is to be remembered (retryMessage).
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
	rcpt string            // the recipient's copyKey
}

// retryPair is a sender and a recipient's copyKey.
type retryPair struct{ from, rcpt string }

func (k retryKey) pair() retryPair { return retryPair{k.from, k.rcpt} }

type retryEntry struct {
	key    retryKey
	stored time.Time
}

// retries is the memory of copies stored before a 451 for the whole
// message. Its zero value is ready to use.
type retries struct {
	mu sync.Mutex
	// kept holds when each copy remembered was stored, by sender and
	// recipient and then by message sum: a pair with no copy has no
	// entry, so that the many pairs without one are found at once.
	kept map[retryPair]map[[sha256.Size]byte]time.Time // guarded by mu
	// order lists the copies as they were remembered, oldest first, at
	// most retryMax: the bound on kept. An entry whose copy was forgotten
	// or remembered again since is stale; it keeps its place until it is
	// the oldest.
	order []retryEntry // guarded by mu
}

// storedLocked returns when key's copy was stored, if it is remembered.
// The caller holds r.mu.
func (r *retries) storedLocked(k retryKey) (time.Time, bool) {
	t, ok := r.kept[k.pair()][k.sum]
	return t, ok
}

// stored reports whether key's copy was stored at an earlier try.
func (r *retries) stored(key retryKey, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.storedLocked(key)
	return ok && now.Sub(t) < retryKeep
}

// remember records copies stored before a 451 for the whole message.
func (r *retries) remember(keys []retryKey, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.kept == nil {
		r.kept = map[retryPair]map[[sha256.Size]byte]time.Time{}
	}
	for _, k := range keys {
		sums := r.kept[k.pair()]
		if sums == nil {
			sums = map[[sha256.Size]byte]time.Time{}
			r.kept[k.pair()] = sums
		}
		sums[k.sum] = now
		r.order = append(r.order, retryEntry{k, now})
	}
	// Drop the oldest entries, forgetting their copies if they are not
	// stale, while there are more than retryMax, and the stale and
	// expired ones at their head.
	drop := 0
	for ; drop < len(r.order); drop++ {
		e := r.order[drop]
		t, ok := r.storedLocked(e.key)
		live := ok && t.Equal(e.stored)
		if len(r.order)-drop <= retryMax && live && now.Sub(e.stored) < retryKeep {
			break
		}
		if live {
			r.dropLocked(e.key)
		}
	}
	r.order = append(r.order[:0], r.order[drop:]...)
}

// forget drops the copies of a message the sender has now heard 250 for:
// it will not send the message again.
func (r *retries) forget(keys []retryKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range keys {
		r.dropLocked(k)
	}
}

// dropLocked forgets a copy, and its pair with its last copy. The caller
// holds r.mu.
func (r *retries) dropLocked(k retryKey) {
	sums := r.kept[k.pair()]
	delete(sums, k.sum)
	if len(sums) == 0 {
		delete(r.kept, k.pair())
	}
}

// waiting reports whether a copy for rcpt of a message from this sender
// is remembered: that message's retry may be this transaction, and the
// copy it has is in the recipient's quota (see conn.checkQuota).
func (r *retries) waiting(from, rcpt string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.waitingLocked(retryPair{from, rcpt}, now)
}

// waitingLocked is waiting for the caller that holds r.mu. It looks at
// the pair's own copies only, which expire unseen until a remember.
func (r *retries) waitingLocked(p retryPair, now time.Time) bool {
	for _, t := range r.kept[p] {
		if now.Sub(t) < retryKeep {
			return true
		}
	}
	return false
}

// retryMessage is a message's dealings with the retry memory. Its sum is
// made from the spooled message only when the memory has something to
// say about it (a recipient has a copy from its sender remembered) or is
// to learn something from it (it was stored for some recipients only).
type retryMessage struct {
	r    *retries
	from string
	msg  *delivery.Spooled
	// trace is how many octets of msg the trace fields take: they differ
	// at each try (Received has the time and the transaction's id) and
	// are not hashed.
	trace int64
	// waiting says that a recipient has a copy from this sender
	// remembered: the message may be that copy's retry.
	waiting bool
	sum     [sha256.Size]byte
	sumErr  error
	summed  bool // sum or sumErr is set
}

// message starts the dealings of a spooled message from sender from, to
// recipients with the keys rcpts.
func (r *retries) message(from string, rcpts []string, msg *delivery.Spooled, trace int64, now time.Time) *retryMessage {
	m := &retryMessage{r: r, from: from, msg: msg, trace: trace}
	r.mu.Lock()
	defer r.mu.Unlock()
	m.waiting = slices.ContainsFunc(rcpts, func(rcpt string) bool {
		return r.waitingLocked(retryPair{from, rcpt}, now)
	})
	return m
}

// stored reports whether the copy for rcpt was stored at an earlier try.
// A message that cannot be hashed is taken for a new one: a duplicate
// rather than a loss.
func (m *retryMessage) stored(rcpt string, now time.Time) bool {
	if !m.waiting {
		return false
	}
	sum, err := m.hash()
	return err == nil && m.r.stored(retryKey{sum, m.from, rcpt}, now)
}

// settle records the outcome of the message given its SMTP reply code
// and the recipients whose copies are stored: after a 250 its copies are
// forgotten, as the sender will not send it again; after any other
// reply the stored ones are remembered for its retry. It fails only
// when the message cannot be hashed, and then remembers nothing.
func (m *retryMessage) settle(code int, stored []string, now time.Time) error {
	if len(stored) == 0 || code == 250 && !m.waiting {
		return nil // nothing to remember, nor remembered
	}
	sum, err := m.hash()
	if err != nil {
		return err
	}
	keys := make([]retryKey, len(stored))
	for i, rcpt := range stored {
		keys[i] = retryKey{sum, m.from, rcpt}
	}
	if code == 250 {
		m.r.forget(keys)
	} else {
		m.r.remember(keys, now)
	}
	return nil
}

// hash returns the SHA-256 of the sender, a NUL, and the message as
// spooled below the trace fields, reading it again from the spool the
// first time.
func (m *retryMessage) hash() ([sha256.Size]byte, error) {
	if m.summed {
		return m.sum, m.sumErr
	}
	m.summed = true
	h := sha256.New()
	h.Write([]byte(m.from + "\x00"))
	r := m.msg.Reader()
	if _, err := io.CopyN(io.Discard, r, m.trace); err != nil {
		m.sumErr = fmt.Errorf("hash the message: %w", err)
		return m.sum, m.sumErr
	}
	if _, err := io.Copy(h, r); err != nil {
		m.sumErr = fmt.Errorf("hash the message: %w", err)
		return m.sum, m.sumErr
	}
	h.Sum(m.sum[:0])
	return m.sum, nil
}
