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
// as before. On a store that several nodes share, the session may be on
// another node (a load balancer sent the reconnecting client elsewhere):
// the login asks the other nodes through the store, and the node holding
// the maildrop applies the same rule to its session.

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

// maildropLock names the store lock of RFC 1939 8's exclusive access.
const maildropLock = "pop3"

// takeOver is run by a login of acct refused by the maildrop lock or the
// session limit. It ends the session holding the maildrop if its client
// has been silent for Config.POP3.StaleSession: a session of this server,
// or, on a store that several nodes share (store.ReleaseAsker), one of
// another node, which ends it the same way (answerRelease). It waits for a
// session that is ending anyway (QUIT under way, say). It returns what a
// new try of takeMaildrop returns once the holder has let go, or refusal
// when the holder is live, or not a session (the expiry sweep), or did not
// let go in time.
func (c *conn) takeOver(ctx context.Context, acct store.Account, refusal *userError) ([]func(), *userError) {
	s := c.srv
	if s.cfg.POP3.StaleSession <= 0 {
		return nil, refusal // pop3.stale_session = 0: never
	}
	log := c.log.With("account", acct.Name)
	s.holdersMu.Lock()
	old := s.holders[acct.ID]
	s.holdersMu.Unlock()
	if old != nil {
		if !s.endIfStale(old, log) {
			return nil, refusal // a live session: the login hears [IN-USE]
		}
		t := time.NewTimer(takeOverWait)
		defer t.Stop()
		select {
		case <-old.released:
			return c.takeMaildrop(ctx, acct)
		case <-t.C:
			log.Warn("pop3 login: the session taken over did not let go of the maildrop in time")
		case <-ctx.Done():
		}
		return nil, refusal
	}
	// Its holder let go between the refusal and here (it forgets itself
	// before it closes released), or is on another node.
	releases, refusal := c.takeMaildrop(ctx, acct)
	asker, ok := s.cfg.Store.(store.ReleaseAsker)
	if refusal == nil || refusal.code != codeInUse || !ok {
		return releases, refusal
	}
	answer, err := asker.AskRelease(ctx, acct.ID, maildropLock)
	if err != nil {
		log.Warn("pop3 login: ask the other nodes for the maildrop", "err", err)
	}
	if answer != store.Releasing {
		return nil, refusal
	}
	log.Info("pop3 login takes over a silent session of another node; its deletions are not applied")
	// The other node has ended its session, which lets go of the lock
	// once it has recorded its retrievals: try until it has.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(takeOverWait)
	defer deadline.Stop()
	for {
		select {
		case <-tick.C:
			if releases, refusal = c.takeMaildrop(ctx, acct); refusal == nil || refusal.code != codeInUse {
				return releases, refusal
			}
		case <-deadline.C:
			log.Warn("pop3 login: the session taken over on another node did not let go of the maildrop in time")
			return nil, refusal
		case <-ctx.Done():
			return nil, refusal
		}
	}
}

// endIfStale ends old if its client has been silent for
// Config.POP3.StaleSession, and reports whether old is ending: ended
// here, or already letting go of the maildrop for another reason.
func (s *Server) endIfStale(old *conn, log *slog.Logger) bool {
	silent := time.Since(time.Unix(0, old.heard.Load()))
	old.endMu.Lock()
	ending := old.end != endNone
	take := !ending && silent >= s.cfg.POP3.StaleSession.D()
	if take {
		old.end = endTakenOver
	}
	old.endMu.Unlock()
	if !take {
		return ending
	}
	log.Info("pop3 login takes over a silent session; its deletions are not applied",
		"silent", silent.Round(time.Millisecond))
	old.log.Info("pop3 session taken over by a new login", "silent", silent.Round(time.Millisecond))
	// Whatever it waits for, reading a command, writing to a client that
	// no longer reads, or its command rate, ends now.
	old.cancel()
	old.raw.Close()
	return true
}

// answerRelease answers another node's request for an account's maildrop
// (store.ReleaseAsker): a session of this server holding it is ended if
// it is stale, as takeOver ends one for a login of this server.
func (s *Server) answerRelease(accountID int64, name string) store.ReleaseAnswer {
	if name != maildropLock || s.cfg.POP3.StaleSession <= 0 {
		return store.NotHeld
	}
	s.holdersMu.Lock()
	old := s.holders[accountID]
	s.holdersMu.Unlock()
	switch {
	case old == nil:
		return store.NotHeld
	case s.endIfStale(old, old.log.With("asked_by", "another node")):
		return store.Releasing
	}
	return store.Keeping
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
	unlock, err := c.srv.cfg.Store.Lock(ctx, acct.ID, maildropLock)
	if err != nil {
		release()
		if errors.Is(err, store.ErrLocked) {
			return nil, &userError{codeInUse, "mailbox locked by another session"} // RFC 2449 8.1.1
		}
		xcheck(err, "lock maildrop")
	}
	return []func(){release, unlock}, nil
}
