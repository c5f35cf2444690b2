package store

import (
	"context"
	"io"
)

// Importer is implemented by stores that can take in mail with its
// identity kept: UIDVALIDITY, UIDs, MODSEQs, flags, internal dates, save
// dates and POP3 retrieval times, and so the POP3 UIDLs derived from them.
// `buzon migrate-store` uses it, through package store/migrate, to move an
// embedded store into PostgreSQL. Find it by type assertion.
//
// An import is resumable: every method may be called again with the same
// arguments after an interruption and then does only what is missing. An
// account being imported is invisible (LookupAccount, Accounts and Open do
// not find it) until FinishImport, so no client sees it half-copied or
// writes to it with MODSEQs below the imported ones.
type Importer interface {
	Store

	// ImportAccount begins importing an account with a.Name, a.Credentials,
	// a.Quota and a.Created (a.ID is ignored); it has no mailboxes until
	// ImportMailbox creates them. If an import of that name was begun and
	// not finished, it returns that account so the import resumes; if one
	// was finished, it returns finished true and the import should skip
	// the account. If a normal account has the name, it returns
	// ErrAccountExists.
	ImportAccount(ctx context.Context, a Account) (accountID int64, finished bool, err error)

	// ImportMailbox creates a mailbox of an account being imported, or
	// finds it when resuming (same name and UIDVALIDITY; a different
	// UIDVALIDITY is ErrMailboxExists).
	ImportMailbox(ctx context.Context, accountID int64, m ImportMailbox) (mailboxID int64, err error)

	// ImportMessage stores a message with m.UID, m.ModSeq, m.Flags,
	// m.InternalDate, m.Size, m.Structure, m.Retrieved and m.SaveDate
	// (zero: none, as the source had none). Exactly m.Size
	// bytes are read from body. If the mailbox already holds m.UID (an
	// interrupted import), it does nothing and reads nothing. m.UID must
	// be below the mailbox's UIDNEXT.
	ImportMessage(ctx context.Context, accountID, mailboxID int64, m *MessageInfo, body io.Reader) error

	// ImportSieveScripts gives an account being imported the Sieve
	// scripts given, with their names, contents, modification times and
	// which one is active, in place of any an interrupted import gave it.
	// At most one of them may be active.
	ImportSieveScripts(ctx context.Context, accountID int64, scripts []SieveScript) error

	// FinishImport completes an account's import: the account's MODSEQ
	// counter becomes at least modSeq (and above every imported MODSEQ),
	// quota usage is counted, the subscriptions are added, and the
	// account becomes visible. Changes of every mailbox are notified.
	FinishImport(ctx context.Context, accountID int64, modSeq ModSeq, subscriptions []string) error

	// ImportSecret keeps value as the secret called name (see
	// SecretKeeper), unless the store already has a secret of that name:
	// then that one stays, since servers running on the store may use it
	// already.
	ImportSecret(ctx context.Context, name string, value []byte) error
}

// ImportMailbox describes a mailbox to import.
type ImportMailbox struct {
	Name        string
	SpecialUse  string
	UIDValidity uint32
	// UIDNext is the mailbox's next UID, which may be above every UID
	// imported: UIDs of expunged messages are never reused.
	UIDNext UID
	// HighestModSeq is the mailbox's highest MODSEQ.
	HighestModSeq ModSeq
	// Expunged are UIDs of expunged messages the source still reports
	// (RFC 7162 QRESYNC). Their MODSEQs are not known through Store, so
	// they are kept with HighestModSeq: a client resynchronizing from any
	// earlier MODSEQ hears of them, which RFC 7162 3.2.5.1 allows.
	Expunged []UID
	// ForgottenTo is the MODSEQ at or below which the source forgot the
	// mailbox's expunges (ChangeSet.ForgottenTo): clients resynchronizing
	// from below it learn what went by comparison, as they would have
	// from the source.
	ForgottenTo ModSeq
}
