package postgres

import (
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/buzon-mail/buzon/internal/store/postgres/pgtest"
)

// openTest opens a Store on dsn for a test, logging through the test.
func openTest(t testing.TB, dsn string) *Store {
	t.Helper()
	return openConfig(t, Config{DSN: dsn})
}

// openConfig is openTest with more of the configuration than the DSN.
func openConfig(t testing.TB, cfg Config) *Store {
	t.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// testWriter writes log lines to the test's log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// databaseAt starts a database at schema version v, as an older buzon
// left it, and returns its DSN and a connection to it, closed when the
// test ends.
func databaseAt(t *testing.T, v int) (string, *pgx.Conn) {
	t.Helper()
	ctx := t.Context()
	dsn := pgtest.Start(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	for {
		if done, err := migrateOne(ctx, conn, migrations()[:v]); err != nil {
			t.Fatal(err)
		} else if done {
			return dsn, conn
		}
	}
}
