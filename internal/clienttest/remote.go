package clienttest

import (
	"net"
	"net/netip"
)

// FakeRemote wraps l so that the connections it accepts report addr as
// the client's address: a test on loopback can see what a client from
// elsewhere is told (plaintext logins refused before TLS, for one).
func FakeRemote(l net.Listener, addr netip.Addr) net.Listener {
	return remoteListener{l, addr}
}

type remoteListener struct {
	net.Listener
	addr netip.Addr
}

func (l remoteListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return remoteConn{c, net.TCPAddrFromAddrPort(netip.AddrPortFrom(l.addr, 40000))}, nil
}

type remoteConn struct {
	net.Conn
	remote net.Addr
}

func (c remoteConn) RemoteAddr() net.Addr { return c.remote }
