package message

import (
	"errors"
	"fmt"
)

// ErrNoSection is returned (wrapped) when a section names a part the
// message does not have, or a specifier the part does not allow.
var ErrNoSection = errors.New("no such section")

// Section returns the part that a section-part of IMAP (RFC 9051 6.4.5)
// names, path being its numbers: nil or empty for the message itself,
// {2, 1} for "2.1". p must be the root of a message.
//
// Numbering follows RFC 9051: the parts of a multipart are numbered from
// 1; a non-multipart message or body part has a part 1, itself (its body
// is what BODY[1] returns); and numbers after a message/rfc822 part
// number the parts of the message it encapsulates. Both readings of a
// non-multipart encapsulated message meet: "2.1" is the encapsulated
// message, whose body is BODY[2.1] and whose header is BODY[2.1.MIME].
func (p *Part) Section(path []int) (*Part, error) {
	cur := p
	for i, n := range path {
		if i > 0 && isMessageType(cur) && len(cur.Parts) == 1 {
			cur = &cur.Parts[0]
		}
		switch {
		case cur.MediaType == "multipart" && n >= 1 && n <= len(cur.Parts):
			cur = &cur.Parts[n-1]
		case cur.MediaType != "multipart" && n == 1:
		default:
			return nil, fmt.Errorf("section %s: %w", formatPath(path[:i+1]), ErrNoSection)
		}
	}
	return cur, nil
}

// Specifier is what a BODY[section] asks for after its part numbers (RFC
// 9051 6.4.5).
type Specifier int

const (
	// SpecifierNone asks for the part's content, BODY[2.1]; with no part
	// numbers, BODY[], the whole message.
	SpecifierNone Specifier = iota
	// SpecifierHeader asks for the header of the message, or of the
	// message a message/rfc822 part encapsulates: HEADER, and also
	// HEADER.FIELDS and HEADER.FIELDS.NOT, which then select fields
	// from it with HeaderFields.
	SpecifierHeader
	// SpecifierText asks for the body of the message, or of the message a
	// message/rfc822 part encapsulates: TEXT.
	SpecifierText
	// SpecifierMIME asks for the MIME header of a part: MIME. It needs
	// part numbers.
	SpecifierMIME
)

// SectionRange returns the byte range [start, end) of the raw message
// that BODY[section] returns (RFC 9051 6.4.5), for the part numbers in
// path and the specifier spec. p must be the root of a message.
//
// HEADER and TEXT after part numbers require a message/rfc822 (or
// message/global) part and refer to the message it encapsulates; MIME
// requires part numbers. Other uses return an error wrapping
// ErrNoSection, as does a path naming no part. A header range includes
// the empty line that ends the header, when the header has one.
func (p *Part) SectionRange(path []int, spec Specifier) (start, end int64, err error) {
	part, err := p.Section(path)
	if err != nil {
		return 0, 0, err
	}
	msg := part
	if len(path) > 0 && (spec == SpecifierHeader || spec == SpecifierText) {
		if msg = part.Message(); msg == nil {
			return 0, 0, fmt.Errorf("section %s: HEADER or TEXT of a part that is not a message: %w", formatPath(path), ErrNoSection)
		}
	}
	switch spec {
	case SpecifierNone:
		if len(path) == 0 {
			return p.HeaderStart, p.End, nil
		}
		return part.BodyStart, part.End, nil
	case SpecifierHeader:
		return msg.HeaderStart, msg.BodyStart, nil
	case SpecifierText:
		return msg.BodyStart, msg.End, nil
	case SpecifierMIME:
		if len(path) == 0 {
			return 0, 0, fmt.Errorf("section MIME without part numbers: %w", ErrNoSection)
		}
		return part.HeaderStart, part.BodyStart, nil
	}
	return 0, 0, fmt.Errorf("section specifier %d: %w", spec, ErrNoSection)
}

// Message returns the message a message/rfc822 or message/global part
// encapsulates, or nil for any other part.
func (p *Part) Message() *Part {
	if isMessageType(p) && len(p.Parts) == 1 {
		return &p.Parts[0]
	}
	return nil
}

// Param returns the value of the Content-Type parameter name, which must
// be lower-case, and whether the part has it.
func (p *Part) Param(name string) (string, bool) {
	return lookupParam(p.Params, name)
}

func formatPath(path []int) string {
	b := make([]byte, 0, 4*len(path))
	for i, n := range path {
		if i > 0 {
			b = append(b, '.')
		}
		b = fmt.Appendf(b, "%d", n)
	}
	return string(b)
}
