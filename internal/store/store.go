// Package store defines buzon's mail storage domain: accounts, mailboxes,
// messages, flags, quotas and the change feed, as interfaces that every
// storage backend implements (the embedded default in store/sqlite, the
// scale-out one in store/postgres). It holds no driver code.
//
// The model follows IMAP (RFC 9051) because IMAP is the richest client of the
// store: per mailbox, UIDVALIDITY never changes while the mailbox exists, UIDs
// strictly ascend and are never reused, and every change to a message gets a
// MODSEQ (RFC 7162) higher than any before it in the account. POP3 is a view
// of INBOX.
//
// Invariants every backend keeps (and store/storetest checks):
//   - A call that returns nil has made its change durable: message bodies and
//     metadata are synced before it returns.
//   - Every query is scoped by account: a Session can neither name nor reach
//     another account's data. Mailbox names are data, never file paths.
//   - No backend lock or transaction is held while a callback passed to it
//     runs, so callers may write to the network from a callback.
package store

import (
	"context"
	"io"
	"time"
)

// Store is a mail store: the account directory plus access to each account's
// mail. Implementations are safe for concurrent use by many goroutines and,
// for backends that support it, by many processes or nodes.
type Store interface {
	// CreateAccount creates an account with its standard mailboxes (INBOX and
	// the special-use set of StandardMailboxes), subscribed, since clients
	// that show only subscribed mailboxes expect them. The name is a login
	// address; it is stored in canonical form (see CanonicalAccountName).
	// It returns ErrAccountExists if an account has the name and
	// ErrAliasExists if an alias has it.
	CreateAccount(ctx context.Context, name string, cred Credentials) (Account, error)

	// DeleteAccount removes an account, its aliases and all its mail.
	DeleteAccount(ctx context.Context, name string) error

	// LookupAccount finds an account by login name, case-insensitively.
	// It returns ErrNoAccount if there is none. Aliases are not login
	// names: it does not find an account by one (see LookupAddress).
	LookupAccount(ctx context.Context, name string) (Account, error)

	// Accounts lists all accounts ordered by name.
	Accounts(ctx context.Context) ([]Account, error)

	// AddAlias makes alias another address of the account named account:
	// mail to it is delivered to that account (LookupAddress). Both names
	// are taken in canonical form (CanonicalAccountName), and alias must
	// be a valid account name. An alias names exactly one account, and
	// an account, never another alias: ErrNoAccount when account names
	// no account (an alias included). It returns ErrAccountExists when an
	// account has the alias's name and ErrAliasExists when an alias has
	// it, whichever account it names. Mail for several accounts at one
	// address is a list, which is the MTA's to expand.
	AddAlias(ctx context.Context, alias, account string) error

	// DeleteAlias removes an alias. It returns ErrNoAlias if there is
	// none of that name.
	DeleteAlias(ctx context.Context, alias string) error

	// Aliases lists all aliases ordered by name.
	Aliases(ctx context.Context) ([]Alias, error)

	// LookupAddress finds the account that receives mail for an address,
	// case-insensitively: the account of that name, or the one an alias
	// of that name names. It returns ErrNoAccount if there is neither.
	LookupAddress(ctx context.Context, name string) (Account, error)

	// SetCredentials replaces an account's password credentials.
	SetCredentials(ctx context.Context, name string, cred Credentials) error

	// SetQuota replaces an account's quota. Existing mail above the new
	// limits stays; further appends are refused.
	SetQuota(ctx context.Context, name string, q Quota) error

	// Open starts access to one account's mail. Several Sessions for one
	// account may be open at once (in this process and others); each must be
	// closed.
	Open(ctx context.Context, accountID int64) (Session, error)

	// Watch subscribes to changes in one account's mail, wherever they are
	// made: this process, another process on the same store, or another node.
	Watch(accountID int64) Watcher

	// Lock takes an exclusive, named, per-account lock that holds across
	// processes and nodes (POP3 uses the name "pop3" for RFC 1939's
	// maildrop lock). It returns ErrLocked at once if another holder has it.
	// The returned function releases the lock; a crashed holder's lock is
	// released by the backend.
	Lock(ctx context.Context, accountID int64, name string) (release func(), err error)

	// Close releases the store's resources. Open Sessions must be closed first.
	Close() error
}

// Session is access to one account's mail. A Session is safe for use by one
// goroutine at a time; open one per protocol connection.
type Session interface {
	// AccountID identifies the account this Session reads and writes.
	AccountID() int64

	// Mailboxes lists the account's mailboxes ordered by name.
	Mailboxes(ctx context.Context) ([]Mailbox, error)

	// Mailbox finds a mailbox by name. "INBOX" matches case-insensitively.
	// It returns ErrNoMailbox if there is none.
	Mailbox(ctx context.Context, name string) (Mailbox, error)

	// CreateMailbox creates a mailbox. specialUse is "" or one of the
	// SpecialUse constants. The name is validated with ValidMailboxName.
	// Parents are not created implicitly: callers create them first if they
	// want them to exist (IMAP CREATE does, RFC 9051 6.3.4).
	// It returns ErrMailboxExists, ErrInvalidName or ErrLimit.
	CreateMailbox(ctx context.Context, name string, specialUse string) (Mailbox, error)

	// DeleteMailbox deletes a mailbox and the messages in it. INBOX cannot be
	// deleted (ErrInvalidName). Children are not deleted.
	DeleteMailbox(ctx context.Context, name string) error

	// RenameMailbox renames a mailbox and every mailbox below it in the
	// hierarchy, keeping their IDs, UIDVALIDITY, UIDs and messages, so a
	// session elsewhere that holds one goes on with it. The
	// subscriptions of the old names, and of names below them, move to
	// the new names in the same transaction (those whose new name would
	// be too long stay), as a user who renames a folder expects clients
	// that show only subscribed folders to keep showing it.
	// Renaming INBOX is special (RFC 9051 6.3.6): its messages move to a new
	// mailbox with the new name (new UIDs there) and INBOX stays, empty,
	// with its subscriptions.
	RenameMailbox(ctx context.Context, from, to string) error

	// Subscriptions lists subscribed names, which may name mailboxes that do
	// not exist (RFC 9051 6.3.7).
	Subscriptions(ctx context.Context) ([]string, error)

	// SetSubscribed adds or removes a subscription.
	SetSubscribed(ctx context.Context, name string, subscribed bool) error

	// Status reports a mailbox's counters.
	Status(ctx context.Context, mailboxID int64) (MailboxStatus, error)

	// QuotaUsage reports the account's quota and current use.
	QuotaUsage(ctx context.Context) (QuotaUsage, error)

	// Append stores a message at the end of a mailbox. The quota is checked
	// atomically with the insert (ErrOverQuota). When Append returns nil the
	// message is durable. Its save date is the time of the append.
	Append(ctx context.Context, mailboxID int64, msg *NewMessage) (AppendResult, error)

	// Messages calls fn for each message in the mailbox whose UID is in uids
	// (AllUIDs for every message), in ascending UID order. Backends read
	// in pages and hold no transaction while fn runs. Returning an error
	// from fn stops the iteration and Messages returns that error.
	// The *MessageInfo is only valid during the call.
	Messages(ctx context.Context, mailboxID int64, uids UIDSet, fields Field, fn func(*MessageInfo) error) error

	// OpenBody opens a message's raw bytes (RFC 5322, CRLF line endings,
	// exactly Size bytes). It returns ErrNoMessage if the message is gone.
	OpenBody(ctx context.Context, mailboxID int64, uid UID) (Body, error)

	// StoreFlags changes the flags of the messages in uids (RFC 9051 6.4.6).
	// With unchangedSince > 0 (RFC 7162 3.1.3), messages whose MODSEQ is
	// above it are left alone and returned in Failed. Each message whose
	// flags actually change gets a new MODSEQ and is returned in Updated.
	StoreFlags(ctx context.Context, mailboxID int64, uids UIDSet, op FlagOp, flags Flags, unchangedSince ModSeq) (FlagsResult, error)

	// Expunge permanently removes the messages in uids. With onlyDeleted, only those flagged \Deleted go
	// (IMAP EXPUNGE, UID EXPUNGE); without it, all of them (POP3 UPDATE).
	Expunge(ctx context.Context, mailboxID int64, uids UIDSet, onlyDeleted bool) (ExpungeResult, error)

	// Copy copies messages to another mailbox of the same account, keeping
	// flags and internal dates (RFC 9051 6.4.7); the copies' save date is
	// the time of the copy (RFC 8514). It returns the source and new UIDs
	// pairwise (RFC 4315 COPYUID). The quota applies.
	Copy(ctx context.Context, fromMailboxID int64, uids UIDSet, toMailboxID int64) (CopyResult, error)

	// Move moves messages atomically (RFC 6851): copy, then expunge from
	// the source, in one transaction. As with Copy, the moved messages
	// keep their internal date and get a new save date.
	Move(ctx context.Context, fromMailboxID int64, uids UIDSet, toMailboxID int64) (CopyResult, error)

	// Changes reports what happened in a mailbox after sinceModSeq: new
	// messages, flag changes and expunges (RFC 7162 CONDSTORE/QRESYNC).
	// It is how sessions catch up after a Watcher fires.
	Changes(ctx context.Context, mailboxID int64, sinceModSeq ModSeq) (*ChangeSet, error)

	// Snapshot reads a mailbox in one transaction: the UIDs of all its
	// messages and the counters of that moment. A view built from it and
	// kept up to date with Changes(mailboxID, HighestModSeq) neither misses
	// a change nor keeps a message expunged before it was taken (IMAP
	// SELECT). The UIDs are the caller's to change. It returns
	// ErrNoMailbox if the mailbox does not exist.
	Snapshot(ctx context.Context, mailboxID int64) (*Snapshot, error)

	// HighestModSeq reports a mailbox's highest MODSEQ, expunges included:
	// while it stays the same, Changes has nothing new to report. The
	// answer reflects at least every change committed before notBefore.
	// A backend may give it without a read of its own, from an operation
	// of this Session that began at or after notBefore and saw the
	// mailbox (an IMAP server passes the time its command arrived, so the
	// reads the command made answer for it); otherwise it is one cheap
	// read. It returns ErrNoMailbox if the mailbox is gone.
	HighestModSeq(ctx context.Context, mailboxID int64, notBefore time.Time) (ModSeq, error)

	// MarkRetrieved records that POP3 retrieved the messages of uids, in
	// one write: it sets \Seen and, for a message retrieved the first
	// time, the retrieval time that pop3 expire_days counts from. Messages
	// of uids that no longer exist are skipped; if none exists, it returns
	// ErrNoMessage.
	MarkRetrieved(ctx context.Context, mailboxID int64, uids UIDSet, at time.Time) error

	// ExpireRetrieved expunges messages of a mailbox first retrieved by POP3
	// before the given time, returning their UIDs.
	ExpireRetrieved(ctx context.Context, mailboxID int64, before time.Time) ([]UID, error)

	// ExpireSaved expunges messages of a mailbox saved into it before the
	// given time (MessageInfo.SaveDate), returning their UIDs. A message
	// without a save date is never expunged by it: nobody knows how long
	// it has been there, and its internal date, which may be years old,
	// says nothing of when it was deleted. (The upgrade that brought save
	// dates gave one to the messages then in Trash and Junk.) It is
	// autoexpunge's (Trash and Junk that empty themselves), and costs one
	// indexed read when nothing is due.
	ExpireSaved(ctx context.Context, mailboxID int64, before time.Time) ([]UID, error)

	// SieveScripts lists the account's Sieve scripts ordered by name,
	// with Size and Active set and Content nil.
	SieveScripts(ctx context.Context) ([]SieveScript, error)

	// SieveScript reads one script, with its Content. It returns
	// ErrNoSieveScript if there is none of that name.
	SieveScript(ctx context.Context, name string) (SieveScript, error)

	// PutSieveScript creates a script or replaces the content of one; a
	// replaced active script stays active. The name is checked with
	// ValidSieveScriptName (ErrInvalidName). With maxScripts > 0, a new
	// name when the account has maxScripts scripts already is refused
	// with ErrLimit, counted in the write that stores it, so that two
	// sessions at once cannot both take the last place; replacing a
	// script is always allowed. The content is stored as given: checking
	// it, and its size, is the caller's job.
	PutSieveScript(ctx context.Context, name string, content []byte, maxScripts int) error

	// ActivateSieveScript makes the named script the account's one active
	// script, and no other (RFC 5804 2.8); "" leaves none active. It
	// returns ErrNoSieveScript if there is no script of that name.
	ActivateSieveScript(ctx context.Context, name string) error

	// RenameSieveScript renames a script, which stays active if it was
	// (RFC 5804 2.11.1). It returns ErrNoSieveScript,
	// ErrSieveScriptExists or ErrInvalidName.
	RenameSieveScript(ctx context.Context, from, to string) error

	// DeleteSieveScript deletes a script. The active script cannot be
	// deleted (RFC 5804 2.10): it returns ErrSieveScriptActive, and
	// ErrNoSieveScript if there is none of that name.
	DeleteSieveScript(ctx context.Context, name string) error

	// ActiveSieveScript reads the active script, with its Content. It
	// returns ErrNoSieveScript when no script is active.
	ActiveSieveScript(ctx context.Context) (SieveScript, error)

	// ActiveSieveScriptInfo says which script is active without reading
	// it: Name, Size, Active and Modified, Content nil (a delivery keys
	// its compiled scripts by these and reads the text only when it has
	// none). It returns ErrNoSieveScript when no script is active. The
	// answer reflects at least every change committed before notBefore.
	// A backend may give it from what Open read, when Open began at or
	// after notBefore (a delivery that opens a session passes the time it
	// began, before Open, and costs no read of its own); otherwise it is
	// one cheap read.
	ActiveSieveScriptInfo(ctx context.Context, notBefore time.Time) (SieveScript, error)

	// Close ends the Session.
	Close() error
}

// Watcher delivers change notifications for one account. Notifications
// coalesce: C has capacity one, so a slow reader loses nothing but the
// count of wake-ups; on each wake-up the reader catches up with
// Session.Changes.
type Watcher interface {
	// C fires after a change to any mailbox of the account was committed
	// (a delivery, a flag change, an expunge, a mailbox created, deleted
	// or renamed).
	C() <-chan struct{}
	// Close stops the notifications.
	Close()
}

// Body is a stored message's content.
type Body interface {
	io.ReaderAt
	io.Closer
	// Size is the exact length in bytes.
	Size() int64
}

// Account is an account record.
type Account struct {
	ID          int64
	Name        string // login address, canonical form
	Credentials Credentials
	Quota       Quota
	Created     time.Time
}

// Alias is another address of an account: mail to it is delivered to the
// account. It is not a login name.
type Alias struct {
	Name    string // the address, canonical form
	Account string // the name of the account it reaches
}

// Credentials are an account's password verifiers; the password itself is
// never stored. The auth package produces and checks them.
type Credentials struct {
	// PasswordHash verifies plaintext passwords (PLAIN, LOGIN, USER/PASS):
	// a PHC-style string such as "$argon2id$..." or a bcrypt hash.
	PasswordHash string
	// SCRAMSHA256 holds the SCRAM-SHA-256 verifiers (RFC 7677), encoded by
	// the auth package, or "" when unavailable.
	SCRAMSHA256 string
}

// Quota limits an account's mail. Zero means unlimited.
type Quota struct {
	MaxBytes    int64
	MaxMessages int64
}

// QuotaUsage is a quota with the account's current use (RFC 9208 STORAGE
// and MESSAGE resources).
type QuotaUsage struct {
	Quota
	Bytes    int64
	Messages int64
}

// Mailbox is a mailbox record.
type Mailbox struct {
	ID          int64
	Name        string // full hierarchical name, UTF-8, HierarchyDelimiter between levels
	UIDValidity uint32
	SpecialUse  string // "" or a SpecialUse constant
}

// MailboxStatus holds a mailbox's counters (RFC 9051 6.3.11 STATUS).
type MailboxStatus struct {
	Messages      uint32
	Unseen        uint32
	Deleted       uint32
	Size          int64 // sum of message sizes (RFC 8438 STATUS=SIZE)
	UIDNext       UID
	UIDValidity   uint32
	HighestModSeq ModSeq
	// Keywords lists keywords in use in the mailbox, for FLAGS responses.
	Keywords []string
}

// NewMessage is a message to append.
type NewMessage struct {
	// Body is the raw message: RFC 5322 with CRLF line endings. Exactly
	// Size bytes are read.
	Body io.Reader
	Size int64
	// Structure is the MIME structure parsed once at delivery, encoded by
	// package message. The store keeps it opaque.
	Structure []byte
	Flags     Flags
	// InternalDate defaults to the time of the append when zero.
	InternalDate time.Time
}

// AppendResult identifies an appended message (RFC 4315 APPENDUID).
type AppendResult struct {
	UIDValidity uint32
	UID         UID
	Written     // ModSeq is the message's
}

// Written places a write in its mailbox's history: the mailbox's highest
// MODSEQ just before the write and just after it (equal when the write
// changed nothing). Nothing but the write lies between the two, so a view
// of the mailbox that stood at Prior can take the write's own result as
// the change up to ModSeq, instead of reading it back with Changes.
type Written struct {
	Prior, ModSeq ModSeq
}

// FlagsResult is what StoreFlags did.
type FlagsResult struct {
	// Updated are the messages whose flags changed, ascending UID.
	Updated []FlagUpdate
	// Unchanged are the other messages named whose flags already were
	// as asked, with those flags and their MODSEQ, ascending UID: with
	// Updated, the flags of every message named that exists and is not
	// in Failed.
	Unchanged []FlagUpdate
	// Failed are the messages UNCHANGEDSINCE left alone, ascending.
	Failed []UID
	Written
}

// ExpungeResult is what Expunge did.
type ExpungeResult struct {
	// UIDs are the messages removed, ascending.
	UIDs []UID
	Written
}

// CopyResult pairs source and destination UIDs (RFC 4315 COPYUID).
type CopyResult struct {
	UIDValidity uint32 // of the destination mailbox
	Source      []UID
	Dest        []UID
}

// Field selects which MessageInfo fields Messages fills, so that listing
// 100,000 UIDs does not load 100,000 structures.
type Field uint8

// Fields of MessageInfo. UID is always filled.
const (
	FieldFlags     Field = 1 << iota // Flags and ModSeq
	FieldSize                        // Size
	FieldDate                        // InternalDate
	FieldStructure                   // Structure
	FieldRetrieved                   // Retrieved
	FieldSaveDate                    // SaveDate

	FieldAll = FieldFlags | FieldSize | FieldDate | FieldStructure | FieldRetrieved | FieldSaveDate
)

// MessageInfo is a message's metadata.
type MessageInfo struct {
	UID          UID
	ModSeq       ModSeq
	Flags        Flags
	InternalDate time.Time
	Size         int64
	// Structure is the encoded MIME structure given at Append.
	Structure []byte
	// Retrieved is when POP3 first retrieved the message, or zero.
	Retrieved time.Time
	// SaveDate is when the message was saved into its mailbox (RFC 8514):
	// by a delivery, an append, a copy or a move, each of which sets it
	// anew, while the internal date stays. It is zero for messages stored
	// before buzon kept save dates, except those then in Trash or Junk,
	// which the upgrade dated with its own time; it is given in UTC.
	SaveDate time.Time
}

// FlagUpdate is a message's flags after a change.
type FlagUpdate struct {
	UID    UID
	ModSeq ModSeq
	Flags  Flags
}

// ChangeSet is what changed in a mailbox after a MODSEQ.
type ChangeSet struct {
	// Added are messages appended (or copied or moved in), ascending UID,
	// with FieldFlags|FieldSize|FieldDate filled.
	Added []MessageInfo
	// Updated are messages present before whose flags changed.
	Updated []FlagUpdate
	// Expunged are UIDs removed after the MODSEQ, ascending, as far as
	// the store remembers (see Forgotten).
	Expunged []UID
	// Forgotten reports that some expunges after the MODSEQ asked about
	// are no longer remembered: a store keeps a bounded number of
	// tombstones per mailbox and forgets the oldest expunges, all of
	// those at or below ForgottenTo. Expunged then misses them, and
	// Present lists every message of the mailbox instead, so that the
	// caller finds them by comparing it with the UIDs it knows (RFC 7162
	// section 5: a server may keep the MODSEQs of recent expunges only,
	// and report every expunged UID of the set asked about for older
	// ones).
	Forgotten bool
	// ForgottenTo is the MODSEQ at or below which the mailbox's expunges
	// are forgotten, 0 when none are.
	ForgottenTo ModSeq
	// Present is every UID in the mailbox, ascending, when Forgotten;
	// nil otherwise.
	Present []UID
	// HighestModSeq is the mailbox's highest MODSEQ when the set was read.
	HighestModSeq ModSeq
	// UIDNext is the mailbox's next UID when the set was read.
	UIDNext UID
	// Gone reports that the mailbox was deleted; the caller should end
	// its selection.
	Gone bool
}

// Snapshot is a mailbox as one read transaction saw it.
type Snapshot struct {
	// UIDs lists every message, ascending.
	UIDs []UID
	// HighestModSeq is the mailbox's highest MODSEQ, expunges included.
	HighestModSeq ModSeq
	UIDNext       UID
	// FirstUnseen is the lowest UID without \Seen, or 0 (RFC 3501 UNSEEN).
	FirstUnseen UID
	// Keywords lists keywords in use in the mailbox, as in MailboxStatus.
	Keywords []string
}

// UID is a message's unique identifier within its mailbox (RFC 9051 2.3.1.1).
type UID uint32

// ModSeq is a modification sequence (RFC 7162). Zero means "none".
type ModSeq uint64

// FlagOp says how StoreFlags combines flags.
type FlagOp uint8

// Flag operations (RFC 9051 6.4.6 FLAGS, +FLAGS, -FLAGS).
const (
	FlagsReplace FlagOp = iota
	FlagsAdd
	FlagsRemove
)

// Special-use attributes (RFC 6154).
const (
	SpecialAll     = `\All`
	SpecialArchive = `\Archive`
	SpecialDrafts  = `\Drafts`
	SpecialFlagged = `\Flagged`
	SpecialJunk    = `\Junk`
	SpecialSent    = `\Sent`
	SpecialTrash   = `\Trash`
)

// StandardMailbox names a mailbox created with every account.
type StandardMailbox struct{ Name, SpecialUse string }

// StandardMailboxes returns the mailboxes created with every account after
// INBOX, in creation order.
func StandardMailboxes() []StandardMailbox {
	return []StandardMailbox{
		{"Drafts", SpecialDrafts},
		{"Sent", SpecialSent},
		{"Trash", SpecialTrash},
		{"Junk", SpecialJunk},
		{"Archive", SpecialArchive},
	}
}
