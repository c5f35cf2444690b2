// Package imapserver is buzon's IMAP server: IMAP4rev2 (RFC 9051) and
// IMAP4rev1 (RFC 3501) on one listener, with its own command parser and
// response writer over the store interfaces.
//
// Extensions: STARTTLS and LOGINDISABLED (RFC 9051), SASL-IR (RFC 4959),
// AUTH=PLAIN (RFC 4616), AUTH=LOGIN, AUTH=SCRAM-SHA-256 (RFC 7677), IDLE
// (RFC 2177), UIDPLUS (RFC 4315), MOVE (RFC 6851), NAMESPACE (RFC 2342),
// ENABLE (RFC 5161), ID (RFC 2971), UNSELECT (RFC 3691), LITERAL+ (RFC
// 7888), SPECIAL-USE and CREATE-SPECIAL-USE (RFC 6154), CHILDREN (RFC
// 3348), LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819), STATUS=SIZE
// (RFC 8438), ESEARCH (RFC 4731), SEARCHRES (RFC 5182), SORT (RFC 5256) and
// SORT=DISPLAY (RFC 5957), THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC
// 5256), APPENDLIMIT (RFC 7889), MULTIAPPEND (RFC 3502), BINARY (RFC 3516), UTF8=ACCEPT (RFC 6855),
// CONDSTORE and QRESYNC (RFC 7162), QUOTA (RFC 9208) and COMPRESS=DEFLATE
// (RFC 4978). Response codes follow RFC 5530.
package imapserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
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

// AppendFunc stores a message that a client appends: it reads exactly size
// bytes from r (fewer only when it fails), parses the message and calls
// sess.Append. Package delivery provides the one buzon uses.
type AppendFunc func(ctx context.Context, sess store.Session, mailboxID int64, r io.Reader, size int64, flags store.Flags, date time.Time) (store.AppendResult, error)

// Config configures a Server. Zero values get the defaults stated.
type Config struct {
	// Store holds the mail. Required.
	Store store.Store
	// Auth checks logins. Required.
	Auth *auth.Authenticator
	// Sessions bounds sessions per account; nil allows any number.
	Sessions *auth.SessionLimiter
	// TLS is used for STARTTLS and ServeTLS; nil offers no STARTTLS.
	TLS *tls.Config
	// Hostname is announced in the greeting. Default: "buzon".
	Hostname string
	// IMAP holds the timeouts. Zero durations get config.Default's.
	IMAP config.IMAP
	// Limits bound what one client can do. Zero fields get
	// config.Default's, but for CommandsPerSecond, where zero means no
	// limit, as in the configuration file.
	Limits config.Limits
	// AllowPlaintext allows LOGIN and plaintext SASL mechanisms without TLS
	// from addresses other than loopback.
	AllowPlaintext bool
	// Logger receives one line per event; nil discards.
	Logger *slog.Logger
	// Append stores APPENDed messages. Required.
	Append AppendFunc
	// WriteTimeout is how long one write to a client may block before the
	// connection is dropped: a client that reads nothing for this long
	// while a response waits is gone, and so is what it was owed. Default:
	// IMAP.IdleTimeout, at most 2 minutes.
	WriteTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake of IMAPS and STARTTLS.
	// Default: 30 seconds.
	TLSHandshakeTimeout time.Duration
	// FetchCacheSize bounds the memory, in bytes, kept for the ENVELOPE,
	// BODYSTRUCTURE and BODY of recently fetched messages, as sent (see
	// renderCache), and a quarter of it each for what SEARCH compares of
	// their envelopes and for the References THREAD follows; negative
	// keeps none. Default: 32 MiB.
	FetchCacheSize int64

	// deflateQuiet is how long a session with COMPRESS on waits for its
	// next command before it gives its compressor back (see
	// writer.parkDeflater): longer than a busy client's pause between
	// commands, and short beside how long an idle one stays. Tests
	// shorten it. Default: 10 seconds.
	deflateQuiet time.Duration
	// flood is how long a client may keep sending over its command rate
	// with commands that achieve nothing (see limit.Rate). Tests shorten
	// it. Default: limit.Flood.
	flood time.Duration
	// now is the clock of OLDER, YOUNGER and autoexpunge; tests move it.
	// Default: time.Now.
	now func() time.Time
}

// Server serves IMAP on any number of listeners.
type Server struct {
	cfg  Config        // with defaults filled in
	log  *slog.Logger  // cfg.Logger
	done chan struct{} // closed by Shutdown

	mu        sync.Mutex
	closing   bool                      // guarded by mu
	listeners map[net.Listener]struct{} // guarded by mu
	conns     map[*conn]struct{}        // guarded by mu
	drained   chan struct{}             // guarded by mu; closed when conns empties while closing
	nextID    uint64                    // guarded by mu; connection numbers for logs
	feeds     map[int64]*feed           // guarded by mu; by mailbox ID, while selected
	idlers    map[int64]*idlers         // guarded by mu; by account ID, while in IDLE
	// autoexpunged is when each account's Trash and Junk were last
	// expired by this process, and autoexpungeSwept when the map was
	// last rid of entries past use (see autoexpungeDue); guarded by mu.
	autoexpunged     map[int64]time.Time
	autoexpungeSwept time.Time
	// wakes counts the wake-ups of idle sessions (see idlers and feed).
	wakes atomic.Uint64
	// rendered holds FETCH items already written, envelopes what SEARCH
	// compared of messages' envelopes, references what THREAD REFERENCES
	// links messages by; nil when turned off.
	rendered   *renderCache
	envelopes  *lru[msgKey, *searchEnvelope]
	references *lru[msgKey, []string]

	// Buffers of connections that are reading or writing; idle
	// connections park theirs here (see reader and writer).
	readBufs  sync.Pool // of *bufio.Reader
	writeBufs sync.Pool // of *bufio.Writer
	// Compressors of COMPRESS DEFLATE sessions between commands (see
	// writer.park).
	deflaters deflaters
}

// New returns a Server for cfg, with defaults filled in.
func New(cfg Config) *Server {
	def := config.Default()
	if cfg.Hostname == "" {
		cfg.Hostname = "buzon"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.IMAP.IdleTimeout <= 0 {
		cfg.IMAP.IdleTimeout = def.IMAP.IdleTimeout
	}
	if cfg.IMAP.LoginTimeout <= 0 {
		cfg.IMAP.LoginTimeout = def.IMAP.LoginTimeout
	}
	l, d := &cfg.Limits, def.Limits
	setDefault(&l.MaxLineLength, d.MaxLineLength)
	setDefault(&l.MaxMessageSize, d.MaxMessageSize)
	setDefault(&l.MaxLiteral, d.MaxLiteral)
	// MaxMailboxes and MaxMailboxNameLength keep 0: no limit of our own.
	setDefault(&l.MaxOutputBacklog, d.MaxOutputBacklog)
	if cfg.WriteTimeout <= 0 {
		// A client that reads nothing for as long as it may stay silent
		// is idle; but a blocked write holds buffers that an idle session
		// gives back, so it is not kept for IMAP's 30 minutes.
		cfg.WriteTimeout = min(cfg.IMAP.IdleTimeout.D(), 2*time.Minute)
	}
	if cfg.TLSHandshakeTimeout <= 0 {
		cfg.TLSHandshakeTimeout = 30 * time.Second
	}
	if cfg.FetchCacheSize == 0 {
		cfg.FetchCacheSize = 32 << 20
	}
	if cfg.deflateQuiet <= 0 {
		cfg.deflateQuiet = 10 * time.Second
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		done:      make(chan struct{}),
		listeners: map[net.Listener]struct{}{},
		conns:     map[*conn]struct{}{},
		feeds:     map[int64]*feed{},
		idlers:    map[int64]*idlers{},

		autoexpunged: map[int64]time.Time{},
	}
	if cfg.FetchCacheSize > 0 {
		s.rendered = newLRU[renderKey, []byte](cfg.FetchCacheSize)
		s.envelopes = newLRU[msgKey, *searchEnvelope](cfg.FetchCacheSize / 4)
		s.references = newLRU[msgKey, []string](cfg.FetchCacheSize / 4)
	}
	s.readBufs.New = func() any { return bufio.NewReaderSize(nil, 16*1024) }
	writeSize := min(cfg.Limits.MaxOutputBacklog, 64*1024)
	s.writeBufs.New = func() any { return bufio.NewWriterSize(nil, writeSize) }
	return s
}

func setDefault[T int | int64 | float64](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = server.ErrServerClosed

// Serve accepts plain connections (STARTTLS available when Config.TLS is
// set) until Shutdown.
func (s *Server) Serve(l net.Listener) error { return s.serve(l, false) }

// ServeTLS accepts implicit-TLS connections (IMAPS) until Shutdown.
func (s *Server) ServeTLS(l net.Listener) error {
	if s.cfg.TLS == nil {
		return errors.New("imapserver: ServeTLS without a TLS config")
	}
	return s.serve(l, true)
}

func (s *Server) serve(l net.Listener, implicitTLS bool) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	for {
		nc, err := server.Accept(l, s.log)
		if err != nil {
			select {
			case <-s.done:
				return ErrServerClosed
			default:
			}
			return fmt.Errorf("imapserver: accept: %w", err)
		}
		c := s.newConn(nc, implicitTLS)
		if c == nil {
			nc.Close()
			continue
		}
		go c.serve()
	}
}

// Shutdown stops accepting connections, tells every session "* BYE" once
// its current command is done, and waits for them to close until ctx ends,
// when it closes the rest.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		close(s.done)
		for l := range s.listeners {
			l.Close()
		}
		for c := range s.conns {
			c.interruptLocked()
		}
	}
	if s.drained == nil {
		s.drained = make(chan struct{})
		if len(s.conns) == 0 {
			close(s.drained)
		}
	}
	drained := s.drained
	s.mu.Unlock()
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.raw.Close() // raw, not nc: STARTTLS may be replacing nc
		}
		s.mu.Unlock()
		return ctx.Err()
	}
}

// removeConn forgets a closed connection.
func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	if len(s.conns) == 0 && s.drained != nil {
		select {
		case <-s.drained:
		default:
			close(s.drained)
		}
	}
}
