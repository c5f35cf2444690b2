package delivery

import (
	"errors"
	"testing"

	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/teststore"
)

// TestLookup: an address reaches the account of its name, else the one
// its alias names, else, without its +detail, the account or alias of
// that name; nothing else reaches anyone.
func TestLookup(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := teststore.Open(t, t.TempDir())
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
	for _, tc := range []struct{ address, want, detail string }{
		{"alice@example.org", "alice@example.org", ""},
		{"ALICE@Example.ORG", "alice@example.org", ""},
		{"info@example.org", "bob@example.org", ""},
		{"Info@EXAMPLE.org", "bob@example.org", ""},
		{"postmaster@example.net", "alice@example.org", ""},
		{"alice+lists@example.org", "alice@example.org", "lists"},
		{"info+orders@example.org", "bob@example.org", "orders"},
		{"info+a+b@example.org", "bob@example.org", "a+b"},
		{"sales+eu@example.org", "carol@example.org", ""}, // an alias itself, not sales@ with a detail
		{"sales+us@example.org", "", ""},
		{"sales@example.org", "", ""},
		{"nobody@example.org", "", ""},
		{"nobody+x@example.org", "", ""},
		{"+x@example.org", "", ""},
		{"info@example.net", "", ""},
		{" alice@example.org", "", ""},
		{"alice@example.org ", "", ""},
	} {
		r, err := d.Lookup(ctx, tc.address)
		switch {
		case tc.want == "" && !errors.Is(err, ErrUnknownRecipient):
			t.Errorf("Lookup(%q) = %q, %v; want %v", tc.address, r.Account.Name, err, ErrUnknownRecipient)
		case tc.want != "" && (err != nil || r.Account.Name != tc.want || r.Detail != tc.detail):
			t.Errorf("Lookup(%q) = %q +%q, %v; want %s +%q", tc.address, r.Account.Name, r.Detail, err, tc.want, tc.detail)
		}
	}
}

// TestCopyKey: the addresses of one account, its aliases among them, share
// a copy unless their +detail differs, and whatever Lookup took off is
// the detail, never the '+' that is part of an alias's own name.
func TestCopyKey(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := teststore.Open(t, t.TempDir())
	for _, name := range []string{"alice@example.org", "bob@example.org"} {
		if _, err := st.CreateAccount(ctx, name, store.Credentials{}); err != nil {
			t.Fatal(err)
		}
	}
	for alias, account := range map[string]string{
		"info@example.org":      "alice@example.org",
		"bob+sales@example.org": "alice@example.org",
	} {
		if err := st.AddAlias(ctx, alias, account); err != nil {
			t.Fatal(err)
		}
	}
	d := &Deliverer{Store: st}
	key := func(address string) string {
		r, err := d.Lookup(ctx, address)
		if err != nil {
			t.Fatalf("Lookup(%q): %v", address, err)
		}
		return r.CopyKey()
	}
	same := [][2]string{
		{"alice@example.org", "info@example.org"},
		{"alice@example.org", "bob+sales@example.org"},
		{"alice+news@example.org", "info+news@example.org"},
		{"ALICE@example.org", "alice@example.org"},
	}
	for _, p := range same {
		if key(p[0]) != key(p[1]) {
			t.Errorf("%s and %s get a copy each; want one", p[0], p[1])
		}
	}
	apart := [][2]string{
		{"alice@example.org", "alice+news@example.org"},
		{"alice@example.org", "bob@example.org"},
		{"bob@example.org", "bob+sales@example.org"},
		{"alice+a@example.org", "alice+b@example.org"},
	}
	for _, p := range apart {
		if key(p[0]) == key(p[1]) {
			t.Errorf("%s and %s share a copy; want one each", p[0], p[1])
		}
	}
}
