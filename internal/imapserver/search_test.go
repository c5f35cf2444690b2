package imapserver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/buzon-mail/buzon/internal/message"
	"github.com/buzon-mail/buzon/internal/store"
)

// TestSearchResAfterFailure: a SEARCH RETURN (SAVE) refused with NO leaves
// the search result variable empty, so that a STORE pipelined behind it
// acts on no message rather than on an older result; one refused with BAD
// leaves the variable as it was (RFC 5182 2.1).
func TestSearchResAfterFailure(t *testing.T) {
	t.Parallel()
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
	c.write("n1 SEARCH RETURN (SAVE) CHARSET X-NOWHERE BODY x\r\nn2 STORE $ +FLAGS (\\Deleted)\r\n")
	if _, tagged := c.readUntil("n1"); !strings.HasPrefix(tagged, "n1 NO [BADCHARSET") {
		t.Errorf("SEARCH CHARSET X-NOWHERE: %s", tagged)
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
	t.Parallel()
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
	t.Parallel()
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

// TestSearchReturnRepeated: a result option named twice is answered once.
func TestSearchReturnRepeated(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.deliver("INBOX", "Subject: one\n\nbody\n", `\Flagged`)
	e.deliver("INBOX", "Subject: two\n\nbody\n")
	c := e.login()
	c.mustOK("SELECT INBOX")
	if got := c.mustOK("SEARCH RETURN (MIN min COUNT MIN) ALL"); len(got) != 1 || got[0] != fmt.Sprintf(`* ESEARCH (TAG "t%d") MIN 1 COUNT 2`, c.n) {
		t.Errorf("RETURN (MIN min COUNT MIN): %q", got)
	}
	// SAVE alone, if twice, still answers nothing (RFC 5182 2.2).
	if got := c.mustOK("SEARCH RETURN (SAVE SAVE) FLAGGED"); len(got) != 0 {
		t.Errorf("RETURN (SAVE SAVE): %q", got)
	}
	if got := c.mustOK("SEARCH $"); len(got) != 1 || got[0] != "* SEARCH 1" {
		t.Errorf("SEARCH $ after RETURN (SAVE SAVE): %q", got)
	}
}

// TestSearchModSeqEntry: the entry of a MODSEQ key names a flag, and its
// type is priv, shared or all (RFC 7162 7); anything else is BAD.
func TestSearchModSeqEntry(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.deliver("INBOX", "Subject: one\n\nbody\n")
	c := e.login()
	c.mustOK("SELECT INBOX")
	c.mustOK("ENABLE CONDSTORE") // the first MODSEQ search would announce HIGHESTMODSEQ
	for _, tc := range []struct {
		criteria string
		ok       bool
	}{
		{`MODSEQ "/flags/\\Seen" all 1`, true},
		{`MODSEQ "/flags/\\Draft" priv 1`, true},
		{`MODSEQ "/FLAGS/$Work" SHARED 1`, true},
		{`MODSEQ 1`, true},
		{`MODSEQ "/flags/\\Seen" bogus 1`, false},
		{`MODSEQ "/flags/\\Seen" 1`, false},
		{`MODSEQ "/shared/comment" all 1`, false},
		{`MODSEQ "/flags/" all 1`, false},
	} {
		untagged, tagged := c.cmd("SEARCH " + tc.criteria)
		switch {
		case tc.ok && (!strings.Contains(tagged, " OK ") || len(untagged) != 1 || !strings.HasPrefix(untagged[0], "* SEARCH 1 (MODSEQ ")):
			t.Errorf("SEARCH %s: %q %s, want message 1", tc.criteria, untagged, tagged)
		case !tc.ok && !strings.Contains(tagged, " BAD "):
			t.Errorf("SEARCH %s: %s, want BAD", tc.criteria, tagged)
		}
	}
}

// TestSearchTextPartHeaders: TEXT finds what the headers of body parts
// say, an attachment's file name or description, down to the parts of an
// encapsulated message, encoded words decoded (RFC 9051 6.4.4: "in the
// header or body of the message"); BODY finds only body text.
func TestSearchTextPartHeaders(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.deliver("INBOX", "From: alice@example.org\nSubject: figures\nMIME-Version: 1.0\n"+
		"Content-Type: multipart/mixed; boundary=\"b\"\n\n"+
		"--b\nContent-Type: text/plain\n\nSee the attachment.\n"+
		"--b\nContent-Type: application/octet-stream\nContent-Description: Quarterly numbers\n"+
		"Content-Disposition: attachment;\n filename=\"report-file.bin\"\nContent-Transfer-Encoding: base64\n\n"+
		"AAECAwQFBgcICQ==\n--b--\n")
	e.deliver("INBOX", "From: bob@example.org\nSubject: no attachment\n\nThe report file is late.\n")
	e.deliver("INBOX", "From: carol@example.org\nSubject: forwarded\nMIME-Version: 1.0\n"+
		"Content-Type: multipart/mixed; boundary=\"o\"\n\n"+
		"--o\nContent-Type: text/plain\n\nForwarding this.\n"+
		"--o\nContent-Type: message/rfc822\n\n"+
		"From: dave@example.org\nSubject: cv\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"i\"\n\n"+
		"--i\nContent-Type: text/plain\n\nMy CV.\n"+
		"--i\nContent-Type: application/pdf\n"+
		"Content-Disposition: attachment; filename=\"=?utf-8?q?r=C3=A9sum=C3=A9-2024.pdf?=\"\n\n%PDF\n"+
		"--i--\n--o--\n")
	c := e.login()
	c.mustOK("SELECT INBOX")
	for _, tc := range []struct{ criteria, want string }{
		{"TEXT report-file", "* SEARCH 1"},
		{"TEXT REPORT-FILE.BIN", "* SEARCH 1"},
		{`TEXT "quarterly numbers"`, "* SEARCH 1"},
		{"TEXT application/octet-stream", "* SEARCH 1"},
		{`TEXT "résumé-2024"`, "* SEARCH 3"},
		{"TEXT dave@example.org", "* SEARCH 3"}, // the encapsulated message's header
		{`TEXT "report file"`, "* SEARCH 2"},
		{"NOT TEXT report-file", "* SEARCH 2 3"},
		{"BODY report-file", "* SEARCH"},
		{`BODY "quarterly numbers"`, "* SEARCH"},
		{`BODY "résumé-2024"`, "* SEARCH"},
		{"BODY attachment", "* SEARCH 1"}, // the text part's own words
	} {
		if got := c.mustOK("SEARCH CHARSET UTF-8 " + tc.criteria); len(got) != 1 || got[0] != tc.want {
			t.Errorf("SEARCH %s: %q, want %q", tc.criteria, got, tc.want)
		}
	}
}

// TestFoldedContains: the header search finds what decoding the header
// and folding both sides finds, in ASCII or not, with encoded words or
// not, from one header to the next with the same buffers.
func TestFoldedContains(t *testing.T) {
	t.Parallel()
	var b searchBuffers
	for _, tc := range []struct {
		header, sub string
		want        bool
	}{
		{"Content-Disposition: attachment;\r\n filename=\"Report-File.BIN\"\r\n", "report-file.bin", true},
		{"Content-Disposition: attachment;\r\n filename=\"Report-File.BIN\"\r\n", "REPORT-FILE.BIN", true},
		{"Content-Type: text/plain\r\n", "report", false},
		{"Content-Type: application/pdf; name=\"=?utf-8?q?R=C3=A9sum=C3=A9.pdf?=\"\r\n", "résumé.pdf", true},
		{"Content-Type: application/pdf; name=\"=?utf-8?q?R=C3=A9sum=C3=A9.pdf?=\"\r\n", "=?utf-8?q", false},
		{"Content-Description: \xc3\x84rger mit dem Bericht\r\n", "ärger", true},
		{"Content-Description: \xc3\x84rger mit dem Bericht\r\n", "BERICHT", true},
		{"Content-Description: Straße\r\n", "STRASSE", false},
		{"Subject: x\r\n", "", true},
		{"Subject: [list] headers and\r\n\tfolded subject\r\n", "headers and folded", true},
		{"Subject: [list] headers and\r\n\tfolded subject\r\n", "AND  FOLDED", true},
		{"Subject: a \r\n =?utf-8?q?=CE=A3=CE=8A=CE=A3=CE=A5=CE=A6=CE=9F=CE=A3?= b\r\n", "a σίσυφος b", true},
		{"Content-Description: \xce\xa3\xce\x8a\xce\xa3\xce\xa5\xce\xa6\xce\x9f\xce\xa3\r\n", "σίσυφος", true},
		{"Subject: x\r\nFrom: y\r\n", "x from", true}, // fields meet at one space
	} {
		ref := strings.Contains(fold(message.DecodeHeaderValue(tc.header)), fold(tc.sub))
		got := b.foldedContains([]byte(tc.header), []byte(fold(tc.sub)))
		if got != tc.want || ref != tc.want {
			t.Errorf("%q in %q: %v (decoded and folded: %v), want %v", tc.sub, tc.header, got, ref, tc.want)
		}
	}
}

// TestStreamContains: the text search finds a needle wherever it falls
// against the edges of the chunks it reads, a letter cut in two by an edge
// included, and a search with the same buffers does not see the text of
// the one before.
func TestStreamContains(t *testing.T) {
	t.Parallel()
	var b searchBuffers
	const chunk = 64 * 1024
	for off := chunk - 12; off <= chunk+4; off++ {
		text := strings.Repeat("x", off) + "NÉEDLE" + strings.Repeat("x", 2*chunk)
		if !b.streamContains(strings.NewReader(text), []byte("xnéedlex")) {
			t.Errorf("needle at %d not found", off)
		}
		if b.streamContains(strings.NewReader(text), []byte("xnéedlf")) {
			t.Errorf("needle at %d: another found", off)
		}
	}
	// A run of white space is one space, cut by an edge too.
	for _, text := range []string{
		strings.Repeat("x", chunk-1) + " \r\n\ty",
		strings.Repeat("x", chunk) + "\r\n y",
		strings.Repeat("x", chunk-1) + "\r\n" + strings.Repeat(" ", chunk) + "y",
	} {
		if !b.streamContains(strings.NewReader(text), []byte("x y")) {
			t.Errorf("x y not found in %q", text[chunk-3:chunk+3])
		}
	}
	if !b.streamContains(strings.NewReader("x"), []byte("")) {
		t.Error("the empty needle not found")
	}
	b.streamContains(strings.NewReader(strings.Repeat("x", chunk+10)+"nee"), []byte("needle"))
	if b.streamContains(strings.NewReader("dle"), []byte("needle")) {
		t.Error("found with the text of the search before")
	}
	// Not UTF-8: read byte by byte (message.StrayRune), a letter cut by
	// an edge too.
	if !b.streamContains(strings.NewReader("caf\xc9 AU LAIT"), []byte("café au lait")) {
		t.Error("text that is not UTF-8 not found")
	}
	if !b.streamContains(strings.NewReader(strings.Repeat("x", chunk-4)+"caf\xe9"), []byte("café")) {
		t.Error("text that is not UTF-8 not found at the end of a chunk")
	}
}

// fileBody is a message body read from a file, as the embedded store
// serves it.
type fileBody struct {
	*os.File
	size int64
}

func (b fileBody) Size() int64 { return b.size }

// benchSearchMsg stores msg in a file and returns it ready for a text
// search, its structure parsed as at delivery.
func benchSearchMsg(b *testing.B, msg string) *searchMsg {
	b.Helper()
	msg = crlf(msg)
	part, err := message.Parse(strings.NewReader(msg))
	if err != nil {
		b.Fatal(err)
	}
	name := filepath.Join(b.TempDir(), "msg")
	if err := os.WriteFile(name, []byte(msg), 0o600); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return &searchMsg{m: &store.MessageInfo{Size: int64(len(msg))}, body: fileBody{f, int64(len(msg))}, part: part,
		bufs: &searchBuffers{}}
}

// benchMultipart is a message as mail clients send it: a text and an HTML
// alternative and two attachments.
func benchMultipart() string {
	var b strings.Builder
	b.WriteString("From: Alice <alice@example.org>\nTo: bob@example.org\nSubject: quarterly figures\n" +
		"Date: Mon, 4 Mar 2024 10:00:00 +0000\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"m\"\n\n" +
		"--m\nContent-Type: multipart/alternative; boundary=\"a\"\n\n" +
		"--a\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n")
	for range 60 {
		b.WriteString("The figures for the quarter are attached; the totals are on the second sheet.\n")
	}
	b.WriteString("--a\nContent-Type: text/html; charset=utf-8\n\n")
	for range 60 {
		b.WriteString("<p>The figures for the quarter are <b>attached</b>; the totals are on the second sheet.</p>\n")
	}
	b.WriteString("--a--\n\n--m\nContent-Type: application/pdf; name=\"figures.pdf\"\n" +
		"Content-Disposition: attachment; filename=\"figures.pdf\"\nContent-Transfer-Encoding: base64\n\n")
	for range 800 {
		b.WriteString("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\n")
	}
	b.WriteString("--m\nContent-Type: image/png; name=\"chart.png\"\n" +
		"Content-Disposition: attachment; filename=\"chart.png\"\nContent-Transfer-Encoding: base64\n\n")
	for range 200 {
		b.WriteString("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA\n")
	}
	b.WriteString("--m--\n")
	return b.String()
}

// BenchmarkSearchText measures the text keys on one message that does not
// match, so every part is read: a plain message, and a multipart one with
// attachments.
func BenchmarkSearchText(b *testing.B) {
	plain := "From: Alice <alice@example.org>\nSubject: figures\n\n" + strings.Repeat("The totals are on the second sheet.\n", 200)
	for _, bc := range []struct {
		name, msg string
		header    bool
	}{
		{"plain/BODY", plain, false},
		{"plain/TEXT", plain, true},
		{"multipart/BODY", benchMultipart(), false},
		{"multipart/TEXT", benchMultipart(), true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			sm := benchSearchMsg(b, bc.msg)
			b.SetBytes(sm.m.Size)
			b.ReportAllocs()
			for b.Loop() {
				sm.header = nil
				if sm.bodyContains([]byte("nowhere-to-be-found"), bc.header) {
					b.Fatal("matched")
				}
			}
		})
	}
}

// litPlus is s as a non-synchronizing literal (RFC 7888).
func litPlus(s string) string { return fmt.Sprintf("{%d+}\r\n%s", len(s), s) }

// TestSearchFolding: the string keys compare case-insensitively every
// case of a letter, final sigma and σ among them, and a line break or a
// tab, in a header or a body, as the space a reader sees; the empty
// string is in every message's body, one without text too (RFC 9051
// 6.4.4).
func TestSearchFolding(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.deliver("INBOX", "From: =?UTF-8?B?zpHOu86tzr7Osc69zrTPgc6/z4I=?= <alex@example.gr>\n"+
		"Subject: =?UTF-8?Q?=CE=A3=CE=A4=CE=9F_=CE=A0=CE=91=CE=99=CE=A7=CE=9D=CE=99=CE=94=CE=99=CE=A3?=\n"+
		"MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\nΟ ΣΊΣΥΦΟΣ ανεβαίνει.\n")
	e.deliver("INBOX", "From: list@example.org\nSubject: [list] headers and\n\tfolded subject line\n"+
		"X-Note: one\n  two\n\nA paragraph wrapped as mail is, shall we meet on\nFriday?  Bring\tthe plan.\n")
	e.deliver("INBOX", "From: bin@example.org\nSubject: attachment only\nMIME-Version: 1.0\n"+
		"Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nAAECAwQF\n")
	c := e.login()
	c.mustOK("SELECT INBOX")
	for _, tc := range []struct{ criteria, want string }{
		{"FROM " + litPlus("ΑΛΈΞΑΝΔΡΟΣ"), "* SEARCH 1"}, // Αλέξανδρος, with a final ς
		{"FROM " + litPlus("αλέξανδροσ"), "* SEARCH 1"},
		{"SUBJECT " + litPlus("παιχνιδισ"), "* SEARCH 1"},
		{"SUBJECT " + litPlus("στο παιχνίδι"), "* SEARCH"}, // accents still count
		{"BODY " + litPlus("σίσυφος"), "* SEARCH 1"},
		{"TEXT " + litPlus("σίσυφος"), "* SEARCH 1"},
		{`SUBJECT "headers and folded"`, "* SEARCH 2"},
		{`SUBJECT "and	folded"`, "* SEARCH 2"},
		{`SUBJECT "and  folded"`, "* SEARCH 2"},
		{`HEADER X-Note "one two"`, "* SEARCH 2"},
		{`TEXT "headers and folded subject"`, "* SEARCH 2"},
		{`TEXT "and folded"`, "* SEARCH 2"},
		{`BODY "meet on Friday"`, "* SEARCH 2"}, // across the line break
		{`TEXT "MEET ON  FRIDAY? BRING THE PLAN"`, "* SEARCH 2"},
		{`BODY "onfriday"`, "* SEARCH"},
		{`BODY ""`, "* SEARCH 1 2 3"},
		{`TEXT ""`, "* SEARCH 1 2 3"},
		{`NOT BODY ""`, "* SEARCH"},
	} {
		if got := c.mustOK("SEARCH CHARSET UTF-8 " + tc.criteria); len(got) != 1 || got[0] != tc.want {
			t.Errorf("SEARCH %s: %q, want %q", strings.ReplaceAll(tc.criteria, "\r\n", " "), got, tc.want)
		}
	}
}

// TestFoldRune: every case of a letter folds to one rune.
func TestFoldRune(t *testing.T) {
	t.Parallel()
	for _, group := range []string{"Σσς", "Ss\u017f", "Kk\u212a", "Iiı", "ǄǅǆǄ", "Ωω\u2126", "ẞß"} {
		rs := []rune(group)
		for _, r := range rs[1:] {
			if foldRune(r) != foldRune(rs[0]) {
				t.Errorf("%q folds to %q, %q to %q", r, foldRune(r), rs[0], foldRune(rs[0]))
			}
		}
	}
	if foldRune('é') == foldRune('e') {
		t.Error("é folds as e")
	}
}

// TestSearchCharset: the strings of a search in another charset than
// UTF-8 are read in that charset, and a charset not known is NO
// [BADCHARSET] (RFC 9051 6.4.4).
func TestSearchCharset(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.deliver("INBOX", "From: =?ISO-8859-1?Q?Jos=E9?= <jose@example.org>\nSubject: =?ISO-8859-1?Q?Ni=F1o?= and others\n"+
		"MIME-Version: 1.0\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\n"+
		"Un caf=E9 cr=E8me.\n")
	e.deliver("INBOX", "Subject: =?koi8-r?b?8NLJ18XU?=\n\nplain\n")
	c := e.login()
	c.mustOK("SELECT INBOX")
	for _, tc := range []struct{ search, want string }{
		{"SEARCH CHARSET ISO-8859-1 BODY " + litPlus("CAF\xc9 CR\xc8ME"), "* SEARCH 1"},
		{"SEARCH CHARSET iso-8859-1 SUBJECT " + litPlus("ni\xf1o"), "* SEARCH 1"},
		{"SEARCH CHARSET windows-1252 FROM " + litPlus("Jos\xe9"), "* SEARCH 1"},
		{"SEARCH CHARSET KOI8-R SUBJECT " + litPlus("\xf0\xd2\xc9\xd7\xc5\xd4"), "* SEARCH 2"}, // Привет
		{"SEARCH CHARSET UTF-8 SUBJECT " + litPlus("привет"), "* SEARCH 2"},
		{"SEARCH CHARSET US-ASCII SUBJECT others", "* SEARCH 1"},
		{"SEARCH CHARSET ISO-8859-1 ALL", "* SEARCH 1 2"},
	} {
		if got := c.mustOK(tc.search); len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s: %q, want %q", strings.ReplaceAll(tc.search, "\r\n", " "), got, tc.want)
		}
	}
	for _, search := range []string{"SEARCH CHARSET X-NOWHERE ALL", "SEARCH CHARSET X-NOWHERE BODY " + litPlus("caf\xe9")} {
		if _, tagged := c.cmd(search); !strings.Contains(tagged, " NO [BADCHARSET (UTF-8 US-ASCII)] ") {
			t.Errorf("%s: %s, want NO [BADCHARSET]", strings.ReplaceAll(search, "\r\n", " "), tagged)
		}
	}
}

// TestSearchEmptySubject: SUBJECT "" finds the messages with a Subject
// field, an empty one too, as HEADER Subject "" does (RFC 9051 6.4.4).
func TestSearchEmptySubject(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.deliver("INBOX", "From: a@example.org\nSubject: something\n\nbody\n")
	e.deliver("INBOX", "From: b@example.org\nSubject:\n\nbody\n")
	e.deliver("INBOX", "From: c@example.org\n\nbody\n")
	c := e.login()
	c.mustOK("SELECT INBOX")
	for _, tc := range []struct{ criteria, want string }{
		{`SUBJECT ""`, "* SEARCH 1 2"},
		{`HEADER Subject ""`, "* SEARCH 1 2"},
		{`SUBJECT something`, "* SEARCH 1"},
		{`NOT SUBJECT ""`, "* SEARCH 3"},
	} {
		if got := c.mustOK("SEARCH " + tc.criteria); len(got) != 1 || got[0] != tc.want {
			t.Errorf("SEARCH %s: %q, want %q", tc.criteria, got, tc.want)
		}
	}
}

// TestSentDay: the SENT keys read the date of a Date field as its sender
// wrote it, in RFC 5322's forms, its obsolete ones and the ones mailers
// get wrong, and nothing from a field that holds no date.
func TestSentDay(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ field, want string }{
		{"Mon, 4 Mar 2024 10:00:00 +0000", "2024-03-04"},
		{"Mon, 04 Mar 2024 23:59:59 -1200", "2024-03-04"}, // 5 March in UTC
		{"Mon, 4 Mar 2024 00:00:00 +1400", "2024-03-04"},  // 3 March in UTC
		{"4 Mar 2024 10:00 +0000", "2024-03-04"},
		{"Mon,  4 mar 2024 10:00:00 -0000 (Coordinated\r\n Universal Time)", "2024-03-04"},
		{"Tue, 4 OCT 2024 10:00:00 EST", "2024-10-04"},
		{"Mon, 4 Mar 2024 10:00:00 Z", "2024-03-04"},
		{"Mon, 4 Mar 2024 10:00:00", "2024-03-04"},
		{"Mon, 4 Mar 2024 10.00.00 +0000", "2024-03-04"},
		{"Sun, 4 Mar 2024 10:00:00 +0000", "2024-03-04"}, // the wrong day of the week
		{"1 Mar 24 22:00:00 EST", "2024-03-01"},          // RFC 5322 4.3
		{"1 Mar 99 22:00:00 EST", "1999-03-01"},
		{"1 Mar 124 22:00:00 EST", "2024-03-01"},
		{"Monday, 04-Mar-24 10:00:00 GMT", "2024-03-04"}, // RFC 850
		{"Mon Mar  4 10:00:00 2024", "2024-03-04"},       // asctime
		{"Mon Mar 4 10:00:00 PST 2024", "2024-03-04"},
		{"2024-03-04T10:00:00Z", "2024-03-04"},
		{"2024-02-30", ""},
		{"4 3 2024", ""},
		{"4 September 2024 10:00:00 +0200", "2024-09-04"},
		{"sometime last week", ""},
		{"Mon, 4 Mar 10:00:00 +0000", ""},
		{"Mon, 4 Mar 10:00:00 -0500", ""},
		{"Fri, 30 Feb 2024 10:00:00 +0000", ""},
		{"2024", ""},
		{"", ""},
	} {
		got := ""
		if d, ok := sentDay(tc.field); ok {
			got = d.Format("2006-01-02")
		}
		if got != tc.want {
			t.Errorf("%q: %q, want %q", tc.field, got, tc.want)
		}
	}
}

// TestSearchUnlabelled8bit: 8-bit text without a charset, or with one not
// known, is searched as Windows-1252 where it is not UTF-8
// (message.StrayRune), in the body as in the header.
func TestSearchUnlabelled8bit(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.deliver("INBOX", "Subject: caf\xe9\n\nUn caf\xe9 cr\xe8me.\n")
	e.deliver("INBOX", "Subject: x\nMIME-Version: 1.0\nContent-Type: text/plain; charset=x-unknown\n\nNi\xf1o\n")
	e.deliver("INBOX", "Subject: y\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\nNi\xc3\xb1o caf\xc3\xa9\n")
	e.deliver("INBOX", "Subject: \x93quoted\x94\n\nI don\x92t know \x96 \x805.\n")
	c := e.login()
	c.mustOK("SELECT INBOX")
	for _, tc := range []struct{ criteria, want string }{
		{"BODY " + litPlus("café crème"), "* SEARCH 1"},
		{"BODY " + litPlus("CAFÉ"), "* SEARCH 1 3"},
		{"TEXT " + litPlus("niño"), "* SEARCH 2 3"},
		{"SUBJECT " + litPlus("café"), "* SEARCH 1"},
		{"BODY " + litPlus("don’t know – €5"), "* SEARCH 4"},
		{"SUBJECT " + litPlus("“quoted”"), "* SEARCH 4"},
	} {
		if got := c.mustOK("SEARCH CHARSET UTF-8 " + tc.criteria); len(got) != 1 || got[0] != tc.want {
			t.Errorf("SEARCH %s: %q, want %q", strings.ReplaceAll(tc.criteria, "\r\n", " "), got, tc.want)
		}
	}
}

// TestSearchKeywordQuoted: a keyword may come quoted or as a literal, as
// some clients send it, and is matched as the atom would be.
func TestSearchKeywordQuoted(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.deliver("INBOX", "Subject: one\n\nbody\n", "$Work")
	e.deliver("INBOX", "Subject: two\n\nbody\n")
	c := e.login()
	c.mustOK("SELECT INBOX")
	for _, tc := range []struct{ criteria, want string }{
		{`KEYWORD "$Work"`, "* SEARCH 1"},
		{`KEYWORD "$work"`, "* SEARCH 1"},
		{"KEYWORD {5+}\r\n$Work", "* SEARCH 1"},
		{`UNKEYWORD "$Work"`, "* SEARCH 2"},
		{`KEYWORD "no such keyword"`, "* SEARCH"},
	} {
		if got := c.mustOK("SEARCH " + tc.criteria); len(got) != 1 || got[0] != tc.want {
			t.Errorf("SEARCH %s: %q, want %q", strings.ReplaceAll(tc.criteria, "\r\n", " "), got, tc.want)
		}
	}
}
