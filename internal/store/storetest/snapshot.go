package storetest

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

// testSnapshot checks Snapshot and HighestModSeq: a view built from a
// snapshot and kept up with Changes from its MODSEQ matches the mailbox,
// and HighestModSeq moves with every kind of change, wherever it is made.
func testSnapshot(t *testing.T, e *env) {
	acct, ss := e.account("alice@example.org")
	inbox := e.mailbox(ss, "INBOX")

	snap, err := ss.Snapshot(e.ctx, inbox.ID)
	if err != nil {
		t.Fatal(err)
	}
	st := e.status(ss, inbox.ID)
	if len(snap.UIDs) != 0 || snap.FirstUnseen != 0 || snap.UIDNext != 1 || snap.HighestModSeq != st.HighestModSeq {
		t.Errorf("Snapshot of an empty mailbox = %+v; Status %+v", snap, st)
	}

	e.appendN(ss, inbox.ID, 1, 5)
	e.setFlags(ss, inbox.ID, store.UIDSetOf(1, 2), store.FlagsAdd, `\Seen`)
	e.setFlags(ss, inbox.ID, store.UIDSetOf(3), store.FlagsAdd, "$Label")
	if _, err := ss.Expunge(e.ctx, inbox.ID, store.UIDSetOf(4), false); err != nil {
		t.Fatal(err)
	}
	snap, err = ss.Snapshot(e.ctx, inbox.ID)
	if err != nil {
		t.Fatal(err)
	}
	st = e.status(ss, inbox.ID)
	if !slices.Equal(snap.UIDs, []store.UID{1, 2, 3, 5}) || snap.FirstUnseen != 3 || snap.UIDNext != 6 ||
		snap.HighestModSeq != st.HighestModSeq || !slices.Equal(snap.Keywords, []string{"$Label"}) {
		t.Errorf("Snapshot = %+v; Status %+v", snap, st)
	}
	// The expunge before the snapshot is no change after it: no ghost.
	cs, err := ss.Changes(e.ctx, inbox.ID, snap.HighestModSeq)
	if err != nil || len(cs.Added)+len(cs.Updated)+len(cs.Expunged) != 0 {
		t.Errorf("Changes from the snapshot's MODSEQ = %+v, %v", cs, err)
	}

	// Every kind of change moves HighestModSeq, and Changes from the
	// snapshot's MODSEQ reports exactly what happened after it.
	last := snap.HighestModSeq
	moved := func(what string) {
		t.Helper()
		hms, err := ss.HighestModSeq(e.ctx, inbox.ID, time.Now())
		if err != nil {
			t.Fatalf("HighestModSeq after %s: %v", what, err)
		}
		if hms <= last {
			t.Errorf("HighestModSeq after %s = %d, was %d", what, hms, last)
		}
		if st := e.status(ss, inbox.ID); hms != st.HighestModSeq {
			t.Errorf("HighestModSeq after %s = %d, Status says %d", what, hms, st.HighestModSeq)
		}
		last = hms
	}
	added := e.appendN(ss, inbox.ID, 6, 1)
	moved("append")
	e.setFlags(ss, inbox.ID, store.UIDSetOf(2), store.FlagsRemove, `\Seen`)
	moved("flag change")
	if _, err := ss.Expunge(e.ctx, inbox.ID, store.UIDSetOf(1), false); err != nil {
		t.Fatal(err)
	}
	moved("expunge")
	if err := ss.MarkRetrieved(e.ctx, inbox.ID, store.UIDSetOf(3), time.Now()); err != nil {
		t.Fatal(err)
	}
	moved("POP3 retrieval")
	// Another process's change is visible at once, with no notification,
	// even to a session whose last read of the mailbox began before the
	// change: what HighestModSeq answers reflects every change committed
	// before notBefore.
	ss2 := e.session(e.another(), acct.ID)
	e.status(ss, inbox.ID)
	e.appendN(ss2, inbox.ID, 7, 1)
	moved("an append by another store")
	// A read that began after notBefore may answer for it, so an answer
	// for an earlier notBefore is never newer than the mailbox and never
	// older than what was committed before notBefore.
	before := time.Now()
	e.setFlags(ss2, inbox.ID, store.UIDSetOf(2), store.FlagsAdd, `\Seen`)
	if hms, err := ss.HighestModSeq(e.ctx, inbox.ID, before); err != nil || hms < last {
		t.Errorf("HighestModSeq(notBefore before a change) = %d, %v; want at least %d", hms, err, last)
	}
	moved("a flag change by another store")

	cs, err = ss.Changes(e.ctx, inbox.ID, snap.HighestModSeq)
	if err != nil {
		t.Fatal(err)
	}
	if got := uidsOf(cs.Added); len(got) != 2 || got[0] != added[0] || cs.HighestModSeq != last {
		t.Errorf("Changes after the snapshot: added %v, HighestModSeq %d, want %d", got, cs.HighestModSeq, last)
	}
	if !slices.Equal(cs.Expunged, []store.UID{1}) {
		t.Errorf("Changes after the snapshot: expunged %v, want [1]", cs.Expunged)
	}
	var updated []store.UID
	for _, u := range cs.Updated {
		updated = append(updated, u.UID)
	}
	if !slices.Equal(updated, []store.UID{2, 3}) {
		t.Errorf("Changes after the snapshot: updated %v, want [2 3]", updated)
	}

	// A mailbox of another account, or one deleted, is no mailbox.
	_, bob := e.account("bob@example.org")
	if _, err := bob.Snapshot(e.ctx, inbox.ID); !errors.Is(err, store.ErrNoMailbox) {
		t.Errorf("Snapshot of another account's mailbox: %v", err)
	}
	if _, err := bob.HighestModSeq(e.ctx, inbox.ID, time.Now()); !errors.Is(err, store.ErrNoMailbox) {
		t.Errorf("HighestModSeq of another account's mailbox: %v", err)
	}
	gone := e.mailbox(ss, "Gone")
	if err := ss.DeleteMailbox(e.ctx, "Gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := ss.Snapshot(e.ctx, gone.ID); !errors.Is(err, store.ErrNoMailbox) {
		t.Errorf("Snapshot of a deleted mailbox: %v", err)
	}
	if _, err := ss.HighestModSeq(e.ctx, gone.ID, time.Now()); !errors.Is(err, store.ErrNoMailbox) {
		t.Errorf("HighestModSeq of a deleted mailbox: %v", err)
	}
}

// testSnapshotsBetweenChanges takes snapshot after snapshot of a mailbox
// while it changes, through this Store and another one on the same
// storage (another process or node), and checks each against the messages
// there are. A backend that keeps earlier snapshots to read only what
// changed must come to the same lists.
func testSnapshotsBetweenChanges(t *testing.T, e *env) {
	acct, ss := e.account("alice@example.org")
	other := e.session(e.another(), acct.ID)
	inbox := e.mailbox(ss, "INBOX")
	archive := e.mailbox(ss, "Archive")
	e.appendN(ss, archive.ID, 1, 3)

	rnd := rand.New(rand.NewPCG(7, 11))
	next := 1
	for round := range 60 {
		// Through either Store, one kind of change.
		by := ss
		if rnd.IntN(2) == 0 {
			by = other
		}
		uids := e.snapshot(by, inbox.ID).UIDs
		some := func() store.UIDSet {
			var pick []store.UID
			for _, u := range uids {
				if rnd.IntN(3) == 0 {
					pick = append(pick, u)
				}
			}
			return store.UIDSetOf(pick...)
		}
		switch op := rnd.IntN(6); {
		case op <= 1 || len(uids) == 0:
			n := 1 + rnd.IntN(4)
			e.appendN(by, inbox.ID, next, n)
			next += n
		case op == 2:
			e.setFlags(by, inbox.ID, some(), store.FlagsAdd, `\Seen`)
		case op == 3:
			if _, err := by.Expunge(e.ctx, inbox.ID, some(), false); err != nil {
				t.Fatal(err)
			}
		case op == 4:
			if _, err := by.Move(e.ctx, inbox.ID, some(), archive.ID); err != nil {
				t.Fatal(err)
			}
		default:
			if _, err := by.Copy(e.ctx, archive.ID, store.AllUIDs(), inbox.ID); err != nil {
				t.Fatal(err)
			}
		}
		// Every snapshot, whichever Store takes it, lists what is there;
		// some rounds go without, so that several changes fall between
		// two snapshots of one Store.
		want := uidsOf(e.messages(ss, inbox.ID, store.AllUIDs(), store.FieldFlags))
		for _, s := range []store.Session{ss, other} {
			if rnd.IntN(3) == 0 {
				continue
			}
			if got := e.snapshot(s, inbox.ID).UIDs; !slices.Equal(got, want) {
				t.Fatalf("round %d: Snapshot UIDs = %v, want %v", round, got, want)
			}
		}
	}
	// A list a caller changes is its own.
	snap := e.snapshot(ss, inbox.ID)
	want := slices.Clone(snap.UIDs)
	clear(snap.UIDs)
	if got := e.snapshot(ss, inbox.ID).UIDs; !slices.Equal(got, want) {
		t.Errorf("Snapshot after the caller changed the last one's UIDs = %v, want %v", got, want)
	}
	// A mailbox deleted and made again under its name starts empty.
	if err := ss.DeleteMailbox(e.ctx, "Archive"); err != nil {
		t.Fatal(err)
	}
	again := e.mailbox(ss, "Archive")
	if got := e.snapshot(ss, again.ID).UIDs; len(got) != 0 {
		t.Errorf("Snapshot of a re-created mailbox = %v, want none", got)
	}
}

func (e *env) snapshot(ss store.Session, mailboxID int64) *store.Snapshot {
	e.t.Helper()
	snap, err := ss.Snapshot(e.ctx, mailboxID)
	if err != nil {
		e.t.Fatalf("Snapshot(%d): %v", mailboxID, err)
	}
	return snap
}
