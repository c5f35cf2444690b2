package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

// The account's Sieve scripts live in its mail.db (table sieve_script),
// so that deleting the account, a backup and a restore take them with
// its mail.

// SieveScripts implements store.Session.
func (ss *session) SieveScripts(ctx context.Context) ([]store.SieveScript, error) {
	var scripts []store.SieveScript
	err := ss.read(ctx, func(a *account) error {
		rows, err := a.db.QueryContext(ctx, `SELECT name, length(content), active, modified FROM sieve_script ORDER BY name`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var sc store.SieveScript
			var modified int64
			if err := rows.Scan(&sc.Name, &sc.Size, &sc.Active, &modified); err != nil {
				return err
			}
			sc.Modified = time.UnixMicro(modified).UTC()
			scripts = append(scripts, sc)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list sieve scripts: %w", err)
	}
	return scripts, nil
}

// SieveScript implements store.Session.
func (ss *session) SieveScript(ctx context.Context, name string) (store.SieveScript, error) {
	sc, err := ss.sieveScript(ctx, `WHERE name = ?`, name)
	if err != nil {
		return sc, fmt.Errorf("sieve script %q: %w", name, err)
	}
	return sc, nil
}

// ActiveSieveScript implements store.Session.
func (ss *session) ActiveSieveScript(ctx context.Context) (store.SieveScript, error) {
	sc, err := ss.sieveScript(ctx, `WHERE active = 1`)
	if err != nil {
		return sc, fmt.Errorf("active sieve script: %w", err)
	}
	return sc, nil
}

// ActiveSieveScriptInfo implements store.Session. The account's
// database is local: it always reads, without the content (SQLite finds
// a blob's length without loading it).
func (ss *session) ActiveSieveScriptInfo(ctx context.Context, _ time.Time) (store.SieveScript, error) {
	var sc store.SieveScript
	err := ss.read(ctx, func(a *account) error {
		var modified int64
		err := a.db.QueryRowContext(ctx, `SELECT name, length(content), modified FROM sieve_script WHERE active = 1`).
			Scan(&sc.Name, &sc.Size, &modified)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNoSieveScript
		}
		sc.Active, sc.Modified = true, time.UnixMicro(modified).UTC()
		return err
	})
	if err != nil {
		return sc, fmt.Errorf("active sieve script: %w", err)
	}
	return sc, nil
}

// sieveScript reads the script that where, a WHERE clause, finds.
func (ss *session) sieveScript(ctx context.Context, where string, args ...any) (store.SieveScript, error) {
	var sc store.SieveScript
	err := ss.read(ctx, func(a *account) error {
		var modified int64
		err := a.db.QueryRowContext(ctx, `SELECT name, content, active, modified FROM sieve_script `+where, args...).
			Scan(&sc.Name, &sc.Content, &sc.Active, &modified)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNoSieveScript
		}
		if sc.Content == nil {
			sc.Content = []byte{}
		}
		sc.Size, sc.Modified = int64(len(sc.Content)), time.UnixMicro(modified).UTC()
		return err
	})
	return sc, err
}

// PutSieveScript implements store.Session.
func (ss *session) PutSieveScript(ctx context.Context, name string, content []byte, maxScripts int) error {
	if err := store.ValidSieveScriptName(name); err != nil {
		return err
	}
	if content == nil {
		content = []byte{} // NOT NULL
	}
	now := time.Now().UnixMicro()
	err := ss.update(ctx, func(ctx context.Context, tx *sql.Tx) error {
		// Counted in the write transaction, which serializes the
		// account's writes: no other put can take the last place
		// meanwhile.
		res, err := tx.ExecContext(ctx, `INSERT INTO sieve_script (name, content, modified) SELECT ?, ?, ?
			WHERE ? <= 0 OR EXISTS (SELECT 1 FROM sieve_script WHERE name = ?) OR (SELECT count(*) FROM sieve_script) < ?
			ON CONFLICT (name) DO UPDATE SET content = excluded.content, modified = excluded.modified`,
			name, content, now, maxScripts, name, maxScripts)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("%w: the account has %d sieve scripts", store.ErrLimit, maxScripts)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put sieve script %q: %w", name, err)
	}
	return nil
}

// ActivateSieveScript implements store.Session. The write transaction
// serializes it with every other write of the account, so two at once
// leave exactly one script active.
func (ss *session) ActivateSieveScript(ctx context.Context, name string) error {
	err := ss.update(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if name != "" {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sieve_script WHERE name = ?`, name).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return store.ErrNoSieveScript
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sieve_script SET active = 0 WHERE active = 1 AND name != ?`, name); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE sieve_script SET active = 1 WHERE name = ?`, name)
		return err
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
	err := ss.update(ctx, func(ctx context.Context, tx *sql.Tx) error {
		// from first, as postgres's one UPDATE finds it before the
		// unique index looks at to: a missing script onto an existing
		// name is ErrNoSieveScript on both backends.
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sieve_script WHERE name = ?`, from).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNoSieveScript
		}
		if from != to {
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sieve_script WHERE name = ?`, to).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return store.ErrSieveScriptExists
			}
		}
		_, err := tx.ExecContext(ctx, `UPDATE sieve_script SET name = ?, modified = ? WHERE name = ?`, to, time.Now().UnixMicro(), from)
		return err
	})
	if err != nil {
		return fmt.Errorf("rename sieve script %q to %q: %w", from, to, err)
	}
	return nil
}

// DeleteSieveScript implements store.Session.
func (ss *session) DeleteSieveScript(ctx context.Context, name string) error {
	err := ss.update(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var active bool
		err := tx.QueryRowContext(ctx, `SELECT active FROM sieve_script WHERE name = ?`, name).Scan(&active)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return store.ErrNoSieveScript
		case err != nil:
			return err
		case active:
			return store.ErrSieveScriptActive // RFC 5804 2.10
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM sieve_script WHERE name = ?`, name)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete sieve script %q: %w", name, err)
	}
	return nil
}

// ReplyDue implements store.ReplyTracker in one write transaction of the
// account's database, which serializes the account's writers, so that
// two deliveries at once, in any processes, record one reply. The rows
// whose period is over go in the same transaction.
func (ss *session) ReplyDue(ctx context.Context, key string, now time.Time, period time.Duration) (bool, error) {
	sent, expires := now.UnixMicro(), now.Add(period).UnixMicro()
	due := false
	err := ss.update(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM vacation_reply WHERE expires <= ?`, sent); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO vacation_reply (key, sent, expires) VALUES (?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET sent = excluded.sent, expires = excluded.expires
			WHERE vacation_reply.sent <= ?`, key, sent, expires, now.Add(-period).UnixMicro())
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		due = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("record an automatic reply: %w", err)
	}
	return due, nil
}

// ReplyRecorded implements store.ReplyTracker.
func (ss *session) ReplyRecorded(ctx context.Context, key string, now time.Time, period time.Duration) (bool, error) {
	var n int
	err := ss.read(ctx, func(a *account) error {
		return a.db.QueryRowContext(ctx, `SELECT count(*) FROM vacation_reply WHERE key = ? AND sent > ?`,
			key, now.Add(-period).UnixMicro()).Scan(&n)
	})
	if err != nil {
		return false, fmt.Errorf("look for an automatic reply: %w", err)
	}
	return n > 0, nil
}

// RecordReply implements store.ReplyTracker in one write transaction,
// which forgets the rows whose period is over, as ReplyDue does.
func (ss *session) RecordReply(ctx context.Context, key string, now time.Time, period time.Duration) error {
	sent, expires := now.UnixMicro(), now.Add(period).UnixMicro()
	err := ss.update(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM vacation_reply WHERE expires <= ?`, sent); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO vacation_reply (key, sent, expires) VALUES (?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET sent = excluded.sent, expires = excluded.expires`, key, sent, expires)
		return err
	})
	if err != nil {
		return fmt.Errorf("record an automatic reply: %w", err)
	}
	return nil
}

// Replies implements store.ReplyTracker.
func (ss *session) Replies(ctx context.Context) ([]store.Reply, error) {
	var replies []store.Reply
	err := ss.read(ctx, func(a *account) error {
		rows, err := a.db.QueryContext(ctx, `SELECT key, sent, expires FROM vacation_reply`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r store.Reply
			var sent, expires int64
			if err := rows.Scan(&r.Key, &sent, &expires); err != nil {
				return err
			}
			r.Sent, r.Expires = time.UnixMicro(sent).UTC(), time.UnixMicro(expires).UTC()
			replies = append(replies, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list automatic replies: %w", err)
	}
	return replies, nil
}

var _ store.ReplyTracker = (*session)(nil)
