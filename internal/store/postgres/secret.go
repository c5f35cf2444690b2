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
		_, err = s.pool.Exec(ctx, `INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, made)
		if err == nil {
			v, err = s.readSecret(ctx, name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("secret %q: %w", name, mapErr(err))
	}
	return v, nil
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
