package imapserver

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestESort checks SORT RETURN (RFC 5267 3) where the transcript and the
// comparison with Dovecot do not reach: the MODSEQ of an answer that
// names only MIN or MAX (RFC 4731 3.2), and what "$" holds after a SORT
// that saves and fails (RFC 5182 2.1: NO empties it, BAD leaves it).
func TestESort(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	c := e.loginWithGap(
		"Subject: c\nDate: Mon, 4 Mar 2024 10:00:00 +0000\n\nthree\n",
		"Subject: a\nDate: Sat, 2 Mar 2024 10:00:00 +0000\n\none\n",
		"Subject: b\nDate: Sun, 3 Mar 2024 10:00:00 +0000\n\ntwo\n",
	)
	c.mustOK("ENABLE CONDSTORE")
	// Each message gets a MODSEQ of its own: 1 the highest, then 3, 2.
	c.mustOK(`STORE 2 +FLAGS.SILENT ($a)`)
	c.mustOK(`STORE 3 +FLAGS.SILENT ($b)`)
	c.mustOK(`STORE 1 +FLAGS.SILENT ($c)`)
	modseq := map[int]uint64{}
	for _, l := range c.mustOK("FETCH 1:3 (MODSEQ)") {
		var n int
		var m uint64
		if _, err := fmt.Sscanf(l, "* %d FETCH (MODSEQ (%d))", &n, &m); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		modseq[n] = m
	}
	esearch := func(cmd string) string {
		t.Helper()
		got := slices.DeleteFunc(c.mustOK(cmd), func(l string) bool { return !strings.HasPrefix(l, "* ESEARCH") })
		if len(got) != 1 {
			t.Fatalf("%s: %q, want one ESEARCH", cmd, got)
		}
		return regexp.MustCompile(`^\* ESEARCH \(TAG "[^"]*"\) ?`).ReplaceAllString(got[0], "")
	}
	ms := func(n int) string { return strconv.FormatUint(modseq[n], 10) }
	for _, tc := range []struct{ cmd, want string }{
		{"SORT RETURN (MIN) (SUBJECT) UTF-8 MODSEQ 1", "MIN 2 MODSEQ " + ms(2)},
		{"SORT RETURN (MAX) (SUBJECT) UTF-8 MODSEQ 1", "MAX 1 MODSEQ " + ms(1)},
		{"SORT RETURN (MIN MAX) (DATE) UTF-8 MODSEQ 1", "MIN 2 MAX 1 MODSEQ " + ms(1)},
		{"SORT RETURN (COUNT) (DATE) UTF-8 MODSEQ 1", "COUNT 3 MODSEQ " + ms(1)},
		{"UID SORT RETURN (ALL) (REVERSE SUBJECT) UTF-8 ALL", "UID ALL 2,4,3"},
	} {
		if got := esearch(tc.cmd); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.cmd, got, tc.want)
		}
	}

	c.mustOK("SORT RETURN (SAVE) (DATE) UTF-8 SUBJECT b")
	if got := esearch("SEARCH RETURN (ALL) $"); got != "ALL 3" {
		t.Fatalf("$ after a saving SORT: %q", got)
	}
	// BAD: the command never ran; "$" stays.
	if _, tagged := c.cmd("SORT RETURN (SAVE) (NOSUCHKEY) UTF-8 ALL"); !strings.Contains(tagged, " BAD ") {
		t.Fatalf("unknown sort key: %q", tagged)
	}
	if got := esearch("SEARCH RETURN (ALL) $"); got != "ALL 3" {
		t.Errorf("$ after a BAD: %q, want it kept", got)
	}
	// NO: the search failed; "$" is empty.
	if _, tagged := c.cmd("SORT RETURN (SAVE) (DATE) X-NO-SUCH-CHARSET ALL"); !strings.Contains(tagged, " NO [BADCHARSET") {
		t.Fatalf("unknown charset: %q", tagged)
	}
	if got := esearch("SEARCH RETURN (ALL) $"); got != "" {
		t.Errorf("$ after a NO: %q, want it empty", got)
	}

	// An IMAP4rev2 session gets SORT's own answer to a SORT without
	// RETURN: ESEARCH is for SEARCH (RFC 9051 7.3.4) and SORT RETURN.
	c.mustOK("ENABLE IMAP4rev2")
	if got := c.mustOK("SORT (DATE) UTF-8 ALL"); !slices.Equal(got, []string{"* SORT 2 3 1"}) {
		t.Errorf("SORT in IMAP4rev2: %q", got)
	}
}
