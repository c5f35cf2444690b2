// Package smtpserver receives mail over LMTP (RFC 2033) and hands it to
// package delivery. It is built on github.com/emersion/go-smtp, which speaks
// the protocol; this package decides what each recipient hears.
//
// Every reply is sent only after the message is durable in the store: a
// 250 for a recipient means its copy survives a crash.
package smtpserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/buzon-mail/buzon/internal/delivery"
	"github.com/buzon-mail/buzon/internal/store"
)

// Config configures an LMTP server.
type Config struct {
	Deliverer *delivery.Deliverer
	Spooler   *delivery.Spooler
	// Hostname is announced in the greeting.
	Hostname string
	// MaxRecipients per transaction; 0 means 100.
	MaxRecipients int
	// MaxMessageSize in bytes, advertised as SIZE (RFC 1870); 0 means no
	// limit.
	MaxMessageSize int64
	// MaxLineLength of commands and message lines; 0 means 64 KiB. Mail in
	// the wild has lines far beyond RFC 5322's 998 octets; a message with
	// a longer line is refused for good (554 5.6.0), not put off.
	MaxLineLength int
	// ReadTimeout and WriteTimeout bound a stalled client; 0 means 10
	// minutes (RFC 5321 4.5.3.2).
	ReadTimeout, WriteTimeout time.Duration
	// ReturnPath puts "Return-Path: <sender>" above each message
	// (RFC 5321 4.4).
	ReturnPath bool
	Logger     *slog.Logger
}

// Server is an LMTP server.
type Server struct {
	cfg  Config
	smtp *smtp.Server
	log  *slog.Logger
	// fixes are go-smtp's replies the connection corrects (replyFixes);
	// read-only after New.
	fixes map[string]string

	// inflight counts transactions between MAIL and their last reply, so
	// Shutdown can wait for them even after it had to close connections:
	// the store must outlive every delivery.
	inflight sync.WaitGroup
	// ctx is the context of every store call; Shutdown cancels it when its
	// own ends, so a store that hangs cannot hold the process (an append
	// is atomic: cancelled, it stored nothing).
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	sessions map[*session]bool // guarded by mu: open sessions
	closing  bool              // guarded by mu: Shutdown has begun
}

// New returns an LMTP server.
func New(cfg Config) *Server {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log.With("proto", "lmtp"), fixes: replyFixes(cfg.MaxMessageSize), sessions: map[*session]bool{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.LMTP = true
	srv.Domain = cfg.Hostname
	srv.MaxRecipients = orDefault(cfg.MaxRecipients, 100)
	// go-smtp is given no size limit: with one, it refuses a message of
	// exactly the limit over DATA, and answers a BDAT chunk that passes it
	// with one 552 where LMTP owes a reply per recipient (RFC 2033 4.2).
	// Mail applies the limit to SIZE=, LMTPData to the data, and LHLO's
	// SIZE names it through replyFixes.
	srv.MaxMessageBytes = 0
	srv.MaxLineLength = orDefault(cfg.MaxLineLength, 64*1024)
	srv.ReadTimeout = orDefault(cfg.ReadTimeout, 10*time.Minute)
	srv.WriteTimeout = orDefault(cfg.WriteTimeout, 10*time.Minute)
	srv.EnableSMTPUTF8 = true
	srv.ErrorLog = errorLog{s.log}
	s.smtp = srv
	return s
}

func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// Serve accepts LMTP connections on l (TCP or unix) until Shutdown.
func (s *Server) Serve(l net.Listener) error {
	err := s.smtp.Serve(bufferedListener{l, s.smtp.ReadTimeout, s.fixes})
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections. Sessions between transactions are
// told 421 4.3.2 and closed at once; a transaction in flight finishes,
// gets its replies, and then its connection ends. When ctx ends first, the
// remaining connections are closed (a client that has not seen its
// replies retries: nothing is acknowledged that is not stored), and
// Shutdown still waits for deliveries already under way to finish.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	var idle []*session
	for sess := range s.sessions {
		if !sess.bc.inTx.Load() {
			idle = append(idle, sess)
		}
	}
	s.mu.Unlock()
	// Told outside the lock: a client slow to take the goodbye must not
	// hold up the others.
	for _, sess := range idle {
		sess.end()
	}
	err := s.smtp.Shutdown(ctx)
	if ctx.Err() != nil {
		s.cancel()
		s.smtp.Close()
	}
	s.inflight.Wait()
	s.cancel()
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	sess := &session{srv: s, conn: c, remote: c.Conn().RemoteAddr().String()}
	if bc, ok := c.Conn().(*bufferedConn); ok {
		sess.bc = bc
	} else {
		sess.bc = &bufferedConn{} // not one of Serve's: nothing to mark
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, errShuttingDown
	}
	s.sessions[sess] = true
	return sess, nil
}

// errLineTooLong refuses a message with a line over MaxLineLength.
var errLineTooLong = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "message has a line too long to take; limits.max_line_length bounds it"}

// errNestedMail refuses MAIL inside a transaction (RFC 5321 4.1.4).
var errNestedMail = &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "nested MAIL command"}

// errSizeDeclared refuses a MAIL whose SIZE= is over the limit (RFC 1870
// 6.1).
var errSizeDeclared = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "message size exceeds fixed maximum message size"}

// errShuttingDown is the reply to a client that starts a transaction
// after Shutdown began (RFC 5321 3.8: 421 and close).
var errShuttingDown = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "shutting down; try again later"}

// session is one LMTP transaction sequence on a connection.
type session struct {
	srv  *Server
	conn *smtp.Conn
	// bc is the connection Serve accepted. Its inTx, set from MAIL until
	// the transaction's replies, changes under srv.mu, so that Shutdown
	// and Mail agree on which sessions are between transactions.
	bc     *bufferedConn
	remote string      // client address, for logs
	from   string      // reverse path of the current transaction
	rcpts  []recipient // accepted recipients, in RCPT order
}

// end closes a session that was between transactions, telling the client
// why. A MAIL that raced with it gets the same answer (Mail checks
// srv.closing).
func (s *session) end() {
	nc := s.conn.Conn()
	nc.SetWriteDeadline(time.Now().Add(time.Second))
	io.WriteString(nc, "421 4.3.2 shutting down; try again later\r\n")
	nc.Close()
}

// closeReadAfterReplies makes a connection end once the replies of the
// transaction that just finished are written: the next read sees EOF.
func (s *session) closeReadAfterReplies() {
	nc := s.conn.Conn()
	for {
		if cr, ok := nc.(interface{ CloseRead() error }); ok {
			cr.CloseRead()
			return
		}
		inner, ok := nc.(interface{ NetConn() net.Conn })
		if !ok {
			nc.Close() // cannot half-close: the replies may be lost; the client retries
			return
		}
		nc = inner.NetConn()
	}
}

// recipient is an accepted RCPT and the account it reaches.
type recipient struct {
	addr string
	acct store.Account
}

var _ smtp.LMTPSession = (*session)(nil)

// Reset ends a transaction without delivering it.
func (s *session) Reset() {
	s.from, s.rcpts = "", nil
	s.endTx()
}

// Logout forgets the session.
func (s *session) Logout() error {
	s.endTx()
	s.srv.mu.Lock()
	delete(s.srv.sessions, s)
	s.srv.mu.Unlock()
	return nil
}

// Mail starts a transaction, unless one is open, the declared size is over
// the limit, or the server is shutting down.
func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	// go-smtp takes a MAIL inside a transaction: the message would go to
	// the recipients named before it as well as after, from the second
	// sender. Only this connection's MAIL sets inTx, so it is read
	// without srv.mu.
	if s.bc.inTx.Load() {
		return errNestedMail
	}
	if limit := s.srv.cfg.MaxMessageSize; limit > 0 && opts != nil && opts.Size > limit {
		return errSizeDeclared
	}
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	if s.srv.closing {
		return errShuttingDown
	}
	if !s.bc.inTx.Load() {
		s.bc.inTx.Store(true)
		s.srv.inflight.Add(1)
	}
	s.from = from
	return nil
}

// endTx marks the transaction over; during shutdown the connection then
// ends.
func (s *session) endTx() {
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	if !s.bc.inTx.Load() {
		return
	}
	s.bc.inTx.Store(false)
	s.srv.inflight.Done()
	if s.srv.closing {
		s.closeReadAfterReplies()
	}
}

// Rcpt refuses unknown recipients at once (RFC 2033 4.2), so the MTA
// bounces them without sending the message.
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	acct, err := s.srv.cfg.Deliverer.Lookup(s.srv.ctx, to)
	if err != nil {
		if !errors.Is(err, delivery.ErrUnknownRecipient) {
			s.srv.log.Error("recipient lookup", "rcpt", to, "err", err)
		}
		return smtpError(err)
	}
	s.rcpts = append(s.rcpts, recipient{to, acct})
	return nil
}

// Data is go-smtp's single-status form of LMTPData, which it calls instead
// in LMTP mode; it is here to complete the Session interface.
func (s *session) Data(r io.Reader) error {
	return s.LMTPData(r, nil)
}

// LMTPData spools the message once and delivers a copy per recipient,
// each with its own status (RFC 2033 4.2).
func (s *session) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	// go-smtp writes the replies after LMTPData returns and then calls
	// Reset, which ends the transaction.
	ctx := s.srv.ctx
	msg, err := s.spool(r)
	if err != nil {
		if clientsFault(err) {
			s.srv.log.Info("message not taken", "remote", s.remote, "err", err)
		} else {
			s.srv.log.Error("spool", "remote", s.remote, "err", err)
		}
		// The rest of the data is read and dropped, so that the reply
		// comes after it, one per recipient, and the data is not read as
		// commands. go-smtp does that itself for DATA; a BDAT chunk it
		// would leave unread, answering once for all the recipients.
		// A read error (the line limit, the connection) stops it.
		io.Copy(io.Discard, r)
		return smtpError(err)
	}
	defer msg.Close()
	// A recipient named twice gets one copy and the same reply twice
	// (RFC 2033 4.2: a reply per successful RCPT), as Dovecot does: an MTA
	// whose aliases expand to one address twice does not deliver twice.
	done := map[string]error{}
	var last error
	for _, rcpt := range s.rcpts {
		key := strings.ToLower(rcpt.addr)
		err, dup := done[key]
		if !dup {
			_, err = s.srv.cfg.Deliverer.DeliverAccount(ctx, rcpt.acct, msg)
			if err != nil {
				s.srv.log.Warn("delivery failed", "rcpt", rcpt.addr, "from", s.from, "err", err)
			}
			done[key] = err
		}
		if status != nil {
			status.SetStatus(rcpt.addr, smtpError(err))
		}
		last = err
	}
	return smtpError(last)
}

// spool reads the message into the spool, with the size limit applied to
// the octets the client sent, as SIZE= counts them (RFC 1870 5): a
// message of exactly the limit is taken, over DATA or BDAT, and a
// Return-Path line added here does not count.
func (s *session) spool(r io.Reader) (*delivery.Spooled, error) {
	data, sp := r, s.srv.cfg.Spooler
	if limit := s.srv.cfg.MaxMessageSize; limit > 0 {
		data = &sizeLimit{r: r, left: limit}
	}
	if s.srv.cfg.ReturnPath {
		// The path came on a command line (no CR or LF); control bytes
		// are dropped all the same, so the field stays one line.
		from := strings.Map(func(r rune) rune {
			if r < ' ' || r == 0x7f {
				return -1
			}
			return r
		}, s.from)
		field := "Return-Path: <" + from + ">\r\n"
		data = io.MultiReader(strings.NewReader(field), data)
		if sp.MaxSize > 0 {
			own := *sp // a Spooler is its settings only
			own.MaxSize += int64(len(field))
			sp = &own
		}
	}
	return sp.Spool(data)
}

// sizeLimit passes a message's data on until more than left octets came,
// then fails with delivery.ErrTooLarge.
type sizeLimit struct {
	r    io.Reader
	left int64
}

func (l *sizeLimit) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return 0, delivery.ErrTooLarge
	}
	return n, err
}

// clientsFault says whether a message could not be spooled because of what
// the client sent or did: too large, a line too long, or the connection
// ended or the transaction reset before the end of its data.
func clientsFault(err error) bool {
	for _, e := range []error{delivery.ErrTooLarge, smtp.ErrTooLongLine, smtp.ErrDataReset, io.ErrUnexpectedEOF} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// smtpError turns a delivery error into the reply the client sees.
func smtpError(err error) error {
	if err == nil {
		return nil
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se // ours, or go-smtp's
	}
	if errors.Is(err, smtp.ErrTooLongLine) {
		// A line of the message over MaxLineLength: trying again will not
		// shorten it, so the refusal is permanent (RFC 5321 4.2.1).
		return errLineTooLong
	}
	o := delivery.Classify(err)
	return &smtp.SMTPError{Code: o.Code, EnhancedCode: smtp.EnhancedCode(o.Enhanced), Message: o.Text}
}

// errorLog adapts slog to go-smtp's logger.
type errorLog struct{ log *slog.Logger }

func (l errorLog) Printf(format string, v ...any) {
	l.log.Error("lmtp", "msg", fmt.Sprintf(format, v...))
}
func (l errorLog) Println(v ...any) { l.log.Error("lmtp", "msg", fmt.Sprint(v...)) }
