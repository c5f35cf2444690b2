package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/buzon-mail/buzon/internal/store"
)

// addressFree checks, in a write transaction on accounts.db, that neither
// an account nor an alias has the name: the two share one space of
// addresses, which mail and logins are looked up in.
func addressFree(ctx context.Context, tx *sql.Tx, name string) error {
	var kind string
	err := tx.QueryRowContext(ctx, `SELECT 'account' FROM account WHERE name = ?1
		UNION ALL SELECT 'alias' FROM alias WHERE name = ?1`, name).Scan(&kind)
	switch {
	case errors.Is(err, sql.ErrNoRows):
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
	err := s.writeAccounts(ctx, func(tx *sql.Tx) error {
		if err := addressFree(ctx, tx, alias); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO alias (name, account) SELECT ?, id FROM account WHERE name = ?`, alias, account)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		return noAccount(ctx, tx, account)
	})
	if err != nil {
		return fmt.Errorf("add alias %s of %s: %w", alias, account, err)
	}
	return nil
}

// noAccount is the error for an alias's target that is no account,
// saying so when it is an alias.
func noAccount(ctx context.Context, q queryer, name string) error {
	var target string
	err := q.QueryRowContext(ctx, `SELECT account.name FROM alias JOIN account ON account.id = alias.account
		WHERE alias.name = ?`, name).Scan(&target)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%w: %s", store.ErrNoAccount, name)
	case err != nil:
		return err
	}
	return fmt.Errorf("%w: %s is an alias of %s, and an alias names an account", store.ErrNoAccount, name, target)
}

// DeleteAlias implements store.Store.
func (s *Store) DeleteAlias(ctx context.Context, alias string) error {
	alias = store.CanonicalAccountName(alias)
	err := s.writeAccounts(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM alias WHERE name = ?`, alias)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("%w: %s", store.ErrNoAlias, alias)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete alias %s: %w", alias, err)
	}
	return nil
}

// Aliases implements store.Store.
func (s *Store) Aliases(ctx context.Context) ([]store.Alias, error) {
	rows, err := s.adb.QueryContext(ctx, `SELECT alias.name, account.name FROM alias
		JOIN account ON account.id = alias.account ORDER BY alias.name`)
	if err != nil {
		return nil, fmt.Errorf("list aliases: %w", mapErr(err))
	}
	defer rows.Close()
	var aliases []store.Alias
	for rows.Next() {
		var a store.Alias
		if err := rows.Scan(&a.Name, &a.Account); err != nil {
			return nil, fmt.Errorf("list aliases: %w", mapErr(err))
		}
		aliases = append(aliases, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list aliases: %w", mapErr(err))
	}
	return aliases, nil
}

// LookupAddress implements store.Store.
func (s *Store) LookupAddress(ctx context.Context, name string) (store.Account, error) {
	name = store.CanonicalAccountName(name)
	rows, err := s.adb.QueryContext(ctx, selectAccount+` WHERE id IN
		(SELECT id FROM account WHERE name = ?1 UNION ALL SELECT account FROM alias WHERE name = ?1)`, name)
	if err != nil {
		return store.Account{}, fmt.Errorf("look up address %s: %w", name, mapErr(err))
	}
	accts, err := scanAccounts(rows)
	if err != nil {
		return store.Account{}, fmt.Errorf("look up address %s: %w", name, mapErr(err))
	}
	if len(accts) == 0 {
		return store.Account{}, fmt.Errorf("%w: no account or alias %s", store.ErrNoAccount, name)
	}
	return accts[0], nil
}
