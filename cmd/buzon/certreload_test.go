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
// and the STARTTLS of IMAP, POP3 and SMTP, sees the old certificate while
// only the new certificate's link has moved, and the new one once the key
// has too; a session opened before the renewal carries on.
func TestCertificateRenewal(t *testing.T) {
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
		case "imap", "pop3", "smtp":
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
		for _, listener := range []string{"imaps", "pop3s", "imap", "pop3", "smtp"} {
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
	openssl := clienttest.Need(t, "openssl", "openssl")
	data := t.TempDir()
	tlsDir := filepath.Join(data, "tls")
	if err := os.Mkdir(tlsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	// An expired pair, as a buzon of ten years ago left it.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().AddDate(-10, 0, -1), NotAfter: time.Now().AddDate(0, 0, -1),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, block := range map[string]*pem.Block{"cert.pem": {Type: "CERTIFICATE", Bytes: der}, "key.pem": {Type: "EC PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(filepath.Join(tlsDir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old, err := os.ReadFile(filepath.Join(tlsDir, "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	in := start(t, data)
	if !strings.Contains(in.logs(), `msg="made a new self-signed certificate in place of one at its end; clients must accept the new one"`) {
		t.Errorf("the renewal at start was not logged:\n%s", in.logs())
	}
	now, err := os.ReadFile(filepath.Join(tlsDir, "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(now)
	if block == nil || string(now) == string(old) {
		t.Fatalf("cert.pem was not replaced:\n%s", now)
	}
	cmd := exec.Command(openssl, "s_client", "-connect", in.ports["imaps"])
	cmd.Stdin = strings.NewReader("")
	out, _ := cmd.CombinedOutput()
	served, _ := pem.Decode(out)
	if served == nil || server.Fingerprint(served.Bytes) != server.Fingerprint(block.Bytes) {
		t.Errorf("IMAPS does not serve the new certificate:\n%s", out)
	}
	if !strings.Contains(string(out), "Verify return code: 18") { // self-signed, and not 10: expired
		t.Errorf("openssl does not find the certificate merely self-signed:\n%s", out)
	}
}
