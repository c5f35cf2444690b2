package store

import "context"

// BodyBatcher is implemented by Sessions that open several messages'
// bodies in one call for less than as many OpenBody calls cost: in
// store/postgres each OpenBody is a query, a round trip to the database.
// POP3 reads ahead with it when a client downloads message after message.
// Find it by type assertion on a Session; the embedded store does without,
// its OpenBody being an open file.
type BodyBatcher interface {
	// OpenBodies opens the bodies of the messages of uids in a mailbox
	// and returns them in the order of uids: bodies[i] is uids[i]'s, and
	// reads as OpenBody's would.
	//
	// Each body returned is read whole at once, so it stays readable if
	// the message is expunged before it is read. To bound the memory this
	// takes, going through uids in order, it stops opening bodies once
	// their sizes would add up to more than maxBytes, and it leaves out
	// any body too large to read at once (store/postgres: over 1 MiB).
	//
	// An entry is nil when its body was left out, or when the message
	// does not exist: never did, was expunged, or the mailbox is not the
	// account's. The caller opens those with OpenBody, which reports
	// ErrNoMessage for a message that is gone. The caller closes every
	// body returned. An error means the store failed; then no body is
	// returned.
	OpenBodies(ctx context.Context, mailboxID int64, uids []UID, maxBytes int64) ([]Body, error)
}
