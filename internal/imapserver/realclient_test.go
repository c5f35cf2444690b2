package imapserver

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/buzon-mail/buzon/internal/clienttest"
)

// hostPort splits the test server's address.
func (e *testEnv) hostPort(addr string) (string, string) {
	i := strings.LastIndexByte(addr, ':')
	return addr[:i], addr[i+1:]
}

// TestPythonIMAPLib runs the imaplib scripts in testdata against the
// server, each on a server of its own; imaplib_thread.py threads with
// thread() and uid("THREAD", ...), imaplib_savedate.py fetches and
// searches save dates and ages (SAVEDATE, WITHIN).
func TestPythonIMAPLib(t *testing.T) {
	t.Parallel()
	py := clienttest.Need(t, "python3", "python3")
	for _, script := range []string{"imaplib_session.py", "imaplib_idle.py", "imaplib_thread.py", "imaplib_savedate.py"} {
		t.Run(strings.TrimSuffix(script, ".py"), func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t)
			host, port := e.hostPort(e.addr)
			// -B: importing testdata/imapcheck.py leaves no
			// __pycache__ in the tree.
			cmd := exec.Command(py, "-B", "testdata/"+script, host, port, testUser, testPass)
			out, err := cmd.CombinedOutput()
			t.Logf("%s", out)
			if err != nil || !bytes.Contains(out, []byte("PASS")) {
				t.Fatalf("%s: %v", script, err)
			}
		})
	}
}

// TestCurl lists mailboxes and fetches a message with curl over imap://
// and imaps://, and compares the bytes.
func TestCurl(t *testing.T) {
	t.Parallel()
	curl := clienttest.Need(t, "curl", "curl")
	e := newTestEnv(t)
	msg, err := os.ReadFile("testdata/messages/multipart.eml")
	if err != nil {
		t.Fatal(err)
	}
	raw := crlf(string(msg))
	e.deliver("INBOX", raw)
	e.deliver("Archive", "Subject: archived\n\nold\n")
	dir := t.TempDir()
	caFile := dir + "/ca.pem"
	if err := os.WriteFile(caFile, e.certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	_, port := e.hostPort(e.addr)
	_, tlsPort := e.hostPort(e.tlsAddr)
	for _, base := range []string{"imap://127.0.0.1:" + port, "imaps://localhost:" + tlsPort} {
		run := func(args ...string) []byte {
			t.Helper()
			args = append([]string{"-sS", "--max-time", "30", "--cacert", caFile,
				"--resolve", "localhost:" + tlsPort + ":127.0.0.1",
				"-u", testUser + ":" + testPass}, args...)
			out, err := exec.Command(curl, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("curl %v: %v\n%s", args, err, out)
			}
			return out
		}
		list := string(run(base + "/"))
		for _, want := range []string{`"INBOX"`, `"Archive"`, `\Sent`} {
			if !strings.Contains(list, want) {
				t.Errorf("%s: LIST lacks %s:\n%s", base, want, list)
			}
		}
		got := run(base + "/INBOX;UID=1")
		if !bytes.Equal(got, []byte(raw)) {
			t.Errorf("%s: fetched %d bytes, want %d:\n%q", base, len(got), len(raw), got)
		}
		got = run(base + "/INBOX;UID=1;SECTION=1.1")
		if want := "The caf=C3=A9 opens at nine."; string(got) != want {
			t.Errorf("%s: section 1.1 = %q, want %q", base, got, want)
		}
		got = run(base+"/INBOX", "-X", "SEARCH SUBJECT report")
		if !strings.Contains(string(got), "* SEARCH 1") {
			t.Errorf("%s: search: %q", base, got)
		}
	}
}
