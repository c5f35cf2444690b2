package pop3server

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// readError is a failure reading a stored message, as opposed to writing
// it to the client.
type readError struct{ err error }

func (e readError) Error() string { return "read message: " + e.err.Error() }
func (e readError) Unwrap() error { return e.err }

// writeBody streams a message to w as the body of a multi-line response
// (RFC 1939 3): lines starting with "." get another one, the last line is
// ended with CRLF if the message does not end with a line break, and
// ".\r\n" terminates. With bodyLines >= 0 only the header, the blank line
// ending it and that many lines of the body are sent (TOP, RFC 1939 7).
//
// The message is read in pieces of len(buf), never whole. Errors reading r
// are readErrors; others come from w.
func writeBody(w io.Writer, r io.Reader, bodyLines int, buf []byte) error {
	if bodyLines < 0 {
		return writeStuffed(w, r, buf)
	}
	return writeTop(w, r, bodyLines)
}

// writeStuffed is writeBody for a whole message (RETR). It looks for the
// rare line that starts with a dot with one search per piece rather than
// a look at every line, and hands w long runs of the message: a RETR
// costs a read and a write or two, not work per line.
func writeStuffed(w io.Writer, r io.Reader, buf []byte) error {
	lineStart := true // the next byte begins a line
	for {
		n, err := r.Read(buf)
		chunk := buf[:n]
		if n > 0 {
			if lineStart && chunk[0] == '.' {
				if _, err := io.WriteString(w, "."); err != nil {
					return err
				}
			}
			for {
				i := bytes.Index(chunk, []byte("\n."))
				if i < 0 {
					break
				}
				// Through the line break, then the stuffed dot; the
				// line's own dot starts the next run.
				if _, err := w.Write(chunk[:i+1]); err != nil {
					return err
				}
				if _, err := io.WriteString(w, "."); err != nil {
					return err
				}
				chunk = chunk[i+1:]
			}
			if _, err := w.Write(chunk); err != nil {
				return err
			}
			lineStart = buf[n-1] == '\n'
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return readError{err}
		}
	}
	return writeEnd(w, lineStart)
}

// writeEnd ends a multi-line response, completing a last line that has
// no line break.
func writeEnd(w io.Writer, lineStart bool) error {
	end := ".\r\n"
	if !lineStart {
		end = "\r\n.\r\n"
	}
	_, err := io.WriteString(w, end)
	return err
}

// writeTop is writeBody for TOP: line by line, counting the body's lines.
func writeTop(w io.Writer, r io.Reader, bodyLines int) error {
	br := bufio.NewReaderSize(r, 32*1024)
	lineStart := true // the next byte begins a line
	inHeader := true  // the blank line ending the header is still to come
	for {
		frag, err := br.ReadSlice('\n')
		if len(frag) > 0 {
			if !inHeader && lineStart && bodyLines == 0 {
				break
			}
			if lineStart && frag[0] == '.' {
				if _, err := io.WriteString(w, "."); err != nil {
					return err
				}
			}
			if _, err := w.Write(frag); err != nil {
				return err
			}
			lineEnds := frag[len(frag)-1] == '\n'
			if lineEnds {
				switch {
				case !inHeader:
					bodyLines--
				case lineStart && (len(frag) == 1 || len(frag) == 2 && frag[0] == '\r'):
					inHeader = false
				}
			}
			lineStart = lineEnds
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return readError{err}
		}
	}
	return writeEnd(w, lineStart)
}
