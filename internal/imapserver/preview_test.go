package imapserver

import (
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/buzon-mail/buzon/internal/clienttest"
)

// TestPreviewIMAPLib runs testdata/imaplib_preview.py: PREVIEW and
// ESORT from Python's imaplib, which knows neither and sends them as
// they are.
func TestPreviewIMAPLib(t *testing.T) {
	t.Parallel()
	py := clienttest.Need(t, "python3", "python3")
	e := newTestEnv(t)
	host, port := e.hostPort(e.addr)
	cmd := exec.Command(py, "-B", "testdata/imaplib_preview.py", host, port, testUser, testPass)
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil || !bytes.Contains(out, []byte("PASS")) {
		t.Fatalf("imaplib_preview.py: %v", err)
	}
}

// TestPreviewFetch checks what FETCH PREVIEW answers (RFC 8970 3): a
// string for every message, "" for one without text, never NIL; no
// \Seen set, in a session that can set it; the same with LAZY and by
// UID; PREVIEW beside other items and with the FETCH's own modifiers.
func TestPreviewFetch(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	c := e.loginWithGap(
		"Subject: plain\n\nHello Joe,\n\nsee you at 3:30?\n",
		"Subject: image\nContent-Type: image/gif\nContent-Transfer-Encoding: base64\n\nR0lGODlhAQABAAAAACw=\n",
		"Subject: long\nContent-Type: text/plain; charset=utf-8\n\n"+strings.Repeat("ñandú ", 100)+"\n",
	)
	tests := []struct {
		cmd  string
		want []string
	}{
		{"FETCH 1:* (PREVIEW)", []string{
			`* 1 FETCH (PREVIEW "Hello Joe, see you at 3:30?")`,
			`* 2 FETCH (PREVIEW "")`,
			"* 3 FETCH (PREVIEW {" /* a literal: not ASCII, and UTF-8 not enabled */}},
		{"UID FETCH 2:3 (FLAGS PREVIEW (LAZY))", []string{
			`* 1 FETCH (UID 2 FLAGS () PREVIEW "Hello Joe, see you at 3:30?")`,
			`* 2 FETCH (UID 3 FLAGS () PREVIEW "")`}},
		{"FETCH 1 PREVIEW", []string{`* 1 FETCH (PREVIEW "Hello Joe, see you at 3:30?")`}},
		{"FETCH 2 (preview (lazy lazy))", []string{`* 2 FETCH (PREVIEW "")`}},
		{"FETCH 1 PREVIEW (CHANGEDSINCE 0)", []string{`* 1 FETCH (PREVIEW "Hello Joe, see you at 3:30?" MODSEQ (`}},
		{"FETCH 1:2 (FLAGS)", []string{`* 1 FETCH (FLAGS ())`, `* 2 FETCH (FLAGS ())`}},
	}
	for _, tc := range tests {
		t.Run(tc.cmd, func(t *testing.T) {
			got := c.mustOK(tc.cmd)
			got = slices.DeleteFunc(got, func(l string) bool { return strings.HasPrefix(l, "* OK") })
			if len(got) != len(tc.want) {
				t.Fatalf("%q, want %q", got, tc.want)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("%q, want it to begin %q", got[i], w)
				}
			}
		})
	}

	// The long one: a literal of 200 characters, cut between words'
	// characters, never inside one.
	got := c.mustOK("FETCH 3 (PREVIEW)")
	_, lit, ok := strings.Cut(got[0], "}\r\n")
	if !ok {
		t.Fatalf("%q: no literal", got[0])
	}
	text := strings.TrimSuffix(lit, ")")
	if n := utf8.RuneCountInString(text); !utf8.ValidString(text) || n != 200 {
		t.Errorf("preview %q: %d characters, want 200 of valid UTF-8", text, n)
	}
	c.mustOK("ENABLE UTF8=ACCEPT")
	if got := c.mustOK("FETCH 3 (PREVIEW)"); !strings.HasPrefix(got[0], `* 3 FETCH (PREVIEW "ñandú ñandú`) {
		t.Errorf("with UTF8=ACCEPT: %q, want a quoted string", got[0])
	}

	for _, cmd := range []string{"FETCH 1 (PREVIEW (EAGER))", "FETCH 1 (PREVIEW ())", "FETCH 1 (PREVIEW (LAZY)", "FETCH 1 PREVIEW.PEEK"} {
		if _, tagged := c.cmd(cmd); !strings.Contains(tagged, " BAD ") {
			t.Errorf("%s: %q, want BAD", cmd, tagged)
		}
	}
	if _, tagged := c.cmd("CAPABILITY"); !strings.Contains(tagged, " OK ") {
		t.Fatal(tagged)
	}
	if caps, _ := c.cmd("CAPABILITY"); !slices.Contains(strings.Fields(caps[0]), "PREVIEW") {
		t.Errorf("%q: no PREVIEW", caps)
	}
}
