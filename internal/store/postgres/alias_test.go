package postgres

import (
	"errors"
	"testing"

	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/postgres/pgtest"
)

// TestAliasesAndImports: an import cannot take an alias's name, and an
// alias cannot take the name of an account being imported, nor name one:
// that account is no account until its import finishes.
func TestAliasesAndImports(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openTest(t, pgtest.Start(t))
	defer s.Close()
	if _, err := s.CreateAccount(ctx, "alice@example.org", store.Credentials{}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddAlias(ctx, "info@example.org", "alice@example.org"); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.ImportAccount(ctx, store.Account{Name: "Info@example.org"})
	mustBe(t, "ImportAccount with an alias's name", err, store.ErrAliasExists)

	id, _, err := s.ImportAccount(ctx, store.Account{Name: "bob@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	mustBe(t, "AddAlias with the name of an account being imported", s.AddAlias(ctx, "bob@example.org", "alice@example.org"), store.ErrAccountExists)
	mustBe(t, "AddAlias of an account being imported", s.AddAlias(ctx, "robert@example.org", "bob@example.org"), store.ErrNoAccount)
	_, err = s.LookupAddress(ctx, "bob@example.org")
	mustBe(t, "LookupAddress of an account being imported", err, store.ErrNoAccount)
	if err := s.FinishImport(ctx, id, 0, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.AddAlias(ctx, "robert@example.org", "bob@example.org"); err != nil {
		t.Errorf("AddAlias of an imported account: %v", err)
	}
}

func mustBe(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: %v, want %v", what, err, want)
	}
}
