package sqlite

import (
	"errors"
	"os"
	"testing"

	"github.com/buzon-mail/buzon/internal/store"
)

// TestLostBody: a message whose body file is gone while its row stays
// (a disk fault, a person's rm) is not passed off as expunged, which a
// client would take calmly and a person would never hear of: OpenBody
// and Copy fail with an error of their own. A message expunged after its
// row was read stays ErrNoMessage.
func TestLostBody(t *testing.T) {
	st := openTest(t, Config{})
	ctx := t.Context()
	acct, ss, inbox := newAccount(t, st, "alice@example.org")
	lost := appendBody(t, ss, inbox.ID, "Subject: lost\r\n\r\nbody\r\n").UID
	kept := appendBody(t, ss, inbox.ID, "Subject: kept\r\n\r\nbody\r\n").UID
	mailboxes, err := ss.Mailboxes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var archive int64
	for _, mb := range mailboxes {
		if mb.Name == "Archive" {
			archive = mb.ID
		}
	}

	a, err := st.acquire(ctx, acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	var file int64
	if err := a.db.QueryRow(`SELECT file FROM message WHERE uid = ?`, lost).Scan(&file); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(st.bodyPath(a, file)); err != nil {
		t.Fatal(err)
	}
	st.release(a)

	if _, err := ss.OpenBody(ctx, inbox.ID, lost); err == nil || errors.Is(err, store.ErrNoMessage) {
		t.Errorf("OpenBody of a lost body: %v; want an error other than ErrNoMessage", err)
	}
	if _, err := ss.Copy(ctx, inbox.ID, store.UIDSetOf(lost, kept), archive); err == nil || errors.Is(err, store.ErrNoMessage) {
		t.Errorf("Copy of a lost body: %v; want an error other than ErrNoMessage", err)
	}
	if b, err := ss.OpenBody(ctx, inbox.ID, kept); err != nil {
		t.Errorf("OpenBody of a sound message: %v", err)
	} else {
		b.Close()
	}

	// The row and the file read, then the expunge: the missing file is
	// the expunge's.
	if _, err := ss.Expunge(ctx, inbox.ID, store.UIDSetOf(lost), false); err != nil {
		t.Fatal(err)
	}
	a, err = st.acquire(ctx, acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer st.release(a)
	if err := bodyMissing(ctx, a.db, inbox.ID, lost, file, os.ErrNotExist); !errors.Is(err, store.ErrNoMessage) {
		t.Errorf("body of an expunged message: %v; want ErrNoMessage", err)
	}
}
