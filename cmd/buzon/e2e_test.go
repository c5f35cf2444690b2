package main

// End-to-end tests of the binary: they build buzon once, run `buzon serve`
// as a child process on free loopback ports with a throwaway data folder,
// and drive it with the other commands and with real clients (Python's
// poplib and imaplib).

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/clienttest"
	"github.com/buzon-mail/buzon/internal/store/postgres/pgtest"
)

// buzonBin is the binary under test, built by TestMain.
var buzonBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "buzon-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buzonBin = filepath.Join(dir, "buzon")
	build := exec.Command("go", "build", "-o", buzonBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build buzon:", err)
		os.Exit(1)
	}
	code := m.Run()
	pgtest.StopShared()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buzon runs a buzon command to completion and returns its output and
// exit code.
func buzon(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(buzonBin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run buzon %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// mustBuzon runs a command that must succeed.
func mustBuzon(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, errOut, code := buzon(t, stdin, args...)
	if code != 0 {
		t.Fatalf("buzon %v: exit %d\n%s%s", args, code, out, errOut)
	}
	return out
}

// instance is a running `buzon serve`.
type instance struct {
	t     *testing.T
	data  string
	ports map[string]string // listener name -> host:port
	cmd   *exec.Cmd

	mu     sync.Mutex
	stdout bytes.Buffer // guarded by mu
	stderr bytes.Buffer // guarded by mu

	exited   chan struct{} // closed when the process has exited
	exitErr  error         // set before exited is closed
	stopOnce sync.Once
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start runs `buzon serve` on data (a new folder when empty) and waits
// until every listener accepts connections.
func start(t *testing.T, data string, extra ...string) *instance {
	t.Helper()
	return startWith(t, data, "", extra...)
}

// startWith is start with the server run by wrapper (such as nohup), if
// not "".
func startWith(t *testing.T, data, wrapper string, extra ...string) *instance {
	t.Helper()
	if data == "" {
		data = t.TempDir()
	}
	in := &instance{t: t, data: data, ports: map[string]string{}, exited: make(chan struct{})}
	// Port 0 everywhere: the server picks free ports and logs them, so no
	// other process on a busy machine can take a port between our choosing
	// it and the server binding it.
	args := []string{"serve", "--data", data}
	for _, name := range listenerNames {
		args = append(args, "--"+name, "127.0.0.1:0")
	}
	args = append(append([]string{buzonBin}, args...), extra...)
	if wrapper != "" {
		args = append([]string{wrapper}, args...)
	}
	in.cmd = exec.Command(args[0], args[1:]...)
	in.cmd.Stdout = lockedWriter{&in.mu, &in.stdout}
	in.cmd.Stderr = lockedWriter{&in.mu, &in.stderr}
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		in.exitErr = in.cmd.Wait()
		close(in.exited)
	}()
	t.Cleanup(func() { in.stop() })
	deadline := time.After(30 * time.Second)
	for {
		for _, m := range listeningRE.FindAllStringSubmatch(in.logs(), -1) {
			in.ports[m[1]] = m[2]
		}
		// The welcome of a first start is written once every listener
		// is bound, before "buzon started".
		if len(in.ports) == len(listenerNames) && strings.Contains(in.logs(), `msg="buzon started"`) {
			return in
		}
		select {
		case <-in.exited:
			t.Fatalf("buzon serve exited before listening (%v):\n%s", in.exitErr, in.logs())
		case <-deadline:
			t.Fatalf("buzon serve did not report its listeners:\n%s", in.logs())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// listenerNames are the TCP listeners every test server has.
var listenerNames = []string{"imap", "imaps", "pop3", "pop3s", "lmtp", "smtp", "sieve"}

var listeningRE = regexp.MustCompile(`msg=listening proto=(imap|imaps|pop3|pop3s|lmtp|smtp|sieve) addr=(\S+)`)

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (in *instance) logs() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.stdout.String() + in.stderr.String()
}

func (in *instance) output() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.stdout.String()
}

// waitOutput waits until the server's standard output matches re, and
// returns the submatches. Standard output and the log are separate pipes,
// so what the server printed may arrive after a log line written later.
func (in *instance) waitOutput(re *regexp.Regexp) []string {
	in.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		if m := re.FindStringSubmatch(in.output()); m != nil {
			return m
		}
		select {
		case <-in.exited:
			in.t.Fatalf("buzon serve exited (%v) before printing %s:\n%s", in.exitErr, re, in.logs())
		case <-deadline:
			in.t.Fatalf("buzon serve did not print %s:\n%s", re, in.logs())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (in *instance) stop() {
	in.stopOnce.Do(func() {
		in.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-in.exited:
			if in.exitErr != nil {
				in.t.Errorf("buzon serve exited with %v:\n%s", in.exitErr, in.logs())
			}
		case <-time.After(60 * time.Second):
			in.cmd.Process.Kill()
			in.t.Errorf("buzon serve did not stop on SIGTERM:\n%s", in.logs())
		}
	})
}

// kill ends the server with SIGKILL, as a crash or power cut would.
func (in *instance) kill() {
	in.stopOnce.Do(func() {
		in.cmd.Process.Kill()
		<-in.exited
	})
}

func (in *instance) hostPort(name string) (string, string) {
	h, p, _ := net.SplitHostPort(in.ports[name])
	return h, p
}

// python runs one of testdata's scripts and returns its output; it skips
// the test when python3 is not installed.
func python(t *testing.T, stdin string, script string, args ...string) string {
	t.Helper()
	py := clienttest.Python(t)
	path := filepath.Join("testdata", script)
	if _, err := os.Stat(path); err != nil {
		// Scripts shared with other packages' tests.
		path = filepath.Join("..", "..", "testdata", "clients", script)
	}
	cmd := exec.Command(py, append([]string{path}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", script, args, err, out.String())
	}
	return out.String()
}

var welcomeRE = regexp.MustCompile(`(?m)^\s+address\s+(\S+)\n\s+password\s+(\S+)$`)

// TestFirstStart follows the README: start on an empty folder, read the
// printed account, log in with it over POP3 (TLS) and IMAP. The host name
// has capitals, as a machine's may; the account is printed as it is kept.
func TestFirstStart(t *testing.T) {
	t.Parallel()
	in := start(t, "", "--hostname", "Mail.Example.org")
	m := in.waitOutput(welcomeRE)
	addr, password := m[1], m[2]
	if addr != "postmaster@mail.example.org" {
		t.Errorf("first account %q", addr)
	}
	host, port := in.hostPort("pop3s")
	if out := python(t, "", "pop3_stat.py", host, port, addr, password, "ssl"); out != "0 0\n" {
		t.Errorf("pop3_stat.py: %q", out)
	}
	host, port = in.hostPort("imap")
	if out := python(t, "", "imap_login.py", host, port, addr, password); !strings.Contains(out, "INBOX") {
		t.Errorf("imap_login.py: %q", out)
	}
	in.stop()

	// A second start neither creates another account nor prints one.
	again := start(t, in.data)
	if welcomeRE.MatchString(again.output()) {
		t.Errorf("second start printed a new account:\n%s", again.output())
	}
	out := mustBuzon(t, "", "user", "list", "--data", in.data)
	if strings.Count(out, "@") != 1 {
		t.Errorf("accounts after two starts:\n%s", out)
	}
}

// TestUserCommandsWhileServing changes accounts with the CLI while the
// server runs; the server sees each change at once.
func TestUserCommandsWhileServing(t *testing.T) {
	t.Parallel()
	in := start(t, "")
	host, port := in.hostPort("pop3")
	// Flags after the positional argument, password on stdin.
	mustBuzon(t, "first-pass\n", "user", "add", "Alice@Example.org", "--data", in.data)
	if out := python(t, "", "pop3_stat.py", host, port, "alice@example.org", "first-pass", "plain"); out != "0 0\n" {
		t.Errorf("login after add: %q", out)
	}
	if _, errOut, code := buzon(t, "x\n", "user", "add", "--data", in.data, "alice@example.org"); code == 0 || !strings.Contains(errOut, "exists") {
		t.Errorf("duplicate add: exit %d %q", code, errOut)
	}
	mustBuzon(t, "second-pass\n", "user", "passwd", "--data", in.data, "alice@example.org")
	if out := python(t, "", "pop3_stat.py", host, port, "alice@example.org", "first-pass", "plain", "expect-fail"); !strings.Contains(out, "[AUTH]") {
		t.Errorf("old password after passwd: %q", out)
	}
	if out := python(t, "", "pop3_stat.py", host, port, "alice@example.org", "second-pass", "plain"); out != "0 0\n" {
		t.Errorf("new password: %q", out)
	}
	mustBuzon(t, "", "user", "quota", "alice@example.org", "1K", "--data", in.data)
	if out := mustBuzon(t, "", "user", "list", "--data", in.data); !strings.Contains(out, "alice@example.org") || !strings.Contains(out, "1.0K") {
		t.Errorf("user list:\n%s", out)
	}
	// What the MTA puts in the bounce says why, in words and code, not in
	// the store's numbers.
	if _, stderr, code := buzon(t, strings.Repeat("x", 2000), "deliver", "--data", in.data, "alice@example.org"); code != exNoPerm ||
		!strings.Contains(stderr, "alice@example.org: mailbox full (5.2.2): over quota") || regexp.MustCompile(`(account|mailbox) \d`).MatchString(stderr) {
		t.Errorf("delivery over quota: exit %d, want %d; said %q", code, exNoPerm, stderr)
	}
	mustBuzon(t, "", "user", "del", "--data", in.data, "alice@example.org")
	if out := python(t, "", "pop3_stat.py", host, port, "alice@example.org", "second-pass", "plain", "expect-fail"); !strings.Contains(out, "[AUTH]") {
		t.Errorf("login after del: %q", out)
	}
	if _, _, code := buzon(t, "", "user", "frobnicate", "--data", in.data); code != 2 {
		t.Errorf("unknown subcommand: exit %d, want 2", code)
	}
}

// TestDeliverAndDownload checks `buzon deliver` against POP3: the bytes
// downloaded are the bytes delivered (with CRLF line endings), including a
// 20 MB message, 8-bit text and lines starting with a dot; and the exit
// codes an MTA acts on.
func TestDeliverAndDownload(t *testing.T) {
	t.Parallel()
	in := start(t, "")
	mustBuzon(t, "pw\n", "user", "add", "bob@example.org", "--data", in.data)
	small := "From: carol@example.net\nSubject: =?UTF-8?Q?caf=C3=A9?=\n\n.a line with a dot\n..two dots\n8-bit: caf\xc3\xa9\n.\n"
	var big strings.Builder
	big.WriteString("From: carol@example.net\r\nSubject: big\r\n\r\n")
	for big.Len() < 20<<20 {
		fmt.Fprintf(&big, ".%07d the quick brown fox jumps over the lazy dog, again and again\r\n", big.Len())
	}
	// Postfix's local(8) puts an mbox postmark before what it hands a
	// mailbox_command; it is not part of the message.
	postmarked := "From carol@example.net  Thu Nov 26 10:51:30 2026\n" + small
	for _, msg := range []string{small, big.String(), postmarked} {
		mustBuzon(t, msg, "deliver", "--data", in.data, "bob@example.org")
	}
	if _, _, code := buzon(t, small, "deliver", "--data", in.data, "nobody@example.org"); code != exNoUser {
		t.Errorf("unknown recipient: exit %d, want %d", code, exNoUser)
	}
	if _, _, code := buzon(t, small, "deliver", "--data", filepath.Join(in.data, "lmtp.sock"), "bob@example.org"); code != exTempFail {
		t.Errorf("unusable data folder: exit %d, want %d", code, exTempFail)
	}
	// A mailbox_command with a wrong --data (a typo, a mount missing) keeps
	// the mail queued: no empty store is made, no "unknown user" bounce.
	wrong := filepath.Join(t.TempDir(), "not-the-data")
	if _, _, code := buzon(t, small, "deliver", "--data", wrong, "bob@example.org"); code != exTempFail {
		t.Errorf("data folder without a store: exit %d, want %d", code, exTempFail)
	}
	if _, err := os.Stat(wrong); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("deliver made %s: %v", wrong, err)
	}
	// So does a command line it cannot run.
	for _, args := range [][]string{{"deliver", "--data", in.data}, {"deliver", "--bogus", "--data", in.data, "bob@example.org"}} {
		if _, _, code := buzon(t, small, args...); code != exTempFail {
			t.Errorf("buzon %v: exit %d, want %d", args, code, exTempFail)
		}
	}
	dir := t.TempDir()
	host, port := in.hostPort("pop3")
	out := python(t, "", "pop3_download.py", host, port, "bob@example.org", "pw", dir, "keep")
	if out != "3\n" {
		t.Fatalf("pop3_download.py: %q", out)
	}
	for i, want := range []string{strings.ReplaceAll(small, "\n", "\r\n"), big.String(), strings.ReplaceAll(small, "\n", "\r\n")} {
		got, err := os.ReadFile(filepath.Join(dir, fmt.Sprint(i+1)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, []byte(want)) {
			t.Errorf("message %d: downloaded %d bytes, delivered %d, or they differ", i+1, len(got), len(want))
		}
	}
}

// TestDeliverWakesIdle: a `buzon deliver` in another process reaches an
// IMAP client idling on the server at once.
func TestDeliverWakesIdle(t *testing.T) {
	t.Parallel()
	in := start(t, "")
	mustBuzon(t, "pw\n", "user", "add", "dave@example.org", "--data", in.data)
	host, port := in.hostPort("imap")
	py := clienttest.Need(t, "python3", "python3")
	cmd := exec.Command(py, filepath.Join("testdata", "imap_idle.py"), host, port, "dave@example.org", "pw")
	stdout, _ := cmd.StdoutPipe()
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(stdout)
	if line, err := r.ReadString('\n'); err != nil || line != "idling\n" {
		t.Fatalf("imap_idle.py: %q %v %s", line, err, errb.String())
	}
	mustBuzon(t, "Subject: wake up\n\nhello\n", "deliver", "--data", in.data, "dave@example.org")
	line, _ := r.ReadString('\n')
	if err := cmd.Wait(); err != nil || line != "EXISTS 1\n" {
		t.Fatalf("imap_idle.py: %q %v %s", line, err, errb.String())
	}
}

// TestGracefulShutdown: a delivery in flight when SIGTERM arrives still
// finishes and is stored; the next start serves it.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	in := start(t, "")
	mustBuzon(t, "pw\n", "user", "add", "erin@example.org", "--data", in.data)
	c, err := net.Dial("tcp", in.ports["lmtp"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	expect := func(prefix string) string {
		t.Helper()
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("waiting for %q: %v", prefix, err)
			}
			if strings.HasPrefix(line, prefix+" ") {
				return line
			}
			if !strings.HasPrefix(line, prefix+"-") {
				t.Fatalf("want %s, got %q", prefix, line)
			}
		}
	}
	send := func(s string) { fmt.Fprint(c, s) }
	expect("220")
	send("LHLO client.example.net\r\n")
	expect("250")
	send("MAIL FROM:<f@example.net>\r\n")
	expect("250")
	send("RCPT TO:<erin@example.org>\r\n")
	expect("250")
	send("DATA\r\n")
	expect("354")
	send("Subject: in flight\r\n\r\nfirst half\r\n")
	in.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(200 * time.Millisecond) // let the signal land mid-message; not an assertion
	send("second half\r\n.\r\n")
	if line := expect("250"); !strings.Contains(line, "2.0.0") {
		t.Errorf("in-flight delivery: %q", line)
	}
	send("QUIT\r\n")
	in.stop()
	again := start(t, in.data)
	host, port := again.hostPort("pop3")
	if out := python(t, "", "pop3_stat.py", host, port, "erin@example.org", "pw", "plain"); !strings.HasPrefix(out, "1 ") {
		t.Errorf("after restart: %q", out)
	}
}

func TestConfigExample(t *testing.T) {
	t.Parallel()
	out := mustBuzon(t, "", "config", "example")
	file := filepath.Join(t.TempDir(), "buzon.toml")
	if err := os.WriteFile(file, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	// The sample is a working configuration for a second command.
	data := t.TempDir()
	mustBuzon(t, "pw\n", "user", "add", "--config", file, "--data", data, "frank@example.org")
	if out := mustBuzon(t, "", "user", "list", "--data", data); !strings.Contains(out, "frank@example.org") {
		t.Errorf("list: %s", out)
	}
	if _, errOut, code := buzon(t, "", "serve", "--imap", "nonsense"); code == 0 || !strings.Contains(errOut, "listen.imap") {
		t.Errorf("bad listener flag: exit %d %q", code, errOut)
	}
}

// TestMetrics scrapes /metrics after a delivery and a failed login.
func TestMetrics(t *testing.T) {
	t.Parallel()
	addr := freePort(t)
	conf := filepath.Join(t.TempDir(), "buzon.toml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("[listen]\nmetrics = %q\n", addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	in := start(t, "", "--config", conf)
	mustBuzon(t, "pw\n", "user", "add", "--data", in.data, "gina@example.org")
	host, port := in.hostPort("lmtp")
	python(t, "Subject: counted\r\n\r\nhi\r\n", "lmtp_send.py", host, port, "x@example.net", "gina@example.org")
	host, port = in.hostPort("pop3")
	python(t, "", "pop3_stat.py", host, port, "gina@example.org", "wrong", "plain", "expect-fail")
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`buzon_deliveries_total{code="250"} 1`,
		`buzon_logins_total{result="failed"} 1`,
		`buzon_connections_total{listener="pop3",outcome="accepted"} 1`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s\n%s", want, body)
		}
	}
}

// TestLMTPSocket delivers through the unix socket in the data folder, the
// way an MTA on the same machine does (Postfix's lmtp:unix:...).
func TestLMTPSocket(t *testing.T) {
	t.Parallel()
	in := start(t, "")
	mustBuzon(t, "pw\n", "user", "add", "--data", in.data, "hal@example.org")
	sock := filepath.Join(in.data, "lmtp.sock")
	if out := python(t, "Subject: via the socket\r\n\r\nhi\r\n", "lmtp_send.py", sock, "0", "x@example.net", "hal@example.org", "nobody@example.org"); out != "refused nobody@example.org 550\n" {
		t.Errorf("lmtp_send.py: %q", out)
	}
	host, port := in.hostPort("pop3")
	if out := python(t, "", "pop3_stat.py", host, port, "hal@example.org", "pw", "plain"); !strings.HasPrefix(out, "1 ") {
		t.Errorf("after delivery through the socket: %q", out)
	}
}

// TestDeliverSeveralRecipients: an unknown recipient among several bounces
// the message before any copy is stored, so the MTA's bounce or retry
// cannot leave duplicates.
func TestDeliverSeveralRecipients(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	for _, u := range []string{"ida@example.org", "jon@example.org"} {
		mustBuzon(t, "pw\n", "user", "add", "--data", data, u)
	}
	msg := "Subject: to several\n\nhi\n"
	if _, _, code := buzon(t, msg, "deliver", "--data", data, "ida@example.org", "nobody@example.org"); code != exNoUser {
		t.Errorf("with an unknown recipient: exit %d, want %d", code, exNoUser)
	}
	mustBuzon(t, msg, "deliver", "--data", data, "ida@example.org", "jon@example.org")
	out := mustBuzon(t, "", "user", "list", "--data", data)
	for _, u := range []string{"ida@example.org", "jon@example.org"} {
		if !regexp.MustCompile(regexp.QuoteMeta(u) + `\s+1\s`).MatchString(out) {
			t.Errorf("%s should hold exactly one message:\n%s", u, out)
		}
	}
}
