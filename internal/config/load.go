package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Duration is a time.Duration written in TOML as a string such as "30m".
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalText writes d as Go duration syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads Go duration syntax ("90s", "10m", "1h30m").
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Load reads a TOML file over the defaults. Unknown keys are an error, so a
// misspelt setting is not silently ignored.
func Load(path string) (Config, error) {
	cfg := Default()
	md, err := toml.DecodeFile(path, &cfg)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		keys := make([]string, len(undecoded))
		for i, k := range undecoded {
			keys[i] = k.String()
		}
		return Config{}, fmt.Errorf("config %s: unknown settings: %s", path, strings.Join(keys, ", "))
	}
	return cfg, nil
}

// Off is the listener address that disables a listener.
const Off = "off"

// Validate checks a configuration for values the server cannot run with.
func (c *Config) Validate() error {
	var errs []error
	for _, l := range []struct{ name, addr string }{
		{"imap", c.Listen.IMAP}, {"imaps", c.Listen.IMAPS}, {"pop3", c.Listen.POP3},
		{"pop3s", c.Listen.POP3S}, {"lmtp", c.Listen.LMTP}, {"smtp", c.Listen.SMTP},
		{"submission", c.Listen.Submission}, {"submissions", c.Listen.Submissions},
		{"sieve", c.Listen.Sieve}, {"autoconfig", c.Listen.Autoconfig}, {"autoconfigs", c.Listen.Autoconfigs},
		{"metrics", c.Listen.Metrics},
	} {
		if l.addr == Off || l.addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(l.addr); err != nil {
			errs = append(errs, fmt.Errorf("listen.%s: %q is not host:port or %q", l.name, l.addr, Off))
		}
	}
	switch c.Store.Backend {
	case "sqlite":
	case "postgres":
		if c.Store.DSN == "" {
			errs = append(errs, errors.New("store.dsn: required for the postgres backend"))
		}
	default:
		errs = append(errs, fmt.Errorf("store.backend: %q is not sqlite or postgres", c.Store.Backend))
	}
	if c.Store.CachedUIDs < 0 {
		errs = append(errs, errors.New("store.cached_uids: not negative"))
	}
	if c.Store.KeptExpunges < 1 {
		errs = append(errs, errors.New("store.kept_expunges: at least 1"))
	}
	switch c.Auth.Scheme {
	case "argon2id", "bcrypt":
	default:
		errs = append(errs, fmt.Errorf("auth.scheme: %q is not argon2id or bcrypt", c.Auth.Scheme))
	}
	if c.Auth.ConcurrentChecks < 0 {
		errs = append(errs, errors.New("auth.concurrent_checks: not negative"))
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		errs = append(errs, errors.New("tls: cert and key go together"))
	}
	if c.Limits.MaxLineLength < 1024 {
		errs = append(errs, errors.New("limits.max_line_length: at least 1024"))
	}
	if c.Limits.MaxMessageSize < 1024 {
		errs = append(errs, errors.New("limits.max_message_size: at least 1024"))
	}
	if c.Limits.MaxLiteral < 1024 {
		errs = append(errs, errors.New("limits.max_literal: at least 1024"))
	}
	for name, v := range map[string]float64{
		"max_mailboxes": float64(c.Limits.MaxMailboxes), "max_mailbox_name_length": float64(c.Limits.MaxMailboxNameLength),
		"max_connections_per_ip": float64(c.Limits.MaxConnectionsPerIP), "max_connections_per_account": float64(c.Limits.MaxConnectionsPerAccount),
		"commands_per_second": c.Limits.CommandsPerSecond, "max_output_backlog": float64(c.Limits.MaxOutputBacklog),
	} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("limits.%s: not negative", name))
		}
	}
	if c.Auth.BcryptCost < 4 || c.Auth.BcryptCost > 31 {
		errs = append(errs, errors.New("auth.bcrypt_cost: 4 to 31"))
	}
	if c.Auth.SCRAMIterations < 4096 {
		errs = append(errs, errors.New("auth.scram_iterations: at least 4096 (RFC 7677 5.1)"))
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{
		{"shutdown_grace", c.ShutdownGrace}, {"tls.handshake_timeout", c.TLS.HandshakeTimeout},
		{"auth.failure_delay", c.Auth.FailureDelay}, {"auth.max_failure_delay", c.Auth.MaxFailureDelay},
		{"auth.lockout_duration", c.Auth.LockoutDuration}, {"imap.idle_timeout", c.IMAP.IdleTimeout},
		{"imap.login_timeout", c.IMAP.LoginTimeout}, {"imap.idle_keepalive", c.IMAP.IdleKeepalive},
		{"pop3.idle_timeout", c.POP3.IdleTimeout}, {"pop3.expire_interval", c.POP3.ExpireInterval},
		{"pop3.stale_session", c.POP3.StaleSession},
		{"delivery.timeout", c.Delivery.Timeout}, {"smtp.timeout", c.SMTP.Timeout},
		{"submission.timeout", c.Submission.Timeout}, {"submission.relay_timeout", c.Submission.RelayTimeout},
		{"submission.relay_connect_timeout", c.Submission.RelayConnectTimeout},
		{"sieve.idle_timeout", c.Sieve.IdleTimeout}, {"sieve.login_timeout", c.Sieve.LoginTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s: not negative", d.name))
		}
	}
	if c.SMTP.MaxRecipients < 1 {
		errs = append(errs, errors.New("smtp.max_recipients: at least 1"))
	}
	if c.SMTP.MaxReceived < 1 {
		errs = append(errs, errors.New("smtp.max_received: at least 1"))
	}
	if c.SMTP.MaxErrors < 1 {
		errs = append(errs, errors.New("smtp.max_errors: at least 1"))
	}
	if c.Sieve.MaxScripts < 1 {
		errs = append(errs, errors.New("sieve.max_scripts: at least 1"))
	}
	// sieve.MaxScriptSize: a larger script would be taken here and refused
	// by the compiler.
	if c.Sieve.MaxScriptSize < 1024 || c.Sieve.MaxScriptSize > 1<<20 {
		errs = append(errs, errors.New("sieve.max_script_size: 1024 to 1048576"))
	}
	if c.Sieve.MaxErrors < 1 {
		errs = append(errs, errors.New("sieve.max_errors: at least 1"))
	}
	if v := c.Sieve; v.VacationMinPeriod < Duration(time.Second) || v.VacationDefaultPeriod < v.VacationMinPeriod ||
		v.VacationMaxPeriod < v.VacationDefaultPeriod {
		errs = append(errs, errors.New("sieve.vacation_min_period, vacation_default_period, vacation_max_period: at least 1s, each at most the next"))
	}
	if c.Sieve.VacationTimeout < Duration(time.Second) {
		errs = append(errs, errors.New("sieve.vacation_timeout: at least 1s"))
	}
	if c.Sieve.RedirectTimeout < Duration(time.Second) {
		errs = append(errs, errors.New("sieve.redirect_timeout: at least 1s"))
	}
	if c.Sieve.RedirectDuplicatePeriod < 0 {
		errs = append(errs, errors.New("sieve.redirect_duplicate_period: not negative"))
	}
	switch c.Sieve.RedirectEnvelopeFrom {
	case "account", "sender":
	default:
		errs = append(errs, fmt.Errorf("sieve.redirect_envelope_from: %q is not account or sender", c.Sieve.RedirectEnvelopeFrom))
	}
	for i, l := range c.Delivery.QuotaWarnings {
		// 100 would warn when nothing more fits, the notice included.
		if l < 1 || l > 99 || slices.Contains(c.Delivery.QuotaWarnings[:i], l) {
			errs = append(errs, fmt.Errorf("delivery.quota_warnings: %d: each level 1 to 99, once", l))
		}
	}
	for _, d := range []struct {
		name string
		days int
	}{
		{"pop3.expire_days", c.POP3.ExpireDays},
		{"imap.expunge_trash_days", c.IMAP.ExpungeTrashDays},
		{"imap.expunge_junk_days", c.IMAP.ExpungeJunkDays},
	} {
		if d.days < 0 || d.days > MaxDays {
			errs = append(errs, fmt.Errorf("%s: %d: from 0 (never) to %d", d.name, d.days, MaxDays))
		}
	}
	errs = append(errs, c.Autoconfig.validate()...)
	errs = append(errs, c.validateSubmission()...)
	// A misspelt level or format would otherwise leave the log as it was,
	// with no word of why.
	var level slog.Level // read as the logger reads it
	if level.UnmarshalText([]byte(c.Log.Level)) != nil {
		errs = append(errs, fmt.Errorf("log.level: %q is not debug, info, warn or error", c.Log.Level))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format: %q is not text or json", c.Log.Format))
	}
	return errors.Join(errs...)
}

// validateSubmission checks the submission settings: a listener needs a
// relay, and a relay in the clear must be on loopback or allowed.
func (c *Config) validateSubmission() []error {
	var errs []error
	s := c.Submission
	for _, l := range []struct{ name, addr string }{{"submission", c.Listen.Submission}, {"submissions", c.Listen.Submissions}} {
		if l.addr != "" && l.addr != Off && s.Relay == "" {
			errs = append(errs, fmt.Errorf("listen.%s is on, but submission.relay is not set: set it to the host:port of the MTA that sends the mail on (Postfix on 127.0.0.1:10025, say), or listen.%s to off", l.name, l.name))
		}
	}
	if s.MaxRecipients < 1 {
		errs = append(errs, errors.New("submission.max_recipients: at least 1"))
	}
	if s.MaxMessagesPerHour < 0 {
		errs = append(errs, errors.New("submission.max_messages_per_hour: not negative"))
	}
	if s.Relay == "" {
		return errs
	}
	host, port, err := net.SplitHostPort(s.Relay)
	if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
		errs = append(errs, fmt.Errorf("submission.relay: %q is not host:port", s.Relay))
	}
	switch s.RelayTLS {
	case "starttls", "tls":
	case "none":
		if !s.RelayAllowPlaintext && !loopbackHost(host) {
			errs = append(errs, fmt.Errorf("submission.relay_tls: none sends mail and any password to %s in the clear: use starttls or tls, or set submission.relay_allow_plaintext for a network you trust", s.Relay))
		}
	default:
		errs = append(errs, fmt.Errorf("submission.relay_tls: %q is not starttls, tls or none", s.RelayTLS))
	}
	switch {
	case s.RelayPassword != "" && s.RelayPasswordCommand != "":
		errs = append(errs, errors.New("submission.relay_password and relay_password_command: one or the other"))
	case s.RelayUser != "" && s.RelayPassword == "" && s.RelayPasswordCommand == "":
		errs = append(errs, errors.New("submission.relay_user: needs relay_password or relay_password_command"))
	case s.RelayUser == "" && (s.RelayPassword != "" || s.RelayPasswordCommand != ""):
		errs = append(errs, errors.New("submission.relay_password: needs relay_user"))
	}
	return errs
}

// loopbackHost says a host is "localhost" or a loopback address.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// validate checks the autoconfig settings.
func (a *Autoconfig) validate() []error {
	var errs []error
	for _, d := range a.Domains {
		if d == "" || strings.ContainsAny(d, "@ /") {
			errs = append(errs, fmt.Errorf("autoconfig.domains: %q is not a domain", d))
		}
	}
	for _, l := range a.Advertise {
		switch l {
		case "imaps", "imap", "pop3s", "pop3":
		default:
			errs = append(errs, fmt.Errorf("autoconfig.advertise: %q is not imaps, imap, pop3s or pop3", l))
		}
	}
	for name, port := range map[string]int{"imaps_port": a.IMAPSPort, "imap_port": a.IMAPPort, "pop3s_port": a.POP3SPort, "pop3_port": a.POP3Port,
		"submissions_port": a.SubmissionsPort, "submission_port": a.SubmissionPort} {
		if port < 0 || port > 65535 {
			errs = append(errs, fmt.Errorf("autoconfig.%s: 0 to 65535", name))
		}
	}
	if a.Submission != "" {
		host, port, err := net.SplitHostPort(a.Submission)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			errs = append(errs, fmt.Errorf("autoconfig.submission: %q is not host:port", a.Submission))
		}
	}
	switch a.SubmissionSecurity {
	case "", "tls", "starttls":
	default:
		errs = append(errs, fmt.Errorf("autoconfig.submission_security: %q is not tls or starttls", a.SubmissionSecurity))
	}
	return errs
}

// DefaultHostname is the machine's host name, or "localhost".
func DefaultHostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return h
}
