// Package storetest is the conformance suite every store backend passes
// (store/sqlite, store/postgres): one test per method and per invariant
// documented in package store, and benchmarks comparable across backends.
//
// A backend's test calls Run with a function that opens its store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { ... })
//	}
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

// Run runs the conformance suite, each test in parallel on its own storage.
//
// open returns a Store. The first call for a given t must return a Store on
// new, empty storage; it plays the server. Later calls with the same t
// must return another Store on the same storage, as another process (the
// `buzon deliver` command) or a restarted server would open it, whether or
// not the earlier ones are still open. The suite expects Watchers of the
// first Store to hear of changes made through the others. Run closes every
// Store it opens. The tests run in parallel, so open is called from many
// goroutines at once and must be safe for that.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"Accounts", testAccounts},
		{"DeleteAccount", testDeleteAccount},
		{"Aliases", testAliases},
		{"AliasRace", testAliasRace},
		{"StandardMailboxes", testStandardMailboxes},
		{"CreateMailbox", testCreateMailbox},
		{"DeleteMailbox", testDeleteMailbox},
		{"RenameMailbox", testRenameMailbox},
		{"RenameInbox", testRenameInbox},
		{"Subscriptions", testSubscriptions},
		{"Append", testAppend},
		{"AppendErrors", testAppendErrors},
		{"UIDsNeverReused", testUIDsNeverReused},
		{"ModSeq", testModSeq},
		{"Written", testWritten},
		{"StoreFlags", testStoreFlags},
		{"UnchangedSince", testUnchangedSince},
		{"Expunge", testExpunge},
		{"Copy", testCopy},
		{"CopyWhileFlagsChange", testCopyWhileFlagsChange},
		{"Move", testMove},
		{"Quota", testQuota},
		{"Changes", testChanges},
		{"ChangesFromEveryModSeq", testChangesFromEveryModSeq},
		{"Snapshot", testSnapshot},
		{"SnapshotsBetweenChanges", testSnapshotsBetweenChanges},
		{"Watch", testWatch},
		{"Lock", testLock},
		{"Retrieved", testRetrieved},
		{"SaveDate", testSaveDate},
		{"ExpireSaved", testExpireSaved},
		{"MessagesPaging", testMessagesPaging},
		{"ConcurrentAppend", testConcurrentAppend},
		{"Isolation", testIsolation},
		{"OpenBodies", testOpenBodies},
		{"Secrets", testSecrets},
		{"SieveScripts", testSieveScripts},
		{"SieveDeleteAccount", testSieveDeleteAccount},
		{"SieveActivateRace", testSieveActivateRace},
		{"SieveLimit", testSieveLimit},
		{"Replies", testReplies},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, open)
			tc.fn(t, e)
			e.check()
		})
	}
}

// check runs the backend's own consistency check, if it has one, after a
// test: whatever the test did must leave counters and files in order.
func (e *env) check() {
	e.t.Helper()
	c, ok := e.st.(*closingStore).Store.(store.Checker)
	if !ok || e.t.Failed() {
		return
	}
	rep, err := c.Check(e.ctx, false)
	if err != nil {
		e.t.Errorf("Check: %v", err)
	} else if !rep.OK(false) {
		e.t.Errorf("Check after the test:\n%s", rep)
	}
}

// env is one test's storage.
type env struct {
	t    *testing.T
	ctx  context.Context
	open func(*testing.T) store.Store
	st   store.Store // the first Store, or the one reopen returned
}

func newEnv(t *testing.T, open func(*testing.T) store.Store) *env {
	e := &env{t: t, ctx: t.Context(), open: open}
	e.st = e.another()
	return e
}

// another opens another Store on the same storage, closed when the test
// ends.
func (e *env) another() store.Store {
	e.t.Helper()
	st := e.open(e.t)
	var once sync.Once
	closeStore := func() {
		once.Do(func() {
			if err := st.Close(); err != nil {
				e.t.Errorf("close store: %v", err)
			}
		})
	}
	e.t.Cleanup(closeStore)
	return &closingStore{st, closeStore}
}

// reopen closes the main Store and opens the storage again.
func (e *env) reopen() {
	e.t.Helper()
	if err := e.st.Close(); err != nil {
		e.t.Fatalf("close store: %v", err)
	}
	e.st = e.another()
}

// closingStore makes Close idempotent, so tests may close early.
type closingStore struct {
	store.Store
	close func()
}

func (c *closingStore) Close() error {
	c.close()
	return nil
}

// account creates an account and opens a session on it, closed when the
// test ends.
func (e *env) account(name string) (store.Account, store.Session) {
	e.t.Helper()
	a, err := e.st.CreateAccount(e.ctx, name, store.Credentials{PasswordHash: "$test$" + name})
	if err != nil {
		e.t.Fatalf("CreateAccount(%q): %v", name, err)
	}
	return a, e.session(e.st, a.ID)
}

// session opens a session on st, closed when the test ends.
func (e *env) session(st store.Store, accountID int64) store.Session {
	e.t.Helper()
	ss, err := st.Open(e.ctx, accountID)
	if err != nil {
		e.t.Fatalf("Open(%d): %v", accountID, err)
	}
	e.t.Cleanup(func() { ss.Close() })
	return ss
}

// mailbox returns the mailbox named, creating it if needed.
func (e *env) mailbox(ss store.Session, name string) store.Mailbox {
	e.t.Helper()
	mb, err := ss.Mailbox(e.ctx, name)
	if errors.Is(err, store.ErrNoMailbox) {
		mb, err = ss.CreateMailbox(e.ctx, name, "")
	}
	if err != nil {
		e.t.Fatalf("mailbox %q: %v", name, err)
	}
	return mb
}

// testMessage returns message i of a test: a small RFC 5322 message with
// CRLF line endings, its length varying with i.
func testMessage(i int) []byte {
	return fmt.Appendf(nil, "From: sender@example.org\r\nTo: rcpt@example.com\r\n"+
		"Subject: test message %d\r\nMessage-ID: <%d@example.org>\r\n\r\n%s\r\n",
		i, i, bytes.Repeat([]byte("body line\r\n"), i%7+1))
}

// testStructure is what the test stores as message i's opaque structure;
// it includes bytes that are not text, to check they are kept exactly.
func testStructure(i int) []byte {
	return fmt.Appendf(nil, "\x00structure\xff%d\x01", i)
}

func newMessage(i int, flags store.Flags, date time.Time) *store.NewMessage {
	body := testMessage(i)
	return &store.NewMessage{
		Body:         bytes.NewReader(body),
		Size:         int64(len(body)),
		Structure:    testStructure(i),
		Flags:        flags,
		InternalDate: date,
	}
}

// testDate is message i's internal date: whole seconds, in a zone other
// than UTC.
func testDate(i int) time.Time {
	return time.Date(2024, 3, 5, 10, 11, 12, 0, time.FixedZone("", 2*3600)).Add(time.Duration(i) * time.Hour)
}

// appendN appends messages first, first+1, ... first+n-1 and returns their
// UIDs.
func (e *env) appendN(ss store.Session, mailboxID int64, first, n int) []store.UID {
	e.t.Helper()
	var uids []store.UID
	for i := first; i < first+n; i++ {
		res, err := ss.Append(e.ctx, mailboxID, newMessage(i, store.Flags{}, testDate(i)))
		if err != nil {
			e.t.Fatalf("Append(message %d): %v", i, err)
		}
		uids = append(uids, res.UID)
	}
	return uids
}

func (e *env) status(ss store.Session, mailboxID int64) store.MailboxStatus {
	e.t.Helper()
	st, err := ss.Status(e.ctx, mailboxID)
	if err != nil {
		e.t.Fatalf("Status(%d): %v", mailboxID, err)
	}
	return st
}

// messages lists a mailbox's messages with the fields asked for.
func (e *env) messages(ss store.Session, mailboxID int64, uids store.UIDSet, fields store.Field) []store.MessageInfo {
	e.t.Helper()
	var out []store.MessageInfo
	err := ss.Messages(e.ctx, mailboxID, uids, fields, func(m *store.MessageInfo) error {
		c := *m
		c.Structure = slices.Clone(m.Structure)
		c.Flags.Keywords = slices.Clone(m.Flags.Keywords)
		out = append(out, c)
		return nil
	})
	if err != nil {
		e.t.Fatalf("Messages(%d): %v", mailboxID, err)
	}
	return out
}

func uidsOf(ms []store.MessageInfo) []store.UID {
	var uids []store.UID
	for _, m := range ms {
		uids = append(uids, m.UID)
	}
	return uids
}

// body reads a message's body whole.
func (e *env) body(ss store.Session, mailboxID int64, uid store.UID) []byte {
	e.t.Helper()
	b, err := ss.OpenBody(e.ctx, mailboxID, uid)
	if err != nil {
		e.t.Fatalf("OpenBody(%d, %d): %v", mailboxID, uid, err)
	}
	defer b.Close()
	data, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()+1))
	if err != nil {
		e.t.Fatalf("read body %d: %v", uid, err)
	}
	if int64(len(data)) != b.Size() {
		e.t.Fatalf("body %d: read %d bytes, Size says %d", uid, len(data), b.Size())
	}
	return data
}

func (e *env) quota(ss store.Session) store.QuotaUsage {
	e.t.Helper()
	q, err := ss.QuotaUsage(e.ctx)
	if err != nil {
		e.t.Fatalf("QuotaUsage: %v", err)
	}
	return q
}

func (e *env) setFlags(ss store.Session, mailboxID int64, uids store.UIDSet, op store.FlagOp, names ...string) []store.FlagUpdate {
	e.t.Helper()
	f, err := store.ParseFlags(names)
	if err != nil {
		e.t.Fatal(err)
	}
	res, err := ss.StoreFlags(e.ctx, mailboxID, uids, op, f, 0)
	if err != nil || len(res.Failed) > 0 {
		e.t.Fatalf("StoreFlags(%v %v): failed %v, %v", uids, names, res.Failed, err)
	}
	return res.Updated
}

func mustErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got error %v, want %v", what, err, want)
	}
}

// waitFire waits for a watcher to fire.
func waitFire(t *testing.T, w store.Watcher, what string) {
	t.Helper()
	select {
	case <-w.C():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: watcher did not fire", what)
	}
}

// noFire checks that a watcher stays quiet for a while.
func noFire(t *testing.T, w store.Watcher, what string) {
	t.Helper()
	select {
	case <-w.C():
		t.Errorf("%s: watcher fired", what)
	case <-time.After(200 * time.Millisecond):
	}
}

func drain(w store.Watcher) {
	for {
		select {
		case <-w.C():
		default:
			return
		}
	}
}
