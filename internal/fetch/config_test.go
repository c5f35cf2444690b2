package fetch

import (
	"github.com/buzon-mail/buzon/internal/config"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestExample: the generated example loads and validates, and documents
// every setting.
func TestExample(t *testing.T) {
	ex, err := Example()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "fetch.toml")
	if err := os.WriteFile(path, []byte(ex), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("the example does not load: %v\n%s", err, ex)
	}
	if len(cfg.Accounts) != 2 || cfg.StateDir != path+".state" {
		t.Errorf("example loads as %+v", cfg)
	}
	docs, err := config.DocComments(configSource)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []reflect.Type{reflect.TypeFor[Config](), reflect.TypeFor[Account](), reflect.TypeFor[StoreTarget]()} {
		for i := range typ.NumField() {
			f := typ.Field(i)
			if strings.TrimSpace(docs[typ.Name()+"."+f.Name]) == "" {
				t.Errorf("%s.%s has no doc comment", typ.Name(), f.Name)
			}
			if key := f.Tag.Get("toml"); !strings.Contains(ex, "\n"+key+" = ") && !strings.Contains(ex, "\n# "+key+" = ") &&
				typ.Name() != "StoreTarget" && f.Name != "Accounts" {
				t.Errorf("the example does not show %s", key)
			}
		}
	}
}

// TestLoadDefaults: a minimal account gets its defaults, and paths are
// resolved against the file's folder.
func TestLoadDefaults(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fetch.toml")
	os.WriteFile(path, []byte(`
[[account]]
name = "a"
protocol = "IMAP"
host = "imap.example.com"
user = "u"
password = "p"
maildir = "Maildir"

[[account]]
name = "b"
protocol = "pop3"
host = "pop.example.com"
tls = "stls"
user = "u"
password_command = "echo p"
mode = "delete"
interval = "1m"
store = { data = "../data", account = "x@example.org" }
`), 0o600)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.Accounts[0], cfg.Accounts[1]
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"state_dir", cfg.StateDir, path + ".state"},
		{"a.protocol", a.Protocol, ProtoIMAP},
		{"a.port", a.Port, 993},
		{"a.tls", a.TLS, TLSImplicit},
		{"a.mode", a.Mode, ModeKeep},
		{"a.auth", a.Auth, AuthPassword},
		{"a.folders", strings.Join(a.Folders, ","), "INBOX"},
		{"a.maildir", a.Maildir, filepath.Join(dir, "Maildir")},
		{"a.interval", a.Interval.D(), 5 * time.Minute},
		{"a.timeout", a.Timeout.D(), time.Minute},
		{"b.port", b.Port, 110},
		{"b.tls", b.TLS, TLSStartTLS},
		{"b.interval", b.Interval.D(), time.Minute},
		{"b.store.data", b.Store.Data, filepath.Join(filepath.Dir(dir), "data")},
		{"b.store.mailbox", b.Store.Mailbox, "INBOX"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// TestValidate refuses configurations that cannot work, saying why.
func TestValidate(t *testing.T) {
	base := func() Account {
		return Account{Name: "a", Protocol: ProtoIMAP, Host: "h", User: "u", Password: "p", Maildir: "/m"}
	}
	for _, tc := range []struct {
		name   string
		adjust func(*Account)
		want   string
	}{
		{"ok", func(*Account) {}, ""},
		{"bad name", func(a *Account) { a.Name = "a/b" }, "name"},
		{"protocol", func(a *Account) { a.Protocol = "smtp" }, "protocol"},
		{"no host", func(a *Account) { a.Host = "" }, "host"},
		{"tls none", func(a *Account) { a.TLS = TLSNone }, "allow_insecure"},
		{"tls none allowed", func(a *Account) { a.TLS, a.AllowInsecure = TLSNone, true }, ""},
		{"tls mode", func(a *Account) { a.TLS = "ssl" }, "tls"},
		{"fingerprint", func(a *Account) { a.TLSFingerprint = "abc" }, "tls_fingerprint"},
		{"fingerprint colons", func(a *Account) { a.TLSFingerprint = strings.Repeat("AB:", 31) + "AB" }, ""},
		{"pin and CA", func(a *Account) { a.TLSFingerprint, a.TLSCAFile = strings.Repeat("ab", 32), "/ca" }, "one or the other"},
		{"two passwords", func(a *Account) { a.PasswordCommand = "x" }, "password"},
		{"no password", func(a *Account) { a.Password = "" }, "password"},
		{"oauth token from password_command", func(a *Account) { a.Auth, a.Password, a.PasswordCommand = "XOAUTH2", "", "oama access u" }, ""},
		{"oauth token written down", func(a *Account) { a.Auth = AuthOAuthBearer }, "password_command must print a fresh one"},
		{"auth", func(a *Account) { a.Auth = "cram-md5" }, "auth"},
		{"mode", func(a *Account) { a.Mode = "archive" }, "mode"},
		{"keep_days with delete", func(a *Account) { a.Mode, a.KeepDays = ModeDelete, 3 }, "keep_days"},
		{"keep_days negative", func(a *Account) { a.KeepDays = -1 }, "keep_days"},
		{"keep_days for ever", func(a *Account) { a.KeepDays = 200_000 }, ""},
		{"keep_days past the calendar", func(a *Account) { a.KeepDays = maxKeepDays + 1 }, "keep_days"},
		{"pop3 folders", func(a *Account) { a.Protocol, a.Folders = ProtoPOP3, []string{"X"} }, "folders"},
		{"pop3 move", func(a *Account) { a.Protocol, a.MoveTo = ProtoPOP3, "X" }, "IMAP only"},
		{"move and delete", func(a *Account) { a.Mode, a.MoveTo = ModeDelete, "X" }, "move_to"},
		{"move into a fetched folder", func(a *Account) { a.Folders, a.MoveTo = []string{"INBOX", "X"}, "X" }, "fetched twice"},
		{"no destination", func(a *Account) { a.Maildir = "" }, "destination"},
		{"two destinations", func(a *Account) { a.Mbox = "/x" }, "destination"},
		{"store without account", func(a *Account) { a.Maildir, a.Store = "", &StoreTarget{Data: "/d"} }, "store: account"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := base()
			tc.adjust(&a)
			cfg := Default()
			cfg.StateDir = "/state"
			cfg.Accounts = []Account{a}
			cfg.resolve("/")
			err := cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one about %q", err, tc.want)
			}
		})
	}
}

// TestLoadUnknownKey: a misspelt setting is an error, not ignored.
func TestLoadUnknownKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fetch.toml")
	os.WriteFile(path, []byte("[[account]]\nname = \"a\"\nkeepdays = 3\n"), 0o600)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "keepdays") {
		t.Errorf("error %v, want one naming keepdays", err)
	}
}
