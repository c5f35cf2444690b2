package fetch

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/buzon-mail/buzon/internal/config"
)

// Protocols, TLS modes and fetch modes as written in the file.
const (
	ProtoPOP3 = "pop3"
	ProtoIMAP = "imap"

	TLSImplicit = "implicit"
	TLSStartTLS = "starttls"
	TLSNone     = "none"

	ModeDelete = "delete"
	ModeKeep   = "keep"

	AuthPassword    = "password"
	AuthOAuthBearer = "oauthbearer"
	AuthXOAuth2     = "xoauth2"
)

// maxKeepDays bounds keep_days (some 2,700 years), within what date
// arithmetic holds: the bound of the server's settings in days.
const maxKeepDays = config.MaxDays

// Defaults for settings a file leaves out.
const (
	defaultInterval   = 5 * time.Minute
	defaultBackoff    = 30 * time.Second
	defaultMaxBackoff = 30 * time.Minute
	defaultTimeout    = 60 * time.Second
)

// Default returns the top-level settings used where a file says nothing,
// with no accounts.
func Default() Config {
	return Config{
		Interval:   config.Duration(defaultInterval),
		Backoff:    config.Duration(defaultBackoff),
		MaxBackoff: config.Duration(defaultMaxBackoff),
		LogLevel:   "info",
		LogFormat:  "text",
	}
}

// Load reads a fetch configuration file over the defaults, fills in each
// account's defaults, resolves relative paths against the file's folder
// and validates the result. Unknown keys are an error, so that a misspelt
// setting is not silently ignored.
func Load(path string) (Config, error) {
	cfg := Default()
	md, err := toml.DecodeFile(path, &cfg)
	if err != nil {
		return Config{}, fmt.Errorf("fetch config %s: %w", path, err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		keys := make([]string, len(undecoded))
		for i, k := range undecoded {
			keys[i] = k.String()
		}
		return Config{}, fmt.Errorf("fetch config %s: unknown settings: %s", path, strings.Join(keys, ", "))
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return Config{}, err
	}
	if cfg.StateDir == "" {
		cfg.StateDir = abs + ".state"
	}
	cfg.resolve(filepath.Dir(abs))
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("fetch config %s: %w", path, err)
	}
	return cfg, nil
}

// resolve fills in account defaults and makes paths absolute.
func (c *Config) resolve(base string) {
	c.StateDir = resolvePath(base, c.StateDir)
	for i := range c.Accounts {
		a := &c.Accounts[i]
		a.Protocol = strings.ToLower(a.Protocol)
		a.TLS = strings.ToLower(a.TLS)
		if a.TLS == "" {
			a.TLS = TLSImplicit
		}
		if a.TLS == "stls" {
			a.TLS = TLSStartTLS
		}
		if a.Mode == "" {
			a.Mode = ModeKeep
		}
		a.Auth = strings.ToLower(a.Auth)
		if a.Auth == "" {
			a.Auth = AuthPassword
		}
		if a.Port == 0 {
			a.Port = defaultPort(a.Protocol, a.TLS)
		}
		if a.Protocol == ProtoIMAP && len(a.Folders) == 0 {
			a.Folders = []string{"INBOX"}
		}
		if a.Interval == 0 {
			a.Interval = c.Interval
		}
		if a.Timeout == 0 {
			a.Timeout = config.Duration(defaultTimeout)
		}
		a.TLSCAFile = resolvePath(base, a.TLSCAFile)
		a.Maildir = resolvePath(base, a.Maildir)
		a.Mbox = resolvePath(base, a.Mbox)
		if a.Store != nil {
			a.Store.Data = resolvePath(base, a.Store.Data)
			a.Store.Config = resolvePath(base, a.Store.Config)
			if a.Store.Mailbox == "" {
				a.Store.Mailbox = "INBOX"
			}
		}
	}
}

func defaultPort(protocol, tlsMode string) int {
	implicit := tlsMode == TLSImplicit
	switch {
	case protocol == ProtoPOP3 && implicit:
		return 995
	case protocol == ProtoPOP3:
		return 110
	case implicit:
		return 993
	}
	return 143
}

// resolvePath expands "~/" and makes p absolute against base; "" stays "".
func resolvePath(base, p string) string {
	if p == "" {
		return ""
	}
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			p = filepath.Join(home, rest)
		}
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(base, p)
	}
	return filepath.Clean(p)
}

var accountNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// Validate checks a loaded configuration (defaults filled in) for values
// the fetch client cannot run with, reporting every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if c.StateDir == "" {
		errs = append(errs, errors.New("state_dir: required"))
	}
	if c.Interval.D() < time.Second {
		errs = append(errs, errors.New("interval: at least 1s"))
	}
	if c.Backoff.D() <= 0 || c.MaxBackoff.D() < c.Backoff.D() {
		errs = append(errs, errors.New("backoff: positive, and max_backoff at least as long"))
	}
	if len(c.Accounts) == 0 {
		errs = append(errs, errors.New("no [[account]]"))
	}
	seen := map[string]bool{}
	for i := range c.Accounts {
		a := &c.Accounts[i]
		label := fmt.Sprintf("account %d", i+1)
		if a.Name != "" {
			label = fmt.Sprintf("account %q", a.Name)
		}
		for _, err := range a.validate() {
			errs = append(errs, fmt.Errorf("%s: %w", label, err))
		}
		if seen[a.Name] {
			errs = append(errs, fmt.Errorf("%s: name used twice", label))
		}
		seen[a.Name] = true
	}
	return errors.Join(errs...)
}

func (a *Account) validate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !accountNameRE.MatchString(a.Name) || a.Name == "." || a.Name == ".." {
		bad("name: required, letters, digits, '.', '_' and '-' only")
	}
	switch a.Protocol {
	case ProtoPOP3, ProtoIMAP:
	default:
		bad("protocol: %q is not pop3 or imap", a.Protocol)
	}
	if a.Host == "" {
		bad("host: required")
	}
	if a.Port <= 0 || a.Port > 65535 {
		bad("port: %d is not a port number", a.Port)
	}
	switch a.TLS {
	case TLSImplicit, TLSStartTLS:
	case TLSNone:
		if !a.AllowInsecure {
			bad(`tls: "none" sends the password in the clear; set allow_insecure = true if you mean it`)
		}
	default:
		bad("tls: %q is not implicit, starttls or none", a.TLS)
	}
	if a.TLSFingerprint != "" {
		if _, err := parseFingerprint(a.TLSFingerprint); err != nil {
			bad("tls_fingerprint: %v", err)
		}
		if a.TLSCAFile != "" {
			bad("tls_fingerprint and tls_ca_file: one or the other")
		}
	}
	if a.User == "" {
		bad("user: required")
	}
	if (a.Password == "") == (a.PasswordCommand == "") {
		bad("password or password_command: exactly one")
	}
	switch a.Auth {
	case AuthPassword:
	case AuthOAuthBearer, AuthXOAuth2:
		if a.PasswordCommand == "" {
			bad("auth: an OAuth 2.0 token expires; password_command must print a fresh one")
		}
	default:
		bad("auth: %q is not password, oauthbearer or xoauth2", a.Auth)
	}
	switch a.Mode {
	case ModeDelete:
		if a.KeepDays != 0 {
			bad(`keep_days: only with mode = "keep"`)
		}
	case ModeKeep:
	default:
		bad("mode: %q is not delete or keep", a.Mode)
	}
	if a.KeepDays < 0 || a.KeepDays > maxKeepDays {
		bad("keep_days: from 0 (keep for ever) to %d", maxKeepDays)
	}
	if a.Protocol == ProtoPOP3 {
		if len(a.Folders) > 0 {
			bad("folders: IMAP only (POP3 has one mailbox)")
		}
		if a.MarkSeen || a.MoveTo != "" {
			bad("mark_seen and move_to: IMAP only")
		}
	}
	if a.MoveTo != "" {
		if a.Mode != ModeKeep || a.KeepDays != 0 {
			bad(`move_to: only with mode = "keep" and no keep_days`)
		}
		if slices.Contains(a.Folders, a.MoveTo) {
			bad("move_to: %q is also in folders; its messages would be fetched twice", a.MoveTo)
		}
	}
	if slices.Contains(a.Folders, "") {
		bad("folders: empty folder name")
	}
	if a.Interval.D() < time.Second {
		bad("interval: at least 1s")
	}
	if a.Timeout.D() < time.Second {
		bad("timeout: at least 1s")
	}
	n := 0
	for _, set := range []bool{a.Maildir != "", a.Mbox != "", a.Store != nil, a.MDA != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		bad("exactly one destination: maildir, mbox, store or mda")
	}
	if s := a.Store; s != nil {
		if s.Data == "" && s.Config == "" {
			bad("store: data (or config) required")
		}
		if s.Account == "" {
			bad("store: account required")
		}
	}
	return errs
}

// addr is the server's host:port.
func (a *Account) addr() string { return net.JoinHostPort(a.Host, strconv.Itoa(a.Port)) }

// source names the server account, to notice when a state file is reused
// for another.
func (a *Account) source() string {
	return fmt.Sprintf("%s://%s@%s", a.Protocol, a.User, a.addr())
}

// parseFingerprint reads a SHA-256 fingerprint in hex, with or without
// colons or spaces.
func parseFingerprint(s string) ([]byte, error) {
	clean := strings.NewReplacer(":", "", " ", "").Replace(s)
	b, err := hex.DecodeString(clean)
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("%q is not a SHA-256 fingerprint (64 hex digits)", s)
	}
	return b, nil
}
