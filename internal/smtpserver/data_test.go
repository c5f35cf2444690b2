package smtpserver

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// unstuffLines is the reading of DATA the dotScanner must agree with,
// written line by line: a line ends at CRLF (which may have more CRs
// before it); a line of a dot and CRs ends the data; a line starting
// with a dot loses it (RFC 5321 4.5.2). It returns the message and
// whether the data ended.
func unstuffLines(in []byte) ([]byte, bool) {
	var out []byte
	for len(in) > 0 {
		line := in
		if j := bytes.Index(in, []byte("\r\n")); j >= 0 {
			line = in[:j+2]
		}
		in = in[len(line):]
		if line[0] == '.' {
			if bytes.HasSuffix(line, []byte("\r\n")) && len(bytes.TrimLeft(line[1:len(line)-1], "\r")) == 0 {
				return out, true
			}
			line = line[1:]
		}
		out = append(out, line...)
	}
	return out, false
}

// scanPieces runs a dotScanner over in, cut into pieces of the given
// sizes (the rest in one), and returns what it handed on, whether the data
// ended and how much of in it took.
func scanPieces(in []byte, sizes []int) (out []byte, end bool, took int) {
	var d dotScanner
	put := func(p []byte) { out = append(out, p...) }
	for len(in) > 0 {
		piece := in
		if len(sizes) > 0 {
			piece = in[:min(max(sizes[0], 1), len(in))]
			sizes = sizes[1:]
		}
		n, end := d.scan(piece, put)
		took += n
		if end {
			return out, true, took
		}
		in = in[n:]
	}
	return out, false, took
}

func TestDotScanner(t *testing.T) {
	for _, tt := range []struct {
		name, in, want string
		end            bool
		rest           string // what follows the end, left unread
	}{
		{"simple", "Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n", "Subject: x\r\n\r\nbody\r\n", true, "QUIT\r\n"},
		{"empty", ".\r\n", "", true, ""},
		{"stuffed", "..x\r\n.y\r\n..\r\n.\r\n", ".x\r\ny\r\n.\r\n", true, ""},
		// The go-smtp bug: after CR CR LF the next line is a line.
		{"CR CR LF then the end", "Subject: x\r\n\r\nline\r\r\n.\r\nNOOP\r\n", "Subject: x\r\n\r\nline\r\r\n", true, "NOOP\r\n"},
		{"CR CR LF then a stuffed dot", "line\r\r\n..x\r\n.\r\n", "line\r\r\n.x\r\n", true, ""},
		// A bare LF ends no line: no end of data, no dot to remove.
		{"bare LF lines", "a\n..b\n.\n", "a\n..b\n.\n", false, ""},
		{"no smuggling", "a\n.\nMAIL FROM:<x@example.org>\r\n.\r\nNOOP\r\n", "a\n.\nMAIL FROM:<x@example.org>\r\n", true, "NOOP\r\n"},
		{"a dot and a bare LF", "x\r\n.\nb\r\n.\r\n", "x\r\n\nb\r\n", true, ""},
		{"dot line with CRs", "a\r\n.\r\r\r\n", "a\r\n", true, ""},
		{"a dot and CRs and text", "a\r\n.\r\rb\r\n.\r\n", "a\r\n\r\rb\r\n", true, ""},
		{"dot not at a line start", "a.\r\n.b.\r\n.\r\n", "a.\r\nb.\r\n", true, ""},
		{"a space after the dot", ". \r\n.\r\n", " \r\n", true, ""},
		{"bare CR is no line end", "a\r.\r\n.\r\n", "a\r.\r\n", true, ""},
		{"unfinished", "a\r\n.", "a\r\n", false, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			for size := 1; size <= len(in); size++ {
				var sizes []int
				for range len(in) {
					sizes = append(sizes, size)
				}
				out, end, took := scanPieces(in, sizes)
				if string(out) != tt.want || end != tt.end || end && tt.in[took:] != tt.rest {
					t.Fatalf("in pieces of %d: %q, end %v, rest %q; want %q, %v, %q", size, out, end, tt.in[took:], tt.want, tt.end, tt.rest)
				}
			}
		})
	}
}

// FuzzDotScanner checks the dotScanner against unstuffLines, with the
// input cut into pieces at arbitrary places, as reads from a socket cut
// it.
func FuzzDotScanner(f *testing.F) {
	f.Add([]byte("Subject: x\r\n\r\nline\r\r\n..x\r\n.\r\n"), []byte{3, 7, 1})
	f.Add([]byte("..\r\n.\r\r\rx\n.\n"), []byte{1})
	f.Fuzz(func(t *testing.T, in, cuts []byte) {
		sizes := make([]int, len(cuts))
		for i, c := range cuts {
			sizes[i] = int(c)
		}
		want, wantEnd := unstuffLines(in)
		got, end, _ := scanPieces(in, sizes)
		if !wantEnd && bytes.HasPrefix(want, got) && len(bytes.Trim(want[len(got):], "\r")) == 0 {
			// Unfinished, the scanner holds back the CRs after a dot at
			// the start of the last line: they are data only if no LF
			// comes.
			got = want
		}
		if !bytes.Equal(got, want) || end != wantEnd {
			t.Fatalf("%q cut %v: %q, end %v; want %q, %v", in, sizes, got, end, want, wantEnd)
		}
	})
}

func TestReadDataCutShort(t *testing.T) {
	br := bufio.NewReader(strings.NewReader("Subject: x\r\n\r\nbody\r\n"))
	if err := readData(br, func([]byte) {}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("DATA cut short: %v", err)
	}
	br = bufio.NewReader(strings.NewReader("12345"))
	if err := readChunk(br, 10, func([]byte) {}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("chunk cut short: %v", err)
	}
}

func TestMsgDataLines(t *testing.T) {
	for _, tt := range []struct {
		pieces []string
		ok     bool
	}{
		{[]string{"12345678\r\n", "12345678\r\n"}, true},
		{[]string{"123456789\r\n"}, false},
		{[]string{"1234", "5678\r", "\n1"}, true},
		{[]string{"1234", "5678\r", "\r\n"}, false},
		{[]string{"12345678901"}, false},
	} {
		m := &msgData{maxLine: 10}
		ok := true
		for _, p := range tt.pieces {
			ok = ok && m.measure([]byte(p))
		}
		if ok != tt.ok {
			t.Errorf("%q with lines of up to 10 octets: %v, want %v", tt.pieces, ok, tt.ok)
		}
	}
}

// FuzzHopCounter: the Received fields counted as a message streams past in
// pieces of any size are those of its header, read whole.
func FuzzHopCounter(f *testing.F) {
	f.Add([]byte("Received: a\r\nreceived : b\r\n\tfolded\r\nX-Received: c\r\n\r\nReceived: body\r\n"), []byte{3, 9, 1})
	f.Add([]byte("Received:\n\r\r\nReceived: x\r\n"), []byte{1})
	f.Fuzz(func(t *testing.T, in, cuts []byte) {
		want := 0
		for _, line := range bytes.SplitAfter(in, []byte("\n")) {
			if !bytes.HasSuffix(line, []byte("\n")) {
				break // unfinished: not counted yet
			}
			text := strings.TrimRight(string(line[:len(line)-1]), "\r")
			if len(text) == 0 && len(line)-1 <= 16 {
				break // the header's end
			}
			if isReceived(string(line[:min(len(line), 16)])) {
				want++
			}
		}
		var h hopCounter
		rest := in
		for _, c := range cuts {
			n := min(int(c), len(rest))
			h.scan(rest[:n])
			rest = rest[n:]
		}
		h.scan(rest)
		if h.count != want {
			t.Fatalf("%q cut %v: %d Received fields, want %d", in, cuts, h.count, want)
		}
	})
}
