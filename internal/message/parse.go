package message

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// Defaults of the limits a zero Parser applies.
const (
	DefaultMaxDepth       = 100
	DefaultMaxParts       = 10000
	DefaultMaxHeaderBytes = 1 << 20
)

const (
	// readBufSize is the size of the read buffer: lines longer than this
	// are seen as several fragments, so the buffer bounds the memory a
	// body costs whatever its line lengths.
	readBufSize = 32 << 10

	// maxBoundaryLen bounds a usable multipart boundary. RFC 2046 5.1.1
	// allows 70 characters; real mail sometimes has more. The start of a
	// delimiter line must fit in one fragment to be recognised, so the
	// limit must stay below the read buffer size.
	maxBoundaryLen = 256
)

// Parser parses messages within limits that bound the work hostile input
// can cause. The zero Parser applies the Default limits.
type Parser struct {
	// MaxDepth is how deeply multiparts and message/rfc822 parts may nest.
	// A composite part deeper than that is not descended into and is
	// presented as text/plain. Zero means DefaultMaxDepth. Unmarshal
	// accepts trees up to 10000 deep.
	MaxDepth int

	// MaxParts bounds the number of Parts in the tree. Once it is
	// reached, delimiter lines are no longer recognised: the rest of the
	// message is body of the multipart being read. Zero means
	// DefaultMaxParts.
	MaxParts int

	// MaxHeaderBytes bounds the header of each entity. The rest of a
	// longer header is taken as the start of its body. Zero means
	// DefaultMaxHeaderBytes.
	MaxHeaderBytes int

	// bufSize overrides readBufSize, for tests that want lines split
	// into many fragments.
	bufSize int
}

// Parse parses a message with the default limits; see Parser.Parse.
func Parse(r io.Reader) (*Part, error) {
	return Parser{}.Parse(r)
}

// Parse reads a raw message from r, in one pass, and returns its Part
// tree. The message should have CRLF line endings; bare LF is tolerated.
//
// Memory use does not grow with the message: only one entity's header at
// a time is buffered (at most MaxHeaderBytes), bodies are skipped through
// a fixed buffer, and the tree is bounded by MaxParts.
//
// Parse never fails on malformed content: any byte sequence yields a
// tree, the way a server must still present whatever it accepted. The
// only errors are those of r.
func (ps Parser) Parse(r io.Reader) (*Part, error) {
	bufSize := orDefault(ps.bufSize, readBufSize)
	p := &parser{
		lr:          lineReader{br: bufio.NewReaderSize(r, bufSize)},
		maxDepth:    orDefault(ps.MaxDepth, DefaultMaxDepth),
		maxParts:    orDefault(ps.MaxParts, DefaultMaxParts),
		maxHeader:   orDefault(ps.MaxHeaderBytes, DefaultMaxHeaderBytes),
		maxBoundary: min(maxBoundaryLen, bufSize-4),
		hdr:         make([]byte, 0, 4096),
	}
	root := &Part{}
	if _, err := p.parseEntity(root, p.here(), 0, true, false); err != nil {
		return nil, fmt.Errorf("parse message: %w", err)
	}
	return root, nil
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// pos is a position in the raw message, with the number of LF bytes
// before it, from which Part.Lines is computed.
type pos struct {
	off int64
	lf  int64
}

// later returns whichever of a and b is further into the message.
func later(a, b pos) pos {
	if a.off >= b.off {
		return a
	}
	return b
}

// boundary is the boundary of an enclosing multipart.
type boundary struct {
	s string
	// closed is set once the close delimiter was seen: the lines after
	// it are the epilogue, where the boundary delimits nothing.
	closed bool
}

// delimiter is a multipart delimiter line found in the input.
type delimiter struct {
	level   int  // index in parser.bounds of the multipart it belongs to
	closing bool // a close delimiter: "--boundary--"
	// at is where the delimiter begins: at the line break before "--",
	// which belongs to the delimiter, not to the body before it
	// (RFC 2046 5.1.1).
	at pos
}

type parser struct {
	lr          lineReader
	maxDepth    int
	maxParts    int
	maxHeader   int
	maxBoundary int

	hdr    []byte     // header block of the entity being parsed, reused
	h      headerInfo // its fields of interest, reused
	nparts int        // Parts created so far
	bounds []boundary // boundaries of the enclosing multiparts, outermost first

	// noDelims is set once MaxParts is reached: delimiter lines are no
	// longer recognised.
	noDelims bool

	// delim is the delimiter line that ended the body being read, when
	// atDelim. It was consumed, and is handled by the multipart it
	// belongs to once every entity inside that multipart has ended.
	delim   delimiter
	atDelim bool

	eof bool // the input has ended
}

func (p *parser) here() pos {
	return pos{p.lr.st.off, p.lr.st.lf}
}

// parseEntity parses one entity, header and body, whose header starts at
// start, into part. message tells whether the entity is a message (the
// root, or encapsulated in a message/rfc822 part), which has an
// Envelope; inDigest whether it is a body part of a multipart/digest,
// which changes its default type. The entity ends at the end of input or
// at a delimiter of an enclosing multipart, left in p.delim. parseEntity
// returns that end.
func (p *parser) parseEntity(part *Part, start pos, depth int, message, inDigest bool) (pos, error) {
	p.nparts++
	part.HeaderStart = start.off
	p.hdr = p.hdr[:0]
	body := start
	if !p.atDelim && !p.eof {
		var err error
		if body, err = p.readHeader(start); err != nil {
			return pos{}, err
		}
	}
	part.BodyStart = body.off

	h := &p.h
	h.scan(p.hdr, message)
	boundary := h.setContent(part, inDigest)
	if len(boundary) > p.maxBoundary {
		boundary = ""
	}
	if message {
		part.Envelope = h.envelope()
	}

	last := body // where the last child ended, if there are children
	var err error
	descend := depth < p.maxDepth && p.nparts < p.maxParts
	switch {
	case part.MediaType == "multipart" && descend && boundary != "":
		last, err = p.parseMultipart(part, body, depth, boundary)
	case isMessageType(part) && descend:
		var child Part
		last, err = p.parseEntity(&child, body, depth+1, true, false)
		part.Parts = []Part{child}
	default:
		err = p.skipBody()
	}
	if err != nil {
		return pos{}, err
	}

	end := later(p.bodyEnd(), last)
	part.End = end.off
	part.Lines = end.lf - body.lf
	if isComposite(part) && len(part.Parts) == 0 {
		presentAsText(part)
	}
	return end, nil
}

// bodyEnd is where the body just read ends: at the delimiter that ended
// it, or at the end of input.
func (p *parser) bodyEnd() pos {
	if p.atDelim {
		return p.delim.at
	}
	return p.here()
}

// parseMultipart reads the body of a multipart (RFC 2046 5.1.1): a
// preamble, body parts each introduced by a delimiter line, a close
// delimiter and an epilogue. A missing close delimiter is tolerated: the
// multipart then ends where an enclosing one does, or at the end of
// input. parseMultipart returns where its last body part ended.
func (p *parser) parseMultipart(part *Part, body pos, depth int, b string) (pos, error) {
	level := len(p.bounds)
	p.bounds = append(p.bounds, boundary{s: b})
	defer func() { p.bounds = p.bounds[:level] }()

	digest := part.MediaSubtype == "digest"
	last := body
	if err := p.skipBody(); err != nil { // the preamble
		return last, err
	}
	for p.atDelim && p.delim.level == level {
		p.atDelim = false
		if p.delim.closing {
			// What follows is the epilogue; it ends with an enclosing
			// multipart.
			p.bounds[level].closed = true
			return last, p.skipBody()
		}
		if p.nparts >= p.maxParts {
			p.noDelims = true
			return last, p.skipBody()
		}
		var child Part
		end, err := p.parseEntity(&child, p.here(), depth+1, false, digest)
		if err != nil {
			return last, err
		}
		part.Parts = append(part.Parts, child)
		last = end
	}
	return last, nil
}

// readHeader reads the header block of an entity (RFC 5322 2.1) into
// p.hdr and returns where the body begins. The header ends after the
// empty line that closes it; at the end of input; at a delimiter line of
// an enclosing multipart, which broken mail puts right after a header
// (RFC 2046 5.1.1 only allows an empty header, not a missing empty line);
// or before the line fragment that would take it past MaxHeaderBytes,
// the rest being taken as body.
func (p *parser) readHeader(start pos) (pos, error) {
	for {
		lineStart, prevEOL := p.here(), p.lr.st.eol
		frag, atStart, err := p.lr.next()
		if err != nil {
			return p.here(), p.endOfInput(err)
		}
		if atStart {
			if p.isDelimiter(frag, lineStart, prevEOL) {
				return later(p.delim.at, start), p.skipRestOfLine(frag)
			}
			if isEmptyLine(frag) {
				return p.here(), nil
			}
		}
		if len(p.hdr)+len(frag) > p.maxHeader {
			p.lr.unread()
			return lineStart, nil
		}
		p.hdr = append(p.hdr, frag...)
	}
}

// skipBody consumes body lines until a delimiter of an enclosing
// multipart, recorded in p.delim, or the end of input.
func (p *parser) skipBody() error {
	if p.atDelim || p.eof {
		return nil
	}
	if !p.delimitersActive() {
		return p.endOfInput(p.lr.drain())
	}
	for {
		lineStart, prevEOL := p.here(), p.lr.st.eol
		frag, atStart, err := p.lr.next()
		if err != nil {
			return p.endOfInput(err)
		}
		if atStart && p.isDelimiter(frag, lineStart, prevEOL) {
			return p.skipRestOfLine(frag)
		}
	}
}

// skipRestOfLine consumes what follows frag on its line: the transport
// padding after a delimiter, or junk, is part of the delimiter line.
func (p *parser) skipRestOfLine(frag []byte) error {
	for frag[len(frag)-1] != '\n' {
		var err error
		if frag, _, err = p.lr.next(); err != nil {
			return p.endOfInput(err)
		}
	}
	return nil
}

// endOfInput records the end of input. It returns the read error, if the
// input ended for another reason than io.EOF.
func (p *parser) endOfInput(err error) error {
	if err == io.EOF {
		p.eof = true
		return nil
	}
	return err
}

func (p *parser) delimitersActive() bool {
	if p.noDelims {
		return false
	}
	for _, b := range p.bounds {
		if !b.closed {
			return true
		}
	}
	return false
}

// isDelimiter reports whether line, which starts at lineStart after a
// line break of prevEOL bytes, is a delimiter line of an enclosing
// multipart, and if so records it in p.delim.
//
// As in Dovecot, a delimiter line need only begin with "--" and the
// boundary, whatever follows, and when several boundaries match, the
// longest wins: that copes both with junk after delimiters and with
// nested boundaries that extend one another. RFC 2046 5.1.1 says the
// boundaries of nested multiparts must differ, which leaves that choice
// to us. The boundary of a closed multipart still takes part, so that a
// stray delimiter of it in its epilogue is not taken for the delimiter of
// an enclosing multipart whose boundary it extends.
func (p *parser) isDelimiter(line []byte, lineStart pos, prevEOL int) bool {
	if p.noDelims || len(line) < 2 || line[0] != '-' || line[1] != '-' {
		return false
	}
	rest := line[2:]
	level, n := -1, 0
	for i, b := range p.bounds {
		if len(b.s) > n && len(rest) >= len(b.s) && string(rest[:len(b.s)]) == b.s {
			level, n = i, len(b.s)
		}
	}
	if level < 0 || p.bounds[level].closed {
		return false
	}
	at := lineStart
	if prevEOL > 0 {
		at = pos{lineStart.off - int64(prevEOL), lineStart.lf - 1}
	}
	rest = rest[n:]
	p.delim = delimiter{
		level:   level,
		closing: len(rest) >= 2 && rest[0] == '-' && rest[1] == '-',
		at:      at,
	}
	p.atDelim = true
	return true
}

func isEmptyLine(line []byte) bool {
	return len(line) == 1 && line[0] == '\n' || len(line) == 2 && line[0] == '\r' && line[1] == '\n'
}

func isMessageType(part *Part) bool {
	return part.MediaType == "message" && (part.MediaSubtype == "rfc822" || part.MediaSubtype == "global")
}

func isComposite(part *Part) bool {
	return part.MediaType == "multipart" || isMessageType(part)
}

// presentAsText makes a composite part the parser did not descend into a
// text/plain leaf, the RFC 2045 5.2 default for a part whose Content-Type
// cannot be used: clients then show its content rather than nothing.
func presentAsText(part *Part) {
	part.MediaType, part.MediaSubtype = "text", "plain"
	part.Params = []Param{{Name: "charset", Value: "us-ascii"}}
	part.Parts = nil
}

// lineReader reads its input as lines, giving the offset and LF count
// of every position. Lines longer than its buffer come in fragments.
type lineReader struct {
	br  *bufio.Reader
	err error // the error that ended the input, returned once data runs out

	st    lineState
	saved lineState // st before the last fragment, restored by unread
	last  []byte    // the last fragment, returned again after unread
	again bool      // unread was called
}

type lineState struct {
	off     int64 // offset of the next byte
	lf      int64 // LF bytes before off
	eol     int   // length of the line break ending the last whole line: 1 (LF), 2 (CRLF), or 0 before any
	midLine bool  // the last fragment did not end its line
	lastCR  bool  // the last fragment ended with CR, whose LF may start the next one
}

// next returns the next fragment of input: a line including its line
// break or, for a line longer than the buffer, a piece of it. atStart
// reports whether the fragment begins a line. The fragment is valid until
// the next call. At the end of input next returns the reader's error,
// io.EOF normally.
func (l *lineReader) next() (frag []byte, atStart bool, err error) {
	if l.again {
		l.again = false
		frag = l.last
	} else {
		if l.err != nil {
			return nil, false, l.err
		}
		frag, err = l.br.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull {
			l.err = err
			if len(frag) == 0 {
				return nil, false, err
			}
		}
	}
	l.saved, l.last = l.st, frag
	atStart = !l.st.midLine
	l.st.advance(frag)
	return frag, atStart, nil
}

// unread makes the next call to next return the last fragment again. It
// must directly follow a successful call to next.
func (l *lineReader) unread() {
	l.st, l.again = l.saved, true
}

func (s *lineState) advance(frag []byte) {
	n := len(frag)
	s.off += int64(n)
	end := frag[n-1]
	if end == '\n' {
		s.lf++
		s.eol = 1
		if n >= 2 && frag[n-2] == '\r' || n == 1 && s.lastCR {
			s.eol = 2
		}
	}
	s.midLine = end != '\n'
	s.lastCR = end == '\r'
}

// drain consumes the rest of the input, counting LFs, a buffer at a time
// rather than a line at a time. It returns the error that ended the
// input, io.EOF normally.
func (l *lineReader) drain() error {
	if l.again {
		l.again = false
		l.st.advance(l.last)
	}
	for l.err == nil {
		if l.br.Buffered() == 0 {
			if _, err := l.br.Peek(1); err != nil {
				l.err = err
				break
			}
		}
		buf, _ := l.br.Peek(l.br.Buffered())
		l.st.lf += int64(bytes.Count(buf, []byte{'\n'}))
		l.st.off += int64(len(buf))
		l.st.midLine = buf[len(buf)-1] != '\n'
		l.br.Discard(len(buf))
	}
	return l.err
}
