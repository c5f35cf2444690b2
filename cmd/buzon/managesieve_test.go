package main

// ManageSieve (RFC 5804) with real clients against `buzon serve`:
// sieve-connect, the Perl client many people script with, and Python's
// sievelib, as Roundcube's managesieve plugin speaks it. Each uploads a
// script, and a message delivered over LMTP afterwards is filed as the
// script says, which IMAP shows.

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/clienttest"
)

// listsScript files announcements into Lists, made if need be, and
// throws away what says it is spam.
const listsScript = `require ["fileinto", "mailbox"];
if header :contains "subject" "announce" {
  fileinto :create "Lists";
} elsif header :is "X-Spam" "yes" {
  discard;
}
`

// sieveConnect runs sieve-connect against in's ManageSieve listener as
// user, over STARTTLS checked against the server's certificate, with the
// arguments given, and returns its output and whether it succeeded.
func sieveConnect(t *testing.T, in *instance, bin, user string, args ...string) (string, bool) {
	t.Helper()
	host, port := in.hostPort("sieve")
	cmd := exec.Command(bin, append([]string{"--nosrv", "--server", host, "--port", port,
		"--user", user, "--passwordfd", "0", "--noclearauth",
		"--tlscafile", filepath.Join(in.data, "tls", "cert.pem"), "--tlshostname", "localhost"}, args...)...)
	cmd.Stdin = strings.NewReader(clPass + "\n")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("sieve-connect %v: %v", args, err)
	}
	return out.String(), err == nil
}

// TestSieveConnect uploads, lists, activates, downloads, checks and
// deletes scripts with sieve-connect, then delivers through the active
// one.
func TestSieveConnect(t *testing.T) {
	t.Parallel()
	bin := clienttest.Need(t, "sieve-connect", "sieve-connect")
	const user = "alice@example.org"
	in := clServer(t, user)
	dir := t.TempDir()
	local := filepath.Join(dir, "lists.sieve")
	if err := os.WriteFile(local, []byte(listsScript), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "forward.sieve")
	if err := os.WriteFile(bad, []byte("redirect \"bob@example.net\";\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	must := func(args ...string) string {
		t.Helper()
		out, ok := sieveConnect(t, in, bin, user, args...)
		if !ok {
			t.Fatalf("sieve-connect %v failed:\n%s", args, out)
		}
		return out
	}

	must("--upload", "--localsieve", local, "--remotesieve", "lists")
	must("--upload", "--localsieve", local, "--remotesieve", "spare")
	if out := must("--list"); out != "\"lists\"\n\"spare\"\n" {
		t.Errorf("list after upload:\n%s", out)
	}
	must("--activate", "--remotesieve", "lists")
	if out := must("--list"); !strings.Contains(out, "\"lists\" ACTIVE\n") {
		t.Errorf("list after activate:\n%s", out)
	}
	got := filepath.Join(dir, "got.sieve")
	must("--download", "--remotesieve", "lists", "--localsieve", got)
	if b, err := os.ReadFile(got); err != nil || string(b) != listsScript {
		t.Errorf("downloaded %q (%v), uploaded %q", b, err, listsScript)
	}
	must("--checkscript", "--localsieve", local)
	// A script that would send mail is refused, and says why.
	for _, action := range []string{"--checkscript", "--upload"} {
		if out, ok := sieveConnect(t, in, bin, user, action, "--localsieve", bad); ok || !strings.Contains(out, "no relay to forward mail through") {
			t.Errorf("%s of a redirect: succeeded %v:\n%s", action, ok, out)
		}
	}
	// The active script cannot be deleted (RFC 5804 2.10); another can.
	if out, ok := sieveConnect(t, in, bin, user, "--delete", "--remotesieve", "lists"); ok || !strings.Contains(out, "ACTIVE") {
		t.Errorf("delete of the active script: succeeded %v:\n%s", ok, out)
	}
	must("--delete", "--remotesieve", "spare")
	if out := must("--list"); out != "\"lists\" ACTIVE\n" {
		t.Errorf("list after delete:\n%s", out)
	}

	checkFiltered(t, in, user)

	must("--deactivate")
	must("--delete", "--remotesieve", "lists")
	if out := must("--list"); out != "" {
		t.Errorf("list after deleting everything:\n%q", out)
	}
}

// TestSievelib manages scripts with Python's sievelib, then delivers
// through the script it made active.
func TestSievelib(t *testing.T) {
	t.Parallel()
	py := clienttest.Python(t)
	if err := exec.Command(py, "-c", "import sievelib.managesieve").Run(); err != nil {
		t.Skipf("%s cannot import sievelib (apt-get install python3-sievelib, or scripts/deps.sh): %v", py, err)
	}
	const user = "alice@example.org"
	in := clServer(t, user)
	host, port := in.hostPort("sieve")
	script := filepath.Join(t.TempDir(), "lists.sieve")
	if err := os.WriteFile(script, []byte(listsScript), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, filepath.Join("testdata", "sievelib_session.py"), host, port, user, script)
	cmd.Stdin = strings.NewReader(clPass + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sievelib_session.py: %v\n%s", err, out)
	}
	want := `connect True
implementation buzon
fileinto True
vacation False
havespace True
putscript True
putscript other True
setactive True
listscripts ('lists', ['other'])
getscript True
checkscript True
checkscript vacation False b''
deletescript active False b'ACTIVE'
renamescript True
deletescript True
listscripts ('lists', [])
`
	if string(out) != want {
		t.Errorf("sievelib_session.py said:\n%s\nwant:\n%s", out, want)
	}
	checkFiltered(t, in, user)
}

// checkFiltered delivers three messages over LMTP to user, whose active
// script is listsScript, and checks over IMAP where they went: the
// announcement in Lists (made for it), the spam nowhere, the rest in
// INBOX.
func checkFiltered(t *testing.T, in *instance, user string) {
	t.Helper()
	clDeliver(t, in, user,
		clMsg("From: news@example.net", "Subject: announce: buzon 2.0", "", "Out now."),
		clMsg("From: spam@example.net", "Subject: cheap", "X-Spam: yes", "", "Buy."),
		clMsg("From: bob@example.net", "Subject: hello", "", "Hi Alice."),
	)
	host, port := in.hostPort("imap")
	out := python(t, "", "imap_folder_subjects.py", host, port, user, clPass, "INBOX", "Lists")
	if want := "INBOX\n  hello\nLists\n  announce: buzon 2.0\n"; out != want {
		t.Errorf("after delivery through the script:\n%s\nwant:\n%s", out, want)
	}
}

// clSieve is a raw ManageSieve client connection.
type clSieve struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func clDialSieve(t *testing.T, addr string) (*clSieve, []string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(clTimeout))
	c := &clSieve{t: t, conn: conn, r: bufio.NewReader(conn)}
	return c, c.response()
}

// response reads lines up to and including OK, NO or BYE.
func (c *clSieve) response() []string {
	c.t.Helper()
	var lines []string
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read: %v after %q", err, lines)
		}
		lines = append(lines, strings.TrimSuffix(l, "\r\n"))
		if strings.HasPrefix(l, "OK") || strings.HasPrefix(l, "NO") || strings.HasPrefix(l, "BYE") {
			return lines
		}
	}
}

// cmd sends a command and returns the response's lines.
func (c *clSieve) cmd(format string, args ...any) []string {
	c.t.Helper()
	fmt.Fprintf(c.conn, format+"\r\n", args...)
	return c.response()
}

// startTLS runs STARTTLS and returns the capabilities sent after it.
func (c *clSieve) startTLS() []string {
	c.t.Helper()
	if r := c.cmd("STARTTLS"); r[0] != `OK "begin TLS negotiation"` {
		c.t.Fatalf("STARTTLS: %q", r)
	}
	tc := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS: %v", err)
	}
	c.conn, c.r = tc, bufio.NewReader(tc)
	return c.response()
}

// plainLogin is AUTHENTICATE PLAIN with an initial response.
func plainLogin(user, pass string) string {
	return fmt.Sprintf(`AUTHENTICATE "PLAIN" "%s"`, base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass)))
}

// TestManageSievePlaintext: from a non-loopback address, before TLS, the
// ManageSieve greeting offers only SCRAM-SHA-256 and PLAIN and LOGIN are
// refused with ENCRYPT-NEEDED; after STARTTLS, or from loopback, PLAIN
// is offered and logs in.
func TestManageSievePlaintext(t *testing.T) {
	t.Parallel()
	ip := nonLoopbackIPv4(t)
	data := t.TempDir()
	addUser(t, data, limitsUser, limitsPass)
	in := startOn(t, "0.0.0.0", data)
	_, port, _ := net.SplitHostPort(in.ports["sieve"])

	c, greeting := clDialSieve(t, net.JoinHostPort(ip, port))
	if !slices.Contains(greeting, `"SASL" "SCRAM-SHA-256"`) || !slices.Contains(greeting, `"STARTTLS"`) {
		t.Errorf("greeting to a remote client before TLS: %q", greeting)
	}
	for _, cmd := range []string{plainLogin(limitsUser, limitsPass), `AUTHENTICATE "LOGIN"`} {
		if r := c.cmd("%s", cmd); r[0] != `NO (ENCRYPT-NEEDED) "a password in the clear needs TLS; use STARTTLS first"` {
			t.Errorf("%.22s before TLS: %q", cmd, r)
		}
	}
	if capa := c.startTLS(); !slices.Contains(capa, `"SASL" "SCRAM-SHA-256 PLAIN LOGIN"`) || slices.Contains(capa, `"STARTTLS"`) {
		t.Errorf("capabilities after STARTTLS: %q", capa)
	}
	if r := c.cmd("%s", plainLogin(limitsUser, limitsPass)); r[0] != `OK "logged in"` {
		t.Errorf("PLAIN after STARTTLS: %q", r)
	}

	local, greeting := clDialSieve(t, net.JoinHostPort("127.0.0.1", port))
	if !slices.Contains(greeting, `"SASL" "SCRAM-SHA-256 PLAIN LOGIN"`) {
		t.Errorf("greeting on loopback: %q", greeting)
	}
	if r := local.cmd("%s", plainLogin(limitsUser, limitsPass)); r[0] != `OK "logged in"` {
		t.Errorf("PLAIN on loopback: %q", r)
	}
}

// TestManageSieveLimits: limits.max_connections_per_ip covers the
// ManageSieve listener with the others, and a client over it hears a BYE
// a ManageSieve client can read; sieve.max_script_size from the config
// file is announced in QUOTA/MAXSIZE.
func TestManageSieveLimits(t *testing.T) {
	t.Parallel()
	const user = "alice@example.org"
	in := clServer(t, user, "--config", writeConfig(t, "[limits]\nmax_connections_per_ip = 1\n[sieve]\nmax_script_size = 2048\n"))
	first, _ := clDialSieve(t, in.ports["sieve"])
	second, err := net.Dial("tcp", in.ports["sieve"])
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	second.SetDeadline(time.Now().Add(clTimeout))
	if b, _ := io.ReadAll(second); string(b) != "BYE (TRYLATER) \"too many connections from your address\"\r\n" {
		t.Errorf("a connection over the limit heard %q", b)
	}
	if r := first.cmd("%s", plainLogin(user, clPass)); r[0] != `OK "logged in"` {
		t.Fatalf("login: %q", r)
	}
	if r := first.cmd(`HAVESPACE "big" 2049`); r[0] != `NO (QUOTA/MAXSIZE) "a script may have at most 2048 octets"` {
		t.Errorf("HAVESPACE over sieve.max_script_size: %q", r)
	}
}
