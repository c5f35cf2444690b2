package pop3server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/buzon-mail/buzon/internal/auth"
	"github.com/buzon-mail/buzon/internal/limit"
	"github.com/buzon-mail/buzon/internal/server"
	"github.com/buzon-mail/buzon/internal/store"
)

// conn is one POP3 session.
type conn struct {
	// srv is the server the session belongs to.
	srv *Server
	// raw is the accepted connection. Deadlines are set on it, also after
	// STLS (a tls.Conn passes them through), and Shutdown may set its read
	// deadline or close it from another goroutine.
	raw net.Conn
	// nc carries the protocol: raw, or a tls.Conn over it.
	nc net.Conn
	// implicitTLS says TLS starts before the greeting (POP3S).
	implicitTLS bool
	// tls is set once TLS is active.
	tls bool
	// remote is the client's address, for throttling and plaintext rules.
	remote netip.Addr
	// log is the session's logger, with the remote address and, after
	// login, the account. It is not changed once the session holds the
	// maildrop, when another session's takeOver may use it.
	log *slog.Logger
	// ctx ends when the session ends or Shutdown gives up waiting.
	ctx    context.Context
	cancel context.CancelFunc

	// br reads command lines.
	br *bufio.Reader
	// bw buffers responses; they are flushed when no complete command is
	// waiting in br, so pipelined commands get batched answers
	// (RFC 2449 6.6).
	bw *bufio.Writer
	// bodyBuf holds the piece of a message being sent, allocated by the
	// first RETR or TOP.
	bodyBuf []byte

	// state is the protocol state (RFC 1939 3).
	state state
	// user is the name given by USER, awaiting PASS.
	user string

	// rate is the commands-per-second limit.
	rate *limit.Rate

	// The rest is set in TRANSACTION state.

	// account is the logged-in account.
	account store.Account
	// session is the store session, open while logged in.
	session store.Session
	// inbox is the account's INBOX.
	inbox store.Mailbox
	// watch fires after changes to the account, its deletion among them,
	// which each command then looks for (xaccountGone).
	watch store.Watcher
	// recheck says the account is to be looked for at the next command
	// even without a wake-up: the last look could not read the store.
	recheck bool
	// gone says the account was deleted during the session: nothing of
	// it is left to record or expunge.
	gone bool
	// msgs is the maildrop: the INBOX snapshot taken at login, message
	// number n at msgs[n-1] (RFC 1939 5).
	msgs []message
	// unrecorded counts the messages retrieved but not yet recorded.
	unrecorded int
	// lastSent is the number of the message the last RETR or TOP named,
	// or 0.
	lastSent int
	// ahead is the read-ahead window (see readahead.go): bodies opened
	// before the client asked for them, at most readAheadMessages of them
	// and readAheadBytes in all. Closed by logout.
	ahead []aheadBody
	// releases undo what login took (the session slot, the maildrop lock,
	// the store session, the entry in Server.holders), run in reverse
	// order when the session ends.
	releases []func()
	// released is closed once releases have run, for a login waiting to
	// take the maildrop over (takeover.go).
	released chan struct{}
	// heard is when the client last showed it was there, in Unix
	// nanoseconds: a command line came, or a write to it went through.
	// Read by other sessions' logins.
	heard atomic.Int64

	endMu sync.Mutex
	// end says whether and how the session is ending; QUIT and a new
	// login's takeover each claim it first, so a session taken over
	// never applies its deletions.
	end endState // guarded by endMu
}

// message is one message of the maildrop snapshot.
type message struct {
	uid  store.UID
	size int64
	// deleted is set by DELE and cleared by RSET.
	deleted bool
	// retrieved says the retrieval need not be recorded: the message was
	// retrieved before (and is \Seen), or in this session.
	retrieved bool
	// retrievedNow says it was retrieved in this session for the first
	// time, and is yet to be recorded (see recordRetrievals).
	retrievedNow bool
}

func newConn(s *Server, nc net.Conn, implicitTLS bool) *conn {
	ctx, cancel := context.WithCancel(s.baseCtx)
	remote := remoteAddr(nc.RemoteAddr())
	c := &conn{
		srv:         s,
		raw:         nc,
		nc:          nc,
		implicitTLS: implicitTLS,
		remote:      remote,
		log:         s.log.With("remote", remote.String()),
		ctx:         ctx,
		cancel:      cancel,
		state:       stateAuthorization,
		released:    make(chan struct{}),
	}
	c.rate = limit.NewRate(s.cfg.Limits.CommandsPerSecond)
	c.br = bufio.NewReaderSize(nc, 4096)
	c.bw = bufio.NewWriterSize(deadlineWriter{c}, 32*1024)
	return c
}

// remoteAddr is the IP address of a peer, unmapped, or the zero Addr for
// non-IP peers (which then count as remote for the plaintext rule).
func remoteAddr(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// deadlineWriter gives every write to the client the idle timeout, so a
// client that stops reading is dropped but a slow one downloading a big
// message is not.
type deadlineWriter struct{ c *conn }

func (w deadlineWriter) Write(p []byte) (int, error) {
	w.c.raw.SetWriteDeadline(time.Now().Add(w.c.srv.cfg.POP3.IdleTimeout.D()))
	n, err := w.c.nc.Write(p)
	if err == nil {
		w.c.heardNow()
	}
	return n, err
}

// interrupt makes a session waiting for a command notice Shutdown. Safe
// from any goroutine.
func (c *conn) interrupt() {
	c.raw.SetReadDeadline(time.Now())
}

// serve runs the session until QUIT, an error, or Shutdown.
func (c *conn) serve() {
	start := time.Now()
	defer func() {
		c.cancel()
		c.logout()
		c.raw.Close()
		c.log.Debug("pop3 session ended", "duration", time.Since(start).Round(time.Millisecond))
	}()
	defer func() {
		x := recover()
		if x == nil {
			return
		}
		if e, ok := x.(abortError); ok {
			c.log.Debug("pop3 session aborted", "err", e.err)
			return
		}
		// A bug outside any command: end this session, not the server.
		c.log.Error("pop3 session panicked", "panic", x, "stack", string(debug.Stack()))
	}()

	c.log.Debug("pop3 session started", "tls", c.implicitTLS)
	if c.implicitTLS {
		c.startTLS()
	}
	c.writeLine("+OK %s POP3 server ready", c.srv.cfg.Hostname)
	for c.state != stateUpdate {
		line, err := c.readLine(maxCommandLine)
		if err != nil {
			c.writeErr("", "%s", err) // the line was discarded; the session goes on
			continue
		}
		c.throttle()
		c.execute(line)
	}
	c.flush()
}

// logout closes the bodies read ahead and records the session's
// retrievals, then gives back what login took: the store session, the
// maildrop lock and the session slot.
func (c *conn) logout() {
	if len(c.releases) == 0 {
		return
	}
	c.beginLogout()
	c.dropAhead()
	if !c.gone {
		c.recordRetrievals(false, false)
	}
	for i := len(c.releases) - 1; i >= 0; i-- {
		c.releases[i]()
	}
	c.releases = nil
	close(c.released)
}

// errLineTooLong answers a command line over maxCommandLine that is not
// so long that the session is dropped.
var errLineTooLong = errors.New("line too long")

// readLine reads a line of at most limit bytes, CRLF included, and returns
// it without CRLF (a bare LF also ends a line). A longer line is discarded
// and reported as errLineTooLong; past Limits.MaxLineLength the session
// ends. Pending responses are flushed first unless a whole pipelined
// command is already waiting.
func (c *conn) readLine(limit int) (string, error) {
	if buffered, _ := c.br.Peek(c.br.Buffered()); bytes.IndexByte(buffered, '\n') < 0 {
		c.flush()
	}
	start := time.Now()
	idle := start.Add(c.srv.cfg.POP3.IdleTimeout.D())
	c.raw.SetReadDeadline(c.pauseDeadline(start, idle))
	if c.srv.conns.Closing() {
		if c.mustLeave() {
			c.goodbye()
		}
		// Shutdown's interruption may have come before the deadline set
		// above replaced it: set one that ends the drain.
		c.raw.SetReadDeadline(c.pauseDeadline(start, idle))
	}
	absurd := max(limit, c.srv.cfg.Limits.MaxLineLength)
	var line []byte
	total := 0
	for {
		frag, err := c.br.ReadSlice('\n')
		total += len(frag)
		if total <= limit {
			line = append(line, frag...)
		}
		switch {
		case err == nil:
		case errors.Is(err, bufio.ErrBufferFull):
			if total > absurd {
				c.writeErr("", "line too long")
				c.flush()
				server.LingeringClose(c.nc)
				xabort(fmt.Errorf("line over %d bytes", absurd))
			}
			continue
		case errors.Is(err, os.ErrDeadlineExceeded):
			if c.mustLeave() {
				c.goodbye()
			}
			if time.Now().Before(idle) {
				c.pause(start)
				c.raw.SetReadDeadline(c.pauseDeadline(start, idle))
				if c.mustLeave() {
					c.goodbye() // Shutdown's interruption came meanwhile
				}
				continue
			}
			c.writeErr("", "disconnected for inactivity")
			c.flush()
			xabort(err)
		default:
			xabort(err)
		}
		break
	}
	c.heardNow()
	if total > limit {
		return "", errLineTooLong
	}
	line = bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'})
	return string(line), nil
}

// mustLeave reports whether Shutdown has started and the session must
// end before its next command: at once unless it is in TRANSACTION, and
// then once the drain Shutdown allows is over.
func (c *conn) mustLeave() bool {
	if !c.srv.conns.Closing() {
		return false
	}
	return c.state != stateTransaction || time.Now().UnixNano() >= c.srv.drainUntil.Load()
}

// pauseDeadline is when a session waiting since start for the client's
// next command has something to do: record the retrievals so far
// (recordRetrievalsDelay), let go of the bodies read ahead
// (Config.ReadAheadIdle), end its drain after Shutdown, or, at idle,
// give up on the client.
func (c *conn) pauseDeadline(start, idle time.Time) time.Time {
	d := idle
	if c.srv.conns.Closing() {
		d = earliest(d, time.Unix(0, c.srv.drainUntil.Load()))
	}
	if c.unrecorded > 0 {
		d = earliest(d, start.Add(recordRetrievalsDelay))
	}
	if len(c.ahead) > 0 {
		d = earliest(d, start.Add(c.srv.cfg.ReadAheadIdle))
	}
	return d
}

// pause does what the client's silence since start calls for by now.
func (c *conn) pause(start time.Time) {
	waited := time.Since(start)
	if c.unrecorded > 0 && waited >= recordRetrievalsDelay {
		c.recordRetrievals(false, true)
	}
	if len(c.ahead) > 0 && waited >= c.srv.cfg.ReadAheadIdle {
		c.dropAhead()
	}
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// goodbye tells the client the server is going away and ends the session
// without entering UPDATE.
func (c *conn) goodbye() {
	c.writeErr(codeSysTemp, "server shutting down")
	c.flush()
	xabort(ErrServerClosed)
}

// throttle keeps the session within Limits.CommandsPerSecond, allowing
// bursts of twice as many, by waiting before the command runs; a client
// that never stops sending too fast is told so and disconnected.
func (c *conn) throttle() {
	switch err := c.rate.Wait(c.ctx, c.flush); {
	case errors.Is(err, limit.ErrFlood):
		c.writeErr("SYS/TEMP", "too many commands; slow down")
		c.flush()
		xabort(err)
	case err != nil:
		xabort(err)
	}
}

// execute runs one command line. Refusals raised in the command become
// -ERR responses here; a panic that is not one is a bug: it is logged with
// its stack, answered with -ERR, and ends the session.
func (c *conn) execute(line string) {
	cmd, err := parseCommand(line)
	defer func() {
		x := recover()
		switch e := x.(type) {
		case nil:
		case userError:
			c.writeErr(e.code, "%s", e.text)
		case serverError:
			c.log.Error("pop3 command failed", "cmd", cmd.name, "err", e.err)
			c.writeErr(e.code, "%s", e.text)
		case accountGone:
			// RFC 3206 4: no retry will help.
			c.gone = true
			c.log.Info("pop3 account deleted; ending the session", "cmd", cmd.name, "err", e.err)
			c.writeErr(codeSysPerm, "your account has been deleted")
			c.flush()
			server.LingeringClose(c.nc)
			xabort(e.err)
		case abortError:
			panic(e)
		default:
			c.log.Error("pop3 command panicked", "cmd", cmd.name, "panic", x, "stack", string(debug.Stack()))
			c.writeErr(codeSysPerm, "internal server error")
			c.flush()
			xabort(fmt.Errorf("panic: %v", x))
		}
	}()
	if err != nil {
		xuser("", "%s", err.Error())
	}
	if c.state == stateTransaction {
		c.xaccountGone()
	}
	spec, ok := commands[cmd.name]
	switch {
	case !ok:
		xuser("", "unknown command")
	case spec.states&c.state == 0 && c.state == stateAuthorization:
		xuser("", "%s is not allowed before login", cmd.name)
	case spec.states&c.state == 0:
		xuser("", "%s is not allowed after login", cmd.name)
	case len(cmd.args) < spec.minArgs || spec.maxArgs >= 0 && len(cmd.args) > spec.maxArgs:
		xuser("", "usage: %s", spec.usage)
	}
	spec.run(c, cmd)
	if cmd.name != "NOOP" && cmd.name != "CAPA" {
		// It succeeded and did something: a pipeline of such commands
		// is only slowed down (see limit.Rate).
		c.rate.Useful()
	}
}

// xaccountGone ends the session when its account was deleted since the
// last command (buzon user del, perhaps from another process): the
// maildrop it shows is gone, and none of its commands can be carried out
// any more. The store is asked only after the account's watcher fired
// (or a lookup failed), not at every command. The watcher fires for any
// change to the account: mail delivered, other sessions' flags and
// expunges, and this session's own writes too (its retrievals recorded at
// a pause), each costing the next command one account lookup. Draining the
// watcher after those writes would save it, but could swallow a deletion
// that landed in between, and the session would answer from its snapshot
// until a command reached the store.
func (c *conn) xaccountGone() {
	select {
	case <-c.watch.C():
	default:
		if !c.recheck {
			return
		}
	}
	c.xaccountLookup()
}

// xaccountLookup ends the session if its account is gone, without
// waiting for the watcher: a store that deletes an account's mail with it
// (PostgreSQL) tells a session that asks before the notification arrives
// that its messages or INBOX are gone, not its account.
func (c *conn) xaccountLookup() {
	acct, err := c.srv.cfg.Store.LookupAccount(c.ctx, c.account.Name)
	c.recheck = false
	switch {
	case err == nil && acct.ID != c.account.ID:
		// Deleted and made again: the new account is not this session's.
		panic(accountGone{fmt.Errorf("account %s: id %d is now %d", c.account.Name, c.account.ID, acct.ID)})
	case errors.Is(err, store.ErrNoAccount):
		panic(accountGone{err})
	case err != nil:
		// The store cannot say: the command goes on, and meets the
		// store's trouble itself if it needs the store.
		c.log.Warn("pop3 look up account", "err", err)
		c.recheck = true
	}
}

// writeLine writes one response line; CRLF is added.
func (c *conn) writeLine(format string, args ...any) {
	fmt.Fprintf(c.bw, format, args...)
	if _, err := c.bw.WriteString("\r\n"); err != nil {
		xabort(err)
	}
}

// writeErr writes a negative response with an optional response code
// (RFC 2449 8).
func (c *conn) writeErr(code, format string, args ...any) {
	if code != "" {
		format = "-ERR [" + code + "] " + format
	} else {
		format = "-ERR " + format
	}
	c.writeLine(format, args...)
}

// flush sends buffered responses.
func (c *conn) flush() {
	if err := c.bw.Flush(); err != nil {
		xabort(err)
	}
}

// startTLS runs the server side of the TLS handshake on the connection,
// for POP3S or after STLS. Anything the client sent before the handshake
// is discarded, so plaintext cannot be injected into the TLS session.
func (c *conn) startTLS() {
	tc, err := server.Handshake(c.ctx, c.raw, c.srv.cfg.TLS, c.srv.cfg.TLSHandshakeTimeout)
	if err != nil {
		xabort(err)
	}
	c.nc = tc
	c.tls = true
	c.br.Reset(tc)
	c.log.Debug("pop3 tls started", "tls", server.TLSName(tc.ConnectionState()))
}

// plaintextAllowed says whether a password may be sent in the clear on
// this connection (RFC 2595 2.2).
func (c *conn) plaintextAllowed() bool {
	return auth.PlaintextAllowed(c.tls, c.remote, c.srv.cfg.AllowPlaintext)
}
