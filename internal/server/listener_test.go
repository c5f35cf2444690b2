package server

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func TestReadProxyHeader(t *testing.T) {
	v2 := func(cmd, fam byte, body []byte) string {
		var b bytes.Buffer
		b.Write(v2Signature)
		b.WriteByte(0x20 | cmd)
		b.WriteByte(fam)
		binary.Write(&b, binary.BigEndian, uint16(len(body)))
		b.Write(body)
		return b.String()
	}
	ipv4 := append(append([]byte{192, 0, 2, 7}, 198, 51, 100, 1), 0x30, 0x39, 0x00, 0x8f)
	ipv6 := make([]byte, 36)
	copy(ipv6, netip.MustParseAddr("2001:db8::7").AsSlice())
	binary.BigEndian.PutUint16(ipv6[32:], 4242)
	tests := []struct {
		name, in string
		want     string // "" when no address; "error" when malformed
	}{
		{"v1 tcp4", "PROXY TCP4 192.0.2.7 198.51.100.1 12345 143\r\nA1 NOOP", "192.0.2.7:12345"},
		{"v1 tcp6", "PROXY TCP6 2001:db8::7 2001:db8::1 4242 993\r\n", "[2001:db8::7]:4242"},
		{"v1 unknown", "PROXY UNKNOWN\r\n", ""},
		{"v1 family mismatch", "PROXY TCP4 2001:db8::7 2001:db8::1 1 2\r\n", "error"},
		{"v1 zone", "PROXY TCP6 fe80::1%eth0 fe80::2 1 2\r\n", "error"},
		{"v1 no crlf", "PROXY TCP4 192.0.2.7 198.51.100.1 1 2\n", "error"},
		{"v1 bad port", "PROXY TCP4 192.0.2.7 198.51.100.1 99999 2\r\n", "error"},
		{"v1 too long", "PROXY TCP4 " + strings.Repeat("1", 200) + "\r\n", "error"},
		{"v2 ipv4", v2(1, 0x11, ipv4) + "A1 NOOP", "192.0.2.7:12345"},
		{"v2 ipv6", v2(1, 0x21, ipv6), "[2001:db8::7]:4242"},
		{"v2 local", v2(0, 0x00, nil), ""},
		{"v2 short", v2(1, 0x11, ipv4[:6]), "error"},
		{"v2 truncated", v2(1, 0x11, ipv4)[:20], "error"},
		{"none", "A1 LOGIN x y\r\n", "error"},
		{"empty", "", "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bufio.NewReader(strings.NewReader(tt.in))
			ap, ok, err := readProxyHeader(r)
			switch {
			case tt.want == "error":
				if !errors.Is(err, errProxy) {
					t.Fatalf("got %v %v %v, want a header error", ap, ok, err)
				}
				return
			case err != nil:
				t.Fatal(err)
			case tt.want == "" && ok:
				t.Fatalf("got address %v, want none", ap)
			case tt.want != "" && (!ok || ap.String() != tt.want):
				t.Fatalf("got %v (%v), want %s", ap, ok, tt.want)
			}
			// What follows the header is left for the protocol.
			rest, _ := io.ReadAll(r)
			if strings.HasSuffix(tt.in, "A1 NOOP") && string(rest) != "A1 NOOP" {
				t.Errorf("rest %q", rest)
			}
		})
	}
}

func FuzzProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.7 198.51.100.1 12345 143\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(append(append([]byte{}, v2Signature...), 0x21, 0x11, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2))
	f.Add([]byte("PROXY TCP6 fe80::1%eth0 fe80::2 1 2\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bufio.NewReader(bytes.NewReader(in))
		ap, ok, err := readProxyHeader(r)
		if err != nil {
			return
		}
		// The header is read to its end and no further: a v1 line to its
		// LF, a v2 header to the end of the length it gives.
		end := bytes.IndexByte(in, '\n') + 1
		if in[0] != 'P' {
			end = 16 + int(binary.BigEndian.Uint16(in[14:16]))
		}
		if rest, _ := io.ReadAll(r); !bytes.Equal(rest, in[end:]) {
			t.Fatalf("after the header of %q, %q is left", in, rest)
		}
		if !ok {
			return
		}
		if !ap.IsValid() || ap.Addr().Zone() != "" {
			t.Fatalf("client address %v from %q", ap, in)
		}
		// What was accepted is an address either version can carry.
		for _, header := range []string{proxyV1(ap), proxyV2(ap)} {
			again, ok, err := readProxyHeader(bufio.NewReader(strings.NewReader(header)))
			if err != nil || !ok || again != ap {
				t.Fatalf("%v from %q, written as %q, reads as %v, %v, %v", ap, in, header, again, ok, err)
			}
		}
	})
}

// proxyV1 is the PROXY protocol v1 line a load balancer sends for a
// client at ap.
func proxyV1(ap netip.AddrPort) string {
	if ap.Addr().Is4() {
		return fmt.Sprintf("PROXY TCP4 %s 192.0.2.1 %d 143\r\n", ap.Addr(), ap.Port())
	}
	return fmt.Sprintf("PROXY TCP6 %s 2001:db8::1 %d 143\r\n", ap.Addr(), ap.Port())
}

// proxyV2 is the PROXY protocol v2 header a load balancer sends for a
// client at ap.
func proxyV2(ap netip.AddrPort) string {
	var b bytes.Buffer
	b.Write(v2Signature)
	b.WriteByte(0x21) // version 2, PROXY
	src := ap.Addr().AsSlice()
	if ap.Addr().Is4() {
		b.WriteByte(0x11) // AF_INET, STREAM
	} else {
		b.WriteByte(0x21) // AF_INET6, STREAM
	}
	binary.Write(&b, binary.BigEndian, uint16(2*len(src)+4))
	b.Write(src)
	b.Write(make([]byte, len(src))) // the destination, unused
	binary.Write(&b, binary.BigEndian, ap.Port())
	binary.Write(&b, binary.BigEndian, uint16(143))
	return b.String()
}

func dial(t *testing.T, addr net.Addr, preamble string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	if preamble != "" {
		io.WriteString(c, preamble)
	}
	return c
}

func TestListenerLimitsAndProxy(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(inner, ListenerConfig{PerAddr: NewAddrLimiter(2), Proxy: true,
		Refuse: func(c net.Conn) { io.WriteString(c, "* BYE too many connections\r\n") }})
	defer l.Close()

	accept := func() net.Conn {
		t.Helper()
		c, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// Two clients behind the proxy from one address are admitted; their
	// address is the proxied one.
	a := dial(t, l.Addr(), "PROXY TCP4 192.0.2.7 198.51.100.1 1000 143\r\nhello")
	defer a.Close()
	ca := accept()
	if got := AddrOf(ca.RemoteAddr()).String(); got != "192.0.2.7" {
		t.Errorf("remote %s, want 192.0.2.7", got)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(ca, buf); err != nil || string(buf) != "hello" {
		t.Errorf("read after header: %q %v", buf, err)
	}
	b := dial(t, l.Addr(), "PROXY TCP4 192.0.2.7 198.51.100.1 1001 143\r\n")
	defer b.Close()
	cb := accept()

	// The third from that address is refused with the protocol's goodbye.
	c := dial(t, l.Addr(), "PROXY TCP4 192.0.2.7 198.51.100.1 1002 143\r\n")
	defer c.Close()
	line, _ := bufio.NewReader(c).ReadString('\n')
	if line != "* BYE too many connections\r\n" {
		t.Errorf("refused client read %q", line)
	}
	// Another address still gets in; a connection without a header does not.
	bad := dial(t, l.Addr(), "A1 NOOP\r\n")
	defer bad.Close()
	d := dial(t, l.Addr(), "PROXY TCP4 192.0.2.8 198.51.100.1 1003 143\r\n")
	defer d.Close()
	if got := AddrOf(accept().RemoteAddr()).String(); got != "192.0.2.8" {
		t.Errorf("remote %s, want 192.0.2.8", got)
	}
	if n, _ := bad.Read(make([]byte, 1)); n != 0 {
		t.Error("headerless connection was not closed")
	}
	// Closing one frees its slot.
	cb.Close()
	e := dial(t, l.Addr(), "PROXY TCP4 192.0.2.7 198.51.100.1 1004 143\r\n")
	defer e.Close()
	if got := AddrOf(accept().RemoteAddr()).String(); got != "192.0.2.7" {
		t.Errorf("remote %s after a slot was freed", got)
	}
	l.Close()
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
}

func TestListenerMetrics(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics()
	l := NewListener(inner, ListenerConfig{PerAddr: NewAddrLimiter(1), Name: "imap", Metrics: m})
	defer l.Close()
	a := dial(t, l.Addr(), "")
	defer a.Close()
	ca, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	b := dial(t, l.Addr(), "")
	defer b.Close()
	b.Read(make([]byte, 1)) // refused: closed by the server
	ca.Close()
	m.Delivered(250, 1000)
	m.Delivered(452, 1000)
	m.Login("failed")

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`buzon_connections_total{listener="imap",outcome="accepted"} 1`,
		`buzon_connections_total{listener="imap",outcome="refused"} 1`,
		`buzon_connections_open{listener="imap"} 0`,
		`buzon_deliveries_total{code="250"} 1`,
		`buzon_deliveries_total{code="452"} 1`,
		`buzon_delivered_bytes_total 1000`,
		`buzon_logins_total{result="failed"} 1`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestAddrLimiterShared: the per-address limit holds across listeners that
// share a limiter.
func TestAddrLimiterShared(t *testing.T) {
	lim := NewAddrLimiter(1)
	var ls []*Listener
	for range 2 {
		inner, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l := NewListener(inner, ListenerConfig{PerAddr: lim})
		defer l.Close()
		ls = append(ls, l)
	}
	a := dial(t, ls[0].Addr(), "")
	defer a.Close()
	ca, err := ls[0].Accept()
	if err != nil {
		t.Fatal(err)
	}
	b := dial(t, ls[1].Addr(), "")
	defer b.Close()
	if n, _ := b.Read(make([]byte, 1)); n != 0 {
		t.Fatal("a second connection from the address got in through the other listener")
	}
	ca.Close()
	c := dial(t, ls[1].Addr(), "")
	defer c.Close()
	if _, err := ls[1].Accept(); err != nil {
		t.Fatal(err)
	}
}
