// Package postgres is buzon's scale-out mail store: everything (accounts,
// aliases, credentials, quotas, mailboxes, messages, flags, tombstones,
// subscriptions, Sieve scripts, message bodies and server secrets) lives in one
// PostgreSQL database, so any number of buzon nodes can serve any account
// behind a TCP load balancer. It implements store.Store, store.Checker,
// store.Importer, store.BodyBatcher and store.SecretKeeper.
//
// # Writes and ordering
//
// Every write is one transaction, committed before the call returns, so a
// write that returned nil survives a crash of the node or of the database
// (with PostgreSQL's default synchronous_commit=on and fsync=on). Each
// write to an account's mail first locks the account's account_state row
// (SELECT ... FOR UPDATE) and holds it to commit. That row carries the
// account's MODSEQ counter and quota usage, so across all nodes:
//   - writers to one account are serialized and commit in the order they
//     took MODSEQs: a client never sees MODSEQ N+1 committed while N is
//     still invisible (RFC 7162 CONDSTORE relies on this);
//   - UIDs come from the mailbox row (uidnext), updated under that lock, so
//     no UID is handed out twice or out of order (RFC 9051 2.3.1.1);
//   - the quota is checked against usage updated in the same transaction.
//
// Accounts never wait for each other. A message body is written before the
// lock is taken, so a large delivery does not hold up the account's other
// writers while its bytes travel.
//
// # Round trips
//
// Statements are pipelined (pgx batches), since each round trip to the
// database costs both sides more than most of these statements do. A read
// that must see one snapshot is one statement where it can be (Changes
// and Status: the mailbox's row with the rest as arrays or aggregates
// beside it; a page of Messages, the mailbox's MODSEQ on every row), and
// otherwise one round trip holding BEGIN ... COMMIT (Snapshot). A write
// is usually two: BEGIN, the lock and the reads it needs in the first;
// the changes, the counters, pg_notify and COMMIT in the second. An error
// anywhere rolls the whole write back.
//
// The commonest writes need less. The statements of a pipeline up to its
// Sync are one transaction, committed there, so a write whose statements
// decide for themselves needs neither BEGIN nor COMMIT, and holds the
// lock for no round trip. Append sends its body (of one chunk), the lock
// and one statement that adds the message if the quota allows, in one
// round trip. StoreFlags and Expunge read first with no lock and no
// transaction, and stop there when nothing changes, so a STORE or a
// FETCH's \Seen that changes no flag, or an EXPUNGE or CLOSE with
// nothing marked \Deleted, writes nothing and syncs nothing; otherwise
// the lock and one statement that makes the change if the mailbox's
// MODSEQ is still the one read go in the second. When another write came
// between, they read again; after two tries they take the lock first, as
// the other writes do, so that a mailbox that keeps changing (deliveries
// from another node) cannot overtake them for ever. TestRoundTrips counts
// what each operation sends.
//
// # Plans
//
// The pool's connections run every statement with its generic plan
// (plan_cache_mode = force_generic_plan unless the DSN sets it): planning
// a statement anew at each execution, as PostgreSQL's default did for
// many of ours, cost the database as much CPU as executing them. Queries
// are written so that the generic plan is the right one whatever the
// values: UID ranges are read by a LATERAL subquery per range kept apart
// from the join (OFFSET 0 or a LIMIT), an index range scan; queries by
// MODSEQ sort in Go, so nothing tempts the planner away from the
// (mailbox_id, modseq) indexes. This needs PostgreSQL 12 or later.
//
// # Bodies
//
// Bodies are bytea in a table of their own, cut into 1 MiB rows stored
// uncompressed (STORAGE EXTERNAL): writing streams from the reader one row
// at a time, and a read at an offset fetches only the rows it covers.
// Measured against one bytea value per body and against large objects
// (BenchmarkBodyStorage; PostgreSQL 15, 2 cores, fsync on), per message:
//
//	                     30 KB write  30 KB read  20 MB write  20 MB read  disk
//	bytea, one value       0.39 ms      0.06 ms     169 ms       29 ms     1.00x
//	bytea, 1 MiB rows      0.42 ms      0.07 ms     106-122 ms   16 ms     1.00x
//	large objects          0.54 ms      0.09 ms     198 ms       18-22 ms  1.30x
//
// Copies of a message (IMAP COPY, MOVE) share its body row; a body goes
// when the last message using it does.
//
// # Notifications
//
// Each committing write calls pg_notify('buzon', accountID) in its
// transaction; PostgreSQL delivers the notification at commit. Each Store
// keeps one connection that LISTENs and wakes the local Watchers of the
// account. When that connection drops, the Store reconnects with backoff
// and then wakes every Watcher, since notifications sent meanwhile are
// lost; a woken session catches up with Session.Changes, which is exact
// whatever it missed.
//
// # Locks
//
// Store.Lock takes a session-level advisory lock (pg_try_advisory_lock,
// keyed by a hash of account and name) on one connection per Store kept for
// locks, so POP3's maildrop lock holds across nodes and vanishes with a
// crashed node's connection.
//
// # Failures
//
// An operation that cannot reach the database fails with an error wrapping
// store.ErrUnavailable (a full disk: store.ErrStorageFull); the pool
// reconnects by itself when the database is back, and nothing is cached
// across calls but the connections and, per Session, the highest MODSEQ
// its operations found, which HighestModSeq answers with only for a caller
// whose question is older than the operation. A commit whose outcome was lost with
// the connection is reported as unavailable although it may have
// committed: PostgreSQL cannot tell the client.
//
// # Schema
//
// Migrate brings a database's schema to the version this code expects;
// Open calls it. Migrations run under a transaction-level advisory lock,
// so several nodes starting at once apply each migration exactly once.
package postgres
