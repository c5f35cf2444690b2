package pop3server

import (
	"context"
	"errors"
	"fmt"

	"github.com/buzon-mail/buzon/internal/store"
)

// Response codes (RFC 2449 8, RFC 3206 4).
const (
	codeInUse   = "IN-USE"
	codeAuth    = "AUTH"
	codeSysTemp = "SYS/TEMP"
	codeSysPerm = "SYS/PERM"
)

// userError is a refusal caused by the client; the command loop answers
// "-ERR [code] text" and the session goes on.
type userError struct {
	code string // RFC 2449 response code, or ""
	text string
}

// serverError is a failure on our side (usually the store); the command
// loop logs err and answers "-ERR [code] text".
type serverError struct {
	code string
	text string
	err  error
}

// accountGone ends a session whose account was deleted while it ran: the
// command loop answers "-ERR [SYS/PERM]" and closes, and the session
// applies none of its deletions and records none of its retrievals.
type accountGone struct {
	err error
}

// abortError ends the session without a further reply: the connection
// broke, the client went silent, or the server is shutting down (the
// goodbye, if any, has been written).
type abortError struct {
	err error
}

// xuser refuses the command with a response code (or "") and a message.
func xuser(code, format string, args ...any) {
	panic(userError{code: code, text: fmt.Sprintf(format, args...)})
}

// xcheck turns a store error into a refusal: "try again later" for a
// temporary one (RFC 3206 4 SYS/TEMP), "internal error" otherwise. An
// account found deleted ends the session (accountGone).
func xcheck(err error, what string) {
	if err == nil {
		return
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		panic(abortError{fmt.Errorf("%s: %w", what, err)})
	}
	if errors.Is(err, store.ErrNoAccount) {
		panic(accountGone{fmt.Errorf("%s: %w", what, err)})
	}
	if store.IsTemporary(err) {
		panic(serverError{code: codeSysTemp, text: "temporary server failure, try again later", err: fmt.Errorf("%s: %w", what, err)})
	}
	panic(serverError{code: codeSysPerm, text: "internal server error", err: fmt.Errorf("%s: %w", what, err)})
}

// xabort ends the session.
func xabort(err error) {
	panic(abortError{err})
}
