package postgres

import "testing"

// TestSecretsMigration: a database at schema version 1, from before the
// secrets table, with an account in it, is migrated when a node opens it;
// the account stays and Secret works.
func TestSecretsMigration(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn, conn := databaseAt(t, 1)
	if _, err := conn.Exec(ctx, `INSERT INTO accounts (name, password_hash, scram_sha256, created)
		VALUES ('old@example.org', '$old$', '', now())`); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, dsn)
	defer s.Close()
	if a, err := s.LookupAccount(ctx, "old@example.org"); err != nil || a.Credentials.PasswordHash != "$old$" {
		t.Errorf("account of the version 1 database: %+v, %v", a, err)
	}
	if _, err := s.Secret(ctx, "s"); err != nil {
		t.Errorf("Secret after the migration: %v", err)
	}
	var v int
	if err := conn.QueryRow(ctx, `SELECT version FROM schema_version`).Scan(&v); err != nil || v != SchemaVersion() {
		t.Errorf("schema version %d (%v), want %d", v, err, SchemaVersion())
	}
}
