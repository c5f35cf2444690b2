package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/buzon-mail/buzon/internal/server"
)

// Errors of a run that the person running it can act on. They wrap the
// underlying error; test with errors.Is.
var (
	// ErrLogin means the server refused the user name or password.
	ErrLogin = errors.New("login refused")
	// ErrTimeout means the server did not answer within the account's
	// timeout.
	ErrTimeout = errors.New("server did not answer in time")
	// ErrConnect means the server could not be reached.
	ErrConnect = errors.New("cannot connect")
)

// CertificateError is a server certificate the account does not trust.
// It carries the certificate's SHA-256 fingerprint so that the person can
// compare it and pin it with tls_fingerprint.
type CertificateError struct {
	// Addr is the server's host:port.
	Addr string
	// Fingerprint is the SHA-256 of the server's certificate, in hex.
	Fingerprint string
	// Pinned is the configured fingerprint when it did not match.
	Pinned string
	// Err is why the certificate was not trusted, when it was checked
	// against certificate authorities.
	Err error
}

var _ error = (*CertificateError)(nil)

func (e *CertificateError) Error() string {
	if e.Pinned != "" {
		return fmt.Sprintf("TLS certificate of %s has SHA-256 fingerprint %s, not the pinned %s: the server's certificate changed, or this is not your server",
			e.Addr, e.Fingerprint, e.Pinned)
	}
	return fmt.Sprintf("TLS certificate of %s not trusted (%v); its SHA-256 fingerprint is %s: if you trust it, set tls_fingerprint = %q for this account",
		e.Addr, e.Err, e.Fingerprint, e.Fingerprint)
}

func (e *CertificateError) Unwrap() error { return e.Err }

// tlsConfig returns the client TLS configuration of an account. Go's own
// verification is replaced by VerifyConnection so that a certificate that
// fails it is still at hand to report its fingerprint.
func tlsConfig(a *Account) (*tls.Config, error) {
	var pin []byte
	if a.TLSFingerprint != "" {
		var err error
		if pin, err = parseFingerprint(a.TLSFingerprint); err != nil {
			return nil, err
		}
	}
	var roots *x509.CertPool
	if a.TLSCAFile != "" {
		pem, err := os.ReadFile(a.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls_ca_file: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls_ca_file %s: no PEM certificate in it", a.TLSCAFile)
		}
	}
	addr := a.addr()
	return &tls.Config{
		ServerName:         a.Host,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // verified below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("TLS: %s sent no certificate", addr)
			}
			leaf := cs.PeerCertificates[0]
			fp := server.Fingerprint(leaf.Raw)
			if pin != nil {
				sum := sha256.Sum256(leaf.Raw)
				if bytes.Equal(sum[:], pin) {
					return nil
				}
				return &CertificateError{Addr: addr, Fingerprint: fp, Pinned: strings.ToLower(a.TLSFingerprint)}
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := leaf.Verify(x509.VerifyOptions{DNSName: a.Host, Roots: roots, Intermediates: inter})
			if err != nil {
				return &CertificateError{Addr: addr, Fingerprint: fp, Err: err}
			}
			return nil
		},
	}, nil
}

// dial connects to the account's server within its timeout and, for
// implicit TLS, completes the handshake. It returns the connection to use
// and the watched connection under it.
func dial(ctx context.Context, a *Account, tc *tls.Config) (net.Conn, *watchedConn, error) {
	timeout := a.Timeout.D()
	d := net.Dialer{Timeout: timeout}
	raw, err := d.DialContext(ctx, "tcp", a.addr())
	if err != nil {
		return nil, nil, describeNetErr(err, a)
	}
	w := watch(raw, timeout)
	if a.TLS != TLSImplicit {
		return w, w, nil
	}
	tlsConn := tls.Client(w, tc)
	err = w.do(func() error { return tlsConn.HandshakeContext(ctx) })
	if err != nil {
		w.Close()
		return nil, nil, describeTLSErr(err, a)
	}
	return tlsConn, w, nil
}

// describeNetErr turns a network error into one a person can act on.
func describeNetErr(err error, a *Account) error {
	var ce *CertificateError
	var ne net.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce), errors.Is(err, ErrTimeout), errors.Is(err, ErrConnect), errors.Is(err, ErrLogin):
		return err
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w: %s did not answer within %v", ErrTimeout, a.addr(), a.Timeout.D())
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		var errno syscall.Errno
		errors.As(err, &errno) // "connection refused", without the dial's repetition of the address
		return fmt.Errorf("%w to %s: %w", ErrConnect, a.addr(), errno)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fmt.Errorf("%w to %s: %w", ErrConnect, a.addr(), err)
	}
	return err
}

// describeTLSErr explains a failed handshake.
func describeTLSErr(err error, a *Account) error {
	var ce *CertificateError
	var rhe tls.RecordHeaderError
	switch {
	case errors.As(err, &ce):
		return ce
	case errors.As(err, &rhe):
		return fmt.Errorf("TLS handshake with %s: the server does not speak TLS on this port (tls = %q; try %q or another port)",
			a.addr(), a.TLS, map[string]string{TLSImplicit: TLSStartTLS, TLSStartTLS: TLSImplicit}[a.TLS])
	}
	if d := describeNetErr(err, a); d != err {
		return d
	}
	return fmt.Errorf("TLS handshake with %s: %w", a.addr(), err)
}

// watchedConn fails a connection that makes no progress for timeout while
// a command is in flight, however long the whole transfer takes: a
// download of a large message goes on as long as data keeps arriving.
// Between commands (while a message is being stored, or during IMAP IDLE)
// the connection may be silent for any time. It sets no deadlines itself.
type watchedConn struct {
	net.Conn
	timeout time.Duration
	// noDeadlines makes the Set*Deadline methods do nothing, for the
	// IMAP client library, whose own deadlines (30 s for a response, 5
	// minutes for a whole literal, whatever the account's timeout) would
	// cut off a slow server the account allows, and a large message still
	// arriving over a slow link. Set before the library has the
	// connection.
	noDeadlines bool
	// last is when data last moved, in Unix nanoseconds.
	last atomic.Int64
	// busy counts commands in flight.
	busy atomic.Int32
	// timedOut is set when the watchdog closed the connection.
	timedOut  atomic.Bool
	closeOnce sync.Once
	done      chan struct{}
}

var _ net.Conn = (*watchedConn)(nil)

// watch wraps nc and starts its watchdog, which ends when nc is closed.
func watch(nc net.Conn, timeout time.Duration) *watchedConn {
	w := &watchedConn{Conn: nc, timeout: timeout, done: make(chan struct{})}
	w.last.Store(time.Now().UnixNano())
	go w.watchdog()
	return w
}

func (w *watchedConn) watchdog() {
	tick := time.NewTicker(max(w.timeout/8, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-w.done:
			return
		case now := <-tick.C:
			if w.busy.Load() > 0 && now.Sub(time.Unix(0, w.last.Load())) > w.timeout {
				w.timedOut.Store(true)
				w.Close()
				return
			}
		}
	}
}

func (w *watchedConn) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	if n > 0 {
		w.last.Store(time.Now().UnixNano())
	}
	return n, err
}

func (w *watchedConn) Write(p []byte) (int, error) {
	n, err := w.Conn.Write(p)
	if n > 0 {
		w.last.Store(time.Now().UnixNano())
	}
	return n, err
}

func (w *watchedConn) SetDeadline(t time.Time) error {
	if w.noDeadlines {
		return nil
	}
	return w.Conn.SetDeadline(t)
}

func (w *watchedConn) SetReadDeadline(t time.Time) error {
	if w.noDeadlines {
		return nil
	}
	return w.Conn.SetReadDeadline(t)
}

func (w *watchedConn) SetWriteDeadline(t time.Time) error {
	if w.noDeadlines {
		return nil
	}
	return w.Conn.SetWriteDeadline(t)
}

// Close closes the connection and stops the watchdog.
func (w *watchedConn) Close() error {
	w.closeOnce.Do(func() { close(w.done) })
	return w.Conn.Close()
}

// do runs one command (or exchange) under the watchdog. An error after
// the watchdog fired is ErrTimeout.
func (w *watchedConn) do(fn func() error) error {
	w.last.Store(time.Now().UnixNano())
	w.busy.Add(1)
	err := fn()
	w.busy.Add(-1)
	if err != nil && w.timedOut.Load() {
		return fmt.Errorf("%w (no data for %v): %w", ErrTimeout, w.timeout, err)
	}
	return err
}
