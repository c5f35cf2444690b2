package main

// getmail (Debian's getmail6) downloading an account into Maildirs: over
// POP3 deleting what it took, over POP3 keeping it and remembering what it
// took by UIDL, and over IMAP. getmail writes what it downloads with LF
// line ends and puts a Return-Path line on top (the tests turn off its
// Delivered-To and Received lines); everything else must be the bytes
// delivered.

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/buzon-mail/buzon/internal/clienttest"
)

// gmSetup is a getmail state folder with its Maildirs and rc files.
type gmSetup struct {
	t    *testing.T
	in   *instance
	bin  string
	dir  string
	cred *syscall.Credential // whom getmail runs as; nil: as the test
}

// newGetmail makes the folder getmail works in, with a copy of the server's
// certificate for ca_certs. getmail refuses to write into a Maildir as
// root, and people run it as themselves anyway: a test running as root
// runs it as the user nobody, in a folder of its own under the system's
// temporary folder (the test's own temporary folders are closed to other
// users).
func newGetmail(t *testing.T, in *instance) *gmSetup {
	t.Helper()
	g := &gmSetup{t: t, in: in, bin: clienttest.Need(t, "getmail", "getmail6")}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			t.Fatalf("running as root, and no user to run getmail as: %v", err)
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		g.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		g.dir, err = os.MkdirTemp("", "buzon-getmail-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(g.dir) })
	} else {
		g.dir = t.TempDir()
	}
	cert, err := os.ReadFile(filepath.Join(in.data, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	g.write("cert.pem", string(cert))
	if err := os.Mkdir(filepath.Join(g.dir, "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *gmSetup) write(name, data string) {
	g.t.Helper()
	if err := os.WriteFile(filepath.Join(g.dir, name), []byte(data), 0o600); err != nil {
		g.t.Fatal(err)
	}
}

// gmRetriever is the [retriever] section of an rc file, less the account.
type gmRetriever struct {
	kind      string // getmail's retriever type
	listener  string // the server's listener it connects to
	mailboxes string // IMAP: a Python tuple of names
}

// rc writes an rc file named name that downloads user's mail with r into
// the Maildir maildir (made here), without the Delivered-To and Received
// lines getmail adds by default, and returns its path.
func (g *gmSetup) rc(name, user string, r gmRetriever, maildir string, readAll, del bool) string {
	g.t.Helper()
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(g.dir, maildir, sub), 0o700); err != nil {
			g.t.Fatal(err)
		}
	}
	_, port := g.in.hostPort(r.listener)
	var extra strings.Builder
	if strings.Contains(r.kind, "SSL") {
		fmt.Fprintf(&extra, "ca_certs = %s\n", filepath.Join(g.dir, "cert.pem"))
	}
	if r.mailboxes != "" {
		fmt.Fprintf(&extra, "mailboxes = %s\nrecord_mailbox = false\n", r.mailboxes)
	}
	// timeout is also how long getmail waits for the child it delivers
	// with (see gmChildLost): 20 s, not its 180.
	g.write(name, fmt.Sprintf(`[retriever]
type = %s
server = localhost
port = %s
username = %s
password = %s
timeout = 20
%s
[destination]
type = Maildir
path = %s/

[options]
verbose = 2
read_all = %t
delete = %t
delivered_to = false
received = false
`, r.kind, port, user, clPass, extra.String(), filepath.Join(g.dir, maildir), readAll, del))
	return filepath.Join(g.dir, name)
}

var gmRetrievedRE = regexp.MustCompile(`(?m)^\s*(\d+) messages? \(\d+ bytes\) retrieved, \d+ skipped`)

// gmChildLost is what getmail says when it waited in vain for the child
// that delivers a message into the Maildir. getmail 6.18 forks the child
// and only then installs its SIGCHLD handler (ForkingBase.forkchild); on
// a loaded machine the child can exit first, its signal is lost, and
// getmail waits out its timeout, then gives up the delivery the child
// made. Seen in about one run in twenty of these tests with the suite
// running beside them: a single-threaded getmail in a futex wait, the
// server waiting for its next command.
var gmChildLost = regexp.MustCompile(`operation error \(waiting child pid \d+ timed out\)`)

// run runs getmail with the rc file and returns how many messages it says
// it retrieved. It fails the test unless getmail exits 0, which it does
// not when a delivery or the server failed.
func (g *gmSetup) run(rc string) int {
	g.t.Helper()
	if g.cred != nil {
		err := filepath.WalkDir(g.dir, func(path string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(path, int(g.cred.Uid), int(g.cred.Gid))
		})
		if err != nil {
			g.t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, g.bin, "--getmaildir", filepath.Join(g.dir, "state"), "--rcfile", rc)
	cmd.Env = append(os.Environ(), "HOME="+g.dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: g.cred}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		g.t.Fatalf("getmail %s: no end within %v:\n%s\nthe server's log:\n%s", filepath.Base(rc), clientTimeout, out.String(), g.in.logs())
	}
	if err != nil && gmChildLost.MatchString(out.String()) {
		g.t.Skipf("getmail %s lost its delivery child's exit, a race of its own, not the server's (see gmChildLost):\n%s", filepath.Base(rc), out.String())
	}
	if err != nil {
		g.t.Fatalf("getmail %s: %v\n%s", filepath.Base(rc), err, out.String())
	}
	g.t.Logf("getmail %s:\n%s", filepath.Base(rc), out.String())
	m := gmRetrievedRE.FindStringSubmatch(out.String())
	if m == nil {
		g.t.Fatalf("getmail %s: no count of messages retrieved:\n%s", filepath.Base(rc), out.String())
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// maildir returns the messages in a Maildir as delivered to the server:
// getmail's Return-Path line taken off and CRLF line ends put back,
// sorted. It fails the test if a message lacks that Return-Path line.
func (g *gmSetup) maildir(name string) []string {
	g.t.Helper()
	var msgs []string
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(g.dir, name, sub))
		if err != nil {
			g.t.Fatal(err)
		}
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(g.dir, name, sub, e.Name()))
			if err != nil {
				g.t.Fatal(err)
			}
			// No Return-Path in the delivered message: getmail knows no
			// sender and says so.
			rest, ok := bytes.CutPrefix(b, []byte("Return-Path: <unknown>\n"))
			if !ok {
				g.t.Fatalf("%s/%s/%s does not start with getmail's Return-Path line:\n%q", name, sub, e.Name(), b)
			}
			msgs = append(msgs, strings.ReplaceAll(string(rest), "\n", "\r\n"))
		}
	}
	slices.Sort(msgs)
	return msgs
}

// gmMessages are what the getmail tests deliver: a plain message, one of
// dot-stuffing and mbox traps and folded headers, an 8-bit MIME message
// with a binary attachment, and raw UTF-8 in the header.
func gmMessages(user string) []string {
	return []string{
		clMsg("From: Bob <bob@example.net>", "To: "+user, "Subject: plain", "Message-ID: <plain@example.net>",
			"Date: Thu, 26 Nov 2026 10:00:00 +0000", "", "hello"),
		clMsg("From: bob@example.net", "To: "+user, "Subject: dots", "X-Folded: one", " two", "\tthree", "",
			".", "..", ".leading dot", "From the start of a line", ">From quoted", "", "", "end"),
		clMsg("From: =?UTF-8?Q?Jos=C3=A9?= <jose@example.net>", "To: "+user, "Subject: =?UTF-8?B?w7FhbmTDug==?=",
			"MIME-Version: 1.0", `Content-Type: multipart/mixed; boundary="b1"`, "", "preamble",
			"--b1", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit", "", "ma\u00f1ana \u20ac",
			"--b1", "Content-Type: application/octet-stream", "Content-Transfer-Encoding: base64", "",
			clBase64(clBlob(20000)), "--b1--", "epilogue"),
		clMsg("From: Jos\u00e9 <jose@example.net>", "To: "+user, "Subject: ma\u00f1ana, raw UTF-8", "", "body"),
	}
}

// gmSorted is msgs sorted, as maildir returns them.
func gmSorted(msgs ...string) []string { return slices.Sorted(slices.Values(msgs)) }

// gmInbox returns the server's INBOX: the bytes of its messages sorted,
// read without changing anything.
func gmInbox(t *testing.T, in *instance, user string) []string {
	t.Helper()
	var out []string
	for _, m := range serverState(t, in, user)["INBOX"].msgs {
		out = append(out, m.body)
	}
	slices.Sort(out)
	return out
}

// TestGetmailPOP3 downloads over POP3 as getmail does: keeping the mail
// on the server (read_all = false), twice, so that the second run takes
// only what came in between by its UIDL, then deleting it.
func TestGetmailPOP3(t *testing.T) {
	t.Parallel()
	const user = "gabi@example.org"
	in := clServer(t, user)
	g := newGetmail(t, in)
	first := gmMessages(user)
	clDeliver(t, in, user, first...)

	keep := g.rc("keep.rc", user, gmRetriever{kind: "SimplePOP3SSLRetriever", listener: "pop3s"}, "keep", false, false)
	if n := g.run(keep); n != len(first) {
		t.Errorf("first keep run retrieved %d messages, want %d", n, len(first))
	}
	if got, want := g.maildir("keep"), gmSorted(first...); !slices.Equal(got, want) {
		t.Errorf("after the first keep run the Maildir holds\n%q\nwant\n%q", got, want)
	}
	if got, want := gmInbox(t, in, user), gmSorted(first...); !slices.Equal(got, want) {
		t.Errorf("after the first keep run the server's INBOX holds\n%q\nwant\n%q", got, want)
	}
	// What POP3 downloaded is read on every IMAP device (README, POP3).
	for uid, m := range serverState(t, in, user)["INBOX"].msgs {
		if !slices.Contains(m.flags, `\Seen`) {
			t.Errorf("INBOX UID %d downloaded over POP3 is not \\Seen: %v", uid, m.flags)
		}
	}

	later := clMsg("From: carol@example.net", "To: "+user, "Subject: later", "", "came in between")
	clDeliver(t, in, user, later)
	if n := g.run(keep); n != 1 {
		t.Errorf("second keep run retrieved %d messages, want 1 (only the new one)", n)
	}
	all := append(slices.Clone(first), later)
	if got, want := g.maildir("keep"), gmSorted(all...); !slices.Equal(got, want) {
		t.Errorf("after the second keep run the Maildir holds\n%q\nwant\n%q", got, want)
	}
	if n := g.run(keep); n != 0 {
		t.Errorf("third keep run retrieved %d messages, want none", n)
	}
	if got := g.maildir("keep"); len(got) != len(all) {
		t.Errorf("after the third keep run the Maildir holds %d messages, want %d", len(got), len(all))
	}
	if got, want := gmInbox(t, in, user), gmSorted(all...); !slices.Equal(got, want) {
		t.Errorf("after keeping the server's INBOX holds\n%q\nwant\n%q", got, want)
	}

	// Plaintext POP3 on loopback, deleting: everything, once.
	del := g.rc("delete.rc", user, gmRetriever{kind: "SimplePOP3Retriever", listener: "pop3"}, "delete", true, true)
	if n := g.run(del); n != len(all) {
		t.Errorf("delete run retrieved %d messages, want %d", n, len(all))
	}
	if got, want := g.maildir("delete"), gmSorted(all...); !slices.Equal(got, want) {
		t.Errorf("after the delete run the Maildir holds\n%q\nwant\n%q", got, want)
	}
	if got := gmInbox(t, in, user); len(got) != 0 {
		t.Errorf("after the delete run the server's INBOX still holds %d messages", len(got))
	}
	if n := g.run(del); n != 0 {
		t.Errorf("a delete run on an empty INBOX retrieved %d messages", n)
	}
}

// TestGetmailIMAP downloads from two mailboxes, one with a non-ASCII name
// that getmail encodes itself, over IMAP with TLS: a run that keeps the
// mail changes nothing on the server (getmail reads with BODY.PEEK), a run
// that deletes it empties both mailboxes and leaves the others alone.
func TestGetmailIMAP(t *testing.T) {
	t.Parallel()
	const user = "gil@example.org"
	in := clServer(t, user)
	g := newGetmail(t, in)
	inbox := gmMessages(user)
	clDeliver(t, in, user, inbox...)
	menu := clMsg("Subject: men\u00fa", "", "sopa")
	archived := clMsg("Subject: archived", "", "stays")
	c := clDial(t, in, "imaps", "setup", "s%d")
	c.ok("AUTHENTICATE PLAIN " + clPlainIR(user))
	c.ok("CREATE Caf&AOk-/Men&APo-")
	for _, a := range []struct{ mailbox, flags, msg string }{
		{"Caf&AOk-/Men&APo-", `(\Flagged)`, menu},
		{"Archive", `(\Seen)`, archived},
	} {
		if r := c.appendMsg(a.mailbox, a.flags, a.msg, true); r.status != "OK" {
			t.Fatalf("APPEND to %s: %s", a.mailbox, r.text)
		}
	}
	c.ok("LOGOUT")
	all := append(slices.Clone(inbox), menu)
	r := gmRetriever{kind: "SimpleIMAPSSLRetriever", listener: "imaps", mailboxes: `("INBOX", "Café/Menú")`}

	before := serverState(t, in, user)
	keep := g.rc("keep.rc", user, r, "keep", true, false)
	if n := g.run(keep); n != len(all) {
		t.Errorf("keep run retrieved %d messages, want %d", n, len(all))
	}
	if got, want := g.maildir("keep"), gmSorted(all...); !slices.Equal(got, want) {
		t.Errorf("after the keep run the Maildir holds\n%q\nwant\n%q", got, want)
	}
	serverUnchanged(t, "getmail keeping the mail", before, serverState(t, in, user))

	del := g.rc("delete.rc", user, r, "delete", true, true)
	if n := g.run(del); n != len(all) {
		t.Errorf("delete run retrieved %d messages, want %d", n, len(all))
	}
	if got, want := g.maildir("delete"), gmSorted(all...); !slices.Equal(got, want) {
		t.Errorf("after the delete run the Maildir holds\n%q\nwant\n%q", got, want)
	}
	after := serverState(t, in, user)
	for _, name := range []string{"INBOX", "Caf&AOk-/Men&APo-"} {
		if n := len(after[name].msgs); n != 0 {
			t.Errorf("after the delete run %s still holds %d messages", name, n)
		}
	}
	if a := after["Archive"].msgs; len(a) != 1 || a[1].body != archived {
		t.Errorf("the delete run changed Archive: %v", a)
	}
}
