package storetest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/buzon-mail/buzon/internal/store"
)

// secretKeeper returns st's store.SecretKeeper, or nil if the backend has
// none.
func secretKeeper(st store.Store) store.SecretKeeper {
	if c, ok := st.(*closingStore); ok {
		st = c.Store
	}
	k, _ := st.(store.SecretKeeper)
	return k
}

// testSecrets: a secret is made once and is then the same for every call,
// through every Store on the storage, after a restart, and when Stores
// (processes, nodes) that have never seen it ask for it at the same time.
// Distinct names have distinct secrets. Secrets lists them all.
func testSecrets(t *testing.T, e *env) {
	if secretKeeper(e.st) == nil {
		t.Skip("the backend keeps no secrets (store.SecretKeeper)")
	}
	get := func(st store.Store, name string) []byte {
		t.Helper()
		v, err := secretKeeper(st).Secret(e.ctx, name)
		if err != nil {
			t.Fatalf("Secret(%q): %v", name, err)
		}
		if len(v) != store.SecretSize {
			t.Fatalf("Secret(%q) has %d bytes, want %d", name, len(v), store.SecretSize)
		}
		return v
	}

	a := get(e.st, "a")
	if bytes.Equal(a, make([]byte, store.SecretSize)) {
		t.Fatalf("Secret(a) is all zeros")
	}
	if again := get(e.st, "a"); !bytes.Equal(again, a) {
		t.Errorf("Secret(a) changed between calls: %x, then %x", a, again)
	}
	if b := get(e.st, "b"); bytes.Equal(b, a) {
		t.Errorf("Secret(b) = Secret(a) = %x", a)
	}
	if other := get(e.another(), "a"); !bytes.Equal(other, a) {
		t.Errorf("Secret(a) through another Store: %x, want %x", other, a)
	}
	e.reopen()
	if reopened := get(e.st, "a"); !bytes.Equal(reopened, a) {
		t.Errorf("Secret(a) after reopening the store: %x, want %x", reopened, a)
	}

	// Several Stores, none of which has seen the name, ask for it at once,
	// from several goroutines each: one value wins and all return it.
	const stores, callers = 4, 4
	sts := make([]store.Store, stores)
	for i := range sts {
		sts[i] = e.another()
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	got := make([][]byte, stores*callers)
	errs := make([]error, len(got))
	for i := range got {
		wg.Go(func() {
			<-start
			got[i], errs[i] = secretKeeper(sts[i%stores]).Secret(e.ctx, "race")
		})
	}
	close(start)
	wg.Wait()
	seen := map[string]bool{}
	for i, v := range got {
		if errs[i] != nil {
			t.Errorf("concurrent Secret(race) %d: %v", i, errs[i])
			continue
		}
		seen[fmt.Sprintf("%x", v)] = true
	}
	if len(seen) > 1 {
		t.Errorf("concurrent first calls of Secret(race) returned %d different values", len(seen))
	}
	race := get(e.st, "race")
	if !seen[fmt.Sprintf("%x", race)] {
		t.Errorf("Secret(race) afterwards: %x, none of the values the concurrent calls returned", race)
	}

	// Secrets lists every one.
	all, err := secretKeeper(e.st).Secrets(e.ctx)
	if err != nil {
		t.Fatalf("Secrets: %v", err)
	}
	want := map[string][]byte{"a": a, "b": get(e.st, "b"), "race": race}
	if len(all) != len(want) {
		t.Errorf("Secrets has %d secrets, want %d", len(all), len(want))
	}
	for name, v := range want {
		if !bytes.Equal(all[name], v) {
			t.Errorf("Secrets()[%q] = %x, want %x", name, all[name], v)
		}
	}
}
