package pop3server_test

// Real POP3 clients that no one here wrote, driving the in-process server:
// Python's poplib, curl, fetchmail, mpop and getmail6. Each test is
// skipped when its tool is not installed.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/buzon-mail/buzon/internal/auth"
	"github.com/buzon-mail/buzon/internal/clienttest"
	"github.com/buzon-mail/buzon/internal/pop3server"
	"github.com/buzon-mail/buzon/internal/pop3server/pop3test"
	"github.com/buzon-mail/buzon/internal/store"
)

// externalMessages are what real clients download: every fixture message
// that ends with a line break (clients differ in how they mend one that
// does not), and a 1 MB message of many lines.
func externalMessages() [][]byte {
	return [][]byte{[]byte(msgHello), []byte(msgDots), []byte(msg8bit), []byte(msgLong), bigMessage(1<<20, false)}
}

// stored is alice's INBOX as a test put it there.
type stored struct {
	uids  []store.UID
	uidls []string
	// bodies maps UIDL to the stored bytes.
	bodies map[string][]byte
}

// fill appends the messages to alice's INBOX.
func fill(t *testing.T, env *pop3test.Env, msgs [][]byte) *stored {
	t.Helper()
	s := &stored{bodies: map[string][]byte{}}
	for _, m := range msgs {
		uid := env.Append(t, alice, m, store.Flags{}).UID
		u := env.UIDL(t, alice, uid)
		s.uids = append(s.uids, uid)
		s.uidls = append(s.uidls, u)
		s.bodies[u] = m
	}
	return s
}

// msgLater is the message that arrives between two polls.
const msgLater = "From: carol@example.org\r\n" +
	"Subject: came in between\r\n" +
	"\r\n" +
	"after the first poll\r\n"

// between changes alice's INBOX as other paths do between two polls of a
// client that leaves mail on the server: the message at index gone is
// expunged, as an IMAP EXPUNGE does, and body is delivered. It returns
// the new message's UIDL; s then lists what INBOX holds.
func (s *stored) between(t *testing.T, env *pop3test.Env, gone int, body string) string {
	t.Helper()
	env.WithInbox(t, alice, func(sess store.Session, inbox store.Mailbox) {
		if _, err := sess.Expunge(context.Background(), inbox.ID, store.UIDSetOf(s.uids[gone]), false); err != nil {
			t.Fatal(err)
		}
	})
	s.uids = slices.Delete(s.uids, gone, gone+1)
	s.uidls = slices.Delete(s.uidls, gone, gone+1)
	uid := env.Append(t, alice, []byte(body), store.Flags{}).UID
	u := env.UIDL(t, alice, uid)
	s.uids = append(s.uids, uid)
	s.uidls = append(s.uidls, u)
	s.bodies[u] = []byte(body)
	return u
}

// dir writes the bodies of the messages with the given UIDLs (all when
// none are given) to a folder, one file per message named by its UIDL.
func (s *stored) dir(t *testing.T, uidls ...string) string {
	t.Helper()
	if uidls == nil {
		uidls = s.uidls
	}
	dir := t.TempDir()
	for _, u := range uidls {
		if err := os.WriteFile(filepath.Join(dir, u), s.bodies[u], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// checkInbox compares alice's INBOX with the UIDLs expected, and whether
// each message was recorded as retrieved: all of them or none, but for
// the UIDLs listed in except.
func checkInbox(t *testing.T, env *pop3test.Env, want []string, retrieved bool, except ...string) {
	t.Helper()
	var got []string
	for _, m := range env.Inbox(t, alice) {
		u := env.UIDL(t, alice, m.UID)
		got = append(got, u)
		seen := m.Flags.System&store.FlagSeen != 0
		if want := retrieved != slices.Contains(except, u); seen != want || m.Retrieved.IsZero() == want {
			t.Errorf("UID %d: seen %v, retrieved at %v; want retrieved %v", m.UID, seen, m.Retrieved, want)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("INBOX UIDLs = %v; want %v", got, want)
	}
}

// hostPort splits a listener address for tools that take them apart.
func hostPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return host, port
}

// poplib runs testdata/poplib_client.py and decodes its JSON summary.
func poplib(t *testing.T, mode, addr, expectDir, arg string) map[string][]string {
	t.Helper()
	python := clienttest.Need(t, "python3", "python3")
	host, port := hostPort(t, addr)
	args := []string{filepath.Join("testdata", "poplib_client.py"), mode, host, port, alice, pop3test.Password, expectDir}
	if arg != "" {
		args = append(args, arg)
	}
	cmd := exec.Command(python, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("poplib %s: %v\n%s", mode, err, stderr.String())
	}
	var res map[string][]string
	if mode == "stls" {
		return nil
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("poplib %s printed %q: %v", mode, out, err)
	}
	return res
}

func TestPoplib(t *testing.T) {
	t.Parallel()
	clienttest.Need(t, "python3", "python3")
	env := pop3test.Start(t, openStore(t, t.TempDir()), pop3test.Options{})
	s := fill(t, env, externalMessages())
	all := s.dir(t)

	t.Run("stls and top", func(t *testing.T) {
		poplib(t, "stls", env.Addr, all, env.CertFile)
		checkInbox(t, env, s.uidls, false) // TOP is no retrieval
	})
	t.Run("leave on server", func(t *testing.T) {
		res := poplib(t, "keep", env.TLSAddr, all, "")
		if !slices.Equal(res["retrieved"], sortedCopy(s.uidls)) {
			t.Errorf("poplib retrieved %v; want %v", res["retrieved"], s.uidls)
		}
		checkInbox(t, env, s.uidls, true)
	})
	t.Run("delete later", func(t *testing.T) {
		doomed := []string{s.uidls[1], s.uidls[3]}
		res := poplib(t, "delete-later", env.TLSAddr, all, strings.Join(doomed, ","))
		if !slices.Equal(res["deleted"], sortedCopy(doomed)) {
			t.Errorf("poplib deleted %v; want %v", res["deleted"], doomed)
		}
		checkInbox(t, env, []string{s.uidls[0], s.uidls[2], s.uidls[4]}, true)
	})
	t.Run("download and delete", func(t *testing.T) {
		rest := []string{s.uidls[0], s.uidls[2], s.uidls[4]}
		res := poplib(t, "download-delete", env.Addr, s.dir(t, rest...), "")
		if !slices.Equal(res["retrieved"], sortedCopy(rest)) {
			t.Errorf("poplib retrieved %v; want %v", res["retrieved"], rest)
		}
		checkInbox(t, env, nil, true)
	})
}

func TestPoplibUIDLAcrossRestart(t *testing.T) {
	t.Parallel()
	clienttest.Need(t, "python3", "python3")
	dir := t.TempDir()
	st := openStore(t, dir)
	env := pop3test.Start(t, st, pop3test.Options{})
	s := fill(t, env, externalMessages())
	before := poplib(t, "uidl", env.Addr, s.dir(t), "")["uidl"]

	env.Stop()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	env = pop3test.Start(t, openStore(t, dir), pop3test.Options{})
	after := poplib(t, "uidl", env.Addr, s.dir(t), "")["uidl"]
	if !slices.Equal(before, s.uidls) || !slices.Equal(after, s.uidls) {
		t.Errorf("UIDLs before the restart %v, after %v; want %v", before, after, s.uidls)
	}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// curl runs curl against the server as alice and returns what it printed.
func curl(t *testing.T, args ...string) []byte {
	t.Helper()
	path := clienttest.Need(t, "curl", "curl")
	args = append([]string{"--silent", "--show-error", "--max-time", "60", "--user", alice + ":" + pop3test.Password}, args...)
	cmd := exec.Command(path, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

func TestCurl(t *testing.T) {
	t.Parallel()
	clienttest.Need(t, "curl", "curl")
	env := pop3test.Start(t, openStore(t, t.TempDir()), pop3test.Options{})
	s := fill(t, env, externalMessages())
	plain, implicit := "pop3://"+env.Addr+"/", "pop3s://"+env.TLSAddr+"/"

	// LIST and UIDL listings.
	var wantList, wantUIDL strings.Builder
	for i, u := range s.uidls {
		fmt.Fprintf(&wantList, "%d %d\r\n", i+1, len(s.bodies[u]))
		fmt.Fprintf(&wantUIDL, "%d %s\r\n", i+1, u)
	}
	if got := curl(t, plain); string(got) != wantList.String() {
		t.Errorf("curl LIST printed %q; want %q", got, wantList.String())
	}
	if got := curl(t, "--request", "UIDL", "--cacert", env.CertFile, implicit); string(got) != wantUIDL.String() {
		t.Errorf("curl UIDL printed %q; want %q", got, wantUIDL.String())
	}
	checkInbox(t, env, s.uidls, false)

	// RETR over plain POP3, POP3S and STLS: the bytes stored.
	for i, u := range s.uidls {
		url := fmt.Sprintf("%d", i+1)
		for _, args := range [][]string{
			{plain + url},
			{"--insecure", implicit + url},
			{"--ssl-reqd", "--cacert", env.CertFile, plain + url},
		} {
			if got := curl(t, args...); !bytes.Equal(got, s.bodies[u]) {
				t.Errorf("curl %v: %d bytes that differ from the %d stored", args, len(got), len(s.bodies[u]))
			}
		}
	}
	checkInbox(t, env, s.uidls, true)

	// DELE, applied at curl's QUIT.
	curl(t, "--request", "DELE", "--head", plain+"2")
	env.WaitUnlocked(t, alice)
	checkInbox(t, env, slices.Delete(slices.Clone(s.uidls), 1, 2), true)
}

// delivered reads the files a client delivered into dir (recursively) and
// returns their contents sorted.
func delivered(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		out = append(out, string(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// bodiesOf returns the stored bodies of the UIDLs, sorted, as strings.
func (s *stored) bodiesOf(uidls []string) []string {
	var out []string
	for _, u := range uidls {
		out = append(out, string(s.bodies[u]))
	}
	slices.Sort(out)
	return out
}

// fetchmail polls the server once at addr as alice with the given server
// and user options, and returns what it printed, its exit status and the
// messages it delivered. It delivers each message to a file of its own
// through an MDA, without a Received header (invisible) and keeping CRLF;
// it keeps its state (the UIDLs it has seen) in home.
func fetchmail(t *testing.T, env *pop3test.Env, home, addr, serverOpts, userOpts string) (out string, status int, mail []string) {
	t.Helper()
	bin := clienttest.Need(t, "fetchmail", "fetchmail")
	host, port := hostPort(t, addr)
	outDir := t.TempDir()
	rc := fmt.Sprintf("set no bouncemail\n"+
		"poll %s port %s proto POP3 %s\n"+
		"  user \"%s\" there with password \"%s\" is \"tester\" here\n"+
		"  options no stripcr %s mda \"cat > %s/msg.$$\"\n",
		host, port, serverOpts, alice, pop3test.Password, userOpts, outDir)
	rcfile := filepath.Join(home, "fetchmailrc")
	if err := os.WriteFile(rcfile, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--verbose", "--nodetach", "--nosyslog", "--invisible", "--fetchmailrc", rcfile,
		"--idfile", filepath.Join(home, "fetchids"), "--pidfile", filepath.Join(home, "fetchmail.pid"))
	cmd.Env = append(os.Environ(), "HOME="+home)
	b, err := cmd.CombinedOutput()
	if ee := (*exec.ExitError)(nil); err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return string(b), cmd.ProcessState.ExitCode(), delivered(t, outDir)
}

func TestFetchmail(t *testing.T) {
	t.Parallel()
	clienttest.Need(t, "fetchmail", "fetchmail")
	env := pop3test.Start(t, openStore(t, t.TempDir()), pop3test.Options{})
	s := fill(t, env, externalMessages())
	home := t.TempDir()
	run := func(t *testing.T, addr, serverOpts, userOpts string) (string, int, []string) {
		t.Helper()
		out, status, mail := fetchmail(t, env, home, addr, serverOpts, userOpts)
		env.WaitUnlocked(t, alice)
		return out, status, mail
	}
	all := s.bodiesOf(s.uidls)
	// fetchmail checks the certificate's names but not its IP addresses.
	verify := "sslcertck sslcertfile " + env.CertFile + " sslcommonname localhost"

	t.Run("keep over POP3S", func(t *testing.T) {
		out, status, mail := run(t, env.TLSAddr, "uidl", "keep fetchall ssl "+verify)
		if status != 0 || !slices.Equal(mail, all) {
			t.Fatalf("fetchmail exited %d and delivered %d messages; want 0 and the %d stored\n%s", status, len(mail), len(all), out)
		}
		checkInbox(t, env, s.uidls, true)
	})
	t.Run("keep remembers UIDLs", func(t *testing.T) {
		out, status, mail := run(t, env.Addr, "uidl", "keep sslproto ''")
		// 1: no mail (fetchmail(1) EXIT CODES).
		if status != 1 || len(mail) != 0 {
			t.Fatalf("second poll exited %d and delivered %d messages; want 1 and none\n%s", status, len(mail), out)
		}
		checkInbox(t, env, s.uidls, true)
	})
	t.Run("keep takes only what came since", func(t *testing.T) {
		added := s.between(t, env, 1, msgLater)
		out, status, mail := run(t, env.Addr, "uidl", "keep sslproto ''")
		if status != 0 || !slices.Equal(mail, s.bodiesOf([]string{added})) {
			t.Fatalf("poll after a delivery and an expunge exited %d and delivered %d messages; want 0 and the new one\n%s", status, len(mail), out)
		}
		// Keeping mail without fetchall, fetchmail downloads with
		// "TOP n 99999999" so as not to mark it seen, and the server
		// (as Dovecot) does not count a TOP as a retrieval.
		if !strings.Contains(out, "TOP ") {
			t.Errorf("fetchmail did not download with TOP\n%s", out)
		}
		checkInbox(t, env, s.uidls, true, added)
		out, status, mail = run(t, env.Addr, "uidl", "keep sslproto ''")
		if status != 1 || len(mail) != 0 {
			t.Fatalf("the poll after exited %d and delivered %d messages; want 1 and none\n%s", status, len(mail), out)
		}
	})
	t.Run("no keep over STLS", func(t *testing.T) {
		all := s.bodiesOf(s.uidls)
		out, status, mail := run(t, env.Addr, "uidl", "no keep fetchall sslproto 'tls1.2+' "+verify)
		if status != 0 || !slices.Equal(mail, all) || !strings.Contains(out, "STLS") {
			t.Fatalf("fetchmail exited %d and delivered %d messages; want 0 and the %d stored, over STLS\n%s", status, len(mail), len(all), out)
		}
		checkInbox(t, env, nil, true)
	})
}

func TestMpop(t *testing.T) {
	t.Parallel()
	mpop := clienttest.Need(t, "mpop", "mpop")
	env := pop3test.Start(t, openStore(t, t.TempDir()), pop3test.Options{})
	s := fill(t, env, externalMessages())
	home := t.TempDir()
	uidls := filepath.Join(home, "uidls")

	// run fetches with an account configured by settings, and returns
	// mpop's output.
	run := func(t *testing.T, addr, settings string) string {
		t.Helper()
		host, port := hostPort(t, addr)
		rc := fmt.Sprintf("defaults\ntimeout 60\naccount buzon\nhost %s\nport %s\nuser %s\npassword %s\n"+
			"received_header off\nuidls_file %s\n%s\n", host, port, alice, pop3test.Password, uidls, settings)
		rcfile := filepath.Join(home, "mpoprc")
		if err := os.WriteFile(rcfile, []byte(rc), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(mpop, "--debug", "-C", rcfile, "buzon")
		cmd.Env = append(os.Environ(), "HOME="+home)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("mpop: %v\n%s", err, out)
		}
		env.WaitUnlocked(t, alice)
		return string(out)
	}
	// mpop delivers with LF line endings.
	var want []string
	for _, b := range s.bodiesOf(s.uidls) {
		want = append(want, strings.ReplaceAll(b, "\r\n", "\n"))
	}
	maildir := t.TempDir()
	for _, d := range []string{"new", "cur", "tmp"} {
		if err := os.Mkdir(filepath.Join(maildir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("keep, SCRAM, Maildir", func(t *testing.T) {
		out := run(t, env.Addr, "auth scram-sha-256\ntls off\nkeep on\ndelivery maildir "+maildir)
		if got := delivered(t, maildir); !slices.Equal(got, want) {
			t.Fatalf("mpop delivered %d messages that differ from the %d stored\n%s", len(got), len(want), out)
		}
		checkInbox(t, env, s.uidls, true)
	})
	t.Run("keep, only new", func(t *testing.T) {
		out := run(t, env.Addr, "auth scram-sha-256\ntls off\nkeep on\ndelivery maildir "+maildir)
		if got := delivered(t, maildir); len(got) != len(want) || strings.Contains(out, "RETR") {
			t.Fatalf("second run: %d messages in the Maildir; want the %d of the first run, no RETR\n%s", len(got), len(want), out)
		}
		checkInbox(t, env, s.uidls, true)
	})
	t.Run("keep, only what came since", func(t *testing.T) {
		gone := s.uidls[0]
		s.between(t, env, 0, msgLater)
		want = append(want, strings.ReplaceAll(msgLater, "\r\n", "\n"))
		slices.Sort(want)
		out := run(t, env.Addr, "auth scram-sha-256\ntls off\nkeep on\ndelivery maildir "+maildir)
		if got := delivered(t, maildir); !slices.Equal(got, want) || strings.Count(out, "RETR ") != 1 {
			t.Fatalf("run after a delivery and an expunge: %d messages in the Maildir; want %d, one RETR\n%s", len(got), len(want), out)
		}
		checkInbox(t, env, s.uidls, true)
		// mpop's UIDL file lists what is on the server, and no more
		// the message expunged.
		b, err := os.ReadFile(uidls)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range s.uidls {
			if !strings.Contains(string(b), u) {
				t.Errorf("mpop's UIDL file lacks %s:\n%s", u, b)
			}
		}
		if strings.Contains(string(b), gone) {
			t.Errorf("mpop's UIDL file still lists %s, expunged:\n%s", gone, b)
		}
	})
	t.Run("delete, STLS, mbox", func(t *testing.T) {
		// What the server holds now.
		var want []string
		for _, b := range s.bodiesOf(s.uidls) {
			want = append(want, strings.ReplaceAll(b, "\r\n", "\n"))
		}
		mbox := filepath.Join(t.TempDir(), "mbox")
		out := run(t, env.Addr, fmt.Sprintf("auth plain\ntls on\ntls_starttls on\ntls_trust_file %s\n"+
			"keep off\nonly_new off\ndelivery mbox %s", env.CertFile, mbox))
		b, err := os.ReadFile(mbox)
		if err != nil {
			t.Fatal(err)
		}
		// mboxrd: each message follows a "From " separator line and is
		// followed by an empty line; none of ours has a line to quote.
		var got []string
		for _, m := range strings.Split(strings.TrimSuffix(string(b), "\n\n"), "\n\nFrom ") {
			_, body, _ := strings.Cut(m, "\n")
			got = append(got, body+"\n")
		}
		slices.Sort(got)
		if !strings.HasPrefix(string(b), "From ") || !slices.Equal(got, want) || !strings.Contains(out, "STLS") {
			t.Fatalf("mbox holds %d messages that differ from the %d stored, or no STLS\n%s", len(got), len(want), out)
		}
		checkInbox(t, env, nil, true)
	})
}

// getmail runs getmail6 once against the server with the options given
// for its [options] section, delivering each message to a file of its own
// in outDir, and returns what it printed and how many messages it says it
// retrieved and deleted. getmail keeps its state (the UIDLs it has seen
// and when) in state. It fails the test unless getmail exits 0.
func getmail(t *testing.T, env *pop3test.Env, state, outDir, options string) (out string, retrieved, deleted int) {
	t.Helper()
	bin := clienttest.Need(t, "getmail", "getmail6")
	host, port := hostPort(t, env.TLSAddr)
	// An external MDA rather than getmail's Maildir, which refuses to
	// deliver as root; allow_root_commands lets a test running as root
	// use it.
	rc := fmt.Sprintf("[retriever]\ntype = SimplePOP3SSLRetriever\nserver = %s\nport = %s\n"+
		"username = %s\npassword = %s\nca_certs = %s\n\n"+
		"[destination]\ntype = MDA_external\npath = /bin/sh\n"+
		"arguments = (\"-c\", \"cat > %s/msg.$$\")\nallow_root_commands = true\n\n"+
		"[options]\nverbose = 2\ndelivered_to = false\nreceived = false\n%s\n",
		host, port, alice, pop3test.Password, env.CertFile, outDir, options)
	rcfile := filepath.Join(state, "getmailrc")
	if err := os.WriteFile(rcfile, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--getmaildir", state, "--rcfile", rcfile)
	cmd.Env = append(os.Environ(), "HOME="+state)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("getmail: %v\n%s", err, b)
	}
	env.WaitUnlocked(t, alice)
	m := getmailSummary.FindStringSubmatch(string(b))
	if m == nil {
		t.Fatalf("getmail printed no summary:\n%s", b)
	}
	retrieved, _ = strconv.Atoi(m[1])
	return string(b), retrieved, strings.Count(string(b), ", deleted")
}

var getmailSummary = regexp.MustCompile(`(?m)^\s*(\d+) messages? \(\d+ bytes\) retrieved, \d+ skipped`)

// getmailDelivered reads what getmail delivered as the stored bytes:
// without the Return-Path line it puts on top (it knows no sender) and
// with CRLF line ends again.
func getmailDelivered(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, m := range delivered(t, dir) {
		rest, ok := strings.CutPrefix(m, "Return-Path: <unknown>\n")
		if !ok {
			t.Fatalf("a message getmail delivered does not start with its Return-Path line:\n%.200q", m)
		}
		out = append(out, strings.ReplaceAll(rest, "\n", "\r\n"))
	}
	slices.Sort(out)
	return out
}

// TestGetmail leaves mail on the server with getmail (delete = false),
// which remembers by UIDL what it took: a run after a delivery and an
// IMAP expunge takes only the new message, and delete_after then deletes
// on the server, without downloading them again, the messages it first
// saw more than that many days ago.
func TestGetmail(t *testing.T) {
	t.Parallel()
	clienttest.Need(t, "getmail", "getmail6")
	env := pop3test.Start(t, openStore(t, t.TempDir()), pop3test.Options{})
	s := fill(t, env, externalMessages())
	state, outDir := t.TempDir(), t.TempDir()
	const keep = "read_all = false\ndelete = false"

	out, n, _ := getmail(t, env, state, outDir, keep)
	if got := getmailDelivered(t, outDir); n != len(s.uidls) || !slices.Equal(got, s.bodiesOf(s.uidls)) {
		t.Fatalf("first run retrieved %d messages and delivered %d that differ from the %d stored\n%s", n, len(got), len(s.uidls), out)
	}
	checkInbox(t, env, s.uidls, true)

	first := slices.Clone(s.uidls)
	added := s.between(t, env, 2, msgLater)
	outDir = t.TempDir()
	out, n, _ = getmail(t, env, state, outDir, keep)
	if got := getmailDelivered(t, outDir); n != 1 || !slices.Equal(got, s.bodiesOf([]string{added})) {
		t.Fatalf("run after a delivery and an expunge retrieved %d messages and delivered %d; want the new one\n%s", n, len(got), out)
	}
	checkInbox(t, env, s.uidls, true)
	if out, n, _ = getmail(t, env, state, outDir, keep); n != 0 {
		t.Fatalf("the run after retrieved %d messages; want none\n%s", n, out)
	}

	// getmail's state: each UIDL it has seen, a NUL, and when it first
	// saw it (one gone from the server is kept for 30 days). The messages
	// of the first run are made three days old.
	files, err := filepath.Glob(filepath.Join(state, "oldmail-*"))
	if err != nil || len(files) != 1 {
		t.Fatalf("getmail's state files: %v, %v", files, err)
	}
	oldmail := files[0]
	b, err := os.ReadFile(oldmail)
	if err != nil {
		t.Fatal(err)
	}
	var aged strings.Builder
	for line := range strings.Lines(string(b)) {
		uidl, when, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "\x00")
		if !ok {
			t.Fatalf("getmail's state has a line %q", line)
		}
		if slices.Contains(first, uidl) {
			ts, _ := strconv.ParseInt(when, 10, 64)
			when = strconv.FormatInt(ts-3*24*3600, 10)
		}
		fmt.Fprintf(&aged, "%s\x00%s\n", uidl, when)
	}
	if err := os.WriteFile(oldmail, []byte(aged.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	outDir = t.TempDir()
	const later = "read_all = false\ndelete = false\ndelete_after = 2"
	out, n, deleted := getmail(t, env, state, outDir, later)
	if n != 0 || deleted != len(first)-1 || len(delivered(t, outDir)) != 0 {
		t.Fatalf("delete_after run retrieved %d and deleted %d messages; want none and the %d older than 2 days\n%s", n, deleted, len(first)-1, out)
	}
	checkInbox(t, env, []string{added}, true)
	if out, n, deleted = getmail(t, env, state, outDir, later); n != 0 || deleted != 0 {
		t.Fatalf("the run after retrieved %d and deleted %d messages; want none\n%s", n, deleted, out)
	}
	checkInbox(t, env, []string{added}, true)
}

// TestFetchmailBusy: a login refused because another session has the
// maildrop, or because the account has as many sessions as it may, is
// read by fetchmail as a busy server to try again later (exit status 9,
// LOCKBUSY), not as a wrong password (3, AUTHFAIL), for which a fetchmail
// daemon tells the user by mail that the password is wrong. fetchmail
// tells the two apart by the words "lock" and "wait", and [IN-USE].
func TestFetchmailBusy(t *testing.T) {
	t.Parallel()
	clienttest.Need(t, "fetchmail", "fetchmail")
	env := pop3test.Start(t, openStore(t, t.TempDir()), pop3test.Options{Config: func(c *pop3server.Config) {
		c.Sessions = auth.NewSessionLimiter(1)
	}})
	fill(t, env, [][]byte{[]byte(msgHello)})
	id := env.Accounts[alice].ID
	for _, tc := range []struct {
		name string
		hold func() (release func())
	}{
		{"maildrop locked", func() func() {
			release, err := env.Store.Lock(context.Background(), id, "pop3")
			if err != nil {
				t.Fatal(err)
			}
			return release
		}},
		{"session limit", func() func() {
			release, ok := env.Config.Sessions.Acquire(id)
			if !ok {
				t.Fatal("no session slot")
			}
			return release
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := tc.hold()
			out, status, mail := fetchmail(t, env, t.TempDir(), env.Addr, "uidl", "keep sslproto ''")
			release()
			if status != 9 || len(mail) != 0 {
				t.Errorf("fetchmail exited %d and delivered %d messages; want 9 (LOCKBUSY) and none\n%s", status, len(mail), out)
			}
		})
	}
}
