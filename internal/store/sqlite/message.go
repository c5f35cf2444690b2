package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

// pageSize is how many messages Messages reads per query.
const pageSize = 1000

// msgRow is what writes need of a message row.
type msgRow struct {
	id     int64
	uid    store.UID
	modseq store.ModSeq
	flags  store.Flags
	size   int64
	file   int64
}

// msgRowColumns are the columns of message that scanMsgRow reads, in
// its order.
const msgRowColumns = `id, uid, modseq, flags, keywords, size, file`

// scanMsgRow reads a row that starts with msgRowColumns; extra receives
// the columns a query selects after them.
func scanMsgRow(rows *sql.Rows, extra ...any) (msgRow, error) {
	var m msgRow
	var kws string
	dest := append([]any{&m.id, &m.uid, &m.modseq, &m.flags.System, &kws, &m.size, &m.file}, extra...)
	if err := rows.Scan(dest...); err != nil {
		return m, err
	}
	m.flags.Keywords = splitKeywords(kws)
	return m, nil
}

// selectRows reads the rows of the messages of a mailbox whose UID is in
// uids, ascending, that also match where (" AND ...").
func selectRows(ctx context.Context, q queryer, mailboxID int64, uids store.UIDSet, where string) ([]msgRow, error) {
	query := `SELECT ` + msgRowColumns + ` FROM message
		WHERE mailbox = ? AND uid BETWEEN ? AND ?` + where + ` ORDER BY uid`
	var out []msgRow
	for _, r := range uids {
		rows, err := q.QueryContext(ctx, query, mailboxID, r.Start, r.Stop)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			m, err := scanMsgRow(rows)
			if err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, m)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// mailboxHead is what writes need of a mailbox.
type mailboxHead struct {
	uidValidity uint32
	uidNext     int64
	modSeq      store.ModSeq // the highest
}

// mailboxRow reads a mailbox's head, or store.ErrNoMailbox.
func mailboxRow(ctx context.Context, q queryer, id int64) (mailboxHead, error) {
	var h mailboxHead
	err := q.QueryRowContext(ctx, `SELECT uidvalidity, uidnext, modseq FROM mailbox WHERE id = ?`, id).
		Scan(&h.uidValidity, &h.uidNext, &h.modSeq)
	if errors.Is(err, sql.ErrNoRows) {
		err = noMailbox(id)
	}
	return h, err
}

// counts is a change to a mailbox's counters.
type counts struct{ messages, unseen, deleted, size int64 }

// add counts a message in (sign 1) or out (sign -1).
func (c *counts) add(f store.SystemFlags, size int64, sign int64) {
	c.messages += sign
	c.size += sign * size
	if f&store.FlagSeen == 0 {
		c.unseen += sign
	}
	if f&store.FlagDeleted != 0 {
		c.deleted += sign
	}
}

// change counts a message whose flags changed.
func (c *counts) change(old, new store.SystemFlags) {
	c.add(old, 0, -1)
	c.add(new, 0, 1)
}

// apply updates a mailbox's counters, its HIGHESTMODSEQ and, if uidNext
// is not 0, its UIDNEXT.
func (c counts) apply(ctx context.Context, tx *sql.Tx, mailboxID int64, ms store.ModSeq, uidNext int64) error {
	_, err := tx.ExecContext(ctx, `UPDATE mailbox SET messages = messages + ?, unseen = unseen + ?,
		deleted = deleted + ?, size = size + ?, modseq = max(modseq, ?), uidnext = max(uidnext, ?) WHERE id = ?`,
		c.messages, c.unseen, c.deleted, c.size, ms, uidNext, mailboxID)
	return err
}

// addUsage changes the account's quota use.
func addUsage(ctx context.Context, tx *sql.Tx, bytes, messages int64) error {
	_, err := tx.ExecContext(ctx, `UPDATE meta SET bytes = bytes + ?, messages = messages + ?`, bytes, messages)
	return err
}

// checkQuota refuses adding bytes and messages beyond the quota. It runs
// in the transaction that adds them, after they were counted in, so the
// check and the insert are one atomic step.
func checkQuota(ctx context.Context, tx *sql.Tx, q store.Quota) error {
	if q.MaxBytes == 0 && q.MaxMessages == 0 {
		return nil
	}
	var bytes, messages int64
	if err := tx.QueryRowContext(ctx, `SELECT bytes, messages FROM meta`).Scan(&bytes, &messages); err != nil {
		return err
	}
	if (q.MaxBytes > 0 && bytes > q.MaxBytes) || (q.MaxMessages > 0 && messages > q.MaxMessages) {
		return fmt.Errorf("%w: would use %d bytes in %d messages, limits %d and %d",
			store.ErrOverQuota, bytes, messages, q.MaxBytes, q.MaxMessages)
	}
	return nil
}

// kwDelta counts keywords gained and lost by a mailbox's messages, by
// lower-cased name.
type kwDelta map[string]*kwCount

type kwCount struct {
	name string
	n    int64
}

func (d kwDelta) add(kws []string, n int64) {
	for _, k := range kws {
		l := strings.ToLower(k)
		if c := d[l]; c != nil {
			c.n += n
		} else {
			d[l] = &kwCount{k, n}
		}
	}
}

func (d kwDelta) apply(ctx context.Context, tx *sql.Tx, mailboxID int64) error {
	removed := false
	for _, c := range d {
		switch {
		case c.n > 0:
			_, err := tx.ExecContext(ctx, `INSERT INTO keyword (mailbox, name, count) VALUES (?, ?, ?)
				ON CONFLICT (mailbox, name) DO UPDATE SET count = count + excluded.count`, mailboxID, c.name, c.n)
			if err != nil {
				return err
			}
		case c.n < 0:
			_, err := tx.ExecContext(ctx, `UPDATE keyword SET count = count + ? WHERE mailbox = ? AND name = ?`, c.n, mailboxID, c.name)
			if err != nil {
				return err
			}
			removed = true
		}
	}
	if removed {
		_, err := tx.ExecContext(ctx, `DELETE FROM keyword WHERE mailbox = ? AND count <= 0`, mailboxID)
		return err
	}
	return nil
}

// speller gives keywords the spelling a mailbox already uses for them, so
// "$label1" added to one message and "$Label1" to another show as one
// keyword (RFC 9051 2.3.2).
type speller struct {
	ctx     context.Context
	tx      *sql.Tx
	mailbox int64
	known   map[string]string
}

func newSpeller(ctx context.Context, tx *sql.Tx, mailboxID int64) *speller {
	return &speller{ctx, tx, mailboxID, map[string]string{}}
}

func (sp *speller) spell(kws []string) ([]string, error) {
	if len(kws) == 0 {
		return nil, nil
	}
	out := make([]string, len(kws))
	for i, k := range kws {
		l := strings.ToLower(k)
		s, ok := sp.known[l]
		if !ok {
			err := sp.tx.QueryRowContext(sp.ctx, `SELECT name FROM keyword WHERE mailbox = ? AND name = ?`, sp.mailbox, k).Scan(&s)
			if errors.Is(err, sql.ErrNoRows) {
				s = k
			} else if err != nil {
				return nil, err
			}
			sp.known[l] = s
		}
		out[i] = s
	}
	return out, nil
}

// Append implements store.Session: the body is written and synced outside
// any transaction, then the row is committed, maybe with other appends
// (group commit). The quota is checked in that transaction.
func (ss *session) Append(ctx context.Context, mailboxID int64, msg *store.NewMessage) (store.AppendResult, error) {
	var res store.AppendResult
	if !ss.owns(mailboxID) {
		return res, fmt.Errorf("append: %w", noMailbox(mailboxID))
	}
	if msg.Size < 0 || (msg.Body == nil && msg.Size > 0) {
		return res, fmt.Errorf("append: no body of %d bytes", msg.Size)
	}
	flags, err := checkFlags(msg.Flags)
	if err != nil {
		return res, fmt.Errorf("append: %w", err)
	}
	now := ss.s.cfg.Now()
	date := msg.InternalDate
	if date.IsZero() {
		date = now
	}
	_, zone := date.Zone()
	structure := msg.Structure
	if structure == nil {
		structure = []byte{}
	}
	err = ss.read(ctx, func(a *account) error {
		quota, err := ss.s.accountQuota(ctx, ss.id)
		if err != nil {
			return err
		}
		// Refuse early what cannot fit, before writing the body. (A
		// missing mailbox is found in the transaction: looking first would
		// cost every append a read.)
		if quota.MaxBytes > 0 && msg.Size > quota.MaxBytes {
			return fmt.Errorf("%w: message of %d bytes, limit %d", store.ErrOverQuota, msg.Size, quota.MaxBytes)
		}
		file, dir, err := ss.s.writeBody(a, msg.Body, msg.Size)
		if err != nil {
			return err
		}
		defer ss.s.dropInflight(a.id, file)
		err = ss.s.writeAfterSync(ctx, a, []string{dir}, func(ctx context.Context, tx *sql.Tx) error {
			h, err := mailboxRow(ctx, tx, mailboxID)
			if err != nil {
				return err
			}
			uidNext := h.uidNext
			if uidNext > math.MaxUint32 {
				return fmt.Errorf("%w: mailbox has used every UID", store.ErrLimit)
			}
			if err := addUsage(ctx, tx, msg.Size, 1); err != nil {
				return err
			}
			if err := checkQuota(ctx, tx, quota); err != nil {
				return err
			}
			ms, err := nextModSeq(ctx, tx)
			if err != nil {
				return err
			}
			kws, err := newSpeller(ctx, tx, mailboxID).spell(flags.Keywords)
			if err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO message
				(mailbox, uid, modseq, created_modseq, flags, keywords, date, date_zone, size, file, retrieved, structure, saved)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)`,
				mailboxID, uidNext, ms, ms, flags.System, joinKeywords(kws), date.UnixMicro(), zone, msg.Size, file, structure, now.UnixMicro())
			if err != nil {
				return err
			}
			var c counts
			c.add(flags.System, msg.Size, 1)
			if err := c.apply(ctx, tx, mailboxID, ms, uidNext+1); err != nil {
				return err
			}
			d := kwDelta{}
			d.add(kws, 1)
			if err := d.apply(ctx, tx, mailboxID); err != nil {
				return err
			}
			res = store.AppendResult{UIDValidity: h.uidValidity, UID: store.UID(uidNext),
				Written: store.Written{Prior: h.modSeq, ModSeq: ms}}
			return nil
		})
		if err != nil && !isCommitErr(err) {
			ss.s.removeBodies(a, []int64{file})
		}
		return err
	})
	if err != nil {
		return store.AppendResult{}, fmt.Errorf("append to mailbox %d: %w", mailboxID, err)
	}
	return res, nil
}

func isCommitErr(err error) bool {
	var ce *errCommit
	return errors.As(err, &ce)
}

// Messages implements store.Session. It reads pageSize rows per query and
// runs fn with no transaction open and no database handle held.
func (ss *session) Messages(ctx context.Context, mailboxID int64, uids store.UIDSet, fields store.Field, fn func(*store.MessageInfo) error) error {
	if !ss.owns(mailboxID) {
		return fmt.Errorf("messages: %w", noMailbox(mailboxID))
	}
	cols := "uid"
	if fields&store.FieldFlags != 0 {
		cols += ", modseq, flags, keywords"
	}
	if fields&store.FieldSize != 0 {
		cols += ", size"
	}
	if fields&store.FieldDate != 0 {
		cols += ", date, date_zone"
	}
	if fields&store.FieldRetrieved != 0 {
		cols += ", retrieved"
	}
	if fields&store.FieldSaveDate != 0 {
		cols += ", saved"
	}
	if fields&store.FieldStructure != 0 {
		cols += ", structure"
	}
	query := `SELECT ` + cols + ` FROM message WHERE mailbox = ? AND uid > ? AND uid <= ? ORDER BY uid LIMIT ?`

	// A FETCH of one message must not allocate room for a thousand.
	page := make([]store.MessageInfo, 0, min(pageSize, uids.Count()))
	// The row being read, and where Scan puts its columns.
	var (
		m               store.MessageInfo
		kws             string
		date, retrieved int64
		saved           sql.NullInt64
		zone            int
		structure       sql.RawBytes
	)
	dest := []any{&m.UID}
	if fields&store.FieldFlags != 0 {
		dest = append(dest, &m.ModSeq, &m.Flags.System, &kws)
	}
	if fields&store.FieldSize != 0 {
		dest = append(dest, &m.Size)
	}
	if fields&store.FieldDate != 0 {
		dest = append(dest, &date, &zone)
	}
	if fields&store.FieldRetrieved != 0 {
		dest = append(dest, &retrieved)
	}
	if fields&store.FieldSaveDate != 0 {
		dest = append(dest, &saved)
	}
	if fields&store.FieldStructure != 0 {
		dest = append(dest, &structure)
	}
	// The page's structures, copied out of the driver's memory into a few
	// large arrays rather than one per message.
	var structures []byte
	found := false
	for _, r := range uids {
		after := int64(r.Start) - 1
		for {
			page = page[:0]
			structures = nil
			err := ss.read(ctx, func(a *account) error {
				rows, err := a.db.QueryContext(ctx, query, mailboxID, after, r.Stop, pageSize)
				if err != nil {
					return err
				}
				defer rows.Close()
				for rows.Next() {
					m, kws, date, retrieved, saved, zone, structure = store.MessageInfo{}, "", 0, 0, sql.NullInt64{}, 0, nil
					if err := rows.Scan(dest...); err != nil {
						return err
					}
					m.Flags.Keywords = splitKeywords(kws)
					if fields&store.FieldDate != 0 {
						m.InternalDate = internalDate(date, zone)
					}
					if retrieved != 0 {
						m.Retrieved = time.UnixMicro(retrieved).UTC()
					}
					if saved.Valid {
						m.SaveDate = time.UnixMicro(saved.Int64).UTC()
					}
					if structure != nil {
						if cap(structures)-len(structures) < len(structure) {
							structures = make([]byte, 0, max(64<<10, len(structure)))
						}
						start := len(structures)
						structures = append(structures, structure...)
						m.Structure = structures[start:len(structures):len(structures)]
					}
					page = append(page, m)
				}
				return rows.Err()
			})
			if err != nil {
				return fmt.Errorf("messages: %w", err)
			}
			found = found || len(page) > 0
			for i := range page {
				if err := fn(&page[i]); err != nil {
					return err
				}
			}
			if len(page) < pageSize {
				break
			}
			after = int64(page[len(page)-1].UID)
		}
	}
	if !found {
		// Only a read that finds nothing asks whether the mailbox exists.
		err := ss.read(ctx, func(a *account) error {
			_, err := mailboxRow(ctx, a.db, mailboxID)
			return err
		})
		if err != nil {
			return fmt.Errorf("messages: %w", err)
		}
	}
	return nil
}

func internalDate(micros int64, zone int) time.Time {
	return time.UnixMicro(micros).In(time.FixedZone("", zone))
}

// body is an open message body file. Bodies are immutable and an expunge
// only unlinks the file, so an open body stays readable.
type body struct {
	*os.File
	size int64
}

func (b *body) Size() int64 { return b.size }

// OpenBody implements store.Session.
func (ss *session) OpenBody(ctx context.Context, mailboxID int64, uid store.UID) (store.Body, error) {
	if !ss.owns(mailboxID) {
		return nil, fmt.Errorf("open body: %w", noMailbox(mailboxID))
	}
	var b *body
	err := ss.read(ctx, func(a *account) error {
		var file, size int64
		err := a.db.QueryRowContext(ctx, `SELECT file, size FROM message WHERE mailbox = ? AND uid = ?`, mailboxID, uid).
			Scan(&file, &size)
		if errors.Is(err, sql.ErrNoRows) {
			if _, err := mailboxRow(ctx, a.db, mailboxID); err != nil {
				return err
			}
			return fmt.Errorf("%w: uid %d", store.ErrNoMessage, uid)
		}
		if err != nil {
			return err
		}
		f, err := os.Open(ss.s.bodyPath(a, file))
		if errors.Is(err, os.ErrNotExist) {
			return bodyMissing(ctx, a.db, mailboxID, uid, file, err)
		} else if err != nil {
			return err
		}
		b = &body{f, size}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open body of mailbox %d uid %d: %w", mailboxID, uid, err)
	}
	return b, nil
}

// bodyMissing is the error for a message whose body file was not found
// (err): ErrNoMessage if its row is gone too, since an expunge commits
// before it unlinks, so the message was expunged after its row was read;
// else the body is lost, which no client can mend: an error of its own,
// for the server to log, naming the file and what finds every such loss.
func bodyMissing(ctx context.Context, q queryer, mailboxID int64, uid store.UID, file int64, err error) error {
	var one int
	qerr := q.QueryRowContext(ctx, `SELECT 1 FROM message WHERE mailbox = ? AND uid = ? AND file = ?`,
		mailboxID, uid, file).Scan(&one)
	switch {
	case errors.Is(qerr, sql.ErrNoRows):
		return fmt.Errorf("%w: uid %d expunged", store.ErrNoMessage, uid)
	case qerr != nil:
		return qerr
	}
	return fmt.Errorf("message body lost (buzon check lists every such message): %w", err)
}

// StoreFlags implements store.Session. All messages changed by one call
// share one new MODSEQ (RFC 7162 3.1.3 asks only that each STORE get a
// new one).
func (ss *session) StoreFlags(ctx context.Context, mailboxID int64, uids store.UIDSet, op store.FlagOp, flags store.Flags, unchangedSince store.ModSeq) (store.FlagsResult, error) {
	var res store.FlagsResult
	if !ss.owns(mailboxID) {
		return res, fmt.Errorf("store flags: %w", noMailbox(mailboxID))
	}
	if op > store.FlagsRemove {
		return res, fmt.Errorf("store flags: unknown operation %d", op)
	}
	flags, err := checkFlags(flags)
	if err != nil {
		return res, fmt.Errorf("store flags: %w", err)
	}
	err = ss.update(ctx, func(ctx context.Context, tx *sql.Tx) error {
		h, err := mailboxRow(ctx, tx, mailboxID)
		if err != nil {
			return err
		}
		res = store.FlagsResult{Written: store.Written{Prior: h.modSeq, ModSeq: h.modSeq}}
		rows, err := selectRows(ctx, tx, mailboxID, uids, "")
		if err != nil {
			return err
		}
		want := store.Flags{System: flags.System}
		if want.Keywords, err = newSpeller(ctx, tx, mailboxID).spell(flags.Keywords); err != nil {
			return err
		}
		var ms store.ModSeq
		var c counts
		d := kwDelta{}
		for _, r := range rows {
			if unchangedSince > 0 && r.modseq > unchangedSince {
				res.Failed = append(res.Failed, r.uid)
				continue
			}
			nf := r.flags.Apply(op, want)
			if nf.Equal(r.flags) {
				res.Unchanged = append(res.Unchanged, store.FlagUpdate{UID: r.uid, ModSeq: r.modseq, Flags: r.flags})
				continue
			}
			if ms == 0 {
				if ms, err = nextModSeq(ctx, tx); err != nil {
					return err
				}
			}
			_, err := tx.ExecContext(ctx, `UPDATE message SET flags = ?, keywords = ?, modseq = ? WHERE id = ?`,
				nf.System, joinKeywords(nf.Keywords), ms, r.id)
			if err != nil {
				return err
			}
			c.change(r.flags.System, nf.System)
			d.add(r.flags.Keywords, -1)
			d.add(nf.Keywords, 1)
			res.Updated = append(res.Updated, store.FlagUpdate{UID: r.uid, ModSeq: ms, Flags: nf})
		}
		if ms == 0 {
			return nil
		}
		res.ModSeq = ms
		if err := c.apply(ctx, tx, mailboxID, ms, 0); err != nil {
			return err
		}
		return d.apply(ctx, tx, mailboxID)
	})
	if err != nil {
		return store.FlagsResult{}, fmt.Errorf("store flags in mailbox %d: %w", mailboxID, err)
	}
	return res, nil
}

// Expunge implements store.Session. The rows and their tombstones commit
// first; the body files are unlinked after, so a crash in between leaves
// orphan files, never a message without its body.
func (ss *session) Expunge(ctx context.Context, mailboxID int64, uids store.UIDSet, onlyDeleted bool) (store.ExpungeResult, error) {
	if !ss.owns(mailboxID) {
		return store.ExpungeResult{}, fmt.Errorf("expunge: %w", noMailbox(mailboxID))
	}
	where := ""
	if onlyDeleted {
		where = fmt.Sprintf(" AND flags & %d != 0", store.FlagDeleted)
	}
	gone, err := ss.expunge(ctx, mailboxID, func(ctx context.Context, tx *sql.Tx) ([]msgRow, error) {
		return selectRows(ctx, tx, mailboxID, uids, where)
	})
	if err != nil {
		return store.ExpungeResult{}, fmt.Errorf("expunge from mailbox %d: %w", mailboxID, err)
	}
	return gone, nil
}

// expunge removes the rows pick chooses, then their files.
func (ss *session) expunge(ctx context.Context, mailboxID int64, pick func(context.Context, *sql.Tx) ([]msgRow, error)) (store.ExpungeResult, error) {
	var gone store.ExpungeResult
	var files []int64
	err := ss.read(ctx, func(a *account) error {
		err := ss.s.write(ctx, a, func(ctx context.Context, tx *sql.Tx) error {
			files = nil
			h, err := mailboxRow(ctx, tx, mailboxID)
			if err != nil {
				return err
			}
			gone = store.ExpungeResult{Written: store.Written{Prior: h.modSeq, ModSeq: h.modSeq}}
			rows, err := pick(ctx, tx)
			if err != nil || len(rows) == 0 {
				return err
			}
			ms, err := nextModSeq(ctx, tx)
			if err != nil {
				return err
			}
			if err := expungeRows(ctx, tx, mailboxID, rows, ms, ss.s.cfg.KeptExpunges); err != nil {
				return err
			}
			gone.ModSeq = ms
			for _, r := range rows {
				gone.UIDs = append(gone.UIDs, r.uid)
				files = append(files, r.file)
			}
			return nil
		})
		if err == nil {
			ss.s.removeBodies(a, files)
		}
		return err
	})
	return gone, err
}

// expungeRows deletes message rows, leaving tombstones at MODSEQ ms; keep
// is Config.KeptExpunges (see addTombstones).
func expungeRows(ctx context.Context, tx *sql.Tx, mailboxID int64, rows []msgRow, ms store.ModSeq, keep int) error {
	var c counts
	d := kwDelta{}
	for _, r := range rows {
		if _, err := tx.ExecContext(ctx, `DELETE FROM message WHERE id = ?`, r.id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO tombstone (mailbox, uid, modseq) VALUES (?, ?, ?)`,
			mailboxID, r.uid, ms); err != nil {
			return err
		}
		c.add(r.flags.System, r.size, -1)
		d.add(r.flags.Keywords, -1)
	}
	if err := c.apply(ctx, tx, mailboxID, ms, 0); err != nil {
		return err
	}
	if err := addTombstones(ctx, tx, mailboxID, len(rows), keep); err != nil {
		return err
	}
	if err := addUsage(ctx, tx, c.size, c.messages); err != nil {
		return err
	}
	return d.apply(ctx, tx, mailboxID)
}

// addTombstones counts n new tombstones of a mailbox. When that makes
// more than twice keep, the oldest are forgotten down to keep (or fewer:
// those of one expunge share a MODSEQ and go together), so that
// forgetting costs a write in keep expunges and the tombstones of a
// mailbox stay bounded however many messages pass through it; Changes
// then tells callers asking from below the forgotten ones
// (store.ChangeSet.Forgotten).
func addTombstones(ctx context.Context, tx *sql.Tx, mailboxID int64, n, keep int) error {
	var count int
	err := tx.QueryRowContext(ctx, `UPDATE mailbox SET tombstones = tombstones + ? WHERE id = ? RETURNING tombstones`,
		n, mailboxID).Scan(&count)
	if err != nil || count <= 2*keep {
		return err
	}
	// The MODSEQ of the newest tombstone to forget: every one at or below
	// it goes, so that what remains is every expunge after it.
	var cut int64
	err = tx.QueryRowContext(ctx, `SELECT modseq FROM tombstone INDEXED BY tombstone_modseq
		WHERE mailbox = ? ORDER BY modseq DESC LIMIT 1 OFFSET ?`, mailboxID, keep).Scan(&cut)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		// Fewer are kept than the count says (Check reports that).
	case err != nil:
		return err
	default:
		if _, err := tx.ExecContext(ctx, `DELETE FROM tombstone WHERE mailbox = ? AND modseq <= ?`, mailboxID, cut); err != nil {
			return err
		}
	}
	// Counted afresh, so that a count gone wrong is set right: this runs
	// once in keep expunges.
	_, err = tx.ExecContext(ctx, `UPDATE mailbox SET tombstones = (SELECT count(*) FROM tombstone WHERE mailbox = ?1),
		forgotten = max(forgotten, ?2) WHERE id = ?1`, mailboxID, cut)
	return err
}

// Copy implements store.Session. Bodies are immutable, so a copy is a new
// hard link to the same file, made and synced before the rows commit. The
// rows are read again in the write transaction: what they hold then is
// what the copies and the destination's counters get.
func (ss *session) Copy(ctx context.Context, fromMailboxID int64, uids store.UIDSet, toMailboxID int64) (store.CopyResult, error) {
	var res store.CopyResult
	if !ss.owns(fromMailboxID) || !ss.owns(toMailboxID) {
		return res, fmt.Errorf("copy: %w", noMailbox(max(fromMailboxID, toMailboxID)))
	}
	err := ss.read(ctx, func(a *account) error {
		if _, err := mailboxRow(ctx, a.db, fromMailboxID); err != nil {
			return err
		}
		rows, err := selectRows(ctx, a.db, fromMailboxID, uids, "")
		if err != nil {
			return err
		}
		quota, err := ss.s.accountQuota(ctx, ss.id)
		if err != nil {
			return err
		}
		// Link the bodies, outside the write: a link and the sync of its
		// folder are slow. A message expunged meanwhile has no file to
		// link: it is left out, as if the copy had come just after.
		newFiles := map[int64]msgRow{} // source row ID -> the row linked, with its new file
		var all []int64
		defer func() {
			for _, f := range all {
				ss.s.dropInflight(a.id, f)
			}
		}()
		var dirs []string
		for _, r := range rows {
			f, dir, err := ss.s.linkBody(a, r.file)
			if errors.Is(err, os.ErrNotExist) {
				err = bodyMissing(ctx, a.db, fromMailboxID, r.uid, r.file, err)
				if errors.Is(err, store.ErrNoMessage) {
					continue
				}
				err = fmt.Errorf("uid %d: %w", r.uid, err)
			}
			if err != nil {
				ss.s.removeBodies(a, all)
				return err
			}
			all = append(all, f)
			r.file = f
			newFiles[r.id] = r
			if !slices.Contains(dirs, dir) {
				dirs = append(dirs, dir)
			}
		}
		used := map[int64]bool{}
		saved := ss.s.cfg.Now().UnixMicro()
		err = ss.s.writeAfterSync(ctx, a, dirs, func(ctx context.Context, tx *sql.Tx) error {
			res = store.CopyResult{}
			clear(used)
			h, err := mailboxRow(ctx, tx, toMailboxID)
			if err != nil {
				return err
			}
			res.UIDValidity = h.uidValidity
			uidNext := h.uidNext
			// The rows again, in this transaction: flags may have
			// changed and messages gone since they were linked, and what
			// the copies and the counters get must be what the rows hold
			// now, flags and keywords from one moment. A message linked
			// before is copied if it is still there; one that came since
			// is not, as if the copy had read just before it came.
			current, err := selectRows(ctx, tx, fromMailboxID, uids, "")
			if err != nil {
				return err
			}
			sp := newSpeller(ctx, tx, toMailboxID)
			var ms store.ModSeq
			var c counts
			d := kwDelta{}
			for _, r := range current {
				// SQLite gives the highest row ID again once its row is
				// gone: a message expunged since it was linked and one
				// appended after it can share an ID, never a UID.
				linked, ok := newFiles[r.id]
				if !ok || linked.uid != r.uid {
					continue
				}
				f := linked.file
				if uidNext > math.MaxUint32 {
					return fmt.Errorf("%w: mailbox has used every UID", store.ErrLimit)
				}
				if ms == 0 {
					if ms, err = nextModSeq(ctx, tx); err != nil {
						return err
					}
				}
				kws, err := sp.spell(r.flags.Keywords)
				if err != nil {
					return err
				}
				// RFC 9051 6.4.7: flags and internal date go with the
				// copy; RFC 8514 3: the save date is the copy's.
				_, err = tx.ExecContext(ctx, `INSERT INTO message
					(mailbox, uid, modseq, created_modseq, flags, keywords, date, date_zone, size, file, retrieved, structure, saved)
					SELECT ?, ?, ?, ?, ?, ?, date, date_zone, size, ?, 0, structure, ?
					FROM message WHERE id = ?`,
					toMailboxID, uidNext, ms, ms, r.flags.System, joinKeywords(kws), f, saved, r.id)
				if err != nil {
					return err
				}
				used[f] = true
				c.add(r.flags.System, r.size, 1)
				d.add(kws, 1)
				res.Source = append(res.Source, r.uid)
				res.Dest = append(res.Dest, store.UID(uidNext))
				uidNext++
			}
			if ms == 0 {
				return nil
			}
			if err := c.apply(ctx, tx, toMailboxID, ms, uidNext); err != nil {
				return err
			}
			if err := addUsage(ctx, tx, c.size, c.messages); err != nil {
				return err
			}
			if err := checkQuota(ctx, tx, quota); err != nil {
				return err
			}
			return d.apply(ctx, tx, toMailboxID)
		})
		if err != nil && isCommitErr(err) {
			return err
		}
		var unused []int64
		for _, f := range all {
			if err != nil || !used[f] {
				unused = append(unused, f)
			}
		}
		ss.s.removeBodies(a, unused)
		return err
	})
	if err != nil {
		return store.CopyResult{}, fmt.Errorf("copy from mailbox %d to %d: %w", fromMailboxID, toMailboxID, err)
	}
	return res, nil
}

// Move implements store.Session (RFC 6851): the rows change mailbox and
// UID in one transaction, leaving tombstones behind; files stay where they
// are. The quota does not apply: nothing is added to the account.
func (ss *session) Move(ctx context.Context, fromMailboxID int64, uids store.UIDSet, toMailboxID int64) (store.CopyResult, error) {
	var res store.CopyResult
	if !ss.owns(fromMailboxID) || !ss.owns(toMailboxID) {
		return res, fmt.Errorf("move: %w", noMailbox(max(fromMailboxID, toMailboxID)))
	}
	err := ss.update(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := mailboxRow(ctx, tx, fromMailboxID); err != nil {
			return err
		}
		rows, err := selectRows(ctx, tx, fromMailboxID, uids, "")
		if err != nil {
			return err
		}
		res, err = moveRows(ctx, tx, fromMailboxID, toMailboxID, rows, ss.s.cfg.Now(), ss.s.cfg.KeptExpunges)
		return err
	})
	if err != nil {
		return store.CopyResult{}, fmt.Errorf("move from mailbox %d to %d: %w", fromMailboxID, toMailboxID, err)
	}
	return res, nil
}

// moveRows gives messages new UIDs in another (or the same) mailbox and
// the save date now (RFC 8514 3), leaving tombstones in the source; keep
// is Config.KeptExpunges (see addTombstones).
func moveRows(ctx context.Context, tx *sql.Tx, from, to int64, rows []msgRow, now time.Time, keep int) (store.CopyResult, error) {
	h, err := mailboxRow(ctx, tx, to)
	if err != nil {
		return store.CopyResult{}, err
	}
	uidNext := h.uidNext
	res := store.CopyResult{UIDValidity: h.uidValidity}
	if len(rows) == 0 {
		return res, nil
	}
	if uidNext+int64(len(rows))-1 > math.MaxUint32 {
		return res, fmt.Errorf("%w: mailbox has used every UID", store.ErrLimit)
	}
	ms, err := nextModSeq(ctx, tx)
	if err != nil {
		return res, err
	}
	sp := newSpeller(ctx, tx, to)
	var cFrom, cTo counts
	dFrom, dTo := kwDelta{}, kwDelta{}
	for _, r := range rows {
		kws, err := sp.spell(r.flags.Keywords)
		if err != nil {
			return res, err
		}
		_, err = tx.ExecContext(ctx, `UPDATE message SET mailbox = ?, uid = ?, modseq = ?, created_modseq = ?, keywords = ?, saved = ? WHERE id = ?`,
			to, uidNext, ms, ms, joinKeywords(kws), now.UnixMicro(), r.id)
		if err != nil {
			return res, err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO tombstone (mailbox, uid, modseq) VALUES (?, ?, ?)`,
			from, r.uid, ms)
		if err != nil {
			return res, err
		}
		cFrom.add(r.flags.System, r.size, -1)
		cTo.add(r.flags.System, r.size, 1)
		dFrom.add(r.flags.Keywords, -1)
		dTo.add(kws, 1)
		res.Source = append(res.Source, r.uid)
		res.Dest = append(res.Dest, store.UID(uidNext))
		uidNext++
	}
	if err := cFrom.apply(ctx, tx, from, ms, 0); err != nil {
		return res, err
	}
	if err := addTombstones(ctx, tx, from, len(rows), keep); err != nil {
		return res, err
	}
	if err := cTo.apply(ctx, tx, to, ms, uidNext); err != nil {
		return res, err
	}
	if err := dFrom.apply(ctx, tx, from); err != nil {
		return res, err
	}
	return res, dTo.apply(ctx, tx, to)
}

// Changes implements store.Session, from one read transaction so that the
// set is a consistent snapshot.
func (ss *session) Changes(ctx context.Context, mailboxID int64, sinceModSeq store.ModSeq) (*store.ChangeSet, error) {
	if !ss.owns(mailboxID) {
		return nil, fmt.Errorf("changes: %w", noMailbox(mailboxID))
	}
	cs := &store.ChangeSet{}
	err := ss.read(ctx, func(a *account) error {
		tx, err := a.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return err
		}
		defer tx.Rollback()
		now, messages, forgotten, err := readHead(ctx, tx, mailboxID)
		if errors.Is(err, sql.ErrNoRows) {
			cs.Gone = true
			return nil
		} else if err != nil {
			return err
		}
		cs.UIDNext, cs.HighestModSeq, cs.ForgottenTo = now.UIDNext, now.ModSeq, forgotten
		if sinceModSeq < forgotten {
			if err := ss.s.readUIDs(ctx, tx, now, messages, forgotten); err != nil {
				return err
			}
			cs.Forgotten, cs.Present = true, slices.Clone(now.UIDs)
		}
		rows, err := tx.QueryContext(ctx, `SELECT uid, modseq, created_modseq, flags, keywords, date, date_zone, size
			FROM message WHERE mailbox = ? AND modseq > ? ORDER BY uid`, mailboxID, sinceModSeq)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var m store.MessageInfo
			var created store.ModSeq
			var kws string
			var date int64
			var zone int
			if err := rows.Scan(&m.UID, &m.ModSeq, &created, &m.Flags.System, &kws, &date, &zone, &m.Size); err != nil {
				return err
			}
			m.Flags.Keywords = splitKeywords(kws)
			if created > sinceModSeq {
				m.InternalDate = internalDate(date, zone)
				cs.Added = append(cs.Added, m)
			} else {
				cs.Updated = append(cs.Updated, store.FlagUpdate{UID: m.UID, ModSeq: m.ModSeq, Flags: m.Flags})
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		// Messages that came and went after sinceModSeq count too: a
		// QRESYNC client may know their UIDs although the MODSEQ it kept
		// is older (RFC 7162 lets it keep a lower one), and would keep
		// them for ever if VANISHED left them out.
		cs.Expunged, err = expungedSince(ctx, tx, mailboxID, sinceModSeq)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("changes in mailbox %d: %w", mailboxID, err)
	}
	return cs, nil
}

// MarkRetrieved implements store.Session. The messages that gain \Seen
// share one MODSEQ.
func (ss *session) MarkRetrieved(ctx context.Context, mailboxID int64, uids store.UIDSet, at time.Time) error {
	if !ss.owns(mailboxID) {
		return fmt.Errorf("mark retrieved: %w", noMailbox(mailboxID))
	}
	if at.IsZero() {
		at = time.Now()
	}
	err := ss.update(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := mailboxRow(ctx, tx, mailboxID); err != nil {
			return err
		}
		var found, unseen int64
		for _, r := range uids {
			var n, u int64
			err := tx.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE flags & ? = 0) FROM message
				WHERE mailbox = ? AND uid BETWEEN ? AND ?`, store.FlagSeen, mailboxID, r.Start, r.Stop).Scan(&n, &u)
			if err != nil {
				return err
			}
			found, unseen = found+n, unseen+u
		}
		if found == 0 {
			return fmt.Errorf("%w: uids %v", store.ErrNoMessage, uids)
		}
		var ms store.ModSeq
		if unseen > 0 {
			var err error
			if ms, err = nextModSeq(ctx, tx); err != nil {
				return err
			}
		}
		for _, r := range uids {
			_, err := tx.ExecContext(ctx, `UPDATE message SET retrieved = ? WHERE mailbox = ? AND uid BETWEEN ? AND ? AND retrieved = 0`,
				at.UnixMicro(), mailboxID, r.Start, r.Stop)
			if err != nil {
				return err
			}
			if unseen == 0 {
				continue
			}
			_, err = tx.ExecContext(ctx, `UPDATE message SET flags = flags | ?, modseq = ?
				WHERE mailbox = ? AND uid BETWEEN ? AND ? AND flags & ? = 0`,
				store.FlagSeen, ms, mailboxID, r.Start, r.Stop, store.FlagSeen)
			if err != nil {
				return err
			}
		}
		if unseen == 0 {
			return nil
		}
		return counts{unseen: -unseen}.apply(ctx, tx, mailboxID, ms, 0)
	})
	if err != nil {
		return fmt.Errorf("mark retrieved in mailbox %d: %w", mailboxID, err)
	}
	return nil
}

// ExpireRetrieved implements store.Session.
func (ss *session) ExpireRetrieved(ctx context.Context, mailboxID int64, before time.Time) ([]store.UID, error) {
	if !ss.owns(mailboxID) {
		return nil, fmt.Errorf("expire retrieved: %w", noMailbox(mailboxID))
	}
	gone, err := ss.expunge(ctx, mailboxID, func(ctx context.Context, tx *sql.Tx) ([]msgRow, error) {
		return selectRows(ctx, tx, mailboxID, store.AllUIDs(),
			fmt.Sprintf(" AND retrieved != 0 AND retrieved < %d", before.UnixMicro()))
	})
	if err != nil {
		return nil, fmt.Errorf("expire retrieved in mailbox %d: %w", mailboxID, err)
	}
	return gone.UIDs, nil
}

// ExpireSaved implements store.Session. The queries go through the index
// message_saved, whose entries are the messages with a save date ("saved
// < ?" is false for the others), so that finding nothing due reads one
// entry of it, and nothing is written, nor the write lock taken, unless
// something is due.
func (ss *session) ExpireSaved(ctx context.Context, mailboxID int64, before time.Time) ([]store.UID, error) {
	if !ss.owns(mailboxID) {
		return nil, fmt.Errorf("expire saved: %w", noMailbox(mailboxID))
	}
	const due = ` FROM message INDEXED BY message_saved WHERE mailbox = ? AND saved < ?`
	var found bool
	err := ss.read(ctx, func(a *account) error {
		err := a.db.QueryRowContext(ctx, `SELECT 1`+due+` LIMIT 1`, mailboxID, before.UnixMicro()).Scan(new(int))
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		found = err == nil
		return err
	})
	if err != nil || !found {
		if err != nil {
			err = fmt.Errorf("expire saved in mailbox %d: %w", mailboxID, err)
		}
		return nil, err
	}
	gone, err := ss.expunge(ctx, mailboxID, func(ctx context.Context, tx *sql.Tx) ([]msgRow, error) {
		rows, err := tx.QueryContext(ctx, `SELECT `+msgRowColumns+due+` ORDER BY uid`, mailboxID, before.UnixMicro())
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []msgRow
		for rows.Next() {
			m, err := scanMsgRow(rows)
			if err != nil {
				return nil, err
			}
			out = append(out, m)
		}
		return out, rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("expire saved in mailbox %d: %w", mailboxID, err)
	}
	return gone.UIDs, nil
}
