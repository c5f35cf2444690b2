package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/buzon-mail/buzon/internal/store"
)

// CreateAccount implements store.Store.
func (s *Store) CreateAccount(ctx context.Context, name string, cred store.Credentials) (store.Account, error) {
	name = store.CanonicalAccountName(name)
	if err := store.ValidAccountName(name); err != nil {
		return store.Account{}, err
	}
	acct := store.Account{Name: name, Credentials: cred, Created: time.Now().UTC().Truncate(time.Microsecond)}
	err := s.accountTx(ctx, func(tx pgx.Tx) error {
		if err := addressFree(ctx, tx, name); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `INSERT INTO accounts (name, password_hash, scram_sha256, created)
			VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING RETURNING id`,
			name, cred.PasswordHash, cred.SCRAMSHA256, acct.Created).Scan(&acct.ID)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: %s", store.ErrAccountExists, name)
		}
		if err != nil {
			return err
		}
		mbs := append([]store.StandardMailbox{{Name: "INBOX"}}, store.StandardMailboxes()...)
		names := make([]string, len(mbs))
		uses := make([]string, len(mbs))
		for i, m := range mbs {
			names[i], uses[i] = m.Name, m.SpecialUse
		}
		if _, err := tx.Exec(ctx, `INSERT INTO mailboxes (account_id, name, special_use, uidvalidity)
			SELECT $1, n, u, nextval('uidvalidity_seq') FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS m(n, u, o) ORDER BY o`,
			acct.ID, names, uses); err != nil {
			return err
		}
		// The standard mailboxes start subscribed, as clients expect to
		// see them in LSUB.
		if _, err := tx.Exec(ctx, `INSERT INTO subscriptions (account_id, name) SELECT $1, unnest($2::text[])`, acct.ID, names); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO account_state (account_id) VALUES ($1)`, acct.ID)
		return err
	})
	if err != nil {
		return store.Account{}, fmt.Errorf("create account %s: %w", name, err)
	}
	return acct, nil
}

// accountTx runs fn in a transaction on the account directory.
func (s *Store) accountTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := s.begin(ctx, pgx.TxOptions{})
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := fn(tx); err != nil {
		return mapErr(err)
	}
	return mapErr(tx.Commit(ctx))
}

// DeleteAccount implements store.Store. The account's mail and aliases go
// with it in one transaction; its Watchers fire, and its open Sessions then fail.
func (s *Store) DeleteAccount(ctx context.Context, name string) error {
	name = store.CanonicalAccountName(name)
	var id int64
	err := s.accountTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `DELETE FROM accounts WHERE name = $1 RETURNING id`, name).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: %s", store.ErrNoAccount, name)
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify('buzon', $1)`, strconv.FormatInt(id, 10))
		return err
	})
	if err != nil {
		return fmt.Errorf("delete account %s: %w", name, err)
	}
	s.hub.wake(id)
	return nil
}

const selectAccount = `SELECT id, name, password_hash, scram_sha256, max_bytes, max_messages, created FROM accounts`

// LookupAccount implements store.Store. An account being imported is not
// found until its import finishes.
func (s *Store) LookupAccount(ctx context.Context, name string) (store.Account, error) {
	name = store.CanonicalAccountName(name)
	accts, err := s.queryAccounts(ctx, selectAccount+` WHERE name = $1 AND import_state <> 1`, name)
	if err != nil {
		return store.Account{}, fmt.Errorf("look up account %s: %w", name, err)
	}
	if len(accts) == 0 {
		return store.Account{}, fmt.Errorf("%w: %s", store.ErrNoAccount, name)
	}
	return accts[0], nil
}

// Accounts implements store.Store, leaving out accounts being imported.
func (s *Store) Accounts(ctx context.Context) ([]store.Account, error) {
	accts, err := s.queryAccounts(ctx, selectAccount+` WHERE import_state <> 1 ORDER BY name COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	return accts, nil
}

func (s *Store) queryAccounts(ctx context.Context, query string, args ...any) ([]store.Account, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, mapErr(err)
	}
	accts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Account, error) {
		var a store.Account
		err := r.Scan(&a.ID, &a.Name, &a.Credentials.PasswordHash, &a.Credentials.SCRAMSHA256,
			&a.Quota.MaxBytes, &a.Quota.MaxMessages, &a.Created)
		a.Created = a.Created.UTC()
		return a, err
	})
	return accts, mapErr(err)
}

// SetCredentials implements store.Store.
func (s *Store) SetCredentials(ctx context.Context, name string, cred store.Credentials) error {
	name = store.CanonicalAccountName(name)
	if err := s.updateAccount(ctx, name, `UPDATE accounts SET password_hash = $2, scram_sha256 = $3 WHERE name = $1`,
		cred.PasswordHash, cred.SCRAMSHA256); err != nil {
		return fmt.Errorf("set credentials of %s: %w", name, err)
	}
	return nil
}

// SetQuota implements store.Store. Appends that already hold the account's
// lock finish under the old quota.
func (s *Store) SetQuota(ctx context.Context, name string, q store.Quota) error {
	name = store.CanonicalAccountName(name)
	if q.MaxBytes < 0 || q.MaxMessages < 0 {
		return fmt.Errorf("set quota of %s: negative limit", name)
	}
	if err := s.updateAccount(ctx, name, `UPDATE accounts SET max_bytes = $2, max_messages = $3 WHERE name = $1`,
		q.MaxBytes, q.MaxMessages); err != nil {
		return fmt.Errorf("set quota of %s: %w", name, err)
	}
	return nil
}

func (s *Store) updateAccount(ctx context.Context, name, query string, args ...any) error {
	tag, err := s.pool.Exec(ctx, query, append([]any{name}, args...)...)
	if err != nil {
		return mapErr(err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: %s", store.ErrNoAccount, name)
	}
	return nil
}

// Open implements store.Store. A Session holds no connection: each call
// takes one from the pool for its duration.
func (s *Store) Open(ctx context.Context, accountID int64) (store.Session, error) {
	// The same round trip tells which Sieve script is active, without
	// its content: a delivery asks next (ActiveSieveScriptInfo), and for
	// most accounts the answer is none.
	ss := &session{s: s, id: accountID, opened: time.Now()}
	var ok bool
	var name *string
	var size *int64
	var modified *time.Time
	err := s.pool.QueryRow(ctx, `SELECT a.id IS NOT NULL, sc.name, octet_length(sc.content), sc.modified
		FROM (SELECT 1) one
		LEFT JOIN accounts a ON a.id = $1 AND a.import_state <> 1
		LEFT JOIN sieve_scripts sc ON sc.account_id = a.id AND sc.active`, accountID).Scan(&ok, &name, &size, &modified)
	if err != nil {
		return nil, fmt.Errorf("open account %d: %w", accountID, mapErr(err))
	}
	if !ok {
		return nil, fmt.Errorf("open account %d: %w", accountID, store.ErrNoAccount)
	}
	if name != nil {
		ss.openActive = &store.SieveScript{Name: *name, Size: *size, Active: true, Modified: modified.UTC()}
	}
	return ss, nil
}
