// Package sqlite is buzon's embedded default mail store: a data folder with
// one small SQLite database for the account directory, one SQLite database
// per account for its mail metadata, and message bodies as immutable files
// next to it. It implements store.Store, store.Checker and
// store.SecretKeeper.
//
// Layout of the data folder (Config.Dir):
//
//	accounts.db                 accounts, aliases, credentials, quotas, secrets (shared)
//	store.lock                  every open Store holds a shared flock on it
//	notify.sock                 change notifications (unix datagram socket)
//	accounts/<id>/mail.db       mailboxes, messages, flags, tombstones, counters, Sieve scripts
//	accounts/<id>/msg/<xx>/<f>  message bodies, <xx> the low byte of <f>, in hex
//	accounts/<id>/<name>.lock   named locks (store.Store.Lock)
//	trash/<id>                  an account folder being deleted
//
// Only numeric IDs become file names; mailbox and account names never do.
//
// Durability: databases run in WAL mode with synchronous=FULL, so a commit
// is on disk when it returns. A body is written into its msg/ folder and
// synced, and the folder synced, before the row naming it commits; an
// expunge commits before it unlinks. A crash therefore loses nothing that
// was acknowledged and at worst leaves body files no row names, which
// Check finds and removes.
//
// Concurrency: each account's writes are serialized in the process by a
// write token and across processes by SQLite's BEGIN IMMEDIATE with a busy
// timeout; writes waiting for the token are committed together (group
// commit). Accounts never wait for each other. Several processes (the
// server, `buzon deliver`, `buzon user`) may open the same folder at once.
package sqlite

import (
	"container/list"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/buzon-mail/buzon/internal/durable"
	"github.com/buzon-mail/buzon/internal/store"
)

// Config configures a Store. Zero values mean the defaults stated.
type Config struct {
	// Dir is the data folder; it is created if missing. Required.
	Dir string
	// Logger receives problems the store works around (a failed cleanup, a
	// notification that could not be read). Default: discard.
	Logger *slog.Logger
	// Listen makes this Store receive change notifications from other
	// processes on Dir/notify.sock, so that its Watchers hear of deliveries
	// made by `buzon deliver`. One Store per data folder listens: the
	// server. Default false.
	Listen bool
	// MaxOpenAccounts is how many account databases stay open when idle;
	// the least recently used are closed beyond it. Databases in use are
	// never closed. Default 256.
	MaxOpenAccounts int
	// ReadConns is the most concurrent readers of one account database.
	// Default 4.
	ReadConns int
	// BusyTimeout is how long a write waits for another process's write to
	// the same database before failing with store.ErrUnavailable.
	// Default 10s.
	BusyTimeout time.Duration
	// MaxBatch is the most writes to one account committed in one
	// transaction (group commit). 1 commits each write alone. Default 64.
	MaxBatch int
	// MaxMailboxes is the most mailboxes per account (store.ErrLimit).
	// Default 10000.
	MaxMailboxes int
	// OrphanGrace: while other processes have the data folder open, Check
	// leaves alone body and temporary files younger than this, since
	// another process may be about to commit them. Default 1h.
	OrphanGrace time.Duration
	// CachedUIDs is how many UIDs, over all mailboxes, Snapshot keeps in
	// memory to read only what changed at the next one (store.UIDCache);
	// 4 bytes each. Negative turns the cache off. Default 4,000,000.
	CachedUIDs int
	// KeptExpunges bounds the expunged UIDs per mailbox that Changes
	// remembers (for QRESYNC's VANISHED, RFC 7162): when a mailbox has
	// more than twice as many tombstones, the oldest are forgotten down
	// to this many (store.ChangeSet.Forgotten); those of one expunge,
	// which share a MODSEQ, are forgotten together. Default 100,000.
	KeptExpunges int
	// Now is the clock that dates what the store saves: the save date of
	// messages (RFC 8514) and the internal date of appends that give
	// none. Tests set it to age mail without waiting. Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns the configuration with every default filled in and
// Dir empty.
func DefaultConfig() Config {
	return Config{
		MaxOpenAccounts: 256,
		CachedUIDs:      4_000_000,
		KeptExpunges:    100_000,
		ReadConns:       4,
		BusyTimeout:     10 * time.Second,
		MaxBatch:        64,
		MaxMailboxes:    10000,
		OrphanGrace:     time.Hour,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxOpenAccounts <= 0 {
		c.MaxOpenAccounts = d.MaxOpenAccounts
	}
	if c.ReadConns <= 0 {
		c.ReadConns = d.ReadConns
	}
	if c.BusyTimeout <= 0 {
		c.BusyTimeout = d.BusyTimeout
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = d.MaxBatch
	}
	if c.MaxMailboxes <= 0 {
		c.MaxMailboxes = d.MaxMailboxes
	}
	if c.OrphanGrace <= 0 {
		c.OrphanGrace = d.OrphanGrace
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

// Store is the embedded store. Create one with Open.
type Store struct {
	cfg Config
	log *slog.Logger
	dir string // absolute

	adb   *sql.DB    // accounts.db
	adbMu sync.Mutex // serializes this process's writes to accounts.db

	// dirLock holds a shared flock on store.lock while the Store is open;
	// Check upgrades it to learn whether another process has the folder
	// open.
	dirLock *os.File

	mu     sync.Mutex
	accts  map[int64]*account // guarded by mu; referenced or open accounts
	lru    *list.List         // guarded by mu; accounts with an open database, most recent first
	closed bool               // guarded by mu

	notifier *notifier
	uids     *store.UIDCache // Snapshot's lists

	lockMu sync.Mutex
	locks  map[lockKey]*os.File // guarded by lockMu; named locks held by this Store, nil while being taken

	inflightMu sync.Mutex
	inflight   map[fileKey]struct{} // guarded by inflightMu; bodies written, not yet committed or removed

	// Group commit at work: writes committed and the transactions that
	// committed them.
	writes, commits atomic.Int64

	// createBody creates the file a body is written to; tests replace it
	// to simulate a full disk.
	createBody func(path string) (bodyWriter, error)
}

var (
	_ store.Store   = (*Store)(nil)
	_ store.Checker = (*Store)(nil)
)

// bodyWriter is a body file being written.
type bodyWriter interface {
	io.Writer
	Sync() error
	Close() error
}

// Exists reports whether dir holds a store that Open made before.
func Exists(dir string) (bool, error) {
	_, err := os.Stat(filepath.Join(dir, accountsDB))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// Open opens (creating if needed) the store in cfg.Dir.
func Open(cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if cfg.Dir == "" {
		return nil, errors.New("sqlite store: no data folder configured")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	if strings.ContainsRune(dir, '?') {
		// The driver reads everything after '?' as options.
		return nil, fmt.Errorf("sqlite store: data folder %q contains '?'", dir)
	}
	for _, d := range []string{dir, filepath.Join(dir, accountsDir), filepath.Join(dir, trashDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("sqlite store: %w", err)
		}
	}
	s := &Store{
		cfg:      cfg,
		log:      cfg.Logger,
		dir:      dir,
		accts:    map[int64]*account{},
		lru:      list.New(),
		locks:    map[lockKey]*os.File{},
		inflight: map[fileKey]struct{}{},
		uids:     store.NewUIDCache(max(cfg.CachedUIDs, 0)),
		createBody: func(path string) (bodyWriter, error) {
			return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		},
	}
	if s.dirLock, err = lockFolder(dir); err != nil {
		return nil, fmt.Errorf("sqlite store: lock data folder: %w", err)
	}
	if s.adb, err = openDB(filepath.Join(dir, accountsDB), cfg.ReadConns+1, cfg.BusyTimeout); err == nil {
		err = s.migrateAccounts()
	}
	if err == nil {
		s.notifier, err = newNotifier(s, filepath.Join(dir, notifySocket), cfg.Listen)
	}
	if err == nil {
		err = durable.SyncDir(dir)
	}
	if err != nil {
		if s.adb != nil {
			s.adb.Close()
		}
		s.dirLock.Close()
		return nil, fmt.Errorf("sqlite store %s: %w", dir, err)
	}
	return s, nil
}

// lockFolder takes a shared lock on dir's store.lock, waiting while
// another process holds it exclusively (Check, Backup, Restore). A folder
// replaced while this one waited (restore swaps folders, a person may move
// one) leaves the lock taken on a file the folder no longer holds, which
// nobody else would ever look at: then it locks the new one.
func lockFolder(dir string) (*os.File, error) {
	path := filepath.Join(dir, "store.lock")
	for range 10 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, err
		}
		if err := flock(f, syscall.LOCK_SH); err != nil {
			f.Close()
			return nil, err
		}
		held, err1 := f.Stat()
		now, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(held, now) {
			return f, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("%s kept being replaced", path)
}

// Close closes the notification socket and every database. Sessions must be
// closed first. Close may be called more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var dbs []*sql.DB
	for e := s.lru.Front(); e != nil; e = e.Next() {
		// a.db stays set: an operation still running (against the
		// contract) then fails with "database is closed", not a panic.
		dbs = append(dbs, e.Value.(*account).db)
	}
	s.accts = map[int64]*account{}
	s.lru.Init()
	s.mu.Unlock()

	s.releaseLocks()
	errs := []error{s.notifier.close()}
	for _, db := range dbs {
		errs = append(errs, db.Close())
	}
	errs = append(errs, s.adb.Close(), s.dirLock.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close sqlite store: %w", err)
	}
	return nil
}

// Names inside the data folder.
const (
	accountsDB   = "accounts.db"
	accountsDir  = "accounts"
	trashDir     = "trash"
	notifySocket = "notify.sock"
	mailDBName   = "mail.db"
	msgDir       = "msg"
	tmpDir       = "tmp" // bodies being written, in earlier versions
)

func (s *Store) accountDir(id int64) string {
	return filepath.Join(s.dir, accountsDir, fmt.Sprint(id))
}

// CreateAccount implements store.Store.
func (s *Store) CreateAccount(ctx context.Context, name string, cred store.Credentials) (store.Account, error) {
	name = store.CanonicalAccountName(name)
	if err := store.ValidAccountName(name); err != nil {
		return store.Account{}, err
	}
	acct := store.Account{Name: name, Credentials: cred, Created: time.Now().UTC().Truncate(time.Microsecond)}
	err := s.writeAccounts(ctx, func(tx *sql.Tx) error {
		if err := addressFree(ctx, tx, name); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx,
			`INSERT INTO account (name, password_hash, scram_sha256, created) VALUES (?, ?, ?, ?) RETURNING id`,
			name, cred.PasswordHash, cred.SCRAMSHA256, acct.Created.UnixMicro()).Scan(&acct.ID)
	})
	if err != nil {
		return store.Account{}, fmt.Errorf("create account %s: %w", name, err)
	}
	if acct.ID > maxAccountID {
		s.deleteAccountRow(ctx, acct.ID)
		return store.Account{}, fmt.Errorf("create account %s: %w: account IDs exhausted", name, store.ErrLimit)
	}
	// Opening the account creates its folder, database and standard
	// mailboxes. Were this to fail or crash, the next open would do it.
	a, err := s.acquire(ctx, acct.ID)
	if err != nil {
		s.deleteAccountRow(ctx, acct.ID)
		return store.Account{}, fmt.Errorf("create account %s: %w", name, err)
	}
	s.release(a)
	return acct, nil
}

func (s *Store) deleteAccountRow(ctx context.Context, id int64) {
	err := s.writeAccounts(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM account WHERE id = ?`, id)
		return err
	})
	if err != nil {
		s.log.Error("undo account creation", "account", id, "err", err)
	}
}

// DeleteAccount implements store.Store. The account's row and its aliases
// go first, so a crash leaves at worst a folder no account names, which Check removes.
func (s *Store) DeleteAccount(ctx context.Context, name string) error {
	name = store.CanonicalAccountName(name)
	acct, err := s.LookupAccount(ctx, name)
	if err != nil {
		return fmt.Errorf("delete account %s: %w", name, err)
	}
	id := acct.ID
	mark := s.uidValidityMark(ctx, id)
	err = s.writeAccounts(ctx, func(tx *sql.Tx) error {
		// The aliases go with the account (ON DELETE CASCADE: every
		// connection enforces foreign keys, see openDB).
		res, err := tx.ExecContext(ctx, `DELETE FROM account WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("%w: %s", store.ErrNoAccount, name)
		}
		return raiseUIDValidityCounter(ctx, tx, mark)
	})
	if err != nil {
		return fmt.Errorf("delete account %s: %w", name, err)
	}
	s.forgetAccount(id)
	if err := s.removeAccountDir(id); err != nil {
		return fmt.Errorf("delete account %s: %w", name, err)
	}
	s.notifier.notifyDeleted(id)
	return nil
}

// uidValidityMark returns a UIDVALIDITY at least as high as any the
// account handed out. The margin covers mailboxes another process may
// create while the account is being deleted; if the account's database
// cannot be read, a day of the clock stands in for it.
func (s *Store) uidValidityMark(ctx context.Context, id int64) int64 {
	const margin = 100
	a, err := s.acquire(ctx, id)
	if err == nil {
		defer s.release(a)
		var next int64
		if err = a.db.QueryRowContext(ctx, `SELECT next_uidvalidity FROM meta`).Scan(&next); err == nil {
			return next + margin
		}
	}
	s.log.Warn("read UIDVALIDITY counter of deleted account", "account", id, "err", err)
	return int64(uint32(time.Now().Unix())) + 86400
}

// removeAccountDir moves an account folder out of accounts/ in one step,
// then removes it.
func (s *Store) removeAccountDir(id int64) error {
	trash := filepath.Join(s.dir, trashDir, fmt.Sprint(id))
	if err := os.RemoveAll(trash); err != nil {
		return err
	}
	err := os.Rename(s.accountDir(id), trash)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := durable.SyncDir(filepath.Join(s.dir, accountsDir)); err != nil {
		return err
	}
	return os.RemoveAll(trash)
}

// LookupAccount implements store.Store.
func (s *Store) LookupAccount(ctx context.Context, name string) (store.Account, error) {
	name = store.CanonicalAccountName(name)
	rows, err := s.adb.QueryContext(ctx, selectAccount+` WHERE name = ?`, name)
	if err != nil {
		return store.Account{}, fmt.Errorf("look up account %s: %w", name, mapErr(err))
	}
	accts, err := scanAccounts(rows)
	if err != nil {
		return store.Account{}, fmt.Errorf("look up account %s: %w", name, mapErr(err))
	}
	if len(accts) == 0 {
		return store.Account{}, fmt.Errorf("%w: %s", store.ErrNoAccount, name)
	}
	return accts[0], nil
}

// Accounts implements store.Store.
func (s *Store) Accounts(ctx context.Context) ([]store.Account, error) {
	rows, err := s.adb.QueryContext(ctx, selectAccount+` ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", mapErr(err))
	}
	accts, err := scanAccounts(rows)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", mapErr(err))
	}
	return accts, nil
}

const selectAccount = `SELECT id, name, password_hash, scram_sha256, max_bytes, max_messages, created FROM account`

func scanAccounts(rows *sql.Rows) ([]store.Account, error) {
	defer rows.Close()
	var accts []store.Account
	for rows.Next() {
		var a store.Account
		var created int64
		if err := rows.Scan(&a.ID, &a.Name, &a.Credentials.PasswordHash, &a.Credentials.SCRAMSHA256,
			&a.Quota.MaxBytes, &a.Quota.MaxMessages, &created); err != nil {
			return nil, err
		}
		a.Created = time.UnixMicro(created).UTC()
		accts = append(accts, a)
	}
	return accts, rows.Err()
}

// SetCredentials implements store.Store.
func (s *Store) SetCredentials(ctx context.Context, name string, cred store.Credentials) error {
	name = store.CanonicalAccountName(name)
	err := s.updateAccount(ctx, name, `UPDATE account SET password_hash = ?, scram_sha256 = ? WHERE name = ?`,
		cred.PasswordHash, cred.SCRAMSHA256, name)
	if err != nil {
		return fmt.Errorf("set credentials of %s: %w", name, err)
	}
	return nil
}

// SetQuota implements store.Store.
func (s *Store) SetQuota(ctx context.Context, name string, q store.Quota) error {
	name = store.CanonicalAccountName(name)
	if q.MaxBytes < 0 || q.MaxMessages < 0 {
		return fmt.Errorf("set quota of %s: negative limit", name)
	}
	err := s.updateAccount(ctx, name, `UPDATE account SET max_bytes = ?, max_messages = ? WHERE name = ?`,
		q.MaxBytes, q.MaxMessages, name)
	if err != nil {
		return fmt.Errorf("set quota of %s: %w", name, err)
	}
	return nil
}

func (s *Store) updateAccount(ctx context.Context, name, query string, args ...any) error {
	return s.writeAccounts(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("%w: %s", store.ErrNoAccount, name)
		}
		return nil
	})
}

// writeAccounts runs fn in a write transaction on accounts.db.
func (s *Store) writeAccounts(ctx context.Context, fn func(*sql.Tx) error) error {
	s.adbMu.Lock()
	defer s.adbMu.Unlock()
	tx, err := s.adb.BeginTx(ctx, nil)
	if err != nil {
		return mapErr(err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return mapErr(err)
	}
	return mapErr(tx.Commit())
}

// accountQuota reads an account's quota; it also tells whether the account
// exists.
func (s *Store) accountQuota(ctx context.Context, id int64) (store.Quota, error) {
	var q store.Quota
	err := s.adb.QueryRowContext(ctx, `SELECT max_bytes, max_messages FROM account WHERE id = ?`, id).
		Scan(&q.MaxBytes, &q.MaxMessages)
	if errors.Is(err, sql.ErrNoRows) {
		return q, fmt.Errorf("%w: id %d", store.ErrNoAccount, id)
	}
	return q, mapErr(err)
}

// Open implements store.Store.
func (s *Store) Open(ctx context.Context, accountID int64) (store.Session, error) {
	if _, err := s.accountQuota(ctx, accountID); err != nil {
		return nil, fmt.Errorf("open account %d: %w", accountID, err)
	}
	a, err := s.acquire(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("open account %d: %w", accountID, err)
	}
	s.release(a)
	return &session{s: s, id: accountID}, nil
}
