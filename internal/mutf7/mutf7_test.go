package mutf7

import (
	"testing"
	"unicode/utf8"
)

func TestRoundTrip(t *testing.T) {
	tests := []struct{ utf8, utf7 string }{
		{"INBOX", "INBOX"},
		{"[Gmail]/All Mail", "[Gmail]/All Mail"},
		{"Entwürfe", "Entw&APw-rfe"},
		{"Tom & Jerry", "Tom &- Jerry"},
		{"~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
		{"Résumé", "R&AOk-sum&AOk-"},
		{"😀", "&2D3eAA-"},
		{"&", "&-"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Encode(tt.utf8); got != tt.utf7 {
			t.Errorf("encode(%q) = %q, want %q", tt.utf8, got, tt.utf7)
		}
		got, err := Decode(tt.utf7)
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
		if got, err := Decode(bad); err == nil {
			t.Errorf("decode(%q) = %q, want an error", bad, got)
		}
	}
}

// FuzzDecode checks that decoding accepts only what encoding produces, and
// that encoding round-trips.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{"INBOX", "Entw&APw-rfe", "&-", "&2D3eAA-", "R&AOk-sum&AOk-/&ZeVnLIqe-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if dec, err := Decode(s); err == nil {
			if enc := Encode(dec); enc != s {
				t.Errorf("decode(%q) = %q, which encodes to %q", s, dec, enc)
			}
		}
		if utf8.ValidString(s) {
			enc := Encode(s)
			dec, err := Decode(enc)
			if err != nil || dec != s {
				t.Errorf("encode(%q) = %q, which decodes to %q, %v", s, enc, dec, err)
			}
		}
	})
}
