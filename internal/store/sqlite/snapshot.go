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

// Snapshot implements store.Session. The UIDs come from the (mailbox, uid)
// index alone; the counters from the mailbox row, in the same read
// transaction.
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
		var messages int
		err = tx.QueryRowContext(ctx, `SELECT modseq, uidnext, messages FROM mailbox WHERE id = ?`, mailboxID).
			Scan(&snap.HighestModSeq, &snap.UIDNext, &messages)
		if errors.Is(err, sql.ErrNoRows) {
			return noMailbox(mailboxID)
		} else if err != nil {
			return err
		}
		// One row with every UID, not a row each: stepping through 100,000
		// rows pays the driver's per-row overhead 100,000 times, and costs
		// more than twice what building and parsing the string does
		// (BenchmarkSnapshot100k).
		var list []byte
		err = tx.QueryRowContext(ctx, `SELECT group_concat(uid) FROM (SELECT uid FROM message WHERE mailbox = ? ORDER BY uid)`, mailboxID).Scan(&list)
		if err != nil {
			return err
		}
		snap.UIDs, err = parseUIDList(list, messages)
		if err != nil {
			return err
		}
		// Walks the UID index until the first unseen message: short in the
		// usual mailbox, whose old mail is read.
		err = tx.QueryRowContext(ctx, `SELECT uid FROM message WHERE mailbox = ? AND flags & ? = 0 ORDER BY uid LIMIT 1`,
			mailboxID, store.FlagSeen).Scan(&snap.FirstUnseen)
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
