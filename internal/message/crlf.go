package message

import "bytes"

// LineEnds follows the line breaks of a stream that arrives in chunks,
// for the rule messages are stored and served by: a line ends in CRLF
// (RFC 5322 2.1, RFC 2046 4.1.1), and a bare LF, a bare CR, or a CR CR
// LF is one line break in another form. CR CR LF is what a program
// writing CRLF in text mode on Windows leaves, and MTAs pass on: read as
// two breaks, in a header it would end the header there. A break split
// between two chunks is one break. The zero value is at the start of a
// stream; one LineEnds follows one stream.
type LineEnds struct {
	// cr: the last octet taken was a CR, which Convert has written as
	// CRLF already. held: a CR came right after it and waits, to be
	// dropped with an LF after it or written as a break of its own.
	cr, held bool
	buf      []byte // Convert's output, reused
}

// Convert returns chunk with every line break made CRLF. A chunk that
// needs no change, as SMTP and LMTP carry messages, comes back as it is,
// uncopied; otherwise the result is in a buffer that the next call
// reuses. A CR is written as CRLF at once, and an LF right after it, in
// this chunk or the next, is then dropped; only a CR right after a CR
// waits for the next octet, so End gives its break if a stream ends
// there.
func (l *LineEnds) Convert(chunk []byte) []byte {
	if l.cr && !l.held && len(chunk) > 0 && chunk[0] == '\n' {
		chunk, l.cr = chunk[1:], false
	}
	if !l.cr && crlfOnly(chunk) {
		return chunk
	}
	out := l.buf[:0]
	for len(chunk) > 0 {
		if l.cr {
			// What follows a CR already written as a break.
			switch c := chunk[0]; {
			case c == '\n': // its LF, or the LF of CR CR LF
				chunk = chunk[1:]
				l.cr, l.held = false, false
			case l.held: // the CR held is a break of its own
				out = append(out, '\r', '\n')
				l.held = false
			case c == '\r':
				chunk = chunk[1:]
				l.held = true
			default:
				l.cr = false
			}
			continue
		}
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

// End returns the line break still owed at the end of the stream: that
// of a CR held after a CR.
func (l *LineEnds) End() []byte {
	held := l.held
	l.cr, l.held = false, false
	if held {
		return []byte("\r\n")
	}
	return nil
}

// Bare reports whether chunk, coming after the chunks before it, holds a
// bare CR or LF, one Convert would change. A CR at its very end is bare
// only if the next chunk does not begin with LF; BareAtEnd tells, once
// there is none.
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
