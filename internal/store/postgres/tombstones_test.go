package postgres

import (
	"testing"

	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/postgres/pgtest"
)

// TestTombstoneCount: a mailbox's count of its tombstones stays the number
// of rows when an expunge renews a tombstone that was there already, and
// a count gone too high is set right by the next expunge instead of
// making every expunge look for tombstones to forget.
func TestTombstoneCount(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openConfig(t, Config{DSN: pgtest.Start(t), KeptExpunges: 2})
	defer s.Close()
	_, ss, inbox := newAccount(t, s, "alice@example.org")
	for i := range 5 {
		if _, err := ss.Append(ctx, inbox.ID, message(i)); err != nil {
			t.Fatal(err)
		}
	}
	count := func() (kept, rows int) {
		t.Helper()
		err := s.pool.QueryRow(ctx, `SELECT tombstones, (SELECT count(*) FROM tombstones WHERE mailbox_id = $1)
			FROM mailboxes WHERE id = $1`, inbox.ID).Scan(&kept, &rows)
		if err != nil {
			t.Fatal(err)
		}
		return kept, rows
	}

	// A tombstone for UID 1 already there (as an import of a source that
	// changed under it could leave).
	for _, q := range []string{
		`INSERT INTO tombstones (mailbox_id, uid, modseq) VALUES ($1, 1, 1)`,
		`UPDATE mailboxes SET tombstones = 1 WHERE id = $1`,
	} {
		if _, err := s.pool.Exec(ctx, q, inbox.ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ss.Expunge(ctx, inbox.ID, store.UIDSetOf(1), false); err != nil {
		t.Fatal(err)
	}
	if kept, rows := count(); kept != rows {
		t.Errorf("after renewing a tombstone: counted %d, there are %d", kept, rows)
	}

	// A count too high, with fewer tombstones than are kept (2) and with
	// more.
	for uid := store.UID(2); uid <= 5; uid++ {
		if uid == 2 || uid == 5 {
			if _, err := s.pool.Exec(ctx, `UPDATE mailboxes SET tombstones = 100 WHERE id = $1`, inbox.ID); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := ss.Expunge(ctx, inbox.ID, store.UIDSetOf(uid), false); err != nil {
			t.Fatal(err)
		}
		if kept, rows := count(); kept != rows {
			t.Errorf("after expunging %d with the count too high: counted %d, there are %d", uid, kept, rows)
		}
	}
}
