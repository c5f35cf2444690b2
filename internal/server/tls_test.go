package server

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

func TestEnsureSelfSignedCert(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls", "cert.pem"), filepath.Join(dir, "tls", "key.pem")
	made, err := EnsureSelfSignedCert(certFile, keyFile, "mail.example.org")
	if err != nil || made != CertCreated {
		t.Fatalf("first start: made %v, %v", made, err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"mail.example.org", "localhost", "127.0.0.1", "::1"} {
		if err := cert.Leaf.VerifyHostname(h); err != nil {
			t.Errorf("certificate does not name %s: %v", h, err)
		}
	}
	if !madeByBuzon(cert.Leaf) {
		t.Error("buzon does not know its own certificate")
	}
	made, err = EnsureSelfSignedCert(certFile, keyFile, "mail.example.org")
	if err != nil || made != CertKept {
		t.Fatalf("second start: made %v, %v", made, err)
	}
	again, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if Fingerprint(again.Certificate[0]) != Fingerprint(cert.Certificate[0]) {
		t.Error("second start made a new certificate")
	}
	// A key left without its certificate (a crash between the writes) is
	// replaced with a new pair.
	if err := os.Remove(certFile); err != nil {
		t.Fatal(err)
	}
	if made, err := EnsureSelfSignedCert(certFile, keyFile, "mail.example.org"); err != nil || made != CertCreated {
		t.Fatalf("after losing the certificate: made %v, %v", made, err)
	}
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		t.Errorf("the pair made after losing the certificate: %v", err)
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

// TestEnsureSelfSignedCertRenews: at start, a self-signed certificate of
// buzon's that has expired, or expires within 30 days, is replaced in the
// same files; one with longer to go is kept.
func TestEnsureSelfSignedCertRenews(t *testing.T) {
	now := time.Now()
	for _, tt := range []struct {
		name     string
		notAfter time.Time
		want     CertMade
	}{
		{"expired", now.Add(-24 * time.Hour), CertRenewed},
		{"ten days left", now.Add(10 * 24 * time.Hour), CertRenewed},
		{"a hundred days left", now.Add(100 * 24 * time.Hour), CertKept},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
			old := writePair(t, certFile, keyFile, tt.notAfter.Add(-selfSignedValidity), tt.notAfter)
			made, err := EnsureSelfSignedCert(certFile, keyFile, "mail.example.org")
			if err != nil || made != tt.want {
				t.Fatalf("made %v, %v; want %v", made, err, tt.want)
			}
			cert, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				t.Fatalf("the files after: %v", err)
			}
			renewed := Fingerprint(cert.Certificate[0]) != old
			if renewed != (tt.want == CertRenewed) {
				t.Errorf("fingerprint changed: %v", renewed)
			}
			if tt.want == CertRenewed && time.Until(cert.Leaf.NotAfter) < selfSignedValidity-2*time.Hour {
				t.Errorf("renewed certificate ends %v", cert.Leaf.NotAfter)
			}
			if made, err := EnsureSelfSignedCert(certFile, keyFile, "mail.example.org"); err != nil || made != CertKept {
				t.Errorf("start after: made %v, %v", made, err)
			}
		})
	}
}

// TestEnsureSelfSignedCertLeavesOthers: a certificate buzon did not make,
// put in the data folder by hand, is left as it is, key and all, however
// near its end: one from a CA, a self-signed one of another organization,
// one that claims buzon's organization and its own issuer but is signed by
// another key, and a file that holds no certificate.
func TestEnsureSelfSignedCertLeavesOthers(t *testing.T) {
	soon := time.Now().Add(5 * 24 * time.Hour)
	caKey, ca := newTestCA(t)
	for _, tt := range []struct {
		name string
		tmpl x509.Certificate
		// signer signs the certificate; nil: its own key.
		signer *ecdsa.PrivateKey
		parent *x509.Certificate
	}{
		{"issued by a CA", x509.Certificate{Subject: pkix.Name{CommonName: "mail.example.org"}}, caKey, ca},
		{"issued by a CA to buzon's organization", x509.Certificate{
			Subject: pkix.Name{CommonName: "mail.example.org", Organization: []string{selfSignedOrganization}}}, caKey, ca},
		{"self-signed by someone else", x509.Certificate{Subject: pkix.Name{CommonName: "mail.example.org", Organization: []string{"Example Ltd"}}}, nil, nil},
		{"its own issuer, another key", x509.Certificate{
			Subject: pkix.Name{CommonName: "mail.example.org", Organization: []string{selfSignedOrganization}}}, caKey, nil},
		{"signed by its own key in another's name", x509.Certificate{
			Subject: pkix.Name{CommonName: "mail.example.org", Organization: []string{selfSignedOrganization}}}, nil,
			&x509.Certificate{Subject: pkix.Name{CommonName: "Example CA"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			tmpl := tt.tmpl
			tmpl.SerialNumber = big.NewInt(2)
			tmpl.NotBefore, tmpl.NotAfter = soon.Add(-90*24*time.Hour), soon
			tmpl.DNSNames = []string{"mail.example.org"}
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			signer, parent := tt.signer, tt.parent
			if signer == nil {
				signer = key
			}
			if parent == nil {
				parent = &tmpl
			}
			der, err := x509.CreateCertificate(rand.Reader, &tmpl, parent, &key.PublicKey, signer)
			if err != nil {
				t.Fatal(err)
			}
			keyDER, err := x509.MarshalECPrivateKey(key)
			if err != nil {
				t.Fatal(err)
			}
			chain := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
			if tt.parent == ca {
				chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})...)
			}
			leaveAlone(t, chain, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
		})
	}
	t.Run("no certificate in the file", func(t *testing.T) {
		leaveAlone(t, []byte("not a certificate\n"), []byte("not a key\n"))
	})
}

// leaveAlone writes a pair and checks that EnsureSelfSignedCert leaves it
// as it is.
func leaveAlone(t *testing.T, certPEM, keyPEM []byte) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	mustWrite(t, certFile, certPEM)
	mustWrite(t, keyFile, keyPEM)
	made, err := EnsureSelfSignedCert(certFile, keyFile, "mail.example.org")
	if err != nil || made != CertForeign {
		t.Errorf("made %v, %v; want CertForeign", made, err)
	}
	for name, want := range map[string][]byte{certFile: certPEM, keyFile: keyPEM} {
		if got, err := os.ReadFile(name); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s was changed (%v)", filepath.Base(name), err)
		}
	}
}

// newTestCA makes a CA's key and certificate.
func newTestCA(t *testing.T) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Example CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, ca
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
