package main

// Tests of `buzon fetch` as a program: killed in the middle of a large
// download and run again, stopped with SIGTERM as a daemon, its exit
// status and summary. They fetch from a `buzon serve` started by the
// e2e helpers.

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/buzon-mail/buzon/internal/server"
)

const (
	fetchUser = "alice@example.org"
	fetchPass = "fetch-test-pass"
)

// fetchSource is a `buzon serve` with an account full of mail to fetch.
type fetchSource struct {
	in          *instance
	fingerprint string
}

// startFetchSource starts buzon serve with the account fetchUser holding
// messages 1..n of about size bytes each in INBOX.
func startFetchSource(t *testing.T, n, size int) *fetchSource {
	t.Helper()
	in := start(t, "")
	mustBuzon(t, fetchPass+"\n", "user", "add", fetchUser, "--data", in.data)
	pemBytes, err := os.ReadFile(filepath.Join(in.data, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		t.Fatal(err)
	}
	src := &fetchSource{in: in, fingerprint: server.Fingerprint(block.Bytes)}
	c := src.imap(t)
	defer c.Close()
	for i := 1; i <= n; i++ {
		m := fetchMessage(i, size)
		cmd := c.Append("INBOX", int64(len(m)), nil)
		cmd.Write(m)
		cmd.Close()
		if _, err := cmd.Wait(); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	return src
}

// imap logs in to the source over plain IMAP on loopback.
func (s *fetchSource) imap(t *testing.T) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(s.in.ports["imap"], nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(fetchUser, fetchPass).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

// inbox counts the messages left in the source's INBOX.
func (s *fetchSource) inbox(t *testing.T) int {
	t.Helper()
	c := s.imap(t)
	defer c.Close()
	data, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	return int(*data.NumMessages)
}

// fetchMessage is message i, padded to about size bytes.
func fetchMessage(i, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: bob@example.net\r\nTo: %s\r\nSubject: message %d\r\nMessage-ID: <%d.kill@example.net>\r\n\r\n", fetchUser, i, i)
	for b.Len() < size {
		fmt.Fprintf(&b, "line %d of message %d, padding the body to the size asked for\r\n", b.Len(), i)
	}
	return b.Bytes()
}

// writeFetchConfig writes a fetch config with one account reading the
// source into a Maildir, and returns its path.
func writeFetchConfig(t *testing.T, src *fetchSource, protocol, mode, maildir, extra string) string {
	t.Helper()
	port := src.in.ports[map[string]string{"pop3": "pop3s", "imap": "imaps"}[protocol]]
	host, portNum, _ := strings.Cut(port, ":")
	cfg := fmt.Sprintf(`log_level = "debug"
backoff = "100ms"
max_backoff = "1s"

[[account]]
name = "src"
protocol = %q
host = %q
port = %s
tls = "implicit"
tls_fingerprint = %q
user = %q
password = %q
mode = %q
maildir = %q
%s`, protocol, host, portNum, src.fingerprint, fetchUser, fetchPass, mode, maildir, extra)
	path := filepath.Join(t.TempDir(), "fetch.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// maildirSubjects returns how many times each subject appears in a
// Maildir's new/ and cur/, and the number of files.
func maildirSubjects(t *testing.T, dir string) (map[string]int, int) {
	t.Helper()
	seen := map[string]int{}
	files := 0
	re := regexp.MustCompile(`(?m)^Subject: (.*)$`)
	for _, sub := range []string{"new", "cur"} {
		entries, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, sub, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			files++
			if m := re.FindSubmatch(b); m != nil {
				seen[string(m[1])]++
			}
		}
	}
	return seen, files
}

func countFiles(dir string) int {
	entries, _ := os.ReadDir(dir)
	return len(entries)
}

// TestFetchKilled kills `buzon fetch` with SIGKILL twice while it
// downloads a large mailbox, then lets a third run finish: every message
// is in the Maildir exactly once and, in delete mode, gone from the
// server.
func TestFetchKilled(t *testing.T) {
	t.Parallel()
	n, size := 600, 20_000
	if testing.Short() {
		n = 200
	}
	for _, tc := range []struct{ protocol, mode string }{{"pop3", "delete"}, {"imap", "keep"}} {
		t.Run(tc.protocol+"/"+tc.mode, func(t *testing.T) {
			src := startFetchSource(t, n, size)
			maildir := filepath.Join(t.TempDir(), "Maildir")
			cfg := writeFetchConfig(t, src, tc.protocol, tc.mode, maildir, "")
			for _, killAt := range []int{n / 5, n / 2} {
				cmd := exec.Command(buzonBin, "fetch", "--config", cfg, "--once")
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				exited := make(chan error, 1)
				go func() { exited <- cmd.Wait() }()
				for countFiles(filepath.Join(maildir, "new")) < killAt {
					select {
					case err := <-exited:
						t.Fatalf("buzon fetch finished (%v) before it could be killed at %d messages; make the mailbox larger\n%s", err, killAt, out.String())
					default:
						time.Sleep(time.Millisecond)
					}
				}
				cmd.Process.Kill()
				<-exited
				if got := countFiles(filepath.Join(maildir, "new")); got >= n {
					t.Fatalf("the kill came after the last message (%d of %d)", got, n)
				}
			}
			out, errOut, code := buzon(t, "", "fetch", "--config", cfg)
			if code != 0 {
				t.Fatalf("final run: exit %d\n%s%s", code, out, errOut)
			}
			t.Logf("final run: %s", out)
			if !strings.Contains(out, "src: fetched ") {
				t.Errorf("no summary on stdout: %q", out)
			}
			seen, files := maildirSubjects(t, maildir)
			if files != n || len(seen) != n {
				t.Errorf("maildir holds %d files, %d distinct messages; want %d", files, len(seen), n)
			}
			for subj, k := range seen {
				if k != 1 {
					t.Errorf("%s stored %d times", subj, k)
				}
			}
			if left := countFiles(filepath.Join(maildir, "tmp")); left != 0 {
				t.Errorf("%d files left in tmp/", left)
			}
			want := map[string]int{"delete": 0, "keep": n}[tc.mode]
			if got := src.inbox(t); got != want {
				t.Errorf("server keeps %d messages, want %d", got, want)
			}
		})
	}
}

// TestFetchDaemonSIGTERM runs `buzon fetch --daemon`, sees it fetch
// what arrives while it runs, and stops it with SIGTERM: it exits 0, and
// a run after it leaves every message stored once.
func TestFetchDaemonSIGTERM(t *testing.T) {
	t.Parallel()
	src := startFetchSource(t, 3, 500)
	maildir := filepath.Join(t.TempDir(), "Maildir")
	cfg := writeFetchConfig(t, src, "imap", "delete", maildir, `interval = "1h"`)
	cmd := exec.Command(buzonBin, "fetch", "--config", cfg, "--daemon")
	var out lockedWriter
	var buf bytes.Buffer
	out.b = &buf
	out.mu = &src.in.mu
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	waitFiles := func(want int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for countFiles(filepath.Join(maildir, "new")) < want {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("gave up waiting for %d messages", want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFiles(3)
	// New mail reaches it through IDLE: the interval is an hour.
	mustBuzon(t, string(fetchMessage(4, 500)), "deliver", fetchUser, "--data", src.in.data)
	waitFiles(4)
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("buzon fetch --daemon did not stop on SIGTERM")
	}
	src.in.mu.Lock()
	logs := buf.String()
	src.in.mu.Unlock()
	if !strings.Contains(logs, "buzon fetch stopped") {
		t.Errorf("no clean stop in the log:\n%s", logs)
	}
	// The stop may come between storing the fourth message and expunging
	// it; the next run finishes the job without storing it again.
	mustBuzon(t, "", "fetch", "--config", cfg, "--once")
	if got := src.inbox(t); got != 0 {
		t.Errorf("%d left on the server", got)
	}
	seen, files := maildirSubjects(t, maildir)
	if files != 4 || len(seen) != 4 {
		t.Errorf("maildir holds %d files, %d distinct messages; want 4", files, len(seen))
	}
}

// TestFetchExitStatus: a run that fails says why on stdout's summary and
// exits 1; bad usage exits 2.
func TestFetchExitStatus(t *testing.T) {
	t.Parallel()
	src := startFetchSource(t, 1, 200)
	cfg := writeFetchConfig(t, src, "pop3", "keep", filepath.Join(t.TempDir(), "Maildir"), "")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(cfg, bytes.Replace(b, []byte(fetchPass), []byte("wrong"), 1), 0o600)
	out, errOut, code := buzon(t, "", "fetch", "--config", cfg)
	if code != 1 || !strings.Contains(out, "login refused") {
		t.Errorf("wrong password: exit %d\n%s%s", code, out, errOut)
	}
	if _, _, code := buzon(t, "", "fetch", "--config", cfg, "--once", "--daemon"); code != 2 {
		t.Errorf("--once --daemon: exit %d, want 2", code)
	}
	if _, errOut, code := buzon(t, "", "fetch", "--config", cfg, "nosuch"); code != 2 || !strings.Contains(errOut, "nosuch") {
		t.Errorf("unknown account: exit %d\n%s", code, errOut)
	}
	ex := mustBuzon(t, "", "fetch", "--example")
	if !strings.Contains(ex, "[[account]]") || !strings.Contains(ex, "keep_days") {
		t.Errorf("--example:\n%s", ex)
	}
}

// TestFetchFirstRun: `buzon fetch` without a configuration file, as the
// README has a person start, says how to write one, and the command it
// prints does (the folder under ~/.config need not exist yet).
func TestFetchFirstRun(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	cmd := exec.Command(buzonBin, "fetch")
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil {
		t.Fatal("buzon fetch without a configuration succeeded")
	}
	path := filepath.Join(home, ".config", "buzon", "fetch.toml")
	m := regexp.MustCompile(`Write one with: (.+), then edit it`).FindStringSubmatch(stderr.String())
	if m == nil || !strings.Contains(m[1], path) {
		t.Fatalf("no advice to write %s:\n%s", path, stderr.String())
	}
	if out, err := exec.Command("sh", "-c", m[1]).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", m[1], err, out)
	}
	if b, err := os.ReadFile(path); err != nil || !strings.HasPrefix(string(b), "# buzon fetch configuration") {
		t.Errorf("%s after the advice: %v\n%.200s", path, err, b)
	}
}
