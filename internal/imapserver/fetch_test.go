package imapserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/message"
	"github.com/buzon-mail/buzon/internal/store"
)

// Regression tests for what an audit of FETCH against Dovecot's imaptest
// scenarios found.

// fetchCase is a FETCH and the one response it must give, literals
// inline as client.readLine gives them.
type fetchCase struct{ fetch, want string }

// checkFetches runs each FETCH on c and compares its response.
func checkFetches(t *testing.T, c *client, cases []fetchCase) {
	t.Helper()
	for _, tc := range cases {
		untagged, tagged := c.cmd(tc.fetch)
		if !strings.Contains(tagged, " OK ") || len(untagged) != 1 || untagged[0] != tc.want {
			t.Errorf("%s:\n got %q %q\nwant %q", tc.fetch, untagged, tagged, tc.want)
		}
	}
}

// lit is a literal as client.readLine gives it: "{n}" CRLF and s.
func lit(s string) string { return fmt.Sprintf("{%d}\r\n%s", len(s), s) }

// lit8 is a literal8.
func lit8(s string) string { return "~" + lit(s) }

// TestParamsNotUTF8: a parameter value that is not UTF-8 after decoding
// (in a charset the server does not know, said to be UTF-8 but not, or
// raw 8-bit) is read as Windows-1252, so an IMAP4rev1 client is not told
// "utf-8" of bytes that are not, and a UTF-8 client gets valid UTF-8.
func TestParamsNotUTF8(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	part := func(param string) string {
		return "--b\r\nContent-Type: application/octet-stream; " + param + "\r\n\r\nx\r\n"
	}
	e.deliver("INBOX", "From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"+
		part("name*=x-bogus''%E9t%E9.bin")+part("name*=utf-8''%E9t%E9.bin")+part("name=\"\xe9t\xe9.bin\"")+"--b--\r\n")
	c := e.login()
	c.mustOK("EXAMINE INBOX")
	structure := func(param string) string {
		p := `("APPLICATION" "OCTET-STREAM" (` + param + `) NIL NIL "7BIT" 1 NIL NIL NIL NIL)`
		return `* 1 FETCH (BODYSTRUCTURE (` + p + p + p + ` "MIXED" ("BOUNDARY" "b") NIL NIL NIL))`
	}
	checkFetches(t, c, []fetchCase{{"FETCH 1 (BODYSTRUCTURE)", structure(`"NAME*" "utf-8''%C3%A9t%C3%A9.bin"`)}})
	c.mustOK("ENABLE UTF8=ACCEPT")
	checkFetches(t, c, []fetchCase{{"FETCH 1 (BODYSTRUCTURE)", structure(`"NAME" "été.bin"`)}})
}

// TestFetchNoNUL: NUL may travel in a literal8 only (RFC 9051 9: an
// ordinary literal is CHAR8, %x01-ff; a quoted string holds no NUL
// either). Every other literal, of a body section or of a string of
// ENVELOPE or BODYSTRUCTURE, carries 0x80 in its place, so sizes and
// offsets hold; BINARY keeps the NULs, in a literal8, and shows that the
// stored message is as delivered.
func TestFetchNoNUL(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	header := "From: A\x00B <a@example.org>\r\nSubject: nul\x00here\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
	text := "--b\r\nContent-Type: text/plain; name=\"x\x00y\"\r\n\r\nbody\x00text\r\n" +
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--b--\r\n"
	msg := header + text
	e.deliver("INBOX", msg)
	c := e.login()
	c.mustOK("EXAMINE INBOX")
	mend := func(s string) string { return strings.ReplaceAll(s, "\x00", "\x80") }
	from := `((` + lit("A\x80B") + ` NIL "a" "example.org"))`
	checkFetches(t, c, []fetchCase{
		{"FETCH 1 (BODY[])", "* 1 FETCH (BODY[] " + lit(mend(msg)) + ")"},
		{"FETCH 1 (BODY[]<5.10>)", "* 1 FETCH (BODY[]<5> " + lit(mend(msg[5:15])) + ")"},
		// RFC 9051 9: the partial's numbers are number64.
		{"FETCH 1 (BODY[]<5.4294967296>)", "* 1 FETCH (BODY[]<5> " + lit(mend(msg[5:])) + ")"},
		{"FETCH 1 (BODY[]<4294967296.10>)", "* 1 FETCH (BODY[]<4294967296> " + lit("") + ")"},
		{"FETCH 1 (BODY[HEADER])", "* 1 FETCH (BODY[HEADER] " + lit(mend(header)) + ")"},
		{"FETCH 1 (BODY[TEXT])", "* 1 FETCH (BODY[TEXT] " + lit(mend(text)) + ")"},
		{"FETCH 1 (BODY[1])", "* 1 FETCH (BODY[1] " + lit("body\x80text") + ")"},
		{"FETCH 1 (BODY[1]<2.4>)", "* 1 FETCH (BODY[1]<2> " + lit("dy\x80t") + ")"},
		{"FETCH 1 (BODY[1.MIME])", "* 1 FETCH (BODY[1.MIME] " + lit("Content-Type: text/plain; name=\"x\x80y\"\r\n\r\n") + ")"},
		{"FETCH 1 (BODY[HEADER.FIELDS (SUBJECT)])", "* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT)] " + lit("Subject: nul\x80here\r\n\r\n") + ")"},
		{"FETCH 1 (RFC822)", "* 1 FETCH (RFC822 " + lit(mend(msg)) + ")"},
		{"FETCH 1 (RFC822.HEADER)", "* 1 FETCH (RFC822.HEADER " + lit(mend(header)) + ")"},
		{"FETCH 1 (RFC822.TEXT)", "* 1 FETCH (RFC822.TEXT " + lit(mend(text)) + ")"},
		{"FETCH 1 (RFC822.SIZE)", fmt.Sprintf("* 1 FETCH (RFC822.SIZE %d)", len(msg))},
		{"FETCH 1 (ENVELOPE)", "* 1 FETCH (ENVELOPE (NIL " + lit("nul\x80here") + " " + from + " " + from + " " + from + " NIL NIL NIL NIL NIL))"},
		{"FETCH 1 (BODYSTRUCTURE)", `* 1 FETCH (BODYSTRUCTURE (("TEXT" "PLAIN" ("NAME" ` + lit("x\x80y") + `) NIL NIL "7BIT" 9 0 NIL NIL NIL NIL)` +
			`("APPLICATION" "OCTET-STREAM" NIL NIL NIL "BASE64" 4 NIL NIL NIL NIL) "MIXED" ("BOUNDARY" "b") NIL NIL NIL))`},
		// BINARY: literal8, NULs and all.
		{"FETCH 1 (BINARY[])", "* 1 FETCH (BINARY[] " + lit8(msg) + ")"},
		{"FETCH 1 (BINARY[1])", "* 1 FETCH (BINARY[1] " + lit8("body\x00text") + ")"},
		{"FETCH 1 (BINARY[2])", "* 1 FETCH (BINARY[2] " + lit8("\x00\x01\x02") + ")"},
	})
}

// TestFetchSetsSeenCondstore: with CONDSTORE on, the FETCH response that
// reports the \Seen a FETCH set carries UID and MODSEQ (RFC 7162 3.1),
// with the MODSEQ that change got, the one the view records as
// reported: no later FETCH or sync reports the change again, and a change
// another session made right after is reported by the sync after the
// command, with its own MODSEQ.
func TestFetchSetsSeenCondstore(t *testing.T) {
	t.Parallel()
	// modSeq asks the message's MODSEQ, in a command that changes nothing.
	modSeq := func(c *client, seq int) string {
		t.Helper()
		untagged := c.mustOK(fmt.Sprintf("FETCH %d (MODSEQ)", seq))
		if len(untagged) != 1 {
			t.Fatalf("FETCH %d (MODSEQ): %q", seq, untagged)
		}
		_, after, _ := strings.Cut(untagged[0], "MODSEQ (")
		return strings.TrimSuffix(after, "))")
	}
	t.Run("each form", func(t *testing.T) {
		_, c := ownWritesEnv(t, func(st store.Store) store.Store { return st })
		c.mustOK("ENABLE CONDSTORE")
		for _, tc := range []struct{ fetch, want string }{
			{"FETCH 1 (BODY[TEXT])", `* 1 FETCH (BODY[TEXT] ` + lit("one\r\n") + ` FLAGS (\Seen) UID 1 MODSEQ (%s))`},
			{"FETCH 2 (RFC822.TEXT)", `* 2 FETCH (RFC822.TEXT ` + lit("two\r\n") + ` FLAGS (\Seen) UID 2 MODSEQ (%s))`},
			{"UID FETCH 3 (FLAGS RFC822 MODSEQ)", `* 3 FETCH (UID 3 FLAGS (\Seen) RFC822 ` + lit("Subject: three\r\n\r\nthree\r\n") + ` MODSEQ (%s))`},
		} {
			untagged := c.mustOK(tc.fetch)
			seq := tc.want[2:3]
			want := fmt.Sprintf(tc.want, modSeq(c, int(seq[0]-'0')))
			if len(untagged) != 1 || untagged[0] != want {
				t.Errorf("%s: %q, want %q", tc.fetch, untagged, want)
			}
		}
		if untagged := c.mustOK("NOOP"); len(untagged) != 0 {
			t.Errorf("NOOP after: %q, want nothing: the changes were reported", untagged)
		}
		// Already \Seen: nothing changed, nothing more to say.
		if untagged := c.mustOK("FETCH 1 (BODY[TEXT])"); len(untagged) != 1 || untagged[0] != "* 1 FETCH (BODY[TEXT] "+lit("one\r\n")+")" {
			t.Errorf("FETCH of a seen message: %q", untagged)
		}
	})
	t.Run("without CONDSTORE", func(t *testing.T) {
		_, c := ownWritesEnv(t, func(st store.Store) store.Store { return st })
		want := `* 1 FETCH (BODY[TEXT] ` + lit("one\r\n") + ` FLAGS (\Seen))`
		if untagged := c.mustOK("FETCH 1 (BODY[TEXT])"); len(untagged) != 1 || untagged[0] != want {
			t.Errorf("FETCH 1 (BODY[TEXT]): %q, want %q", untagged, want)
		}
	})
	t.Run("another change right after", func(t *testing.T) {
		var rs *raceAfterSeen
		_, c := ownWritesEnv(t, func(st store.Store) store.Store {
			rs = &raceAfterSeen{Store: st}
			return rs
		})
		c.mustOK("ENABLE CONDSTORE")
		rs.armed.Store(true)
		untagged := c.mustOK("FETCH 2 (BODY[TEXT])")
		seen, flagged := rs.seen.Load(), rs.flagged.Load()
		if seen == 0 || flagged <= seen {
			t.Fatalf("the race did not run: \\Seen at MODSEQ %d, \\Flagged at %d", seen, flagged)
		}
		want := []string{
			fmt.Sprintf(`* 2 FETCH (BODY[TEXT] %s FLAGS (\Seen) UID 2 MODSEQ (%d))`, lit("two\r\n"), seen),
			fmt.Sprintf(`* 2 FETCH (UID 2 FLAGS (\Seen \Flagged) MODSEQ (%d))`, flagged),
		}
		if strings.Join(untagged, "\n") != strings.Join(want, "\n") {
			t.Errorf("FETCH 2 (BODY[TEXT]):\n got %q\nwant %q", untagged, want)
		}
	})
}

// raceAfterSeen, once armed, has another session add \Flagged to the
// messages a session has just marked \Seen, before that session reads
// them for its FETCH, and notes both MODSEQs.
type raceAfterSeen struct {
	store.Store
	armed         atomic.Bool
	seen, flagged atomic.Uint64
}

func (s *raceAfterSeen) Open(ctx context.Context, id int64) (store.Session, error) {
	sess, err := s.Store.Open(ctx, id)
	if err != nil {
		return nil, err
	}
	return &raceSeenSession{Session: sess, s: s, account: id}, nil
}

type raceSeenSession struct {
	store.Session
	s       *raceAfterSeen
	account int64
}

func (ss *raceSeenSession) StoreFlags(ctx context.Context, mailboxID int64, set store.UIDSet, op store.FlagOp, flags store.Flags, unchangedSince store.ModSeq) (store.FlagsResult, error) {
	res, err := ss.Session.StoreFlags(ctx, mailboxID, set, op, flags, unchangedSince)
	if err != nil || flags.System != store.FlagSeen || len(res.Updated) == 0 || !ss.s.armed.CompareAndSwap(true, false) {
		return res, err
	}
	ss.s.seen.Store(uint64(res.Updated[0].ModSeq))
	other, err := ss.s.Store.Open(ctx, ss.account)
	if err != nil {
		return res, err
	}
	defer other.Close()
	fl, err := other.StoreFlags(ctx, mailboxID, set, store.FlagsAdd, store.Flags{System: store.FlagFlagged}, 0)
	if err != nil {
		return res, err
	}
	ss.s.flagged.Store(uint64(fl.Updated[0].ModSeq))
	return res, nil
}

// TestFetchBinaryWhole: BINARY[] is the message as it is: nothing decodes
// its own transfer encoding, so an unknown one is no reason to refuse it.
// What must be decoded still needs an encoding we know (RFC 3516 4.3).
func TestFetchBinaryWhole(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	msg := "Subject: strange\r\nContent-Transfer-Encoding: x-foo\r\n\r\nwhatever\r\n"
	e.deliver("INBOX", msg)
	c := e.login()
	c.mustOK("SELECT INBOX")
	checkFetches(t, c, []fetchCase{
		{"FETCH 1 (BINARY.PEEK[])", "* 1 FETCH (BINARY[] " + lit(msg) + ")"},
		{"FETCH 1 (BINARY.SIZE[])", fmt.Sprintf("* 1 FETCH (BINARY.SIZE[] %d)", len(msg))},
		{"FETCH 1 (BINARY[]<9.7>)", "* 1 FETCH (BINARY[]<9> " + lit("strange") + ` FLAGS (\Seen))`},
	})
	for _, fetch := range []string{"FETCH 1 (BINARY.PEEK[1])", "FETCH 1 (BINARY.SIZE[1])"} {
		if _, tagged := c.cmd(fetch); !strings.Contains(tagged, "NO [UNKNOWN-CTE]") {
			t.Errorf("%s: %q, want NO [UNKNOWN-CTE]", fetch, tagged)
		}
	}
}

// TestFetchBinarySizeMissing: BINARY.SIZE of a part the message lacks is
// 0. The grammar wants a number (RFC 3516 7), and BINARY and BODY of the
// part answer NIL, no content.
func TestFetchBinarySizeMissing(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.deliver("INBOX", "Subject: one part\r\n\r\nhello\r\n")
	c := e.login()
	c.mustOK("EXAMINE INBOX")
	checkFetches(t, c, []fetchCase{
		{"FETCH 1 (BINARY.SIZE[3] BINARY[3] BODY[3])", "* 1 FETCH (BINARY.SIZE[3] 0 BINARY[3] NIL BODY[3] NIL)"},
		{"FETCH 1 (BINARY.SIZE[1.2] BINARY.SIZE[1])", "* 1 FETCH (BINARY.SIZE[1.2] 0 BINARY.SIZE[1] 7)"},
	})
}

// TestFetchBinaryText: BINARY of a text part has CRLF line breaks
// whatever the sender encoded (RFC 2046 4.1.1), and BINARY.SIZE and
// partial BINARY count those; other parts come as they decode.
func TestFetchBinaryText(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	e.deliver("INBOX", "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"+
		"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"+b64("line1\nline2\n")+"\r\n"+
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"+b64("a\nb\rc\x00")+"\r\n"+
		"--b\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nold=0Dmac=0D=0Aand=0Aunix\r\n"+
		"--b\r\nContent-Type: text/plain\r\n\r\nas stored\r\n--b--\r\n")
	c := e.login()
	c.mustOK("EXAMINE INBOX")
	checkFetches(t, c, []fetchCase{
		{"FETCH 1 (BINARY[1])", "* 1 FETCH (BINARY[1] " + lit("line1\r\nline2\r\n") + ")"},
		{"FETCH 1 (BINARY.SIZE[1])", "* 1 FETCH (BINARY.SIZE[1] 14)"},
		{"FETCH 1 (BINARY[1]<5.4>)", "* 1 FETCH (BINARY[1]<5> " + lit("\r\nli") + ")"},
		{"FETCH 1 (BINARY[1]<12.10>)", "* 1 FETCH (BINARY[1]<12> " + lit("\r\n") + ")"},
		{"FETCH 1 (BINARY[2] BINARY.SIZE[2])", "* 1 FETCH (BINARY[2] " + lit8("a\nb\rc\x00") + " BINARY.SIZE[2] 6)"},
		{"FETCH 1 (BINARY[3] BINARY.SIZE[3])", "* 1 FETCH (BINARY[3] " + lit("old\r\nmac\r\nand\r\nunix") + " BINARY.SIZE[3] 19)"},
		{"FETCH 1 (BINARY[4])", "* 1 FETCH (BINARY[4] " + lit("as stored") + ")"},
	})
}

// TestFetchEnvelopeEmptyFields: in ENVELOPE a Date, Subject, In-Reply-To
// or Message-ID field that the header has but empty is "", one it lacks
// NIL (RFC 9051 7.5.2), for the message and for one it encapsulates; an
// empty address field is NIL, and an empty Sender or Reply-To is From. A
// message whose structure a buzon from before stored (version 1, which
// cannot tell empty from absent) still gets NIL for all.
func TestFetchEnvelopeEmptyFields(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	msg := "Date:\r\nSubject:\r\nFrom: ann@example.org\r\nSender:\r\nTo:\r\nIn-Reply-To: \r\nMessage-ID:\r\n \r\n" +
		"Content-Type: message/rfc822\r\n\r\nSubject: \r\nFrom: bob@example.org\r\n\r\ninner\r\n"
	e.deliver("INBOX", msg)
	part, err := message.Parse(strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	part.Envelope.Empty, part.Parts[0].Envelope.Empty = 0, 0
	old := message.Marshal(part)
	if old[0] != 1 {
		t.Fatalf("structure version %d, want 1", old[0])
	}
	sess := e.session()
	mb, err := sess.Mailbox(context.Background(), "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sess.Append(context.Background(), mb.ID, &store.NewMessage{
		Body: strings.NewReader(msg), Size: int64(len(msg)), Structure: old,
		InternalDate: time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC),
	}); err != nil {
		t.Fatal(err)
	}
	c := e.login()
	c.mustOK("EXAMINE INBOX")
	ann := `((NIL NIL "ann" "example.org"))`
	bob := `((NIL NIL "bob" "example.org"))`
	structure := func(subject string) string {
		return `("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 43 (NIL ` + subject + ` ` + bob + ` ` + bob + ` ` + bob +
			` NIL NIL NIL NIL NIL) ("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 7 1 NIL NIL NIL NIL) 4 NIL NIL NIL NIL)`
	}
	checkFetches(t, c, []fetchCase{
		{"FETCH 1 (ENVELOPE)", `* 1 FETCH (ENVELOPE ("" "" ` + ann + ` ` + ann + ` ` + ann + ` NIL NIL NIL "" ""))`},
		{"FETCH 1 (BODYSTRUCTURE)", `* 1 FETCH (BODYSTRUCTURE ` + structure(`""`) + `)`},
		{"FETCH 2 (ENVELOPE)", `* 2 FETCH (ENVELOPE (NIL NIL ` + ann + ` ` + ann + ` ` + ann + ` NIL NIL NIL NIL NIL))`},
		{"FETCH 2 (BODYSTRUCTURE)", `* 2 FETCH (BODYSTRUCTURE ` + structure(`NIL`) + `)`},
	})
}

// TestFetchHeaderFieldsEcho: the names of HEADER.FIELDS come back in upper
// case as astrings (RFC 9051 9), quoted or as a literal when they are not
// atoms: written back bare, a name with a space, a parenthesis, a quote or
// a bracket broke the response for the client's parser.
func TestFetchHeaderFieldsEcho(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.deliver("INBOX", "Subject: x\r\nX-Tag: y\r\n\r\nbody\r\n")
	c := e.login()
	c.mustOK("EXAMINE INBOX")
	checkFetches(t, c, []fetchCase{
		{`FETCH 1 (BODY.PEEK[HEADER.FIELDS (subject "x-tag")])`,
			`* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT X-TAG)] ` + lit("Subject: x\r\nX-Tag: y\r\n\r\n") + `)`},
		{`FETCH 1 (BODY.PEEK[HEADER.FIELDS.NOT ("a b" "x(y" "" "q\"z" "]" "{")])`,
			`* 1 FETCH (BODY[HEADER.FIELDS.NOT ("A B" "X(Y" "" "Q\"Z" "]" "{")] ` + lit("Subject: x\r\nX-Tag: y\r\n\r\n") + `)`},
		{"FETCH 1 (BODY.PEEK[1.mime])", "* 1 FETCH (BODY[1.MIME] " + lit("Subject: x\r\nX-Tag: y\r\n\r\n") + ")"},
	})
	untagged, tagged := c.cmd("FETCH 1 (BODY.PEEK[HEADER.FIELDS ({3}\r\na\tb)])")
	want := "* 1 FETCH (BODY[HEADER.FIELDS ({3}\r\nA\tB)] " + lit("\r\n") + ")"
	if !strings.Contains(tagged, " OK ") || len(untagged) != 2 || untagged[1] != want {
		t.Errorf("a name sent as a literal:\n got %q %q\nwant %q", untagged, tagged, want)
	}
}

// memBody is a store.Body in memory.
type memBody struct{ *bytes.Reader }

func (memBody) Close() error { return nil }

// discard is io.Discard without its ReadFrom, which the network
// connection lacks too: the writer's buffer does the copying.
type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

// BenchmarkFetchWrite measures what FETCH writes for one 120 KB message,
// less the store and the network: body sections and BINARY, streamed
// through the connection's buffer, and an ENVELOPE.
func BenchmarkFetchWrite(b *testing.B) {
	text := strings.Repeat("The quick brown fox jumps over the lazy dog, again and again.\r\n", 800)
	encoded := base64.StdEncoding.EncodeToString([]byte(text))
	var lines strings.Builder
	for len(encoded) > 76 {
		lines.WriteString(encoded[:76] + "\r\n")
		encoded = encoded[76:]
	}
	lines.WriteString(encoded)
	raw := "From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: benchmark\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\n" + text + "\r\n" +
		"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		lines.String() + "\r\n--b--\r\n"
	part, err := message.Parse(strings.NewReader(raw))
	if err != nil {
		b.Fatal(err)
	}
	body := memBody{bytes.NewReader([]byte(raw))}
	size := int64(len(raw))
	pool := &sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64*1024) }}
	c := &conn{w: newWriter(discard{}, pool)}
	for _, it := range []fetchItem{
		{name: "BODY", section: &sectionSpec{}},
		{name: "BODY", section: &sectionSpec{path: []int{1}, text: "1"}},
		{name: "BODY", section: &sectionSpec{}, partial: true, origin: 1000, count: 50000},
		{name: "BINARY", section: &sectionSpec{path: []int{2}, text: "2"}},
	} {
		name := it.name + "[" + it.section.text + "]"
		if it.partial {
			name += "<partial>"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if it.name == "BINARY" {
					c.writeBinary(it, part, body, size)
				} else {
					c.writeSection(it, part, body, size)
				}
			}
		})
	}
	b.Run("ENVELOPE", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.writeEnvelope(part.Envelope)
		}
	})
}
