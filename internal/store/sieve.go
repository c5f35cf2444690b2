package store

import (
	"fmt"
	"time"
	"unicode/utf8"
)

// SieveScript is one of an account's Sieve filters (RFC 5228), as
// ManageSieve (RFC 5804) and `buzon sieve` keep them. At most one script
// of an account is active: the one delivery runs.
type SieveScript struct {
	// Name is the script's name, checked by ValidSieveScriptName.
	Name string
	// Content is the script's text; nil when listed.
	Content []byte
	// Size is len(Content) in octets, set when listed too.
	Size int64
	// Active says whether delivery runs this script.
	Active bool
	// Modified is when the script was last put or renamed.
	Modified time.Time
}

// MaxSieveScriptNameLen is the longest script name in characters: RFC
// 5804 1.6 asks servers to allow at least 128, and no client needs more.
const MaxSieveScriptNameLen = 128

// ValidSieveScriptName checks a script name as RFC 5804 1.6 asks: valid
// UTF-8 of 1 to 128 characters, with no control characters (C0, DEL, C1)
// and no line or paragraph separators (U+2028, U+2029).
func ValidSieveScriptName(name string) error {
	bad := func(why string) error { return fmt.Errorf("%w: sieve script name %s", ErrInvalidName, why) }
	switch n := utf8.RuneCountInString(name); {
	case name == "":
		return bad("is empty")
	case !utf8.ValidString(name):
		return bad("is not UTF-8")
	case n > MaxSieveScriptNameLen:
		return bad(fmt.Sprintf("is longer than %d characters", MaxSieveScriptNameLen))
	}
	for _, r := range name {
		if r < 0x20 || (r >= 0x7f && r < 0xa0) || r == 0x2028 || r == 0x2029 {
			return bad(fmt.Sprintf("contains %q", r))
		}
	}
	return nil
}
