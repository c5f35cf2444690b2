package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

// saveDate reads one message's save date and internal date.
func (e *env) saveDate(ss store.Session, mailboxID int64, uid store.UID) (saved, internal time.Time) {
	e.t.Helper()
	ms := e.messages(ss, mailboxID, store.UIDSetOf(uid), store.FieldSaveDate|store.FieldDate)
	if len(ms) != 1 {
		e.t.Fatalf("message %d of mailbox %d: found %d", uid, mailboxID, len(ms))
	}
	return ms[0].SaveDate, ms[0].InternalDate
}

// within reports whether t lies in [from, to], at the microsecond the
// backends keep.
func within(t, from, to time.Time) bool {
	return !t.Before(from.Truncate(time.Microsecond)) && !t.After(to)
}

// clockPast waits, without sleeping, for the clock to pass t at the
// microsecond the backends keep, so that what is saved next is dated
// after it.
func clockPast(t time.Time) {
	for !time.Now().Truncate(time.Microsecond).After(t) {
	}
}

// testSaveDate: an append, a copy and a move each date the message they
// store with the moment of the write (RFC 8514 3), while the internal
// date stays what it was.
func testSaveDate(t *testing.T, e *env) {
	_, ss := e.account("alice@example.org")
	inbox := e.mailbox(ss, "INBOX")
	trash := e.mailbox(ss, "Trash")

	before := time.Now()
	uids := e.appendN(ss, inbox.ID, 1, 2)
	after := time.Now()
	saved, internal := e.saveDate(ss, inbox.ID, uids[0])
	if !within(saved, before, after) || saved.Location() != time.UTC {
		t.Errorf("save date of an append = %v, want in [%v, %v], UTC", saved, before, after)
	}
	if !internal.Equal(testDate(1)) {
		t.Errorf("internal date of an append = %v, want %v", internal, testDate(1))
	}

	clockPast(after)
	before = time.Now()
	cp, err := ss.Copy(e.ctx, inbox.ID, store.UIDSetOf(uids[0]), trash.ID)
	if err != nil {
		t.Fatal(err)
	}
	mv, err := ss.Move(e.ctx, inbox.ID, store.UIDSetOf(uids[1]), trash.ID)
	if err != nil {
		t.Fatal(err)
	}
	after = time.Now()
	if orig, _ := e.saveDate(ss, inbox.ID, uids[0]); !orig.Equal(saved) {
		t.Errorf("a copy changed its original's save date from %v to %v", saved, orig)
	}
	for _, c := range []struct {
		what string
		uid  store.UID
		date time.Time
	}{
		{"copy", cp.Dest[0], testDate(1)},
		{"move", mv.Dest[0], testDate(2)},
	} {
		saved, internal := e.saveDate(ss, trash.ID, c.uid)
		if !within(saved, before, after) {
			t.Errorf("save date of a %s = %v, want in [%v, %v]", c.what, saved, before, after)
		}
		if !internal.Equal(c.date) {
			t.Errorf("internal date after a %s = %v, want %v", c.what, internal, c.date)
		}
	}
}

// testExpireSaved: ExpireSaved removes the messages of one mailbox saved
// before a time, whatever their internal date, as expunges that Changes
// reports.
func testExpireSaved(t *testing.T, e *env) {
	_, ss := e.account("alice@example.org")
	inbox := e.mailbox(ss, "INBOX")
	trash := e.mailbox(ss, "Trash")
	_, other := e.account("bob@example.org")
	otherTrash := e.mailbox(other, "Trash")

	// Internal dates of 2024, all long past: only the save date counts.
	e.appendN(ss, inbox.ID, 1, 2)
	e.appendN(other, otherTrash.ID, 1, 1)
	old := e.appendN(ss, trash.ID, 3, 2)
	first, _ := e.saveDate(ss, trash.ID, old[0])
	last, _ := e.saveDate(ss, trash.ID, old[1])
	clockPast(last)
	young := e.appendN(ss, trash.ID, 5, 1)
	cut, _ := e.saveDate(ss, trash.ID, young[0])
	since := e.status(ss, trash.ID).HighestModSeq

	if gone, err := ss.ExpireSaved(e.ctx, trash.ID, first); err != nil || len(gone) != 0 {
		t.Errorf("ExpireSaved(the oldest save date) = %v, %v; want nothing", gone, err)
	}
	if got := e.status(ss, trash.ID).HighestModSeq; got != since {
		t.Errorf("ExpireSaved with nothing due moved HIGHESTMODSEQ from %d to %d", since, got)
	}
	gone, err := ss.ExpireSaved(e.ctx, trash.ID, cut)
	if err != nil || !slices.Equal(gone, old) {
		t.Errorf("ExpireSaved = %v, %v; want %v", gone, err, old)
	}
	if got := uidsOf(e.messages(ss, trash.ID, store.AllUIDs(), 0)); !slices.Equal(got, young) {
		t.Errorf("left in Trash: %v, want %v", got, young)
	}
	if got := len(e.messages(ss, inbox.ID, store.AllUIDs(), 0)); got != 2 {
		t.Errorf("INBOX has %d messages after Trash expired, want 2", got)
	}
	cs, err := ss.Changes(e.ctx, trash.ID, since)
	if err != nil || !slices.Equal(cs.Expunged, old) {
		t.Errorf("Changes after ExpireSaved: %+v, %v; want expunged %v", cs, err, old)
	}
	if q := e.quota(ss); q.Messages != 3 {
		t.Errorf("quota counts %d messages after ExpireSaved, want 3", q.Messages)
	}

	// Another account's mailbox is out of reach, whatever the date.
	far := time.Now().Add(24 * time.Hour)
	if gone, _ := ss.ExpireSaved(e.ctx, otherTrash.ID, far); len(gone) != 0 {
		t.Errorf("ExpireSaved of another account's mailbox removed %v", gone)
	}
	if got := len(e.messages(other, otherTrash.ID, store.AllUIDs(), 0)); got != 1 {
		t.Errorf("the other account's Trash has %d messages, want 1", got)
	}
}
