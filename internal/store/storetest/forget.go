package storetest

import (
	"slices"
	"testing"

	"github.com/buzon-mail/buzon/internal/store"
)

// moment is a mailbox as a snapshot saw it.
type moment struct {
	modSeq store.ModSeq
	uids   []store.UID
}

// churn puts messages through INBOX, some expunged alone, some moved
// out, some expunged several at once, and returns INBOX as it was after
// each change. It takes snapshots along the way, so that a store with a
// UID cache brings cached lists up to date across what it forgot.
func (e *env) churn(ss store.Session, rounds int) (store.Mailbox, []moment) {
	e.t.Helper()
	inbox := e.mailbox(ss, "INBOX")
	other := e.mailbox(ss, "Other")
	var history []moment
	record := func() {
		snap := e.snapshot(ss, inbox.ID)
		history = append(history, moment{snap.HighestModSeq, snap.UIDs})
	}
	expunge := func(uids ...store.UID) {
		if _, err := ss.Expunge(e.ctx, inbox.ID, store.UIDSetOf(uids...), false); err != nil {
			e.t.Fatalf("Expunge(%v): %v", uids, err)
		}
		record()
	}
	record()
	for r := range rounds {
		uids := e.appendN(ss, inbox.ID, 10*r+1, 6)
		record()
		e.setFlags(ss, inbox.ID, store.UIDSetOf(uids[0]), store.FlagsAdd, `\Seen`)
		record()
		expunge(uids[1])
		if _, err := ss.Move(e.ctx, inbox.ID, store.UIDSetOf(uids[2]), other.ID); err != nil {
			e.t.Fatalf("Move: %v", err)
		}
		record()
		expunge(uids[3], uids[4], uids[5])
		if r%2 == 1 {
			expunge(uids[0]) // the one with a flag change
		}
	}
	return inbox, history
}

// testChangesFromEveryModSeq: from every MODSEQ a mailbox had, Changes
// takes the mailbox as it was then to the mailbox as it is, whether the
// store remembers every expunge since or says it forgot some.
func testChangesFromEveryModSeq(t *testing.T, e *env) {
	_, ss := e.account("alice@example.org")
	inbox, history := e.churn(ss, 6)
	e.replay(ss, inbox.ID, history)
}

// replay checks Changes from each moment of history against the mailbox
// now.
func (e *env) replay(ss store.Session, mailboxID int64, history []moment) {
	t := e.t
	t.Helper()
	now := e.snapshot(ss, mailboxID).UIDs
	for _, m := range history {
		cs, err := ss.Changes(e.ctx, mailboxID, m.modSeq)
		if err != nil {
			t.Fatal(err)
		}
		if cs.Forgotten != (m.modSeq < cs.ForgottenTo) {
			t.Errorf("Changes(%d): Forgotten %v, ForgottenTo %d", m.modSeq, cs.Forgotten, cs.ForgottenTo)
		}
		gone := cs.Expunged
		if cs.Forgotten {
			if !slices.Equal(cs.Present, now) {
				t.Errorf("Changes(%d): Present %v, want %v", m.modSeq, cs.Present, now)
			}
			gone = nil
			for _, u := range m.uids {
				if _, found := slices.BinarySearch(cs.Present, u); !found {
					gone = append(gone, u)
				}
			}
		} else if cs.Present != nil {
			t.Errorf("Changes(%d) forgot nothing but lists Present %v", m.modSeq, cs.Present)
		}
		got := slices.DeleteFunc(slices.Clone(m.uids), func(u store.UID) bool {
			_, found := slices.BinarySearch(gone, u)
			return found
		})
		got = append(got, uidsOf(cs.Added)...)
		slices.Sort(got)
		if !slices.Equal(got, now) {
			t.Errorf("from MODSEQ %d (%v), Changes (forgotten %v, expunged %v, added %v) give %v; the mailbox holds %v",
				m.modSeq, m.uids, cs.Forgotten, cs.Expunged, uidsOf(cs.Added), got, now)
		}
	}
}

// Forgetting checks that a store opened by open, which must forget the
// oldest expunges of a mailbox when it holds more than twice keep, forgets
// them, and that Changes and Snapshot stay right from every
// MODSEQ across what it forgot. open is as for Run.
func Forgetting(t *testing.T, open func(t *testing.T) store.Store, keep int) {
	e := newEnv(t, open)
	_, ss := e.account("alice@example.org")
	inbox, history := e.churn(ss, 4+2*keep)
	e.replay(ss, inbox.ID, history)

	cs, err := ss.Changes(e.ctx, inbox.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !cs.Forgotten || cs.ForgottenTo == 0 {
		t.Fatalf("Changes(0) after %d expunges, keeping %d: Forgotten %v, ForgottenTo %d; want some forgotten",
			len(history), keep, cs.Forgotten, cs.ForgottenTo)
	}
	if n := len(cs.Expunged); n > 2*keep {
		t.Errorf("%d expunges remembered, want at most %d", n, 2*keep)
	}
	// The Snapshot a new Store takes (no cache) agrees with this one's.
	again := e.another()
	a, err := again.LookupAccount(e.ctx, "alice@example.org")
	if err != nil {
		t.Fatal(err)
	}
	fresh := e.snapshot(e.session(again, a.ID), inbox.ID)
	if want := e.snapshot(ss, inbox.ID); !slices.Equal(fresh.UIDs, want.UIDs) || fresh.HighestModSeq != want.HighestModSeq {
		t.Errorf("Snapshot from another Store %v at %d, from this one %v at %d", fresh.UIDs, fresh.HighestModSeq, want.UIDs, want.HighestModSeq)
	}
	e.check()
}
