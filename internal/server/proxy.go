package server

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// errProxy is a malformed PROXY protocol header.
var errProxy = errors.New("bad PROXY protocol header")

// v2Signature starts every PROXY protocol version 2 header.
var v2Signature = []byte("\r\n\r\n\x00\r\nQUIT\n")

// readProxyHeader reads a PROXY protocol header, version 1 (text) or 2
// (binary), as HAProxy's proxy-protocol.txt specifies, and returns the
// client's address. ok is false for a LOCAL (v2) or UNKNOWN (v1)
// connection, such as a load balancer's health check: use the peer's own
// address then.
func readProxyHeader(r *bufio.Reader) (client netip.AddrPort, ok bool, err error) {
	// Decide on the first byte, so a client speaking the mail protocol
	// straight away is refused at once rather than after a timeout.
	first, err := r.Peek(1)
	if err != nil {
		return netip.AddrPort{}, false, fmt.Errorf("%w: %v", errProxy, err)
	}
	switch first[0] {
	case 'P':
		return readProxyV1(r)
	case v2Signature[0]:
		peek, err := r.Peek(len(v2Signature))
		if err != nil || !bytes.Equal(peek, v2Signature) {
			return netip.AddrPort{}, false, fmt.Errorf("%w: bad v2 signature", errProxy)
		}
		return readProxyV2(r)
	}
	return netip.AddrPort{}, false, fmt.Errorf("%w: no header", errProxy)
}

// readProxyV1 reads "PROXY TCP4|TCP6 src dst sport dport\r\n", at most 107
// bytes.
func readProxyV1(r *bufio.Reader) (netip.AddrPort, bool, error) {
	var line []byte
	for len(line) < 107 {
		c, err := r.ReadByte()
		if err != nil {
			return netip.AddrPort{}, false, fmt.Errorf("%w: %v", errProxy, err)
		}
		line = append(line, c)
		if c == '\n' {
			break
		}
	}
	s, found := strings.CutSuffix(string(line), "\r\n")
	if !found || !strings.HasPrefix(s, "PROXY ") {
		return netip.AddrPort{}, false, fmt.Errorf("%w: v1 line not ended by CRLF", errProxy)
	}
	f := strings.Split(s, " ")
	if len(f) >= 2 && f[1] == "UNKNOWN" {
		return netip.AddrPort{}, false, nil
	}
	if len(f) != 6 || (f[1] != "TCP4" && f[1] != "TCP6") {
		return netip.AddrPort{}, false, fmt.Errorf("%w: v1 fields %q", errProxy, s)
	}
	// A zone ("fe80::1%eth0") names an interface of the load balancer,
	// not a client: the line's address is a plain one, as v2 can only
	// carry.
	ip, err := netip.ParseAddr(f[2])
	if err != nil || ip.Is4() != (f[1] == "TCP4") || ip.Zone() != "" {
		return netip.AddrPort{}, false, fmt.Errorf("%w: v1 source %q", errProxy, f[2])
	}
	port, err := strconv.ParseUint(f[4], 10, 16)
	if err != nil {
		return netip.AddrPort{}, false, fmt.Errorf("%w: v1 source port %q", errProxy, f[4])
	}
	return netip.AddrPortFrom(ip, uint16(port)), true, nil
}

// readProxyV2 reads the 16-byte binary header and its address block.
func readProxyV2(r *bufio.Reader) (netip.AddrPort, bool, error) {
	var hdr [16]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return netip.AddrPort{}, false, fmt.Errorf("%w: %v", errProxy, err)
	}
	verCmd, fam := hdr[12], hdr[13]
	n := int(binary.BigEndian.Uint16(hdr[14:16]))
	if verCmd>>4 != 2 {
		return netip.AddrPort{}, false, fmt.Errorf("%w: v2 version %d", errProxy, verCmd>>4)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return netip.AddrPort{}, false, fmt.Errorf("%w: %v", errProxy, err)
	}
	switch verCmd & 0xf {
	case 0: // LOCAL
		return netip.AddrPort{}, false, nil
	case 1: // PROXY
	default:
		return netip.AddrPort{}, false, fmt.Errorf("%w: v2 command %d", errProxy, verCmd&0xf)
	}
	switch fam >> 4 {
	case 1: // AF_INET: src(4) dst(4) sport(2) dport(2)
		if n < 12 {
			return netip.AddrPort{}, false, fmt.Errorf("%w: v2 short IPv4 block", errProxy)
		}
		ip := netip.AddrFrom4([4]byte(body[0:4]))
		return netip.AddrPortFrom(ip, binary.BigEndian.Uint16(body[8:10])), true, nil
	case 2: // AF_INET6: src(16) dst(16) sport(2) dport(2)
		if n < 36 {
			return netip.AddrPort{}, false, fmt.Errorf("%w: v2 short IPv6 block", errProxy)
		}
		ip := netip.AddrFrom16([16]byte(body[0:16]))
		return netip.AddrPortFrom(ip, binary.BigEndian.Uint16(body[32:34])), true, nil
	}
	// AF_UNSPEC or AF_UNIX: no usable client address.
	return netip.AddrPort{}, false, nil
}

// proxiedConn is a connection whose client address came from a PROXY
// header. Bytes the client sent after the header and the parser read ahead
// are served first; then reads go straight to the connection, so an idle
// connection holds no buffer.
type proxiedConn struct {
	net.Conn
	pending []byte
	remote  net.Addr
}

func (c *proxiedConn) Read(b []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(b, c.pending)
		c.pending = c.pending[n:]
		if len(c.pending) == 0 {
			c.pending = nil
		}
		return n, nil
	}
	return c.Conn.Read(b)
}

func (c *proxiedConn) RemoteAddr() net.Addr { return c.remote }

// NetConn returns the underlying connection, as crypto/tls does.
func (c *proxiedConn) NetConn() net.Conn { return c.Conn }
