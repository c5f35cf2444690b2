package postgres

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/buzon-mail/buzon/internal/store"
)

// notifyChannel is the LISTEN/NOTIFY channel; the payload is an account ID
// in decimal.
const notifyChannel = "buzon"

// hub fans change notifications out to this Store's Watchers.
type hub struct {
	mu       sync.Mutex
	watchers map[int64]map[*watcher]struct{} // guarded by mu; by account
}

func newHub() *hub {
	return &hub{watchers: map[int64]map[*watcher]struct{}{}}
}

// wake wakes the account's watchers without blocking: a watcher whose
// channel is full already has a wake-up pending (the contract's coalescing).
func (h *hub) wake(account int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers[account] {
		w.signal()
	}
}

// wakeAll wakes every watcher, for when notifications may have been lost.
func (h *hub) wakeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ws := range h.watchers {
		for w := range ws {
			w.signal()
		}
	}
}

// watcher implements store.Watcher.
type watcher struct {
	h       *hub
	account int64
	c       chan struct{} // capacity 1
	once    sync.Once
}

func (w *watcher) signal() {
	select {
	case w.c <- struct{}{}:
	default:
	}
}

// C implements store.Watcher.
func (w *watcher) C() <-chan struct{} { return w.c }

// Close implements store.Watcher.
func (w *watcher) Close() {
	w.once.Do(func() {
		w.h.mu.Lock()
		defer w.h.mu.Unlock()
		ws := w.h.watchers[w.account]
		delete(ws, w)
		if len(ws) == 0 {
			delete(w.h.watchers, w.account)
		}
	})
}

// Watch implements store.Store. Changes made on any node reach the Watcher
// through LISTEN/NOTIFY; those made through this Store also directly.
func (s *Store) Watch(accountID int64) store.Watcher {
	w := &watcher{h: s.hub, account: accountID, c: make(chan struct{}, 1)}
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	ws := s.hub.watchers[accountID]
	if ws == nil {
		ws = map[*watcher]struct{}{}
		s.hub.watchers[accountID] = ws
	}
	ws[w] = struct{}{}
	return w
}

// listenConn opens a connection outside the pool and LISTENs on it, for
// changes and for requests to let go of locks.
func (s *Store) listenConn(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.connCfg.Copy())
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel+"; LISTEN "+releaseChannel); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return conn, nil
}

// listen receives notifications on conn and wakes the watchers they name.
// When the connection fails it reconnects with backoff, then wakes every
// watcher, since notifications sent while it was down are lost. It returns
// when ctx is cancelled.
func (s *Store) listen(ctx context.Context, conn *pgx.Conn) {
	defer close(s.listenDone)
	const minWait = 100 * time.Millisecond
	wait := minWait
	for {
		for conn != nil {
			n, err := conn.WaitForNotification(ctx)
			if err != nil {
				cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				conn.Close(cctx)
				cancel()
				conn = nil
				if ctx.Err() != nil {
					return
				}
				s.log.Warn("postgres store: notification connection lost; reconnecting", "err", err)
				break
			}
			if n.Channel == releaseChannel {
				s.received(ctx, n.Payload)
			} else if id, err := strconv.ParseInt(n.Payload, 10, 64); err == nil {
				s.hub.wake(id)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		var err error
		if conn, err = s.listenConn(ctx); err != nil {
			conn = nil
			wait = min(2*wait, s.cfg.ReconnectMax)
			if ctx.Err() == nil {
				s.log.Debug("postgres store: notification connection", "err", err, "retry_in", wait)
			}
			continue
		}
		s.log.Info("postgres store: notification connection restored")
		wait = minWait
		s.hub.wakeAll()
	}
}
