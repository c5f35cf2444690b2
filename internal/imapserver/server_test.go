package imapserver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/auth"
	"github.com/buzon-mail/buzon/internal/clienttest"
	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/message"
	"github.com/buzon-mail/buzon/internal/server"
	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/teststore"
)

const (
	testUser = "user@example.org"
	testPass = "secret"
)

// testAppend is the APPEND hook until package delivery is used: it reads
// the message, parses it once and appends it.
func testAppend(ctx context.Context, sess store.Session, mailboxID int64, r io.Reader, size int64, flags store.Flags, date time.Time) (store.AppendResult, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return store.AppendResult{}, err
	}
	part, err := message.Parse(bytes.NewReader(b))
	if err != nil {
		return store.AppendResult{}, err
	}
	return sess.Append(ctx, mailboxID, &store.NewMessage{
		Body: bytes.NewReader(b), Size: int64(len(b)), Structure: message.Marshal(part),
		Flags: flags, InternalDate: date,
	})
}

// testEnv is a server in-process on a real TCP listener, over a sqlite
// store in a temporary folder.
type testEnv struct {
	t       testing.TB
	store   store.Store
	srv     *Server
	addr    string // plain listener
	tlsAddr string // implicit TLS listener
	acct    store.Account
	tls     *tls.Config // client side, trusting the test certificate
	certPEM []byte      // the server's self-signed certificate
	dir     string
}

type envOption func(*Config)

// newTestEnv starts a server for a test or a benchmark, with the test
// account.
func newTestEnv(t testing.TB, opts ...envOption) *testEnv {
	t.Helper()
	return newTestEnvStore(t, teststore.Options{}, opts...)
}

// newTestEnvStore is newTestEnv on a store opened with storeOpts.
func newTestEnvStore(t testing.TB, storeOpts teststore.Options, opts ...envOption) *testEnv {
	t.Helper()
	dir := t.TempDir()
	st := teststore.OpenWith(t, dir, storeOpts)
	acfg := config.Default().Auth
	acfg.Scheme, acfg.BcryptCost = "bcrypt", 4
	acfg.FailureDelay, acfg.MaxFailureDelay = config.Duration(time.Millisecond), config.Duration(time.Millisecond)
	hasher := auth.NewHasher(acfg)
	cred, err := hasher.Credentials(testPass)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	acct, err := st.CreateAccount(ctx, testUser, cred)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	au, err := auth.New(acfg, st, logger)
	if err != nil {
		t.Fatal(err)
	}
	cert, pool, certPEM := clienttest.Cert(t, "localhost", "127.0.0.1")
	cfg := Config{
		Store:    st,
		Auth:     au,
		Sessions: auth.NewSessionLimiter(20),
		TLS:      server.TLSConfig(cert),
		Hostname: "test.example",
		Logger:   logger,
		Append:   testAppend,
	}
	cfg.Limits.CommandsPerSecond = 100000
	for _, o := range opts {
		o(&cfg)
	}
	srv := New(cfg)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lt, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); srv.Serve(l) }()
	go func() { defer wg.Done(); srv.ServeTLS(lt) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		wg.Wait()
	})
	return &testEnv{t: t, store: st, srv: srv, addr: l.Addr().String(), tlsAddr: lt.Addr().String(), acct: acct,
		tls: &tls.Config{RootCAs: pool, ServerName: "localhost"}, certPEM: certPEM, dir: dir}
}

// testWriter sends log output to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// session opens a store session on the test account.
func (e *testEnv) session() store.Session {
	e.t.Helper()
	sess, err := e.store.Open(context.Background(), e.acct.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { sess.Close() })
	return sess
}

// deliver appends a message to a mailbox directly through the store, as
// LMTP would.
func (e *testEnv) deliver(mailbox string, msg string, flags ...string) store.AppendResult {
	e.t.Helper()
	sess := e.session()
	mb, err := sess.Mailbox(context.Background(), mailbox)
	if err != nil {
		e.t.Fatal(err)
	}
	f, err := store.ParseFlags(flags)
	if err != nil {
		e.t.Fatal(err)
	}
	msg = crlf(msg)
	res, err := testAppend(context.Background(), sess, mb.ID, strings.NewReader(msg), int64(len(msg)), f,
		time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC))
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

// loginWithGap delivers msgs to INBOX after a message it then expunges,
// and logs in with INBOX selected: message n is UID n+1, so that a test
// tells numbers from UIDs.
func (e *testEnv) loginWithGap(msgs ...string) *client {
	e.t.Helper()
	e.deliver("INBOX", "Subject: expunged\n\nso that UIDs and numbers differ\n")
	for _, m := range msgs {
		e.deliver("INBOX", m)
	}
	c := e.login()
	c.mustOK("SELECT INBOX")
	c.mustOK("STORE 1 +FLAGS.SILENT (\\Deleted)")
	c.mustOK("EXPUNGE")
	return c
}

// crlf turns LF line ends into CRLF.
func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

// client is a raw IMAP client for tests: it sends lines and reads
// responses up to the tagged one.
type client struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
	n  int
}

func (e *testEnv) dial() *client {
	e.t.Helper()
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	c := &client{t: e.t, nc: nc, br: bufio.NewReader(nc)}
	e.t.Cleanup(func() { nc.Close() })
	c.readLine() // greeting
	return c
}

// login dials and logs in.
func (e *testEnv) login() *client {
	c := e.dial()
	c.mustOK("LOGIN " + testUser + " " + testPass)
	return c
}

func (c *client) deadline() {
	_ = c.nc.SetDeadline(time.Now().Add(30 * time.Second))
}

// readLine reads one response line, with literals inline.
func (c *client) readLine() string {
	c.t.Helper()
	c.deadline()
	var b strings.Builder
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read: %v (so far %q)", err, b.String()+line)
		}
		b.WriteString(line)
		if n, ok := literalSize(line); ok {
			buf := make([]byte, n)
			if _, err := io.ReadFull(c.br, buf); err != nil {
				c.t.Fatalf("read literal: %v", err)
			}
			b.Write(buf)
			continue
		}
		return strings.TrimSuffix(b.String(), "\r\n")
	}
}

// literalSize finds a literal announced at the end of a response line.
func literalSize(line string) (int, bool) {
	line = strings.TrimSuffix(line, "\r\n")
	if !strings.HasSuffix(line, "}") {
		return 0, false
	}
	i := strings.LastIndexByte(line, '{')
	if i < 0 {
		return 0, false
	}
	var n int
	if _, err := fmt.Sscanf(line[i+1:len(line)-1], "%d", &n); err != nil {
		return 0, false
	}
	return n, true
}

func (c *client) write(s string) {
	c.t.Helper()
	if err := c.writeErr(s); err != nil {
		c.t.Fatal(err)
	}
}

// idle starts IDLE under tag and waits for the server's continuation.
func (c *client) idle(tag string) {
	c.t.Helper()
	c.write(tag + " IDLE\r\n")
	if l := c.readLine(); !strings.HasPrefix(l, "+ ") {
		c.t.Fatalf("IDLE: %q, want a continuation", l)
	}
}

// writeErr is write, returning the error.
func (c *client) writeErr(s string) error {
	c.deadline()
	_, err := io.WriteString(c.nc, s)
	return err
}

// cmd sends a tagged command and returns the untagged lines and the
// tagged one.
func (c *client) cmd(s string) (untagged []string, tagged string) {
	c.t.Helper()
	c.n++
	tag := fmt.Sprintf("t%d", c.n)
	c.write(tag + " " + s + "\r\n")
	return c.readUntil(tag)
}

func (c *client) readUntil(tag string) (untagged []string, tagged string) {
	c.t.Helper()
	for {
		line := c.readLine()
		if strings.HasPrefix(line, tag+" ") {
			return untagged, line
		}
		untagged = append(untagged, line)
	}
}

// mustOK runs a command that must succeed.
func (c *client) mustOK(s string) []string {
	c.t.Helper()
	untagged, tagged := c.cmd(s)
	if !strings.Contains(tagged, " OK") {
		c.t.Fatalf("%s: %s (untagged %q)", s, tagged, untagged)
	}
	return untagged
}

// TestMain runs the tests on the store teststore chooses (sqlite, or
// PostgreSQL with BUZON_TEST_STORE=postgres).
func TestMain(m *testing.M) { teststore.Main(m) }

// TestAppendCutShort: an APPEND is done at its final CRLF. A client that
// goes away before (in a literal, after one, before the last CRLF) or a
// syntax error after a literal leaves nothing stored: not the part of a
// message that came, not the messages of a MULTIAPPEND that were read
// (RFC 3502 6).
func TestAppendCutShort(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	msg := "Subject: cut\r\n\r\nwhole\r\n"
	lit := fmt.Sprintf("{%d+}\r\n", len(msg))
	cases := []struct {
		name, send string
		bad        bool // the server answers BAD rather than the client going
	}{
		{"in a literal", "a1 APPEND INBOX {100+}\r\n" + msg, false},
		{"before the final CRLF", "a1 APPEND INBOX " + lit + msg, false},
		{"after the 2nd literal", "a1 APPEND INBOX " + lit + msg + " " + lit + msg, false},
		{"before the 3rd literal", "a1 APPEND INBOX " + lit + msg + " " + lit + msg + " (\\Seen) ", false},
		{"UTF8 without its parenthesis", "a1 APPEND INBOX UTF8 (~" + lit + msg + "\r\n", true},
	}
	for _, tc := range cases {
		c := e.login()
		c.write(tc.send)
		if tc.bad {
			if _, tagged := c.readUntil("a1"); !strings.HasPrefix(tagged, "a1 BAD") {
				t.Errorf("%s: %q, want BAD", tc.name, tagged)
			}
		}
		c.nc.(*net.TCPConn).CloseWrite()
		c.deadline()
		io.Copy(io.Discard, c.br) // until the server closes
	}
	// The synchronising form, cut in its literal.
	c := e.login()
	c.write("a1 APPEND INBOX {100}\r\n")
	if line := c.readLine(); !strings.HasPrefix(line, "+") {
		t.Fatalf("APPEND {100}: %q, want a continuation", line)
	}
	c.write(msg)
	c.nc.(*net.TCPConn).CloseWrite()
	c.deadline()
	io.Copy(io.Discard, c.br)

	sess := e.session()
	mb, err := sess.Mailbox(context.Background(), "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	st, err := sess.Status(context.Background(), mb.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Messages != 0 {
		t.Errorf("INBOX holds %d messages after APPENDs that did not complete, want 0", st.Messages)
	}
}
