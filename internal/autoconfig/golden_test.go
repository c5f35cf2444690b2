package autoconfig

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/buzon-mail/buzon/internal/clienttest/transcript"
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
			t.Errorf("%s differs from %s (go test -update rewrites it):\n%s", tc.file, path, transcript.Diff(string(want), got))
		}
	}
}
