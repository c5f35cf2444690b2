package postgres

import (
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/buzon-mail/buzon/internal/store"
)

// TestStoreFlagsWriteBetween: StoreFlags decides from flags it read
// without the lock, so a write to the mailbox between that read and the
// change must stop the change, which would otherwise undo the write's
// flags or break its UNCHANGEDSINCE, and the next try decides afresh.
func TestStoreFlagsWriteBetween(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := nodes(t, 1)[0]
	acct, a, inbox := newAccount(t, s, "alice@example.org")
	b := openSession(t, s, acct.ID)
	for i := range 3 {
		if _, err := a.Append(ctx, inbox.ID, message(i)); err != nil {
			t.Fatal(err)
		}
	}
	flagged := store.Flags{System: store.FlagFlagged}
	seen := store.Flags{System: store.FlagSeen}
	tests := []struct {
		name    string
		between func() error // another session's write after the read
	}{
		{"the same message", func() error {
			_, err := b.StoreFlags(ctx, inbox.ID, store.UIDSetOf(2), store.FlagsAdd, seen, 0)
			return err
		}},
		{"another message", func() error {
			_, err := b.StoreFlags(ctx, inbox.ID, store.UIDSetOf(3), store.FlagsAdd, seen, 0)
			return err
		}},
		{"an append", func() error {
			_, err := b.Append(ctx, inbox.ID, message(9))
			return err
		}},
		{"an expunge", func() error {
			_, err := b.Expunge(ctx, inbox.ID, store.UIDSetOf(1), false)
			return err
		}},
	}
	for _, tt := range tests {
		ss := a.(*session)
		set := store.UIDSetOf(2)
		res, ch, err := ss.planFlags(ctx, inbox.ID, set, store.FlagsReplace, flagged, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := tt.between(); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		st, err := b.Status(ctx, inbox.ID)
		if err != nil {
			t.Fatal(err)
		}
		if applied, err := ss.applyFlags(ctx, inbox.ID, &res, ch); err != nil || applied {
			t.Fatalf("%s: change decided before it applied: %v, %v", tt.name, applied, err)
		}
		after, err := b.Status(ctx, inbox.ID)
		if err != nil {
			t.Fatal(err)
		}
		if after.HighestModSeq != st.HighestModSeq {
			t.Fatalf("%s: the change that did not apply moved the MODSEQ from %d to %d", tt.name, st.HighestModSeq, after.HighestModSeq)
		}
		// Through the front door: it reads again and applies.
		got, err := a.StoreFlags(ctx, inbox.ID, set, store.FlagsReplace, flagged, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got.Prior != st.HighestModSeq || got.ModSeq != st.HighestModSeq+1 ||
			len(got.Updated) != 1 || got.Updated[0].ModSeq != got.ModSeq || !got.Updated[0].Flags.Equal(flagged) {
			t.Fatalf("%s: StoreFlags = %+v from MODSEQ %d", tt.name, got, st.HighestModSeq)
		}
		// Undone for the next case, by b, so that the next read is a's.
		if _, err := b.StoreFlags(ctx, inbox.ID, set, store.FlagsReplace, store.Flags{}, 0); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStoreFlagsConcurrent: sessions on two nodes change the flags of
// the same messages at once, each adding a keyword of its own and
// toggling \Flagged: no change is lost, every change has a MODSEQ of its
// own, and the MODSEQs run without a gap to the mailbox's highest.
func TestStoreFlagsConcurrent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	ns := nodes(t, 2)
	acct, ss, inbox := newAccount(t, ns[0], "alice@example.org")
	for i := range 4 {
		if _, err := ss.Append(ctx, inbox.ID, message(i)); err != nil {
			t.Fatal(err)
		}
	}
	start, err := ss.Status(ctx, inbox.ID)
	if err != nil {
		t.Fatal(err)
	}
	w := ns[1].Watch(acct.ID)
	defer w.Close()
	const workers, rounds = 6, 10
	set := store.UIDSetOf(1, 2, 3, 4)
	var mu sync.Mutex
	var modseqs []store.ModSeq
	var wg sync.WaitGroup
	for i := range workers {
		sess := openSession(t, ns[i%2], acct.ID)
		wg.Go(func() {
			for r := range rounds {
				kw := store.Flags{Keywords: []string{"k" + string(rune('a'+i)) + string(rune('a'+r))}}
				op := store.FlagsAdd
				if r%2 == 1 {
					op = store.FlagsRemove
				}
				for _, f := range []struct {
					op    store.FlagOp
					flags store.Flags
				}{{store.FlagsAdd, kw}, {op, store.Flags{System: store.FlagFlagged}}} {
					res, err := sess.StoreFlags(ctx, inbox.ID, set, f.op, f.flags, 0)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					for _, u := range res.Updated {
						modseqs = append(modseqs, u.ModSeq)
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	waitFire(t, w, "flags changed on the other node")
	slices.Sort(modseqs)
	for i, m := range modseqs {
		if m != start.HighestModSeq+store.ModSeq(i)+1 {
			t.Fatalf("MODSEQs given %v from %d: a gap or a repeat at %d", modseqs, start.HighestModSeq, i)
		}
	}
	end, err := ss.Status(ctx, inbox.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := start.HighestModSeq + store.ModSeq(len(modseqs)); end.HighestModSeq != want {
		t.Errorf("highest MODSEQ %d after %d changes from %d", end.HighestModSeq, len(modseqs), start.HighestModSeq)
	}
	err = ss.Messages(ctx, inbox.ID, set, store.FieldFlags, func(m *store.MessageInfo) error {
		if len(m.Flags.Keywords) != workers*rounds {
			t.Errorf("message %d has %d keywords of %d: %s", m.UID, len(m.Flags.Keywords), workers*rounds, strings.Join(m.Flags.Keywords, " "))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := ss.Changes(ctx, inbox.ID, start.HighestModSeq)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs.Updated) != 4 || cs.HighestModSeq != end.HighestModSeq {
		t.Errorf("changes since %d: %+v", start.HighestModSeq, cs)
	}
}
