package imapserver

import (
	"bufio"
	"bytes"
	"compress/flate"
	"io"
	"strings"
	"testing"
	"time"
)

// flateConn is the client side of COMPRESS DEFLATE (RFC 4978).
type flateConn struct {
	w  *flate.Writer
	br *bufio.Reader
}

func (f *flateConn) cmd(t *testing.T, tag, s string) []string {
	t.Helper()
	if _, err := io.WriteString(f.w, tag+" "+s+"\r\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.w.Flush(); err != nil {
		t.Fatal(err)
	}
	var out []string
	for {
		line, err := f.br.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		out = append(out, strings.TrimRight(line, "\r\n"))
		if n, ok := literalSize(line); ok {
			buf := make([]byte, n)
			if _, err := io.ReadFull(f.br, buf); err != nil {
				t.Fatal(err)
			}
			out = append(out, string(buf))
		}
		if strings.HasPrefix(line, tag+" ") {
			return out
		}
	}
}

func TestCompress(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.deliver("INBOX", strings.Repeat("Subject: compress me\n", 1)+"\n"+strings.Repeat("all work and no play\n", 5000))
	c := e.login()
	c.mustOK("COMPRESS DEFLATE")
	_ = c.nc.SetDeadline(time.Now().Add(30 * time.Second))
	w, _ := flate.NewWriter(c.nc, flate.DefaultCompression)
	f := &flateConn{w: w, br: bufio.NewReader(flate.NewReader(c.br))}
	out := f.cmd(t, "z1", "NOOP")
	if out[len(out)-1] != "z1 OK NOOP completed" {
		t.Fatalf("NOOP over DEFLATE: %q", out)
	}
	out = f.cmd(t, "z2", "SELECT INBOX")
	if !strings.HasPrefix(out[len(out)-1], "z2 OK") {
		t.Fatalf("SELECT: %q", out)
	}
	out = f.cmd(t, "z3", "FETCH 1 BODY.PEEK[TEXT]")
	if len(out) < 2 || out[1] != strings.Repeat("all work and no play\r\n", 5000) {
		t.Fatalf("FETCH over DEFLATE: %d lines", len(out))
	}
	out = f.cmd(t, "z4", "COMPRESS DEFLATE")
	if !strings.Contains(out[len(out)-1], "COMPRESSIONACTIVE") {
		t.Errorf("second COMPRESS: %q", out)
	}
}

// TestInflate checks the inflater against compress/flate's compressor
// at every level, with sync and no flushes.
func TestInflate(t *testing.T) {
	t.Parallel()
	var data []byte
	for i := range 20000 {
		data = append(data, []byte(strings.Repeat("x", i%7)+"hello world "+string(rune('a'+i%26)))...)
	}
	for level := flate.HuffmanOnly; level <= flate.BestCompression; level++ {
		var b strings.Builder
		w, _ := flate.NewWriter(&b, level)
		w.Write(data[:1000])
		w.Flush()
		w.Write(data[1000:])
		w.Close()
		r := newInflateReader(bufio.NewReader(strings.NewReader(b.String())))
		got, err := io.ReadAll(r)
		if err != nil || string(got) != string(data) {
			t.Errorf("level %d: %d bytes, %v; want %d", level, len(got), err, len(data))
		}
	}
}

// FuzzInflate feeds arbitrary client data to the inflater: it must end
// with an error or the data, never panic or hang. compress/flate is the
// reference: a stream it decodes to its end, the inflater decodes to the
// same bytes; on any other input one's output starts the other's (the
// inflater drops what it decoded of a block it finds invalid, and is
// laxer than compress/flate about codes with unused lengths). Both are
// read up to a limit; where compress/flate reaches it, the stream may
// still turn out invalid past it, and the inflater may have dropped the
// bytes before the limit that it had not passed on, so only the prefix
// rule holds.
func FuzzInflate(f *testing.F) {
	f.Add(invalidAfter(1<<20 + 4096))
	for _, level := range []int{flate.HuffmanOnly, flate.BestSpeed, flate.BestCompression} {
		var b strings.Builder
		w, _ := flate.NewWriter(&b, level)
		w.Write([]byte("a1 NOOP\r\na2 FETCH 1:* (FLAGS)\r\n"))
		w.Flush()
		w.Write([]byte(strings.Repeat("abcabcabc", 100)))
		w.Close()
		f.Add([]byte(b.String()))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 1 << 20
		r := newInflateReader(bufio.NewReader(strings.NewReader(string(data))))
		defer r.Close()
		got, gotErr := io.ReadAll(io.LimitReader(r, limit))
		want, wantErr := io.ReadAll(io.LimitReader(flate.NewReader(strings.NewReader(string(data))), limit))
		if wantErr == nil && len(want) < limit && (gotErr != nil || !bytes.Equal(got, want)) {
			t.Fatalf("inflated %d bytes, %v; compress/flate %d bytes", len(got), gotErr, len(want))
		}
		if n := min(len(got), len(want)); !bytes.Equal(got[:n], want[:n]) {
			t.Fatalf("inflated %d bytes, %v; compress/flate %d bytes, %v: they differ", len(got), gotErr, len(want), wantErr)
		}
	})
}

// invalidAfter returns a DEFLATE block with fixed codes (RFC 1951 3.2.6)
// that decodes to n bytes, mostly as copies of 258, and then has an
// invalid length code, 286.
func invalidAfter(n int) []byte {
	var out []byte
	var acc, bits uint
	put := func(v, width uint) { // in the stream's order, least significant bit first
		acc |= v << bits
		for bits += width; bits >= 8; bits -= 8 {
			out = append(out, byte(acc))
			acc >>= 8
		}
	}
	code := func(c, width uint) { // a Huffman code: most significant bit first
		var r uint
		for i := range width {
			r = r<<1 | c>>i&1
		}
		put(r, width)
	}
	put(1, 1) // BFINAL
	put(1, 2) // BTYPE: fixed codes
	code(0x30+'a', 8)
	for done := 1; done < n; {
		if n-done >= 258 {
			code(0xc0+285-280, 8) // length 258
			code(0, 5)            // distance 1
			done += 258
		} else {
			code(0x30+'a', 8)
			done++
		}
	}
	code(0xc0+286-280, 8)
	put(0, 32) // more input, so the inflater does not pass on its bytes before the code
	return out
}

// TestInflateDeadline: a wait that passes its deadline, or is cut short
// by a new one, leaves the decoder able to go on with the stream (IDLE
// over COMPRESS is woken this way).
func TestInflateDeadline(t *testing.T) {
	t.Parallel()
	cr, cw := io.Pipe()
	r := newInflateReader(bufio.NewReader(cr))
	defer r.Close()
	fw, _ := flate.NewWriter(cw, flate.BestSpeed)

	r.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := r.Read(make([]byte, 10)); !isTimeout(err) {
		t.Fatalf("read past its deadline: %v, want a timeout", err)
	}
	// A read waiting with no deadline, interrupted by one in the past.
	r.SetReadDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 10))
		errc <- err
	}()
	r.SetReadDeadline(time.Now())
	if err := <-errc; !isTimeout(err) {
		t.Fatalf("interrupted read: %v, want a timeout", err)
	}

	r.SetReadDeadline(time.Time{})
	go func() {
		fw.Write([]byte("a1 DONE\r\n"))
		fw.Flush()
	}()
	got := make([]byte, 9)
	if _, err := io.ReadFull(r, got); err != nil || string(got) != "a1 DONE\r\n" {
		t.Fatalf("after the timeouts: %q %v", got, err)
	}
}

// TestInflateEnd: a client that ends its DEFLATE stream (Z_FINISH, as
// flate.Writer.Close does, with an empty final block) after its last
// command is read to io.EOF, not left waiting.
func TestInflateEnd(t *testing.T) {
	t.Parallel()
	cr, cw := io.Pipe()
	r := newInflateReader(bufio.NewReader(cr))
	defer r.Close()
	fw, _ := flate.NewWriter(cw, flate.BestSpeed)
	next := make(chan struct{})
	go func() {
		fw.Write([]byte("a1 NOOP\r\n"))
		fw.Flush()
		<-next
		fw.Close()
	}()
	got := make([]byte, 9)
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatal(err)
	}
	close(next)
	r.SetReadDeadline(time.Now().Add(30 * time.Second))
	if n, err := r.Read(make([]byte, 10)); err != io.EOF {
		t.Fatalf("after the client's final block: %d, %v; want io.EOF", n, err)
	}
}

// TestCompressedHangup: a compressed session whose client ends its DEFLATE
// stream and hangs up ends at once, giving back its account slot.
func TestCompressedHangup(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	c := e.login()
	c.mustOK("COMPRESS DEFLATE")
	_ = c.nc.SetDeadline(time.Now().Add(30 * time.Second))
	w, _ := flate.NewWriter(c.nc, flate.BestSpeed)
	f := &flateConn{w: w, br: bufio.NewReader(flate.NewReader(c.br))}
	f.cmd(t, "z1", "NOOP")
	w.Close()
	c.nc.Close()
	e.waitDisconnected(t)
}
