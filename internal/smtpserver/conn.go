package smtpserver

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/buzon-mail/buzon/internal/server"
	"github.com/buzon-mail/buzon/internal/smtpclient"
	"github.com/buzon-mail/buzon/internal/store"
)

// readBufSize is how much a connection reads from the socket at once: one
// read holds a typical message (a 4 KB buffer took a dozen read system
// calls for a 50 KB one).
const readBufSize = 64 * 1024

// conn is one LMTP, SMTP or submission session.
type conn struct {
	// srv is the server the session belongs to.
	srv *Server
	// raw is the accepted connection. Deadlines are set on it, also after
	// STARTTLS (a tls.Conn passes them through), and Shutdown may set its
	// read deadline or close it from another goroutine.
	raw net.Conn
	// nc carries the protocol: raw, or a tls.Conn over it after
	// STARTTLS.
	nc net.Conn
	// br reads from nc through sockReader: in large pieces, with the
	// replies flushed and the deadline renewed before each wait.
	br *bufio.Reader
	// bw buffers replies until reading would wait for the client
	// (PIPELINING, RFC 2920).
	bw *bufio.Writer
	// out is where a reply line is put together.
	out []byte
	// log has the client's address.
	log *slog.Logger

	// state is where the session is in the protocol; see commands.
	state state
	// tls describes the TLS session after STARTTLS, for the Received
	// field ("TLS 1.3 TLS_AES_128_GCM_SHA256"); empty before.
	tls string
	// helo is the name the client gave in EHLO or HELO, and esmtp says it
	// was EHLO (RFC 5321 4.1.1.1): both go in the Received field.
	helo  string
	esmtp bool
	// busy is set from MAIL until the transaction's replies are written,
	// under srv.conns's lock, so that Shutdown and MAIL agree on which
	// sessions are between transactions.
	busy atomic.Bool
	// implicitTLS says the session starts with a TLS handshake (ServeTLS).
	implicitTLS bool
	// account is who the client logged in as with AUTH, in Submission;
	// zero before.
	account store.Account
	// errors counts the commands refused, for MaxErrors.
	errors int
	// leaving says the session ends after the replies written so far:
	// QUIT (quit: 221 said), or a transaction ended during Shutdown, which
	// is told 421 (RFC 5321 3.8).
	leaving, quit bool

	// The transaction, from MAIL on.

	// from is the reverse path.
	from path
	// utf8 says MAIL had SMTPUTF8 (RFC 6531 3.4), which the Received
	// field's protocol names (RFC 6531 3.7.3).
	utf8 bool
	// size is MAIL's SIZE= (RFC 1870), -1 when absent: RCPT checks the
	// recipient's quota against it.
	size int64
	// id names the transaction in the Received field and the logs.
	id string
	// rcpts are the accepted recipients, in RCPT order.
	rcpts []recipient
	// data is the message of BDAT chunks so far; nil unless in
	// stateChunks.
	data *msgData
	// relay, in Submission, is the transaction's connection to the relay
	// MTA, from MAIL on; nil after it failed.
	relay *smtpclient.Client
	// relayParams are the parameters of MAIL at the relay, for a
	// transaction replayed on a new connection.
	relayParams []string
}

// recipient is an accepted RCPT and the account it reaches.
type recipient struct {
	// addr is the mailbox as the client wrote it, which its reply names.
	addr string
	// key is the address the account was found by, in lower case.
	key  string
	acct store.Account
	// copyKey names the copy the recipient gets (delivery.Recipient's
	// CopyKey): recipients with the same one get one copy.
	copyKey string
}

func newConn(s *Server, nc net.Conn, implicitTLS bool) *conn {
	c := &conn{
		srv:         s,
		raw:         nc,
		nc:          nc,
		log:         s.log.With("remote", nc.RemoteAddr().String()),
		state:       stateStart,
		implicitTLS: implicitTLS,
	}
	c.br = bufio.NewReaderSize(sockReader{c}, readBufSize)
	c.bw = bufio.NewWriterSize(sockWriter{c}, 4096)
	return c
}

// errGoodbye is the read of a session told to leave by Shutdown.
var errGoodbye = errors.New("server shutting down")

// sockReader is what a connection's bufio.Reader reads from. Before it
// waits for the client it sends the replies written so far: they were
// held only while more commands were at hand to answer in the same
// write (RFC 2920 3.2). Each wait gets the read timeout afresh, so it
// bounds a pause of the client, not a whole message.
type sockReader struct{ c *conn }

func (r sockReader) Read(p []byte) (int, error) {
	c := r.c
	if c.bw.Buffered() > 0 {
		if err := c.bw.Flush(); err != nil {
			return 0, err
		}
	}
	c.raw.SetReadDeadline(time.Now().Add(c.srv.cfg.ReadTimeout))
	// After the deadline is set: Shutdown sets closing, then a deadline
	// in the past, so a session either sees closing here or has its read
	// cut short.
	if c.mustLeave() {
		return 0, errGoodbye
	}
	n, err := c.nc.Read(p)
	if errors.Is(err, os.ErrDeadlineExceeded) && c.mustLeave() {
		err = errGoodbye
	}
	return n, err
}

// sockWriter gives each write to the client the write timeout.
type sockWriter struct{ c *conn }

func (w sockWriter) Write(p []byte) (int, error) {
	w.c.raw.SetWriteDeadline(time.Now().Add(w.c.srv.cfg.WriteTimeout))
	return w.c.nc.Write(p)
}

// mustLeave says Shutdown has begun and the session is between
// transactions.
func (c *conn) mustLeave() bool {
	return c.srv.conns.Closing() && !c.busy.Load()
}

// serve runs the session until QUIT, the client leaves, or Shutdown.
func (c *conn) serve() {
	start := time.Now()
	defer func() {
		c.endTx()
		c.nc.Close()
		c.log.Debug("session ended", "duration", time.Since(start).Round(time.Millisecond))
	}()
	defer func() {
		x := recover()
		if x == nil {
			return
		}
		if e, ok := x.(abortError); ok {
			c.log.Debug("session aborted", "err", e.err)
			return
		}
		// A bug outside any command: end this session, not the server.
		c.log.Error("session panicked", "panic", x, "stack", string(debug.Stack()))
	}()

	if c.implicitTLS {
		c.startTLS() // RFC 8314 3.3
	}
	// RFC 5321 4.3.1: the greeting names the server's domain first.
	greeting := " LMTP server ready"
	if c.srv.cfg.Protocol.esmtp() {
		greeting = " ESMTP ready"
	}
	c.writeReply(reply{220, [3]int{}, c.srv.cfg.Hostname + greeting})
	for !c.leaving {
		line, err := c.readLine()
		if errors.Is(err, errLineTooLong) {
			c.writeReply(replyLineTooLong) // dropped; the session goes on
			c.countError(replyLineTooLong)
			continue
		}
		if err != nil {
			c.readFailed(err)
		}
		c.execute(line)
	}
	if !c.quit {
		c.writeReply(replyShuttingDown)
	}
	c.flush()
	c.lingeringClose()
}

// readFailed ends the session after a failed read, telling the client why
// when it is still there to hear.
func (c *conn) readFailed(err error) {
	switch {
	case errors.Is(err, errGoodbye):
		c.writeReply(replyShuttingDown)
		c.flush()
		c.lingeringClose()
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.writeReply(reply{421, [3]int{4, 4, 2}, c.srv.cfg.Hostname + " timeout waiting for the client; closing"})
		c.flush()
	case errors.Is(err, errLineAbsurd):
		c.writeReply(replyLineTooLong)
		c.flush()
		c.lingeringClose()
	}
	xabort(err)
}

// errLineAbsurd is a command line so long that the session ends.
var errLineAbsurd = errors.New("command line far too long")

// readLine reads a command line and returns it without its line ending
// (an LF, and any CRs before it). A line over MaxLineLength is read to
// its end, dropped and reported as errLineTooLong; one past 16 times the
// limit (at least 1 MiB) ends the session, as nothing is likely to follow
// it but more of the same. The line is valid until the next read.
func (c *conn) readLine() ([]byte, error) {
	limit := c.srv.cfg.MaxLineLength
	frag, err := c.br.ReadSlice('\n')
	if err == nil && len(frag) <= limit {
		return trimLineEnd(frag), nil // the common case: no copy
	}
	absurd := max(16*limit, 1<<20)
	var line []byte
	total := 0
	for {
		total += len(frag)
		if total <= limit {
			line = append(line, frag...)
		}
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
		if total > absurd {
			return nil, errLineAbsurd
		}
		frag, err = c.br.ReadSlice('\n')
	}
	if total > limit {
		return nil, errLineTooLong
	}
	return trimLineEnd(line), nil
}

// trimLineEnd drops a line's LF and the CRs before it.
func trimLineEnd(line []byte) []byte {
	line = line[:len(line)-1]
	for len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line
}

// execute runs one command line. A reply raised in the command is written
// here; a panic that is not one is a bug: it is logged with its stack,
// answered 421, and ends the session.
func (c *conn) execute(line []byte) {
	verb, arg, err := parseCommand(string(line))
	defer func() {
		switch x := recover().(type) {
		case nil:
		case reply:
			c.writeReply(x)
			c.countError(x)
		case abortError:
			panic(x)
		default:
			c.log.Error("command panicked", "cmd", verb, "panic", x, "stack", string(debug.Stack()))
			c.writeReply(reply{421, [3]int{4, 3, 0}, "internal server error; closing"})
			c.flush()
			xabort(fmt.Errorf("panic: %v", x))
		}
	}()
	if err != nil {
		panic(err)
	}
	cmd, ok := commands[verb]
	if !ok {
		xreply(500, [3]int{5, 5, 2}, "unknown command")
	}
	if cmd.states&c.state == 0 {
		if cmd.refused != nil {
			cmd.refused(c, arg)
		}
		xreply(503, [3]int{5, 5, 1}, "%s", c.outOfSequence(verb))
	}
	cmd.run(c, arg)
}

// countError counts a command refused for good. In SMTP, a client that
// collects refusals, guessing addresses at RCPT or speaking no SMTP at
// all, is sent away after MaxErrors of them, as Postfix's hard error
// limit does. A temporary refusal (4xx) is not counted: it is the
// server's own condition (RCPTMAX, a full mailbox), not the client's
// fault, and a session ended for it would come back with the same
// transaction and end the same way at every retry, so that a message to
// more recipients than MaxRecipients would reach none of them. LMTP's
// client is the MTA in front, which may well pass on a hundred unknown
// recipients in one transaction.
func (c *conn) countError(r reply) {
	if !c.srv.cfg.Protocol.esmtp() || r.code < 500 {
		return
	}
	c.errors++
	if c.errors < c.srv.cfg.MaxErrors {
		return
	}
	c.log.Info("too many errors; closing", "errors", c.errors)
	c.writeReply(reply{421, [3]int{4, 7, 0}, c.srv.cfg.Hostname + " too many errors; closing"})
	c.flush()
	c.lingeringClose()
	xabort(errors.New("too many errors"))
}

// writeReply writes a reply line, to be sent with the next flush.
func (c *conn) writeReply(r reply) {
	c.out = r.appendTo(c.out[:0], ' ')
	c.bw.Write(c.out)
}

// writeLines writes a reply of several lines (RFC 5321 4.2.1) with the
// code and the status of r and one line of text each.
func (c *conn) writeLines(r reply, lines []string) {
	for i, text := range lines {
		sep := byte('-')
		if i == len(lines)-1 {
			sep = ' '
		}
		r.text = text
		c.out = r.appendTo(c.out[:0], sep)
		c.bw.Write(c.out)
	}
}

// flush sends the replies written so far. A failure shows at the next
// read, which ends the session.
func (c *conn) flush() {
	c.bw.Flush()
}

// lingeringClose closes the server's half so that the client reads the
// last replies, not a reset (server.LingeringClose).
func (c *conn) lingeringClose() { server.LingeringClose(c.nc) }
