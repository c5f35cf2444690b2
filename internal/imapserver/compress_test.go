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
// laxer than compress/flate about codes with unused lengths).
func FuzzInflate(f *testing.F) {
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
		if wantErr == nil && (gotErr != nil || !bytes.Equal(got, want)) {
			t.Fatalf("inflated %d bytes, %v; compress/flate %d bytes", len(got), gotErr, len(want))
		}
		if n := min(len(got), len(want)); !bytes.Equal(got[:n], want[:n]) {
			t.Fatalf("inflated %d bytes, %v; compress/flate %d bytes, %v: they differ", len(got), gotErr, len(want), wantErr)
		}
	})
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
