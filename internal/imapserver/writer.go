package imapserver

import (
	"bufio"
	"compress/flate"
	"io"
	"net"
	"strconv"
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
type writer struct {
	bw *bufio.Writer
	fw *flate.Writer // set once COMPRESS DEFLATE is on (RFC 4978)
	// utf8 allows UTF-8 in quoted strings (IMAP4rev2, UTF8=ACCEPT).
	utf8 bool
}

func newWriter(dst io.Writer, size int) *writer {
	return &writer{bw: bufio.NewWriterSize(dst, size)}
}

func (w *writer) check(err error) {
	if err != nil {
		panic(ioError{err})
	}
}

func (w *writer) str(s string) {
	_, err := w.bw.WriteString(s)
	w.check(err)
}

func (w *writer) bytes(b []byte) {
	_, err := w.bw.Write(b)
	w.check(err)
}

func (w *writer) byte(c byte) { w.check(w.bw.WriteByte(c)) }

func (w *writer) num(n uint64) {
	var buf [20]byte
	w.bytes(strconv.AppendUint(buf[:0], n, 10))
}

// flush sends everything written so far.
func (w *writer) flush() {
	w.check(w.bw.Flush())
	if w.fw != nil {
		w.check(w.fw.Flush())
	}
}

// copyFrom streams n bytes from r.
func (w *writer) copyFrom(r io.Reader, n int64) {
	// A failure midway leaves a short literal, which would desynchronise
	// the client: the session must end.
	_, err := io.CopyN(w.bw, r, n)
	w.check(err)
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
	if w.quotable(s) {
		w.quoted(s)
		return
	}
	w.literalHeader(int64(len(s)), false)
	w.str(s)
}

func (w *writer) quoted(s string) {
	w.byte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			w.byte('\\')
		}
		w.byte(s[i])
	}
	w.byte('"')
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
