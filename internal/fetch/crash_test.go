package fetch

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/buzon-mail/buzon/internal/store"
)

// destKinds are the destinations that promise exactly-once storage.
var destKinds = []string{"maildir", "mbox", "store"}

// withDest points an account at a fresh destination of a kind.
func withDest(t *testing.T, a *Account, kind string, local *localStore) {
	a.Maildir, a.Mbox, a.Store, a.MDA = "", "", nil, ""
	dir := t.TempDir()
	switch kind {
	case "maildir":
		a.Maildir = filepath.Join(dir, "Maildir")
	case "mbox":
		a.Mbox = filepath.Join(dir, "inbox.mbox")
	case "store":
		a.Store = &StoreTarget{Data: local.dir, Account: localUser, Mailbox: "INBOX"}
	case "mda":
		a.MDA = "cat > $(mktemp " + filepath.Join(dir, "msg.XXXXXX") + ")"
	}
}

// destMessages reads back what a destination holds, with LF line
// endings.
func destMessages(t *testing.T, a Account, local *localStore) [][]byte {
	t.Helper()
	switch {
	case a.Maildir != "":
		return maildirMessages(t, a.Maildir)
	case a.Mbox != "":
		return readMbox(t, a.Mbox)
	case a.Store != nil:
		var out [][]byte
		for _, m := range local.messages(t, a.Store.Mailbox) {
			out = append(out, lf(m))
		}
		return out
	}
	t.Fatal("no destination to read")
	return nil
}

// readMbox splits an mboxrd file into messages and undoes the quoting.
func readMbox(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	var cur *bytes.Buffer
	lines := strings.SplitAfter(string(b), "\n")
	for i, line := range lines {
		if strings.HasPrefix(line, "From ") && (i == 0 || lines[i-1] == "\n") {
			if cur != nil {
				out = append(out, bytes.TrimSuffix(cur.Bytes(), []byte("\n")))
			}
			cur = &bytes.Buffer{}
			continue
		}
		if cur == nil {
			t.Fatalf("mbox %s does not start with a From line: %q", path, line)
		}
		if rest := strings.TrimLeft(line, ">"); rest != line && strings.HasPrefix(rest, "From ") {
			line = line[1:]
		}
		cur.WriteString(line)
	}
	if cur != nil {
		if !bytes.HasSuffix(cur.Bytes(), []byte("\n\n")) {
			t.Errorf("mbox %s does not end with an empty line", path)
		}
		out = append(out, bytes.TrimSuffix(cur.Bytes(), []byte("\n")))
	}
	return out
}

// checkDest checks that a destination holds exactly messages from..to,
// once each, byte for byte (LF line endings).
func checkDest(t *testing.T, a Account, local *localStore, from, to int) {
	t.Helper()
	msgs := destMessages(t, a, local)
	if got, want := subjects(msgs), wantSubjects([2]int{from, to}); !slices.Equal(got, want) {
		t.Fatalf("destination holds %v, want %v", got, want)
	}
	for _, m := range msgs {
		var i int
		fmt.Sscanf(subjects([][]byte{m})[0], "message %d", &i)
		if want := lf(testMessage(i, 0)); !bytes.Equal(m, want) {
			t.Errorf("message %d stored as\n%q\nwant\n%q", i, m, want)
		}
	}
}

// TestCrashRecovery stops a run at each step of storing and deleting the
// third of five messages, as a crash would, then runs again: every
// message ends up stored exactly once and, in delete mode, off the
// server.
func TestCrashRecovery(t *testing.T) {
	points := map[string][]string{
		ProtoPOP3: {"intent", "store", "record", "dele", "quit"},
		ProtoIMAP: {"intent", "store", "record", "expunge"},
	}
	for _, proto := range []string{ProtoPOP3, ProtoIMAP} {
		for _, point := range points[proto] {
			for _, kind := range destKinds {
				t.Run(proto+"/"+point+"/"+kind, func(t *testing.T) {
					b := startBuzon(t)
					b.deliver(t, "INBOX", testMessages(1, 5)...)
					local := startLocalStore(t, store.Quota{})
					a := b.account(t, proto, TLSImplicit)
					a.Mode = ModeDelete
					withDest(t, &a, kind, local)
					cfg := testConfig(t, a)
					opts := testOptions(t)
					opts.OpenStore = local.opener
					n := 3
					if point == "expunge" || point == "quit" {
						n = 1 // once per batch or session
					}
					crashFetch(t, cfg, opts, point, n)
					if proto == ProtoPOP3 {
						// The crashed session's maildrop lock goes when
						// the server sees the connection closed.
						b.pop3.WaitUnlocked(t, remoteUser)
					}
					if b.count(t, "INBOX") != 5 {
						t.Fatalf("the crashed run deleted messages: %d left", b.count(t, "INBOX"))
					}
					s := mustFetch(t, cfg, opts)
					if point == "record" && s.Recovered != 1 {
						t.Errorf("rerun recovered %d, want 1: %v", s.Recovered, s)
					}
					checkDest(t, a, local, 1, 5)
					if left := b.count(t, "INBOX"); left != 0 {
						t.Errorf("%d messages left on the server", left)
					}
				})
			}
		}
	}
}

// TestCrashMDA documents the MDA's weaker promise: a crash after the MDA
// stored a message but before the journal says so delivers it again.
func TestCrashMDA(t *testing.T) {
	b := startBuzon(t)
	b.deliver(t, "INBOX", testMessages(1, 3)...)
	a := b.account(t, ProtoPOP3, TLSImplicit)
	a.Mode = ModeDelete
	withDest(t, &a, "mda", nil)
	cfg := testConfig(t, a)
	crashFetch(t, cfg, testOptions(t), "record", 2)
	b.pop3.WaitUnlocked(t, remoteUser)
	if s := mustFetch(t, cfg, testOptions(t)); s.Fetched != 2 || s.Recovered != 0 {
		t.Errorf("rerun: %v", s)
	}
	files, err := filepath.Glob(mdaFiles(a))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 4 {
		t.Errorf("MDA ran %d times for 3 messages, want 4 (the interrupted one twice)", len(files))
	}
	if b.count(t, "INBOX") != 0 {
		t.Errorf("%d messages left on the server", b.count(t, "INBOX"))
	}
}

// TestMDAFailed: after an MDA that failed (exit 1), the next run says
// the last attempt failed, not that a download was interrupted.
func TestMDAFailed(t *testing.T) {
	f := startFakePOP3(t, &fakePOP3{})
	f.add(testMessages(1, 1)...)
	a := fakeAccount(t, f)
	a.Maildir, a.MDA = "", "cat >/dev/null; echo no room in the inn >&2; exit 1"
	cfg := testConfig(t, a)
	var logs logBuffer
	opts := testOptions(t)
	opts.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(&logs, testLogWriter{t}), nil))
	if s := mustFetch(t, cfg, opts); s.Failed != 1 || f.count() != 1 {
		t.Fatalf("first run: %v, %d left", s, f.count())
	}
	withDest(t, &cfg.Accounts[0], "mda", nil)
	if s := mustFetch(t, cfg, opts); s.Fetched != 1 || s.Failed != 0 || f.count() != 0 {
		t.Errorf("second run: %v, %d left", s, f.count())
	}
	if logs.count("the last attempt to store the message failed") != 1 || logs.count("exit status 1") != 2 || logs.count("interrupted") != 0 {
		t.Errorf("the second run does not say the first failed:\n%s", logs.b.String())
	}
}

// mdaFiles is the pattern of the files withDest's MDA writes.
func mdaFiles(a Account) string {
	return strings.TrimSuffix(strings.TrimPrefix(a.MDA, "cat > $(mktemp "), "XXXXXX)") + "*"
}
