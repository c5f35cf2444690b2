package imapserver

import (
	"bufio"
	"errors"
	"io"
	"os"
	"sync"
	"time"
)

// Go's compress/flate reader hands on decompressed data only when its
// window fills or at an empty stored block (a zlib Z_SYNC_FLUSH). Clients
// that flush with Z_PARTIAL_FLUSH, such as mbsync, end a command with a
// Huffman block end instead, and the command would sit in the window
// while the client waits for the answer. So COMPRESS=DEFLATE (RFC 4978)
// reads the client through this small inflater (RFC 1951, after zlib's
// puff), which passes on what it decoded whenever the input pauses.

// errBadDeflate is a client's DEFLATE stream that does not decode.
var errBadDeflate = errors.New("invalid DEFLATE data from client")

// inflateReader is a reader of the data compressed in a client's stream.
// A goroutine decodes and hands each decoded chunk over; it ends when its
// source fails or the reader is closed.
//
// The decoder cannot resume a block cut off by a read deadline, so the
// source is read without one, and the reader keeps the deadlines the
// connection would have set on the socket (SetReadDeadline): a wait that
// passes its deadline or is interrupted returns os.ErrDeadlineExceeded and
// leaves the decoder as it was.
type inflateReader struct {
	chunks   chan []byte   // decoded data; closed after err is set
	consumed chan struct{} // the last chunk was read, its buffer is free
	quit     chan struct{} // closed by Close
	kick     chan struct{} // the deadline changed
	err      error         // why decoding ended, io.EOF at the stream's end
	pending  []byte        // what is left of the chunk being read

	mu       sync.Mutex
	deadline time.Time
	closed   bool
}

func newInflateReader(src *bufio.Reader) *inflateReader {
	r := &inflateReader{
		chunks:   make(chan []byte),
		consumed: make(chan struct{}, 1),
		quit:     make(chan struct{}),
		kick:     make(chan struct{}, 1),
	}
	go func() {
		f := &inflater{src: src, r: r, win: make([]byte, 1<<15)}
		err := f.run()
		if err == nil {
			err = io.EOF
		}
		r.err = err
		close(r.chunks)
	}()
	return r
}

// SetReadDeadline is net.Conn's, for this reader's waits.
func (r *inflateReader) SetReadDeadline(t time.Time) {
	r.mu.Lock()
	r.deadline = t
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *inflateReader) Read(b []byte) (int, error) {
	for len(r.pending) == 0 {
		chunk, err := r.next()
		if err != nil {
			return 0, err
		}
		r.pending = chunk
	}
	n := copy(b, r.pending)
	r.pending = r.pending[n:]
	if len(r.pending) == 0 {
		r.consumed <- struct{}{}
	}
	return n, nil
}

// next waits for a decoded chunk until the deadline. A nil chunk with no
// error means the deadline changed and the wait should start again.
func (r *inflateReader) next() ([]byte, error) {
	r.mu.Lock()
	deadline := r.deadline
	r.mu.Unlock()
	var expired <-chan time.Time
	if !deadline.IsZero() {
		wait := time.Until(deadline)
		if wait <= 0 {
			return nil, os.ErrDeadlineExceeded
		}
		t := time.NewTimer(wait)
		defer t.Stop()
		expired = t.C
	}
	select {
	case chunk, ok := <-r.chunks:
		if !ok {
			return nil, r.err
		}
		return chunk, nil
	case <-expired:
		return nil, os.ErrDeadlineExceeded
	case <-r.kick:
		return nil, nil
	case <-r.quit:
		return nil, errInflateClosed
	}
}

// Close ends the decoding goroutine once its source returns.
func (r *inflateReader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.closed = true
		close(r.quit)
	}
	return nil
}

type inflater struct {
	src *bufio.Reader
	r   *inflateReader // where decoded data goes
	buf []byte         // decoded bytes not yet passed on

	// win is the last 32 KiB of output, for back references. It is a
	// slice, on the heap: held in the inflater on the goroutine's stack,
	// it would double that stack, to 64 KiB for every compressed session.
	win  []byte
	wpos int
	have int // bytes in win

	bitBuf uint32
	bitCnt uint
}

// byte reads an input byte, first passing on the decoded bytes if the
// read would wait for the client.
func (f *inflater) byte() (byte, error) {
	if len(f.buf) > 0 && f.src.Buffered() == 0 {
		if err := f.flush(); err != nil {
			return 0, err
		}
	}
	return f.src.ReadByte()
}

// errInflateClosed ends the decoder of a closed inflateReader.
var errInflateClosed = errors.New("inflate reader closed")

// flush hands the decoded bytes to the reader and waits until it has read
// them all.
func (f *inflater) flush() error {
	if len(f.buf) == 0 {
		return nil // an empty chunk would look like no chunk, and never be consumed
	}
	select {
	case f.r.chunks <- f.buf:
	case <-f.r.quit:
		return errInflateClosed
	}
	select {
	case <-f.r.consumed:
	case <-f.r.quit:
		return errInflateClosed
	}
	f.buf = f.buf[:0]
	return nil
}

func (f *inflater) bits(n uint) (int, error) {
	for f.bitCnt < n {
		b, err := f.byte()
		if err != nil {
			return 0, err
		}
		f.bitBuf |= uint32(b) << f.bitCnt
		f.bitCnt += 8
	}
	v := f.bitBuf & (1<<n - 1)
	f.bitBuf >>= n
	f.bitCnt -= n
	return int(v), nil
}

func (f *inflater) emit(b byte) error {
	f.win[f.wpos] = b
	f.wpos = (f.wpos + 1) & (len(f.win) - 1)
	f.have = min(f.have+1, len(f.win))
	f.buf = append(f.buf, b)
	if len(f.buf) >= 16*1024 {
		return f.flush()
	}
	return nil
}

func (f *inflater) run() error {
	for {
		final, err := f.bits(1)
		if err != nil {
			return err
		}
		typ, err := f.bits(2)
		if err != nil {
			return err
		}
		switch typ {
		case 0:
			err = f.stored()
		case 1:
			err = f.codes(&fixedLit, &fixedDist)
		case 2:
			err = f.dynamic()
		default:
			err = errBadDeflate
		}
		if err != nil {
			return err
		}
		if final == 1 {
			if err := f.flush(); err != nil {
				return err
			}
			return io.EOF
		}
	}
}

// stored copies an uncompressed block (RFC 1951 3.2.4).
func (f *inflater) stored() error {
	f.bitBuf, f.bitCnt = 0, 0 // to the byte boundary
	var hdr [4]byte
	for i := range hdr {
		b, err := f.byte()
		if err != nil {
			return err
		}
		hdr[i] = b
	}
	n := int(hdr[0]) | int(hdr[1])<<8
	if uint16(n) != ^(uint16(hdr[2]) | uint16(hdr[3])<<8) {
		return errBadDeflate
	}
	for range n {
		b, err := f.byte()
		if err != nil {
			return err
		}
		if err := f.emit(b); err != nil {
			return err
		}
	}
	return nil
}

// huffman is a canonical Huffman code: how many codes of each length, and
// the symbols in code order.
type huffman struct {
	count  [16]uint16
	symbol []uint16
}

func newHuffman(lengths []uint8) (*huffman, error) {
	h := &huffman{symbol: make([]uint16, len(lengths))}
	for _, l := range lengths {
		h.count[l]++
	}
	left := 1
	for l := 1; l < 16; l++ {
		left = left<<1 - int(h.count[l])
		if left < 0 {
			return nil, errBadDeflate // over-subscribed
		}
	}
	var offs [16]uint16
	for l := 1; l < 15; l++ {
		offs[l+1] = offs[l] + h.count[l]
	}
	for sym, l := range lengths {
		if l != 0 {
			h.symbol[offs[l]] = uint16(sym)
			offs[l]++
		}
	}
	return h, nil
}

func (f *inflater) decode(h *huffman) (int, error) {
	code, first, index := 0, 0, 0
	for l := 1; l < 16; l++ {
		b, err := f.bits(1)
		if err != nil {
			return 0, err
		}
		code |= b
		count := int(h.count[l])
		if code-count < first {
			return int(h.symbol[index+code-first]), nil
		}
		index += count
		first = (first + count) << 1
		code <<= 1
	}
	return 0, errBadDeflate
}

var (
	lenBase  = [29]int{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lenExtra = [29]uint{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	dstBase  = [30]int{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	dstExtra = [30]uint{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}

	// The fixed codes of RFC 1951 3.2.6; read-only after initialisation.
	fixedLit, fixedDist = fixedCodes()
)

func fixedCodes() (huffman, huffman) {
	var l [288]uint8
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
	var d [30]uint8
	for i := range d {
		d[i] = 5
	}
	lit, _ := newHuffman(l[:])
	dist, _ := newHuffman(d[:])
	return *lit, *dist
}

// codes decodes a compressed block's symbols (RFC 1951 3.2.5).
func (f *inflater) codes(lit, dist *huffman) error {
	for {
		sym, err := f.decode(lit)
		if err != nil {
			return err
		}
		switch {
		case sym < 256:
			if err := f.emit(byte(sym)); err != nil {
				return err
			}
			continue
		case sym == 256:
			return nil
		case sym-257 >= len(lenBase):
			return errBadDeflate
		}
		sym -= 257
		extra, err := f.bits(lenExtra[sym])
		if err != nil {
			return err
		}
		length := lenBase[sym] + extra
		dsym, err := f.decode(dist)
		if err != nil {
			return err
		}
		if dsym >= len(dstBase) {
			return errBadDeflate
		}
		extra, err = f.bits(dstExtra[dsym])
		if err != nil {
			return err
		}
		d := dstBase[dsym] + extra
		if d > f.have {
			return errBadDeflate
		}
		for range length {
			if err := f.emit(f.win[(f.wpos-d)&(len(f.win)-1)]); err != nil {
				return err
			}
		}
	}
}

// dynamic reads a block's own codes, then its symbols (RFC 1951 3.2.7).
func (f *inflater) dynamic() error {
	nlen, err := f.bits(5)
	if err != nil {
		return err
	}
	ndist, err := f.bits(5)
	if err != nil {
		return err
	}
	ncode, err := f.bits(4)
	if err != nil {
		return err
	}
	nlen, ndist, ncode = nlen+257, ndist+1, ncode+4
	if nlen > 286 || ndist > 30 {
		return errBadDeflate
	}
	order := [19]int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
	var clens [19]uint8
	for i := range ncode {
		v, err := f.bits(3)
		if err != nil {
			return err
		}
		clens[order[i]] = uint8(v)
	}
	lencode, err := newHuffman(clens[:])
	if err != nil {
		return err
	}
	lens := make([]uint8, nlen+ndist)
	for i := 0; i < len(lens); {
		sym, err := f.decode(lencode)
		if err != nil {
			return err
		}
		if sym < 16 {
			lens[i] = uint8(sym)
			i++
			continue
		}
		var l uint8
		var rep int
		switch sym {
		case 16:
			if i == 0 {
				return errBadDeflate
			}
			l = lens[i-1]
			rep, err = f.bits(2)
			rep += 3
		case 17:
			rep, err = f.bits(3)
			rep += 3
		default:
			rep, err = f.bits(7)
			rep += 11
		}
		if err != nil {
			return err
		}
		if i+rep > len(lens) {
			return errBadDeflate
		}
		for range rep {
			lens[i] = l
			i++
		}
	}
	if lens[256] == 0 {
		return errBadDeflate
	}
	lit, err := newHuffman(lens[:nlen])
	if err != nil {
		return err
	}
	dist, err := newHuffman(lens[nlen:])
	if err != nil {
		return err
	}
	return f.codes(lit, dist)
}
