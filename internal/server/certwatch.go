package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ExpiryWarning is how close to its end a certificate being served is
// warned about: at start, and once a day after. Let's Encrypt's tools
// renew 30 days before the end, so a warning means a renewal has failed
// for two weeks, or the files it writes are not the ones served.
const ExpiryWarning = 14 * 24 * time.Hour

// DefaultCertCheckInterval is how often a CertWatcher looks at its files
// unless told otherwise: two stat calls, a few microseconds.
const DefaultCertCheckInterval = 5 * time.Second

// appleMaxValidity is the longest validity Apple's systems accept for a
// TLS server certificate issued since 1 July 2019, from any issuer.
const appleMaxValidity = 825 * 24 * time.Hour

// CertWatcherConfig configures a CertWatcher.
type CertWatcherConfig struct {
	// CertFile holds the certificate chain (PEM), leaf first; KeyFile its
	// private key. Either may be a symbolic link (certbot's live/ folder):
	// the file it points to is the one watched.
	CertFile, KeyFile string
	// SelfSigned says the files are buzon's own self-signed pair, which
	// a restart renews; it changes only what the warnings advise.
	SelfSigned bool
	// Interval between two looks at the files in Run. Zero:
	// DefaultCertCheckInterval.
	Interval time.Duration
	// Now is the clock for the expiry warnings. Nil: time.Now.
	Now func() time.Time
	// Logger receives the certificates taken, the files refused and the
	// expiry warnings. Nil: no logging.
	Logger *slog.Logger
}

// CertWatcher serves the certificate in a pair of files and takes the new
// one when the files change, so that a renewal (certbot, acme.sh, lego)
// needs no restart: handshakes after it present the new certificate, and
// sessions already open carry on.
//
// A pair that does not load (a certificate whose key is not written yet,
// a file cut in a PEM block or in the next block's marker, a file missing
// for a moment) never replaces the certificate served: it is logged once,
// and taken when a later change makes it whole. A chain cut exactly
// between two blocks cannot be told from a shorter whole one (see
// unfinishedPEM); renewal tools that rename new files into place never
// show one.
type CertWatcher struct {
	cfg  CertWatcherConfig
	log  *slog.Logger
	cert atomic.Pointer[tls.Certificate] // served; never nil after NewCertWatcher

	mu sync.Mutex // serialises check; guards the fields below
	// served is the state of the files cert was loaded from: while they
	// look the same, they are not read again.
	served pairStamp
	// refused is the state and error of files last refused, so that one
	// broken pair is logged once however many checks see it.
	refused      pairStamp
	refusedError string
	// warned is when the served certificate's expiry was last warned
	// about; zero for a certificate not warned about yet.
	warned time.Time
}

// NewCertWatcher loads the pair in cfg's files, and fails if it does not
// load: a server does not start without its certificate.
func NewCertWatcher(cfg CertWatcherConfig) (*CertWatcher, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultCertCheckInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	w := &CertWatcher{cfg: cfg, log: cfg.Logger}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	stamp, err := statPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	cert, err := loadKeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	w.cert.Store(cert)
	w.served = stamp
	w.logTaken("tls certificate", cert)
	w.mu.Lock()
	w.warnLocked(w.cfg.Now())
	w.mu.Unlock()
	return w, nil
}

// TLSConfig returns the server TLS configuration of TLSConfig, with the
// certificate the watcher serves at each handshake.
func (w *CertWatcher) TLSConfig() *tls.Config {
	c := baseTLSConfig()
	c.GetCertificate = w.GetCertificate
	return c
}

// GetCertificate returns the certificate served now, whatever the client
// asks for; it is tls.Config.GetCertificate. It does not look at the
// files: Run does, away from the handshakes.
func (w *CertWatcher) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return w.cert.Load(), nil
}

// Certificate returns the certificate served now.
func (w *CertWatcher) Certificate() *tls.Certificate {
	return w.cert.Load()
}

// Run looks at the files every Interval until ctx ends, taking a new pair
// when they change, and warns once a day about a certificate near its end.
func (w *CertWatcher) Run(ctx context.Context) {
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.check()
		}
	}
}

// check looks at the files once: if they changed since the certificate
// served was loaded, it loads them and serves the new pair, or logs why it
// could not, once per state of the files.
func (w *CertWatcher) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer w.warnLocked(w.cfg.Now())
	stamp, err := statPair(w.cfg.CertFile, w.cfg.KeyFile)
	if err == nil && stamp.same(w.served) {
		w.refused, w.refusedError = pairStamp{}, ""
		return
	}
	// The stat came first: a file that changes while it is read leaves a
	// stamp older than what was read, and is read again next time.
	var cert *tls.Certificate
	if err == nil {
		cert, err = loadKeyPair(w.cfg.CertFile, w.cfg.KeyFile)
	}
	if err != nil {
		// A pair refused is read again at each check, not only when its
		// stamps change: a permission put right changes no mtime. It
		// is logged again only when the files or the error change.
		if !stamp.same(w.refused) || err.Error() != w.refusedError {
			w.refused, w.refusedError = stamp, err.Error()
			w.log.Error("tls certificate files not taken; still serving the previous certificate",
				"cert", w.cfg.CertFile, "key", w.cfg.KeyFile, "err", err)
		}
		return
	}
	w.served = stamp
	w.refused, w.refusedError = pairStamp{}, ""
	if sameChain(w.cert.Load(), cert) {
		return // touched, or copied again as it was
	}
	w.cert.Store(cert)
	w.warned = time.Time{}
	w.logTaken("tls certificate renewed", cert)
}

// warnLocked logs, at most once a day, that the certificate served is near
// its end or past it. The caller holds w.mu.
func (w *CertWatcher) warnLocked(now time.Time) {
	leaf := w.cert.Load().Leaf
	left := leaf.NotAfter.Sub(now)
	if left > ExpiryWarning || !w.warned.IsZero() && now.Sub(w.warned) < 24*time.Hour {
		return
	}
	w.warned = now
	advice := "renew it; buzon takes the new files by itself"
	if w.cfg.SelfSigned {
		advice = "restart buzon to make a new self-signed one (its fingerprint will change)"
	}
	args := []any{"cert", w.cfg.CertFile, "subject", leaf.Subject.String(),
		"not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "advice", advice}
	if left <= 0 {
		w.log.Error("tls certificate has expired; clients refuse it", args...)
	} else {
		days := int(math.Ceil(left.Hours() / 24))
		w.log.Warn("tls certificate expires soon", append(args, "days_left", days)...)
	}
}

// logTaken logs a certificate taken: what it names, who issued it, its
// fingerprint and end.
func (w *CertWatcher) logTaken(msg string, cert *tls.Certificate) {
	leaf := cert.Leaf
	names := slices.Clone(leaf.DNSNames)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	w.log.Info(msg, "cert", w.cfg.CertFile, "subject", leaf.Subject.String(),
		"names", strings.Join(names, ","), "issuer", leaf.Issuer.String(),
		"sha256", Fingerprint(leaf.Raw), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	// Apple checks the validity of every issuer's certificates, private
	// and self-signed ones included (iOS 13, macOS 10.15 and later).
	appleRuleStart := time.Date(2019, 7, 1, 0, 0, 0, 0, time.UTC)
	if leaf.NotAfter.Sub(leaf.NotBefore) > appleMaxValidity && leaf.NotBefore.After(appleRuleStart) {
		args := []any{"cert", w.cfg.CertFile, "not_before", leaf.NotBefore.UTC().Format(time.RFC3339),
			"not_after", leaf.NotAfter.UTC().Format(time.RFC3339)}
		if w.cfg.SelfSigned { // made by an older buzon
			args = append(args, "advice", "delete the certificate file and restart buzon to make one Apple's clients take")
		}
		w.log.Warn("tls certificate is valid for more than 825 days, which Apple Mail and iPhones refuse", args...)
	}
}

// sameChain says whether two certificates carry the same chain.
func sameChain(a, b *tls.Certificate) bool {
	if len(a.Certificate) != len(b.Certificate) {
		return false
	}
	for i := range a.Certificate {
		if !bytes.Equal(a.Certificate[i], b.Certificate[i]) {
			return false
		}
	}
	return true
}

// pairStamp is what stat says of a certificate file and its key file: nil
// for a file that could not be looked at.
type pairStamp struct{ cert, key fs.FileInfo }

// statPair stats both files, following symbolic links: a link pointed at
// another file (certbot's live/ to archive/) is a change of file. It
// returns what it could stat with the first error.
func statPair(certFile, keyFile string) (pairStamp, error) {
	var p pairStamp
	var cerr, kerr error
	p.cert, cerr = os.Stat(certFile)
	p.key, kerr = os.Stat(keyFile)
	return p, errors.Join(cerr, kerr)
}

// same says whether both files look unchanged: the same file (device and
// inode), of the same size and modification time. A renewal that writes
// new files and renames them (certbot, lego) changes the inode; one that
// rewrites a file in place (cp, acme.sh) its size or mtime.
func (p pairStamp) same(q pairStamp) bool {
	return sameStamp(p.cert, q.cert) && sameStamp(p.key, q.key)
}

func sameStamp(a, b fs.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// loadKeyPair loads a certificate chain and its key, refusing a file cut
// short in a PEM block or in the marker of the next one, whose whole
// blocks would otherwise load: a chain missing its last intermediate.
func loadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{certFile, certPEM}, {keyFile, keyPEM}} {
		if unfinishedPEM(f.data) {
			return nil, fmt.Errorf("%s: a PEM block or its marker is cut short (a file still being written?)", f.name)
		}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s and %s: %w", certFile, keyFile, err)
	}
	if cert.Leaf == nil { // GODEBUG x509keypairleaf=0
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("%s: %w", certFile, err)
		}
	}
	return &cert, nil
}

// unfinishedPEM says whether data was cut short while written: a PEM
// block that begins and does not end, or, after the last whole block, any
// part of the marker that begins another ("-", "-----BEG"). A file cut
// exactly after a block (its END line, or the newline after it) looks like
// a whole file with fewer blocks, and no reading of it can tell: a
// renewal that rewrites a chain in place, rather than renaming a new file
// over it, can be taken without its last certificates until the next
// write.
func unfinishedPEM(data []byte) bool {
	for {
		block, rest := pem.Decode(data)
		if block == nil {
			break
		}
		data = rest
	}
	tail := bytes.TrimSpace(data)
	return bytes.Contains(tail, []byte("-----")) ||
		len(tail) > 0 && bytes.HasPrefix([]byte("-----BEGIN"), tail)
}
