package smtpserver

import (
	"bufio"
	"io"
	"net"
	"sync/atomic"
	"time"
)

// readBufSize is how much a connection reads from the socket at once.
// go-smtp reads through a 4 KB buffer, so a 50 KB message took a dozen
// read system calls; one of these holds a typical message.
const readBufSize = 64 * 1024

// bufferedListener hands go-smtp connections that read in large pieces.
type bufferedListener struct {
	net.Listener
	readTimeout time.Duration
	fixes       map[string]string // see bufferedConn.fixes
}

func (l bufferedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, readBufSize), readTimeout: l.readTimeout, fixes: l.fixes}, nil
}

// bufferedConn is a connection whose reads go through a large buffer and
// whose writes correct some of go-smtp's replies (replyFixes). Everything
// else, deadlines included, is the connection's own.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
	// inTx is set from MAIL until the transaction's replies. A client
	// that closes the connection then has not finished its message, so
	// the end of its stream reads as io.ErrUnexpectedEOF. go-smtp takes
	// io.EOF for the normal end of a BDAT chunk (RFC 3030) it reads with
	// io.Copy, and a chunk cut short would be delivered as if whole.
	inTx atomic.Bool
	// readTimeout bounds each wait for the client's bytes within a
	// transaction. go-smtp sets its read deadline once per command
	// line, so a message's data had to arrive whole within it; a slow
	// link then timed out mid-message, and the rest of the message was
	// read as commands.
	readTimeout time.Duration
	// fixes maps replies go-smtp writes to those sent instead; shared,
	// read-only.
	fixes map[string]string
}

func (c *bufferedConn) Read(p []byte) (int, error) {
	if c.readTimeout > 0 && c.r.Buffered() == 0 && c.inTx.Load() {
		c.Conn.SetReadDeadline(time.Now().Add(c.readTimeout))
	}
	n, err := c.r.Read(p)
	if err == io.EOF && c.inTx.Load() {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// NetConn returns the connection underneath, for half-closing it.
func (c *bufferedConn) NetConn() net.Conn { return c.Conn }
