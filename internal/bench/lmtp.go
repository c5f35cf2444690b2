package bench

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// lmtpConn is one LMTP client connection (RFC 2033): one transaction at a
// time, no pipelining.
type lmtpConn struct {
	lineConn
	line []byte
}

// lmtpError is a reply that refused a command, or made no sense.
type lmtpError struct {
	cmd  string
	resp string
}

func (e *lmtpError) Error() string { return fmt.Sprintf("LMTP %s: %s", e.cmd, e.resp) }

// dialLMTP connects, reads the greeting and sends LHLO (RFC 2033 4.1).
func dialLMTP(ctx context.Context, d *dialer, addr string, timeout time.Duration) (*lmtpConn, error) {
	lc, err := dialLine(ctx, d, addr, timeout, 4096)
	if err != nil {
		return nil, err
	}
	c := &lmtpConn{lineConn: lc}
	if _, err := c.reply("greeting", 220); err != nil {
		c.close()
		return nil, err
	}
	if err := c.command("LHLO", 250, "LHLO bench.example.net"); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// reply reads a reply, multi-line or not (RFC 5321 4.2), and returns its
// code; a code other than want is an *lmtpError.
func (c *lmtpConn) reply(cmd string, want int) (int, error) {
	c.extendDeadline()
	for {
		var err error
		if c.line, err = c.appendLine(c.line[:0]); err != nil {
			return 0, fmt.Errorf("LMTP %s: %w", cmd, err)
		}
		if len(c.line) < 4 {
			return 0, &lmtpError{cmd, "short reply: " + trimCRLF(c.line)}
		}
		code, err := strconv.Atoi(string(c.line[:3]))
		if err != nil {
			return 0, &lmtpError{cmd, "bad reply: " + trimCRLF(c.line)}
		}
		if c.line[3] == '-' {
			continue
		}
		if code != want {
			return code, &lmtpError{cmd, trimCRLF(c.line)}
		}
		return code, nil
	}
}

func (c *lmtpConn) command(cmd string, want int, format string, args ...any) error {
	if err := c.writeLine(format, args...); err != nil {
		return fmt.Errorf("LMTP %s: %w", cmd, err)
	}
	_, err := c.reply(cmd, want)
	return err
}

// deliver runs one transaction: MAIL, a RCPT per recipient, DATA with
// data (dot-stuffed, ".CRLF" at its end), and LMTP's one reply per
// recipient (RFC 2033 4.2). Every recipient must be accepted.
func (c *lmtpConn) deliver(from string, rcpts []string, data []byte) error {
	if err := c.command("MAIL", 250, "MAIL FROM:<%s>", from); err != nil {
		return err
	}
	for _, rcpt := range rcpts {
		if err := c.command("RCPT", 250, "RCPT TO:<%s>", rcpt); err != nil {
			// Leave the connection usable for the caller's next attempt.
			c.command("RSET", 250, "RSET")
			return fmt.Errorf("recipient %s: %w", rcpt, err)
		}
	}
	if err := c.command("DATA", 354, "DATA"); err != nil {
		return err
	}
	c.w.Write(data)
	if err := c.flush(); err != nil {
		return fmt.Errorf("LMTP DATA: %w", err)
	}
	for _, rcpt := range rcpts {
		if _, err := c.reply("DATA", 250); err != nil {
			return fmt.Errorf("deliver to %s: %w", rcpt, err)
		}
	}
	return nil
}

// quit ends the session and closes the connection.
func (c *lmtpConn) quit() {
	c.command("QUIT", 221, "QUIT")
	c.close()
}
