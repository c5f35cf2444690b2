// Package autoconfig tells mail clients how to reach buzon, so that a
// person setting up an account types an address and a password and
// nothing else. It serves, over HTTP:
//
//   - Thunderbird's autoconfig (clientConfig version 1.1), which
//     Thunderbird, Thunderbird for Android (K-9), FairEmail, Evolution
//     and KMail read: GET /mail/config-v1.1.xml, asked of
//     autoconfig.<domain>, and GET
//     /.well-known/autoconfig/mail/config-v1.1.xml, asked of the domain
//     itself;
//   - Outlook's POX Autodiscover (MS-OXDSCLI, the "email" account type):
//     POST /autodiscover/autodiscover.xml, in any letter case;
//   - an Apple configuration profile (an unsigned .mobileconfig with a
//     com.apple.mail.managed payload) that iOS and macOS install from
//     Safari: GET /apple/mail.mobileconfig?emailaddress=ADDR, over HTTPS
//     only (see Config.AppleOverHTTP).
//
// Every answer is the same for every syntactically valid address of a
// served domain, whether an account of that name exists or not: the
// server never looks an account up, so it cannot tell anyone which ones
// exist. Addresses that are not valid account names (or hold a character
// XML cannot carry) get 400, addresses and hosts of other domains 404,
// both without detail. No answer holds a password. Everything taken from
// a request is written by encoding/xml, escaped.
package autoconfig

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/buzon-mail/buzon/internal/store"
)

// Security is how a client secures its connection to an Endpoint.
type Security int

const (
	// TLS is implicit TLS: the handshake starts the connection (IMAPS on
	// 993, POP3S on 995, submission on 465; RFC 8314 3.3).
	TLS Security = iota
	// STARTTLS is a plaintext connection the client upgrades before it
	// logs in (IMAP STARTTLS, POP3 STLS, SMTP STARTTLS).
	STARTTLS
)

// Endpoint is a server a mail client is told to connect to.
type Endpoint struct {
	// Protocol is "imap" or "pop3" for incoming mail, "smtp" for the
	// outgoing (submission) server.
	Protocol string
	// Host is the name the client connects to and checks the server's
	// certificate against.
	Host string
	// Port is the TCP port.
	Port int
	// Security says how the connection is secured.
	Security Security
}

// Config configures a Server.
type Config struct {
	// Incoming lists the IMAP and POP3 servers, the one clients should
	// prefer first. It must not be empty.
	Incoming []Endpoint
	// Outgoing lists the submission servers (protocol "smtp"), the
	// preferred first: Thunderbird is told of all, Outlook and Apple
	// profiles of the first. Empty: none is told; Thunderbird then
	// rejects the whole autoconfig answer and guesses instead, and Apple
	// profiles, which need one, are not offered (404).
	Outgoing []Endpoint
	// Domains lists the mail domains whose addresses the answers are for,
	// in lower case. It is called by one request at a time, at most once
	// per DomainsTTL, with a context of its own that the requesting
	// client's going away does not cancel, bounded to 10 seconds. After
	// an error the last list it returned stays in use and it is called
	// again 5 seconds later (or after DomainsTTL, if shorter); the first
	// error of a run of them is logged. Until it has returned a list
	// once, requests are answered 503.
	Domains func(ctx context.Context) ([]string, error)
	// DomainsTTL is how long a list from Domains is used; 0 means one
	// minute.
	DomainsTTL time.Duration
	// AppleOverHTTP serves the Apple profile to requests that came over
	// plain HTTP too. Off, it is served only over TLS (404 otherwise): a
	// profile may carry certificates and other payloads the device
	// trusts, and it is unsigned, so one swapped on the way would look
	// the same to the person installing it. Turn it on only where a
	// proxy that terminates TLS passes requests on over plain HTTP.
	AppleOverHTTP bool
	// HeaderTimeout bounds the wait for a request's header, from the
	// connection or the previous answer; 0 means 10 seconds. The whole
	// request gets twice as long, the answer three times.
	HeaderTimeout time.Duration
	// Logger receives one line per failure; nil discards.
	Logger *slog.Logger
	// Now is the clock, for tests; nil means time.Now.
	Now func() time.Time
}

// Server answers mail clients' configuration requests. It is an
// http.Handler; HTTPServer wraps it with the timeouts a public listener
// needs.
type Server struct {
	cfg Config
	log *slog.Logger

	mu             sync.Mutex
	domains        []string      // guarded by mu; the last list cfg.Domains returned
	domainsOK      bool          // guarded by mu; domains holds a list read
	domainsNext    time.Time     // guarded by mu; when to read again; zero: now
	domainsFailing bool          // guarded by mu; the last read failed, and that was logged
	reading        chan struct{} // guarded by mu; non-nil while a read runs, closed when it ends
}

// New returns a Server; cfg.Incoming must name at least one server.
func New(cfg Config) (*Server, error) {
	if len(cfg.Incoming) == 0 {
		return nil, errors.New("autoconfig: no IMAP or POP3 server to tell clients of")
	}
	for _, e := range slices.Concat(cfg.Incoming, cfg.Outgoing) {
		if e.Host == "" || e.Port < 1 || e.Port > 65535 {
			return nil, fmt.Errorf("autoconfig: %s server %q port %d: need a host name and a port", e.Protocol, e.Host, e.Port)
		}
	}
	if cfg.Domains == nil {
		return nil, errors.New("autoconfig: no list of served domains")
	}
	if cfg.DomainsTTL == 0 {
		cfg.DomainsTTL = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HeaderTimeout == 0 {
		cfg.HeaderTimeout = 10 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: log}, nil
}

// Request bodies (Autodiscover's) are at most this long: a real one is
// under 500 bytes.
const maxBody = 16 << 10

// HTTPServer returns an http.Server for s with the timeouts a listener
// open to the internet needs: a client that sends its request slowly
// (slowloris), never reads the answer, or holds an idle connection open
// is dropped.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.cfg.HeaderTimeout,
		ReadTimeout:       2 * s.cfg.HeaderTimeout,
		WriteTimeout:      3 * s.cfg.HeaderTimeout,
		IdleTimeout:       6 * s.cfg.HeaderTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

// ServeHTTP routes a request to the answer for its client.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	switch path := r.URL.Path; {
	case path == "/mail/config-v1.1.xml" || path == "/.well-known/autoconfig/mail/config-v1.1.xml":
		if only(w, r, http.MethodGet) {
			s.thunderbird(w, r)
		}
	case strings.EqualFold(path, "/autodiscover/autodiscover.xml"):
		if only(w, r, http.MethodPost) {
			s.autodiscover(w, r)
		}
	case path == "/apple/mail.mobileconfig":
		if r.TLS == nil && !s.cfg.AppleOverHTTP {
			fail(w, http.StatusNotFound)
		} else if only(w, r, http.MethodGet) {
			s.apple(w, r)
		}
	default:
		fail(w, http.StatusNotFound)
	}
}

// only answers 405 to a request whose method is not method (HEAD goes
// with GET), and reports whether the request may go on.
func only(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method || method == http.MethodGet && r.Method == http.MethodHead {
		return true
	}
	allow := method
	if method == http.MethodGet {
		allow = "GET, HEAD"
	}
	w.Header().Set("Allow", allow)
	fail(w, http.StatusMethodNotAllowed)
	return false
}

// fail answers a status with its standard text and nothing more: which
// part of a request was wrong is not the client's to learn.
func fail(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintln(w, http.StatusText(status))
}

// errBadAddress and errOtherDomain are what address finds wrong with an
// address: 400 and 404.
var (
	errBadAddress  = errors.New("not a valid address")
	errOtherDomain = errors.New("not a served domain")
)

// address checks that addr is a valid account name (as logins take it)
// of a served domain and returns it in canonical form with its domain.
func (s *Server) address(ctx context.Context, addr string) (canonical, domain string, err error) {
	canonical = store.CanonicalAccountName(addr)
	if store.ValidAccountName(canonical) != nil || !xmlText(canonical) {
		return "", "", errBadAddress
	}
	domain = canonical[strings.LastIndexByte(canonical, '@')+1:]
	if err := s.served(ctx, domain); err != nil {
		return "", "", err
	}
	return canonical, domain, nil
}

// xmlText reports whether every character of s is one XML can carry
// (XML 1.0 section 2.2, Char). encoding/xml writes any other as U+FFFD,
// so that an answer would name another address than the one asked for.
func xmlText(s string) bool {
	for _, r := range s {
		switch {
		case r == '\t' || r == '\n' || r == '\r', r >= 0x20 && r <= 0xd7ff, r >= 0xe000 && r <= 0xfffd, r >= 0x10000 && r <= utf8.MaxRune:
		default:
			return false
		}
	}
	return true
}

// hostDomain is the mail domain a request without an address is for:
// its Host, less the "autoconfig." Thunderbird puts before the domain.
func (s *Server) hostDomain(ctx context.Context, r *http.Request) (string, error) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, d := range []string{host, strings.TrimPrefix(host, "autoconfig.")} {
		if s.served(ctx, d) == nil {
			return d, nil
		}
	}
	return "", errOtherDomain
}

// served reports, as nil, that domain is one of the served domains.
func (s *Server) served(ctx context.Context, domain string) error {
	domains, err := s.domainList(ctx)
	if err != nil {
		return err
	}
	if !slices.Contains(domains, domain) {
		return errOtherDomain
	}
	return nil
}

// refuse answers the error address, hostDomain or served returned.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, errBadAddress):
		fail(w, http.StatusBadRequest)
	case errors.Is(err, errOtherDomain):
		fail(w, http.StatusNotFound)
	default:
		// The failure to list the domains was logged where it happened,
		// once for a run of them.
		fail(w, http.StatusServiceUnavailable)
	}
}
