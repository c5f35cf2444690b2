package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/postgres/pgtest"
)

// TestRoundTrips counts what the operations an IMAP session runs per
// command send to the database, on the wire: round trips, which cost
// both sides a wake-up and on a busy machine a wait for a CPU, and
// statements, each of which PostgreSQL parses, binds and runs. Counted
// with the statements already prepared on the connections, as they are
// in a running server.
func TestRoundTrips(t *testing.T) {
	ctx := t.Context()
	direct := pgtest.Start(t)
	dsn, w := proxyWire(t, direct)
	xids := nextXID(t, direct)
	// One connection, so that each statement is prepared once before
	// counting.
	s := openConfig(t, Config{DSN: dsn, MaxConns: 1})
	t.Cleanup(func() { s.Close() })
	alice, ss, inbox := newAccount(t, s, "alice@example.org")
	for i := range 10 {
		if _, err := ss.Append(ctx, inbox.ID, message(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := ss.PutSieveScript(ctx, "main", []byte("keep;"), 0); err != nil {
		t.Fatal(err)
	}
	if err := ss.ActivateSieveScript(ctx, "main"); err != nil {
		t.Fatal(err)
	}
	seen := store.Flags{System: store.FlagSeen}
	flagged := store.Flags{System: store.FlagFlagged}
	toggle := false
	var expunged store.UID
	tests := []struct {
		name string
		op   func() error
		want wireCount
	}{
		// A delivery opens a session and asks which script is active:
		// Open's query answers both.
		{"Open and ActiveSieveScriptInfo, as a delivery", func() error {
			began := time.Now()
			sess, err := s.Open(ctx, alice.ID)
			if err != nil {
				return err
			}
			defer sess.Close()
			sc, err := sess.ActiveSieveScriptInfo(ctx, began)
			if err == nil && sc.Name != "main" {
				t.Errorf("ActiveSieveScriptInfo = %+v, want main", sc)
			}
			return err
		}, wireCount{trips: 1, statements: 1}},
		{"ActiveSieveScriptInfo asked later", func() error {
			_, err := ss.ActiveSieveScriptInfo(ctx, time.Now())
			return err
		}, wireCount{trips: 1, statements: 1}},
		// Each run flags or unflags message 3 in turn, so each changes it.
		{"StoreFlags that changes a message", func() error {
			op := store.FlagsAdd
			if toggle = !toggle; !toggle {
				op = store.FlagsRemove
			}
			_, err := ss.StoreFlags(ctx, inbox.ID, store.UIDSetOf(3), op, flagged, 0)
			return err
		}, wireCount{trips: 2, statements: 3, commits: 1}},
		{"StoreFlags that changes nothing", func() error {
			_, err := ss.StoreFlags(ctx, inbox.ID, store.UIDSetOf(4), store.FlagsRemove, seen, 0)
			return err
		}, wireCount{trips: 1, statements: 1}},
		{"FETCH's \\Seen of a seen message", func() error {
			_, err := ss.StoreFlags(ctx, inbox.ID, store.UIDSetOf(5), store.FlagsAdd, seen, 0)
			return err
		}, wireCount{trips: 1, statements: 1}},
		{"Messages, 10 envelopes", func() error {
			return ss.Messages(ctx, inbox.ID, store.UIDSetOf(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), store.FieldStructure|store.FieldFlags|store.FieldSize,
				func(*store.MessageInfo) error { return nil })
		}, wireCount{trips: 1, statements: 1}},
		{"HighestModSeq asked", func() error {
			_, err := ss.HighestModSeq(ctx, inbox.ID, time.Now())
			return err
		}, wireCount{trips: 1, statements: 1}},
		{"Changes", func() error {
			_, err := ss.Changes(ctx, inbox.ID, 3)
			return err
		}, wireCount{trips: 1, statements: 1}},
		{"Snapshot", func() error {
			_, err := ss.Snapshot(ctx, inbox.ID)
			return err
		}, wireCount{trips: 1, statements: 7}},
		{"Status", func() error {
			_, err := ss.Status(ctx, inbox.ID)
			return err
		}, wireCount{trips: 1, statements: 1}},
		{"Append", func() error {
			_, err := ss.Append(ctx, inbox.ID, message(20))
			return err
		}, wireCount{trips: 1, statements: 3, commits: 1}},
		{"Expunge of nothing", func() error {
			_, err := ss.Expunge(ctx, inbox.ID, store.AllUIDs(), true)
			return err
		}, wireCount{trips: 1, statements: 1}},
		// Each run expunges the lowest message left.
		{"Expunge of a message", func() error {
			expunged++
			_, err := ss.Expunge(ctx, inbox.ID, store.UIDSetOf(expunged), false)
			return err
		}, wireCount{trips: 2, statements: 4, commits: 1}},
	}
	for _, tt := range tests {
		// Twice to prepare its statements (each path of Snapshot), once
		// counted.
		for range 2 {
			if err := tt.op(); err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
		}
		before, xid := w.count(), xids()
		if err := tt.op(); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got := w.since(before)
		got.commits = xids() - xid
		if got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// nextXID returns a function that tells the next transaction ID the
// database at dsn will assign, without taking one: a transaction takes
// one when it first writes or locks a row, and commits it with a sync to
// disk.
func nextXID(t *testing.T, dsn string) func() int64 {
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.WithoutCancel(t.Context())) })
	return func() int64 {
		var x int64
		if err := conn.QueryRow(t.Context(), `SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint`).Scan(&x); err != nil {
			t.Fatal(err)
		}
		return x
	}
}
