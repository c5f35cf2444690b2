package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/clienttest"
	"github.com/buzon-mail/buzon/internal/server"
)

// TestCertificateRenewal runs buzon on certificate files laid out as
// certbot keeps them (live/ links to archive/) and renews them under the
// running server in certbot's two steps: openssl s_client, on IMAPS, POP3S
// and the STARTTLS of IMAP, POP3, SMTP and ManageSieve, sees the old
// certificate while only the new certificate's link has moved, and the new
// one once the key has too; a session opened before the renewal carries on.
func TestCertificateRenewal(t *testing.T) {
	t.Parallel()
	openssl := clienttest.Need(t, "openssl", "openssl")
	dir := t.TempDir()
	live, archive := filepath.Join(dir, "live"), filepath.Join(dir, "archive")
	for _, d := range []string{live, archive} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// archiveVersion writes version n of the pair to archive/ and returns
	// its fingerprint.
	archiveVersion := func(n int) string {
		certPEM, keyPEM, err := server.SelfSignedCert([]string{fmt.Sprintf("mail%d.example.org", n), "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		for name, data := range map[string][]byte{"fullchain": certPEM, "privkey": keyPEM} {
			if err := os.WriteFile(filepath.Join(archive, fmt.Sprintf("%s%d.pem", name, n)), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		block, _ := pem.Decode(certPEM)
		return server.Fingerprint(block.Bytes)
	}
	// link points live/name.pem at version n, as certbot does: a new
	// link renamed over the old.
	link := func(name string, n int) {
		tmp := filepath.Join(live, name+".new")
		if err := os.Symlink(fmt.Sprintf("../archive/%s%d.pem", name, n), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(live, name+".pem")); err != nil {
			t.Fatal(err)
		}
	}
	first := archiveVersion(1)
	link("fullchain", 1)
	link("privkey", 1)
	conf := filepath.Join(dir, "buzon.toml")
	if err := os.WriteFile(conf, fmt.Appendf(nil, "[tls]\ncert = %q\nkey = %q\n",
		filepath.Join(live, "fullchain.pem"), filepath.Join(live, "privkey.pem")), 0o600); err != nil {
		t.Fatal(err)
	}
	in := start(t, "", "--config", conf)

	// seen is the fingerprint of the certificate openssl s_client is
	// shown on listener.
	seen := func(listener string) string {
		t.Helper()
		args := []string{"s_client", "-connect", in.ports[listener], "-servername", "localhost"}
		switch listener {
		case "imap", "pop3", "smtp", "sieve":
			args = append(args, "-starttls", listener)
		}
		cmd := exec.Command(openssl, args...)
		cmd.Stdin = strings.NewReader("") // end the session once the handshake is done
		out, err := cmd.CombinedOutput()
		block, _ := pem.Decode(out)
		if block == nil {
			t.Fatalf("openssl s_client on %s showed no certificate (%v):\n%s", listener, err, out)
		}
		return server.Fingerprint(block.Bytes)
	}
	expect := func(when, want string) {
		t.Helper()
		for _, listener := range []string{"imaps", "pop3s", "imap", "pop3", "smtp", "sieve"} {
			if got := seen(listener); got != want {
				t.Errorf("%s, %s shows %s, want %s", when, listener, got, want)
			}
		}
	}
	expect("at start", first)

	// An IMAPS session opened on the first certificate.
	c, err := tls.Dial("tcp", in.ports["imaps"], &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	session := bufio.NewReader(c)
	if greeting, err := session.ReadString('\n'); err != nil || !strings.HasPrefix(greeting, "* OK") {
		t.Fatalf("greeting %q, %v", greeting, err)
	}

	second := archiveVersion(2)
	link("fullchain", 2) // the key still the first's: not a pair
	in.waitLog(`msg="tls certificate files not taken; still serving the previous certificate"`, 1)
	expect("with the new certificate and the old key", first)
	link("privkey", 2)
	in.waitLog(`msg="tls certificate renewed"`, 1)
	if !strings.Contains(in.logs(), "sha256="+second) {
		t.Errorf("the renewal's log line does not name the new fingerprint %s:\n%s", second, in.logs())
	}
	expect("after the renewal", second)
	if n := strings.Count(in.logs(), `msg="tls certificate files not taken`); n != 1 {
		t.Errorf("the mismatched pair was logged %d times:\n%s", n, in.logs())
	}

	// The session opened before goes on, on its own certificate.
	if got := server.Fingerprint(c.ConnectionState().PeerCertificates[0].Raw); got != first {
		t.Errorf("the session opened before has %s", got)
	}
	fmt.Fprintf(c, "a NOOP\r\n")
	if reply, err := session.ReadString('\n'); err != nil || !strings.HasPrefix(reply, "a OK") {
		t.Errorf("NOOP after the renewal: %q, %v", reply, err)
	}
}

// waitLog waits until the server has logged what at least n times.
func (in *instance) waitLog(what string, n int) {
	in.t.Helper()
	deadline := time.After(60 * time.Second)
	for strings.Count(in.logs(), what) < n {
		select {
		case <-in.exited:
			in.t.Fatalf("buzon serve exited (%v) before logging %s:\n%s", in.exitErr, what, in.logs())
		case <-deadline:
			in.t.Fatalf("buzon serve did not log %s:\n%s", what, in.logs())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestSelfSignedRenewedAtStart: a start on a data folder whose
// self-signed certificate has expired makes a new one in the same files,
// says so, and serves it.
func TestSelfSignedRenewedAtStart(t *testing.T) {
	t.Parallel()
	openssl := clienttest.Need(t, "openssl", "openssl")
	data := t.TempDir()
	// An expired pair, as the buzon of ten years ago made it: valid for
	// ten years, in buzon's organization.
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost", Organization: []string{"buzon self-signed"}},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().AddDate(-10, 0, -1), NotAfter: time.Now().AddDate(0, 0, -1),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true}
	old, _ := writeDataPair(t, data, tmpl, nil, nil)
	in := start(t, data)
	if !strings.Contains(in.logs(), `msg="made a new self-signed certificate in place of one at its end; clients must accept the new one"`) {
		t.Errorf("the renewal at start was not logged:\n%s", in.logs())
	}
	now, err := os.ReadFile(filepath.Join(data, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(now)
	if block == nil || string(now) == string(old) {
		t.Fatalf("cert.pem was not replaced:\n%s", now)
	}
	out := sClient(t, openssl, in.ports["imaps"])
	served, _ := pem.Decode(out)
	if served == nil || server.Fingerprint(served.Bytes) != server.Fingerprint(block.Bytes) {
		t.Errorf("IMAPS does not serve the new certificate:\n%s", out)
	}
	if !strings.Contains(string(out), "Verify return code: 18") { // self-signed, and not 10: expired
		t.Errorf("openssl does not find the certificate merely self-signed:\n%s", out)
	}
	// The watcher alone loads the files and logs what it serves.
	if n := strings.Count(in.logs(), "sha256="+server.Fingerprint(block.Bytes)); n != 1 {
		t.Errorf("the new certificate's fingerprint is logged %d times, want once:\n%s", n, in.logs())
	}
}

// TestCACertificateKeptAtStart: a certificate from a CA put in the data
// folder by hand, ten days from its end, is not buzon's to renew: a start
// leaves its files as they were, serves it with its chain, and warns that
// it must be renewed, not that a restart would.
func TestCACertificateKeptAtStart(t *testing.T) {
	t.Parallel()
	openssl := clienttest.Need(t, "openssl", "openssl")
	data := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Example CA"},
		NotBefore: time.Now().AddDate(-1, 0, 0), NotAfter: time.Now().AddDate(5, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().AddDate(0, 0, -80), NotAfter: time.Now().AddDate(0, 0, 10),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	certPEM, keyPEM := writeDataPair(t, data, tmpl, ca, caKey)
	in := start(t, data)
	for name, want := range map[string][]byte{"cert.pem": certPEM, "key.pem": keyPEM} {
		if got, err := os.ReadFile(filepath.Join(data, "tls", name)); err != nil || string(got) != string(want) {
			t.Errorf("%s was changed (%v)", name, err)
		}
	}
	if strings.Contains(in.logs(), "self-signed certificate") {
		t.Errorf("buzon made a certificate of its own:\n%s", in.logs())
	}
	// The welcome (an empty store) gives no fingerprint to accept.
	in.waitOutput(welcomeRE)
	if strings.Contains(in.output(), "self-signed") {
		t.Errorf("the welcome calls the CA's certificate self-signed:\n%s", in.output())
	}
	if !strings.Contains(in.logs(), `msg="tls certificate expires soon"`) || !strings.Contains(in.logs(), "renew it; buzon takes the new files by itself") {
		t.Errorf("no warning that the certificate must be renewed:\n%s", in.logs())
	}
	out := string(sClient(t, openssl, in.ports["imaps"], "-showcerts"))
	block, rest := pem.Decode([]byte(out))
	intermediate, _ := pem.Decode(rest)
	leaf, _ := pem.Decode(certPEM)
	if block == nil || server.Fingerprint(block.Bytes) != server.Fingerprint(leaf.Bytes) ||
		intermediate == nil || server.Fingerprint(intermediate.Bytes) != server.Fingerprint(caDER) {
		t.Errorf("IMAPS does not serve the certificate and its CA:\n%s", out)
	}
}

// writeDataPair writes the pair for tmpl, with a new key, signed by
// parent's key, or its own when parent is nil, to the data folder's tls/,
// and returns the files' contents: the certificate followed by parent's.
func writeDataPair(t *testing.T, data string, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if parent != tmpl {
		certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: parent.Raw})...)
	}
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	tlsDir := filepath.Join(data, "tls")
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"cert.pem": certPEM, "key.pem": keyPEM} {
		if err := os.WriteFile(filepath.Join(tlsDir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certPEM, keyPEM
}

// sClient is what openssl s_client prints of a TLS connection to addr.
func sClient(t *testing.T, openssl, addr string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(openssl, append([]string{"s_client", "-connect", addr}, args...)...)
	cmd.Stdin = strings.NewReader("")
	out, _ := cmd.CombinedOutput()
	return out
}
