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
	ErrAliasExists   = errors.New("alias already exists")
	ErrNoAlias       = errors.New("no such alias")
	ErrNoMailbox     = errors.New("no such mailbox")
	ErrMailboxExists = errors.New("mailbox already exists")
	ErrInvalidName   = errors.New("invalid name")
	ErrInvalidFlag   = errors.New("invalid flag")
	ErrNoMessage     = errors.New("no such message")
	ErrOverQuota     = errors.New("over quota")
	ErrLocked        = errors.New("locked by another session")
	ErrLimit         = errors.New("limit reached")

	// Sieve scripts (Session.SieveScript and the rest).
	ErrNoSieveScript     = errors.New("no such sieve script")
	ErrSieveScriptExists = errors.New("sieve script already exists")
	ErrSieveScriptActive = errors.New("sieve script is active")

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

// Reason is, for an error of a store that wraps one of its errors a
// person can act on (over quota, storage full, no such mailbox), the
// error that wraps that one itself: backends give it its detail so
// (fmt.Errorf("%w: message of 9000 bytes, limit 8000", ErrOverQuota))
// and put their own context around that ("append to mailbox 4294967297:
// ..."), whose ids mean nothing to the reader, who knows the account and
// mailbox by name. Other errors come back as they are.
func Reason(err error) error {
	for _, sentinel := range []error{ErrOverQuota, ErrStorageFull, ErrNoMailbox} {
		if w := wrapperOf(err, sentinel); w != nil {
			return w
		}
	}
	return err
}

// wrapperOf returns the error in err's tree, through errors wrapping one
// error or several, that wraps target itself, or nil if none does.
func wrapperOf(err, target error) error {
	var inner []error
	switch e := err.(type) {
	case interface{ Unwrap() error }:
		inner = []error{e.Unwrap()}
	case interface{ Unwrap() []error }:
		inner = e.Unwrap()
	}
	for _, e := range inner {
		if e == target {
			return err
		}
	}
	for _, e := range inner {
		if w := wrapperOf(e, target); w != nil {
			return w
		}
	}
	return nil
}
