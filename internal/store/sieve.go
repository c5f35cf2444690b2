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

// ReplyTracker is a Session that remembers the automatic replies and
// forwards sent for its account, durably, in the account's data, so that
// a restart, `buzon deliver` beside the server and every node of a
// shared store agree on what was sent: Sieve vacation (RFC 5230 4.2: one
// reply per sender and handle per period) and redirect (a message
// forwarded to an address once per period, however often it arrives).
// Keys are the caller's digests, one space for both. Both backends
// implement it; delivery sends no automatic reply through a Session
// without it.
type ReplyTracker interface {
	// ReplyDue records that a reply keyed by key (the caller's digest of
	// the sender and the handle) is sent at now, and reports true, when
	// no reply of that key was recorded within period before now; else
	// it records nothing and reports false. Two calls at once with one
	// key, from any processes, get true once. Records older than their
	// period are forgotten as later calls go. It records before the
	// sending, for what is better not sent than sent twice.
	ReplyDue(ctx context.Context, key string, now time.Time, period time.Duration) (bool, error)

	// ReplyRecorded reports whether a reply keyed by key was recorded,
	// by ReplyDue or RecordReply, within period before now. It records
	// nothing: with RecordReply after the sending, it serves what must
	// be sent once but never lost, which a record made before a sending
	// that then failed would lose.
	ReplyRecorded(ctx context.Context, key string, now time.Time, period time.Duration) (bool, error)

	// RecordReply records that a reply keyed by key was sent at now, to
	// be remembered for period at least, in place of any record of it.
	RecordReply(ctx context.Context, key string, now time.Time, period time.Duration) error

	// Replies lists the account's records, forgotten or not yet, in no
	// order, for `buzon migrate-store` (ReplyImporter).
	Replies(ctx context.Context) ([]Reply, error)
}

// Reply is one record of a ReplyTracker.
type Reply struct {
	// Key is the caller's key.
	Key string
	// Sent is when the last reply of the key went.
	Sent time.Time
	// Expires is when the record's period ends, after which it is
	// forgotten.
	Expires time.Time
}

// ReplyImporter is an Importer that takes in an account's records of
// replies (ReplyTracker.Replies), so that a move of the store sends no
// vacation reply and forwards no message a second time. Find it by type
// assertion.
type ReplyImporter interface {
	// ImportReplies gives an account being imported the records
	// given, in place of any an interrupted import gave it.
	ImportReplies(ctx context.Context, accountID int64, replies []Reply) error
}
