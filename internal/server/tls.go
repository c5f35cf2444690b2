package server

import (
	"bytes"
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
// default cipher suites, and the given certificate. A server whose
// certificate files are renewed while it runs uses CertWatcher.TLSConfig.
func TLSConfig(cert tls.Certificate) *tls.Config {
	c := baseTLSConfig()
	c.Certificates = []tls.Certificate{cert}
	return c
}

// baseTLSConfig is what every server TLS configuration shares, whatever
// gives it its certificate.
func baseTLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12}
}

// selfSignedValidity is how long a self-signed certificate is valid: less
// than the 825 days Apple's systems accept for a TLS server certificate
// from any issuer, a self-signed one included (iOS 13 and macOS 10.15 on);
// Apple Mail refuses a longer one even after the person has trusted it.
const selfSignedValidity = 820 * 24 * time.Hour

// selfSignedRenewal is how close to its end a self-signed certificate is
// replaced at start, so that a server restarted now and then never serves
// an expired one.
const selfSignedRenewal = 30 * 24 * time.Hour

// SelfSignedCert makes a certificate for the given host names and IP
// addresses, valid for 820 days, with a fresh ECDSA P-256 key.
func SelfSignedCert(hosts []string) (certPEM, keyPEM []byte, err error) {
	notBefore := time.Now().Add(-time.Hour)
	return selfSigned(hosts, notBefore, notBefore.Add(selfSignedValidity))
}

// selfSigned is SelfSignedCert valid from notBefore to notAfter.
func selfSigned(hosts []string, notBefore, notAfter time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: hosts[0], Organization: []string{selfSignedOrganization}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		// Apple's systems also want serverAuth, and the names in the
		// subject alternative names, not the common name.
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

// selfSignedOrganization is the subject organization of the certificates
// buzon makes, every version of it: with a signature by its own key, it
// tells buzon's own certificate from one put in the data folder by hand.
const selfSignedOrganization = "buzon self-signed"

// CertMade says what EnsureSelfSignedCert found, or did, in the files.
type CertMade int

const (
	// CertKept: buzon's own certificate, left as it was.
	CertKept CertMade = iota
	// CertCreated: a new pair, where there was no certificate.
	CertCreated
	// CertRenewed: a new pair in place of buzon's own certificate, which
	// had expired or would within 30 days; its fingerprint is new.
	CertRenewed
	// CertForeign: a certificate buzon did not make (one from a CA put
	// there by hand), or one it could not read, left as it was whatever
	// its end; the loader reports what is wrong with it.
	CertForeign
)

// EnsureSelfSignedCert makes sure certFile and keyFile hold a certificate:
// it writes a self-signed pair naming localhost, 127.0.0.1, ::1 and
// hostname when the certificate does not exist, and a new one in the same
// files in place of a self-signed certificate of buzon's that has expired
// or expires within 30 days. Any other certificate is left alone: buzon
// never deletes a key it did not make. It does not load the pair (the
// caller's CertWatcher does); it reads the certificate only to know whose
// it is and when it ends. It is for the data folder's own certificate: a
// configured one that is missing or old is an error or a warning, not a
// reason to make one.
func EnsureSelfSignedCert(certFile, keyFile, hostname string) (CertMade, error) {
	made := CertCreated
	certPEM, err := os.ReadFile(certFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// A key without its certificate is what a crash between the two
		// writes leaves; it is replaced with the pair.
	case err != nil:
		return CertForeign, fmt.Errorf("tls: %w", err)
	default:
		leaf := firstCertificate(certPEM)
		if leaf == nil || !madeByBuzon(leaf) {
			return CertForeign, nil
		}
		if time.Until(leaf.NotAfter) > selfSignedRenewal {
			return CertKept, nil
		}
		// The certificate goes first, and for good before the new key
		// is written: a crash in between leaves a key alone, which the
		// next start replaces, never a new key with the old certificate.
		made = CertRenewed
		if err := os.Remove(certFile); err != nil {
			return made, fmt.Errorf("renew the self-signed certificate: %w", err)
		}
		if err := durable.SyncDir(filepath.Dir(certFile)); err != nil {
			return made, fmt.Errorf("renew the self-signed certificate: %w", err)
		}
	}
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if hostname != "" && !slices.Contains(hosts, hostname) {
		hosts = append([]string{hostname}, hosts...)
	}
	certPEM, keyPEM, err := SelfSignedCert(hosts)
	if err != nil {
		return made, fmt.Errorf("self-signed certificate: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		return made, err
	}
	// The key first: the certificate's presence means the pair is whole.
	if err := durable.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return made, err
	}
	if err := durable.WriteFile(certFile, certPEM, 0o644); err != nil {
		return made, err
	}
	return made, nil
}

// firstCertificate parses the first certificate in a PEM file, nil when
// there is none that parses.
func firstCertificate(data []byte) *x509.Certificate {
	for {
		block, rest := pem.Decode(data)
		if block == nil {
			return nil
		}
		if block.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil
			}
			return c
		}
		data = rest
	}
}

// madeByBuzon says whether a certificate is one buzon made: issued by its
// own subject, signed by its own key, and in buzon's organization.
// CheckSignatureFrom would refuse it (RFC 5280 4.2.1.9: buzon's
// certificates are no CA), so the signature is checked with the
// certificate's key directly.
func madeByBuzon(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) &&
		slices.Equal(c.Subject.Organization, []string{selfSignedOrganization}) &&
		c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// Fingerprint is the SHA-256 fingerprint of a certificate's DER bytes, in
// hex, the form the fetch client pins and people compare.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}
