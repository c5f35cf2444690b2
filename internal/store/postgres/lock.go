package postgres

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/buzon-mail/buzon/internal/store"
)

// locker holds this Store's named locks as session-level advisory locks on
// one connection of its own. If the node crashes, the connection closes and
// PostgreSQL releases the locks. One connection serves all of the Store's
// locks, so that a thousand POP3 sessions cost one database connection,
// not a thousand.
type locker struct {
	s  *Store
	mu sync.Mutex
	// conn holds the locks; nil until the first Lock or after it failed.
	conn *pgx.Conn // guarded by mu
	// gen counts connections, so that a release after the connection was
	// lost (and its locks with it) does nothing.
	gen  int                // guarded by mu
	held map[int64]struct{} // guarded by mu; keys held on conn
}

// lockKey derives the advisory lock key for an account's named lock.
func lockKey(accountID int64, name string) int64 {
	h := fnv.New64a()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(accountID))
	h.Write([]byte("buzon lock\x00"))
	h.Write(b[:])
	h.Write([]byte(name))
	return int64(h.Sum64())
}

// Lock implements store.Store with pg_try_advisory_lock, so the lock is
// exclusive across every node on the database. If the database connection
// is lost while the lock is held, PostgreSQL releases it; the holder is not
// told (see the package documentation).
func (s *Store) Lock(ctx context.Context, accountID int64, name string) (release func(), err error) {
	key := lockKey(accountID, name)
	l := s.locks
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.held[key]; ok {
		// Advisory locks are re-entrant within a connection; ours are not.
		return nil, fmt.Errorf("lock %q of account %d: %w", name, accountID, store.ErrLocked)
	}
	var got bool
	for attempt := 0; ; attempt++ {
		if l.conn == nil {
			if l.conn, err = pgx.ConnectConfig(ctx, s.connCfg.Copy()); err != nil {
				l.conn = nil
				return nil, fmt.Errorf("lock %q of account %d: %w", name, accountID, mapErr(err))
			}
			l.gen++
			clear(l.held)
		}
		err = l.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got)
		if err == nil {
			break
		}
		// The connection is broken (the database restarted, say), and the
		// locks it held are gone with it: start over on a new one, once.
		l.dropLocked()
		if attempt > 0 || ctx.Err() != nil {
			return nil, fmt.Errorf("lock %q of account %d: %w", name, accountID, mapErr(err))
		}
	}
	if !got {
		return nil, fmt.Errorf("lock %q of account %d: %w", name, accountID, store.ErrLocked)
	}
	l.held[key] = struct{}{}
	gen := l.gen
	var once sync.Once
	return func() { once.Do(func() { l.unlock(key, gen) }) }, nil
}

// unlock releases key if the connection that took it is still the one open.
func (l *locker) unlock(key int64, gen int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil || l.gen != gen {
		return // the lock went with its connection
	}
	delete(l.held, key)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := l.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, key); err != nil {
		// Closing the connection releases the lock for sure, and the
		// others it held, which are as good as lost with a broken
		// connection anyway.
		l.s.log.Warn("postgres store: release lock; dropping the lock connection", "err", err)
		l.dropLocked()
	}
}

// dropLocked closes the lock connection, which releases its locks.
// The caller holds l.mu.
func (l *locker) dropLocked() {
	if l.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// The server releases a closed connection's locks when its
		// backend exits, a moment after Close returns; unlocking first
		// makes them free when this returns, as the next Lock expects.
		l.conn.Exec(ctx, `SELECT pg_advisory_unlock_all()`)
		l.conn.Close(ctx)
		l.conn = nil
	}
	clear(l.held)
}

func (l *locker) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dropLocked()
}
