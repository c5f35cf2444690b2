package imapserver

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/buzon-mail/buzon/internal/store"
)

// goneOnRead is a store whose bodies of one UID open, then fail every
// read with store.ErrNoMessage: the message was expunged by another
// session while this one read it, as PostgreSQL reads a large body in
// pieces.
type goneOnRead struct {
	store.Store
	uid store.UID
}

func (s *goneOnRead) Open(ctx context.Context, id int64) (store.Session, error) {
	sess, err := s.Store.Open(ctx, id)
	if err != nil {
		return nil, err
	}
	return &goneOnReadSession{Session: sess, uid: s.uid}, nil
}

type goneOnReadSession struct {
	store.Session
	uid store.UID
}

func (ss *goneOnReadSession) OpenBody(ctx context.Context, mailboxID int64, uid store.UID) (store.Body, error) {
	b, err := ss.Session.OpenBody(ctx, mailboxID, uid)
	if err != nil || uid != ss.uid {
		return b, err
	}
	return goneBody{b}, nil
}

type goneBody struct{ store.Body }

func (goneBody) ReadAt([]byte, int64) (int, error) {
	return 0, fmt.Errorf("read body: %w", store.ErrNoMessage)
}

// TestPreviewExpungedWhileRead: a message expunged while FETCH PREVIEW
// reads its body is left out of the answer, as one whose body is gone
// when opened; the messages after it still get their previews.
func TestPreviewExpungedWhileRead(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, func(cfg *Config) {
		cfg.Store = &goneOnRead{Store: cfg.Store, uid: 2}
	})
	for i := 1; i <= 4; i++ {
		e.deliver("INBOX", fmt.Sprintf("Subject: m%d\n\ntext %d\n", i, i))
	}
	c := e.login()
	c.mustOK("SELECT INBOX")
	got, tagged := c.cmd("FETCH 1:4 (UID PREVIEW)")
	want := []string{
		`* 1 FETCH (UID 1 PREVIEW "text 1")`,
		`* 3 FETCH (UID 3 PREVIEW "text 3")`,
		`* 4 FETCH (UID 4 PREVIEW "text 4")`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("FETCH 1:4 (UID PREVIEW):\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Message 2 is still in the view, as it is for a body gone when
	// opened: the NO of RFC 9051 7.1.
	if !strings.Contains(tagged, " NO [EXPUNGEISSUED] ") {
		t.Errorf("FETCH 1:4 (UID PREVIEW): %q, want NO [EXPUNGEISSUED] after the other messages", tagged)
	}
}
