// Package managesieve serves ManageSieve (RFC 5804): mail clients
// (Thunderbird's sieve add-on, Roundcube's managesieve plugin,
// sieve-connect) upload, list, check, activate, fetch, rename and delete
// the Sieve scripts (RFC 5228) of the account they log in as. The one
// active script is what delivery runs; this package only keeps scripts,
// through the store, after checking each with sieve.CompileWith.
//
// Logins go through internal/auth exactly as IMAP's and POP3's do: SASL
// PLAIN, LOGIN and SCRAM-SHA-256 (RFC 4422, RFC 7677), the same throttling
// and lockout, plaintext refused before STARTTLS except on loopback. Limits:
// a script's size and an account's count of scripts (Config.Sieve, RFC
// 5804's QUOTA/MAXSIZE and QUOTA/MAXSCRIPTS), line length, idle and login
// timeouts, a count of malformed commands, and the command rate.
//
// Scripts may use vacation (RFC 5230, RFC 6131) and redirect only where
// the server can send (Config.SieveOptions, a relay configured), and the
// SIEVE capability lists vacation, and MAXREDIRECTS is announced, only
// then (RFC 5804 1.7: what the server supports). buzon does not reject
// or notify, so NOTIFY is not announced and scripts using them fail to
// compile.
package managesieve

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"time"

	"github.com/buzon-mail/buzon/internal/auth"
	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/server"
	"github.com/buzon-mail/buzon/internal/sieve"
	"github.com/buzon-mail/buzon/internal/store"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = server.ErrServerClosed

// Config is what a Server needs. Store and Auth are required; every other
// field has a usable zero value.
type Config struct {
	// Store holds the scripts (store.Session's Sieve methods).
	Store store.Store
	// Auth checks passwords and runs SASL exchanges.
	Auth *auth.Authenticator
	// Sessions bounds sessions per account across protocols. Nil: no bound.
	Sessions *auth.SessionLimiter
	// TLS is offered as STARTTLS (RFC 5804 2.2). Nil: no STARTTLS.
	TLS *tls.Config
	// TLSHandshakeTimeout bounds the handshake after STARTTLS. Default:
	// 30 seconds.
	TLSHandshakeTimeout time.Duration
	// Sieve holds the script limits, the timeouts and the count of
	// malformed commands tolerated; zero fields take config.Default's.
	Sieve config.Sieve
	// SieveOptions say what scripts may do beyond filing, as delivery
	// runs them: vacation and redirect where the Deliverer has a Sender.
	// The zero value allows none of it.
	SieveOptions sieve.Options
	// Limits holds the line length and command rate. A zero
	// MaxLineLength means 64 KiB; a zero CommandsPerSecond, no limit.
	Limits config.Limits
	// AllowPlaintext allows PLAIN and LOGIN without TLS from addresses
	// other than loopback.
	AllowPlaintext bool
	// Logger receives one line per session event. Default: discard.
	Logger *slog.Logger
}

// Server is a ManageSieve server. Create it with New.
type Server struct {
	cfg Config
	log *slog.Logger
	// baseCtx is the parent of every session's context; cancel ends
	// them all when Shutdown runs out of time.
	baseCtx context.Context
	cancel  context.CancelFunc
	// conns holds the listeners and sessions; sessions check
	// conns.Closing before reading each command.
	conns server.Conns[*conn]
}

// New returns a Server with the given configuration.
func New(cfg Config) *Server {
	def := config.Default()
	if cfg.Sieve.MaxScripts <= 0 {
		cfg.Sieve.MaxScripts = def.Sieve.MaxScripts
	}
	if cfg.Sieve.MaxScriptSize <= 0 {
		cfg.Sieve.MaxScriptSize = def.Sieve.MaxScriptSize
	}
	if cfg.Sieve.IdleTimeout <= 0 {
		cfg.Sieve.IdleTimeout = def.Sieve.IdleTimeout
	}
	if cfg.Sieve.LoginTimeout <= 0 {
		cfg.Sieve.LoginTimeout = def.Sieve.LoginTimeout
	}
	if cfg.Sieve.MaxErrors <= 0 {
		cfg.Sieve.MaxErrors = def.Sieve.MaxErrors
	}
	if cfg.Limits.MaxLineLength <= 0 {
		cfg.Limits.MaxLineLength = def.Limits.MaxLineLength
	}
	if cfg.TLSHandshakeTimeout <= 0 {
		cfg.TLSHandshakeTimeout = def.TLS.HandshakeTimeout.D()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{cfg: cfg, log: cfg.Logger, baseCtx: ctx, cancel: cancel}
}

// Serve accepts connections on l, offering STARTTLS when a TLS config is
// set, until Shutdown. It always returns a non-nil error.
func (s *Server) Serve(l net.Listener) error {
	newConn := func(nc net.Conn) *conn { return newConn(s, nc) }
	return s.conns.Serve(l, s.log, newConn, (*conn).serve, nil)
}

// Shutdown stops accepting connections and ends every session with
// BYE (TRYLATER): at once one waiting for a command or still reading one
// (a script being uploaded is not stored; the client sends it again to
// the next server), after the command one that is running one (a script
// is stored whole or not at all).
// It waits for the sessions to end until ctx is done; then it closes the
// rest, waits for them to return, and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.conns.Close((*conn).interrupt)
	err := s.conns.Wait(ctx)
	s.cancel()
	if err != nil {
		s.conns.Each(func(c *conn) { c.raw.Close() })
		s.conns.Wait(context.Background())
	}
	return err
}
