package store

import (
	"errors"
	"fmt"
	"testing"
)

// TestReason: what a store says of an error a person can act on is kept,
// its context with the store's ids dropped, in the shapes the backends
// give it.
func TestReason(t *testing.T) {
	disk := errors.New("database or disk is full")
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("append to mailbox 4294967297: %w", fmt.Errorf("%w: 3 of 3 messages", ErrOverQuota)), "over quota: 3 of 3 messages"},
		{fmt.Errorf("append: %w", fmt.Errorf("commit: %w", fmt.Errorf("%w: %w", ErrStorageFull, disk))), "storage full: database or disk is full"},
		{fmt.Errorf("append: %w", errors.Join(disk, fmt.Errorf("%w: id 7", ErrNoMailbox))), "no such mailbox: id 7"},
		{ErrOverQuota, "over quota"},
		{fmt.Errorf("append: %w", disk), "append: database or disk is full"},
	}
	for _, tt := range tests {
		got := Reason(tt.err)
		if got.Error() != tt.want {
			t.Errorf("Reason(%q) = %q, want %q", tt.err, got, tt.want)
		}
		if !errors.Is(got, ErrOverQuota) && !errors.Is(got, ErrStorageFull) && !errors.Is(got, ErrNoMailbox) && got != tt.err {
			t.Errorf("Reason(%q) = %q, neither the store's error nor the whole", tt.err, got)
		}
	}
}
