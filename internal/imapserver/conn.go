package imapserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/buzon-mail/buzon/internal/limit"
	"github.com/buzon-mail/buzon/internal/message"
	"github.com/buzon-mail/buzon/internal/mutf7"
	"github.com/buzon-mail/buzon/internal/server"
	"github.com/buzon-mail/buzon/internal/store"
)

// state is a protocol state (RFC 9051 3), as a bit so the command table can
// list several.
type state uint8

const (
	stateNotAuth  state = 1 << iota // not authenticated
	stateAuth                       // authenticated, no mailbox selected
	stateSelected                   // a mailbox selected

	stateAny        = stateNotAuth | stateAuth | stateSelected
	stateAuthorised = stateAuth | stateSelected
)

// cmdSpec is one command: the states it is allowed in, its argument parser
// and the method that runs it.
type cmdSpec struct {
	states state
	parse  func(*parser, *command) any
	run    func(*conn, *command)
}

// commands is the one table of commands and the states that allow each
// (RFC 9051 6). It is never modified.
var commands = map[string]cmdSpec{
	// RFC 9051 6.1: any state.
	"CAPABILITY": {stateAny, nil, (*conn).cmdCapability},
	"NOOP":       {stateAny, nil, (*conn).cmdNoop},
	"LOGOUT":     {stateAny, nil, (*conn).cmdLogout},
	"ID":         {stateAny, parseID, (*conn).cmdID}, // RFC 2971

	// RFC 9051 6.2: not authenticated.
	"STARTTLS":     {stateNotAuth, nil, (*conn).cmdStarttls},
	"AUTHENTICATE": {stateNotAuth, parseAuthenticate, (*conn).cmdAuthenticate},
	"LOGIN":        {stateNotAuth, parseLogin, (*conn).cmdLogin},

	// RFC 9051 6.3: authenticated (and selected).
	"ENABLE":       {stateAuthorised, parseEnable, (*conn).cmdEnable},
	"SELECT":       {stateAuthorised, parseSelect, (*conn).cmdSelect},
	"EXAMINE":      {stateAuthorised, parseSelect, (*conn).cmdSelect},
	"CREATE":       {stateAuthorised, parseCreate, (*conn).cmdCreate},
	"DELETE":       {stateAuthorised, parseMailbox, (*conn).cmdDelete},
	"RENAME":       {stateAuthorised, parseRename, (*conn).cmdRename},
	"SUBSCRIBE":    {stateAuthorised, parseMailbox, (*conn).cmdSubscribe},
	"UNSUBSCRIBE":  {stateAuthorised, parseMailbox, (*conn).cmdSubscribe},
	"LIST":         {stateAuthorised, parseList, (*conn).cmdList},
	"LSUB":         {stateAuthorised, parseList, (*conn).cmdList},
	"NAMESPACE":    {stateAuthorised, nil, (*conn).cmdNamespace},
	"STATUS":       {stateAuthorised, parseStatus, (*conn).cmdStatus},
	"APPEND":       {stateAuthorised, parseAppend, (*conn).cmdAppend},
	"IDLE":         {stateAuthorised, nil, (*conn).cmdIdle},
	"GETQUOTA":     {stateAuthorised, parseQuotaRoot, (*conn).cmdGetQuota},
	"GETQUOTAROOT": {stateAuthorised, parseMailbox, (*conn).cmdGetQuotaRoot},
	"SETQUOTA":     {stateAuthorised, parseSetQuota, (*conn).cmdSetQuota},
	"COMPRESS":     {stateAuthorised, parseCompress, (*conn).cmdCompress},

	// RFC 9051 6.4: selected.
	"CHECK":       {stateSelected, nil, (*conn).cmdNoop},
	"CLOSE":       {stateSelected, nil, (*conn).cmdClose},
	"UNSELECT":    {stateSelected, nil, (*conn).cmdUnselect},
	"EXPUNGE":     {stateSelected, nil, (*conn).cmdExpunge},
	"UID EXPUNGE": {stateSelected, parseUIDExpunge, (*conn).cmdExpunge},
	"SEARCH":      {stateSelected, parseSearch, (*conn).cmdSearch},
	"UID SEARCH":  {stateSelected, parseSearch, (*conn).cmdSearch},
	"SORT":        {stateSelected, parseSort, (*conn).cmdSort},
	"UID SORT":    {stateSelected, parseSort, (*conn).cmdSort},
	"THREAD":      {stateSelected, parseThread, (*conn).cmdThread},
	"UID THREAD":  {stateSelected, parseThread, (*conn).cmdThread},
	"FETCH":       {stateSelected, parseFetch, (*conn).cmdFetch},
	"UID FETCH":   {stateSelected, parseFetch, (*conn).cmdFetch},
	"STORE":       {stateSelected, parseStore, (*conn).cmdStore},
	"UID STORE":   {stateSelected, parseStore, (*conn).cmdStore},
	"COPY":        {stateSelected, parseCopy, (*conn).cmdCopy},
	"UID COPY":    {stateSelected, parseCopy, (*conn).cmdCopy},
	"MOVE":        {stateSelected, parseCopy, (*conn).cmdCopy},
	"UID MOVE":    {stateSelected, parseCopy, (*conn).cmdCopy},
}

// conn is one client connection and its session.
type conn struct {
	srv *Server
	log *slog.Logger // with the connection number, remote address and, once known, account
	// raw is the accepted connection; its deadlines also govern nc.
	raw net.Conn
	// nc is raw, or the TLS connection over it after STARTTLS or on IMAPS.
	nc     net.Conn
	remote netip.Addr // the client's address, for throttling and the plaintext rule
	tls    bool       // nc is TLS
	r      *reader    // what the client sends
	w      *writer    // what the server answers
	ctx    context.Context
	cancel context.CancelFunc // cancels ctx when the connection ends

	// waiting is set while the connection blocks reading its next command
	// or in IDLE, the only moments Shutdown may interrupt it, with its
	// buffers parked. Guarded by srv.mu.
	waiting bool
	// woken is the number of the last wake-up of the session in IDLE (see
	// idlers), 0 once handled. Guarded by srv.mu.
	woken uint64

	state state       // the protocol state (RFC 9051 3)
	rate  *limit.Rate // Limits.CommandsPerSecond
	// pace puts the read deadlines on a command under way (see pacer).
	// Its hard deadline is the login deadline, when a client that has not
	// logged in is disconnected: IMAP.LoginTimeout after the connection
	// came, however many commands it sends meanwhile; zero once logged in.
	pace pacer
	// Extensions the client turned on with ENABLE (RFC 5161) or, for
	// CONDSTORE, with a CONDSTORE enabling command (RFC 7162 3.1).
	rev2      bool // IMAP4rev2 (RFC 9051)
	utf8      bool // UTF8=ACCEPT (RFC 6855), implied by IMAP4rev2
	condstore bool
	qresync   bool
	// compressed is set once COMPRESS DEFLATE is on (RFC 4978); inflate
	// then decodes what the client sends.
	compressed bool
	inflate    *inflateReader

	// After authentication:
	acct    store.Account
	sess    store.Session
	release func()    // returns the account's session slot
	sel     *selected // the selected mailbox, nil when none

	// searchRes is the saved search result, as UIDs (RFC 5182).
	searchRes []store.UID
	// dec decodes the stored structures of FETCH and SEARCH, one message
	// at a time (see structure).
	dec message.Decoder

	// cmdArrived is when the current command (or the DONE that ends IDLE)
	// was read: the store's HighestModSeq must reflect what was committed
	// before it.
	cmdArrived time.Time

	// idLogged is set once the client's ID (RFC 2971) was logged.
	idLogged bool

	// closing is set when the session must end after the current command.
	closing bool
	// linger is set when the session ends while the client may still be
	// sending: a literal too big to skip, a line too long to read, a flood
	// of commands. The connection then closes with lingeringClose.
	linger bool
	// completion overrides the tagged OK text of the current command
	// ("[COPYUID ...] ..."); empty for the default. done is set when the
	// command wrote its own tagged response.
	completion string
	done       bool
}

func (s *Server) newConn(nc net.Conn, implicitTLS bool) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil
	}
	s.nextID++
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{
		srv:    s,
		raw:    nc,
		nc:     nc,
		ctx:    ctx,
		cancel: cancel,
		state:  stateNotAuth,
	}
	if ap, err := netip.ParseAddrPort(nc.RemoteAddr().String()); err == nil {
		c.remote = ap.Addr().Unmap()
	}
	c.log = s.log.With("conn", s.nextID, "remote", nc.RemoteAddr().String())
	c.pace = pacer{setDeadline: c.setReadDeadline, pause: s.cfg.IMAP.IdleTimeout.D(), hard: time.Now().Add(s.cfg.IMAP.LoginTimeout.D())}
	c.rate = limit.NewRate(s.cfg.Limits.CommandsPerSecond)
	c.rate.SetFlood(s.cfg.flood)
	c.setIO(implicitTLS)
	s.conns[c] = struct{}{}
	return c
}

// setIO wraps nc in the reader and writer; with tls it first wraps nc in
// TLS.
func (c *conn) setIO(startTLS bool) {
	if startTLS {
		tc := tls.Server(c.raw, c.srv.cfg.TLS)
		c.nc, c.tls = tc, true
	}
	lim := c.srv.cfg.Limits
	if c.r != nil {
		c.r.park() // STARTTLS: nothing is buffered
	}
	c.r = newReader(c.nc, &c.srv.readBufs, lim.MaxLineLength, &c.pace)
	if c.w != nil {
		c.w.park() // STARTTLS: the OK was flushed
	}
	c.w = newWriter(deadlineWriter{c.nc, c.srv.cfg.WriteTimeout}, &c.srv.writeBufs)
	c.w.deflaters = &c.srv.deflaters
	c.w.utf8 = c.utf8
}

// interruptLocked makes a connection waiting for a command give up, so it
// can say BYE. The caller holds srv.mu.
func (c *conn) interruptLocked() {
	if c.waiting {
		c.setReadDeadline(time.Now())
	}
}

// setReadDeadline bounds the wait for what the client sends next. Once
// COMPRESS is on, the inflater keeps the deadline: its goroutine reads the
// socket without one, since a cut-off read would break the stream.
func (c *conn) setReadDeadline(t time.Time) {
	if c.inflate != nil {
		c.inflate.SetReadDeadline(t)
		return
	}
	_ = c.raw.SetReadDeadline(t)
}

func (c *conn) serve() {
	defer c.cleanup()
	defer func() {
		// Failures writing the greeting or a BYE end here.
		if x := recover(); x != nil {
			if _, ok := x.(ioError); !ok {
				c.log.Error("unhandled panic", "panic", x, "stack", string(debug.Stack()))
			}
		}
	}()
	c.log.Debug("connected")
	if c.tls {
		if !c.handshake() {
			return
		}
	}
	c.w.str("* OK [CAPABILITY " + c.capabilities() + "] " + c.srv.cfg.Hostname + " IMAP ready\r\n")
	c.w.flush()
	for !c.closing {
		line, ok := c.readCommand()
		if !ok {
			return
		}
		c.cmdArrived = time.Now()
		if !c.throttle() {
			return
		}
		c.execute(line)
	}
}

func (c *conn) handshake() bool {
	tc := c.nc.(*tls.Conn)
	ctx, cancel := context.WithTimeout(c.ctx, c.srv.cfg.TLSHandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.log.Info("TLS handshake failed", "err", err)
		return false
	}
	return true
}

func (c *conn) cleanup() {
	c.cancel()
	c.unselect()
	if c.sess != nil {
		if err := c.sess.Close(); err != nil {
			c.log.Error("closing store session", "err", err)
		}
	}
	if c.release != nil {
		c.release()
	}
	switch {
	case c.w.stalled():
		// The client stopped reading. A reset frees at once the socket
		// buffer it left full, where a close would leave the kernel
		// trying to deliver it for minutes; and TLS would first try to
		// write its close_notify behind it.
		_ = server.Reset(c.raw)
	case c.linger:
		c.lingeringClose()
	}
	c.nc.Close()
	c.r.park()
	c.w.park()
	if c.inflate != nil {
		c.inflate.Close() // ends the decoding goroutine
	}
	c.srv.removeConn(c)
	c.log.Debug("disconnected")
}

// readCommand waits for the next command line, within the idle timeout
// or, before login, the login deadline, and answers what cannot be parsed
// at all. It returns false when the session is over. Once the line has
// begun, the command is under way: the rest of it is read at its own pace
// (see pacer).
func (c *conn) readCommand() ([]byte, bool) {
	for {
		deadline := time.Now().Add(c.srv.cfg.IMAP.IdleTimeout.D())
		if c.state == stateNotAuth {
			deadline = c.pace.hard // the login deadline
		}
		c.pace.stop()
		closing, ok, err := c.waitCommand(deadline)
		if !ok {
			return nil, false
		}
		var line []byte
		if err == nil {
			line, err = c.r.readLine()
		}

		var tooLong *lineTooLongError
		var ne net.Error
		switch {
		case err == nil:
			return line, true
		case errors.As(err, &tooLong):
			// RFC 9051 7.1.5: BAD, then carry on with the next command.
			tag := "*"
			hp := newParser(nil, tooLong.Head, 0, nil)
			func() {
				defer func() { _ = recover() }()
				tag = hp.xtag()
			}()
			p := newParser(c.r, tooLong.Tail, 0, nil)
			err := p.discardRest()
			c.w.str(tag + " BAD [TOOBIG] Line too long\r\n")
			if err != nil {
				c.log.Debug("discarding rest of a long line", "err", err)
				c.byeUnread(err)
				return nil, false
			}
			c.w.flush()
		case errors.Is(err, errAbsurdLine):
			c.bye("[TOOBIG] Line too long")
			c.linger = true
			return nil, false
		case closing:
			c.bye("server shutting down")
			return nil, false
		case errors.As(err, &ne) && ne.Timeout():
			c.autologout()
			return nil, false
		default:
			c.log.Debug("read", "err", err)
			return nil, false
		}
	}
}

// waitCommand waits until the client sends something (err nil), the
// deadline passes or Shutdown interrupts the wait (closing). Nothing is
// owed to the client now: while it thinks, the connection holds no
// buffers, and once it has been quiet for Config.deflateQuiet, no
// compressor either. It returns false, having said BYE, when the server
// was shutting down before the wait began.
func (c *conn) waitCommand(deadline time.Time) (closing, ok bool, err error) {
	wait := deadline
	if c.w.holdsDeflater() {
		if quiet := time.Now().Add(c.srv.cfg.deflateQuiet); quiet.Before(deadline) {
			wait = quiet
		}
	}
	for {
		c.setReadDeadline(wait)
		c.w.park()
		c.r.park()
		c.srv.mu.Lock()
		if c.srv.closing {
			c.srv.mu.Unlock()
			c.bye("server shutting down")
			return true, false, nil
		}
		c.waiting = true
		c.srv.mu.Unlock()
		err = c.r.unpark()
		c.srv.mu.Lock()
		c.waiting = false
		closing = c.srv.closing
		c.srv.mu.Unlock()
		if !wait.Before(deadline) || closing || !isTimeout(err) {
			return closing, true, err
		}
		// The quiet spell is over: the rest of the wait without the
		// compressor.
		c.w.parkDeflater()
		wait = deadline
	}
}

// autologout says goodbye to a client that kept the server waiting past
// a deadline (RFC 9051 5.4): the login deadline, the idle timeout, or the
// pace of a command under way.
func (c *conn) autologout() {
	switch {
	case c.state == stateNotAuth:
		c.bye("autologout: no login in time")
	case c.pace.overdue():
		c.bye("autologout: command not sent in time")
	default:
		c.bye("autologout: idle for too long")
	}
}

// bye says goodbye, ignoring a dead connection.
func (c *conn) bye(msg string) {
	defer func() { _ = recover() }()
	c.w.str("* BYE " + msg + "\r\n")
	c.w.flush()
}

// byeUnread ends a session after the rest of a command could not be
// skipped (err from discardRest): when the client is still sending a
// literal too big to read and drop, it says so, and the connection closes
// with a linger; when the connection failed, there is no one to tell.
func (c *conn) byeUnread(err error) {
	c.closing = true
	var big *unskippableError
	if errors.As(err, &big) {
		// RFC 7888 4: the server may close rather than read the literal.
		c.bye(fmt.Sprintf("[TOOBIG] Not reading a literal of %d bytes", big.size))
		c.linger = true
	}
}

// userError is a command the server refuses: answered with NO and a
// response code (RFC 5530).
type userError struct {
	code string
	msg  string
}

func (e userError) Error() string { return e.msg }

// xuserErrorf aborts the command with NO [code].
func xuserErrorf(code, format string, args ...any) {
	panic(userError{code: code, msg: fmt.Sprintf(format, args...)})
}

// serverError is a failure of the server or the store: answered with NO
// [SERVERBUG] (or [UNAVAILABLE] when temporary) and logged.
type serverError struct{ err error }

func (e serverError) Error() string { return e.err.Error() }

// accountGone ends a session whose account was deleted while it ran
// (buzon user del): none of its mailboxes is left to work on.
type accountGone struct{ err error }

// xcheckf aborts the command when err is set: store errors that a client
// can cause or cure become NO with a fitting code, anything else is a
// server error.
func xcheckf(err error, format string, args ...any) {
	if err == nil {
		return
	}
	if errors.Is(err, store.ErrNoAccount) {
		panic(accountGone{err})
	}
	msg := fmt.Sprintf(format, args...)
	for _, m := range []struct {
		err  error
		code string
	}{
		{store.ErrNoMailbox, "NONEXISTENT"},
		{store.ErrMailboxExists, "ALREADYEXISTS"},
		{store.ErrInvalidName, "CANNOT"},
		{store.ErrInvalidFlag, "CANNOT"},
		{store.ErrNoMessage, "EXPUNGEISSUED"},
		{store.ErrOverQuota, "OVERQUOTA"},
		{store.ErrLimit, "LIMIT"},
		{store.ErrLocked, "INUSE"},
	} {
		if errors.Is(err, m.err) {
			panic(userError{code: m.code, msg: msg + ": " + m.err.Error()})
		}
	}
	if store.IsTemporary(err) {
		panic(userError{code: "UNAVAILABLE", msg: msg + ": temporary failure, try again later"})
	}
	panic(serverError{fmt.Errorf("%s: %w", msg, err)})
}

// execute parses and runs one command and writes its tagged response,
// after the untagged updates due (RFC 9051 7.5.1).
func (c *conn) execute(line []byte) {
	p := newParser(c.r, line, c.srv.cfg.Limits.MaxLiteral, c.awaitLiteral)
	if c.state != stateNotAuth {
		p.maxMessage = c.srv.cfg.Limits.MaxMessageSize
	}
	cmd := &command{tag: "*", p: p}
	c.completion, c.done = "", false
	start := time.Now()
	defer func() {
		x := recover()
		if x == nil {
			return
		}
		var status, code, msg string
		switch e := x.(type) {
		case ioError:
			c.log.Debug("connection failed", "cmd", cmd.name, "err", e.err)
			c.closing = true
			if c.w.err == nil && c.pace.overdue() {
				c.autologout() // reading the command timed out
			}
			return
		case accountGone:
			c.log.Info("account deleted; ending the session", "cmd", cmd.name, "err", e.err)
			c.bye("[UNAVAILABLE] Your account has been deleted")
			c.closing, c.linger = true, true
			return
		case syntaxError:
			status, code, msg = "BAD", e.code, e.msg
		case userError:
			status, code, msg = "NO", e.code, e.msg
		case serverError:
			c.log.Error("command failed", "cmd", cmd.name, "err", e.err)
			status, code, msg = "NO", "SERVERBUG", "internal error"
		default:
			c.log.Error("command panicked", "cmd", cmd.name, "panic", x, "stack", string(debug.Stack()))
			status, code, msg = "NO", "SERVERBUG", "internal error"
		}
		discardErr := p.discardRest()
		if discardErr != nil {
			c.log.Debug("discarding rest of failed command", "err", discardErr)
			c.closing = true
		}
		if _, refused := x.(userError); refused {
			c.syncAfterNo(cmd)
		}
		c.log.Debug("command", "cmd", cmd.name, "status", status, "msg", msg, "duration", time.Since(start))
		func() {
			defer func() {
				if x := recover(); x != nil {
					c.closing = true
				}
			}()
			if code != "" {
				code = "[" + code + "] "
			}
			c.w.str(cmd.tag + " " + status + " " + code + c.respText(msg) + "\r\n")
			c.w.flush()
		}()
		if discardErr != nil {
			c.byeUnread(discardErr)
		}
	}()

	cmd.tag = p.xtag()
	p.xspace()
	parseCommandName(p, cmd)
	// The state first: a command refused here reads no literal ("SELECT
	// {1000000}" before login gets no "+ Ready").
	spec := commands[cmd.name]
	if spec.states&c.state == 0 {
		xsyntaxErrorf("%s not allowed %s", cmd.name, refusedIn(spec.states, c.state))
	}
	if cmd.name == "LOGIN" {
		// Not "+ Ready" for a password the command will refuse.
		p.refuse = c.loginRefusal()
	}
	parseArgs(p, cmd)
	if savesSearchRes(cmd.args) {
		// Over the search and the sync after it, which may fail it too.
		defer c.searchResOnFailure()
	}
	spec.run(c, cmd)
	if !idleCommands[cmd.name] {
		c.rate.Useful()
	}
	if c.done {
		c.log.Debug("command", "cmd", cmd.name, "duration", time.Since(start))
		return
	}
	if c.sel != nil {
		c.sync(expungeAllowed(cmd.name))
	}
	text := c.completion
	if text == "" {
		text = cmd.name + " completed"
	}
	c.w.str(cmd.tag + " OK " + text + "\r\n")
	c.w.flush()
	c.log.Debug("command", "cmd", cmd.name, "duration", time.Since(start))
}

// respText makes s, which may quote what the client sent, fit in a
// response line: control characters become spaces, and for a client that
// has not enabled UTF-8 (RFC 6855 3), whose resp-text is 7-bit (RFC 3501
// 9), the rest of what is not printable ASCII is spelt in modified UTF-7,
// so that a mailbox name reads as the client sent it.
func (c *conn) respText(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if !c.utf8 {
		s = mutf7.Encode(s)
	}
	return s
}

// ok sets the text of the tagged OK.
func (c *conn) ok(format string, args ...any) { c.completion = fmt.Sprintf(format, args...) }

// awaitLiteral readies the session for a literal's bytes. A synchronising
// one waits for the server to ask for it (RFC 9051 7.5). Either may come
// in a write of its own after the command line, or end with a CRLF in
// another: a client that has not turned Nagle's algorithm off (imaplib)
// holds that write back until the server's kernel acknowledges the one
// before, after its delayed-ACK timer, 40 ms into every APPEND, unless
// the server asks it to acknowledge at once (server.QuickAck).
func (c *conn) awaitLiteral(sync bool) {
	if sync {
		c.w.str("+ Ready for literal data\r\n")
		c.w.flush()
	}
	server.QuickAck(c.raw)
}

// idleCommands achieve nothing for the client when they succeed: a
// pipeline of them without end, or of failing commands, is a flood (see
// limit.Rate).
var idleCommands = map[string]bool{"NOOP": true, "CHECK": true, "CAPABILITY": true, "ID": true}

// throttle keeps the session within Limits.CommandsPerSecond, allowing
// bursts of twice as many, by waiting before the command runs. A client
// that never stops sending too fast with commands that achieve nothing is
// told so and disconnected: it returns false.
func (c *conn) throttle() bool {
	switch err := c.rate.Wait(c.ctx, c.w.flush); {
	case errors.Is(err, limit.ErrFlood):
		c.log.Info("disconnecting a client over its command rate", "rate", c.srv.cfg.Limits.CommandsPerSecond)
		c.bye("Too many commands, too fast")
		c.linger = true
		return false
	case err != nil: // shutting down while it waited
		return false
	}
	return true
}

// How long, and for how many bytes at most, lingeringClose reads what a
// client still sends.
const (
	lingerTime  = time.Second
	lingerBytes = 1 << 20
)

// lingeringClose prepares to close a connection whose client may still be
// sending, as RFC 9112 9.6 advises for HTTP. Closing a socket with input
// unread resets the connection, and a reset can overtake the last answer
// (the BYE) before the client has read it. So the server half-closes, then
// reads and drops what still arrives for a moment, and only then closes.
func (c *conn) lingeringClose() {
	c.pace.stop()
	server.CloseWrite(c.nc)
	c.setReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.CopyN(io.Discard, c.r.in, lingerBytes)
}

// refusedIn says why a command allowed in the states allowed is refused
// in state now.
func refusedIn(allowed, now state) string {
	switch {
	case now == stateNotAuth:
		return "before login"
	case allowed == stateNotAuth:
		return "after login"
	case now == stateAuth:
		return "without a selected mailbox"
	default:
		return "with a mailbox selected"
	}
}
