package sqlite

import (
	"context"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

// saveDates reads the save date of every message of a mailbox, by UID.
func saveDates(t *testing.T, ss store.Session, mailboxID int64) []time.Time {
	t.Helper()
	var saved []time.Time
	err := ss.Messages(t.Context(), mailboxID, store.AllUIDs(), store.FieldSaveDate, func(m *store.MessageInfo) error {
		saved = append(saved, m.SaveDate)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return saved
}

// toBeforeSaveDates takes a mail.db back to schema version 4, as a buzon
// from before save dates left it.
func toBeforeSaveDates(ctx context.Context, t *testing.T, path string) {
	t.Helper()
	db, err := openDB(path, 1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{`DROP INDEX message_saved`, `ALTER TABLE message DROP COLUMN saved`,
		`DROP TABLE vacation_reply`, `PRAGMA user_version = 4`} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSaveDateUpgrade: a mail.db from before save dates (schema version
// 4) gains the column and its index when the account is next opened.
// The messages then in a \Trash or \Junk mailbox, whatever its name, are
// dated with the time of the upgrade, so that the autoexpunge of the
// first IMAP login after it removes none of them, however old their
// internal dates; 30 days on, they go. The other mailboxes' messages,
// those of a folder merely named like a Trash included, have no save
// date, and ExpireSaved never removes such a message. Messages saved
// after the upgrade are dated by Config.Now.
func TestSaveDateUpgrade(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	st := openTest(t, Config{Dir: dir})
	acct, ss, inbox := newAccount(t, st, "alice@example.org")
	trash, err := ss.Mailbox(ctx, "Trash")
	if err != nil {
		t.Fatal(err)
	}
	junk, err := ss.Mailbox(ctx, "Junk")
	if err != nil {
		t.Fatal(err)
	}
	deleted, err := ss.CreateMailbox(ctx, "Deleted Items", store.SpecialTrash)
	if err != nil {
		t.Fatal(err)
	}
	oldTrash, err := ss.CreateMailbox(ctx, "Old Trash", "")
	if err != nil {
		t.Fatal(err)
	}
	all := []store.Mailbox{inbox, trash, junk, deleted, oldTrash}
	// Received two years and 60 days ago, all stored before the upgrade.
	for _, mb := range all {
		for _, age := range []int{730, 60} {
			body := "Subject: old\r\n\r\nbody\r\n"
			_, err := ss.Append(ctx, mb.ID, &store.NewMessage{Body: strings.NewReader(body), Size: int64(len(body)),
				InternalDate: time.Now().AddDate(0, 0, -age)})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	ss.Close()
	st.Close()
	toBeforeSaveDates(ctx, t, filepath.Join(dir, accountsDir, strconv.FormatInt(acct.ID, 10), mailDBName))

	// SQLite's clock, which dates the upgrade, counts milliseconds. The
	// store's is set years ahead, so that what is saved after the
	// upgrade is told apart from what the upgrade dated.
	before := time.Now().Truncate(time.Millisecond)
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	st = openTest(t, Config{Dir: dir, Now: func() time.Time { return now }})
	ss, err = st.Open(ctx, acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	after := time.Now()
	for _, mb := range all {
		dated := mb.SpecialUse == store.SpecialTrash || mb.SpecialUse == store.SpecialJunk
		for i, saved := range saveDates(t, ss, mb.ID) {
			switch {
			case dated && (saved.Before(before) || saved.After(after)):
				t.Errorf("%s message %d saved %v by the upgrade, want in [%v, %v]", mb.Name, i+1, saved, before, after)
			case !dated && !saved.IsZero():
				t.Errorf("%s message %d saved %v by the upgrade, want none", mb.Name, i+1, saved)
			}
		}
	}

	// The autoexpunge of a login right after the upgrade: 30 days back
	// from then. Nothing goes, nor from the mailboxes without save dates
	// with any time.
	for _, mb := range all {
		cut := after.AddDate(0, 0, -30)
		if mb.SpecialUse == "" {
			cut = now.AddDate(1, 0, 0)
		}
		if gone, err := ss.ExpireSaved(ctx, mb.ID, cut); err != nil || len(gone) != 0 {
			t.Errorf("ExpireSaved(%s, %v) right after the upgrade = %v, %v; want nothing", mb.Name, cut, gone, err)
		}
	}

	// A message received two years ago and moved to Trash after the
	// upgrade is dated by the store's clock, as is a delivery.
	mv, err := ss.Move(ctx, inbox.ID, store.UIDSetOf(1), trash.ID)
	if err != nil {
		t.Fatal(err)
	}
	body := "Subject: new\r\n\r\nbody\r\n"
	if _, err := ss.Append(ctx, trash.ID, &store.NewMessage{Body: strings.NewReader(body), Size: int64(len(body)),
		InternalDate: now.AddDate(0, 0, -90)}); err != nil {
		t.Fatal(err)
	}
	if got := saveDates(t, ss, trash.ID)[2:]; !slices.EqualFunc(got, []time.Time{now, now}, time.Time.Equal) {
		t.Errorf("save dates of a move and an append after the upgrade: %v, want %v twice", got, now)
	}

	// A login 31 days after the upgrade: what the upgrade dated goes from
	// Trash; the two saved since stay.
	gone, err := ss.ExpireSaved(ctx, trash.ID, after.AddDate(0, 0, 31-30))
	if err != nil || !slices.Equal(gone, []store.UID{1, 2}) {
		t.Errorf("ExpireSaved 31 days after the upgrade = %v, %v; want [1 2]", gone, err)
	}
	if gone, err := ss.ExpireSaved(ctx, trash.ID, now); err != nil || len(gone) != 0 {
		t.Errorf("ExpireSaved(Trash, %v) = %v, %v; want nothing: the rest was saved then", now, gone, err)
	}
	if gone, err := ss.ExpireSaved(ctx, trash.ID, now.Add(time.Microsecond)); err != nil || !slices.Equal(gone, []store.UID{mv.Dest[0], mv.Dest[0] + 1}) {
		t.Errorf("ExpireSaved(Trash, just after the store's clock) = %v, %v; want %v and the next", gone, err, mv.Dest[0])
	}
}
