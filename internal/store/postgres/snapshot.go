package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/buzon-mail/buzon/internal/store"
)

// Snapshot implements store.Session: one repeatable-read transaction, one
// pass over the mailbox's messages in UID order, in one round trip.
func (ss *session) Snapshot(ctx context.Context, mailboxID int64) (*store.Snapshot, error) {
	snap := &store.Snapshot{}
	var b pgx.Batch
	var found bool
	ss.queueHead(&b, mailboxID, &snap.UIDNext, &snap.HighestModSeq, &found)
	b.Queue(`SELECT uid, flags & $2 = 0 FROM messages WHERE mailbox_id = $1 ORDER BY uid`, mailboxID, int16(store.FlagSeen)).
		Query(func(rows pgx.Rows) error {
			var uid int64
			var unseen bool
			_, err := pgx.ForEachRow(rows, []any{&uid, &unseen}, func() error {
				snap.UIDs = append(snap.UIDs, store.UID(uid))
				if unseen && snap.FirstUnseen == 0 {
					snap.FirstUnseen = store.UID(uid)
				}
				return nil
			})
			return err
		})
	queueKeywords(&b, mailboxID, &snap.Keywords)
	began := time.Now()
	err := ss.s.read(ctx, &b)
	if err == nil && !found {
		// What the queries after the first found is not the account's.
		err = store.ErrNoMailbox
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot of mailbox %d: %w", mailboxID, err)
	}
	ss.saw(mailboxID, snap.HighestModSeq, began)
	return snap, nil
}

// queueHead queues on b the reading of a mailbox's UIDNEXT and highest
// MODSEQ; when b has run, found says whether the mailbox is the account's.
func (ss *session) queueHead(b *pgx.Batch, mailboxID int64, uidNext *store.UID, highestModSeq *store.ModSeq, found *bool) {
	b.Queue(`SELECT uidnext, highest_modseq FROM mailboxes WHERE id = $1 AND account_id = $2`, mailboxID, ss.id).
		QueryRow(func(r pgx.Row) error {
			var uidnext, hms int64
			err := r.Scan(&uidnext, &hms)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			*uidNext, *highestModSeq, *found = store.UID(uidnext), store.ModSeq(hms), err == nil
			return err
		})
}

// queueKeywords queues on b the query for the keywords in use in a
// mailbox, one spelling of each, ordered case-insensitively, stored in
// *out when b runs.
func queueKeywords(b *pgx.Batch, mailboxID int64, out *[]string) {
	b.Queue(`SELECT DISTINCT keywords FROM messages WHERE mailbox_id = $1 AND keywords <> ''`, mailboxID).
		Query(func(rows pgx.Rows) error {
			sets, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			var kws []string
			for _, set := range sets {
				kws = store.Flags{Keywords: kws}.Apply(store.FlagsAdd, store.Flags{Keywords: splitKeywords(set)}).Keywords
			}
			slices.SortFunc(kws, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
			*out = kws
			return nil
		})
}

// HighestModSeq implements store.Session. It answers without a query
// when an operation of the session that began at or after notBefore saw
// the mailbox: an IMAP command's own reads and writes then answer for the
// question the server asks after it, which saves a round trip per
// command.
func (ss *session) HighestModSeq(ctx context.Context, mailboxID int64, notBefore time.Time) (store.ModSeq, error) {
	ss.mu.Lock()
	v, ok := ss.seen[mailboxID]
	ss.mu.Unlock()
	if ok && !v.began.Before(notBefore) {
		return v.modSeq, nil
	}
	began := time.Now()
	var hms int64
	err := ss.s.pool.QueryRow(ctx, `SELECT highest_modseq FROM mailboxes WHERE id = $1 AND account_id = $2`,
		mailboxID, ss.id).Scan(&hms)
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNoMailbox
	}
	if err != nil {
		return 0, fmt.Errorf("highest modseq of mailbox %d: %w", mailboxID, mapErr(err))
	}
	ss.saw(mailboxID, store.ModSeq(hms), began)
	return store.ModSeq(hms), nil
}
