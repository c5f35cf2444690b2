package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

func openCacheTest(t *testing.T) *sql.DB {
	db, err := openDB(filepath.Join(t.TempDir(), "t.db"), 1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	for k := range 5 {
		if _, err := db.Exec(`INSERT INTO t (k, v) VALUES (?, ?)`, k, fmt.Sprint("v", k)); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// A statement whose rows are still open runs unprepared when its text
// comes again on the same connection, and both give their own rows.
func TestStmtCacheBusy(t *testing.T) {
	db := openCacheTest(t)
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil) // one connection for everything below
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	const q = `SELECT k FROM t WHERE k >= ? ORDER BY k`
	outer, err := tx.QueryContext(ctx, q, 1)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for outer.Next() {
		var k int
		if err := outer.Scan(&k); err != nil {
			t.Fatal(err)
		}
		var inner []int
		rows, err := tx.QueryContext(ctx, q, 3)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var k2 int
			rows.Scan(&k2)
			inner = append(inner, k2)
		}
		rows.Close()
		if fmt.Sprint(inner) != "[3 4]" {
			t.Fatalf("inner query while the outer one is open: %v", inner)
		}
		got = append(got, k)
	}
	if err := outer.Err(); err != nil {
		t.Fatal(err)
	}
	outer.Close()
	if fmt.Sprint(got) != "[1 2 3 4]" {
		t.Errorf("outer query: %v", got)
	}
	// Prepared again and reused once the rows are closed.
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM t WHERE k >= ?`, 2).Scan(&n); err != nil || n != 3 {
		t.Errorf("count: %d, %v", n, err)
	}
}

// More distinct statements than the cache holds: old ones are evicted,
// every one still runs, errors reach the caller.
func TestStmtCacheEviction(t *testing.T) {
	db := openCacheTest(t)
	for round := range 2 {
		for i := range 2 * stmtCacheSize {
			var v string
			q := fmt.Sprintf(`SELECT v FROM t WHERE k = ? AND %d = %d`, i, i)
			if err := db.QueryRow(q, i%5).Scan(&v); err != nil || v != fmt.Sprint("v", i%5) {
				t.Fatalf("round %d, query %d: %q, %v", round, i, v, err)
			}
			if _, err := db.Exec(fmt.Sprintf(`UPDATE t SET v = v WHERE k = %d`, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := db.Exec(`SELECT nosuchcolumn FROM t`); err == nil {
		t.Error("a bad statement succeeded")
	}
	if _, err := db.Exec(`INSERT INTO t (k, v) VALUES (1, 'dup')`); err == nil {
		t.Error("a duplicate key was inserted twice through a cached statement")
	}
	db.SetMaxIdleConns(0) // closes the connection and its statements
	if err := db.Ping(); err != nil {
		t.Error(err)
	}
}
