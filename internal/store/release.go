package store

import "context"

// A ReleaseAnswer is what a process says when asked to let go of a lock.
type ReleaseAnswer uint8

const (
	// NotHeld: the process does not hold the lock, or holds it for work
	// that ends by itself (the expiry sweep); it says nothing.
	NotHeld ReleaseAnswer = iota
	// Keeping: the holder is in use and keeps the lock.
	Keeping
	// Releasing: the holder is ending and lets go of the lock shortly.
	Releasing
)

// ReleaseAsker is implemented by stores that several processes or nodes
// share (store/postgres), so that a process refused a Lock can ask the
// process holding it to let go. POP3 uses it to end a stale session on
// another node, as it ends one of its own (a phone that lost its signal
// reconnects through a load balancer to another node). Find it by type
// assertion on a Store; a store that one process serves does without.
type ReleaseAsker interface {
	// AskRelease asks every other process on the store for the lock
	// called name of an account, and returns the first answer other than
	// NotHeld, or NotHeld when none comes within a second (the holder is
	// not a process that answers, or the request was lost). Releasing
	// means the lock is being let go: the caller tries Lock again,
	// for a while, as the holder may still be finishing.
	AskRelease(ctx context.Context, accountID int64, name string) (ReleaseAnswer, error)

	// OnAskRelease has answer called, in a goroutine of its own, for each
	// request another process makes, and its result sent back. A process
	// with several handlers answers with the first result other than
	// NotHeld. The returned function stops the calls.
	OnAskRelease(answer func(accountID int64, name string) ReleaseAnswer) (stop func())
}
