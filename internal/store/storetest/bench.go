package storetest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

// The benchmarks take a Store on new, empty storage, so a backend can run
// them with several configurations; they leave it open.

// benchMessage is a typical message of about 4 KiB.
var benchMessage = func() []byte {
	var b bytes.Buffer
	b.WriteString("From: sender@example.org\r\nTo: rcpt@example.com\r\nSubject: benchmark\r\n" +
		"Message-ID: <bench@example.org>\r\nContent-Type: text/plain\r\n\r\n")
	for b.Len() < 4000 {
		b.WriteString("The quick brown fox jumps over the lazy dog, again and again.\r\n")
	}
	return b.Bytes()
}()

func benchAppend(ctx context.Context, ss store.Session, mailboxID int64) error {
	_, err := ss.Append(ctx, mailboxID, &store.NewMessage{
		Body: bytes.NewReader(benchMessage), Size: int64(len(benchMessage)), Structure: []byte("structure"),
	})
	return err
}

type benchEnv struct {
	b     *testing.B
	ctx   context.Context
	st    store.Store
	acct  store.Account
	ss    store.Session
	inbox int64
}

func newBenchEnv(b *testing.B, st store.Store) *benchEnv {
	ctx := b.Context()
	// A benchmark function runs several times when it uses RunParallel.
	name := fmt.Sprintf("bench%d@example.org", time.Now().UnixNano())
	acct, err := st.CreateAccount(ctx, name, store.Credentials{})
	if err != nil {
		b.Fatal(err)
	}
	ss, err := st.Open(ctx, acct.ID)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ss.Close() })
	inbox, err := ss.Mailbox(ctx, "INBOX")
	if err != nil {
		b.Fatal(err)
	}
	return &benchEnv{b, ctx, st, acct, ss, inbox.ID}
}

// fill puts n messages in the mailbox: up to 1000 appended by 16
// goroutines, the rest copies.
func (e *benchEnv) fill(mailboxID int64, n int) {
	first := min(n, 1000)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		ss, err := e.st.Open(e.ctx, e.acct.ID)
		if err != nil {
			e.b.Fatal(err)
		}
		wg.Go(func() {
			defer ss.Close()
			for next.Add(1) <= int64(first) {
				if err := benchAppend(e.ctx, ss, mailboxID); err != nil {
					e.b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for have := first; have < n; {
		more := min(have, n-have)
		if _, err := e.ss.Copy(e.ctx, mailboxID, store.NewUIDSet(store.UIDRange{Start: 1, Stop: store.UID(more)}), mailboxID); err != nil {
			e.b.Fatal(err)
		}
		have += more
	}
}

// BenchAppend measures one client appending messages one after the other.
func BenchAppend(b *testing.B, st store.Store) {
	e := newBenchEnv(b, st)
	start := time.Now()
	for b.Loop() {
		if err := benchAppend(e.ctx, e.ss, e.inbox); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
}

// BenchAppendParallel measures many clients appending to one mailbox at
// once, as deliveries to one busy account do: this is where group commit
// shows.
func BenchAppendParallel(b *testing.B, st store.Store) {
	e := newBenchEnv(b, st)
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		ss, err := st.Open(e.ctx, e.acct.ID)
		if err != nil {
			b.Error(err)
			return
		}
		defer ss.Close()
		for pb.Next() {
			if err := benchAppend(e.ctx, ss, e.inbox); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
}

// BenchStoreFlags measures changing one message's flags, in a mailbox of
// 1000.
func BenchStoreFlags(b *testing.B, st store.Store) {
	e := newBenchEnv(b, st)
	e.fill(e.inbox, 1000)
	i := 0
	for b.Loop() {
		f := store.Flags{}
		if i/1000%2 == 0 {
			f.System = store.FlagSeen
		}
		res, err := e.ss.StoreFlags(e.ctx, e.inbox, store.UIDSetOf(store.UID(i%1000+1)), store.FlagsReplace, f, 0)
		if err != nil || len(res.Updated) != 1 {
			b.Fatalf("StoreFlags: %+v %v", res, err)
		}
		i++
	}
}

// BenchStoreFlagsParallel measures many sessions of one account changing
// flags at once: writes with no body, where only the database commit
// counts.
func BenchStoreFlagsParallel(b *testing.B, st store.Store) {
	e := newBenchEnv(b, st)
	e.fill(e.inbox, 1000)
	var next atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ss, err := st.Open(e.ctx, e.acct.ID)
		if err != nil {
			b.Error(err)
			return
		}
		defer ss.Close()
		for pb.Next() {
			i := next.Add(1)
			f := store.Flags{}
			if i/1000%2 == 0 {
				f.System = store.FlagSeen
			}
			if _, err := ss.StoreFlags(e.ctx, e.inbox, store.UIDSetOf(store.UID(i%1000+1)), store.FlagsReplace, f, 0); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchMessages measures listing the flags, sizes and dates of every
// message of a mailbox of n messages.
func BenchMessages(b *testing.B, st store.Store, n int) {
	e := newBenchEnv(b, st)
	e.fill(e.inbox, n)
	start := time.Now()
	for b.Loop() {
		count := 0
		err := e.ss.Messages(e.ctx, e.inbox, store.AllUIDs(), store.FieldFlags|store.FieldSize|store.FieldDate,
			func(*store.MessageInfo) error { count++; return nil })
		if err != nil || count != n {
			b.Fatalf("Messages: %d messages, %v", count, err)
		}
	}
	b.ReportMetric(float64(b.N)*float64(n)/time.Since(start).Seconds(), "msg/s")
}

// BenchSnapshot measures SELECT's read of a mailbox of n messages, all
// read but the newest, as in a mailbox in use. With changed, another
// session appends a message, expunges the oldest and flags one before
// each read (outside the timing), as a mailbox changes between one SELECT
// of it and the next.
func BenchSnapshot(b *testing.B, st store.Store, n int, changed bool) {
	e := newBenchEnv(b, st)
	e.fill(e.inbox, n)
	read := store.NewUIDSet(store.UIDRange{Start: 1, Stop: store.UID(n - 1)})
	if _, err := e.ss.StoreFlags(e.ctx, e.inbox, read, store.FlagsAdd, store.Flags{System: store.FlagSeen}, 0); err != nil {
		b.Fatal(err)
	}
	other, err := e.st.Open(e.ctx, e.acct.ID)
	if err != nil {
		b.Fatal(err)
	}
	defer other.Close()
	oldest := store.UID(1)
	for b.Loop() {
		if changed {
			b.StopTimer()
			if err := benchAppend(e.ctx, other, e.inbox); err != nil {
				b.Fatal(err)
			}
			if _, err := other.Expunge(e.ctx, e.inbox, store.UIDSetOf(oldest), false); err != nil {
				b.Fatal(err)
			}
			oldest++
			_, err := other.StoreFlags(e.ctx, e.inbox, store.UIDSetOf(oldest), store.FlagsAdd, store.Flags{System: store.FlagFlagged}, 0)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		snap, err := e.ss.Snapshot(e.ctx, e.inbox)
		if err != nil || len(snap.UIDs) != n {
			b.Fatalf("Snapshot: %d UIDs, %v", len(snap.UIDs), err)
		}
	}
}

// BenchChanges measures catching up with 100 flag changes in a mailbox of
// 10,000 messages, as an IMAP session does after each wake-up.
func BenchChanges(b *testing.B, st store.Store) {
	e := newBenchEnv(b, st)
	e.fill(e.inbox, 10000)
	status, err := e.ss.Status(e.ctx, e.inbox)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 100 {
		_, err := e.ss.StoreFlags(e.ctx, e.inbox, store.UIDSetOf(store.UID(i*97+1)), store.FlagsAdd, store.Flags{System: store.FlagSeen}, 0)
		if err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		cs, err := e.ss.Changes(e.ctx, e.inbox, status.HighestModSeq)
		if err != nil || len(cs.Updated) != 100 {
			b.Fatalf("Changes: %d updated, %v", len(cs.Updated), err)
		}
	}
}
