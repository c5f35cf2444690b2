package message

import (
	"bytes"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
	"golang.org/x/text/encoding/charmap"
)

// KnownEncoding reports whether DecodeTransfer decodes the named
// Content-Transfer-Encoding (RFC 2045 6.1), compared case-insensitively.
// IMAP BINARY must answer NO [UNKNOWN-CTE] for the others (RFC 3516 4.3).
func KnownEncoding(encoding string) bool {
	return canonicalEncoding(encoding) != ""
}

// canonicalEncoding returns the lower-case name of a known
// Content-Transfer-Encoding, "7bit" for none, and "" for an unknown one.
func canonicalEncoding(encoding string) string {
	encoding = strings.TrimSpace(encoding)
	if encoding == "" {
		return "7bit" // RFC 2045 6.1
	}
	for _, known := range [...]string{"7bit", "8bit", "binary", "base64", "quoted-printable"} {
		if strings.EqualFold(encoding, known) {
			return known
		}
	}
	return ""
}

// DecodeTransfer returns a reader of the content r carries in the given
// Content-Transfer-Encoding (RFC 2045 6): base64 and quoted-printable are
// decoded; identity encodings (7bit, 8bit, binary) and unknown ones pass
// through unchanged (see KnownEncoding).
//
// Decoding is tolerant, as a server presenting what it accepted must be:
// bytes that cannot belong to base64 are skipped, padding in the middle
// ends a quantum rather than the data, and quoted-printable "=" sequences
// that are not escapes or soft line breaks are kept literally (RFC 2045
// 6.7 note 2). The reader never fails on content; it returns the errors
// of r.
func DecodeTransfer(encoding string, r io.Reader) io.Reader {
	switch canonicalEncoding(encoding) {
	case "base64":
		return &base64Reader{r: r}
	case "quoted-printable":
		return &qpReader{r: r}
	}
	return r
}

// TextReader returns a reader of the text of the part for SEARCH: body,
// which must read the part's raw body (bytes [BodyStart, End) of the
// message), transfer-decoded (see DecodeTransfer) and converted to UTF-8
// from the charset parameter. A missing charset, US-ASCII (which
// mislabelled 8-bit mail often claims) and an unknown charset pass the
// bytes through as they are: best effort, never an error.
func (p *Part) TextReader(body io.Reader) io.Reader {
	r := DecodeTransfer(p.Encoding, body)
	cs, _ := lookupParam(p.Params, "charset")
	if isUTF8Compatible(cs) {
		return r
	}
	if cr, err := charset.Reader(cs, r); err == nil {
		return cr
	}
	return r
}

// isUTF8Compatible tells charsets whose text can be used as UTF-8 as it is.
func isUTF8Compatible(cs string) bool {
	cs = strings.TrimSpace(cs)
	for _, c := range [...]string{"", "utf-8", "utf8", "us-ascii", "ascii"} {
		if strings.EqualFold(cs, c) {
			return true
		}
	}
	return false
}

// toUTF8 converts b from the named charset to UTF-8. For an unknown
// charset it returns b as it is and ok false.
func toUTF8(cs string, b []byte) (s string, ok bool) {
	if isUTF8Compatible(cs) {
		return string(b), true
	}
	r, err := charset.Reader(cs, bytes.NewReader(b))
	if err != nil {
		return string(b), false
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return string(b), false
	}
	return string(out), true
}

// StrayRune is the character that a byte of 8-bit text with no charset
// (or one not known) stands for, when the byte is not part of a UTF-8
// character: its Windows-1252 character. That is what such text most
// often is, and what web browsers read text labelled ISO-8859-1 as: the
// same letters, with the typographic quotes, dashes and euro sign of
// Windows where ISO-8859-1 has control characters (0x80-0x9F). The five
// bytes Windows-1252 leaves undefined are the control characters
// ISO-8859-1 has there.
func StrayRune(b byte) rune {
	if r := charmap.Windows1252.DecodeByte(b); r != utf8.RuneError {
		return r
	}
	return rune(b)
}

// appendText appends raw header text to b as UTF-8: valid UTF-8 as it
// is, and any other byte as the character it stands for (StrayRune).
func appendText(b []byte, s string) []byte {
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && n == 1 {
			b = utf8.AppendRune(b, StrayRune(s[0]))
		} else {
			b = append(b, s[:n]...)
		}
		s = s[n:]
	}
	return b
}

// ValidUTF8 returns s as valid UTF-8, reading any byte that is not part
// of a UTF-8 character as StrayRune does.
func ValidUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return string(appendText(nil, s))
}

// DecodeHeaderValue decodes the RFC 2047 encoded words of a header value
// into UTF-8, for SEARCH. It is tolerant where RFC 2047 is strict, as
// readers of real mail must be:
//   - encoded words are decoded wherever they appear, even inside words
//     or quoted strings;
//   - adjacent encoded words in the same charset are joined before
//     conversion, so a character split across two words survives;
//   - white space between encoded words is dropped (RFC 2047 6.2);
//   - an RFC 2231 language suffix ("UTF-8*en") is ignored (RFC 2231 5);
//   - a word that does not decode, or whose charset is unknown, is kept
//     as it was written;
//   - raw 8-bit text that is not UTF-8 is read as Windows-1252
//     (StrayRune).
//
// The result is always valid UTF-8.
func DecodeHeaderValue(s string) string {
	if !strings.Contains(s, "=?") && utf8.ValidString(s) {
		return s
	}
	d := wordDecoder{s: s}
	for pos := 0; pos < len(s); {
		i := strings.Index(s[pos:], "=?")
		if i < 0 {
			d.text(pos, len(s))
			break
		}
		start := pos + i
		w, n, ok := parseEncodedWord(s[start:])
		if !ok {
			d.text(pos, start+2)
			pos = start + 2
			continue
		}
		if !d.inRun || strings.Trim(s[pos:start], " \t\r\n") != "" {
			d.text(pos, start)
		}
		d.word(w, start, start+n)
		pos = start + n
	}
	return string(d.flush())
}

// wordDecoder builds the result of DecodeHeaderValue. It holds the run of
// adjacent encoded words in one charset until another kind of text
// follows.
type wordDecoder struct {
	s     string // the value being decoded
	out   []byte
	inRun bool // the last thing seen was an encoded word
	// The pending run: its charset, its decoded bytes, and where it is in
	// s, to be kept as written if its charset is unknown.
	cs         string
	run        []byte
	start, end int
}

// text adds s[start:end], which is not an encoded word.
func (d *wordDecoder) text(start, end int) {
	d.flush()
	d.inRun = false
	d.out = appendText(d.out, d.s[start:end])
}

// word adds the encoded word w, which is s[start:end].
func (d *wordDecoder) word(w encodedWord, start, end int) {
	if d.inRun && !strings.EqualFold(d.cs, w.charset) {
		d.flush()
	}
	if d.start == d.end {
		d.cs, d.start = w.charset, start
	}
	d.run = append(d.run, w.data...)
	d.end = end
	d.inRun = true
}

func (d *wordDecoder) flush() []byte {
	if d.start != d.end {
		if s, ok := toUTF8(d.cs, d.run); ok {
			d.out = appendText(d.out, s)
		} else {
			d.out = appendText(d.out, d.s[d.start:d.end])
		}
	}
	d.run, d.start, d.end = d.run[:0], 0, 0
	return d.out
}

// encodedWord is a decoded RFC 2047 encoded word, before charset
// conversion.
type encodedWord struct {
	charset string
	data    []byte
}

// parseEncodedWord decodes the encoded word s starts with (RFC 2047 2):
// "=?" charset "?" encoding "?" encoded-text "?=". n is its length.
//
// Neither charset nor encoded-text may hold "?" or white space, so the
// scans stop at the first of those: each one ends before the "=?" of the
// next candidate word, which keeps DecodeHeaderValue linear however much
// junk it is given.
func parseEncodedWord(s string) (w encodedWord, n int, ok bool) {
	cs, rest, ok := cutWordField(s[2:])
	if !ok || cs == "" || len(rest) < 2 || rest[1] != '?' {
		return w, 0, false
	}
	enc := rest[0] | 0x20
	text, rest, ok := cutWordField(rest[2:])
	if !ok || !strings.HasPrefix(rest, "=") {
		return w, 0, false
	}
	if i := strings.IndexByte(cs, '*'); i >= 0 {
		cs = cs[:i] // RFC 2231 5: charset*language
	}
	w.charset = cs
	switch enc {
	case 'b':
		w.data, ok = decodeBase64Word(text)
	case 'q':
		w.data, ok = decodeQWord(text), true
	default:
		ok = false
	}
	return w, len(s) - len(rest) + 1, ok
}

// cutWordField cuts s at its first "?", which must come before any white
// space, and returns what follows the "?".
func cutWordField(s string) (field, rest string, ok bool) {
	i := strings.IndexAny(s, "? \t\r\n")
	if i < 0 || s[i] != '?' {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}

// decodeBase64Word decodes the B encoding (RFC 2047 4.1) tolerantly:
// missing or extra padding is accepted. Text with bytes outside the
// base64 alphabet is not an encoded word.
func decodeBase64Word(text string) ([]byte, bool) {
	var d base64Decoder
	out := make([]byte, 0, len(text)*3/4+3)
	for i := 0; i < len(text); i++ {
		if _, valid := base64Value(text[i]); !valid && text[i] != '=' {
			return nil, false
		}
	}
	out = d.decode(out, []byte(text))
	return d.flush(out), true
}

// decodeQWord decodes the Q encoding (RFC 2047 4.2): "_" is a space and
// "=XX" an octet; an "=" starting no escape is kept.
func decodeQWord(text string) []byte {
	out := make([]byte, 0, len(text))
	for i := 0; i < len(text); i++ {
		switch c := text[i]; {
		case c == '_':
			out = append(out, ' ')
		case c == '=' && i+2 < len(text):
			if b, ok := unhex2(text[i+1], text[i+2]); ok {
				out = append(out, b)
				i += 2
			} else {
				out = append(out, c)
			}
		default:
			out = append(out, c)
		}
	}
	return out
}
