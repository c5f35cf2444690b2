package smtpserver

import (
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/delivery"
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
	if r.copies() > retryMax || len(r.order) > retryMax {
		t.Errorf("remembers %d copies in %d entries; want at most %d", r.copies(), len(r.order), retryMax)
	}
	if r.stored(key(0), later) || !r.stored(key(retryMax+9), later) {
		t.Error("beyond retryMax the oldest copy goes first")
	}
	r.remember([]retryKey{key(1)}, now.Add(retryKeep+time.Hour))
	if r.copies() != 1 || len(r.order) != 1 {
		t.Errorf("after retryKeep, %d copies remembered in %d entries; want only the newest", r.copies(), len(r.order))
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
	if len(r.kept) != 1 || len(r.kept[retryPair{"dave@example.net", "bob@example.org"}]) != 1 {
		t.Errorf("pairs kept: %v; want bob's one copy from dave", r.kept)
	}
}

// copies is how many copies r remembers.
func (r *retries) copies() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, sums := range r.kept {
		n += len(sums)
	}
	return n
}

// TestRetryMessageHashes: a message is hashed only when the memory has
// copies from its sender for one of its recipients, or is to remember
// some of its copies; its retry finds them, past trace fields that
// differ at each try.
func TestRetryMessageHashes(t *testing.T) {
	spool := func(trace, body string) *delivery.Spooled {
		t.Helper()
		msg, err := (&delivery.Spooler{}).Spool(strings.NewReader(trace + body))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { msg.Close() })
		return msg
	}
	const (
		dave  = "dave@example.net"
		alice = "alice@example.org\x00"
		bob   = "bob@example.org\x00"
	)
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	var r retries
	first := "Received: by mx; first try\r\n"
	m := r.message(dave, []string{alice, bob}, spool(first, testMessage), int64(len(first)), now)
	if m.stored(alice, now) || m.summed {
		t.Fatal("a message no copy is remembered for was hashed, or found stored")
	}
	// Stored for everyone at once: nothing to remember, and no hash.
	if err := m.settle(250, []string{alice, bob}, now); err != nil || m.summed || r.copies() != 0 {
		t.Fatalf("after a 250: err %v, hashed %v, %d copies remembered; want none", err, m.summed, r.copies())
	}
	// Stored for alice only: remembered, so hashed.
	if err := m.settle(451, []string{alice}, now); err != nil || !m.summed || r.copies() != 1 {
		t.Fatalf("after a 451: err %v, hashed %v, %d copies remembered; want alice's", err, m.summed, r.copies())
	}

	second := "Received: by mx; second try, with another id\r\n"
	for _, tt := range []struct {
		name       string
		from, body string
		rcpts      []string
		hashed     bool // whether stored hashes the message
		stored     bool // whether alice's copy is found
	}{
		{"the retry", dave, testMessage, []string{bob, alice}, true, true},
		{"another message from the sender", dave, testMessage + "P.S.\r\n", []string{alice}, true, false},
		{"the same text from another sender", "erin@example.net", testMessage, []string{alice}, false, false},
		{"the sender's message to bob alone", dave, testMessage, []string{bob}, false, false},
	} {
		m := r.message(tt.from, tt.rcpts, spool(second, tt.body), int64(len(second)), now.Add(time.Hour))
		if got := m.stored(alice, now.Add(time.Hour)); got != tt.stored || m.summed != tt.hashed {
			t.Errorf("%s: alice's copy stored %v, hashed %v; want %v, %v", tt.name, got, m.summed, tt.stored, tt.hashed)
		}
	}
	// The retry's 250 forgets the copy.
	m = r.message(dave, []string{alice, bob}, spool(second, testMessage), int64(len(second)), now)
	if err := m.settle(250, []string{alice, bob}, now); err != nil || r.copies() != 0 || len(r.kept) != 0 {
		t.Errorf("after the retry's 250: err %v, %d copies remembered in %d pairs; want none", err, r.copies(), len(r.kept))
	}
}
