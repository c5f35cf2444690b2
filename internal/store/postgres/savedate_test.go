package postgres

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/postgres/pgtest"
	"github.com/jackc/pgx/v5"
)

// TestSaveDateMigration: a database from before save dates (schema
// version 7), which two nodes start on at once, gains the column and its
// index once. The messages then in a \Trash or \Junk mailbox, whatever
// its name, are dated with the time of the migration, so that the
// autoexpunge of the first IMAP login after it removes none of them,
// however old their internal dates; 30 days on, they go. The other
// mailboxes' messages, those of a folder merely named like a Trash
// included, have no save date, and ExpireSaved never removes such a
// message. A node still running the older binary inserts messages
// without the column: the column's default dates them. Messages saved by
// this code are dated by Config.Now.
func TestSaveDateMigration(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := pgtest.Start(t)
	// The store's clock is set years ahead, so that what is saved after
	// the migration is told apart from what the migration dated.
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	s := openConfig(t, Config{DSN: dsn, Now: func() time.Time { return now }})
	acct, err := s.CreateAccount(ctx, "alice@example.org", store.Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	ss, err := s.Open(ctx, acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	var all []store.Mailbox
	for _, name := range []string{"INBOX", "Trash", "Junk"} {
		mb, err := ss.Mailbox(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, mb)
	}
	for _, m := range []store.Mailbox{{Name: "Deleted Items", SpecialUse: store.SpecialTrash}, {Name: "Old Trash"}} {
		mb, err := ss.CreateMailbox(ctx, m.Name, m.SpecialUse)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, mb)
	}
	inbox, trash := all[0], all[1]
	// Received two years and 60 days ago, all stored before the migration.
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
	s.Close()

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{`DROP INDEX messages_saved`, `ALTER TABLE messages DROP COLUMN saved`,
		`DROP TABLE vacation_replies`, `UPDATE schema_version SET version = 7`} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}

	// PostgreSQL's clock, which dates the migration, counts microseconds.
	before := time.Now().Truncate(time.Microsecond)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if err := Migrate(ctx, dsn); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	s = openConfig(t, Config{DSN: dsn, Now: func() time.Time { return now }})
	defer s.Close()
	after := time.Now()
	ss, err = s.Open(ctx, acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	var migrated time.Time
	for _, mb := range all {
		dated := mb.SpecialUse == store.SpecialTrash || mb.SpecialUse == store.SpecialJunk
		for i, saved := range saveDates(t, ss, mb.ID) {
			switch {
			case dated && (saved.Before(before) || saved.After(after)):
				t.Errorf("%s message %d saved %v by the migration, want in [%v, %v]", mb.Name, i+1, saved, before, after)
			case dated && !migrated.IsZero() && !saved.Equal(migrated):
				t.Errorf("%s message %d saved %v by the migration, others %v: migrated twice?", mb.Name, i+1, saved, migrated)
			case dated:
				migrated = saved
			case !saved.IsZero():
				t.Errorf("%s message %d saved %v by the migration, want none", mb.Name, i+1, saved)
			}
		}
	}

	// The autoexpunge of a login right after the migration: 30 days back
	// from then. Nothing goes, nor from the mailboxes without save dates
	// with any time.
	for _, mb := range all {
		cut := after.AddDate(0, 0, -30)
		if mb.SpecialUse == "" {
			cut = now.AddDate(1, 0, 0)
		}
		if gone, err := ss.ExpireSaved(ctx, mb.ID, cut); err != nil || len(gone) != 0 {
			t.Errorf("ExpireSaved(%s, %v) right after the migration = %v, %v; want nothing", mb.Name, cut, gone, err)
		}
	}

	// A node still running the older binary copies a message to Trash,
	// as it spelled the insert: the default dates it.
	oldBefore := time.Now().Truncate(time.Microsecond)
	var oldSaved *time.Time
	err = conn.QueryRow(ctx, `INSERT INTO messages (mailbox_id, uid, body_id, modseq, created_modseq, flags, keywords, internal_date, size, structure)
		SELECT $2, 1000, m.body_id, m.modseq, m.modseq, m.flags, m.keywords, m.internal_date, m.size, m.structure
		FROM messages m WHERE m.mailbox_id = $1 AND m.uid = 1 RETURNING saved`, inbox.ID, trash.ID).Scan(&oldSaved)
	if err != nil {
		t.Fatal(err)
	}
	if oldSaved == nil || oldSaved.Before(oldBefore) || oldSaved.After(time.Now()) {
		t.Errorf("a message an older node copied to Trash was saved %v, want about now", oldSaved)
	}
	if _, err := conn.Exec(ctx, `DELETE FROM messages WHERE mailbox_id = $1 AND uid = 1000`, trash.ID); err != nil {
		t.Fatal(err)
	}

	// A message received two years ago and moved to Trash after the
	// migration is dated by the store's clock, as is a delivery.
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
		t.Errorf("save dates of a move and an append after the migration: %v, want %v twice", got, now)
	}

	// A login 31 days after the migration: what it dated goes from
	// Trash; the two saved since stay.
	gone, err := ss.ExpireSaved(ctx, trash.ID, after.AddDate(0, 0, 31-30))
	if err != nil || !slices.Equal(gone, []store.UID{1, 2}) {
		t.Errorf("ExpireSaved 31 days after the migration = %v, %v; want [1 2]", gone, err)
	}
	if gone, err := ss.ExpireSaved(ctx, trash.ID, now); err != nil || len(gone) != 0 {
		t.Errorf("ExpireSaved(Trash, %v) = %v, %v; want nothing: the rest was saved then", now, gone, err)
	}
	if gone, err := ss.ExpireSaved(ctx, trash.ID, now.Add(time.Microsecond)); err != nil || !slices.Equal(gone, []store.UID{mv.Dest[0], mv.Dest[0] + 1}) {
		t.Errorf("ExpireSaved(Trash, just after the store's clock) = %v, %v; want %v and the next", gone, err, mv.Dest[0])
	}
}

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
