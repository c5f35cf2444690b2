package sqlite

import (
	"container/list"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/buzon-mail/buzon/internal/durable"
	"github.com/buzon-mail/buzon/internal/store"
)

// account is this process's state for one account: its database handle
// and its write path. It lives in Store.accts while it is referenced or its
// database is open, so everyone working on an account at the same time
// shares one write token.
type account struct {
	id  int64
	dir string

	refs    int           // guarded by Store.mu; operations in progress
	elem    *list.Element // guarded by Store.mu; in Store.lru while db is open
	deleted bool          // guarded by Store.mu; DeleteAccount ran: close when unreferenced

	openMu sync.Mutex // serializes opening db
	db     *sql.DB    // set under openMu and Store.mu; cleared under Store.mu when refs == 0

	// token is held by the one goroutine of this process that writes to
	// the account's database; it commits whatever is queued (group commit).
	token chan struct{}
	qmu   sync.Mutex
	queue []*writeReq // guarded by qmu
}

// acquire returns the account with its database open, counting a
// reference; release it when done. Handles are opened lazily and closed
// by the LRU only when no operation uses them, so a session may outlive
// many closings and reopenings of its account's database.
func (s *Store) acquire(ctx context.Context, id int64) (*account, error) {
	if id <= 0 || id > maxAccountID {
		return nil, fmt.Errorf("%w: id %d", store.ErrNoAccount, id)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errors.New("store closed")
	}
	a := s.accts[id]
	if a == nil {
		a = &account{id: id, dir: s.accountDir(id), token: make(chan struct{}, 1)}
		s.accts[id] = a
	}
	a.refs++
	s.mu.Unlock()

	a.openMu.Lock()
	defer a.openMu.Unlock()
	// With refs > 0 nobody clears a.db, so reading it here is safe.
	if a.db != nil {
		s.mu.Lock()
		if a.elem != nil {
			s.lru.MoveToFront(a.elem)
		}
		s.mu.Unlock()
		return a, nil
	}
	db, err := s.openAccountDB(ctx, a)
	if err != nil {
		s.release(a)
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		db.Close()
		s.release(a)
		return nil, errors.New("store closed")
	}
	a.db = db
	a.elem = s.lru.PushFront(a)
	s.mu.Unlock()
	return a, nil
}

// release drops a reference taken by acquire, closing least recently used
// databases beyond Config.MaxOpenAccounts.
func (s *Store) release(a *account) {
	var closing []*sql.DB
	s.mu.Lock()
	a.refs--
	if s.closed { // Close closed every database
		s.mu.Unlock()
		return
	}
	if a.refs == 0 && a.deleted && a.db != nil {
		closing = append(closing, s.evictLocked(a))
	}
	if a.refs == 0 && a.db == nil && s.accts[a.id] == a {
		delete(s.accts, a.id)
	}
	for e := s.lru.Back(); e != nil && s.lru.Len() > s.cfg.MaxOpenAccounts; {
		old := e.Value.(*account)
		e = e.Prev()
		if old.refs == 0 {
			closing = append(closing, s.evictLocked(old))
		}
	}
	s.mu.Unlock()
	for _, db := range closing {
		if err := db.Close(); err != nil {
			s.log.Warn("close account database", "err", err)
		}
	}
}

// evictLocked detaches an unreferenced account's database, for the caller
// to close.
func (s *Store) evictLocked(a *account) *sql.DB {
	db := a.db
	a.db = nil
	s.lru.Remove(a.elem)
	a.elem = nil
	if s.accts[a.id] == a {
		delete(s.accts, a.id)
	}
	return db
}

// forgetAccount makes this process let go of a deleted account.
func (s *Store) forgetAccount(id int64) {
	var db *sql.DB
	s.mu.Lock()
	if a := s.accts[id]; a != nil {
		a.deleted = true
		delete(s.accts, id)
		if a.refs == 0 && a.db != nil {
			db = s.evictLocked(a)
		}
	}
	s.mu.Unlock()
	if db != nil {
		db.Close()
	}
}

// openAccountDB opens an account's database, creating its folder, schema
// and standard mailboxes the first time. It refuses accounts that do not
// exist, so that no folder is made for them.
func (s *Store) openAccountDB(ctx context.Context, a *account) (*sql.DB, error) {
	if _, err := s.accountQuota(ctx, a.id); err != nil {
		return nil, err
	}
	created := false
	for _, d := range []string{a.dir, filepath.Join(a.dir, msgDir)} {
		err := os.Mkdir(d, 0o700)
		if err == nil {
			created = true
		} else if !errors.Is(err, os.ErrExist) {
			return nil, mapErr(err)
		}
	}
	if created {
		// Another process may have deleted the account since the check
		// above: its folder must not come back, empty, for nobody.
		if _, err := s.accountQuota(ctx, a.id); err != nil {
			os.RemoveAll(a.dir)
			return nil, err
		}
	}
	mark, err := uidValidityCounter(ctx, s.adb)
	if err != nil {
		return nil, err
	}
	db, err := openDB(filepath.Join(a.dir, mailDBName), s.cfg.ReadConns+1, s.cfg.BusyTimeout)
	if err != nil {
		return nil, err
	}
	err = migrate(ctx, db, mailSchema, func(tx *sql.Tx) error { return s.initAccount(ctx, tx, a.id, mark) })
	if err == nil && created {
		// The new folders and database file must survive a crash before
		// anything is acknowledged from them.
		err = errors.Join(durable.SyncDir(a.dir), durable.SyncDir(filepath.Join(s.dir, accountsDir)))
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open database of account %d: %w", a.id, mapErr(err))
	}
	return db, nil
}

// uidValidityCounter reads the store-wide 'uidvalidity' counter of
// accounts.db (see accountsSchema): the highest UIDVALIDITY a deleted or
// restored account may have handed out, 0 if there is none yet.
func uidValidityCounter(ctx context.Context, q queryer) (int64, error) {
	var mark int64
	err := q.QueryRowContext(ctx, `SELECT value FROM counter WHERE name = 'uidvalidity'`).Scan(&mark)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, mapErr(err)
	}
	return mark, nil
}

// raiseUIDValidityCounter raises the 'uidvalidity' counter of accounts.db
// to mark, and never lowers it.
func raiseUIDValidityCounter(ctx context.Context, tx *sql.Tx, mark int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO counter (name, value) VALUES ('uidvalidity', ?)
		ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)`, mark)
	return err
}

// initAccount fills a new account database: counters, INBOX and the
// standard special-use mailboxes (RFC 6154), subscribed. UIDVALIDITY
// starts at the clock, or above mark (see accountsSchema).
func (s *Store) initAccount(ctx context.Context, tx *sql.Tx, id, mark int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO meta (id, account, modseq, next_mailbox, next_uidvalidity, bytes, messages)
		VALUES (1, ?, 0, 1, ?, 0, 0)`, id, max(int64(uint32(time.Now().Unix())), mark+1))
	if err != nil {
		return err
	}
	boxes := append([]store.StandardMailbox{{Name: "INBOX"}}, store.StandardMailboxes()...)
	for _, b := range boxes {
		if _, err := createMailbox(ctx, tx, id, b.Name, b.SpecialUse, math.MaxInt); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO subscription (name) VALUES (?)`, b.Name); err != nil {
			return err
		}
	}
	return nil
}

// writeReq is one write waiting for the account's write token.
type writeReq struct {
	fn func(context.Context, *sql.Tx) error
	// dirs are folders whose new entries (body files) must be durable
	// before fn's work commits.
	dirs []string
	err  error
	done chan struct{}
}

// errCommit marks a failure after the request's own work succeeded: the
// transaction may or may not have reached the disk, so the caller must not
// delete files the rows would name.
type errCommit struct{ err error }

func (e *errCommit) Error() string { return "commit: " + e.err.Error() }
func (e *errCommit) Unwrap() error { return e.err }

// write runs fn in a write transaction on the account's database and
// returns once that transaction is durable. fn may run together with other
// writes in one transaction (group commit): each runs inside its own
// savepoint, so an error from fn undoes only fn's work. fn must not keep
// the transaction, must only read and write the database, and must use
// the context it is given, not its caller's: a cancelled statement makes
// SQLite roll back the whole transaction, everyone's work with it.
//
// Whoever holds the account's token commits everything queued; the others
// wait until either their request is done or the token is free, so each
// fsync serves every write that queued during the previous one.
func (s *Store) write(ctx context.Context, a *account, fn func(context.Context, *sql.Tx) error) error {
	return s.writeAfterSync(ctx, a, nil, fn)
}

// writeAfterSync is write for rows that name new body files: the folders
// holding them are synced first, once for the whole batch.
func (s *Store) writeAfterSync(ctx context.Context, a *account, dirs []string, fn func(context.Context, *sql.Tx) error) error {
	req := &writeReq{fn: fn, dirs: dirs, done: make(chan struct{})}
	a.qmu.Lock()
	a.queue = append(a.queue, req)
	a.qmu.Unlock()
	for {
		select {
		case <-req.done:
			return req.err
		case a.token <- struct{}{}:
			select {
			case <-req.done:
				<-a.token
				return req.err
			default:
			}
			a.qmu.Lock()
			n := min(len(a.queue), s.cfg.MaxBatch)
			batch := a.queue[:n:n]
			a.queue = a.queue[n:]
			a.qmu.Unlock()
			s.commitBatch(a, batch)
			<-a.token
		case <-ctx.Done():
			a.qmu.Lock()
			for i, r := range a.queue {
				if r == req {
					a.queue = append(a.queue[:i:i], a.queue[i+1:]...)
					a.qmu.Unlock()
					return ctx.Err()
				}
			}
			a.qmu.Unlock()
			// Already taken by a committer: its outcome is ours.
			<-req.done
			return req.err
		}
	}
}

// commitBatch runs queued writes in one transaction and commits it. It runs
// detached from any caller's context: a caller that goes away must not
// abort the others' commit.
func (s *Store) commitBatch(a *account, batch []*writeReq) {
	ctx := context.Background()
	defer func() {
		for _, r := range batch {
			close(r.done)
		}
	}()
	ready := syncBatchDirs(batch)
	if len(ready) == 0 {
		return
	}
	tx, err := a.db.BeginTx(ctx, nil)
	if err != nil {
		failAll(ready, mapErr(err))
		return
	}
	if err := runBatch(ctx, tx, ready); err != nil {
		tx.Rollback()
		failAll(ready, err)
		return
	}
	if err := tx.Commit(); err != nil {
		err = mapErr(err)
		// A commit refused for lack of space or for a lock wrote no
		// commit record: nothing happened. Any other failure (an fsync
		// error) leaves the outcome unknown.
		if !errors.Is(err, store.ErrStorageFull) && !errors.Is(err, store.ErrUnavailable) {
			err = &errCommit{err}
		}
		failAll(ready, err)
		return
	}
	ok := 0
	for _, r := range ready {
		if r.err == nil {
			ok++
		}
	}
	s.commits.Add(1)
	s.writes.Add(int64(ok))
	if ok > 0 {
		s.notifier.notify(a.id)
	}
}

// syncBatchDirs syncs each folder the batch's writes added body files to,
// once for all of them, and returns the writes that may go on: one whose
// folder cannot be synced fails alone.
func syncBatchDirs(batch []*writeReq) []*writeReq {
	synced := map[string]error{}
	var ready []*writeReq
	for _, r := range batch {
		for _, d := range r.dirs {
			err, done := synced[d]
			if !done {
				err = mapErr(durable.SyncDir(d))
				synced[d] = err
			}
			if err != nil && r.err == nil {
				r.err = err
			}
		}
		if r.err == nil {
			ready = append(ready, r)
		}
	}
	return ready
}

// runBatch runs each write in its own savepoint, so that an error undoes
// that write alone (and is kept as its outcome). It returns an error when
// the whole transaction is lost.
func runBatch(ctx context.Context, tx *sql.Tx, batch []*writeReq) error {
	if len(batch) == 1 {
		if err := batch[0].fn(ctx, tx); err != nil {
			return mapErr(err)
		}
		return nil
	}
	for _, r := range batch {
		if _, err := tx.ExecContext(ctx, `SAVEPOINT w`); err != nil {
			return mapErr(err)
		}
		if err := r.fn(ctx, tx); err != nil {
			r.err = mapErr(err)
			// Some errors (a full disk) make SQLite roll back the whole
			// transaction; then the savepoint is gone and so is
			// everyone's work.
			if _, rerr := tx.ExecContext(ctx, `ROLLBACK TO w`); rerr != nil {
				return r.err
			}
		}
		if _, err := tx.ExecContext(ctx, `RELEASE w`); err != nil {
			return mapErr(err)
		}
	}
	return nil
}

// failAll gives every write of a lost transaction its error.
func failAll(batch []*writeReq, err error) {
	for _, r := range batch {
		r.err = err
	}
}
