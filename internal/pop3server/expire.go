package pop3server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/store"
)

// Expire runs one sweep of the EXPIRE policy (RFC 2449 6.7): in every
// account, INBOX messages first retrieved by POP3 more than
// POP3.ExpireDays days ago are expunged. Accounts whose maildrop is locked
// by a POP3 session are skipped until the next sweep; while an account is
// swept, its maildrop is locked, so a login then hears [IN-USE]. It
// returns how many messages were removed. With ExpireDays 0 it does
// nothing.
func (s *Server) Expire(ctx context.Context) (int, error) {
	days := s.cfg.POP3.ExpireDays
	if days <= 0 {
		return 0, nil
	}
	before := config.DaysBefore(s.cfg.Now(), days)
	accounts, err := s.cfg.Store.Accounts(ctx)
	if err != nil {
		return 0, fmt.Errorf("pop3 expire: list accounts: %w", err)
	}
	total := 0
	var errs []error
	for _, acct := range accounts {
		n, err := s.expireAccount(ctx, acct.ID, before)
		switch {
		case errors.Is(err, store.ErrLocked):
			s.log.Debug("pop3 expire: maildrop in use, skipped", "account", acct.Name)
		case err != nil:
			errs = append(errs, fmt.Errorf("pop3 expire %s: %w", acct.Name, err))
		case n > 0:
			s.log.Info("pop3 expired messages", "account", acct.Name, "count", n)
		}
		total += n
		if ctx.Err() != nil {
			break
		}
	}
	return total, errors.Join(errs...)
}

func (s *Server) expireAccount(ctx context.Context, accountID int64, before time.Time) (int, error) {
	unlock, err := s.cfg.Store.Lock(ctx, accountID, maildropLock)
	if err != nil {
		return 0, err
	}
	defer unlock()
	sess, err := s.cfg.Store.Open(ctx, accountID)
	if err != nil {
		return 0, err
	}
	defer sess.Close()
	inbox, err := sess.Mailbox(ctx, "INBOX")
	if err != nil {
		return 0, err
	}
	uids, err := sess.ExpireRetrieved(ctx, inbox.ID, before)
	return len(uids), err
}

// RunExpiry runs Expire at once and then every POP3.ExpireInterval until
// ctx is done, logging failures. With ExpireDays 0 it returns at once.
func (s *Server) RunExpiry(ctx context.Context) {
	if s.cfg.POP3.ExpireDays <= 0 {
		return
	}
	t := time.NewTicker(s.cfg.POP3.ExpireInterval.D())
	defer t.Stop()
	for {
		if _, err := s.Expire(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("pop3 expire", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
