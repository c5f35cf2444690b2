// Package mutf7 converts mailbox names between UTF-8 and modified UTF-7
// (RFC 3501 5.1.3), the spelling IMAP4rev1 clients and servers without
// UTF8=ACCEPT use on the wire: printable ASCII stands for itself, "&" is
// "&-", and any other run of characters is UTF-16BE in base64 (with ","
// for "/") between "&" and "-".
package mutf7

import (
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,"

// ErrInvalid is Decode's answer to a string a correct encoder would not
// produce.
var ErrInvalid = errors.New("invalid modified UTF-7")

// Encode converts a UTF-8 name to modified UTF-7. Invalid UTF-8 bytes are
// encoded as U+FFFD.
func Encode(s string) string {
	// Fast path: most names are plain ASCII without "&".
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '&' {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	var b strings.Builder
	var run []uint16 // UTF-16 units waiting to be base64-encoded
	flush := func() {
		if len(run) == 0 {
			return
		}
		b.WriteByte('&')
		var acc uint32
		bits := 0
		for _, u := range run {
			acc = acc<<16 | uint32(u)
			bits += 16
			for bits >= 6 {
				bits -= 6
				b.WriteByte(alphabet[(acc>>bits)&0x3f])
			}
		}
		if bits > 0 {
			b.WriteByte(alphabet[(acc<<(6-bits))&0x3f])
		}
		b.WriteByte('-')
		run = run[:0]
	}
	for _, r := range s {
		switch {
		case r == '&':
			flush()
			b.WriteString("&-")
		case r >= 0x20 && r <= 0x7e:
			flush()
			b.WriteRune(r)
		default:
			run = utf16.AppendRune(run, r)
		}
	}
	flush()
	return b.String()
}

// Decode converts a modified UTF-7 name to UTF-8. It refuses anything
// that a correct encoder would not produce: raw non-ASCII bytes, unended
// or empty-but-not-"&-" shifts, encoded printable ASCII, adjacent encoded
// runs, bad padding bits and unpaired surrogates, so that every name has
// exactly one spelling.
func Decode(s string) (string, error) {
	if !strings.Contains(s, "&") {
		for i := 0; i < len(s); i++ {
			if s[i] < 0x20 || s[i] > 0x7e {
				return "", ErrInvalid
			}
		}
		return s, nil
	}
	var b strings.Builder
	afterRun := false // the previous token was an encoded run
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return "", ErrInvalid
		}
		if c != '&' {
			b.WriteByte(c)
			afterRun = false
			continue
		}
		end := strings.IndexByte(s[i+1:], '-')
		if end < 0 {
			return "", ErrInvalid
		}
		enc := s[i+1 : i+1+end]
		i += end + 1
		if enc == "" {
			b.WriteByte('&')
			afterRun = false
			continue
		}
		if afterRun {
			return "", ErrInvalid // RFC 3501 5.1.3: runs are not split
		}
		var units []uint16
		var acc uint32
		bits := 0
		for j := 0; j < len(enc); j++ {
			v := strings.IndexByte(alphabet, enc[j])
			if v < 0 {
				return "", ErrInvalid
			}
			acc = acc<<6 | uint32(v)
			bits += 6
			if bits >= 16 {
				bits -= 16
				units = append(units, uint16(acc>>bits))
				acc &= 1<<bits - 1
			}
		}
		if bits >= 6 || acc != 0 || len(units) == 0 {
			return "", ErrInvalid
		}
		for k := 0; k < len(units); k++ {
			u := units[k]
			var r rune
			switch {
			case utf16.IsSurrogate(rune(u)):
				if u >= 0xdc00 || k+1 >= len(units) {
					return "", ErrInvalid
				}
				r = utf16.DecodeRune(rune(u), rune(units[k+1]))
				if r == utf8.RuneError {
					return "", ErrInvalid
				}
				k++
			default:
				r = rune(u)
			}
			if r >= 0x20 && r <= 0x7e {
				return "", ErrInvalid // printable ASCII must stand for itself
			}
			b.WriteRune(r)
		}
		afterRun = true
	}
	return b.String(), nil
}
