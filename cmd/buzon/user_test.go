package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUserWrongDataFolder: run on a data folder that holds no store (a
// mistyped --data, or none given where the server runs on another), the
// user commands that read accounts say so and leave no store behind, and
// add, which may make the store before the first start, says it made one.
func TestUserWrongDataFolder(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "buzon-data")
	for _, args := range [][]string{
		{"list"},
		{"del", "alice@example.org"},
		{"passwd", "alice@example.org"},
		{"quota", "alice@example.org", "1G"},
	} {
		_, errOut, code := buzon(t, "a-password\n", append(append([]string{"user"}, args...), "--data", data)...)
		if code != 1 || !strings.Contains(errOut, "no store in data folder "+data) {
			t.Errorf("user %s: exit %d, %q; want 1 and no store", args[0], code, errOut)
		}
		if _, err := os.Stat(data); !os.IsNotExist(err) {
			t.Fatalf("user %s made %s (%v)", args[0], data, err)
		}
	}
	out, errOut, code := buzon(t, "a-password\n", "user", "add", "--data", data, "alice@example.org")
	if code != 0 || out != "added alice@example.org\n" || !strings.Contains(errOut, "made a new store in "+data) {
		t.Errorf("first add: exit %d, %q, %q", code, out, errOut)
	}
	// Before the first start, which gives the first account's domain a
	// postmaster, the second add says how to give it one.
	out, errOut, _ = buzon(t, "a-password\n", "user", "add", "--data", data, "bob@example.org")
	if errOut != "" || !strings.HasPrefix(out, "added bob@example.org\nno one receives mail for postmaster@example.org") {
		t.Errorf("second add: %q, %q", out, errOut)
	}
	if out := mustBuzon(t, "", "user", "list", "--data", data); !strings.Contains(out, "alice@example.org") || !strings.Contains(out, "bob@example.org") {
		t.Errorf("user list:\n%s", out)
	}
}

// TestRootOnServersStore: root running a command on a store that the
// server's own user made is told to run it as that user, before it makes
// a file there the server could not open (an account's database).
func TestRootOnServersStore(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	data := t.TempDir()
	mustBuzon(t, "a-password\n", "user", "add", "--data", data, "alice@example.org")
	const nobody = 65534
	chown := func(uid int) {
		err := filepath.Walk(data, func(path string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(path, uid, uid)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	chown(nobody)
	for _, args := range [][]string{
		{"user", "add", "bob@example.org"},
		{"user", "list"},
		{"deliver", "alice@example.org"},
		{"check"},
	} {
		_, errOut, code := buzon(t, "a-password\n", append(args, "--data", data)...)
		if code == 0 || !strings.Contains(errOut, "run buzon as that user") {
			t.Errorf("%s as root on another user's store: exit %d, %q", args, code, errOut)
		}
	}
	chown(0)
	if out := mustBuzon(t, "", "user", "list", "--data", data); strings.Contains(out, "bob@") {
		t.Errorf("an account was added after all:\n%s", out)
	}
}

// TestUserQuotaShown: user quota with only an address shows the quota it
// would set, as the setting command prints it, rather than a usage error.
func TestUserQuotaShown(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	mustBuzon(t, "a-password\n", "user", "add", "--data", data, "alice@example.org")
	if out := mustBuzon(t, "", "user", "quota", "--data", data, "alice@example.org"); out != "quota for alice@example.org: no size limit, no message limit\n" {
		t.Errorf("quota before any is set: %q", out)
	}
	set := mustBuzon(t, "", "user", "quota", "--data", data, "alice@example.org", "2G", "100000")
	if out := mustBuzon(t, "", "user", "quota", "--data", data, "alice@example.org"); out != set {
		t.Errorf("quota shown %q, set %q", out, set)
	}
	if _, errOut, code := buzon(t, "", "user", "quota", "--data", data, "nobody@example.org"); code != 1 || errOut == "" {
		t.Errorf("quota of no account: exit %d, %q", code, errOut)
	}
}
