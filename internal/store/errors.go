package store

import (
	"errors"
	"syscall"
)

// Errors returned by stores. Backends wrap them with context; test with
// errors.Is.
var (
	ErrAccountExists = errors.New("account already exists")
	ErrNoAccount     = errors.New("no such account")
	ErrNoMailbox     = errors.New("no such mailbox")
	ErrMailboxExists = errors.New("mailbox already exists")
	ErrInvalidName   = errors.New("invalid name")
	ErrInvalidFlag   = errors.New("invalid flag")
	ErrNoMessage     = errors.New("no such message")
	ErrOverQuota     = errors.New("over quota")
	ErrLocked        = errors.New("locked by another session")
	ErrLimit         = errors.New("limit reached")

	// ErrStorageFull means the disk or database is full. It is temporary:
	// the operation changed nothing and may succeed later.
	ErrStorageFull = errors.New("storage full")
	// ErrUnavailable means the backend cannot be reached (a database
	// connection lost). It is temporary: the operation changed nothing.
	ErrUnavailable = errors.New("storage unavailable")
)

// IsTemporary reports whether err is a failure that may go away by itself,
// so that a protocol answers "try again later" (LMTP 451/452, IMAP NO
// [UNAVAILABLE], POP3 -ERR [SYS/TEMP]) rather than a permanent refusal.
func IsTemporary(err error) bool {
	return errors.Is(err, ErrStorageFull) || errors.Is(err, ErrUnavailable) ||
		errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
