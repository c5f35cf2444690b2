package bench

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// imapConn is one IMAP client connection (RFC 9051, RFC 3501). It sends
// one command at a time and reads every response in full, literals
// included, keeping only the text outside literals.
type imapConn struct {
	lineConn
	tag int
	// line is the last response, literal contents left out.
	line []byte
	// litBytes is the size of the literals of the last response.
	litBytes int64
	// exists is the number of messages in the selected mailbox, kept
	// from untagged EXISTS and EXPUNGE responses (RFC 9051 7.4.1, 7.5.1).
	exists int
	// literalPlus is set when the server announced LITERAL+ or LITERAL-
	// (RFC 7888), so APPEND need not wait for a continuation.
	literalPlus bool
	// loggingOut makes the BYE that answers LOGOUT expected.
	loggingOut bool
}

// imapError is a tagged NO or BAD, an unexpected BYE, or a response that
// makes no sense where it came.
type imapError struct {
	cmd  string
	resp string
}

func (e *imapError) Error() string { return fmt.Sprintf("IMAP %s: %s", e.cmd, e.resp) }

// dialIMAP connects and reads the greeting (RFC 9051 7.1.1).
func dialIMAP(ctx context.Context, d *dialer, addr string, timeout time.Duration, bufSize int) (*imapConn, error) {
	lc, err := dialLine(ctx, d, addr, timeout, bufSize)
	if err != nil {
		return nil, err
	}
	c := &imapConn{lineConn: lc}
	if err := c.readResp(); err != nil {
		c.close()
		return nil, fmt.Errorf("IMAP greeting: %w", err)
	}
	if !bytes.HasPrefix(c.line, []byte("* OK")) {
		c.close()
		return nil, fmt.Errorf("IMAP greeting: %q", trimCRLF(c.line))
	}
	c.noteCapabilities()
	return c, nil
}

// literalSize returns n when line ends with a literal's announcement
// "{n}" or "{n+}" and CRLF (RFC 9051 4.3). A line cannot end so inside a
// quoted string, which never spans lines.
func literalSize(line []byte) (int64, bool) {
	line = bytes.TrimSuffix(line, []byte("\r\n"))
	if len(line) < 3 || line[len(line)-1] != '}' {
		return 0, false
	}
	open := bytes.LastIndexByte(line, '{')
	if open < 0 {
		return 0, false
	}
	digits := bytes.TrimSuffix(line[open+1:len(line)-1], []byte("+"))
	n, err := strconv.ParseInt(string(digits), 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// readResp reads one response into c.line: its text, each literal's
// contents counted and skipped.
func (c *imapConn) readResp() error {
	c.line = c.line[:0]
	c.litBytes = 0
	c.extendDeadline()
	for {
		start := len(c.line)
		var err error
		if c.line, err = c.appendLine(c.line); err != nil {
			return err
		}
		n, ok := literalSize(c.line[start:])
		if !ok {
			return nil
		}
		for n > 0 {
			k, err := c.r.Discard(int(min(n, 1<<30)))
			n -= int64(k)
			c.litBytes += int64(k)
			c.in += int64(k)
			if err != nil {
				return err
			}
			c.extendDeadline()
		}
	}
}

// leadingNumber parses "123 REST" into 123 and " REST".
func leadingNumber(b []byte) (int, []byte, bool) {
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == 0 || i > 9 {
		return 0, b, false
	}
	n, _ := strconv.Atoi(string(b[:i]))
	return n, b[i:], true
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && strings.EqualFold(string(b[:len(prefix)]), prefix)
}

// noteCapabilities looks for the capability list in an untagged
// CAPABILITY or a CAPABILITY response code (RFC 9051 7.1).
func (c *imapConn) noteCapabilities() {
	i := bytes.Index(c.line, []byte("CAPABILITY "))
	if i < 0 || i > 40 {
		return
	}
	caps := c.line[i:]
	if j := bytes.IndexByte(caps, ']'); j >= 0 {
		caps = caps[:j]
	}
	c.literalPlus = bytes.Contains(caps, []byte(" LITERAL+")) || bytes.Contains(caps, []byte(" LITERAL-"))
}

// untagged keeps track of what an untagged response in c.line says about
// the connection; it returns an error for an unexpected BYE.
func (c *imapConn) untagged(cmd string) error {
	rest := c.line[2:]
	if n, after, ok := leadingNumber(rest); ok {
		switch {
		case hasPrefixFold(after, " EXISTS"):
			c.exists = n
		case hasPrefixFold(after, " EXPUNGE"):
			c.exists--
		}
		return nil
	}
	switch {
	case hasPrefixFold(rest, "BYE"):
		if !c.loggingOut {
			return &imapError{cmd, trimCRLF(c.line)}
		}
	case hasPrefixFold(rest, "CAPABILITY"), hasPrefixFold(rest, "OK [CAPABILITY"):
		c.noteCapabilities()
	}
	return nil
}

// send writes a command with a new tag and returns the tag.
func (c *imapConn) send(format string, args ...any) (string, error) {
	c.tag++
	tag := "b" + strconv.Itoa(c.tag)
	c.w.WriteString(tag)
	c.w.WriteByte(' ')
	return tag, c.writeLine(format, args...)
}

// wait reads responses until the one tagged tag, passing each untagged
// response to fn. A continuation request ends the wait when cont is set
// and is an error otherwise; a tagged NO or BAD is an *imapError.
func (c *imapConn) wait(cmd, tag string, cont bool, fn func(line []byte) error) error {
	for {
		if err := c.readResp(); err != nil {
			return fmt.Errorf("IMAP %s: %w", cmd, err)
		}
		switch {
		case bytes.HasPrefix(c.line, []byte("* ")):
			if err := c.untagged(cmd); err != nil {
				return err
			}
			if fn != nil {
				if err := fn(c.line); err != nil {
					return err
				}
			}
		case c.line[0] == '+':
			if cont {
				return nil
			}
			return &imapError{cmd, "unexpected continuation: " + trimCRLF(c.line)}
		case bytes.HasPrefix(c.line, []byte(tag)) && len(c.line) > len(tag) && c.line[len(tag)] == ' ':
			status := c.line[len(tag)+1:]
			if !hasPrefixFold(status, "OK") {
				return &imapError{cmd, trimCRLF(c.line)}
			}
			if cont {
				return &imapError{cmd, "completed without a continuation request: " + trimCRLF(c.line)}
			}
			if bytes.Contains(status, []byte("[CAPABILITY ")) {
				c.noteCapabilities()
			}
			return nil
		default:
			return &imapError{cmd, "unexpected response: " + trimCRLF(c.line)}
		}
	}
}

// command sends a command and waits for its completion.
func (c *imapConn) command(cmd string, fn func(line []byte) error, format string, args ...any) error {
	tag, err := c.send(format, args...)
	if err != nil {
		return fmt.Errorf("IMAP %s: %w", cmd, err)
	}
	return c.wait(cmd, tag, false, fn)
}

// quote makes s an IMAP quoted string (RFC 9051 4.3).
func quote(s string) string {
	if !strings.ContainsAny(s, `"\`) {
		return `"` + s + `"`
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func (c *imapConn) login(user, password string) error {
	return c.command("LOGIN", nil, "LOGIN %s %s", quote(user), quote(password))
}

// selectMailbox selects a mailbox and returns its message count.
func (c *imapConn) selectMailbox(name string) (int, error) {
	c.exists = 0
	err := c.command("SELECT", nil, "SELECT %s", quote(name))
	return c.exists, err
}

// countFetch returns an untagged-response handler that counts FETCH
// responses.
func countFetch(n *int) func([]byte) error {
	return func(line []byte) error {
		if _, after, ok := leadingNumber(line[2:]); ok && hasPrefixFold(after, " FETCH") {
			*n++
		}
		return nil
	}
}

// fetch sends FETCH and returns the number of FETCH responses and the
// bytes of their literals.
func (c *imapConn) fetch(set, items string) (int, int64, error) {
	n := 0
	var lits int64
	count := countFetch(&n)
	err := c.command("FETCH", func(line []byte) error {
		lits += c.litBytes
		return count(line)
	}, "FETCH %s %s", set, items)
	return n, lits, err
}

// search sends SEARCH and returns the number of matches.
func (c *imapConn) search(criteria string) (int, error) {
	hits := 0
	err := c.command("SEARCH", func(line []byte) error {
		if hasPrefixFold(line[2:], "SEARCH") {
			hits += len(bytes.Fields(line[2:])) - 1
		}
		return nil
	}, "SEARCH %s", criteria)
	return hits, err
}

// appendMessage appends msg (CRLF lines) to a mailbox, with a
// non-synchronizing literal when the server allows it (RFC 7888).
func (c *imapConn) appendMessage(mailbox, flags string, msg []byte) error {
	plus := ""
	if c.literalPlus {
		plus = "+"
	}
	tag, err := c.send("APPEND %s (%s) {%d%s}", quote(mailbox), flags, len(msg), plus)
	if err != nil {
		return fmt.Errorf("IMAP APPEND: %w", err)
	}
	if !c.literalPlus {
		if err := c.wait("APPEND", tag, true, nil); err != nil {
			return err
		}
	}
	c.w.Write(msg)
	if err := c.writeLine(""); err != nil {
		return fmt.Errorf("IMAP APPEND: %w", err)
	}
	return c.wait("APPEND", tag, false, nil)
}

// idle starts IDLE (RFC 2177) and returns once the server accepted it.
func (c *imapConn) idle() (string, error) {
	tag, err := c.send("IDLE")
	if err != nil {
		return "", fmt.Errorf("IMAP IDLE: %w", err)
	}
	return tag, c.wait("IDLE", tag, true, nil)
}

// waitExists reads responses during IDLE until EXISTS reports more than
// n messages.
func (c *imapConn) waitExists(n int) error {
	for c.exists <= n {
		if err := c.readResp(); err != nil {
			return fmt.Errorf("IMAP IDLE: %w", err)
		}
		if !bytes.HasPrefix(c.line, []byte("* ")) {
			return &imapError{"IDLE", "unexpected response: " + trimCRLF(c.line)}
		}
		if err := c.untagged("IDLE"); err != nil {
			return err
		}
	}
	return nil
}

// done ends IDLE.
func (c *imapConn) done(tag string) error {
	if err := c.writeLine("DONE"); err != nil {
		return fmt.Errorf("IMAP DONE: %w", err)
	}
	return c.wait("IDLE", tag, false, nil)
}

// logout logs out and closes the connection.
func (c *imapConn) logout() error {
	c.loggingOut = true
	err := c.command("LOGOUT", nil, "LOGOUT")
	c.close()
	return err
}
