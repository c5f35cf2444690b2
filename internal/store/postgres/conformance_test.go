package postgres

import (
	"bytes"
	"io"
	"sync"
	"testing"

	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/postgres/pgtest"
	"github.com/buzon-mail/buzon/internal/store/storetest"
)

// TestConformance runs the suite every backend passes. Each test gets a
// database of its own; the Stores a test opens on it play separate nodes.
func TestConformance(t *testing.T) {
	storetest.Run(t, opener(Config{}))
}

// TestForgetting: with few expunges kept per mailbox, Changes and Snapshot
// stay right across those forgotten.
func TestForgetting(t *testing.T) {
	storetest.Forgetting(t, opener(Config{KeptExpunges: 2}), 2)
}

// opener returns the function the suite opens Stores with: the first for
// a test on a new database, the others on the same one.
func opener(cfg Config) func(t *testing.T) store.Store {
	var mu sync.Mutex
	dsns := map[*testing.T]string{} // guarded by mu; the tests run in parallel
	return func(t *testing.T) store.Store {
		mu.Lock()
		dsn, ok := dsns[t]
		mu.Unlock()
		if !ok {
			dsn = pgtest.Start(t)
			mu.Lock()
			dsns[t] = dsn
			mu.Unlock()
		}
		c := cfg
		c.DSN = dsn
		return openConfig(t, c)
	}
}

// benchStore opens a Store on a new database for a benchmark.
func benchStore(b *testing.B) *Store {
	s := openTest(b, pgtest.Start(b))
	b.Cleanup(func() { s.Close() })
	b.ResetTimer() // creating the database takes seconds
	return s
}

// The benchmarks shared with every backend (package storetest), so the
// numbers compare with the embedded store's.

func BenchmarkAppend(b *testing.B)         { storetest.BenchAppend(b, benchStore(b)) }
func BenchmarkAppendParallel(b *testing.B) { storetest.BenchAppendParallel(b, benchStore(b)) }
func BenchmarkStoreFlags(b *testing.B)     { storetest.BenchStoreFlags(b, benchStore(b)) }
func BenchmarkMessages(b *testing.B)       { storetest.BenchMessages(b, benchStore(b), 100000) }
func BenchmarkChanges(b *testing.B)        { storetest.BenchChanges(b, benchStore(b)) }
func BenchmarkSnapshot1000(b *testing.B)   { storetest.BenchSnapshot(b, benchStore(b), 1000, false) }
func BenchmarkSnapshot100k(b *testing.B)   { storetest.BenchSnapshot(b, benchStore(b), 100000, false) }
func BenchmarkSnapshot100kChanged(b *testing.B) {
	storetest.BenchSnapshot(b, benchStore(b), 100000, true)
}

// BenchmarkBodyRead20MB reads a 20 MB message through Body.ReadAt in
// 64 KiB pieces, as a FETCH BODY[] writes it out.
func BenchmarkBodyRead20MB(b *testing.B) {
	ctx := b.Context()
	s := benchStore(b)
	a, err := s.CreateAccount(ctx, "bench@example.org", store.Credentials{})
	if err != nil {
		b.Fatal(err)
	}
	ss, err := s.Open(ctx, a.ID)
	if err != nil {
		b.Fatal(err)
	}
	inbox, err := ss.Mailbox(ctx, "INBOX")
	if err != nil {
		b.Fatal(err)
	}
	const size = 20 << 20
	res, err := ss.Append(ctx, inbox.ID, &store.NewMessage{Body: bytes.NewReader(fakeBody(size)), Size: size})
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	b.SetBytes(size)
	for b.Loop() {
		body, err := ss.OpenBody(ctx, inbox.ID, res.UID)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(io.Discard, io.NewSectionReader(body, 0, body.Size()), buf); err != nil {
			b.Fatal(err)
		}
		body.Close()
	}
}
