// Package pop3server serves INBOX over POP3: RFC 1939 (POP3), RFC 2449
// (CAPA and response codes), RFC 2595 (STLS), RFC 3206 (the SYS and AUTH
// response codes) and RFC 5034 (SASL with initial responses).
//
// A session sees a snapshot of INBOX taken when it logs in, under the
// account's "pop3" store lock (RFC 1939 8). Deletions are applied at QUIT
// (the UPDATE state) as one store expunge, which IMAP sessions then see.
// A second login hears [IN-USE], unless the session holding the lock on
// this server has not heard from its client for Config.POP3.StaleSession:
// then that session ends, its deletions dropped, and the login goes in.
// A message removed by another path during the session answers
// "-ERR message no longer exists", unless the session had read it ahead
// (with a store.BodyBatcher): then it is sent, as if asked for a moment
// earlier. A session whose account is deleted (buzon user del) ends at
// its next command with "-ERR [SYS/PERM]", its deletions not applied.
//
// The UIDL of a message is fmt.Sprintf("%08x%08x", uidvalidity, uid) of
// the INBOX message: both never change while the message exists, so
// neither does its UIDL, across sessions, restarts and store migrations
// that keep UIDs.
//
// APOP is not offered: it needs the password in the clear on the server.
package pop3server

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/buzon-mail/buzon/internal/auth"
	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/server"
	"github.com/buzon-mail/buzon/internal/store"
)

// ErrServerClosed is returned by Serve and ServeTLS after Shutdown.
var ErrServerClosed = server.ErrServerClosed

// Config is what a Server needs. Store and Auth are required; every other
// field has a usable zero value.
type Config struct {
	// Store holds the mail.
	Store store.Store
	// Auth checks passwords and runs SASL exchanges.
	Auth *auth.Authenticator
	// Sessions bounds sessions per account across protocols. Nil: no bound.
	Sessions *auth.SessionLimiter
	// TLS is used by ServeTLS and offered as STLS. Nil: no STLS, and
	// ServeTLS fails.
	TLS *tls.Config
	// Hostname is named in the greeting. Default: "buzon".
	Hostname string
	// POP3 holds the idle timeout (default 10 minutes, RFC 1939 3) and
	// the expiry settings.
	POP3 config.POP3
	// Limits holds the line length and command rate limits. A zero
	// MaxLineLength means 64 KiB; a zero CommandsPerSecond means no limit.
	Limits config.Limits
	// AllowPlaintext allows USER/PASS, PLAIN and LOGIN without TLS from
	// addresses other than loopback.
	AllowPlaintext bool
	// Logger receives one line per session event. Default: discard.
	Logger *slog.Logger
	// Now tells the time for retrieval records and expiry. Default:
	// time.Now.
	Now func() time.Time
	// TLSHandshakeTimeout bounds a TLS handshake (POP3S or after STLS), so a
	// client that starts one and stalls cannot hold the connection.
	// Default: 30 seconds.
	TLSHandshakeTimeout time.Duration
	// ReadAheadIdle is how long a session keeps the bodies it read ahead
	// while its client sends nothing, so that idle sessions do not hold
	// them until they time out. Default: 30 seconds, long enough for a
	// slow link to drain the message before.
	ReadAheadIdle time.Duration
}

// Defaults used for zero Config fields.
const (
	defaultIdleTimeout = 10 * time.Minute // RFC 1939 3: at least 10 minutes
	defaultMaxLine     = 64 * 1024
	defaultInterval    = time.Hour
	defaultHandshake   = 30 * time.Second
	defaultAheadIdle   = 30 * time.Second
)

// maxCommandLine is the longest command line accepted, CRLF included.
// RFC 2449 4 allows 255 octets; a client with a long password or SASL
// initial response gets some slack.
const maxCommandLine = 1024

// bodyBufSize is how much of a message RETR reads at once: most mail fits,
// so a RETR is one read from the store and one or two writes to the client.
const bodyBufSize = 64 * 1024

// How long sessions in TRANSACTION may go on once Shutdown starts: until
// drainMargin before its context's deadline, so that they are told
// goodbye before it, or for drainTime if it has none.
const (
	drainMargin = time.Second
	drainTime   = 10 * time.Second
)

// Server is a POP3 server. Create it with New.
type Server struct {
	cfg Config
	log *slog.Logger

	// drainUntil (Unix nanoseconds, set before closing) is how long
	// sessions in TRANSACTION may go on after Shutdown starts (see
	// conn.mustLeave).
	drainUntil atomic.Int64
	// baseCtx is the parent of every session's context; cancel ends
	// them all when Shutdown runs out of time.
	baseCtx context.Context
	cancel  context.CancelFunc
	// conns holds the listeners and sessions; sessions check
	// conns.Closing before reading each command.
	conns server.Conns[*conn]

	holdersMu sync.Mutex
	// holders are the sessions holding their account's maildrop lock, by
	// account ID, for a login to take over a stale one (see hold).
	holders map[int64]*conn // guarded by holdersMu
	// stopAnswering stops answering other nodes' requests for a maildrop
	// (takeover.go); nil when the store is not shared.
	stopAnswering func()
}

// New returns a Server with the given configuration.
func New(cfg Config) *Server {
	if cfg.Hostname == "" {
		cfg.Hostname = "buzon"
	}
	if cfg.POP3.IdleTimeout <= 0 {
		cfg.POP3.IdleTimeout = config.Duration(defaultIdleTimeout)
	}
	if cfg.POP3.ExpireInterval <= 0 {
		cfg.POP3.ExpireInterval = config.Duration(defaultInterval)
	}
	if cfg.Limits.MaxLineLength <= 0 {
		cfg.Limits.MaxLineLength = defaultMaxLine
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ReadAheadIdle <= 0 {
		cfg.ReadAheadIdle = defaultAheadIdle
	}
	if cfg.TLSHandshakeTimeout <= 0 {
		cfg.TLSHandshakeTimeout = defaultHandshake
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		baseCtx: ctx,
		cancel:  cancel,
	}
	if asker, ok := cfg.Store.(store.ReleaseAsker); ok {
		s.stopAnswering = asker.OnAskRelease(s.answerRelease)
	}
	return s
}

// Serve accepts plain connections on l, offering STLS when a TLS config
// is set, until Shutdown. It always returns a non-nil error.
func (s *Server) Serve(l net.Listener) error { return s.serve(l, false) }

// ServeTLS accepts connections on l and starts TLS on each at once
// (POP3S, port 995).
func (s *Server) ServeTLS(l net.Listener) error {
	if s.cfg.TLS == nil {
		return errors.New("pop3server: ServeTLS without a TLS config")
	}
	return s.serve(l, true)
}

func (s *Server) serve(l net.Listener, implicitTLS bool) error {
	newConn := func(nc net.Conn) *conn { return newConn(s, nc, implicitTLS) }
	return s.conns.Serve(l, s.log, newConn, (*conn).serve, nil)
}

// Shutdown stops accepting connections and ends every session. A session
// that has not logged in hears "-ERR [SYS/TEMP] server shutting down" at
// once. One in TRANSACTION state goes on until its QUIT, which applies
// its deletions, until shortly before ctx's deadline (drainTime when
// ctx has none): a client downloading and deleting would otherwise
// download again, after the restart, what it had already stored. Past
// that it is told goodbye too, without its deletions applied (RFC 1939
// 6). Shutdown waits for the sessions to end until ctx is done; then it
// closes the rest, waits for them to return, and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	drainUntil := time.Now().Add(drainTime)
	if d, ok := ctx.Deadline(); ok {
		drainUntil = d.Add(-drainMargin)
	}
	s.drainUntil.Store(drainUntil.UnixNano())
	if s.stopAnswering != nil {
		s.stopAnswering()
	}
	s.conns.Close((*conn).interrupt)
	err := s.conns.Wait(ctx)
	s.cancel()
	if err != nil {
		// Closed, with their contexts cancelled, the sessions return
		// soon; the store must outlive their logouts.
		s.conns.Each(func(c *conn) { c.nc.Close() })
		s.conns.Wait(context.Background())
	}
	return err
}
