package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/buzon-mail/buzon/internal/store"
)

var _ store.SecretKeeper = (*Store)(nil)

// Secret implements store.SecretKeeper. The secrets live in the database,
// so every node reads the same ones. The first call for a name inserts
// one, unless another node's insert got there first (ON CONFLICT DO
// NOTHING waits for that insert to commit or roll back), and then reads
// what is there: each statement commits on its own, so the read sees
// whichever insert won.
func (s *Store) Secret(ctx context.Context, name string) ([]byte, error) {
	v, err := s.readSecret(ctx, name)
	if errors.Is(err, pgx.ErrNoRows) {
		made := make([]byte, store.SecretSize)
		rand.Read(made) // never fails (crypto/rand, Go 1.24)
		v, err = s.keepSecret(ctx, name, made)
	}
	if err != nil {
		return nil, fmt.Errorf("secret %q: %w", name, mapErr(err))
	}
	return v, nil
}

// ImportSecret implements store.Importer.
func (s *Store) ImportSecret(ctx context.Context, name string, value []byte) error {
	if len(value) != store.SecretSize {
		return fmt.Errorf("import secret %q: %d bytes, want %d", name, len(value), store.SecretSize)
	}
	if _, err := s.keepSecret(ctx, name, value); err != nil {
		return fmt.Errorf("import secret %q: %w", name, mapErr(err))
	}
	return nil
}

// keepSecret stores value under name unless a secret of that name is
// there, and returns the one kept.
func (s *Store) keepSecret(ctx context.Context, name string, value []byte) ([]byte, error) {
	if _, err := s.pool.Exec(ctx, `INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, value); err != nil {
		return nil, err
	}
	return s.readSecret(ctx, name)
}

// Secrets implements store.SecretKeeper.
func (s *Store) Secrets(ctx context.Context) (map[string][]byte, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, value FROM secrets`)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", mapErr(err))
	}
	secrets := map[string][]byte{}
	var name string
	var v []byte
	if _, err := pgx.ForEachRow(rows, []any{&name, &v}, func() error {
		secrets[name] = v
		return nil
	}); err != nil {
		return nil, fmt.Errorf("secrets: %w", mapErr(err))
	}
	return secrets, nil
}

func (s *Store) readSecret(ctx context.Context, name string) ([]byte, error) {
	var v []byte
	if err := s.pool.QueryRow(ctx, `SELECT value FROM secrets WHERE name = $1`, name).Scan(&v); err != nil {
		return nil, err
	}
	if len(v) != store.SecretSize {
		return nil, fmt.Errorf("stored secret has %d bytes, want %d", len(v), store.SecretSize)
	}
	return v, nil
}
