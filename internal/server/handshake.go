package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"
)

// Handshake starts TLS as the server on raw, for a listener with
// implicit TLS or after STARTTLS or STLS, bounded by timeout and by ctx,
// so that a client that starts a handshake and stalls cannot hold the
// connection. It leaves raw without a deadline: the protocol sets its
// own before each read and write. Whatever the client sent before the
// handshake and the caller buffered is the caller's to refuse or drop, so
// that plaintext is never taken as if it came over TLS (CVE-2011-0411).
// On failure the caller ends the session.
func Handshake(ctx context.Context, raw net.Conn, cfg *tls.Config, timeout time.Duration) (*tls.Conn, error) {
	tc := tls.Server(raw, cfg)
	raw.SetDeadline(time.Now().Add(timeout))
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	raw.SetDeadline(time.Time{})
	return tc, nil
}

// TLSName says what a TLS session agreed on, as logs and trace fields
// show it: "TLS 1.3 TLS_AES_128_GCM_SHA256".
func TLSName(st tls.ConnectionState) string {
	return tls.VersionName(st.Version) + " " + tls.CipherSuiteName(st.CipherSuite)
}
