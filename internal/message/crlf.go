package message

import "bytes"

// LineEnds follows the line breaks of a stream that arrives in chunks,
// for the rule messages are stored and served by: a line ends in CRLF
// (RFC 5322 2.1, RFC 2046 4.1.1), and a bare LF, a bare CR, or a run of
// CRs ended by an LF is one line break in another form. CR CR LF is what
// a program writing CRLF in text mode on Windows leaves, and MTAs pass
// on (and CR CR CR LF when it went through two): read as two breaks, in a
// header it would end the header there. The LMTP reader ends lines the
// same way. A break split between two chunks is one break. The zero value is at the start of a
// stream; one LineEnds follows one stream.
type LineEnds struct {
	// cr: the last octets taken were CRs, the first of which Convert
	// has written as CRLF already. held: how many came after it; they
	// wait, to be dropped with an LF after them or written as breaks of
	// their own.
	cr   bool
	held int
	buf  []byte // Convert's output, reused
}

// Convert returns chunk with every line break made CRLF. A chunk that
// needs no change, as SMTP and LMTP carry messages, comes back as it is,
// uncopied; otherwise the result is in a buffer that the next call
// reuses. A CR is written as CRLF at once, and an LF right after it, in
// this chunk or the next, is then dropped; only CRs right after a CR wait
// for the next octet, so End gives their breaks if a stream ends there.
func (l *LineEnds) Convert(chunk []byte) []byte {
	if l.cr && l.held == 0 && len(chunk) > 0 && chunk[0] == '\n' {
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
				l.cr, l.held = false, 0
			case c == '\r':
				chunk = chunk[1:]
				l.held++
			default: // the CRs held are breaks of their own
				for ; l.held > 0; l.held-- {
					out = append(out, '\r', '\n')
				}
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

// End returns the line breaks still owed at the end of the stream: those
// of the CRs held after a CR.
func (l *LineEnds) End() []byte {
	held := l.held
	l.cr, l.held = false, 0
	return bytes.Repeat([]byte("\r\n"), held)
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
