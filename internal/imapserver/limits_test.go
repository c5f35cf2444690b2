package imapserver

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/store/teststore"
)

// flood writes chunk over and over until limit bytes are sent or a write
// fails, and returns how many bytes went out.
func flood(nc net.Conn, chunk []byte, limit int64) int64 {
	var sent int64
	for sent < limit {
		_ = nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		n, err := nc.Write(chunk)
		sent += int64(n)
		if err != nil {
			break
		}
	}
	return sent
}

// readAll reads what the server says until it closes the connection,
// which it must do within a generous deadline.
func readAll(t *testing.T, nc net.Conn, br *bufio.Reader) []string {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	var lines []string
	for {
		l, err := br.ReadString('\n')
		if l != "" {
			lines = append(lines, strings.TrimRight(l, "\r\n"))
		}
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("connection still open; read %q", lines)
			}
			return lines
		}
	}
}

// TestUnskippableLiteral: a non-synchronising literal too big to read and
// drop (RFC 7888 4) is answered BAD [TOOBIG], or the command's own
// refusal, then BYE [TOOBIG], and the connection closes while the client
// is still sending, without the server reading the literal. A smaller one
// over the limit is read and dropped, and a synchronising one is refused
// without a continuation: the session goes on.
func TestUnskippableLiteral(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, func(c *Config) {
		c.Limits.MaxLiteral = 4096
		c.Limits.MaxMessageSize = 64 << 10
		c.Limits.MaxLineLength = 1024 // lines and literals past 1 MiB are not skipped
	})
	const huge = "{2147483648+}"
	for _, tc := range []struct {
		name, cmd string
		login     bool
		tagged    string // the start of the tagged answer
	}{
		{"APPEND", "x APPEND INBOX " + huge, true, "x BAD [TOOBIG]"},
		{"MULTIAPPEND", "x APPEND INBOX {3+}\r\nabc " + huge, true, "x BAD [TOOBIG]"},
		{"SELECT", "x SELECT " + huge, true, "x BAD [TOOBIG]"},
		{"LOGIN", "x LOGIN " + huge, false, "x BAD [TOOBIG]"},
		{"APPEND to no mailbox", "x APPEND Nowhere " + huge, true, "x NO [TRYCREATE]"},
		{"after a syntax error", "x FROB " + huge, true, "x BAD "},
		{"after a line too long", "x NOOP " + strings.Repeat("w", 2000) + " " + huge, true, "x BAD [TOOBIG]"},
		{"not allowed before login", "x SELECT " + huge, false, "x BAD "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.dial()
			if tc.login {
				c.mustOK("LOGIN " + testUser + " " + testPass)
			}
			c.write(tc.cmd + "\r\n")
			sent := make(chan int64, 1)
			go func() { sent <- flood(c.nc, []byte(strings.Repeat("y", 64<<10)), 256<<20) }()
			lines := readAll(t, c.nc, c.br)
			if n := <-sent; n >= 256<<20 {
				t.Errorf("the server read all %d bytes sent", n)
			}
			if len(lines) < 2 || !strings.HasPrefix(lines[len(lines)-2], tc.tagged) ||
				!strings.HasPrefix(lines[len(lines)-1], "* BYE [TOOBIG]") {
				t.Errorf("answer before closing: %q, want %q and then BYE [TOOBIG]", lines, tc.tagged)
			}
		})
	}

	t.Run("skippable", func(t *testing.T) {
		c := e.login()
		for _, cmd := range []string{
			"SELECT {5000+}\r\n" + strings.Repeat("z", 5000),
			"APPEND INBOX {70000+}\r\n" + strings.Repeat("z", 70000),
			"SELECT {2147483648}", // synchronising: never sent
			"APPEND INBOX {2147483648}",
		} {
			if _, tagged := c.cmd(cmd); !strings.Contains(tagged, " NO [TOOBIG]") {
				t.Errorf("%.30q: %q, want NO [TOOBIG]", cmd, tagged)
			}
		}
		c.mustOK("NOOP")
	})
}

// testFlood is the flood time (limit.Flood in service) of the tests that
// flood: long enough to tell a flood from a burst at their rates, and
// short, since each of them lasts it.
const testFlood = 2 * time.Second

// TestCommandFlood: a client that pipelines commands that achieve nothing
// (NOOP, ID) without end is served at limits.commands_per_second for
// the flood time (limit.Flood, here testFlood), then told BYE and
// disconnected; others are served meanwhile. The rate limit is the
// same on any store: the embedded one only.
func TestCommandFlood(t *testing.T) {
	t.Parallel()
	teststore.EmbeddedOnly(t)
	e := newTestEnv(t, func(c *Config) { c.Limits.CommandsPerSecond, c.flood = 50, testFlood })
	floods := []struct {
		cmd     string
		answers []string // what each command gets, in turn
	}{
		{"a NOOP", []string{"a OK NOOP completed"}},
		{`a ID ("name" "flood")`, []string{`* ID ("name" "buzon" "vendor" "buzon")`, "a OK ID completed"}},
	}
	var clients []*client
	for _, f := range floods {
		c := e.dial()
		go flood(c.nc, []byte(strings.Repeat(f.cmd+"\r\n", 100)), 1<<30)
		clients = append(clients, c)
	}
	other := e.login()
	other.mustOK("SELECT INBOX")
	for i, f := range floods {
		c := clients[i]
		lines := readAll(t, c.nc, c.br)
		if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "* BYE ") {
			t.Fatalf("%s: flooding client closed without BYE; last lines %q", f.cmd, lines[max(0, len(lines)-3):])
		}
		for j, l := range lines[:len(lines)-1] {
			if want := f.answers[j%len(f.answers)]; l != want {
				t.Errorf("%s: flooding client got %q, want %q", f.cmd, l, want)
				break
			}
		}
	}
	other.mustOK("NOOP")
}

// TestLongPipeline: a client that pipelines more useful commands than its
// rate lets through in the flood time (mbsync fetching a large folder,
// one UID FETCH per message) is slowed down, not cut off. On the embedded
// store only, as TestCommandFlood.
func TestLongPipeline(t *testing.T) {
	t.Parallel()
	teststore.EmbeddedOnly(t)
	const rate = 200
	n := rate * (2 + int(testFlood/time.Second) + 2)
	e := newTestEnv(t, func(c *Config) { c.Limits.CommandsPerSecond, c.flood = rate, testFlood })
	c := e.login()
	const cmd = "a STATUS INBOX (MESSAGES)\r\n"
	go flood(c.nc, []byte(strings.Repeat(cmd, n)), int64(n*len(cmd)))
	_ = c.nc.SetReadDeadline(time.Now().Add(2 * time.Minute))
	for i := range 2 * n {
		want := "* STATUS \"INBOX\" (MESSAGES 0)\r\n"
		if i%2 == 1 {
			want = "a OK STATUS completed\r\n"
		}
		if l, err := c.br.ReadString('\n'); err != nil || l != want {
			t.Fatalf("line %d of the answers to %d commands: %q %v, want %q", i+1, n, l, err, want)
		}
	}
	c.mustOK("NOOP")
}

// TestStalledReaderDisconnected: a client that asks for a lot and reads
// nothing is disconnected once a write has blocked for the write timeout,
// which by default is the idle timeout (at most 2 minutes); the socket is
// reset, so the kernel does not keep trying to deliver what it was owed.
func TestStalledReaderDisconnected(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, func(c *Config) { c.IMAP.IdleTimeout = config.Duration(time.Second) })
	e.deliver("INBOX", "Subject: big\n\n"+strings.Repeat("0123456789abcdef\n", 200000))
	c := e.login()
	c.mustOK("SELECT INBOX")
	c.write(strings.Repeat("f FETCH 1 BODY.PEEK[]\r\n", 20))
	e.waitDisconnected(t)
	// What the client reads now ends in a reset, not the end of the
	// stream a clean close would give after the data owed.
	_ = c.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.Copy(io.Discard, c.nc); err == nil {
		t.Errorf("connection closed cleanly behind a client that does not read; want a reset")
	}
}

// TestWriteTimeoutDefault: the write timeout is the IMAP idle timeout, at
// most 2 minutes, unless set.
func TestWriteTimeoutDefault(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		idle, set, want time.Duration
	}{
		{0, 0, 2 * time.Minute}, // the default idle timeout is 30 minutes
		{5 * time.Second, 0, 5 * time.Second},
		{time.Hour, 0, 2 * time.Minute},
		{5 * time.Second, time.Minute, time.Minute},
	} {
		s := New(Config{IMAP: config.IMAP{IdleTimeout: config.Duration(tc.idle)}, WriteTimeout: tc.set})
		if got := s.cfg.WriteTimeout; got != tc.want {
			t.Errorf("idle timeout %v, WriteTimeout %v: write timeout %v, want %v", tc.idle, tc.set, got, tc.want)
		}
	}
}

// TestMailboxLimitsZero: max_mailbox_name_length = 0 leaves only the
// store's own limit on names, as the configuration documents.
func TestMailboxLimitsZero(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, func(c *Config) {
		c.Limits.MaxMailboxes = 0
		c.Limits.MaxMailboxNameLength = 0
	})
	c := e.login()
	// Past the default limit, in levels short enough for the store.
	level := strings.Repeat("n", 100)
	long := strings.Repeat(level+"/", config.Default().Limits.MaxMailboxNameLength/100) + level
	c.mustOK("CREATE " + long)
	if _, tagged := c.cmd("CREATE " + strings.Repeat("n", 5000)); !strings.Contains(tagged, "NO") {
		t.Errorf("CREATE of a 5000-byte name: %q, want NO from the store's limit", tagged)
	}
	c.mustOK("CREATE two")
}

// TestFailedAppendSkipped: an APPEND refused before or after its
// non-synchronising message literals (RFC 7888) of up to APPENDLIMIT,
// past the bound other literals are skipped to, has them read and
// dropped: the client hears NO [TRYCREATE] (or its refusal), can create
// the folder and retry, and the session goes on. Past APPENDLIMIT the
// server stops reading and closes, as for any literal it will not skip.
func TestFailedAppendSkipped(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, func(c *Config) {
		c.Limits.MaxMessageSize = 4 << 20
		c.Limits.MaxLineLength = 1024 // other literals past 1 MiB are not skipped
	})
	big := 2 << 20
	msg := "Subject: big\r\n\r\n" + strings.Repeat("0123456789abcde\n", big/16-1)
	lit := "{" + itoa(uint32(len(msg))) + "+}\r\n" + msg
	for _, tc := range []struct {
		name, cmd, tagged string
	}{
		{"no mailbox", "APPEND Nowhere " + lit, "NO [TRYCREATE]"},
		{"no mailbox, MULTIAPPEND", "APPEND Nowhere " + lit + " (\\Seen) " + lit, "NO [TRYCREATE]"},
		{"bad flag", "APPEND INBOX (\\Bogus) " + lit, "NO [CANNOT]"},
		{"bad date", `APPEND INBOX "31-Foo-2024 00:00:00 +0000" ` + lit, "BAD"},
		{"bad second date", `APPEND INBOX ` + lit + ` "31-Foo-2024 00:00:00 +0000" ` + lit, "BAD"},
	} {
		c := e.login()
		if _, tagged := c.cmd(tc.cmd); !strings.Contains(tagged, " "+tc.tagged) {
			t.Errorf("%s: %q, want %s", tc.name, tagged, tc.tagged)
		}
		c.mustOK("NOOP")
	}

	c := e.login()
	c.write("x APPEND Nowhere {" + itoa(5<<20) + "+}\r\n")
	go flood(c.nc, []byte(strings.Repeat("y", 64<<10)), 256<<20)
	lines := readAll(t, c.nc, c.br)
	if len(lines) < 2 || !strings.HasPrefix(lines[len(lines)-2], "x NO [TRYCREATE]") ||
		!strings.HasPrefix(lines[len(lines)-1], "* BYE [TOOBIG]") {
		t.Errorf("APPEND past APPENDLIMIT to no mailbox: %q, want NO [TRYCREATE] and BYE [TOOBIG]", lines)
	}

	sess := e.session()
	mb, err := sess.Mailbox(context.Background(), "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := sess.Status(context.Background(), mb.ID); err != nil || st.Messages != 0 {
		t.Errorf("INBOX holds %d messages after refused APPENDs (%v), want 0", st.Messages, err)
	}
}

// TestTrickledCommand: a client that sends a command a byte at a time,
// each byte within the idle timeout, is still logged out: each line and
// literal of a command must arrive at a minimum pace, not only without
// long pauses.
func TestTrickledCommand(t *testing.T) {
	t.Parallel()
	for _, start := range []string{"a NOOP ", "a SELECT {2000}\r\n", "a APPEND INBOX {2000+}\r\n"} {
		t.Run(start, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, func(c *Config) { c.IMAP.IdleTimeout = config.Duration(time.Second) })
			c := e.login()
			c.write(start)
			if strings.Contains(start, "{2000}") {
				if l := c.readLine(); !strings.HasPrefix(l, "+") {
					t.Fatalf("%q, want a continuation", l)
				}
			}
			stop := make(chan struct{})
			go func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(200 * time.Millisecond):
					}
					if _, err := c.nc.Write([]byte("x")); err != nil {
						return
					}
				}
			}()
			lines := readAll(t, c.nc, c.br)
			close(stop)
			if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "* BYE") {
				t.Errorf("trickled: %q, want * BYE at the end", lines)
			}
		})
	}
}
