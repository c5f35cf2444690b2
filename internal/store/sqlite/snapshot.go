package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

// Snapshot implements store.Session. The counters come from the mailbox
// row and the UIDs from the (mailbox, uid) index, or from the Store's
// UIDCache and what changed since it was filled, in one read transaction.
func (ss *session) Snapshot(ctx context.Context, mailboxID int64) (*store.Snapshot, error) {
	if !ss.owns(mailboxID) {
		return nil, fmt.Errorf("snapshot: %w", noMailbox(mailboxID))
	}
	snap := &store.Snapshot{}
	err := ss.read(ctx, func(a *account) error {
		tx, err := a.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return err
		}
		defer tx.Rollback()
		now, messages, forgotten, err := readHead(ctx, tx, mailboxID)
		if errors.Is(err, sql.ErrNoRows) {
			return noMailbox(mailboxID)
		} else if err != nil {
			return err
		}
		if err := ss.s.readUIDs(ctx, tx, now, messages, forgotten); err != nil {
			return err
		}
		snap.UIDs = slices.Clone(now.UIDs) // the cache's copy stays as it is
		snap.HighestModSeq, snap.UIDNext = now.ModSeq, now.UIDNext
		err = tx.QueryRowContext(ctx, `SELECT uid FROM message INDEXED BY message_unseen
			WHERE mailbox = ? AND flags & 1 = 0 ORDER BY uid LIMIT 1`, mailboxID).Scan(&snap.FirstUnseen)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		snap.Keywords, err = mailboxKeywords(ctx, tx, mailboxID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot of mailbox %d: %w", mailboxID, err)
	}
	return snap, nil
}

// readHead reads what Snapshot and Changes need of a mailbox's row: its
// counters, as a list for the UID cache without its UIDs, how many
// messages it holds, and the MODSEQ its expunges are forgotten to. The
// error is sql.ErrNoRows when the mailbox does not exist.
func readHead(ctx context.Context, tx *sql.Tx, mailboxID int64) (now *store.CachedUIDs, messages int, forgotten store.ModSeq, err error) {
	now = &store.CachedUIDs{MailboxID: mailboxID}
	err = tx.QueryRowContext(ctx, `SELECT uidvalidity, modseq, uidnext, messages, forgotten FROM mailbox WHERE id = ?`, mailboxID).
		Scan(&now.UIDValidity, &now.ModSeq, &now.UIDNext, &messages, &forgotten)
	return now, messages, forgotten, err
}

// readUIDs fills now.UIDs with the mailbox's UIDs as tx sees them, given
// the counters tx read and the MODSEQ its expunges are forgotten to, and
// caches them. A cached list of the same mailbox is brought up to date
// with the UIDs expunged after its MODSEQ (the tombstones, unless some
// after it are forgotten) and those at or above its UIDNext (UIDs only
// grow), and used if the result has as many UIDs as the mailbox has
// messages; otherwise, or without one, every UID is read. now.UIDs may be
// the cache's: it must not be modified.
func (s *Store) readUIDs(ctx context.Context, tx *sql.Tx, now *store.CachedUIDs, messages int, forgotten store.ModSeq) error {
	c := s.uids.Get(now.MailboxID)
	if c != nil && c.UIDValidity == now.UIDValidity && c.ModSeq == now.ModSeq && c.UIDNext == now.UIDNext && len(c.UIDs) == messages {
		now.UIDs = c.UIDs
		return nil
	}
	if c != nil && c.UIDValidity == now.UIDValidity && c.ModSeq <= now.ModSeq && c.UIDNext <= now.UIDNext && c.ModSeq >= forgotten {
		expunged, err := expungedSince(ctx, tx, now.MailboxID, c.ModSeq)
		if err != nil {
			return err
		}
		added, err := queryColumn[store.UID](ctx, tx, `SELECT uid FROM message WHERE mailbox = ? AND uid >= ? ORDER BY uid`,
			now.MailboxID, c.UIDNext)
		if err != nil {
			return err
		}
		if uids := store.Advance(c.UIDs, expunged, added); len(uids) == messages {
			now.UIDs = uids
			s.uids.Put(now)
			return nil
		}
		s.log.Warn("cached UIDs disagree with the message count; reading them all",
			"mailbox", now.MailboxID, "messages", messages, "cached_modseq", c.ModSeq,
			"cached_uidnext", c.UIDNext, "modseq", now.ModSeq, "uidnext", now.UIDNext)
	}
	// One row with every UID, not a row each: stepping through 100,000
	// rows pays the driver's per-row overhead 100,000 times, and costs
	// more than twice what building and parsing the string does
	// (BenchmarkSnapshot100k).
	var list []byte
	err := tx.QueryRowContext(ctx, `SELECT group_concat(uid) FROM (SELECT uid FROM message WHERE mailbox = ? ORDER BY uid)`, now.MailboxID).Scan(&list)
	if err != nil {
		return err
	}
	if now.UIDs, err = parseUIDList(list, messages); err != nil {
		return err
	}
	s.uids.Put(now)
	return nil
}

// expungedSince returns the UIDs expunged from a mailbox after a MODSEQ,
// ascending. Without the index named, SQLite walks every tombstone of the
// mailbox in UID order to skip the sort, and tombstones only accumulate.
func expungedSince(ctx context.Context, tx *sql.Tx, mailboxID int64, since store.ModSeq) ([]store.UID, error) {
	return queryColumn[store.UID](ctx, tx, `SELECT uid FROM tombstone INDEXED BY tombstone_modseq
		WHERE mailbox = ? AND modseq > ? ORDER BY uid`, mailboxID, since)
}

// queryColumn runs a query whose rows are one value each.
func queryColumn[T any](ctx context.Context, q queryer, query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// parseUIDList reads a comma-separated list of UIDs, sorting it if SQLite
// did not keep the subquery's order (which it does, without promising it).
func parseUIDList(list []byte, n int) ([]store.UID, error) {
	uids := make([]store.UID, 0, n)
	sorted := true
	for len(list) > 0 {
		field := list
		if i := bytes.IndexByte(list, ','); i >= 0 {
			field, list = list[:i], list[i+1:]
		} else {
			list = nil
		}
		u, err := strconv.ParseUint(string(field), 10, 32)
		if err != nil || u == 0 {
			return nil, fmt.Errorf("UID list: bad UID %q", field)
		}
		if len(uids) > 0 && store.UID(u) <= uids[len(uids)-1] {
			sorted = false
		}
		uids = append(uids, store.UID(u))
	}
	if !sorted {
		slices.Sort(uids)
	}
	return uids, nil
}

// HighestModSeq implements store.Session. The read is in-process and
// cheap, so it always reads.
func (ss *session) HighestModSeq(ctx context.Context, mailboxID int64, _ time.Time) (store.ModSeq, error) {
	if !ss.owns(mailboxID) {
		return 0, fmt.Errorf("highest modseq: %w", noMailbox(mailboxID))
	}
	var ms store.ModSeq
	err := ss.read(ctx, func(a *account) error {
		err := a.db.QueryRowContext(ctx, `SELECT modseq FROM mailbox WHERE id = ?`, mailboxID).Scan(&ms)
		if errors.Is(err, sql.ErrNoRows) {
			return noMailbox(mailboxID)
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("highest modseq of mailbox %d: %w", mailboxID, err)
	}
	return ms, nil
}
