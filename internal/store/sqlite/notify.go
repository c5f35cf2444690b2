package sqlite

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

// notifier is the change feed. In the process, each account has a set of
// watchers whose channels hold one pending wake-up. Across processes, the
// Store opened with Config.Listen binds a unix datagram socket in the
// data folder; every other Store sends it the account ID (8 bytes, big
// endian) after each commit, and the listener wakes its own watchers. The
// deletion of an account sends a ninth byte, 1: the listener then lets go
// of the account's database, which it could otherwise go on reading,
// unlinked, and its sessions find the account gone.
// A notification that cannot be sent is dropped: watchers catch up with
// Session.Changes on the next one, and a missing listener just means no
// server is running.
type notifier struct {
	log     *slog.Logger
	path    string
	deleted func(accountID int64) // the listener's hook for a deleted account

	conn *net.UnixConn // the listening socket, or nil
	ino  uint64        // its inode, so that Close removes only our own file
	done chan struct{} // closed when the listening goroutine ends

	mu       sync.Mutex
	watchers map[int64]map[*watcher]struct{} // guarded by mu
}

// ErrServed is Open's error, with Config.Listen, when another Store
// already listens on the data folder: only a server listens, so another
// server serves the folder.
var ErrServed = errors.New("another buzon server already serves this data folder")

// sendTimeout bounds a send to a listener whose queue is full.
const sendTimeout = 100 * time.Millisecond

func newNotifier(s *Store, path string, listen bool) (*notifier, error) {
	n := &notifier{log: s.log, path: path, deleted: s.forgetAccount, watchers: map[int64]map[*watcher]struct{}{}}
	// sun_path holds 108 bytes with the terminating NUL.
	if len(path) > 107 {
		if listen {
			return nil, fmt.Errorf("notification socket path %s is longer than 107 bytes", path)
		}
		n.log.Warn("notification socket path too long: other processes will not hear of changes", "path", path)
	}
	if !listen {
		return n, nil
	}
	addr := &net.UnixAddr{Name: path, Net: "unixgram"}
	if c, err := net.DialUnix("unixgram", nil, addr); err == nil {
		c.Close()
		return nil, ErrServed
	}
	// Nobody answers: whatever is there is left from a process that died.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale %s: %w", path, err)
	}
	conn, err := net.ListenUnixgram("unixgram", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for notifications: %w", err)
	}
	if fi, err := os.Stat(path); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			n.ino = st.Ino
		}
	}
	n.conn = conn
	n.done = make(chan struct{})
	go n.listen()
	return n, nil
}

func (n *notifier) listen() {
	defer close(n.done)
	buf := make([]byte, 64)
	for {
		m, _, err := n.conn.ReadFromUnix(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			n.log.Warn("read notification", "err", err)
			continue
		}
		if m != 8 && m != 9 {
			continue
		}
		id := int64(binary.BigEndian.Uint64(buf))
		if m == 9 && buf[8] == 1 {
			n.deleted(id)
		}
		n.wake(id)
	}
}

func (n *notifier) close() error {
	if n.conn == nil {
		return nil
	}
	err := n.conn.Close()
	<-n.done
	if fi, serr := os.Stat(n.path); serr == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Ino == n.ino {
			os.Remove(n.path)
		}
	}
	return err
}

// notify tells every watcher of the account, here and in the listening
// process, that a change was committed.
func (n *notifier) notify(accountID int64) { n.send(accountID, false) }

// notifyDeleted is notify for an account just deleted, which the
// listening process is told to let go of (this one has).
func (n *notifier) notifyDeleted(accountID int64) { n.send(accountID, true) }

func (n *notifier) send(accountID int64, deleted bool) {
	n.wake(accountID)
	if n.conn != nil {
		return // we are the listener; our watchers just heard it
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		return // no listener
	}
	defer c.Close()
	msg := binary.BigEndian.AppendUint64(make([]byte, 0, 9), uint64(accountID))
	if deleted {
		msg = append(msg, 1)
	}
	c.SetWriteDeadline(time.Now().Add(sendTimeout))
	if _, err := c.Write(msg); err != nil {
		n.log.Debug("send notification", "account", accountID, "err", err)
	}
}

// wake signals the account's watchers in this process without blocking:
// a watcher with a wake-up pending needs no second one.
func (n *notifier) wake(accountID int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for w := range n.watchers[accountID] {
		select {
		case w.c <- struct{}{}:
		default:
		}
	}
}

// watcher implements store.Watcher.
type watcher struct {
	n    *notifier
	id   int64
	c    chan struct{}
	once sync.Once
}

// C implements store.Watcher.
func (w *watcher) C() <-chan struct{} { return w.c }

// Close implements store.Watcher. C is not closed, so a reader selecting
// on it does not spin.
func (w *watcher) Close() {
	w.once.Do(func() {
		w.n.mu.Lock()
		defer w.n.mu.Unlock()
		delete(w.n.watchers[w.id], w)
		if len(w.n.watchers[w.id]) == 0 {
			delete(w.n.watchers, w.id)
		}
	})
}

// Watch implements store.Store.
func (s *Store) Watch(accountID int64) store.Watcher {
	n := s.notifier
	w := &watcher{n: n, id: accountID, c: make(chan struct{}, 1)}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.watchers[accountID] == nil {
		n.watchers[accountID] = map[*watcher]struct{}{}
	}
	n.watchers[accountID][w] = struct{}{}
	return w
}
