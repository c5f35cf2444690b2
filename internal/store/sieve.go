package store

import (
	"context"
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

// ReplyTracker is a Session that remembers the automatic replies sent
// for its account (Sieve vacation, RFC 5230 4.2: one reply per sender
// and handle per period), durably, in the account's data, so that a
// restart, `buzon deliver` beside the server and every node of a shared
// store agree on what was sent. Both backends implement it; delivery
// sends no automatic reply through a Session without it.
type ReplyTracker interface {
	// ReplyDue records that a reply keyed by key (the caller's digest of
	// the sender and the handle) is sent at now, and reports true, when
	// no reply of that key was recorded within period before now; else
	// it records nothing and reports false. Two calls at once with one
	// key, from any processes, get true once. Records older than their
	// period are forgotten as later calls go.
	ReplyDue(ctx context.Context, key string, now time.Time, period time.Duration) (bool, error)
}
