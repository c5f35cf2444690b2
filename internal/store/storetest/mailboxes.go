package storetest

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/buzon-mail/buzon/internal/store"
)

func testAccounts(t *testing.T, e *env) {
	cred := store.Credentials{PasswordHash: "$argon2id$x", SCRAMSHA256: "scram"}
	alice, err := e.st.CreateAccount(e.ctx, " Alice@Example.ORG ", cred)
	if err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	if alice.Name != "alice@example.org" || alice.ID == 0 || alice.Created.IsZero() || alice.Credentials != cred {
		t.Errorf("CreateAccount returned %+v", alice)
	}
	_, err = e.st.CreateAccount(e.ctx, "ALICE@example.org", cred)
	mustErr(t, "duplicate CreateAccount", err, store.ErrAccountExists)

	for _, name := range []string{"", "nodomain", "@example.org", "alice@", "a b@example.org", "a/b@example.org",
		`a"b@example.org`, strings.Repeat("x", 250) + "@example.org"} {
		_, err := e.st.CreateAccount(e.ctx, name, cred)
		mustErr(t, "CreateAccount("+name+")", err, store.ErrInvalidName)
	}

	got, err := e.st.LookupAccount(e.ctx, "ALICE@EXAMPLE.org")
	if err != nil || got.ID != alice.ID || got.Name != alice.Name || got.Credentials != cred || !got.Created.Equal(alice.Created) {
		t.Errorf("LookupAccount = %+v, %v; want %+v", got, err, alice)
	}
	_, err = e.st.LookupAccount(e.ctx, "nobody@example.org")
	mustErr(t, "LookupAccount(nobody)", err, store.ErrNoAccount)

	bob, err := e.st.CreateAccount(e.ctx, "bob@example.org", store.Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	if bob.ID == alice.ID {
		t.Errorf("two accounts with ID %d", bob.ID)
	}
	_, err = e.st.CreateAccount(e.ctx, "aaron@example.org", store.Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	accts, err := e.st.Accounts(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range accts {
		names = append(names, a.Name)
	}
	if want := []string{"aaron@example.org", "alice@example.org", "bob@example.org"}; !slices.Equal(names, want) {
		t.Errorf("Accounts = %v, want %v", names, want)
	}

	cred2 := store.Credentials{PasswordHash: "$2b$new"}
	if err := e.st.SetCredentials(e.ctx, "Alice@example.org", cred2); err != nil {
		t.Fatal(err)
	}
	q := store.Quota{MaxBytes: 1 << 20, MaxMessages: 100}
	if err := e.st.SetQuota(e.ctx, "alice@example.org", q); err != nil {
		t.Fatal(err)
	}
	got, err = e.st.LookupAccount(e.ctx, "alice@example.org")
	if err != nil || got.Credentials != cred2 || got.Quota != q {
		t.Errorf("after SetCredentials and SetQuota: %+v, %v", got, err)
	}
	mustErr(t, "SetCredentials(nobody)", e.st.SetCredentials(e.ctx, "nobody@example.org", cred), store.ErrNoAccount)
	mustErr(t, "SetQuota(nobody)", e.st.SetQuota(e.ctx, "nobody@example.org", q), store.ErrNoAccount)

	ss, err := e.st.Open(e.ctx, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ss.AccountID() != alice.ID {
		t.Errorf("AccountID = %d, want %d", ss.AccountID(), alice.ID)
	}
	if qu := e.quota(ss); qu.Quota != q || qu.Bytes != 0 || qu.Messages != 0 {
		t.Errorf("QuotaUsage = %+v", qu)
	}
	ss.Close()
	_, err = e.st.Open(e.ctx, alice.ID+bob.ID+1000)
	mustErr(t, "Open(unknown)", err, store.ErrNoAccount)
}

func testDeleteAccount(t *testing.T, e *env) {
	alice, ss := e.account("alice@example.org")
	_, bs := e.account("bob@example.org")
	inbox := e.mailbox(ss, "INBOX")
	e.appendN(ss, inbox.ID, 1, 3)
	e.appendN(bs, e.mailbox(bs, "INBOX").ID, 1, 2)
	ss.Close()

	if err := e.st.DeleteAccount(e.ctx, "ALICE@example.org"); err != nil {
		t.Fatal(err)
	}
	_, err := e.st.LookupAccount(e.ctx, "alice@example.org")
	mustErr(t, "LookupAccount after delete", err, store.ErrNoAccount)
	_, err = e.st.Open(e.ctx, alice.ID)
	mustErr(t, "Open after delete", err, store.ErrNoAccount)
	mustErr(t, "second DeleteAccount", e.st.DeleteAccount(e.ctx, "alice@example.org"), store.ErrNoAccount)

	// The name can be used again, for a new, empty account.
	again, ss2 := e.account("alice@example.org")
	if again.ID == alice.ID {
		t.Errorf("re-created account reuses ID %d", alice.ID)
	}
	inbox2 := e.mailbox(ss2, "INBOX")
	if st := e.status(ss2, inbox2.ID); st.Messages != 0 || st.UIDNext != 1 {
		t.Errorf("re-created account's INBOX: %+v", st)
	}
	if inbox2.UIDValidity == inbox.UIDValidity {
		t.Errorf("re-created INBOX has the old UIDVALIDITY %d", inbox.UIDValidity)
	}
	// Other accounts are untouched.
	if qu := e.quota(bs); qu.Messages != 2 {
		t.Errorf("bob's messages after alice's deletion: %d", qu.Messages)
	}
}

func testStandardMailboxes(t *testing.T, e *env) {
	_, ss := e.account("alice@example.org")
	boxes, err := ss.Mailboxes(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"INBOX": ""}
	for _, sm := range store.StandardMailboxes() {
		want[sm.Name] = sm.SpecialUse
	}
	got := map[string]string{}
	ids := map[int64]bool{}
	var names []string
	for _, mb := range boxes {
		got[mb.Name] = mb.SpecialUse
		names = append(names, mb.Name)
		if mb.UIDValidity == 0 || ids[mb.ID] {
			t.Errorf("mailbox %+v: zero UIDVALIDITY or duplicate ID", mb)
		}
		ids[mb.ID] = true
	}
	if len(got) != len(want) {
		t.Errorf("Mailboxes = %v, want %v", got, want)
	}
	for name, su := range want {
		if g, ok := got[name]; !ok || g != su {
			t.Errorf("mailbox %s: special-use %q (present %v), want %q", name, g, ok, su)
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("Mailboxes not ordered by name: %v", names)
	}
	mb, err := ss.Mailbox(e.ctx, "inbox")
	if err != nil || mb.Name != "INBOX" {
		t.Errorf(`Mailbox("inbox") = %+v, %v`, mb, err)
	}
	st := e.status(ss, mb.ID)
	if st.Messages != 0 || st.UIDNext != 1 || st.UIDValidity != mb.UIDValidity {
		t.Errorf("new INBOX status %+v", st)
	}
	subs, err := ss.Subscriptions(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name := range want {
		if !slices.Contains(subs, name) {
			t.Errorf("standard mailbox %s not subscribed: %v", name, subs)
		}
	}
}

func testCreateMailbox(t *testing.T, e *env) {
	_, ss := e.account("alice@example.org")
	work, err := ss.CreateMailbox(e.ctx, "Work", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ss.CreateMailbox(e.ctx, "Work/Projects", store.SpecialArchive); err != nil {
		t.Fatal(err)
	}
	sub, err := ss.CreateMailbox(e.ctx, "inbox/Sub", "")
	if err != nil || sub.Name != "INBOX/Sub" {
		t.Errorf(`CreateMailbox("inbox/Sub") = %+v, %v; want INBOX/Sub`, sub, err)
	}
	uni, err := ss.CreateMailbox(e.ctx, "Åpfel/日本", "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ss.Mailbox(e.ctx, "Work/Projects")
	if err != nil || got.SpecialUse != store.SpecialArchive {
		t.Errorf("Mailbox(Work/Projects) = %+v, %v", got, err)
	}
	if got, err := ss.Mailbox(e.ctx, uni.Name); err != nil || got != uni {
		t.Errorf("Mailbox(%q) = %+v, %v; want %+v", uni.Name, got, err, uni)
	}
	if work.UIDValidity == 0 || work.Name != "Work" {
		t.Errorf("CreateMailbox(Work) = %+v", work)
	}

	for _, name := range []string{"Work", "INBOX", "inbox", "Inbox", "Drafts"} {
		_, err := ss.CreateMailbox(e.ctx, name, "")
		mustErr(t, "CreateMailbox("+name+")", err, store.ErrMailboxExists)
	}
	for _, name := range []string{"", "a//b", "/a", "a/", "#news", "~user", "a*b", "a%b", "a\x01b", "a\x7fb",
		" lead", "trail ", "a/ b", "\xff\xfe", strings.Repeat("x", store.MaxMailboxPartLen+1),
		strings.Repeat("abcdefghi/", store.MaxMailboxNameLen/10) + "x"} {
		_, err := ss.CreateMailbox(e.ctx, name, "")
		mustErr(t, "CreateMailbox("+name+")", err, store.ErrInvalidName)
	}
	if _, err := ss.CreateMailbox(e.ctx, "Odd", `\Nonsense`); err == nil {
		t.Error("CreateMailbox with an unknown special-use attribute succeeded")
	}
	_, err = ss.Mailbox(e.ctx, "Nope")
	mustErr(t, "Mailbox(Nope)", err, store.ErrNoMailbox)
	_, err = ss.Mailbox(e.ctx, "work")
	mustErr(t, "Mailbox(work): names other than INBOX are case-sensitive", err, store.ErrNoMailbox)

	boxes, err := ss.Mailboxes(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mb := range boxes {
		names = append(names, mb.Name)
	}
	if !slices.IsSorted(names) {
		t.Errorf("Mailboxes not ordered by name: %v", names)
	}
	for _, n := range []string{"Work", "Work/Projects", "INBOX/Sub", uni.Name} {
		if !slices.Contains(names, n) {
			t.Errorf("Mailboxes lacks %s: %v", n, names)
		}
	}
}

func testDeleteMailbox(t *testing.T, e *env) {
	_, ss := e.account("alice@example.org")
	work := e.mailbox(ss, "Work")
	child := e.mailbox(ss, "Work/Child")
	e.appendN(ss, work.ID, 1, 3)
	e.appendN(ss, child.ID, 1, 1)
	before := e.quota(ss)
	highest := e.status(ss, work.ID).HighestModSeq

	mustErr(t, "DeleteMailbox(INBOX)", ss.DeleteMailbox(e.ctx, "INBOX"), store.ErrInvalidName)
	mustErr(t, "DeleteMailbox(inbox)", ss.DeleteMailbox(e.ctx, "inbox"), store.ErrInvalidName)
	mustErr(t, "DeleteMailbox(Nope)", ss.DeleteMailbox(e.ctx, "Nope"), store.ErrNoMailbox)
	if err := ss.DeleteMailbox(e.ctx, "Work"); err != nil {
		t.Fatal(err)
	}
	_, err := ss.Mailbox(e.ctx, "Work")
	mustErr(t, "Mailbox after delete", err, store.ErrNoMailbox)
	if _, err := ss.Mailbox(e.ctx, "Work/Child"); err != nil {
		t.Errorf("child deleted with its parent: %v", err)
	}
	_, err = ss.Status(e.ctx, work.ID)
	mustErr(t, "Status of deleted mailbox", err, store.ErrNoMailbox)
	if _, err := ss.OpenBody(e.ctx, work.ID, 1); err == nil {
		t.Error("OpenBody in a deleted mailbox succeeded")
	}
	if cs, err := ss.Changes(e.ctx, work.ID, highest); err == nil && !cs.Gone {
		t.Errorf("Changes of a deleted mailbox: %+v, not Gone", cs)
	}
	_, err = ss.Append(e.ctx, work.ID, newMessage(9, store.Flags{}, testDate(9)))
	mustErr(t, "Append to deleted mailbox", err, store.ErrNoMailbox)
	after := e.quota(ss)
	if after.Messages != before.Messages-3 || after.Bytes >= before.Bytes {
		t.Errorf("quota use after deleting 3 messages: %+v, before %+v", after, before)
	}

	// A new mailbox of the same name is a different mailbox: UIDVALIDITY
	// is never reused (RFC 9051 2.3.1.1).
	seen := map[uint32]bool{work.UIDValidity: true}
	for range 3 {
		again, err := ss.CreateMailbox(e.ctx, "Work", "")
		if err != nil {
			t.Fatal(err)
		}
		if seen[again.UIDValidity] || again.ID == work.ID {
			t.Errorf("re-created mailbox %+v reuses UIDVALIDITY or ID of an older one", again)
		}
		seen[again.UIDValidity] = true
		if st := e.status(ss, again.ID); st.Messages != 0 || st.UIDNext != 1 {
			t.Errorf("re-created mailbox status %+v", st)
		}
		if err := ss.DeleteMailbox(e.ctx, "Work"); err != nil {
			t.Fatal(err)
		}
	}
}

func testRenameMailbox(t *testing.T, e *env) {
	_, ss := e.account("alice@example.org")
	a := e.mailbox(ss, "A")
	ab := e.mailbox(ss, "A/B")
	e.mailbox(ss, "A/B/C")
	e.mailbox(ss, "AB") // not below A
	uidsA := e.appendN(ss, a.ID, 1, 3)
	e.appendN(ss, ab.ID, 10, 2)
	e.setFlags(ss, a.ID, store.UIDSetOf(uidsA[1]), store.FlagsAdd, `\Flagged`, "$Work")
	stA := e.status(ss, a.ID)
	msgsA := e.messages(ss, a.ID, store.AllUIDs(), store.FieldAll)
	// Subscriptions below A move, those of names that do not exist too,
	// and one whose new name is subscribed already merges into it; one
	// whose new name would be too long stays as it was.
	long := "A" + strings.Repeat("/"+strings.Repeat("x", 200), 4) + "/" + strings.Repeat("x", 194) // 1000 bytes
	standard, err := ss.Subscriptions(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"A", "A/B", "A/B/C", "A/Gone", "AB", "Z/B", long} {
		if err := ss.SetSubscribed(e.ctx, name, true); err != nil {
			t.Fatal(err)
		}
	}

	if err := ss.RenameMailbox(e.ctx, "A", "ZZ"); err != nil {
		t.Fatal(err)
	}
	if err := ss.RenameMailbox(e.ctx, "ZZ", "Z"); err != nil {
		t.Fatal(err)
	}
	subs, err := ss.Subscriptions(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	subs = slices.DeleteFunc(subs, func(s string) bool { return slices.Contains(standard, s) })
	for i, s := range subs {
		if s == long {
			subs[i] = "A/<too long to move>"
		}
	}
	if want := []string{"A/<too long to move>", "AB", "Z", "Z/B", "Z/B/C", "Z/Gone"}; !slices.Equal(subs, want) {
		t.Errorf("subscriptions after renaming A: %q, want %q", subs, want)
	}
	// Into its own subtree, with the new name subscribed already: P
	// becomes P/X, and P/X (subscribed, no mailbox) P/X/X.
	e.mailbox(ss, "P")
	for _, name := range []string{"P", "P/X"} {
		if err := ss.SetSubscribed(e.ctx, name, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := ss.RenameMailbox(e.ctx, "P", "P/X"); err != nil {
		t.Fatal(err)
	}
	if subs, err := ss.Subscriptions(e.ctx); err != nil ||
		!slices.Contains(subs, "P/X") || !slices.Contains(subs, "P/X/X") || slices.Contains(subs, "P") {
		t.Errorf("subscriptions after renaming P to P/X: %q, %v; want P/X and P/X/X", subs, err)
	}
	boxes, err := ss.Mailboxes(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]store.Mailbox{}
	for _, mb := range boxes {
		names[mb.Name] = mb
	}
	for _, n := range []string{"Z", "Z/B", "Z/B/C", "AB"} {
		if _, ok := names[n]; !ok {
			t.Errorf("after rename, no mailbox %s", n)
		}
	}
	for _, n := range []string{"A", "A/B", "A/B/C"} {
		if _, ok := names[n]; ok {
			t.Errorf("after rename, mailbox %s still exists", n)
		}
	}
	z := names["Z"]
	if z.UIDValidity != a.UIDValidity || names["Z/B"].UIDValidity != ab.UIDValidity {
		t.Errorf("rename changed UIDVALIDITY: %+v %+v, was %+v %+v", z, names["Z/B"], a, ab)
	}
	stZ := e.status(ss, z.ID)
	if stZ.Messages != stA.Messages || stZ.UIDNext != stA.UIDNext || stZ.Size != stA.Size || stZ.HighestModSeq < stA.HighestModSeq {
		t.Errorf("renamed mailbox status %+v, was %+v", stZ, stA)
	}
	msgsZ := e.messages(ss, z.ID, store.AllUIDs(), store.FieldAll)
	if len(msgsZ) != len(msgsA) {
		t.Fatalf("renamed mailbox has %d messages, had %d", len(msgsZ), len(msgsA))
	}
	for i := range msgsA {
		x, y := msgsA[i], msgsZ[i]
		if x.UID != y.UID || !x.Flags.Equal(y.Flags) || x.Size != y.Size || string(x.Structure) != string(y.Structure) {
			t.Errorf("message %d changed by rename: %+v, was %+v", i, y, x)
		}
	}
	if got := e.body(ss, z.ID, uidsA[0]); string(got) != string(testMessage(1)) {
		t.Errorf("body changed by rename")
	}
	// The mailboxes keep their IDs: a session that had A selected goes on
	// with it, under its new name.
	if z.ID != a.ID || names["Z/B"].ID != ab.ID {
		t.Errorf("rename changed IDs: Z %d, Z/B %d; were %d, %d", z.ID, names["Z/B"].ID, a.ID, ab.ID)
	}
	if cs, err := ss.Changes(e.ctx, a.ID, stA.HighestModSeq); err != nil || cs.Gone {
		t.Errorf("Changes on the ID after rename: %+v, %v", cs, err)
	}

	for _, tc := range []struct {
		from, to string
		want     error
	}{
		{"Nope", "Other", store.ErrNoMailbox},
		{"Z", "AB", store.ErrMailboxExists},
		{"Z", "INBOX", store.ErrMailboxExists},
		{"Z", "inbox", store.ErrMailboxExists},
		{"Z", "Z/B", store.ErrMailboxExists},
		{"Z", "bad//name", store.ErrInvalidName},
		{"Z", "", store.ErrInvalidName},
	} {
		mustErr(t, "RenameMailbox("+tc.from+", "+tc.to+")", ss.RenameMailbox(e.ctx, tc.from, tc.to), tc.want)
	}
	// Into its own hierarchy.
	if err := ss.RenameMailbox(e.ctx, "AB", "AB/Sub"); err != nil {
		t.Fatalf("RenameMailbox(AB, AB/Sub): %v", err)
	}
	if _, err := ss.Mailbox(e.ctx, "AB/Sub"); err != nil {
		t.Error(err)
	}
	// Back to the old name: the tree moves back, UIDVALIDITY still kept.
	if err := ss.RenameMailbox(e.ctx, "Z", "A"); err != nil {
		t.Fatal(err)
	}
	if _, err := ss.Mailbox(e.ctx, "A/B/C"); err != nil {
		t.Errorf("A/B/C after renaming back: %v", err)
	}
	if back := e.mailbox(ss, "A"); back.UIDValidity != a.UIDValidity {
		t.Errorf("UIDVALIDITY after renaming back: %d, want %d", back.UIDValidity, a.UIDValidity)
	}
}

func testRenameInbox(t *testing.T, e *env) {
	_, ss := e.account("alice@example.org")
	inbox := e.mailbox(ss, "INBOX")
	e.mailbox(ss, "INBOX/Child")
	for _, name := range []string{"INBOX", "INBOX/Child"} {
		if err := ss.SetSubscribed(e.ctx, name, true); err != nil {
			t.Fatal(err)
		}
	}
	uids := e.appendN(ss, inbox.ID, 1, 3)
	e.setFlags(ss, inbox.ID, store.UIDSetOf(uids[0]), store.FlagsAdd, `\Seen`)
	before := e.status(ss, inbox.ID)
	quota := e.quota(ss)

	// RFC 9051 6.3.6: INBOX's messages move to the new mailbox and INBOX
	// stays, empty; its children are not renamed.
	if err := ss.RenameMailbox(e.ctx, "inbox", "Old Inbox"); err != nil {
		t.Fatal(err)
	}
	in := e.mailbox(ss, "INBOX")
	if in.UIDValidity != inbox.UIDValidity {
		t.Errorf("INBOX UIDVALIDITY changed by rename: %d, was %d", in.UIDValidity, inbox.UIDValidity)
	}
	st := e.status(ss, in.ID)
	if st.Messages != 0 || st.UIDNext < before.UIDNext {
		t.Errorf("INBOX after rename: %+v", st)
	}
	if _, err := ss.Mailbox(e.ctx, "INBOX/Child"); err != nil {
		t.Errorf("INBOX/Child after renaming INBOX: %v", err)
	}
	if _, err := ss.Mailbox(e.ctx, "Old Inbox/Child"); err == nil {
		t.Error("INBOX's child was renamed with it")
	}
	if subs, err := ss.Subscriptions(e.ctx); err != nil || !slices.Contains(subs, "INBOX") || !slices.Contains(subs, "INBOX/Child") ||
		slices.ContainsFunc(subs, func(s string) bool { return strings.HasPrefix(s, "Old Inbox") }) {
		t.Errorf("subscriptions after renaming INBOX: %q, %v; want INBOX and INBOX/Child as they were", subs, err)
	}
	old := e.mailbox(ss, "Old Inbox")
	msgs := e.messages(ss, old.ID, store.AllUIDs(), store.FieldAll)
	if len(msgs) != 3 {
		t.Fatalf("renamed INBOX has %d messages, want 3", len(msgs))
	}
	for i, m := range msgs {
		if string(e.body(ss, old.ID, m.UID)) != string(testMessage(i+1)) || string(m.Structure) != string(testStructure(i+1)) {
			t.Errorf("message %d: content changed by INBOX rename", i)
		}
		if !m.InternalDate.Equal(testDate(i + 1)) {
			t.Errorf("message %d: internal date %v, want %v", i, m.InternalDate, testDate(i+1))
		}
	}
	if !msgs[0].Flags.Has(`\Seen`) {
		t.Errorf("flags lost in INBOX rename: %v", msgs[0].Flags)
	}
	cs, err := ss.Changes(e.ctx, in.ID, before.HighestModSeq)
	if err != nil || cs.Gone || !slices.Equal(cs.Expunged, uids) {
		t.Errorf("INBOX changes after rename: %+v, %v; want expunged %v", cs, err, uids)
	}
	if q := e.quota(ss); q.Messages != quota.Messages || q.Bytes != quota.Bytes {
		t.Errorf("quota use changed by rename: %+v, was %+v", q, quota)
	}
	// New deliveries to INBOX get UIDs above the old ones.
	if got := e.appendN(ss, in.ID, 4, 1); got[0] <= uids[2] {
		t.Errorf("UID after INBOX rename: %d, old ones went up to %d", got[0], uids[2])
	}
}

func testSubscriptions(t *testing.T, e *env) {
	_, ss := e.account("alice@example.org")
	base, err := ss.Subscriptions(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"Foo", "Not/There", "Foo", "inbox/x"} {
		if err := ss.SetSubscribed(e.ctx, n, true); err != nil {
			t.Fatalf("SetSubscribed(%s): %v", n, err)
		}
	}
	got, err := ss.Subscriptions(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := append(slices.Clone(base), "Foo", "Not/There", "INBOX/x")
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Subscriptions = %v, want %v", got, want)
	}
	if err := ss.SetSubscribed(e.ctx, "Foo", false); err != nil {
		t.Fatal(err)
	}
	if err := ss.SetSubscribed(e.ctx, "Never", false); err != nil {
		t.Errorf("unsubscribing a name not subscribed: %v", err)
	}
	got, _ = ss.Subscriptions(e.ctx)
	if slices.Contains(got, "Foo") || !slices.Contains(got, "Not/There") {
		t.Errorf("after unsubscribing Foo: %v", got)
	}
	if err := ss.SetSubscribed(e.ctx, "bad//name", true); !errors.Is(err, store.ErrInvalidName) {
		t.Errorf("subscribing an invalid name: %v", err)
	}
}
