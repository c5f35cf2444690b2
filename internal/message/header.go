package message

import (
	"bytes"
	"iter"
	"strings"
)

// field identifies a header field the parser keeps.
type field int

const (
	fieldContentType field = iota
	fieldContentTransferEncoding
	fieldContentID
	fieldContentDescription
	fieldContentDisposition
	fieldContentLanguage
	fieldContentLocation
	fieldContentMD5
	// The fields below make up the ENVELOPE, kept for messages only.
	fieldDate
	fieldSubject
	fieldFrom
	fieldSender
	fieldReplyTo
	fieldTo
	fieldCc
	fieldBcc
	fieldInReplyTo
	fieldMessageID
	numFields

	firstEnvelopeField = fieldDate
	noField            = field(-1)
)

// lookupField returns the field a header field name stands for, or
// noField. Names compare ASCII case-insensitively (RFC 5322 1.2.2).
func lookupField(name []byte) field {
	var buf [32]byte
	if len(name) > len(buf) {
		return noField
	}
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	switch string(buf[:len(name)]) {
	case "content-type":
		return fieldContentType
	case "content-transfer-encoding":
		return fieldContentTransferEncoding
	case "content-id":
		return fieldContentID
	case "content-description":
		return fieldContentDescription
	case "content-disposition":
		return fieldContentDisposition
	case "content-language":
		return fieldContentLanguage
	case "content-location":
		return fieldContentLocation
	case "content-md5":
		return fieldContentMD5
	case "date":
		return fieldDate
	case "subject":
		return fieldSubject
	case "from":
		return fieldFrom
	case "sender":
		return fieldSender
	case "reply-to":
		return fieldReplyTo
	case "to":
		return fieldTo
	case "cc":
		return fieldCc
	case "bcc":
		return fieldBcc
	case "in-reply-to":
		return fieldInReplyTo
	case "message-id":
		return fieldMessageID
	}
	return noField
}

// headerInfo holds the raw values of the fields of one header block that
// the parser keeps. Values point into the block.
type headerInfo struct {
	vals [numFields][]byte
	has  [numFields]bool
}

// scan collects the fields of interest of a header block: for each, the
// first occurrence. RFC 5322 3.6 and RFC 2045 allow one of each; where
// real mail repeats one, Dovecot 2.3 too takes the first Content-Type,
// but the last Subject and Content-Disposition, and joins the addresses
// of repeated address fields. Envelope fields are collected only for a
// message.
func (h *headerInfo) scan(block []byte, message bool) {
	*h = headerInfo{}
	s := fieldScanner{rest: block}
	for {
		name, raw, ok := s.next()
		if !ok {
			return
		}
		f := lookupField(name)
		if f == noField || h.has[f] || !message && f >= firstEnvelopeField {
			continue
		}
		h.has[f] = true
		h.vals[f] = raw[len(name):] // the colon and what follows
	}
}

// value returns the unfolded value of a field, "" when absent.
func (h *headerInfo) value(f field) string {
	return fieldValue(h.vals[f])
}

// fieldValue unfolds what follows a field's name: the colon, perhaps
// after white space (RFC 5322 4.5.3), and the value.
func fieldValue(v []byte) string {
	if len(v) > 0 && v[0] == ':' {
		v = v[1:]
	} else if i := bytes.IndexByte(v, ':'); i >= 0 {
		v = v[i+1:]
	}
	return unfold(v)
}

// setContent sets the Content-* fields of part from the header (RFC 2045,
// RFC 2183, RFC 3282, RFC 2557, RFC 1864), with the defaults of RFC 2045
// 5.2 and RFC 2046 5.1.5. It returns the boundary of a multipart, "" when
// it has none.
func (h *headerInfo) setContent(part *Part, inDigest bool) (boundary string) {
	typ, sub, params, ok := "", "", []Param(nil), false
	if h.has[fieldContentType] {
		typ, sub, params, ok = parseMediaType(h.value(fieldContentType))
	} else if inDigest {
		typ, sub, ok = "message", "rfc822", true
	}
	if !ok {
		typ, sub, params = "text", "plain", []Param{{Name: "charset", Value: "us-ascii"}}
	}
	part.MediaType, part.MediaSubtype, part.Params = typ, sub, params
	if typ == "multipart" {
		boundary, _ = lookupParam(params, "boundary")
	}

	part.Encoding = "7BIT"
	if enc := firstToken(h.value(fieldContentTransferEncoding)); enc != "" {
		part.Encoding = asciiUpper(enc)
	}
	part.ID = h.value(fieldContentID)
	part.Description = h.value(fieldContentDescription)
	part.Location = h.value(fieldContentLocation)
	part.MD5 = h.value(fieldContentMD5)
	if h.has[fieldContentDisposition] {
		part.Disposition, part.DispositionParams = parseDisposition(h.value(fieldContentDisposition))
	}
	if h.has[fieldContentLanguage] {
		part.Language = parseLanguage(h.value(fieldContentLanguage))
	}
	return boundary
}

// envelope builds the ENVELOPE of a message (RFC 9051 7.5.2).
func (h *headerInfo) envelope() *Envelope {
	env := &Envelope{
		Date:      h.value(fieldDate),
		Subject:   h.value(fieldSubject),
		From:      ParseAddressList(h.value(fieldFrom)),
		Sender:    ParseAddressList(h.value(fieldSender)),
		ReplyTo:   ParseAddressList(h.value(fieldReplyTo)),
		To:        ParseAddressList(h.value(fieldTo)),
		Cc:        ParseAddressList(h.value(fieldCc)),
		Bcc:       ParseAddressList(h.value(fieldBcc)),
		InReplyTo: h.value(fieldInReplyTo),
		MessageID: h.value(fieldMessageID),
	}
	// RFC 9051 7.5.2: a field present but empty is the empty string, not
	// NIL.
	for _, f := range []struct {
		field field
		value string
		bit   EmptyFields
	}{
		{fieldDate, env.Date, EmptyDate}, {fieldSubject, env.Subject, EmptySubject},
		{fieldInReplyTo, env.InReplyTo, EmptyInReplyTo}, {fieldMessageID, env.MessageID, EmptyMessageID},
	} {
		if h.has[f.field] && f.value == "" {
			env.Empty |= f.bit
		}
	}
	// RFC 9051 7.5.2: "If the Sender or Reply-To lines are absent in the
	// [RFC-5322] header, or are present but empty, the server sets the
	// corresponding member of the envelope to be the same value as the
	// from member".
	if len(env.Sender) == 0 {
		env.Sender = env.From
	}
	if len(env.ReplyTo) == 0 {
		env.ReplyTo = env.From
	}
	return env
}

// fieldScanner walks the fields of a header block, stopping at the empty
// line that ends it, if any.
type fieldScanner struct {
	rest []byte
}

// next returns the next field: raw is its bytes verbatim, continuation
// lines and line breaks included; name is its field name without
// trailing white space, or nil when raw is not a well-formed field (a
// line without a colon, or continuation lines with nothing before them).
// ok is false after the last field.
func (s *fieldScanner) next() (name, raw []byte, ok bool) {
	if len(s.rest) == 0 || isEmptyLine(lineAt(s.rest)) {
		return nil, nil, false
	}
	n := len(lineAt(s.rest))
	for n < len(s.rest) && (s.rest[n] == ' ' || s.rest[n] == '\t') {
		n += len(lineAt(s.rest[n:])) // RFC 5322 2.2.3: a folded line
	}
	raw, s.rest = s.rest[:n:n], s.rest[n:]
	return fieldName(raw), raw, true
}

// Field is one field of a header block, as Fields yields it.
type Field struct {
	// Name is the field name as written, without the white space RFC
	// 5322 4.5.3 allows before the colon. It points into the block.
	Name []byte
	rest []byte // the colon and what follows, verbatim
}

// Value returns the field's value unfolded (RFC 5322 2.2.3: the line
// breaks removed, nothing else) and without the white space around it.
// Encoded words are left as they are; DecodeHeaderValue decodes them.
func (f Field) Value() string { return fieldValue(f.rest) }

// SpacedValue is Value with the tab that begins a folded line made a space:
// mailers such as Outlook fold a line at a space and start the next one
// with a tab, and whoever reads or matches the value means the space.
// Pigeonhole's Sieve matches the value so, and people's filters expect it.
func (f Field) SpacedValue() string {
	if !bytes.Contains(f.rest, []byte("\n\t")) {
		return f.Value()
	}
	return fieldValue(bytes.ReplaceAll(f.rest, []byte("\n\t"), []byte("\n ")))
}

// Fields yields the fields of a header block in order, up to the empty
// line that ends it. Lines that are not fields (no colon, or continuation
// lines with nothing before them) are skipped. It reads the block once,
// in time linear in its size, however it is folded.
func Fields(header []byte) iter.Seq[Field] {
	return func(yield func(Field) bool) {
		s := fieldScanner{rest: header}
		for {
			name, raw, ok := s.next()
			if !ok {
				return
			}
			if name != nil && !yield(Field{Name: name, rest: raw[len(name):]}) {
				return
			}
		}
	}
}

// lineAt returns the line b starts with, with its line break.
func lineAt(b []byte) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i+1]
	}
	return b
}

// fieldName returns the name of a raw field, or nil when it has none.
func fieldName(raw []byte) []byte {
	if len(raw) == 0 || raw[0] == ' ' || raw[0] == '\t' {
		return nil
	}
	line := lineAt(raw)
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return nil
	}
	// RFC 5322 4.5.3 allows white space before the colon.
	name := bytes.TrimRight(line[:i], " \t")
	if len(name) == 0 {
		return nil
	}
	return name
}

// unfold returns a field value with its line breaks removed (RFC 5322
// 2.2.3) and without the white space around it; nothing else changes.
func unfold(v []byte) string {
	v = bytes.Trim(v, " \t\r\n")
	if !bytes.ContainsAny(v, "\r\n") {
		return string(v)
	}
	var b strings.Builder
	b.Grow(len(v))
	for _, c := range v {
		if c != '\r' && c != '\n' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// firstToken returns the first run of characters of s up to white space,
// a semicolon or a comment: the value of a Content-Transfer-Encoding
// field (RFC 2045 6.1), even one followed by junk.
func firstToken(s string) string {
	s = skipCFWS(s)
	if i := strings.IndexAny(s, " \t;("); i >= 0 {
		s = s[:i]
	}
	return s
}

// HeaderFields selects fields of a header block, as BODY[HEADER.FIELDS
// (names)] and BODY[HEADER.FIELDS.NOT (names)] do (RFC 9051 6.4.5):
// the fields whose name is one of names (ASCII case-insensitively) or,
// when not is set, the fields whose name is none of them. Fields come
// verbatim, in their order and with their original folding, followed by
// the empty line that ends the header block, if it has one.
//
// A line in the block that is not a field (no colon, or a continuation
// with nothing to continue) has no name: HEADER.FIELDS.NOT keeps it,
// HEADER.FIELDS drops it.
func HeaderFields(header []byte, names []string, not bool) []byte {
	var out []byte
	s := fieldScanner{rest: header}
	for {
		name, raw, ok := s.next()
		if !ok {
			break
		}
		if matchName(name, names) == not {
			continue
		}
		out = append(out, raw...)
		if raw[len(raw)-1] != '\n' {
			out = append(out, '\r', '\n') // a header that ended with the input
		}
	}
	if len(s.rest) > 0 { // the empty line
		out = append(out, s.rest[:len(lineAt(s.rest))]...)
	}
	return out
}

func matchName(name []byte, names []string) bool {
	if name == nil {
		return false
	}
	for _, n := range names {
		if asciiEqualFold(name, n) {
			return true
		}
	}
	return false
}

// asciiEqualFold compares ASCII case-insensitively and nothing else, as
// RFC 9051 6.4.5 asks of HEADER.FIELDS; bytes.EqualFold folds Unicode.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// ASCIILower lower-cases the ASCII letters of s and leaves every other
// byte, as header field names compare (RFC 5322 1.2.2) and Sieve's
// i;ascii-casemap; it does not allocate when s has no upper-case letter.
func ASCIILower(s string) string { return asciiLower(s) }

// ASCIIUpper upper-cases the ASCII letters of s; see ASCIILower.
func ASCIIUpper(s string) string { return asciiUpper(s) }
