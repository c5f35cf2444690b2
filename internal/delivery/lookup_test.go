package delivery

import (
	"errors"
	"testing"

	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/sqlite"
)

// TestLookup: an address reaches the account of its name, else the one
// its alias names, else, without its +detail, the account or alias of
// that name; nothing else reaches anyone.
func TestLookup(t *testing.T) {
	ctx := t.Context()
	st, err := sqlite.Open(sqlite.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, name := range []string{"alice@example.org", "bob@example.org", "carol@example.org"} {
		if _, err := st.CreateAccount(ctx, name, store.Credentials{}); err != nil {
			t.Fatal(err)
		}
	}
	for alias, account := range map[string]string{
		"info@example.org":       "bob@example.org",
		"sales+eu@example.org":   "carol@example.org",
		"postmaster@example.net": "alice@example.org",
	} {
		if err := st.AddAlias(ctx, alias, account); err != nil {
			t.Fatal(err)
		}
	}
	d := &Deliverer{Store: st}
	for _, tc := range []struct{ address, want string }{
		{"alice@example.org", "alice@example.org"},
		{"ALICE@Example.ORG", "alice@example.org"},
		{"info@example.org", "bob@example.org"},
		{"Info@EXAMPLE.org", "bob@example.org"},
		{"postmaster@example.net", "alice@example.org"},
		{"alice+lists@example.org", "alice@example.org"},
		{"info+orders@example.org", "bob@example.org"},
		{"info+a+b@example.org", "bob@example.org"},
		{"sales+eu@example.org", "carol@example.org"}, // an alias itself, not sales@ with a detail
		{"sales+us@example.org", ""},
		{"sales@example.org", ""},
		{"nobody@example.org", ""},
		{"nobody+x@example.org", ""},
		{"+x@example.org", ""},
		{"info@example.net", ""},
		{" alice@example.org", ""},
		{"alice@example.org ", ""},
	} {
		acct, err := d.Lookup(ctx, tc.address)
		switch {
		case tc.want == "" && !errors.Is(err, ErrUnknownRecipient):
			t.Errorf("Lookup(%q) = %q, %v; want %v", tc.address, acct.Name, err, ErrUnknownRecipient)
		case tc.want != "" && (err != nil || acct.Name != tc.want):
			t.Errorf("Lookup(%q) = %q, %v; want %s", tc.address, acct.Name, err, tc.want)
		}
	}
}
