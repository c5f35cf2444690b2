package postgres

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/buzon-mail/buzon/internal/store/postgres/pgtest"
)

// BenchmarkBodyStorage compares the two ways PostgreSQL can hold message
// bodies, for a typical (30 KB) and a large (20 MB) message: bytea in a
// table of its own (TOAST, stored uncompressed so that substring reads only
// the chunks it needs) and large objects (pg_largeobject, lo_from_bytea and
// lo_get). Each iteration writes one body in a committed transaction, then
// reads it back in 256 KiB slices as a FETCH would. The numbers decided the
// schema; see the package documentation.
func BenchmarkBodyStorage(b *testing.B) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.Start(b))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `
		CREATE TABLE bench_bytea (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, data bytea NOT NULL);
		ALTER TABLE bench_bytea ALTER COLUMN data SET STORAGE EXTERNAL;
		CREATE TABLE bench_chunk (id bigint NOT NULL, seq int NOT NULL, data bytea NOT NULL, PRIMARY KEY (id, seq));
		ALTER TABLE bench_chunk ALTER COLUMN data SET STORAGE EXTERNAL;
		CREATE SEQUENCE bench_chunk_id;
		CREATE TABLE bench_lo (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, oid oid NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	const slice = 256 << 10
	type method struct {
		name  string
		write func(body []byte) (int64, error)
		read  func(id, off int64, n int) ([]byte, error)
	}
	methods := []method{
		{"bytea",
			func(body []byte) (id int64, err error) {
				err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
					return tx.QueryRow(ctx, `INSERT INTO bench_bytea (data) VALUES ($1) RETURNING id`, body).Scan(&id)
				})
				return id, err
			},
			func(id, off int64, n int) (p []byte, err error) {
				err = conn.QueryRow(ctx, `SELECT substring(data FROM $2 FOR $3) FROM bench_bytea WHERE id = $1`, id, off+1, n).Scan(&p)
				return p, err
			}},
		{"bytea-1MiB-rows",
			func(body []byte) (id int64, err error) {
				err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
					if err := tx.QueryRow(ctx, `SELECT nextval('bench_chunk_id')`).Scan(&id); err != nil {
						return err
					}
					for seq, off := 0, 0; off < len(body); seq, off = seq+1, off+1<<20 {
						if _, err := tx.Exec(ctx, `INSERT INTO bench_chunk VALUES ($1, $2, $3)`, id, seq, body[off:min(off+1<<20, len(body))]); err != nil {
							return err
						}
					}
					return nil
				})
				return id, err
			},
			func(id, off int64, n int) (p []byte, err error) {
				err = conn.QueryRow(ctx, `SELECT substring(data FROM $3 FOR $4) FROM bench_chunk WHERE id = $1 AND seq = $2`, id, off>>20, off&(1<<20-1)+1, n).Scan(&p)
				return p, err
			}},
		{"largeobject",
			func(body []byte) (id int64, err error) {
				err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
					return tx.QueryRow(ctx, `INSERT INTO bench_lo (oid) VALUES (lo_from_bytea(0, $1)) RETURNING id`, body).Scan(&id)
				})
				return id, err
			},
			func(id, off int64, n int) (p []byte, err error) {
				err = conn.QueryRow(ctx, `SELECT lo_get(oid, $2, $3) FROM bench_lo WHERE id = $1`, id, off, n).Scan(&p)
				return p, err
			}},
	}
	for _, size := range []int{30 << 10, 20 << 20} {
		body := fakeBody(size)
		for _, m := range methods {
			b.Run(fmt.Sprintf("%s/%dKB/write", m.name, size>>10), func(b *testing.B) {
				b.SetBytes(int64(size))
				for b.Loop() {
					if _, err := m.write(body); err != nil {
						b.Fatal(err)
					}
				}
			})
			id, err := m.write(body)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("%s/%dKB/read", m.name, size>>10), func(b *testing.B) {
				b.SetBytes(int64(size))
				for b.Loop() {
					for off := 0; off < size; off += slice {
						p, err := m.read(id, int64(off), min(slice, size-off))
						if err != nil || len(p) != min(slice, size-off) {
							b.Fatalf("read at %d: %d bytes, %v", off, len(p), err)
						}
					}
				}
			})
		}
	}
	var bytea, chunk, lo int64
	if err := conn.QueryRow(ctx, `SELECT pg_total_relation_size('bench_bytea'), pg_total_relation_size('bench_chunk'), pg_total_relation_size('pg_largeobject')`).Scan(&bytea, &chunk, &lo); err == nil {
		b.Logf("on disk: bytea %d MB, 1 MiB rows %d MB, pg_largeobject %d MB", bytea>>20, chunk>>20, lo>>20)
	}
}

// fakeBody returns a message of n bytes shaped like mail with an
// attachment: CRLF lines of base64 of random bytes, which compress poorly,
// as real attachments do.
func fakeBody(n int) []byte {
	raw := make([]byte, n)
	rand.Read(raw)
	enc := base64.StdEncoding.EncodeToString(raw)
	out := make([]byte, 0, n+n/38)
	out = append(out, "From: a@example.org\r\nTo: b@example.org\r\nSubject: test\r\n\r\n"...)
	for i := 0; len(out) < n; i += 76 {
		line := enc[i:min(i+76, len(enc))]
		out = append(out, line...)
		out = append(out, "\r\n"...)
	}
	return out[:n]
}
