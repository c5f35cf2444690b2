package message

import (
	"slices"
	"strconv"
	"strings"
)

const (
	// maxParams bounds the parameters read from one field, so that a
	// hostile header cannot make a huge list.
	maxParams = 1000
	// maxLanguages bounds the tags read from one Content-Language field.
	maxLanguages = 100
	// maxSection bounds RFC 2231 section numbers.
	maxSection = 999
)

// parseMediaType parses a Content-Type value (RFC 2045 5.1): type "/"
// subtype, then parameters. ok is false when there is no type and
// subtype; everything after them is taken leniently (see parseParams).
func parseMediaType(v string) (typ, sub string, params []Param, ok bool) {
	typ, rest := cutToken(skipCFWS(v))
	rest = skipCFWS(rest)
	if typ == "" || !strings.HasPrefix(rest, "/") {
		return "", "", nil, false
	}
	sub, rest = cutToken(skipCFWS(rest[1:]))
	if sub == "" {
		return "", "", nil, false
	}
	return asciiLower(typ), asciiLower(sub), parseParams(rest), true
}

// parseDisposition parses a Content-Disposition value (RFC 2183 2): a
// type, lower-cased, then parameters. A value without a type still has
// its parameters read.
func parseDisposition(v string) (typ string, params []Param) {
	typ, rest := cutToken(skipCFWS(v))
	return asciiLower(typ), parseParams(rest)
}

// parseLanguage parses a Content-Language value (RFC 3282 2): a comma
// separated list of language tags.
func parseLanguage(v string) []string {
	var tags []string
	for tag := range strings.SplitSeq(v, ",") {
		if tag = strings.TrimSpace(stripComments(tag)); tag != "" && len(tags) < maxLanguages {
			tags = append(tags, tag)
		}
	}
	return tags
}

// lookupParam returns the value of the named parameter.
func lookupParam(params []Param, name string) (string, bool) {
	for _, p := range params {
		if p.Name == name {
			return p.Value, true
		}
	}
	return "", false
}

// rawParam is a parameter as written, before RFC 2231 decoding.
type rawParam struct {
	name, value string
}

// parseParams parses the parameters after a media type or disposition
// type (RFC 2045 5.1, RFC 2231), leniently, the way mail clients read
// what mail software actually writes:
//   - a parameter without a semicolon before it is still read
//     (`application/pdf name="a.pdf"`);
//   - an unquoted value runs to the next semicolon, so tspecials and
//     spaces in it are kept (`name=Invoice (1).pdf`), but a trailing
//     comment is dropped (`charset=us-ascii (Plain text)`);
//   - a quoted value without its closing quote runs to the end;
//   - junk without "=" is skipped up to the next semicolon;
//   - a repeated parameter keeps its first value;
//   - RFC 2231 continuations and charsets are decoded into one value.
func parseParams(s string) []Param {
	var raw []rawParam
	for len(raw) < maxParams {
		s = skipCFWS(s)
		if s == "" {
			break
		}
		if s[0] == ';' {
			s = s[1:]
			continue
		}
		name, rest := cutParamName(s)
		rest = skipCFWS(rest)
		if name == "" || !strings.HasPrefix(rest, "=") {
			s = skipPast(rest, ';')
			continue
		}
		var value string
		value, s = cutParamValue(skipCFWS(rest[1:]))
		raw = append(raw, rawParam{name: asciiLower(name), value: value})
	}
	return decodeParams(raw)
}

// decodeParams merges RFC 2231 sections and charset-encoded values into
// plain parameters, in the order their names first appear, dropping
// repeats.
func decodeParams(raw []rawParam) []Param {
	if len(raw) == 0 {
		return nil
	}
	params := make([]Param, 0, len(raw))
	if !slices.ContainsFunc(raw, func(r rawParam) bool { return strings.Contains(r.name, "*") }) {
		seen := newNameSet(len(raw))
		for _, r := range raw {
			if seen.add(r.name) {
				params = append(params, Param{Name: r.name, Value: r.value})
			}
		}
		return params
	}

	// RFC 2231 3, 4: name*0, name*1*, ... are sections of one value,
	// name* is a whole encoded value. A decoded value wins over a plain
	// one of the same name, which RFC 2231 senders add for old readers.
	type entry struct {
		plain    string
		hasPlain bool
		sections []section
	}
	var order []string
	entries := map[string]*entry{}
	for _, r := range raw {
		base, sec, ok := splitSection(r)
		e := entries[base]
		if e == nil {
			e = &entry{}
			entries[base] = e
			order = append(order, base)
		}
		switch {
		case ok:
			e.sections = append(e.sections, sec)
		case !e.hasPlain:
			e.plain, e.hasPlain = r.value, true
		}
	}
	for _, name := range order {
		e := entries[name]
		v := e.plain
		if len(e.sections) > 0 {
			v = joinSections(e.sections)
		}
		params = append(params, Param{Name: name, Value: v})
	}
	return params
}

// section is one RFC 2231 section of a parameter value.
type section struct {
	n       int
	encoded bool // charset-encoded: %XX escapes, and a charset'language' prefix in section 0
	value   string
}

// splitSection splits an RFC 2231 parameter name such as "title*1*" into
// its base name and section. ok is false for a plain parameter, or for a
// name that merely contains a star.
func splitSection(r rawParam) (base string, sec section, ok bool) {
	base, rest, found := strings.Cut(r.name, "*")
	if !found || base == "" {
		return r.name, section{}, false
	}
	sec.value = r.value
	if rest == "" { // name*: a whole encoded value
		sec.encoded = true
		return base, sec, true
	}
	if sec.encoded = strings.HasSuffix(rest, "*"); sec.encoded {
		rest = rest[:len(rest)-1]
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 || n > maxSection || rest[0] == '+' {
		return r.name, section{}, false
	}
	sec.n = n
	return base, sec, true
}

// joinSections decodes the sections of an RFC 2231 value: in number
// order, the first of each number kept, percent-escapes decoded in
// encoded sections, and the whole converted to UTF-8 from the charset
// named by an encoded section 0.
func joinSections(secs []section) string {
	slices.SortStableFunc(secs, func(a, b section) int { return a.n - b.n })
	secs = slices.CompactFunc(secs, func(a, b section) bool { return a.n == b.n })

	var charset string
	var b []byte
	for i, s := range secs {
		v := s.value
		if i == 0 && s.n == 0 && s.encoded {
			// RFC 2231 4: charset'language'value
			if cs, rest, ok := strings.Cut(v, "'"); ok {
				if _, val, ok := strings.Cut(rest, "'"); ok {
					charset, v = cs, val
				}
			}
		}
		if s.encoded {
			b = appendPercentDecoded(b, v)
		} else {
			b = append(b, v...)
		}
	}
	s, _ := toUTF8(charset, b)
	return s
}

// appendPercentDecoded appends v with %XX escapes decoded (RFC 2231 4);
// a "%" that does not start an escape is kept as it is.
func appendPercentDecoded(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		if v[i] == '%' && i+2 < len(v) {
			if c, ok := unhex2(v[i+1], v[i+2]); ok {
				b = append(b, c)
				i += 2
				continue
			}
		}
		b = append(b, v[i])
	}
	return b
}

// unhex2 decodes two hexadecimal digits, of either case.
func unhex2(hi, lo byte) (byte, bool) {
	h, ok1 := unhex(hi)
	l, ok2 := unhex(lo)
	return h<<4 | l, ok1 && ok2
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// nameSet tells parameter names already seen. Most fields have a handful
// of parameters, compared directly; a map serves the hostile rest.
type nameSet struct {
	list [16]string
	n    int
	m    map[string]bool
}

func newNameSet(n int) nameSet {
	if n > len(nameSet{}.list) {
		return nameSet{m: make(map[string]bool, n)}
	}
	return nameSet{}
}

// add adds name and reports whether it was new.
func (s *nameSet) add(name string) bool {
	if s.m != nil {
		if s.m[name] {
			return false
		}
		s.m[name] = true
		return true
	}
	if slices.Contains(s.list[:s.n], name) {
		return false
	}
	s.list[s.n] = name
	s.n++
	return true
}

// isTSpecial reports the tspecials of RFC 2045 5.1, which end a token.
func isTSpecial(c byte) bool {
	return strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0
}

// cutToken cuts the RFC 2045 token s starts with. Bytes above 127 are
// accepted in tokens, to read 8-bit headers.
func cutToken(s string) (token, rest string) {
	i := 0
	for i < len(s) && s[i] > ' ' && s[i] != 0x7f && !isTSpecial(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

// cutParamName cuts a parameter name: up to "=", ";" or white space.
// Names are cut more loosely than tokens, so that junk such as "a/b=c"
// still ends up as a (useless) parameter instead of swallowing the next.
func cutParamName(s string) (name, rest string) {
	i := strings.IndexAny(s, "=; \t(")
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i:]
}

// cutParamValue cuts a parameter value, quoted or not (see parseParams),
// and returns the rest after the next semicolon.
func cutParamValue(s string) (value, rest string) {
	if strings.HasPrefix(s, `"`) {
		value, rest = cutQuoted(s)
		return value, skipPast(rest, ';')
	}
	value, rest, _ = strings.Cut(s, ";")
	value = strings.TrimRight(value, " \t")
	// A comment after an unquoted value: "us-ascii (Plain text)". A
	// value such as "report (1).pdf", not ending in ")", keeps its
	// parentheses.
	if strings.HasSuffix(value, ")") {
		if i := strings.Index(value, " ("); i > 0 {
			value = strings.TrimRight(value[:i], " \t")
		}
	}
	return value, rest
}

// cutQuoted cuts the quoted string s starts with (RFC 5322 3.2.4) and
// returns its content with quoted-pairs resolved. An unterminated quoted
// string runs to the end of s.
func cutQuoted(s string) (content, rest string) {
	s = s[1:]
	end := strings.IndexAny(s, `"\`)
	if end >= 0 && s[end] == '"' { // the common case: no quoted-pair
		return s[:end], s[end+1:]
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return b.String(), s[i+1:]
		case c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), ""
}

// skipCFWS skips white space and comments (RFC 5322 3.2.2).
func skipCFWS(s string) string {
	for len(s) > 0 {
		switch s[0] {
		case ' ', '\t', '\r', '\n':
			s = s[1:]
		case '(':
			s = SkipComment(s)
		default:
			return s
		}
	}
	return s
}

// SkipComment skips the comment (RFC 5322 3.2.2) s starts with: nested
// comments and quoted-pairs included, to the end of s if it is
// unterminated. It returns what follows.
func SkipComment(s string) string {
	rest, _ := skipCommentEnds(s)
	return rest
}

// skipCommentEnds is SkipComment that also says whether the comment ends.
func skipCommentEnds(s string) (string, bool) {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			if depth--; depth == 0 {
				return s[i+1:], true
			}
		}
	}
	return "", false
}

// stripComments removes the comments from s.
func stripComments(s string) string {
	if !strings.Contains(s, "(") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '(')
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		s = SkipComment(s[i:])
	}
}

// skipPast returns what follows the first c in s, or "".
func skipPast(s string, c byte) string {
	if i := strings.IndexByte(s, c); i >= 0 {
		return s[i+1:]
	}
	return ""
}

// asciiLower lower-cases the ASCII letters of s. Unlike strings.ToLower
// it leaves other bytes alone, invalid UTF-8 included, and it does not
// allocate when s has no upper-case letter.
func asciiLower(s string) string {
	return mapASCII(s, 'A', 'Z', 'a'-'A')
}

// asciiUpper upper-cases the ASCII letters of s; see asciiLower.
func asciiUpper(s string) string {
	return mapASCII(s, 'a', 'z', -('a' - 'A'))
}

func mapASCII(s string, lo, hi byte, delta int) string {
	i := 0
	for i < len(s) && (s[i] < lo || s[i] > hi) {
		i++
	}
	if i == len(s) {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		if lo <= b[i] && b[i] <= hi {
			b[i] = byte(int(b[i]) + delta)
		}
	}
	return string(b)
}
