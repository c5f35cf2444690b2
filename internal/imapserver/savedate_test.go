package imapserver

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

// unsavedStore is a store whose messages of UID 1 have no save date, as
// those stored before buzon kept save dates.
type unsavedStore struct{ store.Store }

func (s unsavedStore) Open(ctx context.Context, id int64) (store.Session, error) {
	sess, err := s.Store.Open(ctx, id)
	return unsavedSession{sess}, err
}

type unsavedSession struct{ store.Session }

func (ss unsavedSession) Messages(ctx context.Context, mailboxID int64, uids store.UIDSet, fields store.Field, fn func(*store.MessageInfo) error) error {
	return ss.Session.Messages(ctx, mailboxID, uids, fields, func(m *store.MessageInfo) error {
		if m.UID == 1 {
			m.SaveDate = time.Time{}
		}
		return fn(m)
	})
}

// TestSaveDateUnknown: a message without a save date answers FETCH
// SAVEDATE with NIL (RFC 8514 4.2), and the save-date search keys compare
// its internal date instead (4.3); SAVEDATESUPPORTED matches it too.
func TestSaveDateUnknown(t *testing.T) {
	t.Parallel()
	clk := &testClock{t: time.Date(2024, 6, 15, 12, 0, 0, 0, time.UTC)}
	e := newTestEnv(t, func(c *Config) {
		c.Store = unsavedStore{c.Store}
		c.now = clk.now
	})
	e.deliver("INBOX", "Subject: stored before save dates\n\n.\n") // internal date 1-Mar-2024
	e.deliver("INBOX", "Subject: saved today\n\n.\n")
	c := e.login()
	c.mustOK("SELECT INBOX")
	got := c.mustOK("FETCH 1 (SAVEDATE)")
	if want := []string{"* 1 FETCH (SAVEDATE NIL)"}; !slices.Equal(got, want) {
		t.Errorf("FETCH SAVEDATE of a message without one: %q, want %q", got, want)
	}
	for _, tc := range []struct{ search, want string }{
		{"SAVEDON 1-Mar-2024", "* SEARCH 1"},
		{"SAVEDBEFORE 2-Mar-2024", "* SEARCH 1"},
		{"SAVEDSINCE 2-Mar-2024", "* SEARCH 2"},
		{"SAVEDATESUPPORTED", "* SEARCH 1 2"},
		{"NOT SAVEDATESUPPORTED", "* SEARCH"},
	} {
		if got := c.mustOK("SEARCH " + tc.search); !slices.Equal(got, []string{tc.want}) {
			t.Errorf("SEARCH %s: %q, want %q", tc.search, got, tc.want)
		}
	}
}
