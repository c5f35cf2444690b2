package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/buzon-mail/buzon/internal/store"
)

// session implements store.Session. Every query names the account's ID,
// so a session cannot reach another's mail.
type session struct {
	s  *Store
	id int64

	// opened is when Open began its query, and openActive the active
	// Sieve script it found (Content nil), nil for none: what
	// ActiveSieveScriptInfo answers for a time not after opened. Set by
	// Open, read only after.
	opened     time.Time
	openActive *store.SieveScript

	mu sync.Mutex
	// seen holds, by mailbox, the highest MODSEQ the session's operations
	// found and when the latest of them began, for HighestModSeq to
	// answer from. Guarded by mu.
	seen map[int64]seenModSeq
}

// seenModSeq is a mailbox's highest MODSEQ as an operation that began at
// began found it: it reflects every change committed before then.
type seenModSeq struct {
	modSeq store.ModSeq
	began  time.Time
}

// saw records that an operation that began at began found the mailbox's
// highest MODSEQ at modSeq. Either only grows: the later the operation,
// the later the state it found.
func (ss *session) saw(mailboxID int64, modSeq store.ModSeq, began time.Time) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.seen == nil {
		ss.seen = map[int64]seenModSeq{}
	}
	v := ss.seen[mailboxID]
	ss.seen[mailboxID] = seenModSeq{modSeq: max(v.modSeq, modSeq), began: later(v.began, began)}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// write is Store.write on the session's account. When it commits, the
// mailboxes it changed are at its last MODSEQ, and the session saw so.
func (ss *session) write(ctx context.Context, fn func(w *wtx) error) error {
	began := time.Now()
	var last *wtx
	err := ss.s.write(ctx, ss.id, func(w *wtx) error {
		last = w
		return fn(w)
	})
	if err == nil && last != nil {
		for id := range last.touched {
			ss.saw(id, store.ModSeq(last.modseq), began)
		}
	}
	return err
}

// AccountID implements store.Session.
func (ss *session) AccountID() int64 { return ss.id }

// Close implements store.Session.
func (ss *session) Close() error { return nil }

const selectMailbox = `SELECT id, name, uidvalidity, special_use FROM mailboxes`

func scanMailbox(r pgx.CollectableRow) (store.Mailbox, error) {
	var m store.Mailbox
	var uv int64
	err := r.Scan(&m.ID, &m.Name, &uv, &m.SpecialUse)
	m.UIDValidity = uint32(uv)
	return m, err
}

// Mailboxes implements store.Session, ordering names bytewise.
func (ss *session) Mailboxes(ctx context.Context) ([]store.Mailbox, error) {
	rows, err := ss.s.pool.Query(ctx, selectMailbox+` WHERE account_id = $1 ORDER BY name COLLATE "C"`, ss.id)
	if err != nil {
		return nil, fmt.Errorf("list mailboxes: %w", mapErr(err))
	}
	mbs, err := pgx.CollectRows(rows, scanMailbox)
	if err != nil {
		return nil, fmt.Errorf("list mailboxes: %w", mapErr(err))
	}
	return mbs, nil
}

// Mailbox implements store.Session.
func (ss *session) Mailbox(ctx context.Context, name string) (store.Mailbox, error) {
	name = store.CanonicalMailboxName(name)
	rows, err := ss.s.pool.Query(ctx, selectMailbox+` WHERE account_id = $1 AND name = $2`, ss.id, name)
	if err != nil {
		return store.Mailbox{}, fmt.Errorf("mailbox %q: %w", name, mapErr(err))
	}
	mb, err := pgx.CollectExactlyOneRow(rows, scanMailbox)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Mailbox{}, fmt.Errorf("%w: %q", store.ErrNoMailbox, name)
	}
	if err != nil {
		return store.Mailbox{}, fmt.Errorf("mailbox %q: %w", name, mapErr(err))
	}
	return mb, nil
}

// validSpecialUse reports whether u may be given to CreateMailbox.
func validSpecialUse(u string) bool {
	switch u {
	case "", store.SpecialAll, store.SpecialArchive, store.SpecialDrafts, store.SpecialFlagged,
		store.SpecialJunk, store.SpecialSent, store.SpecialTrash:
		return true
	}
	return false
}

// CreateMailbox implements store.Session.
func (ss *session) CreateMailbox(ctx context.Context, name string, specialUse string) (store.Mailbox, error) {
	name = store.CanonicalMailboxName(name)
	if err := store.ValidMailboxName(name); err != nil {
		return store.Mailbox{}, err
	}
	if !validSpecialUse(specialUse) {
		return store.Mailbox{}, fmt.Errorf("create mailbox %q: %w: special use %q", name, store.ErrInvalidName, specialUse)
	}
	var mb store.Mailbox
	err := ss.s.write(ctx, ss.id, func(w *wtx) error {
		if err := w.lock(nil); err != nil {
			return err
		}
		var err error
		mb, err = w.createMailbox(name, specialUse)
		return err
	})
	if err != nil {
		return store.Mailbox{}, fmt.Errorf("create mailbox %q: %w", name, err)
	}
	return mb, nil
}

// createMailbox creates a mailbox under w's lock, within the account's
// mailbox limit.
func (w *wtx) createMailbox(name, specialUse string) (store.Mailbox, error) {
	mb := store.Mailbox{Name: name, SpecialUse: specialUse}
	var n, exists int
	if err := w.tx.QueryRow(w.ctx, `SELECT count(*), count(*) FILTER (WHERE name = $2) FROM mailboxes WHERE account_id = $1`,
		w.account, name).Scan(&n, &exists); err != nil {
		return mb, err
	}
	if exists > 0 {
		return mb, store.ErrMailboxExists
	}
	if n >= w.s.cfg.MaxMailboxes {
		return mb, fmt.Errorf("%w: %d mailboxes", store.ErrLimit, n)
	}
	var err error
	if mb.UIDValidity, err = newUIDValidity(w.ctx, w.tx); err != nil {
		return mb, err
	}
	if err := w.tx.QueryRow(w.ctx, `INSERT INTO mailboxes (account_id, name, special_use, uidvalidity)
		VALUES ($1, $2, $3, $4) RETURNING id`, w.account, name, specialUse, mb.UIDValidity).Scan(&mb.ID); err != nil {
		return mb, err
	}
	w.notify = true
	return mb, nil
}

// DeleteMailbox implements store.Session. Its messages are gone with it,
// and their bodies unless a copy elsewhere still uses them.
func (ss *session) DeleteMailbox(ctx context.Context, name string) error {
	name = store.CanonicalMailboxName(name)
	if name == "INBOX" {
		return fmt.Errorf("delete mailbox: %w: INBOX cannot be deleted", store.ErrInvalidName)
	}
	var id int64
	err := ss.s.write(ctx, ss.id, func(w *wtx) error {
		if err := w.lock(nil); err != nil {
			return err
		}
		err := w.tx.QueryRow(w.ctx, `SELECT id FROM mailboxes WHERE account_id = $1 AND name = $2`, w.account, name).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNoMailbox
		}
		if err != nil {
			return err
		}
		var bytes, count int64
		var bodies []int64
		if err := w.tx.QueryRow(w.ctx, `SELECT coalesce(sum(size), 0), count(*), coalesce(array_agg(DISTINCT body_id), '{}')
			FROM messages WHERE mailbox_id = $1`, id).Scan(&bytes, &count, &bodies); err != nil {
			return err
		}
		w.queue(`DELETE FROM mailboxes WHERE id = $1`, id)
		if err := w.charge(-bytes, -count); err != nil {
			return err
		}
		w.notify = true
		w.dropBodies(bodies)
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete mailbox %q: %w", name, err)
	}
	ss.s.uids.Remove(id) // other nodes drop theirs as they need room
	return nil
}

// dropBodies queues the deletion of those of the given bodies that no
// message uses any more, after the statements queued before it. It runs
// under the account's lock, which every writer that could add a use (Copy,
// Move) also takes.
func (w *wtx) dropBodies(ids []int64) {
	if len(ids) == 0 {
		return
	}
	w.queue(`DELETE FROM bodies b WHERE b.id = ANY($1) AND b.account_id = $2
		AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.body_id = b.id)`, ids, w.account)
}

// RenameMailbox implements store.Session. Renaming INBOX moves its messages
// to a new mailbox (new UIDVALIDITY, new UIDs) and leaves INBOX empty, with
// its children where they were (RFC 9051 6.3.6).
func (ss *session) RenameMailbox(ctx context.Context, from, to string) error {
	from, to = store.CanonicalMailboxName(from), store.CanonicalMailboxName(to)
	if err := store.ValidMailboxName(to); err != nil {
		return err
	}

	err := ss.s.write(ctx, ss.id, func(w *wtx) error {
		if err := w.lock(nil); err != nil {
			return err
		}
		var id int64
		err := w.tx.QueryRow(w.ctx, `SELECT id FROM mailboxes WHERE account_id = $1 AND name = $2`, w.account, from).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNoMailbox
		}
		if err != nil {
			return err
		}
		var taken bool
		if err := w.tx.QueryRow(w.ctx, `SELECT EXISTS (SELECT 1 FROM mailboxes WHERE account_id = $1 AND name = $2)`,
			w.account, to).Scan(&taken); err != nil {
			return err
		}
		if taken {
			return store.ErrMailboxExists
		}
		if from == "INBOX" {
			mb, err := w.createMailbox(to, "")
			if err != nil {
				return err
			}
			_, err = w.copy(id, store.AllUIDs(), mb.ID, true)
			return err
		}
		// Renaming A to A/B moves A/B/C to A/B/B/C while A/B/C is still
		// there, say: names are checked once all have moved.
		if _, err := w.tx.Exec(w.ctx, `SET CONSTRAINTS mailboxes_name DEFERRED`); err != nil {
			return err
		}
		tag, err := w.tx.Exec(w.ctx, `UPDATE mailboxes SET name = $3 || substr(name, length($2) + 1)
			WHERE account_id = $1 AND (name = $2 OR starts_with(name, $2 || '/'))`, w.account, from, to)
		if err == nil {
			_, err = w.tx.Exec(w.ctx, `SET CONSTRAINTS mailboxes_name IMMEDIATE`)
		}
		if isUniqueViolation(err) {
			return store.ErrMailboxExists
		}
		if err != nil {
			return err
		}
		// A child's new name may be too long although to is not.
		if tag.RowsAffected() > 1 {
			var longest int
			if err := w.tx.QueryRow(w.ctx, `SELECT max(octet_length(name)) FROM mailboxes WHERE account_id = $1
				AND starts_with(name, $2 || '/')`, w.account, to).Scan(&longest); err != nil {
				return err
			}
			if longest > store.MaxMailboxNameLen {
				return fmt.Errorf("%w: a child's new name is too long", store.ErrInvalidName)
			}
		}
		rows, err := w.tx.Query(w.ctx, `SELECT name FROM subscriptions WHERE account_id = $1`, w.account)
		if err != nil {
			return err
		}
		subs, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		old, moved := store.RenamedSubscriptions(subs, from, to)
		w.queue(`DELETE FROM subscriptions WHERE account_id = $1 AND name = ANY($2)`, w.account, old)
		w.queue(`INSERT INTO subscriptions (account_id, name) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING`, w.account, moved)
		w.notify = true
		return nil
	})
	if err != nil {
		return fmt.Errorf("rename mailbox %q to %q: %w", from, to, err)
	}
	return nil
}

// Subscriptions implements store.Session, ordering names bytewise.
func (ss *session) Subscriptions(ctx context.Context) ([]string, error) {
	rows, err := ss.s.pool.Query(ctx, `SELECT name FROM subscriptions WHERE account_id = $1 ORDER BY name COLLATE "C"`, ss.id)
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", mapErr(err))
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", mapErr(err))
	}
	return names, nil
}

// SetSubscribed implements store.Session. It takes the account's lock, as
// RenameMailbox does, so that a subscription made during a rename is not
// left under the old name.
func (ss *session) SetSubscribed(ctx context.Context, name string, subscribed bool) error {
	name = store.CanonicalMailboxName(name)
	if err := store.ValidMailboxName(name); err != nil {
		return err
	}
	q := `INSERT INTO subscriptions (account_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING`
	if !subscribed {
		q = `DELETE FROM subscriptions WHERE account_id = $1 AND name = $2`
	}
	err := ss.s.write(ctx, ss.id, func(w *wtx) error {
		var b pgx.Batch
		b.Queue(q, w.account, name)
		return w.lock(&b)
	})
	if err != nil {
		return fmt.Errorf("subscribe %q: %w", name, err)
	}
	return nil
}

// Status implements store.Session, in one statement, so one snapshot
// without BEGIN or COMMIT. The counts come from the messages themselves,
// so they cannot drift from them.
func (ss *session) Status(ctx context.Context, mailboxID int64) (store.MailboxStatus, error) {
	var st store.MailboxStatus
	var uidnext, uv, hms, msgs, unseen, deleted int64
	var keywords []string
	began := time.Now()
	err := ss.s.pool.QueryRow(ctx, selectStatus, mailboxID, ss.id, int16(store.FlagSeen), int16(store.FlagDeleted)).
		Scan(&uidnext, &uv, &hms, &msgs, &unseen, &deleted, &st.Size, &keywords)
	if errors.Is(err, pgx.ErrNoRows) {
		err = fmt.Errorf("%w: id %d", store.ErrNoMailbox, mailboxID)
	}
	if err != nil {
		return store.MailboxStatus{}, fmt.Errorf("status of mailbox %d: %w", mailboxID, mapErr(err))
	}
	st.UIDNext, st.UIDValidity, st.HighestModSeq = store.UID(uidnext), uint32(uv), store.ModSeq(hms)
	st.Messages, st.Unseen, st.Deleted = uint32(msgs), uint32(unseen), uint32(deleted)
	st.Keywords = mergeKeywords(keywords)
	ss.saw(mailboxID, st.HighestModSeq, began)
	return st, nil
}

// selectStatus reads mailbox $1's row, if it is account $2's, its
// messages' count and size and how many lack flag $3 and have flag $4,
// and the sets of keywords in use (selectKeywords).
const selectStatus = `SELECT h.uidnext, h.uidvalidity, h.highest_modseq, c.n, c.unseen, c.deleted, c.size,
		ARRAY(` + selectKeywords + `)
	FROM mailboxes h CROSS JOIN LATERAL (
		SELECT count(*) AS n, count(*) FILTER (WHERE flags & $3 = 0) AS unseen,
			count(*) FILTER (WHERE flags & $4 <> 0) AS deleted, coalesce(sum(size), 0) AS size
		FROM messages WHERE mailbox_id = $1) AS c
	WHERE h.id = $1 AND h.account_id = $2`

// QuotaUsage implements store.Session.
func (ss *session) QuotaUsage(ctx context.Context) (store.QuotaUsage, error) {
	var q store.QuotaUsage
	err := ss.s.pool.QueryRow(ctx, `SELECT a.max_bytes, a.max_messages, st.bytes, st.messages
		FROM accounts a JOIN account_state st ON st.account_id = a.id WHERE a.id = $1`, ss.id).
		Scan(&q.MaxBytes, &q.MaxMessages, &q.Bytes, &q.Messages)
	if errors.Is(err, pgx.ErrNoRows) {
		err = fmt.Errorf("%w: id %d", store.ErrNoAccount, ss.id)
	}
	if err != nil {
		return q, fmt.Errorf("quota usage: %w", mapErr(err))
	}
	return q, nil
}

// splitKeywords and joinKeywords convert between a message's keywords and
// their column: atoms cannot contain spaces (RFC 9051 9), so a space
// separates them.
func splitKeywords(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, " ")
}

func joinKeywords(k []string) string { return strings.Join(k, " ") }
