package pop3server

import (
	"bufio"
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
// The message is read in pieces, never whole. Errors reading r are
// readErrors; others come from w.
func writeBody(w io.Writer, r io.Reader, bodyLines int) error {
	br := bufio.NewReaderSize(r, 32*1024)
	lineStart := true // the next byte begins a line
	inHeader := true  // TOP: the blank line ending the header is still to come
	for {
		frag, err := br.ReadSlice('\n')
		if len(frag) > 0 {
			if bodyLines >= 0 && !inHeader && lineStart && bodyLines == 0 {
				break
			}
			if lineStart && frag[0] == '.' {
				if _, err := w.Write([]byte{'.'}); err != nil {
					return err
				}
			}
			if _, err := w.Write(frag); err != nil {
				return err
			}
			lineEnds := frag[len(frag)-1] == '\n'
			if bodyLines >= 0 && lineEnds {
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
	end := ".\r\n"
	if !lineStart {
		end = "\r\n.\r\n"
	}
	_, err := io.WriteString(w, end)
	return err
}
