package smtpserver

import (
	"bufio"
	"bytes"
	"errors"
	"io"

	"github.com/buzon-mail/buzon/internal/delivery"
)

// dotScanner finds the end of DATA's message, the line holding only a
// dot (RFC 5321 4.1.1.4), and undoes dot-stuffing (RFC 5321 4.5.2), over
// input that arrives in pieces of any size. A line ends at CRLF, which
// may have more CRs before it: after "line\r\r\n" the next line starts,
// so it may be the end of the data or have a dot to remove, and the dot
// line may be ".\r\r\n". A bare LF does not end a line: a sender that
// keeps LF within lines does not stuff a dot after one, so "\n.\n" read
// as the end would let the rest of a message pass for commands (the
// smuggling of RFC 5321 4.1.1.4's CRLF.CRLF).
//
// The zero dotScanner is at the start of a line, as the data is after the
// 354 reply.
type dotScanner struct {
	// inLine says the scanner is past the start of a line.
	inLine bool
	// cr says the last octet of the line so far was a CR, for an LF that
	// comes first in the next piece.
	cr bool
	// dot says the line started with a dot, and only CRs came since.
	dot bool
	// crs counts those CRs: data unless an LF follows.
	crs int
}

// crRun is a run of CRs, for handing on those that followed a stuffed dot.
const crRun = "\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r"

// scan reads buf, handing the message's data to put in as few pieces as
// it can, and returns how many bytes of buf it took and whether they
// ended the data (with the dot line, which is not handed on).
func (d *dotScanner) scan(buf []byte, put func([]byte)) (int, bool) {
	i := 0
	for i < len(buf) {
		switch {
		case d.dot:
			switch buf[i] {
			case '\r':
				d.crs++
				i++
				continue
			case '\n':
				if d.crs > 0 {
					return i + 1, true
				}
			}
			// A stuffed dot: it goes, the CRs after it stay.
			d.dot, d.cr = false, d.crs > 0
			for d.crs > 0 {
				n := min(d.crs, len(crRun))
				put([]byte(crRun[:n]))
				d.crs -= n
			}
		case !d.inLine:
			d.inLine, d.cr = true, false
			if buf[i] == '.' {
				d.dot = true
				i++
				continue
			}
		}
		// Within a line: the data runs on, over line ends, until a line
		// starts with a dot or buf ends.
		start := i
		for {
			j := bytes.IndexByte(buf[i:], '\n')
			if j < 0 {
				i = len(buf)
				d.cr = buf[i-1] == '\r'
				break
			}
			lf := i + j
			crlf := d.cr
			if lf > start {
				crlf = buf[lf-1] == '\r'
			}
			i, d.cr = lf+1, false
			if crlf && (i == len(buf) || buf[i] == '.') {
				d.inLine = false
				break
			}
		}
		put(buf[start:i])
	}
	return i, false
}

// readData reads DATA's message from br and hands it to put, up to and
// including the dot line. It fails only when the connection does, with
// io.ErrUnexpectedEOF for a client gone before the end.
func readData(br *bufio.Reader, put func([]byte)) error {
	var d dotScanner
	for {
		buf, err := peekBuffered(br)
		if err != nil {
			return err
		}
		n, end := d.scan(buf, put)
		br.Discard(n)
		if end {
			return nil
		}
	}
}

// readChunk reads a BDAT chunk of size octets from br and hands it to
// put (RFC 3030 2: exact octets, nothing stuffed). It fails only when the
// connection does, with io.ErrUnexpectedEOF for a client gone before the
// chunk's end.
func readChunk(br *bufio.Reader, size int64, put func([]byte)) error {
	for size > 0 {
		buf, err := peekBuffered(br)
		if err != nil {
			return err
		}
		buf = buf[:min(int64(len(buf)), size)]
		put(buf)
		br.Discard(len(buf))
		size -= int64(len(buf))
	}
	return nil
}

// peekBuffered returns what br holds, reading from the connection first
// when it holds nothing. The end of the stream there is
// io.ErrUnexpectedEOF: the client left in the middle of its message.
func peekBuffered(br *bufio.Reader) ([]byte, error) {
	if br.Buffered() == 0 {
		if _, err := br.Peek(1); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return br.Peek(br.Buffered())
}

// msgData takes a transaction's message data as it arrives and spools
// it. It counts the octets against the size limit as the client sent
// them (RFC 1870 5: after dot-unstuffing, before line endings are made
// CRLF), so a message of exactly the limit is taken however it came, and
// measures lines against MaxLineLength. After its first failure it keeps
// nothing and only remembers why: the rest of the data is still read,
// so that it is not taken for commands and the replies come after it.
type msgData struct {
	w     *delivery.SpoolWriter
	limit int64 // octets allowed; 0: no limit
	size  int64 // octets so far
	// maxLine bounds a line, its line ending included; line is the
	// length of the current one so far.
	maxLine, line int
	// hops, when not nil, counts the message's Received fields.
	hops *hopCounter
	// trace is how many octets of trace fields the server wrote above
	// the message, which the memory of copies stored before a 451 leaves
	// out (retry.go).
	trace int64
	err   error
}

// write takes the next piece of the message.
func (m *msgData) write(p []byte) {
	if m.err != nil {
		return
	}
	m.size += int64(len(p))
	if m.limit > 0 && m.size > m.limit {
		m.fail(delivery.ErrTooLarge)
		return
	}
	if !m.measure(p) {
		m.fail(errLineTooLong)
		return
	}
	if m.hops != nil {
		m.hops.scan(p)
	}
	if _, err := m.w.Write(p); err != nil {
		m.fail(err)
	}
}

// measure adds p to the line lengths and reports whether every line is
// still within maxLine.
func (m *msgData) measure(p []byte) bool {
	for {
		j := bytes.IndexByte(p, '\n')
		if j < 0 {
			m.line += len(p)
			return m.line <= m.maxLine
		}
		if m.line+j+1 > m.maxLine {
			return false
		}
		m.line = 0
		p = p[j+1:]
	}
}

func (m *msgData) fail(err error) {
	m.err = err
	m.w.Close()
}

// finish ends the message and returns it spooled and parsed, or why it
// was not taken.
func (m *msgData) finish() (*delivery.Spooled, error) {
	if m.err != nil {
		return nil, m.err
	}
	return m.w.Finish()
}

// close drops a message that is not to be finished.
func (m *msgData) close() {
	m.w.Close()
}
