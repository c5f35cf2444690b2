package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/buzon-mail/buzon/internal/store"
)

// lockKey names a lock held by this Store.
type lockKey struct {
	account int64
	name    string
}

// validLockName keeps lock names usable as file names: 1 to 32 lower-case
// letters, digits and dashes.
func validLockName(name string) bool {
	if name == "" || len(name) > 32 {
		return false
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Lock implements store.Store. This process's holders are kept in a map;
// other processes are kept out by a BSD lock (flock) on
// accounts/<id>/<name>.lock, which the kernel releases if the holder dies.
func (s *Store) Lock(ctx context.Context, accountID int64, name string) (release func(), err error) {
	if !validLockName(name) {
		return nil, fmt.Errorf("lock %q: %w: lock name", name, store.ErrInvalidName)
	}
	// Opening the account checks that it exists and makes its folder.
	a, err := s.acquire(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("lock %q of account %d: %w", name, accountID, err)
	}
	s.release(a)

	key := lockKey{accountID, name}
	s.lockMu.Lock()
	if _, held := s.locks[key]; held {
		s.lockMu.Unlock()
		return nil, fmt.Errorf("lock %q of account %d: %w", name, accountID, store.ErrLocked)
	}
	s.locks[key] = nil // taken; the file follows
	s.lockMu.Unlock()
	unmark := func() {
		s.lockMu.Lock()
		delete(s.locks, key)
		s.lockMu.Unlock()
	}

	f, err := os.OpenFile(filepath.Join(a.dir, name+".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		unmark()
		return nil, fmt.Errorf("lock %q of account %d: %w", name, accountID, mapErr(err))
	}
	if err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		unmark()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			err = store.ErrLocked
		}
		return nil, fmt.Errorf("lock %q of account %d: %w", name, accountID, err)
	}
	s.lockMu.Lock()
	s.locks[key] = f
	s.lockMu.Unlock()
	return sync.OnceFunc(func() {
		s.lockMu.Lock()
		if s.locks[key] == f {
			delete(s.locks, key)
		}
		s.lockMu.Unlock()
		f.Close() // releases the flock
	}), nil
}

// releaseLocks lets go of every lock this Store holds, as the end of the
// process would.
func (s *Store) releaseLocks() {
	s.lockMu.Lock()
	defer s.lockMu.Unlock()
	for key, f := range s.locks {
		if f != nil {
			f.Close()
		}
		delete(s.locks, key)
	}
}
