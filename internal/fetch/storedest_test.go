package fetch

import (
	"errors"
	"fmt"
	"testing"

	"github.com/buzon-mail/buzon/internal/store"
)

// TestStoreReason: what the store says of an error a person can act on is
// kept, its context with the store's ids dropped, in the shapes the
// backends give it.
func TestStoreReason(t *testing.T) {
	disk := errors.New("database or disk is full")
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("append to mailbox 4294967297: %w", fmt.Errorf("%w: 3 of 3 messages", store.ErrOverQuota)), "over quota: 3 of 3 messages"},
		{fmt.Errorf("append: %w", fmt.Errorf("commit: %w", fmt.Errorf("%w: %w", store.ErrStorageFull, disk))), "storage full: database or disk is full"},
		{fmt.Errorf("append: %w", errors.Join(disk, fmt.Errorf("%w: id 7", store.ErrNoMailbox))), "no such mailbox: id 7"},
		{store.ErrOverQuota, "over quota"},
		{fmt.Errorf("append: %w", disk), "append: database or disk is full"},
	}
	for _, tt := range tests {
		got := storeReason(tt.err)
		if got.Error() != tt.want {
			t.Errorf("storeReason(%q) = %q, want %q", tt.err, got, tt.want)
		}
		if !errors.Is(got, store.ErrOverQuota) && !errors.Is(got, store.ErrStorageFull) && !errors.Is(got, store.ErrNoMailbox) && got != tt.err {
			t.Errorf("storeReason(%q) = %q, neither the store's error nor the whole", tt.err, got)
		}
	}
}
