package clienttest

import (
	"crypto/tls"
	"crypto/x509"
	"testing"

	"github.com/buzon-mail/buzon/internal/server"
)

// Cert makes a self-signed certificate for hosts, as buzon makes its own,
// and returns it, a pool that trusts it (for the test's clients) and its
// PEM (for a client that reads a CA file).
func Cert(t testing.TB, hosts ...string) (tls.Certificate, *x509.CertPool, []byte) {
	t.Helper()
	certPEM, keyPEM, err := server.SelfSignedCert(hosts)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	return cert, roots, certPEM
}
