package managesieve

import (
	"context"
	"errors"
	"fmt"

	"github.com/buzon-mail/buzon/internal/store"
)

// Response codes (RFC 5804 1.3).
const (
	codeEncryptNeeded = "ENCRYPT-NEEDED"
	codeMaxScripts    = "QUOTA/MAXSCRIPTS"
	codeMaxSize       = "QUOTA/MAXSIZE"
	codeNonexistent   = "NONEXISTENT"
	codeActive        = "ACTIVE"
	codeAlreadyExists = "ALREADYEXISTS"
	codeTryLater      = "TRYLATER"
)

// userError is a refusal caused by the client; the command loop answers
// `NO (code) "text"` and the session goes on.
type userError struct {
	code string // RFC 5804 1.3 response code, or ""
	text string
}

// badError is a malformed command or one the server does not know; the
// command loop answers NO and counts it against Config.Sieve.MaxErrors.
type badError struct {
	text string
}

// serverError is a failure on our side (usually the store); the command
// loop logs err and answers `NO (code) "text"`.
type serverError struct {
	code string
	text string
	err  error
}

// byeError ends the session with `BYE (code) "text"`.
type byeError struct {
	code string
	text string
	err  error // logged, when not nil
}

// abortError ends the session without a further reply: the connection
// broke, the client went silent, or the server is shutting down (the
// BYE, if any, has been written).
type abortError struct {
	err error
}

// xuser refuses the command with a response code (or "") and a message.
func xuser(code, format string, args ...any) {
	panic(userError{code: code, text: fmt.Sprintf(format, args...)})
}

// xbad refuses a malformed or unknown command.
func xbad(format string, args ...any) {
	panic(badError{text: fmt.Sprintf(format, args...)})
}

// xabort ends the session.
func xabort(err error) {
	panic(abortError{err})
}

// xcheck turns a store error into a refusal: the script-level ones into
// their RFC 5804 response codes, a temporary failure into TRYLATER, a
// deleted account into BYE, anything else into "internal server error".
func xcheck(err error, what string) {
	switch {
	case err == nil:
		return
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		panic(abortError{fmt.Errorf("%s: %w", what, err)})
	case errors.Is(err, store.ErrNoSieveScript):
		xuser(codeNonexistent, "there is no script of that name")
	case errors.Is(err, store.ErrSieveScriptExists):
		xuser(codeAlreadyExists, "a script of that name exists already")
	case errors.Is(err, store.ErrSieveScriptActive):
		// RFC 5804 2.10: the active script cannot be deleted.
		xuser(codeActive, "the script is active; make another one active, or none, first")
	case errors.Is(err, store.ErrInvalidName):
		xuser("", "invalid script name: names are UTF-8 of 1 to 128 characters without control characters")
	case errors.Is(err, store.ErrNoAccount):
		panic(byeError{text: "your account has been deleted", err: fmt.Errorf("%s: %w", what, err)})
	case store.IsTemporary(err):
		panic(serverError{code: codeTryLater, text: "temporary server failure, try again later", err: fmt.Errorf("%s: %w", what, err)})
	}
	panic(serverError{text: "internal server error", err: fmt.Errorf("%s: %w", what, err)})
}
