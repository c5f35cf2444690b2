package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/buzon-mail/buzon/internal/durable"
)

// TLSConfig returns the server TLS configuration: TLS 1.2 at least, Go's
// default cipher suites, and the given certificate.
func TLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
	}
}

// SelfSignedCert makes a certificate for the given host names and IP
// addresses, valid for ten years, with a fresh ECDSA P-256 key.
func SelfSignedCert(hosts []string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hosts[0], Organization: []string{"buzon self-signed"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

// LoadOrCreateCert loads the certificate in certFile and keyFile, first
// creating a self-signed pair naming localhost, 127.0.0.1, ::1 and hostname
// when the certificate does not exist. It is for the data folder's own
// certificate: a configured one that is missing is an error, not a reason
// to make one. It reports whether it created them.
func LoadOrCreateCert(certFile, keyFile, hostname string) (tls.Certificate, bool, error) {
	created := false
	if _, err := os.Stat(certFile); errors.Is(err, fs.ErrNotExist) {
		// A key without its certificate is what a crash between the two
		// writes leaves; it is replaced with the pair.
		hosts := []string{"localhost", "127.0.0.1", "::1"}
		if hostname != "" && !slices.Contains(hosts, hostname) {
			hosts = append([]string{hostname}, hosts...)
		}
		certPEM, keyPEM, err := SelfSignedCert(hosts)
		if err != nil {
			return tls.Certificate{}, false, fmt.Errorf("self-signed certificate: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
			return tls.Certificate{}, false, err
		}
		// The key first: the certificate's presence means the pair is whole.
		if err := durable.WriteFile(keyFile, keyPEM, 0o600); err != nil {
			return tls.Certificate{}, false, err
		}
		if err := durable.WriteFile(certFile, certPEM, 0o644); err != nil {
			return tls.Certificate{}, false, err
		}
		created = true
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, false, fmt.Errorf("load certificate: %w", err)
	}
	return cert, created, nil
}

// Fingerprint is the SHA-256 fingerprint of a certificate's DER bytes, in
// hex, the form the fetch client pins and people compare.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}
