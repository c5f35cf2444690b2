// Package smtpclient hands messages to one SMTP server: the relay MTA
// that the submission service passes its clients' mail to. It speaks
// SMTP (RFC 5321) with EHLO, STARTTLS (RFC 3207) or implicit TLS
// (RFC 8314), AUTH PLAIN (RFC 4954, RFC 4616), ENHANCEDSTATUSCODES
// (RFC 2034), 8BITMIME (RFC 6152) and SMTPUTF8 (RFC 6531), one command at
// a time, each bounded by a timeout, so that a caller can answer its own
// client with the relay's reply to each command.
//
// It is not a mail transfer agent: no MX lookups, no queue, no retries.
package smtpclient

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// Security is how a connection to the relay is protected.
type Security uint8

const (
	// StartTLS connects in plaintext and starts TLS with STARTTLS
	// (RFC 3207) before anything else; a relay that does not offer it is
	// an error.
	StartTLS Security = iota
	// ImplicitTLS starts TLS at once (RFC 8314 3.3).
	ImplicitTLS
	// Plain uses no TLS: for a relay on loopback.
	Plain
)

// Config says where the relay is and how to talk to it.
type Config struct {
	// Addr is the relay's host:port.
	Addr string
	// Security is StartTLS (the zero value), ImplicitTLS or Plain.
	Security Security
	// TLS configures the TLS client; nil verifies the relay's certificate
	// against the system's roots, for the host name in Addr. A config
	// without a ServerName gets that host name.
	TLS *tls.Config
	// Hostname is the name this client gives in EHLO; "" sends
	// "localhost".
	Hostname string
	// Username, when not empty, logs in with AUTH PLAIN after TLS, with
	// the password Password returns (it may run a command or read a
	// file, and is asked at each connection so that a new one is taken
	// without a restart).
	Username string
	Password func(context.Context) (string, error)
	// ConnectTimeout bounds the connection, the greeting, the TLS
	// handshake, EHLO and AUTH; 0 means 30 seconds.
	ConnectTimeout time.Duration
	// CommandTimeout bounds each later command's reply, and each write
	// of the message: a large message on a slow link takes as long as it
	// takes, while a relay that stops reading is given up on. The reply
	// to the end of the data gets DataTimeout (RFC 5321 4.5.3.2.6 asks
	// for 10 minutes: the relay may scan the message). 0 means 5 and 10
	// minutes.
	CommandTimeout, DataTimeout time.Duration
}

// Defaults for zero Config fields.
const (
	defaultConnectTimeout = 30 * time.Second
	defaultCommandTimeout = 5 * time.Minute
	defaultDataTimeout    = 10 * time.Minute
)

// Reply is a reply of the relay that is not a success: the caller may
// pass it on to its own client as it is.
type Reply struct {
	Code int
	// Enhanced is the enhanced status code (RFC 3463), zero when the
	// relay gave none.
	Enhanced [3]int
	// Text is the reply's text without the enhanced code, its lines
	// joined with spaces.
	Text string
}

func (r *Reply) Error() string {
	if r.Enhanced == [3]int{} {
		return fmt.Sprintf("%d %s", r.Code, r.Text)
	}
	return fmt.Sprintf("%d %d.%d.%d %s", r.Code, r.Enhanced[0], r.Enhanced[1], r.Enhanced[2], r.Text)
}

// Temporary says the relay asked to try again later (4xx).
func (r *Reply) Temporary() bool { return r.Code < 500 }

// ErrNotStarted marks a failure of Data before the relay had any of the
// message: the connection broke, or the relay said it was closing (an
// idle connection it timed out while the caller's client was still
// sending). The caller may send the message again on a new connection
// without fear of a duplicate.
var ErrNotStarted = errors.New("the relay had none of the message")

// Client is a session with the relay. It is not safe for concurrent use.
type Client struct {
	cfg Config
	nc  net.Conn
	tp  *textproto.Conn
	// unwatch stops the context given to Dial from closing nc.
	unwatch func() bool
	// ext are the extensions the relay named in its EHLO reply, upper
	// case, with their parameters.
	ext map[string]string
}

// Dial connects to the relay and readies it for MAIL: greeting, EHLO,
// STARTTLS and EHLO again, AUTH. An error that is the relay's reply is
// a *Reply.
func Dial(parent context.Context, cfg Config) (*Client, error) {
	cfg.ConnectTimeout = orDefault(cfg.ConnectTimeout, defaultConnectTimeout)
	cfg.CommandTimeout = orDefault(cfg.CommandTimeout, defaultCommandTimeout)
	cfg.DataTimeout = orDefault(cfg.DataTimeout, defaultDataTimeout)
	if cfg.Hostname == "" {
		cfg.Hostname = "localhost"
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("relay %q: %w", cfg.Addr, err)
	}
	tlsConf := cfg.TLS.Clone()
	if tlsConf == nil {
		tlsConf = &tls.Config{}
	}
	if tlsConf.ServerName == "" {
		tlsConf.ServerName = host
	}
	ctx, cancel := context.WithTimeout(parent, cfg.ConnectTimeout)
	defer cancel()
	d := net.Dialer{}
	nc, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("relay %s: %w", cfg.Addr, err)
	}
	// The caller's context closes the connection whenever it ends, for
	// the client's whole life: a server shutting down does not wait out
	// a relay's timeouts.
	unwatch := context.AfterFunc(parent, func() { nc.Close() })
	deadline, _ := ctx.Deadline()
	nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer stop()
	if cfg.Security == ImplicitTLS {
		tc := tls.Client(nc, tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			unwatch()
			nc.Close()
			return nil, fmt.Errorf("relay %s: tls: %w", cfg.Addr, err)
		}
		nc = tc
	}
	c := &Client{cfg: cfg, nc: nc, tp: textproto.NewConn(nc), unwatch: unwatch}
	if err := c.setup(ctx, tlsConf); err != nil {
		c.Abort()
		return nil, fmt.Errorf("relay %s: %w", cfg.Addr, err)
	}
	if !stop() {
		c.Abort()
		return nil, fmt.Errorf("relay %s: %w", cfg.Addr, ctx.Err())
	}
	c.nc.SetDeadline(time.Time{})
	return c, nil
}

func orDefault(v, def time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return def
}

// setup reads the greeting and says EHLO, starts TLS and logs in as the
// config asks.
func (c *Client) setup(ctx context.Context, tlsConf *tls.Config) error {
	if _, err := c.read(2); err != nil { // RFC 5321 4.3.1: 220
		return fmt.Errorf("greeting: %w", err)
	}
	if err := c.ehlo(); err != nil {
		return err
	}
	if c.cfg.Security == StartTLS {
		if _, ok := c.ext["STARTTLS"]; !ok {
			return errors.New("relay offers no STARTTLS; set its TLS mode to none (loopback) or tls")
		}
		if _, err := c.cmd("STARTTLS"); err != nil {
			return fmt.Errorf("STARTTLS: %w", err)
		}
		tc := tls.Client(c.nc, tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		c.nc, c.tp = tc, textproto.NewConn(tc)
		if err := c.ehlo(); err != nil { // RFC 3207 4.2
			return err
		}
	}
	if c.cfg.Username == "" {
		return nil
	}
	return c.auth(ctx)
}

// ehlo says EHLO and records the extensions of the reply (RFC 5321
// 4.1.1.1).
func (c *Client) ehlo() error {
	text, err := c.cmd("EHLO %s", c.cfg.Hostname)
	if err != nil {
		return fmt.Errorf("EHLO: %w", err)
	}
	c.ext = map[string]string{}
	lines := strings.Split(text, "\n")
	for _, line := range lines[1:] { // the first names the server
		k, v, _ := strings.Cut(line, " ")
		c.ext[strings.ToUpper(k)] = v
	}
	return nil
}

// auth logs in with AUTH PLAIN (RFC 4954 4, RFC 4616), the initial
// response on the command line.
func (c *Client) auth(ctx context.Context) error {
	mechs, ok := c.ext["AUTH"]
	if !ok || !hasWord(mechs, "PLAIN") {
		return fmt.Errorf("relay offers no AUTH PLAIN (offers %q)", mechs)
	}
	if c.cfg.Password == nil {
		return errors.New("relay user set without a password")
	}
	password, err := c.cfg.Password(ctx)
	if err != nil {
		return fmt.Errorf("relay password: %w", err)
	}
	resp := base64.StdEncoding.EncodeToString([]byte("\x00" + c.cfg.Username + "\x00" + password))
	if _, err := c.cmd("AUTH PLAIN %s", resp); err != nil {
		return fmt.Errorf("AUTH as %s: %w", c.cfg.Username, err)
	}
	return nil
}

func hasWord(list, word string) bool {
	for _, w := range strings.Fields(list) {
		if strings.EqualFold(w, word) {
			return true
		}
	}
	return false
}

// Extension says whether the relay offers an extension, and its
// parameters.
func (c *Client) Extension(name string) (string, bool) {
	v, ok := c.ext[strings.ToUpper(name)]
	return v, ok
}

// TLS says whether the connection to the relay is over TLS.
func (c *Client) TLS() bool {
	_, ok := c.nc.(*tls.Conn)
	return ok
}

// CheckPath says why addr cannot go between the angle brackets of MAIL
// FROM or RCPT TO (RFC 5321 4.1.2), nil when it can: an angle bracket, a
// control character, or a space outside a quoted local part would end
// the path early and pass what follows to the relay as parameters (a
// NOTIFY=NEVER or ORCPT of the sender's choosing) or as a command.
func CheckPath(addr string) error {
	quoted := false
	for i := 0; i < len(addr); i++ {
		switch c := addr[i]; {
		case c < ' ' || c == 0x7f:
			return fmt.Errorf("the address %q holds a control character", addr)
		case c == '<' || c == '>':
			return fmt.Errorf("the address %q holds an angle bracket", addr)
		case c == '"':
			quoted = !quoted
		case c == '\\' && quoted && i+1 < len(addr):
			// RFC 5321 4.1.2 quoted-pairSMTP: the next character is
			// taken as it is, but for a control character.
			if n := addr[i+1]; n < ' ' || n == 0x7f {
				return fmt.Errorf("the address %q holds a control character", addr)
			}
			i++
		case c == ' ' && !quoted:
			return fmt.Errorf("the address %q holds a space", addr)
		}
	}
	if quoted {
		return fmt.Errorf("the address %q has an unended quoted string", addr)
	}
	return nil
}

// Mail starts a transaction for the sender from (without angle
// brackets; "" is the null path) with MAIL's parameters (RFC 5321
// 4.1.1.2): "BODY=8BITMIME", "SMTPUTF8", "SIZE=n". A sender CheckPath
// refuses is not sent.
func (c *Client) Mail(from string, params ...string) error {
	if err := CheckPath(from); err != nil {
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	line := "MAIL FROM:<" + from + ">"
	for _, p := range params {
		line += " " + p
	}
	_, err := c.cmdTimeout(c.cfg.CommandTimeout, "%s", line)
	return err
}

// Rcpt names a recipient (RFC 5321 4.1.1.3). The relay's refusal is a
// *Reply; a recipient CheckPath refuses is not sent.
func (c *Client) Rcpt(to string) error {
	if err := CheckPath(to); err != nil {
		return fmt.Errorf("RCPT TO: %w", err)
	}
	_, err := c.cmdTimeout(c.cfg.CommandTimeout, "RCPT TO:<%s>", to)
	return err
}

// Data sends the message r holds, its line endings CRLF, with DATA
// (RFC 5321 4.1.1.4), dot-stuffed (RFC 5321 4.5.2), and returns the
// relay's reply to its end: its acceptance of the message. An error that
// is not a *Reply leaves it unknown whether the relay took it.
//
// When r fails, or a write to the relay does, the connection is closed
// without the end of the data, so that the relay discards what it got
// (RFC 5321 4.1.1.4: only the final dot makes it take a message); the
// Client is then good only for Abort.
func (c *Client) Data(r io.Reader) (string, error) {
	c.nc.SetDeadline(time.Now().Add(c.cfg.CommandTimeout))
	if err := c.tp.PrintfLine("DATA"); err != nil {
		return "", fmt.Errorf("%w: %w", ErrNotStarted, err)
	}
	code, text, err := c.reply()
	if err != nil {
		if r := (*Reply)(nil); !errors.As(err, &r) || r.Code == 421 {
			err = fmt.Errorf("%w: %w", ErrNotStarted, err)
		}
		return "", err
	}
	if code != 354 {
		// RFC 5321 4.3.2: DATA is answered 354 before the message. A
		// relay that says anything else would read the message as
		// commands.
		c.Abort()
		return "", fmt.Errorf("DATA answered %d %s, not 354", code, firstLine(text))
	}
	// Each write gets its own deadline (deadlineWriter); nothing is read
	// until the end.
	c.nc.SetDeadline(time.Time{})
	bw := bufio.NewWriter(deadlineWriter{c.nc, c.cfg.CommandTimeout})
	w := textproto.NewWriter(bw).DotWriter()
	if _, err := io.Copy(w, r); err != nil {
		c.Abort()
		return "", fmt.Errorf("send the message: %w", err)
	}
	if err := w.Close(); err != nil {
		c.Abort()
		return "", fmt.Errorf("send the message: %w", err)
	}
	c.nc.SetDeadline(time.Now().Add(c.cfg.DataTimeout))
	return c.read(2)
}

// deadlineWriter gives each write to the relay the timeout afresh, so
// that it bounds a stall of the relay, not the whole message.
type deadlineWriter struct {
	nc      net.Conn
	timeout time.Duration
}

func (w deadlineWriter) Write(p []byte) (int, error) {
	w.nc.SetWriteDeadline(time.Now().Add(w.timeout))
	return w.nc.Write(p)
}

// Reset ends the transaction (RFC 5321 4.1.1.5).
func (c *Client) Reset() error {
	_, err := c.cmdTimeout(c.cfg.CommandTimeout, "RSET")
	return err
}

// Close says QUIT, briefly, and closes the connection.
func (c *Client) Close() error {
	c.nc.SetDeadline(time.Now().Add(5 * time.Second))
	c.tp.PrintfLine("QUIT")
	c.reply()
	return c.Abort()
}

// Abort closes the connection without a word: after a failure, when the
// relay may be anywhere in the exchange.
func (c *Client) Abort() error {
	c.unwatch()
	return c.nc.Close()
}

// cmd sends a command within the deadline already set and reads its
// reply, which must be 2xx (read).
func (c *Client) cmd(format string, args ...any) (string, error) {
	if err := c.tp.PrintfLine(format, args...); err != nil {
		return "", err
	}
	return c.read(2)
}

// cmdTimeout is cmd with timeout for the command and its reply.
func (c *Client) cmdTimeout(timeout time.Duration, format string, args ...any) (string, error) {
	c.nc.SetDeadline(time.Now().Add(timeout))
	return c.cmd(format, args...)
}

// read reads a reply (RFC 5321 4.2.1), its lines joined by "\n", that
// must be of the class want (2 for 2xx): a refusal (4xx, 5xx) is a
// *Reply, and any other code an error that is not one, as for a relay
// out of step (RFC 5321 4.3.2 names the codes each command may get,
// and no command but DATA goes on after a 3xx here).
func (c *Client) read(want int) (string, error) {
	code, text, err := c.reply()
	if err == nil && code/100 != want {
		err = fmt.Errorf("relay answered %d %s, expected %dxx", code, firstLine(text), want)
	}
	return text, err
}

// reply reads a reply; a refusal (4xx, 5xx) is a *Reply.
func (c *Client) reply() (int, string, error) {
	code, text, err := c.tp.ReadResponse(0)
	var perr textproto.ProtocolError
	if errors.As(err, &perr) {
		return 0, "", fmt.Errorf("relay's reply: %w", err)
	}
	var terr *textproto.Error
	if err != nil && !errors.As(err, &terr) {
		return 0, "", err
	}
	if code >= 400 {
		return code, text, parseReply(code, text)
	}
	return code, text, nil
}

// firstLine is the first line of a reply's text, for an error.
func firstLine(text string) string {
	line, _, _ := strings.Cut(text, "\n")
	return line
}

// parseReply makes a *Reply of a refusal, its enhanced code taken from
// the first line (RFC 2034 3) and out of the others.
func parseReply(code int, text string) *Reply {
	r := &Reply{Code: code}
	lines := strings.Split(text, "\n")
	for i, line := range lines {
		enh, rest, ok := cutEnhanced(line, code)
		if ok {
			if i == 0 {
				r.Enhanced = enh
			}
			lines[i] = rest
		}
	}
	r.Text = strings.Join(lines, " ")
	return r
}

// cutEnhanced reads an enhanced status code at the start of line, of
// the class of code.
func cutEnhanced(line string, code int) ([3]int, string, bool) {
	word, rest, _ := strings.Cut(line, " ")
	parts := strings.Split(word, ".")
	if len(parts) != 3 {
		return [3]int{}, line, false
	}
	var enh [3]int
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 999 || len(p) > 3 {
			return [3]int{}, line, false
		}
		enh[i] = n
	}
	if enh[0] != code/100 {
		return [3]int{}, line, false
	}
	return enh, rest, true
}
