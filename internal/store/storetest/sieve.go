package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

// sieveNames returns the names of the scripts listed, the active one
// marked with a star, as "a b* c", and checks that listing gives sizes
// but no content.
func sieveNames(t *testing.T, e *env, ss store.Session, want map[string]int) string {
	t.Helper()
	list, err := ss.SieveScripts(e.ctx)
	if err != nil {
		t.Fatalf("SieveScripts: %v", err)
	}
	var names []string
	for _, sc := range list {
		if sc.Content != nil {
			t.Errorf("SieveScripts: %q listed with its content", sc.Name)
		}
		if size, ok := want[sc.Name]; ok && sc.Size != int64(size) {
			t.Errorf("SieveScripts: %q of size %d, want %d", sc.Name, sc.Size, size)
		}
		if sc.Modified.IsZero() {
			t.Errorf("SieveScripts: %q without a modification time", sc.Name)
		}
		name := sc.Name
		if sc.Active {
			name += "*"
		}
		names = append(names, name)
	}
	return strings.Join(names, " ")
}

// testSieveScripts: every method of the scripts of an account and each
// of their errors; another Store on the same storage (the server, while
// `buzon sieve` runs) sees every change; another account sees none.
func testSieveScripts(t *testing.T, e *env) {
	alice, ss := e.account("alice@example.org")
	_, bob := e.account("bob@example.org")
	other := e.session(e.another(), alice.ID)

	if got := sieveNames(t, e, ss, nil); got != "" {
		t.Errorf("a new account has scripts: %q", got)
	}
	_, err := ss.ActiveSieveScript(e.ctx)
	mustErr(t, "ActiveSieveScript with no script", err, store.ErrNoSieveScript)
	_, err = ss.ActiveSieveScriptInfo(e.ctx, time.Now())
	mustErr(t, "ActiveSieveScriptInfo with no script", err, store.ErrNoSieveScript)

	vacation := []byte("require \"fileinto\";\r\nfileinto \"Ñandú\";\r\n")
	for name, content := range map[string][]byte{"vacation": vacation, "Ñandú 2": []byte("keep;"), "empty": nil} {
		if err := ss.PutSieveScript(e.ctx, name, content, 0); err != nil {
			t.Fatalf("PutSieveScript(%q): %v", name, err)
		}
	}
	if got, want := sieveNames(t, e, other, map[string]int{"vacation": len(vacation), "empty": 0, "Ñandú 2": 5}), "empty vacation Ñandú 2"; got != want {
		t.Errorf("scripts seen by another Store: %q, want %q", got, want)
	}
	sc, err := other.SieveScript(e.ctx, "vacation")
	if err != nil || !bytes.Equal(sc.Content, vacation) || sc.Size != int64(len(vacation)) || sc.Active || sc.Name != "vacation" {
		t.Errorf("SieveScript(vacation) = %+v, %v", sc, err)
	}
	if sc, err := ss.SieveScript(e.ctx, "empty"); err != nil || sc.Content == nil || len(sc.Content) != 0 {
		t.Errorf("SieveScript(empty) = %+v, %v; want empty, non-nil content", sc, err)
	}
	// Names are compared exactly.
	_, err = ss.SieveScript(e.ctx, "Vacation")
	mustErr(t, "SieveScript(Vacation)", err, store.ErrNoSieveScript)
	if got := sieveNames(t, e, bob, nil); got != "" {
		t.Errorf("another account sees scripts: %q", got)
	}
	_, err = bob.SieveScript(e.ctx, "vacation")
	mustErr(t, "another account's SieveScript", err, store.ErrNoSieveScript)

	// Names (RFC 5804 1.6).
	for _, name := range []string{"", "a\x00b", "tab\there", "line\r\nbreak", "del\x7f", "c1\u0085", "sep\u2028", "par\u2029",
		"\xff\xfe", strings.Repeat("ñ", store.MaxSieveScriptNameLen+1)} {
		mustErr(t, fmt.Sprintf("PutSieveScript(%q)", name), ss.PutSieveScript(e.ctx, name, []byte("keep;"), 0), store.ErrInvalidName)
		mustErr(t, fmt.Sprintf("RenameSieveScript to %q", name), ss.RenameSieveScript(e.ctx, "empty", name), store.ErrInvalidName)
	}
	long := strings.Repeat("ñ", store.MaxSieveScriptNameLen)
	if err := ss.PutSieveScript(e.ctx, long, []byte("keep;"), 0); err != nil {
		t.Errorf("PutSieveScript(128 characters): %v", err)
	}
	if err := ss.DeleteSieveScript(e.ctx, long); err != nil {
		t.Errorf("DeleteSieveScript(128 characters): %v", err)
	}

	// Activation: one at a time; "" for none.
	mustErr(t, "ActivateSieveScript(missing)", ss.ActivateSieveScript(e.ctx, "missing"), store.ErrNoSieveScript)
	if err := ss.ActivateSieveScript(e.ctx, "vacation"); err != nil {
		t.Fatalf("ActivateSieveScript(vacation): %v", err)
	}
	if act, err := other.ActiveSieveScript(e.ctx); err != nil || act.Name != "vacation" || !act.Active || !bytes.Equal(act.Content, vacation) {
		t.Errorf("ActiveSieveScript = %+v, %v; want vacation", act, err)
	}
	checkActiveInfo(t, e, alice.ID, other, "vacation", int64(len(vacation)))
	mustErr(t, "ActivateSieveScript(missing) with one active", ss.ActivateSieveScript(e.ctx, "missing"), store.ErrNoSieveScript)
	if got, want := sieveNames(t, e, ss, nil), "empty vacation* Ñandú 2"; got != want {
		t.Errorf("after a failed activation: %q, want %q", got, want)
	}
	if err := ss.ActivateSieveScript(e.ctx, "vacation"); err != nil {
		t.Errorf("ActivateSieveScript of the active script: %v", err)
	}
	if err := other.ActivateSieveScript(e.ctx, "Ñandú 2"); err != nil {
		t.Fatalf("ActivateSieveScript(Ñandú 2): %v", err)
	}
	if got, want := sieveNames(t, e, ss, nil), "empty vacation Ñandú 2*"; got != want {
		t.Errorf("after activating another: %q, want %q", got, want)
	}
	if _, err := bob.ActiveSieveScript(e.ctx); err == nil {
		t.Errorf("another account has an active script")
	}

	// Replacing the active script keeps it active, with the new content.
	if err := ss.PutSieveScript(e.ctx, "Ñandú 2", []byte("discard;"), 0); err != nil {
		t.Fatalf("PutSieveScript over the active script: %v", err)
	}
	if act, err := ss.ActiveSieveScript(e.ctx); err != nil || act.Name != "Ñandú 2" || string(act.Content) != "discard;" || act.Size != 8 {
		t.Errorf("active script after replacing it: %+v, %v", act, err)
	}
	checkActiveInfo(t, e, alice.ID, other, "Ñandú 2", 8)

	// Deleting: not the active one (RFC 5804 2.10).
	mustErr(t, "DeleteSieveScript(active)", ss.DeleteSieveScript(e.ctx, "Ñandú 2"), store.ErrSieveScriptActive)
	mustErr(t, "DeleteSieveScript(missing)", ss.DeleteSieveScript(e.ctx, "missing"), store.ErrNoSieveScript)
	if err := ss.DeleteSieveScript(e.ctx, "empty"); err != nil {
		t.Errorf("DeleteSieveScript(empty): %v", err)
	}
	mustErr(t, "DeleteSieveScript twice", other.DeleteSieveScript(e.ctx, "empty"), store.ErrNoSieveScript)

	// Renaming: the active script stays active under its new name.
	mustErr(t, "RenameSieveScript(missing)", ss.RenameSieveScript(e.ctx, "missing", "new"), store.ErrNoSieveScript)
	// The source is looked for first, whatever the target.
	mustErr(t, "RenameSieveScript(missing) onto another", ss.RenameSieveScript(e.ctx, "missing", "vacation"), store.ErrNoSieveScript)
	mustErr(t, "RenameSieveScript onto another", ss.RenameSieveScript(e.ctx, "vacation", "Ñandú 2"), store.ErrSieveScriptExists)
	if err := ss.RenameSieveScript(e.ctx, "Ñandú 2", "main"); err != nil {
		t.Fatalf("RenameSieveScript of the active script: %v", err)
	}
	if act, err := other.ActiveSieveScript(e.ctx); err != nil || act.Name != "main" || string(act.Content) != "discard;" {
		t.Errorf("active script after renaming it: %+v, %v", act, err)
	}
	_, err = ss.SieveScript(e.ctx, "Ñandú 2")
	mustErr(t, "SieveScript(old name)", err, store.ErrNoSieveScript)
	if got, want := sieveNames(t, e, ss, nil), "main* vacation"; got != want {
		t.Errorf("after renaming: %q, want %q", got, want)
	}

	// Deactivating leaves the scripts and none active; then any can go.
	if err := ss.ActivateSieveScript(e.ctx, ""); err != nil {
		t.Fatalf("ActivateSieveScript(\"\"): %v", err)
	}
	_, err = other.ActiveSieveScript(e.ctx)
	mustErr(t, "ActiveSieveScript after deactivating", err, store.ErrNoSieveScript)
	_, err = other.ActiveSieveScriptInfo(e.ctx, time.Now())
	mustErr(t, "ActiveSieveScriptInfo after deactivating, from a session opened before", err, store.ErrNoSieveScript)
	if err := ss.ActivateSieveScript(e.ctx, ""); err != nil {
		t.Errorf("ActivateSieveScript(\"\") with none active: %v", err)
	}
	if got, want := sieveNames(t, e, ss, nil), "main vacation"; got != want {
		t.Errorf("after deactivating: %q, want %q", got, want)
	}
	if err := ss.DeleteSieveScript(e.ctx, "main"); err != nil {
		t.Errorf("DeleteSieveScript of a deactivated script: %v", err)
	}
}

// checkActiveInfo checks ActiveSieveScriptInfo against ActiveSieveScript:
// asked of old, a session opened before the last change, for a time after
// it; and of a session opened now, for a time before its Open, as a
// delivery asks.
func checkActiveInfo(t *testing.T, e *env, accountID int64, old store.Session, name string, size int64) {
	t.Helper()
	full, err := old.ActiveSieveScript(e.ctx)
	if err != nil {
		t.Fatalf("ActiveSieveScript: %v", err)
	}
	before := time.Now()
	fresh := e.session(e.st, accountID)
	for what, got := range map[string]func() (store.SieveScript, error){
		"a session opened before the change": func() (store.SieveScript, error) { return old.ActiveSieveScriptInfo(e.ctx, time.Now()) },
		"a session opened after it":          func() (store.SieveScript, error) { return fresh.ActiveSieveScriptInfo(e.ctx, before) },
	} {
		sc, err := got()
		if err != nil || sc.Name != name || sc.Size != size || !sc.Active || sc.Content != nil || !sc.Modified.Equal(full.Modified) {
			t.Errorf("ActiveSieveScriptInfo of %s = %+v, %v; want %q of %d octets modified %v, no content", what, sc, err, name, size, full.Modified)
		}
	}
}

// testSieveDeleteAccount: deleting an account deletes its scripts; an
// account made again with the name starts with none.
func testSieveDeleteAccount(t *testing.T, e *env) {
	_, ss := e.account("carol@example.org")
	if err := ss.PutSieveScript(e.ctx, "main", []byte("keep;"), 0); err != nil {
		t.Fatalf("PutSieveScript: %v", err)
	}
	if err := ss.ActivateSieveScript(e.ctx, "main"); err != nil {
		t.Fatalf("ActivateSieveScript: %v", err)
	}
	ss.Close()
	if err := e.st.DeleteAccount(e.ctx, "carol@example.org"); err != nil {
		t.Fatalf("DeleteAccount: %v", err)
	}
	_, again := e.account("carol@example.org")
	if got := sieveNames(t, e, again, nil); got != "" {
		t.Errorf("a re-created account has the old one's scripts: %q", got)
	}
	_, err := again.ActiveSieveScript(e.ctx)
	mustErr(t, "ActiveSieveScript of the re-created account", err, store.ErrNoSieveScript)
}

// testSieveActivateRace: activations from two sessions at once, on two
// Stores as two processes or nodes would, leave exactly one script
// active.
func testSieveActivateRace(t *testing.T, e *env) {
	a, ss := e.account("dave@example.org")
	sessions := []store.Session{ss, e.session(e.another(), a.ID)}
	for _, name := range []string{"one", "two"} {
		if err := ss.PutSieveScript(e.ctx, name, []byte("keep;"), 0); err != nil {
			t.Fatalf("PutSieveScript(%s): %v", name, err)
		}
	}
	const rounds = 20
	var wg sync.WaitGroup
	errs := make(chan error, 2*rounds)
	for i, name := range []string{"one", "two"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				if err := sessions[i].ActivateSieveScript(e.ctx, name); err != nil {
					errs <- fmt.Errorf("ActivateSieveScript(%s): %w", name, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	list, err := ss.SieveScripts(e.ctx)
	if err != nil {
		t.Fatalf("SieveScripts: %v", err)
	}
	active := 0
	for _, sc := range list {
		if sc.Active {
			active++
		}
	}
	if active != 1 {
		t.Errorf("%d scripts active after concurrent activations, want 1: %+v", active, list)
	}
}

// testSieveLimit: PutSieveScript's maxScripts refuses a new name past the
// limit with ErrLimit and always lets a script be replaced; puts of new
// names from two sessions at once, on two Stores, never go past it.
func testSieveLimit(t *testing.T, e *env) {
	a, ss := e.account("erin@example.org")
	for _, name := range []string{"one", "two"} {
		if err := ss.PutSieveScript(e.ctx, name, []byte("keep;"), 2); err != nil {
			t.Fatalf("PutSieveScript(%s) within the limit: %v", name, err)
		}
	}
	mustErr(t, "PutSieveScript of a third name, limit 2", ss.PutSieveScript(e.ctx, "three", []byte("keep;"), 2), store.ErrLimit)
	if err := ss.PutSieveScript(e.ctx, "two", []byte("discard;"), 2); err != nil {
		t.Errorf("PutSieveScript replacing a script at the limit: %v", err)
	}
	if sc, err := ss.SieveScript(e.ctx, "two"); err != nil || string(sc.Content) != "discard;" {
		t.Errorf("SieveScript(two) after replacing it = %+v, %v", sc, err)
	}
	if err := ss.PutSieveScript(e.ctx, "three", []byte("keep;"), 0); err != nil {
		t.Errorf("PutSieveScript without a limit: %v", err)
	}
	if got, want := sieveNames(t, e, ss, nil), "one three two"; got != want {
		t.Errorf("scripts = %q, want %q", got, want)
	}

	// Two sessions race for the last places.
	const limit, each = 6, 10
	sessions := []store.Session{ss, e.session(e.another(), a.ID)}
	var wg sync.WaitGroup
	errs := make(chan error, 2*each)
	for i, sess := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				err := sess.PutSieveScript(e.ctx, fmt.Sprintf("s%d-%d", i, j), []byte("keep;"), limit)
				if err != nil && !errors.Is(err, store.ErrLimit) {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	list, err := ss.SieveScripts(e.ctx)
	if err != nil {
		t.Fatalf("SieveScripts: %v", err)
	}
	if len(list) != limit {
		t.Errorf("%d scripts after concurrent puts with a limit of %d", len(list), limit)
	}
}
