package auth

import (
	"strings"
	"testing"

	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/teststore"
)

// TestSCRAMSaltFromStore: Authenticators over one store, as two nodes or
// as a server before and after a restart, give an unknown name the same
// SCRAM salt, as they do a real account; two unknown names get different
// salts. Were the secret behind those salts made at each start, comparing
// them would tell the unknown name from the real account.
func TestSCRAMSaltFromStore(t *testing.T) {
	ctx := t.Context()
	cfg := testConfig()
	dir := t.TempDir()
	newAuth := func(st store.Store) *Authenticator {
		t.Helper()
		a, err := New(cfg, st, nil)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	// salt returns the salt of the server-first message (RFC 5802 5.1)
	// that a answers user with.
	salt := func(a *Authenticator, user string) string {
		t.Helper()
		m, err := a.NewMechanism(SCRAMSHA256, client1)
		if err != nil {
			t.Fatal(err)
		}
		sf, _, err := m.Next(ctx, []byte("n,,n="+user+",r=abc"))
		if err != nil {
			t.Fatalf("client-first for %s: %v", user, err)
		}
		for attr := range strings.SplitSeq(string(sf), ",") {
			if s, ok := strings.CutPrefix(attr, "s="); ok {
				return s
			}
		}
		t.Fatalf("server-first without a salt: %q", sf)
		return ""
	}

	st1 := teststore.Open(t, dir)
	cred, err := NewHasher(cfg).Credentials("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st1.CreateAccount(ctx, "alice@example.org", cred); err != nil {
		t.Fatal(err)
	}
	const alice, unknown, unknown2 = "alice@example.org", "nobody@example.org", "noone@example.org"
	node1, node2 := newAuth(st1), newAuth(teststore.Open(t, dir))
	want := map[string]string{alice: salt(node1, alice), unknown: salt(node1, unknown)}
	if s := salt(node1, unknown2); s == want[unknown] {
		t.Errorf("two unknown names have the same SCRAM salt %s", s)
	}
	for user := range want {
		if s := salt(node2, user); s != want[user] {
			t.Errorf("SCRAM salt of %s on a second node: %s, on the first %s", user, s, want[user])
		}
	}
	if err := st1.Close(); err != nil {
		t.Fatal(err)
	}
	restarted := newAuth(teststore.Open(t, dir))
	for user := range want {
		if s := salt(restarted, user); s != want[user] {
			t.Errorf("SCRAM salt of %s after a restart: %s, before %s", user, s, want[user])
		}
	}
}
