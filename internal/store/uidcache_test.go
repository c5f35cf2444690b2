package store

import (
	"slices"
	"testing"
)

func TestAdvance(t *testing.T) {
	for _, tc := range []struct {
		uids, expunged, added, want []UID
	}{
		{nil, nil, nil, []UID{}},
		{[]UID{1, 2, 3}, nil, nil, []UID{1, 2, 3}},
		{[]UID{1, 2, 3}, []UID{2}, []UID{7, 9}, []UID{1, 3, 7, 9}},
		// Expunged UIDs the list never had (added and gone since) are skipped.
		{[]UID{2, 4, 6}, []UID{1, 3, 4, 5, 8}, []UID{9}, []UID{2, 6, 9}},
		{[]UID{2, 4, 6}, []UID{2, 4, 6}, nil, []UID{}},
		// An added UID the list has already is not added twice.
		{[]UID{2, 4, 6}, nil, []UID{6, 7}, []UID{2, 4, 6, 7}},
	} {
		if got := Advance(tc.uids, tc.expunged, tc.added); !slices.Equal(got, tc.want) {
			t.Errorf("Advance(%v, %v, %v) = %v, want %v", tc.uids, tc.expunged, tc.added, got, tc.want)
		}
	}
}

func TestUIDCache(t *testing.T) {
	list := func(n int) []UID {
		uids := make([]UID, n)
		for i := range uids {
			uids[i] = UID(i + 1)
		}
		return uids
	}
	c := NewUIDCache(10 + 2*entryCost)
	c.Put(&CachedUIDs{MailboxID: 1, UIDValidity: 5, UIDs: list(4), ModSeq: 10})
	c.Put(&CachedUIDs{MailboxID: 2, UIDValidity: 5, UIDs: list(4), ModSeq: 10})
	if c.Get(1) == nil || c.Get(2) == nil {
		t.Fatal("lists within the limit are not kept")
	}
	// A list read earlier than the cached one does not replace it; a
	// later one, or one of another UIDVALIDITY, does.
	c.Put(&CachedUIDs{MailboxID: 1, UIDValidity: 5, UIDs: list(3), ModSeq: 9})
	if got := c.Get(1); got.ModSeq != 10 {
		t.Errorf("an older list replaced a newer one: %+v", got)
	}
	c.Put(&CachedUIDs{MailboxID: 1, UIDValidity: 6, UIDs: list(2), ModSeq: 1})
	if got := c.Get(1); got.UIDValidity != 6 {
		t.Errorf("a list of another UIDVALIDITY did not replace the cached one: %+v", got)
	}
	// Over the limit, the least recently used go first: 2 was used
	// before 1, so 2 goes.
	c.Put(&CachedUIDs{MailboxID: 3, UIDValidity: 5, UIDs: list(6), ModSeq: 10})
	if c.Get(2) != nil || c.Get(1) == nil || c.Get(3) == nil {
		t.Errorf("after going over the limit: 1 %v, 2 %v, 3 %v", c.Get(1), c.Get(2), c.Get(3))
	}
	if c.holding != 8+2*entryCost {
		t.Errorf("holding %d UIDs, want %d", c.holding, 8+2*entryCost)
	}
	// A list over the limit by itself is not kept, and drops the older one.
	c.Put(&CachedUIDs{MailboxID: 3, UIDValidity: 5, UIDs: list(c.max), ModSeq: 11})
	if c.Get(3) != nil || c.holding != 2+entryCost {
		t.Errorf("a list over the limit: cached %v, holding %d", c.Get(3), c.holding)
	}
	c.Remove(1)
	if c.Get(1) != nil || c.holding != 0 {
		t.Errorf("after Remove: %v, holding %d", c.Get(1), c.holding)
	}
	// A cache of no size keeps nothing, not even an empty list.
	off := NewUIDCache(0)
	off.Put(&CachedUIDs{MailboxID: 1, UIDValidity: 5, ModSeq: 1})
	if off.Get(1) != nil {
		t.Error("a cache of no size kept a list")
	}
}
