package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Accept waits for l's next connection. Errors that may go away by
// themselves (see temporaryAcceptError) are logged and retried after a
// pause that doubles from 5 ms up to a second, as net/http does, rather
// than spinning or giving up; any other error, such as l being closed,
// is returned.
func Accept(l net.Listener, log *slog.Logger) (net.Conn, error) {
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err == nil || !temporaryAcceptError(err) {
			return nc, err
		}
		delay = min(max(2*delay, 5*time.Millisecond), time.Second)
		log.Warn("accept failed; retrying", "err", err, "delay", delay)
		time.Sleep(delay)
	}
}

// ErrServerClosed is what a server's Serve returns once its Shutdown has
// begun.
var ErrServerClosed = errors.New("server closed")

// Serve accepts connections on l until Close begins, and then returns
// ErrServerClosed, or until l fails, and returns its error. Each
// connection accepted is made a C by newConn, added, and served by serve
// on a goroutine of its own, being removed when serve returns. One
// accepted as Close begins is not served: refuse, when not nil, may tell
// the client so; then it is closed.
func (s *Conns[C]) Serve(l net.Listener, log *slog.Logger, newConn func(net.Conn) C, serve func(C), refuse func(net.Conn)) error {
	if !s.listen(l) {
		l.Close()
		return ErrServerClosed
	}
	defer s.unlisten(l)
	for {
		nc, err := Accept(l, log)
		if err != nil {
			if s.Closing() {
				return ErrServerClosed
			}
			return err
		}
		c := newConn(nc)
		if !s.add(c) {
			if refuse != nil {
				refuse(nc)
			}
			nc.Close()
			return ErrServerClosed
		}
		go func() {
			defer s.remove(c)
			serve(c)
		}()
	}
}

// Conns is a server's set of listeners and live connections, C being its
// connection type: what Shutdown must close, reach and wait for. Once
// Close has begun no listener or connection is added. The zero value is
// ready to use.
type Conns[C comparable] struct {
	// closing is set, under mu, by Close.
	closing atomic.Bool
	// wg counts the connections added and not yet removed.
	wg sync.WaitGroup

	mu        sync.Mutex
	listeners map[net.Listener]struct{} // guarded by mu
	conns     map[C]struct{}            // guarded by mu
}

// listen adds l, unless Close has begun: then it reports false.
func (s *Conns[C]) listen(l net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	if s.listeners == nil {
		s.listeners = map[net.Listener]struct{}{}
	}
	s.listeners[l] = struct{}{}
	return true
}

// unlisten forgets l.
func (s *Conns[C]) unlisten(l net.Listener) {
	s.mu.Lock()
	delete(s.listeners, l)
	s.mu.Unlock()
}

// add adds c, unless Close has begun: then it reports false. A
// connection added must be removed when it ends, or Wait waits for it.
func (s *Conns[C]) add(c C) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	if s.conns == nil {
		s.conns = map[C]struct{}{}
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

// remove forgets c, which add added.
func (s *Conns[C]) remove(c C) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// Closing reports whether Close has begun.
func (s *Conns[C]) Closing() bool { return s.closing.Load() }

// Close begins the end: no listener or connection is added from now on,
// every listener is closed, and each is called for every connection, all
// under the lock that add and IfOpen take, so that a session either
// changes its state before Close looks at it or sees Closing after.
func (s *Conns[C]) Close(each func(C)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing.Store(true)
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		each(c)
	}
}

// Each calls f for every connection, under the lock.
func (s *Conns[C]) Each(f func(C)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		f(c)
	}
}

// IfOpen calls f under the lock unless Close has begun, and reports
// whether it did.
func (s *Conns[C]) IfOpen(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	f()
	return true
}

// Wait waits until every connection added has been removed, and returns
// nil, or until ctx is done, and returns its error.
func (s *Conns[C]) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
