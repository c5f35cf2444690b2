package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"

	"github.com/buzon-mail/buzon/internal/store"
)

var _ store.SecretKeeper = (*Store)(nil)

// Secret implements store.SecretKeeper. The secrets live in accounts.db,
// so every process on the data folder reads the same ones. The first call
// for a name writes it in a write transaction (BEGIN IMMEDIATE: one writer
// at a time across processes); a writer that finds the name taken keeps
// the value there.
func (s *Store) Secret(ctx context.Context, name string) ([]byte, error) {
	v, err := readSecret(ctx, s.adb, name)
	if errors.Is(err, sql.ErrNoRows) {
		made := make([]byte, store.SecretSize)
		rand.Read(made) // never fails (crypto/rand, Go 1.24)
		err = s.writeAccounts(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO secret (name, value) VALUES (?, ?)
				ON CONFLICT (name) DO NOTHING`, name, made)
			if err != nil {
				return err
			}
			v, err = readSecret(ctx, tx, name)
			return err
		})
	}
	if err != nil {
		return nil, fmt.Errorf("secret %q: %w", name, mapErr(err))
	}
	return v, nil
}

func readSecret(ctx context.Context, q queryer, name string) ([]byte, error) {
	var v []byte
	if err := q.QueryRowContext(ctx, `SELECT value FROM secret WHERE name = ?`, name).Scan(&v); err != nil {
		return nil, err
	}
	if len(v) != store.SecretSize {
		return nil, fmt.Errorf("stored secret has %d bytes, want %d", len(v), store.SecretSize)
	}
	return v, nil
}

// Secrets implements store.SecretKeeper.
func (s *Store) Secrets(ctx context.Context) (map[string][]byte, error) {
	rows, err := s.adb.QueryContext(ctx, `SELECT name, value FROM secret`)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", mapErr(err))
	}
	defer rows.Close()
	secrets := map[string][]byte{}
	for rows.Next() {
		var name string
		var v []byte
		if err := rows.Scan(&name, &v); err != nil {
			return nil, fmt.Errorf("secrets: %w", mapErr(err))
		}
		secrets[name] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("secrets: %w", mapErr(err))
	}
	return secrets, nil
}
