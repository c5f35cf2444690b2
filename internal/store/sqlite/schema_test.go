package sqlite

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAccountsSchemaUpgrade: an accounts.db written by a buzon before the
// secret table (schema version 1) is brought up to date when the store
// opens, keeping its accounts; one newer than this code is refused.
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
