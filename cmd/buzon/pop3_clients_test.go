package main

// The POP3 sides of Thunderbird, Outlook and Apple Mail, and Python's
// poplib leaving mail on the server.

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// clPOP3 is a raw POP3 client connection.
type clPOP3 struct {
	t    *testing.T
	who  string
	raw  net.Conn
	conn net.Conn
	r    *bufio.Reader
	log  strings.Builder
}

func clDialPOP3(t *testing.T, in *instance, listener, who string) *clPOP3 {
	t.Helper()
	raw, err := net.Dial("tcp", in.ports[listener])
	if err != nil {
		t.Fatal(err)
	}
	c := &clPOP3{t: t, who: who, raw: raw, conn: raw}
	if listener == "pop3s" {
		tc := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
		if err := tc.Handshake(); err != nil {
			t.Fatalf("%s: TLS: %v", who, err)
		}
		c.conn = tc
	}
	c.r = bufio.NewReader(c.conn)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s conversation:\n%s", who, c.log.String())
		}
		raw.Close()
	})
	if g := c.line(); !strings.HasPrefix(g, "+OK") {
		t.Fatalf("%s: greeting %q", who, g)
	}
	return c
}

func (c *clPOP3) line() string {
	c.t.Helper()
	c.raw.SetReadDeadline(time.Now().Add(clTimeout))
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("%s: read: %v (after %q)", c.who, err, l)
	}
	if !strings.HasSuffix(l, "\r\n") {
		c.t.Fatalf("%s: line without CRLF: %q", c.who, l)
	}
	l = strings.TrimSuffix(l, "\r\n")
	if len(l) < 200 {
		c.log.WriteString("S: " + l + "\n")
	}
	return l
}

func (c *clPOP3) send(line string) {
	c.t.Helper()
	if strings.HasPrefix(line, "PASS ") {
		c.log.WriteString("C: PASS ...\n")
	} else {
		c.log.WriteString("C: " + line + "\n")
	}
	if _, err := io.WriteString(c.conn, line+"\r\n"); err != nil {
		c.t.Fatalf("%s: write: %v", c.who, err)
	}
}

// cmd sends a command and returns its status line.
func (c *clPOP3) cmd(line string) string {
	c.t.Helper()
	c.send(line)
	return c.line()
}

// ok sends a command that must succeed.
func (c *clPOP3) ok(line string) string {
	c.t.Helper()
	s := c.cmd(line)
	if !strings.HasPrefix(s, "+OK") {
		c.t.Fatalf("%s: %s: %q", c.who, line, s)
	}
	return s
}

// multi sends a command with a multi-line answer that must succeed and
// returns its data, dot-stuffing undone, each line with its CRLF.
func (c *clPOP3) multi(line string) []string {
	c.t.Helper()
	c.ok(line)
	return c.data()
}

// data reads the lines of a multi-line answer after its status line.
func (c *clPOP3) data() []string {
	c.t.Helper()
	var out []string
	for {
		l := c.line()
		if l == "." {
			return out
		}
		out = append(out, strings.TrimPrefix(l, ".")+"\r\n")
	}
}

func (c *clPOP3) stls() {
	c.t.Helper()
	c.ok("STLS")
	tc := tls.Client(c.raw, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("%s: STLS handshake: %v", c.who, err)
	}
	c.conn, c.r = tc, bufio.NewReader(tc)
}

// numbered parses "n value" lines (LIST, UIDL).
func (c *clPOP3) numbered(lines []string) map[int]string {
	c.t.Helper()
	m := map[int]string{}
	for _, l := range lines {
		f := strings.Fields(l)
		n, err := strconv.Atoi(f[0])
		if len(f) != 2 || err != nil {
			c.t.Fatalf("%s: bad listing line %q", c.who, l)
		}
		m[n] = f[1]
	}
	return m
}

// capa reads CAPA into a set of the first words, with the full lines.
func (c *clPOP3) capa() map[string]string {
	c.t.Helper()
	m := map[string]string{}
	for _, l := range c.multi("CAPA") {
		l = strings.TrimSuffix(l, "\r\n")
		name, _, _ := strings.Cut(l, " ")
		m[strings.ToUpper(name)] = l
	}
	return m
}

// TestThunderbirdPOP3 replays Thunderbird's POP3 client (Pop3Client.sys.mjs)
// with "leave messages on server" and "delete after N days": CAPA, STLS,
// CAPA again, AUTH PLAIN with the credentials after "+", STAT, LIST, UIDL,
// RETR of the UIDLs it has not seen, TOP n 20 for a message over its size
// limit, QUIT; on later checks only the new UIDLs are fetched, and DELE
// removes what it fetched long enough ago.
func TestThunderbirdPOP3(t *testing.T) {
	t.Parallel()
	const user = "pat@example.org"
	in := clServer(t, user)
	msgs := []string{clPlainMsg, clIntlMsg, clMixedMsg}
	clDeliver(t, in, user, msgs...)

	type seen struct {
		uidl string
		at   int // check number when fetched
	}
	var state []seen // Thunderbird's popstate.dat
	known := func(u string) bool {
		return slices.ContainsFunc(state, func(s seen) bool { return s.uidl == u })
	}
	const maxSize = 100 << 10 // mail.server.*.max_size: larger ones get TOP
	check := func(round, deleteBefore int) (uidls map[int]string, fetched []string) {
		t.Helper()
		tb := clDialPOP3(t, in, "pop3", fmt.Sprintf("Thunderbird POP3 (check %d)", round))
		caps := tb.capa()
		for _, c := range []string{"STLS", "UIDL", "TOP", "SASL"} {
			if _, ok := caps[c]; !ok {
				t.Errorf("CAPA before STLS lacks %s: %v", c, caps)
			}
		}
		tb.stls()
		caps = tb.capa()
		if _, ok := caps["STLS"]; ok {
			t.Errorf("CAPA after STLS still offers STLS")
		}
		if !slices.Contains(strings.Fields(caps["SASL"]), "PLAIN") {
			t.Errorf("CAPA after STLS: SASL %q lacks PLAIN", caps["SASL"])
		}
		if s := tb.cmd("AUTH PLAIN"); !strings.HasPrefix(s, "+") {
			t.Fatalf("AUTH PLAIN: %q, want a continuation", s)
		}
		if s := tb.cmd(clPlainIR(user)); !strings.HasPrefix(s, "+OK") {
			t.Fatalf("AUTH PLAIN credentials: %q", s)
		}
		// Thunderbird reads the count with parseInt of what follows +OK.
		stat := strings.Fields(tb.ok("STAT"))
		count, err := strconv.Atoi(stat[1])
		if err != nil || len(stat) < 3 {
			t.Fatalf("STAT: %q", stat)
		}
		sizes := tb.numbered(tb.multi("LIST"))
		uidls = tb.numbered(tb.multi("UIDL"))
		if len(sizes) != count || len(uidls) != count {
			t.Fatalf("STAT %d, LIST %v, UIDL %v", count, sizes, uidls)
		}
		for n := 1; n <= count; n++ {
			u := uidls[n]
			idx := slices.IndexFunc(state, func(s seen) bool { return s.uidl == u })
			switch {
			case idx >= 0 && state[idx].at < deleteBefore:
				tb.ok(fmt.Sprintf("DELE %d", n))
				state = slices.Delete(state, idx, idx+1)
			case idx >= 0:
			default:
				size, _ := strconv.Atoi(sizes[n])
				if size > maxSize {
					// Headers and the first 20 lines only.
					top := strings.Join(tb.multi(fmt.Sprintf("TOP %d 20", n)), "")
					if !strings.HasPrefix(top, clHeader(clMixedMsg)) || strings.Count(top, "\r\n") != strings.Count(clHeader(clMixedMsg), "\r\n")+20 {
						t.Errorf("TOP %d 20: %d lines, want the header and 20 lines", n, strings.Count(top, "\r\n"))
					}
				} else {
					body := strings.Join(tb.multi(fmt.Sprintf("RETR %d", n)), "")
					if strconv.Itoa(len(body)) != sizes[n] {
						t.Errorf("RETR %d: %d octets, LIST said %s", n, len(body), sizes[n])
					}
					if !slices.Contains(msgs, body) && body != clLongMsg {
						t.Errorf("RETR %d: not a message delivered: %q", n, body)
					}
				}
				state = append(state, seen{u, round})
				fetched = append(fetched, u)
			}
		}
		if bye := tb.ok("QUIT"); !strings.HasPrefix(bye, "+OK") {
			t.Errorf("QUIT: %q", bye)
		}
		return uidls, fetched
	}

	first, fetched := check(1, 0)
	if len(fetched) != 3 {
		t.Fatalf("first check fetched %v", fetched)
	}
	clDeliver(t, in, user, clLongMsg)
	second, fetched := check(2, 0)
	if len(fetched) != 1 || fetched[0] != second[4] {
		t.Errorf("second check fetched %v, want only the new message's UIDL %s", fetched, second[4])
	}
	for n, u := range first {
		if second[n] != u {
			t.Errorf("UIDL of message %d changed from %s to %s", n, u, second[n])
		}
	}
	// "Delete after N days": everything from the first check is old now.
	third, fetched := check(3, 2)
	if len(fetched) != 0 || len(third) != 4 {
		t.Errorf("third check: fetched %v of %v", fetched, third)
	}
	last, fetched := check(4, 0)
	if len(fetched) != 0 || len(last) != 1 || last[1] != second[4] {
		t.Errorf("after deleting the old ones: %v (fetched %v), want only %s", last, fetched, second[4])
	}
	if !known(second[4]) {
		t.Errorf("state lost the new message")
	}
}

// TestOutlookPOP3 replays Outlook on POP3 over SSL (port 995) without
// "leave a copy on the server": CAPA, USER and PASS, STAT, UIDL, then RETR
// and DELE for each message, and QUIT, which removes them.
func TestOutlookPOP3(t *testing.T) {
	t.Parallel()
	const user = "quinn@example.org"
	in := clServer(t, user)
	msgs := []string{clPlainMsg, clIntlMsg}
	clDeliver(t, in, user, msgs...)

	ol := clDialPOP3(t, in, "pop3s", "Outlook POP3")
	if caps := ol.capa(); caps["USER"] == "" {
		t.Errorf("CAPA over SSL lacks USER: %v", caps)
	}
	ol.ok("USER " + user)
	ol.ok("PASS " + clPass)
	if stat := ol.ok("STAT"); !strings.HasPrefix(stat, fmt.Sprintf("+OK 2 %d", len(msgs[0])+len(msgs[1]))) {
		t.Errorf("STAT: %q", stat)
	}
	uidls := ol.numbered(ol.multi("UIDL"))
	for n := 1; n <= 2; n++ {
		if body := strings.Join(ol.multi(fmt.Sprintf("RETR %d", n)), ""); body != msgs[n-1] {
			t.Errorf("RETR %d: %q", n, body)
		}
		ol.ok(fmt.Sprintf("DELE %d", n))
	}
	if s := ol.cmd("RETR 1"); !strings.HasPrefix(s, "-ERR") {
		t.Errorf("RETR of a message marked deleted: %q", s)
	}
	ol.ok("QUIT")

	again := clDialPOP3(t, in, "pop3s", "Outlook POP3 (next check)")
	again.ok("USER " + user)
	again.ok("PASS " + clPass)
	if stat := again.ok("STAT"); stat != "+OK 0 0" {
		t.Errorf("STAT after DELE and QUIT: %q", stat)
	}
	if left := again.multi("UIDL"); len(left) != 0 {
		t.Errorf("UIDL after DELE and QUIT: %q (was %v)", left, uidls)
	}
	again.ok("QUIT")
}

// TestAppleMailPOP3 replays Mail on the Mac with a POP account: AUTH PLAIN
// with an initial response, STAT, UIDL, TOP n 0 to read the headers of
// the new messages, RETR for the body, leaving them on the server.
func TestAppleMailPOP3(t *testing.T) {
	t.Parallel()
	const user = "ria@example.org"
	in := clServer(t, user)
	msgs := []string{clPlainMsg, clAppleMsg, clIntlMsg}
	clDeliver(t, in, user, msgs...)

	mac := clDialPOP3(t, in, "pop3s", "Mac Mail POP3")
	mac.capa()
	mac.ok("AUTH PLAIN " + clPlainIR(user))
	mac.ok("STAT")
	uidls := mac.numbered(mac.multi("UIDL"))
	if len(uidls) != 3 {
		t.Fatalf("UIDL: %v", uidls)
	}
	for n := 1; n <= 3; n++ {
		// One UIDL at a time too.
		if one := mac.ok(fmt.Sprintf("UIDL %d", n)); one != fmt.Sprintf("+OK %d %s", n, uidls[n]) {
			t.Errorf("UIDL %d: %q, want the listing's %s", n, one, uidls[n])
		}
		head := strings.Join(mac.multi(fmt.Sprintf("TOP %d 0", n)), "")
		if head != clHeader(msgs[n-1]) {
			t.Errorf("TOP %d 0: %q, want the header and the empty line", n, head)
		}
		body := strings.Join(mac.multi(fmt.Sprintf("RETR %d", n)), "")
		if body != msgs[n-1] {
			t.Errorf("RETR %d differs from the message delivered", n)
		}
	}
	mac.ok("QUIT")
}

// TestPoplibLeaveOnServer runs Python's poplib as a client that leaves mail
// on the server, over STLS, SSL and plain connections: counts, sizes and
// UIDLs agree, downloads are exact, and UIDLs stay the same across
// sessions while IMAP clients change flags and mailboxes.
func TestPoplibLeaveOnServer(t *testing.T) {
	t.Parallel()
	const user = "sam@example.org"
	in := clServer(t, user)
	msgs := []string{clPlainMsg, clIntlMsg, clLongMsg}
	clDeliver(t, in, user, msgs...)
	state := filepath.Join(t.TempDir(), "state.json")
	type result struct {
		Stat     []int64  `json:"stat"`
		Capa     []string `json:"capa"`
		Messages []struct {
			Num  int    `json:"num"`
			UIDL string `json:"uidl"`
			Size int    `json:"size"`
			Retr *struct {
				Len    int    `json:"len"`
				SHA256 string `json:"sha256"`
			} `json:"retr"`
			Dele bool `json:"dele"`
		} `json:"messages"`
	}
	run := func(listener, mode string, days int) result {
		t.Helper()
		host, port := in.hostPort(listener)
		out := python(t, "", "clients/poplib_leave_on_server.py", host, port, user, clPass, state, mode, strconv.Itoa(days))
		var r result
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("poplib: %v\n%s", err, out)
		}
		return r
	}
	hash := func(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) }

	r := run("pop3", "stls", -1)
	if len(r.Messages) != 3 || !slices.Contains(r.Capa, "UIDL") {
		t.Fatalf("first run: %+v", r)
	}
	uidlOf := map[string]string{}
	for i, m := range r.Messages {
		if m.Retr == nil || m.Retr.SHA256 != hash(msgs[i]) || m.Size != len(msgs[i]) {
			t.Errorf("message %d: %+v, want %d exact bytes", m.Num, m, len(msgs[i]))
		}
		uidlOf[hash(msgs[i])] = m.UIDL
	}

	// An IMAP client reads, flags and files away one message meanwhile.
	im := clDial(t, in, "imaps", "IMAP client", "%d")
	im.ok("AUTHENTICATE PLAIN " + clPlainIR(user))
	im.ok("SELECT INBOX")
	im.ok(`UID STORE 3 +FLAGS (\Flagged \Answered)`)
	im.ok(`UID MOVE 2 Archive`)
	clDeliver(t, in, user, clAppleMsg)

	r = run("pop3s", "ssl", -1)
	if len(r.Messages) != 3 {
		t.Fatalf("second run: %+v", r)
	}
	// INBOX now holds the first and third messages and the new one.
	for _, m := range r.Messages {
		switch m.Num {
		case 1, 2:
			want := uidlOf[hash(map[int]string{1: msgs[0], 2: msgs[2]}[m.Num])]
			if m.UIDL != want || m.Retr != nil {
				t.Errorf("message %d: UIDL %s (fetched again: %v), want the unchanged %s", m.Num, m.UIDL, m.Retr != nil, want)
			}
		case 3:
			if m.Retr == nil || m.Retr.SHA256 != hash(clAppleMsg) {
				t.Errorf("the new message: %+v", m)
			}
		}
	}

	// Delete what was downloaded more than 0 days ago, i.e. all of it.
	r = run("pop3", "plain", 0)
	deleted := 0
	for _, m := range r.Messages {
		if m.Dele {
			deleted++
		}
	}
	if deleted != 3 {
		t.Errorf("delete after 0 days: %+v", r)
	}
	if r = run("pop3", "plain", -1); len(r.Messages) != 0 || r.Stat[0] != 0 {
		t.Errorf("after deleting: %+v", r)
	}
	// IMAP sees the same: INBOX empty, the moved message in Archive.
	// The session knew two of the three messages POP3 deleted.
	if res := im.ok("NOOP"); !slices.Equal(res.untagged, []string{"* 1 EXPUNGE", "* 1 EXPUNGE"}) {
		t.Errorf("IMAP NOOP after POP3 deleted three messages: %q", res.untagged)
	}
	if left := clSearch(t, im.ok("UID SEARCH ALL").untagged); len(left) != 0 {
		t.Errorf("INBOX after POP3 deleted everything: %v", left)
	}
	st := clStatus(t, im.ok("STATUS Archive (MESSAGES)").untagged)
	if st["Archive"]["MESSAGES"] != 1 {
		t.Errorf("Archive: %v", st)
	}
}

// TestPOP3StaleSessionSetting: pop3.stale_session reaches the server:
// with a millisecond, a second login takes the maildrop from a session
// whose client went silent, and that session's DELE is not applied. (That
// 0 turns the takeover off is TestNoTakeOver's, in pop3server.)
func TestPOP3StaleSessionSetting(t *testing.T) {
	t.Parallel()
	const user = "roaming@example.org"
	cfg := filepath.Join(t.TempDir(), "buzon.toml")
	if err := os.WriteFile(cfg, []byte("[pop3]\nstale_session = \"1ms\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	in := clServer(t, user, "--config", cfg)
	clDeliver(t, in, user, clPlainMsg)
	phone := clDialPOP3(t, in, "pop3", "phone that lost its signal")
	phone.ok("USER " + user)
	phone.ok("PASS " + clPass)
	phone.ok("DELE 1")
	time.Sleep(10 * time.Millisecond) // the phone stays silent past the setting

	again := clDialPOP3(t, in, "pop3", "the phone again")
	again.ok("USER " + user)
	if reply := again.cmd("PASS " + clPass); !strings.HasPrefix(reply, "+OK") {
		t.Fatalf("login after the first session went silent: %q, want +OK", reply)
	}
	if stat := again.ok("STAT"); !strings.HasPrefix(stat, "+OK 1 ") {
		t.Errorf("STAT after the takeover: %q, want the message the first session marked deleted", stat)
	}
}
