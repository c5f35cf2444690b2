package fetch

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/config"
)

// waitFor polls cond until it holds; the deadline is only a guard against
// a hang, not part of what is tested.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logBuffer collects log lines for a test to read.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer // guarded by mu
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

// TestDaemon: an IMAP account hears of new mail through IDLE (its poll
// interval is an hour), while another account that cannot connect backs
// off and retries without holding it up; cancelling stops both.
func TestDaemon(t *testing.T) {
	b := startBuzon(t)
	b.deliver(t, "INBOX", testMessages(1, 3)...)
	good := b.account(t, ProtoIMAP, TLSImplicit)
	good.Name, good.Interval = "good", config.Duration(time.Hour)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := l.Addr().String()
	l.Close()
	bad := b.account(t, ProtoPOP3, TLSImplicit)
	bad.Name = "bad"
	bad.Host, bad.Port = splitAddr(t, deadAddr)
	cfg := testConfig(t, good, bad)
	cfg.Backoff, cfg.MaxBackoff = config.Duration(20*time.Millisecond), config.Duration(80*time.Millisecond)

	var logs logBuffer
	opts := testOptions(t)
	opts.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := New(cfg, opts)
	defer f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		f.Daemon(ctx)
		close(done)
	}()
	newFiles := func() int {
		entries, _ := os.ReadDir(filepath.Join(good.Maildir, "new"))
		return len(entries)
	}
	waitFor(t, "the first three messages", func() bool { return newFiles() == 3 })
	waitFor(t, "IDLE", func() bool { return logs.count(`msg="IDLE: waiting" account=good`) == 1 })
	b.deliver(t, "INBOX", testMessages(4, 4)...)
	waitFor(t, "the fourth message", func() bool { return newFiles() == 4 })
	waitFor(t, "the failing account to retry", func() bool { return logs.count(`msg="fetch failed" account=bad`) >= 3 })
	cancel()
	<-done
	checkMaildir(t, good.Maildir, [2]int{1, 4})
	if n := logs.count(`msg="IDLE: new mail" account=good`); n != 1 {
		t.Errorf("%d IDLE wake-ups logged, want 1:\n%s", n, logs.b.String())
	}
	// Both accounts' state is released.
	for _, name := range []string{"good", "bad"} {
		s, err := openState(cfg.StateDir, name, "")
		if err != nil {
			t.Errorf("after the daemon stopped: %v", err)
			continue
		}
		s.Close()
	}
}

func TestBackoff(t *testing.T) {
	var got []time.Duration
	d := time.Duration(0)
	for range 6 {
		d = nextBackoff(d, time.Second, 10*time.Second)
		got = append(got, d)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("backoff %v, want %v", got, want)
		}
	}
}

// TestIdleAfterRun: mail that arrives after a run looked at the folder
// but before IDLE starts is fetched at once: its EXISTS goes to the
// SELECT before IDLE, so idle must notice it there.
func TestIdleAfterRun(t *testing.T) {
	b := startBuzon(t)
	b.deliver(t, "INBOX", testMessages(1, 1)...)
	a := b.account(t, ProtoIMAP, TLSImplicit)
	cfg := testConfig(t, a)
	f := New(cfg, testOptions(t))
	defer f.Close()
	ctx := context.Background()
	w, err := f.newWorker(ctx, &cfg.Accounts[0])
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	if s := w.run(ctx); s.Err != nil || s.Fetched != 1 {
		t.Fatalf("run: %v", s)
	}
	b.deliver(t, "INBOX", testMessages(2, 2)...)
	idled := make(chan bool, 1)
	go func() { idled <- w.idle(ctx, time.Hour) }()
	select {
	case ok := <-idled:
		if !ok {
			t.Fatal("idle: the server offers IDLE")
		}
	case <-time.After(time.Minute):
		t.Fatal("idle waited for mail that had already come")
	}
	if s := w.run(ctx); s.Err != nil || s.Fetched != 1 {
		t.Fatalf("second run: %v", s)
	}
	checkMaildir(t, a.Maildir, [2]int{1, 2})
}

// TestIdleDropped: a server that closes the connection during IDLE, as
// servers do with clients idle for long, wakes the daemon up at once; the
// next run connects again and fetches what came meanwhile.
func TestIdleDropped(t *testing.T) {
	fi := startFakeIMAP(t, &fakeIMAP{idle: true})
	fi.add("INBOX", testMessages(1, 1)...)
	a := fakeIMAPAccount(t, fi)
	cfg := testConfig(t, a)
	var logs logBuffer
	opts := testOptions(t)
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	f := New(cfg, opts)
	defer f.Close()
	ctx := context.Background()
	w, err := f.newWorker(ctx, &cfg.Accounts[0])
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	if s := w.run(ctx); s.Err != nil || s.Fetched != 1 {
		t.Fatalf("run: %v", s)
	}
	fi.set(func() { fi.dropIdle = true })
	idled := make(chan bool, 1)
	go func() { idled <- w.idle(ctx, time.Hour) }()
	select {
	case ok := <-idled:
		if !ok {
			t.Fatal("idle: the server offers IDLE")
		}
	case <-time.After(time.Minute):
		t.Fatal("idle went on after the server closed the connection")
	}
	if w.imap != nil {
		t.Error("the closed connection is kept for the next run")
	}
	if n := logs.count("level=WARN"); n != 0 {
		t.Errorf("%d warnings for a server ending an idle connection:\n%s", n, logs.b.String())
	}
	fi.add("INBOX", testMessage(2, 0))
	if s := w.run(ctx); s.Err != nil || s.Fetched != 1 {
		t.Fatalf("run after the drop: %v", s)
	}
	checkMaildir(t, a.Maildir, [2]int{1, 2})
}
