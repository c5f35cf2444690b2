package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"time"
)

// maxResponseLine bounds one response line (literals excluded) so a broken
// server cannot make the client grow without end.
const maxResponseLine = 16 << 20

// lineConn is what the IMAP, POP3 and LMTP clients share: a connection
// read and written through buffers, with a deadline for every wait.
type lineConn struct {
	conn net.Conn
	stop func() bool // releases the connection's tie to its context
	r    *bufio.Reader
	w    *bufio.Writer
	// timeout is the longest wait for the server.
	timeout time.Duration
	// deadline is the read deadline last set; it is moved on only when
	// it comes near, so a 100,000-message FETCH does not reset a timer
	// per response.
	deadline time.Time
	// in counts the bytes received.
	in int64
}

func dialLine(ctx context.Context, d *dialer, addr string, timeout time.Duration, bufSize int) (lineConn, error) {
	conn, stop, err := d.dial(ctx, addr)
	if err != nil {
		return lineConn{}, err
	}
	return lineConn{conn: conn, stop: stop, r: bufio.NewReaderSize(conn, bufSize),
		w: bufio.NewWriterSize(conn, 4096), timeout: timeout}, nil
}

func (c *lineConn) close() {
	c.stop()
	c.conn.Close()
}

// extendDeadline moves the read deadline timeout past now when less than
// three quarters of it is left.
func (c *lineConn) extendDeadline() {
	now := time.Now()
	if c.deadline.Sub(now) < c.timeout*3/4 {
		c.deadline = now.Add(c.timeout)
		c.conn.SetReadDeadline(c.deadline)
	}
}

// flush sends what was written.
func (c *lineConn) flush() error {
	c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
	return c.w.Flush()
}

// writeLine sends one command line.
func (c *lineConn) writeLine(format string, args ...any) error {
	fmt.Fprintf(c.w, format, args...)
	c.w.WriteString("\r\n")
	return c.flush()
}

// appendLine appends one line, CRLF included, to buf.
func (c *lineConn) appendLine(buf []byte) ([]byte, error) {
	for {
		b, err := c.r.ReadSlice('\n')
		buf = append(buf, b...)
		c.in += int64(len(b))
		if len(buf) > maxResponseLine {
			return buf, fmt.Errorf("response line longer than %d bytes", maxResponseLine)
		}
		if err != bufio.ErrBufferFull {
			return buf, err
		}
	}
}

func trimCRLF(b []byte) string { return string(bytes.TrimRight(b, "\r\n")) }
