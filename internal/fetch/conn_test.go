package fetch

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// TestWatchedConnDeadlines: with noDeadlines (the IMAP connection), a
// deadline the client library sets, 30 s for a response or 5 minutes for a
// message however large, does not cut off data still arriving; the
// watchdog alone ends a connection that stalls, after the account's
// timeout.
func TestWatchedConnDeadlines(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	w := watch(a, time.Hour)
	defer w.Close()
	w.noDeadlines = true
	// As the library does when it finds a response too slow.
	if err := w.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	go b.Write([]byte("late data"))
	buf := make([]byte, len("late data"))
	if _, err := io.ReadFull(w, buf); err != nil {
		t.Fatalf("read past the library's deadline: %v", err)
	}

	c, d := net.Pipe()
	defer d.Close()
	stalled := watch(c, 50*time.Millisecond)
	defer stalled.Close()
	stalled.noDeadlines = true
	err := stalled.do(func() error { _, err := stalled.Read(buf); return err })
	if !errors.Is(err, ErrTimeout) {
		t.Errorf("a stalled read: %v, want ErrTimeout", err)
	}
}
