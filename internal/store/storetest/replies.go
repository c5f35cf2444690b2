package storetest

import (
	"slices"
	"strings"
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
	recorded(t, e, alice, "carol", now.Add(time.Minute), day, true) // what ReplyDue recorded
	check(alice, "dave", now.Add(time.Minute), day, true)           // another sender or handle
	check(bob, "carol", now.Add(time.Minute), day, true)            // another account
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

	testRecordedReplies(t, e)
}

// recorded checks what ReplyRecorded reports.
func recorded(t *testing.T, e *env, sess store.Session, key string, at time.Time, period time.Duration, want bool) {
	t.Helper()
	got, err := replyTracker(t, sess).ReplyRecorded(e.ctx, key, at, period)
	if err != nil {
		t.Fatalf("ReplyRecorded(%q, %v): %v", key, at, err)
	}
	if got != want {
		t.Errorf("ReplyRecorded(%q, %v, %v) = %v, want %v", key, at, period, got, want)
	}
}

// testRecordedReplies: a record made after the sending (RecordReply, as
// redirect makes it) is seen by ReplyRecorded within its period only,
// for the account only, through another Store too; looking records
// nothing; a later record of the key replaces the earlier; Replies lists
// what is kept, and those past their period go as later records are
// made.
func testRecordedReplies(t *testing.T, e *env) {
	acct, erin := e.account("erin@example.org")
	_, frank := e.account("frank@example.org")
	now := time.Now().Truncate(time.Millisecond)
	period := 12 * time.Hour
	record := func(key string, at time.Time, period time.Duration) {
		t.Helper()
		if err := replyTracker(t, erin).RecordReply(e.ctx, key, at, period); err != nil {
			t.Fatalf("RecordReply(%q, %v): %v", key, at, err)
		}
	}
	recorded(t, e, erin, "fwd", now, period, false)
	recorded(t, e, erin, "fwd", now, period, false) // looking recorded nothing
	record("fwd", now, period)
	recorded(t, e, erin, "fwd", now.Add(time.Minute), period, true)
	recorded(t, e, e.session(e.another(), acct.ID), "fwd", now.Add(time.Minute), period, true)
	recorded(t, e, frank, "fwd", now.Add(time.Minute), period, false) // another account
	recorded(t, e, erin, "other", now.Add(time.Minute), period, false)
	recorded(t, e, erin, "fwd", now.Add(period-time.Second), period, true)
	recorded(t, e, erin, "fwd", now.Add(period), period, false) // the period is over
	recorded(t, e, erin, "fwd", now.Add(time.Hour), time.Hour, false)

	// RecordReply after ReplyDue, or again, makes the later record.
	if due, err := replyTracker(t, erin).ReplyDue(e.ctx, "vacation", now, 7*24*time.Hour); err != nil || !due {
		t.Fatalf("ReplyDue: %v, %v", due, err)
	}
	record("vacation", now.Add(2*time.Hour), period)
	record("fwd", now.Add(13*time.Hour), period)
	recorded(t, e, erin, "fwd", now.Add(20*time.Hour), period, true)

	list := func() []store.Reply {
		t.Helper()
		got, err := replyTracker(t, erin).Replies(e.ctx)
		if err != nil {
			t.Fatalf("Replies: %v", err)
		}
		slices.SortFunc(got, func(a, b store.Reply) int { return strings.Compare(a.Key, b.Key) })
		return got
	}
	same := func(got, want []store.Reply) bool {
		return slices.EqualFunc(got, want, func(a, b store.Reply) bool {
			return a.Key == b.Key && a.Sent.Equal(b.Sent) && a.Expires.Equal(b.Expires)
		})
	}
	want := []store.Reply{
		{Key: "fwd", Sent: now.Add(13 * time.Hour), Expires: now.Add(25 * time.Hour)},
		{Key: "vacation", Sent: now.Add(2 * time.Hour), Expires: now.Add(14 * time.Hour)},
	}
	if got := list(); !same(got, want) {
		t.Errorf("Replies: %+v, want %+v", got, want)
	}
	if got, err := replyTracker(t, frank).Replies(e.ctx); err != nil || len(got) != 0 {
		t.Errorf("another account's Replies: %+v, %v", got, err)
	}
	// A day later, a record forgets those whose period is over.
	record("later", now.Add(26*time.Hour), period)
	want = []store.Reply{{Key: "later", Sent: now.Add(26 * time.Hour), Expires: now.Add(38 * time.Hour)}}
	if got := list(); !same(got, want) {
		t.Errorf("Replies a day later: %+v, want %+v", got, want)
	}
}
