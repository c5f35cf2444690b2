package smtpserver

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// exchange is one step of a transcript: a command line (none when empty),
// the bytes that follow it (message data), and the start of each reply
// the client must get back, in order.
type exchange struct {
	cmd   string
	data  string
	wants []string
}

// sized returns a message of exactly n octets as sent (CRLF lines, none
// starting with a dot), for n of 40 or more.
func sized(n int) string {
	var b strings.Builder
	b.WriteString("Subject: sized\r\n\r\n")
	for n-b.Len() > 0 {
		line := min(n-b.Len(), 80)
		if rest := n - b.Len() - line; rest > 0 && rest < 3 {
			line -= 3 // leave room for a last line of one x and CRLF
		}
		b.WriteString(strings.Repeat("x", line-2) + "\r\n")
	}
	return b.String()
}

// TestLMTPTranscripts drives LMTP exchanges byte for byte and checks every
// reply: the size limit at its edge over DATA, BDAT and SIZE= (RFC 1870),
// one reply per recipient after the last of the data however it came
// (RFC 2033 4.2), and 503 for commands out of sequence (RFC 5321 4.1.4).
// After each transcript a NOOP must get its own reply, so a transcript
// that leaves a reply unread, or data read as commands, fails.
func TestLMTPTranscripts(t *testing.T) {
	const limit = 1000
	exact, over := sized(limit), sized(limit+1)
	if len(exact) != limit || len(over) != limit+1 {
		t.Fatalf("sized: %d and %d octets", len(exact), len(over))
	}
	// Exactly the limit as sent, in bare LF lines but the last (a dot
	// line ends the data only after CRLF): stored with CRLF, it is larger.
	exactLF := "Subject: sized\n\n" + strings.Repeat("x\n", 490) + "xx\r\n"
	if len(exactLF) != limit {
		t.Fatalf("exactLF: %d octets", len(exactLF))
	}
	hello := exchange{cmd: "LHLO client.example.net", wants: []string{"250 "}}
	mail := exchange{cmd: "MAIL FROM:<carol@example.net>", wants: []string{"250 "}}
	rcpt := func(addr string) exchange {
		return exchange{cmd: "RCPT TO:<" + addr + ">", wants: []string{"250 "}}
	}
	data := exchange{cmd: "DATA", wants: []string{"354 "}}
	end := func(msg string, wants ...string) exchange {
		return exchange{data: msg + ".\r\n", wants: wants}
	}
	bdat := func(msg, last string, wants ...string) exchange {
		return exchange{cmd: strings.TrimSpace(fmt.Sprintf("BDAT %d %s", len(msg), last)), data: msg, wants: wants}
	}
	badSequence := "503 5.5.1 "
	tooLarge := "552 5.3.4 "
	for _, tt := range []struct {
		name       string
		returnPath bool
		steps      []exchange
		// stored is how many messages alice and bob have at the end.
		stored [2]int
		// from is the sender Return-Path names in alice's messages.
		from string
	}{
		{
			name:   "DATA of exactly the limit",
			steps:  []exchange{hello, mail, rcpt("alice@example.org"), data, end(exact, "250 ")},
			stored: [2]int{1, 0},
		},
		{
			name:       "DATA of exactly the limit, with a Return-Path added",
			returnPath: true,
			steps:      []exchange{hello, mail, rcpt("alice@example.org"), data, end(exact, "250 ")},
			stored:     [2]int{1, 0},
			from:       "carol@example.net",
		},
		{
			// RFC 1870 5: the limit is on what the client sends, not on
			// the message once its line endings are made CRLF.
			name:   "DATA and BDAT of exactly the limit in bare LF lines",
			steps:  []exchange{hello, mail, rcpt("alice@example.org"), data, end(exactLF, "250 "), mail, rcpt("alice@example.org"), bdat(exactLF, "LAST", "250 ")},
			stored: [2]int{2, 0},
		},
		{
			name:  "DATA one octet over the limit",
			steps: []exchange{hello, mail, rcpt("alice@example.org"), rcpt("bob@example.org"), data, end(over, tooLarge, tooLarge)},
		},
		{
			name:   "BDAT LAST of exactly the limit",
			steps:  []exchange{hello, mail, rcpt("alice@example.org"), rcpt("bob@example.org"), bdat(exact, "LAST", "250 ", "250 ")},
			stored: [2]int{1, 1},
		},
		{
			// RFC 2033 4.2: a reply per recipient after the last of the
			// data, refused or not; one 552 would leave the client
			// waiting for bob's.
			name:  "one BDAT LAST one octet over the limit",
			steps: []exchange{hello, mail, rcpt("alice@example.org"), rcpt("bob@example.org"), bdat(over, "LAST", tooLarge, tooLarge)},
		},
		{
			name: "BDAT chunks that pass the limit",
			steps: []exchange{hello, mail, rcpt("alice@example.org"), rcpt("bob@example.org"),
				bdat(over[:600], "", "250 "), bdat(over[600:], "LAST", tooLarge, tooLarge)},
		},
		{
			name: "SIZE= at the limit and over it",
			steps: []exchange{hello,
				{cmd: fmt.Sprintf("MAIL FROM:<carol@example.net> SIZE=%d", limit), wants: []string{"250 "}},
				{cmd: "RSET", wants: []string{"250 "}},
				{cmd: fmt.Sprintf("MAIL FROM:<carol@example.net> SIZE=%d", limit+1), wants: []string{tooLarge}},
				// Refused, the MAIL began no transaction.
				{cmd: "RCPT TO:<alice@example.org>", wants: []string{badSequence}},
				{cmd: fmt.Sprintf("MAIL FROM:<carol@example.net> SIZE=%d", limit), wants: []string{"250 "}},
				rcpt("alice@example.org"), data, end(exact, "250 ")},
			stored: [2]int{1, 0},
		},
		{
			name: "commands out of sequence",
			steps: []exchange{
				{cmd: "MAIL FROM:<carol@example.net>", wants: []string{badSequence}},
				hello,
				{cmd: "RCPT TO:<alice@example.org>", wants: []string{badSequence}},
				{cmd: "DATA", wants: []string{badSequence}},
				// The chunk follows its command all the same.
				{cmd: "BDAT 5 LAST", data: "RSET\n", wants: []string{badSequence}},
				mail,
				{cmd: "DATA", wants: []string{badSequence}},
			},
		},
		{
			// RFC 2033 4.2: no successful RCPT, DATA MUST fail with 503.
			name: "DATA after every recipient was refused",
			steps: []exchange{hello, mail,
				{cmd: "RCPT TO:<nobody@example.org>", wants: []string{"550 5.1.1 "}},
				{cmd: "DATA", wants: []string{badSequence}}},
		},
		{
			// RFC 5321 4.1.4: MAIL inside a transaction is out of
			// sequence; the transaction goes on as it was.
			name:       "nested MAIL",
			returnPath: true,
			steps: []exchange{hello, mail, rcpt("alice@example.org"),
				{cmd: "MAIL FROM:<dave@example.net>", wants: []string{badSequence}},
				rcpt("bob@example.org"), data, end(exact, "250 ", "250 ")},
			stored: [2]int{1, 1},
			from:   "carol@example.net",
		},
		{
			// RFC 3030 2: DATA within a BDAT transaction is 503.
			name: "commands between BDAT chunks",
			steps: []exchange{hello, mail, rcpt("alice@example.org"), bdat(exact[:500], "", "250 "),
				{cmd: "MAIL FROM:<dave@example.net>", wants: []string{badSequence}},
				{cmd: "RCPT TO:<bob@example.org>", wants: []string{badSequence}},
				{cmd: "DATA", wants: []string{badSequence}},
				bdat(exact[500:], "LAST", "250 ")},
			stored: [2]int{1, 0},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, limit, func(c *Config) { c.ReturnPath = tt.returnPath })
			l := dialLMTP(t, f.addr)
			for i, st := range tt.steps {
				if st.cmd != "" {
					l.send(st.cmd + "\r\n")
				}
				l.send(st.data)
				for j, want := range st.wants {
					if got := l.reply(); !strings.HasPrefix(got, want) {
						t.Fatalf("step %d (%q), reply %d: %q, want %q", i+1, st.cmd, j+1, got, want)
					}
				}
			}
			if got := l.cmd("NOOP"); !strings.Contains(got, "nothing") {
				t.Fatalf("reply to a NOOP after the transcript: %q", got)
			}
			for i, name := range []string{"alice@example.org", "bob@example.org"} {
				if got := f.inbox(t, name); len(got) != tt.stored[i] {
					t.Errorf("%s has %d messages, want %d", name, len(got), tt.stored[i])
				}
			}
			if tt.from != "" {
				want := "Return-Path: <" + tt.from + ">\r\n"
				for _, m := range f.inbox(t, "alice@example.org") {
					if !strings.HasPrefix(m, want) {
						t.Errorf("alice's message starts %q, want %q", m[:min(len(m), 60)], want)
					}
				}
			}
		})
	}
}

// TestLMTPSizeAdvertised: LHLO names the limit that DATA, BDAT and SIZE=
// apply (RFC 1870 4), and SIZE alone when there is none.
func TestLMTPSizeAdvertised(t *testing.T) {
	for _, tt := range []struct {
		max  int64
		want string
	}{{1000, "250-SIZE 1000"}, {0, "250-SIZE"}} {
		f := newFixture(t, tt.max)
		l := dialLMTP(t, f.addr)
		l.send("LHLO client.example.net\r\n")
		var lines []string
		for {
			line, err := l.r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, strings.TrimRight(line, "\r\n"))
			if line[3] == ' ' {
				break
			}
		}
		if !slices.Contains(lines, tt.want) {
			t.Errorf("max %d: LHLO says %q, want a line %q", tt.max, lines, tt.want)
		}
	}
}
