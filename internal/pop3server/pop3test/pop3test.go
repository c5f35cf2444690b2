// Package pop3test runs a pop3server in-process for tests, on real TCP
// listeners on 127.0.0.1, over a store the test opens: the store backend
// is the test's choice, so this package imports none.
package pop3test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/auth"
	"github.com/buzon-mail/buzon/internal/clienttest"
	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/pop3server"
	"github.com/buzon-mail/buzon/internal/server"
	"github.com/buzon-mail/buzon/internal/store"
)

// Password is the password of every account Start creates.
const Password = "s3cret pass"

// Accounts are the accounts Start creates unless Options says otherwise.
var Accounts = []string{"alice@example.org", "bob@example.org"}

// Options adjust the environment Start builds.
type Options struct {
	// Accounts to create, or find when they exist. Default: Accounts.
	Accounts []string
	// Auth adjusts the authenticator's configuration.
	Auth func(*config.Auth)
	// Config adjusts the server's configuration before it starts.
	Config func(*pop3server.Config)
	// Listener wraps the plain listener, for instance to fake client
	// addresses.
	Listener func(net.Listener) net.Listener
	// Cert and Key are the server certificate (PEM); Start makes a
	// self-signed one for localhost and 127.0.0.1 when they are nil.
	Cert, Key []byte
	// OnBug is called when the server logs a recovered panic (with its
	// stack). Default: fail the test.
	OnBug func(msg string)
}

// Env is a running server and what a test needs to reach it.
type Env struct {
	Store  store.Store
	Server *pop3server.Server
	// Config is the server's configuration.
	Config pop3server.Config
	// Addr is the plain listener (STLS available), TLSAddr the implicit
	// TLS one.
	Addr, TLSAddr string
	// ClientTLS trusts the server's certificate, for 127.0.0.1.
	ClientTLS *tls.Config
	// CertFile is the server certificate in PEM, for external tools.
	CertFile string
	// CertPEM and KeyPEM are the server's certificate and key.
	CertPEM, KeyPEM []byte
	// Accounts maps account names to their records.
	Accounts map[string]store.Account
	// Clock is the server's clock.
	Clock *Clock

	served sync.WaitGroup
	stop   sync.Once
}

// Clock is a settable clock for Config.Now. It starts at a whole second,
// so times the store keeps with less precision compare equal.
type Clock struct {
	mu sync.Mutex
	t  time.Time // guarded by mu
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Start creates the accounts in st and serves POP3 and POP3S on
// 127.0.0.1 until the test ends (or Stop). The server logs to the test
// output, and the test fails if a command panics.
func Start(t testing.TB, st store.Store, opts Options) *Env {
	t.Helper()
	ctx := context.Background()
	if opts.Accounts == nil {
		opts.Accounts = Accounts
	}
	acfg := config.Default().Auth
	acfg.Argon2Time, acfg.Argon2Memory = 1, 64
	acfg.FailureDelay, acfg.MaxFailureDelay = 0, 0
	if opts.Auth != nil {
		opts.Auth(&acfg)
	}
	log := clienttest.Logger(t, slog.LevelDebug, opts.OnBug)
	authn, err := auth.New(acfg, st, log)
	if err != nil {
		t.Fatal(err)
	}
	env := &Env{Store: st, Accounts: map[string]store.Account{}, Clock: &Clock{t: time.Now().Truncate(time.Second)}}
	for _, name := range opts.Accounts {
		acct, err := st.LookupAccount(ctx, name)
		if errors.Is(err, store.ErrNoAccount) {
			var cred store.Credentials
			if cred, err = auth.NewHasher(acfg).Credentials(Password); err == nil {
				acct, err = st.CreateAccount(ctx, name, cred)
			}
		}
		if err != nil {
			t.Fatalf("account %s: %v", name, err)
		}
		env.Accounts[name] = acct
	}

	env.CertPEM, env.KeyPEM = opts.Cert, opts.Key
	if env.CertPEM == nil {
		env.CertPEM, env.KeyPEM, err = server.SelfSignedCert([]string{"localhost", "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
	}
	cert, err := tls.X509KeyPair(env.CertPEM, env.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	env.CertFile = filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(env.CertFile, env.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(env.CertPEM)
	env.ClientTLS = &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}

	limits := config.Default().Limits
	limits.CommandsPerSecond = 0
	env.Config = pop3server.Config{
		Store:    st,
		Auth:     authn,
		Sessions: auth.NewSessionLimiter(limits.MaxConnectionsPerAccount),
		TLS:      server.TLSConfig(cert),
		Hostname: "pop3.example.org",
		POP3:     config.Default().POP3,
		Limits:   limits,
		Logger:   log,
		Now:      env.Clock.Now,
	}
	if opts.Config != nil {
		opts.Config(&env.Config)
	}
	env.Server = pop3server.New(env.Config)

	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	implicit, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	env.Addr, env.TLSAddr = plain.Addr().String(), implicit.Addr().String()
	if opts.Listener != nil {
		plain = opts.Listener(plain)
	}
	env.served.Add(2)
	go env.serve(t, func() error { return env.Server.Serve(plain) })
	go env.serve(t, func() error { return env.Server.ServeTLS(implicit) })
	t.Cleanup(env.Stop)
	return env
}

func (e *Env) serve(t testing.TB, fn func() error) {
	defer e.served.Done()
	if err := fn(); !errors.Is(err, pop3server.ErrServerClosed) {
		t.Errorf("serve: %v", err)
	}
}

// Stop shuts the server down and waits for it; it does not close the
// store. Tests call it to wait for sessions to end, or to restart.
func (e *Env) Stop() {
	e.stop.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := e.Server.Shutdown(ctx); err != nil {
			panic("pop3test: shutdown: " + err.Error())
		}
		e.served.Wait()
	})
}

// Append delivers a message (CRLF line endings) to an account's INBOX.
func (e *Env) Append(t testing.TB, account string, body []byte, flags store.Flags) store.AppendResult {
	t.Helper()
	var res store.AppendResult
	e.WithInbox(t, account, func(sess store.Session, inbox store.Mailbox) {
		var err error
		res, err = sess.Append(context.Background(), inbox.ID, &store.NewMessage{
			Body: bytes.NewReader(body), Size: int64(len(body)), Flags: flags,
		})
		if err != nil {
			t.Fatalf("append: %v", err)
		}
	})
	return res
}

// WithInbox opens a store session on an account's INBOX for fn.
func (e *Env) WithInbox(t testing.TB, account string, fn func(store.Session, store.Mailbox)) {
	t.Helper()
	ctx := context.Background()
	sess, err := e.Store.Open(ctx, e.Accounts[account].ID)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	inbox, err := sess.Mailbox(ctx, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	fn(sess, inbox)
}

// Inbox lists an account's INBOX with every field but the structure.
func (e *Env) Inbox(t testing.TB, account string) []store.MessageInfo {
	t.Helper()
	var out []store.MessageInfo
	e.WithInbox(t, account, func(sess store.Session, inbox store.Mailbox) {
		err := sess.Messages(context.Background(), inbox.ID, store.AllUIDs(), store.FieldAll&^store.FieldStructure,
			func(mi *store.MessageInfo) error {
				m := *mi
				m.Flags.Keywords = append([]string(nil), mi.Flags.Keywords...)
				out = append(out, m)
				return nil
			})
		if err != nil {
			t.Fatal(err)
		}
	})
	return out
}

// UIDL is the UIDL the server gives a message of an account's INBOX.
func (e *Env) UIDL(t testing.TB, account string, uid store.UID) string {
	t.Helper()
	var uv uint32
	e.WithInbox(t, account, func(_ store.Session, inbox store.Mailbox) { uv = inbox.UIDValidity })
	return pop3server.UIDL(uv, uid)
}

// WaitUnlocked waits until no session holds the account's maildrop lock:
// a session whose client hung up, or sent QUIT without waiting for the
// answer, has then ended and applied or dropped its deletions.
func (e *Env) WaitUnlocked(t testing.TB, account string) {
	t.Helper()
	for {
		release, err := e.Store.Lock(context.Background(), e.Accounts[account].ID, "pop3")
		if err == nil {
			release()
			return
		}
		if !errors.Is(err, store.ErrLocked) {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
