package imapserver

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/clienttest"
	"github.com/buzon-mail/buzon/internal/message"
	"github.com/buzon-mail/buzon/internal/store/teststore"
)

// A differential test of FETCH against Dovecot: the same messages go to
// both servers and every item a mail client renders from (ENVELOPE,
// BODYSTRUCTURE, BODY, RFC822.SIZE, BODY[section] of every part and
// specifier, partials, BINARY and BINARY.SIZE) is fetched from both and
// compared value by value. Dovecot is evidence of what clients are used
// to, not the rule: where the two differ and the RFC allows both, the
// difference is listed in fetchDiffAccepted with the reason.

// startFetchDiffDovecot starts a Dovecot of the test's own with one user,
// stopped and removed when the test ends; it skips the test where Dovecot
// cannot run.
func startFetchDiffDovecot(t *testing.T) *clienttest.Dovecot {
	t.Helper()
	return clienttest.StartDovecot(t, "bzfetchdiff", 1)
}

// generatedMessages has dovecot.sh write n of the realistic messages it
// fills mailboxes with (text and HTML alternatives, attachments,
// forwarded messages; the same ones every time) and reads them back.
func generatedMessages(t *testing.T, peer *clienttest.Dovecot, n int) []fetchDiffMessage {
	t.Helper()
	file := filepath.Join(t.TempDir(), "generated.mbox")
	if out, err := peer.Script("mbox", file, strconv.Itoa(n)); err != nil {
		t.Fatalf("dovecot.sh mbox: %v\n%s", err, out)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []fetchDiffMessage
	for i, raw := range splitMbox(b) {
		msgs = append(msgs, newFetchDiffMessage(t, fmt.Sprintf("generated/%d", i+1), raw))
	}
	if len(msgs) != n {
		t.Fatalf("dovecot.sh mbox wrote %d messages, want %d", len(msgs), n)
	}
	return msgs
}

// splitMbox splits an mbox as dovecot.sh writes it (mboxrd: a "From "
// line before each message, an empty line after, and ">" added before
// "From " at the start of a line inside) into its messages.
func splitMbox(b []byte) [][]byte {
	var msgs [][]byte
	var cur []byte
	for line := range bytes.Lines(b) {
		if bytes.HasPrefix(line, []byte("From ")) {
			if cur != nil {
				msgs = append(msgs, bytes.TrimSuffix(cur, []byte("\n")))
			}
			cur = []byte{}
			continue
		}
		if rest := bytes.TrimLeft(line, ">"); len(rest) < len(line) && bytes.HasPrefix(rest, []byte("From ")) {
			line = line[1:]
		}
		cur = append(cur, line...)
	}
	if cur != nil {
		msgs = append(msgs, bytes.TrimSuffix(cur, []byte("\n")))
	}
	return msgs
}

// fetchDiffMessage is one message of the comparison.
type fetchDiffMessage struct {
	name string
	raw  []byte        // with CRLF line ends, as buzon stores it
	root *message.Part // as buzon parses it
}

// newFetchDiffMessage makes the line ends of b CRLF, by the rule delivery
// stores messages by, and parses it.
func newFetchDiffMessage(t *testing.T, name string, b []byte) fetchDiffMessage {
	t.Helper()
	var le message.LineEnds
	raw := append(slices.Clone(le.Convert(b)), le.End()...)
	tree, err := message.Parse(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return fetchDiffMessage{name: name, raw: raw, root: tree}
}

// fetchDiffMessages reads the messages of our testdata and of the shared
// corpus (when there is one), with their line ends made CRLF by the rule
// delivery stores them by.
func fetchDiffMessages(t *testing.T) []fetchDiffMessage {
	t.Helper()
	var msgs []fetchDiffMessage
	add := func(root, prefix string) {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if ext := filepath.Ext(path); ext != ".eml" && ext != ".raw" {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			msgs = append(msgs, newFetchDiffMessage(t, prefix+filepath.ToSlash(rel), b))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	add("testdata/messages", "imapserver/")
	add("testdata/fetchdiff", "fetchdiff/")
	add("../message/testdata", "message/")
	if corpus := clienttest.Corpus(); corpus != "" {
		add(corpus, "corpus/")
	}
	return msgs
}

// diffItem is one FETCH item of the comparison.
type diffItem struct {
	fetch string // as sent: "BODY.PEEK[1.MIME]"
	// part is the part a BINARY item decodes, as buzon parsed it; nil for
	// the whole message, for other items and for a part the message lacks.
	part *message.Part
}

// fetchDiffItems lists the FETCH items compared for a message: the whole
// message's, then those of every part of its tree, and of a part after
// the last of each multipart, which the message lacks.
func fetchDiffItems(root *message.Part) []diffItem {
	var items []diffItem
	for _, f := range []string{
		"ENVELOPE", "BODYSTRUCTURE", "BODY", "RFC822.SIZE",
		"BODY.PEEK[]", "BODY.PEEK[HEADER]", "BODY.PEEK[TEXT]",
		"BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT CONTENT-TYPE X-NONE)]",
		"BODY.PEEK[HEADER.FIELDS.NOT (FROM TO SUBJECT RECEIVED)]",
		"BODY.PEEK[HEADER.FIELDS (DATE MESSAGE-ID MIME-VERSION CONTENT-TRANSFER-ENCODING RECEIVED)]",
		"BODY.PEEK[]<0.64>", "BODY.PEEK[TEXT]<7.33>", "BODY.PEEK[HEADER]<100000.10>",
		"BODY.PEEK[HEADER]<0.1>", "BODY.PEEK[TEXT]<0.1>", "BODY.PEEK[]<1.4294967296>",
		"BINARY.PEEK[]", "BINARY.SIZE[]", "RFC822.HEADER", "RFC822.TEXT",
	} {
		items = append(items, diffItem{fetch: f})
	}
	// add adds the items of the part that section names, p or nil.
	add := func(section string, p *message.Part) {
		for _, f := range []string{
			"BODY.PEEK[%s]", "BODY.PEEK[%s.MIME]", "BODY.PEEK[%s.HEADER]", "BODY.PEEK[%s.TEXT]",
			"BODY.PEEK[%s.HEADER.FIELDS (CONTENT-TYPE FROM)]", "BODY.PEEK[%s.HEADER.FIELDS.NOT (CONTENT-TYPE)]",
			"BODY.PEEK[%s]<3.40>", "BINARY.PEEK[%s]", "BINARY.SIZE[%s]", "BINARY.PEEK[%s]<2.30>",
		} {
			it := diffItem{fetch: fmt.Sprintf(f, section)}
			if strings.HasPrefix(f, "BINARY") {
				it.part = p
			}
			items = append(items, it)
		}
	}
	// walk adds the items of the parts of p, whose section is path;
	// inMessage says p is a message encapsulated in the part path names.
	var walk func(p *message.Part, path string, inMessage bool)
	walk = func(p *message.Part, path string, inMessage bool) {
		join := func(i int) string {
			if path == "" {
				return strconv.Itoa(i)
			}
			return path + "." + strconv.Itoa(i)
		}
		switch {
		case p.MediaType == "multipart":
			for i := range p.Parts {
				add(join(i+1), &p.Parts[i])
				walk(&p.Parts[i], join(i+1), false)
			}
			add(join(len(p.Parts)+1), nil)
		case p.Message() != nil:
			walk(p.Message(), path, true)
		case path == "" || inMessage:
			// A message that is not multipart has a part 1, its body.
			add(join(1), p)
			add(join(2), nil)
		}
	}
	walk(root, "", false)
	return items
}

// diffConn is a connection the comparison reads FETCH answers from. It
// connects again when the server drops it: Dovecot ends the session on
// some broken messages.
type diffConn struct {
	name, addr, user, pass string
	nc                     net.Conn
	br                     *bufio.Reader
	n                      int
}

func (c *diffConn) connect() error {
	c.close()
	nc, err := net.Dial("tcp", c.addr)
	if err != nil {
		return err
	}
	c.nc, c.br = nc, bufio.NewReader(nc)
	if _, err := c.readLine(); err != nil { // greeting
		return err
	}
	if _, st, err := c.cmd("LOGIN " + c.user + " " + c.pass); err != nil || st != "OK" {
		return fmt.Errorf("%s: LOGIN: %s %v", c.name, st, err)
	}
	return nil
}

func (c *diffConn) close() {
	if c.nc != nil {
		c.nc.Close()
		c.nc = nil
	}
}

// readLine reads one response line, with literals inline.
func (c *diffConn) readLine() (string, error) {
	_ = c.nc.SetDeadline(time.Now().Add(30 * time.Second))
	var b strings.Builder
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			return "", err
		}
		b.WriteString(line)
		if n, ok := literalSize(line); ok {
			buf := make([]byte, n)
			if _, err := io.ReadFull(c.br, buf); err != nil {
				return "", err
			}
			b.Write(buf)
			continue
		}
		return strings.TrimSuffix(b.String(), "\r\n"), nil
	}
}

// cmd sends a command, with literal+ data following it if any, and
// returns the untagged lines and the status of the tagged one.
func (c *diffConn) cmd(s string) (untagged []string, status string, err error) {
	c.n++
	tag := fmt.Sprintf("d%d", c.n)
	_ = c.nc.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c.nc, tag+" "+s+"\r\n"); err != nil {
		return nil, "", err
	}
	for {
		line, err := c.readLine()
		if err != nil {
			return untagged, "", err
		}
		if rest, ok := strings.CutPrefix(line, tag+" "); ok {
			status, _, _ = strings.Cut(rest, " ")
			return untagged, status, nil
		}
		untagged = append(untagged, line)
	}
}

// diffAnswer is a server's answer to a FETCH of one item.
type diffAnswer struct {
	status string    // of the command: OK, NO, BAD, or DISCONNECTED
	name   string    // of the item in the FETCH response, "" when none came
	value  respValue // its value
}

// String gives the answer as the test reports it.
func (a diffAnswer) String() string {
	if a.name == "" {
		return a.status
	}
	return fmt.Sprintf("%s %s %.500s", a.status, a.name, a.value)
}

// fetchOne runs "FETCH n item" and returns the answer; DISCONNECTED when
// the server dropped the connection, which it then opens again.
func (c *diffConn) fetchOne(t *testing.T, n int, item string) diffAnswer {
	t.Helper()
	untagged, status, err := c.cmd(fmt.Sprintf("FETCH %d (%s)", n, item))
	if err != nil {
		if err := c.connect(); err != nil {
			t.Fatal(err)
		}
		if _, st, err := c.cmd("EXAMINE INBOX"); err != nil || st != "OK" {
			t.Fatalf("%s: EXAMINE: %s %v", c.name, st, err)
		}
		return diffAnswer{status: "DISCONNECTED"}
	}
	a := diffAnswer{status: status}
	for _, u := range untagged {
		attrs, err := parseFetchLine(u)
		if err != nil {
			t.Errorf("%s: FETCH %d (%s): %v: %q", c.name, n, item, err, u)
			continue
		}
		for name, v := range attrs {
			if name == "FLAGS" || name == "UID" {
				continue
			}
			if a.name != "" {
				t.Errorf("%s: FETCH %d (%s): more than one item: %q", c.name, n, item, u)
			}
			a.name, a.value = name, v
		}
	}
	return a
}

// TestFetchDiffDovecot delivers every message of our testdata and of the
// shared corpus to buzon and to Dovecot, fetches each item of
// fetchDiffItems from both, and compares the answers, after taking out
// the differences normalizeDiff names and those fetchDiffAccepted lists.
// It also checks that buzon's answers agree with one another: a partial
// BODY or BINARY is a slice of the whole, and BINARY.SIZE is the length
// of BINARY.
func TestFetchDiffDovecot(t *testing.T) {
	t.Parallel()
	teststore.EmbeddedOnly(t)
	peer := startFetchDiffDovecot(t)
	msgs := append(fetchDiffMessages(t), generatedMessages(t, peer, 40)...)
	e := newTestEnv(t)

	bc := &diffConn{name: "buzon", addr: e.addr, user: testUser, pass: testPass}
	dc := &diffConn{name: "dovecot", addr: peer.Addr("IMAP"), user: "user1", pass: "pass"}
	for _, c := range []*diffConn{bc, dc} {
		if err := c.connect(); err != nil {
			t.Fatal(err)
		}
		defer c.close()
		for _, m := range msgs {
			_, st, err := c.cmd(fmt.Sprintf("APPEND INBOX {%d+}\r\n%s", len(m.raw), m.raw))
			if err != nil || st != "OK" {
				t.Fatalf("%s: APPEND %s: %s %v", c.name, m.name, st, err)
			}
		}
		if _, st, err := c.cmd("EXAMINE INBOX"); err != nil || st != "OK" {
			t.Fatalf("%s: EXAMINE: %s %v", c.name, st, err)
		}
	}

	accepted := fetchDiffAccepted()
	seen := make([]bool, len(accepted)) // which entries a difference used
	compared, same, ruled, listed := 0, 0, 0, 0
	for i, m := range msgs {
		ours, theirs := map[string]diffAnswer{}, map[string]diffAnswer{}
		for _, it := range fetchDiffItems(m.root) {
			b := bc.fetchOne(t, i+1, it.fetch)
			d := dc.fetchOne(t, i+1, it.fetch)
			ours[it.fetch], theirs[it.fetch] = b, d
			compared++
			if b.status == d.status && b.name == d.name &&
				normalizeDiff(b.name, b.value).String() == normalizeDiff(d.name, d.value).String() {
				same++
				continue
			}
			if why := fetchDiffRule(it, b, d, theirs); why != "" {
				ruled++
				continue
			}
			if k := acceptedDiff(accepted, m.name, it.fetch); k >= 0 {
				seen[k] = true
				listed++
				continue
			}
			t.Errorf("%s FETCH (%s):\n  buzon   %s\n  dovecot %s", m.name, it.fetch, b, d)
		}
		checkFetchSelf(t, m.name, ours)
		checkFetchCombined(t, bc, i+1, m.name, ours)
	}
	names := map[string]bool{}
	for _, m := range msgs {
		names[m.name] = true
	}
	for k, a := range accepted {
		if names[a.message] && !seen[k] {
			t.Errorf("accepted difference no longer seen, remove it: %s %s", a.message, a.items)
		}
	}
	t.Logf("%d messages, %d items: %d the same, %d different by a rule, %d accepted for a message",
		len(msgs), compared, same, ruled, listed)
}

// checkFetchSelf checks that buzon's answers for a message agree with one
// another: partials are slices of the whole, BINARY.SIZE is the length
// of BINARY.
func checkFetchSelf(t *testing.T, name string, ours map[string]diffAnswer) {
	t.Helper()
	for fetch, a := range ours {
		if a.status != "OK" {
			continue
		}
		whole, origin, count, partial := splitPartial(fetch)
		if strings.HasPrefix(fetch, "BINARY.SIZE[") {
			whole, partial = "BINARY.PEEK["+strings.TrimPrefix(fetch, "BINARY.SIZE["), true
		}
		w, ok := ours[whole]
		if !partial || !ok || w.status != "OK" {
			continue
		}
		var want string
		if strings.HasPrefix(fetch, "BINARY.SIZE[") {
			n := len(w.value.s)
			want = strconv.Itoa(n)
			if w.value.kind == 'n' {
				want = "0"
			}
			if a.value.s != want {
				t.Errorf("%s: %s is %s, BINARY has %s bytes", name, fetch, a.value.s, want)
			}
			continue
		}
		s := w.value.s
		want = s[min(origin, len(s)):min(origin+count, len(s))]
		if a.value.kind == 'n' && w.value.kind == 'n' {
			continue
		}
		if a.value.s != want {
			t.Errorf("%s: %s is %q, want %q from %s", name, fetch, a.value.s, want, whole)
		}
	}
}

// checkFetchCombined checks that buzon answers items asked for in one
// FETCH as it answers each alone: the items of one response are written
// one after another, literals and all.
func checkFetchCombined(t *testing.T, c *diffConn, n int, name string, ours map[string]diffAnswer) {
	t.Helper()
	// Items clients ask for together to list a mailbox, each of which
	// the comparison asked for alone.
	combined := []string{
		"RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE",
		"BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT CONTENT-TYPE X-NONE)]",
		"BODY.PEEK[]<0.64>", "BINARY.SIZE[]", "BODY.PEEK[TEXT]<7.33>", "BODY",
	}
	untagged, status, err := c.cmd(fmt.Sprintf("UID FETCH %d:%d (FLAGS %s)", n, n, strings.Join(combined, " ")))
	if err != nil || status != "OK" || len(untagged) != 1 {
		t.Errorf("%s: combined FETCH: %s %v %q", name, status, err, untagged)
		return
	}
	attrs, err := parseFetchLine(untagged[0])
	if err != nil {
		t.Errorf("%s: combined FETCH: %v: %q", name, err, untagged[0])
		return
	}
	if len(attrs) != len(combined)+2 { // and FLAGS, UID
		t.Errorf("%s: combined FETCH answered %d items, want %d: %q", name, len(attrs), len(combined)+2, untagged[0])
	}
	for _, f := range combined {
		alone := ours[f]
		if got := attrs[alone.name]; got.String() != alone.value.String() {
			t.Errorf("%s: %s in a combined FETCH is %.200s, alone %.200s", name, f, got, alone.value)
		}
	}
}

// splitPartial splits "BODY.PEEK[1]<3.40>" into "BODY.PEEK[1]", 3 and
// 40; partial is false for an item without an origin.
func splitPartial(fetch string) (whole string, origin, count int, partial bool) {
	i := strings.LastIndexByte(fetch, '<')
	if i < 0 || !strings.HasSuffix(fetch, ">") {
		return fetch, 0, 0, false
	}
	o, c, _ := strings.Cut(fetch[i+1:len(fetch)-1], ".")
	origin, _ = strconv.Atoi(o)
	count, _ = strconv.Atoi(c)
	return fetch[:i], origin, count, true
}

// fetchDiffRule returns why a difference between buzon's answer b and
// Dovecot's d to item it is accepted whatever the message, or "" when no
// rule covers it. theirs holds Dovecot's answers to the message's items
// so far.
func fetchDiffRule(it diffItem, b, d diffAnswer, theirs map[string]diffAnswer) string {
	binary := strings.HasPrefix(it.fetch, "BINARY")
	if section, ok := strings.CutPrefix(it.fetch, "BINARY.SIZE["); ok {
		// Dovecot's BINARY.SIZE of a base64 part is at times not the
		// length of its own BINARY of the part (4486 for 7106 bytes);
		// buzon's is checked against its BINARY by checkFetchSelf.
		if whole := theirs["BINARY.PEEK["+section]; whole.status == "OK" && whole.value.kind == 's' &&
			d.value.s != strconv.Itoa(len(whole.value.s)) {
			return "Dovecot's BINARY.SIZE is not the size of its BINARY"
		}
	}
	switch {
	case binary && it.part == nil && strings.Contains(it.fetch, "[]"):
		// Dovecot decodes every part of the message and rewrites each
		// Content-Transfer-Encoding to binary. RFC 3516 4.2 decodes the
		// content of a section; the message as a whole has no encoding
		// of its own to undo, and buzon sends it as it is.
		return "BINARY[] of the whole message"
	case binary && it.part != nil && (it.part.MediaType == "multipart" || it.part.Message() != nil):
		// Likewise for a multipart or message part, which may only be
		// 7bit, 8bit or binary (RFC 2045 6.4): nothing to decode.
		return "BINARY of a composite part"
	case binary && b.status == "OK" && (d.status == "NO" || d.status == "DISCONNECTED"):
		// Dovecot refuses, or ends the session, on base64 or
		// quoted-printable with errors; buzon decodes what it can and
		// skips the rest, as RFC 2045 6.7 and 6.8 suggest.
		return "BINARY of a broken encoding"
	case binary && it.part != nil && it.part.MediaType == "text":
		// buzon sends decoded text with CRLF line ends, the canonical
		// form (RFC 2046 4.1.1), and counts them in BINARY.SIZE; Dovecot
		// the line ends as decoded. The text must otherwise be the same;
		// sizes and partials are checked against buzon's own BINARY.
		if _, _, _, partial := splitPartial(it.fetch); partial || strings.HasPrefix(it.fetch, "BINARY.SIZE") {
			return "BINARY size or partial of text"
		}
		lf := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n") }
		if b.status == d.status && lf(b.value.s) == lf(d.value.s) {
			return "BINARY of text with CRLF line ends"
		}
	}
	return ""
}

// normalizeDiff takes out of a value the differences that do not matter
// to the comparison.
func normalizeDiff(name string, v respValue) respValue {
	switch name {
	case "BODYSTRUCTURE", "BODY":
		return normalizeBody(v)
	case "ENVELOPE":
		return normalizeEnvelope(v)
	}
	// A section a message lacks, or HEADER or TEXT of a part that is not
	// a message: buzon sends NIL, Dovecot an empty string. Both are the
	// nstring the grammar allows, and clients take either as empty.
	if v.kind == 'n' && (strings.HasPrefix(name, "BODY[") || strings.HasPrefix(name, "BINARY[")) {
		return respValue{kind: 's'}
	}
	return v
}

// normalizeEnvelope makes each run of white space in the date, subject,
// in-reply-to and message-id of an ENVELOPE one space, and trims them.
// buzon unfolds header fields by removing their line breaks (RFC 5322
// 2.2.3) and trims them; Dovecot makes tabs and runs of spaces in Subject
// one space, and keeps the spaces of a blank In-Reply-To or Message-ID.
// A string stays a string and NIL stays NIL.
func normalizeEnvelope(v respValue) respValue {
	if v.kind != 'l' || len(v.list) != 10 {
		return v
	}
	l := slices.Clone(v.list)
	for _, i := range []int{0, 1, 8, 9} {
		if l[i].kind == 's' {
			l[i].s = strings.Join(strings.Fields(l[i].s), " ")
		}
	}
	return respValue{kind: 'l', list: l}
}

// normalizeBody upper-cases what BODYSTRUCTURE holds case-insensitively
// (RFC 2045 5.1, 6.1; RFC 2183 2): media types, transfer encodings,
// parameter and disposition names. Dovecot sends them in lower case,
// buzon in upper case, as RFC 9051's examples do.
func normalizeBody(v respValue) respValue {
	if v.kind != 'l' || len(v.list) == 0 {
		return v
	}
	l := slices.Clone(v.list)
	upper := func(i int) {
		if i < len(l) && l[i].kind == 's' {
			l[i].s = strings.ToUpper(l[i].s)
		}
	}
	params := func(i int) {
		if i < len(l) && l[i].kind == 'l' {
			ps := slices.Clone(l[i].list)
			for j := 0; j < len(ps); j += 2 {
				ps[j].s = strings.ToUpper(ps[j].s)
			}
			l[i].list = ps
		}
	}
	disposition := func(i int) {
		if i < len(l) && l[i].kind == 'l' && len(l[i].list) == 2 {
			d := slices.Clone(l[i].list)
			d[0].s = strings.ToUpper(d[0].s)
			l[i].list = d
			l, i := d, 1
			if l[i].kind == 'l' {
				ps := slices.Clone(l[i].list)
				for j := 0; j < len(ps); j += 2 {
					ps[j].s = strings.ToUpper(ps[j].s)
				}
				l[i].list = ps
			}
		}
	}
	if l[0].kind == 'l' { // multipart: parts, subtype, extension data
		k := 0
		for k < len(l) && l[k].kind == 'l' {
			l[k] = normalizeBody(l[k])
			k++
		}
		upper(k)
		params(k + 1)
		disposition(k + 2)
		return respValue{kind: 'l', list: l}
	}
	upper(0)
	upper(1)
	params(2)
	upper(5)
	if l[0].s == "TEXT" && len(l) > 2 {
		// A text part without a charset parameter: Dovecot adds
		// charset=us-ascii, the default (RFC 2046 4.1.2), buzon sends
		// the parameters as the message has them. A client that finds
		// none falls back to its own default, which serves 8-bit text
		// sent without a charset better.
		if ps := l[2]; ps.kind == 'l' {
			var kept []respValue
			for j := 0; j+1 < len(ps.list); j += 2 {
				if ps.list[j].s == "CHARSET" && strings.EqualFold(ps.list[j+1].s, "us-ascii") {
					continue
				}
				kept = append(kept, ps.list[j], ps.list[j+1])
			}
			l[2] = respValue{kind: 'l', list: kept}
			if len(kept) == 0 {
				l[2] = respValue{kind: 'n'}
			}
		}
	}
	ext := 7 // after the size: MD5, disposition, ...
	switch {
	case strings.EqualFold(l[0].s, "MESSAGE") && len(l) > 9 && l[8].kind == 'l':
		l[8] = normalizeBody(l[8])
		ext = 10
	case strings.EqualFold(l[0].s, "TEXT"):
		ext = 8
	}
	disposition(ext + 1)
	return respValue{kind: 'l', list: l}
}

// parseFetchLine parses "* n FETCH (name value ...)" into its items, each
// value in a canonical form: strings quoted with Go's %q whether they came
// quoted or as literals, NIL, atoms and lists as written.
func parseFetchLine(line string) (map[string]respValue, error) {
	i := strings.Index(line, " FETCH (")
	if !strings.HasPrefix(line, "* ") || i < 0 || !strings.HasSuffix(line, ")") {
		return nil, errors.New("not a FETCH response")
	}
	p := &respParser{s: line[i+len(" FETCH (") : len(line)-1]}
	out := map[string]respValue{}
	for p.i < len(p.s) {
		name := p.itemName()
		if !p.take(' ') {
			return nil, fmt.Errorf("no value after %s", name)
		}
		v, err := p.value()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out[name] = v
		p.take(' ')
	}
	return out, nil
}

// respValue is a parsed value of a response.
type respValue struct {
	kind byte // 'n' NIL, 's' string, 'a' atom or number, 'l' list
	s    string
	list []respValue
}

func (v respValue) String() string {
	switch v.kind {
	case 'n':
		return "NIL"
	case 's':
		return strconv.Quote(v.s)
	case 'a':
		return v.s
	}
	parts := make([]string, len(v.list))
	for i, x := range v.list {
		parts[i] = x.String()
	}
	return "(" + strings.Join(parts, " ") + ")"
}

type respParser struct {
	s string
	i int
}

func (p *respParser) take(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// itemName reads a FETCH item name, with its section and origin.
func (p *respParser) itemName() string {
	start := p.i
	for p.i < len(p.s) && p.s[p.i] != ' ' && p.s[p.i] != '[' {
		p.i++
	}
	if p.take('[') {
		for p.i < len(p.s) && p.s[p.i] != ']' {
			p.i++
		}
		p.take(']')
		if p.take('<') {
			for p.i < len(p.s) && p.s[p.i] != '>' {
				p.i++
			}
			p.take('>')
		}
	}
	return strings.ToUpper(p.s[start:p.i])
}

func (p *respParser) value() (respValue, error) {
	if p.i >= len(p.s) {
		return respValue{}, errors.New("value expected")
	}
	switch c := p.s[p.i]; {
	case c == '(':
		p.i++
		v := respValue{kind: 'l'}
		for !p.take(')') {
			// Body parts of a multipart follow one another without a space.
			if len(v.list) > 0 && !p.take(' ') && p.s[p.i] != '(' {
				return v, fmt.Errorf("space expected at %d", p.i)
			}
			x, err := p.value()
			if err != nil {
				return v, err
			}
			v.list = append(v.list, x)
		}
		return v, nil
	case c == '"':
		p.i++
		var b strings.Builder
		for {
			if p.i >= len(p.s) {
				return respValue{}, errors.New("unterminated quoted string")
			}
			c := p.s[p.i]
			p.i++
			if c == '"' {
				return respValue{kind: 's', s: b.String()}, nil
			}
			if c == '\\' && p.i < len(p.s) {
				c = p.s[p.i]
				p.i++
			}
			b.WriteByte(c)
		}
	case c == '{' || c == '~':
		p.take('~')
		j := strings.Index(p.s[p.i:], "}\r\n")
		if j < 0 {
			return respValue{}, errors.New("bad literal")
		}
		n, err := strconv.Atoi(strings.TrimSuffix(p.s[p.i+1:p.i+j], "+"))
		if err != nil || p.i+j+3+n > len(p.s) {
			return respValue{}, errors.New("bad literal size")
		}
		p.i += j + 3
		v := respValue{kind: 's', s: p.s[p.i : p.i+n]}
		p.i += n
		return v, nil
	}
	start := p.i
	for p.i < len(p.s) && p.s[p.i] != ' ' && p.s[p.i] != ')' {
		p.i++
	}
	a := p.s[start:p.i]
	if strings.EqualFold(a, "NIL") {
		return respValue{kind: 'n'}, nil
	}
	return respValue{kind: 'a', s: a}, nil
}

// acceptedFetchDiff is a difference between buzon and Dovecot that the
// comparison accepts for one message.
type acceptedFetchDiff struct {
	message string   // as fetchDiffMessages names it
	items   []string // FETCH items as sent; a final * matches any ending
	why     string
}

// acceptedDiff returns the index of the entry of accepted that covers
// item of the message, or -1.
func acceptedDiff(accepted []acceptedFetchDiff, msg, item string) int {
	for k, a := range accepted {
		if a.message != msg {
			continue
		}
		for _, pattern := range a.items {
			if prefix, ok := strings.CutSuffix(pattern, "*"); ok && strings.HasPrefix(item, prefix) || pattern == item {
				return k
			}
		}
	}
	return -1
}

// fetchDiffAccepted lists the differences the comparison accepts, message
// by message, with the reason. None is a buzon bug: where the RFC decides,
// buzon follows it; where it leaves the choice, buzon's is deliberate.
func fetchDiffAccepted() []acceptedFetchDiff {
	const (
		corpusMail  = "corpus/enmime/testdata/mail/"
		corpusParts = "corpus/enmime/testdata/parts/"

		// RFC 2046 5.1.1: the CRLF before a delimiter line belongs to the
		// delimiter, so a multipart ending in its close delimiter right
		// before the enclosing multipart's next delimiter, or a message
		// whose header has no empty line, ends without that CRLF. Dovecot
		// counts it in the part.
		delimiterCRLF = "the CRLF before a delimiter is the delimiter's"
		// A multipart without a boundary, or whose boundary never occurs,
		// has no body part (RFC 2046 5.1.1 asks for one at least): buzon
		// presents it as text/plain, the RFC 2045 5.2 default, so the
		// client shows its content; Dovecot makes up one empty part.
		noBodyPart = "a multipart without body parts is text/plain"
		// A header without the empty line that ends it (no body):
		// RFC 9051 6.4.5 leaves the empty line out of every header fetch
		// then; Dovecot adds one to HEADER.FIELDS, and leaves the line
		// break a header cut by the end of the message lacks, which
		// buzon adds so that the field ends as fields do.
		noEmptyLine = "header fetches of a header without an empty line"
		// A "--b1.alt" line in the epilogue of multipart b1.alt nested in
		// multipart b1: buzon takes it for the epilogue of the closed
		// multipart whose boundary it matches best; Dovecot for a
		// delimiter of b1 with junk after it, which makes an empty part.
		strayDelimiter = "a stray delimiter of a closed multipart"
		// Dovecot 2.3 does not know message/global (RFC 6532 3.7) and
		// takes it for a leaf: nothing inside, no HEADER or TEXT.
		messageGlobal = "message/global is a message"
		// buzon decodes RFC 2231 continuations and charsets, and writes a
		// non-ASCII value as NAME* with percent-encoded UTF-8 for an
		// IMAP4rev1 client (RFC 3501 4.3 has no 8-bit strings); Dovecot
		// 2.3 sends parameters raw, 8-bit bytes included.
		rfc2231 = "RFC 2231 parameters decoded"
		// An unusable Content-Type ("text/plain>", ";", a missing
		// semicolon): buzon falls back to text/plain (RFC 2045 5.2) or
		// reads what it can; Dovecot sends an empty type and subtype.
		badContentType = "an unusable Content-Type"
		// Parameters and fields that occur twice, which RFC 2045 5.1,
		// RFC 2183 and RFC 5322 3.6 do not allow: buzon takes the first
		// of each (Dovecot too for Content-Type); Dovecot lists every
		// parameter, and takes the last Subject and Content-Disposition.
		duplicates = "repeated parameters and fields"
		// Unquoted tspecials and a quote never closed: buzon keeps the
		// value up to the ";" or the end; Dovecot cuts it at the first
		// tspecial, or drops the parameter.
		lenientParams = "parameter values read leniently"
		// Address lists with a missing comma or an unterminated quote:
		// buzon reads on and keeps every address; Dovecot stops.
		brokenAddresses = "broken address lists"
		// "Content-Transfer-Encoding: Base 64 (sic)": buzon takes the
		// first token, an encoding it does not know (RFC 2045 6.4: the
		// part is then opaque); Dovecot ignores the field (7bit).
		badEncoding = "an unparsable transfer encoding"
		// A base64 message/rfc822 (RFC 2046 5.2.1 allows only 7bit, 8bit
		// and binary): neither server decodes it to show the message
		// inside; buzon reads the part as the message it should be,
		// Dovecot's HEADER.FIELDS of it run into the next body part, and
		// BINARY of it is what buzon decodes.
		encodedMessage = "a message/rfc822 with a transfer encoding"
		// A header whose empty line is also the CRLF of the delimiter
		// after it: buzon's header includes the empty line (the body is
		// empty), Dovecot's does not, though both count it in the part.
		sharedEmptyLine = "an empty line shared with a delimiter"
		// A body part whose first line is not a header field: buzon's
		// MIME header runs to the empty line and includes it, as every
		// MIME header does; Dovecot's leaves the empty line out.
		headerWithoutField = "a MIME header without fields"
	)
	sections := []string{"BODYSTRUCTURE", "BODY", "BODY.PEEK[*", "BINARY.PEEK[*", "BINARY.SIZE[*"}
	structure := []string{"BODYSTRUCTURE", "BODY"}
	return []acceptedFetchDiff{
		{"message/deep.eml", []string{"BODYSTRUCTURE", "BODY", "BODY.PEEK[1]", "BODY.PEEK[1.1]", "BODY.PEEK[1.1.TEXT]"}, delimiterCRLF},
		{corpusMail + "mime-mixed-related.raw", []string{"BODY.PEEK[1.1]", "BODY.PEEK[2]"}, delimiterCRLF},
		{corpusMail + "mime-signed.raw", []string{"BODY.PEEK[1]"}, delimiterCRLF},
		{corpusParts + "nestedmulti.raw", []string{"BODY.PEEK[2]"}, delimiterCRLF},
		{corpusParts + "similar-boundary.raw", []string{"BODY.PEEK[2]"}, delimiterCRLF},

		{"message/no-boundary.eml", sections, noBodyPart},
		{"message/unused-boundary.eml", sections, noBodyPart},
		{corpusMail + "multipart-wo-boundary.raw", sections, noBodyPart},
		{corpusMail + "header-only.raw", []string{"BODYSTRUCTURE", "BODY", "BODY.PEEK[1.MIME]"}, noBodyPart},

		{"message/header-only.eml", []string{"BODY.PEEK[HEADER.FIELDS (*"}, noEmptyLine},
		{corpusMail + "header-only.raw", []string{"BODY.PEEK[HEADER.FIELDS (*"}, noEmptyLine},
		{corpusMail + "erroneous.raw", []string{"BODY.PEEK[HEADER.FIELDS*"}, noEmptyLine},

		{"message/preamble-epilogue.eml", sections, strayDelimiter},

		{"message/message-global.eml", []string{"BODY.PEEK[1.*"}, messageGlobal},
		{"imapserver/global.eml", append(structure, "BODY.PEEK[2.*", "BINARY.PEEK[2.1]"), messageGlobal + "; " + rfc2231},
		{"message/rfc2231.eml", structure, rfc2231},
		{corpusMail + "mime-bad-8bit-filename.raw", structure, rfc2231},

		{corpusParts + "barren-content-type.raw", structure, badContentType},
		{corpusParts + "ctype-invalid-characters.raw", structure, badContentType},
		{corpusParts + "empty-ctype-bad-content.raw", structure, badContentType},
		{corpusMail + "mime-bad-content-type.raw", structure, badContentType},
		{corpusMail + "mime-blank-media-name.raw", structure, badContentType},

		{corpusMail + "inlinemultipart.raw", structure, duplicates},
		{corpusMail + "mime-duplicate-param.raw", structure, duplicates},
		{corpusMail + "malformed-multiple-address-header-values.raw", structure, duplicates},
		{"message/broken-headers.eml", []string{"ENVELOPE"}, duplicates},

		{corpusMail + "mime-unquoted-tspecials-param.raw", structure, lenientParams},
		{corpusParts + "unquoted-ctype-param-special.raw", structure, lenientParams},
		{corpusParts + "missing-closing-param-quote.raw", structure, lenientParams},

		{"message/addresses.eml", []string{"ENVELOPE"}, brokenAddresses},
		{corpusMail + "malformed-multiple-address-header-values.raw", []string{"ENVELOPE"}, brokenAddresses},

		{"message/broken-headers.eml", structure, badEncoding},

		{"fetchdiff/encoded-rfc822.eml", append(structure, "BODY.PEEK[1*"), encodedMessage},
		{"fetchdiff/encoded-rfc822.eml", []string{"BODY.PEEK[2*"}, delimiterCRLF},
		{"fetchdiff/encoded-rfc822.eml", []string{"BODY.PEEK[3.HEADER]", "BODY.PEEK[3.1.MIME]"}, sharedEmptyLine},

		{corpusParts + "multi-malformed.raw", []string{"BODY.PEEK[2.MIME]"}, headerWithoutField},
	}
}
