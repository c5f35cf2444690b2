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
	if _, errOut, _ = buzon(t, "a-password\n", "user", "add", "--data", data, "bob@example.org"); errOut != "" {
		t.Errorf("second add: %q", errOut)
	}
	if out := mustBuzon(t, "", "user", "list", "--data", data); !strings.Contains(out, "alice@example.org") || !strings.Contains(out, "bob@example.org") {
		t.Errorf("user list:\n%s", out)
	}
}
