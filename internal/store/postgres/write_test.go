package postgres

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

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
		w.queueAllocUIDs(&b, inbox.ID, 1, &uid, &uv)
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

// TestAppendRefusedLeavesNoBody: an append refused under the lock (over
// quota, no such mailbox, no UID left) commits nothing, its body
// included, whether the body went with the lock (one chunk) or before it
// in a transaction of its own making (larger).
func TestAppendRefusedLeavesNoBody(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := nodes(t, 1)[0]
	acct, ss, inbox := newAccount(t, s, "alice@example.org")
	full, err := ss.CreateMailbox(ctx, "Full", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `UPDATE mailboxes SET uidnext = 4294967296 WHERE id = $1`, full.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := ss.Append(ctx, inbox.ID, message(1)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetQuota(ctx, acct.Name, store.Quota{MaxMessages: 1}); err != nil {
		t.Fatal(err)
	}
	large := func() *store.NewMessage {
		body := bytes.Repeat([]byte("x"), chunkSize+10)
		return &store.NewMessage{Body: bytes.NewReader(body), Size: int64(len(body))}
	}
	tests := []struct {
		name    string
		mailbox int64
		msg     *store.NewMessage
		want    error
	}{
		{"over quota", inbox.ID, message(2), store.ErrOverQuota},
		{"no such mailbox", full.ID + 1, message(3), store.ErrNoMailbox},
		{"no UID left", full.ID, message(4), store.ErrLimit},
	}
	for _, tt := range tests {
		if _, err := ss.Append(ctx, tt.mailbox, tt.msg); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	if err := s.SetQuota(ctx, acct.Name, store.Quota{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ss.Append(ctx, full.ID, large()); !errors.Is(err, store.ErrLimit) {
		t.Errorf("a large message, no UID left: %v, want %v", err, store.ErrLimit)
	}
	var bodies, messages int
	if err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM bodies WHERE account_id = $1),
		(SELECT count(*) FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id WHERE b.account_id = $1)`, acct.ID).
		Scan(&bodies, &messages); err != nil {
		t.Fatal(err)
	}
	if bodies != 1 || messages != 1 {
		t.Errorf("%d bodies and %d messages after one append and four refused, want 1 and 1", bodies, messages)
	}
	q, err := ss.QuotaUsage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if size := message(1).Size; q.Messages != 1 || q.Bytes != size {
		t.Errorf("usage %d messages, %d bytes; want 1, %d", q.Messages, q.Bytes, size)
	}
}

// TestExpungeWriteBetween: Expunge decides what goes from a read made
// without the lock, so a write to the mailbox between that read and the
// removal stops the removal; and a removal takes a body with its last
// message only, a copy in the same mailbox or another keeping it.
func TestExpungeWriteBetween(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := nodes(t, 1)[0]
	acct, a, inbox := newAccount(t, s, "alice@example.org")
	b := openSession(t, s, acct.ID)
	other, err := a.CreateMailbox(ctx, "Other", "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := a.Append(ctx, inbox.ID, message(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Message 4 is a copy of 1 in INBOX, and Other has a copy of 2.
	if _, err := a.Copy(ctx, inbox.ID, store.UIDSetOf(1), inbox.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Copy(ctx, inbox.ID, store.UIDSetOf(2), other.ID); err != nil {
		t.Fatal(err)
	}
	ss := a.(*session)
	res, err := ss.planExpunge(ctx, inbox.ID, store.UIDSetOf(1, 2), false)
	if err != nil || len(res.UIDs) != 2 {
		t.Fatalf("planExpunge = %+v, %v", res, err)
	}
	if _, err := b.StoreFlags(ctx, inbox.ID, store.UIDSetOf(3), store.FlagsAdd, store.Flags{System: store.FlagSeen}, 0); err != nil {
		t.Fatal(err)
	}
	_, wrote, err := ss.writeIf(ctx, nil, applyExpunge, ss.id, inbox.ID, int64(res.Prior), []int64{1, 2}, "0")
	if err != nil || wrote {
		t.Fatalf("an expunge decided before another write: wrote %v, %v", wrote, err)
	}
	st, err := b.Status(ctx, inbox.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Messages != 4 {
		t.Fatalf("%d messages left after an expunge that did not apply, want 4", st.Messages)
	}
	// Through the front door: it reads again and applies.
	got, err := a.Expunge(ctx, inbox.ID, store.UIDSetOf(1, 2), false)
	if err != nil || !slices.Equal(got.UIDs, []store.UID{1, 2}) || got.Prior != st.HighestModSeq || got.ModSeq != st.HighestModSeq+2 {
		t.Fatalf("Expunge = %+v, %v; want UIDs 1 and 2, MODSEQ %d to %d", got, err, st.HighestModSeq, st.HighestModSeq+2)
	}
	for _, m := range []struct {
		mailbox int64
		uid     store.UID
		want    []byte
	}{{inbox.ID, 4, readAll(t, message(0))}, {other.ID, 1, readAll(t, message(1))}} {
		body, err := b.OpenBody(ctx, m.mailbox, m.uid)
		if err != nil {
			t.Fatalf("the copy's body: %v", err)
		}
		data := make([]byte, body.Size())
		if _, err := body.ReadAt(data, 0); err != nil && !errors.Is(err, io.EOF) || !bytes.Equal(data, m.want) {
			t.Errorf("the copy's body after its original was expunged: %q, %v", data, err)
		}
		body.Close()
	}
	// The last uses of each body go: no body is left.
	if _, err := a.Expunge(ctx, inbox.ID, store.AllUIDs(), false); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Expunge(ctx, other.ID, store.AllUIDs(), false); err != nil {
		t.Fatal(err)
	}
	var bodies int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM bodies WHERE account_id = $1`, acct.ID).Scan(&bodies); err != nil {
		t.Fatal(err)
	}
	q, err := a.QuotaUsage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if bodies != 0 || q.Messages != 0 || q.Bytes != 0 {
		t.Errorf("after every message went: %d bodies, usage %+v", bodies, q)
	}
}

func readAll(t *testing.T, m *store.NewMessage) []byte {
	t.Helper()
	data, err := io.ReadAll(m.Body)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestRetryOnFreshConnection: a write whose connection had died before
// anything was sent goes again on a new connection, which must prepare
// the statements afresh: pgx keeps in a batch's statements what the
// first connection prepared, so the same batch sent again failed with
// SQLSTATE 26000 (prepared statement does not exist).
func TestRetryOnFreshConnection(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openConfig(t, Config{DSN: nodes(t, 1)[0].cfg.DSN, MaxConns: 1})
	t.Cleanup(func() { s.Close() })
	_, a, inbox := newAccount(t, s, "alice@example.org")
	ss := a.(*session)
	// The pool's one connection dies without the pool knowing (its
	// socket closed under it), and is handed out again at once, so not
	// pinged first.
	kill := func() {
		t.Helper()
		c, err := s.pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c.Conn().PgConn().Conn().Close()
		c.Release()
	}
	// Append's one round trip (wtx.first), its statements prepared.
	for i := range 2 {
		if _, err := a.Append(ctx, inbox.ID, message(i)); err != nil {
			t.Fatal(err)
		}
	}
	kill()
	if _, err := a.Append(ctx, inbox.ID, message(3)); err != nil {
		t.Errorf("Append on a dead connection: %v", err)
	}
	// StoreFlags's write (Store.once), its statements prepared.
	if _, err := a.StoreFlags(ctx, inbox.ID, store.UIDSetOf(1), store.FlagsAdd, store.Flags{System: store.FlagSeen}, 0); err != nil {
		t.Fatal(err)
	}
	res, ch, err := ss.planFlags(ctx, inbox.ID, store.UIDSetOf(2), store.FlagsAdd, store.Flags{System: store.FlagSeen}, 0)
	if err != nil {
		t.Fatal(err)
	}
	kill()
	if wrote, err := ss.applyFlags(ctx, inbox.ID, &res, ch); err != nil || !wrote {
		t.Errorf("StoreFlags's write on a dead connection: wrote %v, %v", wrote, err)
	}
}

// TestHighestModSeqOnlyRises: with the account's MODSEQ counter behind a
// mailbox's highest MODSEQ (a counter gone wrong), a write to the
// mailbox does not take its MODSEQ backwards: a CONDSTORE client would
// take the changes below the HIGHESTMODSEQ it was told for ones it has.
func TestHighestModSeqOnlyRises(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := nodes(t, 1)[0]
	acct, a, inbox := newAccount(t, s, "alice@example.org")
	for i := range 4 {
		if _, err := a.Append(ctx, inbox.ID, message(i)); err != nil {
			t.Fatal(err)
		}
	}
	writes := []struct {
		name  string
		write func() error
	}{
		{"Append", func() error {
			_, err := a.Append(ctx, inbox.ID, message(9))
			return err
		}},
		{"StoreFlags", func() error {
			_, err := a.StoreFlags(ctx, inbox.ID, store.UIDSetOf(1), store.FlagsAdd, store.Flags{System: store.FlagSeen}, 0)
			return err
		}},
		{"Expunge", func() error {
			_, err := a.Expunge(ctx, inbox.ID, store.UIDSetOf(2), false)
			return err
		}},
	}
	const highest = 50
	for _, w := range writes {
		if _, err := s.pool.Exec(ctx, `WITH st AS (UPDATE account_state SET modseq = 1 WHERE account_id = $1)
			UPDATE mailboxes SET highest_modseq = $3 WHERE id = $2`, acct.ID, inbox.ID, highest); err != nil {
			t.Fatal(err)
		}
		if err := w.write(); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		st, err := a.Status(ctx, inbox.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st.HighestModSeq < highest {
			t.Errorf("%s with the account's MODSEQ behind: the mailbox's went from %d to %d", w.name, highest, st.HighestModSeq)
		}
	}
}

// TestNoStateRow: on an account whose state row is missing (Check's "no
// counter row"), StoreFlags and Expunge fail with ErrNoAccount, as
// Append and the writes that take the lock first do, instead of taking
// the write that could never apply for one another write overtook and
// reading again for ever. (The deadline only ends the test if they do.)
func TestNoStateRow(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s := nodes(t, 1)[0]
	acct, a, inbox := newAccount(t, s, "alice@example.org")
	if _, err := a.Append(ctx, inbox.ID, message(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM account_state WHERE account_id = $1`, acct.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.StoreFlags(ctx, inbox.ID, store.UIDSetOf(1), store.FlagsAdd, store.Flags{System: store.FlagSeen}, 0); !errors.Is(err, store.ErrNoAccount) {
		t.Errorf("StoreFlags: %v, want %v", err, store.ErrNoAccount)
	}
	if _, err := a.Expunge(ctx, inbox.ID, store.AllUIDs(), false); !errors.Is(err, store.ErrNoAccount) {
		t.Errorf("Expunge: %v, want %v", err, store.ErrNoAccount)
	}
	if _, err := a.Append(ctx, inbox.ID, message(2)); !errors.Is(err, store.ErrNoAccount) {
		t.Errorf("Append: %v, want %v", err, store.ErrNoAccount)
	}
}

// TestWriteOvertaken: StoreFlags and Expunge on a mailbox that another
// node delivers to between each read they make without the lock and
// their write (deliveries one after another) still complete: after
// optimisticTries they take the lock before reading, as the other writes
// do, where they read and wrote again for as long as deliveries came.
func TestWriteOvertaken(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ns := nodes(t, 2)
	acct, a, inbox := newAccount(t, ns[0], "alice@example.org")
	deliver := openSession(t, ns[1], acct.ID)
	for i := range 3 {
		if _, err := a.Append(ctx, inbox.ID, message(i)); err != nil {
			t.Fatal(err)
		}
	}
	tries := 0
	ns[0].raced = func() {
		tries++
		if tries > 10 {
			t.Errorf("overtaken %d times and still reading again", tries)
			cancel()
			return
		}
		if _, err := deliver.Append(ctx, inbox.ID, message(100+tries)); err != nil {
			t.Error(err)
		}
	}
	deleted := store.Flags{System: store.FlagDeleted}
	flagged, err := a.StoreFlags(ctx, inbox.ID, store.AllUIDs(), store.FlagsAdd, deleted, 0)
	if err != nil {
		t.Fatal(err)
	}
	st, err := a.Status(ctx, inbox.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Every message is flagged, those delivered meanwhile too, each with
	// a MODSEQ of its own up to the mailbox's.
	n := len(flagged.Updated)
	if tries != optimisticTries || n != int(st.Messages) || st.Deleted != st.Messages ||
		flagged.ModSeq != st.HighestModSeq || flagged.Prior != st.HighestModSeq-store.ModSeq(n) {
		t.Fatalf("StoreFlags overtaken %d times: %d updated, MODSEQ %d from %d; the mailbox has %d messages, %d \\Deleted, MODSEQ %d",
			tries, n, flagged.ModSeq, flagged.Prior, st.Messages, st.Deleted, st.HighestModSeq)
	}
	for i, u := range flagged.Updated {
		if u.ModSeq != flagged.Prior+store.ModSeq(i)+1 {
			t.Errorf("message %d changed at MODSEQ %d, want %d", u.UID, u.ModSeq, flagged.Prior+store.ModSeq(i)+1)
		}
	}
	tries = 0
	gone, err := a.Expunge(ctx, inbox.ID, store.AllUIDs(), true)
	if err != nil {
		t.Fatal(err)
	}
	st, err = a.Status(ctx, inbox.ID)
	if err != nil {
		t.Fatal(err)
	}
	// What was flagged goes; what was delivered meanwhile stays.
	if tries != optimisticTries || len(gone.UIDs) != n || st.Messages != uint32(tries) || st.Deleted != 0 ||
		gone.ModSeq != st.HighestModSeq || gone.Prior != st.HighestModSeq-store.ModSeq(n) {
		t.Fatalf("Expunge overtaken %d times: %d gone, MODSEQ %d from %d; the mailbox has %d messages, %d \\Deleted, MODSEQ %d",
			tries, len(gone.UIDs), gone.ModSeq, gone.Prior, st.Messages, st.Deleted, st.HighestModSeq)
	}
}
