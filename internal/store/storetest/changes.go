package storetest

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

func testChanges(t *testing.T, e *env) {
	_, ss := e.account("alice@example.org")
	inbox := e.mailbox(ss, "INBOX")
	e.appendN(ss, inbox.ID, 1, 3)
	since := e.status(ss, inbox.ID).HighestModSeq

	cs, err := ss.Changes(e.ctx, inbox.ID, since)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs.Added)+len(cs.Updated)+len(cs.Expunged) != 0 || cs.Gone || cs.HighestModSeq != since || cs.UIDNext != 4 {
		t.Errorf("Changes with nothing new = %+v", cs)
	}

	e.setFlags(ss, inbox.ID, store.UIDSetOf(1), store.FlagsAdd, `\Flagged`, "$Changed")
	if _, err := ss.Expunge(e.ctx, inbox.ID, store.UIDSetOf(2), false); err != nil {
		t.Fatal(err)
	}
	added := e.appendN(ss, inbox.ID, 4, 2) // 4 and 5
	e.setFlags(ss, inbox.ID, store.UIDSetOf(added[0]), store.FlagsAdd, `\Seen`)
	if _, err := ss.Expunge(e.ctx, inbox.ID, store.UIDSetOf(added[1]), false); err != nil {
		t.Fatal(err)
	}
	st := e.status(ss, inbox.ID)

	cs, err = ss.Changes(e.ctx, inbox.ID, since)
	if err != nil {
		t.Fatal(err)
	}
	if cs.Gone || cs.HighestModSeq != st.HighestModSeq || cs.UIDNext != st.UIDNext {
		t.Errorf("Changes: Gone %v HighestModSeq %d UIDNext %d; Status %+v", cs.Gone, cs.HighestModSeq, cs.UIDNext, st)
	}
	// A message added after sinceModSeq is Added, with its current flags,
	// even if its flags changed since.
	if len(cs.Added) != 1 || cs.Added[0].UID != added[0] || !cs.Added[0].Flags.Has(`\Seen`) ||
		cs.Added[0].Size != int64(len(testMessage(4))) || !cs.Added[0].InternalDate.Equal(testDate(4)) || cs.Added[0].ModSeq <= since {
		t.Errorf("Added = %+v, want uid %d with \\Seen", cs.Added, added[0])
	}
	if len(cs.Updated) != 1 || cs.Updated[0].UID != 1 || !cs.Updated[0].Flags.Has("$changed") || cs.Updated[0].ModSeq <= since {
		t.Errorf("Updated = %+v, want uid 1 with $Changed", cs.Updated)
	}
	// UID 5 came and went after sinceModSeq, and is reported too: a
	// QRESYNC client may have seen it with an older MODSEQ kept.
	if !slices.Equal(cs.Expunged, []store.UID{2, added[1]}) {
		t.Errorf("Expunged = %v, want [2 %d]", cs.Expunged, added[1])
	}

	// From zero, everything present is added.
	cs, err = ss.Changes(e.ctx, inbox.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := uidsOf(cs.Added); !slices.Equal(got, []store.UID{1, 3, added[0]}) || len(cs.Updated) != 0 {
		t.Errorf("Changes(0): added %v, updated %v", got, cs.Updated)
	}
	// From the latest, nothing.
	cs, err = ss.Changes(e.ctx, inbox.ID, st.HighestModSeq)
	if err != nil || len(cs.Added)+len(cs.Updated)+len(cs.Expunged) != 0 {
		t.Errorf("Changes(HIGHESTMODSEQ) = %+v, %v", cs, err)
	}
	// Changes elsewhere in the account do not show here.
	other := e.mailbox(ss, "Other")
	e.appendN(ss, other.ID, 1, 1)
	cs, err = ss.Changes(e.ctx, inbox.ID, st.HighestModSeq)
	if err != nil || len(cs.Added)+len(cs.Updated)+len(cs.Expunged) != 0 {
		t.Errorf("Changes after a change in another mailbox = %+v, %v", cs, err)
	}
}

func testWatch(t *testing.T, e *env) {
	acct, ss := e.account("alice@example.org")
	other, _ := e.account("bob@example.org")
	inbox := e.mailbox(ss, "INBOX")
	w := e.st.Watch(acct.ID)
	defer w.Close()
	wOther := e.st.Watch(other.ID)
	defer wOther.Close()

	e.appendN(ss, inbox.ID, 1, 1)
	waitFire(t, w, "append in the same session")
	drain(w)

	// Another session of the same Store.
	ss2 := e.session(e.st, acct.ID)
	e.setFlags(ss2, inbox.ID, store.UIDSetOf(1), store.FlagsAdd, `\Seen`)
	waitFire(t, w, "flag change in another session")
	if _, err := ss2.CreateMailbox(e.ctx, "New", ""); err != nil {
		t.Fatal(err)
	}
	waitFire(t, w, "mailbox created")
	if _, err := ss2.Expunge(e.ctx, inbox.ID, store.AllUIDs(), false); err != nil {
		t.Fatal(err)
	}
	waitFire(t, w, "expunge")
	noFire(t, wOther, "another account's changes")

	// Another Store on the same storage, as `buzon deliver` would be.
	st2 := e.another()
	ss3 := e.session(st2, acct.ID)
	drain(w)
	e.appendN(ss3, inbox.ID, 2, 1)
	waitFire(t, w, "append through another Store")
	// Catching up after the wake-up sees the change.
	cs, err := ss.Changes(e.ctx, inbox.ID, 0)
	if err != nil || len(cs.Added) != 1 {
		t.Errorf("Changes after the other Store's append: %+v, %v", cs, err)
	}

	// Coalescing: many changes, one pending wake-up at most.
	for range 5 {
		e.setFlags(ss, inbox.ID, store.AllUIDs(), store.FlagsReplace, `\Flagged`)
		e.setFlags(ss, inbox.ID, store.AllUIDs(), store.FlagsReplace)
	}
	waitFire(t, w, "flag changes")
	if len(w.C()) > 1 {
		t.Errorf("watcher holds %d wake-ups", len(w.C()))
	}

	// A closed watcher stays quiet.
	w.Close()
	drain(w)
	e.appendN(ss, inbox.ID, 3, 1)
	noFire(t, w, "closed watcher")
}

func testLock(t *testing.T, e *env) {
	alice, _ := e.account("alice@example.org")
	bob, _ := e.account("bob@example.org")
	st2 := e.another()

	release, err := e.st.Lock(e.ctx, alice.ID, "pop3")
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.st.Lock(e.ctx, alice.ID, "pop3")
	mustErr(t, "second Lock in the same Store", err, store.ErrLocked)
	_, err = st2.Lock(e.ctx, alice.ID, "pop3")
	mustErr(t, "Lock from another Store", err, store.ErrLocked)

	// Other names and other accounts are independent.
	relOther, err := e.st.Lock(e.ctx, alice.ID, "other")
	if err != nil {
		t.Errorf("Lock with another name: %v", err)
	} else {
		relOther()
	}
	relBob, err := st2.Lock(e.ctx, bob.ID, "pop3")
	if err != nil {
		t.Errorf("Lock of another account: %v", err)
	} else {
		relBob()
	}

	release()
	release() // releasing twice is harmless
	rel2, err := st2.Lock(e.ctx, alice.ID, "pop3")
	if err != nil {
		t.Fatalf("Lock from another Store after release: %v", err)
	}
	_, err = e.st.Lock(e.ctx, alice.ID, "pop3")
	mustErr(t, "Lock while the other Store holds it", err, store.ErrLocked)
	rel2()
	rel3, err := e.st.Lock(e.ctx, alice.ID, "pop3")
	if err != nil {
		t.Errorf("Lock after the other Store released: %v", err)
	} else {
		rel3()
	}

	// A Store that closes (a process that ends) lets go of its locks.
	st3 := e.another()
	if _, err := st3.Lock(e.ctx, bob.ID, "pop3"); err != nil {
		t.Fatal(err)
	}
	st3.Close()
	if rel, err := e.st.Lock(e.ctx, bob.ID, "pop3"); err != nil {
		t.Errorf("Lock after the holder's Store closed: %v", err)
	} else {
		rel()
	}
}

func testRetrieved(t *testing.T, e *env) {
	_, ss := e.account("alice@example.org")
	inbox := e.mailbox(ss, "INBOX")
	e.appendN(ss, inbox.ID, 1, 4)
	now := time.Now().Truncate(time.Second)
	first := now.Add(-10 * 24 * time.Hour)
	since := e.status(ss, inbox.ID).HighestModSeq

	if err := ss.MarkRetrieved(e.ctx, inbox.ID, store.UIDSetOf(1), first); err != nil {
		t.Fatal(err)
	}
	m := e.messages(ss, inbox.ID, store.UIDSetOf(1), store.FieldFlags|store.FieldRetrieved)[0]
	if !m.Flags.Has(`\Seen`) || !m.Retrieved.Equal(first) || m.ModSeq <= since {
		t.Errorf("after MarkRetrieved: %+v, want \\Seen, retrieved %v, new MODSEQ", m, first)
	}
	// Only the first retrieval counts.
	if err := ss.MarkRetrieved(e.ctx, inbox.ID, store.UIDSetOf(1), now); err != nil {
		t.Fatal(err)
	}
	m = e.messages(ss, inbox.ID, store.UIDSetOf(1), store.FieldFlags|store.FieldRetrieved)[0]
	if !m.Retrieved.Equal(first) {
		t.Errorf("second MarkRetrieved moved the time to %v", m.Retrieved)
	}
	cs, err := ss.Changes(e.ctx, inbox.ID, since)
	if err != nil || len(cs.Updated) != 1 || cs.Updated[0].UID != 1 {
		t.Errorf("Changes after MarkRetrieved: %+v, %v", cs, err)
	}
	if st := e.status(ss, inbox.ID); st.Unseen != 3 {
		t.Errorf("Unseen after MarkRetrieved = %d, want 3", st.Unseen)
	}
	// A message already \Seen gets its time too.
	e.setFlags(ss, inbox.ID, store.UIDSetOf(2), store.FlagsAdd, `\Seen`)
	if err := ss.MarkRetrieved(e.ctx, inbox.ID, store.UIDSetOf(2), now.Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if m := e.messages(ss, inbox.ID, store.UIDSetOf(2), store.FieldRetrieved)[0]; !m.Retrieved.Equal(now.Add(-24 * time.Hour)) {
		t.Errorf("retrieval time of a seen message: %v", m.Retrieved)
	}
	if err := ss.MarkRetrieved(e.ctx, inbox.ID, store.UIDSetOf(3), now.Add(-6*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	mustErr(t, "MarkRetrieved of a missing message", ss.MarkRetrieved(e.ctx, inbox.ID, store.UIDSetOf(99), now), store.ErrNoMessage)

	// Retrieved 10 and 6 days ago go; 1 day ago and never stay.
	gone, err := ss.ExpireRetrieved(e.ctx, inbox.ID, now.Add(-5*24*time.Hour))
	if err != nil || !slices.Equal(gone, []store.UID{1, 3}) {
		t.Errorf("ExpireRetrieved = %v, %v; want [1 3]", gone, err)
	}
	if got := uidsOf(e.messages(ss, inbox.ID, store.AllUIDs(), 0)); !slices.Equal(got, []store.UID{2, 4}) {
		t.Errorf("left after expiry: %v", got)
	}
	cs, err = ss.Changes(e.ctx, inbox.ID, since)
	if err != nil || !slices.Equal(cs.Expunged, []store.UID{1, 3}) {
		t.Errorf("Changes after ExpireRetrieved: %+v, %v", cs, err)
	}
	mustErr(t, "MarkRetrieved of an expired message", ss.MarkRetrieved(e.ctx, inbox.ID, store.UIDSetOf(1), now), store.ErrNoMessage)

	// A set, as POP3 records a session's retrievals at its end: the gone
	// message is skipped, the retrieved one keeps its time, the other is
	// marked.
	before := e.status(ss, inbox.ID).HighestModSeq
	if err := ss.MarkRetrieved(e.ctx, inbox.ID, store.UIDSetOf(1, 2, 4), now); err != nil {
		t.Fatalf("MarkRetrieved of a set with a gone message: %v", err)
	}
	ms := e.messages(ss, inbox.ID, store.AllUIDs(), store.FieldFlags|store.FieldRetrieved)
	if len(ms) != 2 || !ms[0].Retrieved.Equal(now.Add(-24*time.Hour)) || !ms[1].Retrieved.Equal(now) ||
		!ms[1].Flags.Has(`\Seen`) || ms[1].ModSeq <= before {
		t.Errorf("after MarkRetrieved of a set: %+v", ms)
	}
	if st := e.status(ss, inbox.ID); st.Unseen != 0 {
		t.Errorf("Unseen after MarkRetrieved of a set = %d, want 0", st.Unseen)
	}
}

// testIsolation checks that a session can reach nothing of another
// account, even by the other account's IDs.
func testIsolation(t *testing.T, e *env) {
	_, as := e.account("alice@example.org")
	_, bs := e.account("bob@example.org")
	secret := e.mailbox(as, "Secret")
	aInbox := e.mailbox(as, "INBOX")
	e.appendN(as, secret.ID, 1, 2)
	e.appendN(as, aInbox.ID, 1, 1)
	bInbox := e.mailbox(bs, "INBOX")
	e.appendN(bs, bInbox.ID, 50, 1)
	if bInbox.ID == aInbox.ID {
		t.Logf("note: both INBOXes have ID %d; checking that IDs are scoped", aInbox.ID)
	}
	before := e.status(as, secret.ID)

	if _, err := bs.Mailbox(e.ctx, "Secret"); !errors.Is(err, store.ErrNoMailbox) {
		t.Errorf("bob finds alice's mailbox by name: %v", err)
	}
	boxes, _ := bs.Mailboxes(e.ctx)
	for _, mb := range boxes {
		if mb.Name == "Secret" {
			t.Error("bob lists alice's mailbox")
		}
	}
	for _, id := range []int64{secret.ID} {
		if st, err := bs.Status(e.ctx, id); err == nil {
			t.Errorf("bob gets Status of alice's mailbox: %+v", st)
		}
		err := bs.Messages(e.ctx, id, store.AllUIDs(), store.FieldAll, func(m *store.MessageInfo) error {
			t.Errorf("bob lists alice's message %d", m.UID)
			return nil
		})
		if err == nil {
			t.Error("bob's Messages on alice's mailbox succeeded")
		}
		if b, err := bs.OpenBody(e.ctx, id, 1); err == nil {
			b.Close()
			t.Error("bob opens alice's message body")
		}
		if _, err := bs.Append(e.ctx, id, newMessage(9, store.Flags{}, time.Time{})); err == nil {
			t.Error("bob appends to alice's mailbox")
		}
		if res, err := bs.StoreFlags(e.ctx, id, store.AllUIDs(), store.FlagsAdd, store.Flags{System: store.FlagDeleted}, 0); err == nil {
			t.Errorf("bob sets flags in alice's mailbox: %+v", res)
		}
		if gone, err := bs.Expunge(e.ctx, id, store.AllUIDs(), false); err == nil {
			t.Errorf("bob expunges in alice's mailbox: %+v", gone)
		}
		if res, err := bs.Copy(e.ctx, id, store.AllUIDs(), bInbox.ID); err == nil {
			t.Errorf("bob copies from alice's mailbox: %+v", res)
		}
		if res, err := bs.Copy(e.ctx, bInbox.ID, store.AllUIDs(), id); err == nil {
			t.Errorf("bob copies into alice's mailbox: %+v", res)
		}
		if res, err := bs.Move(e.ctx, id, store.AllUIDs(), bInbox.ID); err == nil {
			t.Errorf("bob moves from alice's mailbox: %+v", res)
		}
		if res, err := bs.Move(e.ctx, bInbox.ID, store.AllUIDs(), id); err == nil {
			t.Errorf("bob moves into alice's mailbox: %+v", res)
		}
		if cs, err := bs.Changes(e.ctx, id, 0); err == nil && (!cs.Gone || len(cs.Added) > 0) {
			t.Errorf("bob reads changes of alice's mailbox: %+v", cs)
		}
		if err := bs.MarkRetrieved(e.ctx, id, store.UIDSetOf(1), time.Now()); err == nil {
			t.Error("bob marks alice's message retrieved")
		}
		if gone, err := bs.ExpireRetrieved(e.ctx, id, time.Now()); err == nil && len(gone) > 0 {
			t.Errorf("bob expires alice's messages: %v", gone)
		}
	}
	// Bob's own INBOX is his, whatever alice's IDs are.
	msgs := e.messages(bs, bInbox.ID, store.AllUIDs(), store.FieldSize)
	if len(msgs) != 1 || !bytes.Equal(e.body(bs, bInbox.ID, msgs[0].UID), testMessage(50)) {
		t.Errorf("bob's INBOX: %+v", msgs)
	}
	after := e.status(as, secret.ID)
	if after.Messages != before.Messages || after.HighestModSeq != before.HighestModSeq {
		t.Errorf("alice's mailbox changed by bob's attempts: %+v, was %+v", after, before)
	}
	if q := e.quota(bs); q.Messages != 1 {
		t.Errorf("bob's quota use %+v", q)
	}
	if q := e.quota(as); q.Messages != 3 {
		t.Errorf("alice's quota use %+v", q)
	}
}
