package smtpserver

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

// TestDataCRCRLF: a line ending in CR CR LF is a line (go-smtp v0.25.1
// took the line after it for the middle of one): the dot line after it
// ends the data, and a stuffed dot after it is removed. The server
// answers, stores the message, and reads the next command as one. How
// the CR CR LF itself is stored is package message's business.
func TestDataCRCRLF(t *testing.T) {
	f := newFixture(t, 0)
	for _, tt := range []struct {
		data string // sent after 354
		end  string // how the stored message must end
	}{
		{"Subject: x\r\n\r\nline\r\r\n.\r\n", "line"},
		{"Subject: x\r\n\r\nline\r\r\n..x\r\n.\r\n", "\n.x\r\n"},
		{"Subject: x\r\n\r\nline\r\r\r\n..x\r\n.\r\r\n", "\n.x\r\n"},
	} {
		l := dialLMTP(t, f.addr)
		for _, line := range []string{"LHLO test", "MAIL FROM:<carol@example.net>", "RCPT TO:<alice@example.org>"} {
			if r := l.cmd(line); !strings.HasPrefix(r, "250 ") {
				t.Fatalf("%s: %q", line, r)
			}
		}
		if r := l.cmd("DATA"); !strings.HasPrefix(r, "354 ") {
			t.Fatalf("DATA: %q", r)
		}
		l.send(tt.data + "NOOP\r\n")
		if r := l.reply(); !strings.HasPrefix(r, "250 2.0.0 <alice@example.org> ") {
			t.Fatalf("data %q: %q", tt.data, r)
		}
		if r := l.reply(); !strings.Contains(r, "nothing") {
			t.Fatalf("data %q, then NOOP: %q", tt.data, r)
		}
		got := f.inbox(t, "alice@example.org")
		if m := got[len(got)-1]; !strings.HasPrefix(m, "Subject: x\r\n\r\nline") || !strings.HasSuffix(strings.TrimRight(m, "\r\n"), strings.TrimRight(tt.end, "\r\n")) || strings.Contains(m, "..x") {
			t.Errorf("data %q stored as %q", tt.data, m)
		}
	}
}

// TestPostmaster: RCPT TO:<postmaster>, without a domain, must be taken
// (RFC 5321 4.5.1); it reaches postmaster@ the server's host name, as
// the first account buzon creates is named.
func TestPostmaster(t *testing.T) {
	f := newFixture(t, 0)
	pm, err := f.st.CreateAccount(context.Background(), "postmaster@mx.example.org", store.Credentials{PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	f.ids[pm.Name] = pm.ID
	l := dialLMTP(t, f.addr)
	l.cmd("LHLO test")
	rcptReplies, dataReplies := l.transaction("carol@example.net", []string{"postmaster", "Postmaster"}, testMessage)
	for i, r := range append(rcptReplies, dataReplies...) {
		if !strings.HasPrefix(r, "250 ") {
			t.Errorf("reply %d: %q", i+1, r)
		}
	}
	if len(dataReplies) != 2 || !strings.Contains(dataReplies[1], "<Postmaster>") {
		t.Errorf("replies after DATA: %q", dataReplies)
	}
	if got := f.inbox(t, pm.Name); len(got) != 1 {
		t.Errorf("postmaster's INBOX holds %d messages, want 1", len(got))
	}
}

// TestSizeParameter: SIZE= takes up to 20 digits (RFC 1870 6); a value
// past 4 GiB over the limit is 552 5.3.4 (go-smtp said 501), and with no
// limit it is taken.
func TestSizeParameter(t *testing.T) {
	for _, tt := range []struct {
		limit int64
		want  string
	}{{1000, "552 5.3.4 "}, {0, "250 "}} {
		f := newFixture(t, tt.limit)
		l := dialLMTP(t, f.addr)
		l.cmd("LHLO test")
		for _, size := range []string{"5000000000", "99999999999999999999"} {
			if r := l.cmd("MAIL FROM:<carol@example.net> SIZE=" + size); !strings.HasPrefix(r, tt.want) {
				t.Errorf("limit %d, SIZE=%s: %q, want %q", tt.limit, size, r, tt.want)
			}
			l.cmd("RSET")
		}
	}
}

// TestQuotedReturnPath: a quoted local part keeps its quotes in
// Return-Path (go-smtp unquoted it, which made the field invalid), and a
// quoted recipient is looked up by its unquoted form.
func TestQuotedReturnPath(t *testing.T) {
	f := newFixture(t, 0, func(c *Config) { c.ReturnPath = true })
	replies := lmtpSession(t, f.addr, []string{"LHLO test", `MAIL FROM:<"a b"@example.org>`, `RCPT TO:<"alice"@example.org>`, "RCPT TO:<@relay.example:bob@example.org>"}, testMessage)
	if len(replies) != 2 || !strings.HasPrefix(replies[0], `250 2.0.0 <"alice"@example.org> `) || !strings.HasPrefix(replies[1], "250 ") {
		t.Fatalf("replies: %q", replies)
	}
	want := `Return-Path: <"a b"@example.org>` + "\r\n" + testMessage
	for _, name := range []string{"alice@example.org", "bob@example.org"} {
		if got := f.inbox(t, name); len(got) != 1 || got[0] != want {
			t.Errorf("%s's INBOX: %q, want %q", name, got, want)
		}
	}
}

// TestQuotedLookalikes: a quoted local part is an address of its own,
// taken as written: quoting in angle brackets or spaces does not make it
// alice's.
func TestQuotedLookalikes(t *testing.T) {
	f := newFixture(t, 0)
	l := dialLMTP(t, f.addr)
	l.cmd("LHLO test")
	l.cmd("MAIL FROM:<carol@example.net>")
	for _, rcpt := range []string{`"<alice"@example.org`, `" alice"@example.org`, `"alice "@example.org`, `"alice>"@example.org`, `" alice+x"@example.org`} {
		if r := l.cmd("RCPT TO:<" + rcpt + ">"); !strings.HasPrefix(r, "550 5.1.1 ") {
			t.Errorf("RCPT TO:<%s>: %q, want 550 5.1.1", rcpt, r)
		}
	}
	if r := l.cmd(`RCPT TO:<"ALICE"@Example.org>`); !strings.HasPrefix(r, "250 ") {
		t.Errorf(`RCPT TO:<"ALICE"@Example.org>: %q, want 250`, r)
	}
}

// TestCommandReplies checks the replies of the commands around a
// transaction.
func TestCommandReplies(t *testing.T) {
	f := newFixture(t, 0)
	l := dialLMTP(t, f.addr)
	for _, tt := range []struct{ cmd, want string }{
		{"HELO test", "500 5.5.1 "}, // RFC 2033 4.1
		{"EHLO test", "500 5.5.1 "},
		{"LHLO", "501 5.5.4 "},
		{"LHLO test", "250 "},
		{"FOO", "500 5.5.2 "},
		{"", "500 5.5.2 "},
		{"NOOP " + strings.Repeat("x", 70000), "500 5.5.2 "},
		{"VRFY alice@example.org", "252 2.5.0 "},
		{"HELP", "214 2.0.0 "},
		{"MAIL FROM:<carol@example.net> RET=HDRS", "555 5.5.4 "},
		{"MAIL FROM:<carol@example.net> BODY=8BITMIME SMTPUTF8", "250 2.1.0 "},
		{"RCPT TO:<alice@example.org> NOTIFY=NEVER", "555 5.5.4 "},
		{"RCPT TO:<bob>", "501 5.1.3 "},
		{"RCPT TO:<alice@example.org>", "250 2.1.5 "},
		{"DATA now", "501 5.5.4 "},
		{"BDAT x", "501 5.5.4 "}, // where the chunk ends cannot be known: closed
	} {
		if r := l.cmd(tt.cmd); !strings.HasPrefix(r, tt.want) {
			t.Errorf("%.40q: %q, want %q", tt.cmd, r, tt.want)
		}
	}
	l.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if line, err := l.r.ReadString('\n'); err == nil {
		t.Errorf("after a BDAT without a size the session goes on: %q", line)
	}

	l = dialLMTP(t, f.addr)
	if r := l.cmd("QUIT"); !strings.HasPrefix(r, "221 2.0.0 ") {
		t.Errorf("QUIT: %q", r)
	}
}

// TestLHLO: the extensions offered, in one reply.
func TestLHLO(t *testing.T) {
	f := newFixture(t, 1000, func(c *Config) { c.MaxRecipients = 7 })
	l := dialLMTP(t, f.addr)
	l.send("LHLO client.example.net\r\n")
	var got []string
	for {
		line, err := l.r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.TrimRight(line, "\r\n"))
		if line[3] == ' ' {
			break
		}
	}
	want := []string{"250-mx.example.org", "250-PIPELINING", "250-ENHANCEDSTATUSCODES", "250-8BITMIME", "250-SIZE 1000", "250-CHUNKING", "250-SMTPUTF8", "250 LIMITS RCPTMAX=7"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("LHLO: %q, want %q", got, want)
	}
}

// TestIdleTimeout: a client silent past the read timeout between
// commands hears 421 4.4.2 and is disconnected.
func TestIdleTimeout(t *testing.T) {
	f := newFixture(t, 0, func(c *Config) { c.ReadTimeout = 100 * time.Millisecond })
	l := dialLMTP(t, f.addr)
	if r := l.reply(); !strings.HasPrefix(r, "421 4.4.2 ") {
		t.Errorf("after the read timeout: %q", r)
	}
}

// TestCommandLineFlood: a command line far past the limit (16 times it,
// at least 1 MiB) is answered 500 and the session ends, rather than read
// for as long as the client sends it.
func TestCommandLineFlood(t *testing.T) {
	f := newFixture(t, 0, func(c *Config) { c.MaxLineLength = 1024 })
	l := dialLMTP(t, f.addr)
	go l.c.Write([]byte("NOOP " + strings.Repeat("x", 2<<20))) // fails once the server is gone
	if r := l.reply(); !strings.HasPrefix(r, "500 5.5.2 ") {
		t.Errorf("a 2 MiB command line: %q", r)
	}
	l.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if line, err := l.r.ReadString('\n'); err == nil {
		t.Errorf("the session goes on after a 2 MiB command line: %q", line)
	}
}
