package managesieve_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/auth"
	"github.com/buzon-mail/buzon/internal/clienttest"
	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/managesieve"
	"github.com/buzon-mail/buzon/internal/server"
	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/teststore"
)

func TestMain(m *testing.M) { teststore.Main(m) }

const (
	alice    = "alice@example.org"
	bob      = "bob@example.org"
	password = "s3cret pass"
)

// env is a running server and what a test needs to reach it.
type env struct {
	store  store.Store
	server *managesieve.Server
	cfg    managesieve.Config
	// addr is the listener; clientTLS trusts the server's certificate.
	addr      string
	clientTLS *tls.Config
	// certFile is the server certificate in PEM, for external tools.
	certFile string
	accounts map[string]store.Account

	served sync.WaitGroup
	stop   sync.Once
}

// options adjust the environment start builds.
type options struct {
	config func(*managesieve.Config)
	auth   func(*config.Auth)
	// remote fakes the client address of connections.
	remote string
}

// start serves ManageSieve on 127.0.0.1 over a new store holding alice
// and bob, until the test ends. The test fails if a command panics.
func start(t testing.TB, opts options) *env {
	t.Helper()
	ctx := context.Background()
	st := teststore.Open(t, t.TempDir())
	acfg := config.Default().Auth
	acfg.Argon2Time, acfg.Argon2Memory = 1, 64
	acfg.FailureDelay, acfg.MaxFailureDelay = 0, 0
	if opts.auth != nil {
		opts.auth(&acfg)
	}
	log := clienttest.Logger(t, slog.LevelDebug, nil)
	authn, err := auth.New(acfg, st, log)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{store: st, accounts: map[string]store.Account{}}
	for _, name := range []string{alice, bob} {
		cred, err := auth.NewHasher(acfg).Credentials(password)
		if err != nil {
			t.Fatal(err)
		}
		if e.accounts[name], err = st.CreateAccount(ctx, name, cred); err != nil {
			t.Fatal(err)
		}
	}
	certPEM, keyPEM, err := server.SelfSignedCert([]string{"localhost", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	e.certFile = filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(e.certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	e.clientTLS = &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}

	limits := config.Default().Limits
	limits.CommandsPerSecond = 0
	e.cfg = managesieve.Config{
		Store: st, Auth: authn, Sessions: auth.NewSessionLimiter(limits.MaxConnectionsPerAccount),
		TLS: server.TLSConfig(cert), Sieve: config.Default().Sieve, Limits: limits, Logger: log,
	}
	if opts.config != nil {
		opts.config(&e.cfg)
	}
	e.server = managesieve.New(e.cfg)
	var l net.Listener
	if l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	e.addr = l.Addr().String()
	if opts.remote != "" {
		l = clienttest.FakeRemote(l, netip.MustParseAddr(opts.remote))
	}
	e.served.Add(1)
	go func() {
		defer e.served.Done()
		if err := e.server.Serve(l); !errors.Is(err, managesieve.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(e.shutdown)
	return e
}

// shutdown stops the server and waits for it.
func (e *env) shutdown() {
	e.stop.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := e.server.Shutdown(ctx); err != nil {
			panic("managesieve: shutdown: " + err.Error())
		}
		e.served.Wait()
	})
}

// scripts lists an account's scripts, with their content.
func (e *env) scripts(t testing.TB, account string) []store.SieveScript {
	t.Helper()
	ctx := context.Background()
	sess, err := e.store.Open(ctx, e.accounts[account].ID)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	list, err := sess.SieveScripts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range list {
		full, err := sess.SieveScript(ctx, s.Name)
		if err != nil {
			t.Fatal(err)
		}
		list[i].Content = full.Content
	}
	return list
}
