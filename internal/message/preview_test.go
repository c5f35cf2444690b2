package message

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/buzon-mail/buzon/internal/clienttest"
)

// previewCases are messages and the previews they make. Their names also
// name the seeds of FuzzPreview (see TestPreviewSeeds).
var previewCases = []struct {
	name, raw, want string
}{
	{"plain", "Subject: x\r\n\r\nHello Joe,\r\n\r\n  do you think   we can\tmeet at 3:30?\r\n",
		"Hello Joe, do you think we can meet at 3:30?"},
	{"no-header-end", "Subject: only a header\r\n", ""},
	{"empty-body", "Subject: x\r\n\r\n", ""},
	{"blank-body", "Subject: x\r\n\r\n \r\n\t\r\n\r\n", ""},
	{"bare-lf", "Subject: x\n\nline one\nline two\n", "line one line two"},
	{"quoted-lines", "Subject: x\r\n\r\n> what time?\r\n>> and where?\r\nAt noon, here.\r\n > not a quote\r\n",
		"At noon, here. > not a quote"},
	{"quoted-printable", "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=C3=A9 au l=\r\nait, s'il vous pla=C3=AEt.\r\n",
		"Café au lait, s'il vous plaît."},
	{"base64", "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		"w4Fydm9yZXMgeSBmbG9yZXMK\r\n", "Árvores y flores"},
	{"latin1", "Subject: x\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\nNa\xefve caf\xe9\r\n",
		"Naïve café"},
	{"koi8-r", "Subject: x\r\nContent-Type: text/plain; charset=koi8-r\r\n\r\n\xf0\xd2\xc9\xd7\xc5\xd4\r\n", "Привет"},
	{"unlabelled-8bit", "Subject: x\r\n\r\nCaf\xe9\r\n", "Café"},
	{"unlabelled-windows-1252", "Subject: x\r\n\r\n\x93Don\x92t\x94 \x96 \x80\x31\r\n", "“Don’t” – €1"},
	{"unknown-charset", "Subject: x\r\nContent-Type: text/plain; charset=x-no-such\r\n\r\nplain words\r\n", "plain words"},
	{"alternative-plain-first", "Subject: x\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nthe plain text\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>the <b>HTML</b></p>\r\n--b--\r\n",
		"the plain text"},
	{"alternative-html-first", "Subject: x\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>the <b>HTML</b></p>\r\n--b\r\nContent-Type: text/plain\r\n\r\nthe plain text\r\n--b--\r\n",
		"the plain text"},
	{"alternative-empty-plain", "Subject: x\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>only the <i>HTML</i> says it</p>\r\n--b--\r\n",
		"only the HTML says it"},
	{"html-only", "Subject: x\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" +
		"<!DOCTYPE html><html><head><title>Newsletter</title><style>p { color: red; }\r\n</style></head>" +
		"<body><!-- a comment --><script>if (a<b) x = '</p>';</script><div>Hello&nbsp;&amp;&#32;welcome&#x21;</div>" +
		"<p>Second<br>line &lt;tag&gt; &copy; 2026</p></body></html>\r\n",
		"Hello & welcome! Second line <tag> © 2026"},
	{"html-inline-tags", "Subject: x\r\nContent-Type: text/html\r\n\r\n<p>Hel<b>lo</b> <a href=\"x>y\">wor</a>ld, a < b &unknown; AT&T</p>",
		"Hello world, a < b &unknown; AT&T"},
	{"html-preheader-padding", "Subject: x\r\nContent-Type: text/html\r\n\r\n<span style=\"display:none\">Sale ends today</span>&zwnj;&nbsp;&zwnj;&nbsp;&#8203;&#847;<p>Shop now</p>",
		"Sale ends today Shop now"},
	{"html-blockquote", "Subject: x\r\nContent-Type: text/html\r\n\r\n<div>Sounds good.</div><blockquote type=cite><div>Shall we meet?</div><blockquote>older</blockquote>still quoted</blockquote><div>Bye</div>",
		"Sounds good. Bye"},
	{"html-head-unclosed", "Subject: x\r\nContent-Type: text/html\r\n\r\n<html><head><meta charset=utf-8><body>Text after a head never closed",
		"Text after a head never closed"},
	{"html-broken", "Subject: x\r\nContent-Type: text/html\r\n\r\n<p>start <!-- unterminated comment",
		"start"},
	{"html-empty-comments", "Subject: x\r\nContent-Type: text/html\r\n\r\n<!-->visible <!--->text <!---->here<!---x-- still a comment -->, to the end",
		"visible text here, to the end"},
	{"html-self-closed", "Subject: x\r\nContent-Type: text/html\r\n\r\n<svg/><p>after svg</p><svg width=\"1\" /><p>and more</p><svg><path d=\"a/b\"/></svg><p>past a drawing</p>",
		"after svg and more past a drawing"},
	{"html-script-unclosed", "Subject: x\r\nContent-Type: text/html\r\n\r\nbefore<script>never ends</scripts> still",
		"before"},
	{"mixed-attachment-first", "Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\nattached text\r\n--b\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b\r\nContent-Type: text/plain\r\n\r\nthe message\r\n--b--\r\n",
		"the message"},
	{"image-only", "Subject: x\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n", ""},
	{"signed", "Subject: x\r\nContent-Type: multipart/signed; boundary=s; protocol=\"application/pgp-signature\"\r\n\r\n--s\r\nContent-Type: text/plain\r\n\r\nsigned words\r\n--s\r\nContent-Type: application/pgp-signature\r\n\r\n-----BEGIN PGP SIGNATURE-----\r\n--s--\r\n",
		"signed words"},
	{"encrypted", "Subject: x\r\nContent-Type: multipart/encrypted; boundary=e; protocol=\"application/pgp-encrypted\"\r\n\r\n--e\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n--e\r\nContent-Type: text/plain\r\n\r\n-----BEGIN PGP MESSAGE-----\r\n--e--\r\n", ""},
	{"forwarded", "Subject: x\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nforwarded text\r\n",
		"forwarded text"},
	{"no-boundary", "Subject: x\r\nContent-Type: multipart/mixed\r\n\r\nthe parser shows this as text\r\n",
		"the parser shows this as text"},
	{"joiners", "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
		"می\u200cخواهم \U0001F468\u200d\U0001F469\u200d\U0001F467 क्\u200dष \U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F!\r\n",
		"می\u200cخواهم \U0001F468\u200d\U0001F469\u200d\U0001F467 क्\u200dष \U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F!"},
	{"joiners-padding", "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
		"\u200d\u200cwords\u200c \u200dpadded\u200b\u200cby\U000E0020 joiners\u200d\u200c\u200d\r\n\u200dthat show nothing\U000E0067\r\n",
		"words paddedby joiners that show nothing"},
	{"html-joiners", "Subject: x\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>&zwnj;&nbsp;&zwnj;&nbsp;می&zwnj;خواهم</p><p>&zwj;<b>a</b>&zwj;<i>b</i></p>",
		"می\u200cخواهم a\u200db"},
	{"controls", "Subject: x\r\n\r\nbell\x07 nul\x00 del\x7f\u200bjoined\r\n", "bell nul deljoined"},
}

func TestPreview(t *testing.T) {
	for _, tc := range previewCases {
		t.Run(tc.name, func(t *testing.T) {
			got := preview(t, []byte(tc.raw))
			if got != tc.want {
				t.Errorf("preview %q, want %q", got, tc.want)
			}
		})
	}
}

// TestPreviewLength checks the bound of RFC 8970 3.3 in characters, not
// bytes, and that a preview never ends in a space or a broken character.
func TestPreviewLength(t *testing.T) {
	for _, word := range []string{"a", "ab", "señor", "日本語", "😀x"} {
		t.Run(word, func(t *testing.T) {
			body := strings.Repeat(word+" ", 1000)
			got := preview(t, []byte("Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"+body))
			if n := utf8.RuneCountInString(got); n > PreviewChars || n < PreviewChars-len(word) {
				t.Errorf("%d characters, want at most %d and close to it", n, PreviewChars)
			}
			if !utf8.ValidString(got) || strings.HasSuffix(got, " ") || !strings.HasPrefix(body, got) {
				t.Errorf("preview %q is not the start of the text, cut cleanly", got)
			}
		})
	}
}

// TestPreviewReadsLittle checks that a preview of a large message reads
// a bounded prefix of its text part, not the message.
func TestPreviewReadsLittle(t *testing.T) {
	raw := []byte("Subject: x\r\nContent-Type: text/html\r\n\r\n<style>" + strings.Repeat("p { }\r\n", 1<<20) + "</style>text")
	tree, err := Parse(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	r := &countingReaderAt{r: bytes.NewReader(raw)}
	got, err := tree.Preview(r)
	if err != nil || got != "" {
		t.Errorf("preview %q, %v; want \"\": the text is past what is read", got, err)
	}
	if r.n > previewRead {
		t.Errorf("read %d bytes of a %d-byte message, want at most %d", r.n, len(raw), previewRead)
	}
}

// TestPreviewBudget checks that what a preview reads is bounded for the
// message, not for each part it tries.
func TestPreviewBudget(t *testing.T) {
	for _, pad := range []string{"&zwnj;&nbsp;<b x=1>&#8203;</b>", "&#8203;", "\u200b"} {
		t.Run(pad, func(t *testing.T) {
			raw := []byte(craftedPreview(pad))
			tree, err := Parse(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			r := &countingReaderAt{r: bytes.NewReader(raw)}
			if got, err := tree.Preview(r); err != nil || got != "" {
				t.Fatalf("preview %q, %v; want \"\"", got, err)
			}
			if r.n > previewRead {
				t.Errorf("read %d bytes of the parts, want at most %d in all", r.n, previewRead)
			}
		})
	}
}

// TestPreviewLate checks that text a reader sees after tens of kilobytes
// that show nothing, within what a preview reads, still makes the preview:
// a bottom-posted reply below its quote, a newsletter's markup.
func TestPreviewLate(t *testing.T) {
	const long = 40 << 10
	table := `<table role="presentation" cellspacing="0" cellpadding="0" border="0" style="max-width:600px;">` +
		"\r\n  <tr>\r\n    <td align=center valign=top style=\"padding:0;\">\r\n"
	for _, tc := range []struct{ name, header, body string }{
		{"reply below its quote", "text/html", `<html><body><blockquote type="cite"><div>On Monday, Bob wrote:</div>` +
			strings.Repeat("<div>Line of the earlier message &amp; more of it</div>\r\n", long/56) + "</blockquote><p>the reply</p>"},
		{"long head", "text/html", "<html><head><title>t</title>" + strings.Repeat("<meta name=x content=y>\r\n", long/25) +
			"</head><body>the text"},
		{"table markup", "text/html", "<html><body>" + strings.Repeat(table, long/len(table)) + "the text"},
		{"quoted lines", "text/plain", strings.Repeat("> "+strings.Repeat("quoted ", 10)+"\r\n", long/72) + "the reply"},
		{"style", "text/html", "<style>" + strings.Repeat("p { margin: 0 }\r\n", long/17) + "</style>the text"},
		{"attributes", "text/html", strings.Repeat(`<td style="`+strings.Repeat("padding: 0; ", 40)+`">`, long/490) + "the text"},
		{"comments", "text/html", strings.Repeat("<!--[if mso]>"+strings.Repeat("<o:x>y</o:x>", 30)+"<![endif]-->", long/385) + "the text"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := preview(t, []byte("Subject: x\r\nContent-Type: "+tc.header+"\r\n\r\n"+tc.body))
			if !strings.HasPrefix(got, "the ") {
				t.Errorf("preview %q, want the text after %d bytes", got, len(tc.body))
			}
		})
	}
}

// TestPreviewError checks that an error reading the message is returned,
// and that a preview is not made of what came before it.
func TestPreviewError(t *testing.T) {
	raw := []byte("Subject: x\r\n\r\nsome text\r\n")
	tree, err := Parse(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk gone")
	if s, err := tree.Preview(failingReaderAt{boom}); !errors.Is(err, boom) || s != "" {
		t.Errorf("preview %q, error %v; want \"\", %v", s, err, boom)
	}
	// Text read before the error is no preview either.
	half := &failAfter{r: bytes.NewReader(raw), n: int64(len(raw) - 8), err: boom}
	if s, err := tree.Preview(half); !errors.Is(err, boom) || s != "" {
		t.Errorf("preview %q, error %v after part of the text; want \"\", %v", s, err, boom)
	}
}

// TestPreviewCorpus makes the preview of every message of the shared
// corpus of real-world and malformed mail: each is valid UTF-8 within the
// bound, without an error.
func TestPreviewCorpus(t *testing.T) {
	root := clienttest.NeedCorpus(t)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		got := preview(t, raw)
		if testing.Verbose() {
			rel, _ := filepath.Rel(root, path)
			t.Logf("%s: %q", rel, got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// FuzzPreview makes the preview of arbitrary input, which must be valid
// UTF-8 of at most PreviewChars characters without white space at either
// end. Its seeds, in testdata/fuzz/FuzzPreview, are previewCases.
func FuzzPreview(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte) {
		preview(t, raw)
	})
}

// TestPreviewSeeds checks that FuzzPreview's seeds are previewCases;
// -update rewrites them.
func TestPreviewSeeds(t *testing.T) {
	for _, tc := range previewCases {
		checkSeed(t, filepath.Join("testdata", "fuzz", "FuzzPreview", tc.name), []byte(tc.raw))
	}
}

// preview parses raw and returns its preview, failing t where the
// preview breaks a rule of RFC 8970 3.3.
func preview(t testing.TB, raw []byte) string {
	t.Helper()
	tree, err := Parse(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	got, err := tree.Preview(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("preview: %v", err)
	}
	if !utf8.ValidString(got) || utf8.RuneCountInString(got) > PreviewChars || strings.TrimSpace(got) != got {
		t.Fatalf("preview %q: not valid UTF-8 of at most %d characters, trimmed", got, PreviewChars)
	}
	return got
}

// countingReaderAt counts the bytes read through it.
type countingReaderAt struct {
	r io.ReaderAt
	n int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n += int64(n)
	return n, err
}

type failingReaderAt struct{ err error }

// failAfter reads r up to offset n, and fails with err beyond it.
type failAfter struct {
	r   io.ReaderAt
	n   int64
	err error
}

func (f *failAfter) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) <= f.n {
		return f.r.ReadAt(p, off)
	}
	if off >= f.n {
		return 0, f.err
	}
	n, _ := f.r.ReadAt(p[:f.n-off], off)
	return n, f.err
}

func (f failingReaderAt) ReadAt([]byte, int64) (int, error) { return 0, f.err }

// craftedPreview is a message made to cost its preview the most: four
// HTML parts of 70 KB of markup and padding that show nothing.
func craftedPreview(pad string) string {
	part := "--b\r\nContent-Type: text/html\r\n\r\n" + strings.Repeat(pad, 70_000/len(pad)) + "\r\n"
	return "Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" + strings.Repeat(part, 4) + "--b--\r\n"
}

// BenchmarkPreview makes the previews of a plain message, a newsletter
// whose HTML has 20 KB of <style> before its text, a message whose text
// part is followed by a 200 KB attachment, and the crafted messages of
// craftedPreview, which have no preview.
func BenchmarkPreview(b *testing.B) {
	words := strings.Repeat("Some words of a message body, as people write them.\r\n", 20)
	for _, bc := range []struct{ name, raw string }{
		{"crafted-markup", craftedPreview("&zwnj;&nbsp;<b x=1>&#8203;</b>")},
		{"crafted-refs", craftedPreview("&#8203;")},
		{"plain", "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + words},
		{"html", "Subject: x\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><head><style>\r\n" +
			strings.Repeat(".c { color: #333; margin: 0; }\r\n", 650) + "</style></head><body><p>" + words + "</p></body></html>\r\n"},
		{"attachment", "Subject: x\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + words +
			"--m\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" + strings.Repeat(strings.Repeat("QUJD", 19)+"\r\n", 2700) + "--m--\r\n"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			raw := []byte(bc.raw)
			tree, err := Parse(bytes.NewReader(raw))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if s, err := tree.Preview(bytes.NewReader(raw)); err != nil || (s == "") != strings.HasPrefix(bc.name, "crafted") {
					b.Fatalf("%q, %v", s, err)
				}
			}
		})
	}
}

// TestPreviewCutCharacter: a UTF-8 character cut by the bound of what is
// read ends the text rather than showing as the characters its first
// bytes would be on their own (StrayRune), in plain text and HTML, raw or transfer-encoded.
func TestPreviewCutCharacter(t *testing.T) {
	// fill makes n bytes of text that shows as a word every few
	// kilobytes, blanks otherwise, with eol every 76 bytes.
	fill := func(n int, eol string) string {
		var b strings.Builder
		for b.Len() < n {
			line := strings.Repeat(" ", min(76-len(eol), n-b.Len()))
			if b.Len()%8192 < 76 {
				line = "a" + line[1:]
			}
			b.WriteString(line)
			if b.Len()+len(eol) <= n {
				b.WriteString(eol)
			}
		}
		return b.String()
	}
	const text = "Привет мир"
	// The bytes decoded from base64 lines of 76 characters and CRLF
	// within the bound read.
	lines, rest := previewRead/78, previewRead%78
	b64 := (lines*76 + min(rest, 76)) / 4 * 3
	wrap := func(s string) string {
		var b strings.Builder
		for len(s) > 76 {
			b.WriteString(s[:76] + "\r\n")
			s = s[76:]
		}
		return b.String() + s + "\r\n"
	}
	for _, tc := range []struct{ name, header, body string }{
		{"plain", "Content-Type: text/plain; charset=utf-8", fill(previewRead-1, "\r\n") + text},
		{"plain, 2 of 3 bytes", "Content-Type: text/plain; charset=utf-8", fill(previewRead-2, "\r\n") + "日本語"},
		{"plain, 3 of 4 bytes", "Content-Type: text/plain; charset=utf-8", fill(previewRead-3, "\r\n") + "😀"},
		{"html", "Content-Type: text/html; charset=utf-8", fill(previewRead-1, "\r\n") + text},
		{"quoted-printable", "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable",
			fill(previewRead-3, "=\r\n") + "=D0=9F=D1=80=D0=B8"},
		{"base64", "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64",
			wrap(base64.StdEncoding.EncodeToString([]byte(fill(b64-1, "\r\n") + text)))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := preview(t, []byte("Subject: x\r\n"+tc.header+"\r\n\r\n"+tc.body))
			if got == "" || strings.ContainsFunc(got, func(r rune) bool { return r != 'a' && r != ' ' }) {
				t.Errorf("preview %q, want the words before the cut alone", got)
			}
		})
	}
}
