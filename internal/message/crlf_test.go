package message

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
)

// canonical is the rule spelt byte by byte: CRLF, CRs ended by an LF
// (CR CR LF, CR CR CR LF), a bare CR and a bare LF are each one CRLF.
func canonical(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\r':
			if j := i + len(s[i:]) - len(strings.TrimLeft(s[i:], "\r")); j < len(s) && s[j] == '\n' {
				i = j
			}
		case s[i] != '\n':
			b.WriteByte(s[i])
			continue
		}
		b.WriteString("\r\n")
	}
	return b.String()
}

// FuzzLineEnds feeds LineEnds the input in pieces of any size: Convert
// gives the rule's result, and Bare finds a bare line end exactly when
// there is one to convert.
func FuzzLineEnds(f *testing.F) {
	for _, s := range []string{"", "a\r\nb\r\n", "a\nb\rc\r\n", "\r", "\n", "\r\r\n\n", "x\r\n\r", "\r\n\r\n", "a\r\r\r\nb\r\r", "a\r\r\r\r\n", "\r\r\rx"} {
		f.Add(s, uint8(0))
		f.Add(s, uint8(1))
	}
	f.Fuzz(func(t *testing.T, in string, piece uint8) {
		n := int(piece)%16 + 1
		want := canonical(in)
		var conv, check LineEnds
		var got []byte
		bare := false
		for rest := []byte(in); len(rest) > 0; {
			k := min(n, len(rest))
			got = append(got, conv.Convert(rest[:k])...)
			bare = check.Bare(rest[:k]) || bare
			rest = rest[k:]
		}
		got = append(got, conv.End()...)
		bare = bare || check.BareAtEnd()
		if string(got) != want {
			t.Errorf("Convert(%q) in pieces of %d = %q, want %q", in, n, got, want)
		}
		if bare != (want != in) {
			t.Errorf("Bare(%q) in pieces of %d = %v, want %v", in, n, bare, want != in)
		}
	})
}

// TestConvertUncopied: a chunk in CRLF form already comes back as it is,
// also when it begins with the LF of a CR that ended the last one.
func TestConvertUncopied(t *testing.T) {
	var l LineEnds
	first := []byte("a\r\nb\r")
	if got := l.Convert(first); string(got) != "a\r\nb\r\n" {
		t.Fatalf("Convert(%q) = %q", first, got)
	}
	second := []byte("\nc\r\nd")
	got := l.Convert(second)
	if string(got) != "c\r\nd" || &got[0] != &second[1] {
		t.Errorf("Convert(%q) = %q, copied: %v", second, got, &got[0] != &second[1])
	}
}

func ExampleLineEnds() {
	var conv LineEnds
	var out bytes.Buffer
	for _, chunk := range []string{"unix\nmac\r", "\nwindows\r\n"} {
		out.Write(conv.Convert([]byte(chunk)))
	}
	fmt.Printf("%q\n", out.String())

	// A CRLF split between chunks is not bare.
	var check LineEnds
	bare := check.Bare([]byte("a\r")) || check.Bare([]byte("\nb\r\n")) || check.BareAtEnd()
	fmt.Println(bare)
	// Output:
	// "unix\r\nmac\r\nwindows\r\n"
	// false
}

// BenchmarkCanonicalText converts 1 MiB of text already in CRLF form, and
// the same with LF line breaks.
func BenchmarkCanonicalText(b *testing.B) {
	for _, tc := range []struct{ name, eol string }{{"crlf", "\r\n"}, {"lf", "\n"}} {
		text := bytes.Repeat([]byte("a line of text in a message body, about 70 octets long, give or take"+tc.eol), 1<<20/70)
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for range b.N {
				if _, err := io.Copy(io.Discard, CanonicalText(bytes.NewReader(text))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
