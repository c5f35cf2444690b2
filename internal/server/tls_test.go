package server

import (
	"crypto/tls"
	"crypto/x509"
	"path/filepath"
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
	if cfg := TLSConfig(cert); cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion %x", cfg.MinVersion)
	}
}
