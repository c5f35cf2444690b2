package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/buzon-mail/buzon/internal/store"
)

// testAliases: an alias is another address of one account, found by
// LookupAddress and never by LookupAccount; accounts and aliases share one
// space of names; an alias names an account, never an alias; DeleteAlias
// and DeleteAccount remove them. Another Store on the same storage (the
// server, while `buzon alias` runs) sees each change at once.
func testAliases(t *testing.T, e *env) {
	alice, _ := e.account("alice@example.org")
	bob, _ := e.account("bob@example.org")
	other := e.another()

	if err := e.st.AddAlias(e.ctx, " Postmaster@Example.ORG ", "ALICE@example.org"); err != nil {
		t.Fatalf("AddAlias: %v", err)
	}
	for _, st := range []store.Store{e.st, other} {
		got, err := st.LookupAddress(e.ctx, "POSTMASTER@example.org")
		if err != nil || got.ID != alice.ID || got.Name != alice.Name {
			t.Errorf("LookupAddress(alias) = %+v, %v; want %s", got, err, alice.Name)
		}
	}
	got, err := e.st.LookupAddress(e.ctx, "Bob@example.org")
	if err != nil || got.ID != bob.ID {
		t.Errorf("LookupAddress(account) = %+v, %v; want %s", got, err, bob.Name)
	}
	_, err = e.st.LookupAddress(e.ctx, "nobody@example.org")
	mustErr(t, "LookupAddress(nobody)", err, store.ErrNoAccount)
	// An alias is no login name.
	_, err = e.st.LookupAccount(e.ctx, "postmaster@example.org")
	mustErr(t, "LookupAccount(alias)", err, store.ErrNoAccount)

	for _, tc := range []struct {
		what, alias, account string
		want                 error
	}{
		{"an alias's name again, for the same account", "postmaster@example.org", "alice@example.org", store.ErrAliasExists},
		{"an alias's name again, for another account", "POSTMASTER@example.org", "bob@example.org", store.ErrAliasExists},
		{"an account's name", "bob@example.org", "alice@example.org", store.ErrAccountExists},
		{"an account's own name", "alice@example.org", "alice@example.org", store.ErrAccountExists},
		{"an alias of an alias", "abuse@example.org", "postmaster@example.org", store.ErrNoAccount},
		{"an alias of no account", "abuse@example.org", "nobody@example.org", store.ErrNoAccount},
		{"a name that is not an address", "abuse", "alice@example.org", store.ErrInvalidName},
		{"a name with a space", "ab use@example.org", "alice@example.org", store.ErrInvalidName},
	} {
		mustErr(t, "AddAlias: "+tc.what, other.AddAlias(e.ctx, tc.alias, tc.account), tc.want)
	}
	_, err = e.st.CreateAccount(e.ctx, "Postmaster@example.org", store.Credentials{})
	mustErr(t, "CreateAccount with an alias's name", err, store.ErrAliasExists)
	_, err = e.st.LookupAddress(e.ctx, "abuse@example.org")
	mustErr(t, "LookupAddress of a refused alias", err, store.ErrNoAccount)

	for _, a := range []struct{ alias, account string }{
		{"info@example.org", "bob@example.org"},
		{"abuse@example.org", "alice@example.org"},
		{"alice@example.net", "alice@example.org"}, // another domain
	} {
		if err := other.AddAlias(e.ctx, a.alias, a.account); err != nil {
			t.Fatalf("AddAlias(%s, %s): %v", a.alias, a.account, err)
		}
	}
	want := []store.Alias{
		{Name: "abuse@example.org", Account: "alice@example.org"},
		{Name: "alice@example.net", Account: "alice@example.org"},
		{Name: "info@example.org", Account: "bob@example.org"},
		{Name: "postmaster@example.org", Account: "alice@example.org"},
	}
	e.wantAliases(e.st, want)

	// DeleteAlias removes one alias, and the address with it.
	if err := e.st.DeleteAlias(e.ctx, "Info@example.org"); err != nil {
		t.Fatalf("DeleteAlias: %v", err)
	}
	_, err = other.LookupAddress(e.ctx, "info@example.org")
	mustErr(t, "LookupAddress after DeleteAlias", err, store.ErrNoAccount)
	mustErr(t, "second DeleteAlias", e.st.DeleteAlias(e.ctx, "info@example.org"), store.ErrNoAlias)
	mustErr(t, "DeleteAlias of an account", e.st.DeleteAlias(e.ctx, "bob@example.org"), store.ErrNoAlias)
	if _, err := e.st.LookupAccount(e.ctx, "bob@example.org"); err != nil {
		t.Errorf("DeleteAlias of an account's name touched the account: %v", err)
	}
	want = slices.DeleteFunc(want, func(a store.Alias) bool { return a.Name == "info@example.org" })
	e.wantAliases(other, want)

	// The name is free again, for an account or an alias.
	if err := e.st.AddAlias(e.ctx, "info@example.org", "alice@example.org"); err != nil {
		t.Errorf("AddAlias of a deleted alias's name: %v", err)
	}
	if err := e.st.DeleteAlias(e.ctx, "info@example.org"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.CreateAccount(e.ctx, "info@example.org", store.Credentials{}); err != nil {
		t.Errorf("CreateAccount with a deleted alias's name: %v", err)
	}

	// Deleting an account deletes its aliases, and only its own.
	if err := e.st.AddAlias(e.ctx, "sales@example.org", "bob@example.org"); err != nil {
		t.Fatal(err)
	}
	if err := other.DeleteAccount(e.ctx, "alice@example.org"); err != nil {
		t.Fatal(err)
	}
	e.wantAliases(e.st, []store.Alias{{Name: "sales@example.org", Account: "bob@example.org"}})
	for _, name := range []string{"postmaster@example.org", "abuse@example.org", "alice@example.net"} {
		_, err := e.st.LookupAddress(e.ctx, name)
		mustErr(t, "LookupAddress("+name+") after its account was deleted", err, store.ErrNoAccount)
	}
	// A new account of the deleted one's name has none of its aliases.
	again, _ := e.account("alice@example.org")
	if _, err := e.st.LookupAddress(e.ctx, "postmaster@example.org"); !errors.Is(err, store.ErrNoAccount) {
		t.Errorf("the old alias reaches the new account %d: %v", again.ID, err)
	}
	if err := e.st.AddAlias(e.ctx, "postmaster@example.org", "alice@example.org"); err != nil {
		t.Errorf("AddAlias after the account was deleted: %v", err)
	}

	// Aliases outlive a restart.
	e.reopen()
	e.wantAliases(e.st, []store.Alias{
		{Name: "postmaster@example.org", Account: "alice@example.org"},
		{Name: "sales@example.org", Account: "bob@example.org"},
	})
	if got, err := e.st.LookupAddress(e.ctx, "sales@example.org"); err != nil || got.ID != bob.ID {
		t.Errorf("LookupAddress after reopening = %+v, %v", got, err)
	}
}

// wantAliases checks st's list of aliases.
func (e *env) wantAliases(st store.Store, want []store.Alias) {
	e.t.Helper()
	got, err := st.Aliases(e.ctx)
	if err != nil {
		e.t.Fatalf("Aliases: %v", err)
	}
	if !slices.Equal(got, want) {
		e.t.Errorf("Aliases = %v, want %v", got, want)
	}
}

// testAliasRace: an account and an alias of the same name made at once,
// through two Stores (two processes, or two nodes), never both exist.
func testAliasRace(t *testing.T, e *env) {
	e.account("alice@example.org")
	other := e.another()
	for i := range 20 {
		name := fmt.Sprintf("race%d@example.org", i)
		start := make(chan struct{})
		errs := make([]error, 2)
		var wg sync.WaitGroup
		wg.Go(func() {
			<-start
			_, errs[0] = e.st.CreateAccount(e.ctx, name, store.Credentials{})
		})
		wg.Go(func() {
			<-start
			errs[1] = other.AddAlias(e.ctx, name, "alice@example.org")
		})
		close(start)
		wg.Wait()
		switch {
		case errs[0] == nil && errs[1] == nil:
			t.Fatalf("%s is both an account and an alias", name)
		case errs[0] == nil:
			mustErr(t, "AddAlias that lost to CreateAccount", errs[1], store.ErrAccountExists)
		case errs[1] == nil:
			mustErr(t, "CreateAccount that lost to AddAlias", errs[0], store.ErrAliasExists)
		default:
			t.Fatalf("%s: both failed: %v; %v", name, errs[0], errs[1])
		}
	}
}
