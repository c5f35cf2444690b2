package imapserver

import (
	"bufio"
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// deadlineWriter puts a deadline on every write to the network, so a
// client that stops reading cannot hold the server's goroutine, and the
// memory its output sits in, for longer than the timeout.
type deadlineWriter struct {
	nc      net.Conn
	timeout time.Duration
}

func (w deadlineWriter) Write(b []byte) (int, error) {
	if err := w.nc.SetWriteDeadline(time.Now().Add(w.timeout)); err != nil {
		return 0, err
	}
	return w.nc.Write(b)
}

// writer writes responses. Output goes through a buffer of bounded size
// straight to the network: nothing queues up behind a slow client, which
// is dropped when a write blocks past the deadline. Its methods panic
// with ioError when the connection fails; the command loop ends the session.
//
// Between commands the buffer is empty and can be parked: it goes back to
// a pool shared by the server's connections, and the next write takes one.
type writer struct {
	// bw buffers what goes to dst; nil while parked.
	bw   *bufio.Writer
	dst  io.Writer
	pool *sync.Pool    // of *bufio.Writer
	fw   *flate.Writer // set once COMPRESS DEFLATE is on (RFC 4978)
	// utf8 allows UTF-8 in quoted strings (IMAP4rev2, UTF8=ACCEPT).
	utf8 bool
	// err is why writing failed, nil while it has not.
	err error
}

func newWriter(dst io.Writer, pool *sync.Pool) *writer {
	return &writer{dst: dst, pool: pool}
}

// buf returns the buffer, taking one from the pool if parked.
func (w *writer) buf() *bufio.Writer {
	if w.bw == nil {
		w.bw = w.pool.Get().(*bufio.Writer)
		w.bw.Reset(w.dst)
	}
	return w.bw
}

// park gives the buffer back to the pool when everything was sent.
func (w *writer) park() {
	if w.bw == nil || w.bw.Buffered() > 0 {
		return
	}
	w.bw.Reset(nil)
	w.pool.Put(w.bw)
	w.bw = nil
}

// setDst sends what follows to dst (COMPRESS), once everything before
// was flushed.
func (w *writer) setDst(dst io.Writer) {
	w.dst = dst
	if w.bw != nil {
		w.bw.Reset(dst)
	}
}

func (w *writer) check(err error) {
	if err != nil {
		w.err = err
		panic(ioError{err})
	}
}

// stalled reports whether a write failed because the client stopped
// reading: it blocked past the write timeout.
func (w *writer) stalled() bool { return errors.Is(w.err, os.ErrDeadlineExceeded) }

func (w *writer) str(s string) {
	_, err := w.buf().WriteString(s)
	w.check(err)
}

func (w *writer) bytes(b []byte) {
	_, err := w.buf().Write(b)
	w.check(err)
}

func (w *writer) byte(c byte) { w.check(w.buf().WriteByte(c)) }

func (w *writer) num(n uint64) {
	b := w.buf()
	_, err := b.Write(strconv.AppendUint(b.AvailableBuffer(), n, 10))
	w.check(err)
}

// flush sends everything written so far.
func (w *writer) flush() {
	if w.bw != nil {
		w.check(w.bw.Flush())
	}
	if w.fw != nil {
		w.check(w.fw.Flush())
	}
}

// literal writes a literal of n bytes streamed from r: "{n}" CRLF and
// the bytes, or with binary "~{n}" CRLF, a literal8 (RFC 3516 4.3). Only a
// literal8 may hold NUL: an ordinary literal holds CHAR8, %x01-ff (RFC
// 9051 9), so there each NUL goes out as 0x80, as Dovecot sends it. The
// size stays the same, so RFC822.SIZE and partial offsets stay right; the
// stored message is never changed.
func (w *writer) literal(r io.Reader, n int64, binary bool) {
	w.literalHeader(n, binary)
	b := w.buf()
	for n > 0 {
		if b.Available() == 0 {
			w.check(b.Flush())
		}
		// Read straight into the buffer's free space, as io.Copy into a
		// bufio.Writer does, and mend NULs there: the search for one is
		// all that a literal without any costs.
		p := b.AvailableBuffer()
		p = p[:min(int64(cap(p)), n)]
		k, err := r.Read(p)
		if !binary {
			mendNUL(p[:k])
		}
		_, werr := b.Write(p[:k]) // in place: only counts the bytes in
		w.check(werr)
		n -= int64(k)
		if err != nil && n > 0 {
			// A literal cut short would desynchronise the client: the
			// session must end.
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			w.check(err)
		}
	}
}

// mendNUL replaces each NUL of b with 0x80, for an ordinary literal.
func mendNUL(b []byte) {
	for i := bytes.IndexByte(b, 0); i >= 0; i = bytes.IndexByte(b, 0) {
		b[i] = 0x80
		b = b[i+1:]
	}
}

// quotable reports whether s can go in a quoted string (RFC 9051 9).
func (w *writer) quotable(s string) bool {
	if len(s) > 4096 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == 0 || c == '\r' || c == '\n' || (c >= 0x80 && !w.utf8) {
			return false
		}
	}
	return !w.utf8 || utf8.ValidString(s)
}

// string writes s quoted, or as a literal when it cannot be quoted.
func (w *writer) string(s string) {
	switch {
	case w.quotable(s):
		w.quoted(s)
	case strings.IndexByte(s, 0) >= 0:
		w.literal(strings.NewReader(s), int64(len(s)), false) // NULs mended
	default:
		w.literalHeader(int64(len(s)), false)
		w.str(s)
	}
}

// quoted writes s as a quoted string. It checks for errors once, at the
// end: a bufio.Writer that failed fails every later write.
func (w *writer) quoted(s string) {
	b := w.buf()
	b.WriteByte('"')
	start := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			b.WriteString(s[start:i])
			b.WriteByte('\\')
			start = i // the quoted character leads the next run
		}
	}
	b.WriteString(s[start:])
	w.check(b.WriteByte('"'))
}

// upper writes s in upper case as a string, without allocating when s
// is plain ASCII (media types, parameter names).
func (w *writer) upper(s string) {
	if len(s) > 4096 {
		w.string(strings.ToUpper(s))
		return
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x80 || c < ' ' || c == '"' || c == '\\' {
			w.string(strings.ToUpper(s))
			return
		}
	}
	b := w.buf()
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		b.WriteByte(c)
	}
	w.check(b.WriteByte('"'))
}

// nstring writes NIL for "" and otherwise a string.
func (w *writer) nstring(s string) {
	if s == "" {
		w.str("NIL")
		return
	}
	w.string(s)
}

// literalHeader writes "{n}" CRLF, or "~{n}" CRLF for literal8 (RFC 3516).
func (w *writer) literalHeader(n int64, binary bool) {
	if binary {
		w.byte('~')
	}
	w.byte('{')
	w.num(uint64(n))
	w.str("}\r\n")
}
