package pop3server

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

// A client whose connection died without QUIT (a phone that lost its
// signal, a laptop closed mid-download) leaves a session holding the
// maildrop lock until TCP keepalive (about 2.5 minutes with Go's defaults,
// longer behind a load balancer) or the idle timeout notices. Its next
// attempt would hear [IN-USE] all that while. So a login refused by the
// lock, or by the per-account session limit, ends a session of this
// server for the same account that has not heard from its client for
// Config.POP3.StaleSession, and takes the maildrop once that session has let
// go of it. The session ended never applies its deletions: RFC 1939 6
// applies them only at QUIT, and a QUIT and a takeover exclude each other
// (conn.endMu). A live session stays, and a second login hears [IN-USE]
// as before.

// takeOverWait bounds how long a login waits for the session it ended
// (or found ending) to let go of the maildrop: that session records its
// retrievals (recordRetrievalsTimeout) and closes its store session first.
const takeOverWait = recordRetrievalsTimeout + 5*time.Second

// errTakenOver ends a session whose maildrop a new login took over.
var errTakenOver = errors.New("maildrop taken over by a new login")

// endState says how a session in TRANSACTION is ending, if it is.
type endState uint8

const (
	// endNone: the session goes on.
	endNone endState = iota
	// endQuit: QUIT is applying its deletions; nothing may take the
	// maildrop from it.
	endQuit
	// endTakenOver: a new login ended it; its deletions are dropped.
	endTakenOver
	// endLogout: it is letting go of the maildrop for another reason
	// (the client hung up, timed out, or the server is shutting down).
	endLogout
)

// hold records that c holds its account's maildrop, for a later login to
// find. The returned function forgets it; it runs after the lock is
// released, so a login that finds the lock taken finds its holder here
// until the holder's released is closed.
func (s *Server) hold(c *conn) (forget func()) {
	id := c.account.ID
	s.holdersMu.Lock()
	if s.holders == nil {
		s.holders = map[int64]*conn{}
	}
	s.holders[id] = c
	s.holdersMu.Unlock()
	return func() {
		s.holdersMu.Lock()
		if s.holders[id] == c {
			delete(s.holders, id)
		}
		s.holdersMu.Unlock()
	}
}

// takeOver is run by a login of accountID refused by the maildrop lock or
// the session limit. It ends this server's session holding the maildrop
// if its client has been silent for Config.POP3.StaleSession, waits for a
// session that is ending anyway (QUIT under way, say), and reports
// whether the login should try again: true once that session has let go,
// or when there is none of this server's to end. A holder it cannot see
// (on another node, or the expiry sweep) stays.
func (s *Server) takeOver(ctx context.Context, accountID int64, log *slog.Logger) bool {
	stale := s.cfg.POP3.StaleSession.D()
	if stale <= 0 {
		return false // pop3.stale_session = 0: never
	}
	s.holdersMu.Lock()
	old := s.holders[accountID]
	s.holdersMu.Unlock()
	if old == nil {
		// Its holder let go between the refusal and here (it forgets
		// itself before it closes released), or is on another node,
		// where a second try is refused as the first was.
		return true
	}
	silent := time.Since(time.Unix(0, old.heard.Load()))
	old.endMu.Lock()
	ending := old.end != endNone
	take := !ending && silent >= stale
	if take {
		old.end = endTakenOver
	}
	old.endMu.Unlock()
	switch {
	case take:
		log.Info("pop3 login takes over a silent session; its deletions are not applied",
			"silent", silent.Round(time.Millisecond))
		old.log.Info("pop3 session taken over by a new login", "silent", silent.Round(time.Millisecond))
		// Whatever it waits for, reading a command, writing to a client
		// that no longer reads, or its command rate, ends now.
		old.cancel()
		old.raw.Close()
	case !ending:
		return false // a live session: the login hears [IN-USE]
	}
	t := time.NewTimer(takeOverWait)
	defer t.Stop()
	select {
	case <-old.released:
		return true
	case <-t.C:
		log.Warn("pop3 login: the session taken over did not let go of the maildrop in time")
	case <-ctx.Done():
	}
	return false
}

// beginUpdate is QUIT's claim to apply the deletions (RFC 1939 6). It
// fails when a new login took the maildrop over first.
func (c *conn) beginUpdate() bool {
	c.endMu.Lock()
	defer c.endMu.Unlock()
	if c.end == endTakenOver {
		return false
	}
	c.end = endQuit
	return true
}

// beginLogout marks the session as letting go of the maildrop, so that a
// login finding it waits for that rather than hearing [IN-USE].
func (c *conn) beginLogout() {
	c.endMu.Lock()
	if c.end == endNone {
		c.end = endLogout
	}
	c.endMu.Unlock()
}

// heardNow records that the client has just shown it is there.
func (c *conn) heardNow() {
	c.heard.Store(time.Now().UnixNano())
}

// takeMaildrop takes a session slot and the maildrop lock for acct
// (RFC 1939 8). A refusal is returned with nothing held; a store failure
// is raised, with nothing held.
func (c *conn) takeMaildrop(ctx context.Context, acct store.Account) (releases []func(), refusal *userError) {
	release, ok := c.srv.cfg.Sessions.Acquire(acct.ID)
	if !ok {
		// fetchmail reads a refused login whose text lacks "lock" or
		// "wait" as a wrong password, which its daemon reports to the
		// user by mail.
		return nil, &userError{codeSysTemp, "too many sessions for this account; wait for one to end"}
	}
	unlock, err := c.srv.cfg.Store.Lock(ctx, acct.ID, "pop3")
	if err != nil {
		release()
		if errors.Is(err, store.ErrLocked) {
			return nil, &userError{codeInUse, "mailbox locked by another session"} // RFC 2449 8.1.1
		}
		xcheck(err, "lock maildrop")
	}
	return []func(){release, unlock}, nil
}
