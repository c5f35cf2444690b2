package imapserver

import (
	"testing"
	"unicode/utf8"
)

func TestUTF7(t *testing.T) {
	tests := []struct{ utf8, utf7 string }{
		{"INBOX", "INBOX"},
		{"Entwürfe", "Entw&APw-rfe"},
		{"Tom & Jerry", "Tom &- Jerry"},
		{"~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
		{"Résumé", "R&AOk-sum&AOk-"},
		{"😀", "&2D3eAA-"},
		{"&", "&-"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := encodeUTF7(tt.utf8); got != tt.utf7 {
			t.Errorf("encode(%q) = %q, want %q", tt.utf8, got, tt.utf7)
		}
		got, err := decodeUTF7(tt.utf7)
		if err != nil || got != tt.utf8 {
			t.Errorf("decode(%q) = %q, %v; want %q", tt.utf7, got, err, tt.utf8)
		}
	}
	for _, bad := range []string{
		"&",           // unended
		"&AOk",        // unended
		"&AGE-",       // "a" encoded
		"&AOk-&AOk-",  // split run
		"&AO-",        // bad padding
		"&2D0-",       // lone surrogate
		"caf\xc3\xa9", // raw 8-bit
		"&A!k-",       // not base64
		"&AOkA-",      // leftover bits
	} {
		if got, err := decodeUTF7(bad); err == nil {
			t.Errorf("decode(%q) = %q, want an error", bad, got)
		}
	}
}

// FuzzUTF7 checks that decoding accepts only what encoding produces, and
// that encoding round-trips.
func FuzzUTF7(f *testing.F) {
	for _, s := range []string{"INBOX", "Entw&APw-rfe", "&-", "&2D3eAA-", "R&AOk-sum&AOk-/&ZeVnLIqe-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if dec, err := decodeUTF7(s); err == nil {
			if enc := encodeUTF7(dec); enc != s {
				t.Errorf("decode(%q) = %q, which encodes to %q", s, dec, enc)
			}
		}
		if utf8.ValidString(s) {
			enc := encodeUTF7(s)
			dec, err := decodeUTF7(enc)
			if err != nil || dec != s {
				t.Errorf("encode(%q) = %q, which decodes to %q, %v", s, enc, dec, err)
			}
		}
	})
}
