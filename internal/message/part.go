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
// The package knows nothing of stores or networks.
package message

// Part is one MIME entity of a message. The root Part is the whole message.
//
// Offsets are byte positions in the raw message: the entity's header spans
// [HeaderStart, BodyStart) and includes the blank line that ends it, when
// there is one; its body spans [BodyStart, End).
type Part struct {
	HeaderStart int64
	BodyStart   int64
	End         int64

	// Lines is the number of lines in the body (for text/* and
	// message/rfc822 BODYSTRUCTURE).
	Lines int64

	// MediaType and MediaSubtype are lower-case ("text", "plain"). A part
	// without a usable Content-Type gets the RFC 2045 5.2 default,
	// text/plain, or message/rfc822 inside multipart/digest.
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
// but otherwise raw (RFC 2047 encoded words are left as they are).
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
}

// Address is one RFC 5322 address of an Envelope. A group is written as
// a start marker (Mailbox is the group name, Host is "" and GroupStart is
// true), its member addresses, and an end marker (every field empty,
// GroupEnd true), as RFC 9051 7.5.2 lays it out.
type Address struct {
	Name       string // display name, raw
	Adl        string // source route, obsolete
	Mailbox    string // local part
	Host       string // domain
	GroupStart bool
	GroupEnd   bool
}
