package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/buzon-mail/buzon/internal/store"
)

// chunkSize is the size of a body_chunks row; see the package documentation.
const chunkSize = 1 << 20

// bodyReadError is a failure to read the body being appended, from the
// caller's reader: the caller's problem, not the database's.
type bodyReadError struct{ err error }

func (e *bodyReadError) Error() string { return "read message body: " + e.err.Error() }
func (e *bodyReadError) Unwrap() error { return e.err }

// validFlags checks flags given by a caller.
func validFlags(f store.Flags) error {
	if f.System&^(store.FlagSeen|store.FlagAnswered|store.FlagFlagged|store.FlagDeleted|store.FlagDraft) != 0 {
		return fmt.Errorf("%w: unknown system flags %#x", store.ErrInvalidFlag, uint8(f.System))
	}
	for _, k := range f.Keywords {
		if !store.ValidKeyword(k) {
			return fmt.Errorf("%w: %q", store.ErrInvalidFlag, k)
		}
	}
	return nil
}

// The queries that read a mailbox's messages by UID range or MODSEQ,
// named so that TestGenericPlans can check the plans PostgreSQL keeps for
// them (see uidRanges).
const (
	// selectPage reads a page of Messages: the messages of UID ranges
	// ($2, $3) of mailbox $1, if it is account $6's, at most $5, with
	// structures if $4, each with the mailbox's highest MODSEQ.
	selectPage = `SELECT m.uid, m.modseq, m.flags, m.keywords, m.internal_date, m.size, m.structure, m.retrieved, m.saved, h.highest_modseq
		FROM unnest($2::bigint[], $3::bigint[]) AS r(lo, hi)
		CROSS JOIN LATERAL (
			SELECT uid, modseq, flags, keywords, internal_date, size, CASE WHEN $4 THEN structure END AS structure, retrieved, saved
			FROM messages WHERE mailbox_id = $1 AND uid BETWEEN r.lo AND r.hi ORDER BY uid LIMIT $5) AS m
		JOIN mailboxes h ON h.id = $1 AND h.account_id = $6
		ORDER BY m.uid LIMIT $5`

	// selectFlags reads mailbox $1's highest MODSEQ, if it is account
	// $4's, and the flags of its messages of UID ranges ($2, $3), in one
	// snapshot: a row per message, or one with a null UID for none, and
	// no row if the mailbox is not the account's.
	selectFlags = `SELECT h.highest_modseq, m.uid, m.modseq, m.flags, m.keywords
		FROM mailboxes h LEFT JOIN LATERAL (
			SELECT m.uid, m.modseq, m.flags, m.keywords
			FROM unnest($2::bigint[], $3::bigint[]) AS r(lo, hi)
			CROSS JOIN LATERAL (SELECT uid, modseq, flags, keywords FROM messages
				WHERE mailbox_id = $1 AND uid BETWEEN r.lo AND r.hi OFFSET 0) AS m) AS m ON true
		WHERE h.id = $1 AND h.account_id = $4
		ORDER BY m.uid`

	// selectGone reads what an expunge of UID ranges ($2, $3) of mailbox $1
	// removes: every message, or with $4 those with flag $5.
	selectGone = `SELECT m.uid, m.size, m.body_id
		FROM unnest($2::bigint[], $3::bigint[]) AS r(lo, hi)
		CROSS JOIN LATERAL (SELECT uid, size, body_id, flags FROM messages
			WHERE mailbox_id = $1 AND uid BETWEEN r.lo AND r.hi OFFSET 0) AS m
		WHERE NOT $4 OR m.flags & $5 <> 0 ORDER BY m.uid`

	// selectExpunged reads mailbox $1's highest MODSEQ, if it is account
	// $6's, and the UIDs an expunge of UID ranges ($2, $3) removes
	// (selectGone, whose parameters are $1 to $5), in one snapshot: a row
	// per message, or one with a null UID for none, and no row if the
	// mailbox is not the account's.
	selectExpunged = `SELECT h.highest_modseq, m.uid
		FROM mailboxes h LEFT JOIN LATERAL (` + selectGone + `) AS m ON true
		WHERE h.id = $1 AND h.account_id = $6
		ORDER BY m.uid`

	// selectRetrieved reads the flags of the messages of UID ranges ($2,
	// $3) of mailbox $1, for POP3 retrieval.
	selectRetrieved = `SELECT m.uid, m.flags
		FROM unnest($2::bigint[], $3::bigint[]) AS r(lo, hi)
		CROSS JOIN LATERAL (SELECT uid, flags FROM messages
			WHERE mailbox_id = $1 AND uid BETWEEN r.lo AND r.hi OFFSET 0) AS m
		ORDER BY m.uid`

	// selectChanged reads the messages of mailbox $1 changed after
	// MODSEQ $2, and whether each was added after it.
	selectChanged = `SELECT uid, modseq, flags, keywords, internal_date, size, created_modseq > $2
		FROM messages WHERE mailbox_id = $1 AND modseq > $2`

	// selectSavedBefore reads the messages of mailbox $1 saved before $2,
	// for an expunge; never one without a save date, as "saved < $2"
	// says, which lets it use the partial index messages_saved.
	selectSavedBefore = `SELECT uid, size, body_id FROM messages
		WHERE mailbox_id = $1 AND saved < $2`
	// selectAnySaved reads whether selectSavedBefore finds anything in
	// mailbox $1, if it is account $3's: whether its oldest save date is
	// older, which the index messages_saved answers with its first entry
	// (an EXISTS gets a generic plan that scans the mailbox, expecting
	// many). The condition IS NOT NULL, which min skips anyway, is there
	// for the planner to see that the partial index holds every row
	// wanted.
	selectAnySaved = `SELECT (SELECT min(saved) FROM messages WHERE mailbox_id = $1 AND saved IS NOT NULL) < $2
		AND EXISTS (SELECT FROM mailboxes WHERE id = $1 AND account_id = $3)`

	// selectVanished reads the UIDs expunged from mailbox $1 after MODSEQ $2.
	selectVanished = `SELECT uid FROM tombstones WHERE mailbox_id = $1 AND modseq > $2`
	// selectPresent reads every UID of mailbox $1, ascending, if expunges
	// after MODSEQ $2 are forgotten, and nothing otherwise: the condition
	// is one InitPlan, so a mailbox that forgot none is not read.
	selectPresent = `SELECT uid FROM messages WHERE mailbox_id = $1
		AND $2 < (SELECT forgotten_modseq FROM mailboxes WHERE id = $1) ORDER BY uid`
)

// uidRanges turns a UID set into the two arrays the queries unnest. The
// queries read each range with a LATERAL subquery that OFFSET 0 (or a
// LIMIT) keeps from being merged into a join: the plan is then an index
// range scan per range, also as the generic plan the connections keep
// (see Open), where a join would scan the whole mailbox.
func uidRanges(set store.UIDSet) (starts, stops []int64) {
	for _, r := range set {
		starts = append(starts, int64(r.Start))
		stops = append(stops, int64(r.Stop))
	}
	return starts, stops
}

// Append implements store.Session. A body of one chunk (most mail) goes
// in the round trip that takes the lock and adds the message, before the
// lock, and the whole is one transaction with no BEGIN or COMMIT (see
// once): one round trip. A larger body is written first, one chunk at a
// time, in a transaction that the same statements then end with COMMIT.
// Either way the account's lock is held for no round trip.
func (ss *session) Append(ctx context.Context, mailboxID int64, msg *store.NewMessage) (store.AppendResult, error) {
	if msg.Size < 0 {
		return store.AppendResult{}, fmt.Errorf("append: negative size %d", msg.Size)
	}
	if err := validFlags(msg.Flags); err != nil {
		return store.AppendResult{}, fmt.Errorf("append: %w", err)
	}
	now := ss.s.cfg.Now().UTC().Truncate(time.Microsecond)
	date := msg.InternalDate
	if date.IsZero() {
		date = now
	}
	date = date.UTC().Truncate(time.Microsecond)
	began := time.Now()
	var out appended
	err := ss.s.write(ctx, ss.id, func(w *wtx) error {
		// Fail early, before reading a large body, when the append cannot
		// succeed; the check that counts comes under the lock.
		if msg.Size > chunkSize {
			if err := w.precheck(mailboxID, msg.Size); err != nil {
				return err
			}
		}
		// appendMessage finds the body's id itself (currval).
		if err := w.insertBody(&w.pending, msg.Body, msg.Size, new(int64)); err != nil {
			return err
		}
		w.queue(lockState, w.account)
		w.pending.Queue(appendMessage, w.account, mailboxID, msg.Size, int16(msg.Flags.System), joinKeywords(msg.Flags.Keywords),
			date, nonNil(msg.Structure), strconv.FormatInt(w.account, 10), now).QueryRow(out.scan)
		return nil
	})
	if err == nil {
		err = out.err(ss.id, mailboxID, msg.Size)
	}
	if err != nil {
		return store.AppendResult{}, fmt.Errorf("append to mailbox %d: %w", mailboxID, err)
	}
	ss.s.hub.wake(ss.id)
	ss.saw(mailboxID, out.res.ModSeq, began)
	return out.res, nil
}

// appendMessage adds a message to mailbox $2 of account $1 with the body
// inserted just before it (the connection's last value of the bodies'
// sequence), size $3, flags $4, keywords $5, internal date $6, structure
// $7 and save date $9: it takes the mailbox's next UID and the account's next
// MODSEQ and counts the message in the account's usage, if the account
// is not being imported, the mailbox is the account's, a UID is left and
// the quota allows (as wtx.charge: a limit of 0 is none, and an empty
// message needs no room); otherwise it removes the body. Its one row is
// the account's usage and limits, the mailbox's UIDNEXT, UIDVALIDITY and
// highest MODSEQ before, and the message's MODSEQ if it was added; then
// it notifies the account's watchers ($8, the account as text). It runs
// under lockState, which it follows in the same transaction. Like the
// statements of ifMailboxAt, it only ever raises the mailbox's highest
// MODSEQ. The orphan's
// id is a scalar subquery, computed once before the scan: compared with
// currval itself, a volatile function, no index serves the condition and
// a refused append read every body of every account, holding the lock.
const appendMessage = `WITH st AS (
		SELECT st.modseq, st.bytes, st.messages, a.max_bytes, a.max_messages
		FROM account_state st JOIN accounts a ON a.id = st.account_id
		WHERE st.account_id = $1 AND a.import_state <> 1
	), box AS (
		SELECT uidnext, uidvalidity, highest_modseq FROM mailboxes WHERE id = $2 AND account_id = $1
	), ok AS (
		SELECT st.modseq + 1 AS modseq, box.uidnext AS uid, currval(pg_get_serial_sequence('bodies', 'id')) AS body
		FROM st, box
		WHERE box.uidnext <= 4294967295
			AND ($3 = 0 OR st.max_bytes <= 0 OR st.bytes + $3 <= st.max_bytes)
			AND (st.max_messages <= 0 OR st.messages < st.max_messages)
	), mb AS (
		UPDATE mailboxes SET uidnext = ok.uid + 1, highest_modseq = greatest(highest_modseq, ok.modseq) FROM ok WHERE id = $2
	), msg AS (
		INSERT INTO messages (mailbox_id, uid, body_id, modseq, created_modseq, flags, keywords, internal_date, size, structure, saved)
		SELECT $2, ok.uid, ok.body, ok.modseq, ok.modseq, $4, $5, $6, $3, $7, $9 FROM ok
	), acct AS (
		UPDATE account_state SET modseq = ok.modseq, bytes = bytes + $3, messages = messages + 1 FROM ok WHERE account_id = $1
	), orphan AS (
		DELETE FROM bodies WHERE id = (SELECT currval(pg_get_serial_sequence('bodies', 'id'))) AND NOT EXISTS (SELECT FROM ok)
	)
	SELECT st.bytes, st.messages, st.max_bytes, st.max_messages, box.uidnext, box.uidvalidity, box.highest_modseq,
		ok.modseq, (SELECT pg_notify('buzon', $8) FROM ok)
	FROM (SELECT) AS one LEFT JOIN st ON true LEFT JOIN box ON true LEFT JOIN ok ON true`

// appended is what appendMessage found and did.
type appended struct {
	bytes, messages, maxBytes, maxMessages *int64 // nil: no account
	uidNext, uidValidity, highest          *int64 // nil: no mailbox
	modSeq                                 *int64 // nil: not added
	res                                    store.AppendResult
}

func (a *appended) scan(r pgx.Row) error {
	if err := r.Scan(&a.bytes, &a.messages, &a.maxBytes, &a.maxMessages, &a.uidNext, &a.uidValidity, &a.highest, &a.modSeq, nil); err != nil {
		return err
	}
	if a.modSeq != nil {
		a.res = store.AppendResult{UID: store.UID(*a.uidNext), UIDValidity: uint32(*a.uidValidity),
			Written: store.Written{Prior: store.ModSeq(*a.highest), ModSeq: store.ModSeq(*a.modSeq)}}
	}
	return nil
}

// err says why appendMessage added no message of size bytes, if it did
// not.
func (a *appended) err(account, mailboxID, size int64) error {
	switch {
	case a.modSeq != nil:
		return nil
	case a.bytes == nil:
		return fmt.Errorf("%w: id %d", store.ErrNoAccount, account)
	case a.uidNext == nil:
		return fmt.Errorf("%w: id %d", store.ErrNoMailbox, mailboxID)
	case *a.uidNext > math.MaxUint32:
		return fmt.Errorf("%w: mailbox %d has no UIDs left", store.ErrLimit, mailboxID)
	}
	if err := overQuota(*a.bytes, *a.messages, *a.maxBytes, *a.maxMessages, size, 1); err != nil {
		return err
	}
	return errors.New("message not added, for no reason known") // a bug: appendMessage and overQuota disagree
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// precheck fails if the account or mailbox does not exist or the account
// is already too full for size more bytes. It takes no lock.
func (w *wtx) precheck(mailboxID, size int64) error {
	if err := w.begin(); err != nil {
		return err
	}
	var maxBytes, maxMsgs, bytes, msgs int64
	var ok bool
	err := w.tx.QueryRow(w.ctx, `SELECT a.max_bytes, a.max_messages, st.bytes, st.messages,
			EXISTS (SELECT 1 FROM mailboxes WHERE id = $2 AND account_id = $1)
		FROM accounts a JOIN account_state st ON st.account_id = a.id WHERE a.id = $1 AND a.import_state <> 1`,
		w.account, mailboxID).Scan(&maxBytes, &maxMsgs, &bytes, &msgs, &ok)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("%w: id %d", store.ErrNoAccount, w.account)
	case err != nil:
		return err
	case !ok:
		return fmt.Errorf("%w: id %d", store.ErrNoMailbox, mailboxID)
	}
	return overQuota(bytes, msgs, maxBytes, maxMsgs, size, 1)
}

// insertBody reads exactly size bytes from r as a new body, whose ID it
// stores in *id. A body of one chunk is queued on b, as one statement that
// sets *id when b runs; a larger one is written at once, one chunk at a
// time, so that only one chunk is in memory.
func (w *wtx) insertBody(b *pgx.Batch, r io.Reader, size int64, id *int64) error {
	buf := make([]byte, min(size, chunkSize))
	next := func(n int64) error {
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return &bodyReadError{fmt.Errorf("body ends before its size, %d bytes", size)}
			}
			return &bodyReadError{err}
		}
		return nil
	}
	noAccount := func(err error) error {
		if isForeignKeyViolation(err) {
			return fmt.Errorf("%w: id %d", store.ErrNoAccount, w.account)
		}
		return err
	}
	if size <= chunkSize {
		if err := next(size); err != nil {
			return err
		}
		b.Queue(`WITH b AS (INSERT INTO bodies (account_id, size) VALUES ($1, $2) RETURNING id)
			INSERT INTO body_chunks (body_id, seq, data) SELECT id, 0, $3 FROM b RETURNING body_id`,
			w.account, size, buf).QueryRow(func(r pgx.Row) error { return noAccount(r.Scan(id)) })
		return nil
	}
	if err := w.begin(); err != nil {
		return err
	}
	if err := w.tx.QueryRow(w.ctx, `INSERT INTO bodies (account_id, size) VALUES ($1, $2) RETURNING id`, w.account, size).Scan(id); err != nil {
		return noAccount(err)
	}
	for seq, off := 0, int64(0); off < size; seq++ {
		n := min(chunkSize, size-off)
		if err := next(n); err != nil {
			return err
		}
		if _, err := w.tx.Exec(w.ctx, `INSERT INTO body_chunks (body_id, seq, data) VALUES ($1, $2, $3)`, *id, seq, buf[:n]); err != nil {
			return err
		}
		off += n
	}
	return nil
}

// queueAllocUIDs queues on b the taking of n UIDs from the mailbox's
// uidnext, and stores the first and the mailbox's UIDVALIDITY when b runs.
// Under the account's lock the row's update is serialized with every other
// writer's, so UIDs ascend in commit order and none is handed out twice.
func (w *wtx) queueAllocUIDs(b *pgx.Batch, mailboxID int64, n int, first *store.UID, uidValidity *uint32) {
	b.Queue(`UPDATE mailboxes SET uidnext = uidnext + $3 WHERE id = $1 AND account_id = $2
		RETURNING uidnext - $3, uidvalidity`, mailboxID, w.account, n).QueryRow(func(r pgx.Row) error {
		var f, uv int64
		err := r.Scan(&f, &uv)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: id %d", store.ErrNoMailbox, mailboxID)
		}
		if err != nil {
			return err
		}
		if f+int64(n)-1 > math.MaxUint32 {
			return fmt.Errorf("%w: mailbox %d has no UIDs left", store.ErrLimit, mailboxID)
		}
		*first, *uidValidity = store.UID(f), uint32(uv)
		return nil
	})
}

// queueMailbox queues on b a check that the mailbox is the account's,
// storing its UIDVALIDITY in *uidValidity and its highest MODSEQ in
// *highest (each if not nil) when b runs.
func (w *wtx) queueMailbox(b *pgx.Batch, id int64, uidValidity *uint32, highest *store.ModSeq) {
	b.Queue(`SELECT uidvalidity, highest_modseq FROM mailboxes WHERE id = $1 AND account_id = $2`, id, w.account).QueryRow(func(r pgx.Row) error {
		var uv, hms int64
		err := r.Scan(&uv, &hms)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: id %d", store.ErrNoMailbox, id)
		}
		if uidValidity != nil {
			*uidValidity = uint32(uv)
		}
		if highest != nil {
			*highest = store.ModSeq(hms)
		}
		return err
	})
}

// pageSize is how many messages Messages reads per query; with structures,
// fewer.
const pageSize, structPageSize = 1000, 200

// Messages implements store.Session. Each page is one query in no
// transaction, so fn runs with nothing held; a page sees the mailbox as it
// is when read.
func (ss *session) Messages(ctx context.Context, mailboxID int64, uids store.UIDSet, fields store.Field, fn func(*store.MessageInfo) error) error {
	limit := pageSize
	if fields&store.FieldStructure != 0 {
		limit = structPageSize
	}
	var after store.UID
	page := make([]store.MessageInfo, 0, min(uint64(limit), uids.Count()))
	for {
		page = page[:0]
		// Only the ranges not yet read go to the server, and each is an
		// index range scan of at most one page (the LATERAL LIMIT), so a
		// page costs the same at the start of a large mailbox as at its
		// end.
		starts, stops := uidRanges(uidsAfter(uids, after))
		if len(starts) == 0 {
			return ss.checkFound(ctx, mailboxID, after)
		}
		page, err := ss.messagesPage(ctx, page, mailboxID, starts, stops, fields, limit)
		if err != nil {
			return fmt.Errorf("messages of mailbox %d: %w", mailboxID, mapErr(err))
		}
		if len(page) == 0 {
			return ss.checkFound(ctx, mailboxID, after)
		}
		for i := range page {
			if err := fn(&page[i]); err != nil {
				return err
			}
		}
		if len(page) < limit {
			return nil
		}
		after = page[len(page)-1].UID
	}
}

// checkFound is the end of Messages when a page read nothing: if it was
// the first (after is 0), nothing tells whether the mailbox is the
// account's, so it asks, and tells the session the mailbox's highest
// MODSEQ (see HighestModSeq).
func (ss *session) checkFound(ctx context.Context, mailboxID int64, after store.UID) error {
	if after > 0 {
		return nil
	}
	if _, err := ss.HighestModSeq(ctx, mailboxID, time.Now()); err != nil {
		return fmt.Errorf("messages of mailbox %d: %w", mailboxID, err)
	}
	return nil
}

// messagesPage reads one page of Messages in one statement, each message
// with the mailbox's highest MODSEQ, which tells the session (see
// HighestModSeq). It reads nothing if the mailbox is not the account's.
// selectPage's generic plan reads the primary key in order
// (TestGenericPlans), where a custom plan for a mailbox that had just
// grown (autovacuum had not analyzed it yet) chose a bitmap scan of every
// message above the page and a sort, which made listing a large mailbox
// quadratic.
func (ss *session) messagesPage(ctx context.Context, page []store.MessageInfo, mailboxID int64, starts, stops []int64, fields store.Field, limit int) ([]store.MessageInfo, error) {
	began := time.Now()
	rows, err := ss.s.pool.Query(ctx, selectPage,
		mailboxID, starts, stops, fields&store.FieldStructure != 0, limit, ss.id)
	if err != nil {
		return page, err
	}
	var highest store.ModSeq
	page, err = pgx.AppendRows(page, rows, func(r pgx.CollectableRow) (store.MessageInfo, error) {
		var m store.MessageInfo
		err := scanMessage(r, &m, &highest)
		return m, err
	})
	if err == nil && len(page) > 0 {
		ss.saw(mailboxID, highest, began)
	}
	return page, err
}

// uidsAfter returns the part of set above after.
func uidsAfter(set store.UIDSet, after store.UID) store.UIDSet {
	if after == 0 {
		return set
	}
	i := 0
	for i < len(set) && set[i].Stop <= after {
		i++
	}
	out := slices.Clone(set[i:])
	if len(out) > 0 && out[0].Start <= after {
		out[0].Start = after + 1
	}
	return out
}

// scanMessage reads uid, modseq, flags, keywords, internal_date, size,
// structure, retrieved, saved and the mailbox's highest MODSEQ.
func scanMessage(r pgx.Row, m *store.MessageInfo, highest *store.ModSeq) error {
	var uid, modseq, hms int64
	var flags int16
	var keywords string
	var retrieved, saved *time.Time
	if err := r.Scan(&uid, &modseq, &flags, &keywords, &m.InternalDate, &m.Size, &m.Structure, &retrieved, &saved, &hms); err != nil {
		return err
	}
	if saved != nil {
		m.SaveDate = saved.UTC()
	}
	m.UID, m.ModSeq, *highest = store.UID(uid), store.ModSeq(modseq), store.ModSeq(hms)
	m.Flags = store.Flags{System: store.SystemFlags(flags), Keywords: splitKeywords(keywords)}
	m.InternalDate = m.InternalDate.UTC()
	if retrieved != nil {
		m.Retrieved = retrieved.UTC()
	}
	return nil
}

// OpenBody implements store.Session. A body of one chunk (up to 1 MiB, so
// most mail) is read at once, and stays readable if the message is
// expunged while open; a larger one is read chunk by chunk as ReadAt asks,
// and reads fail with store.ErrNoMessage once the message is expunged.
func (ss *session) OpenBody(ctx context.Context, mailboxID int64, uid store.UID) (store.Body, error) {
	b := &body{s: ss.s, ctx: context.WithoutCancel(ctx)}
	err := ss.s.pool.QueryRow(ctx, `SELECT m.body_id, m.size,
			CASE WHEN m.size <= $4 THEN (SELECT data FROM body_chunks c WHERE c.body_id = m.body_id AND c.seq = 0) END
		FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id
		WHERE m.mailbox_id = $1 AND m.uid = $2 AND b.account_id = $3`,
		mailboxID, int64(uid), ss.id, chunkSize).Scan(&b.id, &b.size, &b.data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("open body of message %d in mailbox %d: %w", uid, mailboxID, store.ErrNoMessage)
	}
	if err != nil {
		return nil, fmt.Errorf("open body of message %d in mailbox %d: %w", uid, mailboxID, mapErr(err))
	}
	if b.size <= chunkSize && b.data == nil {
		b.data = []byte{}
	}
	return b, nil
}

// body implements store.Body.
type body struct {
	s    *Store
	ctx  context.Context // the opener's values, without its cancellation
	id   int64
	size int64
	data []byte // the whole body when it is one chunk, else nil

	mu sync.Mutex
	// The chunk read last, so that reads in small pieces (a FETCH writing
	// 64 KiB at a time) cost one query per chunk, not one per piece.
	cached    []byte // guarded by mu
	cachedSeq int64  // guarded by mu
}

// Size implements store.Body.
func (b *body) Size() int64 { return b.size }

// Close implements store.Body.
func (b *body) Close() error {
	b.mu.Lock()
	b.cached = nil
	b.mu.Unlock()
	return nil
}

// ReadAt implements io.ReaderAt. It is safe for parallel calls.
func (b *body) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read body: negative offset %d", off)
	}
	if off >= b.size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), b.size-off)
	if b.data != nil {
		n := copy(p[:want], b.data[off:])
		if int64(n) < int64(len(p)) {
			return n, io.EOF
		}
		return n, nil
	}
	var done int64
	for done < want {
		pos := off + done
		seq, in := pos/chunkSize, pos%chunkSize
		chunk, err := b.chunk(seq)
		if err != nil {
			return int(done), err
		}
		if in >= int64(len(chunk)) {
			return int(done), fmt.Errorf("read body %d: chunk %d is short", b.id, seq)
		}
		done += int64(copy(p[done:want], chunk[in:]))
	}
	if done < int64(len(p)) {
		return int(done), io.EOF
	}
	return int(done), nil
}

// chunk returns chunk seq of the body, from the cache or the database.
func (b *body) chunk(seq int64) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cached != nil && b.cachedSeq == seq {
		return b.cached, nil
	}
	ctx, cancel := context.WithTimeout(b.ctx, b.s.cfg.BodyTimeout)
	defer cancel()
	var data []byte
	err := b.s.pool.QueryRow(ctx, `SELECT data FROM body_chunks WHERE body_id = $1 AND seq = $2`, b.id, seq).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("read body: %w", store.ErrNoMessage)
	}
	if err != nil {
		return nil, fmt.Errorf("read body: %w", mapErr(err))
	}
	b.cached, b.cachedSeq = data, seq
	return data, nil
}

// StoreFlags implements store.Session (RFC 9051 6.4.6, RFC 7162 3.1.3).
// Each message whose flags change gets its own MODSEQ, in UID order.
//
// It reads the flags without a lock, in one statement, and is done when
// nothing is to change (a FETCH's \Seen of a message read before, a
// client setting a flag again): no lock taken, nothing synced to disk.
// Otherwise the account's lock and the change go in one round trip of two
// statements with neither BEGIN nor COMMIT, since PostgreSQL runs the
// statements of a pipeline up to its Sync as one transaction and commits
// it there (PostgreSQL protocol 55.2.4, Pipelining): the lock is held
// for no round trip. The change applies only if the mailbox is still at
// the MODSEQ the flags were read at (every change to a mailbox moves its
// MODSEQ), so what was decided from them holds; when another write came
// between, it reads again, and in the end takes the lock first (see
// readThenWrite).
func (ss *session) StoreFlags(ctx context.Context, mailboxID int64, uids store.UIDSet, op store.FlagOp, flags store.Flags, unchangedSince store.ModSeq) (store.FlagsResult, error) {
	if err := validFlags(flags); err != nil {
		return store.FlagsResult{}, fmt.Errorf("store flags: %w", err)
	}
	began := time.Now()
	var res store.FlagsResult
	base, wrote, err := ss.readThenWrite(ctx, ss.flagsWrite(mailboxID, uids, op, flags, unchangedSince, &res))
	if err != nil {
		return store.FlagsResult{}, fmt.Errorf("store flags in mailbox %d: %w", mailboxID, err)
	}
	if wrote {
		flagsWritten(&res, base)
	}
	ss.saw(mailboxID, res.ModSeq, began)
	return res, nil
}

// guarded is a write decided from a read of the mailbox made without the
// account's lock, as StoreFlags and Expunge make: see readThenWrite.
type guarded struct {
	// query, with args, is the read, one statement; decide decides from
	// its rows what to write and reports whether there is anything. Each
	// try reads and decides afresh.
	query  string
	args   []any
	decide func(pgx.Rows) (bool, error)
	// write is the statement that writes what decide decided, with its
	// arguments: one that begins with ifMailboxAt, so that it writes only
	// if the mailbox is still at the MODSEQ read.
	write func() (string, []any)
	// after, if not nil, queues on a batch what goes after the write in
	// its transaction.
	after func(*pgx.Batch)
}

// read makes g's read, with no lock and in no transaction, and decides.
func (g guarded) read(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	rows, err := pool.Query(ctx, g.query, g.args...)
	if err != nil {
		return false, mapErr(err)
	}
	todo, err := g.decide(rows)
	return todo, mapErr(err)
}

// optimisticTries is how many times readThenWrite reads without the lock
// before it takes the lock first.
const optimisticTries = 2

// readThenWrite runs g. It reads without the lock and is done if nothing
// is to be written; otherwise the lock and g's write go in one round trip
// (writeIf), and the write applies if nothing changed the mailbox since
// the read. When something did, another write committed meanwhile, and it
// reads again. A mailbox that keeps changing (deliveries from another
// node, one after another) could overtake every read, and each try takes
// the lock and syncs a commit to disk; so after optimisticTries it takes
// the lock first, as the other writes do (writeLocked), and nothing can
// come between. It reports the account's MODSEQ before the write and
// whether it wrote.
func (ss *session) readThenWrite(ctx context.Context, g guarded) (base int64, wrote bool, err error) {
	for range optimisticTries {
		var todo bool
		if todo, err = g.read(ctx, ss.s.pool); err != nil || !todo {
			return 0, false, err
		}
		if ss.s.raced != nil {
			ss.s.raced()
		}
		stmt, args := g.write()
		if base, wrote, err = ss.writeIf(ctx, g.after, stmt, args...); err != nil || wrote {
			return base, wrote, err
		}
	}
	return ss.writeLocked(ctx, g)
}

// writeLocked runs g as the writes that are not guarded run: BEGIN, the
// account's lock and the read in one round trip, then the write and
// COMMIT in the next. Nothing can come between the read and the write, at
// the cost of the lock held across a round trip.
func (ss *session) writeLocked(ctx context.Context, g guarded) (base int64, wrote bool, err error) {
	queued := false
	err = ss.s.write(ctx, ss.id, func(w *wtx) error {
		var b pgx.Batch
		todo := false
		b.Queue(g.query, g.args...).Query(func(rows pgx.Rows) error {
			var err error
			todo, err = g.decide(rows)
			return err
		})
		if err := w.lock(&b); err != nil || !todo {
			return err
		}
		stmt, args := g.write()
		queueIf(&w.pending, &base, &wrote, stmt, args...)
		if g.after != nil {
			g.after(&w.pending)
		}
		queued = true
		return nil
	})
	switch {
	case err != nil:
		return 0, false, err
	case queued && !wrote:
		return 0, false, errors.New("the mailbox changed under the account's lock") // a bug: a write without the lock
	case wrote:
		ss.s.hub.wake(ss.id)
	}
	return base, wrote, nil
}

// flagChange is the new flags of the messages a StoreFlags changes,
// ascending UID, as applyFlags sends them.
type flagChange struct {
	uids     []int64
	system   []int16
	keywords []string
}

// flagsWrite is StoreFlags as a guarded write: each read decides res
// as if nothing else wrote before the change, the MODSEQs of the updated
// messages yet to be given (flagsWritten), and the change the write sends.
func (ss *session) flagsWrite(mailboxID int64, uids store.UIDSet, op store.FlagOp, flags store.Flags, unchangedSince store.ModSeq, res *store.FlagsResult) guarded {
	starts, stops := uidRanges(uids)
	var ch flagChange
	return guarded{
		query: selectFlags,
		args:  []any{mailboxID, starts, stops, ss.id},
		decide: func(rows pgx.Rows) (bool, error) {
			var err error
			*res, ch, err = decideFlags(rows, mailboxID, op, flags, unchangedSince)
			return len(ch.uids) > 0, err
		},
		write: func() (string, []any) { return applyFlags, ss.applyFlagsArgs(mailboxID, res, ch) },
	}
}

// decideFlags decides from the rows of selectFlags what StoreFlags does
// to each message.
func decideFlags(rows pgx.Rows, mailboxID int64, op store.FlagOp, flags store.Flags, unchangedSince store.ModSeq) (store.FlagsResult, flagChange, error) {
	var res store.FlagsResult
	var ch flagChange
	found := false
	var prior int64
	var uid, modseq *int64
	var sys *int16
	var kw *string
	_, err := pgx.ForEachRow(rows, []any{&prior, &uid, &modseq, &sys, &kw}, func() error {
		found = true
		if uid == nil {
			return nil // no message in the ranges
		}
		cur := store.Flags{System: store.SystemFlags(*sys), Keywords: splitKeywords(*kw)}
		if unchangedSince > 0 && store.ModSeq(*modseq) > unchangedSince {
			res.Failed = append(res.Failed, store.UID(*uid))
			return nil
		}
		nf := cur.Apply(op, flags)
		if nf.Equal(cur) {
			res.Unchanged = append(res.Unchanged, store.FlagUpdate{UID: store.UID(*uid), ModSeq: store.ModSeq(*modseq), Flags: cur})
			return nil
		}
		res.Updated = append(res.Updated, store.FlagUpdate{UID: store.UID(*uid), Flags: nf})
		ch.uids, ch.system = append(ch.uids, *uid), append(ch.system, int16(nf.System))
		ch.keywords = append(ch.keywords, joinKeywords(nf.Keywords))
		return nil
	})
	if err != nil {
		return res, ch, err
	}
	if !found {
		return res, ch, fmt.Errorf("%w: id %d", store.ErrNoMailbox, mailboxID)
	}
	res.Prior, res.ModSeq = store.ModSeq(prior), store.ModSeq(prior)
	return res, ch, nil
}

// flagsWritten gives res the MODSEQs its change took, the first after
// base.
func flagsWritten(res *store.FlagsResult, base int64) {
	for i := range res.Updated {
		res.Updated[i].ModSeq = store.ModSeq(base + int64(i) + 1)
	}
	res.ModSeq = store.ModSeq(base + int64(len(res.Updated)))
}

const (
	// lockState takes account $1's state row, as every write does (see
	// lockAccount), for the statement after it in the same transaction.
	lockState = `SELECT FROM account_state WHERE account_id = $1 FOR UPDATE`

	// ifMailboxAt begins a statement that writes to mailbox $2 of account
	// $1 only if the mailbox is still at MODSEQ $3, which its caller read
	// without the lock: its ok has then one row, the account's MODSEQ,
	// else none. The statement runs under lockState, which it follows in
	// the same transaction, so its snapshot is taken once the lock is held
	// and holds every write to the account that committed before; every
	// write to a mailbox moves its MODSEQ, so what the caller decided from
	// its read still holds. (The account cannot be one being imported, as
	// lockAccount checks: a session is opened on no such account, and no
	// account becomes one.) So ok is empty only if another write came
	// between, or the mailbox is gone, which the next read finds, or the
	// account's state row is, which the lock finds (ErrNoAccount). The
	// statements only ever raise the mailbox's highest MODSEQ, as
	// wtx.finish does: a counter gone wrong (behind a mailbox, until
	// Check repairs it) must not take a mailbox's MODSEQ backwards, which
	// would tell a CONDSTORE client of changes below one it has seen.
	ifMailboxAt = `WITH ok AS (
			SELECT st.modseq FROM account_state st
			JOIN mailboxes mb ON mb.account_id = st.account_id AND mb.id = $2 AND mb.highest_modseq = $3
			WHERE st.account_id = $1
		)`

	// applyFlags gives the messages $4 of mailbox $2 the flags $5 and
	// keywords $6 and the account's next MODSEQs in turn, and moves the
	// mailbox's and the account's MODSEQ to the last, if the mailbox is
	// at MODSEQ $3 (ifMailboxAt). Its one row, if it did, is the
	// account's MODSEQ before; it notifies the account's watchers ($7,
	// the account as text) at commit.
	applyFlags = ifMailboxAt + `, v AS (
			SELECT v.uid, v.f, v.k, ok.modseq + v.n AS ms
			FROM ok, unnest($4::bigint[], $5::smallint[], $6::text[]) WITH ORDINALITY AS v(uid, f, k, n)
		), m AS (
			UPDATE messages m SET flags = v.f, keywords = v.k, modseq = v.ms
			FROM v WHERE m.mailbox_id = $2 AND m.uid = v.uid
		), mb AS (
			UPDATE mailboxes SET highest_modseq = greatest(highest_modseq, ok.modseq + cardinality($4)) FROM ok WHERE id = $2
		), st AS (
			UPDATE account_state SET modseq = ok.modseq + cardinality($4) FROM ok WHERE account_id = $1
		)
		SELECT ok.modseq, pg_notify('buzon', $7) FROM ok`
)

// applyFlagsArgs are the arguments of applyFlags for the change ch, which
// res says was decided at res.Prior.
func (ss *session) applyFlagsArgs(mailboxID int64, res *store.FlagsResult, ch flagChange) []any {
	return []any{ss.id, mailboxID, int64(res.Prior), ch.uids, ch.system, ch.keywords, strconv.FormatInt(ss.id, 10)}
}

// writeIf sends the account's lock, stmt (a statement that begins with
// ifMailboxAt) and what after queues (nil: nothing) in one round trip, one
// transaction (see Store.once): the lock is held for no round trip. It
// reports the account's MODSEQ before the statement and whether it wrote,
// and if it did, wakes the account's watchers on this node.
func (ss *session) writeIf(ctx context.Context, after func(*pgx.Batch), stmt string, args ...any) (base int64, wrote bool, err error) {
	var b pgx.Batch
	b.Queue(lockState, ss.id).QueryRow(func(r pgx.Row) error {
		// The statement needs the state row as much as the lock does:
		// without it (Check's "no counter row"), it would never write, and
		// reading again would not help.
		err := r.Scan()
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: id %d", store.ErrNoAccount, ss.id)
		}
		return err
	})
	queueIf(&b, &base, &wrote, stmt, args...)
	if after != nil {
		after(&b)
	}
	if err := ss.s.once(ctx, &b); err != nil {
		return 0, false, err
	}
	if wrote {
		ss.s.hub.wake(ss.id)
	}
	return base, wrote, nil
}

// queueIf queues on b stmt, a statement that begins with ifMailboxAt,
// storing when b runs the account's MODSEQ before it in *base and whether
// it wrote in *wrote.
func queueIf(b *pgx.Batch, base *int64, wrote *bool, stmt string, args ...any) {
	b.Queue(stmt, args...).Query(func(rows pgx.Rows) error {
		_, err := pgx.ForEachRow(rows, []any{base, nil}, func() error {
			*wrote = true
			return nil
		})
		return err
	})
}

// gone is a message being removed from a mailbox.
type gone struct {
	uid, size, body int64
}

func scanGone(r pgx.CollectableRow) (gone, error) {
	var g gone
	err := r.Scan(&g.uid, &g.size, &g.body)
	return g, err
}

// queueGone queues on b a query for the messages in one of a mailbox's
// UID ranges (only those flagged \Deleted with onlyDeleted), storing them
// in *out in UID order when b runs.
func queueGone(b *pgx.Batch, mailboxID int64, uids store.UIDSet, onlyDeleted bool, out *[]gone) {
	starts, stops := uidRanges(uids)
	b.Queue(selectGone, mailboxID, starts, stops, onlyDeleted, int16(store.FlagDeleted)).
		Query(func(rows pgx.Rows) error {
			var err error
			*out, err = pgx.CollectRows(rows, scanGone)
			return err
		})
}

// insertTombstones leaves tombstones in mailbox $1 for the UIDs $2 at
// the MODSEQs $3, and counts those that are new in the mailbox's row (a
// UID may have one already: an import's, say).
const insertTombstones = `WITH t AS (
		INSERT INTO tombstones (mailbox_id, uid, modseq)
		SELECT $1, u, ms FROM unnest($2::bigint[], $3::bigint[]) AS v(u, ms)
		ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = excluded.modseq
		RETURNING xmax = 0 AS added
	)
	UPDATE mailboxes SET tombstones = tombstones + (SELECT count(*) FROM t WHERE added) WHERE id = $1`

// forgetTombstones forgets the oldest tombstones of mailbox $1 down to $2
// when it counts more than twice $2, so that forgetting costs a write in
// $2 expunges and the tombstones of a mailbox stay bounded however many
// messages pass through it; Changes then tells callers asking from below
// the forgotten ones (store.ChangeSet.Forgotten). cut is the MODSEQ of
// the newest tombstone to forget: every one at or below it goes, so that
// what remains is every expunge after it. The count is taken afresh then
// (this runs once in $2 expunges), so that a count gone wrong is set
// right rather than looked into at every expunge; the main statement sees
// the rows as they were before gone deleted some.
const forgetTombstones = `WITH cut AS (
		SELECT (SELECT t.modseq FROM tombstones t WHERE t.mailbox_id = m.id ORDER BY t.modseq DESC OFFSET $2 LIMIT 1) AS modseq
		FROM mailboxes m WHERE m.id = $1 AND m.tombstones > 2 * $2
	), gone AS (
		DELETE FROM tombstones t USING cut WHERE t.mailbox_id = $1 AND t.modseq <= cut.modseq RETURNING 1
	)
	UPDATE mailboxes SET
		tombstones = (SELECT count(*) FROM tombstones WHERE mailbox_id = $1) - (SELECT count(*) FROM gone),
		forgotten_modseq = greatest(forgotten_modseq, (SELECT modseq FROM cut))
	WHERE id = $1 AND EXISTS (SELECT FROM cut)`

// remove deletes messages from a mailbox, leaving tombstones with new
// MODSEQs. With credit, their sizes leave the quota usage and bodies no
// longer used go (expunge); without, the messages live on elsewhere (move).
// The statements go with the commit.
func (w *wtx) remove(mailboxID int64, msgs []gone, credit bool) error {
	if len(msgs) == 0 {
		return nil
	}
	uids := make([]int64, len(msgs))
	mss := make([]int64, len(msgs))
	bodies := make([]int64, len(msgs))
	var bytes int64
	for i, g := range msgs {
		uids[i], bodies[i] = g.uid, g.body
		mss[i] = int64(w.nextModSeq(mailboxID))
		bytes += g.size
	}
	w.queue(`DELETE FROM messages WHERE mailbox_id = $1 AND uid = ANY($2)`, mailboxID, uids)
	w.queue(insertTombstones, mailboxID, uids, mss)
	w.queue(forgetTombstones, mailboxID, w.s.cfg.KeptExpunges)
	if !credit {
		return nil
	}
	if err := w.charge(-bytes, -int64(len(msgs))); err != nil {
		return err
	}
	w.dropBodies(bodies)
	return nil
}

// Expunge implements store.Session. Like StoreFlags, it reads what goes
// without a lock, and is done when nothing does (a CLOSE, an EXPUNGE
// with no message marked \Deleted); otherwise the lock and one statement
// that expunges them if the mailbox is still at the MODSEQ read go in one
// round trip, with the forgetting of old tombstones (see readThenWrite).
func (ss *session) Expunge(ctx context.Context, mailboxID int64, uids store.UIDSet, onlyDeleted bool) (store.ExpungeResult, error) {
	began := time.Now()
	var res store.ExpungeResult
	base, wrote, err := ss.readThenWrite(ctx, ss.expungeWrite(mailboxID, uids, onlyDeleted, &res))
	if err != nil {
		return store.ExpungeResult{}, fmt.Errorf("expunge in mailbox %d: %w", mailboxID, err)
	}
	if wrote {
		res.ModSeq = store.ModSeq(base + int64(len(res.UIDs)))
	}
	ss.saw(mailboxID, res.ModSeq, began)
	return res, nil
}

// expungeWrite is Expunge as a guarded write: each read decides res as if
// nothing else wrote before the removal.
func (ss *session) expungeWrite(mailboxID int64, uids store.UIDSet, onlyDeleted bool, res *store.ExpungeResult) guarded {
	starts, stops := uidRanges(uids)
	return guarded{
		query: selectExpunged,
		args:  []any{mailboxID, starts, stops, onlyDeleted, int16(store.FlagDeleted), ss.id},
		decide: func(rows pgx.Rows) (bool, error) {
			var err error
			*res, err = decideExpunge(rows, mailboxID)
			return len(res.UIDs) > 0, err
		},
		write: func() (string, []any) {
			uids := make([]int64, len(res.UIDs))
			for i, u := range res.UIDs {
				uids[i] = int64(u)
			}
			return applyExpunge, []any{ss.id, mailboxID, int64(res.Prior), uids, strconv.FormatInt(ss.id, 10)}
		},
		after: func(b *pgx.Batch) { b.Queue(forgetTombstones, mailboxID, ss.s.cfg.KeptExpunges) },
	}
}

// decideExpunge reads from the rows of selectExpunged what Expunge
// removes.
func decideExpunge(rows pgx.Rows, mailboxID int64) (store.ExpungeResult, error) {
	var res store.ExpungeResult
	found := false
	var prior int64
	var uid *int64
	_, err := pgx.ForEachRow(rows, []any{&prior, &uid}, func() error {
		found = true
		if uid != nil {
			res.UIDs = append(res.UIDs, store.UID(*uid))
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	if !found {
		return res, fmt.Errorf("%w: id %d", store.ErrNoMailbox, mailboxID)
	}
	res.Prior, res.ModSeq = store.ModSeq(prior), store.ModSeq(prior)
	return res, nil
}

// applyExpunge removes the messages $4 of mailbox $2 of account $1,
// leaving tombstones at the account's next MODSEQs in turn, takes their
// sizes off the account's usage and removes the bodies no other message
// uses, if the mailbox is at MODSEQ $3 (ifMailboxAt). Its one row, if it
// did, is the account's MODSEQ before; it notifies the account's
// watchers ($5, the account as text) at commit. The statement's parts
// all see the rows as they were before it, so a body is another
// message's if a message other than those removed uses it; the bodies'
// foreign key is checked at the statement's end, when both are gone.
// Tombstones are counted as insertTombstones does.
const applyExpunge = ifMailboxAt + `, v AS (
		SELECT v.uid, ok.modseq + v.n AS ms FROM ok, unnest($4::bigint[]) WITH ORDINALITY AS v(uid, n)
	), gone AS (
		DELETE FROM messages m USING v WHERE m.mailbox_id = $2 AND m.uid = v.uid RETURNING m.size, m.body_id
	), t AS (
		INSERT INTO tombstones (mailbox_id, uid, modseq) SELECT $2, uid, ms FROM v
		ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = excluded.modseq
		RETURNING xmax = 0 AS added
	), mb AS (
		UPDATE mailboxes SET highest_modseq = greatest(highest_modseq, ok.modseq + cardinality($4)),
			tombstones = tombstones + (SELECT count(*) FROM t WHERE added)
		FROM ok WHERE id = $2
	), st AS (
		UPDATE account_state SET modseq = ok.modseq + cardinality($4),
			bytes = bytes - (SELECT coalesce(sum(size), 0) FROM gone), messages = messages - (SELECT count(*) FROM gone)
		FROM ok WHERE account_id = $1
	), b AS (
		DELETE FROM bodies b WHERE b.id IN (SELECT body_id FROM gone) AND b.account_id = $1
			AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.body_id = b.id AND NOT (m.mailbox_id = $2 AND m.uid = ANY($4)))
	)
	SELECT ok.modseq, pg_notify('buzon', $5) FROM ok`

func uidsOf(msgs []gone) []store.UID {
	if len(msgs) == 0 {
		return nil
	}
	out := make([]store.UID, len(msgs))
	for i, g := range msgs {
		out[i] = store.UID(g.uid)
	}
	return out
}

// Copy implements store.Session. The copies share their originals' bodies.
func (ss *session) Copy(ctx context.Context, fromMailboxID int64, uids store.UIDSet, toMailboxID int64) (store.CopyResult, error) {
	var res store.CopyResult
	err := ss.write(ctx, func(w *wtx) error {
		var err error
		res, err = w.copy(fromMailboxID, uids, toMailboxID, false)
		return err
	})
	if err != nil {
		return store.CopyResult{}, fmt.Errorf("copy from mailbox %d to %d: %w", fromMailboxID, toMailboxID, err)
	}
	return res, nil
}

// Move implements store.Session (RFC 6851): the copy and the expunge are
// one transaction.
func (ss *session) Move(ctx context.Context, fromMailboxID int64, uids store.UIDSet, toMailboxID int64) (store.CopyResult, error) {
	var res store.CopyResult
	err := ss.write(ctx, func(w *wtx) error {
		var err error
		res, err = w.copy(fromMailboxID, uids, toMailboxID, true)
		return err
	})
	if err != nil {
		return store.CopyResult{}, fmt.Errorf("move from mailbox %d to %d: %w", fromMailboxID, toMailboxID, err)
	}
	return res, nil
}

// copy copies (or, with move, moves) messages between two of the account's
// mailboxes under w's lock, which it takes if w does not hold it yet,
// keeping flags and internal dates; the save date is now (RFC 8514 3). A
// move changes no quota usage and needs none.
func (w *wtx) copy(from int64, uids store.UIDSet, to int64, move bool) (store.CopyResult, error) {
	var res store.CopyResult
	var b pgx.Batch
	var msgs []gone
	w.queueMailbox(&b, from, nil, nil)
	w.queueMailbox(&b, to, &res.UIDValidity, nil)
	queueGone(&b, from, uids, false, &msgs)
	if err := w.lock(&b); err != nil || len(msgs) == 0 {
		return res, err
	}
	if !move {
		var bytes int64
		for _, g := range msgs {
			bytes += g.size
		}
		if err := w.charge(bytes, int64(len(msgs))); err != nil {
			return res, err
		}
	}
	var first store.UID
	b = pgx.Batch{}
	w.queueAllocUIDs(&b, to, len(msgs), &first, &res.UIDValidity)
	if err := w.run(&b); err != nil {
		return res, err
	}
	src := make([]int64, len(msgs))
	dst := make([]int64, len(msgs))
	mss := make([]int64, len(msgs))
	for i, g := range msgs {
		src[i], dst[i] = g.uid, int64(first)+int64(i)
		mss[i] = int64(w.nextModSeq(to))
		res.Source = append(res.Source, store.UID(g.uid))
		res.Dest = append(res.Dest, store.UID(dst[i]))
	}
	w.queue(`INSERT INTO messages (mailbox_id, uid, body_id, modseq, created_modseq, flags, keywords, internal_date, size, structure, saved)
		SELECT $2, v.dst, m.body_id, v.ms, v.ms, m.flags, m.keywords, m.internal_date, m.size, m.structure, $6
		FROM unnest($3::bigint[], $4::bigint[], $5::bigint[]) AS v(src, dst, ms)
		JOIN messages m ON m.mailbox_id = $1 AND m.uid = v.src`, from, to, src, dst, mss, w.s.cfg.Now().UTC().Truncate(time.Microsecond))
	if move {
		return res, w.remove(from, msgs, false)
	}
	return res, nil
}

// Changes implements store.Session, in one statement, so one snapshot
// without BEGIN or COMMIT serves every part of the answer; MODSEQs commit
// in order (see the package documentation), so a caller that asks again
// from HighestModSeq misses nothing. The queries leave the order to Go:
// without ORDER BY uid the (mailbox_id, modseq) indexes are the only
// sensible plan, so the generic plan the connections keep (see Open)
// stays right however few rows are above sinceModSeq.
func (ss *session) Changes(ctx context.Context, mailboxID int64, sinceModSeq store.ModSeq) (*store.ChangeSet, error) {
	var uidNext, highest, forgotten int64
	var uids, modseqs, sizes, vanished, present []int64
	var flags []int16
	var keywords []string
	var dates []time.Time
	var added []bool
	began := time.Now()
	err := ss.s.pool.QueryRow(ctx, selectChanges, mailboxID, int64(sinceModSeq), ss.id).Scan(&uidNext, &highest, &forgotten,
		&uids, &modseqs, &flags, &keywords, &dates, &sizes, &added, &vanished, &present)
	if errors.Is(err, pgx.ErrNoRows) {
		return &store.ChangeSet{Gone: true}, nil // not the account's
	}
	if err != nil {
		return nil, fmt.Errorf("changes in mailbox %d: %w", mailboxID, mapErr(err))
	}
	cs := &store.ChangeSet{UIDNext: store.UID(uidNext), HighestModSeq: store.ModSeq(highest), ForgottenTo: store.ModSeq(forgotten)}
	cs.Forgotten = sinceModSeq < cs.ForgottenTo
	for i, uid := range uids {
		f := store.Flags{System: store.SystemFlags(flags[i]), Keywords: splitKeywords(keywords[i])}
		if added[i] {
			cs.Added = append(cs.Added, store.MessageInfo{UID: store.UID(uid), ModSeq: store.ModSeq(modseqs[i]), Flags: f,
				InternalDate: dates[i].UTC(), Size: sizes[i]})
		} else {
			cs.Updated = append(cs.Updated, store.FlagUpdate{UID: store.UID(uid), ModSeq: store.ModSeq(modseqs[i]), Flags: f})
		}
	}
	for _, u := range vanished {
		cs.Expunged = append(cs.Expunged, store.UID(u))
	}
	for _, u := range present {
		cs.Present = append(cs.Present, store.UID(u))
	}
	ss.saw(mailboxID, cs.HighestModSeq, began)
	slices.SortFunc(cs.Added, func(a, b store.MessageInfo) int { return cmp.Compare(a.UID, b.UID) })
	slices.SortFunc(cs.Updated, func(a, b store.FlagUpdate) int { return cmp.Compare(a.UID, b.UID) })
	slices.Sort(cs.Expunged)
	return cs, nil
}

// selectChanges is Changes: mailbox $1's row, if it is account $3's, the
// messages changed after MODSEQ $2 (selectChanged) as arrays of their
// columns, the UIDs expunged after it (selectVanished), and every UID if
// expunges after it are forgotten (selectPresent). Each part runs only for
// the mailbox's row, so nothing of another account's is read.
const selectChanges = `SELECT h.uidnext, h.highest_modseq, h.forgotten_modseq,
		c.uids, c.modseqs, c.flags, c.keywords, c.dates, c.sizes, c.added,
		ARRAY(` + selectVanished + `), ARRAY(` + selectPresent + `)
	FROM mailboxes h CROSS JOIN LATERAL (
		SELECT array_agg(m.uid) AS uids, array_agg(m.modseq) AS modseqs, array_agg(m.flags) AS flags,
			array_agg(m.keywords) AS keywords, array_agg(m.internal_date) AS dates, array_agg(m.size) AS sizes,
			array_agg(m.added) AS added
		FROM (` + selectChanged + `) AS m(uid, modseq, flags, keywords, internal_date, size, added)
		WHERE h.id IS NOT NULL) AS c
	WHERE h.id = $1 AND h.account_id = $3`

// MarkRetrieved implements store.Session.
func (ss *session) MarkRetrieved(ctx context.Context, mailboxID int64, uids store.UIDSet, at time.Time) error {
	err := ss.write(ctx, func(w *wtx) error {
		var b pgx.Batch
		w.queueMailbox(&b, mailboxID, nil, nil)
		starts, stops := uidRanges(uids)
		var found, unseen, modseqs []int64
		b.Queue(selectRetrieved, mailboxID, starts, stops).
			Query(func(rows pgx.Rows) error {
				var uid int64
				var flags int16
				_, err := pgx.ForEachRow(rows, []any{&uid, &flags}, func() error {
					found = append(found, uid)
					if store.SystemFlags(flags)&store.FlagSeen == 0 {
						unseen = append(unseen, uid)
					}
					return nil
				})
				return err
			})
		if err := w.lock(&b); err != nil {
			return err
		}
		if len(found) == 0 {
			return fmt.Errorf("%w: uids %v", store.ErrNoMessage, uids)
		}
		for range unseen {
			modseqs = append(modseqs, int64(w.nextModSeq(mailboxID)))
		}
		if len(unseen) > 0 {
			w.queue(`UPDATE messages m SET flags = m.flags | $2, modseq = v.ms
				FROM unnest($3::bigint[], $4::bigint[]) AS v(uid, ms)
				WHERE m.mailbox_id = $1 AND m.uid = v.uid`, mailboxID, int16(store.FlagSeen), unseen, modseqs)
		}
		w.queue(`UPDATE messages SET retrieved = $3 WHERE mailbox_id = $1 AND uid = ANY($2) AND retrieved IS NULL`,
			mailboxID, found, at.UTC())
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark messages of mailbox %d retrieved: %w", mailboxID, err)
	}
	return nil
}

// ExpireRetrieved implements store.Session.
func (ss *session) ExpireRetrieved(ctx context.Context, mailboxID int64, before time.Time) ([]store.UID, error) {
	const query = `SELECT uid, size, body_id FROM messages WHERE mailbox_id = $1 AND retrieved < $2 ORDER BY uid`
	out, err := ss.expire(ctx, mailboxID, query, before)
	if err != nil {
		return nil, fmt.Errorf("expire retrieved messages of mailbox %d: %w", mailboxID, err)
	}
	return out, nil
}

// expire expunges, under the account's lock, the messages of mailboxID
// that query finds: their uid, size and body_id, in UID order, given the
// mailbox ($1) and before ($2).
func (ss *session) expire(ctx context.Context, mailboxID int64, query string, before time.Time) ([]store.UID, error) {
	var out []store.UID
	err := ss.write(ctx, func(w *wtx) error {
		var b pgx.Batch
		var msgs []gone
		w.queueMailbox(&b, mailboxID, nil, nil)
		b.Queue(query, mailboxID, before.UTC()).Query(func(rows pgx.Rows) error {
			var err error
			msgs, err = pgx.CollectRows(rows, scanGone)
			return err
		})
		if err := w.lock(&b); err != nil {
			return err
		}
		out = uidsOf(msgs)
		return w.remove(mailboxID, msgs, true)
	})
	return out, err
}

// ExpireSaved implements store.Session. A first read, outside any
// transaction and through the index messages_saved (of the messages with
// a save date, the only ones it removes), finds whether anything is due,
// so that the usual answer, nothing, takes no lock of the account.
func (ss *session) ExpireSaved(ctx context.Context, mailboxID int64, before time.Time) ([]store.UID, error) {
	var found *bool // null for an empty mailbox
	err := ss.s.pool.QueryRow(ctx, selectAnySaved, mailboxID, before.UTC(), ss.id).Scan(&found)
	if err != nil || found == nil || !*found {
		if err != nil {
			err = fmt.Errorf("expire saved messages of mailbox %d: %w", mailboxID, mapErr(err))
		}
		return nil, err
	}
	out, err := ss.expire(ctx, mailboxID, selectSavedBefore+` ORDER BY uid`, before)
	if err != nil {
		return nil, fmt.Errorf("expire saved messages of mailbox %d: %w", mailboxID, err)
	}
	return out, nil
}
