package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/buzon-mail/buzon/internal/store"
)

var _ store.Checker = (*Store)(nil)

// Check implements store.Checker. PostgreSQL keeps the rows themselves
// intact, so Check compares what this store keeps twice: the counters
// (quota usage, the MODSEQ counter, uidnext, highest_modseq,
// last_uidvalidity) with the rows they count, and bodies with the messages
// that use them. Each account is checked (and repaired) in a transaction
// holding its lock, so Check can run while nodes serve the account.
func (s *Store) Check(ctx context.Context, repair bool) (store.CheckReport, error) {
	var rep store.CheckReport
	add := func(account int64, repaired bool, format string, args ...any) {
		rep.Problems = append(rep.Problems, store.CheckProblem{AccountID: account, What: fmt.Sprintf(format, args...), Repaired: repaired})
	}

	// Accounts without a state row could never be written to.
	rows, err := s.pool.Query(ctx, `SELECT a.id FROM accounts a WHERE NOT EXISTS (SELECT 1 FROM account_state st WHERE st.account_id = a.id)`)
	if err != nil {
		return rep, fmt.Errorf("check: %w", mapErr(err))
	}
	stateless, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return rep, fmt.Errorf("check: %w", mapErr(err))
	}
	for _, id := range stateless {
		if repair {
			if _, err := s.pool.Exec(ctx, `INSERT INTO account_state (account_id) VALUES ($1) ON CONFLICT DO NOTHING`, id); err != nil {
				return rep, fmt.Errorf("check: %w", mapErr(err))
			}
		}
		add(id, repair, "no counter row")
	}

	rows, err = s.pool.Query(ctx, `SELECT id, import_state FROM accounts ORDER BY id`)
	if err != nil {
		return rep, fmt.Errorf("check: %w", mapErr(err))
	}
	type acct struct {
		id    int64
		state int16
	}
	accts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (acct, error) {
		var a acct
		err := r.Scan(&a.id, &a.state)
		return a, err
	})
	if err != nil {
		return rep, fmt.Errorf("check: %w", mapErr(err))
	}
	for _, a := range accts {
		if a.state == importRunning {
			add(a.id, false, "import not finished: run buzon migrate-store again")
			continue
		}
		var found []store.CheckProblem
		var n int64
		err := s.write(ctx, a.id, func(w *wtx) error {
			found = nil
			var err error
			n, err = w.check(repair, func(repaired bool, format string, args ...any) {
				found = append(found, store.CheckProblem{AccountID: a.id, What: fmt.Sprintf(format, args...), Repaired: repaired})
			})
			if err == nil && !repair {
				err = errNoCommit
			}
			return err
		})
		if errors.Is(err, store.ErrNoAccount) {
			continue // deleted meanwhile
		}
		if err != nil && !errors.Is(err, errNoCommit) {
			return rep, fmt.Errorf("check account %d: %w", a.id, err)
		}
		rep.Accounts++
		rep.Messages += n
		rep.Problems = append(rep.Problems, found...)
	}
	return rep, nil
}

// errNoCommit rolls back a check that was not to repair.
var errNoCommit = errors.New("check only")

// check checks one account under w's lock, reporting problems through
// report and, with repair, fixing what it can. It returns the number of
// messages checked.
func (w *wtx) check(repair bool, report func(repaired bool, format string, args ...any)) (int64, error) {
	ctx := w.ctx
	if err := w.lock(nil); err != nil {
		return 0, err
	}
	// Quota usage against the messages.
	var bytes, msgs int64
	if err := w.tx.QueryRow(ctx, `SELECT coalesce(sum(m.size), 0), count(*) FROM messages m
		JOIN mailboxes b ON b.id = m.mailbox_id WHERE b.account_id = $1`, w.account).Scan(&bytes, &msgs); err != nil {
		return 0, err
	}
	if bytes != w.bytes || msgs != w.messages {
		report(repair, "quota usage says %d bytes in %d messages; the messages hold %d bytes in %d", w.bytes, w.messages, bytes, msgs)
		w.bytes, w.messages, w.dirty = bytes, msgs, true
	}

	// The MODSEQ counter against every MODSEQ given out.
	var maxModSeq, maxUIDValidity, lastUIDValidity int64
	if err := w.tx.QueryRow(ctx, `SELECT greatest(0,
			(SELECT max(highest_modseq) FROM mailboxes WHERE account_id = $1),
			(SELECT max(m.modseq) FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id WHERE b.account_id = $1),
			(SELECT max(t.modseq) FROM tombstones t JOIN mailboxes b ON b.id = t.mailbox_id WHERE b.account_id = $1)),
			coalesce((SELECT max(uidvalidity) FROM mailboxes WHERE account_id = $1), 0),
			(SELECT last_value FROM uidvalidity_seq)`, w.account).Scan(&maxModSeq, &maxUIDValidity, &lastUIDValidity); err != nil {
		return 0, err
	}
	if maxModSeq > w.modseq {
		report(repair, "MODSEQ counter %d is below MODSEQ %d in use", w.modseq, maxModSeq)
		w.modseq, w.dirty = maxModSeq, true
	}
	if maxUIDValidity > lastUIDValidity {
		report(repair, "the UIDVALIDITY sequence (%d) is below UIDVALIDITY %d in use", lastUIDValidity, maxUIDValidity)
		if repair {
			if _, err := w.tx.Exec(ctx, `SELECT setval('uidvalidity_seq', $1)`, maxUIDValidity); err != nil {
				return 0, err
			}
		}
	}

	// Each mailbox's uidnext and highest_modseq against its messages and
	// tombstones.
	rows, err := w.tx.Query(ctx, `SELECT id, name, uidnext, highest_modseq, maxuid, maxmod FROM (
			SELECT b.id, b.name, b.uidnext, b.highest_modseq,
				coalesce(greatest((SELECT max(uid) FROM messages WHERE mailbox_id = b.id),
					(SELECT max(uid) FROM tombstones WHERE mailbox_id = b.id)), 0) AS maxuid,
				coalesce(greatest((SELECT max(modseq) FROM messages WHERE mailbox_id = b.id),
					(SELECT max(modseq) FROM tombstones WHERE mailbox_id = b.id)), 0) AS maxmod
			FROM mailboxes b WHERE b.account_id = $1) x
		WHERE maxuid >= uidnext OR maxmod > highest_modseq`, w.account)
	if err != nil {
		return 0, err
	}
	type mbox struct {
		id                                  int64
		name                                string
		uidnext, highest, maxUID, maxModSeq int64
	}
	bad, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (mbox, error) {
		var m mbox
		err := r.Scan(&m.id, &m.name, &m.uidnext, &m.highest, &m.maxUID, &m.maxModSeq)
		return m, err
	})
	if err != nil {
		return 0, err
	}
	for _, m := range bad {
		if m.maxUID >= m.uidnext {
			report(repair, "mailbox %q: UIDNEXT %d is not above UID %d in use", m.name, m.uidnext, m.maxUID)
		}
		if m.maxModSeq > m.highest {
			report(repair, "mailbox %q: highest MODSEQ %d is below MODSEQ %d in use", m.name, m.highest, m.maxModSeq)
		}
		if repair {
			if _, err := w.tx.Exec(ctx, `UPDATE mailboxes SET uidnext = greatest(uidnext, $2), highest_modseq = greatest(highest_modseq, $3)
				WHERE id = $1`, m.id, m.maxUID+1, m.maxModSeq); err != nil {
				return 0, err
			}
		}
	}

	// Each mailbox's count of its tombstones, which decides when the
	// oldest are forgotten.
	rows, err = w.tx.Query(ctx, `SELECT id, name, tombstones, n FROM (
			SELECT b.id, b.name, b.tombstones, (SELECT count(*) FROM tombstones WHERE mailbox_id = b.id) AS n
			FROM mailboxes b WHERE b.account_id = $1) x
		WHERE n <> tombstones`, w.account)
	if err != nil {
		return 0, err
	}
	type miscounted struct {
		id         int64
		name       string
		kept, real int64
	}
	wrong, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (miscounted, error) {
		var m miscounted
		err := r.Scan(&m.id, &m.name, &m.kept, &m.real)
		return m, err
	})
	if err != nil {
		return 0, err
	}
	for _, m := range wrong {
		report(repair, "mailbox %q: counts %d tombstones, has %d", m.name, m.kept, m.real)
		if repair {
			if _, err := w.tx.Exec(ctx, `UPDATE mailboxes SET tombstones = $2 WHERE id = $1`, m.id, m.real); err != nil {
				return 0, err
			}
		}
	}

	// Bodies no message uses: left by nothing this code does, but cheap to
	// find and safe to remove under the lock.
	tag, err := w.tx.Exec(ctx, `DELETE FROM bodies b WHERE b.account_id = $1
		AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.body_id = b.id)`, w.account)
	if err != nil {
		return 0, err
	}
	if n := tag.RowsAffected(); n > 0 {
		report(repair, "%d message bodies used by no message", n)
	}

	// Bodies whose chunks do not add up, and messages whose size is not
	// their body's: those messages cannot be served whole. Not repairable.
	var damaged, mismatched int64
	if err := w.tx.QueryRow(ctx, `SELECT count(*) FROM (
			SELECT b.id FROM bodies b LEFT JOIN body_chunks c ON c.body_id = b.id
			WHERE b.account_id = $1 GROUP BY b.id, b.size
			HAVING coalesce(sum(octet_length(c.data)), 0) <> b.size
				OR count(c.seq) <> (b.size + $2 - 1) / $2
				OR coalesce(max(c.seq), -1) <> count(c.seq) - 1) x`, w.account, int64(chunkSize)).Scan(&damaged); err != nil {
		return 0, err
	}
	if damaged > 0 {
		report(false, "%d message bodies are damaged (chunks missing or of the wrong size)", damaged)
	}
	if err := w.tx.QueryRow(ctx, `SELECT count(*) FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id
		JOIN bodies b ON b.id = m.body_id WHERE mb.account_id = $1 AND (b.size <> m.size OR b.account_id <> $1)`,
		w.account).Scan(&mismatched); err != nil {
		return 0, err
	}
	if mismatched > 0 {
		report(false, "%d messages do not match their bodies' sizes", mismatched)
	}
	return msgs, nil
}
