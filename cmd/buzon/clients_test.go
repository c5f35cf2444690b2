package main

// Client-behaviour tests: each replays, against a real `buzon serve`, the
// command sequence a real mail client sends (Thunderbird, Apple Mail on
// iOS and macOS, Outlook, K-9/FairEmail on phones, their POP3 sides), as
// seen in their protocol logs, and asserts what that client relies on in
// the answers. The tests are in *_clients_test.go, one file per client
// family; this file holds what they share: a raw IMAP client that keeps
// the server's bytes (literals included) for checking, a small parser for
// its responses, the messages the clients download and a second opinion
// from go-imap's client.
//
// Every identifier here starts with "cl" so that it cannot collide with
// the other end-to-end tests of the package.

import (
	"bufio"
	"compress/flate"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

const clPass = "client-pw"

// clTimeout bounds every wait for a server answer.
const clTimeout = 15 * time.Second

// clServer starts `buzon serve` with one account, user, and the extra
// arguments (a --config, say).
func clServer(t *testing.T, user string, extra ...string) *instance {
	t.Helper()
	in := start(t, "", extra...)
	mustBuzon(t, clPass+"\n", "user", "add", "--data", in.data, user)
	return in
}

// clDeliver hands msgs to the server over LMTP, as an MTA does, one
// transaction each, and fails unless each is accepted.
func clDeliver(t *testing.T, in *instance, rcpt string, msgs ...string) {
	t.Helper()
	c, err := net.Dial("tcp", in.ports["lmtp"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(clTimeout))
	r := bufio.NewReader(c)
	reply := func(what string) {
		t.Helper()
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("LMTP %s: %v", what, err)
			}
			if len(l) < 4 || l[0] != '2' && l[0] != '3' {
				t.Fatalf("LMTP %s: %q", what, l)
			}
			if l[3] == ' ' {
				return
			}
		}
	}
	reply("greeting")
	fmt.Fprintf(c, "LHLO clients.example.net\r\n")
	reply("LHLO")
	for _, msg := range msgs {
		fmt.Fprintf(c, "MAIL FROM:<sender@example.net>\r\n")
		reply("MAIL")
		fmt.Fprintf(c, "RCPT TO:<%s>\r\n", rcpt)
		reply("RCPT")
		fmt.Fprintf(c, "DATA\r\n")
		reply("DATA")
		var b strings.Builder
		for line := range strings.SplitAfterSeq(msg, "\r\n") {
			if strings.HasPrefix(line, ".") {
				b.WriteByte('.')
			}
			b.WriteString(line)
		}
		b.WriteString(".\r\n")
		io.WriteString(c, b.String())
		reply("end of DATA")
	}
	fmt.Fprintf(c, "QUIT\r\n")
}

// clMsg joins header and body lines into a message with CRLF line ends.
func clMsg(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n" }

// clBase64 wraps data in base64 lines of 76 characters, as mailers do.
func clBase64(data []byte) string {
	enc := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc)
	return b.String()
}

// clBlob is n bytes of deterministic binary data, an attachment.
func clBlob(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// The messages the client tests read, as they would arrive from the
// Internet: a short plain one, a Thunderbird-made multipart with a large
// attachment, one with encoded headers and 8-bit text, a long text and an
// Apple-style HTML message with an inline image.
var (
	clPlainMsg = clMsg(
		"Return-Path: <carol@example.net>",
		"From: Carol Example <carol@example.net>",
		"To: Tess <tess@example.org>",
		"Subject: Lunch on Friday?",
		"Date: Mon, 03 Feb 2025 10:15:00 +0100",
		"Message-ID: <lunch-1@example.net>",
		"MIME-Version: 1.0",
		"Content-Type: text/plain; charset=utf-8; format=flowed",
		"Content-Transfer-Encoding: 7bit",
		"",
		"Shall we meet at noon?",
		"",
		"Carol")

	clAttachment = clBlob(400 << 10)

	clMixedMsg = clMsg(
		"From: Dan <dan@example.com>",
		"To: tess@example.org",
		"Cc: Erin <erin@example.com>",
		"Subject: Quarterly report",
		"Date: Tue, 04 Feb 2025 09:00:00 +0000",
		"Message-ID: <report-2@example.com>",
		"User-Agent: Mozilla Thunderbird",
		"MIME-Version: 1.0",
		`Content-Type: multipart/mixed; boundary="------------mixed0123"`,
		"",
		"This is a multi-part message in MIME format.",
		"--------------mixed0123",
		`Content-Type: multipart/alternative; boundary="------------alt4567"`,
		"",
		"--------------alt4567",
		"Content-Type: text/plain; charset=UTF-8; format=flowed",
		"Content-Transfer-Encoding: 7bit",
		"",
		"The report is attached.",
		"",
		"--------------alt4567",
		"Content-Type: text/html; charset=UTF-8",
		"Content-Transfer-Encoding: 7bit",
		"",
		"<html><body><p>The report is <b>attached</b>.</p></body></html>",
		"",
		"--------------alt4567--",
		"--------------mixed0123",
		`Content-Type: application/pdf; name="report.pdf"`,
		`Content-Disposition: attachment; filename="report.pdf"`,
		"Content-Transfer-Encoding: base64",
		"",
		clBase64(clAttachment),
		"",
		"--------------mixed0123--")

	clIntlMsg = clMsg(
		"From: =?UTF-8?Q?Jos=C3=A9_Mu=C3=B1oz?= <jose@example.es>",
		"To: tess@example.org",
		"Subject: =?UTF-8?B?UmU6IMOpdMOpIMOgIE3DoWxhZ2E=?=",
		"Date: Wed, 05 Feb 2025 18:30:00 +0100",
		"Message-ID: <malaga-3@example.es>",
		"In-Reply-To: <lunch-1@example.net>",
		"References: <lunch-1@example.net>",
		"X-Priority: 1 (Highest)",
		"MIME-Version: 1.0",
		"Content-Type: text/plain; charset=utf-8",
		"Content-Transfer-Encoding: 8bit",
		"",
		"¡Hola! Nos vemos en Málaga este verano.",
		".a line that starts with a dot",
		"José")

	clLongMsg = clMsg(
		"From: news@example.org",
		"To: tess@example.org",
		"Subject: Weekly digest",
		"Date: Thu, 06 Feb 2025 07:00:00 +0000",
		"Message-ID: <digest-4@example.org>",
		"MIME-Version: 1.0",
		"Content-Type: text/plain; charset=us-ascii",
		"",
		clLines(400, "digest line %03d: the quick brown fox jumps over the lazy dog"))

	clAppleMsg = clMsg(
		"From: Fay <fay@icloud.example>",
		"To: tess@example.org",
		"Subject: Photo from the hike",
		"Date: Fri, 07 Feb 2025 16:45:00 +0100",
		"Message-ID: <hike-5@icloud.example>",
		"X-Mailer: iPhone Mail (21D61)",
		"Mime-Version: 1.0 (1.0)",
		`Content-Type: multipart/related; type="text/html"; boundary=Apple-Mail-A1B2`,
		"Content-Transfer-Encoding: 7bit",
		"",
		"--Apple-Mail-A1B2",
		"Content-Type: text/html; charset=utf-8",
		"Content-Transfer-Encoding: quoted-printable",
		"",
		`<html><body><img src=3D"cid:hike@icloud.example"><br>View from the top=`,
		"</body></html>",
		"--Apple-Mail-A1B2",
		"Content-Type: image/jpeg; name=hike.jpg",
		"Content-Disposition: inline; filename=hike.jpg",
		"Content-Id: <hike@icloud.example>",
		"Content-Transfer-Encoding: base64",
		"",
		clBase64(clBlob(30<<10)),
		"--Apple-Mail-A1B2--")
)

// clLines is n numbered lines of text, CRLF-separated.
func clLines(n int, format string) string {
	lines := make([]string, n)
	for i := range lines {
		lines[i] = fmt.Sprintf(format, i+1)
	}
	return strings.Join(lines, "\r\n")
}

// clHeader returns the header block of a message, up to and including the
// empty line.
func clHeader(msg string) string {
	i := strings.Index(msg, "\r\n\r\n")
	return msg[:i+4]
}

// clIMAP is a client connection that sends exactly what the test says and
// keeps exactly what the server answers. A goroutine reads one response at
// a time when asked, so a wait can give up without losing a response or
// disturbing TLS or DEFLATE state; the reader is swapped for STARTTLS and
// COMPRESS between requests.
type clIMAP struct {
	t        *testing.T
	who      string // the client it plays, for messages
	raw      net.Conn
	conn     net.Conn // raw, or TLS over it
	w        io.Writer
	fw       *flate.Writer // after COMPRESS DEFLATE
	r        *bufio.Reader
	want     chan *bufio.Reader
	got      chan clRead
	pending  bool
	tagf     string // tag format, with one %d
	n        int
	greeting string
	idleTag  string
	log      strings.Builder // the conversation, for failure messages
}

type clRead struct {
	text string
	err  error
}

// clDial connects to the listener named (imap or imaps) as who, reads the
// greeting and returns the connection. tagf is how the client makes tags.
func clDial(t *testing.T, in *instance, listener, who, tagf string) *clIMAP {
	t.Helper()
	raw, err := net.Dial("tcp", in.ports[listener])
	if err != nil {
		t.Fatal(err)
	}
	c := &clIMAP{t: t, who: who, raw: raw, conn: raw, w: raw, tagf: tagf,
		want: make(chan *bufio.Reader), got: make(chan clRead, 1)}
	if listener == "imaps" {
		tc := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
		if err := tc.Handshake(); err != nil {
			t.Fatalf("%s: TLS handshake: %v", who, err)
		}
		c.conn, c.w = tc, tc
	}
	c.r = bufio.NewReader(c.conn)
	go func() {
		for r := range c.want {
			text, err := clReadResponse(r)
			c.got <- clRead{text, err}
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s conversation:\n%s", who, c.transcript())
		}
		c.raw.Close()
		close(c.want)
	})
	c.greeting = c.next()
	if !strings.HasPrefix(c.greeting, "* OK ") {
		t.Fatalf("%s: greeting %q", who, c.greeting)
	}
	return c
}

// transcript is the conversation so far, long literals shortened.
func (c *clIMAP) transcript() string {
	s := c.log.String()
	if len(s) > 20000 {
		s = s[:10000] + "\n[...]\n" + s[len(s)-10000:]
	}
	return s
}

func (c *clIMAP) note(dir, s string) {
	if len(s) > 600 {
		s = s[:300] + fmt.Sprintf("[... %d bytes ...]", len(s)-600) + s[len(s)-300:]
	}
	c.log.WriteString(dir + s + "\n")
}

var clLiteralRE = regexp.MustCompile(`~?\{(\d+)\}\r\n$`)

// clReadResponse reads one response: a line and, for every literal it
// announces, the literal's bytes and the rest of the line. The literal
// bytes stay inline; the final CRLF is dropped.
func clReadResponse(r *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		line, err := r.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String(), err
		}
		if !strings.HasSuffix(line, "\r\n") {
			return b.String(), fmt.Errorf("line ends without CR: %q", line)
		}
		m := clLiteralRE.FindStringSubmatch(line)
		if m == nil {
			return strings.TrimSuffix(b.String(), "\r\n"), nil
		}
		n, _ := strconv.Atoi(m[1])
		if _, err := io.CopyN(&b, r, int64(n)); err != nil {
			return b.String(), err
		}
	}
}

// poll waits up to d for the next response; ok is false when none came.
func (c *clIMAP) poll(d time.Duration) (string, bool) {
	c.t.Helper()
	if !c.pending {
		c.want <- c.r
		c.pending = true
	}
	select {
	case res := <-c.got:
		c.pending = false
		if res.err != nil {
			c.t.Fatalf("%s: reading from the server: %v after %q", c.who, res.err, res.text)
		}
		c.note("S: ", res.text)
		return res.text, true
	case <-time.After(d):
		return "", false
	}
}

// next waits for the next response.
func (c *clIMAP) next() string {
	c.t.Helper()
	s, ok := c.poll(clTimeout)
	if !ok {
		c.t.Fatalf("%s: no answer from the server within %v", c.who, clTimeout)
	}
	return s
}

// closed waits up to d for the server to close the connection, returning
// what it said before.
func (c *clIMAP) closed(d time.Duration) ([]string, bool) {
	c.t.Helper()
	var said []string
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !c.pending {
			c.want <- c.r
			c.pending = true
		}
		select {
		case res := <-c.got:
			c.pending = false
			if res.err != nil {
				return said, true
			}
			c.note("S: ", res.text)
			said = append(said, res.text)
		case <-time.After(time.Until(deadline)):
		}
	}
	return said, false
}

func (c *clIMAP) write(s string) {
	c.t.Helper()
	c.note("C: ", strings.TrimSuffix(s, "\r\n"))
	if _, err := io.WriteString(c.w, s); err != nil {
		c.t.Fatalf("%s: write: %v", c.who, err)
	}
	if c.fw != nil {
		if err := c.fw.Flush(); err != nil {
			c.t.Fatalf("%s: flush: %v", c.who, err)
		}
	}
}

func (c *clIMAP) tag() string {
	c.n++
	return fmt.Sprintf(c.tagf, c.n)
}

// clResult is what a command got: the untagged responses, in order, and
// the tagged completion.
type clResult struct {
	untagged []string
	status   string // OK, NO or BAD
	text     string // the tagged line
}

// all is every response of the result, untagged and tagged.
func (r clResult) all() []string { return append(slices.Clone(r.untagged), r.text) }

// start sends a command line and returns its tag.
func (c *clIMAP) start(command string) string {
	c.t.Helper()
	tag := c.tag()
	c.write(tag + " " + command + "\r\n")
	return tag
}

// finish reads up to the tagged completion of tag.
func (c *clIMAP) finish(tag string) clResult {
	c.t.Helper()
	var res clResult
	for {
		s := c.next()
		if rest, ok := strings.CutPrefix(s, tag+" "); ok {
			res.text = s
			res.status, _, _ = strings.Cut(rest, " ")
			return res
		}
		if strings.HasPrefix(s, "+") {
			c.t.Fatalf("%s: unexpected continuation %q", c.who, s)
		}
		res.untagged = append(res.untagged, s)
	}
}

// cmd runs a command to its completion, whatever the status.
func (c *clIMAP) cmd(command string) clResult {
	c.t.Helper()
	return c.finish(c.start(command))
}

// ok runs a command that must succeed and returns its untagged responses.
func (c *clIMAP) ok(command string) clResult {
	c.t.Helper()
	res := c.cmd(command)
	if res.status != "OK" {
		c.t.Fatalf("%s: %s: %s", c.who, command, res.text)
	}
	return res
}

// continuation reads the server's "+" after a synchronising literal or a
// SASL step.
func (c *clIMAP) continuation() string {
	c.t.Helper()
	s := c.next()
	if !strings.HasPrefix(s, "+") {
		c.t.Fatalf("%s: want a continuation, got %q", c.who, s)
	}
	return s
}

// appendMsg appends msg with a synchronising literal, as Thunderbird and
// Apple Mail do, or with LITERAL+ when plus is set. args go between the
// mailbox and the literal: flags and a date.
func (c *clIMAP) appendMsg(mailbox, args, msg string, plus bool) clResult {
	c.t.Helper()
	tag := c.tag()
	if args != "" {
		args += " "
	}
	if plus {
		c.write(fmt.Sprintf("%s APPEND %s %s{%d+}\r\n%s\r\n", tag, mailbox, args, len(msg), msg))
	} else {
		c.write(fmt.Sprintf("%s APPEND %s %s{%d}\r\n", tag, mailbox, args, len(msg)))
		c.continuation()
		c.write(msg + "\r\n")
	}
	return c.finish(tag)
}

// starttls upgrades the connection after "tag OK".
func (c *clIMAP) starttls() {
	c.t.Helper()
	c.ok("STARTTLS")
	tc := tls.Client(c.raw, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("%s: STARTTLS handshake: %v", c.who, err)
	}
	c.conn, c.w, c.r = tc, tc, bufio.NewReader(tc)
}

// compress turns on COMPRESS=DEFLATE (RFC 4978) after "tag OK": raw
// DEFLATE both ways, the client flushing after each command.
func (c *clIMAP) compress() {
	c.t.Helper()
	c.ok("COMPRESS DEFLATE")
	fw, err := flate.NewWriter(c.conn, flate.DefaultCompression)
	if err != nil {
		c.t.Fatal(err)
	}
	c.fw, c.w = fw, fw
	c.r = bufio.NewReader(flate.NewReader(c.r))
}

// clPlainIR is the SASL PLAIN response for user.
func clPlainIR(user string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + clPass))
}

// idle starts IDLE and waits for the continuation.
func (c *clIMAP) idle() {
	c.t.Helper()
	c.idleTag = c.start("IDLE")
	c.continuation()
}

// await reads responses until one matches re, within d; it fails the test
// when none does and returns the ones read, the match last.
func (c *clIMAP) await(re *regexp.Regexp, d time.Duration) []string {
	c.t.Helper()
	var seen []string
	deadline := time.Now().Add(d)
	for {
		s, ok := c.poll(time.Until(deadline))
		if !ok {
			c.t.Fatalf("%s: nothing matching %v within %v; got %q", c.who, re, d, seen)
		}
		seen = append(seen, s)
		if re.MatchString(s) {
			return seen
		}
	}
}

// quiet collects what the server says within d, for checks that it says
// nothing (or nothing of a kind).
func (c *clIMAP) quiet(d time.Duration) []string {
	c.t.Helper()
	var seen []string
	deadline := time.Now().Add(d)
	for {
		s, ok := c.poll(time.Until(deadline))
		if !ok {
			return seen
		}
		seen = append(seen, s)
	}
}

// done ends IDLE and returns what came before the completion.
func (c *clIMAP) done() clResult {
	c.t.Helper()
	c.write("DONE\r\n")
	res := c.finish(c.idleTag)
	if res.status != "OK" {
		c.t.Fatalf("%s: IDLE ended with %q", c.who, res.text)
	}
	return res
}

// clCaps is the capability list in a response ("* CAPABILITY ..." or a
// [CAPABILITY ...] code), upper-cased.
func clCaps(t *testing.T, s string) map[string]bool {
	t.Helper()
	var list string
	if rest, ok := strings.CutPrefix(s, "* CAPABILITY "); ok {
		list = rest
	} else if i := strings.Index(s, "[CAPABILITY "); i >= 0 {
		list, _, _ = strings.Cut(s[i+len("[CAPABILITY "):], "]")
	} else {
		t.Fatalf("no capabilities in %q", s)
	}
	caps := map[string]bool{}
	for _, c := range strings.Fields(list) {
		caps[strings.ToUpper(c)] = true
	}
	return caps
}

// clRequire fails unless every capability named is in caps.
func clRequire(t *testing.T, who string, caps map[string]bool, names ...string) {
	t.Helper()
	for _, n := range names {
		if !caps[n] {
			t.Errorf("%s needs %s, not in %v", who, n, slices.Sorted(maps.Keys(caps)))
		}
	}
}

// clCode returns the response code of a status response: "[UIDNEXT 5]"
// gives "UIDNEXT 5".
func clCode(s string) string {
	i := strings.IndexByte(s, '[')
	if i < 0 {
		return ""
	}
	j := strings.IndexByte(s[i:], ']')
	if j < 0 {
		return ""
	}
	return s[i+1 : i+j]
}

// clFind returns the responses starting with prefix.
func clFind(resps []string, prefix string) []string {
	var out []string
	for _, s := range resps {
		if strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
	}
	return out
}

// clCodeValue finds "[NAME n]" among the responses and returns n.
func clCodeValue(t *testing.T, resps []string, name string) uint64 {
	t.Helper()
	for _, s := range resps {
		if rest, ok := strings.CutPrefix(clCode(s), name+" "); ok {
			n, err := strconv.ParseUint(strings.Fields(rest)[0], 10, 64)
			if err != nil {
				t.Fatalf("%s in %q: %v", name, s, err)
			}
			return n
		}
	}
	t.Fatalf("no [%s] in %q", name, resps)
	return 0
}

// clVal is a parsed IMAP value: an atom (numbers, NIL and flags too), a
// string (quoted or literal) or a parenthesised list.
type clVal struct {
	atom   string
	str    *string
	list   []clVal
	isList bool
}

func (v clVal) String() string {
	switch {
	case v.isList:
		parts := make([]string, len(v.list))
		for i, e := range v.list {
			parts[i] = e.String()
		}
		return "(" + strings.Join(parts, " ") + ")"
	case v.str != nil:
		return strconv.Quote(*v.str)
	}
	return v.atom
}

// text is the value of a string, or an atom's spelling; NIL is "".
func (v clVal) text() string {
	if v.str != nil {
		return *v.str
	}
	if v.atom == "NIL" {
		return ""
	}
	return v.atom
}

// num is the value of a number atom, or -1.
func (v clVal) num() int64 {
	n, err := strconv.ParseInt(v.atom, 10, 64)
	if err != nil || v.isList || v.str != nil {
		return -1
	}
	return n
}

// clParser reads values from a response. It is strict where clients are:
// literal sizes must be exact, strings closed, lists balanced.
type clParser struct {
	s   string
	pos int
}

func (p *clParser) errorf(format string, args ...any) error {
	ctx := p.s[p.pos:]
	if len(ctx) > 60 {
		ctx = ctx[:60]
	}
	return fmt.Errorf("at %d (%q): %s", p.pos, ctx, fmt.Sprintf(format, args...))
}

func (p *clParser) value() (clVal, error) {
	if p.pos >= len(p.s) {
		return clVal{}, p.errorf("value expected")
	}
	switch c := p.s[p.pos]; {
	case c == '(':
		p.pos++
		v := clVal{isList: true, list: []clVal{}}
		for {
			if p.pos >= len(p.s) {
				return v, p.errorf("unclosed list")
			}
			if p.s[p.pos] == ')' {
				p.pos++
				return v, nil
			}
			if len(v.list) > 0 {
				// The parts of a multipart body structure follow each
				// other without a space (RFC 9051 9, body-type-mpart).
				if p.s[p.pos] == ' ' {
					p.pos++
				} else if p.s[p.pos] != '(' || !v.list[len(v.list)-1].isList {
					return v, p.errorf("space expected in list")
				}
			}
			e, err := p.value()
			if err != nil {
				return v, err
			}
			v.list = append(v.list, e)
		}
	case c == '"':
		var b strings.Builder
		for p.pos++; p.pos < len(p.s); p.pos++ {
			switch p.s[p.pos] {
			case '\\':
				p.pos++
				if p.pos >= len(p.s) || p.s[p.pos] != '\\' && p.s[p.pos] != '"' {
					return clVal{}, p.errorf("bad escape in quoted string")
				}
				b.WriteByte(p.s[p.pos])
			case '"':
				p.pos++
				s := b.String()
				return clVal{str: &s}, nil
			case '\r', '\n':
				return clVal{}, p.errorf("line break in quoted string")
			default:
				b.WriteByte(p.s[p.pos])
			}
		}
		return clVal{}, p.errorf("unclosed quoted string")
	case c == '{' || c == '~' && strings.HasPrefix(p.s[p.pos:], "~{"):
		end := strings.Index(p.s[p.pos:], "}\r\n")
		if end < 0 {
			return clVal{}, p.errorf("bad literal")
		}
		n, err := strconv.Atoi(strings.TrimLeft(p.s[p.pos:p.pos+end], "~{"))
		if err != nil {
			return clVal{}, p.errorf("bad literal size")
		}
		p.pos += end + 3
		if p.pos+n > len(p.s) {
			return clVal{}, p.errorf("literal of %d bytes runs past the response", n)
		}
		s := p.s[p.pos : p.pos+n]
		p.pos += n
		return clVal{str: &s}, nil
	default:
		start := p.pos
		depth := 0
		for p.pos < len(p.s) {
			c := p.s[p.pos]
			if c == '[' {
				depth++
			} else if c == ']' {
				depth--
			} else if depth == 0 && (c == ' ' || c == '(' || c == ')' || c == '\r' || c == '"') {
				break
			}
			p.pos++
		}
		if p.pos == start {
			return clVal{}, p.errorf("atom expected")
		}
		return clVal{atom: p.s[start:p.pos]}, nil
	}
}

// clParseValues parses s (a response without its "* ") into values.
func clParseValues(s string) ([]clVal, error) {
	p := &clParser{s: s}
	var vals []clVal
	for p.pos < len(s) {
		if len(vals) > 0 {
			if s[p.pos] != ' ' {
				return vals, p.errorf("space expected")
			}
			p.pos++
		}
		v, err := p.value()
		if err != nil {
			return vals, err
		}
		vals = append(vals, v)
	}
	return vals, nil
}

// clFetch is one parsed "* n FETCH (...)".
type clFetch struct {
	seq   uint32
	items map[string]clVal // by item name as the server wrote it, upper-cased
	order []string
}

func (f clFetch) uid() int64 { return f.items["UID"].num() }

func (f clFetch) flags() []string {
	var fl []string
	for _, v := range f.items["FLAGS"].list {
		fl = append(fl, v.atom)
	}
	return fl
}

func (f clFetch) hasFlag(flag string) bool {
	return slices.ContainsFunc(f.flags(), func(s string) bool { return strings.EqualFold(s, flag) })
}

// clParseFetch parses a FETCH response strictly: every item has a value,
// names are not repeated, literal sizes are right.
func clParseFetch(s string) (clFetch, error) {
	var f clFetch
	rest, ok := strings.CutPrefix(s, "* ")
	if !ok {
		return f, fmt.Errorf("not untagged: %q", s)
	}
	vals, err := clParseValues(rest)
	if err != nil {
		return f, fmt.Errorf("FETCH does not parse: %v", err)
	}
	if len(vals) != 3 || vals[1].atom != "FETCH" || !vals[2].isList || vals[0].num() <= 0 {
		return f, fmt.Errorf("not a FETCH response: %q", s)
	}
	f.seq = uint32(vals[0].num())
	f.items = map[string]clVal{}
	l := vals[2].list
	if len(l)%2 != 0 {
		return f, fmt.Errorf("FETCH item without a value: %q", s)
	}
	for i := 0; i < len(l); i += 2 {
		name := strings.ToUpper(l[i].atom)
		if name == "" {
			return f, fmt.Errorf("FETCH item name is not an atom: %v", l[i])
		}
		if _, dup := f.items[name]; dup {
			return f, fmt.Errorf("FETCH item %s twice", name)
		}
		f.items[name] = l[i+1]
		f.order = append(f.order, name)
	}
	return f, nil
}

var clFetchRE = regexp.MustCompile(`^\* \d+ FETCH \(`)

// clFetches parses the FETCH responses among resps; anything else that is
// not allowed fails the test.
func clFetches(t *testing.T, who string, resps []string) []clFetch {
	t.Helper()
	var out []clFetch
	for _, s := range resps {
		if !clFetchRE.MatchString(s) {
			continue
		}
		f, err := clParseFetch(s)
		if err != nil {
			t.Fatalf("%s cannot parse: %v", who, err)
		}
		out = append(out, f)
	}
	return out
}

// clByUID indexes FETCH responses by UID; each UID must appear once.
func clByUID(t *testing.T, fs []clFetch) map[int64]clFetch {
	t.Helper()
	m := map[int64]clFetch{}
	for _, f := range fs {
		u := f.uid()
		if u <= 0 {
			t.Fatalf("FETCH of message %d has no UID: %v", f.seq, f.order)
		}
		if _, dup := m[u]; dup {
			t.Errorf("UID %d answered twice", u)
		}
		m[u] = f
	}
	return m
}

// clSection finds a BODY[...] or BINARY[...] item by the section the
// client asked for, compared as a client compares it: case-insensitively,
// the origin of a partial fetch included ("BODY[1]<0>").
func (f clFetch) section(want string) (string, bool) {
	want = strings.ToUpper(want)
	for name, v := range f.items {
		if name == want && v.str != nil {
			return *v.str, true
		}
	}
	return "", false
}

// clList is a parsed LIST or LSUB response.
type clList struct {
	attrs []string
	delim string
	name  string
	ext   []clVal
}

func (l clList) has(attr string) bool {
	return slices.ContainsFunc(l.attrs, func(a string) bool { return strings.EqualFold(a, attr) })
}

// clLists parses the LIST (or LSUB) responses among resps, by name.
func clLists(t *testing.T, verb string, resps []string) map[string]clList {
	t.Helper()
	out := map[string]clList{}
	for _, s := range resps {
		rest, ok := strings.CutPrefix(s, "* "+verb+" ")
		if !ok {
			continue
		}
		vals, err := clParseValues(rest)
		if err != nil || len(vals) < 3 || !vals[0].isList {
			t.Fatalf("%s response does not parse: %q: %v", verb, s, err)
		}
		l := clList{delim: vals[1].text(), name: vals[2].text(), ext: vals[3:]}
		for _, a := range vals[0].list {
			l.attrs = append(l.attrs, a.atom)
		}
		if _, dup := out[l.name]; dup {
			t.Errorf("%s lists %q twice", verb, l.name)
		}
		out[l.name] = l
	}
	return out
}

// clStatus parses "* STATUS name (K v ...)" responses by mailbox name.
func clStatus(t *testing.T, resps []string) map[string]map[string]int64 {
	t.Helper()
	out := map[string]map[string]int64{}
	for _, s := range clFind(resps, "* STATUS ") {
		vals, err := clParseValues(strings.TrimPrefix(s, "* STATUS "))
		if err != nil || len(vals) != 2 || !vals[1].isList || len(vals[1].list)%2 != 0 {
			t.Fatalf("STATUS does not parse: %q: %v", s, err)
		}
		m := map[string]int64{}
		for i := 0; i < len(vals[1].list); i += 2 {
			m[strings.ToUpper(vals[1].list[i].atom)] = vals[1].list[i+1].num()
		}
		out[vals[0].text()] = m
	}
	return out
}

// clSearch parses "* SEARCH n ..." into numbers.
func clSearch(t *testing.T, resps []string) []int64 {
	t.Helper()
	found := clFind(resps, "* SEARCH")
	if len(found) != 1 {
		t.Fatalf("want one SEARCH response, got %q", resps)
	}
	var out []int64
	for _, f := range strings.Fields(strings.TrimPrefix(found[0], "* SEARCH")) {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			t.Fatalf("SEARCH response %q: %v", found[0], err)
		}
		out = append(out, n)
	}
	return out
}

// clNoExpunge fails if an EXPUNGE or VANISHED is among resps: RFC 9051
// 7.5.1 forbids them during FETCH, STORE and SEARCH, whose answers use
// sequence numbers that an expunge would shift.
func clNoExpunge(t *testing.T, who, command string, resps []string) {
	t.Helper()
	for _, s := range resps {
		if strings.HasSuffix(s, " EXPUNGE") || strings.HasPrefix(s, "* VANISHED") {
			t.Errorf("%s: %q during %s (RFC 9051 7.5.1)", who, s, command)
		}
	}
}

// clGoClient logs in with go-imap's client, whose parser is independent of
// ours and of the server's, over IMAPS.
func clGoClient(t *testing.T, in *instance, user string, h *imapclient.UnilateralDataHandler) *imapclient.Client {
	t.Helper()
	return clGoClientAs(t, in, user, clPass, h)
}

// clGoClientAs is clGoClient with a password of its own.
func clGoClientAs(t *testing.T, in *instance, user, pass string, h *imapclient.UnilateralDataHandler) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialTLS(in.ports["imaps"], &imapclient.Options{
		TLSConfig:             &tls.Config{InsecureSkipVerify: true},
		UnilateralDataHandler: h,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

// clGoFetch fetches with go-imap's client from mailbox, read-only, by UID.
func clGoFetch(t *testing.T, in *instance, user, mailbox string, uids []imap.UID, opts *imap.FetchOptions) map[imap.UID]*imapclient.FetchMessageBuffer {
	t.Helper()
	c := clGoClient(t, in, user, nil)
	if _, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatalf("go-imap EXAMINE %s: %v", mailbox, err)
	}
	msgs, err := c.Fetch(imap.UIDSetNum(uids...), opts).Collect()
	if err != nil {
		t.Fatalf("go-imap UID FETCH: %v", err)
	}
	out := map[imap.UID]*imapclient.FetchMessageBuffer{}
	for _, m := range msgs {
		out[m.UID] = m
	}
	c.Logout().Wait()
	return out
}

// clFilterHeader is what HEADER.FIELDS (names) must return for msg: the
// fields named, in message order, and the empty line (RFC 9051 6.4.5).
func clFilterHeader(msg string, names []string) string {
	var b strings.Builder
	var keep bool
	for line := range strings.SplitAfterSeq(clHeader(msg), "\r\n") {
		if line == "\r\n" {
			break
		}
		if line[0] != ' ' && line[0] != '\t' {
			name, _, _ := strings.Cut(line, ":")
			keep = slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, name) })
		}
		if keep {
			b.WriteString(line)
		}
	}
	b.WriteString("\r\n")
	return b.String()
}
