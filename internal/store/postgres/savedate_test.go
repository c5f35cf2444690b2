package postgres

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

// TestSaveDateMigration: a database from before save dates (schema
// version 7) gains the column and its index. Messages stored before have
// none (null, as the migration leaves them): Messages reports none, and
// ExpireSaved counts them from their internal date. Messages saved after
// are dated by Config.Now.
func TestSaveDateMigration(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn, conn := databaseAt(t, 7)
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	s := openConfig(t, Config{DSN: dsn, Now: func() time.Time { return now }})
	defer s.Close()
	acct, err := s.CreateAccount(ctx, "alice@example.org", store.Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	ss, err := s.Open(ctx, acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	trash, err := ss.Mailbox(ctx, "Trash")
	if err != nil {
		t.Fatal(err)
	}
	// Received 60, 10 and 90 days ago; the first two stand for messages
	// saved before the migration.
	for _, age := range []int{60, 10, 90} {
		body := "Subject: old\r\n\r\nbody\r\n"
		_, err := ss.Append(ctx, trash.ID, &store.NewMessage{Body: strings.NewReader(body), Size: int64(len(body)),
			InternalDate: now.AddDate(0, 0, -age)})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Exec(ctx, `UPDATE messages SET saved = NULL WHERE mailbox_id = $1 AND uid < 3`, trash.ID); err != nil {
		t.Fatal(err)
	}
	var saved []time.Time
	err = ss.Messages(ctx, trash.ID, store.AllUIDs(), store.FieldSaveDate, func(m *store.MessageInfo) error {
		saved = append(saved, m.SaveDate)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []time.Time{{}, {}, now}; !slices.EqualFunc(saved, want, time.Time.Equal) {
		t.Errorf("save dates: %v, want %v", saved, want)
	}
	gone, err := ss.ExpireSaved(ctx, trash.ID, now.AddDate(0, 0, -30))
	if err != nil || !slices.Equal(gone, []store.UID{1}) {
		t.Errorf("ExpireSaved = %v, %v; want [1]", gone, err)
	}
}
