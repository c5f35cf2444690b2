package imapserver

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/teststore"
)

// tm is a message for the threading tests: its number is its place in
// the list, from 1.
type tm struct {
	date    int64
	subject string // as written, before base subject extraction
	id      string // Message-ID field
	refs    string // References field
	irt     string // In-Reply-To field
}

// threadMsgs makes what xthreadValues would read of the messages.
func threadMsgs(in []tm) []threadMsg {
	msgs := make([]threadMsg, len(in))
	for i, m := range in {
		t := &msgs[i]
		t.seq, t.uid, t.date = uint32(i+1), 0, m.date
		t.setSubject(m.subject)
		t.id = firstMsgID(m.id)
		t.refs = references(m.refs, m.irt)
	}
	return msgs
}

func threadString(msgs []threadMsg, roots []*threadNode) string {
	return string(appendThreads(nil, roots, func(i int) uint64 { return uint64(msgs[i].seq) }))
}

// threadCase is messages and how an algorithm threads them, as RFC 5256 5
// writes it.
type threadCase struct {
	name string
	msgs []tm
	want string
}

// runThreadCases threads the messages of each case with algorithm.
func runThreadCases(t *testing.T, algorithm func([]threadMsg) []*threadNode, cases []threadCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msgs := threadMsgs(tc.msgs)
			if got := threadString(msgs, algorithm(msgs)); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestThreadReferences follows the steps of RFC 5256 4's REFERENCES
// through the cases mail brings them: replies, missing parents, loops,
// duplicate IDs, cut References, and threads gathered by subject.
func TestThreadReferences(t *testing.T) {
	t.Parallel()
	runThreadCases(t, threadReferences, []threadCase{
		{"none", nil, ""},
		{"alone", []tm{{1, "a", "<a@x>", "", ""}}, "(1)"},
		{"replies", []tm{
			{1, "topic", "<a@x>", "", ""},
			{2, "Re: topic", "<b@x>", "<a@x>", ""},
			{3, "Re: topic", "<c@x>", "<a@x> <b@x>", ""},
			{4, "Re: topic", "<d@x>", "<a@x>", ""},
		}, "(1 (2 3)(4))"},
		{"in-reply-to without references", []tm{
			{1, "one", "<a@x>", "", ""},
			{2, "two", "<b@x>", "", "<a@x> <z@x>"},
		}, "(1 2)"},
		{"references before in-reply-to", []tm{
			{1, "one", "<a@x>", "", ""},
			{2, "two", "<b@x>", "", ""},
			{3, "three", "<c@x>", "<b@x>", "<a@x>"},
		}, "(1)(2 3)"},
		{"in-reply-to phrase", []tm{
			{1, "one", "<a@x>", "", ""},
			{2, "two", "<b@x>", "", `"Your message of <x@y>" <a@x>`},
		}, "(1 2)"},
		{"quoting does not matter", []tm{
			{1, "one", `<"a.b"@x>`, "", ""},
			{2, "two", "<b@x>", "<a.b@x>", ""},
		}, "(1 2)"},
		{"ids are case-sensitive", []tm{
			{1, "one", "<a@x>", "", ""},
			{2, "two", "<b@x>", "<A@x>", ""},
		}, "(1)(2)"},
		// Step 3: a missing parent of one message gives way to it.
		{"missing parent", []tm{{1, "one", "<b@x>", "<gone@x>", ""}}, "(1)"},
		// Two children of a missing parent stay together under it.
		{"missing parent of two", []tm{
			{1, "one", "<b@x>", "<gone@x>", ""},
			{2, "two", "<c@x>", "<gone@x>", ""},
		}, "((1)(2))"},
		// A missing message between two: the grandchild becomes a child.
		{"missing middle", []tm{
			{1, "one", "<a@x>", "", ""},
			{2, "two", "<c@x>", "<a@x> <gone@x>", ""},
		}, "(1 2)"},
		{"missing middle of two", []tm{
			{1, "one", "<a@x>", "", ""},
			{2, "two", "<c@x>", "<a@x> <gone@x>", ""},
			{3, "three", "<d@x>", "<a@x> <gone@x>", ""},
			{4, "four", "<e@x>", "<a@x>", ""},
		}, "(1 (2)(3)(4))"},
		{"no message id", []tm{
			{1, "one", "", "", ""},
			{2, "two", "", "", ""},
			{3, "three", "<c@x>", "", ""},
		}, "(1)(2)(3)"},
		{"invalid message id", []tm{
			{1, "one", "<nodomain>", "", ""},
			{2, "two", "<b@x>", "<nodomain>", ""},
		}, "(1)(2)"},
		// (1)(A): a second message with an ID keeps none; replies go to
		// the first.
		{"duplicate ids", []tm{
			{1, "one", "<a@x>", "", ""},
			{2, "two", "<a@x>", "", ""},
			{3, "three", "<c@x>", "<a@x>", ""},
		}, "(1 3)(2)"},
		{"duplicate ids referring", []tm{
			{1, "one", "<a@x>", "", ""},
			{2, "two", "<a@x>", "<a@x>", ""},
		}, "(1 2)"},
		{"refers to itself", []tm{{1, "one", "<a@x>", "<a@x>", ""}}, "(1)"},
		// Two messages each claiming the other as parent: the first
		// link made stands.
		{"loop between messages", []tm{
			{1, "one", "<a@x>", "<b@x>", ""},
			{2, "two", "<b@x>", "<a@x>", ""},
		}, "(2 1)"},
		{"loop in references", []tm{
			{1, "one", "<m@x>", "<x@x> <y@x> <x@x>", ""},
		}, "(1)"},
		{"loop through three", []tm{
			{1, "one", "<a@x>", "<c@x>", ""},
			{2, "two", "<b@x>", "<a@x>", ""},
			{3, "three", "<c@x>", "<b@x>", ""},
		}, "(3 1 2)"},
		// (1)(B): a References cut short in one message (2's parent
		// from 1's list is a missing x) is corrected by the message's
		// own (2 replies to 3).
		{"truncated references", []tm{
			{3, "one", "<z@x>", "<x@x> <b@x>", ""},
			{2, "two", "<b@x>", "<a@x>", ""},
			{1, "three", "<a@x>", "", ""},
		}, "(3 2 1)"},
		// (1)(B): a message without references has no parent, whatever
		// another's References said.
		{"no references, no parent", []tm{
			{1, "one", "<z@x>", "<p@x> <a@x>", ""},
			{2, "two", "<a@x>", "", ""},
			{3, "three", "<p@x>", "", ""},
		}, "(2 1)(3)"},
		// (4), (6): siblings and threads by sent date, then number.
		{"dates", []tm{
			{5, "one", "<a@x>", "", ""},
			{1, "two", "<b@x>", "", ""},
			{9, "three", "<c@x>", "<a@x>", ""},
			{7, "four", "<d@x>", "<a@x>", ""},
			{1, "five", "<e@x>", "", ""},
		}, "(2)(5)(1 (4)(3))"},
		// (4): a dummy sorts by its first child.
		{"dummy by first child", []tm{
			{5, "one", "<a@x>", "", ""},
			{9, "two", "<b@x>", "<gone@x>", ""},
			{3, "three", "<c@x>", "<gone@x>", ""},
		}, "((3)(2))(1)"},
		// (5): threads of one base subject gather under the one that is
		// not a reply.
		{"subject reply joins", []tm{
			{1, "Hello", "<a@x>", "", ""},
			{2, "Re: hello", "<b@x>", "", ""},
		}, "(1 2)"},
		{"subject original found later", []tm{
			{2, "Hello", "<a@x>", "", ""},
			{1, "[Fwd: Hello]", "<b@x>", "", ""},
		}, "(1 2)"},
		{"subject forward trailer", []tm{
			{1, "Hello", "<a@x>", "", ""},
			{2, "Hello (fwd)", "<b@x>", "", ""},
		}, "(1 2)"},
		// Two originals, or two replies, go under a dummy.
		{"subject two originals", []tm{
			{1, "Hello", "<a@x>", "", ""},
			{2, "HELLO", "<b@x>", "", ""},
		}, "((1)(2))"},
		{"subject two replies", []tm{
			{1, "Re: Hello", "<a@x>", "", ""},
			{2, "Fwd: Hello", "<b@x>", "", ""},
			{3, "Re[2]: Hello", "<c@x>", "", ""},
		}, "((1)(2)(3))"},
		// A list's blob is not a reply.
		{"subject blob", []tm{
			{1, "[list] Hello", "<a@x>", "", ""},
			{2, "Hello", "<b@x>", "", ""},
		}, "((1)(2))"},
		// A thread under a dummy takes the others of its subject.
		{"subject dummy", []tm{
			{1, "Topic", "<b@x>", "<gone@x>", ""},
			{2, "Re: Topic", "<c@x>", "<gone@x>", ""},
			{3, "Topic", "<d@x>", "", ""},
		}, "((1)(2)(3))"},
		{"subject two dummies", []tm{
			{1, "Topic", "<b@x>", "<gone@x>", ""},
			{2, "Re: Topic", "<c@x>", "<gone@x>", ""},
			{3, "Re: Topic", "<d@x>", "<lost@x>", ""},
			{4, "Re: Topic", "<e@x>", "<lost@x>", ""},
		}, "((1)(2)(3)(4))"},
		// A whole thread joins, with its replies.
		{"subject whole thread", []tm{
			{1, "Topic", "<a@x>", "", ""},
			{2, "Re: Topic", "<b@x>", "", ""},
			{3, "Re: Topic", "<c@x>", "<b@x>", ""},
		}, "(1 2 3)"},
		// Only the roots' subjects count: a reply deep in a thread stays.
		{"subject of a child", []tm{
			{1, "one", "<a@x>", "", ""},
			{2, "Topic", "<b@x>", "<a@x>", ""},
			{3, "Topic", "<c@x>", "", ""},
		}, "(1 2)(3)"},
		{"subject empty", []tm{
			{1, "", "<a@x>", "", ""},
			{2, "", "<b@x>", "", ""},
			{3, "Re:", "<c@x>", "", ""},
		}, "(1)(2)(3)"},
	})
}

// TestThreadOrderedSubject: RFC 5256 4's ORDEREDSUBJECT, threads of one
// base subject whose first message is the parent of every other.
func TestThreadOrderedSubject(t *testing.T) {
	t.Parallel()
	runThreadCases(t, threadOrderedSubject, []threadCase{
		{"none", nil, ""},
		{"one", []tm{{1, "a", "", "", ""}}, "(1)"},
		{"two", []tm{{1, "Hello", "", "", ""}, {2, "Re: hello", "", "", ""}}, "(1 2)"},
		{"gathered", []tm{
			{3, "Hello", "", "", ""},
			{1, "Re: Hello", "", "", ""},
			{2, "Other", "", "", ""},
			{4, "[Fwd: Hello]", "", "", ""},
			{5, "", "", "", ""},
			{6, "Re:", "", "", ""},
			{7, "[list] Hello (fwd)", "", "", ""},
		}, "(2 (1)(4)(7))(3)(5 6)"},
		// References do not count.
		{"references ignored", []tm{
			{1, "one", "<a@x>", "", ""},
			{2, "two", "<b@x>", "<a@x>", ""},
		}, "(1)(2)"},
		// The same date: by number.
		{"ties", []tm{
			{5, "b", "", "", ""},
			{5, "a", "", "", ""},
			{5, "A", "", "", ""},
			{1, "c", "", "", ""},
		}, "(4)(1)(2 3)"},
	})
}

// TestAppendThreads writes trees as RFC 5256 5's grammar does.
func TestAppendThreads(t *testing.T) {
	t.Parallel()
	msg := func(i int, kids ...*threadNode) *threadNode { return &threadNode{msg: i, kids: kids} }
	dummy := func(kids ...*threadNode) *threadNode { return &threadNode{msg: -1, kids: kids} }
	for _, tc := range []struct {
		roots []*threadNode
		want  string
	}{
		{nil, ""},
		{[]*threadNode{msg(2), msg(3, msg(6, msg(4, msg(23)), msg(44, msg(7, msg(96)))))}, "(2)(3 6 (4 23)(44 7 96))"},
		{[]*threadNode{dummy(msg(3), msg(5))}, "((3)(5))"},
		{[]*threadNode{dummy(msg(3, msg(4)), msg(5))}, "((3 4)(5))"},
		{[]*threadNode{msg(1, dummy(msg(2), msg(3)), msg(4))}, "(1 ((2)(3))(4))"},
	} {
		got := string(appendThreads(nil, tc.roots, func(i int) uint64 { return uint64(i) }))
		if got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

// TestMsgIDs reads message IDs as mail writes them.
func TestMsgIDs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		max  int
		want []string
	}{
		{"<a@b>", -1, []string{"<a@b>"}},
		{` <"01KF8JCEOCBS0045PS"@xxx.yyy.com> `, -1, []string{"<01KF8JCEOCBS0045PS@xxx.yyy.com>"}},
		{`<"a\"b"@x>`, -1, []string{`<a"b@x>`}},
		{"<a@b> <c@d>\r\n\t<e@f>", -1, []string{"<a@b>", "<c@d>", "<e@f>"}},
		{"<a@b><c@d>", -1, []string{"<a@b>", "<c@d>"}},
		{"<a@b> <c@d>", 1, []string{"<a@b>"}},
		{"<a@b> (a comment <x@y> (nested)) <c@d>", -1, []string{"<a@b>", "<c@d>"}},
		{`Your message of "Mon, 4 Mar <x@y>" <a@b>`, -1, []string{"<a@b>"}},
		{"<a @ b>", -1, []string{"<a@b>"}},
		{"<a(comment)@b>", -1, []string{"<a@b>"}},
		{"<nodomain> <@b> <a@> <a@b", -1, nil},
		{"<broken <a@b>", -1, []string{"<a@b>"}},
		{"a@b", -1, nil},
		{"", -1, nil},
		{"<Case@Sensitive>", -1, []string{"<Case@Sensitive>"}},
	} {
		if got := msgIDs(tc.in, tc.max); !slices.Equal(got, tc.want) {
			t.Errorf("msgIDs(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

// TestReferences: References first, In-Reply-To's first ID where it has
// none, and of very many references the last, the parent among them.
func TestReferences(t *testing.T) {
	t.Parallel()
	var many []string
	for i := range maxReferences + 50 {
		many = append(many, fmt.Sprintf("<%d@x>", i))
	}
	for _, tc := range []struct {
		refs, irt string
		want      []string
	}{
		{"<a@x> <b@x>", "<c@x>", []string{"<a@x>", "<b@x>"}},
		{"", "<c@x> <d@x>", []string{"<c@x>"}},
		{"<invalid>", "<c@x>", []string{"<c@x>"}},
		{"", "", nil},
		{strings.Join(many, " "), "<c@x>", many[50:]},
	} {
		if got := references(tc.refs, tc.irt); !slices.Equal(got, tc.want) {
			t.Errorf("references(%.40q, %q) = %.80q, want %.80q", tc.refs, tc.irt, got, tc.want)
		}
	}
}

// TestParseThread: the algorithm, the charset and the search keys are
// all required; an algorithm not offered is BAD.
func TestParseThread(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ line, want string }{
		{"a THREAD REFERENCES UTF-8 ALL", "THREAD"},
		{"a UID THREAD orderedsubject us-ascii SEEN UNDELETED", "UID THREAD"},
		{`a THREAD REFERENCES "UTF-8" OR FROM a (SUBJECT b) UID 1:*`, "THREAD"},
		{"a THREAD REFS UTF-8 ALL", "BAD unknown threading algorithm REFS"},
		{"a THREAD REFERENCES ALL", "BAD"},
		{"a THREAD REFERENCES UTF-8", "BAD"},
		{"a THREAD REFERENCES UTF-8 ", "BAD"},
		{"a THREAD REFERENCES", "BAD"},
		{"a THREAD (REFERENCES) UTF-8 ALL", "BAD"},
		{"a THREAD", "BAD"},
	} {
		got, err := parseAll([]byte(tc.line + "\r\n"))
		if err != nil && err != io.EOF || len(got) != 1 || !strings.HasPrefix(got[0], tc.want) {
			t.Errorf("%s: %q, %v; want %s", tc.line, got, err, tc.want)
		}
	}
}

// TestThread runs THREAD and UID THREAD over a session: References read
// from the header (folded), In-Reply-To where it is missing, the
// internal date for a message without Date, search keys choosing the
// messages, and the refusals.
func TestThread(t *testing.T) {
	t.Parallel()
	c := newTestEnv(t).loginWithGap(
		"Date: Mon, 4 Mar 2024 10:00:00 +0000\nMessage-ID: <root@example.org>\nSubject: Plans\n\nx\n",
		"Date: Mon, 4 Mar 2024 11:00:00 +0000\nMessage-ID: <r1@example.org>\nIn-Reply-To: <root@example.org>\nSubject: Re: Plans\n\nx\n",
		"Date: Mon, 4 Mar 2024 12:00:00 +0000\nMessage-ID: <r2@example.org>\nReferences: <root@example.org>\n <r1@example.org>\nIn-Reply-To: <root@example.org>\nSubject: Re: Plans\n\nx\n",
		"Date: Mon, 4 Mar 2024 09:00:00 +0000\nMessage-ID: <lunch@example.org>\nSubject: Lunch\n\nx\n",
		"Message-ID: <fwd@example.org>\nSubject: Fwd: Lunch\n\nno Date: the internal date, 1 March, stands for it\n",
	)
	c.mustOK("STORE 4 +FLAGS.SILENT (\\Seen)")
	checkAnswers(t, c, []cmdAnswer{
		{"THREAD REFERENCES UTF-8 ALL", "* THREAD (4 5)(1 2 3)"},
		{"UID THREAD REFERENCES UTF-8 ALL", "* THREAD (5 6)(2 3 4)"},
		{"THREAD ORDEREDSUBJECT UTF-8 ALL", "* THREAD (5 4)(1 (2)(3))"},
		{"UID THREAD ORDEREDSUBJECT US-ASCII ALL", "* THREAD (6 5)(2 (3)(4))"},
		{"thread references utf-8 subject lunch", "* THREAD (4 5)"},
		{"THREAD REFERENCES UTF-8 NOT SUBJECT lunch", "* THREAD (1 2 3)"},
		// Without the root, its replies stay together under it.
		{"THREAD REFERENCES UTF-8 2:3", "* THREAD (2 3)"},
		{"THREAD REFERENCES UTF-8 3", "* THREAD (3)"},
		{"THREAD REFERENCES UTF-8 SEEN", "* THREAD (4)"},
		{"THREAD REFERENCES UTF-8 DELETED", "* THREAD"},
		{"THREAD REFERENCES ISO-8859-1 SUBJECT plans", "* THREAD (1 2 3)"},
		{"THREAD REFERENCES UTF-8 HEADER References r1@", "* THREAD (3)"},
	})
	// RFC 7162 3.1.5: MODSEQ in the search turns CONDSTORE on; THREAD's
	// answer has no MODSEQ of its own.
	got := c.mustOK("THREAD REFERENCES UTF-8 MODSEQ 1")
	if !slices.Equal(got, []string{"* OK [HIGHESTMODSEQ " + strings.TrimPrefix(got[0], "* OK [HIGHESTMODSEQ "), "* THREAD (4 5)(1 2 3)"}) {
		t.Errorf("THREAD with MODSEQ: %q", got)
	}
	for _, cmd := range []string{"THREAD REFS UTF-8 ALL", "THREAD REFERENCES ALL", "THREAD REFERENCES UTF-8"} {
		if untagged, tagged := c.cmd(cmd); !strings.Contains(tagged, " BAD ") || len(untagged) > 0 {
			t.Errorf("%s: %q %s, want BAD alone", cmd, untagged, tagged)
		}
	}
	checkSearchRefusals(t, c, "THREAD REFERENCES")
	// IMAP4rev2 threads the same.
	c.mustOK("ENABLE IMAP4rev2")
	c.mustOK("SELECT INBOX")
	if got := c.mustOK("UID THREAD REFERENCES UTF-8 ALL"); !slices.Equal(got, []string{"* THREAD (5 6)(2 3 4)"}) {
		t.Errorf("IMAP4rev2: %q", got)
	}
}

// TestThreadExpunge: THREAD answers with message numbers, so an expunge
// made elsewhere is not reported during it (RFC 9051 7.5.1), and the
// message is left out; UID THREAD may report it.
func TestThreadExpunge(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	for i := range 3 {
		e.deliver("INBOX", fmt.Sprintf("Message-ID: <%d@x>\nReferences: <0@x>\nSubject: s\n\nx\n", i))
	}
	c := e.login()
	c.mustOK("SELECT INBOX")
	other := e.login()
	other.mustOK("SELECT INBOX")
	other.mustOK("STORE 2 +FLAGS.SILENT (\\Deleted)")
	other.mustOK("EXPUNGE")
	got := c.mustOK("THREAD REFERENCES UTF-8 ALL")
	// Message 1 refers to itself: the others are its replies.
	if !slices.Equal(got, []string{"* THREAD (1 3)"}) {
		t.Errorf("THREAD with an expunge elsewhere: %q", got)
	}
	for _, l := range got {
		if strings.HasSuffix(l, " EXPUNGE") {
			t.Errorf("EXPUNGE during THREAD: %q", got)
		}
	}
	got = c.mustOK("UID THREAD REFERENCES UTF-8 ALL")
	if !slices.Contains(got, "* 2 EXPUNGE") || !slices.Contains(got, "* THREAD (1 3)") {
		t.Errorf("UID THREAD after the expunge: %q", got)
	}
}

// FuzzThread threads messages made from arbitrary bytes: IDs and
// references drawn from a few names, so that duplicates, loops, missing
// parents and shared subjects abound. Either algorithm must name every
// message exactly once, in a well-formed answer (RFC 5256 5).
func FuzzThread(f *testing.F) {
	f.Add([]byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0})
	f.Add([]byte{1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4})
	f.Add([]byte{0x10, 0x21, 0x32, 0x43, 0x10, 0x21, 0x32, 0x43, 0xff, 0xee, 0x01})
	subjects := []string{"", "Re:", "a", "Re: a", "[l] a", "a (fwd)", "[Fwd: a]", "b", "Fw: b", "RE: [x] b"}
	f.Fuzz(func(t *testing.T, data []byte) {
		var in []tm
		for i := 0; i+3 < len(data) && len(in) < 64; i += 4 {
			id := func(b byte) string { return fmt.Sprintf("<%d@x>", b%8) }
			m := tm{date: int64(data[i] % 4), subject: subjects[int(data[i+1])%len(subjects)]}
			if data[i+1]&0x80 == 0 {
				m.id = id(data[i+2])
			}
			for k := range int(data[i+3] % 4) {
				m.refs += id(data[i+3]>>2+byte(k)*data[i+2]) + " "
			}
			if data[i+3]&0x80 != 0 {
				m.irt = id(data[i])
			}
			in = append(in, m)
		}
		for name, algorithm := range map[string]func([]threadMsg) []*threadNode{
			"REFERENCES": threadReferences, "ORDEREDSUBJECT": threadOrderedSubject,
		} {
			msgs := threadMsgs(in)
			got := threadString(msgs, algorithm(msgs))
			if err := checkThreads(got, len(msgs)); err != nil {
				t.Fatalf("%s: %v: %q\nfrom %+v", name, err, got, in)
			}
		}
	})
}

// checkThreads checks an answer of n messages against RFC 5256 5's
// grammar, and that it names each message exactly once.
func checkThreads(s string, n int) error {
	seen := make([]bool, n+1)
	depth := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '(':
			depth++
			if i+1 < len(s) && (s[i+1] == ')' || s[i+1] == ' ') {
				return fmt.Errorf("empty or spaced list at %d", i)
			}
		case c == ')':
			if depth--; depth < 0 {
				return fmt.Errorf("unbalanced at %d", i)
			}
			if depth == 0 && i+1 < len(s) && s[i+1] != '(' {
				return fmt.Errorf("%q after a thread at %d", s[i+1], i)
			}
		case c == ' ':
			if s[i-1] == ')' || s[i-1] == '(' || i+1 >= len(s) || s[i+1] == ' ' || s[i+1] == ')' {
				return fmt.Errorf("misplaced space at %d", i)
			}
		case '0' <= c && c <= '9':
			j := i
			for j < len(s) && '0' <= s[j] && s[j] <= '9' {
				j++
			}
			k, _ := strconv.Atoi(s[i:j])
			if k < 1 || k > n || seen[k] {
				return fmt.Errorf("message %d out of range or twice", k)
			}
			if j < len(s) && s[j] != ' ' && s[j] != ')' {
				return fmt.Errorf("%q after a number at %d", s[j], j)
			}
			seen[k] = true
			i = j - 1
		default:
			return fmt.Errorf("%q at %d", c, i)
		}
	}
	if depth != 0 {
		return fmt.Errorf("unbalanced")
	}
	for k := 1; k <= n; k++ {
		if !seen[k] {
			return fmt.Errorf("message %d missing", k)
		}
	}
	return nil
}

// TestThreadNoStructure: a message stored without a structure (before
// delivery parsed messages, or one the parser gave up on) has no
// envelope; its References, read from the header, still place it.
func TestThreadNoStructure(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.deliver("INBOX", "Date: Mon, 4 Mar 2024 10:00:00 +0000\nMessage-ID: <root@x>\nSubject: s\n\nx\n")
	sess := e.session()
	mb, err := sess.Mailbox(context.Background(), "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	raw := "Message-ID: <bare@x>\r\nReferences: <root@x>\r\nSubject: s\r\n\r\nbody\r\n"
	if _, err := sess.Append(context.Background(), mb.ID, &store.NewMessage{Body: strings.NewReader(raw), Size: int64(len(raw)),
		InternalDate: time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	c := e.login()
	c.mustOK("SELECT INBOX")
	for cmd, want := range map[string]string{
		"THREAD REFERENCES UTF-8 ALL":     "* THREAD (1 2)",
		"THREAD ORDEREDSUBJECT UTF-8 ALL": "* THREAD (2)(1)", // no subject to share; its internal date, 1 March, is its sent date
	} {
		if got := c.mustOK(cmd); !slices.Equal(got, []string{want}) {
			t.Errorf("%s: %q, want %q", cmd, got, want)
		}
	}
}

// TestThreadReferencesCached: THREAD REFERENCES reads each message's
// References once; a THREAD after it, from this session or another, gives
// the same answer without opening a body, and a message delivered since
// is read alone.
func TestThreadReferencesCached(t *testing.T) {
	t.Parallel()
	var bs *teststore.Batching
	e := newTestEnv(t, func(cfg *Config) {
		bs = teststore.BatchBodies(cfg.Store)
		cfg.Store = bs
	})
	c := e.loginWithGap(
		"Message-ID: <root@example.org>\nSubject: Plans\n\nx\n",
		"Message-ID: <r1@example.org>\nReferences: <root@example.org>\nSubject: Re: Plans\n\nx\n",
		"Message-ID: <r2@example.org>\nReferences: <root@example.org> <r1@example.org>\nSubject: Re: Plans\n\nx\n",
	)
	opened := func() int32 { return bs.OpenBodyCalls.Load() + bs.OpenBodiesCalls.Load() }
	want := []string{"* THREAD (1 2 3)"}
	before := opened()
	if got := c.mustOK("THREAD REFERENCES UTF-8 ALL"); !slices.Equal(got, want) {
		t.Fatalf("first THREAD: %q, want %q", got, want)
	}
	if opened() == before {
		t.Fatal("the first THREAD REFERENCES opened no body: References were not read")
	}
	other := e.login()
	other.mustOK("EXAMINE INBOX")
	before = opened()
	if got := other.mustOK("THREAD REFERENCES UTF-8 ALL"); !slices.Equal(got, want) {
		t.Errorf("THREAD again, from another session: %q, want %q", got, want)
	}
	if n := opened() - before; n != 0 {
		t.Errorf("THREAD again opened bodies %d times; want none, the References known", n)
	}

	e.deliver("INBOX", "Message-ID: <r3@example.org>\nReferences: <r1@example.org>\nSubject: Re: Plans\n\nx\n")
	c.mustOK("NOOP")
	before = opened()
	if got := c.mustOK("THREAD REFERENCES UTF-8 ALL"); !slices.Equal(got, []string{"* THREAD (1 2 (3)(4))"}) {
		t.Errorf("THREAD after a delivery: %q", got)
	}
	if n := opened() - before; n != 1 {
		t.Errorf("THREAD after a delivery opened bodies %d times; want once, for the new message", n)
	}
}
