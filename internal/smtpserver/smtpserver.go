// Package smtpserver receives mail over LMTP (RFC 2033) and hands it to
// package delivery. It speaks the protocol itself: RFC 5321 commands as
// LMTP keeps them, with PIPELINING (RFC 2920), ENHANCEDSTATUSCODES
// (RFC 2034, RFC 3463), 8BITMIME (RFC 6152), SIZE (RFC 1870), CHUNKING
// (RFC 3030), SMTPUTF8 (RFC 6531) and LIMITS RCPTMAX (RFC 9422).
//
// Every reply is sent only after the message is durable in the store: a
// 250 for a recipient means its copy survives a crash.
package smtpserver

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/buzon-mail/buzon/internal/delivery"
	"github.com/buzon-mail/buzon/internal/server"
)

// Config configures an LMTP server. Deliverer and Spooler are required;
// every other field has a usable zero value.
type Config struct {
	Deliverer *delivery.Deliverer
	Spooler   *delivery.Spooler
	// Hostname is announced in the greeting, and RCPT TO:<postmaster>
	// reaches postmaster@Hostname. Default: "buzon".
	Hostname string
	// MaxRecipients per transaction; 0 means 100.
	MaxRecipients int
	// MaxMessageSize in bytes, advertised as SIZE (RFC 1870); 0 means no
	// limit.
	MaxMessageSize int64
	// MaxLineLength of commands and message lines, line ending included;
	// 0 means 64 KiB. Mail in the wild has lines far beyond RFC 5322's
	// 998 octets; a message with a longer line is refused for good
	// (554 5.6.0), not put off.
	MaxLineLength int
	// ReadTimeout bounds each wait for the client's bytes, and
	// WriteTimeout each write to it; 0 means 10 minutes
	// (RFC 5321 4.5.3.2).
	ReadTimeout, WriteTimeout time.Duration
	// ReturnPath puts "Return-Path: <sender>" above each message
	// (RFC 5321 4.4).
	ReturnPath bool
	Logger     *slog.Logger
}

// Defaults for zero Config fields.
const (
	defaultHostname      = "buzon"
	defaultMaxRecipients = 100
	defaultMaxLine       = 64 * 1024
	defaultTimeout       = 10 * time.Minute
)

// Server is an LMTP server. Create it with New.
type Server struct {
	cfg Config // defaults applied
	log *slog.Logger

	// ctx is the context of every store call; Shutdown cancels it when its
	// own ends, so a store that hangs cannot hold the process (an append
	// is atomic: cancelled, it stored nothing).
	ctx    context.Context
	cancel context.CancelFunc
	// conns holds the listeners and connections; a connection runs until
	// the replies of its last delivery are written, so the store must
	// outlive it.
	conns server.Conns[*conn]
}

// New returns an LMTP server.
func New(cfg Config) *Server {
	if cfg.Hostname == "" {
		cfg.Hostname = defaultHostname
	}
	cfg.MaxRecipients = orDefault(cfg.MaxRecipients, defaultMaxRecipients)
	cfg.MaxLineLength = orDefault(cfg.MaxLineLength, defaultMaxLine)
	cfg.ReadTimeout = orDefault(cfg.ReadTimeout, defaultTimeout)
	cfg.WriteTimeout = orDefault(cfg.WriteTimeout, defaultTimeout)
	cfg.MaxMessageSize = max(cfg.MaxMessageSize, 0)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg: cfg,
		log: log.With("proto", "lmtp"),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// Serve accepts LMTP connections on l (TCP or unix) until Shutdown, and
// then returns nil. It may run on several listeners at once.
func (s *Server) Serve(l net.Listener) error {
	if !s.conns.Listen(l) {
		l.Close()
		return nil
	}
	defer s.conns.Unlisten(l)
	for {
		nc, err := server.Accept(l, s.log)
		if err != nil {
			if s.conns.Closing() {
				return nil
			}
			return err
		}
		c := newConn(s, nc)
		if !s.conns.Add(c) {
			// Accepted as Shutdown began (RFC 5321 3.8).
			nc.SetWriteDeadline(time.Now().Add(time.Second))
			nc.Write([]byte(replyShuttingDown.String()))
			nc.Close()
			continue
		}
		go func() {
			defer s.conns.Remove(c)
			c.serve()
		}()
	}
}

// Shutdown stops accepting connections. Sessions between transactions are
// told 421 4.3.2 and closed at once; a transaction in flight finishes,
// gets its replies and 421 4.3.2, and then its connection ends. When ctx
// ends first, the remaining connections are closed (a client that has
// not seen its replies retries: nothing is acknowledged that is not
// stored), the store calls still running are cancelled, and Shutdown
// waits for them to return before it returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	// Sessions between transactions are waiting for a command, or about
	// to: a read deadline in the past wakes them, and they say goodbye
	// themselves (conn.mustLeave). A session's busy changes under the
	// lock Close holds, so none starts a transaction unnoticed.
	s.conns.Close(func(c *conn) {
		if !c.busy.Load() {
			c.nc.SetReadDeadline(time.Now())
		}
	})
	err := s.conns.Wait(ctx)
	s.cancel()
	if err == nil {
		return nil
	}
	s.conns.Each(func(c *conn) { c.nc.Close() })
	s.conns.Wait(context.Background())
	return err
}
