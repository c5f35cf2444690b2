package imapserver

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestBaseSubject follows the steps of RFC 5256 2.1, and tells a reply
// or forward (RFC 5256 4) from an original by what they remove.
func TestBaseSubject(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string
		refwd    bool
	}{
		{"Hello", "Hello", false},
		{"Re: Hello", "Hello", true},
		{"RE: re: Re:Hello", "Hello", true},
		{"RE:Hello", "Hello", true},
		{"Fwd: Hello", "Hello", true},
		{"Fw: Hello", "Hello", true},
		{"FWD:Re: Hello", "Hello", true},
		{"Re[2]: Hello", "Hello", true},                    // a blob after "re"
		{"[list] Re: Hello", "Hello", true},                // a blob before "re"
		{"[list] [other] Re: [list] Hello", "Hello", true}, // (4): a blob that leaves a subject
		{"[list] [other] Fw: Hello", "Hello", true},
		{"[list] Hello", "Hello", false}, // a blob alone is no reply
		{"[list]", "[list]", false},      // (4): one that would leave nothing
		{"[list] ", "[list]", false},
		{"Hello (fwd)", "Hello", true},
		{"Hello (FWD)  ", "Hello", true},
		{"Hello (FWD) (fwd)  ", "Hello", true},
		{"[Fwd: Re: Hello]", "Hello", true}, // (6), then again from (2)
		{"[Fwd: Hello]", "Hello", true},
		{"[list] [Fwd: Hello]", "Hello", true},
		{"[fwd: [fwd: Hello (fwd)]]", "Hello", true},
		{"[fwd: Hello", "[fwd: Hello", false},
		{"Re:  Hello \t  world", "Hello world", true}, // (1)
		{"Reply: Hello", "Reply: Hello", false},       // "re" must be followed by ":"
		{"Re Hello", "Re Hello", false},
		{"Réponse", "Réponse", false},
		{"", "", false},
		{"Re:", "", true},
		{"[a[b]c] Hello", "[a[b]c] Hello", false}, // not a blob: "[" inside
	} {
		if got, refwd := baseSubject(tc.in); got != tc.want || refwd != tc.refwd {
			t.Errorf("baseSubject(%q) = %q, %v; want %q, %v", tc.in, got, refwd, tc.want, tc.refwd)
		}
	}
}

// TestSortFold: i;unicode-casemap (RFC 5051) puts a letter with a
// diacritic next to the letter, and ignores case.
func TestSortFold(t *testing.T) {
	t.Parallel()
	if sortFold("émile") != sortFold("Émile") || sortFold("abc") != sortFold("ABC") {
		t.Error("case is significant")
	}
	if !(sortFold("Emma") < sortFold("Émile") && sortFold("Émile") < sortFold("Fanny")) {
		t.Errorf("É does not sort between E and F: %q", sortFold("Émile"))
	}
}

// TestSentTime: SORT's DATE reads Date fields as senders write them, in
// UTC, and tells where it cannot.
func TestSentTime(t *testing.T) {
	t.Parallel()
	want := time.Date(2024, 3, 4, 10, 0, 0, 0, time.UTC)
	for _, s := range []string{
		"Mon, 4 Mar 2024 10:00:00 +0000",
		"Mon, 4 Mar 2024 11:00:00 +0100 (CET)",
		"Mon, 4 Mar 2024 02:00:00 -0800 (PST)",
		"4 Mar 2024 05:00 EST",
		"Mon, 4 Mar 24 03:00:00 PDT",
		"Mon, 4 Mar 2024 10:00:00 GMT",
		"Mon, 4 Mar 2024 10:00:00 Z",
		"Mon, 4 Mar 2024 10:00:00",       // no zone: +0000
		"Mon, 4 Mar 2024 10.00.00 +0000", // dots
		"Monday, 04-Mar-24 10:00:00 GMT", // RFC 850
		"Mon Mar  4 10:00:00 2024",       // asctime
		"2024-03-04T10:00:00Z",           // ISO 8601
		"2024-03-04T11:00:00+01:00",
		"Mon, 4 Mar 2024 10:00:00 +0000 (a (nested) comment -0500)",
	} {
		if got, ok := sentTime(s); !ok || !got.Equal(want) {
			t.Errorf("sentTime(%q) = %v, %v; want %v", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "yesterday", "Mon, 32 Mar 2024 10:00:00 +0000"} {
		if got, ok := sentTime(s); ok {
			t.Errorf("sentTime(%q) = %v, want none", s, got)
		}
	}
}

// TestSort: SORT and UID SORT order by each key, REVERSE turning one key
// and ties going by sequence number (RFC 5256 3); a search key chooses
// the messages, and one on MODSEQ adds the highest (RFC 7162 3.1.5).
func TestSort(t *testing.T) {
	t.Parallel()
	c := newTestEnv(t).loginWithGap( // UIDs 2 to 5 are messages 1 to 4
		"Date: Mon, 4 Mar 2024 12:00:00 +0000\nFrom: Zoe <zoe@example.org>\nTo: bob@example.org\nSubject: Re: Budget\n\nshort\n",
		"Date: Mon, 4 Mar 2024 09:00:00 -0500\nFrom: adam@example.org\nTo: Carol <carol@example.org>\nSubject: [team] Agenda\n\na longer body than the first\n",
		"From: \"Émile\" <emile@example.org>\nTo: alice@example.org\nSubject: budget (fwd)\n\nno Date field\n",
		"Date: Mon, 4 Mar 2024 10:00:00 +0000\nFrom: =?UTF-8?Q?=C3=89mile?= <x@example.org>\nSubject: Fwd: agenda\n\nx\n",
	)
	c.mustOK("STORE 2 +FLAGS (\\Seen)")
	checkAnswers(t, c, []cmdAnswer{
		{"SORT (ARRIVAL) UTF-8 ALL", "* SORT 1 2 3 4"},
		// All have the same internal date: ties, in sequence order.
		{"SORT (REVERSE ARRIVAL) UTF-8 ALL", "* SORT 1 2 3 4"},
		// Message 3 has no Date: its internal date (1 March 2024,
		// before the others' Date) stands for it.
		{"SORT (DATE) UTF-8 ALL", "* SORT 3 4 1 2"},
		{"SORT (REVERSE DATE) UTF-8 ALL", "* SORT 2 1 4 3"},
		{"SORT (SIZE) UTF-8 ALL", "* SORT 3 4 1 2"},    // 99, 111, 118 and 149 octets
		{"SORT (SUBJECT) UTF-8 ALL", "* SORT 2 4 1 3"}, // agenda, agenda, budget, budget
		{"SORT (REVERSE SUBJECT) UTF-8 ALL", "* SORT 1 3 2 4"},
		{"SORT (SUBJECT REVERSE DATE) UTF-8 ALL", "* SORT 2 4 1 3"},
		{"SORT (FROM) UTF-8 ALL", "* SORT 2 3 4 1"},        // adam, emile, x, zoe
		{"SORT (DISPLAYFROM) UTF-8 ALL", "* SORT 2 3 4 1"}, // adam@…, Émile, Émile, Zoe
		{"SORT (TO) UTF-8 ALL", "* SORT 4 3 1 2"},          // none, alice, bob, carol
		{"SORT (DISPLAYTO) UTF-8 ALL", "* SORT 4 3 1 2"},
		{"UID SORT (DATE) UTF-8 ALL", "* SORT 4 5 2 3"},
		{"SORT (DATE) UTF-8 UNSEEN", "* SORT 3 4 1"},
		{"SORT (DATE) UTF-8 FROM \"émile\"", "* SORT 3 4"},
		{"SORT (DATE) UTF-8 SEEN", "* SORT 2"},
		{"SORT (DATE) UTF-8 DELETED", "* SORT"},
	})
	got := slices.DeleteFunc(c.mustOK("SORT (ARRIVAL) UTF-8 MODSEQ 1"), func(l string) bool { return !strings.HasPrefix(l, "* SORT") })
	if len(got) != 1 || !regexp.MustCompile(`^\* SORT 1 2 3 4 \(MODSEQ \d+\)$`).MatchString(got[0]) {
		t.Errorf("SORT with MODSEQ: %q", got)
	}
	for _, cmd := range []string{"SORT () UTF-8 ALL", "SORT (DATE) ALL", "SORT (REVERSE) UTF-8 ALL", "SORT (DATE DATE UTF-8 ALL"} {
		if _, tagged := c.cmd(cmd); !strings.Contains(tagged, " BAD ") {
			t.Errorf("%s: %s, want BAD", cmd, tagged)
		}
	}
	checkSearchRefusals(t, c, "SORT (DATE)")
}

// cmdAnswer is a command and the one untagged response it must give.
type cmdAnswer struct{ cmd, want string }

// checkAnswers runs commands that must succeed, each with its one
// untagged response.
func checkAnswers(t *testing.T, c *client, tests []cmdAnswer) {
	t.Helper()
	for _, tc := range tests {
		if got := c.mustOK(tc.cmd); len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s: %q, want %q", tc.cmd, got, tc.want)
		}
	}
}

// checkSearchRefusals checks what a command that searches, cmd followed
// by a charset and search keys, refuses as SEARCH does: a charset it does
// not know, with NO [BADCHARSET] (RFC 9051 6.4.4), and any search with no
// mailbox selected, with BAD. It leaves the mailbox unselected.
func checkSearchRefusals(t *testing.T, c *client, cmd string) {
	t.Helper()
	if _, tagged := c.cmd(cmd + " X-NOWHERE ALL"); !strings.Contains(tagged, " NO [BADCHARSET") {
		t.Errorf("%s: unknown charset: %s", cmd, tagged)
	}
	c.mustOK("UNSELECT")
	if _, tagged := c.cmd(cmd + " UTF-8 ALL"); !strings.Contains(tagged, " BAD ") {
		t.Errorf("%s with no mailbox selected: %s", cmd, tagged)
	}
}
