package fetch

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/buzon-mail/buzon/internal/store"
)

// Destination stores fetched messages.
//
// What each guarantees across a crash at any instant (with the journal's
// intent recorded before Deliver writes anything):
//   - Maildir: exactly once. The file name is chosen first and recorded;
//     the message appears in new/ only complete (tmp/, fsync, link,
//     fsync of new/), so Has finds it in new/ or, once a mail client has
//     read it, in cur/ under the same base name, and syncs that folder.
//   - mbox: exactly once. The offset, length and hash of the bytes to
//     append are recorded; Has compares them with the file, and syncs
//     it. A message cut short by a crash is truncated away by the next
//     append, but only if the file still ends with exactly that partial
//     message.
//   - store: exactly once. The mailbox's UIDVALIDITY and UIDNEXT before
//     the append and the message's hash are recorded; Has looks at the
//     messages from that UID on for one of that size and hash. The
//     store's Append is atomic and durable when it returns.
//   - mda: at least once. Nothing can ask an MDA whether it delivered; a
//     crash between the MDA's exit and the journal record delivers the
//     message again (with the same BUZON_FETCH_ID, for MDAs that can
//     recognise a repeat).
type Destination interface {
	// Deliver stores m durably. Before it writes anything it calls intent
	// with the Ref the message will have; if intent fails, Deliver writes
	// nothing and returns the error. prev, when not nil, is the Ref of an
	// earlier attempt that Has found incomplete, so that the destination
	// can clean up after it.
	Deliver(ctx context.Context, m *Message, prev *Ref, intent func(Ref) error) error
	// Has reports whether the message whose intent recorded ref is
	// stored, durably: the caller then deletes it on the server. What it
	// finds that a run stopped before syncing (a crash, a sync that
	// failed) it syncs first, and a sync that fails is its error.
	Has(ctx context.Context, ref Ref) (bool, error)
	// String describes the destination for logs.
	String() string
	// Close releases the destination.
	Close() error
}

// Errors of destinations that leave the message on the server and end
// the account's run: the following messages would fail the same way.
var (
	// ErrDestinationFull means the destination has no room: the store's
	// quota, or a full disk.
	ErrDestinationFull = errors.New("destination full")
	// ErrTryLater is a temporary failure: an MDA exited with 75, or the
	// store is unavailable.
	ErrTryLater = errors.New("destination failed temporarily")
)

// classifyDestErr wraps an error from a destination with
// ErrDestinationFull or ErrTryLater when it is one of those.
func classifyDestErr(err error) error {
	switch {
	case err == nil, errors.Is(err, ErrDestinationFull), errors.Is(err, ErrTryLater):
		return err
	case errors.Is(err, store.ErrOverQuota), errors.Is(err, store.ErrStorageFull),
		errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("%w: %w", ErrDestinationFull, err)
	case store.IsTemporary(err):
		return fmt.Errorf("%w: %w", ErrTryLater, err)
	}
	return err
}

// stopsRun reports whether a destination error should end the account's
// run rather than only skip the message.
func stopsRun(err error) bool {
	return errors.Is(err, ErrDestinationFull) || errors.Is(err, ErrTryLater) || errors.Is(err, errCannotRun) ||
		errors.Is(err, store.ErrNoMailbox)
}
