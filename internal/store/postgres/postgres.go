package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/buzon-mail/buzon/internal/store"
)

// Config configures a Store. Zero values mean the defaults stated.
type Config struct {
	// DSN is the PostgreSQL connection string, as a URL
	// ("postgres://user@host/db") or key=value pairs; libpq's environment
	// variables (PGHOST, PGPASSWORD, …) fill in what it leaves out.
	// Required.
	DSN string
	// Logger receives problems the store works around (a lost notification
	// connection). Default: discard.
	Logger *slog.Logger
	// MaxConns is the most connections the Store's pool opens, besides one
	// for notifications and one for locks. Default 16.
	MaxConns int32
	// MaxMailboxes is the most mailboxes per account (store.ErrLimit).
	// Default 10000.
	MaxMailboxes int
	// ReconnectMax is the longest wait between attempts to reconnect the
	// notification connection; waits start at 100ms and double.
	// Default 5s.
	ReconnectMax time.Duration
	// BodyTimeout bounds each read of a message body through Body.ReadAt,
	// which has no context of its own. Default 1m.
	BodyTimeout time.Duration
	// CachedUIDs is how many UIDs, over all mailboxes, Snapshot keeps in
	// memory to read only what changed at the next one (store.UIDCache);
	// 4 bytes each. Negative turns the cache off. Default 4,000,000.
	CachedUIDs int
	// KeptExpunges bounds the expunged UIDs per mailbox that Changes
	// remembers (for QRESYNC's VANISHED, RFC 7162): when a mailbox has
	// more than twice as many tombstones, the oldest are forgotten down
	// to this many (store.ChangeSet.Forgotten). Default 100,000.
	KeptExpunges int
	// Now is the clock that dates what the store saves: the save date of
	// messages (RFC 8514) and the internal date of appends that give
	// none. Tests set it to age mail without waiting. Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns the configuration with every default filled in and
// DSN empty.
func DefaultConfig() Config {
	return Config{
		MaxConns:     16,
		MaxMailboxes: 10000,
		ReconnectMax: 5 * time.Second,
		BodyTimeout:  time.Minute,
		CachedUIDs:   4_000_000,
		KeptExpunges: 100_000,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxConns <= 0 {
		c.MaxConns = d.MaxConns
	}
	if c.MaxMailboxes <= 0 {
		c.MaxMailboxes = d.MaxMailboxes
	}
	if c.ReconnectMax <= 0 {
		c.ReconnectMax = d.ReconnectMax
	}
	if c.BodyTimeout <= 0 {
		c.BodyTimeout = d.BodyTimeout
	}
	if c.CachedUIDs == 0 {
		c.CachedUIDs = d.CachedUIDs
	}
	if c.KeptExpunges <= 0 {
		c.KeptExpunges = d.KeptExpunges
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Store is the PostgreSQL store. Create one with Open.
type Store struct {
	cfg  Config
	log  *slog.Logger
	pool *pgxpool.Pool
	// connCfg configures the connections outside the pool: the listener's
	// and the locker's.
	connCfg *pgx.ConnConfig

	hub      *hub
	locks    *locker
	releases *releases       // requests to let go of locks (release.go)
	uids     *store.UIDCache // Snapshot's lists

	// raced, if set (by tests), runs between each read that
	// readThenWrite makes without the lock and its write: where another
	// node's write would come between.
	raced func()

	stopListen context.CancelFunc
	listenDone chan struct{} // closed when the listener has stopped

	closeOnce sync.Once
}

var (
	_ store.Store    = (*Store)(nil)
	_ store.Importer = (*Store)(nil)
)

// Open connects to the database, brings its schema up to date (Migrate) and
// starts listening for change notifications.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if cfg.DSN == "" {
		return nil, errors.New("postgres store: no DSN configured")
	}
	pcfg, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	pcfg.MaxConns = cfg.MaxConns
	if _, set := pcfg.ConnConfig.RuntimeParams["plan_cache_mode"]; !set {
		// Every statement is prepared once per connection and its plan
		// does not depend on the values bound: the index on the columns
		// named is the plan. PostgreSQL's default would plan many of them
		// anew at each execution (their generic plan's estimate looks
		// worse than a custom one's), which cost it as much CPU as
		// executing them did under imap-mixed (BENCHMARKS.md).
		pcfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	}
	s := &Store{
		cfg:        cfg,
		log:        cfg.Logger,
		connCfg:    pcfg.ConnConfig.Copy(),
		hub:        newHub(),
		releases:   newReleases(),
		uids:       store.NewUIDCache(max(cfg.CachedUIDs, 0)),
		listenDone: make(chan struct{}),
	}
	s.locks = &locker{s: s, held: map[int64]struct{}{}}
	if s.pool, err = pgxpool.NewWithConfig(ctx, pcfg); err != nil {
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	err = s.pool.AcquireFunc(ctx, func(c *pgxpool.Conn) error { return migrate(ctx, c.Conn()) })
	var ln *pgx.Conn
	if err == nil {
		ln, err = s.listenConn(ctx)
	}
	if err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("postgres store: %w", mapErr(err))
	}
	lctx, cancel := context.WithCancel(context.Background())
	s.stopListen = cancel
	go s.listen(lctx, ln)
	return s, nil
}

// Close stops the notification listener, releases every lock still held
// and closes the connections. Sessions must be closed first. Close may be
// called more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.stopListen()
		<-s.listenDone
		s.locks.close()
		s.pool.Close()
	})
	return nil
}

// mapErr wraps err with the store error it means, if any: the database is
// unreachable (store.ErrUnavailable) or full (store.ErrStorageFull). A
// caller's cancelled context stays what it is.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, store.ErrStorageFull):
		return err
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	var readErr *bodyReadError
	if errors.As(err, &readErr) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "53100": // disk_full
			return fmt.Errorf("%w: %w", store.ErrStorageFull, err)
		case strings.HasPrefix(pgErr.Code, "08"), // connection_exception
			pgErr.Code == "57P01", // admin_shutdown
			pgErr.Code == "57P02", // crash_shutdown
			pgErr.Code == "57P03", // cannot_connect_now (starting up, recovering)
			pgErr.Code == "53000", // insufficient_resources
			pgErr.Code == "53200", // out_of_memory
			pgErr.Code == "53300", // too_many_connections
			pgErr.Code == "58000", // system_error
			pgErr.Code == "58030", // io_error
			pgErr.Code == "25006", // read_only_sql_transaction: a standby after failover
			pgErr.Code == "40001", // serialization_failure
			pgErr.Code == "40P01": // deadlock_detected
			return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
		}
		return err
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	var retryable interface{ SafeToRetry() bool }
	if errors.As(err, &connectErr) || errors.As(err, &netErr) || errors.As(err, &retryable) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

// isUniqueViolation reports whether err is PostgreSQL's unique_violation.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// isForeignKeyViolation reports whether err is PostgreSQL's
// foreign_key_violation: a row refers to an account deleted meanwhile.
func isForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503"
}

// begin starts a transaction, retrying when the pool handed out a
// connection that had died (nothing was sent, so nothing changed).
func (s *Store) begin(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	var err error
	for range 3 {
		var tx pgx.Tx
		if tx, err = s.pool.BeginTx(ctx, opts); err == nil {
			return tx, nil
		}
		if !pgconn.SafeToRetry(err) || ctx.Err() != nil {
			break
		}
	}
	return nil, mapErr(err)
}

// read sends b in one round trip as a read-only REPEATABLE READ
// transaction, so that its statements see one snapshot. The results go to
// the callbacks queued with b; the first error a callback returns ends the
// read with that error.
func (s *Store) read(ctx context.Context, b *pgx.Batch) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return mapErr(err)
	}
	defer conn.Release()
	var tb pgx.Batch
	tb.Queue(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`)
	tb.QueuedQueries = append(tb.QueuedQueries, b.QueuedQueries...)
	tb.Queue(`COMMIT`)
	// A batch that failed part way may leave the connection in a
	// transaction: the pool closes such a connection at Release.
	return mapErr(conn.SendBatch(ctx, &tb).Close())
}

// once sends b in one round trip as one transaction, without BEGIN or
// COMMIT: PostgreSQL runs the statements of a pipeline up to its Sync as
// one transaction (PostgreSQL protocol 55.2.4, Pipelining), committed
// there unless a statement failed, which rolls all back. Only statements
// and their results count: an error a callback returns ends the read of
// the results but cannot stop the commit. A connection that had died
// before anything was sent is replaced.
func (s *Store) once(ctx context.Context, b *pgx.Batch) error {
	var err error
	for try := range 3 {
		if try > 0 {
			b = fresh(b)
		}
		err = s.pool.SendBatch(ctx, b).Close()
		if err == nil || !pgconn.SafeToRetry(err) || ctx.Err() != nil {
			break
		}
	}
	return mapErr(err)
}

// fresh returns a batch of b's statements, for sending b again. pgx
// keeps in each queued statement what preparing it on the connection it
// went to described, and does not prepare it again: b sent again on
// another connection (a retry after the first had died) would run
// statements that connection never prepared, and fail with SQLSTATE 26000.
func fresh(b *pgx.Batch) *pgx.Batch {
	out := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, len(b.QueuedQueries))}
	for i, q := range b.QueuedQueries {
		out.QueuedQueries[i] = &pgx.QueuedQuery{SQL: q.SQL, Arguments: q.Arguments, Fn: q.Fn}
	}
	return out
}

// wtx is a write transaction on one account's mail. Its fn calls lock
// before anything that needs the account's counters, and may do work that
// needs no lock (writing a body) before.
//
// A write is two round trips where it can be: BEGIN goes with the first
// statements (lock, or run), and the statements whose results nothing
// needs before commit (queue) go with the counters and COMMIT (finish).
type wtx struct {
	s       *Store
	ctx     context.Context
	conn    *pgxpool.Conn
	account int64
	// tx is conn once BEGIN has been sent, nil before: a statement sent
	// through it can never run outside the transaction.
	tx *pgx.Conn

	locked bool
	// The account_state row as locked, changed in memory and written back
	// at commit.
	modseq, bytes, messages int64
	maxBytes, maxMessages   int64
	dirty                   bool

	touched map[int64]bool // mailboxes whose highest_modseq becomes modseq
	notify  bool           // tell watchers at commit
	pending pgx.Batch      // statements queued to go with COMMIT
}

// write runs fn in a transaction on account's mail and commits it; if fn
// changed anything that watchers care about, it notifies them, across
// nodes with pg_notify in the transaction and locally at once.
func (s *Store) write(ctx context.Context, account int64, fn func(w *wtx) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return mapErr(err)
	}
	w := &wtx{s: s, ctx: ctx, conn: conn, account: account, touched: map[int64]bool{}}
	err = s.finish(w, fn(w))
	// A connection still in a transaction (a failed rollback) is closed
	// by the pool, not reused.
	if w.conn != nil {
		w.conn.Release()
	}
	if err != nil {
		return err
	}
	if w.notify {
		s.hub.wake(account)
	}
	return nil
}

// run sends b in one round trip, after BEGIN if the transaction has not
// begun.
func (w *wtx) run(b *pgx.Batch) error {
	if w.tx != nil {
		return w.tx.SendBatch(w.ctx, b).Close()
	}
	var tb pgx.Batch
	tb.Queue(`BEGIN`)
	tb.QueuedQueries = append(tb.QueuedQueries, b.QueuedQueries...)
	return w.first(&tb)
}

// first sends the transaction's first round trip, b. A connection that
// had died before anything was sent is replaced.
func (w *wtx) first(b *pgx.Batch) error {
	var err error
	for try := range 3 {
		if try > 0 {
			b = fresh(b)
		}
		err = w.conn.SendBatch(w.ctx, b).Close()
		if err == nil || !pgconn.SafeToRetry(err) || w.ctx.Err() != nil {
			break
		}
		w.conn.Conn().Close(context.WithoutCancel(w.ctx))
		w.conn.Release()
		if w.conn, err = w.s.pool.Acquire(w.ctx); err != nil {
			return err // w.tx stays nil: nothing to roll back
		}
	}
	// Sent, even if a statement failed: finish must roll back.
	w.tx = w.conn.Conn()
	return err
}

// begin sends BEGIN alone, for a write whose first statement needs its
// result at once and cannot go with the lock.
func (w *wtx) begin() error {
	if w.tx != nil {
		return nil
	}
	return w.run(&pgx.Batch{})
}

// queue adds a statement to the round trip that commits: for statements
// whose outcome only matters as the write's success or failure, or that
// decide for themselves what they write (a write that sends nothing
// before may be only that).
func (w *wtx) queue(sql string, args ...any) {
	w.pending.Queue(sql, args...)
}

// finish writes w's counters back and commits, or rolls back on err. The
// queued statements, the counters and COMMIT go in one round trip. When
// nothing was sent before, the queued statements are the whole write:
// they go alone, one transaction with no BEGIN or COMMIT (see Store.once).
func (s *Store) finish(w *wtx, err error) error {
	if w.tx == nil {
		if err != nil || len(w.pending.QueuedQueries) == 0 {
			return mapErr(err) // nothing was sent
		}
		return mapErr(w.first(&w.pending)) // committed, or rolled back at the Sync
	}
	ctx := w.ctx
	if err == nil {
		b := &w.pending
		if w.dirty || w.notify {
			ids := make([]int64, 0, len(w.touched))
			for id := range w.touched {
				ids = append(ids, id)
			}
			// One statement: data-modifying CTEs run to completion
			// whether or not the query reads them.
			b.Queue(`WITH mb AS (UPDATE mailboxes SET highest_modseq = $2 WHERE id = ANY($5) AND highest_modseq < $2),
				st AS (UPDATE account_state SET modseq = $2, bytes = $3, messages = $4 WHERE account_id = $1 AND $6)
				SELECT pg_notify('buzon', $8) WHERE $7`,
				w.account, w.modseq, w.bytes, w.messages, ids, w.dirty, w.notify, strconv.FormatInt(w.account, 10))
		}
		var tag pgconn.CommandTag
		b.Queue(`COMMIT`).Exec(func(ct pgconn.CommandTag) error {
			tag = ct
			return nil
		})
		err = w.tx.SendBatch(ctx, b).Close()
		if err == nil && tag.String() != "COMMIT" {
			// PostgreSQL answers COMMIT of a failed transaction with
			// ROLLBACK.
			err = pgx.ErrTxCommitRollback
		}
	}
	if err != nil {
		if _, rerr := w.tx.Exec(context.WithoutCancel(ctx), `ROLLBACK`); rerr != nil {
			w.tx.Close(context.WithoutCancel(ctx))
		}
		return mapErr(err)
	}
	return nil
}

const lockAccount = `SELECT st.modseq, st.bytes, st.messages, a.max_bytes, a.max_messages
	FROM account_state st JOIN accounts a ON a.id = st.account_id
	WHERE st.account_id = $1 AND a.import_state <> 1
	FOR UPDATE OF st`

// lock takes the account's state row, serializing this transaction with
// every other writer to the account on any node until commit. It fails
// with ErrNoAccount if the account is gone or still being imported. The
// statements queued in b (b may be nil) go in the same round trip and run
// once the lock is held.
func (w *wtx) lock(b *pgx.Batch) error {
	if b == nil {
		b = &pgx.Batch{}
	}
	if w.locked {
		return w.run(b)
	}
	var lb pgx.Batch
	lb.Queue(lockAccount, w.account).QueryRow(func(r pgx.Row) error {
		err := r.Scan(&w.modseq, &w.bytes, &w.messages, &w.maxBytes, &w.maxMessages)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: id %d", store.ErrNoAccount, w.account)
		}
		return err
	})
	lb.QueuedQueries = append(lb.QueuedQueries, b.QueuedQueries...)
	if err := w.run(&lb); err != nil {
		return err
	}
	w.locked = true
	return nil
}

// nextModSeq hands out the account's next MODSEQ and marks mailbox as
// changed by it.
func (w *wtx) nextModSeq(mailbox int64) store.ModSeq {
	w.modseq++
	w.dirty, w.notify = true, true
	w.touched[mailbox] = true
	return store.ModSeq(w.modseq)
}

// charge adds to the account's usage, failing with ErrOverQuota if that
// takes it over a limit. Removals (negative amounts) always succeed.
func (w *wtx) charge(bytes, messages int64) error {
	if err := overQuota(w.bytes, w.messages, w.maxBytes, w.maxMessages, bytes, messages); err != nil {
		return err
	}
	w.bytes, w.messages = w.bytes+bytes, w.messages+messages
	w.dirty = true
	return nil
}

// overQuota fails with ErrOverQuota if adding bytes and messages to an
// account's usage takes it over a limit (0: none). Removals (negative
// amounts) always succeed.
func overQuota(usedBytes, usedMessages, maxBytes, maxMessages, bytes, messages int64) error {
	if bytes > 0 && maxBytes > 0 && usedBytes+bytes > maxBytes {
		return fmt.Errorf("%w: %d bytes used of %d, %d more needed", store.ErrOverQuota, usedBytes, maxBytes, bytes)
	}
	if messages > 0 && maxMessages > 0 && usedMessages+messages > maxMessages {
		return fmt.Errorf("%w: %d messages of %d", store.ErrOverQuota, usedMessages, maxMessages)
	}
	return nil
}

// newUIDValidity returns a UIDVALIDITY for a new mailbox from the
// database's sequence, unique across accounts and time (RFC 9051 2.3.1.1).
func newUIDValidity(ctx context.Context, q querier) (uint32, error) {
	var v int64
	err := q.QueryRow(ctx, `SELECT nextval('uidvalidity_seq')`).Scan(&v)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "2200H" { // sequence_generator_limit_exceeded
		return 0, fmt.Errorf("%w: UIDVALIDITY values exhausted", store.ErrLimit)
	}
	return uint32(v), err
}

// querier is what a pool, a connection and a transaction have in common.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}
