package fetch

import (
	_ "embed"
	"fmt"
	"reflect"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/buzon-mail/buzon/internal/config"
)

// The example is generated from this package's own config.go, so the
// comments a reader sees in `buzon fetch --example` are the doc comments
// on the fields and cannot drift from the code.
//
//go:embed config.go
var configSource string

// exampleAccounts are the accounts the example shows: the first with
// every setting documented, the second bare.
func exampleAccounts() []Account {
	return []Account{{
		Name:            "isp",
		Protocol:        ProtoPOP3,
		Host:            "pop.example.net",
		Port:            995,
		TLS:             TLSImplicit,
		User:            "alice",
		PasswordCommand: "pass show mail/isp",
		Mode:            ModeKeep,
		KeepDays:        14,
		Interval:        config.Duration(defaultInterval),
		Timeout:         config.Duration(defaultTimeout),
		Maildir:         "~/Maildir",
	}, {
		Name:           "work",
		Protocol:       ProtoIMAP,
		Host:           "imap.example.com",
		Port:           143,
		TLS:            TLSStartTLS,
		TLSFingerprint: "0d3c4b0e5c27a4e3c05f41ad4fd2d1e8a47e3c52e2a5b9c3c1d0e7f6a5b4c3d2",
		User:           "alice@example.com",
		Password:       "correct horse battery staple",
		Folders:        []string{"INBOX", "Lists"},
		Mode:           ModeDelete,
		Store:          &StoreTarget{Data: "/srv/buzon-data", Account: "alice@example.org", Mailbox: "INBOX"},
	}}
}

// exampleAlternatives gives the settings the first example account
// leaves unset a value to show, commented out.
func exampleAlternatives() Account {
	return Account{
		AllowInsecure:  true,
		TLSFingerprint: "0d3c4b0e5c27a4e3c05f41ad4fd2d1e8a47e3c52e2a5b9c3c1d0e7f6a5b4c3d2",
		TLSCAFile:      "/etc/ssl/my-ca.pem",
		Password:       "secret",
		Auth:           AuthOAuthBearer,
		Folders:        []string{"INBOX"},
		MarkSeen:       true,
		MoveTo:         "Archive",
		Mbox:           "~/mail/inbox",
		Store:          &StoreTarget{Data: "/srv/buzon-data", Account: "alice@example.org", Mailbox: "INBOX"},
		MDA:            "/usr/bin/procmail -d alice",
	}
}

// Example returns a commented sample fetch configuration: the top-level
// settings at their defaults and two accounts.
func Example() (string, error) {
	docs, err := config.DocComments(configSource)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("# buzon fetch configuration (buzon fetch --config FILE).\n")
	b.WriteString("# Top-level settings are shown at their defaults.\n")
	def := reflect.ValueOf(Default())
	t := def.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct {
			continue
		}
		b.WriteString("\n")
		config.WriteComment(&b, docs[t.Name()+"."+f.Name])
		if def.Field(i).IsZero() {
			// No default to show: the doc says what happens.
			fmt.Fprintf(&b, "# %s = \"\"\n", f.Tag.Get("toml"))
			continue
		}
		if err := writeKey(&b, "", f.Tag.Get("toml"), def.Field(i)); err != nil {
			return "", err
		}
	}
	b.WriteString("\n")
	config.WriteComment(&b, docs["Config.Accounts"])
	b.WriteString("#\n")
	config.WriteComment(&b, docs["Account"])
	alt := reflect.ValueOf(exampleAlternatives())
	for n, acct := range exampleAccounts() {
		b.WriteString("\n[[account]]\n")
		v := reflect.ValueOf(acct)
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			key := f.Tag.Get("toml")
			if n > 0 {
				if !v.Field(i).IsZero() {
					if err := writeKey(&b, "", key, v.Field(i)); err != nil {
						return "", err
					}
				}
				continue
			}
			b.WriteString("\n")
			config.WriteComment(&b, docs[t.Name()+"."+f.Name])
			if f.Name == "Store" {
				config.WriteComment(&b, storeDoc(docs))
			}
			value, prefix := v.Field(i), ""
			if value.IsZero() {
				value, prefix = alt.Field(i), "# "
			}
			if value.IsZero() {
				continue
			}
			if err := writeKey(&b, prefix, key, value); err != nil {
				return "", err
			}
		}
	}
	return b.String(), nil
}

// storeDoc documents the keys of a store inline table.
func storeDoc(docs map[string]string) string {
	var b strings.Builder
	t := reflect.TypeFor[StoreTarget]()
	for i := range t.NumField() {
		f := t.Field(i)
		line := "  " + f.Tag.Get("toml") + ":"
		for _, word := range strings.Fields(docs["StoreTarget."+f.Name]) {
			if len(line)+1+len(word) > 70 {
				b.WriteString(line + "\n")
				line = "   "
			}
			line += " " + word
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// writeKey writes "key = value", inline tables as one line, each line
// after prefix.
func writeKey(b *strings.Builder, prefix, key string, v reflect.Value) error {
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() == reflect.Struct && v.Type() != reflect.TypeFor[config.Duration]() {
		var parts []string
		t := v.Type()
		for i := range t.NumField() {
			if v.Field(i).IsZero() {
				continue
			}
			out, err := toml.Marshal(map[string]any{t.Field(i).Tag.Get("toml"): v.Field(i).Interface()})
			if err != nil {
				return err
			}
			parts = append(parts, strings.TrimSpace(string(out)))
		}
		fmt.Fprintf(b, "%s%s = { %s }\n", prefix, key, strings.Join(parts, ", "))
		return nil
	}
	out, err := toml.Marshal(map[string]any{key: v.Interface()})
	if err != nil {
		return err
	}
	b.WriteString(prefix)
	b.Write(out)
	return nil
}
