package postgres

import (
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestTombstoneCountMigration: a database from before the count of each
// mailbox's tombstones (schema version 4) gains it, counted from the rows,
// with nothing forgotten.
func TestTombstoneCountMigration(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn, conn := databaseAt(t, 4)
	for _, q := range []string{
		`INSERT INTO accounts (name, password_hash, scram_sha256, created) VALUES ('old@example.org', '$old$', '', now())`,
		`INSERT INTO mailboxes (account_id, name, uidvalidity) SELECT id, n, 7 FROM accounts, unnest('{INBOX,Trash}'::text[]) n`,
		`INSERT INTO tombstones (mailbox_id, uid, modseq) SELECT id, g, g FROM mailboxes, generate_series(1, 3) g WHERE name = 'INBOX'`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s := openTest(t, dsn)
	defer s.Close()
	rows, err := conn.Query(ctx, `SELECT name, tombstones, forgotten_modseq FROM mailboxes ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	type counted struct {
		Name                  string
		Tombstones, Forgotten int64
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[counted])
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != (counted{"INBOX", 3, 0}) || got[1] != (counted{"Trash", 0, 0}) {
		t.Errorf("mailboxes after the migration: %+v, want INBOX with 3 tombstones, Trash with none", got)
	}
}
