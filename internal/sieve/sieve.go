// Package sieve runs the mail filters people write in Sieve (RFC 5228):
// at delivery, an account's active script decides whether a message is
// kept in INBOX, filed into other mailboxes, flagged or discarded.
//
// The package knows nothing of the store or of protocols. Compile checks
// a script once (when it is uploaded, and again when delivery first meets
// it); Execute runs a compiled script against one message and returns
// what to do with it, which the caller carries out.
//
// The language is RFC 5228's, with these extensions (Extensions lists
// them for ManageSieve): fileinto and envelope (RFC 5228), imap4flags
// (RFC 5232), mailbox (RFC 5490: fileinto :create, mailboxexists), copy
// (RFC 3894), subaddress (RFC 5233, separator "+"), body (RFC 5173),
// variables (RFC 5229), relational (RFC 5231), comparator-i;ascii-numeric
// (RFC 4790), encoded-character (RFC 5228 2.4.2.4), regex
// (draft-ietf-sieve-regex, in Go's RE2 syntax), date and index (RFC 5260);
// and, where the server can send mail (Options.Vacation: a relay is
// configured), vacation (RFC 5230) and vacation-seconds (RFC 6131),
// whose replies the caller sends, and redirect (RFC 5228 4.2, with :copy),
// which the caller forwards (Options.Redirect). reject, ereject and
// notify are refused at compile time with an error that says why.
//
// Header values are compared decoded (RFC 2047, by internal/message);
// addresses are read by internal/message's address parser; the body test
// reads the MIME parts internal/message finds.
//
// Sieve has no loops, so a run's work is bounded by the script's size
// times the message's; limits bound it further: MaxScriptSize, 32 levels
// of nesting and the size of :regex programs at compile time, and at run
// time MaxActions, 256 variables of at most 4 KiB each, strings of at
// most 64 KiB after expansion, 1 MiB of message read by the body test and
// a budget of work (bytes compared, read and split, regex steps). A run
// past a limit fails, and the caller keeps the message.
package sieve

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Script is a compiled Sieve script. It is immutable and safe for
// concurrent use.
type Script struct {
	cmds []*command
	req  map[string]bool // the extensions the script requires
}

// CompileError is what is wrong with a script, at a line of it (counted
// from 1), as ManageSieve's PUTSCRIPT and CHECKSCRIPT report it.
type CompileError struct {
	Line int
	Msg  string
}

func (e *CompileError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// Compile parses and checks a script: its syntax, that it requires every
// extension it uses and only ones this package supports (Extensions), and
// the arguments of each command and test. Its errors are *CompileError.
//
// Scripts larger than MaxScriptSize, or nesting blocks and tests deeper
// than 32 levels, are refused. So are the commands and extensions that
// would send mail (redirect, vacation, reject, ereject, notify), with an
// error that says why; CompileWith allows vacation.
func Compile(src []byte) (*Script, error) { return CompileWith(src, Options{}) }

// Options are what the server can do beyond storing mail, which decides
// what scripts may require.
type Options struct {
	// Relay says the server has a relay to send mail through, without
	// which Vacation and Redirect are off: a script that needs one or
	// the other is refused for the missing relay rather than for the
	// setting that turned it off.
	Relay bool
	// Vacation allows the vacation and vacation-seconds extensions
	// (RFC 5230, RFC 6131): the server sends replies.
	Vacation bool
	// Redirect allows the redirect command (RFC 5228 4.2), and :copy on
	// it (RFC 3894): the server forwards mail.
	Redirect bool
}

// CompileWith is Compile for a server that can do what opts says.
func CompileWith(src []byte, opts Options) (*Script, error) {
	if len(src) > MaxScriptSize {
		return nil, &CompileError{Line: 1, Msg: fmt.Sprintf("the script is larger than %d bytes", MaxScriptSize)}
	}
	nodes, err := parse(src)
	if err != nil {
		return nil, err
	}
	cmds, req, err := check(nodes, opts)
	if err != nil {
		return nil, err
	}
	return &Script{cmds: cmds, req: req}, nil
}

// Extensions returns the extensions scripts may require, as `require`
// names them, for ManageSieve's SIEVE capability (RFC 5804 1.7), on a
// server that cannot send mail; ExtensionsWith for one that may.
func Extensions() []string { return ExtensionsWith(Options{}) }

// ExtensionsWith returns the extensions scripts compiled with opts may
// require, in order: a server lists only what it does (RFC 5804 1.7).
func ExtensionsWith(opts Options) []string {
	ext := []string{
		"body", "comparator-i;ascii-numeric", "copy", "date", "encoded-character",
		"envelope", "fileinto", "imap4flags", "index", "mailbox", "regex",
		"relational", "subaddress",
	}
	if opts.Vacation {
		ext = append(ext, "vacation", "vacation-seconds")
	}
	return append(ext, "variables")
}

// Message is the message a script looks at.
type Message struct {
	// Header is the message's header section as stored: lines ending in
	// CRLF, up to and including the empty line, or the whole message when
	// it has no body.
	Header []byte
	// Size is the message's size in octets (RFC 5228 5.9).
	Size int64
	// Body opens the whole message, for the body test (RFC 5173). Nil
	// makes every body test false.
	Body func() (io.ReadCloser, error)
}

// Envelope is the SMTP envelope of the delivery (RFC 5228 5.4).
type Envelope struct {
	// From is MAIL FROM's reverse path, "" for the null sender <>.
	From string
	// To is the recipient address as the RCPT command or `buzon deliver`
	// gave it, which may carry a +detail (RFC 5233).
	To string
}

// Environment answers what a script asks about the account it runs for.
type Environment interface {
	// MailboxExists tells whether the account has a mailbox of that
	// name (UTF-8, INBOX case-insensitively), for fileinto and
	// mailboxexists (RFC 5490).
	MailboxExists(ctx context.Context, name string) (bool, error)
}

// ActionKind is what an Action does.
type ActionKind int

const (
	// Keep stores the message in INBOX (RFC 5228 4.3), explicitly or by
	// the implicit keep (RFC 5228 2.10.2).
	Keep ActionKind = iota
	// FileInto stores the message in the mailbox named (RFC 5228 4.1).
	FileInto
	// Discard stores nothing (RFC 5228 4.4): Execute returns it when
	// nothing is to be stored, so that callers can log that a script
	// discarded the message.
	Discard
	// Vacation asks for an automatic reply (RFC 5230): the Action's
	// Vacation says what. It stores nothing and leaves the implicit keep
	// as it was; whether the reply is due (RFC 5230 4.5, 4.6: the
	// recipient's own address among the message's, no list or automatic
	// sender, none sent to this sender within the period) is the
	// caller's to decide, since it knows the account's addresses and
	// keeps the record of replies sent.
	Vacation
	// Redirect forwards the message to Address (RFC 5228 4.2). Without
	// Copy it cancels the implicit keep; a caller that cannot forward
	// it keeps the message instead (RFC 5228 2.10.6). At most
	// MaxRedirects a run.
	Redirect
)

// MaxRedirects is the most redirects a run may take, ManageSieve's
// MAXREDIRECTS (RFC 5804 1.7); a run past it fails, and the message is
// kept.
const MaxRedirects = 4

// VacationReply is what a vacation command asked for (RFC 5230 4), its
// strings expanded.
type VacationReply struct {
	// Period is how long after a reply to a sender no other goes to the
	// same sender for the same Handle: :days (at least one day) or
	// :seconds (RFC 6131), which the caller bounds. -1 when the script
	// gave neither, for the caller's default.
	Period time.Duration
	// Subject is :subject, "" when not given (RFC 5230 4.3 has the
	// caller make one from the message's).
	Subject string
	// From is :from, "" when not given: the reply's From field, which
	// the caller must check is the account's (RFC 5230 4.4).
	From string
	// Addresses are :addresses, more addresses of the recipient's
	// (RFC 5230 4.5).
	Addresses []string
	// MIME says Reason is a MIME entity, header fields included
	// (RFC 5230 4.8), rather than plain text.
	MIME bool
	// Handle is :handle, or else one made of the other arguments, so that
	// two vacation commands of a script with different texts are
	// tracked apart (RFC 5230 4.2).
	Handle string
	// Reason is the reply's text, or with MIME its MIME part.
	Reason string
}

// Action is one thing to do with the message. Several may name one
// mailbox (see Execute).
type Action struct {
	Kind ActionKind
	// Mailbox is where FileInto stores the message, in UTF-8.
	Mailbox string
	// Create asks for the mailbox to be created when it does not exist
	// (RFC 5490 3.2, fileinto :create). Without it, a message filed into a
	// mailbox that does not exist is kept in INBOX instead.
	Create bool
	// Flags are the flags the stored copy gets (RFC 5232), e.g. `\Seen`
	// or `$Junk`: as the script wrote them, each once (compared without
	// case), and not checked: the caller keeps those that are IMAP flags
	// (RFC 5232 3 has others ignored).
	Flags []string
	// Vacation is the reply a Vacation action asks for.
	Vacation *VacationReply
	// Address is where a Redirect forwards the message, an addr-spec
	// (local@domain) without angle brackets.
	Address string
	// Copy is a Redirect's :copy (RFC 3894): the implicit keep stays.
	Copy bool
}
