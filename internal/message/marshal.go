package message

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unsafe"
)

// The encoding made by Marshal, version 2:
//
//	encoding   = version counts part
//	version    = %x02
//	counts     = parts params addresses languages envelopes   ; uvarints, totals over the tree
//	part       = header-start header-len body-len lines       ; uvarints
//	             media-type media-subtype params
//	             id description encoding disposition params
//	             languages location md5
//	             (%x00 / %x01 envelope)
//	             nparts *part                                   ; nparts is a uvarint
//	params     = n *(name value)
//	languages  = n *string
//	envelope   = empty date subject from sender reply-to to cc bcc in-reply-to message-id
//	empty      = OCTET                                        ; Envelope.Empty
//	from, to, cc, bcc      = n *address
//	sender, reply-to       = %x00 / (n+1) *address              ; %x00: the same as from
//	address    = flags name adl mailbox host                    ; flags: 1 group start, 2 group end
//	string     = length *OCTET                                  ; length is a uvarint
//
// The counts let Unmarshal allocate each kind of object once, and bound
// those allocations by the length of the input.
//
// Version 1 is version 2 without the empty octet: it could not tell a
// field present but empty from an absent one. Unmarshal reads both, and
// Marshal still writes version 1 when no envelope of the tree has an
// empty field, which is nearly always: a buzon from before version 2
// then still reads all but those few messages.
const (
	formatVersion = 2
	version1      = 1
)

// Minimum encoded sizes, which bound the counts an input of a given length
// can honestly claim.
const (
	minPartLen     = 17 // every fixed field of a part at its smallest
	minParamLen    = 2
	minAddressLen  = 5
	minLanguageLen = 1
	minEnvelopeLen = 10
)

// ErrCorrupt is returned (wrapped) by Unmarshal for input that Marshal
// did not produce.
var ErrCorrupt = errors.New("corrupt message structure")

// Marshal encodes a Part tree made by Parse (or by Unmarshal) into a
// compact binary form, for the store to keep next to the message and give
// back to Unmarshal. The first byte is the format version.
func Marshal(p *Part) []byte {
	var c counts
	c.add(p)
	b := make([]byte, 0, c.size)
	e := encoder{version: version1}
	if c.empty {
		e.version = formatVersion
	}
	b = append(b, e.version)
	for _, n := range []int{c.parts, c.params, c.addresses, c.languages, c.envelopes} {
		b = binary.AppendUvarint(b, uint64(n))
	}
	return e.appendPart(b, p)
}

// counts are the totals of a tree, and an estimate of its encoded size.
type counts struct {
	parts, params, addresses, languages, envelopes int
	size                                           int
	empty                                          bool // some envelope has an empty field
}

func (c *counts) add(p *Part) {
	c.parts++
	c.params += len(p.Params) + len(p.DispositionParams)
	c.languages += len(p.Language)
	c.size += 32 + len(p.MediaType) + len(p.MediaSubtype) + len(p.ID) + len(p.Description) +
		len(p.Encoding) + len(p.Disposition) + len(p.Location) + len(p.MD5)
	for _, ps := range [][]Param{p.Params, p.DispositionParams} {
		for _, x := range ps {
			c.size += 4 + len(x.Name) + len(x.Value)
		}
	}
	for _, l := range p.Language {
		c.size += 2 + len(l)
	}
	if e := p.Envelope; e != nil {
		c.envelopes++
		c.empty = c.empty || e.Empty != 0
		c.size += 25 + len(e.Date) + len(e.Subject) + len(e.InReplyTo) + len(e.MessageID)
		for _, list := range e.lists() {
			c.addresses += len(list)
			for _, a := range list {
				c.size += 8 + len(a.Name) + len(a.Adl) + len(a.Mailbox) + len(a.Host)
			}
		}
	}
	for i := range p.Parts {
		c.add(&p.Parts[i])
	}
}

// lists returns the address lists the encoding holds: Sender and ReplyTo
// only when they differ from From.
func (e *Envelope) lists() [][]Address {
	lists := [][]Address{e.From, e.To, e.Cc, e.Bcc}
	if !sameAddresses(e.Sender, e.From) {
		lists = append(lists, e.Sender)
	}
	if !sameAddresses(e.ReplyTo, e.From) {
		lists = append(lists, e.ReplyTo)
	}
	return lists
}

func sameAddresses(a, b []Address) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// encoder writes one version of the encoding.
type encoder struct {
	version byte
}

func (enc encoder) appendPart(b []byte, p *Part) []byte {
	b = appendInt(b, p.HeaderStart)
	b = appendInt(b, p.BodyStart-p.HeaderStart)
	b = appendInt(b, p.End-p.BodyStart)
	b = appendInt(b, p.Lines)
	b = appendString(b, p.MediaType)
	b = appendString(b, p.MediaSubtype)
	b = appendParams(b, p.Params)
	b = appendString(b, p.ID)
	b = appendString(b, p.Description)
	b = appendString(b, p.Encoding)
	b = appendString(b, p.Disposition)
	b = appendParams(b, p.DispositionParams)
	b = binary.AppendUvarint(b, uint64(len(p.Language)))
	for _, l := range p.Language {
		b = appendString(b, l)
	}
	b = appendString(b, p.Location)
	b = appendString(b, p.MD5)
	if p.Envelope == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = enc.appendEnvelope(b, p.Envelope)
	}
	b = binary.AppendUvarint(b, uint64(len(p.Parts)))
	for i := range p.Parts {
		b = enc.appendPart(b, &p.Parts[i])
	}
	return b
}

func (enc encoder) appendEnvelope(b []byte, e *Envelope) []byte {
	if enc.version >= 2 {
		b = append(b, byte(e.Empty))
	}
	b = appendString(b, e.Date)
	b = appendString(b, e.Subject)
	b = appendAddresses(b, e.From)
	b = appendAddressesOrFrom(b, e.Sender, e.From)
	b = appendAddressesOrFrom(b, e.ReplyTo, e.From)
	b = appendAddresses(b, e.To)
	b = appendAddresses(b, e.Cc)
	b = appendAddresses(b, e.Bcc)
	b = appendString(b, e.InReplyTo)
	return appendString(b, e.MessageID)
}

func appendAddresses(b []byte, list []Address) []byte {
	b = binary.AppendUvarint(b, uint64(len(list)))
	return appendAddressItems(b, list)
}

// appendAddressesOrFrom writes Sender or ReplyTo, usually a copy of From
// (RFC 9051 7.5.2), in one byte when it is.
func appendAddressesOrFrom(b []byte, list, from []Address) []byte {
	if sameAddresses(list, from) {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(list))+1)
	return appendAddressItems(b, list)
}

func appendAddressItems(b []byte, list []Address) []byte {
	for _, a := range list {
		var flags byte
		if a.GroupStart {
			flags |= 1
		}
		if a.GroupEnd {
			flags |= 2
		}
		b = append(b, flags)
		b = appendString(b, a.Name)
		b = appendString(b, a.Adl)
		b = appendString(b, a.Mailbox)
		b = appendString(b, a.Host)
	}
	return b
}

func appendParams(b []byte, ps []Param) []byte {
	b = binary.AppendUvarint(b, uint64(len(ps)))
	for _, p := range ps {
		b = appendString(b, p.Name)
		b = appendString(b, p.Value)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendInt writes an offset or count. Negative values, which Parse never
// makes, are written so that Unmarshal rejects them.
func appendInt(b []byte, v int64) []byte {
	return binary.AppendUvarint(b, uint64(v))
}

// Unmarshal decodes what Marshal encoded. It checks the input as it goes
// and returns an error wrapping ErrCorrupt, never panics, and allocates
// no more than a small multiple of len(b), whatever the input claims.
//
// A tree Unmarshal returns holds together the way a parsed one does, so
// that code serving it can rely on that: offsets are ordered, every part
// lies within its parent's body after its previous sibling, the root and
// every encapsulated message have an Envelope, a multipart has parts and
// a message/rfc822 or message/global part exactly one.
//
// Unmarshal is made for the FETCH path: it makes one string of b, which
// every string of the tree shares, and one array each of Parts, Params,
// Addresses, languages and Envelopes, so a message costs a handful of
// allocations however many parts it has. The tree does not refer to b.
// Sender and ReplyTo may share their array with From: treat the tree as
// read-only, or copy before changing it.
func Unmarshal(b []byte) (*Part, error) {
	var dec Decoder
	return dec.unmarshal(b, false)
}

// A Decoder unmarshals structures one after another into arrays it keeps
// from one message to the next, and its strings are b's own bytes: FETCH
// ENVELOPE BODYSTRUCTURE of a whole mailbox then allocates nothing per
// message. The tree Unmarshal returns is valid only until the next call,
// and only while b is not changed. The zero Decoder is ready for use.
type Decoder struct {
	parts  []Part
	params []Param
	addrs  []Address
	langs  []string
	envs   []Envelope
}

// Unmarshal is the package's Unmarshal, into dec's memory and sharing b
// (see Decoder).
func (dec *Decoder) Unmarshal(b []byte) (*Part, error) {
	return dec.unmarshal(b, true)
}

func (dec *Decoder) unmarshal(b []byte, share bool) (*Part, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("unmarshal message structure: empty: %w", ErrCorrupt)
	}
	if b[0] != formatVersion && b[0] != version1 {
		return nil, fmt.Errorf("unmarshal message structure: unknown version %d: %w", b[0], ErrCorrupt)
	}
	d := decoder{version: b[0], i: 1}
	if share {
		d.s = unsafe.String(unsafe.SliceData(b), len(b))
	} else {
		d.s = string(b)
	}
	d.allocate(dec)
	root := d.takeParts(1)
	if d.err == nil {
		d.part(&root[0], 0)
		if root[0].Envelope == nil {
			d.fail("message without an envelope")
		}
	}
	if d.err == nil && (d.i != len(d.s) || len(d.parts)+len(d.params)+len(d.addrs)+len(d.langs)+len(d.envs) != 0) {
		d.fail("counts or length do not match the content")
	}
	if d.err != nil {
		return nil, fmt.Errorf("unmarshal message structure: %w", d.err)
	}
	return &root[0], nil
}

// maxDecodeDepth bounds the nesting Unmarshal accepts: what Parse can make
// with any limits a server would set, and no more than the stack should
// take.
const maxDecodeDepth = 10000

// decoder reads the encoding. The first error sticks: later reads return
// zero values, so that the code can check once, at the end of a loop.
type decoder struct {
	version byte
	s       string // the whole input: every decoded string is a substring
	i       int    // read position in s
	err     error

	// Preallocated objects not yet handed out.
	parts  []Part
	params []Param
	addrs  []Address
	langs  []string
	envs   []Envelope
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%s at byte %d: %w", what, d.i, ErrCorrupt)
	}
}

// allocate reads the counts and allocates the objects, or takes them from
// dec, each count bounded by how many such objects the input could hold.
func (d *decoder) allocate(dec *Decoder) {
	count := func(minLen int) int {
		n := d.uvarint()
		if n > uint64(len(d.s)/minLen) {
			d.fail("count larger than the input")
			return 0
		}
		return int(n)
	}
	nParts, nParams, nAddrs, nLangs, nEnvs := count(minPartLen), count(minParamLen),
		count(minAddressLen), count(minLanguageLen), count(minEnvelopeLen)
	if d.err != nil {
		return
	}
	d.parts = reuse(&dec.parts, nParts)
	d.params = reuse(&dec.params, nParams)
	d.addrs = reuse(&dec.addrs, nAddrs)
	d.langs = reuse(&dec.langs, nLangs)
	d.envs = reuse(&dec.envs, nEnvs)
}

// reuse returns n zero objects from *kept, which grows when it is too
// small; nil for none.
func reuse[T any](kept *[]T, n int) []T {
	if n == 0 {
		return nil
	}
	if cap(*kept) < n {
		*kept = make([]T, n)
	}
	s := (*kept)[:n]
	clear(s)
	return s
}

func (d *decoder) part(p *Part, depth int) {
	if depth > maxDecodeDepth {
		d.fail("nesting too deep")
		return
	}
	p.HeaderStart = d.int64()
	p.BodyStart = d.add(p.HeaderStart, d.int64())
	p.End = d.add(p.BodyStart, d.int64())
	p.Lines = d.int64()
	if p.Lines > p.End-p.BodyStart {
		d.fail("more lines than bytes")
	}
	p.MediaType = d.string()
	p.MediaSubtype = d.string()
	p.Params = d.paramList()
	p.ID = d.string()
	p.Description = d.string()
	p.Encoding = d.string()
	p.Disposition = d.string()
	p.DispositionParams = d.paramList()
	p.Language = d.takeLangs(d.uvarint())
	for i := range p.Language {
		p.Language[i] = d.string()
	}
	p.Location = d.string()
	p.MD5 = d.string()
	switch d.byte() {
	case 0:
	case 1:
		p.Envelope = d.envelope()
	default:
		d.fail("bad envelope marker")
	}
	p.Parts = d.takeParts(d.uvarint())
	d.checkShape(p)
	prevEnd := p.BodyStart
	for i := range p.Parts {
		if d.err != nil {
			return
		}
		c := &p.Parts[i]
		d.part(c, depth+1)
		if c.HeaderStart < prevEnd || c.End > p.End {
			d.fail("part outside its parent")
		}
		prevEnd = c.End
	}
	if m := p.Message(); m != nil && (m.HeaderStart != p.BodyStart || m.Envelope == nil) {
		d.fail("encapsulated message not at the start of the body, or without an envelope")
	}
}

// checkShape checks the children a part has for its type.
func (d *decoder) checkShape(p *Part) {
	switch {
	case isMessageType(p):
		if len(p.Parts) != 1 {
			d.fail("message part without exactly one part")
		}
	case p.MediaType == "multipart":
		if len(p.Parts) == 0 {
			d.fail("multipart without parts")
		}
	case len(p.Parts) > 0:
		d.fail("parts under a leaf")
	}
}

func (d *decoder) envelope() *Envelope {
	if len(d.envs) == 0 {
		d.fail("more envelopes than counted")
		return nil
	}
	e := &d.envs[0]
	d.envs = d.envs[1:]
	if d.version >= 2 {
		e.Empty = EmptyFields(d.byte())
		if e.Empty&^allEmptyFields != 0 {
			d.fail("bad empty fields")
		}
	}
	e.Date = d.string()
	e.Subject = d.string()
	e.From = d.addressList(d.uvarint())
	e.Sender = d.addressListOrFrom(e.From)
	e.ReplyTo = d.addressListOrFrom(e.From)
	e.To = d.addressList(d.uvarint())
	e.Cc = d.addressList(d.uvarint())
	e.Bcc = d.addressList(d.uvarint())
	e.InReplyTo = d.string()
	e.MessageID = d.string()
	for _, f := range []struct {
		value string
		bit   EmptyFields
	}{{e.Date, EmptyDate}, {e.Subject, EmptySubject}, {e.InReplyTo, EmptyInReplyTo}, {e.MessageID, EmptyMessageID}} {
		if e.Empty&f.bit != 0 && f.value != "" {
			d.fail("a field said to be empty is not")
		}
	}
	return e
}

func (d *decoder) addressListOrFrom(from []Address) []Address {
	n := d.uvarint()
	if n == 0 {
		return from
	}
	return d.addressList(n - 1)
}

func (d *decoder) addressList(n uint64) []Address {
	if n == 0 || d.err != nil {
		return nil
	}
	if n > uint64(len(d.addrs)) {
		d.fail("more addresses than counted")
		return nil
	}
	list := d.addrs[:n:n]
	d.addrs = d.addrs[n:]
	for i := range list {
		a := &list[i]
		flags := d.byte()
		if flags > 3 {
			d.fail("bad address flags")
		}
		a.GroupStart, a.GroupEnd = flags&1 != 0, flags&2 != 0
		a.Name = d.string()
		a.Adl = d.string()
		a.Mailbox = d.string()
		a.Host = d.string()
	}
	return list
}

func (d *decoder) paramList() []Param {
	n := d.uvarint()
	if n == 0 || d.err != nil {
		return nil
	}
	if n > uint64(len(d.params)) {
		d.fail("more parameters than counted")
		return nil
	}
	ps := d.params[:n:n]
	d.params = d.params[n:]
	for i := range ps {
		ps[i].Name = d.string()
		ps[i].Value = d.string()
	}
	return ps
}

func (d *decoder) takeParts(n uint64) []Part {
	if n == 0 || d.err != nil {
		return nil
	}
	if n > uint64(len(d.parts)) {
		d.fail("more parts than counted")
		return nil
	}
	ps := d.parts[:n:n]
	d.parts = d.parts[n:]
	return ps
}

func (d *decoder) takeLangs(n uint64) []string {
	if n == 0 || d.err != nil {
		return nil
	}
	if n > uint64(len(d.langs)) {
		d.fail("more languages than counted")
		return nil
	}
	ls := d.langs[:n:n]
	d.langs = d.langs[n:]
	return ls
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if d.i >= len(d.s) {
		d.fail("truncated")
		return 0
	}
	c := d.s[d.i]
	d.i++
	return c
}

// uvarint reads an unsigned varint, as encoding/binary writes it, from
// the string without copying it back into bytes.
func (d *decoder) uvarint() uint64 {
	var x uint64
	for shift := uint(0); shift < 64; shift += 7 {
		c := d.byte()
		if d.err != nil {
			return 0
		}
		if c < 0x80 {
			if shift == 63 && c > 1 {
				break
			}
			return x | uint64(c)<<shift
		}
		x |= uint64(c&0x7f) << shift
	}
	d.fail("bad varint")
	return 0
}

func (d *decoder) int64() int64 {
	v := d.uvarint()
	if v > math.MaxInt64 {
		d.fail("offset out of range")
		return 0
	}
	return int64(v)
}

// add adds an offset and a length, rejecting overflow.
func (d *decoder) add(a, b int64) int64 {
	if a > math.MaxInt64-b {
		d.fail("offset out of range")
		return 0
	}
	return a + b
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.s)-d.i) {
		d.fail("string longer than the input")
		return ""
	}
	s := d.s[d.i : d.i+int(n)]
	d.i += int(n)
	return s
}
