package store

import (
	"fmt"
	"slices"
	"strings"
)

// SystemFlags is the set of IMAP system flags a message carries, as bits.
type SystemFlags uint8

// System flags (RFC 9051 2.3.2). \Recent is not kept: IMAP4rev2 removed it
// and buzon reports it as always absent for IMAP4rev1 clients.
const (
	FlagSeen SystemFlags = 1 << iota
	FlagAnswered
	FlagFlagged
	FlagDeleted
	FlagDraft
)

var systemFlagNames = [...]struct {
	bit  SystemFlags
	name string
}{
	{FlagSeen, `\Seen`},
	{FlagAnswered, `\Answered`},
	{FlagFlagged, `\Flagged`},
	{FlagDeleted, `\Deleted`},
	{FlagDraft, `\Draft`},
}

// Flags are a message's system flags and keywords. Keywords compare
// case-insensitively (RFC 9051 2.3.2); the first spelling seen is kept.
type Flags struct {
	System   SystemFlags
	Keywords []string
}

// ParseFlags converts IMAP flag names into Flags. Unknown system flags
// (a backslash followed by anything but the five above) are an error, as is
// a keyword that is not an IMAP atom.
func ParseFlags(names []string) (Flags, error) {
	var f Flags
	for _, n := range names {
		if strings.HasPrefix(n, `\`) {
			bit, ok := systemFlag(n)
			if !ok {
				return Flags{}, fmt.Errorf("%w: unknown system flag %s", ErrInvalidFlag, n) // an atom: no quoting needed
			}
			f.System |= bit
			continue
		}
		if !ValidKeyword(n) {
			return Flags{}, fmt.Errorf("%w: %q", ErrInvalidFlag, n)
		}
		f.Keywords = addKeyword(f.Keywords, n)
	}
	return f, nil
}

func systemFlag(name string) (SystemFlags, bool) {
	for _, sf := range systemFlagNames {
		if strings.EqualFold(sf.name, name) {
			return sf.bit, true
		}
	}
	return 0, false
}

// ValidKeyword reports whether s can be a keyword: a non-empty IMAP atom
// (RFC 9051 9 flag-keyword) of at most 100 bytes.
func ValidKeyword(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}

// Names returns the flags as IMAP flag names: system flags first, in a fixed
// order, then keywords.
func (f Flags) Names() []string {
	names := make([]string, 0, 5+len(f.Keywords))
	for _, sf := range systemFlagNames {
		if f.System&sf.bit != 0 {
			names = append(names, sf.name)
		}
	}
	return append(names, f.Keywords...)
}

// Has reports whether the flag or keyword named is set.
func (f Flags) Has(name string) bool {
	if bit, ok := systemFlag(name); ok {
		return f.System&bit != 0
	}
	return hasKeyword(f.Keywords, name)
}

// Apply returns f changed by op with other (RFC 9051 6.4.6).
func (f Flags) Apply(op FlagOp, other Flags) Flags {
	switch op {
	case FlagsReplace:
		return Flags{System: other.System, Keywords: slices.Clone(other.Keywords)}
	case FlagsAdd:
		out := Flags{System: f.System | other.System, Keywords: slices.Clone(f.Keywords)}
		for _, k := range other.Keywords {
			out.Keywords = addKeyword(out.Keywords, k)
		}
		return out
	case FlagsRemove:
		out := Flags{System: f.System &^ other.System}
		for _, k := range f.Keywords {
			if !hasKeyword(other.Keywords, k) {
				out.Keywords = append(out.Keywords, k)
			}
		}
		return out
	}
	return f
}

// Equal reports whether f and other hold the same flags, ignoring keyword
// order and case.
func (f Flags) Equal(other Flags) bool {
	if f.System != other.System || len(f.Keywords) != len(other.Keywords) {
		return false
	}
	for _, k := range f.Keywords {
		if !hasKeyword(other.Keywords, k) {
			return false
		}
	}
	return true
}

func hasKeyword(list []string, k string) bool {
	for _, x := range list {
		if strings.EqualFold(x, k) {
			return true
		}
	}
	return false
}

func addKeyword(list []string, k string) []string {
	if hasKeyword(list, k) {
		return list
	}
	return append(list, k)
}
