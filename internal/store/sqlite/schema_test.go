package sqlite

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

// TestAccountsSchemaUpgrade: an accounts.db written by a buzon before the
// secret table (schema version 1) is brought up to date when the store
// opens, keeping its accounts and taking secrets and aliases; one newer than this code is refused.
func TestAccountsSchemaUpgrade(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "accounts.db")
	db, err := openDB(path, 1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, db, accountsSchema[:1], nil); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO account (name, password_hash, scram_sha256, created)
		VALUES ('old@example.org', '$old$', '', 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	st := openTest(t, Config{Dir: dir})
	if a, err := st.LookupAccount(ctx, "old@example.org"); err != nil || a.Credentials.PasswordHash != "$old$" {
		t.Errorf("account of the version 1 database: %+v, %v", a, err)
	}
	if _, err := st.Secret(ctx, "s"); err != nil {
		t.Errorf("Secret after the upgrade: %v", err)
	}
	if err := st.AddAlias(ctx, "postmaster@example.org", "old@example.org"); err != nil {
		t.Errorf("AddAlias after the upgrade: %v", err)
	}
	if a, err := st.LookupAddress(ctx, "postmaster@example.org"); err != nil || a.Name != "old@example.org" {
		t.Errorf("alias after the upgrade reaches %+v, %v", a, err)
	}
	var v int
	if err := st.adb.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil || v != len(accountsSchema) {
		t.Errorf("user_version %d (%v), want %d", v, err, len(accountsSchema))
	}
	if _, err := st.adb.ExecContext(ctx, `PRAGMA user_version = 99`); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if st, err := Open(Config{Dir: dir}); err == nil || !strings.Contains(err.Error(), "upgrade buzon") {
		if err == nil {
			st.Close()
		}
		t.Errorf("Open of a database from a newer buzon: %v", err)
	}
}

// TestMailSchemaUpgrade: a mail.db from before the index of unseen
// messages (schema version 1) gains it when the account is next opened,
// and SELECT's first unseen message comes from it; it gains the count of
// each mailbox's tombstones too, and its tombstones lose a column never
// read (version 3), a table of Sieve scripts (version 4), save dates
// (version 5, see TestSaveDateUpgrade) and the record of automatic
// replies (version 6).
func TestMailSchemaUpgrade(t *testing.T) {
	// The index's condition spells store.FlagSeen as 1.
	if store.FlagSeen != 1 {
		t.Fatalf("store.FlagSeen = %d; message_unseen and Snapshot's query say 1", store.FlagSeen)
	}
	ctx := t.Context()
	dir := t.TempDir()
	st := openTest(t, Config{Dir: dir})
	acct, ss, inbox := newAccount(t, st, "alice@example.org")
	for i := range 3 {
		appendBody(t, ss, inbox.ID, fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", i))
	}
	if _, err := ss.StoreFlags(ctx, inbox.ID, store.UIDSetOf(1), store.FlagsAdd, store.Flags{System: store.FlagSeen}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := ss.Expunge(ctx, inbox.ID, store.UIDSetOf(3), false); err != nil {
		t.Fatal(err)
	}
	ss.Close()
	st.Close()

	// Back to version 1.
	path := filepath.Join(dir, accountsDir, strconv.FormatInt(acct.ID, 10), mailDBName)
	db, err := openDB(path, 1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DROP INDEX message_unseen`, `ALTER TABLE mailbox DROP COLUMN tombstones`,
		`ALTER TABLE mailbox DROP COLUMN forgotten`, `ALTER TABLE tombstone ADD COLUMN created_modseq INTEGER NOT NULL DEFAULT 0`,
		`DROP TABLE sieve_script`, `DROP INDEX message_saved`, `ALTER TABLE message DROP COLUMN saved`,
		`DROP TABLE vacation_reply`, `PRAGMA user_version = 1`} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	st = openTest(t, Config{Dir: dir})
	ss, err = st.Open(ctx, acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	snap, err := ss.Snapshot(ctx, inbox.ID)
	if err != nil || snap.FirstUnseen != 2 {
		t.Errorf("Snapshot after the upgrade: first unseen %v, %v; want 2", snap, err)
	}
	db, err = openDB(path, 1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var tombstones, forgotten int
	err = db.QueryRowContext(ctx, `SELECT tombstones, forgotten FROM mailbox WHERE id = ?`, inbox.ID).Scan(&tombstones, &forgotten)
	if err != nil || tombstones != 1 || forgotten != 0 {
		t.Errorf("INBOX after the upgrade: %d tombstones, forgotten to %d (%v); want 1, 0", tombstones, forgotten, err)
	}
	if _, err := db.ExecContext(ctx, `SELECT created_modseq FROM tombstone`); err == nil {
		t.Error("tombstone.created_modseq is still there after the upgrade")
	}
	// Version 4: Sieve scripts.
	if err := ss.PutSieveScript(ctx, "main", []byte("keep;"), 0); err != nil {
		t.Errorf("PutSieveScript after the upgrade: %v", err)
	}
	// Version 6: automatic replies.
	if due, err := ss.(store.ReplyTracker).ReplyDue(ctx, "k", time.Now(), time.Hour); !due || err != nil {
		t.Errorf("ReplyDue after the upgrade: %v, %v; want true", due, err)
	}
}
