package message

import "bytes"

// LineEnds follows the line breaks of a stream that arrives in chunks,
// for the rule messages are stored and served by: a line ends in CRLF
// (RFC 5322 2.1, RFC 2046 4.1.1), and a bare LF or a bare CR, one not
// part of a CRLF, is a line break in another form. A CRLF split between
// two chunks is one line break. The zero value is at the start of a
// stream; one LineEnds follows one stream.
type LineEnds struct {
	// cr: the last octet taken was a CR (which Convert has written as
	// CRLF already).
	cr  bool
	buf []byte // Convert's output, reused
}

// Convert returns chunk with every bare LF and bare CR made CRLF. A chunk
// that needs no change, as SMTP and LMTP carry messages, comes back as it
// is, uncopied; otherwise the result is in a buffer that the next call
// reuses. A CR is written as CRLF at once, and an LF right after it, in
// this chunk or the next, is then dropped, so no octet is held back and
// the stream needs no end.
func (l *LineEnds) Convert(chunk []byte) []byte {
	if len(chunk) == 0 {
		return chunk
	}
	if l.cr && chunk[0] == '\n' {
		chunk = chunk[1:]
	}
	l.cr = false
	if crlfOnly(chunk) {
		return chunk
	}
	out := l.buf[:0]
	for len(chunk) > 0 {
		if l.cr && chunk[0] == '\n' {
			chunk = chunk[1:]
		}
		l.cr = false
		// The first CR or LF: two searches for one byte each are much
		// faster than one for either.
		i := bytes.IndexByte(chunk, '\n')
		run := chunk
		if i >= 0 {
			run = chunk[:i]
		}
		if j := bytes.IndexByte(run, '\r'); j >= 0 {
			i = j
		}
		if i < 0 {
			out = append(out, chunk...)
			break
		}
		out = append(out, chunk[:i]...)
		out = append(out, '\r', '\n')
		l.cr = chunk[i] == '\r'
		chunk = chunk[i+1:]
	}
	l.buf = out
	return out
}

// Bare reports whether chunk, coming after the chunks before it, holds a
// bare CR or LF. A CR at its very end is bare only if the next chunk does
// not begin with LF; BareAtEnd tells, once there is none.
func (l *LineEnds) Bare(chunk []byte) bool {
	if len(chunk) == 0 {
		return false
	}
	if l.cr {
		if chunk[0] != '\n' {
			return true
		}
		chunk = chunk[1:]
	}
	l.cr = len(chunk) > 0 && chunk[len(chunk)-1] == '\r'
	if l.cr {
		chunk = chunk[:len(chunk)-1]
	}
	return !crlfOnly(chunk)
}

// BareAtEnd reports whether the stream Bare was given ended in a CR, a
// bare one since nothing follows.
func (l *LineEnds) BareAtEnd() bool { return l.cr }

// crlfOnly reports whether every CR in b is followed by LF and every LF
// follows a CR: b holds no bare line end, and a CR does not end it.
func crlfOnly(b []byte) bool {
	// Text with LF line breaks fails at its first line, not after a
	// search of the whole of b.
	if i := bytes.IndexByte(b, '\n'); i == 0 || i > 0 && b[i-1] != '\r' {
		return false
	}
	crs := 0
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\r')
		if j < 0 {
			break
		}
		i += j + 1
		if i == len(b) || b[i] != '\n' {
			return false
		}
		crs++
	}
	return bytes.Count(b, []byte{'\n'}) == crs
}
