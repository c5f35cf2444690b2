package imapserver

import (
	"errors"
	"strings"
	"time"

	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/store"
)

// idlers are the sessions of one account that are in IDLE with a mailbox
// selected. One store watcher and one goroutine per account wake them all,
// however many there are: an idle session costs its own goroutine, blocked
// reading the client, and no more.
type idlers struct {
	watcher store.Watcher
	conns   map[*conn]struct{} // guarded by Server.mu
	stop    chan struct{}      // closed when the last session leaves
}

// startIdle makes c hear of changes to its account until stopIdle.
func (s *Server) startIdle(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := c.acct.ID
	a := s.idlers[id]
	if a == nil {
		a = &idlers{watcher: s.cfg.Store.Watch(id), conns: map[*conn]struct{}{}, stop: make(chan struct{})}
		s.idlers[id] = a
		go s.wakeIdlers(a)
	}
	a.conns[c] = struct{}{}
}

// stopIdle undoes startIdle.
func (s *Server) stopIdle(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.woken = 0
	id := c.acct.ID
	a := s.idlers[id]
	delete(a.conns, c)
	if len(a.conns) == 0 {
		close(a.stop)
		a.watcher.Close()
		delete(s.idlers, id)
	}
}

// wakeIdlers passes the account's notifications on to its idle sessions.
func (s *Server) wakeIdlers(a *idlers) {
	for {
		select {
		case <-a.watcher.C():
			wake := s.wakes.Add(1)
			s.mu.Lock()
			for c := range a.conns {
				c.wakeLocked(wake)
			}
			s.mu.Unlock()
		case <-a.stop:
			return
		}
	}
}

// wakeLocked tells an idle session that its account changed, interrupting
// its read. The caller holds srv.mu.
func (c *conn) wakeLocked(wake uint64) {
	c.woken = wake
	c.interruptLocked()
}

// RFC 2177 IDLE: updates are sent as they happen until the client says
// DONE, the idle timeout passes or the server shuts down. The connection's
// goroutine waits for the client, and a change or Shutdown interrupts
// that wait (wakeLocked, interruptLocked). Between updates, "* OK Still
// here" every IMAP.IdleKeepalive keeps NAT gateways from forgetting the
// connection.
func (c *conn) cmdIdle(cmd *command) {
	if c.sel != nil {
		c.srv.startIdle(c)
		defer c.srv.stopIdle(c)
	}
	c.w.str("+ idling\r\n")
	if c.idleCatchUp(0) {
		c.done = true
		return
	}
	deadline := time.Now().Add(c.srv.cfg.IMAP.IdleTimeout.D())
	every := c.idleKeepalive()
	keepalive := time.Now().Add(every)
	for {
		// An idle connection holds no buffers (see reader and writer).
		c.w.parkDeflater()
		c.r.park()
		until := deadline
		if keepalive.Before(until) {
			until = keepalive
		}
		wake, closing, err := c.waitIdle(until)
		switch {
		case closing:
			c.bye("server shutting down")
			c.closing, c.done = true, true
			return
		case wake > 0:
			if c.idleCatchUp(wake) {
				c.done = true
				return
			}
			continue
		case err == nil:
			// The client is saying something: DONE, we expect.
		case isTimeout(err) && !time.Now().Before(deadline):
			c.bye("autologout: idle for too long")
			c.closing, c.done = true, true
			return
		case isTimeout(err) && !time.Now().Before(keepalive):
			// RFC 9051 7.1: an untagged OK may come at any time.
			c.w.str("* OK Still here\r\n")
			c.w.flush()
			keepalive = time.Now().Add(every)
			continue
		case isTimeout(err):
			continue // an interruption meant for an earlier wait
		default:
			panic(ioError{err})
		}
		// Read as part of the command, at its pace, so that a literal
		// ending another line is skipped, not taken for commands.
		cmd.p.nextLine()
		if !strings.EqualFold(string(cmd.p.line), "DONE") {
			xsyntaxErrorf("expected DONE")
		}
		c.cmdArrived = time.Now()
		return
	}
}

// idleCatchUp tells a session in IDLE what changed in its mailbox
// (catchUp; wake 0: as sync does) and flushes. It reports whether the
// session is over: the mailbox went and catchUp said BYE, after which
// the connection closes rather than wait for a DONE that a client told
// BYE need not send (RFC 9051 7.1.5). A store that fails to answer is
// logged and asked again at the next wake-up or after DONE: a tagged NO
// now would end the IDLE while the client still idles, and the DONE it
// sends later would be taken for a command. catchUp writes nothing
// before its read succeeds.
func (c *conn) idleCatchUp(wake uint64) (over bool) {
	if c.sel != nil {
		func() {
			defer func() {
				switch x := recover().(type) {
				case nil:
				case userError, serverError:
					c.log.Warn("reading changes for a session in IDLE", "err", x)
				default:
					panic(x)
				}
			}()
			c.catchUp(true, wake)
		}()
	}
	c.w.flush()
	return c.closing
}

// idleKeepalive is how often a session in IDLE says it is still there.
func (c *conn) idleKeepalive() time.Duration {
	if d := c.srv.cfg.IMAP.IdleKeepalive.D(); d > 0 {
		return d
	}
	return config.Default().IMAP.IdleKeepalive.D()
}

// waitIdle waits until the client sends something (err nil), a change
// wakes the session (wake, the wake-up's number) or the server shuts down
// (closing).
func (c *conn) waitIdle(deadline time.Time) (wake uint64, closing bool, err error) {
	c.pace.stop()
	c.setReadDeadline(deadline)
	c.srv.mu.Lock()
	if c.srv.closing || c.woken > 0 {
		wake, closing = c.woken, c.srv.closing
		c.woken = 0
		c.srv.mu.Unlock()
		return wake, closing, nil
	}
	c.waiting = true
	c.srv.mu.Unlock()
	err = c.r.unpark()
	c.srv.mu.Lock()
	c.waiting = false
	wake, closing = c.woken, c.srv.closing
	c.woken = 0
	c.srv.mu.Unlock()
	if err == nil {
		wake = 0 // the client's line comes first; the change is reported after IDLE
	}
	return wake, closing && err != nil, err
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}
