package main

// Scale-out tests: several `buzon serve` processes on one PostgreSQL
// database, as behind a load balancer.

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/store/postgres/pgtest"
)

// postgresConfig writes a config file that puts the store in PostgreSQL.
func postgresConfig(t *testing.T, dsn string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "buzon.toml")
	conf := fmt.Sprintf("[store]\nbackend = \"postgres\"\ndsn = %q\n", dsn)
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// imapSession is a minimal IMAP client for watching exact server output.
type imapSession struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	n    int
}

func loginIMAP(t *testing.T, addr, user, pass string) *imapSession {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	im := &imapSession{t: t, conn: c, r: bufio.NewReader(c)}
	im.line() // greeting
	im.cmd(fmt.Sprintf("LOGIN %q %q", user, pass))
	return im
}

func (im *imapSession) line() string {
	im.t.Helper()
	im.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	l, err := im.r.ReadString('\n')
	if err != nil {
		im.t.Fatalf("imap read: %v", err)
	}
	return l
}

// cmd sends a command and returns the untagged lines before its OK.
func (im *imapSession) cmd(c string) []string {
	im.t.Helper()
	im.n++
	tag := fmt.Sprintf("t%d", im.n)
	fmt.Fprintf(im.conn, "%s %s\r\n", tag, c)
	var untagged []string
	for {
		l := im.line()
		if strings.HasPrefix(l, tag+" ") {
			if !strings.HasPrefix(l, tag+" OK") {
				im.t.Fatalf("%s: %s", c, l)
			}
			return untagged
		}
		untagged = append(untagged, l)
	}
}

// waitFor reads lines until one matches, as an IDLE client does.
func (im *imapSession) waitFor(re *regexp.Regexp) string {
	im.t.Helper()
	for {
		if l := im.line(); re.MatchString(l) {
			return l
		}
	}
}

// TestTwoNodes runs two servers on one database: what happens on one is
// seen on the other at once, UIDs never collide, and POP3's maildrop lock
// holds across them.
func TestTwoNodes(t *testing.T) {
	t.Parallel()
	conf := postgresConfig(t, pgtest.Start(t))
	mustBuzon(t, "pw\n", "user", "add", "--config", conf, "ann@example.org")
	a := start(t, "", "--config", conf)
	b := start(t, "", "--config", conf)

	// IDLE on B hears of a delivery through A's LMTP and of a flag change
	// made on A.
	watcher := loginIMAP(t, b.ports["imap"], "ann@example.org", "pw")
	watcher.cmd("SELECT INBOX")
	fmt.Fprintf(watcher.conn, "idle IDLE\r\n")
	watcher.waitFor(regexp.MustCompile(`^\+`))
	host, port := a.hostPort("lmtp")
	python(t, "Subject: from node A\r\n\r\nhi\r\n", "lmtp_send.py", host, port, "x@example.net", "ann@example.org")
	watcher.waitFor(regexp.MustCompile(`^\* 1 EXISTS`))
	changer := loginIMAP(t, a.ports["imap"], "ann@example.org", "pw")
	changer.cmd("SELECT INBOX")
	changer.cmd(`STORE 1 +FLAGS (\Flagged)`)
	watcher.waitFor(regexp.MustCompile(`^\* 1 FETCH \(.*\\Flagged`))
	fmt.Fprintf(watcher.conn, "DONE\r\n")
	watcher.waitFor(regexp.MustCompile(`^idle OK`))

	// Appends through both nodes at once get distinct UIDs, all stored.
	const perNode = 40
	var wg sync.WaitGroup
	uids := make(chan string, 2*perNode)
	appendRE := regexp.MustCompile(`APPENDUID \d+ (\d+)`)
	for _, node := range []*instance{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", node.ports["imap"])
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			r := bufio.NewReader(c)
			r.ReadString('\n')
			fmt.Fprintf(c, "l LOGIN ann@example.org pw\r\n")
			r.ReadString('\n')
			for i := range perNode {
				msg := fmt.Sprintf("Subject: %s %d\r\n\r\nbody\r\n", node.ports["imap"], i)
				fmt.Fprintf(c, "a%d APPEND INBOX {%d+}\r\n%s\r\n", i, len(msg), msg)
				line, err := r.ReadString('\n')
				if err != nil {
					t.Error(err)
					return
				}
				m := appendRE.FindStringSubmatch(line)
				if m == nil {
					t.Errorf("APPEND through %s: %q", node.ports["imap"], line)
					return
				}
				uids <- m[1]
			}
		}()
	}
	wg.Wait()
	close(uids)
	var got []string
	for u := range uids {
		got = append(got, u)
	}
	slices.Sort(got)
	if n := len(slices.Compact(slices.Clone(got))); n != 2*perNode || len(got) != 2*perNode {
		t.Errorf("%d appends gave %d distinct UIDs", len(got), n)
	}
	status := strings.Join(changer.cmd("STATUS INBOX (MESSAGES)"), "")
	if want := fmt.Sprintf("MESSAGES %d", 2*perNode+1); !strings.Contains(status, want) {
		t.Errorf("STATUS after concurrent appends: %s, want %s", status, want)
	}

	// A POP3 session on A locks the maildrop against B.
	pa, err := net.Dial("tcp", a.ports["pop3"])
	if err != nil {
		t.Fatal(err)
	}
	defer pa.Close()
	ra := bufio.NewReader(pa)
	ra.ReadString('\n')
	fmt.Fprintf(pa, "USER ann@example.org\r\nPASS pw\r\n")
	ra.ReadString('\n')
	if l, _ := ra.ReadString('\n'); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("POP3 login on A: %q", l)
	}
	host, port = b.hostPort("pop3")
	if out := python(t, "", "pop3_stat.py", host, port, "ann@example.org", "pw", "plain", "expect-fail"); !strings.Contains(out, "[IN-USE]") {
		t.Errorf("POP3 on B while A holds the maildrop: %q", out)
	}
	fmt.Fprintf(pa, "QUIT\r\n")
	ra.ReadString('\n')
	if out := python(t, "", "pop3_stat.py", host, port, "ann@example.org", "pw", "plain"); !strings.HasPrefix(out, fmt.Sprint(2*perNode+1)) {
		t.Errorf("POP3 on B after A quit: %q", out)
	}
}

// TestDatabaseRestart restarts PostgreSQL under a stream of LMTP
// deliveries: replies during the outage are temporary failures, every
// message acknowledged with 250 is there afterwards, and the server
// recovers without a restart of its own.
func TestDatabaseRestart(t *testing.T) {
	t.Parallel()
	cluster, dsn := pgtest.NewCluster(t)
	conf := postgresConfig(t, dsn)
	mustBuzon(t, "pw\n", "user", "add", "--config", conf, "bea@example.org")
	in := start(t, "", "--config", conf)

	c, err := net.Dial("tcp", in.ports["lmtp"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	reply := func() string {
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("lmtp: %v", err)
			}
			if len(l) >= 4 && l[3] == ' ' {
				return l
			}
		}
	}
	reply()
	fmt.Fprintf(c, "LHLO test\r\n")
	reply()
	acked, temp := map[string]bool{}, 0
	deliver := func(i int) {
		subject := fmt.Sprintf("restart-%d", i)
		fmt.Fprintf(c, "MAIL FROM:<x@example.net>\r\n")
		if l := reply(); !strings.HasPrefix(l, "250") {
			t.Fatalf("MAIL: %q", l)
		}
		fmt.Fprintf(c, "RCPT TO:<bea@example.org>\r\n")
		if l := reply(); !strings.HasPrefix(l, "250") {
			// The recipient lookup needs the database too.
			if l[0] != '4' {
				t.Fatalf("RCPT during outage: %q, want a 4xx", l)
			}
			temp++
			fmt.Fprintf(c, "RSET\r\n")
			reply()
			return
		}
		fmt.Fprintf(c, "DATA\r\n")
		reply()
		fmt.Fprintf(c, "Subject: %s\r\n\r\nbody\r\n.\r\n", subject)
		switch l := reply(); l[0] {
		case '2':
			acked[subject] = true
		case '4':
			temp++
		default:
			t.Fatalf("DATA reply %q, want 2xx or 4xx", l)
		}
	}
	for i := range 20 {
		deliver(i)
	}
	cluster.Stop(t)
	for i := 20; i < 30; i++ {
		deliver(i)
	}
	cluster.Restart(t)
	// The pool reconnects by itself; keep delivering until it does.
	deadline := time.Now().Add(60 * time.Second)
	for i := 30; len(acked) < 40 && time.Now().Before(deadline); i++ {
		deliver(i)
	}
	if temp == 0 {
		t.Error("no temporary failure while the database was down")
	}
	if len(acked) < 40 {
		t.Fatalf("only %d deliveries acknowledged; the server did not recover", len(acked))
	}
	im := loginIMAP(t, in.ports["imap"], "bea@example.org", "pw")
	im.cmd("SELECT INBOX")
	lines := im.cmd("FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
	stored := map[string]int{}
	for _, l := range lines {
		if m := regexp.MustCompile(`^Subject: (restart-\d+)`).FindStringSubmatch(l); m != nil {
			stored[m[1]]++
		}
	}
	for s := range acked {
		if stored[s] != 1 {
			t.Errorf("acknowledged %s is stored %d times", s, stored[s])
		}
	}
}

// TestMigrateStore moves an embedded store into PostgreSQL and checks that
// POP3 UIDLs, IMAP UIDs, UIDVALIDITY and flags survive.
func TestMigrateStore(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Start(t)
	data := t.TempDir()
	mustBuzon(t, "pw\n", "user", "add", "--data", data, "cid@example.org")
	for i := range 5 {
		mustBuzon(t, fmt.Sprintf("Subject: m%d\n\nbody %d\n", i, i), "deliver", "--data", data, "cid@example.org")
	}
	before := start(t, data)
	im := loginIMAP(t, before.ports["imap"], "cid@example.org", "pw")
	im.cmd("SELECT INBOX")
	im.cmd(`STORE 2 +FLAGS (\Flagged $Work)`)
	im.cmd(`STORE 3 +FLAGS (\Deleted)`)
	im.cmd("EXPUNGE")
	want := snapshot(t, before)
	before.stop()

	out := mustBuzon(t, "", "migrate-store", "--from", data, "--to", dsn)
	if !strings.Contains(out, "copied 1 accounts") {
		t.Errorf("migrate-store said %q", out)
	}
	// Rerunning is harmless.
	mustBuzon(t, "", "migrate-store", "--from", data, "--to", dsn)
	after := start(t, "", "--config", postgresConfig(t, dsn))
	if got := snapshot(t, after); got != want {
		t.Errorf("after migration:\n%s\nbefore:\n%s", got, want)
	}
}

// snapshot describes what clients see: UIDVALIDITY, each message's UID,
// flags, size and save date, and the POP3 UIDL list.
func snapshot(t *testing.T, in *instance) string {
	t.Helper()
	im := loginIMAP(t, in.ports["imap"], "cid@example.org", "pw")
	var b strings.Builder
	for _, l := range im.cmd("SELECT INBOX") {
		if strings.Contains(l, "UIDVALIDITY") {
			b.WriteString(l)
		}
	}
	for _, l := range im.cmd("FETCH 1:* (UID FLAGS RFC822.SIZE SAVEDATE)") {
		b.WriteString(l)
	}
	im.cmd("LOGOUT")
	host, port := in.hostPort("pop3")
	b.WriteString(python(t, "", "pop3_uidl.py", host, port, "cid@example.org", "pw"))
	return b.String()
}
