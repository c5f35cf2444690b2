package message

import (
	"encoding/base64"
	"io"
	"math/rand/v2"
	"mime/quotedprintable"
	"strings"
	"testing"
	"testing/iotest"
)

// readAll reads all of DecodeTransfer's output, once in one go and once
// a byte at a time, and checks that both agree: the decoders keep state
// across reads.
func decodeBoth(t *testing.T, enc, in string) string {
	t.Helper()
	whole, err := io.ReadAll(DecodeTransfer(enc, strings.NewReader(in)))
	if err != nil {
		t.Fatal(err)
	}
	bytewise, err := io.ReadAll(iotest.OneByteReader(DecodeTransfer(enc, iotest.OneByteReader(strings.NewReader(in)))))
	if err != nil {
		t.Fatal(err)
	}
	if string(whole) != string(bytewise) {
		t.Errorf("%s %q: decoding at once gives %q, byte by byte %q", enc, in, whole, bytewise)
	}
	return string(whole)
}

func TestDecodeBase64(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"SGVsbG8sIHdvcmxkIQ==", "Hello, world!"},
		{"SGVs\r\nbG8s\r\nIHdv\r\ncmxk\r\nIQ==\r\n", "Hello, world!"},
		{"SGVsbG8", "Hello"},                       // missing padding
		{"SGVsbG8=", "Hello"},                      // short padding
		{"SGVs bG8s*IH#dvcmxkIQ", "Hello, world!"}, // junk skipped
		{"QQ==QkM=", "ABC"},                        // concatenated blocks
		{"QUJD=", "ABC"},                           // stray padding
		{"QUJDR", "ABC"},                           // a lone extra character
		{"=====", ""},
	}
	for _, tt := range tests {
		for _, enc := range []string{"base64", " BASE64 "} {
			if got := decodeBoth(t, enc, tt.in); got != tt.want {
				t.Errorf("base64 %q = %q, want %q", tt.in, got, tt.want)
			}
		}
	}
}

func TestDecodeQuotedPrintable(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"Caf=C3=A9", "Café"},
		{"caf=c3=a9", "café"},                                   // lower-case hex
		{"soft=\r\nbreak", "softbreak"},                         // RFC 2045 6.7 rule 5
		{"soft=  \r\nbreak", "softbreak"},                       // padding after the =
		{"soft=\nbreak", "softbreak"},                           // bare LF
		{"trailing   \r\nspace\t\r\n", "trailing\r\nspace\r\n"}, // rule 3
		{"inner  space", "inner  space"},
		{"a = b", "a = b"},        // not an escape: kept
		{"=ZZ=4", "=ZZ=4"},        // bad hex, cut escape
		{"100%=3D=\r\n", "100%="}, // soft break at the end
		{"end=", "end"},           // "=" at the end
		{"a=\rb", "a=\rb"},        // CR without LF
		{"x\ry", "x\ry"},
		{"a=4", "a=4"},
		{"line\r\n", "line\r\n"},
		{"=\r\n=\r\n", ""},
		{"tab\t=\r\n", "tab\t"},
	}
	for _, tt := range tests {
		if got := decodeBoth(t, "Quoted-Printable", tt.in); got != tt.want {
			t.Errorf("quoted-printable %q = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestDecodeRoundTrip decodes what the standard encoders make of random
// data.
func TestDecodeRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 100 {
		data := make([]byte, r.IntN(10000))
		for i := range data {
			data[i] = byte(r.IntN(256))
		}
		enc := base64.StdEncoding.EncodeToString(data)
		var lines strings.Builder
		for len(enc) > 76 {
			lines.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		lines.WriteString(enc)
		if got := decodeBoth(t, "base64", lines.String()); got != string(data) {
			t.Fatalf("base64 round trip of %d bytes differs", len(data))
		}

		var qp strings.Builder
		w := quotedprintable.NewWriter(&qp)
		w.Binary = true
		w.Write(data)
		w.Close()
		if got := decodeBoth(t, "quoted-printable", qp.String()); got != string(data) {
			t.Fatalf("quoted-printable round trip of %d bytes differs", len(data))
		}
	}
}

func TestDecodeTransferIdentity(t *testing.T) {
	for _, enc := range []string{"", "7bit", "8BIT", "binary", "x-uuencode", "Base 64"} {
		const in = "a=3D\r\nSGVsbG8=\r\n"
		if got := decodeBoth(t, enc, in); got != in {
			t.Errorf("%q changed %q into %q", enc, in, got)
		}
	}
	for enc, want := range map[string]bool{"": true, "7BIT": true, "quoted-printable": true, "Base64": true, "x-uuencode": false, "base 64": false} {
		if got := KnownEncoding(enc); got != want {
			t.Errorf("KnownEncoding(%q) = %v, want %v", enc, got, want)
		}
	}
}

func TestDecodeHeaderValue(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"=?UTF-8?Q?Caf=C3=A9?=", "Café"},
		{"=?utf-8?q?Caf=C3=A9_au_lait?=", "Café au lait"},
		{"=?ISO-8859-1?Q?Andr=E9?= Pirard", "André Pirard"},
		{"=?UTF-8?B?w6k=?=", "é"},
		{"=?UTF-8?B?w6k?=", "é"},                             // missing padding
		{"=?utf-8?q?a?= =?utf-8?q?b?=", "ab"},                // RFC 2047 6.2
		{"=?utf-8?q?a?=\r\n =?utf-8?q?b?=", "ab"},            // folded
		{"=?utf-8?q?a?= b =?utf-8?q?c?=", "a b c"},           // text between words stays
		{"=?utf-8?b?4oI=?= =?utf-8?b?rA==?=", "€"},           // a character split across words
		{"=?iso-8859-1?q?a?= =?utf-8?q?=C3=A9?=", "aé"},      // charsets change
		{"=?windows-1252?q?=80?=", "€"},                      // via go-message's charsets
		{"=?koi8-r?b?8NLJ18XU?=", "Привет"},                  // likewise
		{"=?UTF-8*en?Q?hello?=", "hello"},                    // RFC 2231 language
		{"=?x-unknown?q?abc?= ok", "=?x-unknown?q?abc?= ok"}, // unknown charset: kept
		{"=?utf-8?x?abc?=", "=?utf-8?x?abc?="},               // unknown encoding: kept
		{"=?utf-8?b?!!?=", "=?utf-8?b?!!?="},                 // not base64: kept
		{"=?utf-8?q?a b?=", "=?utf-8?q?a b?="},               // space inside: not a word
		{"=?utf-8?q?unterminated", "=?utf-8?q?unterminated"},
		{"=??q?x?=", "=??q?x?="},
		{"a=?utf-8?q?b?=c", "abc"}, // inside a word, as real mail needs
		{"=?utf-8?q?=ZZ?=", "=ZZ"}, // bad Q escape kept
		{"caf\xe9", "café"},        // raw 8-bit: StrayRune
		{"don\x92t \x805", "don’t €5"},
		{"\x81\x9d", "\u0081\u009d"}, // not Windows-1252: ISO-8859-1's
		{"caf\xc3\xa9", "café"},      // raw UTF-8
		{"=?utf-8?q?=FF?=", "ÿ"},     // invalid UTF-8 from a word
		{"=?", "=?"},
	}
	for _, tt := range tests {
		if got := DecodeHeaderValue(tt.in); got != tt.want {
			t.Errorf("DecodeHeaderValue(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTextReader(t *testing.T) {
	tests := []struct {
		name string
		part Part
		body string
		want string
	}{
		{"qp latin-1", Part{Encoding: "QUOTED-PRINTABLE", Params: []Param{{"charset", "ISO-8859-1"}}}, "Caf=E9", "Café"},
		{"base64 utf-8", Part{Encoding: "BASE64", Params: []Param{{"charset", "utf-8"}}}, "Q2Fmw6k=", "Café"},
		{"8bit windows-1251", Part{Encoding: "8BIT", Params: []Param{{"charset", "windows-1251"}}}, "\xcf\xf0\xe8\xe2\xe5\xf2", "Привет"},
		{"no charset", Part{Encoding: "7BIT"}, "plain", "plain"},
		{"unknown charset", Part{Encoding: "7BIT", Params: []Param{{"charset", "x-nope"}}}, "raw\xff", "raw\xff"},
		{"mislabelled us-ascii", Part{Encoding: "8BIT", Params: []Param{{"charset", "us-ascii"}}}, "Caf\xc3\xa9", "Café"},
	}
	for _, tt := range tests {
		got, err := io.ReadAll(tt.part.TextReader(strings.NewReader(tt.body)))
		if err != nil || string(got) != tt.want {
			t.Errorf("%s: got %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}
