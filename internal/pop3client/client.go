// Package pop3client is a POP3 client: RFC 1939 (POP3), RFC 2449 (CAPA and
// response codes), RFC 2595 (STLS), RFC 3206 (the SYS and AUTH codes) and
// RFC 5034 (SASL with an initial response: PLAIN, and OAUTHBEARER or
// XOAUTH2 for servers that want an OAuth 2.0 token). The fetch client and
// tests use it (the benchmark has its own minimal driver, so it measures
// the server rather than a client library).
//
// A Client runs one command at a time and is not safe for concurrent use.
// After a network error, or an error part-way through a multi-line
// response, the Client is unusable: Close it.
package pop3client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Response codes a server may send in brackets after -ERR (RFC 2449 8,
// RFC 3206).
const (
	CodeInUse      = "IN-USE"      // the maildrop is locked by another session
	CodeLoginDelay = "LOGIN-DELAY" // logins come too often; wait longer between them
	CodeAuth       = "AUTH"        // the credentials were wrong
	CodeSys        = "SYS"         // a server problem, TEMP or PERM
	CodeSysTemp    = "SYS/TEMP"    // a server problem that may pass: try later
	CodeSysPerm    = "SYS/PERM"    // a server problem that will not pass by itself
)

// Error is a -ERR response.
type Error struct {
	// Command is the command refused, without arguments ("PASS").
	Command string
	// Code is the response code without brackets ("SYS/TEMP"), or "".
	Code string
	// Text is the rest of the response.
	Text string
	// Challenge is, for an AUTH refused with a challenge, the challenge
	// decoded: an OAUTHBEARER or XOAUTH2 server's error (RFC 7628 3.2.2).
	Challenge string
}

func (e *Error) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("pop3 %s: -ERR [%s] %s", e.Command, e.Code, e.Text)
	}
	return fmt.Sprintf("pop3 %s: -ERR %s", e.Command, e.Text)
}

// HasCode reports whether the error's code is code or below it in the
// hierarchy: "SYS/TEMP" has "SYS" and "SYS/TEMP" (RFC 2449 8).
func (e *Error) HasCode(code string) bool {
	return strings.EqualFold(e.Code, code) ||
		len(e.Code) > len(code) && e.Code[len(code)] == '/' && strings.EqualFold(e.Code[:len(code)], code)
}

// HasCode reports whether err is, or wraps, an *Error with the response
// code (see Error.HasCode).
func HasCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.HasCode(code)
}

// ErrProtocol is a response the client cannot understand.
var ErrProtocol = errors.New("pop3: protocol error")

// maxLine bounds a response line the client accepts, other than lines of
// a message.
const maxLine = 64 * 1024

// Client is a connection to a POP3 server.
type Client struct {
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	// greeting is the text of the server's +OK greeting.
	greeting string
	// tls is set once the connection uses TLS.
	tls bool
	// broken is set when the connection can no longer be used.
	broken error
}

// Dial connects to a server in plain text (port 110); use STLS to start TLS.
func Dial(ctx context.Context, addr string) (*Client, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return newClient(ctx, nc, false)
}

// DialTLS connects to a server over implicit TLS (POP3S, port 995). A nil
// cfg verifies the server against the system roots and the host in addr.
func DialTLS(ctx context.Context, addr string, cfg *tls.Config) (*Client, error) {
	d := tls.Dialer{Config: withServerName(cfg, addr)}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return newClient(ctx, nc, true)
}

// NewClient runs POP3 over an established connection and reads the
// greeting.
func NewClient(conn net.Conn) (*Client, error) {
	_, isTLS := conn.(*tls.Conn)
	return newClient(context.Background(), conn, isTLS)
}

func newClient(ctx context.Context, nc net.Conn, isTLS bool) (*Client, error) {
	c := &Client{conn: nc, br: bufio.NewReader(nc), bw: bufio.NewWriter(nc), tls: isTLS}
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
		defer nc.SetDeadline(time.Time{})
	}
	text, err := c.response("greeting")
	if err != nil {
		nc.Close()
		return nil, err
	}
	c.greeting = text
	return c, nil
}

// withServerName fills in ServerName from addr when cfg has none.
func withServerName(cfg *tls.Config, addr string) *tls.Config {
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		cfg.ServerName, _, _ = net.SplitHostPort(addr)
	}
	return cfg
}

// Greeting returns the text of the server's greeting.
func (c *Client) Greeting() string { return c.greeting }

// TLS reports whether the connection uses TLS.
func (c *Client) TLS() bool { return c.tls }

// SetDeadline sets a deadline for the network I/O of the commands that
// follow; the zero time removes it.
func (c *Client) SetDeadline(t time.Time) error { return c.conn.SetDeadline(t) }

// Close closes the connection without QUIT: deletions are not applied.
func (c *Client) Close() error { return c.conn.Close() }

// STLS starts TLS on a plain connection (RFC 2595 4). cfg.ServerName must
// be set unless cfg.InsecureSkipVerify is.
func (c *Client) STLS(cfg *tls.Config) error {
	if _, err := c.cmd("STLS", "STLS"); err != nil {
		return err
	}
	if c.br.Buffered() > 0 {
		c.broken = fmt.Errorf("%w: data after the STLS response", ErrProtocol)
		return c.broken
	}
	tc := tls.Client(c.conn, cfg)
	if err := tc.Handshake(); err != nil {
		c.broken = err
		return err
	}
	c.conn, c.tls = tc, true
	c.br.Reset(tc)
	c.bw.Reset(tc)
	return nil
}

// Capabilities are the server's CAPA lines (RFC 2449 5): the capability
// name, upper-cased, to its arguments.
type Capabilities map[string][]string

// Has reports whether the capability is listed, with each of args among
// its arguments: Has("SASL", "PLAIN") for a server offering SASL PLAIN.
func (c Capabilities) Has(name string, args ...string) bool {
	have, ok := c[strings.ToUpper(name)]
	for _, arg := range args {
		ok = ok && slices.ContainsFunc(have, func(a string) bool { return strings.EqualFold(a, arg) })
	}
	return ok
}

// Capa asks for the server's capabilities (RFC 2449 5).
func (c *Client) Capa() (Capabilities, error) {
	if _, err := c.cmd("CAPA", "CAPA"); err != nil {
		return nil, err
	}
	caps := Capabilities{}
	err := c.lines(func(line string) error {
		f := strings.Fields(line)
		if len(f) > 0 {
			caps[strings.ToUpper(f[0])] = f[1:]
		}
		return nil
	})
	return caps, err
}

// User logs in with USER and PASS (RFC 1939 7).
func (c *Client) User(name, password string) error {
	if _, err := c.cmd("USER", "USER %s", name); err != nil {
		return err
	}
	_, err := c.cmd("PASS", "PASS %s", password)
	return err
}

// AuthPlain logs in with SASL PLAIN (RFC 4616).
func (c *Client) AuthPlain(name, password string) error {
	return c.Auth("PLAIN", []byte("\x00"+name+"\x00"+password))
}

// Auth logs in with a SASL mechanism whose client speaks once (PLAIN,
// OAUTHBEARER, XOAUTH2): its initial response goes with the AUTH command
// (RFC 5034 4), or after the server's empty challenge when the line would
// pass 255 octets. A server that answers the response with a challenge is
// refusing it, as RFC 7628 3.2.2 has OAUTHBEARER servers send their error:
// the exchange is cancelled with "*" (RFC 5034 4) and the *Error returned
// carries the challenge.
func (c *Client) Auth(mech string, initial []byte) error {
	ir := base64.StdEncoding.EncodeToString(initial)
	if ir == "" {
		ir = "=" // RFC 5034 4: an empty initial response
	}
	if len("AUTH ")+len(mech)+len(" ")+len(ir)+len("\r\n") <= 255 {
		if err := c.send("AUTH %s %s", mech, ir); err != nil {
			return err
		}
	} else {
		if err := c.send("AUTH %s", mech); err != nil {
			return err
		}
		line, err := c.readLine()
		if err != nil {
			return err
		}
		if _, ok := challenge(line); !ok {
			_, err := c.status("AUTH", line)
			return err
		}
		if err := c.send("%s", ir); err != nil {
			return err
		}
	}
	line, err := c.readLine()
	if err != nil {
		return err
	}
	ch, ok := challenge(line)
	if !ok {
		_, err := c.status("AUTH", line)
		return err
	}
	if err := c.send("*"); err != nil {
		return err
	}
	_, err = c.response("AUTH")
	var e *Error
	if errors.As(err, &e) {
		e.Challenge = ch
	}
	if err == nil {
		// RFC 5034 4: a cancelled exchange must be refused.
		c.broken = fmt.Errorf("%w: AUTH %s accepted after it was cancelled", ErrProtocol, mech)
		return c.broken
	}
	return err
}

// challenge reads a SASL challenge line ("+ " and base64, RFC 5034 4),
// decoded; a challenge that is not base64 is returned as it came.
func challenge(line string) (string, bool) {
	if line != "+" && !strings.HasPrefix(line, "+ ") {
		return "", false
	}
	text := strings.TrimSpace(strings.TrimPrefix(line, "+"))
	if b, err := base64.StdEncoding.DecodeString(text); err == nil {
		return string(b), true
	}
	return text, true
}

// Stat returns the number of messages in the maildrop and their total
// size in octets (RFC 1939 5).
func (c *Client) Stat() (count int, size int64, err error) {
	text, err := c.cmd("STAT", "STAT")
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(text)
	if len(f) < 2 {
		return 0, 0, fmt.Errorf("%w: STAT answered %q", ErrProtocol, text)
	}
	count, err1 := strconv.Atoi(f[0])
	size, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("%w: STAT answered %q", ErrProtocol, text)
	}
	return count, size, nil
}

// MessageSize is one line of a LIST response.
type MessageSize struct {
	Number int
	Size   int64
}

// List returns the number and size of every message not deleted
// (RFC 1939 5).
func (c *Client) List() ([]MessageSize, error) {
	if _, err := c.cmd("LIST", "LIST"); err != nil {
		return nil, err
	}
	var out []MessageSize
	err := c.lines(func(line string) error {
		n, size, err := parseScan(line)
		if err != nil {
			return err
		}
		out = append(out, MessageSize{n, size})
		return nil
	})
	return out, err
}

// ListOne returns the size of message n.
func (c *Client) ListOne(n int) (int64, error) {
	text, err := c.cmd("LIST", "LIST %d", n)
	if err != nil {
		return 0, err
	}
	_, size, err := parseScan(text)
	return size, err
}

// MessageUID is one line of a UIDL response.
type MessageUID struct {
	Number int
	UID    string
}

// UIDL returns the unique id of every message not deleted (RFC 1939 7).
// An id is the rest of its line after the message number, trimmed: RFC
// 1939 7 allows no spaces in it, but a server that puts some in gets its
// ids whole rather than cut to their first word, where two of them could
// meet. A line with a message number and no id is left out: that
// message has no UIDL, which RFC 1939 7 does not allow, but the others'
// ids are good, and the session goes on.
func (c *Client) UIDL() ([]MessageUID, error) {
	if _, err := c.cmd("UIDL", "UIDL"); err != nil {
		return nil, err
	}
	var out []MessageUID
	err := c.lines(func(line string) error {
		n, uid, err := parseListing(line)
		if err != nil {
			if _, nerr := strconv.Atoi(strings.TrimSpace(line)); nerr == nil {
				return nil // a number alone
			}
			return err
		}
		out = append(out, MessageUID{n, uid})
		return nil
	})
	return out, err
}

// UIDLOne returns the unique id of message n.
func (c *Client) UIDLOne(n int) (string, error) {
	text, err := c.cmd("UIDL", "UIDL %d", n)
	if err != nil {
		return "", err
	}
	_, uid, err := parseListing(text)
	return uid, err
}

// parseListing splits "n value" (a LIST or UIDL line) at the first space
// after the message number; value is the rest of the line, trimmed.
func parseListing(line string) (int, string, error) {
	line = strings.TrimSpace(line)
	num, rest := line, ""
	if i := strings.IndexAny(line, " \t"); i >= 0 {
		num, rest = line[:i], strings.TrimSpace(line[i+1:])
	}
	n, err := strconv.Atoi(num)
	if err != nil || rest == "" {
		return 0, "", fmt.Errorf("%w: listing %q", ErrProtocol, line)
	}
	return n, rest, nil
}

// parseScan reads a scan listing, "n size" (RFC 1939 5 LIST): the size is
// the first word after the number, and the server may add more after it.
func parseScan(line string) (int, int64, error) {
	n, rest, err := parseListing(line)
	if err != nil {
		return 0, 0, err
	}
	size, err := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
	if err != nil || size < 0 {
		return 0, 0, fmt.Errorf("%w: LIST line %q", ErrProtocol, line)
	}
	return n, size, nil
}

// Retr writes message n to w exactly as the server sends it, without the
// dot-stuffing, and returns the bytes written (RFC 1939 5). The message
// is streamed, never held whole.
func (c *Client) Retr(n int, w io.Writer) (int64, error) {
	if _, err := c.cmd("RETR", "RETR %d", n); err != nil {
		return 0, err
	}
	return c.readBody(w)
}

// Top writes the header of message n and the first lines of its body to w
// (RFC 1939 7).
func (c *Client) Top(n, lines int, w io.Writer) (int64, error) {
	if _, err := c.cmd("TOP", "TOP %d %d", n, lines); err != nil {
		return 0, err
	}
	return c.readBody(w)
}

// Dele marks message n deleted; the server removes it at Quit (RFC 1939 5).
func (c *Client) Dele(n int) error {
	_, err := c.cmd("DELE", "DELE %d", n)
	return err
}

// Rset unmarks the messages marked deleted (RFC 1939 5).
func (c *Client) Rset() error {
	_, err := c.cmd("RSET", "RSET")
	return err
}

// Noop does nothing but keep the connection alive (RFC 1939 5).
func (c *Client) Noop() error {
	_, err := c.cmd("NOOP", "NOOP")
	return err
}

// Quit ends the session, making the server remove the messages marked
// deleted (RFC 1939 6), and closes the connection. An error means the
// deletions may not have happened.
func (c *Client) Quit() error {
	_, err := c.cmd("QUIT", "QUIT")
	c.conn.Close()
	return err
}

// cmd sends a command line and reads a single-line response, returning
// its text after "+OK".
func (c *Client) cmd(name, format string, args ...any) (string, error) {
	if err := c.send(format, args...); err != nil {
		return "", err
	}
	return c.response(name)
}

func (c *Client) send(format string, args ...any) error {
	if c.broken != nil {
		return c.broken
	}
	fmt.Fprintf(c.bw, format, args...)
	c.bw.WriteString("\r\n")
	if err := c.bw.Flush(); err != nil {
		c.broken = err
		return err
	}
	return nil
}

// response reads a status line: the text after "+OK", or an *Error.
func (c *Client) response(name string) (string, error) {
	line, err := c.readLine()
	if err != nil {
		return "", err
	}
	return c.status(name, line)
}

// status interprets a status line: the text after "+OK", or an *Error.
func (c *Client) status(name, line string) (string, error) {
	switch {
	case line == "+OK" || strings.HasPrefix(line, "+OK "):
		return strings.TrimPrefix(line[3:], " "), nil
	case line == "-ERR" || strings.HasPrefix(line, "-ERR "):
		e := &Error{Command: name, Text: strings.TrimPrefix(strings.TrimPrefix(line, "-ERR"), " ")}
		if strings.HasPrefix(e.Text, "[") {
			if code, text, ok := strings.Cut(e.Text[1:], "]"); ok {
				e.Code, e.Text = code, strings.TrimPrefix(text, " ")
			}
		}
		return "", e
	}
	c.broken = fmt.Errorf("%w: %s answered %q", ErrProtocol, name, line)
	return "", c.broken
}

// readLine reads one line of at most maxLine bytes, without its CRLF.
func (c *Client) readLine() (string, error) {
	if c.broken != nil {
		return "", c.broken
	}
	var line []byte
	for {
		frag, err := c.br.ReadSlice('\n')
		line = append(line, frag...)
		if len(line) > maxLine {
			c.broken = fmt.Errorf("%w: response line too long", ErrProtocol)
			return "", c.broken
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			c.broken = err
			return "", err
		}
		break
	}
	line = bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'})
	return string(line), nil
}

// lines reads the lines of a multi-line response up to the "." that ends
// it, undoing dot-stuffing, and passes each to fn.
func (c *Client) lines(fn func(string) error) error {
	for {
		line, err := c.readLine()
		if err != nil {
			return err
		}
		if line == "." {
			return nil
		}
		if err := fn(strings.TrimPrefix(line, ".")); err != nil {
			c.broken = err
			return err
		}
	}
}

// readBody copies a multi-line response to w byte for byte, without the
// dot-stuffing and the terminating line. Lines may be of any length.
func (c *Client) readBody(w io.Writer) (int64, error) {
	var n int64
	lineStart := true
	for {
		frag, err := c.br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			c.broken = err
			return n, err
		}
		if len(frag) == 0 {
			continue
		}
		if lineStart && frag[0] == '.' {
			if string(frag) == ".\r\n" || string(frag) == ".\n" {
				return n, nil
			}
			frag = frag[1:]
			if len(frag) == 0 {
				lineStart = false // "." split from the rest of its line
				continue
			}
		}
		lineStart = frag[len(frag)-1] == '\n'
		m, werr := w.Write(frag)
		n += int64(m)
		if werr != nil {
			// The rest of the response is still on the wire.
			c.broken = werr
			return n, werr
		}
	}
}
