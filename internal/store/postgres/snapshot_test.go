package postgres

import "testing"

// TestUIDCacheForgetsDeletedMailboxes: the cached UID list of a deleted
// mailbox goes with it.
func TestUIDCacheForgetsDeletedMailboxes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := nodes(t, 1)[0]
	_, ss, _ := newAccount(t, s, "alice@example.org")
	mb, err := ss.CreateMailbox(ctx, "Gone", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ss.Append(ctx, mb.ID, message(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := ss.Snapshot(ctx, mb.ID); err != nil {
		t.Fatal(err)
	}
	if s.uids.Get(mb.ID) == nil {
		t.Fatal("no cached UIDs after a Snapshot")
	}
	if err := ss.DeleteMailbox(ctx, "Gone"); err != nil {
		t.Fatal(err)
	}
	if s.uids.Get(mb.ID) != nil {
		t.Error("the mailbox is gone, its UIDs are still cached")
	}
}
