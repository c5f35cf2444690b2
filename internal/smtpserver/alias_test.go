package smtpserver

import (
	"strings"
	"testing"
)

// TestAliasRecipients: recipients that reach one account, by its name,
// its aliases or <postmaster> (RFC 5321 4.5.1), get one copy; a +detail
// address, of the account or of an alias, another one. LMTP answers each
// RCPT after the data (RFC 2033 4.2); SMTP answers the message once.
func TestAliasRecipients(t *testing.T) {
	rcpts := []string{"info@example.org", "alice@example.org", "Postmaster@Example.ORG", "postmaster",
		"alice+news@example.org", "info+news@example.org", "info@example.org"}
	for _, smtp := range []bool{false, true} {
		name := "LMTP"
		if smtp {
			name = "SMTP"
		}
		t.Run(name, func(t *testing.T) {
			var f *fixture
			if smtp {
				f, _ = newSMTPFixture(t, 0)
			} else {
				f = newFixture(t, 0)
			}
			// <postmaster> is postmaster@ the server's host name.
			for _, alias := range []string{"info@example.org", "postmaster@example.org", "postmaster@mx.example.org"} {
				if err := f.st.AddAlias(t.Context(), alias, "alice@example.org"); err != nil {
					t.Fatal(err)
				}
			}
			l := dialLMTP(t, f.addr)
			greeting := "LHLO client.example.net"
			if smtp {
				greeting = "EHLO client.example.net"
			}
			if r := l.cmd(greeting); !strings.HasPrefix(r, "250") {
				t.Fatalf("%s: %q", greeting, r)
			}
			lines := []string{"MAIL FROM:<carol@example.net>"}
			for _, r := range rcpts {
				lines = append(lines, "RCPT TO:<"+r+">")
			}
			replies := lmtpSessionOn(l, lines, testMessage)
			want := len(rcpts)
			if smtp {
				want = 1
			}
			if len(replies) != want {
				t.Fatalf("replies after the data: %q, want %d", replies, want)
			}
			for i, r := range replies {
				if !strings.HasPrefix(r, "250 ") || !smtp && !strings.Contains(r, "<"+rcpts[i]+">") {
					t.Errorf("reply %d: %q, want 250 for %s", i+1, r, rcpts[i])
				}
			}
			if got := f.inbox(t, "alice@example.org"); len(got) != 2 {
				t.Errorf("alice's INBOX holds %d messages, want 2 (one for her addresses, one for +news)", len(got))
			}
		})
	}
}
