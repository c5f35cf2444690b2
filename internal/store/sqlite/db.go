package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/buzon-mail/buzon/internal/store"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// openDB opens a database with the settings every buzon database uses:
//   - WAL, so readers never wait for the writer;
//   - synchronous=FULL: in WAL mode NORMAL may lose the last commits on a
//     power cut, and a commit here acknowledges mail;
//   - BEGIN IMMEDIATE for write transactions (read-only ones stay
//     deferred), so a writer takes the lock before it reads and two
//     processes never deadlock upgrading; the loser waits busy_timeout;
//   - foreign keys on;
//   - each connection keeps its statements prepared (stmtcache.go).
func openDB(path string, conns int, busy time.Duration) (*sql.DB, error) {
	if err := makePrivate(path); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	dsn := fmt.Sprintf("%s?_txlock=immediate&_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)"+
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)", path, busy.Milliseconds())
	connector, err := newStmtCacheConnector(dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(min(conns, 2))
	db.SetConnMaxIdleTime(time.Minute)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, mapErr(err))
	}
	return db, nil
}

// makePrivate creates the database file at path, or takes an existing
// one, readable by its owner alone: accounts.db holds password hashes and
// SCRAM verifiers, mail.db the headers of mail, and SQLite, left to
// itself, creates them as the umask allows (0644 as a rule). SQLite gives
// the -wal and -shm files it makes the database file's mode; those of a
// database made before are set here too.
func makePrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Chmod(path+suffix, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// A schema is the migrations of one kind of database: schema[i] takes a
// database from version i (PRAGMA user_version) to version i+1, so a new
// database runs them all and len(schema) is the version this code writes.
// Never edit a released migration; append a new one.
type schema [][]string

// Schema of accounts.db. Account IDs are never reused (AUTOINCREMENT):
// they name folders, and a new account must never meet an old one's
// leftovers.
var accountsSchema = schema{{
	`CREATE TABLE account (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		name TEXT NOT NULL UNIQUE,
		password_hash TEXT NOT NULL,
		scram_sha256 TEXT NOT NULL,
		max_bytes INTEGER NOT NULL DEFAULT 0,
		max_messages INTEGER NOT NULL DEFAULT 0,
		created INTEGER NOT NULL -- unix microseconds
	)`,
	// Store-wide counters. "uidvalidity" is the highest UIDVALIDITY a
	// deleted account may have handed out: a new account starts above it,
	// so that deleting and re-creating an account within the same second
	// does not show clients an INBOX with a UIDVALIDITY they have cached.
	`CREATE TABLE counter (
		name TEXT PRIMARY KEY,
		value INTEGER NOT NULL
	) WITHOUT ROWID`,
}, {
	// 2: server secrets by name (store.SecretKeeper), made at first use.
	`CREATE TABLE secret (
		name TEXT PRIMARY KEY,
		value BLOB NOT NULL
	) WITHOUT ROWID`,
}, {
	// 3: aliases, other addresses of an account (store.Store.AddAlias).
	// No alias has an account's name, nor names an alias: the writes of
	// both tables check the other in their accounts.db transaction.
	`CREATE TABLE alias (
		name TEXT PRIMARY KEY,
		account INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE
	) WITHOUT ROWID`,
	`CREATE INDEX alias_account ON alias (account)`,
}}

// Schema of an account's mail.db.
//
// Mailbox IDs are the account ID in the high 32 bits and a per-account
// counter (meta.next_mailbox) in the low ones, so they are unique across
// the store without a shared counter, and an ID from one account names
// nothing in another's database. A renamed mailbox keeps its ID.
//
// Counters kept in step with the rows by every write, so that STATUS and
// quota checks never scan: mailbox.messages/unseen/deleted/size,
// meta.bytes/messages, keyword.count.
var mailSchema = schema{{
	`CREATE TABLE meta (
		id INTEGER PRIMARY KEY CHECK (id = 1),
		account INTEGER NOT NULL,
		modseq INTEGER NOT NULL,           -- highest MODSEQ handed out (RFC 7162)
		next_mailbox INTEGER NOT NULL,     -- low 32 bits of the next mailbox ID
		next_uidvalidity INTEGER NOT NULL, -- no mailbox gets a UIDVALIDITY below it
		bytes INTEGER NOT NULL,            -- quota use (RFC 9208 STORAGE), in bytes
		messages INTEGER NOT NULL          -- quota use (RFC 9208 MESSAGE)
	)`,
	`CREATE TABLE mailbox (
		id INTEGER PRIMARY KEY,
		name TEXT NOT NULL UNIQUE,
		special_use TEXT NOT NULL,
		uidvalidity INTEGER NOT NULL,
		uidnext INTEGER NOT NULL,
		modseq INTEGER NOT NULL, -- HIGHESTMODSEQ, expunges included
		messages INTEGER NOT NULL,
		unseen INTEGER NOT NULL,
		deleted INTEGER NOT NULL,
		size INTEGER NOT NULL
	)`,
	`CREATE TABLE message (
		id INTEGER PRIMARY KEY,
		mailbox INTEGER NOT NULL REFERENCES mailbox (id),
		uid INTEGER NOT NULL,
		modseq INTEGER NOT NULL,
		created_modseq INTEGER NOT NULL, -- MODSEQ of the append, copy or move that made it
		flags INTEGER NOT NULL,          -- store.SystemFlags
		keywords TEXT NOT NULL,          -- space-separated (keywords are atoms)
		date INTEGER NOT NULL,           -- internal date, unix microseconds
		date_zone INTEGER NOT NULL,      -- its zone, seconds east of UTC
		size INTEGER NOT NULL,
		file INTEGER NOT NULL,           -- body file ID
		retrieved INTEGER NOT NULL,      -- first POP3 retrieval, unix microseconds, or 0
		structure BLOB NOT NULL,
		UNIQUE (mailbox, uid)
	)`,
	`CREATE INDEX message_modseq ON message (mailbox, modseq)`,
	`CREATE INDEX message_retrieved ON message (mailbox, retrieved) WHERE retrieved != 0`,
	// Expunged UIDs, for Changes (RFC 7162 3.2.5 VANISHED). created_modseq,
	// the MODSEQ that made the message, was never needed: a message that
	// came and went after the caller's MODSEQ is reported too. Version 3
	// drops it.
	`CREATE TABLE tombstone (
		mailbox INTEGER NOT NULL,
		uid INTEGER NOT NULL,
		modseq INTEGER NOT NULL,
		created_modseq INTEGER NOT NULL,
		PRIMARY KEY (mailbox, uid)
	) WITHOUT ROWID`,
	`CREATE INDEX tombstone_modseq ON tombstone (mailbox, modseq)`,
	// Keywords in use per mailbox, with the first spelling seen
	// (RFC 9051 2.3.2: keywords are case-insensitive).
	`CREATE TABLE keyword (
		mailbox INTEGER NOT NULL REFERENCES mailbox (id),
		name TEXT NOT NULL COLLATE NOCASE,
		count INTEGER NOT NULL,
		PRIMARY KEY (mailbox, name)
	) WITHOUT ROWID`,
	`CREATE TABLE subscription (name TEXT PRIMARY KEY) WITHOUT ROWID`,
}, {
	// 2: the unseen messages of each mailbox in UID order, so that
	// SELECT finds the first (RFC 3501 UNSEEN) without walking every read
	// one. 1 is store.FlagSeen; a query uses the index only when it spells
	// the condition the same way.
	`CREATE INDEX message_unseen ON message (mailbox, uid) WHERE flags & 1 = 0`,
}, {
	// 3: a bounded number of tombstones per mailbox (Config.KeptExpunges).
	// mailbox.tombstones counts a mailbox's rows in tombstone, so that an
	// expunge knows without a scan when to forget the oldest; expunges at
	// or below mailbox.forgotten have none.
	`ALTER TABLE mailbox ADD COLUMN tombstones INTEGER NOT NULL DEFAULT 0`,
	`ALTER TABLE mailbox ADD COLUMN forgotten INTEGER NOT NULL DEFAULT 0`,
	`UPDATE mailbox SET tombstones = (SELECT count(*) FROM tombstone WHERE tombstone.mailbox = mailbox.id)`,
	`ALTER TABLE tombstone DROP COLUMN created_modseq`,
}, {
	// 4: the account's Sieve scripts (store.Session.PutSieveScript). The
	// partial unique index lets at most one be active. A rowid table,
	// as the content may run to tens of kilobytes.
	`CREATE TABLE sieve_script (
		id INTEGER PRIMARY KEY,
		name TEXT NOT NULL UNIQUE,
		content BLOB NOT NULL,
		active INTEGER NOT NULL DEFAULT 0 CHECK (active IN (0, 1)),
		modified INTEGER NOT NULL -- unix microseconds
	)`,
	`CREATE UNIQUE INDEX sieve_script_active ON sieve_script (active) WHERE active = 1`,
}, {
	// 5: when each message was saved into its mailbox (RFC 8514 SAVEDATE),
	// in unix microseconds: set by an append, a copy or a move. Nobody
	// knows when the messages stored before were saved, and they keep
	// none (NULL, SAVEDATE NIL), except those in Trash and Junk, which
	// autoexpunge removes a number of days after their save date: they
	// are dated with the migration's time (SQLite's clock, which counts
	// milliseconds), so that the first login after the upgrade removes
	// none, and a message received years ago and deleted the day before
	// the upgrade stays its full time. Special uses are stored spelled as
	// the attribute (store.SpecialTrash). A mail.db migrates when its
	// account is first opened after the upgrade, which is before any
	// autoexpunge of it.
	//
	// The index finds what autoexpunge is due to remove
	// (Session.ExpireSaved), which never removes a message without a save
	// date; those have no entry. A query uses it only when its condition
	// implies saved IS NOT NULL, as "saved < ?" does.
	`ALTER TABLE message ADD COLUMN saved INTEGER`,
	`UPDATE message SET saved = CAST(round(unixepoch('now', 'subsec') * 1000000) AS INTEGER)
		WHERE mailbox IN (SELECT id FROM mailbox WHERE special_use IN ('\Trash', '\Junk'))`,
	`CREATE INDEX message_saved ON message (mailbox, saved) WHERE saved IS NOT NULL`,
}, {
	// 6: the automatic replies sent (store.ReplyTracker: Sieve vacation),
	// by the caller's key of sender and handle: when the last went, and
	// when its period ends, after which the row is only in the way; the
	// index finds those for the write that forgets them.
	`CREATE TABLE vacation_reply (
		key TEXT PRIMARY KEY,
		sent INTEGER NOT NULL,   -- unix microseconds
		expires INTEGER NOT NULL -- unix microseconds
	) WITHOUT ROWID`,
	`CREATE INDEX vacation_reply_expires ON vacation_reply (expires)`,
}}

// maxAccountID keeps mailbox IDs (account ID << 32 | n) positive.
const maxAccountID = 1<<31 - 1

func (s *Store) migrateAccounts() error {
	return migrate(context.Background(), s.adb, accountsSchema, nil)
}

// migrate brings a database to its schema's version, applying the
// missing migrations in one IMMEDIATE transaction, so two processes
// opening a database at once do not both apply them. init, if set, fills a
// new database in the same transaction. A database newer than this code is
// refused.
func migrate(ctx context.Context, db *sql.DB, sch schema, init func(*sql.Tx) error) error {
	var v int
	if err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return mapErr(err)
	}
	if v == len(sch) {
		return nil
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return mapErr(err)
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return mapErr(err)
	}
	switch {
	case v == len(sch):
		return nil
	case v > len(sch):
		return fmt.Errorf("database schema version %d, this buzon knows %d: upgrade buzon", v, len(sch))
	}
	for i := v; i < len(sch); i++ {
		for _, q := range sch[i] {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("migration %d: %w", i+1, mapErr(err))
			}
		}
	}
	if init != nil && v == 0 {
		if err := init(tx); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, len(sch))); err != nil {
		return mapErr(err)
	}
	return mapErr(tx.Commit())
}

// mapErr turns driver and file system errors that mean "try again later"
// into the store's errors, keeping the original in the chain.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_FULL:
			return fmt.Errorf("%w: %w", store.ErrStorageFull, err)
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
		}
		return err
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		if !errors.Is(err, store.ErrStorageFull) {
			return fmt.Errorf("%w: %w", store.ErrStorageFull, err)
		}
	}
	return err
}

// flock takes or changes a BSD lock on f, retrying when a signal
// interrupts the wait.
func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			return err
		}
	}
}
