package smtpserver

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/clienttest"
)

// startDovecotSubmission starts the reference Dovecot with its submission
// service on, relaying to relay in the clear, and returns the
// submission listener's address; it skips where Dovecot or its
// submission package (dovecot-submissiond) is missing.
func startDovecotSubmission(t *testing.T, relay string) string {
	t.Helper()
	clienttest.CanRunDovecot(t)
	if _, err := os.Stat("/usr/lib/dovecot/submission"); err != nil {
		t.Skip("dovecot-submissiond not installed (scripts/deps.sh)")
	}
	d := clienttest.StartDovecot(t, "bzsubmit", 2)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	relayHost, relayPort, _ := net.SplitHostPort(relay)
	conf := filepath.Join(d.Dir, "dovecot.conf")
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	// The peer serves IMAP, POP3 and LMTP: submission is added to its
	// configuration, and the master told to read it again.
	text := strings.Replace(string(b), "\nprotocols = imap pop3 lmtp\n", "\nprotocols = imap pop3 lmtp submission\n", 1)
	text += fmt.Sprintf(`
hostname = mx.example.org
submission_relay_host = %s
submission_relay_port = %s
submission_relay_ssl = no
service submission-login {
  inet_listener submission {
    address = 127.0.0.1
    port = %s
  }
}
`, relayHost, relayPort, port)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("doveadm", "-c", conf, "reload").CombinedOutput(); err != nil {
		t.Fatalf("doveadm reload: %v\n%s", err, out)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("Dovecot's submission does not listen on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// smtpSession sends command lines one at a time and returns each reply,
// its lines joined by "|".
type smtpSession struct {
	c net.Conn
	r *bufio.Reader
}

func (s *smtpSession) reply(t *testing.T) string {
	t.Helper()
	s.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var lines []string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("read a reply: %v (so far %q)", err, lines)
		}
		line = strings.TrimRight(line, "\r\n")
		lines = append(lines, line)
		if len(line) < 4 || line[3] != '-' {
			return strings.Join(lines, "|")
		}
	}
}

func (s *smtpSession) cmd(t *testing.T, line string) string {
	t.Helper()
	if _, err := s.c.Write([]byte(line + "\r\n")); err != nil {
		t.Fatal(err)
	}
	return s.reply(t)
}

// TestSubmissionLikeDovecot plays one session against Dovecot 2.3's
// submission service and buzon's, both relaying to a fake relay that
// refuses one recipient: the codes and enhanced codes must agree, but
// where buzon holds senders to the account, which Dovecot leaves to the
// relay (Postfix's reject_sender_login_mismatch).
func TestSubmissionLikeDovecot(t *testing.T) {
	rules := relayRules{refuse: map[string]string{"nobody@example.net": "550 5.1.1 <nobody@example.net>: Recipient address rejected"}}
	f := newSubmissionFixture(t, rules)
	dovecot := startDovecotSubmission(t, f.relay.addr)
	plain := func(user, password string) string {
		return "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+password))
	}
	type step struct{ cmd, data string }
	script := func(user, password string) []step {
		return []step{
			{cmd: "EHLO client.example.net"},
			{cmd: "MAIL FROM:<alice@example.org>"},
			{cmd: plain(user, "wrong")},
			{cmd: plain(user, password)},
			{cmd: "MAIL FROM:<alice@example.org>"},
			{cmd: "RCPT TO:<nobody@example.net>"},
			{cmd: "RCPT TO:<bob@example.org>"},
			{cmd: "DATA"},
			{data: "From: alice@example.org\r\nSubject: hi\r\n\r\n.dot\r\n.\r\n"},
			{cmd: "MAIL FROM:<>"},
			{cmd: "RSET"},
			{cmd: "MAIL FROM:<ceo@example.com>"},
			{cmd: "RSET"},
			{cmd: "QUIT"},
		}
	}
	run := func(addr, user, password string) []string {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s := &smtpSession{c: c, r: bufio.NewReader(c)}
		replies := []string{s.reply(t)}
		for _, st := range script(user, password) {
			if st.data != "" {
				c.Write([]byte(st.data))
				replies = append(replies, s.reply(t))
				continue
			}
			replies = append(replies, s.cmd(t, st.cmd))
		}
		return replies
	}
	theirs := run(dovecot, "user1", "pass")
	ours := run(f.addr, "alice@example.org", submissionPassword)
	t.Logf("Dovecot %q\nbuzon %q", theirs, ours)
	// Where the two differ by design: buzon refuses the null sender and
	// a stranger's address; Dovecot relays them.
	differ := map[int]string{10: "553 5.7.1", 12: "553 5.7.1"}
	for i := range theirs {
		code := func(r string) string {
			first, _, _ := strings.Cut(r, "|")
			code, rest, _ := strings.Cut(first, " ")
			if enh, _, ok := strings.Cut(rest, " "); ok && strings.Count(enh, ".") == 2 && strings.Trim(enh, "0123456789.") == "" {
				return code + " " + enh
			}
			return code
		}
		want := code(theirs[i])
		if d, ok := differ[i]; ok {
			want = d
		}
		if got := code(ours[i]); got != want {
			t.Errorf("reply %d: buzon %q, Dovecot %q", i, ours[i], theirs[i])
		}
	}
	// EHLO: what Dovecot offers, buzon offers too, but BURL (RFC 4468),
	// which no common client uses.
	ehlo := func(r string) []string {
		var ext []string
		for _, line := range strings.Split(r, "|")[1:] {
			word, _, _ := strings.Cut(line[4:], " ")
			ext = append(ext, word)
		}
		return ext
	}
	for _, ext := range ehlo(theirs[1]) {
		if ext != "BURL" && !slices.Contains(ehlo(ours[1]), ext) {
			t.Errorf("Dovecot offers %s, buzon does not: %q", ext, ours[1])
		}
	}
	// The relay took the message from each, to bob alone.
	txs := f.relay.transactions()
	if len(txs) < 2 || strings.Join(txs[0].rcpts, " ") != "bob@example.org" || strings.Join(txs[1].rcpts, " ") != "bob@example.org" {
		t.Errorf("relay took %+v", txs)
	}
}
