package postgres

import (
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/buzon-mail/buzon/internal/store"
)

// TestQueuedStatementFails: a statement queued to go with COMMIT fails, so
// the whole write rolls back (the MODSEQ and UID it took, the flags it
// set), the caller hears of it, and the connection serves the next write.
func TestQueuedStatementFails(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := nodes(t, 1)[0]
	acct, ss, inbox := newAccount(t, s, "alice@example.org")
	if _, err := ss.Append(ctx, inbox.ID, message(1)); err != nil {
		t.Fatal(err)
	}
	before, err := ss.Status(ctx, inbox.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Every connection of the pool at once, so the next writes reuse
	// the one that failed.
	for range s.cfg.MaxConns + 1 {
		err := s.write(ctx, acct.ID, func(w *wtx) error {
			if err := w.lock(nil); err != nil {
				return err
			}
			w.nextModSeq(inbox.ID)
			w.queue(`UPDATE messages SET flags = 1 WHERE mailbox_id = $1`, inbox.ID)
			w.queue(`SELECT 1 / 0`)
			return nil
		})
		if err == nil || errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("write with a failing statement: %v, want division_by_zero", err)
		}
	}
	after, err := ss.Status(ctx, inbox.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.HighestModSeq != before.HighestModSeq || after.Unseen != before.Unseen {
		t.Errorf("after the failed writes: %+v, want %+v", after, before)
	}
	res, err := ss.Append(ctx, inbox.ID, message(2))
	if err != nil || res.UID != 2 || res.ModSeq != before.HighestModSeq+1 {
		t.Errorf("append after the failed writes: %+v, %v; want UID 2, MODSEQ %d", res, err, before.HighestModSeq+1)
	}
}

// TestStatementAfterLockFails: a statement that runs with the lock (in
// the same round trip) fails; nothing is left half done.
func TestStatementAfterLockFails(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := nodes(t, 1)[0]
	acct, ss, inbox := newAccount(t, s, "alice@example.org")
	err := s.write(ctx, acct.ID, func(w *wtx) error {
		var uid store.UID
		var uv uint32
		var b pgx.Batch
		w.queueAllocUIDs(&b, inbox.ID, 1, &uid, &uv, nil)
		b.Queue(`SELECT 1 / 0`)
		return w.lock(&b)
	})
	if err == nil {
		t.Fatal("write with a failing statement succeeded")
	}
	res, err := ss.Append(ctx, inbox.ID, message(1))
	if err != nil || res.UID != 1 {
		t.Errorf("append after the failed write: %+v, %v; want UID 1 (the failed write's UID was not kept)", res, err)
	}
}
