package postgres

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/buzon-mail/buzon/internal/store"
)

// TestGenericPlans: the queries that read messages by UID range or MODSEQ
// keep an index range scan as the generic plan the pool's connections run
// (plan_cache_mode, see Open), in a database where most mailboxes are
// small and one is large: the statistics that tempt the planner to scan
// the whole mailbox and filter, which costs the large mailbox's size on
// every STORE or EXPUNGE of one message.
func TestGenericPlans(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := nodes(t, 1)[0]
	acct, _, inbox := newAccount(t, s, "alice@example.org")
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, q := range []string{
			`INSERT INTO bodies (account_id, size) VALUES ($1, 10)`,
			// 200 small mailboxes of 20 messages, and INBOX of 20,000.
			`INSERT INTO mailboxes (account_id, name, uidvalidity)
				SELECT $1, 'small' || g, g FROM generate_series(1, 200) g`,
			`INSERT INTO messages (mailbox_id, uid, body_id, modseq, created_modseq, internal_date, size, structure)
				SELECT b.id, g, (SELECT max(id) FROM bodies), g, g, now(), 10, ''
				FROM mailboxes b, generate_series(1, 20) g WHERE b.account_id = $1 AND b.name LIKE 'small%'`,
			`INSERT INTO messages (mailbox_id, uid, body_id, modseq, created_modseq, internal_date, size, structure)
				SELECT b.id, g, (SELECT max(id) FROM bodies), g, g, now(), 10, ''
				FROM mailboxes b, generate_series(1, 20000) g WHERE b.account_id = $1 AND b.name = 'INBOX'`,
			`INSERT INTO tombstones (mailbox_id, uid, modseq)
				SELECT b.id, g + 100000, g + 100000 FROM mailboxes b, generate_series(1, 20) g WHERE b.account_id = $1`,
		} {
			args := []any{acct.ID}
			if !strings.Contains(q, "$1") {
				args = nil
			}
			if _, err := tx.Exec(ctx, q, args...); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := conn.QueryRow(ctx, `SHOW plan_cache_mode`).Scan(&mode); err != nil || mode != "force_generic_plan" {
		t.Fatalf("plan_cache_mode of the pool's connections = %q, %v", mode, err)
	}
	mb, id := inbox.ID, acct.ID
	for _, c := range []struct {
		name, sql, args string
	}{
		{"selectPage", selectPage, fmt.Sprintf("%d, '{5}', '{6}', false, 1000, %d", mb, id)},
		{"selectFlags", selectFlags, fmt.Sprintf("%d, '{5}', '{6}', %d", mb, id)},
		{"selectGone", selectGone, fmt.Sprintf("%d, '{5}', '{6}', true, 8", mb)},
		{"selectExpunged", selectExpunged, fmt.Sprintf("%d, '{5}', '{6}', true, 8, %d", mb, id)},
		{"selectRetrieved", selectRetrieved, fmt.Sprintf("%d, '{5}', '{6}'", mb)},
		{"selectChanged", selectChanged, fmt.Sprintf("%d, 19999", mb)},
		{"selectVanished", selectVanished, fmt.Sprintf("%d, 100019", mb)},
		{"selectAdded", selectAdded, fmt.Sprintf("%d, 19999", mb)},
	} {
		t.Run(c.name, func(t *testing.T) {
			name := strings.ToLower(c.name)
			if _, err := conn.Exec(ctx, "PREPARE "+name+" AS "+c.sql); err != nil {
				t.Fatal(err)
			}
			plan := explain(t, conn, "EXPLAIN EXECUTE "+name+"("+c.args+")")
			if wholeMailbox.MatchString(plan) {
				t.Errorf("the generic plan reads the whole mailbox:\n%s", plan)
			}
			if !strings.Contains(plan, "Index Cond: ((mailbox_id = $1) AND (") {
				t.Errorf("no index scan bounded by UID or MODSEQ in the generic plan:\n%s", plan)
			}
		})
	}
}

// TestFirstUnseenPlan: SELECT finds a mailbox's first unseen message
// through the index of unseen messages, not by walking the read ones,
// and the index's condition matches store.FlagSeen.
func TestFirstUnseenPlan(t *testing.T) {
	t.Parallel()
	if store.FlagSeen != 1 {
		t.Fatalf("store.FlagSeen = %d; messages_unseen and selectFirstUnseen say 1", store.FlagSeen)
	}
	ctx := t.Context()
	s := nodes(t, 1)[0]
	_, _, inbox := newAccount(t, s, "alice@example.org")
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "PREPARE first_unseen AS "+selectFirstUnseen); err != nil {
		t.Fatal(err)
	}
	if plan := explain(t, conn, fmt.Sprintf("EXPLAIN EXECUTE first_unseen(%d)", inbox.ID)); !strings.Contains(plan, "messages_unseen") {
		t.Errorf("the first unseen message is not read through messages_unseen:\n%s", plan)
	}
}

// explain runs an EXPLAIN statement and returns the plan.
func explain(t *testing.T, conn *pgxpool.Conn, statement string) string {
	t.Helper()
	rows, err := conn.Query(t.Context(), statement)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// wholeMailbox matches a plan line that reads a whole table or all of a
// mailbox's rows.
var wholeMailbox = regexp.MustCompile(`Seq Scan on (messages|tombstones)|Index Cond: \(mailbox_id = \$1\)(\n|$)`)

// TestPresentPlan: Changes's reading of every UID, for callers asking
// from below the forgotten expunges, reads no message of a mailbox that
// forgot none after the MODSEQ asked about: its condition is checked
// once, before the scan.
func TestPresentPlan(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := nodes(t, 1)[0]
	_, ss, inbox := newAccount(t, s, "alice@example.org")
	for i := range 3 {
		if _, err := ss.Append(ctx, inbox.ID, message(i)); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "PREPARE present AS "+selectPresent); err != nil {
		t.Fatal(err)
	}
	run := func(since int) string {
		t.Helper()
		return explain(t, conn, fmt.Sprintf("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) EXECUTE present(%d, %d)", inbox.ID, since))
	}
	if plan := run(0); !strings.Contains(plan, "never executed") {
		t.Errorf("with nothing forgotten, the messages are read:\n%s", plan)
	}
	if _, err := conn.Exec(ctx, `UPDATE mailboxes SET forgotten_modseq = 2 WHERE id = $1`, inbox.ID); err != nil {
		t.Fatal(err)
	}
	if plan := run(1); !strings.Contains(plan, "rows=3") {
		t.Errorf("from below the forgotten expunges, every UID is not read:\n%s", plan)
	}
}

// TestAppendOrphanPlan: the statement every Append of one chunk runs
// removes the body it inserted when the message is refused (over quota,
// say) by an index lookup, not by reading every account's bodies while
// it holds the account's lock.
func TestAppendOrphanPlan(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := nodes(t, 1)[0]
	acct, _, inbox := newAccount(t, s, "alice@example.org")
	other, _, _ := newAccount(t, s, "bob@example.org")
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `INSERT INTO bodies (account_id, size) SELECT $1, 10 FROM generate_series(1, 10000)`, other.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `ANALYZE bodies`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "PREPARE append_message AS "+appendMessage); err != nil {
		t.Fatal(err)
	}
	plan := explain(t, conn, fmt.Sprintf("EXPLAIN EXECUTE append_message(%d, %d, 10, 0, '', now(), '', '%d', now())", acct.ID, inbox.ID, acct.ID))
	if strings.Contains(plan, "Seq Scan on bodies") {
		t.Errorf("appendMessage reads every body:\n%s", plan)
	}
}

// TestExpireSavedPlan: autoexpunge's question, whether a mailbox holds
// anything saved before a time, is answered from the index messages_saved
// in the generic plan, without reading the mailbox's messages: it runs at
// every login for Trash and Junk, and the answer is nearly always no.
func TestExpireSavedPlan(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := nodes(t, 1)[0]
	acct, _, _ := newAccount(t, s, "alice@example.org")
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, q := range []string{
			`INSERT INTO bodies (account_id, size) VALUES ($1, 10)`,
			`INSERT INTO messages (mailbox_id, uid, body_id, modseq, created_modseq, internal_date, size, structure, saved)
				SELECT b.id, g, (SELECT max(id) FROM bodies), g, g, now() - interval '1 year', 10, '', now()
				FROM mailboxes b, generate_series(1, 20000) g WHERE b.account_id = $1 AND b.name = 'Trash'`,
			`ANALYZE messages`,
		} {
			args := []any{acct.ID}
			if !strings.Contains(q, "$1") {
				args = nil
			}
			if _, err := tx.Exec(ctx, q, args...); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var trash int64
	if err := s.pool.QueryRow(ctx, `SELECT id FROM mailboxes WHERE account_id = $1 AND name = 'Trash'`, acct.ID).Scan(&trash); err != nil {
		t.Fatal(err)
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "PREPARE any_saved AS "+selectAnySaved); err != nil {
		t.Fatal(err)
	}
	plan := explain(t, conn, fmt.Sprintf("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) EXECUTE any_saved(%d, now() - interval '30 days', %d)", trash, acct.ID))
	if !strings.Contains(plan, "messages_saved") || strings.Contains(plan, "Seq Scan on messages") {
		t.Errorf("whether anything is due is not read from messages_saved:\n%s", plan)
	}
}
