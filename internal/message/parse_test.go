package message

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestParseGolden parses each of our test messages and compares the tree
// with its golden file (regenerate with -update, then review the diff).
func TestParseGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.eml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test messages: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			root, err := Parse(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, raw, root)
			got := dumpTree(root)
			golden := strings.TrimSuffix(file, ".eml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("tree differs from %s:\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}

// span is a part's offsets and line count, for the table tests.
type span struct {
	headerStart, bodyStart, end, lines int64
}

func spanOf(p *Part) span {
	return span{p.HeaderStart, p.BodyStart, p.End, p.Lines}
}

// TestParseOffsets pins down the offsets IMAP sections depend on (RFC
// 9051 6.4.5, RFC 2046 5.1.1) on small messages.
func TestParseOffsets(t *testing.T) {
	tests := []struct {
		name    string
		msg     string
		section []int
		want    span
		body    string // the part's body, raw[BodyStart:End]
	}{{
		name: "plain message",
		msg:  "Subject: x\r\n\r\nline 1\r\nline 2\r\n",
		want: span{0, 14, 30, 2}, body: "line 1\r\nline 2\r\n",
	}, {
		name: "last line without line break is not counted",
		msg:  "Subject: x\r\n\r\nline 1\r\nline 2",
		want: span{0, 14, 28, 1}, body: "line 1\r\nline 2",
	}, {
		name: "empty body",
		msg:  "Subject: x\r\n\r\n",
		want: span{0, 14, 14, 0}, body: "",
	}, {
		name: "no header",
		msg:  "\r\nbody\r\n",
		want: span{0, 2, 8, 1}, body: "body\r\n",
	}, {
		name: "empty input",
		msg:  "",
		want: span{0, 0, 0, 0}, body: "",
	}, {
		name: "header without empty line",
		msg:  "Subject: x\r\nFrom: a@b",
		want: span{0, 21, 21, 0}, body: "",
	}, {
		name:    "multipart child excludes the CRLF before the delimiter",
		msg:     "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nHi\r\n--b--\r\n",
		section: []int{1},
		want:    span{50, 52, 54, 0}, body: "Hi",
	}, {
		name:    "child body keeps its own last line break",
		msg:     "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nHi\r\n\r\n--b--\r\n",
		section: []int{1},
		want:    span{50, 52, 56, 1}, body: "Hi\r\n",
	}, {
		name:    "empty child",
		msg:     "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n--b--\r\n",
		section: []int{1},
		want:    span{50, 52, 52, 0}, body: "",
	}, {
		name:    "multipart body runs to the end, epilogue included",
		msg:     "Content-Type: multipart/mixed; boundary=b\r\n\r\npre\r\n--b\r\n\r\nHi\r\n--b--\r\nepilogue\r\n",
		section: nil,
		want:    span{0, 45, 78, 6}, body: "pre\r\n--b\r\n\r\nHi\r\n--b--\r\nepilogue\r\n",
	}, {
		name:    "nested multipart ends before the outer delimiter",
		msg:     "Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\n\r\nA\r\n--i--\r\nignored\r\n--o--\r\n",
		section: []int{1},
		want:    span{50, 95, 119, 4}, body: "--i\r\n\r\nA\r\n--i--\r\nignored",
	}, {
		name:    "message/rfc822 part",
		msg:     "Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nbody\r\n--o--\r\n",
		section: []int{1},
		want:    span{50, 82, 101, 2}, body: "Subject: in\r\n\r\nbody",
	}, {
		name:    "the encapsulated message",
		msg:     "Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nbody\r\n--o--\r\n",
		section: []int{1, 1},
		want:    span{82, 97, 101, 0}, body: "body",
	}, {
		name:    "bare LF",
		msg:     "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nHi\n\n--b--\n",
		section: []int{1},
		want:    span{47, 48, 51, 1}, body: "Hi\n",
	}, {
		name:    "delimiter at end of input without line break",
		msg:     "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nHi\r\n--b--",
		section: []int{1},
		want:    span{50, 52, 54, 0}, body: "Hi",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := []byte(tt.msg)
			root, err := Parse(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, raw, root)
			p, err := root.Section(tt.section)
			if err != nil {
				t.Fatalf("Section(%v): %v\n%s", tt.section, err, dumpTree(root))
			}
			if got := spanOf(p); got != tt.want {
				t.Errorf("span = %+v, want %+v\n%s", got, tt.want, dumpTree(root))
			}
			if got := string(raw[p.BodyStart:p.End]); got != tt.body {
				t.Errorf("body = %q, want %q", got, tt.body)
			}
		})
	}
}

// TestParseLongLines checks lines longer than the read buffer: the CRLF
// before a delimiter split across reads, and delimiters after long lines.
func TestParseLongLines(t *testing.T) {
	for _, n := range []int{readBufSize - 60, readBufSize - 1, readBufSize, readBufSize + 1, 3*readBufSize + 7} {
		long := strings.Repeat("x", n)
		msg := "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n" + long + "\r\n--b\r\n\r\n" + long + "\r\n--b--\r\n"
		root, err := Parse(strings.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		checkInvariants(t, []byte(msg), root)
		if len(root.Parts) != 2 {
			t.Fatalf("line of %d: %d parts, want 2", n, len(root.Parts))
		}
		for i, p := range root.Parts {
			if got := msg[p.BodyStart:p.End]; got != long {
				t.Errorf("line of %d: part %d body has %d bytes, want %d", n, i+1, len(got), n)
			}
		}
	}
}

// TestParseLimits checks that hostile nesting, part counts and header
// sizes stay within the limits, and what the tree looks like beyond them.
func TestParseLimits(t *testing.T) {
	t.Run("depth", func(t *testing.T) {
		var b strings.Builder
		const levels = 50
		for i := range levels {
			b.WriteString("Content-Type: multipart/mixed; boundary=\"b" + strings.Repeat("x", i) + "\"\r\n\r\n--b" + strings.Repeat("x", i) + "\r\n")
		}
		b.WriteString("\r\ndeepest\r\n")
		raw := []byte(b.String())
		root, err := Parser{MaxDepth: 10}.Parse(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		checkInvariants(t, raw, root)
		depth, p := 0, root
		for len(p.Parts) > 0 {
			p, depth = &p.Parts[0], depth+1
		}
		if depth != 10 || p.MediaType != "text" {
			t.Errorf("deepest part at depth %d is %s/%s, want depth 10 text/plain", depth, p.MediaType, p.MediaSubtype)
		}
	})
	t.Run("message depth", func(t *testing.T) {
		raw := []byte(strings.Repeat("Content-Type: message/rfc822\r\n\r\n", 500) + "body\r\n")
		root, err := Parse(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		checkInvariants(t, raw, root)
	})
	t.Run("parts", func(t *testing.T) {
		raw := []byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n" + strings.Repeat("--b\r\n\r\nx\r\n", 100) + "--b--\r\n")
		root, err := Parser{MaxParts: 10}.Parse(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		checkInvariants(t, raw, root)
		if len(root.Parts) != 9 {
			t.Errorf("%d parts, want 9 (10 with the root)", len(root.Parts))
		}
	})
	t.Run("header", func(t *testing.T) {
		raw := []byte("Subject: x\r\n" + strings.Repeat("X-Long: 0123456789\r\n", 100) + "\r\nbody\r\n")
		root, err := Parser{MaxHeaderBytes: 200}.Parse(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		checkInvariants(t, raw, root)
		if root.BodyStart != 192 || root.Envelope.Subject != "x" {
			t.Errorf("body starts at %d with subject %q, want 192 and x", root.BodyStart, root.Envelope.Subject)
		}
	})
}

// TestParseLargeMessage parses a 20 MB message without holding it, and
// checks that the parser's memory does not grow with the message.
func TestParseLargeMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("large message")
	}
	const size = 20 << 20
	line := "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\r\n"
	head := "Subject: big\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	tail := "--b--\r\n"
	n := (size - len(head) - len(tail)) / len(line)
	body := io.LimitReader(&repeatReader{s: line}, int64(n*len(line)))
	r := io.MultiReader(strings.NewReader(head), body, strings.NewReader(tail))

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	root, err := Parse(r)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	total := int64(len(head) + n*len(line) + len(tail))
	if root.End != total || len(root.Parts) != 2 || root.Parts[1].Lines != int64(n-1) {
		t.Fatalf("tree does not cover the message:\n%s", dumpTree(root))
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("parsing %d bytes allocated %d bytes", total, alloc)
	}
}

// repeatReader reads s over and over.
type repeatReader struct {
	s   string
	off int // offset in s of the next byte
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.s[r.off:])
		n += c
		r.off = (r.off + c) % len(r.s)
	}
	return n, nil
}

// TestParseReadError checks that the reader's errors, and only those,
// fail Parse.
func TestParseReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	for _, prefix := range []string{"", "Subject: x\r\n", "Subject: x\r\n\r\nbody", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"} {
		r := io.MultiReader(strings.NewReader(prefix), errReader{boom})
		if _, err := Parse(r); !errors.Is(err, boom) {
			t.Errorf("after %q: err = %v, want %v", prefix, err, boom)
		}
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// TestHostileInputs runs inputs built to make a careless parser take
// quadratic time. Each must finish in about linear time: the bound is
// loose, for slow and loaded machines, but far below what quadratic work
// on these sizes would take.
func TestHostileInputs(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	const n = 100000
	nested := func() string {
		var b strings.Builder
		prefix := strings.Repeat("=", 200)
		for i := range DefaultMaxDepth {
			fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"%s%03d\"\r\n\r\n--%s%03d\r\n", prefix, i, prefix, i)
		}
		b.WriteString("\r\n")
		for range n / 10 {
			b.WriteString("--" + prefix + "x\r\n")
		}
		return b.String()
	}
	tests := []struct {
		name string
		run  func()
	}{
		{"encoded-word starts without ends", func() { DecodeHeaderValue(strings.Repeat("=?a?q?x", n)) }},
		{"encoded-word starts, one end", func() { DecodeHeaderValue(strings.Repeat("=?a?q?x ", n) + "?=") }},
		{"adjacent encoded words", func() { DecodeHeaderValue(strings.Repeat("=?utf-8?q?a?= ", n)) }},
		{"adjacent words, unknown charset", func() { DecodeHeaderValue(strings.Repeat("=?x-no?q?a?= ", n)) }},
		{"angle brackets", func() { ParseAddressList(strings.Repeat("<", n)) }},
		{"addresses", func() { ParseAddressList(strings.Repeat("a <b@c> ", n)) }},
		{"comments", func() { ParseAddressList(strings.Repeat("(", n) + strings.Repeat(")", n)) }},
		{"parameters", func() { parseParams(strings.Repeat("; a*1*=%41", n)) }},
		{"semicolons", func() { parseParams(strings.Repeat(";", n)) }},
		{"quoted-pairs", func() { parseParams("; a=\"" + strings.Repeat("\\\"", n)) }},
		{"nested multiparts with long similar boundaries", func() {
			Parse(strings.NewReader(nested()))
		}},
		{"one huge folded field", func() {
			Parse(strings.NewReader("Subject: x" + strings.Repeat("\r\n =?utf-8?q?a?=", n) + "\r\n\r\n"))
		}},
		{"many header lines without colon", func() {
			Parse(strings.NewReader(strings.Repeat("junk\r\n", n) + "\r\n"))
		}},
		{"many empty body parts", func() {
			Parse(strings.NewReader("Content-Type: multipart/mixed; boundary=b\r\n\r\n" + strings.Repeat("--b\r\n", n)))
		}},
	}
	for _, tt := range tests {
		start := time.Now()
		tt.run()
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: took %v", tt.name, d)
		}
	}
}
