package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The generated sample must load back to exactly the defaults, and must
// document every setting.
func TestExampleRoundTrip(t *testing.T) {
	ex, err := Example()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "buzon.toml")
	if err := os.WriteFile(path, []byte(ex), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatalf("load example: %v\n%s", err, ex)
	}
	if want := Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("example does not load back to the defaults:\n got %+v\nwant %+v", got, want)
	}
	docs, err := DocComments(configSource)
	if err != nil {
		t.Fatal(err)
	}
	checkDocumented(t, docs, reflect.TypeOf(Config{}))
	for _, want := range []string{"[pop3]", "expire_days = 0", "# Delete messages from INBOX", `imap = "127.0.0.1:1143"`} {
		if !strings.Contains(ex, want) {
			t.Errorf("example lacks %q", want)
		}
	}
}

func checkDocumented(t *testing.T, docs map[string]string, typ reflect.Type) {
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Tag.Get("toml") == "" {
			t.Errorf("%s.%s has no toml tag", typ.Name(), f.Name)
		}
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Time{}) {
			if docs[f.Type.Name()] == "" {
				t.Errorf("type %s has no doc comment", f.Type.Name())
			}
			checkDocumented(t, docs, f.Type)
			continue
		}
		if docs[typ.Name()+"."+f.Name] == "" {
			t.Errorf("%s.%s has no doc comment", typ.Name(), f.Name)
		}
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name, file string
		check      func(Config) bool
		wantErr    string
	}{
		{"override", "[pop3]\nexpire_days = 7\nidle_timeout = \"15m\"\n", func(c Config) bool {
			return c.POP3.ExpireDays == 7 && c.POP3.IdleTimeout.D() == 15*time.Minute && c.Listen.IMAP == "127.0.0.1:1143"
		}, ""},
		{"unknown key", "[pop3]\nexpire_dayz = 7\n", nil, "unknown settings: pop3.expire_dayz"},
		{"bad duration", "[imap]\nidle_timeout = \"soon\"\n", nil, "idle_timeout"},
		{"bad syntax", "[imap\n", nil, "config"},
		{"quota warnings off", "[delivery]\nquota_warnings = []\n", func(c Config) bool { return len(c.Delivery.QuotaWarnings) == 0 }, ""},
		{"quota warnings", "[delivery]\nquota_warnings = [90]\n", func(c Config) bool { return reflect.DeepEqual(c.Delivery.QuotaWarnings, []int{90}) }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.toml")
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := Load(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("unexpected config %+v", c)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	good := Default()
	if err := good.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"bad listener", func(c *Config) { c.Listen.POP3 = "1110" }, "listen.pop3"},
		{"off is fine", func(c *Config) { c.Listen.POP3 = Off }, ""},
		{"postgres without dsn", func(c *Config) { c.Store.Backend = "postgres" }, "store.dsn"},
		{"unknown backend", func(c *Config) { c.Store.Backend = "mongo" }, "store.backend"},
		{"no UID cache", func(c *Config) { c.Store.CachedUIDs = 0 }, ""},
		{"negative UID cache", func(c *Config) { c.Store.CachedUIDs = -1 }, "store.cached_uids"},
		{"no expunge kept", func(c *Config) { c.Store.KeptExpunges = 0 }, "store.kept_expunges"},
		{"cert without key", func(c *Config) { c.TLS.Cert = "c.pem" }, "tls"},
		{"bad scheme", func(c *Config) { c.Auth.Scheme = "md5" }, "auth.scheme"},
		{"negative password checks", func(c *Config) { c.Auth.ConcurrentChecks = -1 }, "auth.concurrent_checks"},
		{"no size limit", func(c *Config) { c.Limits.MaxMessageSize = -1 }, "limits.max_message_size"},
		{"negative rate", func(c *Config) { c.Limits.CommandsPerSecond = -1 }, "limits.commands_per_second"},
		{"bcrypt cost too high", func(c *Config) { c.Auth.BcryptCost = 32 }, "auth.bcrypt_cost"},
		{"bcrypt cost too low", func(c *Config) { c.Auth.BcryptCost = 3 }, "auth.bcrypt_cost"},
		{"few SCRAM iterations", func(c *Config) { c.Auth.SCRAMIterations = 1000 }, "auth.scram_iterations"},
		{"more SCRAM iterations", func(c *Config) { c.Auth.SCRAMIterations = 5000 }, ""},
		{"negative grace", func(c *Config) { c.ShutdownGrace = -1 }, "shutdown_grace"},
		{"negative keepalive", func(c *Config) { c.IMAP.IdleKeepalive = -1 }, "imap.idle_keepalive"},
		{"negative Trash days", func(c *Config) { c.IMAP.ExpungeTrashDays = -1 }, "imap.expunge_trash_days"},
		{"Junk kept", func(c *Config) { c.IMAP.ExpungeJunkDays = 0 }, ""},
		{"negative Junk days", func(c *Config) { c.IMAP.ExpungeJunkDays = -30 }, "imap.expunge_junk_days"},
		{"Junk days at the bound", func(c *Config) { c.IMAP.ExpungeJunkDays = MaxDays }, ""},
		{"Trash days past the bound", func(c *Config) { c.IMAP.ExpungeTrashDays = 999_999_999 }, "imap.expunge_trash_days"},
		{"Junk days past the bound", func(c *Config) { c.IMAP.ExpungeJunkDays = MaxDays + 1 }, "imap.expunge_junk_days"},
		{"negative POP3 expire days", func(c *Config) { c.POP3.ExpireDays = -1 }, "pop3.expire_days"},
		{"POP3 expire days at the bound", func(c *Config) { c.POP3.ExpireDays = MaxDays }, ""},
		{"POP3 expire days past the bound", func(c *Config) { c.POP3.ExpireDays = 200_000_000 }, "pop3.expire_days"},
		{"negative LMTP timeout", func(c *Config) { c.Delivery.Timeout = -1 }, "delivery.timeout"},
		{"no quota warnings", func(c *Config) { c.Delivery.QuotaWarnings = nil }, ""},
		{"quota warning of 0", func(c *Config) { c.Delivery.QuotaWarnings = []int{0, 90} }, "delivery.quota_warnings: 0"},
		{"quota warning of 100", func(c *Config) { c.Delivery.QuotaWarnings = []int{90, 100} }, "delivery.quota_warnings: 100"},
		{"quota warning twice", func(c *Config) { c.Delivery.QuotaWarnings = []int{90, 80, 90} }, "delivery.quota_warnings: 90"},
		{"quota warnings in any order", func(c *Config) { c.Delivery.QuotaWarnings = []int{95, 50, 80} }, ""},
		{"bad SMTP listener", func(c *Config) { c.Listen.SMTP = "25" }, "listen.smtp"},
		{"SMTP off", func(c *Config) { c.Listen.SMTP = Off }, ""},
		{"negative SMTP timeout", func(c *Config) { c.SMTP.Timeout = -1 }, "smtp.timeout"},
		{"no SMTP recipients", func(c *Config) { c.SMTP.MaxRecipients = 0 }, "smtp.max_recipients"},
		{"no Received field allowed", func(c *Config) { c.SMTP.MaxReceived = 0 }, "smtp.max_received"},
		{"no SMTP error allowed", func(c *Config) { c.SMTP.MaxErrors = 0 }, "smtp.max_errors"},
		{"bad sieve listener", func(c *Config) { c.Listen.Sieve = "4190" }, "listen.sieve"},
		{"sieve off", func(c *Config) { c.Listen.Sieve = Off }, ""},
		{"no sieve script allowed", func(c *Config) { c.Sieve.MaxScripts = 0 }, "sieve.max_scripts"},
		{"tiny sieve scripts", func(c *Config) { c.Sieve.MaxScriptSize = 100 }, "sieve.max_script_size"},
		{"huge sieve scripts", func(c *Config) { c.Sieve.MaxScriptSize = 1<<20 + 1 }, "sieve.max_script_size"},
		{"no sieve error allowed", func(c *Config) { c.Sieve.MaxErrors = 0 }, "sieve.max_errors"},
		{"negative sieve idle timeout", func(c *Config) { c.Sieve.IdleTimeout = -1 }, "sieve.idle_timeout"},
		{"no redirect duplicate check", func(c *Config) { c.Sieve.RedirectDuplicatePeriod = 0 }, ""},
		{"negative redirect duplicate period", func(c *Config) { c.Sieve.RedirectDuplicatePeriod = -1 }, "sieve.redirect_duplicate_period"},
		{"bad autoconfig listener", func(c *Config) { c.Listen.Autoconfigs = "443" }, "listen.autoconfigs"},
		{"autoconfig on", func(c *Config) { c.Listen.Autoconfig = "0.0.0.0:80" }, ""},
		{"autoconfig domain with @", func(c *Config) { c.Autoconfig.Domains = []string{"a@example.org"} }, "autoconfig.domains"},
		{"autoconfig advertises smtp", func(c *Config) { c.Autoconfig.Advertise = []string{"imaps", "smtp"} }, "autoconfig.advertise"},
		{"autoconfig port too high", func(c *Config) { c.Autoconfig.IMAPSPort = 65536 }, "autoconfig.imaps_port"},
		{"autoconfig submission port negative", func(c *Config) { c.Autoconfig.SubmissionPort = -1 }, "autoconfig.submission_port"},
		{"submission without port", func(c *Config) { c.Autoconfig.Submission = "smtp.example.org" }, "autoconfig.submission"},
		{"submission port 0", func(c *Config) { c.Autoconfig.Submission = "smtp.example.org:0" }, "autoconfig.submission"},
		{"submission", func(c *Config) {
			c.Autoconfig.Submission, c.Autoconfig.SubmissionSecurity = "smtp.example.org:587", "starttls"
		}, ""},
		{"submission security", func(c *Config) { c.Autoconfig.SubmissionSecurity = "ssl" }, "autoconfig.submission_security"},
		{"misspelt log level", func(c *Config) { c.Log.Level = "warning" }, "log.level"},
		{"log level in capitals", func(c *Config) { c.Log.Level = "DEBUG" }, ""},
		{"unknown log format", func(c *Config) { c.Log.Format = "logfmt" }, "log.format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.change(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}
