package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

// session implements store.Session for one account. It holds no database
// handle of its own: each call acquires the account's, so that idle
// sessions (IMAP IDLE) do not keep databases open.
type session struct {
	s      *Store
	id     int64
	closed bool
}

var errClosed = errors.New("session closed")

// AccountID implements store.Session.
func (ss *session) AccountID() int64 { return ss.id }

// Close implements store.Session.
func (ss *session) Close() error {
	ss.closed = true
	return nil
}

// read runs fn with the account's database open.
func (ss *session) read(ctx context.Context, fn func(a *account) error) error {
	if ss.closed {
		return errClosed
	}
	a, err := ss.s.acquire(ctx, ss.id)
	if err != nil {
		return err
	}
	defer ss.s.release(a)
	return mapErr(fn(a))
}

// update runs fn in a write transaction on the account's database; see
// Store.write.
func (ss *session) update(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
	return ss.read(ctx, func(a *account) error { return ss.s.write(ctx, a, fn) })
}

// owns reports whether a mailbox ID can belong to this session's account
// (see mailSchema), so that another account's IDs fail before any query.
func (ss *session) owns(mailboxID int64) bool {
	return mailboxID>>32 == ss.id
}

func noMailbox(id int64) error {
	return fmt.Errorf("%w: id %d", store.ErrNoMailbox, id)
}

// queryer is what reads need: a *sql.DB or a *sql.Tx.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Mailboxes implements store.Session.
func (ss *session) Mailboxes(ctx context.Context) ([]store.Mailbox, error) {
	var boxes []store.Mailbox
	err := ss.read(ctx, func(a *account) error {
		rows, err := a.db.QueryContext(ctx, `SELECT id, name, uidvalidity, special_use FROM mailbox ORDER BY name`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var mb store.Mailbox
			if err := rows.Scan(&mb.ID, &mb.Name, &mb.UIDValidity, &mb.SpecialUse); err != nil {
				return err
			}
			boxes = append(boxes, mb)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list mailboxes: %w", err)
	}
	return boxes, nil
}

// Mailbox implements store.Session.
func (ss *session) Mailbox(ctx context.Context, name string) (store.Mailbox, error) {
	name = store.CanonicalMailboxName(name)
	var mb store.Mailbox
	err := ss.read(ctx, func(a *account) error {
		var err error
		mb, err = mailboxByName(ctx, a.db, name)
		return err
	})
	if err != nil {
		return store.Mailbox{}, fmt.Errorf("mailbox %q: %w", name, err)
	}
	return mb, nil
}

func mailboxByName(ctx context.Context, q queryer, name string) (store.Mailbox, error) {
	mb := store.Mailbox{Name: name}
	err := q.QueryRowContext(ctx, `SELECT id, uidvalidity, special_use FROM mailbox WHERE name = ?`, name).
		Scan(&mb.ID, &mb.UIDValidity, &mb.SpecialUse)
	if errors.Is(err, sql.ErrNoRows) {
		return mb, store.ErrNoMailbox
	}
	return mb, err
}

// CreateMailbox implements store.Session.
func (ss *session) CreateMailbox(ctx context.Context, name string, specialUse string) (store.Mailbox, error) {
	name = store.CanonicalMailboxName(name)
	if err := store.ValidMailboxName(name); err != nil {
		return store.Mailbox{}, err
	}
	switch specialUse {
	case "", store.SpecialAll, store.SpecialArchive, store.SpecialDrafts, store.SpecialFlagged,
		store.SpecialJunk, store.SpecialSent, store.SpecialTrash:
	default:
		return store.Mailbox{}, fmt.Errorf("%w: special-use attribute %q", store.ErrInvalidName, specialUse)
	}
	var mb store.Mailbox
	err := ss.update(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		mb, err = createMailbox(ctx, tx, ss.id, name, specialUse, ss.s.cfg.MaxMailboxes)
		return err
	})
	if err != nil {
		return store.Mailbox{}, fmt.Errorf("create mailbox %q: %w", name, err)
	}
	return mb, nil
}

// createMailbox inserts a mailbox with a fresh ID and UIDVALIDITY.
func createMailbox(ctx context.Context, tx *sql.Tx, accountID int64, name, specialUse string, limit int) (store.Mailbox, error) {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM mailbox`).Scan(&n); err != nil {
		return store.Mailbox{}, err
	}
	if n >= limit {
		return store.Mailbox{}, fmt.Errorf("%w: %d mailboxes", store.ErrLimit, n)
	}
	if _, err := mailboxByName(ctx, tx, name); err == nil {
		return store.Mailbox{}, store.ErrMailboxExists
	} else if !errors.Is(err, store.ErrNoMailbox) {
		return store.Mailbox{}, err
	}
	id, uidValidity, err := newMailboxID(ctx, tx, accountID)
	if err != nil {
		return store.Mailbox{}, err
	}
	ms, err := nextModSeq(ctx, tx)
	if err != nil {
		return store.Mailbox{}, err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO mailbox
		(id, name, special_use, uidvalidity, uidnext, modseq, messages, unseen, deleted, size)
		VALUES (?, ?, ?, ?, 1, ?, 0, 0, 0, 0)`, id, name, specialUse, uidValidity, ms)
	if err != nil {
		return store.Mailbox{}, err
	}
	return store.Mailbox{ID: id, Name: name, UIDValidity: uidValidity, SpecialUse: specialUse}, nil
}

// newMailboxID allocates a mailbox ID and a UIDVALIDITY. UIDVALIDITY comes
// from a per-account counter that starts at the clock and never goes back,
// so a mailbox deleted and created again never shows a client an old
// value (RFC 9051 2.3.1.1), even across a re-created account.
func newMailboxID(ctx context.Context, tx *sql.Tx, accountID int64) (int64, uint32, error) {
	var next, uidValidity int64
	err := tx.QueryRowContext(ctx, `UPDATE meta SET next_mailbox = next_mailbox + 1,
		next_uidvalidity = max(next_uidvalidity, ?) + 1
		RETURNING next_mailbox - 1, next_uidvalidity - 1`, uint32(time.Now().Unix())).Scan(&next, &uidValidity)
	if err != nil {
		return 0, 0, err
	}
	if next > math.MaxUint32 || uidValidity > math.MaxUint32 || uidValidity == 0 {
		return 0, 0, fmt.Errorf("%w: mailbox IDs exhausted", store.ErrLimit)
	}
	return accountID<<32 | next, uint32(uidValidity), nil
}

// nextModSeq takes the account's next MODSEQ (RFC 7162 3.1).
func nextModSeq(ctx context.Context, tx *sql.Tx) (store.ModSeq, error) {
	var ms store.ModSeq
	err := tx.QueryRowContext(ctx, `UPDATE meta SET modseq = modseq + 1 RETURNING modseq`).Scan(&ms)
	return ms, err
}

// DeleteMailbox implements store.Session. The rows go in one transaction;
// the body files are unlinked after it commits.
func (ss *session) DeleteMailbox(ctx context.Context, name string) error {
	name = store.CanonicalMailboxName(name)
	if name == "INBOX" {
		return fmt.Errorf("delete mailbox: %w: INBOX cannot be deleted", store.ErrInvalidName)
	}
	var files []int64
	var id int64
	err := ss.read(ctx, func(a *account) error {
		err := ss.s.write(ctx, a, func(ctx context.Context, tx *sql.Tx) error {
			mb, err := mailboxByName(ctx, tx, name)
			if err != nil {
				return err
			}
			id = mb.ID
			if files, err = queryColumn[int64](ctx, tx, `SELECT file FROM message WHERE mailbox = ?`, mb.ID); err != nil {
				return err
			}
			for _, q := range []string{
				`UPDATE meta SET bytes = bytes - (SELECT size FROM mailbox WHERE id = ?1),
					messages = messages - (SELECT messages FROM mailbox WHERE id = ?1)`,
				`DELETE FROM message WHERE mailbox = ?`,
				`DELETE FROM tombstone WHERE mailbox = ?`,
				`DELETE FROM keyword WHERE mailbox = ?`,
				`DELETE FROM mailbox WHERE id = ?`,
			} {
				if _, err := tx.ExecContext(ctx, q, mb.ID); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil {
			ss.s.removeBodies(a, files)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("delete mailbox %q: %w", name, err)
	}
	ss.s.uids.Remove(id) // other processes drop theirs as they need room
	return nil
}

// RenameMailbox implements store.Session: only the names of the mailbox
// rows change. Renaming INBOX moves its messages to a new mailbox (RFC
// 9051 6.3.6).
func (ss *session) RenameMailbox(ctx context.Context, from, to string) error {
	from = store.CanonicalMailboxName(from)
	to = store.CanonicalMailboxName(to)
	if err := store.ValidMailboxName(to); err != nil {
		return fmt.Errorf("rename mailbox %q: %w", from, err)
	}
	err := ss.update(ctx, func(ctx context.Context, tx *sql.Tx) error {
		src, err := mailboxByName(ctx, tx, from)
		if err != nil {
			return err
		}
		if _, err := mailboxByName(ctx, tx, to); err == nil {
			return fmt.Errorf("%w: %q", store.ErrMailboxExists, to)
		} else if !errors.Is(err, store.ErrNoMailbox) {
			return err
		}
		if from == "INBOX" {
			return ss.renameInbox(ctx, tx, src, to)
		}
		if err := ss.renameTree(ctx, tx, from, to); err != nil {
			return err
		}
		return renameSubscriptions(ctx, tx, from, to)
	})
	if err != nil {
		return fmt.Errorf("rename mailbox %q to %q: %w", from, to, err)
	}
	return nil
}

// renameInbox moves every INBOX message to a new mailbox, with new UIDs
// there; INBOX keeps its UIDVALIDITY and its children.
func (ss *session) renameInbox(ctx context.Context, tx *sql.Tx, inbox store.Mailbox, to string) error {
	dst, err := createMailbox(ctx, tx, ss.id, to, "", ss.s.cfg.MaxMailboxes)
	if err != nil {
		return err
	}
	rows, err := selectRows(ctx, tx, inbox.ID, store.AllUIDs(), "")
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return nil
	}
	_, err = moveRows(ctx, tx, inbox.ID, dst.ID, rows, ss.s.cfg.Now(), ss.s.cfg.KeptExpunges)
	return err
}

// renameSubscriptions moves the subscriptions a rename of from to to
// moves (store.RenamedSubscriptions).
func renameSubscriptions(ctx context.Context, tx *sql.Tx, from, to string) error {
	subs, err := queryColumn[string](ctx, tx, `SELECT name FROM subscription`)
	if err != nil {
		return err
	}
	old, moved := store.RenamedSubscriptions(subs, from, to)
	for _, name := range old {
		if _, err := tx.ExecContext(ctx, `DELETE FROM subscription WHERE name = ?`, name); err != nil {
			return err
		}
	}
	for _, name := range moved {
		if _, err := tx.ExecContext(ctx, `INSERT INTO subscription (name) VALUES (?) ON CONFLICT DO NOTHING`, name); err != nil {
			return err
		}
	}
	return nil
}

// renameTree renames a mailbox and the mailboxes below it.
func (ss *session) renameTree(ctx context.Context, tx *sql.Tx, from, to string) error {
	type box struct {
		id            int64
		name, newName string
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, name FROM mailbox WHERE name = ?1 OR substr(name, 1, length(?1) + 1) = ?1 || '/'`, from)
	if err != nil {
		return err
	}
	var boxes []box
	for rows.Next() {
		var b box
		if err := rows.Scan(&b.id, &b.name); err != nil {
			rows.Close()
			return err
		}
		b.newName = to + b.name[len(from):]
		boxes = append(boxes, b)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	moving := map[string]bool{}
	for _, b := range boxes {
		moving[b.name] = true
	}
	for _, b := range boxes {
		if err := store.ValidMailboxName(b.newName); err != nil {
			return err
		}
		if moving[b.newName] {
			continue
		}
		if _, err := mailboxByName(ctx, tx, b.newName); err == nil {
			return fmt.Errorf("%w: %q", store.ErrMailboxExists, b.newName)
		} else if !errors.Is(err, store.ErrNoMailbox) {
			return err
		}
	}
	// Park the old names first, so that "a" -> "a/b" with a child "a/b"
	// does not collide halfway; a control character is in no valid name.
	for _, b := range boxes {
		if _, err := tx.ExecContext(ctx, `UPDATE mailbox SET name = char(1) || id WHERE id = ?`, b.id); err != nil {
			return err
		}
	}
	for _, b := range boxes {
		if _, err := tx.ExecContext(ctx, `UPDATE mailbox SET name = ? WHERE id = ?`, b.newName, b.id); err != nil {
			return err
		}
	}
	return nil
}

// Subscriptions implements store.Session.
func (ss *session) Subscriptions(ctx context.Context) ([]string, error) {
	var names []string
	err := ss.read(ctx, func(a *account) error {
		var err error
		names, err = queryColumn[string](ctx, a.db, `SELECT name FROM subscription ORDER BY name`)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	return names, nil
}

// SetSubscribed implements store.Session.
func (ss *session) SetSubscribed(ctx context.Context, name string, subscribed bool) error {
	name = store.CanonicalMailboxName(name)
	if err := store.ValidMailboxName(name); err != nil {
		return err
	}
	q := `INSERT INTO subscription (name) VALUES (?) ON CONFLICT DO NOTHING`
	if !subscribed {
		q = `DELETE FROM subscription WHERE name = ?`
	}
	err := ss.update(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, q, name)
		return err
	})
	if err != nil {
		return fmt.Errorf("subscribe %q: %w", name, err)
	}
	return nil
}

// Status implements store.Session. It reads counters kept up to date by
// every write, never the messages.
func (ss *session) Status(ctx context.Context, mailboxID int64) (store.MailboxStatus, error) {
	var st store.MailboxStatus
	if !ss.owns(mailboxID) {
		return st, fmt.Errorf("status: %w", noMailbox(mailboxID))
	}
	err := ss.read(ctx, func(a *account) error {
		tx, err := a.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return err
		}
		defer tx.Rollback()
		err = tx.QueryRowContext(ctx, `SELECT messages, unseen, deleted, size, uidnext, uidvalidity, modseq
			FROM mailbox WHERE id = ?`, mailboxID).
			Scan(&st.Messages, &st.Unseen, &st.Deleted, &st.Size, &st.UIDNext, &st.UIDValidity, &st.HighestModSeq)
		if errors.Is(err, sql.ErrNoRows) {
			return noMailbox(mailboxID)
		} else if err != nil {
			return err
		}
		st.Keywords, err = mailboxKeywords(ctx, tx, mailboxID)
		return err
	})
	if err != nil {
		return store.MailboxStatus{}, fmt.Errorf("status: %w", err)
	}
	return st, nil
}

func mailboxKeywords(ctx context.Context, q queryer, mailboxID int64) ([]string, error) {
	return queryColumn[string](ctx, q, `SELECT name FROM keyword WHERE mailbox = ? AND count > 0 ORDER BY name`, mailboxID)
}

// QuotaUsage implements store.Session.
func (ss *session) QuotaUsage(ctx context.Context) (store.QuotaUsage, error) {
	var qu store.QuotaUsage
	err := ss.read(ctx, func(a *account) error {
		var err error
		if qu.Quota, err = ss.s.accountQuota(ctx, ss.id); err != nil {
			return err
		}
		return a.db.QueryRowContext(ctx, `SELECT bytes, messages FROM meta`).Scan(&qu.Bytes, &qu.Messages)
	})
	if err != nil {
		return store.QuotaUsage{}, fmt.Errorf("quota usage: %w", err)
	}
	return qu, nil
}

// Flags are kept as a bitmask and a space-separated keyword list.
const allSystemFlags = store.FlagSeen | store.FlagAnswered | store.FlagFlagged | store.FlagDeleted | store.FlagDraft

// checkFlags validates flags given by a caller and drops keyword
// duplicates that differ only in case.
func checkFlags(f store.Flags) (store.Flags, error) {
	if f.System&^allSystemFlags != 0 {
		return store.Flags{}, fmt.Errorf("%w: system flag bits %#x", store.ErrInvalidFlag, f.System&^allSystemFlags)
	}
	out := store.Flags{System: f.System}
	for _, k := range f.Keywords {
		if !store.ValidKeyword(k) {
			return store.Flags{}, fmt.Errorf("%w: keyword %q", store.ErrInvalidFlag, k)
		}
		if !out.Has(k) {
			out.Keywords = append(out.Keywords, k)
		}
	}
	return out, nil
}

func joinKeywords(kws []string) string { return strings.Join(kws, " ") }

func splitKeywords(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, " ")
}
