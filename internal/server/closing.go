package server

import (
	"crypto/tls"
	"io"
	"net"
	"time"
)

// TCPConn returns the TCP connection under nc, unwrapping TLS and the
// listener's own wrappers (which offer NetConn, as crypto/tls does), or nil
// when there is none (a unix socket, a test's pipe).
func TCPConn(nc net.Conn) *net.TCPConn {
	for {
		switch x := nc.(type) {
		case *net.TCPConn:
			return x
		case interface{ NetConn() net.Conn }:
			nc = x.NetConn()
		default:
			return nil
		}
	}
}

// CloseWrite ends the server's half of a connection whose client may still
// be sending: TLS's close_notify when nc is TLS, then the TCP FIN. Reading
// and dropping what still arrives for a moment before closing (a lingering
// close, RFC 9112 9.6) keeps the reset that closing with unread input
// causes from overtaking the last answer.
func CloseWrite(nc net.Conn) {
	if tc, ok := nc.(*tls.Conn); ok {
		_ = tc.CloseWrite()
	}
	if tcp := TCPConn(nc); tcp != nil {
		_ = tcp.CloseWrite()
	}
}

// How long, and for how many bytes at most, LingeringClose reads what a
// client still sends.
const (
	lingerTime  = time.Second
	lingerBytes = 1 << 20
)

// LingeringClose prepares to close a connection whose client may still be
// sending: CloseWrite, then it reads and drops what arrives for a moment
// (a second, a megabyte at most), so that the client reads the last
// answer rather than the reset that closing with unread input causes.
// The caller closes nc after it. The read deadline it sets stays.
func LingeringClose(nc net.Conn) {
	CloseWrite(nc)
	_ = nc.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.CopyN(io.Discard, nc, lingerBytes)
}

// Reset closes a connection with a TCP reset, freeing at once a send
// buffer its client stopped reading, where a close would leave the kernel
// trying to deliver it for minutes.
func Reset(nc net.Conn) error {
	if tcp := TCPConn(nc); tcp != nil {
		_ = tcp.SetLinger(0)
	}
	return nc.Close()
}
