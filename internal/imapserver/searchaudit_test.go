package imapserver

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/buzon-mail/buzon/internal/store"
)

// TestSearchResAfterFailure: a SEARCH RETURN (SAVE) refused with NO leaves
// the search result variable empty, so that a STORE pipelined behind it
// acts on no message rather than on an older result; one refused with BAD
// leaves the variable as it was (RFC 5182 2.1).
func TestSearchResAfterFailure(t *testing.T) {
	e := newTestEnv(t)
	e.deliver("INBOX", "Subject: one\n\nfirst\n", `\Seen`)
	e.deliver("INBOX", "Subject: two\n\nsecond\n")
	e.deliver("INBOX", "Subject: three\n\nthird\n", `\Seen`)
	c := e.login()
	c.mustOK("SELECT INBOX")

	saved := func() string {
		t.Helper()
		return strings.Join(c.mustOK("UID SEARCH $"), " ")
	}
	c.mustOK("SEARCH RETURN (SAVE) SEEN")
	if got := saved(); got != "* SEARCH 1 3" {
		t.Fatalf("after SAVE SEEN: %q", got)
	}

	// BAD: unchanged.
	for _, cmd := range []string{
		"SEARCH RETURN (SAVE) BOGUS",
		"SEARCH RETURN (SAVE) UNSEEN (",
	} {
		if _, tagged := c.cmd(cmd); !strings.Contains(tagged, " BAD ") {
			t.Errorf("%s: %s, want BAD", cmd, tagged)
		}
		if got := saved(); got != "* SEARCH 1 3" {
			t.Errorf("after %s: %q, want the result saved before", cmd, got)
		}
	}

	// NO: empty, as the STORE pipelined behind the search sees.
	c.write("n1 SEARCH RETURN (SAVE) CHARSET KOI8-R BODY x\r\nn2 STORE $ +FLAGS (\\Deleted)\r\n")
	if _, tagged := c.readUntil("n1"); !strings.HasPrefix(tagged, "n1 NO [BADCHARSET") {
		t.Errorf("SEARCH CHARSET KOI8-R: %s", tagged)
	}
	if untagged, tagged := c.readUntil("n2"); !strings.HasPrefix(tagged, "n2 OK") || len(untagged) != 0 {
		t.Errorf("STORE $ after the refused search: %q %s, want no message changed", untagged, tagged)
	}
	if got := strings.Join(c.mustOK("SEARCH DELETED"), " "); got != "* SEARCH" {
		t.Errorf("SEARCH DELETED: %q", got)
	}
	if got := saved(); got != "* SEARCH" {
		t.Errorf("after NO: %q, want empty", got)
	}
}

// TestSearchResOnFailure: whatever refuses a SAVE search after its
// arguments parsed, a user error, a store error or a bug, empties the
// search result variable; a syntax error keeps it. The failure goes on to
// the command loop unchanged.
func TestSearchResOnFailure(t *testing.T) {
	for _, tc := range []struct {
		name  string
		raise func()
		want  []store.UID
	}{
		{"user error", func() { xuserErrorf("BADCHARSET", "no") }, nil},
		{"store error", func() { xcheckf(errors.New("disk gone"), "search") }, nil},
		{"store refusal", func() { xcheckf(store.ErrNoMailbox, "search") }, nil},
		{"bug", func() { panic("bug") }, nil},
		{"syntax error", func() { xsyntaxErrorf("bad") }, []store.UID{1, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &conn{searchRes: []store.UID{1, 3}}
			var raised, got any
			func() {
				defer func() { got = recover() }()
				defer c.searchResOnFailure()
				defer func() { raised = recover(); panic(raised) }()
				tc.raise()
			}()
			if got != raised {
				t.Errorf("the command loop got %#v, want %#v", got, raised)
			}
			if !slices.Equal(c.searchRes, tc.want) {
				t.Errorf("search result %v, want %v", c.searchRes, tc.want)
			}
		})
	}
}
