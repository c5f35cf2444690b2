package pop3server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/pop3client"
	"github.com/buzon-mail/buzon/internal/pop3server"
	"github.com/buzon-mail/buzon/internal/pop3server/pop3test"
	"github.com/buzon-mail/buzon/internal/store"
)

// login connects to env's plain listener and logs in.
func login(t *testing.T, env *pop3test.Env, account string) *pop3client.Client {
	t.Helper()
	c, err := pop3client.Dial(context.Background(), env.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.User(account, pop3test.Password); err != nil {
		t.Fatal(err)
	}
	return c
}

// bigMessage is a message of about size bytes with lines of many lengths
// (below 200 bytes), lines starting with dots, 8-bit bytes and, with
// longLine, one line of 100 KB.
func bigMessage(size int, longLine bool) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	// Lines are cut from a pool of printable and 8-bit bytes without
	// line breaks.
	pool := make([]byte, 8192)
	for i := range pool {
		pool[i] = byte(' ' + rng.IntN(95))
		if rng.IntN(50) == 0 {
			pool[i] = byte(0x80 + rng.IntN(128))
		}
	}
	b := bytes.NewBuffer(make([]byte, 0, size+1024))
	b.WriteString("From: bob@example.org\r\nSubject: big\r\n\r\n")
	for i := 0; b.Len() < size; i++ {
		switch {
		case i%97 == 0:
			b.WriteString(".")
		case i%101 == 0:
			b.WriteString("..")
		case i == 5000 && longLine:
			b.WriteString(strings.Repeat(".long line", 10_000))
		}
		start := rng.IntN(len(pool) - 200)
		b.Write(pool[start : start+rng.IntN(120)])
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

func TestRetrBigMessage(t *testing.T) {
	t.Parallel()
	st := &faultStore{Store: openStore(t, t.TempDir())}
	env := pop3test.Start(t, st, pop3test.Options{})
	body := bigMessage(20<<20, true)
	env.Append(t, alice, body, store.Flags{})

	c := login(t, env, alice)
	if size, err := c.ListOne(1); err != nil || size != int64(len(body)) {
		t.Fatalf("LIST 1 = %d, %v; want %d", size, err, len(body))
	}
	h := sha256.New()
	n, err := c.Retr(1, h)
	if err != nil {
		t.Fatal(err)
	}
	if want := sha256.Sum256(body); n != int64(len(body)) || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Errorf("RETR gave %d bytes that differ from the %d stored", n, len(body))
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	// The body is read in pieces, never whole.
	if m := st.maxRead.Load(); m == 0 || m > 1<<20 {
		t.Errorf("largest read of the body = %d bytes; want pieces of at most 1 MiB", m)
	}
}

func TestDisconnectMidRetr(t *testing.T) {
	t.Parallel()
	env := pop3test.Start(t, openStore(t, t.TempDir()), pop3test.Options{})
	body := bigMessage(20<<20, true)
	uid := env.Append(t, alice, body, store.Flags{}).UID
	uid2 := env.Append(t, alice, []byte(msgHello), store.Flags{}).UID

	conn := loggedIn(t, env, "DELE 2", "RETR 1")
	r := bufio.NewReader(conn)
	for _, want := range []string{"+OK", "+OK", "+OK", "+OK", "+OK"} {
		line, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, want) {
			t.Fatalf("got %q, %v; want %s", line, err, want)
		}
	}
	if _, err := io.CopyN(io.Discard, r, 100_000); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	env.Stop() // waits for the session to end

	inbox := env.Inbox(t, alice)
	if len(inbox) != 2 || inbox[0].UID != uid || inbox[1].UID != uid2 {
		t.Fatalf("INBOX after the broken session = %+v; want both messages", inbox)
	}
	if inbox[0].Flags.System&store.FlagSeen != 0 || !inbox[0].Retrieved.IsZero() {
		t.Errorf("half-sent message recorded as retrieved: %+v", inbox[0])
	}
	release, err := env.Store.Lock(context.Background(), env.Accounts[alice].ID, "pop3")
	if err != nil {
		t.Fatalf("maildrop still locked after the session: %v", err)
	}
	release()
}

func TestRetrievalRecorded(t *testing.T) {
	t.Parallel()
	env := pop3test.Start(t, openStore(t, t.TempDir()), pop3test.Options{})
	for _, m := range fixtureAll[:3] {
		env.Append(t, alice, []byte(m), store.Flags{})
	}
	first := env.Clock.Now()

	c := login(t, env, alice)
	if _, err := c.Retr(1, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Top(2, 1, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}

	env.Clock.Advance(time.Hour)
	c = login(t, env, alice)
	for _, n := range []int{1, 3} {
		if _, err := c.Retr(n, io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}

	inbox := env.Inbox(t, alice)
	for i, want := range []time.Time{first, {}, first.Add(time.Hour)} {
		m := inbox[i]
		if seen := m.Flags.System&store.FlagSeen != 0; seen != !want.IsZero() || !m.Retrieved.Equal(want) {
			t.Errorf("message %d: seen %v, retrieved %v; want retrieved %v", i+1, seen, m.Retrieved, want)
		}
	}
}

// TestRetrievalRecordedWhenClientPauses: a client that downloads and then
// stops to read, with the session still open, has its retrievals recorded
// all the same, so other devices see the messages read. The store's change
// feed says when; the wait is bounded only to fail rather than hang.
func TestRetrievalRecordedWhenClientPauses(t *testing.T) {
	t.Parallel()
	env := pop3test.Start(t, openStore(t, t.TempDir()), pop3test.Options{})
	for _, m := range fixtureAll[:3] {
		env.Append(t, alice, []byte(m), store.Flags{})
	}
	w := env.Store.Watch(env.Accounts[alice].ID)
	defer w.Close()
	c := login(t, env, alice)
	for _, n := range []int{1, 2} {
		if _, err := c.Retr(n, io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	seen := func() int {
		n := 0
		for _, m := range env.Inbox(t, alice) {
			if m.Flags.System&store.FlagSeen != 0 {
				n++
			}
		}
		return n
	}
	giveUp := time.After(30 * time.Second)
	for seen() < 2 {
		select {
		case <-w.C():
		case <-giveUp:
			t.Fatalf("%d of the 2 retrieved messages are \\Seen while the session is open", seen())
		}
	}
	if n := seen(); n != 2 {
		t.Errorf("%d messages \\Seen, want the 2 retrieved", n)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}

// TestRetrievalRecordedWithoutQuit: retrievals are recorded when the
// session ends, also when the client drops the connection instead of
// sending QUIT, and a message marked deleted then is not removed but
// recorded too. Messages deleted at QUIT are expunged, not recorded.
func TestRetrievalRecordedWithoutQuit(t *testing.T) {
	t.Parallel()
	env := pop3test.Start(t, openStore(t, t.TempDir()), pop3test.Options{})
	for _, m := range fixtureAll[:3] {
		env.Append(t, alice, []byte(m), store.Flags{})
	}
	c := login(t, env, alice)
	for _, n := range []int{1, 2} {
		if _, err := c.Retr(n, io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Dele(2); err != nil {
		t.Fatal(err)
	}
	c.Close()
	env.Stop() // waits for the session to end

	inbox := env.Inbox(t, alice)
	if len(inbox) != 3 {
		t.Fatalf("INBOX after a session without QUIT holds %d messages, want 3", len(inbox))
	}
	for i, want := range []bool{true, true, false} {
		m := inbox[i]
		if seen := m.Flags.System&store.FlagSeen != 0; seen != want || m.Retrieved.IsZero() == want {
			t.Errorf("message %d: seen %v, retrieved %v; want retrieved %v", i+1, seen, m.Retrieved, want)
		}
	}
}

func TestExpire(t *testing.T) {
	t.Parallel()
	env := pop3test.Start(t, openStore(t, t.TempDir()), pop3test.Options{
		Config: func(c *pop3server.Config) { c.POP3.ExpireDays = 3 },
	})
	var uids []store.UID
	for _, m := range fixtureAll[:3] {
		uids = append(uids, env.Append(t, alice, []byte(m), store.Flags{}).UID)
	}
	bobUID := env.Append(t, bob, []byte(msgHello), store.Flags{}).UID
	for _, acct := range []string{alice, bob} {
		c := login(t, env, acct)
		if _, err := c.Retr(1, io.Discard); err != nil {
			t.Fatal(err)
		}
		if acct == alice {
			if _, err := c.Retr(2, io.Discard); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Quit(); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	inboxUIDs := func(acct string) []store.UID {
		var out []store.UID
		for _, m := range env.Inbox(t, acct) {
			out = append(out, m.UID)
		}
		return out
	}

	env.Clock.Advance(3*24*time.Hour - time.Minute)
	if n, err := env.Server.Expire(ctx); n != 0 || err != nil {
		t.Fatalf("Expire before expire_days = %d, %v; want nothing", n, err)
	}

	// bob is logged in: his maildrop is left alone.
	busy := login(t, env, bob)
	env.Clock.Advance(2 * time.Minute)
	if n, err := env.Server.Expire(ctx); n != 2 || err != nil {
		t.Fatalf("Expire = %d, %v; want alice's 2 retrieved messages", n, err)
	}
	if got := inboxUIDs(alice); fmt.Sprint(got) != fmt.Sprint(uids[2:]) {
		t.Errorf("alice's INBOX after Expire = %v; want %v", got, uids[2:])
	}
	if got := inboxUIDs(bob); fmt.Sprint(got) != fmt.Sprint([]store.UID{bobUID}) {
		t.Errorf("bob's INBOX while he is logged in = %v; want %v", got, bobUID)
	}
	if err := busy.Quit(); err != nil {
		t.Fatal(err)
	}
	env.Stop() // bob's session has ended
	if n, err := env.Server.Expire(ctx); n != 1 || err != nil {
		t.Fatalf("Expire after bob's QUIT = %d, %v; want 1", n, err)
	}
	if got := inboxUIDs(bob); len(got) != 0 {
		t.Errorf("bob's INBOX after Expire = %v; want empty", got)
	}
}

func TestRunExpiry(t *testing.T) {
	t.Parallel()
	env := pop3test.Start(t, openStore(t, t.TempDir()), pop3test.Options{
		Config: func(c *pop3server.Config) {
			c.POP3.ExpireDays = 1
			c.POP3.ExpireInterval = config.Duration(10 * time.Millisecond)
		},
	})
	env.Append(t, alice, []byte(msgHello), store.Flags{})
	c := login(t, env, alice)
	if _, err := c.Retr(1, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(25 * time.Hour)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		env.Server.RunExpiry(ctx)
		close(done)
	}()
	for len(env.Inbox(t, alice)) > 0 {
		time.Sleep(5 * time.Millisecond) // until the sweep has run
	}
	cancel()
	<-done
}

func TestUIDLStableAcrossRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := pop3test.Start(t, openStore(t, dir), pop3test.Options{})
	var want []string
	for _, m := range fixtureAll {
		uid := env.Append(t, alice, []byte(m), store.Flags{}).UID
		want = append(want, env.UIDL(t, alice, uid))
	}
	uidls := func(env *pop3test.Env) []string {
		c := login(t, env, alice)
		list, err := c.UIDL()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, u := range list {
			out = append(out, u.UID)
		}
		if err := c.Quit(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	before := uidls(env)
	env.Stop()

	env = pop3test.Start(t, openStore(t, dir), pop3test.Options{})
	after := uidls(env)
	if fmt.Sprint(before) != fmt.Sprint(want) || fmt.Sprint(after) != fmt.Sprint(want) {
		t.Errorf("UIDLs before restart %v, after %v; want %v", before, after, want)
	}
}

// TestUIDLNeverReused: the messages with the highest UIDs are deleted
// over POP3 and the store restarted; a message delivered then gets a UIDL
// none of them had, so a client that leaves mail on the server does not
// take it for one it has (RFC 1939 7: a unique-id is never reused).
func TestUIDLNeverReused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st := openStore(t, dir)
	env := pop3test.Start(t, st, pop3test.Options{})
	var old []string
	for _, m := range fixtureAll[:3] {
		old = append(old, env.UIDL(t, alice, env.Append(t, alice, []byte(m), store.Flags{}).UID))
	}
	c := login(t, env, alice)
	for _, n := range []int{2, 3} {
		if err := c.Dele(n); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	env.Stop()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	env = pop3test.Start(t, openStore(t, dir), pop3test.Options{})
	env.Append(t, alice, []byte(msgLong), store.Flags{})
	c = login(t, env, alice)
	list, err := c.UIDL()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].UID != old[0] || slices.Contains(old, list[1].UID) {
		t.Errorf("UIDLs after the restart %v; want %s and one new, not among %v", list, old[0], old)
	}
}

func TestUIDLFormat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		uidValidity uint32
		uid         store.UID
		want        string
	}{
		{1, 1, "0000000100000001"},
		{0xdeadbeef, 42, "deadbeef0000002a"},
		{0xffffffff, 0xffffffff, "ffffffffffffffff"},
	} {
		if got := pop3server.UIDL(tc.uidValidity, tc.uid); got != tc.want {
			t.Errorf("UIDL(%d, %d) = %q; want %q", tc.uidValidity, tc.uid, got, tc.want)
		}
	}
}

func ExampleUIDL() {
	fmt.Println(pop3server.UIDL(1700000000, 42))
	// Output: 6553f1000000002a
}

// faultStore passes calls through to a real store, failing the ones a
// test chooses, and records the largest body read.
type faultStore struct {
	store.Store
	lookupErr error
	lockErr   error
	bodyErr   error
	bodyPanic bool
	maxRead   atomic.Int64
	// markRetrieved, if set, runs in place of MarkRetrieved; closed says
	// whether the session was closed before.
	markRetrieved func(closed bool, do func() error) error
	// expunge, if set, runs in place of Expunge.
	expunge func(do func() (store.ExpungeResult, error)) (store.ExpungeResult, error)
}

func (s *faultStore) LookupAccount(ctx context.Context, name string) (store.Account, error) {
	if s.lookupErr != nil {
		return store.Account{}, s.lookupErr
	}
	return s.Store.LookupAccount(ctx, name)
}

func (s *faultStore) Lock(ctx context.Context, id int64, name string) (func(), error) {
	if s.lockErr != nil {
		return nil, s.lockErr
	}
	return s.Store.Lock(ctx, id, name)
}

func (s *faultStore) Open(ctx context.Context, id int64) (store.Session, error) {
	sess, err := s.Store.Open(ctx, id)
	if err != nil {
		return nil, err
	}
	return &faultSession{Session: sess, s: s}, nil
}

type faultSession struct {
	store.Session
	s      *faultStore
	closed atomic.Bool
}

func (ss *faultSession) Close() error {
	ss.closed.Store(true)
	return ss.Session.Close()
}

func (ss *faultSession) MarkRetrieved(ctx context.Context, mb int64, uids store.UIDSet, at time.Time) error {
	do := func() error { return ss.Session.MarkRetrieved(ctx, mb, uids, at) }
	if ss.s.markRetrieved == nil {
		return do()
	}
	return ss.s.markRetrieved(ss.closed.Load(), do)
}

func (ss *faultSession) Expunge(ctx context.Context, mb int64, uids store.UIDSet, onlyDeleted bool) (store.ExpungeResult, error) {
	do := func() (store.ExpungeResult, error) { return ss.Session.Expunge(ctx, mb, uids, onlyDeleted) }
	if ss.s.expunge == nil {
		return do()
	}
	return ss.s.expunge(do)
}

func (ss *faultSession) OpenBody(ctx context.Context, mailboxID int64, uid store.UID) (store.Body, error) {
	switch {
	case ss.s.bodyPanic:
		panic("store bug")
	case ss.s.bodyErr != nil:
		return nil, ss.s.bodyErr
	}
	b, err := ss.Session.OpenBody(ctx, mailboxID, uid)
	if err != nil {
		return nil, err
	}
	return &countingBody{Body: b, s: ss.s}, nil
}

type countingBody struct {
	store.Body
	s *faultStore
}

func (b *countingBody) ReadAt(p []byte, off int64) (int, error) {
	for {
		m := b.s.maxRead.Load()
		if int64(len(p)) <= m || b.s.maxRead.CompareAndSwap(m, int64(len(p))) {
			break
		}
	}
	return b.Body.ReadAt(p, off)
}

func TestStoreFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		fault func(*faultStore)
		// login and retr are the response codes expected, "" for success.
		login, retr string
		// bug says the server logs a recovered panic and ends the session.
		bug bool
	}{
		{name: "lookup unavailable", fault: func(s *faultStore) { s.lookupErr = store.ErrUnavailable }, login: "SYS/TEMP"},
		{name: "lock unavailable", fault: func(s *faultStore) { s.lockErr = fmt.Errorf("lock: %w", store.ErrUnavailable) }, login: "SYS/TEMP"},
		{name: "lock broken", fault: func(s *faultStore) { s.lockErr = errors.New("disk on fire") }, login: "SYS/PERM"},
		{name: "body unavailable", fault: func(s *faultStore) { s.bodyErr = store.ErrUnavailable }, retr: "SYS/TEMP"},
		{name: "body broken", fault: func(s *faultStore) { s.bodyErr = errors.New("bad block") }, retr: "SYS/PERM"},
		{name: "store panics", fault: func(s *faultStore) { s.bodyPanic = true }, retr: "SYS/PERM", bug: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := &faultStore{Store: openStore(t, t.TempDir())}
			var bugs atomic.Int32
			env := pop3test.Start(t, st, pop3test.Options{OnBug: func(string) { bugs.Add(1) }})
			env.Append(t, alice, []byte(msgHello), store.Flags{})
			tc.fault(st)

			c, err := pop3client.Dial(context.Background(), env.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = c.User(alice, pop3test.Password)
			if !hasCode(err, tc.login) {
				t.Fatalf("login: %v; want code %q", err, tc.login)
			}
			if tc.login != "" {
				return
			}
			_, err = c.Retr(1, io.Discard)
			if !hasCode(err, tc.retr) {
				t.Fatalf("RETR: %v; want code %q", err, tc.retr)
			}
			err = c.Noop()
			if tc.bug {
				if err == nil {
					t.Error("session went on after a server bug")
				}
				env.Stop()
				if bugs.Load() != 1 {
					t.Errorf("%d bugs logged; want 1", bugs.Load())
				}
			} else if err != nil {
				t.Errorf("session did not go on after a store failure: %v", err)
			}
		})
	}
}

func hasCode(err error, code string) bool {
	if code == "" {
		return err == nil
	}
	var e *pop3client.Error
	return errors.As(err, &e) && e.Code == code
}

func TestCommandRateLimit(t *testing.T) {
	t.Parallel()
	const rate, commands = 50, 150
	env := pop3test.Start(t, openStore(t, t.TempDir()), pop3test.Options{
		Config: func(c *pop3server.Config) { c.Limits.CommandsPerSecond = rate },
	})
	conn, err := net.Dial("tcp", env.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	conn.Write([]byte(strings.Repeat("CAPA\r\n", commands)))
	r := bufio.NewReader(conn)
	r.ReadString('\n') // greeting
	for i := 0; i < commands; i++ {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if line == ".\r\n" {
				break
			}
		}
	}
	// A burst of 2*rate runs at once; the rest wait for tokens.
	if min := time.Duration(commands-2*rate) * time.Second / rate; time.Since(start) < min {
		t.Errorf("%d commands answered in %v; the limit allows no less than %v", commands, time.Since(start), min)
	}
}

func TestShutdownGivesUp(t *testing.T) {
	t.Parallel()
	env := pop3test.Start(t, openStore(t, t.TempDir()), pop3test.Options{})
	env.Append(t, alice, bigMessage(20<<20, true), store.Flags{})
	env.Append(t, alice, []byte(msgHello), store.Flags{})
	conn, err := net.Dial("tcp", env.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(16 << 10) // no room for 20 MB in the kernel
	// A client that asks for 20 MB and never reads it keeps its session
	// writing.
	fmt.Fprintf(conn, "USER %s\r\nPASS %s\r\nDELE 2\r\nRETR 1\r\n", alice, pop3test.Password)
	r := bufio.NewReader(conn)
	for i := 0; i < 5; i++ {
		if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
			t.Fatalf("got %q, %v", line, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := env.Server.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v; want it to give up", err)
	}
	// The session was closed: a second Shutdown finds nothing to wait for.
	if err := env.Server.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if inbox := env.Inbox(t, alice); len(inbox) != 2 {
		t.Errorf("INBOX after Shutdown holds %d messages; want both, DELE not applied", len(inbox))
	}
}

// TestShutdownWhileRecordingAtPause: a Shutdown that comes while a session
// records its retrievals at a pause is not lost: the session says goodbye
// when the drain ends rather than wait for the client until the idle
// timeout.
func TestShutdownWhileRecordingAtPause(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	st := &faultStore{Store: openStore(t, t.TempDir())}
	st.markRetrieved = func(_ bool, do func() error) error {
		select {
		case entered <- struct{}{}: // the first call waits for release
			<-release
		default:
		}
		return do()
	}
	env := pop3test.Start(t, st, pop3test.Options{})
	env.Append(t, alice, []byte(fixtureAll[0]), store.Flags{})
	loggedIn(t, env, "RETR 1")
	<-entered // the client paused; the session records the RETR
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), pop3server.DrainMargin+time.Second)
		defer cancel()
		done <- env.Server.Shutdown(ctx)
	}()
	// Let Shutdown interrupt the session before the recording ends. Were
	// this too short, the test would pass without showing anything.
	time.Sleep(100 * time.Millisecond)
	close(release)
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v: the session missed it while recording", err)
	}
}

// TestRetrievalRecordFailsAtQuit: a store that cannot record retrievals
// at QUIT is tried once, and never after the session let go of its store
// session and maildrop lock.
func TestRetrievalRecordFailsAtQuit(t *testing.T) {
	t.Parallel()
	var calls, afterClose atomic.Int32
	st := &faultStore{Store: openStore(t, t.TempDir())}
	st.markRetrieved = func(closed bool, _ func() error) error {
		calls.Add(1)
		if closed {
			afterClose.Add(1)
		}
		return errors.New("store down")
	}
	env := pop3test.Start(t, st, pop3test.Options{})
	env.Append(t, alice, []byte(fixtureAll[0]), store.Flags{})
	nc := loggedIn(t, env, "RETR 1", "QUIT")
	io.Copy(io.Discard, nc) // until the server closes
	env.Stop()              // and the session has ended
	if n, late := calls.Load(), afterClose.Load(); n != 1 || late != 0 {
		t.Errorf("MarkRetrieved called %d times, %d of them after the session closed; want once, before", n, late)
	}
}

// loggedIn connects to env as alice and sends USER, PASS and then cmds
// at once, without reading; the connection closes when the test ends.
func loggedIn(t *testing.T, env *pop3test.Env, cmds ...string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", env.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "USER %s\r\nPASS %s\r\n%s\r\n", alice, pop3test.Password, strings.Join(cmds, "\r\n"))
	return conn
}

// TestShutdownDrainsTransactions: on Shutdown, a session that has not
// logged in is told goodbye at once; one in TRANSACTION may still QUIT,
// and its deletions are applied, so that a client downloading and
// deleting does not download again after a restart what it had stored.
// One that does not QUIT before the drain ends is told goodbye without
// them (RFC 1939 6).
func TestShutdownDrainsTransactions(t *testing.T) {
	t.Parallel()
	login := func(t *testing.T, env *pop3test.Env) (net.Conn, *bufio.Reader) {
		t.Helper()
		conn, err := net.Dial("tcp", env.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		fmt.Fprintf(conn, "USER %s\r\nPASS %s\r\nDELE 1\r\n", alice, pop3test.Password)
		r := bufio.NewReader(conn)
		for i := 0; i < 4; i++ {
			if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
				t.Fatalf("got %q, %v", line, err)
			}
		}
		return conn, r
	}
	readLine := func(t *testing.T, r *bufio.Reader) string {
		t.Helper()
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return line
	}

	t.Run("quit", func(t *testing.T) {
		t.Parallel()
		env := pop3test.Start(t, openStore(t, t.TempDir()), pop3test.Options{})
		env.Append(t, alice, []byte(msgHello), store.Flags{})
		env.Append(t, alice, []byte(msgHello), store.Flags{})
		conn, r := login(t, env)
		waiting, err := net.Dial("tcp", env.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer waiting.Close()
		wr := bufio.NewReader(waiting)
		readLine(t, wr) // greeting

		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			done <- env.Server.Shutdown(ctx)
		}()
		if line := readLine(t, wr); !strings.HasPrefix(line, "-ERR [SYS/TEMP] ") {
			t.Errorf("session not logged in: %q, want goodbye", line)
		}
		fmt.Fprintf(conn, "STAT\r\nQUIT\r\n")
		if line := readLine(t, r); !strings.HasPrefix(line, "+OK 1 ") {
			t.Errorf("STAT during the drain: %q", line)
		}
		if line := readLine(t, r); !strings.HasPrefix(line, "+OK") {
			t.Errorf("QUIT during the drain: %q", line)
		}
		if err := <-done; err != nil {
			t.Errorf("Shutdown = %v", err)
		}
		if inbox := env.Inbox(t, alice); len(inbox) != 1 {
			t.Errorf("INBOX after QUIT holds %d messages; want 1, DELE applied", len(inbox))
		}
	})

	t.Run("no quit", func(t *testing.T) {
		t.Parallel()
		env := pop3test.Start(t, openStore(t, t.TempDir()), pop3test.Options{})
		env.Append(t, alice, []byte(msgHello), store.Flags{})
		_, r := login(t, env)
		ctx, cancel := context.WithTimeout(context.Background(), pop3server.DrainMargin+500*time.Millisecond)
		defer cancel()
		if err := env.Server.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown = %v; want the session told goodbye before the deadline", err)
		}
		if line := readLine(t, r); !strings.HasPrefix(line, "-ERR [SYS/TEMP] ") {
			t.Errorf("idle session after the drain: %q, want goodbye", line)
		}
		if inbox := env.Inbox(t, alice); len(inbox) != 1 {
			t.Errorf("INBOX holds %d messages; want 1, DELE not applied", len(inbox))
		}
	})
}
