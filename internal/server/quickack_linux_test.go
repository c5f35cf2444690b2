package server

import (
	"io"
	"net"
	"syscall"
	"testing"
)

// quickAckOn reads the connection's quick-ACK mode: 0 while the kernel
// delays its ACKs (an exchange of requests and answers puts it there).
func quickAckOn(t *testing.T, tcp *net.TCPConn) int {
	t.Helper()
	raw, err := tcp.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var opErr error
	if err := raw.Control(func(fd uintptr) {
		v, opErr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK)
	}); err != nil || opErr != nil {
		t.Fatal(err, opErr)
	}
	return v
}

// TestQuickAck: after a request and its answer the server's side delays
// its ACKs; QuickAck, through the wrappers a listener adds, switches that
// off.
func TestQuickAck(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	nc, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	tcp := nc.(*net.TCPConn)
	buf := make([]byte, 1)
	// A prompt answer to a request puts the connection in delayed-ACK
	// mode; on a busy machine the answer may come too late for that, so
	// try a few times.
	for i := 0; i < 20 && quickAckOn(t, tcp) != 0; i++ {
		client.Write([]byte("x"))
		if _, err := io.ReadFull(nc, buf); err != nil {
			t.Fatal(err)
		}
		nc.Write([]byte("y"))
		if _, err := io.ReadFull(client, buf); err != nil {
			t.Fatal(err)
		}
	}
	if quickAckOn(t, tcp) != 0 {
		t.Skip("the kernel never delayed its ACKs here")
	}
	QuickAck(wrapped{nc})
	if quickAckOn(t, tcp) != 1 {
		t.Error("QuickAck left the connection delaying its ACKs")
	}
}
