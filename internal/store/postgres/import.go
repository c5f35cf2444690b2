package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/buzon-mail/buzon/internal/store"
)

// Import states of an account (accounts.import_state).
const (
	importNone      = 0 // a normal account
	importRunning   = 1 // being imported: invisible to LookupAccount, Accounts, Open
	importCompleted = 2 // created by an import that finished
)

// ImportAccount implements store.Importer.
func (s *Store) ImportAccount(ctx context.Context, a store.Account) (accountID int64, finished bool, err error) {
	name := store.CanonicalAccountName(a.Name)
	if err := store.ValidAccountName(name); err != nil {
		return 0, false, err
	}
	created := a.Created
	if created.IsZero() {
		created = time.Now()
	}
	created = created.UTC().Truncate(time.Microsecond)
	err = s.accountTx(ctx, func(tx pgx.Tx) error {
		var state int16
		err := tx.QueryRow(ctx, `SELECT id, import_state FROM accounts WHERE name = $1 FOR UPDATE`, name).Scan(&accountID, &state)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			// Below: a new account, unless an alias has the name.
			if err := addressFree(ctx, tx, name); err != nil {
				return err
			}
		case err != nil:
			return err
		case state == importCompleted:
			finished = true
			return nil
		case state == importRunning:
			_, err := tx.Exec(ctx, `UPDATE accounts SET password_hash = $2, scram_sha256 = $3, max_bytes = $4, max_messages = $5
				WHERE id = $1`, accountID, a.Credentials.PasswordHash, a.Credentials.SCRAMSHA256, a.Quota.MaxBytes, a.Quota.MaxMessages)
			return err
		default:
			return fmt.Errorf("%w: %s", store.ErrAccountExists, name)
		}
		if err := tx.QueryRow(ctx, `INSERT INTO accounts (name, password_hash, scram_sha256, max_bytes, max_messages, created, import_state)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`, name, a.Credentials.PasswordHash, a.Credentials.SCRAMSHA256,
			a.Quota.MaxBytes, a.Quota.MaxMessages, created, importRunning).Scan(&accountID); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO account_state (account_id) VALUES ($1)`, accountID)
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("import account %s: %w", name, err)
	}
	return accountID, finished, nil
}

// importTx runs fn in a transaction holding the state row of an account
// being imported, which serializes two imports of it running at once.
func (s *Store) importTx(ctx context.Context, accountID int64, fn func(w *wtx) error) error {
	return s.write(ctx, accountID, func(w *wtx) error {
		if err := w.begin(); err != nil {
			return err
		}
		var one int
		err := w.tx.QueryRow(ctx, `SELECT 1 FROM account_state st JOIN accounts a ON a.id = st.account_id
			WHERE st.account_id = $1 AND a.import_state = $2 FOR UPDATE OF st`, accountID, importRunning).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: id %d is not being imported", store.ErrNoAccount, accountID)
		}
		if err != nil {
			return err
		}
		return fn(w)
	})
}

// ImportMailbox implements store.Importer.
func (s *Store) ImportMailbox(ctx context.Context, accountID int64, m store.ImportMailbox) (mailboxID int64, err error) {
	name := store.CanonicalMailboxName(m.Name)
	if err := store.ValidMailboxName(name); err != nil {
		return 0, err
	}
	if !validSpecialUse(m.SpecialUse) {
		return 0, fmt.Errorf("import mailbox %q: %w: special use %q", name, store.ErrInvalidName, m.SpecialUse)
	}
	if m.UIDNext < 1 {
		m.UIDNext = 1
	}
	err = s.importTx(ctx, accountID, func(w *wtx) error {
		var uv int64
		err := w.tx.QueryRow(ctx, `SELECT id, uidvalidity FROM mailboxes WHERE account_id = $1 AND name = $2`, accountID, name).Scan(&mailboxID, &uv)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			err = w.tx.QueryRow(ctx, `INSERT INTO mailboxes (account_id, name, special_use, uidvalidity, uidnext, highest_modseq)
				VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, accountID, name, m.SpecialUse, int64(m.UIDValidity),
				int64(m.UIDNext), int64(m.HighestModSeq)).Scan(&mailboxID)
		case err != nil:
		case uv != int64(m.UIDValidity):
			return fmt.Errorf("%w with UIDVALIDITY %d, not %d", store.ErrMailboxExists, uv, m.UIDValidity)
		default:
			_, err = w.tx.Exec(ctx, `UPDATE mailboxes SET uidnext = greatest(uidnext, $2), highest_modseq = greatest(highest_modseq, $3)
				WHERE id = $1`, mailboxID, int64(m.UIDNext), int64(m.HighestModSeq))
		}
		if err != nil {
			return err
		}
		if len(m.Expunged) > 0 {
			uids := make([]int64, len(m.Expunged))
			for i, u := range m.Expunged {
				uids[i] = int64(u)
			}
			if _, err := w.tx.Exec(ctx, `INSERT INTO tombstones (mailbox_id, uid, modseq) SELECT $1, u, $3 FROM unnest($2::bigint[]) AS u
				ON CONFLICT DO NOTHING`, mailboxID, uids, int64(m.HighestModSeq)); err != nil {
				return err
			}
		}
		_, err = w.tx.Exec(ctx, `UPDATE mailboxes SET tombstones = (SELECT count(*) FROM tombstones WHERE mailbox_id = $1),
			forgotten_modseq = greatest(forgotten_modseq, $2) WHERE id = $1`, mailboxID, int64(m.ForgottenTo))
		if err != nil {
			return err
		}
		// New mailboxes must never take an imported UIDVALIDITY.
		_, err = w.tx.Exec(ctx, `SELECT setval('uidvalidity_seq', $1) FROM uidvalidity_seq WHERE last_value < $1`, int64(m.UIDValidity))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("import mailbox %q: %w", name, err)
	}
	return mailboxID, nil
}

// ImportMessage implements store.Importer.
func (s *Store) ImportMessage(ctx context.Context, accountID, mailboxID int64, m *store.MessageInfo, body io.Reader) error {
	if err := validFlags(m.Flags); err != nil {
		return fmt.Errorf("import message %d: %w", m.UID, err)
	}
	if m.UID == 0 || m.Size < 0 {
		return fmt.Errorf("import message %d: invalid UID or size %d", m.UID, m.Size)
	}
	retrieved, saved := nullTime(m.Retrieved), nullTime(m.SaveDate)
	// Each message commits on its own: an interrupted import keeps what
	// it copied, and its rerun skips it.
	errSkip := errors.New("skip")
	err := s.write(ctx, accountID, func(w *wtx) error {
		if err := w.begin(); err != nil {
			return err
		}
		var uidnext int64
		var exists bool
		err := w.tx.QueryRow(ctx, `SELECT b.uidnext, EXISTS (SELECT 1 FROM messages WHERE mailbox_id = b.id AND uid = $3)
			FROM mailboxes b JOIN accounts a ON a.id = b.account_id
			WHERE b.id = $1 AND a.id = $2 AND a.import_state = $4`, mailboxID, accountID, int64(m.UID), importRunning).Scan(&uidnext, &exists)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("%w: id %d in an account being imported", store.ErrNoMailbox, mailboxID)
		case err != nil:
			return err
		case exists:
			return errSkip
		case int64(m.UID) >= uidnext:
			return fmt.Errorf("UID %d is not below the mailbox's UIDNEXT %d", m.UID, uidnext)
		}
		var b pgx.Batch
		var bodyID int64
		if err := w.insertBody(&b, body, m.Size, &bodyID); err != nil {
			return err
		}
		if err := w.run(&b); err != nil {
			return err
		}
		tag, err := w.tx.Exec(ctx, `INSERT INTO messages (mailbox_id, uid, body_id, modseq, created_modseq, flags, keywords, internal_date, size, structure, retrieved, saved)
			VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING`,
			mailboxID, int64(m.UID), bodyID, int64(m.ModSeq), int16(m.Flags.System), joinKeywords(m.Flags.Keywords),
			m.InternalDate.UTC(), m.Size, nonNil(m.Structure), retrieved, saved)
		if err == nil && tag.RowsAffected() == 0 {
			return errSkip // another import got there first; roll back our body
		}
		return err
	})
	if err != nil && !errors.Is(err, errSkip) {
		return fmt.Errorf("import message %d: %w", m.UID, err)
	}
	return nil
}

// FinishImport implements store.Importer. Calling it again after it
// succeeded does nothing.
func (s *Store) FinishImport(ctx context.Context, accountID int64, modSeq store.ModSeq, subscriptions []string) error {
	for i, n := range subscriptions {
		subscriptions[i] = store.CanonicalMailboxName(n)
	}
	err := s.accountTx(ctx, func(tx pgx.Tx) error {
		state, err := lockImport(ctx, tx, accountID)
		switch {
		case err != nil:
			return err
		case state == importCompleted:
			return nil
		case state != importRunning:
			return fmt.Errorf("account %d is not being imported", accountID)
		}
		if _, err := tx.Exec(ctx, `UPDATE account_state st SET
				modseq = greatest(st.modseq, $2,
					(SELECT max(highest_modseq) FROM mailboxes WHERE account_id = $1),
					(SELECT max(m.modseq) FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id WHERE b.account_id = $1),
					(SELECT max(t.modseq) FROM tombstones t JOIN mailboxes b ON b.id = t.mailbox_id WHERE b.account_id = $1)),
				bytes = (SELECT coalesce(sum(m.size), 0) FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id WHERE b.account_id = $1),
				messages = (SELECT count(*) FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id WHERE b.account_id = $1)
			WHERE st.account_id = $1`, accountID, int64(modSeq)); err != nil {
			return err
		}
		// Every mailbox's highest MODSEQ covers its messages, whatever the
		// source said.
		if _, err := tx.Exec(ctx, `UPDATE mailboxes b SET highest_modseq = greatest(b.highest_modseq,
				(SELECT max(modseq) FROM messages WHERE mailbox_id = b.id), (SELECT max(modseq) FROM tombstones WHERE mailbox_id = b.id)),
				uidnext = greatest(b.uidnext, (SELECT max(uid) + 1 FROM messages WHERE mailbox_id = b.id))
			WHERE b.account_id = $1`, accountID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO subscriptions (account_id, name) SELECT $1, n FROM unnest($2::text[]) AS n
			ON CONFLICT DO NOTHING`, accountID, subscriptions); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE accounts SET import_state = $2 WHERE id = $1`, accountID, importCompleted); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify('buzon', $1)`, strconv.FormatInt(accountID, 10))
		return err
	})
	if err != nil {
		return fmt.Errorf("finish import of account %d: %w", accountID, err)
	}
	s.hub.wake(accountID)
	return nil
}

// nullTime is t in UTC for a nullable column: nil when t is zero.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// lockImport locks the account's row for the rest of tx and returns its
// import state.
func lockImport(ctx context.Context, tx pgx.Tx, accountID int64) (int16, error) {
	var state int16
	err := tx.QueryRow(ctx, `SELECT import_state FROM accounts WHERE id = $1 FOR UPDATE`, accountID).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("%w: id %d", store.ErrNoAccount, accountID)
	}
	return state, err
}

// importing locks the account's row for the rest of tx and checks that
// the account is being imported.
func importing(ctx context.Context, tx pgx.Tx, accountID int64) error {
	state, err := lockImport(ctx, tx, accountID)
	if err == nil && state != importRunning {
		err = fmt.Errorf("account %d is not being imported", accountID)
	}
	return err
}
