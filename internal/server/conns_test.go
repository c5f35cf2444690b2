package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"syscall"
	"testing"
)

func TestConns(t *testing.T) {
	var s Conns[int]
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if !s.listen(l) {
		t.Fatal("listen before Close refused")
	}
	for c := range 3 {
		if !s.add(c) {
			t.Fatalf("add(%d) before Close refused", c)
		}
	}
	s.remove(1)
	if !s.IfOpen(func() {}) || s.Closing() {
		t.Fatal("closing before Close")
	}

	var seen []int
	s.Close(func(c int) { seen = append(seen, c) })
	if len(seen) != 2 || seen[0]+seen[1] != 2 {
		t.Errorf("Close called each for %v, want 0 and 2", seen)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("listener after Close: Accept = %v, want net.ErrClosed", err)
	}
	if !s.Closing() {
		t.Error("Closing false after Close")
	}
	if s.add(3) || s.listen(l) {
		t.Error("add or listen after Close accepted")
	}
	if s.IfOpen(func() { t.Error("IfOpen ran f after Close") }) {
		t.Error("IfOpen reported true after Close")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait with two connections left = %v, want context.Canceled", err)
	}
	s.remove(0)
	s.remove(2)
	if err := s.Wait(context.Background()); err != nil {
		t.Errorf("Wait with none left = %v", err)
	}
}

// flakyListener fails its first Accepts with errs, then accepts from its
// inner listener.
type flakyListener struct {
	net.Listener
	errs []error
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		return nil, err
	}
	return l.Listener.Accept()
}

func TestAccept(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	l := &flakyListener{Listener: inner, errs: []error{emfile, emfile}}
	dialed, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer dialed.Close()
	nc, err := Accept(l, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("Accept after two EMFILE = %v, want the connection", err)
	}
	nc.Close()
	if len(l.errs) != 0 {
		t.Errorf("%d temporary errors not retried", len(l.errs))
	}

	l.errs = []error{errors.New("broken")}
	if _, err := Accept(l, slog.New(slog.DiscardHandler)); err == nil || err.Error() != "broken" {
		t.Errorf("Accept after a lasting error = %v, want it returned", err)
	}
}
