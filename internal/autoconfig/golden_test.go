package autoconfig

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden answers in testdata from what the server says")

// TestGolden keeps each answer, whole, in testdata: what a client reads,
// byte for byte, for the server testServer configures. A change to an
// answer shows in the diff of its file (go test -update rewrites them).
func TestGolden(t *testing.T) {
	s := testServer(t, nil)
	for _, tc := range []struct{ file, method, target, body string }{
		{"thunderbird.xml", "GET", "/mail/config-v1.1.xml?emailaddress=fay%40example.org", ""},
		{"autodiscover.xml", "POST", "/autodiscover/autodiscover.xml", adBody("fay@example.org")},
		{"apple.mobileconfig", "GET", "/apple/mail.mobileconfig?emailaddress=fay%40example.org", ""},
	} {
		w := do(s, tc.method, tc.target, "autoconfig.example.org", tc.body)
		if w.Code != 200 {
			t.Fatalf("%s: status %d", tc.file, w.Code)
		}
		path := filepath.Join("testdata", tc.file)
		if *update {
			if err := os.WriteFile(path, w.Body.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := w.Body.String(); got != string(want) {
			t.Errorf("%s differs from %s (go test -update rewrites it):\n%s", tc.file, path, lineDiff(string(want), got))
		}
	}
}

// lineDiff names the first line where got departs from want.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n  want %s\n  got  %s", i+1, wl, gl)
		}
	}
	return ""
}
