package pop3server_test

// The same POP3 sessions against buzon and a private Dovecot holding the
// same messages: where the RFC makes the answer matter, or clients are
// used to Dovecot's, the two must agree. Wording differs and is not
// compared. Differences the RFC allows, and that we keep, are left out of
// the sessions and listed here:
//
//   - buzon refuses arguments to STAT, NOOP and QUIT, and USER with more
//     than one; Dovecot ignores them.
//   - buzon says [AUTH] only for wrong credentials; Dovecot also for a
//     response that is not base64.
//   - buzon locks the maildrop (RFC 1939 8): a second session is refused
//     with [IN-USE], unless the first has not heard from its client for
//     a minute, which it then ends; Dovecot lets both in by default.
//   - UIDLs are each server's own; only which messages they list is
//     compared.

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/buzon-mail/buzon/internal/clienttest"
	"github.com/buzon-mail/buzon/internal/pop3server/pop3test"
	"github.com/buzon-mail/buzon/internal/store"
)

// dovecotPeer is a Dovecot of the test's own, in a folder and on ports of
// its own, stopped and deleted when the test ends.
type dovecotPeer struct{ *clienttest.Dovecot }

// startDovecot starts a Dovecot with user1 and user2 (password "pass"),
// or skips the test where it cannot run.
func startDovecot(t *testing.T) dovecotPeer {
	t.Helper()
	return dovecotPeer{clienttest.StartDovecot(t, "bzpop3", 2)}
}

// append puts messages in a user's INBOX over IMAP, as they are.
func (d dovecotPeer) append(t *testing.T, user string, msgs [][]byte) {
	t.Helper()
	c, err := imapclient.DialInsecure(d.Addr("IMAP"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, "pass").Wait(); err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		cmd := c.Append("INBOX", int64(len(m)), nil)
		cmd.Write(m)
		cmd.Close()
		if _, err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	c.Logout().Wait()
}

// diffMessages are what both servers hold: the edge cases of RFC 1939's
// byte stuffing and counting. The embedded store keeps messages as
// delivery leaves them, with CRLF line ends; Dovecot is given them as a
// client would APPEND them.
var diffMessages = [][]byte{
	[]byte(msgHello),
	[]byte(msgDots),
	[]byte(msg8bit),
	[]byte(msgLong),
	[]byte(msgUnterminated),
	[]byte(msgHeaderOnly),
	[]byte("Subject: NUL\r\n\r\nbefore\x00after\r\n"),
	[]byte("Subject: ends with a dot\r\n\r\ntext\r\n."),
	[]byte("Subject: bare LF\r\n\r\none\ntwo\n.three\n"),
}

// popPeer is one side of the comparison: a POP3 connection and the
// account it logs in as.
type popPeer struct {
	name, user, pass string
	addr             string
	nc               net.Conn
	br               *bufio.Reader
}

// reply is a response: its first line and, for a multi-line one, the
// lines after it, dot-stuffing undone, each with its CRLF.
type reply struct {
	first string
	body  []byte
}

func (r reply) ok() bool { return strings.HasPrefix(r.first, "+OK") }

func (p *popPeer) dial(t *testing.T) {
	t.Helper()
	nc, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	p.nc, p.br = nc, bufio.NewReader(nc)
	p.setDeadline()
	if r := p.read(t, false); !r.ok() {
		t.Fatalf("%s greeting: %s", p.name, r.first)
	}
}

func (p *popPeer) setDeadline() { p.nc.SetDeadline(time.Now().Add(30 * time.Second)) }

// expand fills in the account: $USER, $PASS, and $PLAIN (an AUTH PLAIN
// initial response).
func (p *popPeer) expand(line string) string {
	plain := base64.StdEncoding.EncodeToString([]byte("\x00" + p.user + "\x00" + p.pass))
	return strings.NewReplacer("$USER", p.user, "$PASS", p.pass, "$PLAIN", plain).Replace(line)
}

func (p *popPeer) send(t *testing.T, lines []string) {
	t.Helper()
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(p.expand(l) + "\r\n")
	}
	if _, err := p.nc.Write([]byte(b.String())); err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
}

func (p *popPeer) line(t *testing.T) string {
	t.Helper()
	l, err := p.br.ReadString('\n')
	if err != nil {
		t.Fatalf("%s: reading: %v", p.name, err)
	}
	if !strings.HasSuffix(l, "\r\n") {
		t.Fatalf("%s: line without CRLF: %q", p.name, l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

func (p *popPeer) read(t *testing.T, multi bool) reply {
	t.Helper()
	r := reply{first: p.line(t)}
	if !multi || !r.ok() {
		return r
	}
	var body bytes.Buffer
	for {
		l := p.line(t)
		if l == "." {
			r.body = body.Bytes()
			return r
		}
		l, _ = strings.CutPrefix(l, ".")
		body.WriteString(l + "\r\n")
	}
}

// How a step's replies are compared.
const (
	sameStatus  = iota // +OK or -ERR
	sameBody           // and the lines of a multi-line reply
	sameNumbers        // and the message numbers a listing names
	sameAuth           // and whether it says [AUTH]
	sameCapa           // and the capabilities clients look for
)

// diffCmd is a command and how its replies are compared.
type diffCmd struct {
	line string
	cmp  int
}

// multiLine says whether a command's +OK is followed by lines.
func multiLine(line string) bool {
	f := strings.Fields(strings.ToUpper(line))
	if len(f) == 0 {
		return false
	}
	switch f[0] {
	case "CAPA", "RETR", "TOP":
		return true
	case "LIST", "UIDL", "AUTH":
		return len(f) == 1
	}
	return false
}

// capaKeys are the capabilities clients decide by.
var capaKeys = []string{"TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE", "USER", "STLS", "SASL PLAIN", "SASL LOGIN"}

func capaSummary(body []byte) []string {
	var out []string
	lines := strings.Split(string(body), "\r\n")
	for _, k := range capaKeys {
		name, mech, sasl := strings.Cut(k, " ")
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) > 0 && f[0] == name && (!sasl || slices.Contains(f[1:], mech)) {
				out = append(out, k)
				break
			}
		}
	}
	return out
}

func numbers(body []byte) []string {
	var out []string
	for l := range strings.Lines(string(body)) {
		n, _, _ := strings.Cut(l, " ")
		out = append(out, n)
	}
	return out
}

func TestDovecotDifferential(t *testing.T) {
	t.Parallel()
	d := startDovecot(t)
	env := pop3test.Start(t, openStore(t, t.TempDir()), pop3test.Options{})
	d.append(t, "user1", diffMessages)
	for _, m := range diffMessages {
		env.Append(t, alice, crlf(m), store.Flags{})
	}
	login := []diffCmd{{"USER $USER", sameStatus}, {"PASS $PASS", sameStatus}}

	var all []diffCmd
	for n := range len(diffMessages) + 1 {
		all = append(all, diffCmd{fmt.Sprintf("LIST %d", n), sameStatus}, diffCmd{fmt.Sprintf("UIDL %d", n), sameStatus})
		for _, k := range []int{0, 1, 3, 1000} {
			all = append(all, diffCmd{fmt.Sprintf("TOP %d %d", n, k), sameBody})
		}
		all = append(all, diffCmd{fmt.Sprintf("RETR %d", n), sameBody})
	}

	sessions := []struct {
		name string
		// steps are sent one after the other; the commands of a step
		// go in one write (pipelined).
		steps [][]diffCmd
		stls  bool // STLS first, and TLS from then on
	}{
		{name: "authorization", steps: [][]diffCmd{
			{{"CAPA", sameCapa}},
			{{"STAT", sameStatus}},
			{{"PASS $PASS", sameStatus}},
			{{"AUTH", sameStatus}},
			{{"AUTH PLAIN", sameStatus}}, {{"*", sameStatus}},
			{{"AUTH PLAIN", sameStatus}}, {{"%%%", sameStatus}},
			{{"AUTH LOGIN", sameStatus}}, {{"*", sameStatus}},
			{{"AUTH X-UNKNOWN", sameStatus}},
			{{"USER $USER", sameStatus}}, {{"PASS wrong", sameAuth}},
			{{"AUTH PLAIN $PLAIN", sameStatus}},
			{{"CAPA", sameCapa}},
			{{"USER $USER", sameStatus}},
			{{"AUTH PLAIN", sameStatus}},
			{{"QUIT", sameStatus}},
		}},
		{name: "transaction", steps: [][]diffCmd{
			login,
			{{"STAT", sameBody}},
			{{"LIST", sameBody}},
			{{"UIDL", sameNumbers}},
			all,
			{{"LIST x", sameStatus}, {"LIST -1", sameStatus}, {"LIST 99999999999999999999", sameStatus}, {"LIST 01", sameStatus}},
			{{"TOP 1", sameStatus}, {"TOP 1 x", sameStatus}, {"TOP 1 -1", sameStatus}, {"RETR", sameStatus}, {"DELE", sameStatus}},
			{{"DELE 2", sameStatus}, {"DELE 2", sameStatus}, {"LIST 2", sameStatus}, {"UIDL 2", sameStatus}, {"RETR 2", sameStatus}, {"TOP 2 0", sameStatus}},
			{{"STAT", sameBody}, {"LIST", sameBody}, {"UIDL", sameNumbers}},
			{{"RSET", sameStatus}, {"STAT", sameBody}, {"LIST 2", sameBody}},
			{{"list", sameBody}, {"uidl 3", sameStatus}, {"Retr 3", sameBody}, {"noop", sameStatus}},
			{{"USER $USER", sameStatus}, {"STLS", sameStatus}, {"CAPA", sameCapa}, {"XYZZY", sameStatus}},
			{{"QUIT", sameStatus}},
		}},
		{name: "pipelined", steps: [][]diffCmd{
			{{"USER $USER", sameStatus}, {"PASS $PASS", sameStatus}, {"STAT", sameBody}, {"LIST", sameBody},
				{"RETR 2", sameBody}, {"TOP 4 2", sameBody}, {"DELE 1", sameStatus}, {"STAT", sameBody}, {"RSET", sameStatus},
				{"QUIT", sameStatus}},
		}},
		{name: "stls", stls: true, steps: [][]diffCmd{
			{{"CAPA", sameCapa}},
			{{"AUTH PLAIN $PLAIN", sameStatus}},
			{{"RETR 8", sameBody}},
			{{"QUIT", sameStatus}},
		}},
		// Last: it deletes for good.
		{name: "delete", steps: [][]diffCmd{
			login,
			{{"DELE 1", sameStatus}, {"DELE 3", sameStatus}, {"QUIT", sameStatus}},
		}},
		{name: "after delete", steps: [][]diffCmd{
			login,
			{{"STAT", sameBody}, {"LIST", sameBody}, {"RETR 1", sameBody}, {"QUIT", sameStatus}},
		}},
	}
	for _, s := range sessions {
		t.Run(s.name, func(t *testing.T) {
			peers := []*popPeer{
				{name: "dovecot", user: "user1", pass: "pass", addr: d.Addr("POP3")},
				{name: "buzon", user: alice, pass: pop3test.Password, addr: env.Addr},
			}
			for _, p := range peers {
				p.dial(t)
				if s.stls {
					p.send(t, []string{"STLS"})
					if r := p.read(t, false); !r.ok() {
						t.Fatalf("%s STLS: %s", p.name, r.first)
					}
					tc := tls.Client(p.nc, &tls.Config{InsecureSkipVerify: true})
					p.nc, p.br = tc, bufio.NewReader(tc)
					p.setDeadline()
				}
			}
			for _, step := range s.steps {
				var lines []string
				for _, c := range step {
					lines = append(lines, c.line)
				}
				var replies [2][]reply
				for i, p := range peers {
					p.send(t, lines)
					for _, c := range step {
						replies[i] = append(replies[i], p.read(t, multiLine(c.line)))
					}
				}
				for k, c := range step {
					compare(t, c, replies[0][k], replies[1][k])
				}
			}
		})
	}
}

// compare reports where buzon's reply (b) differs from Dovecot's (dv).
func compare(t *testing.T, c diffCmd, dv, b reply) {
	t.Helper()
	if dv.ok() != b.ok() {
		t.Errorf("%s: Dovecot %q, buzon %q", c.line, dv.first, b.first)
		return
	}
	switch c.cmp {
	case sameBody:
		if !bytes.Equal(dv.body, b.body) {
			t.Errorf("%s: Dovecot sent\n%q\nbuzon\n%q", c.line, dv.body, b.body)
		}
		if strings.HasPrefix(c.line, "STAT") && dv.first != b.first {
			t.Errorf("%s: Dovecot %q, buzon %q", c.line, dv.first, b.first)
		}
	case sameNumbers:
		if !slices.Equal(numbers(dv.body), numbers(b.body)) {
			t.Errorf("%s: Dovecot lists %v, buzon %v", c.line, numbers(dv.body), numbers(b.body))
		}
	case sameAuth:
		if strings.Contains(dv.first, "[AUTH]") != strings.Contains(b.first, "[AUTH]") {
			t.Errorf("%s: Dovecot %q, buzon %q", c.line, dv.first, b.first)
		}
	case sameCapa:
		if dc, bc := capaSummary(dv.body), capaSummary(b.body); !slices.Equal(dc, bc) {
			t.Errorf("%s: Dovecot offers %v, buzon %v", c.line, dc, bc)
		}
	}
}
