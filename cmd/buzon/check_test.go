package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckReport: buzon check names the account of each problem by its
// address, which a person can act on, not by its number in the store; and
// says what to do next: --repair for what it fixes, and for what it
// cannot (a lost message body), what can be done instead.
func TestCheckReport(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	mustBuzon(t, "a-password\n", "user", "add", "--data", data, "alice@example.org")
	mustBuzon(t, "Subject: lost\r\n\r\nhello\r\n", "deliver", "--data", data, "alice@example.org")
	bodies, err := filepath.Glob(filepath.Join(data, "accounts", "*", "msg", "*", "*"))
	if err != nil || len(bodies) != 1 {
		t.Fatalf("body files %v (%v), want one", bodies, err)
	}
	if err := os.Remove(bodies[0]); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(bodies[0]), "stray"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	out, errOut, code := buzon(t, "", "check", "--data", data)
	if code != 1 || !strings.Contains(out, "  alice@example.org: unexpected file: ") ||
		!strings.Contains(out, "  alice@example.org: mailbox ") || strings.Contains(out, "account 1") {
		t.Errorf("check: exit %d, out:\n%s", code, out)
	}
	if !strings.Contains(errOut, "buzon check --repair fixes those it can") {
		t.Errorf("check does not point to --repair:\n%s", errOut)
	}

	out, errOut, code = buzon(t, "", "check", "--data", data, "--repair")
	if code != 1 || !strings.Contains(out, "alice@example.org: unexpected file: ") || !strings.Contains(out, "(repaired)") {
		t.Errorf("check --repair: exit %d, out:\n%s", code, out)
	}
	if !strings.Contains(errOut, "--repair cannot fix (those not marked repaired): a message whose body is missing or damaged is lost") {
		t.Errorf("check --repair does not say what is left to do:\n%s", errOut)
	}
}
