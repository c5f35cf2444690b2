package imapserver

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// reader reads what the client sends: command lines and literals. The
// connection owns it; the parser pulls lines and literals through it.
type reader struct {
	br      *bufio.Reader
	maxLine int   // longest line accepted, without its CRLF
	absurd  int64 // past this many bytes in one line, the connection is closed
}

// lineTooLongError is a line over maxLine, already read to its end and
// dropped. Head is its start (for the tag), Tail its end (for a literal
// header that must still be skipped).
type lineTooLongError struct {
	Head, Tail []byte
}

func (e *lineTooLongError) Error() string { return "line too long" }

// errAbsurdLine is a line so long that the client is not worth answering.
var errAbsurdLine = errors.New("line absurdly long")

// readLine reads one line and returns it without the CR LF (a bare LF is
// accepted too). The returned slice is valid until the next read.
func (r *reader) readLine() ([]byte, error) {
	var buf []byte
	for {
		chunk, err := r.br.ReadSlice('\n')
		if len(buf)+len(chunk) > r.maxLine+2 {
			return nil, r.dropLine(append(buf, chunk...), err)
		}
		switch {
		case err == nil:
			if buf == nil {
				buf = chunk
			} else {
				buf = append(buf, chunk...)
			}
			buf = buf[:len(buf)-1]
			if n := len(buf); n > 0 && buf[n-1] == '\r' {
				buf = buf[:n-1]
			}
			return buf, nil
		case errors.Is(err, bufio.ErrBufferFull):
			buf = append(buf, chunk...)
		default:
			return nil, err
		}
	}
}

// dropLine reads and discards the rest of a line that is too long.
func (r *reader) dropLine(start []byte, err error) error {
	head := bytes.Clone(start[:min(len(start), 64)])
	tail := bytes.Clone(start[max(0, len(start)-64):])
	total := int64(len(start))
	for err != nil {
		if !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
		if total > r.absurd {
			return errAbsurdLine
		}
		var chunk []byte
		chunk, err = r.br.ReadSlice('\n')
		total += int64(len(chunk))
		tail = append(tail, chunk...)
		tail = bytes.Clone(tail[max(0, len(tail)-64):])
	}
	tail = bytes.TrimRight(tail, "\r\n")
	if total > r.absurd {
		return errAbsurdLine
	}
	return &lineTooLongError{Head: head, Tail: tail}
}

// discard skips n bytes of a literal the server will not use.
func (r *reader) discard(n int64) error {
	_, err := io.CopyN(io.Discard, r.br, n)
	if err != nil {
		return fmt.Errorf("skip literal: %w", err)
	}
	return nil
}
