package postgres

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/postgres/pgtest"
)

// Tests of what only a shared database brings: several nodes (Stores) on
// one database, and the database going away.

// nodes opens n Stores on one new database, closed when the test ends.
func nodes(t *testing.T, n int) []*Store {
	t.Helper()
	dsn := pgtest.Start(t)
	var out []*Store
	for range n {
		s := openTest(t, dsn)
		t.Cleanup(func() { s.Close() })
		out = append(out, s)
	}
	return out
}

// newAccount creates an account through s and opens a session on it.
func newAccount(t *testing.T, s *Store, name string) (store.Account, store.Session, store.Mailbox) {
	t.Helper()
	ctx := t.Context()
	a, err := s.CreateAccount(ctx, name, store.Credentials{PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	ss := openSession(t, s, a.ID)
	inbox, err := ss.Mailbox(ctx, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	return a, ss, inbox
}

func openSession(t *testing.T, s *Store, id int64) store.Session {
	t.Helper()
	ss, err := s.Open(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ss.Close() })
	return ss
}

func message(i int) *store.NewMessage {
	body := fmt.Appendf(nil, "From: a@example.org\r\nSubject: %d\r\n\r\n%s\r\n", i, bytes.Repeat([]byte("x"), i%50))
	return &store.NewMessage{Body: bytes.NewReader(body), Size: int64(len(body)), Structure: []byte{byte(i)}}
}

// waitFire waits for a Watcher to fire.
func waitFire(t *testing.T, w store.Watcher, what string) {
	t.Helper()
	select {
	case <-w.C():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: watcher did not fire", what)
	}
}

// TestWatchAcrossNodes: a change made on one node wakes Watchers on
// another, for each kind of change, and only the account's.
func TestWatchAcrossNodes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	ns := nodes(t, 2)
	a, ss, inbox := newAccount(t, ns[0], "alice@example.org")
	b, _, _ := newAccount(t, ns[0], "bob@example.org")
	w := ns[1].Watch(a.ID)
	defer w.Close()
	other := ns[1].Watch(b.ID)
	defer other.Close()

	changes := []struct {
		name string
		do   func() error
	}{
		{"append", func() error { _, err := ss.Append(ctx, inbox.ID, message(1)); return err }},
		{"store flags", func() error {
			_, err := ss.StoreFlags(ctx, inbox.ID, store.AllUIDs(), store.FlagsAdd, store.Flags{System: store.FlagSeen}, 0)
			return err
		}},
		{"expunge", func() error { _, err := ss.Expunge(ctx, inbox.ID, store.AllUIDs(), false); return err }},
		{"create mailbox", func() error { _, err := ss.CreateMailbox(ctx, "Work", ""); return err }},
		{"rename mailbox", func() error { return ss.RenameMailbox(ctx, "Work", "Play") }},
		{"delete mailbox", func() error { return ss.DeleteMailbox(ctx, "Play") }},
	}
	for _, c := range changes {
		if err := c.do(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		waitFire(t, w, c.name)
	}
	select {
	case <-other.C():
		t.Error("another account's watcher fired")
	case <-time.After(200 * time.Millisecond):
	}
}

// TestConcurrentAppendNodes appends from two nodes at once to one mailbox:
// UIDs are distinct and ascend with MODSEQs, the quota usage is exact,
// and the message limit lets exactly as many in as it allows.
func TestConcurrentAppendNodes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	ns := nodes(t, 2)
	a, _, inbox := newAccount(t, ns[0], "alice@example.org")
	const perWorker, workers, limit = 15, 6, 80 // 90 tries for 80 places
	if err := ns[0].SetQuota(ctx, a.Name, store.Quota{MaxMessages: limit}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var results []store.AppendResult
	var size int64
	var over int
	var wg sync.WaitGroup
	for w := range workers {
		ss := openSession(t, ns[w%2], a.ID)
		wg.Go(func() {
			for i := range perWorker {
				m := message(w*perWorker + i)
				res, err := ss.Append(ctx, inbox.ID, m)
				mu.Lock()
				switch {
				case err == nil:
					results = append(results, res)
					size += m.Size
				case errors.Is(err, store.ErrOverQuota):
					over++
				default:
					t.Errorf("append: %v", err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(results) != limit || over != workers*perWorker-limit {
		t.Fatalf("%d appended, %d over quota; want %d and %d", len(results), over, limit, workers*perWorker-limit)
	}
	slices.SortFunc(results, func(x, y store.AppendResult) int { return int(x.ModSeq) - int(y.ModSeq) })
	for i := 1; i < len(results); i++ {
		if results[i].ModSeq == results[i-1].ModSeq || results[i].UID <= results[i-1].UID {
			t.Fatalf("in MODSEQ order, %+v follows %+v: UIDs must ascend with MODSEQs", results[i], results[i-1])
		}
	}
	ss := openSession(t, ns[1], a.ID)
	qu, err := ss.QuotaUsage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if qu.Messages != limit || qu.Bytes != size {
		t.Errorf("usage %d messages, %d bytes; want %d, %d", qu.Messages, qu.Bytes, limit, size)
	}
	st, err := ss.Status(ctx, inbox.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Messages != limit || st.UIDNext != results[len(results)-1].UID+1 || st.HighestModSeq != results[len(results)-1].ModSeq {
		t.Errorf("status %+v after %d appends ending with %+v", st, limit, results[len(results)-1])
	}
}

// TestChangesNeverSkip reads Changes on one node while another appends:
// each catch-up from the last HighestModSeq sees every message, in order,
// so a client never misses MODSEQ N while seeing N+1 (RFC 7162).
func TestChangesNeverSkip(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	ns := nodes(t, 2)
	a, _, inbox := newAccount(t, ns[0], "alice@example.org")
	const n = 60
	var wg sync.WaitGroup
	for w := range 3 {
		ss := openSession(t, ns[0], a.ID)
		wg.Go(func() {
			for i := range n / 3 {
				if _, err := ss.Append(ctx, inbox.ID, message(w*n+i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	reader := openSession(t, ns[1], a.ID)
	var seen []store.UID
	var since store.ModSeq
	for deadline := time.Now().Add(30 * time.Second); len(seen) < n && time.Now().Before(deadline); {
		cs, err := reader.Changes(ctx, inbox.ID, since)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range cs.Added {
			if m.ModSeq <= since {
				t.Fatalf("message %d with MODSEQ %d reported after %d", m.UID, m.ModSeq, since)
			}
			seen = append(seen, m.UID)
		}
		since = cs.HighestModSeq
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("saw %d of %d messages", len(seen), n)
	}
	for i, u := range seen {
		if u != store.UID(i+1) {
			t.Fatalf("catch-ups saw UIDs %v: a gap or repeat at %d", seen, i)
		}
	}
}

// TestLockAcrossNodes: a lock holds against other nodes, and goes when its
// holder's connection dies as a crashed node's would.
func TestLockAcrossNodes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	ns := nodes(t, 2)
	a, _, _ := newAccount(t, ns[0], "alice@example.org")
	release, err := ns[0].Lock(ctx, a.ID, "pop3")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, err := ns[1].Lock(ctx, a.ID, "pop3"); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("Lock on the other node: %v, want ErrLocked", err)
	}
	if _, err := ns[0].Lock(ctx, a.ID, "pop3"); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("Lock again on the same node: %v, want ErrLocked", err)
	}
	other, err := ns[1].Lock(ctx, a.ID, "other")
	if err != nil {
		t.Fatalf("a lock of another name: %v", err)
	}
	other()

	// The holder's connection dies (its node crashed, say).
	ns[0].locks.mu.Lock()
	pid := ns[0].locks.conn.PgConn().PID()
	ns[0].locks.mu.Unlock()
	if _, err := ns[1].pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	var rel func()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if rel, err = ns[1].Lock(ctx, a.ID, "pop3"); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("Lock after the holder's connection died: %v", err)
	}
	// The old holder's release, late, must not release the new holder's
	// lock; nor may the old node take it.
	release()
	if _, err := ns[0].Lock(ctx, a.ID, "pop3"); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("Lock on the old node while the other holds it: %v, want ErrLocked", err)
	}
	rel()
	rel2, err := ns[0].Lock(ctx, a.ID, "pop3")
	if err != nil {
		t.Fatalf("Lock on the old node after release: %v", err)
	}
	rel2()
}

// TestMigrateConcurrently: nodes starting at once on a new database apply
// the schema once, and a database newer than the code is refused.
func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := pgtest.Start(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := Migrate(ctx, dsn); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v, rows int
	if err := conn.QueryRow(ctx, `SELECT max(version), count(*) FROM schema_version`).Scan(&v, &rows); err != nil {
		t.Fatal(err)
	}
	if v != SchemaVersion() || rows != 1 {
		t.Fatalf("schema_version: %d (%d rows), want %d", v, rows, SchemaVersion())
	}
	if _, err := conn.Exec(ctx, `UPDATE schema_version SET version = version + 1`); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, dsn); err == nil {
		t.Fatal("Migrate accepted a schema newer than the code")
	}
}

// TestDatabaseRestart stops the database in the middle of an append loop
// and starts it again: every append that returned nil is there afterwards,
// the failures meanwhile are store.ErrUnavailable, appends succeed again by
// themselves, and Watchers hear that they may have missed something.
func TestDatabaseRestart(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cluster, dsn := pgtest.NewCluster(t)
	s := openTest(t, dsn)
	defer s.Close()
	_, ss, inbox := newAccount(t, s, "alice@example.org")
	// Nothing changes in bob's mail, but his watcher must fire once the
	// notification connection is back: it may have missed something.
	bob, _, _ := newAccount(t, s, "bob@example.org")
	w := s.Watch(bob.ID)
	defer w.Close()

	var acked []store.UID
	var unavailable int
	stopped := make(chan struct{})
	restarted := make(chan struct{})
	go func() {
		time.Sleep(300 * time.Millisecond)
		cluster.Stop(t)
		close(stopped)
		time.Sleep(time.Second)
		cluster.Restart(t)
		close(restarted)
	}()
	var afterRestart int
	for i := 0; afterRestart < 20; i++ {
		if i > 100000 {
			t.Fatal("appends did not recover")
		}
		res, err := ss.Append(ctx, inbox.ID, message(i))
		switch {
		case err == nil:
			acked = append(acked, res.UID)
			select {
			case <-restarted:
				afterRestart++
			default:
			}
		case errors.Is(err, store.ErrUnavailable):
			unavailable++
			time.Sleep(10 * time.Millisecond)
		default:
			t.Fatalf("append %d during the outage: %v, want store.ErrUnavailable", i, err)
		}
	}
	<-stopped
	if unavailable == 0 {
		t.Error("no append failed while the database was down")
	}
	select {
	case <-w.C():
	case <-time.After(10 * time.Second):
		t.Error("watcher never fired after the restart")
	}

	var got []store.UID
	if err := ss.Messages(ctx, inbox.ID, store.AllUIDs(), 0, func(m *store.MessageInfo) error {
		got = append(got, m.UID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, u := range acked {
		if _, ok := slices.BinarySearch(got, u); !ok {
			t.Errorf("acknowledged message %d lost", u)
		}
	}
	t.Logf("%d appends acknowledged, %d unavailable, %d present", len(acked), unavailable, len(got))
	qu, err := ss.QuotaUsage(ctx)
	if err != nil || qu.Messages != int64(len(got)) {
		t.Errorf("usage counts %d messages, %d present (%v)", qu.Messages, len(got), err)
	}
}

// TestBodyChunks reads bodies across chunk boundaries, as IMAP partial
// FETCH does, and checks io.ReaderAt's contract at the end.
func TestBodyChunks(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	ns := nodes(t, 1)
	_, ss, inbox := newAccount(t, ns[0], "alice@example.org")
	for _, size := range []int{0, 1, chunkSize - 1, chunkSize, chunkSize + 1, 2*chunkSize + 12345} {
		body := fakeBody(size)
		res, err := ss.Append(ctx, inbox.ID, &store.NewMessage{Body: bytes.NewReader(body), Size: int64(size)})
		if err != nil {
			t.Fatalf("append %d bytes: %v", size, err)
		}
		b, err := ss.OpenBody(ctx, inbox.ID, res.UID)
		if err != nil {
			t.Fatal(err)
		}
		if b.Size() != int64(size) {
			t.Errorf("size %d, want %d", b.Size(), size)
		}
		all, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
		if err != nil || !bytes.Equal(all, body) {
			t.Errorf("%d bytes: whole read differs (%d bytes, %v)", size, len(all), err)
		}
		for _, tc := range []struct{ off, n int }{
			{0, 10}, {chunkSize - 5, 10}, {chunkSize, 3}, {size - 3, 3}, {size - 3, 10}, {size, 1}, {size + 5, 1},
		} {
			if tc.off < 0 || tc.n <= 0 {
				continue
			}
			p := make([]byte, tc.n)
			n, err := b.ReadAt(p, int64(tc.off))
			wantN := max(0, min(tc.n, size-tc.off))
			if n != wantN || (n < tc.n) != (err == io.EOF) || (err != nil && err != io.EOF) {
				t.Errorf("%d bytes: ReadAt(%d, off %d) = %d, %v; want %d", size, tc.n, tc.off, n, err, wantN)
				continue
			}
			if n > 0 && !bytes.Equal(p[:n], body[tc.off:tc.off+n]) {
				t.Errorf("%d bytes: ReadAt(%d, off %d) read the wrong bytes", size, tc.n, tc.off)
			}
		}
		b.Close()
	}
	// A body shorter than its stated size is refused, and leaves nothing.
	_, err := ss.Append(ctx, inbox.ID, &store.NewMessage{Body: bytes.NewReader([]byte("short")), Size: 100})
	if err == nil || store.IsTemporary(err) {
		t.Errorf("short body: %v, want a permanent error", err)
	}
	var bodies int
	if err := ns[0].pool.QueryRow(ctx, `SELECT count(*) FROM bodies`).Scan(&bodies); err != nil || bodies != 6 {
		t.Errorf("%d bodies stored for 6 messages (%v)", bodies, err)
	}
}

// TestDeletedAccount: a session whose account was deleted on another node
// gets store.ErrNoAccount or store.ErrNoMailbox, never a database error.
func TestDeletedAccount(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	ns := nodes(t, 2)
	a, ss, inbox := newAccount(t, ns[0], "alice@example.org")
	if err := ns[1].DeleteAccount(ctx, a.Name); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{10, 2 * chunkSize} {
		m := &store.NewMessage{Body: bytes.NewReader(fakeBody(size)), Size: int64(size)}
		if _, err := ss.Append(ctx, inbox.ID, m); !errors.Is(err, store.ErrNoAccount) && !errors.Is(err, store.ErrNoMailbox) {
			t.Errorf("append of %d bytes to a deleted account: %v", size, err)
		}
	}
	if _, err := ss.CreateMailbox(ctx, "X", ""); !errors.Is(err, store.ErrNoAccount) {
		t.Errorf("create mailbox in a deleted account: %v", err)
	}
}
