package server

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestLoadOrCreateCert(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls", "cert.pem"), filepath.Join(dir, "tls", "key.pem")
	cert, created, err := LoadOrCreateCert(certFile, keyFile, "mail.example.org")
	if err != nil || !created {
		t.Fatalf("first load: created %v, %v", created, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"mail.example.org", "localhost", "127.0.0.1", "::1"} {
		if err := leaf.VerifyHostname(h); err != nil {
			t.Errorf("certificate does not name %s: %v", h, err)
		}
	}
	again, created, err := LoadOrCreateCert(certFile, keyFile, "mail.example.org")
	if err != nil || created {
		t.Fatalf("second load: created %v, %v", created, err)
	}
	if Fingerprint(again.Certificate[0]) != Fingerprint(cert.Certificate[0]) {
		t.Error("second load made a new certificate")
	}
	// A key left without its certificate (a crash between the writes) is
	// replaced with a new pair.
	if err := os.Remove(certFile); err != nil {
		t.Fatal(err)
	}
	if _, created, err := LoadOrCreateCert(certFile, keyFile, "mail.example.org"); err != nil || !created {
		t.Fatalf("after losing the certificate: created %v, %v", created, err)
	}
	if cfg := TLSConfig(cert); cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion %x", cfg.MinVersion)
	}
}

func TestTemporaryAcceptError(t *testing.T) {
	wrap := func(err error) error {
		return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", err)}
	}
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{wrap(syscall.EMFILE), true},
		{wrap(syscall.ENFILE), true},
		{wrap(syscall.ECONNABORTED), true},
		{net.ErrClosed, false},
		{wrap(syscall.EINVAL), false},
	} {
		if got := temporaryAcceptError(tt.err); got != tt.want {
			t.Errorf("temporaryAcceptError(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
