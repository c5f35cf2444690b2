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
// Between commands everything was sent and the buffer can be parked: it
// goes back to a pool shared by the server's connections, and the next
// write takes one. So can the compressor of COMPRESS DEFLATE, the larger
// by far, in a long wait (see parkDeflater).
type writer struct {
	// bw buffers what goes to dst; nil while parked.
	bw *bufio.Writer
	// dst is where bw writes: net, or fw once COMPRESS is on; nil while
	// the compressor is parked, which only parkDeflater does.
	dst  io.Writer
	net  io.Writer  // the network, under any compression
	pool *sync.Pool // of *bufio.Writer
	// fw compresses what goes to net once COMPRESS DEFLATE is on (RFC
	// 4978); nil before, and while parked.
	fw *flate.Writer
	// deflaters gives startDeflate its compressors and takes parked ones;
	// nil in a writer that never compresses.
	deflaters *deflaters
	// flushed is set while nothing was written since the last flush.
	flushed bool
	// utf8 allows UTF-8 in quoted strings (IMAP4rev2, UTF8=ACCEPT).
	utf8 bool
	// err is why writing failed, nil while it has not.
	err error
}

func newWriter(dst io.Writer, pool *sync.Pool) *writer {
	return &writer{dst: dst, net: dst, pool: pool, flushed: true}
}

// buf returns the buffer, taking one from the pool if parked, and a
// compressor too if COMPRESS is on and it was parked.
func (w *writer) buf() *bufio.Writer {
	if w.bw == nil {
		if w.dst == nil {
			w.startDeflate() // the parked compressor's successor
		}
		w.bw = w.pool.Get().(*bufio.Writer)
		w.bw.Reset(w.dst)
	}
	w.flushed = false
	return w.bw
}

// park gives the buffer back to the pool when everything was sent.
func (w *writer) park() {
	if w.bw != nil && w.bw.Buffered() == 0 {
		w.bw.Reset(nil)
		w.pool.Put(w.bw)
		w.bw = nil
	}
}

// parkDeflater parks the buffer, and the compressor too when everything
// was flushed through it: for a wait that is long, as IDLE's, or has
// lasted (see Config.deflateQuiet).
//
// A compressor holds 1.2 MiB (compress/flate's tables), where an idle
// connection holds some 20 KiB. Handing it over costs the back
// references from the next answer into the ones before, which matter
// for small answers only (a FETCH of one message's ENVELOPE shrinks to
// 77% instead of 27%, of ten to 15% instead of 11%), hence not between
// the commands of a busy session: the compressor that takes over, reset,
// refers to nothing it did not write itself, and its blocks follow the
// last one flushed, which ended on a byte boundary and was not final, as
// one stream (RFC 1951 3.2.3), which the client's decompressor reads on
// with its window as it was.
func (w *writer) parkDeflater() {
	w.park()
	if w.bw == nil && w.fw != nil && w.flushed {
		w.deflaters.put(w.fw)
		w.fw, w.dst = nil, nil
	}
}

// holdsDeflater reports whether parkDeflater would give back a
// compressor.
func (w *writer) holdsDeflater() bool { return w.fw != nil }

// deflaters keeps a few compressors of COMPRESS DEFLATE sessions for the
// next to write, at flate.BestSpeed as cmdCompress makes them. Not a
// sync.Pool: one holds whatever a burst put in it until two collections
// have passed, 1.2 MiB each. A few are what the sessions writing at one
// moment need (a new compressed session takes one too); the rest are
// dropped.
type deflaters struct {
	mu   sync.Mutex
	free []*flate.Writer // guarded by mu; at most maxParkedDeflaters
}

// maxParkedDeflaters is how many compressors deflaters keeps: only a
// session in the middle of writing holds one, and few of those run at
// once.
const maxParkedDeflaters = 8

// get returns a compressor writing to dst, reset.
func (d *deflaters) get(dst io.Writer) *flate.Writer {
	d.mu.Lock()
	var fw *flate.Writer
	if n := len(d.free); n > 0 {
		fw = d.free[n-1]
		d.free[n-1] = nil
		d.free = d.free[:n-1]
	}
	d.mu.Unlock()
	if fw == nil {
		fw, _ = flate.NewWriter(dst, flate.BestSpeed) // fails only for a bad level
		return fw
	}
	fw.Reset(dst)
	return fw
}

// put keeps fw, whose output was flushed, or drops it.
func (d *deflaters) put(fw *flate.Writer) {
	fw.Reset(nil) // nothing of the session stays
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.free) < maxParkedDeflaters {
		d.free = append(d.free, fw)
	}
}

// startDeflate compresses what follows, once everything before was
// flushed: for COMPRESS, and again after parkDeflater with a compressor
// that continues the stream. The writer's deflaters must be set.
func (w *writer) startDeflate() {
	w.fw = w.deflaters.get(w.net)
	w.dst = w.fw
	if w.bw != nil {
		w.bw.Reset(w.dst)
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
	w.flushed = true
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
