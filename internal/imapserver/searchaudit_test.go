package imapserver

import (
	"errors"
	"fmt"
	"regexp"
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

// TestESearchModSeq: the MODSEQ of an ESEARCH is that of the messages its
// answer names: the MIN message's with MIN alone, the MAX message's with
// MAX alone, the higher of the two with both, and otherwise the highest
// of all the messages found (RFC 4731 3.2). The SEARCH response without
// RETURN has the highest of all (RFC 7162 3.1.5).
func TestESearchModSeq(t *testing.T) {
	e := newTestEnv(t)
	for i := range 4 {
		e.deliver("INBOX", fmt.Sprintf("Subject: %d\n\nbody\n", i+1))
	}
	c := e.login()
	c.mustOK("SELECT INBOX")
	modSeqs := func() map[string]string {
		t.Helper()
		mods := map[string]string{}
		re := regexp.MustCompile(`^\* (\d+) FETCH \(MODSEQ \((\d+)\)\)$`)
		for _, l := range c.mustOK("FETCH 1:* (MODSEQ)") {
			if m := re.FindStringSubmatch(l); m != nil {
				mods[m[1]] = m[2]
			}
		}
		return mods
	}
	// check runs cmd and expects one response: want, or, when want is
	// the return data of an ESEARCH, that ESEARCH.
	check := func(cmd, want string) {
		t.Helper()
		got := c.mustOK(cmd)
		if !strings.HasPrefix(want, "* ") {
			want = fmt.Sprintf(`* ESEARCH (TAG "t%d") %s`, c.n, want)
		}
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s: %q, want %q", cmd, got, want)
		}
	}

	// Message 1 is the oldest change of those found, 2 the newest.
	c.mustOK(`STORE 2 +FLAGS (\Flagged)`)
	mod := modSeqs()
	const found = "MODSEQ 1 NOT 4" // messages 1 to 3
	check("SEARCH RETURN (MIN) "+found, `MIN 1 MODSEQ `+mod["1"])
	check("SEARCH RETURN (MAX) "+found, `MAX 3 MODSEQ `+mod["3"])
	check("SEARCH RETURN (MIN MAX) "+found, `MIN 1 MAX 3 MODSEQ `+mod["3"])
	check("SEARCH RETURN (MAX SAVE) "+found, `MAX 3 MODSEQ `+mod["3"])
	check("SEARCH $", "* SEARCH 3") // RFC 5182 2.4: only MAX is saved
	check("SEARCH RETURN (MIN COUNT) "+found, `MIN 1 COUNT 3 MODSEQ `+mod["2"])
	check("SEARCH RETURN (MAX ALL) "+found, `MAX 3 ALL 1:3 MODSEQ `+mod["2"])
	check("SEARCH RETURN () "+found, `ALL 1:3 MODSEQ `+mod["2"])
	check("UID SEARCH RETURN (MIN) "+found, `UID MIN 1 MODSEQ `+mod["1"])
	check("SEARCH "+found, "* SEARCH 1 2 3 (MODSEQ "+mod["2"]+")")

	// Now the MIN message is the newest change: MIN and MAX give its MODSEQ.
	c.mustOK(`STORE 1 +FLAGS (\Flagged)`)
	mod = modSeqs()
	check("SEARCH RETURN (MIN MAX) "+found, `MIN 1 MAX 3 MODSEQ `+mod["1"])
	check("SEARCH RETURN (MAX) "+found, `MAX 3 MODSEQ `+mod["3"])
}
