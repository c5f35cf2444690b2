package server

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

func TestLoadOrCreateCert(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls", "cert.pem"), filepath.Join(dir, "tls", "key.pem")
	cert, made, err := LoadOrCreateCert(certFile, keyFile, "mail.example.org")
	if err != nil || made != CertCreated {
		t.Fatalf("first load: made %v, %v", made, err)
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
	again, made, err := LoadOrCreateCert(certFile, keyFile, "mail.example.org")
	if err != nil || made != CertLoaded {
		t.Fatalf("second load: made %v, %v", made, err)
	}
	if Fingerprint(again.Certificate[0]) != Fingerprint(cert.Certificate[0]) {
		t.Error("second load made a new certificate")
	}
	// A key left without its certificate (a crash between the writes) is
	// replaced with a new pair.
	if err := os.Remove(certFile); err != nil {
		t.Fatal(err)
	}
	if _, made, err := LoadOrCreateCert(certFile, keyFile, "mail.example.org"); err != nil || made != CertCreated {
		t.Fatalf("after losing the certificate: made %v, %v", made, err)
	}
	if cfg := TLSConfig(cert); cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion %x", cfg.MinVersion)
	}
}

// TestSelfSignedValidity: the certificate made is one Apple's systems
// accept, valid for no more than 825 days, naming its hosts in the
// subject alternative names, for serverAuth.
func TestSelfSignedValidity(t *testing.T) {
	certPEM, keyPEM, err := SelfSignedCert([]string{"mail.example.org", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	leaf := cert.Leaf
	if v := leaf.NotAfter.Sub(leaf.NotBefore); v > appleMaxValidity || v < 365*24*time.Hour {
		t.Errorf("valid for %v", v)
	}
	if !slices.Equal(leaf.DNSNames, []string{"mail.example.org"}) || len(leaf.IPAddresses) != 1 {
		t.Errorf("names %v %v", leaf.DNSNames, leaf.IPAddresses)
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("extended key usage %v", leaf.ExtKeyUsage)
	}
}

// TestLoadOrCreateCertRenews: at start, a self-signed certificate that
// has expired, or expires within 30 days, is replaced in the same files;
// one with longer to go is kept.
func TestLoadOrCreateCertRenews(t *testing.T) {
	now := time.Now()
	for _, tt := range []struct {
		name     string
		notAfter time.Time
		want     CertMade
	}{
		{"expired", now.Add(-24 * time.Hour), CertRenewed},
		{"ten days left", now.Add(10 * 24 * time.Hour), CertRenewed},
		{"a hundred days left", now.Add(100 * 24 * time.Hour), CertLoaded},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
			old := writePair(t, certFile, keyFile, tt.notAfter.Add(-selfSignedValidity), tt.notAfter)
			cert, made, err := LoadOrCreateCert(certFile, keyFile, "mail.example.org")
			if err != nil || made != tt.want {
				t.Fatalf("made %v, %v; want %v", made, err, tt.want)
			}
			renewed := Fingerprint(cert.Certificate[0]) != old
			if renewed != (tt.want == CertRenewed) {
				t.Errorf("fingerprint changed: %v", renewed)
			}
			// What is served after is what the files hold.
			again, made, err := LoadOrCreateCert(certFile, keyFile, "mail.example.org")
			if err != nil || made != CertLoaded || Fingerprint(again.Certificate[0]) != Fingerprint(cert.Certificate[0]) {
				t.Errorf("load after: made %v, %v", made, err)
			}
			if tt.want == CertRenewed && time.Until(again.Leaf.NotAfter) < selfSignedValidity-2*time.Hour {
				t.Errorf("renewed certificate ends %v", again.Leaf.NotAfter)
			}
		})
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
