package imapserver

import (
	"strings"
	"testing"
)

func TestLoginSelectFetch(t *testing.T) {
	e := newTestEnv(t)
	e.deliver("INBOX", "From: a@example.org\nSubject: hello\n\nbody text\n")
	c := e.login()
	out := c.mustOK("SELECT INBOX")
	t.Log(strings.Join(out, "\n"))
	out = c.mustOK("FETCH 1 (FLAGS ENVELOPE BODYSTRUCTURE BODY[] RFC822.SIZE)")
	t.Log(strings.Join(out, "\n"))
	out = c.mustOK("FETCH 1 FLAGS")
	t.Log(strings.Join(out, "\n"))
}
