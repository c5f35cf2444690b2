package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/storetest"
)

// opener returns the storetest open function for a configuration: the
// first Store opened for a test listens, as the server does; later ones
// open the same folder as `buzon deliver` would.
func opener(cfg Config) func(t *testing.T) store.Store {
	var mu sync.Mutex
	dirs := map[*testing.T]string{}
	return func(t *testing.T) store.Store {
		mu.Lock()
		dir, again := dirs[t]
		if !again {
			dir = t.TempDir()
			dirs[t] = dir
		}
		mu.Unlock()
		c := cfg
		c.Dir, c.Listen = dir, !again
		if c.Logger == nil {
			// What the store works around in the suite is a bug.
			c.Logger = slog.New(slog.NewTextHandler(failWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
		}
		st, err := Open(c)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
}

// failWriter fails a test with every line written to it.
type failWriter struct{ t *testing.T }

func (w failWriter) Write(p []byte) (int, error) {
	w.t.Errorf("store log: %s", p)
	return len(p), nil
}

func TestConformance(t *testing.T) {
	storetest.Run(t, opener(Config{}))
}

// TestConformanceSmall runs the suite with group commit off, room for
// one open account database, so every operation reopens it, and no UID
// cache.
func TestConformanceSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("second run of the suite")
	}
	storetest.Run(t, opener(Config{MaxBatch: 1, MaxOpenAccounts: 1, ReadConns: 1, CachedUIDs: -1}))
}

// TestForgetting: with few expunges kept per mailbox, Changes and Snapshot
// stay right across those forgotten.
func TestForgetting(t *testing.T) {
	storetest.Forgetting(t, opener(Config{KeptExpunges: 2}), 2)
}

func openTest(t *testing.T, cfg Config) *Store {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	st, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newAccount(t *testing.T, st *Store, name string) (store.Account, store.Session, store.Mailbox) {
	t.Helper()
	ctx := t.Context()
	a, err := st.CreateAccount(ctx, name, store.Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	ss, err := st.Open(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ss.Close() })
	inbox, err := ss.Mailbox(ctx, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	return a, ss, inbox
}

func appendBody(t *testing.T, ss store.Session, mailboxID int64, body string) store.AppendResult {
	t.Helper()
	res, err := ss.Append(t.Context(), mailboxID, &store.NewMessage{
		Body: strings.NewReader(body), Size: int64(len(body)), Structure: []byte("s"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// files lists the regular files under dir, relative to it.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, path)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func bodyFiles(t *testing.T, st *Store, accountID int64) []string {
	t.Helper()
	var out []string
	for _, f := range files(t, st.accountDir(accountID)) {
		if strings.HasPrefix(f, msgDir+"/") || strings.HasPrefix(f, tmpDir+"/") {
			out = append(out, f)
		}
	}
	return out
}

func TestLayout(t *testing.T) {
	st := openTest(t, Config{})
	ctx := t.Context()
	acct, ss, _ := newAccount(t, st, "Alice.Secret@example.org")
	mb, err := ss.CreateMailbox(ctx, "../../Private Stuff", "")
	if err != nil {
		t.Fatal(err)
	}
	body := "Subject: layout\r\n\r\nhello\r\n"
	appendBody(t, ss, mb.ID, body)

	// Only IDs become names.
	all := files(t, st.dir)
	for _, f := range all {
		if strings.Contains(strings.ToLower(f), "alice") || strings.Contains(f, "Private") {
			t.Errorf("file %s is named after an account or mailbox", f)
		}
	}
	for _, want := range []string{"accounts.db", "store.lock", fmt.Sprintf("accounts/%d/mail.db", acct.ID)} {
		if !slices.Contains(all, want) {
			t.Errorf("no %s in %v", want, all)
		}
	}
	bodies := bodyFiles(t, st, acct.ID)
	if len(bodies) != 1 || !strings.HasPrefix(bodies[0], msgDir+"/") {
		t.Fatalf("body files: %v, want one in msg/", bodies)
	}
	data, err := os.ReadFile(filepath.Join(st.accountDir(acct.ID), bodies[0]))
	if err != nil || string(data) != body {
		t.Errorf("body file holds %q, %v", data, err)
	}
	if fi, err := os.Stat(filepath.Join(st.accountDir(acct.ID), bodies[0])); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("body file: mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	if _, err := os.Stat(filepath.Join(st.dir, notifySocket)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a Store that does not listen made %s: %v", notifySocket, err)
	}
	// The databases hold password hashes and headers: only the owner may
	// read them, whatever the umask, and so may their WAL files.
	for _, f := range all {
		if strings.HasSuffix(f, ".db") || strings.HasSuffix(f, ".db-wal") || strings.HasSuffix(f, ".db-shm") {
			if fi, err := os.Stat(filepath.Join(st.dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v, %v; want 0600", f, fi.Mode().Perm(), err)
			}
		}
	}

	// Durability settings, as every connection sees them.
	a, err := st.acquire(ctx, acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer st.release(a)
	for _, db := range []*sql.DB{st.adb, a.db} {
		var mode string
		var sync, fk int
		if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(`PRAGMA synchronous`).Scan(&sync); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || sync != 2 || fk != 1 {
			t.Errorf("journal_mode %s synchronous %d foreign_keys %d; want wal, 2 (FULL), 1", mode, sync, fk)
		}
	}

	// Deleting the account removes its folder.
	if err := st.DeleteAccount(ctx, acct.Name); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{st.accountDir(acct.ID), filepath.Join(st.dir, trashDir, fmt.Sprint(acct.ID))} {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after DeleteAccount: %v", d, err)
		}
	}
}

func TestCheck(t *testing.T) {
	st := openTest(t, Config{})
	ctx := t.Context()
	acct, ss, inbox := newAccount(t, st, "alice@example.org")
	var uids []store.UID
	for i := range 4 {
		uids = append(uids, appendBody(t, ss, inbox.ID, fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", i)).UID)
	}
	if _, err := ss.StoreFlags(ctx, inbox.ID, store.UIDSetOf(uids[0]), store.FlagsAdd, store.Flags{Keywords: []string{"$K"}}, 0); err != nil {
		t.Fatal(err)
	}
	rep, err := st.Check(ctx, false)
	if err != nil || !rep.OK(false) || rep.Accounts != 1 || rep.Messages != 4 {
		t.Fatalf("Check of a sound store: %v, %v", rep, err)
	}

	// Break things the ways a crash, a bug or a person could.
	dir := st.accountDir(acct.ID)
	orphan := filepath.Join(dir, msgDir, "2a", "1234562a")
	os.MkdirAll(filepath.Dir(orphan), 0o700)
	os.WriteFile(orphan, []byte("orphan"), 0o600)
	tmp := filepath.Join(dir, tmpDir, "abc") // left by an earlier version
	os.MkdirAll(filepath.Dir(tmp), 0o700)
	os.WriteFile(tmp, []byte("half a message"), 0o600)
	os.MkdirAll(filepath.Join(st.dir, accountsDir, "9999", msgDir), 0o700)
	os.MkdirAll(filepath.Join(st.dir, trashDir, "77"), 0o700)
	a, err := st.acquire(ctx, acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	var lost int64
	if err := a.db.QueryRow(`SELECT file FROM message WHERE uid = ?`, uids[1]).Scan(&lost); err != nil {
		t.Fatal(err)
	}
	os.Remove(st.bodyPath(a, lost))
	var wrongSize int64
	if err := a.db.QueryRow(`SELECT file FROM message WHERE uid = ?`, uids[2]).Scan(&wrongSize); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(st.bodyPath(a, wrongSize), []byte("truncated"), 0o600)
	for _, q := range []string{
		`UPDATE mailbox SET messages = 99, unseen = 0, uidnext = 2 WHERE name = 'INBOX'`,
		`UPDATE meta SET bytes = 5, modseq = 1`,
		`UPDATE keyword SET count = 7`,
		`UPDATE mailbox SET tombstones = 3 WHERE name = 'Trash'`,
	} {
		if _, err := a.db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	// A body another goroutine is writing is not an orphan.
	inflight, _, err := st.writeBody(a, strings.NewReader("in flight"), 9)
	if err != nil {
		t.Fatal(err)
	}
	st.release(a)

	rep, err = st.Check(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("found:\n%s", rep)
	// Mailboxes are named as a person knows them, not by their number.
	for _, want := range []string{"1234562a", tmpDir + "/abc", "accounts/9999", "trash/77",
		fmt.Sprintf(`mailbox "INBOX" uid %d: body file %s is missing`, uids[1], fileName(lost)),
		fmt.Sprintf(`mailbox "INBOX" uid %d: body file has 9 bytes`, uids[2]),
		"counters", "account counters", `mailbox "INBOX" keyword "$K"`, `"Trash": counters`} {
		if !slices.ContainsFunc(rep.Problems, func(p store.CheckProblem) bool { return strings.Contains(p.What, want) }) {
			t.Errorf("Check did not report %q", want)
		}
	}
	for _, p := range rep.Problems {
		if p.Repaired {
			t.Errorf("Check without repair repaired %s", p)
		}
		if strings.Contains(p.What, fileName(inflight)) {
			t.Errorf("Check reports the body in flight: %s", p)
		}
	}
	if _, err := os.Stat(orphan); err != nil {
		t.Errorf("Check without repair removed an orphan: %v", err)
	}

	rep, err = st.Check(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("repaired:\n%s", rep)
	if rep.OK(true) {
		t.Error("a lost body cannot be repaired, yet the report is OK")
	}
	for _, p := range rep.Problems {
		lostBody := strings.Contains(p.What, "is missing") || strings.Contains(p.What, "has 9 bytes")
		if p.Repaired == lostBody {
			t.Errorf("repaired %v: %s", p.Repaired, p)
		}
	}
	for _, gone := range []string{orphan, tmp, filepath.Join(st.dir, accountsDir, "9999"), filepath.Join(st.dir, trashDir, "77")} {
		if _, err := os.Stat(gone); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after repair: %v", gone, err)
		}
	}
	st.dropInflight(acct.ID, inflight)
	os.Remove(st.bodyPath(a, inflight))

	// What is left is only what could not be repaired.
	rep, err = st.Check(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 2 {
		t.Errorf("after repair:\n%s", rep)
	}
	status, err := ss.Status(ctx, inbox.ID)
	if err != nil || status.Messages != 4 || status.UIDNext != 5 || !slices.Equal(status.Keywords, []string{"$K"}) {
		t.Errorf("status after repair: %+v, %v", status, err)
	}
	if res := appendBody(t, ss, inbox.ID, "Subject: after\r\n\r\n"); res.UID != 5 {
		t.Errorf("UID after repair = %d, want 5", res.UID)
	}
}

// TestCheckGrace checks that while another process has the store open,
// Check leaves young files alone: they may be bodies about to be
// committed.
func TestCheckGrace(t *testing.T) {
	st := openTest(t, Config{})
	ctx := t.Context()
	acct, _, _ := newAccount(t, st, "alice@example.org")
	tmp := filepath.Join(st.accountDir(acct.ID), msgDir, "2a", "1234562a")
	os.MkdirAll(filepath.Dir(tmp), 0o700)
	os.WriteFile(tmp, []byte("being written"), 0o600)

	other := openTest(t, Config{Dir: st.dir})
	rep, err := st.Check(ctx, true)
	if err != nil || len(rep.Problems) != 0 {
		t.Errorf("Check with another Store open reports a young file: %v, %v", rep, err)
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Errorf("young file removed: %v", err)
	}
	other.Close()
	rep, err = st.Check(ctx, true)
	if err != nil || len(rep.Problems) != 1 || !rep.Problems[0].Repaired {
		t.Errorf("Check alone: %v, %v", rep, err)
	}
	// The shared lock came back: another Store can open and Check again.
	openTest(t, Config{Dir: st.dir})
	if _, err := st.Check(ctx, false); err != nil {
		t.Error(err)
	}
}

// failingFile fails like a full disk: a write after some bytes, or the
// sync.
type failingFile struct {
	f         *os.File
	left      int
	err       error
	failWrite bool
}

func (f *failingFile) Write(p []byte) (int, error) {
	if f.failWrite && len(p) > f.left {
		n, _ := f.f.Write(p[:f.left])
		f.left = 0
		return n, &os.PathError{Op: "write", Path: f.f.Name(), Err: f.err}
	}
	f.left -= len(p)
	return f.f.Write(p)
}

func (f *failingFile) Sync() error {
	if !f.failWrite {
		return &os.PathError{Op: "fsync", Path: f.f.Name(), Err: f.err}
	}
	return f.f.Sync()
}

func (f *failingFile) Close() error { return f.f.Close() }

func TestStorageFull(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		failWrite bool
	}{
		{"ENOSPC on write", syscall.ENOSPC, true},
		{"EDQUOT on sync", syscall.EDQUOT, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := openTest(t, Config{})
			ctx := t.Context()
			acct, ss, inbox := newAccount(t, st, "alice@example.org")
			appendBody(t, ss, inbox.ID, "Subject: before\r\n\r\n")
			status, _ := ss.Status(ctx, inbox.ID)
			usage, _ := ss.QuotaUsage(ctx)

			create := st.createBody
			st.createBody = func(path string) (bodyWriter, error) {
				f, err := create(path)
				if err != nil {
					return nil, err
				}
				return &failingFile{f: f.(*os.File), left: 10, err: tc.err, failWrite: tc.failWrite}, nil
			}
			body := strings.Repeat("x", 1000)
			_, err := ss.Append(ctx, inbox.ID, &store.NewMessage{Body: strings.NewReader(body), Size: int64(len(body))})
			if !errors.Is(err, store.ErrStorageFull) || !store.IsTemporary(err) || !errors.Is(err, tc.err) {
				t.Errorf("Append on a full disk: %v; want ErrStorageFull wrapping %v", err, tc.err)
			}
			if got, _ := ss.Status(ctx, inbox.ID); got.Messages != status.Messages || got.UIDNext != status.UIDNext {
				t.Errorf("failed append changed the mailbox: %+v, was %+v", got, status)
			}
			if got, _ := ss.QuotaUsage(ctx); got != usage {
				t.Errorf("failed append changed quota use: %+v, was %+v", got, usage)
			}
			if got := bodyFiles(t, st, acct.ID); len(got) != 1 {
				t.Errorf("files after a failed append: %v, want only the first body", got)
			}
			st.createBody = create
			appendBody(t, ss, inbox.ID, "Subject: after\r\n\r\n")
		})
	}
}

// TestEviction works with more accounts than open databases allowed, from
// many goroutines, with a Messages iteration running across evictions.
func TestEviction(t *testing.T) {
	st := openTest(t, Config{MaxOpenAccounts: 2})
	ctx := t.Context()
	const n = 6
	sessions := make([]store.Session, n)
	inboxes := make([]store.Mailbox, n)
	for i := range n {
		_, sessions[i], inboxes[i] = newAccount(t, st, fmt.Sprintf("user%d@example.org", i))
	}
	for i := range 10 {
		appendBody(t, sessions[0], inboxes[0].ID, fmt.Sprintf("Subject: %d\r\n\r\n", i))
	}
	for range 7 { // 10 -> 1280 messages
		if _, err := sessions[0].Copy(ctx, inboxes[0].ID, store.AllUIDs(), inboxes[0].ID); err != nil {
			t.Fatal(err)
		}
	}

	openHandles := func() int {
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.lru.Len()
	}
	// While account 0's messages are listed, the others evict its
	// database again and again.
	count := 0
	err := sessions[0].Messages(ctx, inboxes[0].ID, store.AllUIDs(), store.FieldSize, func(m *store.MessageInfo) error {
		count++
		if count%300 == 0 {
			for i := 1; i < n; i++ {
				appendBody(t, sessions[i], inboxes[i].ID, "Subject: evict\r\n\r\n")
			}
		}
		return nil
	})
	if err != nil || count != 1280 {
		t.Errorf("Messages across evictions: %d messages, %v", count, err)
	}
	if h := openHandles(); h > 2 {
		t.Errorf("%d account databases open, limit 2", h)
	}

	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ss, err := st.Open(ctx, sessions[i].AccountID())
			if err != nil {
				t.Error(err)
				return
			}
			defer ss.Close()
			for j := range 20 {
				if _, err := ss.Append(ctx, inboxes[i].ID, &store.NewMessage{Body: strings.NewReader("x"), Size: 1}); err != nil {
					t.Errorf("account %d append %d: %v", i, j, err)
				}
				if _, err := ss.Status(ctx, inboxes[i].ID); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if h := openHandles(); h > 2 {
		t.Errorf("%d account databases open when idle, limit 2", h)
	}
	for i := range n {
		want := uint32(20 + 4)
		if i == 0 {
			want = 1280 + 20
		}
		if s, err := sessions[i].Status(ctx, inboxes[i].ID); err != nil || s.Messages != want {
			t.Errorf("account %d: %+v, %v; want %d messages", i, s, err, want)
		}
	}
	rep, err := st.Check(ctx, false)
	if err != nil || !rep.OK(false) {
		t.Errorf("Check after eviction churn: %v, %v", rep, err)
	}
}

func TestMailboxLimit(t *testing.T) {
	st := openTest(t, Config{MaxMailboxes: 8})
	_, ss, _ := newAccount(t, st, "alice@example.org") // 6 standard mailboxes
	for _, name := range []string{"a", "b"} {
		if _, err := ss.CreateMailbox(t.Context(), name, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ss.CreateMailbox(t.Context(), "c", ""); !errors.Is(err, store.ErrLimit) {
		t.Errorf("ninth mailbox: %v, want ErrLimit", err)
	}
}

func TestNotifySocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, notifySocket)
	// Left behind by a process that died.
	os.WriteFile(sock, nil, 0o600)
	st := openTest(t, Config{Dir: dir, Listen: true})
	if fi, err := os.Stat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("%s is not a socket: %v", sock, err)
	}
	if _, err := Open(Config{Dir: dir, Listen: true}); !errors.Is(err, ErrServed) {
		t.Errorf("a second listening Store on the same folder: %v, want ErrServed", err)
	}
	other := openTest(t, Config{Dir: dir})
	acct, err := st.CreateAccount(t.Context(), "alice@example.org", store.Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	w := st.Watch(acct.ID)
	defer w.Close()
	ss, err := other.Open(t.Context(), acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	if err := ss.SetSubscribed(t.Context(), "x", true); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.C():
	case <-time.After(10 * time.Second):
		t.Fatal("no notification from the other Store")
	}
	st.Close()
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after Close: %v", err)
	}
	// Without a listener, writes go on.
	if err := ss.SetSubscribed(t.Context(), "y", true); err != nil {
		t.Error(err)
	}
}

// TestCrossProcessWriters has two Stores write to one account at once, as
// the server and `buzon deliver` do: SQLite's locking, not the in-process
// write token, keeps them apart.
func TestCrossProcessWriters(t *testing.T) {
	st := openTest(t, Config{})
	other := openTest(t, Config{Dir: st.dir})
	acct, _, inbox := newAccount(t, st, "alice@example.org")
	var wg sync.WaitGroup
	var mu sync.Mutex
	var uids []store.UID
	for _, s := range []*Store{st, other, st, other} {
		ss, err := s.Open(t.Context(), acct.ID)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer ss.Close()
			for range 25 {
				res, err := ss.Append(context.Background(), inbox.ID, &store.NewMessage{Body: strings.NewReader("ab"), Size: 2})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				uids = append(uids, res.UID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(uids)
	if len(slices.Compact(uids)) != 100 {
		t.Errorf("%d distinct UIDs from 100 appends", len(uids))
	}
	rep, err := st.Check(t.Context(), false)
	if err != nil || !rep.OK(false) {
		t.Errorf("Check: %v, %v", rep, err)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(Config{}); err == nil {
		t.Error("Open without a folder succeeded")
	}
	if _, err := Open(Config{Dir: t.TempDir() + "/what?"}); err == nil {
		t.Error("Open of a folder with '?' in its name succeeded")
	}
	st := openTest(t, Config{})
	if _, err := st.Open(t.Context(), 42); !errors.Is(err, store.ErrNoAccount) {
		t.Errorf("Open of a missing account: %v", err)
	}
	if _, err := os.Stat(st.accountDir(42)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a folder was made for a missing account: %v", err)
	}
	if _, err := st.Lock(t.Context(), 42, "pop3"); !errors.Is(err, store.ErrNoAccount) {
		t.Errorf("Lock of a missing account: %v", err)
	}
	acct, _, _ := newAccount(t, st, "alice@example.org")
	if _, err := st.Lock(t.Context(), acct.ID, "../x"); !errors.Is(err, store.ErrInvalidName) {
		t.Errorf("Lock with a path as its name: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Error(err)
	}
	if err := st.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestBodyReadableAfterExpunge(t *testing.T) {
	st := openTest(t, Config{})
	_, ss, inbox := newAccount(t, st, "alice@example.org")
	res := appendBody(t, ss, inbox.ID, "Subject: x\r\n\r\nstill here\r\n")
	b, err := ss.OpenBody(t.Context(), inbox.ID, res.UID)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := ss.Expunge(t.Context(), inbox.ID, store.AllUIDs(), false); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, b.Size())
	if _, err := b.ReadAt(buf, 0); err != nil || !bytes.Contains(buf, []byte("still here")) {
		t.Errorf("body open before expunge: %q, %v", buf, err)
	}
}

func benchStore(b *testing.B, cfg Config) *Store {
	cfg.Dir = b.TempDir()
	st, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

func BenchmarkAppend(b *testing.B) {
	storetest.BenchAppend(b, benchStore(b, Config{}))
}

// BenchmarkAppendParallel compares group commit off (batch=1) and on.
func BenchmarkAppendParallel(b *testing.B) {
	for _, batch := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			st := benchStore(b, Config{MaxBatch: batch})
			storetest.BenchAppendParallel(b, st)
			b.ReportMetric(float64(st.writes.Load())/float64(st.commits.Load()), "writes/commit")
		})
	}
}

func BenchmarkStoreFlags(b *testing.B) {
	storetest.BenchStoreFlags(b, benchStore(b, Config{}))
}

// BenchmarkStoreFlagsParallel compares group commit off and on for
// writes without a body.
func BenchmarkStoreFlagsParallel(b *testing.B) {
	for _, batch := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			st := benchStore(b, Config{MaxBatch: batch})
			storetest.BenchStoreFlagsParallel(b, st)
			b.ReportMetric(float64(st.writes.Load())/float64(st.commits.Load()), "writes/commit")
		})
	}
}

func BenchmarkMessages100k(b *testing.B) {
	storetest.BenchMessages(b, benchStore(b, Config{}), 100000)
}

func BenchmarkChanges(b *testing.B) {
	storetest.BenchChanges(b, benchStore(b, Config{}))
}

func BenchmarkSnapshot100k(b *testing.B) {
	storetest.BenchSnapshot(b, benchStore(b, Config{}), 100000, false)
}

func BenchmarkSnapshot100kChanged(b *testing.B) {
	storetest.BenchSnapshot(b, benchStore(b, Config{}), 100000, true)
}

// BenchmarkSnapshot100kUncached reads every UID each time, as the first
// SELECT of a mailbox does.
func BenchmarkSnapshot100kUncached(b *testing.B) {
	storetest.BenchSnapshot(b, benchStore(b, Config{CachedUIDs: -1}), 100000, false)
}

// TestCloseWhileBusy closes the Store under running operations, which the
// contract forbids but a hurried shutdown does: they fail, nothing panics.
func TestCloseWhileBusy(t *testing.T) {
	st := openTest(t, Config{})
	acct, ss, inbox := newAccount(t, st, "alice@example.org")
	var wg sync.WaitGroup
	for range 4 {
		ss, err := st.Open(t.Context(), acct.ID)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer ss.Close()
			for range 50 {
				if _, err := ss.Status(context.Background(), inbox.ID); err != nil {
					return
				}
			}
		})
	}
	time.Sleep(5 * time.Millisecond)
	if err := st.Close(); err != nil {
		t.Error(err)
	}
	wg.Wait()
	if _, err := ss.Status(context.Background(), inbox.ID); err == nil {
		t.Error("Status after Close succeeded")
	}
}

func TestParseUIDList(t *testing.T) {
	for _, tc := range []struct {
		list string
		want []store.UID
		bad  bool
	}{
		{"", nil, false},
		{"7", []store.UID{7}, false},
		{"1,2,40,4294967295", []store.UID{1, 2, 40, 4294967295}, false},
		{"5,3,9", []store.UID{3, 5, 9}, false}, // out of order: sorted
		{"1,,2", nil, true},
		{"1,x", nil, true},
		{"0", nil, true},
		{"4294967296", nil, true},
	} {
		got, err := parseUIDList([]byte(tc.list), 0)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: no error, got %v", tc.list, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%q: got %v, %v; want %v", tc.list, got, err, tc.want)
		}
	}
}

// TestUIDCacheForgetsGoneMailboxes: the cached UID list of a deleted
// mailbox goes with it; a renamed one's stays, under the same ID.
func TestUIDCacheForgetsGoneMailboxes(t *testing.T) {
	ctx := t.Context()
	st := openTest(t, Config{})
	_, ss, _ := newAccount(t, st, "alice@example.org")
	ids := map[string]int64{}
	for _, name := range []string{"Gone", "Renamed"} {
		mb, err := ss.CreateMailbox(ctx, name, "")
		if err != nil {
			t.Fatal(err)
		}
		appendBody(t, ss, mb.ID, "Subject: x\r\n\r\nbody\r\n")
		if _, err := ss.Snapshot(ctx, mb.ID); err != nil {
			t.Fatal(err)
		}
		if st.uids.Get(mb.ID) == nil {
			t.Fatalf("no cached UIDs for %s after a Snapshot", name)
		}
		ids[name] = mb.ID
	}
	if err := ss.DeleteMailbox(ctx, "Gone"); err != nil {
		t.Fatal(err)
	}
	if err := ss.RenameMailbox(ctx, "Renamed", "Elsewhere"); err != nil {
		t.Fatal(err)
	}
	if st.uids.Get(ids["Gone"]) != nil {
		t.Error("the mailbox is gone, its UIDs are still cached")
	}
	if st.uids.Get(ids["Renamed"]) == nil {
		t.Error("the renamed mailbox lost its cached UIDs")
	}
}

// TestTombstoneCountTooHigh: a mailbox whose count of tombstones says
// more than it has does not fail its expunges, whether it has fewer
// tombstones than it keeps or more; the count is set right.
func TestTombstoneCountTooHigh(t *testing.T) {
	for _, expunged := range []int{1, 4} {
		t.Run(fmt.Sprint(expunged), func(t *testing.T) {
			ctx := t.Context()
			st := openTest(t, Config{KeptExpunges: 2})
			acct, ss, inbox := newAccount(t, st, "alice@example.org")
			for range expunged + 1 {
				appendBody(t, ss, inbox.ID, "Subject: x\r\n\r\nbody\r\n")
			}
			for uid := range expunged {
				if _, err := ss.Expunge(ctx, inbox.ID, store.UIDSetOf(store.UID(uid+1)), false); err != nil {
					t.Fatal(err)
				}
			}
			a, err := st.acquire(ctx, acct.ID)
			if err != nil {
				t.Fatal(err)
			}
			defer st.release(a)
			if _, err := a.db.ExecContext(ctx, `UPDATE mailbox SET tombstones = 100 WHERE id = ?`, inbox.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := ss.Expunge(ctx, inbox.ID, store.UIDSetOf(store.UID(expunged+1)), false); err != nil {
				t.Fatalf("Expunge with the count of tombstones too high: %v", err)
			}
			var kept, rows int
			err = a.db.QueryRowContext(ctx, `SELECT tombstones, (SELECT count(*) FROM tombstone WHERE mailbox = ?1)
				FROM mailbox WHERE id = ?1`, inbox.ID).Scan(&kept, &rows)
			if err != nil || kept != rows {
				t.Errorf("after the expunge: counted %d tombstones, there are %d (%v)", kept, rows, err)
			}
		})
	}
}
