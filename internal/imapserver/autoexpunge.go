package imapserver

import (
	"time"

	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/store"
)

// autoexpungeEvery is how often, at most, this process expires one
// account's Trash and Junk: a login that finds the account done within it
// skips the work. Days are what the settings count in, so an hour late
// is nothing.
const autoexpungeEvery = time.Hour

// autoexpunge expunges from the account's Trash and Junk (by special use,
// RFC 6154) the messages saved there more than imap.expunge_trash_days
// and imap.expunge_junk_days ago (store.Session.ExpireSaved), as
// Dovecot's autoexpunge does at login. The expunges go through the
// store, so every session, those in IDLE included, hears of them. A
// failure is logged and the login goes on: the next one tries again.
func (c *conn) autoexpunge() {
	days := map[string]int{
		store.SpecialTrash: c.srv.cfg.IMAP.ExpungeTrashDays,
		store.SpecialJunk:  c.srv.cfg.IMAP.ExpungeJunkDays,
	}
	if days[store.SpecialTrash] <= 0 && days[store.SpecialJunk] <= 0 {
		return
	}
	now := c.srv.cfg.now()
	if !c.srv.autoexpungeDue(c.acct.ID, now) {
		return
	}
	mbs, err := c.sess.Mailboxes(c.ctx)
	if err != nil {
		c.log.Warn("autoexpunge: list mailboxes", "err", err)
		return
	}
	for _, mb := range mbs {
		d := days[mb.SpecialUse]
		if d <= 0 {
			continue
		}
		gone, err := c.sess.ExpireSaved(c.ctx, mb.ID, config.DaysBefore(now, d))
		if err != nil {
			c.log.Warn("autoexpunge", "mailbox", mb.Name, "err", err)
			continue
		}
		if len(gone) > 0 {
			c.log.Info("autoexpunged", "mailbox", mb.Name, "messages", len(gone), "days", d)
		}
	}
}

// autoexpungeDue reports whether an account's Trash and Junk are due
// for autoexpunge at now, and if so records that they are done: two
// logins at once do the work once. A clock set back makes them due.
func (s *Server) autoexpungeDue(account int64, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if last, ok := s.autoexpunged[account]; ok && !now.Before(last) && now.Sub(last) < autoexpungeEvery {
		return false
	}
	// Accounts done over an hour ago are of no more use: once an hour
	// they go, so the map holds about the accounts of the last hour.
	if now.Sub(s.autoexpungeSwept) >= autoexpungeEvery || now.Before(s.autoexpungeSwept) {
		for id, t := range s.autoexpunged {
			if now.Sub(t) >= autoexpungeEvery || now.Before(t) {
				delete(s.autoexpunged, id)
			}
		}
		s.autoexpungeSwept = now
	}
	s.autoexpunged[account] = now
	return true
}
