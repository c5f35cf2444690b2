package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/durable"
)

// testPair is a certificate and its key, made for a test.
type testPair struct {
	cert, key []byte
	fp        string // the certificate's SHA-256 fingerprint
}

func newPair(t *testing.T, notBefore, notAfter time.Time) testPair {
	t.Helper()
	certPEM, keyPEM, err := selfSigned([]string{"mail.example.org", "127.0.0.1"}, notBefore, notAfter)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return testPair{certPEM, keyPEM, Fingerprint(cert.Certificate[0])}
}

// freshPair is a pair valid from an hour ago for 90 days, as Let's
// Encrypt's are.
func freshPair(t *testing.T) testPair {
	t.Helper()
	return newPair(t, time.Now().Add(-time.Hour), time.Now().Add(90*24*time.Hour))
}

// writePair writes a new pair valid from notBefore to notAfter to the
// files and returns its fingerprint.
func writePair(t *testing.T, certFile, keyFile string, notBefore, notAfter time.Time) string {
	t.Helper()
	p := newPair(t, notBefore, notAfter)
	mustWrite(t, keyFile, p.key)
	mustWrite(t, certFile, p.cert)
	return p.fp
}

// mustWrite writes a file in place, as cp and acme.sh do.
func mustWrite(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// logBuffer collects a logger's lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// count is how many lines have msg as their message.
func (b *logBuffer) count(msg string) int {
	return strings.Count(b.String(), "msg=\""+msg+"\"")
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, nil))
}

// served is the fingerprint of the certificate w serves.
func served(w *CertWatcher) string {
	return Fingerprint(w.Certificate().Certificate[0])
}

// TestCertWatcherRenewal replaces the files in the ways renewal tools do;
// the first check after it serves the new certificate and logs it once.
func TestCertWatcherRenewal(t *testing.T) {
	for _, tt := range []struct {
		name string
		// setup makes the files the watcher is given, holding first;
		// renew replaces them with next.
		setup func(t *testing.T, dir string, first testPair) (certFile, keyFile string)
		renew func(t *testing.T, dir string, next testPair)
	}{
		{
			name: "rewritten in place",
			setup: func(t *testing.T, dir string, p testPair) (string, string) {
				mustWrite(t, filepath.Join(dir, "cert.pem"), p.cert)
				mustWrite(t, filepath.Join(dir, "key.pem"), p.key)
				return filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
			},
			renew: func(t *testing.T, dir string, p testPair) {
				mustWrite(t, filepath.Join(dir, "key.pem"), p.key)
				mustWrite(t, filepath.Join(dir, "cert.pem"), p.cert)
			},
		},
		{
			name: "renamed over",
			setup: func(t *testing.T, dir string, p testPair) (string, string) {
				mustWrite(t, filepath.Join(dir, "cert.pem"), p.cert)
				mustWrite(t, filepath.Join(dir, "key.pem"), p.key)
				return filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
			},
			renew: func(t *testing.T, dir string, p testPair) {
				// Same sizes, and on a coarse clock the same mtime:
				// only the inode tells.
				if err := durable.WriteFile(filepath.Join(dir, "key.pem"), p.key, 0o600); err != nil {
					t.Fatal(err)
				}
				if err := durable.WriteFile(filepath.Join(dir, "cert.pem"), p.cert, 0o644); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			// certbot: live/NAME/cert.pem -> ../../archive/NAME/certN.pem,
			// a renewal writes certN+1.pem and moves the links.
			name: "symbolic links moved",
			setup: func(t *testing.T, dir string, p testPair) (string, string) {
				for _, d := range []string{"live", "archive"} {
					if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
						t.Fatal(err)
					}
				}
				mustWrite(t, filepath.Join(dir, "archive", "fullchain1.pem"), p.cert)
				mustWrite(t, filepath.Join(dir, "archive", "privkey1.pem"), p.key)
				mustSymlink(t, "../archive/fullchain1.pem", filepath.Join(dir, "live", "fullchain.pem"))
				mustSymlink(t, "../archive/privkey1.pem", filepath.Join(dir, "live", "privkey.pem"))
				return filepath.Join(dir, "live", "fullchain.pem"), filepath.Join(dir, "live", "privkey.pem")
			},
			renew: func(t *testing.T, dir string, p testPair) {
				mustWrite(t, filepath.Join(dir, "archive", "fullchain2.pem"), p.cert)
				mustWrite(t, filepath.Join(dir, "archive", "privkey2.pem"), p.key)
				mustSymlink(t, "../archive/fullchain2.pem", filepath.Join(dir, "live", "fullchain.pem"))
				mustSymlink(t, "../archive/privkey2.pem", filepath.Join(dir, "live", "privkey.pem"))
			},
		},
		{
			// A Kubernetes secret: the files are links through a link
			// to a folder, and an update moves the folder link.
			name: "folder link moved",
			setup: func(t *testing.T, dir string, p testPair) (string, string) {
				mustMkdir(t, filepath.Join(dir, "v1"))
				mustWrite(t, filepath.Join(dir, "v1", "tls.crt"), p.cert)
				mustWrite(t, filepath.Join(dir, "v1", "tls.key"), p.key)
				mustSymlink(t, "v1", filepath.Join(dir, "data"))
				mustSymlink(t, "data/tls.crt", filepath.Join(dir, "tls.crt"))
				mustSymlink(t, "data/tls.key", filepath.Join(dir, "tls.key"))
				return filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
			},
			renew: func(t *testing.T, dir string, p testPair) {
				mustMkdir(t, filepath.Join(dir, "v2"))
				mustWrite(t, filepath.Join(dir, "v2", "tls.crt"), p.cert)
				mustWrite(t, filepath.Join(dir, "v2", "tls.key"), p.key)
				mustSymlink(t, "v2", filepath.Join(dir, "data"))
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			first, next := freshPair(t), freshPair(t)
			certFile, keyFile := tt.setup(t, dir, first)
			var logs logBuffer
			w, err := NewCertWatcher(CertWatcherConfig{CertFile: certFile, KeyFile: keyFile, Logger: logs.logger()})
			if err != nil {
				t.Fatal(err)
			}
			if served(w) != first.fp || !strings.Contains(logs.String(), "sha256="+first.fp) {
				t.Fatalf("at start serves %s, logged:\n%s", served(w), logs.String())
			}
			w.check()
			if served(w) != first.fp || logs.count("tls certificate renewed") != 0 {
				t.Fatalf("unchanged files: serves %s, logged:\n%s", served(w), logs.String())
			}
			tt.renew(t, dir, next)
			w.check()
			if served(w) != next.fp {
				t.Fatalf("after the renewal serves %s, want %s; logged:\n%s", served(w), next.fp, logs.String())
			}
			w.check()
			if n := logs.count("tls certificate renewed"); n != 1 || !strings.Contains(logs.String(), "sha256="+next.fp) {
				t.Errorf("renewal logged %d times:\n%s", n, logs.String())
			}
			if n := logs.count("tls certificate files not taken; still serving the previous certificate"); n != 0 {
				t.Errorf("errors logged:\n%s", logs.String())
			}
		})
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	// Replace the link as ln -sfT and certbot do: a new link renamed over.
	tmp := link + ".new"
	if err := os.Symlink(target, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, link); err != nil {
		t.Fatal(err)
	}
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
}

// TestCertWatcherRefusesBrokenPair walks through the states a renewal
// written in two steps passes: none of them replaces the certificate
// served, each is logged once however many checks see it, and the pair is
// taken when it is whole.
func TestCertWatcherRefusesBrokenPair(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first, next := freshPair(t), freshPair(t)
	mustWrite(t, certFile, first.cert)
	mustWrite(t, keyFile, first.key)
	var logs logBuffer
	w, err := NewCertWatcher(CertWatcherConfig{CertFile: certFile, KeyFile: keyFile, Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	const refused = "tls certificate files not taken; still serving the previous certificate"
	for i, step := range []struct {
		name    string
		change  func()
		err     string // in the error logged; "" for none
		errors  int    // errors logged so far
		serving string
	}{
		{"the new certificate with the old key", func() { mustWrite(t, certFile, next.cert) }, "private key does not match public key", 1, first.fp},
		{"the key half written", func() { mustWrite(t, keyFile, next.key[:len(next.key)/2]) }, "cut short", 2, first.fp},
		{"the key gone a moment", func() { os.Remove(keyFile) }, "no such file", 3, first.fp},
		{"the certificate half written", func() {
			mustWrite(t, keyFile, next.key)
			mustWrite(t, certFile, next.cert[:len(next.cert)-40])
		}, "cut short", 4, first.fp},
		{"the certificate empty", func() { mustWrite(t, certFile, nil) }, "failed to find any PEM data", 5, first.fp},
		{"the pair whole", func() { mustWrite(t, certFile, next.cert) }, "", 5, next.fp},
	} {
		step.change()
		// Several checks see the same state: one error at most.
		for range 3 {
			w.check()
		}
		if got := served(w); got != step.serving {
			t.Fatalf("%d. %s: serves %s, want %s", i, step.name, got, step.serving)
		}
		if n := logs.count(refused); n != step.errors {
			t.Fatalf("%d. %s: %d errors logged, want %d:\n%s", i, step.name, n, step.errors, logs.String())
		}
		lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
		if last := lines[len(lines)-1]; step.err != "" && !strings.Contains(last, step.err) {
			t.Errorf("%d. %s: the error logged does not say %q: %s", i, step.name, step.err, last)
		}
	}
	if n := logs.count("tls certificate renewed"); n != 1 {
		t.Errorf("renewal logged %d times:\n%s", n, logs.String())
	}
}

// TestUnfinishedPEM cuts a chain of two certificates at every byte: each
// cut is refused but those exactly between blocks, which look like a
// whole, shorter file, and the empty file, which fails to load anyway.
func TestUnfinishedPEM(t *testing.T) {
	leaf, intermediate := freshPair(t).cert, freshPair(t).cert
	chain := append(slices.Clone(leaf), intermediate...)
	whole := func(b []byte) bool {
		b = bytes.TrimRight(b, "\n")
		return len(b) == 0 || bytes.Equal(b, bytes.TrimRight(leaf, "\n")) || bytes.Equal(b, bytes.TrimRight(chain, "\n"))
	}
	for n := range len(chain) + 1 {
		if got, want := unfinishedPEM(chain[:n]), !whole(chain[:n]); got != want {
			t.Errorf("cut after %d bytes (%q): unfinished %v, want %v", n, chain[max(0, n-12):n], got, want)
		}
	}
	// A key as openssl writes it, whole, with a blank line after.
	if unfinishedPEM(append(freshPair(t).key, '\n')) {
		t.Error("a whole key followed by a blank line is taken for unfinished")
	}
}

// TestCertWatcherRefusesCutChain: a full chain rewritten in place and
// read while the intermediate's marker is half written is refused; the
// chain is taken when whole.
func TestCertWatcherRefusesCutChain(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first, next, intermediate := freshPair(t), freshPair(t), freshPair(t)
	mustWrite(t, certFile, first.cert)
	mustWrite(t, keyFile, first.key)
	w, err := NewCertWatcher(CertWatcherConfig{CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, keyFile, next.key)
	chain := append(slices.Clone(next.cert), intermediate.cert...)
	for _, cut := range []string{"-", "-----", "-----BEGIN CERT", "-----BEGIN CERTIFICATE-----\nMII"} {
		mustWrite(t, certFile, append(slices.Clone(next.cert), cut...))
		w.check()
		if got := served(w); got != first.fp {
			t.Fatalf("the chain cut after %q is served", cut)
		}
	}
	mustWrite(t, certFile, chain)
	w.check()
	if got := w.Certificate(); served(w) != next.fp || len(got.Certificate) != 2 {
		t.Errorf("the whole chain is not served: %d certificates, leaf %s", len(got.Certificate), served(w))
	}
}

// TestCertWatcherSameCertificate: files touched, or copied again with the
// same certificate, change nothing and log nothing.
func TestCertWatcherSameCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	p := freshPair(t)
	mustWrite(t, certFile, p.cert)
	mustWrite(t, keyFile, p.key)
	var logs logBuffer
	w, err := NewCertWatcher(CertWatcherConfig{CertFile: certFile, KeyFile: keyFile, Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	before := w.Certificate()
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(certFile, later, later); err != nil {
		t.Fatal(err)
	}
	w.check()
	if err := durable.WriteFile(keyFile, p.key, 0o600); err != nil {
		t.Fatal(err)
	}
	w.check()
	if w.Certificate() != before || logs.count("tls certificate renewed") != 0 {
		t.Errorf("the same certificate was taken again:\n%s", logs.String())
	}
}

// TestCertWatcherStartFails: a server does not start on files that do not
// make a pair.
func TestCertWatcherStartFails(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	p, q := freshPair(t), freshPair(t)
	if _, err := NewCertWatcher(CertWatcherConfig{CertFile: certFile, KeyFile: keyFile}); err == nil {
		t.Error("started without files")
	}
	mustWrite(t, certFile, p.cert)
	mustWrite(t, keyFile, q.key)
	if _, err := NewCertWatcher(CertWatcherConfig{CertFile: certFile, KeyFile: keyFile}); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("started on a mismatched pair: %v", err)
	}
}

// TestCertWatcherExpiryWarnings: a certificate near its end is warned
// about at start and then once a day, an expired one is an error, and a
// renewal ends the warnings.
func TestCertWatcherExpiryWarnings(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	start := time.Now()
	end := start.Add(10 * 24 * time.Hour)
	writePair(t, certFile, keyFile, end.Add(-90*24*time.Hour), end)
	now := start
	var logs logBuffer
	w, err := NewCertWatcher(CertWatcherConfig{CertFile: certFile, KeyFile: keyFile, Logger: logs.logger(),
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	const soon, expired = "tls certificate expires soon", "tls certificate has expired; clients refuse it"
	warnings := func() int { return logs.count(soon) }
	for _, step := range []struct {
		after             time.Duration
		warnings, expired int
	}{
		{0, 1, 0},                   // at start
		{time.Hour, 1, 0},           // not again the same day
		{25 * time.Hour, 2, 0},      // a day later
		{26 * time.Hour, 2, 0},      // not again the same day
		{11 * 24 * time.Hour, 2, 1}, // past the end
		{11*24*time.Hour + time.Hour, 2, 1},
		{12 * 24 * time.Hour, 2, 2},
	} {
		now = start.Add(step.after)
		w.check()
		if warnings() != step.warnings || logs.count(expired) != step.expired {
			t.Fatalf("at +%v: %d warnings, %d errors; want %d, %d:\n%s", step.after, warnings(), logs.count(expired), step.warnings, step.expired, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "days_left=10\n") || !strings.Contains(logs.String(), "days_left=9\n") {
		t.Errorf("the warning does not say how long is left:\n%s", logs.String())
	}
	writePair(t, certFile, keyFile, now.Add(-time.Hour), now.Add(90*24*time.Hour))
	now = now.Add(48 * time.Hour)
	w.check()
	if warnings() != 2 || logs.count(expired) != 2 || logs.count("tls certificate renewed") != 1 {
		t.Errorf("after the renewal:\n%s", logs.String())
	}
}

// TestCertWatcherAppleValidity: a certificate valid longer than Apple's
// systems accept is warned about.
func TestCertWatcherAppleValidity(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	const warning = "tls certificate is valid for more than 825 days, which Apple Mail and iPhones refuse"
	for _, tt := range []struct {
		name       string
		validity   time.Duration
		selfSigned bool
		want       int
		advice     bool // to make a new self-signed one
	}{
		{"self-signed", selfSignedValidity, true, 0, false},
		{"ten years", 10 * 365 * 24 * time.Hour, false, 1, false},
		{"ten years, an older buzon's self-signed", 10 * 365 * 24 * time.Hour, true, 1, true},
	} {
		notBefore := time.Now().Add(-time.Hour)
		writePair(t, certFile, keyFile, notBefore, notBefore.Add(tt.validity))
		var logs logBuffer
		if _, err := NewCertWatcher(CertWatcherConfig{CertFile: certFile, KeyFile: keyFile, SelfSigned: tt.selfSigned, Logger: logs.logger()}); err != nil {
			t.Fatal(err)
		}
		if n := logs.count(warning); n != tt.want {
			t.Errorf("%s: %d warnings, want %d:\n%s", tt.name, n, tt.want, logs.String())
		}
		if advised := strings.Contains(logs.String(), "delete the certificate file and restart buzon"); advised != tt.advice {
			t.Errorf("%s: advice to make a new one: %v:\n%s", tt.name, advised, logs.String())
		}
	}
}

// TestCertWatcherHandshakes serves TLS with the watcher's config: after a
// renewal, new handshakes present the new certificate and a session
// opened before carries on.
func TestCertWatcherHandshakes(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first, next := freshPair(t), freshPair(t)
	mustWrite(t, certFile, first.cert)
	mustWrite(t, keyFile, first.key)
	w, err := NewCertWatcher(CertWatcherConfig{CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	cfg := w.TLSConfig()
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion %x", cfg.MinVersion)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c) // echo
			}()
		}
	}()
	dial := func() (*tls.Conn, string) {
		t.Helper()
		c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c, Fingerprint(c.ConnectionState().PeerCertificates[0].Raw)
	}
	echo := func(c net.Conn, line string) {
		t.Helper()
		if _, err := io.WriteString(c, line+"\n"); err != nil {
			t.Fatal(err)
		}
		got, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || got != line+"\n" {
			t.Fatalf("echo %q: %q, %v", line, got, err)
		}
	}
	before, fp := dial()
	if fp != first.fp {
		t.Fatalf("first handshake got %s, want %s", fp, first.fp)
	}
	echo(before, "before")
	mustWrite(t, keyFile, next.key)
	mustWrite(t, certFile, next.cert)
	w.check()
	if _, fp := dial(); fp != next.fp {
		t.Errorf("handshake after the renewal got %s, want %s", fp, next.fp)
	}
	echo(before, "after") // the session opened before carries on
}

// TestCertWatcherRun: Run finds a renewal by itself, and returns when its
// context ends.
func TestCertWatcherRun(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writePair(t, certFile, keyFile, time.Now().Add(-time.Hour), time.Now().Add(90*24*time.Hour))
	lines := make(lineChan, 16)
	w, err := NewCertWatcher(CertWatcherConfig{CertFile: certFile, KeyFile: keyFile, Interval: time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(lines, nil))})
	if err != nil {
		t.Fatal(err)
	}
	<-lines // the certificate at start
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		w.Run(ctx)
		close(done)
	}()
	next := writePair(t, certFile, keyFile, time.Now().Add(-time.Hour), time.Now().Add(90*24*time.Hour))
	for taken := false; !taken; {
		select {
		case line := <-lines:
			taken = strings.Contains(line, `msg="tls certificate renewed"`) && strings.Contains(line, "sha256="+next)
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not take the renewed certificate")
		}
	}
	if served(w) != next {
		t.Errorf("logged the renewal, serves %s", served(w))
	}
	cancel()
	<-done
}

// lineChan passes on each line a logger writes.
type lineChan chan string

func (c lineChan) Write(p []byte) (int, error) {
	c <- string(p)
	return len(p), nil
}

// BenchmarkCertCheck is what a check that finds the files unchanged costs
// (two stat calls), against a TLS 1.3 handshake with the certificate.
func BenchmarkCertCheck(b *testing.B) {
	dir := b.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certPEM, keyPEM, err := SelfSignedCert([]string{"localhost"})
	if err != nil {
		b.Fatal(err)
	}
	os.WriteFile(certFile, certPEM, 0o600)
	os.WriteFile(keyFile, keyPEM, 0o600)
	w, err := NewCertWatcher(CertWatcherConfig{CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("check", func(b *testing.B) {
		for b.Loop() {
			w.check()
		}
	})
	b.Run("handshake", func(b *testing.B) {
		l, err := tls.Listen("tcp", "127.0.0.1:0", w.TLSConfig())
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.(*tls.Conn).Handshake()
				c.Close()
			}
		}()
		for b.Loop() {
			c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{InsecureSkipVerify: true})
			if err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	})
}
