package imapserver

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// reader reads what the client sends: command lines and literals. The
// connection owns it; the parser pulls lines and literals through it.
//
// While the connection waits for a client that has sent nothing more, the
// reader can park: its buffer goes back to a pool shared by the server's
// connections and the wait reads one byte into the reader itself, so ten
// thousand idle connections do not hold ten thousand buffers.
type reader struct {
	// br buffers in. It is nil while parked and taken from pool again
	// when the client sends something; set directly, with no pool, it is
	// never parked.
	br      *bufio.Reader
	in      *primedReader
	pool    *sync.Pool // of *bufio.Reader
	maxLine int        // longest line accepted, without its CRLF
	absurd  int64      // past this many bytes in one line, the connection is closed
	// pace puts the read deadlines on a command under way; nil sets
	// none (the parser's tests).
	pace *pacer
}

func newReader(src io.Reader, pool *sync.Pool, maxLine int, pace *pacer) *reader {
	r := &reader{
		pool:    pool,
		maxLine: maxLine,
		absurd:  max(int64(maxLine)*16, 1<<20),
		pace:    pace,
	}
	r.setSource(src)
	return r
}

// setSource makes src what the reader reads from now on (COMPRESS), with
// nothing buffered.
func (r *reader) setSource(src io.Reader) {
	if r.pace != nil {
		src = pacedReader{src: src, pace: r.pace}
	}
	r.br, r.in = nil, &primedReader{src: src}
}

// detach hands over the buffer, reading on from the source as it is, not
// paced: for COMPRESS's inflater, which reads it in its own goroutine
// and keeps the deadlines itself. The reader then needs a new source.
func (r *reader) detach() *bufio.Reader {
	if pr, ok := r.in.src.(pacedReader); ok {
		r.in.src = pr.src
	}
	br := r.br
	r.br, r.in = nil, nil
	return br
}

// park gives the buffer back to the pool when it holds nothing unread.
func (r *reader) park() {
	if r.pool == nil || r.br == nil || r.br.Buffered() > 0 {
		return
	}
	r.br.Reset(nil)
	r.pool.Put(r.br)
	r.br = nil
}

// unpark waits for the client's next byte, then takes a buffer.
func (r *reader) unpark() error {
	if r.br != nil {
		return nil
	}
	if err := r.in.wait(); err != nil {
		return err
	}
	r.br = r.pool.Get().(*bufio.Reader)
	r.br.Reset(r.in)
	return nil
}

// buffered is how many bytes the client sent that were not read yet.
func (r *reader) buffered() int {
	if r.br == nil {
		return 0
	}
	return r.br.Buffered()
}

// primedReader is src, with the one byte a parked wait read kept in
// front.
type primedReader struct {
	src      io.Reader
	first    [1]byte
	hasFirst bool
}

// wait reads the next byte into first.
func (p *primedReader) wait() error {
	n, err := p.src.Read(p.first[:])
	if n == 0 {
		if err == nil {
			err = io.ErrNoProgress
		}
		return err
	}
	p.hasFirst = true
	return nil
}

func (p *primedReader) Read(b []byte) (int, error) {
	if p.hasFirst && len(b) > 0 {
		b[0] = p.first[0]
		p.hasFirst = false
		return 1, nil
	}
	return p.src.Read(b)
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
	r.pace.begin()
	if err := r.unpark(); err != nil {
		return nil, err
	}
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
	r.pace.begin()
	_, err := io.CopyN(io.Discard, r.br, n)
	if err != nil {
		return fmt.Errorf("skip literal: %w", err)
	}
	return nil
}

// minRate is the slowest, in bytes per second, that a client may send a
// line or literal of a command under way, on average, once a pause's
// grace is spent.
const minRate = 1024

// pacer puts the read deadlines on a command under way. The wait for a
// command has its own deadline, the idle timeout or, before login, the
// login deadline; but once a command has begun, the client owes the rest
// of it, each line and literal, and every read of it may wait a pause
// (the idle timeout) again, so that a command slow to arrive is not cut
// off by a deadline set when the server began to wait. Pauses alone
// would let a client trickling a byte per pause hold a command, and its
// buffers, for ever: each piece (a line, a literal) must also come at
// minRate on average, with one pause's grace, and before login, by the
// login deadline.
//
// Only the connection's goroutine uses a pacer. While it is stopped, as
// in the waits that Shutdown and IDLE's wake-ups interrupt, it sets no
// deadline, so it cannot undo an interruption.
type pacer struct {
	setDeadline func(time.Time) // the connection's read deadline
	pause       time.Duration   // longest pause between bytes: the idle timeout
	hard        time.Time       // no read past this (the login deadline); zero for none
	// start is when the piece being read began, zero while stopped; got
	// counts the bytes read since.
	start time.Time
	got   int64
	// set is the deadline last set, for overdue.
	set time.Time
}

// begin starts a piece of the command: a line, or a literal.
func (p *pacer) begin() {
	if p != nil {
		p.start, p.got = time.Now(), 0
	}
}

// stop hands the deadline back to a wait that sets its own.
func (p *pacer) stop() {
	if p != nil {
		p.start, p.set = time.Time{}, time.Time{}
	}
}

// renew sets the deadline of the next read: a pause from now, but no
// later than the piece's bytes so far allow at minRate after a pause's
// grace, nor than the hard deadline.
func (p *pacer) renew() {
	if p == nil || p.start.IsZero() {
		return
	}
	d := time.Now().Add(p.pause)
	if paced := p.start.Add(p.pause + time.Duration(p.got)*(time.Second/minRate)); paced.Before(d) {
		d = paced
	}
	if !p.hard.IsZero() && p.hard.Before(d) {
		d = p.hard
	}
	if !d.Equal(p.set) {
		p.set = d
		p.setDeadline(d)
	}
}

// overdue reports whether a read of a command under way has passed its
// deadline: the client kept the server waiting.
func (p *pacer) overdue() bool {
	return p != nil && !p.set.IsZero() && !time.Now().Before(p.set)
}

// pacedReader is src, read at the pacer's pace.
type pacedReader struct {
	src  io.Reader
	pace *pacer
}

func (r pacedReader) Read(b []byte) (int, error) {
	r.pace.renew()
	n, err := r.src.Read(b)
	r.pace.got += int64(n)
	return n, err
}
