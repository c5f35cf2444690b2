package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// migrationLockKey is the pg_advisory_xact_lock key that serializes schema
// migrations between nodes ("buzonmig" in ASCII).
const migrationLockKey int64 = 0x62757a6f6e6d6967

// migrations returns the schema migrations in order: migrations()[i] takes
// the schema from version i to version i+1. Never edit one that has been
// released; append a new one.
func migrations() []string {
	return []string{
		// 1: the initial schema.
		`
CREATE TABLE accounts (
	id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name          text NOT NULL UNIQUE,
	password_hash text NOT NULL,
	scram_sha256  text NOT NULL,
	max_bytes     bigint NOT NULL DEFAULT 0,
	max_messages  bigint NOT NULL DEFAULT 0,
	created       timestamptz NOT NULL,
	-- 0: a normal account; 1: being imported (hidden); 2: imported.
	import_state  smallint NOT NULL DEFAULT 0
);

-- One row per account, locked by every write to the account's mail so that
-- the account's writers are serialized across nodes.
CREATE TABLE account_state (
	account_id       bigint PRIMARY KEY REFERENCES accounts ON DELETE CASCADE,
	modseq           bigint NOT NULL DEFAULT 0, -- highest MODSEQ handed out
	bytes            bigint NOT NULL DEFAULT 0, -- quota usage
	messages         bigint NOT NULL DEFAULT 0
);

-- UIDVALIDITY values, unique in the database so that a mailbox deleted and
-- created again, even in a re-created account, never reuses one (RFC 9051
-- 2.3.1.1). Starting at the time in seconds keeps them above the values
-- of stores that used the time.
CREATE SEQUENCE uidvalidity_seq AS bigint MINVALUE 1 MAXVALUE 4294967295;
SELECT setval('uidvalidity_seq', extract(epoch FROM now())::bigint);

CREATE TABLE mailboxes (
	id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	account_id     bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,
	name           text NOT NULL,
	special_use    text NOT NULL DEFAULT '',
	uidvalidity    bigint NOT NULL,
	uidnext        bigint NOT NULL DEFAULT 1,
	highest_modseq bigint NOT NULL DEFAULT 0,
	-- Deferrable so that a rename of a hierarchy can pass through
	-- names that clash only midway.
	CONSTRAINT mailboxes_name UNIQUE (account_id, name) DEFERRABLE INITIALLY IMMEDIATE
);

CREATE TABLE bodies (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	account_id bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,
	size       bigint NOT NULL
);

-- A body in 1 MiB rows: row seq holds bytes [seq<<20, (seq+1)<<20).
CREATE TABLE body_chunks (
	body_id bigint NOT NULL REFERENCES bodies ON DELETE CASCADE,
	seq     integer NOT NULL,
	data    bytea NOT NULL,
	PRIMARY KEY (body_id, seq)
);
-- Uncompressed out-of-line storage lets substring() fetch only the TOAST
-- chunks it needs; mail attachments barely compress anyway.
ALTER TABLE body_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE messages (
	mailbox_id     bigint NOT NULL REFERENCES mailboxes ON DELETE CASCADE,
	uid            bigint NOT NULL,
	body_id        bigint NOT NULL REFERENCES bodies,
	modseq         bigint NOT NULL,
	created_modseq bigint NOT NULL, -- MODSEQ of the append, for Changes
	flags          smallint NOT NULL DEFAULT 0, -- store.SystemFlags
	keywords       text NOT NULL DEFAULT '',    -- space-separated atoms
	internal_date  timestamptz NOT NULL,
	size           bigint NOT NULL,
	structure      bytea NOT NULL,
	retrieved      timestamptz, -- first POP3 retrieval
	PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX messages_modseq ON messages (mailbox_id, modseq);
CREATE INDEX messages_body ON messages (body_id);

-- Expunged messages, so Changes can report them (RFC 7162 VANISHED).
CREATE TABLE tombstones (
	mailbox_id bigint NOT NULL REFERENCES mailboxes ON DELETE CASCADE,
	uid        bigint NOT NULL,
	modseq     bigint NOT NULL,
	PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX tombstones_modseq ON tombstones (mailbox_id, modseq);

CREATE TABLE subscriptions (
	account_id bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,
	name       text NOT NULL,
	PRIMARY KEY (account_id, name)
);
`,
		// 2: server secrets by name (store.SecretKeeper), made at first use.
		`
CREATE TABLE secrets (
	name  text PRIMARY KEY,
	value bytea NOT NULL
);
`,
		// 3: the few messages with keywords, so that SELECT and STATUS
		// list a mailbox's keywords without reading every message.
		`
CREATE INDEX messages_keywords ON messages (mailbox_id) WHERE keywords <> '';
`,
		// 4: the unseen messages of each mailbox in UID order, so that
		// SELECT finds the first (RFC 3501 UNSEEN) without walking every
		// read one. 1 is store.FlagSeen; a query uses the index only when
		// it spells the condition the same way.
		`
CREATE INDEX messages_unseen ON messages (mailbox_id, uid) WHERE flags & 1 = 0;
`,
		// 5: a bounded number of tombstones per mailbox
		// (Config.KeptExpunges). mailboxes.tombstones counts a mailbox's
		// rows in tombstones, so that an expunge knows without a scan
		// when to forget the oldest; expunges at or below
		// forgotten_modseq have none.
		`
ALTER TABLE mailboxes ADD COLUMN tombstones bigint NOT NULL DEFAULT 0,
	ADD COLUMN forgotten_modseq bigint NOT NULL DEFAULT 0;
UPDATE mailboxes m SET tombstones = t.n
	FROM (SELECT mailbox_id, count(*) AS n FROM tombstones GROUP BY mailbox_id) t WHERE t.mailbox_id = m.id;
`,
		// 6: aliases, other addresses of an account (store.Store.AddAlias).
		// No alias has an account's name: the writes of both tables take
		// the name's address lock (addressFree) and check the other.
		`
CREATE TABLE aliases (
	name       text PRIMARY KEY,
	account_id bigint NOT NULL REFERENCES accounts ON DELETE CASCADE
);
CREATE INDEX aliases_account ON aliases (account_id);
`,
		// 7: each account's Sieve scripts (store.Session.PutSieveScript).
		// The partial unique index lets at most one of an account's be
		// active, whatever two nodes do at once.
		`
CREATE TABLE sieve_scripts (
	account_id bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,
	name       text NOT NULL,
	content    bytea NOT NULL,
	active     boolean NOT NULL DEFAULT false,
	modified   timestamptz NOT NULL,
	PRIMARY KEY (account_id, name)
);
CREATE UNIQUE INDEX sieve_scripts_active ON sieve_scripts (account_id) WHERE active;
`,
		// 8: when each message was saved into its mailbox (RFC 8514
		// SAVEDATE): set by an append, a copy or a move. Nobody knows when
		// the messages stored before were saved, and they keep none (null,
		// SAVEDATE NIL), except those in Trash and Junk, which autoexpunge
		// removes a number of days after their save date: they are dated
		// with the migration's time (now(), when its transaction began), so
		// that the first login after the upgrade removes none, and a
		// message received years ago and deleted the day before the
		// upgrade stays its full time. Special uses are stored spelled as
		// the attribute (store.SpecialTrash). Adding a nullable column
		// without a default rewrites no row; the update rewrites those of
		// Trash and Junk, under the lock that the ALTER holds until the
		// end, so no node writes messages meanwhile.
		//
		// The default then dates what a node still running an older
		// binary saves during a rolling upgrade: it inserts its rows (an
		// append, a copy, a move) without the column, and this code always
		// gives it, null for an import without one.
		//
		// The index finds what autoexpunge is due to remove
		// (Session.ExpireSaved), which never removes a message without a
		// save date; those have no entry. A query uses it only when its
		// condition implies saved IS NOT NULL.
		`
ALTER TABLE messages ADD COLUMN saved timestamptz;
UPDATE messages SET saved = now()
	WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE special_use IN ('\Trash', '\Junk'));
ALTER TABLE messages ALTER COLUMN saved SET DEFAULT now();
CREATE INDEX messages_saved ON messages (mailbox_id, saved) WHERE saved IS NOT NULL;
`,
		// 9: the automatic replies sent (store.ReplyTracker: Sieve
		// vacation), by account and the caller's key of sender and
		// handle: when the last went, and when its period ends, after
		// which the row is only in the way; the index finds those for
		// the statement that forgets them.
		`
CREATE TABLE vacation_replies (
	account_id bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,
	key        text NOT NULL,
	sent       timestamptz NOT NULL,
	expires    timestamptz NOT NULL,
	PRIMARY KEY (account_id, key)
);
CREATE INDEX vacation_replies_expires ON vacation_replies (account_id, expires);
`,
	}
}

// SchemaVersion is the schema version this code expects.
func SchemaVersion() int { return len(migrations()) }

// Migrate brings the schema of the database at dsn to SchemaVersion,
// applying each missing migration in its own transaction. It is safe to run
// from several nodes at once: a transaction-level advisory lock serializes
// them, so each migration is applied once. It refuses a database whose
// schema is newer than this code. `buzon migrate` calls it; Open does too.
func Migrate(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("migrate postgres schema: %w", mapErr(err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return migrate(ctx, conn)
}

// migrate applies the missing migrations over conn.
func migrate(ctx context.Context, conn *pgx.Conn) error {
	all := migrations()
	for {
		done, err := migrateOne(ctx, conn, all)
		if err != nil {
			return fmt.Errorf("migrate postgres schema: %w", mapErr(err))
		}
		if done {
			return nil
		}
	}
}

// migrateOne applies the next missing migration, if any, and reports
// whether the schema is now current.
func migrateOne(ctx context.Context, conn *pgx.Conn, all []string) (current bool, err error) {
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockKey); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)`); err != nil {
			return err
		}
		var version int
		err := tx.QueryRow(ctx, `SELECT version FROM schema_version`).Scan(&version)
		if errors.Is(err, pgx.ErrNoRows) {
			_, err = tx.Exec(ctx, `INSERT INTO schema_version (version) VALUES (0)`)
		}
		if err != nil {
			return err
		}
		switch {
		case version > len(all):
			return fmt.Errorf("database schema version %d is newer than this buzon's (%d): upgrade buzon", version, len(all))
		case version == len(all):
			current = true
			return nil
		}
		if _, err := tx.Exec(ctx, all[version]); err != nil {
			return fmt.Errorf("migration %d: %w", version+1, err)
		}
		_, err = tx.Exec(ctx, `UPDATE schema_version SET version = $1`, version+1)
		return err
	})
	return current, err
}
