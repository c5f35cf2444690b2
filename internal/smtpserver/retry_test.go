package smtpserver

import (
	"crypto/sha256"
	"testing"
	"time"
)

// TestRetriesBounds: the memory of stored copies forgets them after
// retryKeep, the oldest first beyond retryMax, and at forget, and knows
// which recipients have copies waiting for a retry.
func TestRetriesBounds(t *testing.T) {
	key := func(i int) retryKey {
		return retryKey{sha256.Sum256([]byte{byte(i), byte(i >> 8)}), "dave@example.net", "alice@example.org"}
	}
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	var r retries
	r.remember([]retryKey{key(0), key(1)}, now)
	if !r.stored(key(0), now.Add(retryKeep-time.Second)) || r.stored(key(0), now.Add(retryKeep)) {
		t.Error("a copy is remembered for retryKeep, and no longer")
	}
	if r.stored(key(2), now) {
		t.Error("a copy never stored is remembered")
	}
	r.forget([]retryKey{key(1)})
	if r.stored(key(1), now) {
		t.Error("a forgotten copy is remembered")
	}
	for i := 2; i < retryMax+10; i++ {
		r.remember([]retryKey{key(i)}, now.Add(time.Duration(i)*time.Millisecond))
	}
	later := now.Add(time.Second)
	if len(r.kept) > retryMax || len(r.order) > 2*retryMax {
		t.Errorf("remembers %d copies in %d entries; want at most %d", len(r.kept), len(r.order), retryMax)
	}
	if r.stored(key(0), later) || !r.stored(key(retryMax+9), later) {
		t.Error("beyond retryMax the oldest copy goes first")
	}
	r.remember([]retryKey{key(1)}, now.Add(retryKeep+time.Hour))
	if len(r.kept) != 1 {
		t.Errorf("after retryKeep, %d copies remembered; want only the newest", len(r.kept))
	}
	// A recipient waits for the retries of the sender whose copies are
	// remembered, for retryKeep, and not after forget.
	at := now.Add(retryKeep + 2*time.Hour)
	other := retryKey{key(5).sum, "dave@example.net", "bob@example.org"}
	r.remember([]retryKey{key(1), other}, at)
	for _, tc := range []struct {
		from, rcpt string
		when       time.Time
		want       bool
	}{
		{"dave@example.net", "alice@example.org", at, true},
		{"erin@example.net", "alice@example.org", at, false},
		{"dave@example.net", "carol@example.org", at, false},
		{"dave@example.net", "alice@example.org", at.Add(retryKeep), false},
	} {
		if got := r.waiting(tc.from, tc.rcpt, tc.when); got != tc.want {
			t.Errorf("waiting(%s, %s, %v) = %v, want %v", tc.from, tc.rcpt, tc.when.Sub(at), got, tc.want)
		}
	}
	r.forget([]retryKey{key(1), key(1)})
	if r.waiting("dave@example.net", "alice@example.org", at) || !r.waiting("dave@example.net", "bob@example.org", at) {
		t.Error("after alice's copy is forgotten, alice still waits, or bob does not")
	}
}
