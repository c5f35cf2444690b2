package sqlite

import (
	"errors"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

// TestDeletedElsewhere: an account deleted by another process (buzon user
// del while the server runs) is gone for the server's sessions as soon as
// their watchers fire, though the server had its database open: reading
// on from the unlinked file, they would see nothing change until a
// command happened to ask accounts.db.
func TestDeletedElsewhere(t *testing.T) {
	dir := t.TempDir()
	server := openTest(t, Config{Dir: dir, Listen: true})
	acct, ss, inbox := newAccount(t, server, "alice@example.org")
	appendBody(t, ss, inbox.ID, "Subject: hi\r\n\r\nbody\r\n")
	w := server.Watch(acct.ID)
	defer w.Close()
	if _, err := ss.Changes(t.Context(), inbox.ID, 0); err != nil {
		t.Fatal(err)
	}

	admin := openTest(t, Config{Dir: dir})
	if err := admin.DeleteAccount(t.Context(), acct.Name); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.C():
	case <-time.After(10 * time.Second): // a hang guard, not an assertion
		t.Fatal("the server's watcher did not hear of the deletion")
	}
	if _, err := ss.Changes(t.Context(), inbox.ID, 0); !errors.Is(err, store.ErrNoAccount) {
		t.Errorf("Changes after the deletion elsewhere: %v, want ErrNoAccount", err)
	}
}
