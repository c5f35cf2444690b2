package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/buzon-mail/buzon/internal/auth"
	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/delivery"
	"github.com/buzon-mail/buzon/internal/imapserver"
	"github.com/buzon-mail/buzon/internal/managesieve"
	"github.com/buzon-mail/buzon/internal/pop3server"
	"github.com/buzon-mail/buzon/internal/server"
	"github.com/buzon-mail/buzon/internal/smtpclient"
	"github.com/buzon-mail/buzon/internal/smtpserver"
	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/sqlite"
)

func runServe(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", `usage: buzon serve [--data DIR] [--config FILE] [--hostname NAME] [--imap ADDR] [--imaps ADDR] [--pop3 ADDR] [--pop3s ADDR] [--lmtp ADDR] [--smtp ADDR] [--submission ADDR] [--submissions ADDR] [--sieve ADDR] [--autoconfig ADDR] [--autoconfigs ADDR]

Flags override the config file (buzon config example prints every setting).`, stderr)
	var cf commonFlags
	cf.register(fs)
	listen := map[string]*string{}
	for _, name := range []string{"imap", "imaps", "pop3", "pop3s", "lmtp", "smtp", "submission", "submissions", "sieve", "autoconfig", "autoconfigs"} {
		listen[name] = fs.String(name, "", "listen address for "+name+" (host:port or off)")
	}
	hostname := fs.String("hostname", "", "host name for greetings and the certificate")
	if pos, err := parseInterleaved(fs, args); err != nil {
		return flagError(err)
	} else if len(pos) > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", pos[0])}
	}
	cfg, err := cf.read()
	if err != nil {
		return err
	}
	for name, dst := range map[string]*string{"imap": &cfg.Listen.IMAP, "imaps": &cfg.Listen.IMAPS,
		"pop3": &cfg.Listen.POP3, "pop3s": &cfg.Listen.POP3S, "lmtp": &cfg.Listen.LMTP, "smtp": &cfg.Listen.SMTP,
		"submission": &cfg.Listen.Submission, "submissions": &cfg.Listen.Submissions, "sieve": &cfg.Listen.Sieve, "autoconfig": &cfg.Listen.Autoconfig, "autoconfigs": &cfg.Listen.Autoconfigs} {
		if v := *listen[name]; v != "" {
			*dst = v
		}
	}
	if *hostname != "" {
		cfg.Hostname = *hostname
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals()...)
	defer stop()
	// A goroutine in a file system call (fsync, SQLite's reads and locks)
	// keeps its P until the runtime notices, and with one P per core the
	// sessions that only wait for the network wait for it too. A few more
	// Ps than cores keep them running: imap-mixed +10-20% on 2 cores.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + 4)
	}
	return serve(ctx, cfg, cf.storeFlags(), stdout, stderr)
}

// serve runs every configured listener until ctx ends, then shuts down
// gracefully. storeFlags name its store to the other commands, for the
// welcome on first start.
func serve(ctx context.Context, cfg config.Config, storeFlags string, stdout, stderr io.Writer) error {
	log := newLogger(cfg.Log, stderr)
	st, err := openStore(cfg, log, useServe)
	if errors.Is(err, sqlite.ErrServed) {
		return fmt.Errorf("%w; stop it first, or give this server another data folder (--data or data in the config file)", err)
	}
	if err != nil {
		return err
	}
	defer st.Close()

	certs, selfSigned, err := loadTLS(cfg, log)
	if err != nil {
		return err
	}
	tlsConfig := certs.TLSConfig()
	fingerprint := "" // for the welcome: people accept a self-signed one by it
	if selfSigned {
		fingerprint = server.Fingerprint(certs.Certificate().Leaf.Raw)
	}
	authn, err := auth.New(cfg.Auth, st, log)
	if err != nil {
		return err
	}
	metrics := server.NewMetrics()
	authn.Observe = metrics.Login
	sessions := auth.NewSessionLimiter(cfg.Limits.MaxConnectionsPerAccount)
	spooler := &delivery.Spooler{Dir: spoolDir(cfg), MemoryLimit: cfg.Delivery.MemorySpool, MaxSize: cfg.Limits.MaxMessageSize}

	imap := imapserver.New(imapserver.Config{
		Store: st, Auth: authn, Sessions: sessions, TLS: tlsConfig, Hostname: cfg.Hostname,
		IMAP: cfg.IMAP, Limits: cfg.Limits, AllowPlaintext: cfg.Auth.AllowPlaintext, Logger: log,
		TLSHandshakeTimeout: cfg.TLS.HandshakeTimeout.D(),
		Append: func(ctx context.Context, sess store.Session, mailboxID int64, r io.Reader, _ int64, flags store.Flags, date time.Time) (store.AppendResult, error) {
			return delivery.Append(ctx, spooler, sess, mailboxID, r, flags, date)
		},
	})
	pop3 := pop3server.New(pop3server.Config{
		Store: st, Auth: authn, Sessions: sessions, TLS: tlsConfig, Hostname: cfg.Hostname,
		POP3: cfg.POP3, Limits: cfg.Limits, AllowPlaintext: cfg.Auth.AllowPlaintext, Logger: log,
		TLSHandshakeTimeout: cfg.TLS.HandshakeTimeout.D(),
	})
	manageSieve := managesieve.New(managesieve.Config{
		Store: st, Auth: authn, Sessions: sessions, TLS: tlsConfig,
		TLSHandshakeTimeout: cfg.TLS.HandshakeTimeout.D(), Sieve: cfg.Sieve, SieveOptions: sieveOptions(cfg), Limits: cfg.Limits,
		AllowPlaintext: cfg.Auth.AllowPlaintext, Logger: log,
	})
	deliverer := &delivery.Deliverer{Store: st, Logger: log, Observe: metrics.Delivered,
		QuotaWarnings: cfg.Delivery.QuotaWarnings, Hostname: cfg.Hostname, Warned: metrics.QuotaWarned,
		Replied: metrics.VacationReplied}
	// Sieve vacation replies through the relay, where one is configured.
	if err := vacationDeliverer(deliverer, cfg); err != nil {
		return err
	}
	lmtp := smtpserver.New(smtpserver.Config{
		Deliverer: deliverer, Spooler: spooler,
		Hostname: cfg.Hostname, MaxRecipients: cfg.Delivery.MaxRecipients,
		MaxMessageSize: cfg.Limits.MaxMessageSize, MaxLineLength: cfg.Limits.MaxLineLength,
		ReturnPath: cfg.Delivery.ReturnPath, Logger: log,
		ReadTimeout: cfg.Delivery.Timeout.D(), WriteTimeout: cfg.Delivery.Timeout.D(),
	})
	// Mail from the internet, this server its final destination: the
	// same package in SMTP mode, with STARTTLS on the server's
	// certificate and the Return-Path and Received fields it adds.
	smtp := smtpserver.New(smtpserver.Config{
		Protocol: smtpserver.SMTP, Deliverer: deliverer, Spooler: spooler,
		TLS: tlsConfig, TLSHandshakeTimeout: cfg.TLS.HandshakeTimeout.D(),
		Hostname: cfg.Hostname, MaxRecipients: cfg.SMTP.MaxRecipients, MaxReceived: cfg.SMTP.MaxReceived, MaxErrors: cfg.SMTP.MaxErrors,
		MaxMessageSize: cfg.Limits.MaxMessageSize, MaxLineLength: cfg.Limits.MaxLineLength, Logger: log,
		ReadTimeout: cfg.SMTP.Timeout.D(), WriteTimeout: cfg.SMTP.Timeout.D(),
	})
	// The accounts' own mail, relayed to the MTA in submission.relay: the
	// same package in submission mode, logins checked as IMAP's are.
	relay, err := relayConfig(cfg)
	if err != nil {
		return err
	}
	submission := smtpserver.New(smtpserver.Config{
		Protocol: smtpserver.Submission, Deliverer: deliverer, Spooler: spooler,
		TLS: tlsConfig, TLSHandshakeTimeout: cfg.TLS.HandshakeTimeout.D(),
		Auth: authn, AllowPlaintext: cfg.Auth.AllowPlaintext, Relay: relay, AllowAnySender: cfg.Submission.AllowAnySender,
		Hostname: cfg.Hostname, MaxRecipients: cfg.Submission.MaxRecipients, MaxErrors: cfg.SMTP.MaxErrors,
		MaxMessageSize: cfg.Limits.MaxMessageSize, MaxMessagesPerHour: cfg.Submission.MaxMessagesPerHour,
		MaxLineLength: cfg.Limits.MaxLineLength, Logger: log,
		ReadTimeout: cfg.Submission.Timeout.D(), WriteTimeout: cfg.Submission.Timeout.D(),
	})

	g := &group{log: log}
	perAddr := server.NewAddrLimiter(cfg.Limits.MaxConnectionsPerIP)
	// Memory a burst of connections held goes back to the system once
	// most of them have closed (see server.Reclaimer).
	reclaim := server.NewReclaimer(server.ReclaimConfig{Logger: log})
	// lc configures a listener; goodbye is what a client over the
	// per-address limit hears, "" for implicit TLS, where plaintext would
	// only garble the handshake.
	lc := func(name, goodbye string) server.ListenerConfig {
		c := server.ListenerConfig{PerAddr: perAddr, Proxy: cfg.Listen.ProxyProtocol,
			Logger: log, Name: name, Metrics: metrics, Reclaim: reclaim}
		if goodbye != "" {
			c.Refuse = func(conn net.Conn) { io.WriteString(conn, goodbye) }
		}
		return c
	}
	imapBye := "* BYE [UNAVAILABLE] too many connections from your address\r\n"
	pop3Bye := "-ERR [SYS/TEMP] too many connections from your address\r\n"
	mailBye := "421 4.7.0 too many connections from your address\r\n" // SMTP and LMTP (RFC 5321 3.8)
	sieveBye := "BYE (TRYLATER) \"too many connections from your address\"\r\n"
	for _, l := range []struct {
		name, addr string
		conf       server.ListenerConfig
		serve      func(net.Listener) error
	}{
		{"imap", cfg.Listen.IMAP, lc("imap", imapBye), imap.Serve},
		{"imaps", cfg.Listen.IMAPS, lc("imaps", ""), imap.ServeTLS},
		{"pop3", cfg.Listen.POP3, lc("pop3", pop3Bye), pop3.Serve},
		{"pop3s", cfg.Listen.POP3S, lc("pop3s", ""), pop3.ServeTLS},
		{"lmtp", cfg.Listen.LMTP, lc("lmtp", mailBye), lmtp.Serve},
		{"smtp", cfg.Listen.SMTP, lc("smtp", mailBye), smtp.Serve},
		{"submission", cfg.Listen.Submission, lc("submission", mailBye), submission.Serve},
		{"submissions", cfg.Listen.Submissions, lc("submissions", ""), submission.ServeTLS},
		{"sieve", cfg.Listen.Sieve, lc("sieve", sieveBye), manageSieve.Serve},
	} {
		if l.addr == "" || l.addr == config.Off {
			continue
		}
		if err := g.listen(l.name, "tcp", l.addr, l.conf, l.serve); err != nil {
			g.closeListeners()
			return err
		}
	}
	if sock := cfg.Listen.LMTPSocket; sock != "" && sock != config.Off {
		if !filepath.IsAbs(sock) {
			sock = filepath.Join(cfg.Data, sock)
		}
		os.Remove(sock) // a stale socket from a crash
		if err := g.listen("lmtp-unix", "unix", sock, server.ListenerConfig{}, lmtp.Serve); err != nil {
			g.closeListeners()
			return err
		}
	}
	// The HTTP servers: autoconfig's, metrics'.
	var webs []*http.Server
	if listenerOn(cfg.Listen.Autoconfig) || listenerOn(cfg.Listen.Autoconfigs) {
		// Made once the mail listeners are bound: it tells their ports.
		ac, err := newAutoconfig(cfg, g.bound, st, log)
		if err != nil {
			g.closeListeners()
			return err
		}
		plain, secure := ac.HTTPServer(), ac.HTTPServer()
		secure.TLSConfig = certs.TLSConfig() // IMAPS's certificate, renewals included
		httpBye := "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
		for _, l := range []struct {
			name, addr, goodbye string
			serve               func(net.Listener) error
		}{
			{"autoconfig", cfg.Listen.Autoconfig, httpBye, plain.Serve},
			{"autoconfigs", cfg.Listen.Autoconfigs, "", func(l net.Listener) error { return secure.ServeTLS(l, "", "") }},
		} {
			if !listenerOn(l.addr) {
				continue
			}
			// Vetted as the mail listeners are: PROXY protocol from a load
			// balancer, the per-address limit.
			if err := g.listen(l.name, "tcp", l.addr, lc(l.name, l.goodbye), l.serve); err != nil {
				g.closeListeners()
				return err
			}
		}
		webs = append(webs, plain, secure)
	}
	if addr := cfg.Listen.Metrics; addr != "" && addr != config.Off {
		mux := http.NewServeMux()
		mux.Handle("/metrics", metrics.Handler())
		if cfg.Listen.Pprof {
			servePprof(mux)
		}
		web := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		webs = append(webs, web)
		if err := g.listen("metrics", "tcp-plain", addr, server.ListenerConfig{}, web.Serve); err != nil {
			g.closeListeners()
			return err
		}
	}
	// The first account comes once every listener is bound, so that the
	// welcome names the addresses clients can reach (a port 0 resolved)
	// and no password is handed out by a server that could not start. A
	// signal meanwhile lets it finish, so that an account made is also
	// told of, and then stops the server as it would have.
	if err := firstAccount(context.WithoutCancel(ctx), cfg, st, authn.Hasher(), welcome{g.bound, fingerprint, storeFlags}, stdout); err != nil {
		g.closeListeners()
		return err
	}
	g.background(func(ctx context.Context) { pop3.RunExpiry(ctx) })
	g.background(certs.Run) // a renewed certificate, taken without a restart
	log.Info("buzon started", "version", version, "data", cfg.Data, "hostname", cfg.Hostname)

	err = g.wait(ctx)
	log.Info("shutting down", "grace", cfg.ShutdownGrace.D())
	shutCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace.D())
	defer cancel()
	var wg sync.WaitGroup
	servers := []interface{ Shutdown(context.Context) error }{imap, pop3, lmtp, smtp, submission, manageSieve}
	for _, web := range webs {
		servers = append(servers, web)
	}
	for _, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Shutdown(shutCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				log.Warn("shutdown", "err", err)
			}
		}()
	}
	wg.Wait()
	// The deliveries are over; the vacation replies they found due are
	// sent, each within sieve.vacation_timeout, or cut off by the grace.
	if err := deliverer.WaitReplies(shutCtx); err != nil {
		log.Warn("shutdown: vacation replies still being sent", "err", err)
	}
	g.stopBackground()
	log.Info("buzon stopped")
	return err
}

// relayConfig is how submission reaches the relay MTA: its TLS mode, the
// certificate authorities it is verified against, its login.
func relayConfig(cfg config.Config) (smtpclient.Config, error) {
	s := cfg.Submission
	rc := smtpclient.Config{
		Addr: s.Relay, Hostname: cfg.Hostname, Username: s.RelayUser,
		ConnectTimeout: s.RelayConnectTimeout.D(), CommandTimeout: s.RelayTimeout.D(), DataTimeout: s.RelayTimeout.D(),
	}
	switch s.RelayTLS {
	case "tls":
		rc.Security = smtpclient.ImplicitTLS
	case "none":
		rc.Security = smtpclient.Plain
	}
	if s.RelayCAFile != "" {
		pem, err := os.ReadFile(s.RelayCAFile)
		if err != nil {
			return rc, fmt.Errorf("submission.relay_ca_file: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return rc, fmt.Errorf("submission.relay_ca_file: %s holds no PEM certificate", s.RelayCAFile)
		}
		rc.TLS = &tls.Config{RootCAs: roots}
	}
	switch {
	case s.RelayPasswordCommand != "":
		rc.Password = smtpclient.CommandPassword(s.RelayPasswordCommand)
	case s.RelayPassword != "":
		rc.Password = smtpclient.StaticPassword(s.RelayPassword)
	}
	return rc, nil
}

// listenerOn reports whether a listener address names a listener to open.
func listenerOn(addr string) bool { return addr != "" && addr != config.Off }

// servePprof adds Go's runtime profiles to mux, and samples one blocking
// event per millisecond blocked and one mutex contention in 100 for them.
func servePprof(mux *http.ServeMux) {
	runtime.SetBlockProfileRate(int(time.Millisecond))
	runtime.SetMutexProfileFraction(100)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}

// loadTLS loads the configured certificate, or the one in the data folder:
// buzon's own self-signed pair, which it creates on first start and makes
// anew when it is near its end, or one put there by hand, which it leaves
// alone. The watcher it returns is the one that loads and logs it, serves
// it, and takes renewed files while the server runs. selfSigned says the
// certificate is buzon's own.
func loadTLS(cfg config.Config, log *slog.Logger) (certs *server.CertWatcher, selfSigned bool, err error) {
	wc := server.CertWatcherConfig{CertFile: cfg.TLS.Cert, KeyFile: cfg.TLS.Key, Logger: log}
	if wc.CertFile == "" {
		wc.CertFile, wc.KeyFile = filepath.Join(cfg.Data, "tls", "cert.pem"), filepath.Join(cfg.Data, "tls", "key.pem")
		made, err := server.EnsureSelfSignedCert(wc.CertFile, wc.KeyFile, cfg.Hostname)
		if err != nil {
			return nil, false, err
		}
		wc.SelfSigned = made != server.CertForeign
		switch made {
		case server.CertCreated:
			log.Info("created a self-signed certificate", "file", wc.CertFile)
		case server.CertRenewed:
			log.Warn("made a new self-signed certificate in place of one at its end; clients must accept the new one",
				"file", wc.CertFile)
		}
	}
	certs, err = server.NewCertWatcher(wc)
	return certs, wc.SelfSigned, err
}

// firstAccount creates an account, postmaster@<hostname>, on the first
// start of an empty store and tells the person at the terminal how to use
// it; on the first start of a store whose accounts were added before, it
// tells the settings alone, and makes postmaster@ the first account's
// domain and postmaster@<hostname> its aliases, where no account or alias
// has those names (postmasterAliases). A marker file keeps it from
// happening again after every account was deleted on purpose.
func firstAccount(ctx context.Context, cfg config.Config, st store.Store, h auth.Hasher, wel welcome, stdout io.Writer) error {
	marker := filepath.Join(cfg.Data, "first-account-created")
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	accts, err := st.Accounts(ctx)
	if err != nil {
		return err
	}
	var first store.Account
	var aliases []string
	password := ""
	if len(accts) == 0 {
		name := store.CanonicalAccountName("postmaster@" + cfg.Hostname) // as logins and user list name it
		password = rand.Text()[:16]
		cred, err := h.Credentials(password)
		if err != nil {
			return err
		}
		if first, err = st.CreateAccount(ctx, name, cred); err != nil {
			return fmt.Errorf("first account: %w", err)
		}
	} else {
		// The account added first, most likely its administrator's.
		first = slices.MinFunc(accts, func(a, b store.Account) int { return a.Created.Compare(b.Created) })
		if aliases, err = postmasterAliases(ctx, st, first.Name, cfg.Hostname); err != nil {
			return fmt.Errorf("first account: %w", err)
		}
	}
	printWelcome(stdout, cfg, first.Name, password, aliases, wel)
	return os.WriteFile(marker, []byte("buzon created the first account; delete this file to have it do so again on an empty store\n"), 0o600)
}

// welcome is what the first start tells the person at the terminal
// besides the account.
type welcome struct {
	bound       map[string]string // listener name -> the address it is bound to
	fingerprint string            // of the self-signed certificate; "" for another
	storeFlags  string            // name this store to other commands: --data DIR
}

// printWelcome tells the settings a mail client needs, the account name
// and password made for the first start, if password is set, and the
// aliases made for the account.
func printWelcome(w io.Writer, cfg config.Config, name, password string, aliases []string, wel welcome) {
	if password != "" {
		fmt.Fprintf(w, `
buzon created a first account. The password is shown only this once.

  address   %s
  password  %s
`, name, password)
	} else {
		fmt.Fprintf(w, "\nbuzon serves the accounts in %s for the first time.\n", cfg.Data)
	}
	if len(aliases) > 0 {
		fmt.Fprintf(w, "\nMail to %s reaches %s: buzon made them its aliases\n(a mail domain must take mail for postmaster, RFC 5321 4.5.1).\n",
			strings.Join(aliases, " and "), name)
	}
	fmt.Fprint(w, "\nMail client settings (user name = the full address):\n")
	type setting struct{ what, addr, security string }
	var rows []setting
	for _, l := range []struct{ listener, what, security string }{
		{"imap", "IMAP", "STARTTLS"},
		{"imaps", "IMAP", "SSL/TLS"},
		{"pop3", "POP3", "STARTTLS"},
		{"pop3s", "POP3", "SSL/TLS"},
		{"lmtp", "LMTP", "for your MTA"},
		{"lmtp-unix", "LMTP", "for your MTA, if it runs as this user"},
		{"smtp", "SMTP", "STARTTLS, incoming mail only (the MX), not for sending"},
		{"submission", "SMTP", "STARTTLS, for sending (outgoing server), same login"},
		{"submissions", "SMTP", "SSL/TLS, for sending (outgoing server), same login"},
		{"sieve", "Sieve", "ManageSieve, STARTTLS, for mail filters"},
		{"autoconfig", "HTTP", "mail client autoconfiguration"},
		{"autoconfigs", "HTTPS", "mail client autoconfiguration"},
	} {
		if addr, ok := wel.bound[l.listener]; ok {
			rows = append(rows, setting{l.what, clientAddr(addr, cfg.Hostname), l.security})
		}
	}
	// The addresses' column is as wide as the longest, so that a socket
	// in a data folder with a long path does not push its line out of it.
	width := 22
	for _, r := range rows {
		width = max(width, len(r.addr))
	}
	for _, r := range rows {
		fmt.Fprintf(w, "  %-5s %-*s %s\n", r.what, width, r.addr, r.security)
	}
	if wel.fingerprint != "" {
		fmt.Fprintf(w, "\nThe certificate is self-signed; accept it if its SHA-256 fingerprint is\n  %s\n", wel.fingerprint)
	}
	// The binary as it was started, which need not be on the PATH.
	fmt.Fprintf(w, `
Add accounts with:   %[1]s user add %[2]s someone@example.org
Deliver a test mail: printf 'Subject: test\n\nHello\n' | %[1]s deliver %[2]s %[3]s
Add aliases with:    %[1]s alias add %[2]s info@example.org %[3]s

`, self(), wel.storeFlags, name)
}

// clientAddr is where a mail client reaches a listener on addr: the host
// name instead of an address that means every interface ("0.0.0.0:993",
// ":993"), which a client cannot connect to.
func clientAddr(addr, hostname string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip, err := netip.ParseAddr(host); host == "" || err == nil && ip.IsUnspecified() {
		return net.JoinHostPort(hostname, port)
	}
	return addr
}

// group runs listeners and background jobs and stops them together.
type group struct {
	log       *slog.Logger
	listeners []net.Listener
	bound     map[string]string // listener name -> the address it is bound to
	errs      chan error
	wg        sync.WaitGroup // background jobs
	cancel    context.CancelFunc
	bgCtx     context.Context
}

func (g *group) listen(name, network, addr string, lc server.ListenerConfig, serve func(net.Listener) error) error {
	// "tcp-plain" is TCP without the connection vetting (metrics).
	inner, err := net.Listen(strings.TrimSuffix(network, "-plain"), addr)
	if err != nil {
		return fmt.Errorf("listen %s on %s: %w%s", name, addr, err, listenAdvice(name, err))
	}
	var l net.Listener = inner
	if network == "tcp" {
		l = server.NewListener(inner, lc)
	}
	g.listeners = append(g.listeners, l)
	if g.bound == nil {
		g.bound = map[string]string{}
	}
	g.bound[name] = inner.Addr().String()
	if g.errs == nil {
		g.errs = make(chan error, 16)
	}
	g.log.Info("listening", "proto", name, "addr", inner.Addr().String())
	go func() {
		if err := serve(l); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, server.ErrServerClosed) {
			g.errs <- fmt.Errorf("%s: %w", name, err)
		}
	}()
	return nil
}

// listenAdvice says what a person can do about a listener that could not
// be opened, for the two causes a first start meets.
func listenAdvice(name string, err error) string {
	setting := "listen." + name
	switch name {
	case "imap", "imaps", "pop3", "pop3s", "lmtp", "smtp", "submission", "submissions", "sieve", "autoconfig", "autoconfigs":
		setting = "--" + name + " or " + setting
	case "lmtp-unix":
		setting = "listen.lmtp_socket"
	}
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Sprintf(" (another program, or another buzon serve, listens there: stop it, or set %s to another address or off)", setting)
	case errors.Is(err, syscall.EACCES) && name != "lmtp-unix":
		return fmt.Sprintf(" (ports below 1024 need root or CAP_NET_BIND_SERVICE; or set %s to a higher port)", setting)
	}
	return ""
}

func (g *group) background(job func(context.Context)) {
	if g.bgCtx == nil {
		g.bgCtx, g.cancel = context.WithCancel(context.Background())
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		job(g.bgCtx)
	}()
}

func (g *group) stopBackground() {
	if g.cancel != nil {
		g.cancel()
	}
	g.wg.Wait()
}

// wait returns when ctx ends (nil) or a listener fails (its error).
func (g *group) wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-g.errs:
		g.log.Error("listener failed", "err", err)
		return err
	}
}

func (g *group) closeListeners() {
	for _, l := range g.listeners {
		l.Close()
	}
}

// stopSignals are the signals that stop serve and fetch gracefully:
// SIGINT, SIGTERM and SIGHUP, which a closing terminal sends (its default
// would end the process at once, in-flight deliveries and all), unless
// SIGHUP was ignored when the process started, as nohup does, in which
// case it stays ignored.
func stopSignals() []os.Signal {
	sigs := []os.Signal{syscall.SIGINT, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	return sigs
}
