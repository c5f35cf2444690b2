package postgres

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// wire counts what a Store sends to PostgreSQL, read off the protocol
// between them by a proxy on a unix socket of its own: what the store
// costs the database, whatever the machine's load.
type wire struct {
	trips      atomic.Int64 // round trips: Sync and simple Query messages
	statements atomic.Int64 // Execute and simple Query messages
}

// wireCount is what a wire counted, and the transactions that wrote
// (counted apart, see nextXID).
type wireCount struct{ trips, statements, commits int64 }

func (c wireCount) String() string {
	return fmt.Sprintf("%d round trips, %d statements, %d writing commits", c.trips, c.statements, c.commits)
}

func (w *wire) count() wireCount {
	return wireCount{trips: w.trips.Load(), statements: w.statements.Load()}
}

// since is what w counted after before.
func (w *wire) since(before wireCount) wireCount {
	now := w.count()
	return wireCount{trips: now.trips - before.trips, statements: now.statements - before.statements}
}

// proxyWire starts a proxy to the unix socket database dsn names and
// returns a DSN that reaches the database through it.
func proxyWire(t testing.TB, dsn string) (string, *wire) {
	t.Helper()
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(cfg.Host, fmt.Sprintf(".s.PGSQL.%d", cfg.Port))
	// A unix socket's path is short (108 bytes): not under t.TempDir.
	dir, err := os.MkdirTemp("", "wire")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ln, err := net.Listen("unix", filepath.Join(dir, fmt.Sprintf(".s.PGSQL.%d", cfg.Port)))
	if err != nil {
		t.Fatal(err)
	}
	w := &wire{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn // closed when the test ends, so their goroutines end
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("unix", target)
			if err != nil {
				client.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, client, server)
			mu.Unlock()
			wg.Add(2)
			go func() {
				defer wg.Done()
				io.Copy(client, server)
				client.Close()
			}()
			go func() {
				defer wg.Done()
				w.relay(server, client)
				server.Close()
			}()
		}
	}()
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", dir, cfg.Port, cfg.User, cfg.Database), w
}

// relay copies the client's messages to the server, counting them. The
// first message is the startup message, which has no type byte
// (PostgreSQL protocol 3.0, 55.7).
func (w *wire) relay(server io.Writer, client io.Reader) {
	r := bufio.NewReader(client)
	typed := false
	var head [5]byte
	for {
		h := head[:5]
		if !typed {
			h = head[1:5]
		}
		if _, err := io.ReadFull(r, h); err != nil {
			return
		}
		n := int64(binary.BigEndian.Uint32(head[1:5])) - 4
		if typed {
			switch head[0] {
			case 'S': // Sync
				w.trips.Add(1)
			case 'E': // Execute
				w.statements.Add(1)
			case 'Q': // simple Query
				w.trips.Add(1)
				w.statements.Add(1)
			}
		}
		if _, err := server.Write(h); err != nil {
			return
		}
		if _, err := io.CopyN(server, r, n); err != nil {
			return
		}
		typed = true
	}
}
