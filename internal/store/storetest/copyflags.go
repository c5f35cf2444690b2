package storetest

import (
	"slices"
	"sync"
	"testing"

	"github.com/buzon-mail/buzon/internal/store"
)

// testCopyWhileFlagsChange: a copy carries the flags and keywords its
// original had at one moment, and the destination's counters count what
// the copies hold, however another session changes the original's flags
// while it is copied. The other session switches the message between
// two sets of flags, each with a system flag the counters follow and
// each without the other's, so a copy that took flags and keywords from
// different moments, or counters that went by other flags than the
// copy's, show.
//
// Nothing here forces the two sessions to interleave: that takes a
// backend's own test (store/sqlite has one). What the suite checks is
// that every backend keeps this invariant under the race, and the
// consistency check after the test sees the counters.
func testCopyWhileFlagsChange(t *testing.T, e *env) {
	acct, ss := e.account("alice@example.org")
	inbox := e.mailbox(ss, "INBOX")
	dest := e.mailbox(ss, "Dest")
	read := store.Flags{System: store.FlagSeen, Keywords: []string{"$Read"}}
	gone := store.Flags{System: store.FlagDeleted}
	sets := []store.Flags{gone, read}
	res, err := ss.Append(e.ctx, inbox.ID, newMessage(1, read, testDate(1)))
	if err != nil {
		t.Fatal(err)
	}
	uid := res.UID

	const copies = 100
	other := e.session(e.st, acct.ID)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := other.StoreFlags(e.ctx, inbox.ID, store.UIDSetOf(uid), store.FlagsReplace, sets[i%2], 0); err != nil {
				t.Errorf("StoreFlags: %v", err)
				return
			}
		}
	})
	for range copies {
		if _, err := ss.Copy(e.ctx, inbox.ID, store.UIDSetOf(uid), dest.ID); err != nil {
			t.Errorf("Copy: %v", err)
			break
		}
	}
	close(stop)
	wg.Wait()

	var unseen, deleted uint32
	mixed := 0
	for _, m := range e.messages(ss, dest.ID, store.AllUIDs(), store.FieldFlags) {
		if !slices.ContainsFunc(sets, m.Flags.Equal) {
			mixed++
			if mixed <= 3 {
				t.Errorf("copy %d has flags %+v, which the original never had together", m.UID, m.Flags)
			}
		}
		if m.Flags.System&store.FlagSeen == 0 {
			unseen++
		}
		if m.Flags.System&store.FlagDeleted != 0 {
			deleted++
		}
	}
	if mixed > 0 {
		t.Errorf("%d copies in %d have flags the original never had", mixed, copies)
	}
	if st := e.status(ss, dest.ID); st.Messages != copies || st.Unseen != unseen || st.Deleted != deleted {
		t.Errorf("destination's Status = %+v; its %d messages hold %d unseen, %d deleted", st, copies, unseen, deleted)
	}
}
