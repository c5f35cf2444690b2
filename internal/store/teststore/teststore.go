// Package teststore opens the store that protocol test suites run on: the
// embedded sqlite backend by default, PostgreSQL when the environment says
// BUZON_TEST_STORE=postgres. scripts/test.sh runs the IMAP and POP3 suites
// both ways, so both backends pass the same protocol tests.
//
// It is for tests only; it imports both backends, which no protocol package
// may do outside its tests.
package teststore

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/postgres"
	"github.com/buzon-mail/buzon/internal/store/postgres/pgtest"
	"github.com/buzon-mail/buzon/internal/store/sqlite"
)

// Backend is the backend chosen by BUZON_TEST_STORE: "sqlite" or
// "postgres".
func Backend() string {
	if os.Getenv("BUZON_TEST_STORE") == "postgres" {
		return "postgres"
	}
	return "sqlite"
}

// EmbeddedOnly skips a test on PostgreSQL: one whose subject is the
// protocol layer alone, such as a comparison of answers with Dovecot's,
// which the run on the embedded store covers; the PostgreSQL run is for
// what depends on the store.
func EmbeddedOnly(tb testing.TB) {
	tb.Helper()
	if Backend() != "sqlite" {
		tb.Skip("tests the protocol layer alone; run on the embedded store")
	}
}

// Main runs a package's tests and then stops the PostgreSQL cluster, if
// one was started. Call it from TestMain.
func Main(m *testing.M) { pgtest.Main(m) }

// schema is the template of the PostgreSQL databases Open makes: an empty
// store, its migrations applied once for the whole test binary, not once
// a test. A copy differs from a store migrated anew in one thing: its
// UIDVALIDITY sequence starts at the time the template was made, the same
// in every copy, not at the copy's.
var schema = &pgtest.Template{Name: "buzon_schema", Prepare: func(dsn string) error {
	st, err := postgres.Open(context.Background(), postgres.Config{DSN: dsn})
	if err != nil {
		return err
	}
	return st.Close()
}}

// databases maps a storage key to its PostgreSQL database, so that opening
// the same key twice reaches the same data, as reopening a folder does.
// Package state, because a test binary is one process; tests only.
var databases sync.Map // key -> dsn

// Options are settings both backends have.
type Options struct {
	// KeptExpunges, if not 0, is the backend's Config.KeptExpunges.
	KeptExpunges int
	// Now, if not nil, is the backend's Config.Now: the clock of save
	// dates.
	Now func() time.Time
}

// Open opens a store on the storage named by key (a folder, for sqlite;
// for PostgreSQL, a database made for that key on first use) and closes it
// when the test ends. Opening the same key again, after closing the first
// store or alongside it, is a restart or a second process on the same data.
func Open(tb testing.TB, key string) store.Store {
	tb.Helper()
	return OpenWith(tb, key, Options{})
}

// OpenWith is Open with options.
func OpenWith(tb testing.TB, key string, opts Options) store.Store {
	tb.Helper()
	var st store.Store
	var err error
	switch Backend() {
	case "postgres":
		dsn, ok := databases.Load(key)
		if !ok {
			dsn, _ = databases.LoadOrStore(key, pgtest.StartFrom(tb, schema))
		}
		cfg := postgres.DefaultConfig()
		cfg.DSN = dsn.(string)
		if opts.KeptExpunges != 0 {
			cfg.KeptExpunges = opts.KeptExpunges
		}
		cfg.Now = opts.Now
		st, err = postgres.Open(context.Background(), cfg)
	default:
		cfg := sqlite.DefaultConfig()
		cfg.Dir = key
		if opts.KeptExpunges != 0 {
			cfg.KeptExpunges = opts.KeptExpunges
		}
		cfg.Now = opts.Now
		st, err = sqlite.Open(cfg)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := st.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	return st
}
