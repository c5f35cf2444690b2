package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"
)

// TestHandshake: a client that completes the handshake gets a TLS
// connection with no deadline left on the socket; one that starts it and
// stalls is cut off at the timeout.
func TestHandshake(t *testing.T) {
	certPEM, keyPEM, err := SelfSignedCert([]string{"mx.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	for _, tt := range []struct {
		name   string
		client func(net.Conn) // runs on the client's end
		ok     bool
	}{
		{"completed", func(nc net.Conn) {
			tls.Client(nc, &tls.Config{RootCAs: roots, ServerName: "mx.example.org"}).Handshake()
		}, true},
		{"stalled", func(nc net.Conn) {
			nc.Write([]byte{0x16, 0x03, 0x01}) // the start of a ClientHello, and no more
		}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			client, pipe := net.Pipe()
			defer client.Close()
			defer pipe.Close()
			raw := &deadlineConn{Conn: pipe}
			go tt.client(client)
			tc, err := Handshake(context.Background(), raw, TLSConfig(cert), time.Second)
			if !tt.ok {
				if err == nil || !strings.HasPrefix(err.Error(), "tls handshake: ") {
					t.Fatalf("Handshake = %v; want a tls handshake error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if name := TLSName(tc.ConnectionState()); !strings.HasPrefix(name, "TLS 1.") || !strings.Contains(name, "_") {
				t.Errorf("TLSName = %q; want the version and the cipher suite", name)
			}
			if !raw.deadline.IsZero() {
				t.Errorf("the socket's deadline is left at %v; want none", raw.deadline)
			}
		})
	}
}

// deadlineConn records the last deadline set on it.
type deadlineConn struct {
	net.Conn
	deadline time.Time
}

func (c *deadlineConn) SetDeadline(t time.Time) error {
	c.deadline = t
	return c.Conn.SetDeadline(t)
}
