package main

// Tests of the limits that keep one client from taking the server down:
// line and literal sizes, message size, mailbox count and name length,
// connections per address and per account, the command rate, idle and
// TLS handshake timeouts, slow readers; and of authentication: throttling
// and lockout shared by IMAP and POP3, one answer for unknown users and
// wrong passwords, plaintext refused before TLS, TLS 1.2 at least, and
// SCRAM-SHA-256. Every test runs the real binary (start in e2e_test.go)
// with a configuration written for it. SECURITY.md lists what each proves.

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// ---- Helpers shared by limits_test.go, isolation_test.go, fulldisk_test.go
// and shutdown_test.go.

// writeConfig writes a TOML configuration into a temporary folder and
// returns its path, for start's --config.
func writeConfig(t *testing.T, toml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "buzon.toml")
	if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// addUser creates an account with the given password (the configuration,
// if any, decides the hashing parameters).
func addUser(t *testing.T, data, name, pass string, extra ...string) {
	t.Helper()
	mustBuzon(t, pass+"\n", append([]string{"user", "add", "--data", data, name}, extra...)...)
}

// dialFrom connects to addr from the local address from ("" for any).
// Every 127.x.y.z address reaches loopback on Linux, so tests pose as
// several clients by their source address.
func dialFrom(from, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	return d.Dial("tcp", addr)
}

// rawIMAP is an IMAP client at the level of lines, for sending what no
// well-behaved client library would.
type rawIMAP struct {
	t   *testing.T
	c   net.Conn
	r   *bufio.Reader
	tag int
	// greeting is the server's first line.
	greeting string
}

// dialIMAP connects from the given source address ("" for any) and reads
// the greeting.
func dialIMAP(t *testing.T, from, addr string) *rawIMAP {
	t.Helper()
	c, err := dialFrom(from, addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return newRawIMAP(t, c)
}

func newRawIMAP(t *testing.T, c net.Conn) *rawIMAP {
	t.Helper()
	ic := &rawIMAP{t: t, c: c, r: bufio.NewReader(c)}
	line, err := ic.readResp()
	if err != nil {
		t.Fatalf("IMAP greeting: %v", err)
	}
	ic.greeting = line
	return ic
}

var literalEndRE = regexp.MustCompile(`~?\{(\d+)\}$`)

// readResp reads one response: a line, with any literals it announces read
// and inlined. Every read has a generous deadline.
func (ic *rawIMAP) readResp() (string, error) {
	ic.c.SetReadDeadline(time.Now().Add(60 * time.Second))
	var b strings.Builder
	for {
		line, err := ic.r.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String(), err
		}
		m := literalEndRE.FindStringSubmatch(strings.TrimRight(line, "\r\n"))
		if m == nil {
			return strings.TrimRight(b.String(), "\r\n"), nil
		}
		n, _ := strconv.Atoi(m[1])
		buf := make([]byte, n)
		if _, err := io.ReadFull(ic.r, buf); err != nil {
			return b.String(), err
		}
		b.Write(buf)
	}
}

func (ic *rawIMAP) nextTag() string {
	ic.tag++
	return fmt.Sprintf("t%d", ic.tag)
}

// send writes raw bytes.
func (ic *rawIMAP) send(s string) {
	ic.t.Helper()
	ic.c.SetWriteDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.WriteString(ic.c, s); err != nil {
		ic.t.Fatalf("send %.80q: %v", s, err)
	}
}

// cmd sends "tag command" and returns the untagged responses and the
// tagged one without its tag.
func (ic *rawIMAP) cmd(command string) (untagged []string, tagged string) {
	ic.t.Helper()
	tag := ic.nextTag()
	ic.send(tag + " " + command + "\r\n")
	return ic.until(tag)
}

// until reads responses up to the one tagged tag.
func (ic *rawIMAP) until(tag string) (untagged []string, tagged string) {
	ic.t.Helper()
	for {
		line, err := ic.readResp()
		if err != nil {
			ic.t.Fatalf("waiting for %s: %v (after %q)", tag, err, untagged)
		}
		if rest, ok := strings.CutPrefix(line, tag+" "); ok {
			return untagged, rest
		}
		untagged = append(untagged, line)
	}
}

// cmdLiteral sends "tag prefix{n}", waits for the continuation, sends the
// literal and suffix, and returns the tagged response. When the server
// refuses the literal instead of asking for it, the refusal is returned.
func (ic *rawIMAP) cmdLiteral(prefix string, literal []byte, suffix string) (untagged []string, tagged string) {
	ic.t.Helper()
	tag := ic.nextTag()
	ic.send(fmt.Sprintf("%s %s{%d}\r\n", tag, prefix, len(literal)))
	line, err := ic.readResp()
	if err != nil {
		ic.t.Fatalf("waiting for continuation: %v", err)
	}
	if rest, ok := strings.CutPrefix(line, tag+" "); ok {
		return nil, rest
	}
	if !strings.HasPrefix(line, "+") {
		ic.t.Fatalf("want continuation, got %q", line)
	}
	ic.send(string(literal) + suffix + "\r\n")
	return ic.until(tag)
}

// mustOK fails the test unless a tagged response is OK.
func (ic *rawIMAP) mustOK(command string) []string {
	ic.t.Helper()
	untagged, tagged := ic.cmd(command)
	if !strings.HasPrefix(tagged, "OK") {
		ic.t.Fatalf("%s: %s", command, tagged)
	}
	return untagged
}

func (ic *rawIMAP) login(user, pass string) {
	ic.t.Helper()
	ic.mustOK(fmt.Sprintf("LOGIN %s %s", imapQuote(user), imapQuote(pass)))
}

// drain reads until the server closes the connection or the deadline
// passes, and returns what came and whether the connection was closed.
func drainConn(c net.Conn, deadline time.Duration) (string, bool) {
	c.SetReadDeadline(time.Now().Add(deadline))
	var b bytes.Buffer
	_, err := io.Copy(&b, c)
	var ne net.Error
	closed := !(errors.As(err, &ne) && ne.Timeout())
	return b.String(), closed
}

func imapQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// respCode returns the response code of a tagged or untagged status
// response ("NO [TOOBIG] ..." -> "TOOBIG").
func respCode(resp string) string {
	_, rest, ok := strings.Cut(resp, "[")
	if !ok {
		return ""
	}
	code, _, _ := strings.Cut(rest, "]")
	code, _, _ = strings.Cut(code, " ")
	return code
}

// rawPOP3 is a POP3 client at the level of lines.
type rawPOP3 struct {
	t        *testing.T
	c        net.Conn
	r        *bufio.Reader
	greeting string
}

func dialPOP3(t *testing.T, from, addr string) *rawPOP3 {
	t.Helper()
	c, err := dialFrom(from, addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return newRawPOP3(t, c)
}

func newRawPOP3(t *testing.T, c net.Conn) *rawPOP3 {
	t.Helper()
	pc := &rawPOP3{t: t, c: c, r: bufio.NewReader(c)}
	pc.greeting = pc.line()
	return pc
}

func (pc *rawPOP3) line() string {
	pc.t.Helper()
	pc.c.SetReadDeadline(time.Now().Add(60 * time.Second))
	line, err := pc.r.ReadString('\n')
	if err != nil {
		pc.t.Fatalf("POP3 read: %v (got %q)", err, line)
	}
	return strings.TrimRight(line, "\r\n")
}

// cmd sends a command line and returns the first response line.
func (pc *rawPOP3) cmd(line string) string {
	pc.t.Helper()
	pc.c.SetWriteDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.WriteString(pc.c, line+"\r\n"); err != nil {
		pc.t.Fatalf("POP3 send: %v", err)
	}
	return pc.line()
}

// multiline reads the rest of a multi-line response, without its dot.
func (pc *rawPOP3) multiline() []string {
	pc.t.Helper()
	var lines []string
	for {
		l := pc.line()
		if l == "." {
			return lines
		}
		lines = append(lines, strings.TrimPrefix(l, "."))
	}
}

// login logs in with USER/PASS and returns PASS's answer.
func (pc *rawPOP3) login(user, pass string) string {
	pc.t.Helper()
	if r := pc.cmd("USER " + user); !strings.HasPrefix(r, "+OK") {
		return r
	}
	return pc.cmd("PASS " + pass)
}

// lmtpConn is an LMTP client at the level of lines.
type lmtpConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
	// lines are the lines of the last reply; lhlo those of LHLO's.
	lines, lhlo []string
}

func dialLMTP(t *testing.T, addr string) *lmtpConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial LMTP: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	lc := &lmtpConn{t: t, c: c, r: bufio.NewReader(c)}
	if r, err := lc.reply(); err != nil || !strings.HasPrefix(r, "220") {
		t.Fatalf("LMTP greeting: %q %v", r, err)
	}
	if r, err := lc.cmd("LHLO test.example"); err != nil || !strings.HasPrefix(r, "250") {
		t.Fatalf("LHLO: %q %v", r, err)
	}
	lc.lhlo = lc.lines
	return lc
}

// reply reads a reply and returns its last line.
func (lc *lmtpConn) reply() (string, error) {
	lc.c.SetReadDeadline(time.Now().Add(60 * time.Second))
	lc.lines = nil
	for {
		line, err := lc.r.ReadString('\n')
		if err != nil {
			return line, err
		}
		line = strings.TrimRight(line, "\r\n")
		lc.lines = append(lc.lines, line)
		if len(line) < 4 || line[3] != '-' {
			return line, nil
		}
	}
}

func (lc *lmtpConn) cmd(line string) (string, error) {
	lc.c.SetWriteDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.WriteString(lc.c, line+"\r\n"); err != nil {
		return "", err
	}
	return lc.reply()
}

// deliver sends one message (CRLF lines, not dot-stuffed) to one
// recipient and returns the reply to the end of data, or the first
// refusal.
func (lc *lmtpConn) deliver(rcpt string, msg []byte) (string, error) {
	for _, c := range []string{"MAIL FROM:<sender@example.net>", "RCPT TO:<" + rcpt + ">", "DATA"} {
		r, err := lc.cmd(c)
		if err != nil {
			return r, err
		}
		if r[0] != '2' && r[0] != '3' {
			if c != "MAIL FROM:<sender@example.net>" {
				lc.cmd("RSET")
			}
			return r, nil
		}
	}
	lc.c.SetWriteDeadline(time.Now().Add(60 * time.Second))
	var b bytes.Buffer
	for _, line := range bytes.SplitAfter(msg, []byte("\r\n")) {
		if bytes.HasPrefix(line, []byte(".")) {
			b.WriteByte('.')
		}
		b.Write(line)
	}
	b.WriteString(".\r\n")
	if _, err := lc.c.Write(b.Bytes()); err != nil {
		return "", err
	}
	return lc.reply()
}

// testMessage makes a distinct message of about size bytes, CRLF lines,
// that names its id in Message-ID and in every body line.
func testMessage(id string, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: tester@example.net\r\nTo: someone@example.org\r\nMessage-ID: <%s>\r\nSubject: %s\r\n\r\n", id, id)
	for b.Len() < size {
		fmt.Fprintf(&b, "%s %s\r\n", id, rand.Text())
	}
	return b.Bytes()
}

// fetchAll returns the full text of every message in a mailbox, in UID
// order, through an independent client (go-imap).
func fetchAll(t *testing.T, addr, user, pass, mailbox string) [][]byte {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	sel, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatalf("select %s: %v", mailbox, err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	slices.SortFunc(msgs, func(a, b *imapclient.FetchMessageBuffer) int { return int(a.UID) - int(b.UID) })
	var bodies [][]byte
	for _, m := range msgs {
		if len(m.BodySection) != 1 {
			t.Fatalf("UID %d: no body", m.UID)
		}
		bodies = append(bodies, m.BodySection[0].Bytes)
	}
	return bodies
}

// stillServes checks that a well-behaved client can log in and read the
// message want from INBOX: what every abuse test asserts during and after
// the abuse.
func stillServes(t *testing.T, in *instance, user, pass string, want []byte) {
	t.Helper()
	bodies := fetchAll(t, in.ports["imap"], user, pass, "INBOX")
	if !slices.ContainsFunc(bodies, func(b []byte) bool { return bytes.Equal(b, want) }) {
		t.Fatalf("a well-behaved client could not read its message (%d messages)", len(bodies))
	}
}

// rssKiB is the resident memory of a process, from /proc.
func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				t.Fatalf("VmRSS %q", rest)
			}
			return n
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// ---- SCRAM-SHA-256 client (RFC 5802, RFC 7677), written from the RFCs so
// the server's implementation is checked against an independent one.

type scramClient struct {
	user, pass  string
	clientNonce string
	firstBare   string
	authMessage string
	salted      []byte
	// iterations and salt are what the server sent.
	iterations int
	salt       []byte
}

func newSCRAM(user, pass string) *scramClient {
	return &scramClient{user: user, pass: pass, clientNonce: rand.Text()}
}

// first is the client-first message: no channel binding, no authzid.
func (s *scramClient) first() string {
	name := strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s.user)
	s.firstBare = "n=" + name + ",r=" + s.clientNonce
	return "n,," + s.firstBare
}

// final answers the server-first message with the client-final message.
func (s *scramClient) final(serverFirst string) (string, error) {
	attrs := map[string]string{}
	for _, a := range strings.Split(serverFirst, ",") {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return "", fmt.Errorf("server-first %q: bad attribute %q", serverFirst, a)
		}
		attrs[k] = v
	}
	nonce := attrs["r"]
	if !strings.HasPrefix(nonce, s.clientNonce) || len(nonce) == len(s.clientNonce) {
		return "", fmt.Errorf("server-first %q: nonce does not extend ours", serverFirst)
	}
	salt, err := base64.StdEncoding.DecodeString(attrs["s"])
	if err != nil || len(salt) == 0 {
		return "", fmt.Errorf("server-first %q: bad salt", serverFirst)
	}
	iter, err := strconv.Atoi(attrs["i"])
	if err != nil || iter < 4096 { // RFC 7677 4
		return "", fmt.Errorf("server-first %q: bad iteration count", serverFirst)
	}
	s.iterations, s.salt = iter, salt
	s.salted, err = pbkdf2.Key(sha256.New, s.pass, salt, iter, sha256.Size)
	if err != nil {
		return "", err
	}
	withoutProof := "c=" + base64.StdEncoding.EncodeToString([]byte("n,,")) + ",r=" + nonce
	s.authMessage = s.firstBare + "," + serverFirst + "," + withoutProof
	clientKey := hmacSum(s.salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	sig := hmacSum(storedKey[:], s.authMessage)
	proof := make([]byte, len(clientKey))
	for i := range proof {
		proof[i] = clientKey[i] ^ sig[i]
	}
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
}

// verify checks the server-final message: the server knew the password.
func (s *scramClient) verify(serverFinal string) error {
	want := "v=" + base64.StdEncoding.EncodeToString(hmacSum(hmacSum(s.salted, "Server Key"), s.authMessage))
	if serverFinal != want {
		return fmt.Errorf("server signature %q, want %q", serverFinal, want)
	}
	return nil
}

func hmacSum(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func unb64(t *testing.T, s string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("server sent bad base64 %q", s)
	}
	return string(b)
}

// scramIMAP runs AUTHENTICATE SCRAM-SHA-256 (with the client-first as a
// SASL-IR initial response when ir) and returns the tagged response and
// the client, whose salt and iterations show what the server sent.
func scramIMAP(t *testing.T, ic *rawIMAP, user, pass string, ir bool) (string, *scramClient) {
	t.Helper()
	s := newSCRAM(user, pass)
	tag := ic.nextTag()
	if ir {
		ic.send(tag + " AUTHENTICATE SCRAM-SHA-256 " + b64(s.first()) + "\r\n")
	} else {
		ic.send(tag + " AUTHENTICATE SCRAM-SHA-256\r\n")
		if line, _ := ic.readResp(); strings.TrimSpace(line) != "+" {
			t.Fatalf("want empty challenge, got %q", line)
		}
		ic.send(b64(s.first()) + "\r\n")
	}
	line, _ := ic.readResp()
	challenge, ok := strings.CutPrefix(line, "+ ")
	if !ok {
		t.Fatalf("want server-first, got %q", line)
	}
	final, err := s.final(unb64(t, challenge))
	if err != nil {
		t.Fatal(err)
	}
	ic.send(b64(final) + "\r\n")
	line, _ = ic.readResp()
	if challenge, ok := strings.CutPrefix(line, "+ "); ok {
		if err := s.verify(unb64(t, challenge)); err != nil {
			t.Error(err)
		}
		ic.send("\r\n")
		line, _ = ic.readResp()
	}
	tagged, ok := strings.CutPrefix(line, tag+" ")
	if !ok {
		t.Fatalf("want tagged response, got %q", line)
	}
	return tagged, s
}

// scramPOP3 runs AUTH SCRAM-SHA-256 (RFC 5034) and returns the final
// response line.
func scramPOP3(t *testing.T, pc *rawPOP3, user, pass string) (string, *scramClient) {
	t.Helper()
	s := newSCRAM(user, pass)
	line := pc.cmd("AUTH SCRAM-SHA-256 " + b64(s.first()))
	challenge, ok := strings.CutPrefix(line, "+ ")
	if !ok {
		return line, s
	}
	final, err := s.final(unb64(t, challenge))
	if err != nil {
		t.Fatal(err)
	}
	line = pc.cmd(b64(final))
	if challenge, ok := strings.CutPrefix(line, "+ "); ok {
		if err := s.verify(unb64(t, challenge)); err != nil {
			t.Error(err)
		}
		line = pc.cmd("")
	}
	return line, s
}

// ---- Limits.

const limitsUser, limitsPass = "alice@example.org", "alice-pw"

// startLimited starts a server with the given configuration and an account
// holding one message, which stillServes then reads.
func startLimited(t *testing.T, toml string) (*instance, []byte) {
	t.Helper()
	// Clients pose as several addresses: 127.0.0.2 and up.
	if l, err := net.Listen("tcp", "127.0.0.2:0"); err != nil {
		t.Skipf("127.0.0.2 is not a local address here (it is on Linux): %v", err)
	} else {
		l.Close()
	}
	data := t.TempDir()
	addUser(t, data, limitsUser, limitsPass)
	in := start(t, data, "--config", writeConfig(t, toml))
	msg := testMessage("kept@limits.test", 2000)
	mustBuzon(t, string(msg), "deliver", "--data", data, limitsUser)
	return in, msg
}

// TestLineAndLiteralLimits sends lines, literals and messages over each
// limit: a line over max_line_length gets BAD and the session goes on; a
// line so long it is not worth reading, and a non-synchronising literal
// over the limits (RFC 7888 4), get an error and a closed connection; a
// synchronising literal over the limits is refused before the client sends
// it (RFC 9051 7.1, RFC 7889 APPENDLIMIT). 2 GB literals are announced on
// APPEND and on other commands, before and after login. Messages over
// the size limit are refused by every path, and LMTP stops at
// delivery.max_recipients. Another client keeps working throughout.
func TestLineAndLiteralLimits(t *testing.T) {
	t.Parallel()
	in, kept := startLimited(t, `
[limits]
max_line_length = 1024
max_literal = 4096
max_message_size = 262144
[delivery]
max_recipients = 2
`)
	imapAddr := in.ports["imap"]

	t.Run("long line", func(t *testing.T) {
		ic := dialIMAP(t, "", imapAddr)
		_, tagged := ic.cmd("NOOP " + strings.Repeat("x", 2000))
		if !strings.HasPrefix(tagged, "BAD") || respCode(tagged) != "TOOBIG" {
			t.Errorf("line over the limit: %q, want BAD [TOOBIG]", tagged)
		}
		ic.mustOK("NOOP") // the session goes on
	})
	t.Run("absurd line", func(t *testing.T) {
		ic := dialIMAP(t, "", imapAddr)
		sent := floodUntilClosed(ic.c, []byte(strings.Repeat("x", 64*1024)), 256<<20)
		out, closed := drainConn(ic.c, 30*time.Second)
		if !closed {
			t.Fatalf("connection still open after a line of %d bytes", sent)
		}
		if !strings.Contains(out, "[TOOBIG]") {
			t.Errorf("no [TOOBIG] before closing a line of %d bytes: %q", sent, out)
		}
		stillServes(t, in, limitsUser, limitsPass, kept)
	})
	t.Run("synchronising literals", func(t *testing.T) {
		ic := dialIMAP(t, "", imapAddr)
		// Before login, over max_literal.
		for _, cmd := range []string{"LOGIN {5000}", "LOGIN {2147483648}", `LOGIN "a" {2147483648}`} {
			tag := ic.nextTag()
			ic.send(tag + " " + cmd + "\r\n")
			_, tagged := ic.until(tag)
			if !strings.HasPrefix(tagged, "NO") && !strings.HasPrefix(tagged, "BAD") || respCode(tagged) != "TOOBIG" {
				t.Errorf("%s: %q, want NO or BAD [TOOBIG] without a continuation", cmd, tagged)
			}
		}
		ic.login(limitsUser, limitsPass)
		for _, cmd := range []string{
			"APPEND INBOX {262145}",              // one byte over max_message_size
			"APPEND INBOX {2147483648}",          // 2 GB
			"APPEND INBOX (\\Seen) {2147483648}", // with flags
			"SELECT {2147483648}",                // 2 GB where a mailbox name goes
			"STATUS {2147483648}",
			"CREATE {5000}", // over max_literal
		} {
			tag := ic.nextTag()
			ic.send(tag + " " + cmd + "\r\n")
			_, tagged := ic.until(tag)
			if !strings.HasPrefix(tagged, "NO") && !strings.HasPrefix(tagged, "BAD") || respCode(tagged) != "TOOBIG" {
				t.Errorf("%s: %q, want NO or BAD [TOOBIG] without a continuation", cmd, tagged)
			}
		}
		ic.mustOK("NOOP") // the session goes on
		untagged := ic.mustOK("SELECT INBOX")
		if !slices.Contains(untagged, "* 1 EXISTS") {
			t.Errorf("INBOX changed: %q", untagged)
		}
	})
	t.Run("non-synchronising literal over the limit", func(t *testing.T) {
		// Small enough to read and drop: the session goes on.
		ic := dialIMAP(t, "", imapAddr)
		ic.login(limitsUser, limitsPass)
		tag := ic.nextTag()
		ic.send(tag + " APPEND INBOX {300000+}\r\n" + strings.Repeat("z", 300000) + "\r\n")
		if _, tagged := ic.until(tag); respCode(tagged) != "TOOBIG" {
			t.Errorf("APPEND {300000+} over max_message_size: %q, want NO or BAD [TOOBIG]", tagged)
		}
		tag = ic.nextTag()
		ic.send(tag + " SELECT {5000+}\r\n" + strings.Repeat("z", 5000) + "\r\n")
		if _, tagged := ic.until(tag); respCode(tagged) != "TOOBIG" {
			t.Errorf("SELECT {5000+} over max_literal: %q, want NO or BAD [TOOBIG]", tagged)
		}
		ic.mustOK("NOOP")
	})
	t.Run("message size", func(t *testing.T) {
		ic := dialIMAP(t, "", imapAddr)
		ic.login(limitsUser, limitsPass)
		if caps := strings.Join(ic.mustOK("CAPABILITY"), " "); !strings.Contains(caps, " APPENDLIMIT=262144") {
			t.Errorf("CAPABILITY does not advertise APPENDLIMIT=262144: %s", caps)
		}
		big := testMessage("big@limits.test", 300000)
		lc := dialLMTP(t, in.ports["lmtp"])
		if !slices.ContainsFunc(lc.lhlo, func(l string) bool { return strings.HasSuffix(l, "SIZE 262144") }) {
			t.Errorf("LHLO does not advertise SIZE 262144: %q", lc.lhlo)
		}
		if r, err := lc.deliver(limitsUser, big); err != nil || !strings.HasPrefix(r, "552") {
			t.Errorf("LMTP message over max_message_size: %q %v, want 552", r, err)
		}
		if _, _, code := buzon(t, string(big), "deliver", "--data", in.data, "--config", writeConfig(t, "[limits]\nmax_message_size = 262144\n"), limitsUser); code != exNoPerm {
			t.Errorf("buzon deliver over max_message_size: exit %d, want %d", code, exNoPerm)
		}
		if got := fetchAll(t, imapAddr, limitsUser, limitsPass, "INBOX"); len(got) != 1 {
			t.Errorf("INBOX has %d messages after refusals, want 1", len(got))
		}
	})
	t.Run("POP3 lines", func(t *testing.T) {
		pc := dialPOP3(t, "", in.ports["pop3"])
		if r := pc.cmd("NOOP " + strings.Repeat("x", 1500)); !strings.HasPrefix(r, "-ERR") {
			t.Errorf("POP3 line over the limit: %q", r)
		}
		if r := pc.cmd("CAPA"); !strings.HasPrefix(r, "+OK") {
			t.Errorf("POP3 session after a long line: %q", r)
		}
		pc.multiline()
		sent := floodUntilClosed(pc.c, []byte(strings.Repeat("x", 64*1024)), 256<<20)
		out, closed := drainConn(pc.c, 30*time.Second)
		if !closed || sent >= 256<<20 {
			t.Errorf("POP3 connection still open after a line of %d bytes", sent)
		}
		if !strings.Contains(out, "-ERR") {
			t.Errorf("POP3: no error before closing: %q", out)
		}
	})
	t.Run("LMTP recipients", func(t *testing.T) {
		lc := dialLMTP(t, in.ports["lmtp"])
		if !slices.ContainsFunc(lc.lhlo, func(l string) bool { return strings.Contains(l, "LIMITS") && strings.Contains(l, "RCPTMAX=2") }) {
			t.Errorf("LHLO does not advertise LIMITS RCPTMAX=2: %q", lc.lhlo)
		}
		lc.cmd("MAIL FROM:<sender@example.net>")
		for i := range 3 {
			r, err := lc.cmd("RCPT TO:<" + limitsUser + ">")
			want := "250 "
			if i == 2 {
				want = "452 4.5.3 " // RFC 5321 4.5.3.1.10
			}
			if err != nil || !strings.HasPrefix(r, want) {
				t.Errorf("RCPT %d with delivery.max_recipients = 2: %q %v, want %s", i+1, r, err, want)
			}
		}
		if r, _ := lc.cmd("RSET"); !strings.HasPrefix(r, "250") {
			t.Errorf("RSET after too many recipients: %q", r)
		}
	})
	t.Run("LMTP lines", func(t *testing.T) {
		lc := dialLMTP(t, in.ports["lmtp"])
		if r, _ := lc.cmd("NOOP " + strings.Repeat("x", 2000)); !strings.HasPrefix(r, "5") {
			t.Errorf("LMTP line over the limit: %q", r)
		}
	})
}

// floodUntilClosed writes chunk over and over until limit bytes are sent
// or a write fails (the server closed, or stopped reading for a minute),
// and returns how many bytes went out.
func floodUntilClosed(c net.Conn, chunk []byte, limit int64) int64 {
	var sent int64
	for sent < limit {
		c.SetWriteDeadline(time.Now().Add(60 * time.Second))
		n, err := c.Write(chunk)
		sent += int64(n)
		if err != nil {
			break
		}
	}
	return sent
}

// TestHugeNonSynchronisingLiteral announces 2 GB non-synchronising literals
// (RFC 7888) on APPEND and other commands, before and after login, and
// streams data: the server must answer with an error (a tagged NO or BAD,
// or an untagged BYE) and close the connection rather than read the
// literal, while other clients keep working.
func TestHugeNonSynchronisingLiteral(t *testing.T) {
	t.Parallel()
	in, kept := startLimited(t, "[limits]\nmax_literal = 4096\n")
	imapAddr := in.ports["imap"]
	for _, tc := range []struct {
		name, cmd string
		login     bool
	}{
		{"APPEND 2 GB non-synchronising", "APPEND INBOX {2147483648+}", true},
		{"SELECT 2 GB non-synchronising", "SELECT {2147483648+}", true},
		{"LOGIN 2 GB non-synchronising", "LOGIN {2147483648+}", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ic := dialIMAP(t, "127.0.0.2", imapAddr)
			if tc.login {
				ic.login(limitsUser, limitsPass)
			}
			ic.send("x " + tc.cmd + "\r\n")
			done := make(chan int64)
			go func() { done <- floodUntilClosed(ic.c, []byte(strings.Repeat("y", 64*1024)), 1<<30) }()
			// Others are served while the flood goes on...
			stillServes(t, in, limitsUser, limitsPass, kept)
			var sent int64
			select {
			case sent = <-done:
			case <-time.After(60 * time.Second):
				ic.c.Close()
				t.Fatalf("the server kept reading a literal it cannot take for a minute")
			}
			out, closed := drainConn(ic.c, 30*time.Second)
			t.Logf("sent %d bytes of the literal before the server closed; it said %q", sent, out)
			if !closed {
				t.Errorf("connection not closed")
			}
			if sent >= 1<<30 {
				t.Errorf("the server read %d bytes of a literal over its limits", sent)
			}
			if !regexp.MustCompile(`(?m)^(\* BYE|x (NO|BAD)) `).MatchString(out) {
				t.Errorf("no error (tagged NO/BAD or BYE) before the server closed: %q", out)
			}
			// ...and after.
			stillServes(t, in, limitsUser, limitsPass, kept)
		})
	}
}

// TestMillionLinePipeline sends 1,000,000 NOOP lines without reading a
// response, over IMAP and POP3. The server must neither queue a million
// answers nor serve the flood for as long as the client likes: it answers
// with an error and closes the connection within a generous deadline,
// its memory stays bounded, and another client keeps working during and
// after.
func TestMillionLinePipeline(t *testing.T) {
	t.Parallel()
	in, kept := startLimited(t, `
[limits]
commands_per_second = 100
max_output_backlog = 65536
`)
	before := rssKiB(t, in.cmd.Process.Pid)
	for _, proto := range []string{"imap", "pop3"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel() // each flood lasts limit.Flood; the two at once
			c, err := dialFrom("127.0.0.2", in.ports[proto])
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			line := "a NOOP\r\n"
			if proto == "pop3" {
				line = "NOOP\r\n"
			}
			chunk := []byte(strings.Repeat(line, 1000))
			done := make(chan int64, 1)
			go func() { done <- floodUntilClosed(c, chunk, int64(len(chunk))*1000) }()
			stillServes(t, in, limitsUser, limitsPass, kept)
			var sent int64
			select {
			case sent = <-done:
			case <-time.After(90 * time.Second):
				t.Fatalf("%s: after 90s the server still takes the pipeline", proto)
			}
			if rss := rssKiB(t, in.cmd.Process.Pid); rss > before+64*1024 {
				t.Errorf("%s: server RSS grew from %d to %d KiB", proto, before, rss)
			}
			out, closed := drainConn(c, 30*time.Second)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			last := lines[len(lines)-1]
			t.Logf("%s: %d lines sent, %d answers read, closed %v, last %q", proto, sent/int64(len(line)), len(lines), closed, last)
			if !closed {
				t.Fatalf("%s: the connection is still open: the server serves the flood at its command rate instead of ending it", proto)
			}
			if !strings.HasPrefix(last, "* BYE") && !strings.HasPrefix(last, "-ERR") && !strings.HasPrefix(last, "a BAD") && !strings.HasPrefix(last, "a NO") {
				t.Errorf("%s: closed without an error: last line %q", proto, last)
			}
			stillServes(t, in, limitsUser, limitsPass, kept)
		})
	}
}

// slowUser is the account whose big messages a slow reader asks for, kept
// apart from limitsUser so that stillServes reads only the small message.
const slowUser, slowPass = "slow@example.org", "slow-pw"

// slowReader connects to in over proto as slowUser and asks for the
// account's big messages many times over without reading: over IMAP a
// pipeline of FETCH BODY[] commands, over POP3 a pipeline of RETR.
func slowReader(t *testing.T, in *instance, proto string) net.Conn {
	t.Helper()
	c, err := dialFrom("127.0.0.2", in.ports[proto])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var cmds strings.Builder
	if proto == "imap" {
		ic := newRawIMAP(t, c)
		ic.login(slowUser, slowPass)
		ic.mustOK("SELECT INBOX")
		for range 50 {
			cmds.WriteString("f FETCH 1:* BODY.PEEK[]\r\n")
		}
	} else {
		pc := newRawPOP3(t, c)
		if r := pc.login(slowUser, slowPass); !strings.HasPrefix(r, "+OK") {
			t.Fatalf("POP3 login: %q", r)
		}
		for range 50 {
			cmds.WriteString("RETR 1\r\nRETR 2\r\nRETR 3\r\nRETR 4\r\n")
		}
	}
	c.SetWriteDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.WriteString(c, cmds.String()); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSlowReader: a client that asks for 1.6 GB of messages and never
// reads, over IMAP and POP3 at once, does not make the server hold them in
// memory (its RSS stays within a generous bound of where it was), is
// disconnected once a write has blocked for the idle timeout (which
// limits.max_output_backlog far exceeded does not wait out), within a
// generous deadline, and others are served meanwhile.
func TestSlowReader(t *testing.T) {
	t.Parallel()
	in, kept := startLimited(t, "[limits]\nmax_output_backlog = 1048576\n[imap]\nidle_timeout = \"5s\"\n[pop3]\nidle_timeout = \"5s\"\n")
	addUser(t, in.data, slowUser, slowPass)
	for i := range 4 {
		mustBuzon(t, string(testMessage(fmt.Sprintf("big%d@limits.test", i), 8<<20)), "deliver", "--data", in.data, slowUser)
	}
	before := rssKiB(t, in.cmd.Process.Pid)
	var mu sync.Mutex
	peak := before
	t.Run("readers", func(t *testing.T) {
		for _, proto := range []string{"imap", "pop3"} {
			t.Run(proto, func(t *testing.T) {
				t.Parallel()
				c := slowReader(t, in, proto)
				stillServes(t, in, limitsUser, limitsPass, kept)
				deadline := time.Now().Add(60 * time.Second)
				for serverSideOpen(t, c) {
					if time.Now().After(deadline) {
						t.Fatalf("%s: the server still serves a client with far more than max_output_backlog unread after a minute", proto)
					}
					rss := rssKiB(t, in.cmd.Process.Pid)
					mu.Lock()
					peak = max(peak, rss)
					mu.Unlock()
					time.Sleep(250 * time.Millisecond) // sampling interval, not an assertion
				}
				stillServes(t, in, limitsUser, limitsPass, kept)
			})
		}
	})
	t.Logf("RSS %d KiB before, peak %d KiB while two readers stalled", before, peak)
	// 32 MB of messages, asked for 50 times on each protocol: a server that
	// buffered output would grow by far more than this.
	if peak > before+128*1024 {
		t.Errorf("server RSS grew from %d to %d KiB behind clients that do not read", before, peak)
	}
}

// serverSideOpen reports whether the server still holds its end of the
// TCP connection c: whether the server's socket, found in /proc/net/tcp by
// the connection's addresses, is ESTABLISHED. A server that closes while
// output waits unread leaves its socket in FIN_WAIT1 behind that output,
// so the client alone could not tell.
func serverSideOpen(t *testing.T, c net.Conn) bool {
	t.Helper()
	hexAddr := func(a net.Addr) string {
		ap := a.(*net.TCPAddr).AddrPort()
		ip := ap.Addr().Unmap().As4()
		return fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], ap.Port())
	}
	local, remote := hexAddr(c.RemoteAddr()), hexAddr(c.LocalAddr())
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Skipf("no /proc/net/tcp: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && f[1] == local && f[2] == remote {
			return f[3] == "01" // TCP_ESTABLISHED
		}
	}
	return false
}

// slowClient is one connection of an attacker: how it behaves once
// connected.
type slowClient func(c net.Conn, stop <-chan struct{})

// trickle sends one byte at a time and never ends a line.
func trickle(c net.Conn, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(200 * time.Millisecond):
		}
		if _, err := c.Write([]byte("x")); err != nil {
			return
		}
	}
}

// silent connects and sends nothing, as a TLS client that never says hello.
func silent(net.Conn, <-chan struct{}) {}

// halfHello sends a TLS record header that promises a ClientHello, and
// stops there.
func halfHello(c net.Conn, _ <-chan struct{}) { c.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}) }

// startTLSThenStall asks for STARTTLS (or STLS) and never starts the
// handshake.
func startTLSThenStall(command string) slowClient {
	return func(c net.Conn, _ <-chan struct{}) { io.WriteString(c, command+"\r\n") }
}

// slowAttack opens n connections from address from to each listener in
// behaviours, runs the behaviour on each, and returns the connections the
// server admitted (by listener) and the goodbyes of those it refused.
// stop ends the behaviours.
func slowAttack(t *testing.T, in *instance, from string, n int, behaviours map[string]slowClient, stop <-chan struct{}) (map[string][]net.Conn, []string) {
	t.Helper()
	var mu sync.Mutex
	admitted := map[string][]net.Conn{}
	var refused []string
	var wg sync.WaitGroup
	for listener, behave := range behaviours {
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := dialFrom(from, in.ports[strings.SplitN(listener, "+", 2)[0]])
				if err != nil {
					t.Errorf("%s: dial: %v", listener, err)
					return
				}
				t.Cleanup(func() { c.Close() })
				// A connection beyond the limit hears a goodbye at once;
				// the others a greeting (nothing on TLS listeners, where
				// the client speaks first).
				var first string
				if !strings.HasSuffix(strings.SplitN(listener, "+", 2)[0], "s") {
					c.SetReadDeadline(time.Now().Add(30 * time.Second))
					first, _ = bufio.NewReader(c).ReadString('\n')
					c.SetReadDeadline(time.Time{})
				}
				mu.Lock()
				if strings.HasPrefix(first, "* BYE") || strings.HasPrefix(first, "-ERR") || strings.HasPrefix(first, "421") {
					refused = append(refused, listener+": "+strings.TrimSpace(first))
					mu.Unlock()
					c.Close()
					return
				}
				admitted[listener] = append(admitted[listener], c)
				mu.Unlock()
				behave(c, stop)
			}()
		}
	}
	// The behaviours that return at once have done their part; the
	// tricklers go on until stop.
	time.Sleep(1500 * time.Millisecond) // lets every connection start; not an assertion
	mu.Lock()
	defer mu.Unlock()
	out := map[string][]net.Conn{}
	for k, v := range admitted {
		out[k] = slices.Clone(v)
	}
	t.Cleanup(wg.Wait)
	return out, slices.Clone(refused)
}

// waitServerClosed waits until the server has closed every connection, up
// to a generous deadline.
func waitServerClosed(t *testing.T, what string, conns []net.Conn, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for _, c := range conns {
		for serverSideOpen(t, c) {
			if time.Now().After(deadline) {
				t.Errorf("%s: connection still open after %v", what, within)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// TestSlowloris opens connections from one address to IMAP, POP3 and LMTP
// and trickles bytes without ever finishing a line. The per-address limit
// refuses connections beyond it with a protocol goodbye, the login timeout
// closes the IMAP and POP3 ones with a farewell, and a client from another
// address is served throughout.
func TestSlowloris(t *testing.T) {
	t.Parallel()
	in, kept := startLimited(t, `
[limits]
max_connections_per_ip = 8
[imap]
login_timeout = "2s"
[pop3]
idle_timeout = "2s"
`)
	stop := make(chan struct{})
	defer close(stop)
	// One attacking address per protocol: the limit is per address over
	// all listeners.
	attackers := map[string]string{"imap": "127.0.0.2", "pop3": "127.0.0.9", "lmtp": "127.0.0.10"}
	admitted := map[string][]net.Conn{}
	var refused []string
	for proto, from := range attackers {
		a, r := slowAttack(t, in, from, 12, map[string]slowClient{proto: trickle}, stop)
		admitted[proto] = a[proto]
		refused = append(refused, r...)
	}
	stillServes(t, in, limitsUser, limitsPass, kept)
	for _, proto := range []string{"imap", "pop3", "lmtp"} {
		if n := len(admitted[proto]); n != 8 {
			t.Errorf("%s admitted %d of 12 connections from one address, limit 8", proto, n)
		}
	}
	if len(refused) != 12 {
		t.Errorf("%d goodbyes to connections beyond the limit, want 12: %q", len(refused), refused)
	}
	// LMTP's read timeout is the MTA's business (RFC 5321 4.5.3.2 asks for
	// minutes); the per-address limit is what bounds a trickler there.
	waitServerClosed(t, "imap", admitted["imap"], time.Minute)
	waitServerClosed(t, "pop3", admitted["pop3"], time.Minute)
	for _, c := range admitted["imap"] {
		if out, _ := drainConn(c, 5*time.Second); !strings.Contains(out, "* BYE") {
			t.Errorf("IMAP login timeout without a BYE: %q", out)
		}
	}
	for _, c := range admitted["pop3"] {
		if out, _ := drainConn(c, 5*time.Second); !strings.Contains(out, "-ERR") {
			t.Errorf("POP3 timeout without an -ERR: %q", out)
		}
	}
	// The address's slots are free again.
	ic := dialIMAP(t, "127.0.0.2", in.ports["imap"])
	if !strings.HasPrefix(ic.greeting, "* OK") {
		t.Errorf("after the timeouts, the address gets %q", ic.greeting)
	}
	stillServes(t, in, limitsUser, limitsPass, kept)
}

// TestTLSHandshakeStall opens TLS connections that never finish the
// handshake: silent on IMAPS and POP3S, half a ClientHello, STARTTLS and
// STLS followed by nothing. tls.handshake_timeout closes them all, and a
// client from another address is served throughout.
func TestTLSHandshakeStall(t *testing.T) {
	t.Parallel()
	in, kept := startLimited(t, `
[tls]
handshake_timeout = "2s"
`)
	stop := make(chan struct{})
	defer close(stop)
	admitted, refused := slowAttack(t, in, "127.0.0.2", 3, map[string]slowClient{
		"imaps": silent, "imaps+half": halfHello, "pop3s": silent, "pop3s+half": halfHello,
		"imap": startTLSThenStall("s STARTTLS"), "pop3": startTLSThenStall("STLS"),
	}, stop)
	if len(refused) > 0 {
		t.Errorf("refused: %q", refused)
	}
	stillServes(t, in, limitsUser, limitsPass, kept)
	for listener, conns := range admitted {
		waitServerClosed(t, listener, conns, 15*time.Second)
	}
	stillServes(t, in, limitsUser, limitsPass, kept)
}

// TestIdleTimeouts configures tiny idle timeouts (the defaults are RFC
// 9051 5.4's 30 minutes for IMAP and RFC 1939 3's 10 minutes for POP3):
// a logged-in IMAP client that says nothing, or sits in IDLE, is logged
// out with a BYE, and a POP3 client with an -ERR; the connection closes.
func TestIdleTimeouts(t *testing.T) {
	t.Parallel()
	in, kept := startLimited(t, `
[imap]
idle_timeout = "1s"
[pop3]
idle_timeout = "1s"
[delivery]
timeout = "1s"
`)
	quiet := dialIMAP(t, "", in.ports["imap"])
	quiet.login(limitsUser, limitsPass)
	quiet.mustOK("SELECT INBOX")
	idling := dialIMAP(t, "", in.ports["imap"])
	idling.login(limitsUser, limitsPass)
	idling.mustOK("SELECT INBOX")
	idling.send("i IDLE\r\n")
	if line, _ := idling.readResp(); !strings.HasPrefix(line, "+") {
		t.Fatalf("IDLE: %q", line)
	}
	pc := dialPOP3(t, "", in.ports["pop3"])
	if r := pc.login(limitsUser, limitsPass); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("POP3 login: %q", r)
	}
	if r := pc.cmd("DELE 1"); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("POP3 DELE: %q", r)
	}
	// An LMTP client that stops in the middle of its message.
	lc, err := net.Dial("tcp", in.ports["lmtp"])
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	fmt.Fprintf(lc, "LHLO test\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<%s>\r\nDATA\r\nSubject: half\r\n", limitsUser)
	for what, c := range map[string]net.Conn{"IMAP": quiet.c, "IMAP IDLE": idling.c, "POP3": pc.c, "LMTP": lc} {
		out, closed := drainConn(c, 30*time.Second)
		if !closed {
			t.Errorf("%s: still connected 30s into a 1s idle timeout", what)
		}
		if !strings.Contains(out, "* BYE") && !strings.Contains(out, "-ERR") && !strings.Contains(out, "\r\n421 4.4.2 ") {
			t.Errorf("%s: closed without a farewell: %q", what, out)
		}
	}
	// The POP3 session timed out without reaching UPDATE (RFC 1939 3):
	// its DELE was not applied; the LMTP message cut short was not stored.
	stillServes(t, in, limitsUser, limitsPass, kept)
	for _, b := range fetchAll(t, in.ports["imap"], limitsUser, limitsPass, "INBOX") {
		if bytes.Contains(b, []byte("Subject: half")) {
			t.Errorf("the LMTP message cut short by the timeout was stored: %q", b)
		}
	}
}

// TestMailboxLimits: CREATE and RENAME stop at limits.max_mailboxes and
// limits.max_mailbox_name_length with NO [LIMIT], and the session goes on.
func TestMailboxLimits(t *testing.T) {
	t.Parallel()
	in, _ := startLimited(t, `
[limits]
max_mailboxes = 10
max_mailbox_name_length = 40
`)
	const limit = 10
	ic := dialIMAP(t, "", in.ports["imap"])
	ic.login(limitsUser, limitsPass)
	count := len(ic.mustOK(`LIST "" "*"`))
	if count > limit-2 {
		t.Fatalf("a new account has %d mailboxes; the test needs room for 2 more under max_mailboxes = %d", count, limit)
	}
	if _, tagged := ic.cmd("CREATE " + strings.Repeat("n", 41)); respCode(tagged) != "LIMIT" {
		t.Errorf("CREATE of a 41-byte name: %q, want NO [LIMIT]", tagged)
	}
	if _, tagged := ic.cmd("CREATE a/" + strings.Repeat("n", 39)); respCode(tagged) != "LIMIT" {
		t.Errorf("CREATE of a 41-byte hierarchical name: %q, want NO [LIMIT]", tagged)
	}
	ic.mustOK("CREATE " + strings.Repeat("n", 40))
	count++
	for count < limit {
		ic.mustOK(fmt.Sprintf("CREATE box%d", count))
		count++
	}
	if _, tagged := ic.cmd("CREATE one-too-many"); respCode(tagged) != "LIMIT" {
		t.Errorf("CREATE beyond max_mailboxes: %q, want NO [LIMIT]", tagged)
	}
	if _, tagged := ic.cmd("CREATE " + strings.Repeat("n", 40) + "/child"); respCode(tagged) != "LIMIT" {
		t.Errorf("CREATE of a child beyond max_mailboxes: %q, want NO [LIMIT]", tagged)
	}
	last := fmt.Sprintf("box%d", limit-1)
	if _, tagged := ic.cmd("RENAME " + last + " " + strings.Repeat("r", 41)); respCode(tagged) != "LIMIT" {
		t.Errorf("RENAME to a 41-byte name: %q, want NO [LIMIT]", tagged)
	}
	if _, tagged := ic.cmd("RENAME " + last + " new/parent"); respCode(tagged) != "LIMIT" {
		t.Errorf("RENAME that needs a new parent beyond max_mailboxes: %q, want NO [LIMIT]", tagged)
	}
	if n := len(ic.mustOK(`LIST "" "*"`)); n != limit {
		t.Errorf("%d mailboxes, want %d", n, limit)
	}
	ic.mustOK("DELETE " + last)
	ic.mustOK("CREATE " + last) // room again
}

// TestConnectionLimits: limits.max_connections_per_ip refuses the
// connections of one address beyond it, on each listener, with the
// protocol's goodbye, and frees the slot when one closes;
// limits.max_connections_per_account refuses a further login of the
// account, over IMAP and POP3 alike, while other accounts log in.
func TestConnectionLimits(t *testing.T) {
	t.Parallel()
	in, _ := startLimited(t, `
[limits]
max_connections_per_ip = 3
max_connections_per_account = 2
`)
	const bob, bobPass = "bob@example.org", "bob-pw"
	addUser(t, in.data, bob, bobPass)

	byes := map[string]string{"imap": "* BYE", "pop3": "-ERR [SYS/TEMP]", "lmtp": "421 "}
	// greeting dials from an address and returns the first line.
	greeting := func(from, proto string) (net.Conn, string) {
		t.Helper()
		c, err := dialFrom(from, in.ports[proto])
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		return c, line
	}
	// waitFreed waits until from may connect again after its
	// connections were closed.
	waitFreed := func(from, proto string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			c, line := greeting(from, proto)
			c.Close()
			if !strings.HasPrefix(line, byes[proto]) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the slots of closed connections were not freed", proto)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Each protocol from its own address: a closed connection's slot is
	// freed when the server notices, which need not be at once.
	from := map[string]string{"imap": "127.0.0.2", "pop3": "127.0.0.5", "lmtp": "127.0.0.6"}
	for _, proto := range []string{"imap", "pop3", "lmtp"} {
		bye := byes[proto]
		// Four connections from one address: one of them (whichever the
		// server vets last) hears the goodbye and is closed.
		var open []net.Conn
		var goodbyes []string
		for range 4 {
			c, line := greeting(from[proto], proto)
			if strings.HasPrefix(line, bye) {
				goodbyes = append(goodbyes, line)
				if _, closed := drainConn(c, 10*time.Second); !closed {
					t.Errorf("%s: a refused connection stays open", proto)
				}
				c.Close()
				continue
			}
			open = append(open, c)
		}
		if len(goodbyes) != 1 || len(open) != 3 {
			t.Errorf("%s: 4 connections from one address with a limit of 3: %d admitted, goodbyes %q", proto, len(open), goodbyes)
		}
		// Another address is not affected.
		other, line := greeting("127.0.0.3", proto)
		if strings.HasPrefix(line, bye) || line == "" {
			t.Errorf("%s: connection from another address: %q", proto, line)
		}
		other.Close()
		// Closed connections free their slots.
		for _, c := range open {
			c.Close()
		}
		waitFreed(from[proto], proto)
	}
	// The limit is per address over all listeners: two IMAP connections
	// and one POP3 connection leave no room for LMTP.
	var held []net.Conn
	for _, proto := range []string{"imap", "imap", "pop3"} {
		c, line := greeting("127.0.0.4", proto)
		if strings.HasPrefix(line, byes[proto]) {
			t.Fatalf("%s: refused below the limit: %q", proto, line)
		}
		held = append(held, c)
	}
	if c, line := greeting("127.0.0.4", "lmtp"); !strings.HasPrefix(line, byes["lmtp"]) {
		t.Errorf("a fourth connection through another listener: %q, want a refusal", line)
		c.Close()
	}
	for _, c := range held {
		c.Close()
	}

	// Per account, across protocols: an IMAP and a POP3 session fill
	// alice's two slots.
	first := dialIMAP(t, "", in.ports["imap"])
	first.login(limitsUser, limitsPass)
	pc := dialPOP3(t, "", in.ports["pop3"])
	if r := pc.login(limitsUser, limitsPass); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("POP3 login: %q", r)
	}
	third := dialIMAP(t, "", in.ports["imap"])
	if _, tagged := third.cmd(fmt.Sprintf("LOGIN %s %s", limitsUser, limitsPass)); !strings.HasPrefix(tagged, "NO") || respCode(tagged) != "UNAVAILABLE" {
		t.Errorf("third session of an account over IMAP: %q, want NO [UNAVAILABLE]", tagged)
	}
	third.mustOK("NOOP") // refused, not disconnected
	// From other addresses: 127.0.0.1 already holds its three.
	pc2 := dialPOP3(t, "127.0.0.7", in.ports["pop3"])
	if r := pc2.login(limitsUser, limitsPass); !strings.HasPrefix(r, "-ERR [SYS/TEMP]") && !strings.HasPrefix(r, "-ERR [IN-USE]") {
		t.Errorf("third session of an account over POP3: %q, want -ERR [SYS/TEMP] or [IN-USE]", r)
	}
	other := dialIMAP(t, "127.0.0.8", in.ports["imap"])
	other.login(bob, bobPass) // other accounts are not affected
	// A session that ends gives its slot back.
	first.mustOK("LOGOUT")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, tagged := third.cmd(fmt.Sprintf("LOGIN %s %s", limitsUser, limitsPass)); strings.HasPrefix(tagged, "OK") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slot of a logged-out session was not freed")
		}
		time.Sleep(100 * time.Millisecond)
	}
	pc.cmd("QUIT")
}

// TestCommandRate: limits.commands_per_second spaces out a client's
// commands beyond twice that many in a burst. 100 pipelined NOOPs at 20
// per second (a burst of 40) cannot all be answered in less than 3
// seconds. That is a lower bound the server must respect, not a timing
// guess: the check cannot fail because the machine is slow.
func TestCommandRate(t *testing.T) {
	t.Parallel()
	in, _ := startLimited(t, "[limits]\ncommands_per_second = 20\n")
	for _, proto := range []string{"imap", "pop3"} {
		c, err := dialFrom("", in.ports[proto])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		r := bufio.NewReader(c)
		r.ReadString('\n')
		line := "a NOOP\r\n"
		if proto == "pop3" {
			line = "CAPA\r\n" // any command: the limit counts them all
		}
		start := time.Now()
		go io.WriteString(c, strings.Repeat(line, 100))
		c.SetReadDeadline(time.Now().Add(60 * time.Second))
		answers := 0
		for answers < 100 {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: after %d answers: %v", proto, answers, err)
			}
			if strings.HasPrefix(l, "a OK") || strings.HasPrefix(l, "+OK") {
				answers++
			}
		}
		if d := time.Since(start); d < 3*time.Second {
			t.Errorf("%s: 100 commands answered in %v at 20 per second", proto, d)
		}
	}
}

// ---- Authentication.

// timed runs f and returns how long it took.
func timed(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

// TestLoginThrottle: failed logins are answered after a delay that grows
// (auth.failure_delay, doubling, up to auth.max_failure_delay), and after
// auth.lockout_after failures the address and the account are locked out
// for auth.lockout_duration, whatever the password. The count is shared
// by IMAP and POP3: failures over IMAP lock the account out of POP3, and
// the other way round. Accounts and addresses with no failures are not
// affected, and the lockout ends by itself. The account's lockout spares
// an address it logged in from before: its owner's device still gets in,
// over IMAP, POP3 and SCRAM, while a new address is refused.
//
// The delays are checked as lower bounds only (the server sleeps at least
// that long), which a slow machine cannot make fail.
func TestLoginThrottle(t *testing.T) {
	t.Parallel()
	in, kept := startLimited(t, `
[auth]
failure_delay = "300ms"
max_failure_delay = "600ms"
lockout_after = 3
lockout_duration = "8s"
`)
	const bob, bobPass = "bob@example.org", "bob-pw"
	addUser(t, in.data, bob, bobPass)
	imapLogin := func(from, user, pass string) string {
		ic := dialIMAP(t, from, in.ports["imap"])
		defer ic.c.Close()
		_, tagged := ic.cmd(fmt.Sprintf("LOGIN %s %s", imapQuote(user), imapQuote(pass)))
		return tagged
	}
	pop3Login := func(from, user, pass string) string {
		pc := dialPOP3(t, from, in.ports["pop3"])
		defer pc.c.Close()
		r := pc.login(user, pass)
		pc.cmd("QUIT")
		return r
	}

	// Alice's own device logs in before anyone guesses.
	const home = "127.0.0.6"
	if tagged := imapLogin(home, limitsUser, limitsPass); !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("alice from her own address: %q", tagged)
	}

	// Three failures for alice over IMAP from one address, each answered
	// later than the one before.
	for i, least := range []time.Duration{300 * time.Millisecond, 600 * time.Millisecond, 600 * time.Millisecond} {
		var tagged string
		if d := timed(func() { tagged = imapLogin("127.0.0.2", limitsUser, "wrong") }); d < least {
			t.Errorf("failure %d answered after %v, want at least %v", i+1, d, least)
		}
		if respCode(tagged) != "AUTHENTICATIONFAILED" {
			t.Errorf("failure %d: %q", i+1, tagged)
		}
	}
	// The account is locked out of POP3 from another address, even with
	// the right password...
	if r := pop3Login("127.0.0.3", limitsUser, limitsPass); !strings.HasPrefix(r, "-ERR [SYS/TEMP]") {
		t.Errorf("POP3 login of a locked-out account: %q, want -ERR [SYS/TEMP]", r)
	}
	// ...and of IMAP, with SCRAM too.
	if tagged := imapLogin("127.0.0.3", limitsUser, limitsPass); respCode(tagged) != "UNAVAILABLE" {
		t.Errorf("IMAP login of a locked-out account: %q, want NO [UNAVAILABLE]", tagged)
	}
	ic := dialIMAP(t, "127.0.0.3", in.ports["imap"])
	if tagged := scramLockedOut(t, ic, limitsUser); respCode(tagged) != "UNAVAILABLE" {
		t.Errorf("SCRAM login of a locked-out account: %q, want NO [UNAVAILABLE]", tagged)
	}
	// Alice's own address is spared the account's lockout, over IMAP,
	// POP3 and SCRAM, and its logins lift it for no one else.
	if tagged := imapLogin(home, limitsUser, limitsPass); !strings.HasPrefix(tagged, "OK") {
		t.Errorf("IMAP login of a locked-out account from its own address: %q", tagged)
	}
	if r := pop3Login(home, limitsUser, limitsPass); !strings.HasPrefix(r, "+OK") {
		t.Errorf("POP3 login of a locked-out account from its own address: %q", r)
	}
	ic = dialIMAP(t, home, in.ports["imap"])
	if tagged, _ := scramIMAP(t, ic, limitsUser, limitsPass, true); !strings.HasPrefix(tagged, "OK") {
		t.Errorf("SCRAM login of a locked-out account from its own address: %q", tagged)
	}
	ic.c.Close()
	if r := pop3Login("127.0.0.3", limitsUser, limitsPass); !strings.HasPrefix(r, "-ERR [SYS/TEMP]") {
		t.Errorf("POP3 login of a locked-out account after its owner's: %q, want -ERR [SYS/TEMP]", r)
	}
	// The address is locked out for other accounts.
	if r := pop3Login("127.0.0.2", bob, bobPass); !strings.HasPrefix(r, "-ERR [SYS/TEMP]") {
		t.Errorf("POP3 login from a locked-out address: %q, want -ERR [SYS/TEMP]", r)
	}
	// Others log in.
	if tagged := imapLogin("127.0.0.4", bob, bobPass); !strings.HasPrefix(tagged, "OK") {
		t.Errorf("bob from another address: %q", tagged)
	}

	// Per address, over POP3, with names that do not exist: the address
	// is then locked out of IMAP.
	for i := range 3 {
		if r := pop3Login("127.0.0.5", fmt.Sprintf("nobody%d@example.org", i), "x"); !strings.HasPrefix(r, "-ERR [AUTH]") {
			t.Errorf("POP3 failure %d: %q", i+1, r)
		}
	}
	if tagged := imapLogin("127.0.0.5", bob, bobPass); respCode(tagged) != "UNAVAILABLE" {
		t.Errorf("IMAP login from an address locked out over POP3: %q, want NO [UNAVAILABLE]", tagged)
	}

	// The lockout ends.
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := pop3Login("127.0.0.3", limitsUser, limitsPass)
		if strings.HasPrefix(r, "+OK") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still locked out a minute into an 8s lockout: %q", r)
		}
		time.Sleep(500 * time.Millisecond)
	}
	stillServes(t, in, limitsUser, limitsPass, kept)
}

// scramLockedOut starts a SCRAM exchange and returns the tagged answer the
// server gives instead of a server-first message.
func scramLockedOut(t *testing.T, ic *rawIMAP, user string) string {
	t.Helper()
	tag := ic.nextTag()
	ic.send(tag + " AUTHENTICATE SCRAM-SHA-256 " + b64(newSCRAM(user, "").first()) + "\r\n")
	line, _ := ic.readResp()
	if strings.HasPrefix(line, "+ ") {
		ic.send("*\r\n")
		ic.until(tag)
		return "server-first sent: " + line
	}
	return strings.TrimPrefix(line, tag+" ")
}

// TestSameAnswerForUnknownUser: a name that does not exist and a wrong
// password get byte-for-byte the same answer, over IMAP LOGIN, IMAP
// AUTHENTICATE PLAIN and SCRAM-SHA-256, POP3 USER/PASS, AUTH PLAIN and
// SCRAM-SHA-256.
//
// Time is the other way to tell: that both paths verify one hash of the
// same cost is TestUnknownUserHashesOnce in internal/auth, which needs no
// clock.
func TestSameAnswerForUnknownUser(t *testing.T) {
	t.Parallel()
	in, _ := startLimited(t, `
[auth]
failure_delay = "1ms"
max_failure_delay = "1ms"
lockout_after = 0
`)
	const carol, unknown = "carol@example.org", "nobody@example.org"
	addUser(t, in.data, carol, "carol-pw")

	type attempt func(user string) string
	imapLogin := func(user string) string {
		ic := dialIMAP(t, "", in.ports["imap"])
		defer ic.c.Close()
		_, tagged := ic.cmd(fmt.Sprintf("LOGIN %s %s", imapQuote(user), "wrong"))
		return tagged
	}
	attempts := map[string]attempt{
		"IMAP LOGIN": imapLogin,
		"IMAP AUTHENTICATE PLAIN": func(user string) string {
			ic := dialIMAP(t, "", in.ports["imap"])
			defer ic.c.Close()
			_, tagged := ic.cmd("AUTHENTICATE PLAIN " + b64("\x00"+user+"\x00wrong"))
			return tagged
		},
		"IMAP AUTHENTICATE SCRAM-SHA-256": func(user string) string {
			ic := dialIMAP(t, "", in.ports["imap"])
			defer ic.c.Close()
			tagged, _ := scramIMAP(t, ic, user, "wrong", true)
			return tagged
		},
		"POP3 USER": func(user string) string {
			pc := dialPOP3(t, "", in.ports["pop3"])
			defer pc.c.Close()
			return pc.cmd("USER " + user)
		},
		"POP3 PASS": func(user string) string {
			pc := dialPOP3(t, "", in.ports["pop3"])
			defer pc.c.Close()
			return pc.login(user, "wrong")
		},
		"POP3 AUTH PLAIN": func(user string) string {
			pc := dialPOP3(t, "", in.ports["pop3"])
			defer pc.c.Close()
			return pc.cmd("AUTH PLAIN " + b64("\x00"+user+"\x00wrong"))
		},
		"POP3 AUTH SCRAM-SHA-256": func(user string) string {
			pc := dialPOP3(t, "", in.ports["pop3"])
			defer pc.c.Close()
			r, _ := scramPOP3(t, pc, user, "wrong")
			return r
		},
	}
	for name, try := range attempts {
		known, unknownAns := try(carol), try(unknown)
		if known != unknownAns {
			t.Errorf("%s: wrong password answered %q, unknown user %q", name, known, unknownAns)
		}
	}
}

// TestSCRAMUnknownUser: SCRAM-SHA-256's server-first message (RFC 5802 5)
// does not tell an unknown name from a real account: the same iteration
// count (auth.scram_iterations, here not the RFC 7677 minimum of 4096), a
// salt of the same length, and for an unknown name the same salt at every
// attempt, also after a restart, as a real account's is.
func TestSCRAMUnknownUser(t *testing.T) {
	t.Parallel()
	const toml = `
[auth]
failure_delay = "1ms"
max_failure_delay = "1ms"
lockout_after = 0
scram_iterations = 5000
`
	in, _ := startLimited(t, toml)
	const carol, unknown = "carol@example.org", "nobody@example.org"
	addUser(t, in.data, carol, "carol-pw", "--config", writeConfig(t, "[auth]\nscram_iterations = 5000\n"))
	serverFirst := func(user string) *scramClient {
		ic := dialIMAP(t, "", in.ports["imap"])
		defer ic.c.Close()
		_, s := scramIMAP(t, ic, user, "wrong", true)
		return s
	}
	k, u1, u2 := serverFirst(carol), serverFirst(unknown), serverFirst(unknown)
	if k.iterations != 5000 {
		t.Errorf("SCRAM iterations of a real account: %d, want the configured 5000", k.iterations)
	}
	if u1.iterations != k.iterations || len(u1.salt) != len(k.salt) {
		t.Errorf("SCRAM server-first tells an unknown name (i=%d, %d-byte salt) from a real one (i=%d, %d-byte salt)",
			u1.iterations, len(u1.salt), k.iterations, len(k.salt))
	}
	if !bytes.Equal(u1.salt, u2.salt) {
		t.Errorf("SCRAM salt of an unknown name changes between attempts, unlike a real account's")
	}
	in.stop()
	in = start(t, in.data, "--config", writeConfig(t, toml))
	if k2, u3 := serverFirst(carol), serverFirst(unknown); !bytes.Equal(k2.salt, k.salt) {
		t.Errorf("SCRAM salt of a real account changed across a restart")
	} else if !bytes.Equal(u3.salt, u1.salt) {
		t.Errorf("SCRAM salt of an unknown name changed across a restart, unlike a real account's")
	}
}

// TestSCRAMSHA256 logs in with a SCRAM-SHA-256 client written from RFC
// 5802 and RFC 7677, over IMAP (with and without an initial response, RFC
// 4959) and POP3 (RFC 5034), checks the server's signature (the server
// proves it knows the password too), and uses the session. A wrong
// password fails.
func TestSCRAMSHA256(t *testing.T) {
	t.Parallel()
	in, kept := startLimited(t, "")
	for _, ir := range []bool{true, false} {
		ic := dialIMAP(t, "", in.ports["imap"])
		if !strings.Contains(ic.greeting, "AUTH=SCRAM-SHA-256") {
			t.Errorf("greeting does not offer SCRAM-SHA-256: %q", ic.greeting)
		}
		if tagged, _ := scramIMAP(t, ic, limitsUser, limitsPass, ir); !strings.HasPrefix(tagged, "OK") {
			t.Fatalf("IMAP SCRAM (initial response %v): %q", ir, tagged)
		}
		if untagged := ic.mustOK("SELECT INBOX"); !slices.Contains(untagged, "* 1 EXISTS") {
			t.Errorf("SELECT after SCRAM: %q", untagged)
		}
		ic2 := dialIMAP(t, "", in.ports["imap"])
		if tagged, _ := scramIMAP(t, ic2, limitsUser, "wrong", ir); respCode(tagged) != "AUTHENTICATIONFAILED" {
			t.Errorf("IMAP SCRAM with a wrong password: %q", tagged)
		}
	}
	pc := dialPOP3(t, "", in.ports["pop3"])
	if r, _ := scramPOP3(t, pc, limitsUser, limitsPass); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("POP3 SCRAM: %q", r)
	}
	if r := pc.cmd("STAT"); !strings.HasPrefix(r, "+OK 1 ") {
		t.Errorf("STAT after SCRAM: %q", r)
	}
	pc.cmd("QUIT")
	// From other addresses: 127.0.0.1 already holds its three.
	pc2 := dialPOP3(t, "127.0.0.7", in.ports["pop3"])
	if r, _ := scramPOP3(t, pc2, limitsUser, "wrong"); !strings.HasPrefix(r, "-ERR [AUTH]") {
		t.Errorf("POP3 SCRAM with a wrong password: %q", r)
	}
	stillServes(t, in, limitsUser, limitsPass, kept)
}

// ---- TLS and plaintext policy.

// startOn is start with every listener on host instead of loopback.
// (start always binds 127.0.0.1.)
func startOn(t *testing.T, host, data string, extra ...string) *instance {
	t.Helper()
	in := &instance{t: t, data: data, ports: map[string]string{}, exited: make(chan struct{})}
	args := []string{"serve", "--data", data}
	for _, name := range listenerNames {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatal(err)
		}
		in.ports[name] = l.Addr().String()
		l.Close()
		args = append(args, "--"+name, in.ports[name])
	}
	in.cmd = exec.Command(buzonBin, append(args, extra...)...)
	in.cmd.Stdout = lockedWriter{&in.mu, &in.stdout}
	in.cmd.Stderr = lockedWriter{&in.mu, &in.stderr}
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		in.exitErr = in.cmd.Wait()
		close(in.exited)
	}()
	t.Cleanup(in.stop)
	deadline := time.Now().Add(30 * time.Second)
	for _, addr := range in.ports {
		for {
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("buzon serve did not listen on %s:\n%s", addr, in.logs())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return in
}

// nonLoopbackIPv4 returns an IPv4 address of this machine that is not
// loopback, so a connection to it comes from a non-loopback address.
func nonLoopbackIPv4(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skipf("no interface addresses: %v", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	t.Skip("this machine has no non-loopback IPv4 address to test plaintext refusal from")
	return ""
}

var insecureTLS = &tls.Config{InsecureSkipVerify: true}

// TestPlaintextRefusedBeforeTLS connects from a non-loopback address:
// IMAP advertises LOGINDISABLED and no plaintext SASL mechanism (RFC 9051
// 6.2.3, 11.1), and refuses LOGIN and AUTHENTICATE PLAIN/LOGIN with
// [PRIVACYREQUIRED]; POP3 hides USER and refuses USER, PASS and AUTH PLAIN
// (RFC 2595 2.2). SCRAM-SHA-256 sends no password and works before TLS.
// After STARTTLS/STLS, and on IMAPS/POP3S, plaintext logins work. From
// loopback they work without TLS, and with auth.allow_plaintext from
// anywhere.
func TestPlaintextRefusedBeforeTLS(t *testing.T) {
	t.Parallel()
	ip := nonLoopbackIPv4(t)
	data := t.TempDir()
	addUser(t, data, limitsUser, limitsPass)
	// On every address: reached through ip, the client is not on
	// loopback; through 127.0.0.1, it is.
	in := startOn(t, "0.0.0.0", data)
	remote := func(name string) string {
		_, port, _ := net.SplitHostPort(in.ports[name])
		return net.JoinHostPort(ip, port)
	}
	local := func(name string) string {
		_, port, _ := net.SplitHostPort(in.ports[name])
		return net.JoinHostPort("127.0.0.1", port)
	}
	login := fmt.Sprintf("LOGIN %s %s", limitsUser, limitsPass)

	// IMAP from a non-loopback address, without TLS.
	ic := dialIMAP(t, "", remote("imap"))
	for _, want := range []string{"LOGINDISABLED", "STARTTLS", "AUTH=SCRAM-SHA-256"} {
		if !strings.Contains(ic.greeting, want) {
			t.Errorf("IMAP greeting to a remote client lacks %s: %q", want, ic.greeting)
		}
	}
	for _, unwanted := range []string{"AUTH=PLAIN", "AUTH=LOGIN"} {
		if strings.Contains(ic.greeting, unwanted) {
			t.Errorf("IMAP greeting to a remote client offers %s before TLS: %q", unwanted, ic.greeting)
		}
	}
	for _, cmd := range []string{login, "AUTHENTICATE PLAIN " + b64("\x00"+limitsUser+"\x00"+limitsPass), "AUTHENTICATE LOGIN"} {
		if _, tagged := ic.cmd(cmd); !strings.HasPrefix(tagged, "NO") || respCode(tagged) != "PRIVACYREQUIRED" {
			t.Errorf("IMAP %.20s... before TLS from a remote address: %q, want NO [PRIVACYREQUIRED]", cmd, tagged)
		}
	}
	if tagged, _ := scramIMAP(t, ic, limitsUser, limitsPass, true); !strings.HasPrefix(tagged, "OK") {
		t.Errorf("SCRAM before TLS from a remote address: %q", tagged)
	}
	// After STARTTLS.
	ic = dialIMAP(t, "", remote("imap"))
	ic.mustOK("STARTTLS")
	tc := tls.Client(ic.c, insecureTLS)
	ic = &rawIMAP{t: t, c: tc, r: bufio.NewReader(tc)}
	ic.mustOK(login)
	// IMAPS.
	tc, err := tls.Dial("tcp", remote("imaps"), insecureTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	newRawIMAP(t, tc).mustOK(login)
	// Loopback without TLS.
	dialIMAP(t, "", local("imap")).mustOK(login)

	// POP3 from a non-loopback address, without TLS.
	pc := dialPOP3(t, "", remote("pop3"))
	pc.cmd("CAPA")
	capa := pc.multiline()
	if slices.Contains(capa, "USER") || !slices.Contains(capa, "STLS") || !slices.Contains(capa, "SASL SCRAM-SHA-256") {
		t.Errorf("POP3 CAPA to a remote client before TLS: %q", capa)
	}
	if r := pc.cmd("USER " + limitsUser); !strings.HasPrefix(r, "-ERR") {
		t.Errorf("POP3 USER before TLS from a remote address: %q", r)
	}
	if r := pc.cmd("PASS " + limitsPass); !strings.HasPrefix(r, "-ERR") {
		t.Errorf("POP3 PASS before TLS from a remote address: %q", r)
	}
	if r := pc.cmd("AUTH PLAIN " + b64("\x00"+limitsUser+"\x00"+limitsPass)); !strings.HasPrefix(r, "-ERR") {
		t.Errorf("POP3 AUTH PLAIN before TLS from a remote address: %q", r)
	}
	if r, _ := scramPOP3(t, pc, limitsUser, limitsPass); !strings.HasPrefix(r, "+OK") {
		t.Errorf("POP3 SCRAM before TLS from a remote address: %q", r)
	}
	pc.cmd("QUIT")
	// After STLS.
	pc = dialPOP3(t, "", remote("pop3"))
	if r := pc.cmd("STLS"); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("STLS: %q", r)
	}
	tc = tls.Client(pc.c, insecureTLS)
	pc = &rawPOP3{t: t, c: tc, r: bufio.NewReader(tc)}
	if r := pc.login(limitsUser, limitsPass); !strings.HasPrefix(r, "+OK") {
		t.Errorf("POP3 USER/PASS after STLS: %q", r)
	}
	pc.cmd("QUIT")
	// Loopback without TLS.
	pc = dialPOP3(t, "", local("pop3"))
	if r := pc.login(limitsUser, limitsPass); !strings.HasPrefix(r, "+OK") {
		t.Errorf("POP3 USER/PASS from loopback: %q", r)
	}
	pc.cmd("QUIT")
	in.stop()

	// auth.allow_plaintext allows it from anywhere.
	in = startOn(t, "0.0.0.0", data, "--config", writeConfig(t, "[auth]\nallow_plaintext = true\n"))
	dialIMAP(t, "", remote("imap")).mustOK(login)
	pc = dialPOP3(t, "", remote("pop3"))
	if r := pc.login(limitsUser, limitsPass); !strings.HasPrefix(r, "+OK") {
		t.Errorf("POP3 USER/PASS with allow_plaintext: %q", r)
	}
	pc.cmd("QUIT")
}

// TestPlaintextRuleBehindProxy: behind a load balancer speaking the PROXY
// protocol, the client address in the header, not the balancer's,
// decides whether plaintext is allowed. A connection that does not start
// with the header is closed at once, one that sends nothing within the
// header timeout (10 seconds).
func TestPlaintextRuleBehindProxy(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	addUser(t, data, limitsUser, limitsPass)
	in := start(t, data, "--config", writeConfig(t, "[listen]\nproxy_protocol = true\n"))
	silent, err := net.Dial("tcp", in.ports["imap"])
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	direct, err := net.Dial("tcp", in.ports["pop3"])
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	io.WriteString(direct, "USER "+limitsUser+"\r\n")
	if out, closed := drainConn(direct, 10*time.Second); !closed || out != "" {
		t.Errorf("a connection without a PROXY header: %q (closed %v), want closed without a word", out, closed)
	}
	for _, tc := range []struct {
		header  string
		allowed bool
	}{
		{"PROXY TCP4 198.51.100.7 127.0.0.1 40000 143\r\n", false},
		{"PROXY TCP4 127.0.0.1 127.0.0.1 40000 143\r\n", true},
	} {
		c, err := net.Dial("tcp", in.ports["imap"])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, tc.header)
		ic := newRawIMAP(t, c)
		if strings.Contains(ic.greeting, "LOGINDISABLED") == tc.allowed {
			t.Errorf("%q: greeting %q", tc.header, ic.greeting)
		}
		_, tagged := ic.cmd(fmt.Sprintf("LOGIN %s %s", limitsUser, limitsPass))
		if strings.HasPrefix(tagged, "OK") != tc.allowed {
			t.Errorf("%q: LOGIN without TLS: %q", tc.header, tagged)
		}
	}
	if _, closed := drainConn(silent, 60*time.Second); !closed {
		t.Errorf("a connection that never sends its PROXY header is still open after a minute")
	}
}

// TestTLSMinimumVersion: a client that speaks at most TLS 1.1 is refused
// on IMAPS, POP3S, STARTTLS and STLS (the server's protocol_version alert,
// not the client giving up); TLS 1.2 and 1.3 are accepted.
func TestTLSMinimumVersion(t *testing.T) {
	t.Parallel()
	in, _ := startLimited(t, "")
	handshake := func(listener string, version uint16) error {
		c, err := net.Dial("tcp", in.ports[listener])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		switch listener {
		case "imap":
			ic := newRawIMAP(t, c)
			ic.mustOK("STARTTLS")
		case "pop3":
			pc := newRawPOP3(t, c)
			if r := pc.cmd("STLS"); !strings.HasPrefix(r, "+OK") {
				t.Fatalf("STLS: %q", r)
			}
		}
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, MinVersion: version, MaxVersion: version})
		return tc.Handshake()
	}
	for _, listener := range []string{"imaps", "pop3s", "imap", "pop3"} {
		for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
			err := handshake(listener, v)
			if err == nil {
				t.Errorf("%s: %s handshake succeeded", listener, tls.VersionName(v))
			} else if !strings.Contains(err.Error(), "protocol version") {
				t.Errorf("%s: %s refused, but not by the server's protocol_version alert: %v", listener, tls.VersionName(v), err)
			}
		}
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			if err := handshake(listener, v); err != nil {
				t.Errorf("%s: %s handshake: %v", listener, tls.VersionName(v), err)
			}
		}
	}
}

// TestSTARTTLSInjection sends a command in the same packet as STARTTLS
// (IMAP) or STLS (POP3), the plaintext injection of CVE-2011-0411: the
// server must not run it as if it had come over TLS. It either refuses
// the STARTTLS or drops what followed it; the first answer over TLS is to
// the first command sent over TLS.
func TestSTARTTLSInjection(t *testing.T) {
	t.Parallel()
	in, _ := startLimited(t, "")

	ic := dialIMAP(t, "", in.ports["imap"])
	ic.send("s STARTTLS\r\nx LOGIN " + limitsUser + " " + limitsPass + "\r\n")
	if _, tagged := ic.until("s"); strings.HasPrefix(tagged, "OK") {
		tc := tls.Client(ic.c, insecureTLS)
		ic = &rawIMAP{t: t, c: tc, r: bufio.NewReader(tc)}
		ic.send("y NOOP\r\n")
		if line, err := ic.readResp(); err != nil || !strings.HasPrefix(line, "y ") {
			t.Errorf("IMAP: first answer over TLS is %q (%v), not to the first command sent over TLS", line, err)
		}
		if _, tagged := ic.cmd("SELECT INBOX"); !strings.HasPrefix(tagged, "BAD") {
			t.Errorf("IMAP: the injected LOGIN took effect: SELECT answered %q", tagged)
		}
	} else if out, closed := drainConn(ic.c, 10*time.Second); !closed || strings.Contains(out, "x OK") {
		t.Errorf("IMAP: after refusing STARTTLS with pipelined data (%q), the server answered %q (closed %v)", tagged, out, closed)
	}

	pc := dialPOP3(t, "", in.ports["pop3"])
	pc.c.Write([]byte("STLS\r\nUSER " + limitsUser + "\r\n"))
	if r := pc.line(); strings.HasPrefix(r, "+OK") {
		tc := tls.Client(pc.c, insecureTLS)
		pc = &rawPOP3{t: t, c: tc, r: bufio.NewReader(tc)}
		if r := pc.cmd("PASS " + limitsPass); !strings.HasPrefix(r, "-ERR") {
			t.Errorf("POP3: the injected USER took effect: PASS answered %q", r)
		}
	} else if out, closed := drainConn(pc.c, 10*time.Second); !closed || strings.Contains(out, "+OK send PASS") {
		t.Errorf("POP3: after refusing STLS with pipelined data (%q), the server answered %q (closed %v)", r, out, closed)
	}
}
