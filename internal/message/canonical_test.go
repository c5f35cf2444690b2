package message

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// canonicalBoth converts in with CanonicalText read at once and byte by
// byte, which must agree.
func canonicalBoth(t *testing.T, in string) string {
	t.Helper()
	whole, err := io.ReadAll(CanonicalText(strings.NewReader(in)))
	if err != nil {
		t.Fatal(err)
	}
	bytewise, err := io.ReadAll(iotest.OneByteReader(CanonicalText(iotest.OneByteReader(strings.NewReader(in)))))
	if err != nil {
		t.Fatal(err)
	}
	if string(whole) != string(bytewise) {
		t.Errorf("%q: converting at once gives %q, byte by byte %q", in, whole, bytewise)
	}
	return string(whole)
}

func TestCanonicalText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"no break", "no break"},
		{"line1\nline2\n", "line1\r\nline2\r\n"},
		{"line1\r\nline2\r\n", "line1\r\nline2\r\n"},
		{"old\rmac\r", "old\r\nmac\r\n"},
		{"\n\n", "\r\n\r\n"},
		{"\r\r\n", "\r\n"},   // CR CR LF: one break
		{"\r\r\r\n", "\r\n"}, // any run of CRs before an LF: one break, as LMTP's reader ends lines
		{"Subject: x\r\r\r\nFrom: y\r\n", "Subject: x\r\nFrom: y\r\n"},
		{"Subject: x\r\r\nFrom: y\r\r\n", "Subject: x\r\nFrom: y\r\n"}, // so a header does not end early
		{"a\r\rb\r\r", "a\r\n\r\nb\r\n\r\n"},                           // CRs without an LF: a break each
		{"\n\r", "\r\n\r\n"},                                           // LF CR is two breaks, not one
		{"a\r\n\nb", "a\r\n\r\nb"},                                     // CRLF, then a bare LF
		{"nul\x00\n", "nul\x00\r\n"},
		{strings.Repeat("x", chunkSize-1) + "\r\n", strings.Repeat("x", chunkSize-1) + "\r\n"}, // CRLF across reads
	}
	for _, tt := range tests {
		if got := canonicalBoth(t, tt.in); got != tt.want {
			t.Errorf("CanonicalText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzCanonicalText: however the input is split into reads, the output
// has no CR or LF outside a CRLF, and is the input with its line breaks
// made CRLF as LineEnds says.
func FuzzCanonicalText(f *testing.F) {
	for _, s := range []string{"a\nb\r\nc\rd", "\r\r\n\n\r", "plain"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := canonicalBoth(t, in)
		for i := 0; i < len(out); i++ {
			switch out[i] {
			case '\r':
				if i+1 == len(out) || out[i+1] != '\n' {
					t.Fatalf("%q: bare CR at %d of %q", in, i, out)
				}
				i++
			case '\n':
				t.Fatalf("%q: bare LF at %d of %q", in, i, out)
			}
		}
		want := canonical(in)
		if out != want {
			t.Fatalf("%q: got %q, want %q", in, out, want)
		}
	})
}
