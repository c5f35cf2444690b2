package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

// replyTracker returns the session's store.ReplyTracker, failing the test
// when the backend has none: delivery sends no automatic reply without
// one, so every backend must have it.
func replyTracker(t *testing.T, sess store.Session) store.ReplyTracker {
	t.Helper()
	rt, ok := sess.(store.ReplyTracker)
	if !ok {
		t.Fatalf("%T is not a store.ReplyTracker", sess)
	}
	return rt
}

// testReplies: a reply is due once per key and period, for the account
// only, seen through another Store, and due again once the period is
// over; a period of 0 makes every reply due (RFC 6131 :seconds 0).
func testReplies(t *testing.T, e *env) {
	acct, alice := e.account("alice@example.org")
	_, bob := e.account("bob@example.org")
	now := time.Now().Truncate(time.Millisecond)
	day := 24 * time.Hour
	check := func(sess store.Session, key string, at time.Time, period time.Duration, want bool) {
		t.Helper()
		due, err := replyTracker(t, sess).ReplyDue(e.ctx, key, at, period)
		if err != nil {
			t.Fatalf("ReplyDue(%q, %v): %v", key, at, err)
		}
		if due != want {
			t.Errorf("ReplyDue(%q, now%+v, %v) = %v, want %v", key, at.Sub(now), period, due, want)
		}
	}
	check(alice, "carol", now, day, true)
	check(alice, "carol", now.Add(time.Minute), day, false)
	check(alice, "dave", now.Add(time.Minute), day, true) // another sender or handle
	check(bob, "carol", now.Add(time.Minute), day, true)  // another account
	check(e.session(e.another(), acct.ID), "dave", now.Add(2*time.Minute), day, false)
	check(alice, "carol", now.Add(day-time.Second), day, false)
	check(alice, "carol", now.Add(day), day, true) // the period is over
	check(alice, "carol", now.Add(day+time.Hour), day, false)
	// A shorter period the script now gives counts from the last reply.
	check(alice, "carol", now.Add(day+2*time.Hour), time.Hour, true)

	for range 3 {
		check(alice, "always", now, 0, true)
	}

	// Deliveries at once, through several Stores: one reply.
	var sessions []store.Session
	for range 8 {
		sessions = append(sessions, e.session(e.another(), acct.ID))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	dues := 0
	for _, sess := range sessions {
		wg.Go(func() {
			due, err := replyTracker(t, sess).ReplyDue(e.ctx, "race", now, day)
			if err != nil {
				t.Error(err)
				return
			}
			if due {
				mu.Lock()
				dues++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if dues != 1 {
		t.Errorf("8 deliveries at once: %d replies due, want 1", dues)
	}
}
