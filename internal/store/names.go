package store

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// HierarchyDelimiter separates the levels of a mailbox name.
const HierarchyDelimiter = '/'

// Hard limits on names, whatever the configuration says.
const (
	MaxMailboxNameLen = 1000 // bytes, whole name
	MaxMailboxPartLen = 255  // bytes, one level
	MaxAccountNameLen = 254  // bytes, as an RFC 5321 path
)

// CanonicalMailboxName returns name with INBOX, whatever its case, spelled
// "INBOX", including as the first level of a longer name (RFC 9051 5.1).
func CanonicalMailboxName(name string) string {
	if len(name) >= 5 && strings.EqualFold(name[:5], "INBOX") &&
		(len(name) == 5 || name[5] == HierarchyDelimiter) {
		return "INBOX" + name[5:]
	}
	return name
}

// ValidMailboxName checks a canonical mailbox name: valid UTF-8, no control
// characters, no IMAP wildcards, no empty level, not starting with a
// namespace prefix character, within the length limits. Names are data, not
// paths, but refusing these keeps every client's view unambiguous.
func ValidMailboxName(name string) error {
	bad := func(why string) error { return fmt.Errorf("%w: mailbox name %s", ErrInvalidName, why) }
	switch {
	case name == "":
		return bad("is empty")
	case len(name) > MaxMailboxNameLen:
		return bad("is too long")
	case !utf8.ValidString(name):
		return bad("is not UTF-8")
	case name[0] == '#' || name[0] == '~':
		return bad("starts with a namespace prefix")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '*' || r == '%' || r == utf8.RuneError {
			return bad(fmt.Sprintf("contains %q", r))
		}
	}
	for _, part := range strings.Split(name, string(HierarchyDelimiter)) {
		if part == "" {
			return bad("has an empty level")
		}
		if len(part) > MaxMailboxPartLen {
			return bad("has a level that is too long")
		}
		if strings.TrimSpace(part) != part {
			return bad("has a level with leading or trailing spaces")
		}
	}
	return nil
}

// CanonicalAccountName returns an account name in the form stored: trimmed
// and lower-cased, so logins are case-insensitive.
func CanonicalAccountName(name string) string {
	return strings.ToLower(strings.TrimSpace(name))
}

// ValidAccountName checks a canonical account name: an address with a
// non-empty local part and domain, printable, within length limits.
func ValidAccountName(name string) error {
	at := strings.LastIndexByte(name, '@')
	switch {
	case len(name) > MaxAccountNameLen:
		return fmt.Errorf("%w: account name too long", ErrInvalidName)
	case at <= 0 || at == len(name)-1:
		return fmt.Errorf("%w: account name %q is not an address (local@domain)", ErrInvalidName, name)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: account name is not UTF-8", ErrInvalidName)
	}
	for _, r := range name {
		if r <= ' ' || r == 0x7f || r == '/' || r == '\\' || r == '"' {
			return fmt.Errorf("%w: account name contains %q", ErrInvalidName, r)
		}
	}
	return nil
}

// RenamedSubscriptions returns, of the subscribed names subs, those that a
// rename of mailbox from to to moves (from itself and the names below it,
// unless the new name would be too long) and the names they move to, in
// step. A backend deletes every one of old before it adds moved, so that a
// rename into the mailbox's own subtree (A to A/B, with A/B subscribed
// too) keeps every subscription.
func RenamedSubscriptions(subs []string, from, to string) (old, moved []string) {
	prefix := from + string(HierarchyDelimiter)
	for _, name := range subs {
		if name != from && !strings.HasPrefix(name, prefix) {
			continue
		}
		if len(to)+len(name)-len(from) <= MaxMailboxNameLen {
			old, moved = append(old, name), append(moved, to+name[len(from):])
		}
	}
	return old, moved
}
