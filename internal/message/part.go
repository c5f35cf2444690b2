// Package message parses RFC 5322 / MIME messages (RFC 2045, 2046, 2047,
// 2231) once, at delivery, into a Part tree that records every entity's
// header fields of interest and its byte offsets in the raw message. The
// tree is encoded with Marshal, kept by the store, and decoded with
// Unmarshal whenever IMAP needs ENVELOPE, BODYSTRUCTURE or a BODY[section]:
// the message itself is never parsed again.
//
// The parser never fails on bad input: broken MIME (missing boundaries,
// bad headers, unknown encodings) still yields a usable tree that covers
// every byte, the way clients expect a server to present it.
//
// For the IMAP server (RFC 9051) the package also resolves section numbers
// to byte ranges (Part.Section, Part.SectionRange, HeaderFields for
// HEADER.FIELDS), and decodes what SEARCH and BINARY (RFC 3516) need:
// transfer encodings (RFC 2045 6.7, 6.8), encoded words in header values
// (RFC 2047) and the text of a part in UTF-8.
//
// The package knows nothing of stores or networks.
package message

// Part is one MIME entity of a message. The root Part is the whole message.
//
// Offsets are byte positions in the raw message: the entity's header spans
// [HeaderStart, BodyStart) and includes the blank line that ends it, when
// there is one; its body spans [BodyStart, End). The body of a part inside
// a multipart ends before the line break that precedes the next delimiter
// line, since that line break belongs to the delimiter (RFC 2046 5.1.1);
// so does the header of a broken part that a delimiter line interrupts.
// Every part lies within its parent's body, after its previous sibling.
type Part struct {
	HeaderStart int64
	BodyStart   int64
	End         int64

	// Lines is the number of lines in the body (for text/* and
	// message/rfc822 BODYSTRUCTURE): the count of LF bytes in
	// [BodyStart, End). A last line without a line break is not counted,
	// as Dovecot counts, so a multipart child whose body is "Hi" (the CRLF
	// after it belongs to the next delimiter) has 0 lines.
	Lines int64

	// MediaType and MediaSubtype are lower-case ("text", "plain"). A part
	// without a Content-Type gets the RFC 2045 5.2 default, text/plain
	// with charset=us-ascii, or message/rfc822 inside multipart/digest
	// (RFC 2046 5.1.5). A part with an unparsable Content-Type, and a
	// composite part the parser could not or would not descend into (a
	// multipart without a boundary or without any body part, nesting
	// beyond the depth limit), is presented as text/plain too, as RFC 2045
	// 5.2 recommends. So a "multipart" Part always has at least one child
	// and a "message/rfc822" or "message/global" Part exactly one.
	MediaType    string
	MediaSubtype string
	// Params are the Content-Type parameters in header order, names
	// lower-cased, values decoded from RFC 2231 continuations and charsets.
	Params []Param

	ID          string // Content-ID, raw
	Description string // Content-Description, raw
	// Encoding is the Content-Transfer-Encoding, upper-cased; "7BIT" when
	// absent.
	Encoding string
	// Disposition is the Content-Disposition type, lower-cased, or "".
	Disposition       string
	DispositionParams []Param
	Language          []string // Content-Language values
	Location          string   // Content-Location
	MD5               string   // Content-MD5

	// Envelope is set on the root part and on the message encapsulated by
	// a message/rfc822 (or message/global) part.
	Envelope *Envelope

	// Parts are the children: the body parts of a multipart, or, for a
	// message/rfc822 part, exactly one Part, the encapsulated message,
	// whose HeaderStart is this part's BodyStart.
	Parts []Part
}

// Param is one parameter of a Content-Type or Content-Disposition.
type Param struct {
	Name  string // lower-case
	Value string
}

// Envelope holds the header fields of RFC 9051 7.5.2's ENVELOPE, unfolded
// but otherwise raw (RFC 2047 encoded words are left as they are). When a
// field appears more than once, the first one counts. Sender and ReplyTo
// are the From addresses when their fields are absent or empty, as RFC
// 9051 7.5.2 asks of the server.
type Envelope struct {
	Date      string
	Subject   string
	From      []Address
	Sender    []Address
	ReplyTo   []Address
	To        []Address
	Cc        []Address
	Bcc       []Address
	InReplyTo string
	MessageID string

	// Empty tells which of Date, Subject, InReplyTo and MessageID the
	// header has but with an empty value: ENVELOPE gives those the empty
	// string, and those the header lacks NIL (RFC 9051 7.5.2).
	Empty EmptyFields
}

// EmptyFields is a set of the string fields of an Envelope.
type EmptyFields uint8

// The string fields of an Envelope, for Envelope.Empty.
const (
	EmptyDate EmptyFields = 1 << iota
	EmptySubject
	EmptyInReplyTo
	EmptyMessageID

	allEmptyFields = EmptyDate | EmptySubject | EmptyInReplyTo | EmptyMessageID
)

// Address is one RFC 5322 address of an Envelope. A group is written as
// a start marker (Mailbox is the group name, Host is "" and GroupStart is
// true), its member addresses, and an end marker (every field empty,
// GroupEnd true), as RFC 9051 7.5.2 lays it out.
//
// An address that is not a group marker always has a non-empty Mailbox
// and Host: a broken address missing either gets MissingMailbox or
// MissingDomain, as Dovecot does, because in IMAP a NIL host means a group
// marker (RFC 9051 7.5.2).
type Address struct {
	Name       string // display name: quotes and comments removed, encoded words raw
	Adl        string // source route, obsolete
	Mailbox    string // local part
	Host       string // domain
	GroupStart bool
	GroupEnd   bool
}

// Placeholders for the parts of a broken address that are missing.
const (
	MissingMailbox = "MISSING_MAILBOX"
	MissingDomain  = "MISSING_DOMAIN"
)
