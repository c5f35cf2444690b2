package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"

	"github.com/jackc/pgx/v5"

	"github.com/buzon-mail/buzon/internal/store"
)

// addressLockKey is the pg_advisory_xact_lock key of an address: the
// writes that give a name to an account or an alias hold it, so that two
// nodes cannot give one name to both at once, which neither table's
// unique index sees.
func addressLockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("buzon address\x00"))
	h.Write([]byte(name))
	return int64(h.Sum64())
}

// addressFree takes the name's address lock for the rest of tx and
// checks that neither an account (one being imported included) nor an
// alias has the name. The check is a statement of its own, after the
// lock: in READ COMMITTED, only a statement begun once the lock is held
// sees what the holder before committed.
func addressFree(ctx context.Context, tx pgx.Tx, name string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, addressLockKey(name)); err != nil {
		return err
	}
	var kind string
	err := tx.QueryRow(ctx, `SELECT 'account' FROM accounts WHERE name = $1
		UNION ALL SELECT 'alias' FROM aliases WHERE name = $1`, name).Scan(&kind)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil
	case err != nil:
		return err
	case kind == "alias":
		return fmt.Errorf("%w: %s", store.ErrAliasExists, name)
	}
	return fmt.Errorf("%w: %s", store.ErrAccountExists, name)
}

// AddAlias implements store.Store.
func (s *Store) AddAlias(ctx context.Context, alias, account string) error {
	alias, account = store.CanonicalAccountName(alias), store.CanonicalAccountName(account)
	if err := store.ValidAccountName(alias); err != nil {
		return err
	}
	err := s.accountTx(ctx, func(tx pgx.Tx) error {
		if err := addressFree(ctx, tx, alias); err != nil {
			return err
		}
		// The foreign key holds the account until the commit, so a
		// DeleteAccount meanwhile waits, and then takes the alias too;
		// one that deleted it after the INSERT's snapshot breaks the key.
		tag, err := tx.Exec(ctx, `INSERT INTO aliases (name, account_id)
			SELECT $1, id FROM accounts WHERE name = $2 AND import_state <> $3`, alias, account, importRunning)
		switch {
		case isForeignKeyViolation(err):
			return fmt.Errorf("%w: %s", store.ErrNoAccount, account)
		case err != nil || tag.RowsAffected() == 1:
			return err
		}
		var target string
		err = tx.QueryRow(ctx, `SELECT a.name FROM aliases l JOIN accounts a ON a.id = l.account_id
			WHERE l.name = $1`, account).Scan(&target)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("%w: %s", store.ErrNoAccount, account)
		case err != nil:
			return err
		}
		return fmt.Errorf("%w: %s is an alias of %s, and an alias names an account", store.ErrNoAccount, account, target)
	})
	if err != nil {
		return fmt.Errorf("add alias %s of %s: %w", alias, account, err)
	}
	return nil
}

// DeleteAlias implements store.Store.
func (s *Store) DeleteAlias(ctx context.Context, alias string) error {
	alias = store.CanonicalAccountName(alias)
	tag, err := s.pool.Exec(ctx, `DELETE FROM aliases WHERE name = $1`, alias)
	switch {
	case err != nil:
		return fmt.Errorf("delete alias %s: %w", alias, mapErr(err))
	case tag.RowsAffected() == 0:
		return fmt.Errorf("delete alias %s: %w", alias, store.ErrNoAlias)
	}
	return nil
}

// Aliases implements store.Store.
func (s *Store) Aliases(ctx context.Context) ([]store.Alias, error) {
	rows, err := s.pool.Query(ctx, `SELECT l.name, a.name FROM aliases l JOIN accounts a ON a.id = l.account_id
		ORDER BY l.name COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("list aliases: %w", mapErr(err))
	}
	aliases, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Alias, error) {
		var a store.Alias
		err := r.Scan(&a.Name, &a.Account)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("list aliases: %w", mapErr(err))
	}
	return aliases, nil
}

// LookupAddress implements store.Store. Names are unique across accounts
// and aliases, so at most one of the two subqueries finds one.
func (s *Store) LookupAddress(ctx context.Context, name string) (store.Account, error) {
	name = store.CanonicalAccountName(name)
	accts, err := s.queryAccounts(ctx, selectAccount+` WHERE import_state <> 1 AND id =
		coalesce((SELECT id FROM accounts WHERE name = $1), (SELECT account_id FROM aliases WHERE name = $1))`, name)
	if err != nil {
		return store.Account{}, fmt.Errorf("look up address %s: %w", name, err)
	}
	if len(accts) == 0 {
		return store.Account{}, fmt.Errorf("%w: no account or alias %s", store.ErrNoAccount, name)
	}
	return accts[0], nil
}
