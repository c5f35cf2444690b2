// Package smtpserver receives mail and hands it to package delivery, over
// LMTP (RFC 2033) from an MTA in front, or over SMTP (RFC 5321) from the
// internet, as the MX of its accounts; and it takes the mail its accounts
// send, over submission (RFC 6409; RFC 8314 for implicit TLS), for a
// relay MTA to carry on: one implementation, a Protocol chosen in its
// Config. It speaks the protocol itself, with PIPELINING (RFC 2920),
// ENHANCEDSTATUSCODES (RFC 2034, RFC 3463), 8BITMIME (RFC 6152), SIZE
// (RFC 1870), CHUNKING (RFC 3030), SMTPUTF8 (RFC 6531), LIMITS RCPTMAX
// (RFC 9422) and, in SMTP and submission, STARTTLS (RFC 3207) and the
// trace fields of RFC 5321 4.4 with the protocol names of RFC 3848; in
// submission, AUTH (RFC 4954) too.
//
// Every reply is sent only after the message is durable in the store: a
// 250 for a recipient (LMTP) or for the message (SMTP) means its copies
// survive a crash. SMTP receives only: every recipient must be a local
// account (no relaying), and nothing is sent, bounces included.
// Submission stores nothing: it relays an authenticated account's mail,
// from its own addresses only, to the relay MTA, synchronously (the
// relay's answer to each command is the client's), and keeps no queue:
// its 250 for a message is the relay's.
package smtpserver

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/buzon-mail/buzon/internal/auth"
	"github.com/buzon-mail/buzon/internal/delivery"
	"github.com/buzon-mail/buzon/internal/server"
	"github.com/buzon-mail/buzon/internal/smtpclient"
)

// Protocol is what a Server speaks.
type Protocol uint8

const (
	// LMTP (RFC 2033) for an MTA that has accepted the mail: a reply per
	// recipient after the data, messages stored as the MTA sends them.
	LMTP Protocol = iota
	// SMTP (RFC 5321) for mail from the internet, with this server its
	// final destination: STARTTLS, one reply per message, Received and
	// Return-Path fields added, quotas checked at RCPT, mail loops
	// refused.
	SMTP
	// Submission (RFC 6409) for the accounts' own mail clients: AUTH
	// before MAIL, senders checked against the account's addresses, and
	// each transaction relayed as it comes to Config.Relay; nothing is
	// stored.
	Submission
)

// String is the protocol's name, as logs show it.
func (p Protocol) String() string {
	switch p {
	case SMTP:
		return "smtp"
	case Submission:
		return "submission"
	}
	return "lmtp"
}

// esmtp says the protocol is SMTP's (RFC 5321) rather than LMTP's: EHLO
// and HELO, STARTTLS, the trace fields, MaxErrors.
func (p Protocol) esmtp() bool { return p != LMTP }

// Config configures a server. Deliverer and Spooler are required; every
// other field has a usable zero value.
type Config struct {
	Deliverer *delivery.Deliverer
	Spooler   *delivery.Spooler
	// Protocol is LMTP (the zero value), SMTP or Submission.
	Protocol Protocol
	// TLS, in SMTP and Submission, is offered as STARTTLS (RFC 3207),
	// and ServeTLS serves it at once (RFC 8314); nil offers none. LMTP
	// offers no STARTTLS.
	TLS *tls.Config
	// Auth checks the logins of Submission (required there).
	Auth *auth.Authenticator
	// AllowPlaintext lets Submission take AUTH without TLS from
	// addresses other than loopback (auth.PlaintextAllowed).
	AllowPlaintext bool
	// Relay is where Submission hands its mail (required there).
	Relay smtpclient.Config
	// AllowAnySender lets an account send as any address in MAIL FROM
	// and the From and Sender fields; otherwise only as its own
	// addresses, its aliases' and their +details.
	AllowAnySender bool
	// MaxMessagesPerHour bounds the messages (transactions) one account
	// starts through Submission, over all its sessions: an hour's worth
	// at once, then evenly; 0 means no limit.
	MaxMessagesPerHour int
	// TLSHandshakeTimeout bounds the handshake after STARTTLS; 0 means
	// 30 seconds.
	TLSHandshakeTimeout time.Duration
	// MaxReceived, in SMTP, is the most Received fields a message may
	// arrive with; one with more is taken for a mail loop and refused
	// (RFC 5321 6.3). 0 means 100.
	MaxReceived int
	// MaxErrors, in SMTP and Submission, is how many commands refused for good (5xx)
	// end a session with 421 4.7.0; 0 means 20.
	MaxErrors int
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
	// (RFC 5321 4.4). SMTP, the final delivery, always adds it.
	ReturnPath bool
	Logger     *slog.Logger
}

// Defaults for zero Config fields.
const (
	defaultHostname      = "buzon"
	defaultMaxRecipients = 100
	defaultMaxLine       = 64 * 1024
	defaultTimeout       = 10 * time.Minute
	defaultHandshake     = 30 * time.Second
	// RFC 5321 6.3's rule of thumb for a mail loop.
	defaultMaxReceived = 100
	defaultMaxErrors   = 20
)

// Server is an LMTP, SMTP or submission server. Create it with New.
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
	// retries remembers SMTP's copies stored before a 451 (retry.go).
	retries retries
	// relayNoUTF8 says the relay, when submission last reached it, did
	// not offer SMTPUTF8: EHLO stops offering it (RFC 6531 3.1: only
	// when the path can carry it) until the relay does again.
	relayNoUTF8 atomic.Bool
	// relayNo8Bit is the same for 8BITMIME (RFC 6152 3): a client that
	// is not offered it sends 7-bit MIME, where BODY=8BITMIME would be
	// refused.
	relayNo8Bit atomic.Bool
	// sendRates bound each account's messages in Submission.
	sendRates sendRates
}

// New returns a server of cfg.Protocol.
func New(cfg Config) *Server {
	if cfg.Hostname == "" {
		cfg.Hostname = defaultHostname
	}
	cfg.MaxRecipients = orDefault(cfg.MaxRecipients, defaultMaxRecipients)
	cfg.MaxLineLength = orDefault(cfg.MaxLineLength, defaultMaxLine)
	cfg.ReadTimeout = orDefault(cfg.ReadTimeout, defaultTimeout)
	cfg.WriteTimeout = orDefault(cfg.WriteTimeout, defaultTimeout)
	cfg.TLSHandshakeTimeout = orDefault(cfg.TLSHandshakeTimeout, defaultHandshake)
	cfg.MaxReceived = orDefault(cfg.MaxReceived, defaultMaxReceived)
	cfg.MaxErrors = orDefault(cfg.MaxErrors, defaultMaxErrors)
	if cfg.Protocol == SMTP {
		cfg.ReturnPath = true // RFC 5321 4.4: final delivery adds it
	}
	cfg.MaxMessageSize = max(cfg.MaxMessageSize, 0)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg: cfg,
		log: log.With("proto", cfg.Protocol.String()),
	}
	s.sendRates.perHour = cfg.MaxMessagesPerHour
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = server.ErrServerClosed

// Serve accepts connections on l (TCP or unix) until Shutdown, and then
// returns ErrServerClosed. It may run on several listeners at once.
func (s *Server) Serve(l net.Listener) error {
	newConn := func(nc net.Conn) *conn { return newConn(s, nc, false) }
	return s.conns.Serve(l, s.log, newConn, (*conn).serve, refuse)
}

// ServeTLS is Serve with TLS from the start (RFC 8314 3.3): submissions,
// usually on port 465.
func (s *Server) ServeTLS(l net.Listener) error {
	if s.cfg.TLS == nil {
		return errors.New("smtpserver: ServeTLS without a TLS config")
	}
	newConn := func(nc net.Conn) *conn { return newConn(s, nc, true) }
	return s.conns.Serve(l, s.log, newConn, (*conn).serve, nil)
}

// refuse answers a connection accepted as Shutdown began (RFC 5321 3.8).
func refuse(nc net.Conn) {
	nc.SetWriteDeadline(time.Now().Add(time.Second))
	nc.Write([]byte(replyShuttingDown.String()))
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
			c.raw.SetReadDeadline(time.Now())
		}
	})
	err := s.conns.Wait(ctx)
	s.cancel()
	if err == nil {
		return nil
	}
	s.conns.Each(func(c *conn) { c.raw.Close() })
	s.conns.Wait(context.Background())
	return err
}
