package storetest

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

func testAppend(t *testing.T, e *env) {
	_, ss := e.account("alice@example.org")
	inbox := e.mailbox(ss, "INBOX")
	flags := store.Flags{System: store.FlagSeen | store.FlagFlagged, Keywords: []string{"$Label1", "Work"}}
	date := testDate(0)
	res, err := ss.Append(e.ctx, inbox.ID, newMessage(1, flags, date))
	if err != nil {
		t.Fatal(err)
	}
	if res.UID != 1 || res.UIDValidity != inbox.UIDValidity || res.ModSeq == 0 {
		t.Errorf("AppendResult = %+v, want UID 1 UIDVALIDITY %d", res, inbox.UIDValidity)
	}
	want := testMessage(1)
	if got := e.body(ss, inbox.ID, 1); !bytes.Equal(got, want) {
		t.Errorf("body = %q, want %q", got, want)
	}
	b, err := ss.OpenBody(e.ctx, inbox.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	part := make([]byte, 7)
	if n, err := b.ReadAt(part, 6); err != nil || n != 7 || string(part) != string(want[6:13]) {
		t.Errorf("ReadAt(6) = %q, %v", part[:n], err)
	}
	b.Close()

	msgs := e.messages(ss, inbox.ID, store.AllUIDs(), store.FieldAll)
	if len(msgs) != 1 {
		t.Fatalf("Messages returned %d messages", len(msgs))
	}
	m := msgs[0]
	if m.UID != 1 || m.ModSeq != res.ModSeq || m.Size != int64(len(want)) || !m.Flags.Equal(flags) ||
		!m.InternalDate.Equal(date) || !bytes.Equal(m.Structure, testStructure(1)) || !m.Retrieved.IsZero() {
		t.Errorf("Messages = %+v", m)
	}

	// A zero internal date means now.
	before := time.Now().Add(-time.Second)
	res2, err := ss.Append(e.ctx, inbox.ID, newMessage(2, store.Flags{}, time.Time{}))
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now().Add(time.Second)
	m2 := e.messages(ss, inbox.ID, store.UIDSetOf(res2.UID), store.FieldDate|store.FieldFlags)
	if len(m2) != 1 || m2[0].InternalDate.Before(before) || m2[0].InternalDate.After(after) {
		t.Errorf("internal date of an append without one: %+v, want about now", m2)
	}
	if res2.UID <= res.UID || res2.ModSeq <= res.ModSeq {
		t.Errorf("second append %+v not above first %+v", res2, res)
	}

	// A large body, read through a reader that returns little at a time,
	// comes back byte for byte.
	big := bytes.Repeat([]byte("0123456789abcdef\r\n"), 1<<16)
	copy(big, "Subject: big\r\n\r\n")
	res3, err := ss.Append(e.ctx, inbox.ID, &store.NewMessage{
		Body: iotest.HalfReader(bytes.NewReader(big)), Size: int64(len(big)), Structure: nil,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.body(ss, inbox.ID, res3.UID); !bytes.Equal(got, big) {
		t.Errorf("large body differs (%d bytes, want %d)", len(got), len(big))
	}

	st := e.status(ss, inbox.ID)
	wantSize := int64(len(want) + len(testMessage(2)) + len(big))
	if st.Messages != 3 || st.Unseen != 2 || st.Deleted != 0 || st.Size != wantSize || st.UIDNext != res3.UID+1 ||
		st.HighestModSeq != res3.ModSeq || st.UIDValidity != inbox.UIDValidity {
		t.Errorf("Status = %+v", st)
	}
	for _, k := range flags.Keywords {
		if !slices.ContainsFunc(st.Keywords, func(s string) bool { return strings.EqualFold(s, k) }) {
			t.Errorf("Status.Keywords = %v, lacks %s", st.Keywords, k)
		}
	}
	if q := e.quota(ss); q.Messages != 3 || q.Bytes != wantSize {
		t.Errorf("QuotaUsage = %+v, want 3 messages of %d bytes", q, wantSize)
	}
}

func testAppendErrors(t *testing.T, e *env) {
	_, ss := e.account("alice@example.org")
	inbox := e.mailbox(ss, "INBOX")
	e.appendN(ss, inbox.ID, 1, 1)
	st := e.status(ss, inbox.ID)
	q := e.quota(ss)

	short := testMessage(2)
	_, err := ss.Append(e.ctx, inbox.ID, &store.NewMessage{Body: bytes.NewReader(short), Size: int64(len(short)) + 10})
	if err == nil {
		t.Error("Append with a body shorter than Size succeeded")
	}
	_, err = ss.Append(e.ctx, inbox.ID, &store.NewMessage{
		Body: io.MultiReader(bytes.NewReader(short[:10]), iotest.ErrReader(errors.New("client went away"))),
		Size: int64(len(short)),
	})
	if err == nil {
		t.Error("Append with a failing body reader succeeded")
	}
	bad := newMessage(3, store.Flags{Keywords: []string{"bad keyword"}}, time.Time{})
	_, err = ss.Append(e.ctx, inbox.ID, bad)
	mustErr(t, "Append with an invalid keyword", err, store.ErrInvalidFlag)
	_, err = ss.Append(e.ctx, inbox.ID+1000, newMessage(3, store.Flags{}, time.Time{}))
	mustErr(t, "Append to a mailbox that does not exist", err, store.ErrNoMailbox)

	if got := e.status(ss, inbox.ID); got.Messages != st.Messages || got.Size != st.Size {
		t.Errorf("failed appends changed the mailbox: %+v, was %+v", got, st)
	}
	if got := e.quota(ss); got != q {
		t.Errorf("failed appends changed quota use: %+v, was %+v", got, q)
	}
	// The next append works and gets a higher UID.
	if uids := e.appendN(ss, inbox.ID, 4, 1); uids[0] <= 1 {
		t.Errorf("UID after failed appends: %d", uids[0])
	}
}

func testUIDsNeverReused(t *testing.T, e *env) {
	acct, ss := e.account("alice@example.org")
	inbox := e.mailbox(ss, "INBOX")
	uids := e.appendN(ss, inbox.ID, 1, 3)
	if !slices.Equal(uids, []store.UID{1, 2, 3}) {
		t.Errorf("first UIDs = %v, want 1 2 3", uids)
	}
	if _, err := ss.Expunge(e.ctx, inbox.ID, store.AllUIDs(), false); err != nil {
		t.Fatal(err)
	}
	if got := e.appendN(ss, inbox.ID, 4, 1); got[0] != 4 {
		t.Errorf("UID after expunging all = %d, want 4", got[0])
	}
	if _, err := ss.Expunge(e.ctx, inbox.ID, store.UIDSetOf(4), false); err != nil {
		t.Fatal(err)
	}
	ss.Close()

	// Even a store opened afresh on the same data remembers.
	e.reopen()
	ss = e.session(e.st, acct.ID)
	again := e.mailbox(ss, "INBOX")
	if again.UIDValidity != inbox.UIDValidity {
		t.Errorf("UIDVALIDITY changed on reopening: %d, was %d", again.UIDValidity, inbox.UIDValidity)
	}
	if got := e.appendN(ss, again.ID, 5, 1); got[0] != 5 {
		t.Errorf("UID after reopening = %d, want 5", got[0])
	}
	if st := e.status(ss, again.ID); st.UIDNext != 6 || st.Messages != 1 {
		t.Errorf("Status after reopening = %+v", st)
	}
}

// testWritten: each write says where it began and ended in its mailbox's
// history (store.Written), so that a session can take its own write as
// the change between the two. A change to another mailbox of the account
// in between moves neither.
func testWritten(t *testing.T, e *env) {
	_, ss := e.account("alice@example.org")
	inbox := e.mailbox(ss, "INBOX")
	other := e.mailbox(ss, "Other")
	hms := func() store.ModSeq { return e.status(ss, inbox.ID).HighestModSeq }
	check := func(what string, w store.Written, before store.ModSeq, changed bool) {
		t.Helper()
		after := hms()
		if w.Prior != before || w.ModSeq != after {
			t.Errorf("%s: written from %d to %d; the mailbox went from %d to %d", what, w.Prior, w.ModSeq, before, after)
		}
		if changed != (after > before) {
			t.Errorf("%s: the mailbox went from %d to %d", what, before, after)
		}
	}
	before := hms()
	res, err := ss.Append(e.ctx, inbox.ID, newMessage(1, store.Flags{}, time.Time{}))
	if err != nil {
		t.Fatal(err)
	}
	check("append", res.Written, before, true)
	e.appendN(ss, other.ID, 2, 2)
	e.setFlags(ss, other.ID, store.AllUIDs(), store.FlagsAdd, `\Deleted`)

	before = hms()
	res, err = ss.Append(e.ctx, inbox.ID, newMessage(2, store.Flags{}, time.Time{}))
	if err != nil {
		t.Fatal(err)
	}
	check("append after changes elsewhere", res.Written, before, true)
	if res.ModSeq != res.Written.ModSeq {
		t.Errorf("append: message MODSEQ %d, written to %d", res.ModSeq, res.Written.ModSeq)
	}
	e.setFlags(ss, other.ID, store.AllUIDs(), store.FlagsRemove, `\Deleted`)

	before = hms()
	fr, err := ss.StoreFlags(e.ctx, inbox.ID, store.AllUIDs(), store.FlagsAdd, store.Flags{System: store.FlagDeleted}, 0)
	if err != nil {
		t.Fatal(err)
	}
	check("flag change", fr.Written, before, true)
	before = hms()
	fr, err = ss.StoreFlags(e.ctx, inbox.ID, store.AllUIDs(), store.FlagsAdd, store.Flags{System: store.FlagDeleted}, 0)
	if err != nil {
		t.Fatal(err)
	}
	check("flag change that changes nothing", fr.Written, before, false)

	if _, err := ss.Expunge(e.ctx, other.ID, store.UIDSetOf(1), false); err != nil {
		t.Fatal(err)
	}
	before = hms()
	er, err := ss.Expunge(e.ctx, inbox.ID, store.AllUIDs(), true)
	if err != nil || len(er.UIDs) != 2 {
		t.Fatalf("expunge: %+v, %v", er, err)
	}
	check("expunge", er.Written, before, true)
	before = hms()
	er, err = ss.Expunge(e.ctx, inbox.ID, store.AllUIDs(), true)
	if err != nil {
		t.Fatal(err)
	}
	check("expunge of nothing", er.Written, before, false)
}

func testModSeq(t *testing.T, e *env) {
	_, ss := e.account("alice@example.org")
	inbox := e.mailbox(ss, "INBOX")
	other := e.mailbox(ss, "Other")
	var last store.ModSeq
	next := func(what string, ms store.ModSeq) {
		t.Helper()
		if ms <= last {
			t.Errorf("%s: MODSEQ %d not above %d", what, ms, last)
		}
		last = ms
	}
	for i := range 3 {
		res, err := ss.Append(e.ctx, inbox.ID, newMessage(i, store.Flags{}, time.Time{}))
		if err != nil {
			t.Fatal(err)
		}
		next("append", res.ModSeq)
	}
	if st := e.status(ss, inbox.ID); st.HighestModSeq != last {
		t.Errorf("HIGHESTMODSEQ %d, last change %d", st.HighestModSeq, last)
	}
	up := e.setFlags(ss, inbox.ID, store.UIDSetOf(1, 2), store.FlagsAdd, `\Answered`)
	if len(up) != 2 {
		t.Fatalf("StoreFlags updated %v", up)
	}
	next("flag change", up[0].ModSeq)
	if up[1].ModSeq < up[0].ModSeq {
		t.Errorf("one StoreFlags gave MODSEQs %d and %d", up[0].ModSeq, up[1].ModSeq)
	}
	last = max(up[0].ModSeq, up[1].ModSeq)
	if st := e.status(ss, inbox.ID); st.HighestModSeq != last {
		t.Errorf("HIGHESTMODSEQ %d after flag change %d", st.HighestModSeq, last)
	}
	// A change that changes nothing takes no MODSEQ.
	if up := e.setFlags(ss, inbox.ID, store.UIDSetOf(1), store.FlagsAdd, `\Answered`); len(up) != 0 {
		t.Errorf("adding a flag already there reported %v", up)
	}
	if st := e.status(ss, inbox.ID); st.HighestModSeq != last {
		t.Errorf("HIGHESTMODSEQ moved to %d on a change that changed nothing", st.HighestModSeq)
	}
	if _, err := ss.Expunge(e.ctx, inbox.ID, store.UIDSetOf(3), false); err != nil {
		t.Fatal(err)
	}
	next("expunge", e.status(ss, inbox.ID).HighestModSeq)
	// The counter is per account: another mailbox continues from it.
	res, err := ss.Append(e.ctx, other.ID, newMessage(9, store.Flags{}, time.Time{}))
	if err != nil {
		t.Fatal(err)
	}
	next("append to another mailbox", res.ModSeq)
	msgs := e.messages(ss, inbox.ID, store.AllUIDs(), store.FieldFlags)
	for _, m := range msgs {
		if m.ModSeq == 0 || m.ModSeq > e.status(ss, inbox.ID).HighestModSeq {
			t.Errorf("message %d MODSEQ %d", m.UID, m.ModSeq)
		}
	}
}

func testStoreFlags(t *testing.T, e *env) {
	_, ss := e.account("alice@example.org")
	start := []store.Flags{
		{},
		{System: store.FlagSeen, Keywords: []string{"$A"}},
		{System: store.FlagFlagged | store.FlagSeen, Keywords: []string{"$b", "Other"}},
	}
	tests := []struct {
		name    string
		op      store.FlagOp
		flags   []string
		updated []store.UID
		after   [3][]string
	}{
		{"add seen", store.FlagsAdd, []string{`\Seen`}, []store.UID{1},
			[3][]string{{`\Seen`}, {`\Seen`, "$A"}, {`\Seen`, `\Flagged`, "$b", "Other"}}},
		{"remove seen", store.FlagsRemove, []string{`\Seen`}, []store.UID{2, 3},
			[3][]string{{}, {"$A"}, {`\Flagged`, "$b", "Other"}}},
		{"replace", store.FlagsReplace, []string{`\Draft`, "$New"}, []store.UID{1, 2, 3},
			[3][]string{{`\Draft`, "$New"}, {`\Draft`, "$New"}, {`\Draft`, "$New"}}},
		{"add keyword case-insensitively", store.FlagsAdd, []string{"$a"}, []store.UID{1, 3},
			[3][]string{{"$a"}, {`\Seen`, "$A"}, {`\Seen`, `\Flagged`, "$b", "Other", "$a"}}},
		{"remove keyword case-insensitively", store.FlagsRemove, []string{"$B", "other"}, []store.UID{3},
			[3][]string{{}, {`\Seen`, "$A"}, {`\Seen`, `\Flagged`}}},
		{"replace with the same", store.FlagsReplace, []string{`\Seen`, "$a"}, []store.UID{1, 3},
			[3][]string{{`\Seen`, "$a"}, {`\Seen`, "$A"}, {`\Seen`, "$a"}}},
		{"add deleted", store.FlagsAdd, []string{`\Deleted`, `\Answered`}, []store.UID{1, 2, 3},
			[3][]string{{`\Deleted`, `\Answered`}, {`\Seen`, "$A", `\Deleted`, `\Answered`}, {`\Seen`, `\Flagged`, "$b", "Other", `\Deleted`, `\Answered`}}},
		{"empty add", store.FlagsAdd, nil, nil,
			[3][]string{{}, {`\Seen`, "$A"}, {`\Seen`, `\Flagged`, "$b", "Other"}}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mb := e.mailbox(ss, fmt.Sprint("Box", i))
			for j, f := range start {
				if _, err := ss.Append(e.ctx, mb.ID, newMessage(j, f, time.Time{})); err != nil {
					t.Fatal(err)
				}
			}
			before := e.status(ss, mb.ID).HighestModSeq
			flags, err := store.ParseFlags(tc.flags)
			if err != nil {
				t.Fatal(err)
			}
			res, err := ss.StoreFlags(e.ctx, mb.ID, store.AllUIDs(), tc.op, flags, 0)
			if err != nil || len(res.Failed) != 0 {
				t.Fatalf("StoreFlags: failed %v, %v", res.Failed, err)
			}
			updated := res.Updated
			if after := e.status(ss, mb.ID).HighestModSeq; res.Prior != before || res.ModSeq != after {
				t.Errorf("StoreFlags wrote from MODSEQ %d to %d; the mailbox went from %d to %d", res.Prior, res.ModSeq, before, after)
			}
			var got []store.UID
			for _, u := range updated {
				got = append(got, u.UID)
				if u.ModSeq <= before {
					t.Errorf("uid %d: MODSEQ %d not above %d", u.UID, u.ModSeq, before)
				}
			}
			if !slices.Equal(got, tc.updated) {
				t.Errorf("updated %v, want %v", got, tc.updated)
			}
			msgs := e.messages(ss, mb.ID, store.AllUIDs(), store.FieldFlags)
			// Updated and Unchanged give the flags of every message named.
			both := slices.Concat(res.Updated, res.Unchanged)
			slices.SortFunc(both, func(a, b store.FlagUpdate) int { return cmp.Compare(a.UID, b.UID) })
			if len(both) != len(msgs) {
				t.Errorf("Updated %+v and Unchanged %+v, for %d messages", res.Updated, res.Unchanged, len(msgs))
			}
			for j, u := range both {
				if j < len(msgs) && (u.UID != msgs[j].UID || u.ModSeq != msgs[j].ModSeq || !u.Flags.Equal(msgs[j].Flags)) {
					t.Errorf("StoreFlags reported %+v, message has %+v", u, msgs[j])
				}
			}
			var unseen, deleted uint32
			for j, m := range msgs {
				want, _ := store.ParseFlags(tc.after[j])
				if !m.Flags.Equal(want) {
					t.Errorf("uid %d: flags %v, want %v", m.UID, m.Flags.Names(), want.Names())
				}
				for _, u := range updated {
					if u.UID == m.UID && (!u.Flags.Equal(want) || u.ModSeq != m.ModSeq) {
						t.Errorf("uid %d: FlagUpdate %+v, message has %v at %d", m.UID, u, m.Flags.Names(), m.ModSeq)
					}
				}
				if !want.Has(`\Seen`) {
					unseen++
				}
				if want.Has(`\Deleted`) {
					deleted++
				}
			}
			if st := e.status(ss, mb.ID); st.Unseen != unseen || st.Deleted != deleted {
				t.Errorf("Status unseen %d deleted %d, want %d %d", st.Unseen, st.Deleted, unseen, deleted)
			}
		})
	}

	mb := e.mailbox(ss, "Box0")
	_, err := ss.StoreFlags(e.ctx, mb.ID, store.AllUIDs(), store.FlagsAdd, store.Flags{Keywords: []string{"a b"}}, 0)
	mustErr(t, "StoreFlags with an invalid keyword", err, store.ErrInvalidFlag)
	_, err = ss.StoreFlags(e.ctx, mb.ID+1000, store.AllUIDs(), store.FlagsAdd, store.Flags{System: store.FlagSeen}, 0)
	mustErr(t, "StoreFlags in a mailbox that does not exist", err, store.ErrNoMailbox)
	// UIDs that do not exist are skipped.
	res, err := ss.StoreFlags(e.ctx, mb.ID, store.UIDSetOf(2, 99), store.FlagsAdd, store.Flags{System: store.FlagAnswered}, 0)
	if err != nil || len(res.Failed) != 0 || len(res.Updated) != 1 || res.Updated[0].UID != 2 {
		t.Errorf("StoreFlags on 2 and missing 99: %+v %v", res, err)
	}
}

func testUnchangedSince(t *testing.T, e *env) {
	_, ss := e.account("alice@example.org")
	inbox := e.mailbox(ss, "INBOX")
	e.appendN(ss, inbox.ID, 1, 3)
	base := e.status(ss, inbox.ID).HighestModSeq
	e.setFlags(ss, inbox.ID, store.UIDSetOf(2), store.FlagsAdd, `\Answered`)

	// RFC 7162 3.1.3: messages changed after UNCHANGEDSINCE fail; the
	// others are changed.
	res, err := ss.StoreFlags(e.ctx, inbox.ID, store.AllUIDs(), store.FlagsAdd,
		store.Flags{System: store.FlagFlagged}, base)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Failed, []store.UID{2}) {
		t.Errorf("failed = %v, want [2]", res.Failed)
	}
	if u := res.Updated; len(u) != 2 || u[0].UID != 1 || u[1].UID != 3 {
		t.Errorf("updated = %+v, want 1 and 3", u)
	}
	msgs := e.messages(ss, inbox.ID, store.UIDSetOf(2), store.FieldFlags)
	if msgs[0].Flags.Has(`\Flagged`) {
		t.Error("message 2 changed despite UNCHANGEDSINCE")
	}
	// With UNCHANGEDSINCE at its MODSEQ, the change goes through.
	res, err = ss.StoreFlags(e.ctx, inbox.ID, store.UIDSetOf(2), store.FlagsAdd,
		store.Flags{System: store.FlagFlagged}, msgs[0].ModSeq)
	if err != nil || len(res.Failed) != 0 || len(res.Updated) != 1 {
		t.Errorf("StoreFlags UNCHANGEDSINCE = MODSEQ: %+v %v", res, err)
	}
}

func testExpunge(t *testing.T, e *env) {
	_, ss := e.account("alice@example.org")
	inbox := e.mailbox(ss, "INBOX")
	e.appendN(ss, inbox.ID, 1, 5)
	since := e.status(ss, inbox.ID).HighestModSeq
	q := e.quota(ss)
	e.setFlags(ss, inbox.ID, store.UIDSetOf(2, 4), store.FlagsAdd, `\Deleted`)
	open, err := ss.OpenBody(e.ctx, inbox.ID, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()

	before := e.status(ss, inbox.ID).HighestModSeq
	gone, err := ss.Expunge(e.ctx, inbox.ID, store.AllUIDs(), true)
	if err != nil || !slices.Equal(gone.UIDs, []store.UID{2, 4}) {
		t.Errorf("Expunge(only deleted) = %+v, %v; want [2 4]", gone, err)
	}
	if after := e.status(ss, inbox.ID).HighestModSeq; gone.Prior != before || gone.ModSeq != after {
		t.Errorf("Expunge wrote from MODSEQ %d to %d; the mailbox went from %d to %d", gone.Prior, gone.ModSeq, before, after)
	}
	if st := e.status(ss, inbox.ID); st.Messages != 3 || st.Deleted != 0 {
		t.Errorf("Status after expunge: %+v", st)
	}
	_, err = ss.OpenBody(e.ctx, inbox.ID, 2)
	mustErr(t, "OpenBody of an expunged message", err, store.ErrNoMessage)

	gone, err = ss.Expunge(e.ctx, inbox.ID, store.UIDSetOf(3, 1, 99), false)
	if err != nil || !slices.Equal(gone.UIDs, []store.UID{1, 3}) {
		t.Errorf("Expunge(1,3,99) = %+v, %v; want [1 3]", gone, err)
	}
	highest := e.status(ss, inbox.ID).HighestModSeq
	gone, err = ss.Expunge(e.ctx, inbox.ID, store.AllUIDs(), true)
	if err != nil || len(gone.UIDs) != 0 || gone.Prior != highest || gone.ModSeq != highest {
		t.Errorf("Expunge with nothing deleted = %+v, %v; want nothing written at MODSEQ %d", gone, err, highest)
	}
	if st := e.status(ss, inbox.ID); st.HighestModSeq != highest {
		t.Errorf("an expunge of nothing moved HIGHESTMODSEQ from %d to %d", highest, st.HighestModSeq)
	}
	if uids := uidsOf(e.messages(ss, inbox.ID, store.AllUIDs(), 0)); !slices.Equal(uids, []store.UID{5}) {
		t.Errorf("left after expunges: %v, want [5]", uids)
	}
	cs, err := ss.Changes(e.ctx, inbox.ID, since)
	if err != nil || !slices.Equal(cs.Expunged, []store.UID{1, 2, 3, 4}) {
		t.Errorf("Changes after expunges: %+v, %v", cs, err)
	}
	if got := e.quota(ss); got.Messages != q.Messages-4 || got.Bytes != int64(len(testMessage(5))) {
		t.Errorf("quota use after expunging 4 of 5: %+v", got)
	}
	_, err = ss.Expunge(e.ctx, inbox.ID+1000, store.AllUIDs(), false)
	mustErr(t, "Expunge in a mailbox that does not exist", err, store.ErrNoMailbox)
}

func testCopy(t *testing.T, e *env) {
	acct, ss := e.account("alice@example.org")
	src := e.mailbox(ss, "Src")
	dst := e.mailbox(ss, "Dst")
	for i := 1; i <= 3; i++ {
		f := store.Flags{System: store.FlagSeen, Keywords: []string{fmt.Sprint("$k", i)}}
		if _, err := ss.Append(e.ctx, src.ID, newMessage(i, f, testDate(i))); err != nil {
			t.Fatal(err)
		}
	}
	e.appendN(ss, dst.ID, 10, 1)
	srcBefore := e.messages(ss, src.ID, store.AllUIDs(), store.FieldAll)
	highest := e.status(ss, dst.ID).HighestModSeq

	res, err := ss.Copy(e.ctx, src.ID, store.UIDSetOf(3, 1, 7), dst.ID)
	if err != nil {
		t.Fatal(err)
	}
	if res.UIDValidity != dst.UIDValidity || !slices.Equal(res.Source, []store.UID{1, 3}) || !slices.Equal(res.Dest, []store.UID{2, 3}) {
		t.Errorf("Copy = %+v, want COPYUID %d 1,3 2:3", res, dst.UIDValidity)
	}
	copies := e.messages(ss, dst.ID, store.UIDSetOf(res.Dest...), store.FieldAll)
	for i, m := range copies {
		orig := srcBefore[res.Source[i]-1]
		if !m.Flags.Equal(orig.Flags) || !m.InternalDate.Equal(orig.InternalDate) || m.Size != orig.Size ||
			!bytes.Equal(m.Structure, orig.Structure) || m.ModSeq <= highest {
			t.Errorf("copy %d = %+v, original %+v", m.UID, m, orig)
		}
		if !bytes.Equal(e.body(ss, dst.ID, m.UID), e.body(ss, src.ID, orig.UID)) {
			t.Errorf("copy %d body differs", m.UID)
		}
	}
	if got := e.messages(ss, src.ID, store.AllUIDs(), store.FieldAll); len(got) != 3 {
		t.Errorf("source after copy has %d messages", len(got))
	}
	if q := e.quota(ss); q.Messages != 6 {
		t.Errorf("quota messages after copy = %d, want 6", q.Messages)
	}
	// The copy outlives its original.
	if _, err := ss.Expunge(e.ctx, src.ID, store.UIDSetOf(1), false); err != nil {
		t.Fatal(err)
	}
	if got := e.body(ss, dst.ID, res.Dest[0]); !bytes.Equal(got, testMessage(1)) {
		t.Error("copy's body changed when its original was expunged")
	}
	// Copying nothing is no error.
	res, err = ss.Copy(e.ctx, src.ID, store.UIDSetOf(1, 50), dst.ID)
	if err != nil || len(res.Source) != 0 || len(res.Dest) != 0 {
		t.Errorf("Copy of missing UIDs = %+v, %v", res, err)
	}
	_, err = ss.Copy(e.ctx, src.ID, store.AllUIDs(), dst.ID+1000)
	mustErr(t, "Copy to a mailbox that does not exist", err, store.ErrNoMailbox)
	_, err = ss.Copy(e.ctx, src.ID+1000, store.AllUIDs(), dst.ID)
	mustErr(t, "Copy from a mailbox that does not exist", err, store.ErrNoMailbox)

	// The quota applies to copies, atomically: all or nothing.
	used := e.quota(ss).Messages
	if err := e.st.SetQuota(e.ctx, acct.Name, store.Quota{MaxMessages: used + 1}); err != nil {
		t.Fatal(err)
	}
	st := e.status(ss, dst.ID)
	_, err = ss.Copy(e.ctx, src.ID, store.AllUIDs(), dst.ID)
	mustErr(t, "Copy over quota", err, store.ErrOverQuota)
	if got := e.status(ss, dst.ID); got.Messages != st.Messages || got.UIDNext < st.UIDNext {
		t.Errorf("refused copy changed the destination: %+v, was %+v", got, st)
	}
	if q := e.quota(ss); q.Messages != used {
		t.Errorf("refused copy changed quota use: %d, was %d", q.Messages, used)
	}
	if _, err := ss.Copy(e.ctx, src.ID, store.UIDSetOf(2), dst.ID); err != nil {
		t.Errorf("Copy of one message within quota: %v", err)
	}
}

func testMove(t *testing.T, e *env) {
	_, ss := e.account("alice@example.org")
	src := e.mailbox(ss, "Src")
	dst := e.mailbox(ss, "Dst")
	for i := 1; i <= 3; i++ {
		if _, err := ss.Append(e.ctx, src.ID, newMessage(i, store.Flags{Keywords: []string{"$Moved"}}, testDate(i))); err != nil {
			t.Fatal(err)
		}
	}
	e.appendN(ss, dst.ID, 10, 2)
	since := e.status(ss, src.ID).HighestModSeq
	q := e.quota(ss)

	res, err := ss.Move(e.ctx, src.ID, store.UIDSetOf(2, 3), dst.ID)
	if err != nil {
		t.Fatal(err)
	}
	if res.UIDValidity != dst.UIDValidity || !slices.Equal(res.Source, []store.UID{2, 3}) || !slices.Equal(res.Dest, []store.UID{3, 4}) {
		t.Errorf("Move = %+v", res)
	}
	if st := e.status(ss, src.ID); st.Messages != 1 {
		t.Errorf("source after move: %+v", st)
	}
	cs, err := ss.Changes(e.ctx, src.ID, since)
	if err != nil || !slices.Equal(cs.Expunged, []store.UID{2, 3}) {
		t.Errorf("source changes after move: %+v, %v", cs, err)
	}
	moved := e.messages(ss, dst.ID, store.UIDSetOf(3, 4), store.FieldAll)
	for i, m := range moved {
		if !m.Flags.Has("$Moved") || !m.InternalDate.Equal(testDate(i+2)) || !bytes.Equal(m.Structure, testStructure(i+2)) {
			t.Errorf("moved message %+v", m)
		}
		if !bytes.Equal(e.body(ss, dst.ID, m.UID), testMessage(i+2)) {
			t.Errorf("moved message %d body differs", m.UID)
		}
	}
	if got := e.quota(ss); got != q {
		t.Errorf("move changed quota use: %+v, was %+v", got, q)
	}
	_, err = ss.Move(e.ctx, src.ID, store.AllUIDs(), dst.ID+1000)
	mustErr(t, "Move to a mailbox that does not exist", err, store.ErrNoMailbox)
	if st := e.status(ss, src.ID); st.Messages != 1 {
		t.Errorf("failed move changed the source: %+v", st)
	}

	// Within one mailbox (RFC 6851 allows it: COPY, then EXPUNGE): the
	// messages get new UIDs there, the old ones go, the bodies stay.
	before := e.status(ss, dst.ID)
	res, err = ss.Move(e.ctx, dst.ID, store.UIDSetOf(1, 3), dst.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Source, []store.UID{1, 3}) || !slices.Equal(res.Dest, []store.UID{5, 6}) {
		t.Errorf("Move within a mailbox = %+v", res)
	}
	after := e.status(ss, dst.ID)
	if after.Messages != before.Messages || after.Size != before.Size || after.UIDNext != 7 {
		t.Errorf("status after a move within the mailbox: %+v, was %+v", after, before)
	}
	if got := uidsOf(e.messages(ss, dst.ID, store.AllUIDs(), 0)); !slices.Equal(got, []store.UID{2, 4, 5, 6}) {
		t.Errorf("UIDs after a move within the mailbox: %v", got)
	}
	cs, err = ss.Changes(e.ctx, dst.ID, before.HighestModSeq)
	if err != nil || !slices.Equal(cs.Expunged, []store.UID{1, 3}) || len(cs.Added) != 2 {
		t.Errorf("changes after a move within the mailbox: %+v, %v", cs, err)
	}
	if !bytes.Equal(e.body(ss, dst.ID, 6), testMessage(2)) { // was 3, moved in above
		t.Error("body changed by a move within the mailbox")
	}
	if got := e.quota(ss); got != q {
		t.Errorf("move within a mailbox changed quota use: %+v, was %+v", got, q)
	}
}

func testQuota(t *testing.T, e *env) {
	acct, ss := e.account("alice@example.org")
	inbox := e.mailbox(ss, "INBOX")
	size := int64(len(testMessage(7)))
	add := func() error {
		_, err := ss.Append(e.ctx, inbox.ID, newMessage(7, store.Flags{}, time.Time{}))
		return err
	}
	setQuota := func(q store.Quota) {
		t.Helper()
		if err := e.st.SetQuota(e.ctx, acct.Name, q); err != nil {
			t.Fatal(err)
		}
	}

	// Bytes: exactly at the limit is allowed, one byte more is not.
	setQuota(store.Quota{MaxBytes: 3 * size})
	for i := range 3 {
		if err := add(); err != nil {
			t.Fatalf("append %d within quota: %v", i, err)
		}
	}
	err := add()
	mustErr(t, "append over byte quota", err, store.ErrOverQuota)
	if store.IsTemporary(err) {
		t.Errorf("over quota is temporary: %v", err)
	}
	if q := e.quota(ss); q.Bytes != 3*size || q.Messages != 3 || q.MaxBytes != 3*size {
		t.Errorf("QuotaUsage = %+v", q)
	}
	setQuota(store.Quota{MaxBytes: 4*size - 1})
	mustErr(t, "append one byte over quota", add(), store.ErrOverQuota)
	setQuota(store.Quota{MaxBytes: 4 * size})
	if err := add(); err != nil {
		t.Errorf("append to exactly the byte quota: %v", err)
	}
	// Expunging makes room.
	if _, err := ss.Expunge(e.ctx, inbox.ID, store.UIDSetOf(1), false); err != nil {
		t.Fatal(err)
	}
	if err := add(); err != nil {
		t.Errorf("append after expunge made room: %v", err)
	}

	// Messages.
	setQuota(store.Quota{MaxMessages: 5})
	if err := add(); err != nil {
		t.Errorf("append of the 5th message with a limit of 5: %v", err)
	}
	mustErr(t, "append of a 6th message", add(), store.ErrOverQuota)

	// A lower quota leaves existing mail alone.
	setQuota(store.Quota{MaxBytes: size})
	if st := e.status(ss, inbox.ID); st.Messages != 5 {
		t.Errorf("lowering the quota removed mail: %+v", st)
	}
	mustErr(t, "append over a lowered quota", add(), store.ErrOverQuota)
	// A message bigger than the whole quota.
	setQuota(store.Quota{MaxBytes: size - 1})
	if _, err := ss.Expunge(e.ctx, inbox.ID, store.AllUIDs(), false); err != nil {
		t.Fatal(err)
	}
	mustErr(t, "append of a message bigger than the quota", add(), store.ErrOverQuota)
	setQuota(store.Quota{})
	if err := add(); err != nil {
		t.Errorf("append without quota: %v", err)
	}
	if q := e.quota(ss); q.Messages != 1 || q.Bytes != size {
		t.Errorf("QuotaUsage at the end = %+v", q)
	}
}

func testMessagesPaging(t *testing.T, e *env) {
	_, ss := e.account("alice@example.org")
	mb := e.mailbox(ss, "Big")
	e.appendN(ss, mb.ID, 1, 10)
	// Copying the mailbox into itself doubles it: 2560 messages, UIDs
	// 1:2560, message u a copy of message (u-1)%10+1.
	for range 8 {
		if _, err := ss.Copy(e.ctx, mb.ID, store.AllUIDs(), mb.ID); err != nil {
			t.Fatal(err)
		}
	}
	const n = 2560
	all := e.messages(ss, mb.ID, store.AllUIDs(), store.FieldFlags|store.FieldSize)
	if len(all) != n {
		t.Fatalf("Messages returned %d messages, want %d", len(all), n)
	}
	for i, m := range all {
		if m.UID != store.UID(i+1) {
			t.Fatalf("message %d has UID %d: not in order", i, m.UID)
		}
		if m.Size != int64(len(testMessage(i%10+1))) || m.ModSeq == 0 || m.Structure != nil {
			t.Fatalf("message %d: %+v (Structure not asked for)", i, m)
		}
	}
	set := store.NewUIDSet(store.UIDRange{Start: 1000, Stop: 1500}, store.UIDRange{Start: 2400, Stop: 4000000000}, store.UIDRange{Start: 7, Stop: 7})
	got := e.messages(ss, mb.ID, set, store.FieldStructure|store.FieldDate)
	var want []store.UID
	for u := store.UID(1); u <= n; u++ {
		if set.Contains(u) {
			want = append(want, u)
		}
	}
	if !slices.Equal(uidsOf(got), want) {
		t.Errorf("Messages(%v) returned %d UIDs, want %d", set, len(got), len(want))
	}
	for _, m := range got {
		i := int(m.UID-1)%10 + 1
		if !bytes.Equal(m.Structure, testStructure(i)) || !m.InternalDate.Equal(testDate(i)) {
			t.Fatalf("uid %d: structure %q date %v, want those of message %d", m.UID, m.Structure, m.InternalDate, i)
		}
	}
	// An error from fn stops the iteration and comes back.
	stop := errors.New("stop")
	calls := 0
	err := ss.Messages(e.ctx, mb.ID, store.AllUIDs(), 0, func(*store.MessageInfo) error {
		calls++
		if calls == 1500 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 1500 {
		t.Errorf("Messages with fn failing at 1500: %d calls, %v", calls, err)
	}
	// fn may use the store: Messages holds nothing that blocks it.
	calls = 0
	err = ss.Messages(e.ctx, mb.ID, store.UIDSetOf(1, 2, 3), store.FieldFlags, func(m *store.MessageInfo) error {
		calls++
		_, err := ss.StoreFlags(e.ctx, mb.ID, store.UIDSetOf(m.UID+1000), store.FlagsAdd, store.Flags{System: store.FlagSeen}, 0)
		return err
	})
	if err != nil || calls != 3 {
		t.Errorf("Messages with writes from fn: %d calls, %v", calls, err)
	}
	if got := e.messages(ss, mb.ID, nil, store.FieldAll); len(got) != 0 {
		t.Errorf("Messages of an empty set returned %d", len(got))
	}
	err = ss.Messages(e.ctx, mb.ID+1000, store.AllUIDs(), 0, func(*store.MessageInfo) error { return nil })
	mustErr(t, "Messages of a mailbox that does not exist", err, store.ErrNoMailbox)
}

func testConcurrentAppend(t *testing.T, e *env) {
	acct, _ := e.account("alice@example.org")
	const writers, each = 8, 25
	run := func(mailbox string) (uids []store.UID, bytes int64, refused int) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := range writers {
			ss := e.session(e.st, acct.ID)
			mb := e.mailbox(ss, mailbox)
			wg.Go(func() {
				for i := range each {
					n := w*each + i
					res, err := ss.Append(e.ctx, mb.ID, newMessage(n, store.Flags{}, time.Time{}))
					mu.Lock()
					switch {
					case errors.Is(err, store.ErrOverQuota):
						refused++
					case err != nil:
						t.Errorf("append %d: %v", n, err)
					default:
						uids = append(uids, res.UID)
						bytes += int64(len(testMessage(n)))
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return uids, bytes, refused
	}

	ss := e.session(e.st, acct.ID)
	e.mailbox(ss, "Concurrent")
	uids, size, _ := run("Concurrent")
	slices.Sort(uids)
	if len(uids) != writers*each || len(slices.Compact(slices.Clone(uids))) != len(uids) {
		t.Fatalf("%d appends gave %d distinct UIDs", writers*each, len(slices.Compact(uids)))
	}
	mb := e.mailbox(ss, "Concurrent")
	if got := uidsOf(e.messages(ss, mb.ID, store.AllUIDs(), 0)); !slices.Equal(got, uids) {
		t.Errorf("Messages lists %d UIDs, appends returned %d", len(got), len(uids))
	}
	if st := e.status(ss, mb.ID); st.UIDNext != uids[len(uids)-1]+1 || st.Size != size {
		t.Errorf("Status after concurrent appends: %+v, want size %d", st, size)
	}
	if q := e.quota(ss); q.Messages != writers*each || q.Bytes != size {
		t.Errorf("QuotaUsage = %+v, want %d messages of %d bytes", q, writers*each, size)
	}

	// With a quota, exactly as many appends succeed as fit.
	const limit = writers*each + 150
	if err := e.st.SetQuota(e.ctx, acct.Name, store.Quota{MaxMessages: limit}); err != nil {
		t.Fatal(err)
	}
	e.mailbox(ss, "Limited")
	uids2, size2, refused := run("Limited")
	if len(uids2) != 150 || refused != writers*each-150 {
		t.Errorf("with room for 150: %d appended, %d refused", len(uids2), refused)
	}
	if q := e.quota(ss); q.Messages != limit || q.Bytes != size+size2 {
		t.Errorf("QuotaUsage = %+v, want %d messages of %d bytes", q, limit, size+size2)
	}
}
