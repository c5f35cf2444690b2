package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strconv"
	"time"
)

// pop3Conn is one POP3 client connection (RFC 1939).
type pop3Conn struct {
	lineConn
	line []byte
}

// pop3Error is a -ERR reply or a reply that makes no sense.
type pop3Error struct {
	cmd  string
	resp string
}

func (e *pop3Error) Error() string { return fmt.Sprintf("POP3 %s: %s", e.cmd, e.resp) }

// dialPOP3 connects and reads the greeting (RFC 1939 4).
func dialPOP3(ctx context.Context, d *dialer, addr string, timeout time.Duration) (*pop3Conn, error) {
	lc, err := dialLine(ctx, d, addr, timeout, 64*1024)
	if err != nil {
		return nil, err
	}
	c := &pop3Conn{lineConn: lc}
	if _, err := c.reply("greeting"); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// reply reads a single-line reply and returns its text after "+OK".
func (c *pop3Conn) reply(cmd string) ([]byte, error) {
	c.extendDeadline()
	var err error
	if c.line, err = c.appendLine(c.line[:0]); err != nil {
		return nil, fmt.Errorf("POP3 %s: %w", cmd, err)
	}
	if !bytes.HasPrefix(c.line, []byte("+OK")) {
		return nil, &pop3Error{cmd, trimCRLF(c.line)}
	}
	return bytes.TrimSpace(c.line[3:]), nil
}

func (c *pop3Conn) command(cmd string, format string, args ...any) ([]byte, error) {
	if err := c.writeLine(format, args...); err != nil {
		return nil, fmt.Errorf("POP3 %s: %w", cmd, err)
	}
	return c.reply(cmd)
}

// login authenticates with USER and PASS (RFC 1939 7).
func (c *pop3Conn) login(user, password string) error {
	if _, err := c.command("USER", "USER %s", user); err != nil {
		return err
	}
	_, err := c.command("PASS", "PASS %s", password)
	return err
}

// stat returns the number of messages and their size (RFC 1939 5).
func (c *pop3Conn) stat() (int, int64, error) {
	text, err := c.command("STAT", "STAT")
	if err != nil {
		return 0, 0, err
	}
	f := bytes.Fields(text)
	if len(f) < 2 {
		return 0, 0, &pop3Error{"STAT", trimCRLF(c.line)}
	}
	n, err1 := strconv.Atoi(string(f[0]))
	size, err2 := strconv.ParseInt(string(f[1]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, &pop3Error{"STAT", trimCRLF(c.line)}
	}
	return n, size, nil
}

// retr downloads message i and returns its size: the bytes between the
// status line and the terminating dot, with the byte-stuffing dots
// removed (RFC 1939 3).
func (c *pop3Conn) retr(i int) (int64, error) {
	if _, err := c.command("RETR", "RETR %d", i); err != nil {
		return 0, err
	}
	// The reply's deadline covers the message: one message taking longer
	// than the timeout is a stuck server.
	var n int64
	atStart := true
	for {
		b, err := c.r.ReadSlice('\n')
		c.in += int64(len(b))
		if err != nil && err != bufio.ErrBufferFull {
			return n, fmt.Errorf("POP3 RETR %d: %w", i, err)
		}
		if atStart && len(b) > 0 && b[0] == '.' {
			if err == nil && (string(b) == ".\r\n" || string(b) == ".\n") {
				return n, nil
			}
			n--
		}
		n += int64(len(b))
		atStart = err == nil
	}
}

// quit ends the session (RFC 1939 6) and closes the connection.
func (c *pop3Conn) quit() error {
	_, err := c.command("QUIT", "QUIT")
	c.close()
	return err
}
