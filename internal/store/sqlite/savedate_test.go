package sqlite

import (
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

// TestSaveDateUpgrade: a mail.db from before save dates (schema version
// 4) gains the column and its index when the account is next opened. Its
// messages have no save date: Messages reports none, and ExpireSaved
// counts them from their internal date. Messages saved after the upgrade
// are dated by Config.Now.
func TestSaveDateUpgrade(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	st := openTest(t, Config{Dir: dir, Now: func() time.Time { return now }})
	acct, ss, _ := newAccount(t, st, "alice@example.org")
	trash, err := ss.Mailbox(ctx, "Trash")
	if err != nil {
		t.Fatal(err)
	}
	// Received 60 and 10 days ago, both saved into Trash before the upgrade.
	for _, age := range []int{60, 10} {
		body := "Subject: old\r\n\r\nbody\r\n"
		_, err := ss.Append(ctx, trash.ID, &store.NewMessage{Body: strings.NewReader(body), Size: int64(len(body)),
			InternalDate: now.AddDate(0, 0, -age)})
		if err != nil {
			t.Fatal(err)
		}
	}
	ss.Close()
	st.Close()

	path := filepath.Join(dir, accountsDir, strconv.FormatInt(acct.ID, 10), mailDBName)
	db, err := openDB(path, 1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DROP INDEX message_saved`, `ALTER TABLE message DROP COLUMN saved`, `PRAGMA user_version = 4`} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	st = openTest(t, Config{Dir: dir, Now: func() time.Time { return now }})
	ss, err = st.Open(ctx, acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	body := "Subject: new\r\n\r\nbody\r\n"
	if _, err := ss.Append(ctx, trash.ID, &store.NewMessage{Body: strings.NewReader(body), Size: int64(len(body)),
		InternalDate: now.AddDate(0, 0, -90)}); err != nil {
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
		t.Errorf("save dates after the upgrade: %v, want %v", saved, want)
	}
	// Thirty days: the message received 60 days ago goes; the one of 10
	// days stays, and so does the one received 90 days ago but saved now.
	gone, err := ss.ExpireSaved(ctx, trash.ID, now.AddDate(0, 0, -30))
	if err != nil || !slices.Equal(gone, []store.UID{1}) {
		t.Errorf("ExpireSaved after the upgrade = %v, %v; want [1]", gone, err)
	}
}
