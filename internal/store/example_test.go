package store_test

import (
	"fmt"

	"github.com/buzon-mail/buzon/internal/store"
)

// A cached list of a mailbox's UIDs, brought up to date with what
// Changes would report: 2 and 4 went, 6 and 7 came.
func ExampleAdvance() {
	cached := []store.UID{1, 2, 3, 4, 5}
	fmt.Println(store.Advance(cached, []store.UID{2, 4}, []store.UID{6, 7}))
	// Output: [1 3 5 6 7]
}

// A client knew UIDs 1 to 10 of a mailbox whose UIDNEXT is 9 and which
// holds 3, 4 and 8: the rest of what it knew is gone, and 9 and 10 are
// beyond what the mailbox ever gave out.
func ExampleUIDSet_Absent() {
	known := store.NewUIDSet(store.UIDRange{Start: 1, Stop: 10})
	fmt.Println(known.Absent([]store.UID{3, 4, 8}, 9))
	// Output: 1:2,5:7
}

// Counts as reports write them.
func ExampleCount() {
	fmt.Println(store.Count(1, "message"))
	fmt.Println(store.Count(0, "account"))
	fmt.Println(store.Count(int64(20000), "message"))
	// Output:
	// 1 message
	// 0 accounts
	// 20000 messages
}
