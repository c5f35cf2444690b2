package imapserver

import (
	"bufio"
	"compress/flate"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/buzon-mail/buzon/internal/auth"
	"github.com/buzon-mail/buzon/internal/config"
)

// readUntilClosed reads lines until the server closes the connection and
// returns them.
func readUntilClosed(t *testing.T, nc net.Conn, br *bufio.Reader) []string {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	var lines []string
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("connection still open; read %q", lines)
			}
			return lines
		}
		lines = append(lines, strings.TrimRight(l, "\r\n"))
	}
}

func TestShutdown(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	waiting := e.login()
	idling := e.login()
	idling.mustOK("SELECT INBOX")
	idling.idle("i")
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		done <- e.srv.Shutdown(ctx)
	}()
	for _, c := range []*client{waiting, idling} {
		lines := readUntilClosed(t, c.nc, c.br)
		if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "* BYE") {
			t.Errorf("no BYE at shutdown: %q", lines)
		}
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if _, err := net.Dial("tcp", e.addr); err == nil {
		t.Errorf("listener still accepting after Shutdown")
	}
}

func TestTimeouts(t *testing.T) {
	t.Parallel()
	// Before login.
	e := newTestEnv(t, func(c *Config) { c.IMAP.LoginTimeout = config.Duration(300 * time.Millisecond) })
	c := e.dial()
	if lines := readUntilClosed(t, c.nc, c.br); len(lines) != 1 || !strings.HasPrefix(lines[0], "* BYE") {
		t.Errorf("login timeout: %q", lines)
	}
	// While idling.
	e = newTestEnv(t, func(c *Config) { c.IMAP.IdleTimeout = config.Duration(2 * time.Second) })
	c = e.login()
	c.mustOK("SELECT INBOX")
	c.idle("i")
	if lines := readUntilClosed(t, c.nc, c.br); len(lines) != 1 || !strings.HasPrefix(lines[0], "* BYE") {
		t.Errorf("IDLE timeout: %q", lines)
	}
}

// TestLoginDeadline: a client must log in within imap.login_timeout of
// connecting; commands that keep it busy meanwhile do not extend it.
func TestLoginDeadline(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, func(c *Config) { c.IMAP.LoginTimeout = config.Duration(time.Second) })
	c := e.dial()
	_ = c.nc.SetDeadline(time.Now().Add(30 * time.Second))
	var last string
	for i := 0; ; i++ {
		_, err := fmt.Fprintf(c.nc, "n%d NOOP\r\n", i)
		var l string
		if err == nil {
			l, err = c.br.ReadString('\n')
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("still connected after %d NOOPs; last answer %q", i, last)
		}
		if err != nil {
			break
		}
		if last = strings.TrimSpace(l); strings.HasPrefix(last, "* BYE") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.HasPrefix(last, "* BYE") {
		t.Errorf("disconnected before login after %q, want * BYE", last)
	}
}

// TestSlowCommand: a command that takes longer to arrive than the idle
// timeout, begun near its end, is read to its end as long as the client
// keeps sending: the idle timeout bounds the wait for a command and each
// pause within it, not the whole command counted from when the server
// began to wait. The cases run side by side, each on its own server,
// but not beside other tests: the first piece comes only half a second
// before the idle timeout, a margin other tests' load could eat.
func TestSlowCommand(t *testing.T) {
	msg := "Subject: slow\r\n\r\n" + strings.Repeat("0123456789abcde\n", 300)
	lit := "{" + itoa(uint32(len(msg))) + "+}\r\n" + msg
	// Five pauses outlast the idle timeout (2 s), and the first piece
	// comes 1.5 s into it, with room for a busy machine's late wake-ups.
	const pause = 500 * time.Millisecond
	// slowly writes s in five pieces with w, a pause before each.
	slowly := func(t *testing.T, w func(string) error, s string) {
		for i := range 5 {
			time.Sleep(pause)
			if err := w(s[i*len(s)/5 : (i+1)*len(s)/5]); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, c *client) (tagged string)
	}{
		{"synchronising literal", func(t *testing.T, c *client) string {
			c.write("a APPEND INBOX {" + itoa(uint32(len(msg))) + "}\r\n")
			if l := c.readLine(); !strings.HasPrefix(l, "+") {
				t.Fatalf("APPEND: %q, want a continuation", l)
			}
			slowly(t, c.writeErr, msg+"\r\n")
			_, tagged := c.readUntil("a")
			return tagged
		}},
		{"non-synchronising literal", func(t *testing.T, c *client) string {
			slowly(t, c.writeErr, "a APPEND INBOX "+lit+"\r\n")
			_, tagged := c.readUntil("a")
			return tagged
		}},
		{"MULTIAPPEND", func(t *testing.T, c *client) string {
			slowly(t, c.writeErr, "a APPEND INBOX "+lit+" (\\Seen) "+lit+" "+lit+"\r\n")
			_, tagged := c.readUntil("a")
			return tagged
		}},
		{"over COMPRESS", func(t *testing.T, c *client) string {
			// The inflater keeps the deadlines here.
			c.mustOK("COMPRESS DEFLATE")
			_ = c.nc.SetDeadline(time.Now().Add(30 * time.Second))
			w, _ := flate.NewWriter(c.nc, flate.DefaultCompression)
			slowly(t, func(s string) error {
				if _, err := io.WriteString(w, s); err != nil {
					return err
				}
				return w.Flush()
			}, "a APPEND INBOX "+lit+"\r\n")
			l, err := bufio.NewReader(flate.NewReader(c.br)).ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimSpace(l)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, func(c *Config) { c.IMAP.IdleTimeout = config.Duration(4 * pause) })
			c := e.login()
			time.Sleep(2 * pause) // well into the idle timeout
			if tagged := tc.run(t, c); !strings.HasPrefix(tagged, "a OK") {
				t.Errorf("%q, want OK", tagged)
			}
		})
	}
}

// TestCommandStall: a client that stops in the middle of a command (a
// synchronising literal it was asked for and does not send) is logged
// out with a BYE (RFC 9051 5.4), as an idle one is.
func TestCommandStall(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"a APPEND INBOX {5000}", "a SELECT {5}", "a APPEND INBOX {5000+}\r\nSubject: x"} {
		t.Run(cmd, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, func(c *Config) { c.IMAP.IdleTimeout = config.Duration(time.Second) })
			c := e.login()
			c.write(cmd + "\r\n")
			lines := readUntilClosed(t, c.nc, c.br)
			if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "* BYE") {
				t.Errorf("then nothing: %q, want * BYE at the end", lines)
			}
		})
	}
}

func TestSessionLimit(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, func(c *Config) { c.Sessions = auth.NewSessionLimiter(1) })
	first := e.login()
	second := e.dial()
	if _, tagged := second.cmd("LOGIN " + testUser + " " + testPass); !strings.Contains(tagged, "NO [UNAVAILABLE]") {
		t.Errorf("second session: %s", tagged)
	}
	first.mustOK("LOGOUT")
	readUntilClosed(t, first.nc, first.br)
	// The slot is free once the first session has ended.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, tagged := second.cmd("LOGIN " + testUser + " " + testPass)
		if strings.Contains(tagged, " OK") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot never freed: %s", tagged)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSlowReader: a client that sends commands but never reads cannot
// hold the server: the write deadline passes and the connection is closed.
func TestSlowReader(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, func(c *Config) { c.WriteTimeout = 300 * time.Millisecond })
	e.deliver("INBOX", "Subject: big\n\n"+strings.Repeat("0123456789abcdef\n", 200000))
	c := e.login()
	c.mustOK("SELECT INBOX")
	for i := range 20 {
		c.write(fmt.Sprintf("f%d FETCH 1 BODY.PEEK[]\r\n", i))
	}
	e.waitDisconnected(t)
}

func TestStartTLS(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	c := e.dial()
	c.mustOK("STARTTLS")
	tc := tls.Client(c.nc, e.tls)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.nc, c.br = tc, bufio.NewReader(tc)
	out := c.mustOK("CAPABILITY")
	if strings.Contains(out[0], "STARTTLS") || !strings.Contains(out[0], "AUTH=PLAIN") {
		t.Errorf("capabilities after STARTTLS: %s", out[0])
	}
	if _, tagged := c.cmd("STARTTLS"); !strings.Contains(tagged, "BAD") {
		t.Errorf("second STARTTLS: %s", tagged)
	}
	c.mustOK("LOGIN " + testUser + " " + testPass)

	// Commands pipelined behind STARTTLS are not taken as sent over TLS.
	d := e.dial()
	d.write("s1 STARTTLS\r\ns2 LOGIN " + testUser + " " + testPass + "\r\n")
	lines := readUntilClosed(t, d.nc, d.br)
	for _, l := range lines {
		if strings.HasPrefix(l, "s2 ") {
			t.Errorf("pipelined command after STARTTLS was run: %q", lines)
		}
	}
}

func TestIMAPS(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	c, err := imapclient.DialTLS(e.tlsAddr, &imapclient.Options{TLSConfig: e.tls})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Caps().Has("STARTTLS") || c.Caps().Has("LOGINDISABLED") {
		t.Errorf("IMAPS capabilities: %v", c.Caps())
	}
	if err := c.Login(testUser, testPass).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestLoginDisabled serves a connection whose peer is not on loopback
// (a pipe has no address): passwords are refused until TLS, and LOGIN
// does not ask for them in a synchronising literal first.
func TestLoginDisabled(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	server, cl := net.Pipe()
	defer cl.Close()
	sc := e.srv.newConn(server, false)
	go sc.serve()
	br := bufio.NewReader(cl)
	_ = cl.SetDeadline(time.Now().Add(30 * time.Second))
	greeting, err := br.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(greeting, "LOGINDISABLED") || strings.Contains(greeting, "AUTH=PLAIN") ||
		!strings.Contains(greeting, "AUTH=SCRAM-SHA-256") || !strings.Contains(greeting, "STARTTLS") {
		t.Errorf("greeting: %s", greeting)
	}
	for _, cmd := range []string{
		"a LOGIN " + testUser + " " + testPass,
		"b AUTHENTICATE PLAIN AHVzZXJAZXhhbXBsZS5vcmcAc2VjcmV0",
		"c LOGIN {16}",
		"d LOGIN " + testUser + " {6}",
		"e LOGIN {16+}\r\n" + testUser + " {6+}\r\n" + testPass, // read and dropped
		"f NOOP", // not PRIVACYREQUIRED: a check that the literals were skipped
	} {
		fmt.Fprintf(cl, "%s\r\n", cmd)
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if want := "NO [PRIVACYREQUIRED]"; strings.HasPrefix(cmd, "f ") && !strings.HasPrefix(l, "f OK") ||
			!strings.HasPrefix(cmd, "f ") && !strings.Contains(l, want) {
			t.Errorf("%q: %s", cmd, l)
		}
	}
	fmt.Fprintf(cl, "c LOGOUT\r\n")
	readUntilClosed(t, cl, br)
}

// TestAbsurdLine: a line far beyond any limit ends the session; one just
// over the limit is answered with BAD and the session goes on.
func TestAbsurdLine(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, func(c *Config) { c.Limits.MaxLineLength = 1000 })
	c := e.login()
	if _, tagged := c.cmd("NOOP " + strings.Repeat("x", 2000)); !strings.Contains(tagged, "BAD") {
		t.Errorf("long line: %s", tagged)
	}
	c.mustOK("NOOP")
	go func() {
		chunk := []byte(strings.Repeat("y", 64*1024))
		for range 40 {
			if _, err := c.nc.Write(chunk); err != nil {
				return
			}
		}
	}()
	lines := readUntilClosed(t, c.nc, c.br)
	if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "* BYE") {
		t.Errorf("absurd line: %q", lines)
	}
}

// waitDisconnected waits until the server holds no connection, failing
// the test if one is still held a minute later.
func (e *testEnv) waitDisconnected(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		e.srv.mu.Lock()
		n := len(e.srv.conns)
		e.srv.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server still holds %d connections a minute later", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
