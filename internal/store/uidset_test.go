package store

import (
	"math"
	"testing"
)

func TestUIDSetAbsent(t *testing.T) {
	max := UID(math.MaxUint32)
	cases := []struct {
		name    string
		set     UIDSet
		present []UID
		uidNext UID
		want    string
	}{
		{"nothing present", AllUIDs(), nil, 6, "1:5"},
		{"every one present", AllUIDs(), []UID{1, 2, 3}, 4, ""},
		{"gaps", AllUIDs(), []UID{2, 3, 7}, 10, "1,4:6,8:9"},
		{"set clipped below UIDNEXT", NewUIDSet(UIDRange{4, 20}), []UID{5}, 8, "4,6:7"},
		{"present outside the set", NewUIDSet(UIDRange{3, 4}, UIDRange{8, 9}), []UID{1, 4, 6, 9, 12}, 20, "3,8"},
		{"set above UIDNEXT", UIDSetOf(30), nil, 10, ""},
		{"ranges joined across present outside", NewUIDSet(UIDRange{1, 2}, UIDRange{4, 5}), nil, 10, "1:2,4:5"},
		{"the last UID present", NewUIDSet(UIDRange{max - 2, max}), []UID{max}, max, "4294967293:4294967294"},
		{"empty set", nil, []UID{1}, 10, ""},
	}
	for _, tc := range cases {
		if got := tc.set.Absent(tc.present, tc.uidNext).String(); got != tc.want {
			t.Errorf("%s: %v.Absent(%v, %d) = %q, want %q", tc.name, tc.set, tc.present, tc.uidNext, got, tc.want)
		}
	}
	// Ranges that meet across a present UID outside the set stay apart;
	// ranges that meet across nothing are one.
	if got := NewUIDSet(UIDRange{1, 3}, UIDRange{5, 9}).Absent([]UID{4}, 100); len(got) != 2 {
		t.Errorf("Absent = %#v, want two ranges", got)
	}
	if got := NewUIDSet(UIDRange{1, 3}, UIDRange{5, 9}).Absent([]UID{2}, 100); len(got) != 3 || got.Count() != 7 {
		t.Errorf("Absent = %#v, want 1,3,5:9", got)
	}
}
