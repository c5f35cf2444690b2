package managesieve

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/buzon-mail/buzon/internal/auth"
	"github.com/buzon-mail/buzon/internal/limit"
	"github.com/buzon-mail/buzon/internal/server"
	"github.com/buzon-mail/buzon/internal/store"
)

// conn is one ManageSieve session.
type conn struct {
	// srv is the server the session belongs to.
	srv *Server
	// raw is the accepted connection. Deadlines are set on it, also after
	// STARTTLS (a tls.Conn passes them through), and Shutdown may set its
	// read deadline or close it from another goroutine.
	raw net.Conn
	// nc carries the protocol: raw, or a tls.Conn over it.
	nc net.Conn
	// tls is set once TLS is active.
	tls bool
	// remote is the client's address, for throttling and plaintext rules.
	remote netip.Addr
	// log is the session's logger, with the remote address and, after
	// login, the account.
	log *slog.Logger
	// ctx ends when the session ends or Shutdown gives up waiting.
	ctx    context.Context
	cancel context.CancelFunc
	// started is when the client connected, for the login timeout.
	started time.Time

	// br reads commands.
	br *bufio.Reader
	// bw buffers responses; they are flushed before waiting for the
	// client.
	bw *bufio.Writer
	// rate is the commands-per-second limit.
	rate *limit.Rate
	// bad counts the malformed and unknown commands.
	bad int
	// done is set by LOGOUT.
	done bool
	// leaving is set when the session says BYE, which gets byeTimeout to
	// be written whatever deadline has passed.
	leaving bool

	// The rest is set once logged in.

	// account is the logged-in account, zero before.
	account store.Account
	// scripts is the account's store session.
	scripts store.Session
	// release undoes what login took: the store session and the session
	// slot.
	release func()
}

func newConn(s *Server, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(s.baseCtx)
	remote := server.AddrOf(nc.RemoteAddr())
	c := &conn{
		srv:     s,
		raw:     nc,
		nc:      nc,
		remote:  remote,
		log:     s.log.With("remote", remote.String()),
		ctx:     ctx,
		cancel:  cancel,
		started: time.Now(),
		rate:    limit.NewRate(s.cfg.Limits.CommandsPerSecond),
	}
	c.br = bufio.NewReaderSize(nc, 4096)
	c.bw = bufio.NewWriterSize(deadlineWriter{c}, 16*1024)
	return c
}

// deadlineWriter gives every write to the client the deadline a read
// would get (deadline), so a client that stops reading is dropped as one
// that stops writing is: before login, at the login timeout.
type deadlineWriter struct{ c *conn }

func (w deadlineWriter) Write(p []byte) (int, error) {
	d := w.c.deadline()
	if w.c.leaving {
		d = time.Now().Add(byeTimeout)
	}
	w.c.raw.SetWriteDeadline(d)
	return w.c.nc.Write(p)
}

// byeTimeout bounds the writing of the BYE that ends a session, which
// often follows a deadline that has passed.
const byeTimeout = 5 * time.Second

// interrupt makes a session waiting for a command notice Shutdown. Safe
// from any goroutine.
func (c *conn) interrupt() {
	c.raw.SetReadDeadline(time.Now())
}

// serve runs the session until LOGOUT, an error, or Shutdown.
func (c *conn) serve() {
	defer func() {
		c.cancel()
		c.logout()
		c.raw.Close()
		c.log.Debug("managesieve session ended", "duration", time.Since(c.started).Round(time.Millisecond))
	}()
	defer func() {
		x := recover()
		switch e := x.(type) {
		case nil:
		case abortError:
			c.log.Debug("managesieve session aborted", "err", e.err)
		case byeError:
			c.bye(e)
		default:
			// A bug outside any command: end this session, not the server.
			c.log.Error("managesieve session panicked", "panic", x, "stack", string(debug.Stack()))
		}
	}()

	c.log.Debug("managesieve session started")
	// RFC 5804 1.7: the server greets with its capabilities.
	c.writeCapabilities()
	c.writeResp("OK", "", "buzon ManageSieve ready")
	for !c.done {
		cmd, err := parseCommand(c, c.limits())
		c.throttle()
		c.execute(cmd, err)
	}
	c.flush()
	if c.br.Buffered() > 0 {
		// Commands pipelined after LOGOUT are ignored (RFC 5804 2.3),
		// but closing with them unread could reset the connection
		// before the client reads the OK.
		server.LingeringClose(c.nc)
	}
}

// limits are the parser's. After login a literal may be as large as a
// script, and one a little larger is read and dropped so that the client
// hears QUOTA/MAXSIZE rather than a closed connection. Before it, the only
// literals with a use are SASL responses, which are small: one may be as
// long as a line, and a larger one ends the session before its octets
// are read, so that a client that has not logged in holds no more memory
// than a line's worth per argument.
func (c *conn) limits() parseLimits {
	maxLine := c.srv.cfg.Limits.MaxLineLength
	if c.account.ID == 0 {
		return parseLimits{maxLine: maxLine, maxLiteral: int64(maxLine), maxDiscard: int64(maxLine)}
	}
	maxScript := c.srv.cfg.Sieve.MaxScriptSize
	return parseLimits{maxLine: maxLine, maxLiteral: maxScript, maxDiscard: 4 * maxScript}
}

// bye tells the client goodbye and ends the session.
func (c *conn) bye(e byeError) {
	if e.err != nil {
		c.log.Info("managesieve session ended by the server", "reason", e.text, "err", e.err)
	}
	defer func() { recover() }() // the client may be gone already
	c.leaving = true
	c.writeResp("BYE", e.code, e.text)
	c.flush()
	server.LingeringClose(c.nc)
}

// logout gives back what login took.
func (c *conn) logout() {
	if c.release != nil {
		c.release()
		c.release = nil
	}
}

// line reads a line for the parser (source), with the idle timeout and,
// before login, the login timeout. A line over max is read to its end and
// reported as errLineTooLong, unless it goes on past
// Limits.MaxLineLength: then the session ends.
func (c *conn) line(max int) ([]byte, error) {
	if buffered, _ := c.br.Peek(c.br.Buffered()); bytes.IndexByte(buffered, '\n') < 0 {
		c.flush()
	}
	c.setReadDeadline()
	absurd := max + c.srv.cfg.Limits.MaxLineLength
	var line []byte
	total := 0
	for {
		frag, err := c.br.ReadSlice('\n')
		total += len(frag)
		if total <= max+2 {
			line = append(line, frag...)
		}
		switch {
		case err == nil:
		case errors.Is(err, bufio.ErrBufferFull):
			if total > absurd {
				panic(byeError{text: "line too long", err: fmt.Errorf("line over %d bytes", absurd)})
			}
			continue
		default:
			c.xreadError(err)
		}
		break
	}
	if total > max+2 {
		return nil, errLineTooLong
	}
	line = bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'})
	return line, nil
}

// literal reads a literal's octets (source). Memory is taken as they
// arrive, not when they are announced: a client that announces a large
// literal and sends nothing holds none.
func (c *conn) literal(n int64) ([]byte, error) {
	c.setReadDeadline()
	b, err := io.ReadAll(io.LimitReader(c.br, n))
	if err == nil && int64(len(b)) < n {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		c.xreadError(err)
	}
	return b, nil
}

// discard drops a literal's octets (source).
func (c *conn) discard(n int64) error {
	c.setReadDeadline()
	if _, err := c.br.Discard(int(n)); err != nil {
		c.xreadError(err)
	}
	return nil
}

// deadline is how long the client has to send or take what the session
// waits for: the idle timeout, or before login the login timeout if
// sooner.
func (c *conn) deadline() time.Time {
	d := time.Now().Add(c.srv.cfg.Sieve.IdleTimeout.D())
	if login := c.started.Add(c.srv.cfg.Sieve.LoginTimeout.D()); c.account.ID == 0 && login.Before(d) {
		return login
	}
	return d
}

// setReadDeadline sets the deadline for a read, or makes it fail at once
// when the server is shutting down.
func (c *conn) setReadDeadline() {
	c.raw.SetReadDeadline(c.deadline())
	if c.srv.conns.Closing() {
		c.raw.SetReadDeadline(time.Now())
	}
}

// xreadError ends the session after a failed read: with BYE when the
// server is shutting down or the client was too slow.
func (c *conn) xreadError(err error) {
	switch {
	case c.srv.conns.Closing():
		c.bye(byeError{code: codeTryLater, text: "server shutting down"})
		xabort(ErrServerClosed)
	case errors.Is(err, os.ErrDeadlineExceeded):
		text := "disconnected for inactivity"
		if c.account.ID == 0 && time.Since(c.started) >= c.srv.cfg.Sieve.LoginTimeout.D() {
			text = "too long without logging in"
		}
		c.bye(byeError{text: text})
	}
	xabort(err)
}

// throttle keeps the session within Limits.CommandsPerSecond, as POP3 and
// IMAP do; a client that never stops sending too fast is sent away.
func (c *conn) throttle() {
	switch err := c.rate.Wait(c.ctx, c.flush); {
	case errors.Is(err, limit.ErrFlood):
		panic(byeError{code: codeTryLater, text: "too many commands; slow down", err: err})
	case err != nil:
		xabort(err)
	}
}

// execute runs one command. Refusals raised in the command become NO
// here; a panic that is not one is a bug: it is logged with its
// stack, answered with NO, and ends the session.
func (c *conn) execute(cmd command, err error) {
	defer func() {
		x := recover()
		switch e := x.(type) {
		case nil:
		case userError:
			c.writeResp("NO", e.code, e.text)
		case badError:
			// RFC 5804 4 has no BAD: a malformed or unknown command is
			// refused with NO, as any other, but counted.
			c.bad++
			c.writeResp("NO", "", e.text)
			if c.bad >= c.srv.cfg.Sieve.MaxErrors {
				panic(byeError{text: "too many bad commands", err: fmt.Errorf("%d bad commands", c.bad)})
			}
		case serverError:
			c.log.Error("managesieve command failed", "cmd", cmd.name, "err", e.err)
			c.writeResp("NO", e.code, e.text)
		case abortError, byeError:
			panic(e)
		default:
			c.log.Error("managesieve command panicked", "cmd", cmd.name, "panic", x, "stack", string(debug.Stack()))
			panic(byeError{text: "internal server error"})
		}
	}()
	if se, ok := errors.AsType[syntaxError](err); ok {
		xbad("%s", se.msg)
	}
	if tb, ok := errors.AsType[errTooBig](err); ok {
		if tb.fatal {
			code := codeMaxSize
			if c.account.ID == 0 {
				code = "" // no script is being stored: a SASL response, or junk
			}
			panic(byeError{code: code, text: fmt.Sprintf("a literal of %d octets is far over the limit of %d", tb.size, tb.limit), err: err})
		}
		// RFC 5804 2.6: QUOTA/MAXSIZE for a script over the limit.
		xuser(codeMaxSize, "a script may have at most %d octets", c.srv.cfg.Sieve.MaxScriptSize)
	}
	if errors.Is(err, errTooManyLiterals) {
		panic(byeError{text: err.Error(), err: err})
	}
	if err != nil {
		xabort(err)
	}
	spec, ok := commands[cmd.name]
	switch {
	case !ok:
		xbad("unknown command %s", echo(cmd.name))
	case spec.authenticated && c.account.ID == 0:
		xuser("", "%s needs a login first", cmd.name)
	case !spec.authenticated && !spec.any && c.account.ID != 0:
		xuser("", "%s is not allowed after login", cmd.name)
	case len(cmd.args) < spec.minArgs || len(cmd.args) > spec.maxArgs:
		xbad("usage: %s", spec.usage)
	}
	for i, a := range cmd.args {
		if a.atom != (i < len(spec.atoms) && spec.atoms[i]) {
			xbad("usage: %s", spec.usage)
		}
	}
	if spec.authenticated {
		c.xaccountGone()
	}
	spec.run(c, cmd)
	if cmd.name != "NOOP" && cmd.name != "CAPABILITY" {
		c.rate.Useful()
	}
}

// xaccountGone ends the session when its account was deleted since login
// (buzon user del, perhaps from another process), or deleted and made
// again: the scripts it would list or store are no longer its. Script
// commands are few, so the account is looked up before each rather than
// watched: on every backend the answer is the same, at once.
func (c *conn) xaccountGone() {
	acct, err := c.srv.cfg.Store.LookupAccount(c.ctx, c.account.Name)
	switch {
	case errors.Is(err, store.ErrNoAccount) || err == nil && acct.ID != c.account.ID:
		panic(byeError{text: "your account has been deleted", err: fmt.Errorf("account %s: gone", c.account.Name)})
	case err != nil:
		// The store cannot say: the command meets the trouble itself if
		// it needs the store.
		c.log.Warn("managesieve look up account", "err", err)
	}
}

// echo quotes a client's word for a response, cut short.
func echo(s string) string {
	const max = 40
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

// writeResp writes OK, NO or BYE with an optional response code and
// a human-readable text (RFC 5804 4, response-oknobye). code is written
// as given: a bare code, or one with its own string such as TAG's.
func (c *conn) writeResp(kind, code, text string) {
	c.bw.WriteString(kind)
	if code != "" {
		c.bw.WriteString(" (" + code + ")")
	}
	if text != "" {
		c.bw.WriteString(" ")
		c.writeString(text)
	}
	c.writeRaw("\r\n")
}

// writeString writes a string as a quoted string where it can be one, and
// as a literal otherwise (RFC 5804 4: quoted strings are UTF-8 without
// CR, LF or NUL, of at most 1024 octets).
func (c *conn) writeString(s string) {
	c.bw.WriteString(quote(s))
}

// quote is s as a ManageSieve string: a literal when it is long, holds
// CR, LF or NUL, or is not UTF-8 (a literal from the client, echoed as
// NOOP's tag), none of which a quoted string may.
func quote(s string) string {
	if len(s) > 1024 || strings.ContainsAny(s, "\r\n\x00") || !utf8.ValidString(s) {
		return fmt.Sprintf("{%d}\r\n%s", len(s), s)
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// writeRaw writes text as it is.
func (c *conn) writeRaw(s string) {
	if _, err := c.bw.WriteString(s); err != nil {
		xabort(err)
	}
}

// flush sends buffered responses.
func (c *conn) flush() {
	if err := c.bw.Flush(); err != nil {
		xabort(err)
	}
}

// startTLS runs the server side of the TLS handshake after STARTTLS.
// Anything the client sent before the handshake is discarded, so
// plaintext cannot be injected into the TLS session.
func (c *conn) startTLS() {
	tc, err := server.Handshake(c.ctx, c.raw, c.srv.cfg.TLS, c.srv.cfg.TLSHandshakeTimeout)
	if err != nil {
		xabort(err)
	}
	c.nc = tc
	c.tls = true
	c.br.Reset(tc)
	c.log.Debug("managesieve tls started", "tls", server.TLSName(tc.ConnectionState()))
}

// plaintextAllowed says whether a password may be sent in the clear on
// this connection.
func (c *conn) plaintextAllowed() bool {
	return auth.PlaintextAllowed(c.tls, c.remote, c.srv.cfg.AllowPlaintext)
}
