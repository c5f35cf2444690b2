package imapserver

import (
	"context"
	"io"
	"strings"
	"testing"
)

// TestAccountDeleted: an account deleted while its session runs (buzon
// user del) ends the session with BYE at its next command that reaches
// the store, not a NO [SERVERBUG] for each command it tries.
func TestAccountDeleted(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{
		"APPEND INBOX {20+}\r\nSubject: x\r\n\r\nbody\r\n",
		"STATUS INBOX (MESSAGES)",
		"CREATE Projects",
	} {
		t.Run(strings.Fields(cmd)[0], func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t)
			c := e.login()
			c.mustOK("SELECT INBOX")
			if err := e.store.DeleteAccount(context.Background(), testUser); err != nil {
				t.Fatal(err)
			}
			c.write("a " + cmd + "\r\n")
			// The embedded store finds the account gone; PostgreSQL,
			// which deletes its mailboxes with it, the selected mailbox
			// gone first, and says so (RFC 9051 7.1.5).
			if line := c.readLine(); line != "* BYE [UNAVAILABLE] Your account has been deleted" && line != "* BYE selected mailbox was deleted" {
				t.Errorf("after %s: %q, want BYE", strings.Fields(cmd)[0], line)
			}
			c.deadline()
			rest, err := io.ReadAll(c.br)
			if err != nil || strings.Count(string(rest), "\n") > 1 || len(rest) > 0 && !strings.HasPrefix(string(rest), "a NO ") {
				t.Errorf("after the BYE: %q, %v; want at most a NO, and the connection closed", rest, err)
			}
		})
	}
}

// TestAccountDeletedInIdle: a session in IDLE hears of its account's
// deletion at once, without a command of its own.
func TestAccountDeletedInIdle(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	c := e.login()
	c.mustOK("SELECT INBOX")
	c.idle("i")
	if err := e.store.DeleteAccount(context.Background(), testUser); err != nil {
		t.Fatal(err)
	}
	c.deadline()
	if line := c.readLine(); line != "* BYE [UNAVAILABLE] Your account has been deleted" && line != "* BYE selected mailbox was deleted" {
		t.Errorf("in IDLE after the deletion: %q, want BYE", line)
	}
}
