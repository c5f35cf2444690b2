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

// Snapshot implements store.Session: one repeatable-read transaction in
// one round trip. With a list of the mailbox in the Store's UIDCache, it
// reads only the UIDs expunged after the list's MODSEQ (the tombstones)
// and those at or above its UIDNext (UIDs only grow); without one, or
// when the mailbox is not the one the list was read from, every UID.
func (ss *session) Snapshot(ctx context.Context, mailboxID int64) (*store.Snapshot, error) {
	began := time.Now()
	c := ss.s.uids.Get(mailboxID)
	snap, now, err := ss.readSnapshot(ctx, mailboxID, c)
	if err == nil && now == nil {
		c = nil
		snap, now, err = ss.readSnapshot(ctx, mailboxID, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot of mailbox %d: %w", mailboxID, err)
	}
	if c == nil || now.ModSeq != c.ModSeq {
		ss.s.uids.Put(now)
	}
	ss.saw(mailboxID, snap.HighestModSeq, began)
	return snap, nil
}

// readSnapshot reads a mailbox from the cached list c, or every UID when c
// is nil, and returns the snapshot and the list for the cache. It returns
// a nil list, and no error, when c does not fit what it read: a mailbox
// of another UIDVALIDITY, a list newer than the transaction, or one older
// than the expunges the mailbox remembers.
func (ss *session) readSnapshot(ctx context.Context, mailboxID int64, c *store.CachedUIDs) (*store.Snapshot, *store.CachedUIDs, error) {
	snap := &store.Snapshot{}
	now := &store.CachedUIDs{MailboxID: mailboxID}
	var b pgx.Batch
	var h head
	ss.queueHead(&b, mailboxID, &h)
	var expunged, added []store.UID
	if c == nil {
		b.Queue(`SELECT uid, flags & $2 = 0 FROM messages WHERE mailbox_id = $1 ORDER BY uid`, mailboxID, int16(store.FlagSeen)).
			Query(func(rows pgx.Rows) error {
				var uid int64
				var unseen bool
				_, err := pgx.ForEachRow(rows, []any{&uid, &unseen}, func() error {
					now.UIDs = append(now.UIDs, store.UID(uid))
					if unseen && snap.FirstUnseen == 0 {
						snap.FirstUnseen = store.UID(uid)
					}
					return nil
				})
				return err
			})
	} else {
		queueUIDs(&b, &expunged, selectVanished, mailboxID, int64(c.ModSeq))
		queueUIDs(&b, &added, selectAdded, mailboxID, int64(c.UIDNext))
		b.Queue(selectFirstUnseen, mailboxID).
			QueryRow(func(r pgx.Row) error {
				var uid int64
				if err := r.Scan(&uid); err != nil && !errors.Is(err, pgx.ErrNoRows) {
					return err
				}
				snap.FirstUnseen = store.UID(uid)
				return nil
			})
	}
	queueKeywords(&b, mailboxID, &snap.Keywords)
	err := ss.s.read(ctx, &b)
	if err == nil && !h.found {
		// What the queries after the first found is not the account's.
		err = store.ErrNoMailbox
	}
	if err != nil {
		return nil, nil, err
	}
	now.UIDValidity, now.UIDNext, now.ModSeq = h.uidValidity, h.uidNext, h.modSeq
	if c != nil {
		if now.UIDValidity == c.UIDValidity && c.ModSeq < h.forgotten {
			return nil, nil, nil // expunges after the list's are forgotten
		}
		if now.UIDValidity != c.UIDValidity || now.ModSeq < c.ModSeq || now.UIDNext < c.UIDNext {
			// Get ran before this transaction began, so a list newer than
			// it, or of another UIDVALIDITY (mailbox IDs are never reused),
			// means the database went back in time or was replaced (a
			// restore, a failover that lost commits): the list must go,
			// or Put would keep it.
			ss.s.log.Warn("cached UIDs do not match the database (restored?); reading them all",
				"mailbox", mailboxID, "cached_uidvalidity", c.UIDValidity, "uidvalidity", now.UIDValidity,
				"cached_modseq", c.ModSeq, "modseq", now.ModSeq)
			ss.s.uids.Remove(mailboxID)
			return nil, nil, nil
		}
		now.UIDs = c.UIDs
		if now.ModSeq != c.ModSeq {
			slices.Sort(expunged)
			now.UIDs = store.Advance(c.UIDs, expunged, added)
		}
	}
	snap.UIDs = slices.Clone(now.UIDs) // the cache's copy stays as it is
	snap.UIDNext, snap.HighestModSeq = now.UIDNext, now.ModSeq
	return snap, now, nil
}

const (
	// selectAdded reads the UIDs at or above one, ascending.
	selectAdded = `SELECT uid FROM messages WHERE mailbox_id = $1 AND uid >= $2 ORDER BY uid`
	// selectFirstUnseen reads the lowest UID without \Seen (1) through
	// the messages_unseen index, whose condition it spells the same way.
	selectFirstUnseen = `SELECT uid FROM messages WHERE mailbox_id = $1 AND flags & 1 = 0 ORDER BY uid LIMIT 1`
)

// queueUIDs queues on b a query whose rows are one UID each, appended to
// *out when b runs.
func queueUIDs(b *pgx.Batch, out *[]store.UID, query string, args ...any) {
	b.Queue(query, args...).Query(func(rows pgx.Rows) error {
		var uid int64
		_, err := pgx.ForEachRow(rows, []any{&uid}, func() error {
			*out = append(*out, store.UID(uid))
			return nil
		})
		return err
	})
}

// head is what a batch reads of a mailbox's row.
type head struct {
	found       bool // the mailbox is the session's account's
	uidValidity uint32
	uidNext     store.UID
	modSeq      store.ModSeq // highest MODSEQ
	forgotten   store.ModSeq // expunges at or below it have no tombstone
}

// queueHead queues on b the reading of a mailbox's row into h.
func (ss *session) queueHead(b *pgx.Batch, mailboxID int64, h *head) {
	b.Queue(`SELECT uidvalidity, uidnext, highest_modseq, forgotten_modseq FROM mailboxes WHERE id = $1 AND account_id = $2`,
		mailboxID, ss.id).QueryRow(func(r pgx.Row) error {
		var uidValidity, uidNext, modSeq, forgotten int64
		err := r.Scan(&uidValidity, &uidNext, &modSeq, &forgotten)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		*h = head{err == nil, uint32(uidValidity), store.UID(uidNext), store.ModSeq(modSeq), store.ModSeq(forgotten)}
		return err
	})
}

// selectKeywords reads the sets of keywords in use in mailbox $1, one
// row each (see mergeKeywords).
const selectKeywords = `SELECT DISTINCT keywords FROM messages WHERE mailbox_id = $1 AND keywords <> ''`

// queueKeywords queues on b the query for the keywords in use in a
// mailbox (see mergeKeywords), stored in *out when b runs.
func queueKeywords(b *pgx.Batch, mailboxID int64, out *[]string) {
	b.Queue(selectKeywords, mailboxID).
		Query(func(rows pgx.Rows) error {
			sets, err := pgx.CollectRows(rows, pgx.RowTo[string])
			*out = mergeKeywords(sets)
			return err
		})
}

// mergeKeywords turns the distinct keywords columns of a mailbox's
// messages into the keywords in use, one spelling of each, ordered
// case-insensitively.
func mergeKeywords(sets []string) []string {
	var kws []string
	for _, set := range sets {
		kws = store.Flags{Keywords: kws}.Apply(store.FlagsAdd, store.Flags{Keywords: splitKeywords(set)}).Keywords
	}
	slices.SortFunc(kws, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	return kws
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
