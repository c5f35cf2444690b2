package fetch

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/auth"
	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/delivery"
	"github.com/buzon-mail/buzon/internal/imapserver"
	"github.com/buzon-mail/buzon/internal/pop3server/pop3test"
	"github.com/buzon-mail/buzon/internal/server"
	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/sqlite"
)

// remoteUser is the account the fetch client reads on the test servers.
const remoteUser = "alice@example.org"

// buzonServers is buzon's POP3 and IMAP servers in-process, over one
// store, as the remote side of the tests.
type buzonServers struct {
	st       store.Store
	pop3     *pop3test.Env
	imapAddr string // plain, STARTTLS available
	imapsTLS string // implicit TLS
	// fingerprint is the SHA-256 of the servers' certificate; certFile
	// the certificate in PEM.
	fingerprint string
	certFile    string
	spooler     *delivery.Spooler
}

func startBuzon(t *testing.T) *buzonServers {
	t.Helper()
	st, err := sqlite.Open(sqlite.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pe := pop3test.Start(t, st, pop3test.Options{Accounts: []string{remoteUser}})
	b := &buzonServers{st: st, pop3: pe, certFile: pe.CertFile, spooler: &delivery.Spooler{MemoryLimit: 1 << 20}}
	cert, err := tls.X509KeyPair(pe.CertPEM, pe.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	b.fingerprint = server.Fingerprint(cert.Certificate[0])

	acfg := config.Default().Auth
	acfg.Argon2Time, acfg.Argon2Memory = 1, 64
	acfg.FailureDelay, acfg.MaxFailureDelay = 0, 0
	log := slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	authn, err := auth.New(acfg, st, log)
	if err != nil {
		t.Fatal(err)
	}
	sp := b.spooler
	srv := imapserver.New(imapserver.Config{
		Store: st, Auth: authn, TLS: server.TLSConfig(cert), Hostname: "imap.example.org", Logger: log,
		Limits: config.Limits{CommandsPerSecond: 1e6},
		Append: func(ctx context.Context, sess store.Session, mailboxID int64, r io.Reader, _ int64, flags store.Flags, date time.Time) (store.AppendResult, error) {
			return delivery.Append(ctx, sp, sess, mailboxID, r, flags, date)
		},
	})
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	implicit, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.imapAddr, b.imapsTLS = plain.Addr().String(), implicit.Addr().String()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); srv.Serve(plain) }()
	go func() { defer wg.Done(); srv.ServeTLS(implicit) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		wg.Wait()
	})
	return b
}

// session opens a store session on the remote account.
func (b *buzonServers) session(t *testing.T) store.Session {
	t.Helper()
	sess, err := b.st.Open(context.Background(), b.pop3.Accounts[remoteUser].ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	return sess
}

// deliver puts messages into a mailbox of the remote account, parsed as
// delivery does so that IMAP can serve their envelopes.
func (b *buzonServers) deliver(t *testing.T, mailbox string, msgs ...[]byte) {
	t.Helper()
	ctx := context.Background()
	sess := b.session(t)
	mb, err := sess.Mailbox(ctx, mailbox)
	if errors.Is(err, store.ErrNoMailbox) {
		mb, err = sess.CreateMailbox(ctx, mailbox, "")
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if _, err := delivery.Append(ctx, b.spooler, sess, mb.ID, bytes.NewReader(m), store.Flags{}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
}

// count is the number of messages in a mailbox of the remote account.
func (b *buzonServers) count(t *testing.T, mailbox string) int {
	t.Helper()
	ctx := context.Background()
	sess := b.session(t)
	mb, err := sess.Mailbox(ctx, mailbox)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sess.Status(ctx, mb.ID)
	if err != nil {
		t.Fatal(err)
	}
	return int(st.Messages)
}

// seen is the number of messages flagged \Seen in a mailbox.
func (b *buzonServers) seen(t *testing.T, mailbox string) int {
	t.Helper()
	ctx := context.Background()
	sess := b.session(t)
	mb, err := sess.Mailbox(ctx, mailbox)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sess.Status(ctx, mb.ID)
	if err != nil {
		t.Fatal(err)
	}
	return int(st.Messages - st.Unseen)
}

// account returns a fetch account for the buzon servers: protocol, TLS
// mode, the certificate pinned, delivering into a Maildir in a temporary
// folder.
func (b *buzonServers) account(t *testing.T, protocol, tlsMode string) Account {
	addr := map[string]string{
		ProtoPOP3 + TLSImplicit: b.pop3.TLSAddr, ProtoPOP3 + TLSStartTLS: b.pop3.Addr, ProtoPOP3 + TLSNone: b.pop3.Addr,
		ProtoIMAP + TLSImplicit: b.imapsTLS, ProtoIMAP + TLSStartTLS: b.imapAddr, ProtoIMAP + TLSNone: b.imapAddr,
	}[protocol+tlsMode]
	host, port := splitAddr(t, addr)
	return Account{
		Name: protocol + "-" + tlsMode, Protocol: protocol, Host: host, Port: port, TLS: tlsMode,
		AllowInsecure: tlsMode == TLSNone, TLSFingerprint: b.fingerprint,
		User: remoteUser, Password: pop3test.Password, Mode: ModeKeep,
		Maildir: filepath.Join(t.TempDir(), "Maildir"),
	}
}

func splitAddr(t *testing.T, addr string) (string, int) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	var p int
	fmt.Sscan(port, &p)
	return host, p
}

// testConfig makes a configuration of accounts, validated, with its
// state in a temporary folder.
func testConfig(t *testing.T, accts ...Account) Config {
	t.Helper()
	cfg := Default()
	cfg.StateDir = filepath.Join(t.TempDir(), "state")
	cfg.Accounts = accts
	cfg.resolve(t.TempDir())
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// testClock is a settable clock for keep_days.
type testClock struct {
	mu sync.Mutex
	t  time.Time // guarded by mu
}

func newTestClock() *testClock { return &testClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testOptions are Options logging to the test.
func testOptions(t *testing.T) Options {
	return Options{
		Logger:   slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Hostname: "test.example",
	}
}

// fetchOnce runs every account once with a new Fetcher and returns the
// summaries.
func fetchOnce(t *testing.T, cfg Config, opts Options) []Summary {
	t.Helper()
	f := New(cfg, opts)
	defer f.Close()
	sums, err := f.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return sums
}

// mustFetch runs one account once and fails the test on a run error.
func mustFetch(t *testing.T, cfg Config, opts Options) Summary {
	t.Helper()
	sums := fetchOnce(t, cfg, opts)
	if len(sums) != 1 {
		t.Fatalf("%d summaries", len(sums))
	}
	if sums[0].Err != nil {
		t.Fatalf("fetch: %v", sums[0].Err)
	}
	return sums[0]
}

// testMessage is message i: a Message-ID, a subject naming it, and lines
// that test transparency: a leading dot (POP3 dot-stuffing) and a "From "
// line (mbox quoting). extra pads the body.
func testMessage(i int, extra int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Bob <bob@example.net>\r\nTo: alice@example.org\r\nSubject: message %d\r\n", i)
	fmt.Fprintf(&b, "Message-ID: <%d.fetch-test@example.net>\r\nDate: Sat, 1 Mar 2025 10:%02d:00 +0000\r\n\r\n", i, i%60)
	fmt.Fprintf(&b, "Hello %d.\r\n.a line starting with a dot\r\nFrom the start of a line\r\n>From quoted already\r\n", i)
	for extra > 0 {
		line := "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n"
		b.WriteString(line)
		extra -= len(line)
	}
	return b.Bytes()
}

func testMessages(from, to int) [][]byte {
	var out [][]byte
	for i := from; i <= to; i++ {
		out = append(out, testMessage(i, 0))
	}
	return out
}

// lf converts CRLF to LF, as file destinations store messages.
func lf(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) }

// maildirMessages reads every message of a Maildir (new and cur).
func maildirMessages(t *testing.T, dir string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, sub, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(entries) > 0 {
		t.Errorf("maildir tmp/ not empty: %d files", len(entries))
	}
	return out
}

// subjects lists the Subject of each message, sorted.
func subjects(msgs [][]byte) []string {
	var out []string
	for _, m := range msgs {
		for _, line := range strings.Split(string(lf(m)), "\n") {
			if line == "" {
				break
			}
			if s, ok := strings.CutPrefix(line, "Subject: "); ok {
				out = append(out, s)
			}
		}
	}
	slices.Sort(out)
	return out
}

// wantSubjects is the sorted subjects of messages from..to.
func wantSubjects(ranges ...[2]int) []string {
	var out []string
	for _, r := range ranges {
		for i := r[0]; i <= r[1]; i++ {
			out = append(out, fmt.Sprintf("message %d", i))
		}
	}
	slices.Sort(out)
	return out
}

// checkMaildir checks that a Maildir holds exactly the messages from..to
// (once each), byte for byte with LF line endings.
func checkMaildir(t *testing.T, dir string, ranges ...[2]int) {
	t.Helper()
	msgs := maildirMessages(t, dir)
	if got, want := subjects(msgs), wantSubjects(ranges...); !slices.Equal(got, want) {
		t.Fatalf("maildir holds %v, want %v", got, want)
	}
	for _, m := range msgs {
		var i int
		fmt.Sscanf(subjects([][]byte{m})[0], "message %d", &i)
		if want := lf(testMessage(i, 0)); !bytes.Equal(m, want) && !bytes.HasPrefix(m, want[:bytes.Index(want, []byte("\n\n"))]) {
			t.Errorf("message %d stored as %q", i, m)
		}
	}
}

// testLogWriter sends log lines to the test log.
type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// localStore is a buzon store on this machine, the destination of store
// accounts.
type localStore struct {
	dir  string
	st   store.Store
	acct store.Account
	// quotaWarnings are the levels the opener's Deliverer warns at, as
	// cmd/buzon gives it the server's delivery.quota_warnings; none by
	// default.
	quotaWarnings []int
	// log is the opener's Deliverer's, as cmd/buzon gives it the run's.
	log *slog.Logger
}

// localUser is the account of the local store that receives mail.
const localUser = "bob@example.org"

func startLocalStore(t *testing.T, q store.Quota) *localStore {
	t.Helper()
	l := &localStore{dir: t.TempDir()}
	var err error
	if l.st, err = sqlite.Open(sqlite.Config{Dir: l.dir}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.st.Close() })
	ctx := context.Background()
	if l.acct, err = l.st.CreateAccount(ctx, localUser, store.Credentials{PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
	l.setQuota(t, q)
	return l
}

// opener opens the local store as cmd/buzon would: a Store of its own.
func (l *localStore) opener(StoreTarget) (*delivery.Deliverer, *delivery.Spooler, error) {
	st, err := sqlite.Open(sqlite.Config{Dir: l.dir})
	if err != nil {
		return nil, nil, err
	}
	d := &delivery.Deliverer{Store: st, Logger: l.log, QuietDelivered: true, QuotaWarnings: l.quotaWarnings, Hostname: "mx.example.org"}
	return d, &delivery.Spooler{MemoryLimit: 1 << 20}, nil
}

func (l *localStore) setQuota(t *testing.T, q store.Quota) {
	t.Helper()
	if err := l.st.SetQuota(context.Background(), localUser, q); err != nil {
		t.Fatal(err)
	}
}

// messages returns the bodies in a mailbox of the local account.
func (l *localStore) messages(t *testing.T, mailbox string) [][]byte {
	t.Helper()
	ctx := context.Background()
	sess, err := l.st.Open(ctx, l.acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	mb, err := sess.Mailbox(ctx, mailbox)
	if err != nil {
		t.Fatal(err)
	}
	var uids []store.UID
	err = sess.Messages(ctx, mb.ID, store.AllUIDs(), 0, func(mi *store.MessageInfo) error {
		uids = append(uids, mi.UID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, uid := range uids {
		body, err := sess.OpenBody(ctx, mb.ID, uid)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(io.NewSectionReader(body, 0, body.Size()))
		body.Close()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func (l *localStore) subjects(t *testing.T, mailbox string) []string {
	return subjects(l.messages(t, mailbox))
}

// errCrash is the panic of a simulated crash.
var errCrash = errors.New("simulated crash")

// crashFetch runs the accounts once and stops the run, as a crash would,
// at the nth time it reaches point (see Fetcher.crash). Deferred closes
// still run, but nothing that a crash would not have left behind is
// written: the state journal holds what was synced, the destination what
// was stored, the server did not see QUIT or EXPUNGE.
func crashFetch(t *testing.T, cfg Config, opts Options, point string, n int) {
	t.Helper()
	f := New(cfg, opts)
	defer f.Close()
	seen := 0
	f.crash = func(p string) {
		if p == point {
			if seen++; seen == n {
				panic(errCrash)
			}
		}
	}
	defer func() {
		if v := recover(); v != errCrash {
			if v != nil {
				panic(v)
			}
			t.Fatalf("the run never reached %s #%d", point, n)
		}
	}()
	f.RunOnce(context.Background())
}
