package store

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
)

// UIDRange is an inclusive range of UIDs.
type UIDRange struct {
	Start, Stop UID
}

// UIDSet is a set of UIDs as sorted, disjoint, non-adjacent ranges.
// Build one with NewUIDSet, UIDSetOf or AllUIDs; the zero value is empty.
type UIDSet []UIDRange

// AllUIDs returns the set of every possible UID.
func AllUIDs() UIDSet { return UIDSet{{1, math.MaxUint32}} }

// UIDSetOf returns the set holding exactly the given UIDs.
func UIDSetOf(uids ...UID) UIDSet {
	ranges := make([]UIDRange, len(uids))
	for i, u := range uids {
		ranges[i] = UIDRange{u, u}
	}
	return NewUIDSet(ranges...)
}

// NewUIDSet returns the union of the ranges, normalized. A range with
// Start > Stop is read the other way round, as IMAP's "5:2" is 2:5.
func NewUIDSet(ranges ...UIDRange) UIDSet {
	rs := make([]UIDRange, 0, len(ranges))
	for _, r := range ranges {
		if r.Start > r.Stop {
			r.Start, r.Stop = r.Stop, r.Start
		}
		if r.Stop == 0 {
			continue // UID 0 does not exist
		}
		if r.Start == 0 {
			r.Start = 1
		}
		rs = append(rs, r)
	}
	slices.SortFunc(rs, func(a, b UIDRange) int { return cmp.Compare(a.Start, b.Start) })
	var out UIDSet
	for _, r := range rs {
		if n := len(out); n > 0 && uint64(r.Start) <= uint64(out[n-1].Stop)+1 {
			out[n-1].Stop = max(out[n-1].Stop, r.Stop)
			continue
		}
		out = append(out, r)
	}
	return out
}

// Contains reports whether uid is in the set.
func (s UIDSet) Contains(uid UID) bool {
	_, found := slices.BinarySearchFunc(s, uid, func(r UIDRange, u UID) int {
		switch {
		case r.Stop < u:
			return -1
		case r.Start > u:
			return 1
		}
		return 0
	})
	return found
}

// Count is how many UIDs the set holds; at most 1<<32.
func (s UIDSet) Count() uint64 {
	var n uint64
	for _, r := range s {
		n += uint64(r.Stop) - uint64(r.Start) + 1
	}
	return n
}

// Empty reports whether the set holds no UID.
func (s UIDSet) Empty() bool { return len(s) == 0 }

// String formats the set in IMAP sequence-set syntax ("1:3,7"); the empty
// set is "".
func (s UIDSet) String() string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(r.Start), 10))
		if r.Stop != r.Start {
			b.WriteByte(':')
			b.WriteString(strconv.FormatUint(uint64(r.Stop), 10))
		}
	}
	return b.String()
}

// Absent returns the UIDs of s below uidNext that are not in present
// (ascending): of the messages a client knew as s, those gone from a
// mailbox whose UIDs are present, given as ranges however many there are.
// s is normalized, as every UIDSet built by NewUIDSet is.
func (s UIDSet) Absent(present []UID, uidNext UID) UIDSet {
	var out UIDSet
	emit := func(start, stop UID) {
		if start > stop {
			return
		}
		if n := len(out); n > 0 && uint64(out[n-1].Stop)+1 == uint64(start) {
			out[n-1].Stop = stop
			return
		}
		out = append(out, UIDRange{start, stop})
	}
	i := 0
	for _, r := range s {
		if r.Start >= uidNext {
			break
		}
		stop := min(r.Stop, uidNext-1)
		next := r.Start // the lowest UID of r not yet emitted or skipped
		for ; i < len(present) && present[i] <= stop; i++ {
			if p := present[i]; p >= next {
				emit(next, p-1)
				next = p + 1
			}
		}
		if next <= stop && next != 0 {
			emit(next, stop)
		}
	}
	return out
}
