package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/buzon-mail/buzon/internal/store"
)

// Sieve scripts live in table sieve_scripts, one row per script. Reads
// are single statements; writes take the account's lock (wtx.lock), as
// SetSubscribed does, so that two nodes activating scripts at once are
// serialized and the partial unique index never has to refuse one.

// SieveScripts implements store.Session.
func (ss *session) SieveScripts(ctx context.Context) ([]store.SieveScript, error) {
	rows, err := ss.s.pool.Query(ctx, `SELECT name, octet_length(content), active, modified
		FROM sieve_scripts WHERE account_id = $1 ORDER BY name COLLATE "C"`, ss.id)
	if err != nil {
		return nil, fmt.Errorf("list sieve scripts: %w", mapErr(err))
	}
	scripts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.SieveScript, error) {
		var sc store.SieveScript
		err := r.Scan(&sc.Name, &sc.Size, &sc.Active, &sc.Modified)
		sc.Modified = sc.Modified.UTC()
		return sc, err
	})
	if err != nil {
		return nil, fmt.Errorf("list sieve scripts: %w", mapErr(err))
	}
	return scripts, nil
}

// SieveScript implements store.Session.
func (ss *session) SieveScript(ctx context.Context, name string) (store.SieveScript, error) {
	sc, err := ss.sieveScript(ctx, `AND name = $2`, name)
	if err != nil {
		return sc, fmt.Errorf("sieve script %q: %w", name, err)
	}
	return sc, nil
}

// ActiveSieveScript implements store.Session.
func (ss *session) ActiveSieveScript(ctx context.Context) (store.SieveScript, error) {
	sc, err := ss.sieveScript(ctx, `AND active`)
	if err != nil {
		return sc, fmt.Errorf("active sieve script: %w", err)
	}
	return sc, nil
}

// ActiveSieveScriptInfo implements store.Session: from Open's query when
// it began at or after notBefore, else with a read of its own; neither
// sends the content (octet_length does not detoast it).
func (ss *session) ActiveSieveScriptInfo(ctx context.Context, notBefore time.Time) (store.SieveScript, error) {
	if !ss.opened.Before(notBefore) {
		if ss.openActive == nil {
			return store.SieveScript{}, fmt.Errorf("active sieve script: %w", store.ErrNoSieveScript)
		}
		return *ss.openActive, nil
	}
	sc := store.SieveScript{Active: true}
	err := ss.s.pool.QueryRow(ctx, `SELECT name, octet_length(content), modified FROM sieve_scripts
		WHERE account_id = $1 AND active`, ss.id).Scan(&sc.Name, &sc.Size, &sc.Modified)
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNoSieveScript
	}
	if err != nil {
		return store.SieveScript{}, fmt.Errorf("active sieve script: %w", mapErr(err))
	}
	sc.Modified = sc.Modified.UTC()
	return sc, nil
}

// sieveScript reads the account's script that cond, more of a WHERE
// clause whose arguments start at $2, finds.
func (ss *session) sieveScript(ctx context.Context, cond string, args ...any) (store.SieveScript, error) {
	var sc store.SieveScript
	err := ss.s.pool.QueryRow(ctx, `SELECT name, content, active, modified FROM sieve_scripts
		WHERE account_id = $1 `+cond, append([]any{ss.id}, args...)...).Scan(&sc.Name, &sc.Content, &sc.Active, &sc.Modified)
	if errors.Is(err, pgx.ErrNoRows) {
		return sc, store.ErrNoSieveScript
	}
	if err != nil {
		return sc, mapErr(err)
	}
	if sc.Content == nil {
		sc.Content = []byte{}
	}
	sc.Size, sc.Modified = int64(len(sc.Content)), sc.Modified.UTC()
	return sc, nil
}

// writeSieve runs the statements queue puts on a batch under the
// account's lock, in one transaction.
func (ss *session) writeSieve(ctx context.Context, queue func(b *pgx.Batch)) error {
	return mapErr(ss.s.write(ctx, ss.id, func(w *wtx) error {
		var b pgx.Batch
		queue(&b)
		return w.lock(&b)
	}))
}

// PutSieveScript implements store.Session.
func (ss *session) PutSieveScript(ctx context.Context, name string, content []byte, maxScripts int) error {
	if err := store.ValidSieveScriptName(name); err != nil {
		return err
	}
	if content == nil {
		content = []byte{} // NOT NULL
	}
	// Counted under the account's lock: no other put can take the last
	// place meanwhile.
	err := ss.writeSieve(ctx, func(b *pgx.Batch) {
		b.Queue(`INSERT INTO sieve_scripts (account_id, name, content, modified) SELECT $1, $2, $3, $4
			WHERE $5 <= 0 OR EXISTS (SELECT 1 FROM sieve_scripts WHERE account_id = $1 AND name = $2)
				OR (SELECT count(*) FROM sieve_scripts WHERE account_id = $1) < $5
			ON CONFLICT (account_id, name) DO UPDATE SET content = excluded.content, modified = excluded.modified`,
			ss.id, name, content, time.Now(), maxScripts).Exec(func(ct pgconn.CommandTag) error {
			if ct.RowsAffected() == 0 {
				return fmt.Errorf("%w: the account has %d sieve scripts", store.ErrLimit, maxScripts)
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("put sieve script %q: %w", name, err)
	}
	return nil
}

// ActivateSieveScript implements store.Session: the others first, as the
// unique index is checked row by row.
func (ss *session) ActivateSieveScript(ctx context.Context, name string) error {
	err := ss.writeSieve(ctx, func(b *pgx.Batch) {
		b.Queue(`UPDATE sieve_scripts SET active = false WHERE account_id = $1 AND active AND name <> $2`, ss.id, name)
		if name == "" {
			return
		}
		b.Queue(`UPDATE sieve_scripts SET active = true WHERE account_id = $1 AND name = $2`, ss.id, name).
			Exec(func(ct pgconn.CommandTag) error {
				if ct.RowsAffected() == 0 {
					return store.ErrNoSieveScript
				}
				return nil
			})
	})
	if err != nil {
		if name == "" {
			return fmt.Errorf("deactivate sieve scripts: %w", err)
		}
		return fmt.Errorf("activate sieve script %q: %w", name, err)
	}
	return nil
}

// RenameSieveScript implements store.Session.
func (ss *session) RenameSieveScript(ctx context.Context, from, to string) error {
	if err := store.ValidSieveScriptName(to); err != nil {
		return err
	}
	err := ss.writeSieve(ctx, func(b *pgx.Batch) {
		b.Queue(`UPDATE sieve_scripts SET name = $3, modified = $4 WHERE account_id = $1 AND name = $2`,
			ss.id, from, to, time.Now()).Exec(func(ct pgconn.CommandTag) error {
			if ct.RowsAffected() == 0 {
				return store.ErrNoSieveScript
			}
			return nil
		})
	})
	if isUniqueViolation(err) {
		err = store.ErrSieveScriptExists
	}
	if err != nil {
		return fmt.Errorf("rename sieve script %q to %q: %w", from, to, err)
	}
	return nil
}

// DeleteSieveScript implements store.Session. One statement reads the
// script and deletes it unless it is active.
func (ss *session) DeleteSieveScript(ctx context.Context, name string) error {
	err := ss.writeSieve(ctx, func(b *pgx.Batch) {
		b.Queue(`WITH s AS (SELECT active FROM sieve_scripts WHERE account_id = $1 AND name = $2),
			d AS (DELETE FROM sieve_scripts WHERE account_id = $1 AND name = $2 AND NOT active)
			SELECT (SELECT active FROM s)`, ss.id, name).QueryRow(func(r pgx.Row) error {
			var active *bool
			if err := r.Scan(&active); err != nil {
				return err
			}
			switch {
			case active == nil:
				return store.ErrNoSieveScript
			case *active:
				return store.ErrSieveScriptActive // RFC 5804 2.10
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("delete sieve script %q: %w", name, err)
	}
	return nil
}

// ImportSieveScripts implements store.Importer, in one transaction.
func (s *Store) ImportSieveScripts(ctx context.Context, accountID int64, scripts []store.SieveScript) error {
	err := s.accountTx(ctx, func(tx pgx.Tx) error {
		if err := importing(ctx, tx, accountID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sieve_scripts WHERE account_id = $1`, accountID); err != nil {
			return err
		}
		for _, sc := range scripts {
			if err := store.ValidSieveScriptName(sc.Name); err != nil {
				return err
			}
			content, modified := sc.Content, sc.Modified
			if content == nil {
				content = []byte{}
			}
			if modified.IsZero() {
				modified = time.Now()
			}
			if _, err := tx.Exec(ctx, `INSERT INTO sieve_scripts (account_id, name, content, active, modified)
				VALUES ($1, $2, $3, $4, $5)`, accountID, sc.Name, content, sc.Active, modified); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("import sieve scripts of account %d: %w", accountID, err)
	}
	return nil
}

// ReplyDue implements store.ReplyTracker in one statement: an insert
// whose conflict updates the row only when its reply is older than the
// period. Two nodes inserting one key at once are serialized by the
// primary key, the second seeing the first's row, so one of them records
// the reply. The account's rows whose period is over go after it.
func (ss *session) ReplyDue(ctx context.Context, key string, now time.Time, period time.Duration) (bool, error) {
	tag, err := ss.s.pool.Exec(ctx, `INSERT INTO vacation_replies (account_id, key, sent, expires) VALUES ($1, $2, $3, $4)
		ON CONFLICT (account_id, key) DO UPDATE SET sent = excluded.sent, expires = excluded.expires
		WHERE vacation_replies.sent <= $5`, ss.id, key, now, now.Add(period), now.Add(-period))
	if err != nil {
		return false, fmt.Errorf("record an automatic reply: %w", mapErr(err))
	}
	if _, err := ss.s.pool.Exec(ctx, `DELETE FROM vacation_replies WHERE account_id = $1 AND expires < $2`, ss.id, now); err != nil {
		return false, fmt.Errorf("forget automatic replies: %w", mapErr(err))
	}
	return tag.RowsAffected() == 1, nil
}

// ReplyRecorded implements store.ReplyTracker.
func (ss *session) ReplyRecorded(ctx context.Context, key string, now time.Time, period time.Duration) (bool, error) {
	var recorded bool
	err := ss.s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM vacation_replies WHERE account_id = $1 AND key = $2 AND sent > $3)`,
		ss.id, key, now.Add(-period)).Scan(&recorded)
	if err != nil {
		return false, fmt.Errorf("look for an automatic reply: %w", mapErr(err))
	}
	return recorded, nil
}

// RecordReply implements store.ReplyTracker: an upsert, then the
// account's rows whose period is over go, as after ReplyDue.
func (ss *session) RecordReply(ctx context.Context, key string, now time.Time, period time.Duration) error {
	if _, err := ss.s.pool.Exec(ctx, `INSERT INTO vacation_replies (account_id, key, sent, expires) VALUES ($1, $2, $3, $4)
		ON CONFLICT (account_id, key) DO UPDATE SET sent = excluded.sent, expires = excluded.expires`,
		ss.id, key, now, now.Add(period)); err != nil {
		return fmt.Errorf("record an automatic reply: %w", mapErr(err))
	}
	if _, err := ss.s.pool.Exec(ctx, `DELETE FROM vacation_replies WHERE account_id = $1 AND expires < $2`, ss.id, now); err != nil {
		return fmt.Errorf("forget automatic replies: %w", mapErr(err))
	}
	return nil
}

// Replies implements store.ReplyTracker.
func (ss *session) Replies(ctx context.Context) ([]store.Reply, error) {
	rows, err := ss.s.pool.Query(ctx, `SELECT key, sent, expires FROM vacation_replies WHERE account_id = $1`, ss.id)
	if err != nil {
		return nil, fmt.Errorf("list automatic replies: %w", mapErr(err))
	}
	replies, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Reply, error) {
		var rep store.Reply
		err := r.Scan(&rep.Key, &rep.Sent, &rep.Expires)
		rep.Sent, rep.Expires = rep.Sent.UTC(), rep.Expires.UTC()
		return rep, err
	})
	if err != nil {
		return nil, fmt.Errorf("list automatic replies: %w", mapErr(err))
	}
	return replies, nil
}

// ImportReplies implements store.ReplyImporter, in one transaction.
func (s *Store) ImportReplies(ctx context.Context, accountID int64, replies []store.Reply) error {
	err := s.accountTx(ctx, func(tx pgx.Tx) error {
		if err := importing(ctx, tx, accountID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM vacation_replies WHERE account_id = $1`, accountID); err != nil {
			return err
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"vacation_replies"}, []string{"account_id", "key", "sent", "expires"},
			pgx.CopyFromSlice(len(replies), func(i int) ([]any, error) {
				r := replies[i]
				return []any{accountID, r.Key, r.Sent, r.Expires}, nil
			}))
		return err
	})
	if err != nil {
		return fmt.Errorf("import automatic replies of account %d: %w", accountID, mapErr(err))
	}
	return nil
}

var (
	_ store.ReplyTracker  = (*session)(nil)
	_ store.ReplyImporter = (*Store)(nil)
)
