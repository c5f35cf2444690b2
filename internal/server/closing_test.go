package server

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
)

type wrapped struct{ net.Conn }

// tcpPair returns the two ends of a loopback TCP connection, closed when
// the test ends.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}

func (w wrapped) NetConn() net.Conn { return w.Conn }

// TestCloseWrite: under TLS and a listener's wrapper, CloseWrite ends the
// server's half: the client reads to EOF while the server still reads
// what the client sends.
func TestCloseWrite(t *testing.T) {
	client, accepted := tcpPair(t)

	if TCPConn(wrapped{accepted}) != accepted {
		t.Fatal("TCPConn did not find the TCP connection under a wrapper")
	}
	if TCPConn(tls.Server(wrapped{accepted}, &tls.Config{})) != accepted {
		t.Fatal("TCPConn did not find the TCP connection under TLS and a wrapper")
	}
	if TCPConn(wrapped{&net.UnixConn{}}) != nil {
		t.Fatal("TCPConn found a TCP connection under a unix socket")
	}

	srv := wrapped{accepted}
	io.WriteString(srv, "* BYE\r\n")
	CloseWrite(srv)
	got, err := io.ReadAll(client)
	if err != nil || string(got) != "* BYE\r\n" {
		t.Fatalf("client read %q, %v; want the BYE, then EOF", got, err)
	}
	io.WriteString(client, "late\r\n")
	buf := make([]byte, 6)
	if _, err := io.ReadFull(srv, buf); err != nil || string(buf) != "late\r\n" {
		t.Fatalf("server read %q, %v after its half-close", buf, err)
	}
}

// TestLingeringClose: the client reads the server's last answer and then
// EOF although it was still sending when the server closed: its input
// was read and dropped first, so no reset overtook the answer.
func TestLingeringClose(t *testing.T) {
	client, srv := tcpPair(t)
	// Unread input when the server is done: the client pipelined more.
	if _, err := io.WriteString(client, "NOOP\r\nNOOP\r\n"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := io.ReadFull(srv, buf); err != nil {
		t.Fatal(err)
	}
	io.WriteString(srv, "BYE\r\n")
	done := make(chan struct{})
	go func() {
		defer close(done)
		LingeringClose(srv)
		srv.Close()
	}()
	got, err := io.ReadAll(client)
	if err != nil || string(got) != "BYE\r\n" {
		t.Fatalf("client read %q, %v; want the BYE, then EOF", got, err)
	}
	client.Close() // LingeringClose reads to the client's EOF
	<-done
}
