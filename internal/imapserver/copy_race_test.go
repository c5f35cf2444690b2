package imapserver

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/buzon-mail/buzon/internal/store"
)

// expungeFirst is a store whose Copy and Move, once armed, first expunge
// a message through a session of their own: another client's expunge
// landing between the IMAP server's look at its view and the copy.
type expungeFirst struct {
	store.Store
	uid store.UID // to expunge; 0: disarmed
}

func (s *expungeFirst) Open(ctx context.Context, id int64) (store.Session, error) {
	sess, err := s.Store.Open(ctx, id)
	if err != nil {
		return nil, err
	}
	return &expungeFirstSession{Session: sess, s: s, account: id}, nil
}

type expungeFirstSession struct {
	store.Session
	s       *expungeFirst
	account int64
}

func (ss *expungeFirstSession) race(ctx context.Context, mailboxID int64) error {
	uid := ss.s.uid
	if uid == 0 {
		return nil
	}
	ss.s.uid = 0
	other, err := ss.s.Store.Open(ctx, ss.account)
	if err != nil {
		return err
	}
	defer other.Close()
	_, err = other.Expunge(ctx, mailboxID, store.UIDSetOf(uid), false)
	return err
}

func (ss *expungeFirstSession) Copy(ctx context.Context, from int64, uids store.UIDSet, to int64) (store.CopyResult, error) {
	if err := ss.race(ctx, from); err != nil {
		return store.CopyResult{}, err
	}
	return ss.Session.Copy(ctx, from, uids, to)
}

func (ss *expungeFirstSession) Move(ctx context.Context, from int64, uids store.UIDSet, to int64) (store.CopyResult, error) {
	if err := ss.race(ctx, from); err != nil {
		return store.CopyResult{}, err
	}
	return ss.Session.Move(ctx, from, uids, to)
}

// TestCopyRacesExpunge: a message expunged elsewhere between the server's
// check of its view and the copy itself still makes a COPY or MOVE by
// number answer NO [EXPUNGEISSUED] (what was copied stays, and the client
// does not take the command for done); by UID, COPYUID says what was
// copied and the command is OK.
func TestCopyRacesExpunge(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cmd  string
		want string
	}{
		{"COPY 1:3 Archive", "NO [EXPUNGEISSUED]"},
		{"MOVE 1:3 Archive", "NO [EXPUNGEISSUED]"},
		{"UID COPY 1:3 Archive", "OK [COPYUID "},
		{"UID MOVE 1:3 Archive", "OK"},
	} {
		t.Run(tc.cmd, func(t *testing.T) {
			var race *expungeFirst
			e := newTestEnv(t, func(cfg *Config) {
				race = &expungeFirst{Store: cfg.Store}
				cfg.Store = race
			})
			for i := 1; i <= 3; i++ {
				e.deliver("INBOX", clientMsg(i))
			}
			c := e.login()
			c.mustOK("SELECT INBOX")
			race.uid = 2
			_, tagged := c.cmd(tc.cmd)
			if _, status, _ := strings.Cut(tagged, " "); !strings.HasPrefix(status, tc.want) {
				t.Errorf("%s with message 2 expunged meanwhile: %q, want %q", tc.cmd, tagged, tc.want)
			}
			// The EXPUNGE may come with the NO or with this command.
			st, _ := c.cmd("STATUS Archive (MESSAGES)")
			if !slices.ContainsFunc(st, func(l string) bool { return strings.HasPrefix(l, `* STATUS "Archive" (MESSAGES 2)`) }) {
				t.Errorf("Archive after %s: %q, want the 2 messages left", tc.cmd, st)
			}
		})
	}
}
