package sqlite

import (
	"runtime"
	"testing"

	"github.com/buzon-mail/buzon/internal/store"
)

// TestCopyFlagsChangedMeanwhile: Copy links the bodies before its write
// transaction, so another session's flag change can commit between the
// moment Copy learns which messages to copy and its commit. The copy
// must carry the flags and keywords the message has at the commit, all
// of them from that moment, and the destination's counters must count
// what the copy holds.
//
// The test forces that interleaving with copyMeanwhile.
func TestCopyFlagsChangedMeanwhile(t *testing.T) {
	st := openTest(t, Config{})
	acct, ss, inbox := newAccount(t, st, "alice@example.org")
	ctx := t.Context()
	dest, err := ss.CreateMailbox(ctx, "Dest", "")
	if err != nil {
		t.Fatal(err)
	}
	uid := appendBody(t, ss, inbox.ID, "Subject: hi\r\n\r\nhi\r\n").UID

	now := store.Flags{System: store.FlagSeen, Keywords: []string{"$K"}}
	res, err := copyMeanwhile(t, st, acct.ID, ss, inbox.ID, store.UIDSetOf(uid), dest.ID, func(ss2 store.Session) {
		if _, err := ss2.StoreFlags(ctx, inbox.ID, store.UIDSetOf(uid), store.FlagsAdd, now, 0); err != nil {
			t.Fatal(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Dest) != 1 {
		t.Fatalf("Copy = %+v, want one message copied", res)
	}

	var got store.Flags
	err = ss.Messages(ctx, dest.ID, store.UIDSetOf(res.Dest[0]), store.FieldFlags, func(m *store.MessageInfo) error {
		got = m.Flags
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(now) {
		t.Errorf("copy's flags = %+v, want the original's at the copy, %+v", got, now)
	}
	status, err := ss.Status(ctx, dest.ID)
	if err != nil {
		t.Fatal(err)
	}
	if status.Messages != 1 || status.Unseen != 0 || len(status.Keywords) != 1 || status.Keywords[0] != "$K" {
		t.Errorf("destination's status = %+v, want 1 message, 0 unseen, keyword $K", status)
	}
	rep, err := st.Check(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK(false) {
		t.Errorf("Check after the copy:\n%s", rep)
	}
}

// TestCopyRowIDReused: SQLite gives the highest row ID again once its row
// is gone. When the message Copy linked is expunged before its write, and
// another is appended to the folder meanwhile, the new message can have
// the linked one's row ID: Copy must not copy it with the other's body
// (nor copy it at all: it came after the copy's read).
func TestCopyRowIDReused(t *testing.T) {
	st := openTest(t, Config{})
	acct, ss, inbox := newAccount(t, st, "alice@example.org")
	ctx := t.Context()
	dest, err := ss.CreateMailbox(ctx, "Dest", "")
	if err != nil {
		t.Fatal(err)
	}
	uid := appendBody(t, ss, inbox.ID, "Subject: old\r\n\r\nold\r\n").UID
	res, err := copyMeanwhile(t, st, acct.ID, ss, inbox.ID, store.AllUIDs(), dest.ID, func(ss2 store.Session) {
		if _, err := ss2.Expunge(ctx, inbox.ID, store.UIDSetOf(uid), false); err != nil {
			t.Fatal(err)
		}
		appendBody(t, ss2, inbox.ID, "Subject: new, and longer\r\n\r\nnew, and longer\r\n")
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Dest) != 0 {
		t.Errorf("Copy = %+v, want nothing copied: the message it read is gone", res)
	}
	rep, err := st.Check(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK(false) {
		t.Errorf("Check after the copy:\n%s", rep)
	}
}

// copyMeanwhile runs ss.Copy with meanwhile in the middle: after Copy has
// read the messages and linked their bodies, before its write. It holds
// the account's write token so that Copy, having linked, waits in the
// queue; meanwhile runs on a second Store on the same folder (another
// process, as `buzon deliver` would be), which commits without that
// token.
func copyMeanwhile(t *testing.T, st *Store, accountID int64, ss store.Session, from int64, uids store.UIDSet, to int64, meanwhile func(store.Session)) (store.CopyResult, error) {
	t.Helper()
	ctx := t.Context()
	other := openTest(t, Config{Dir: st.dir})
	ss2, err := other.Open(ctx, accountID)
	if err != nil {
		t.Fatal(err)
	}
	defer ss2.Close()

	a, err := st.acquire(ctx, accountID)
	if err != nil {
		t.Fatal(err)
	}
	defer st.release(a)
	a.token <- struct{}{}
	held := true
	defer func() {
		if held {
			<-a.token
		}
	}()

	type result struct {
		res store.CopyResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := ss.Copy(ctx, from, uids, to)
		done <- result{res, err}
	}()
	// Wait for Copy to queue its write: it has read the messages and
	// linked their bodies by then. No event says so; the queue does.
	for queued := false; !queued; {
		select {
		case r := <-done:
			t.Fatalf("Copy returned before it queued its write: %+v, %v", r.res, r.err)
		default:
		}
		a.qmu.Lock()
		queued = len(a.queue) > 0
		a.qmu.Unlock()
		runtime.Gosched()
	}
	meanwhile(ss2)
	<-a.token
	held = false
	r := <-done
	return r.res, r.err
}
