package imapserver

import (
	"bufio"
	"compress/flate"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/config"
)

// keepaliveEnv is a server whose sessions in IDLE say they are still there
// as often as they can.
func keepaliveEnv(t *testing.T) *testEnv {
	return newTestEnv(t, func(c *Config) { c.IMAP.IdleKeepalive = config.Duration(time.Millisecond) })
}

// A session in IDLE hears "* OK Still here" while nothing happens, so NAT
// gateways keep the connection; updates and DONE work between them.
func TestIdleKeepalive(t *testing.T) {
	t.Parallel()
	e := keepaliveEnv(t)
	e.deliver("INBOX", "Subject: one\n\nbody\n")
	c := e.login()
	c.mustOK("SELECT INBOX")
	c.write("i1 IDLE\r\n")
	if l := c.readLine(); l != "+ idling" {
		t.Fatalf("IDLE: %q", l)
	}
	for range 2 {
		if l := c.readLine(); l != "* OK Still here" {
			t.Fatalf("IDLE with nothing happening: %q, want * OK Still here", l)
		}
	}
	e.deliver("INBOX", "Subject: two\n\nbody\n")
	for {
		l := c.readLine()
		if l == "* 2 EXISTS" {
			break
		}
		if l != "* OK Still here" {
			t.Fatalf("IDLE waiting for * 2 EXISTS: %q", l)
		}
	}
	c.write("DONE\r\n")
	untagged, tagged := c.readUntil("i1")
	for _, l := range untagged {
		if l != "* OK Still here" {
			t.Errorf("IDLE after DONE: %q", l)
		}
	}
	if tagged != "i1 OK IDLE completed" {
		t.Errorf("DONE: %q", tagged)
	}
	c.mustOK("NOOP")
}

// Over COMPRESS the keepalives go through the compressed stream, and the
// read deadlines they take do not break it.
func TestIdleKeepaliveCompressed(t *testing.T) {
	t.Parallel()
	e := keepaliveEnv(t)
	c := e.login()
	c.mustOK("SELECT INBOX")
	c.mustOK("COMPRESS DEFLATE")
	_ = c.nc.SetDeadline(time.Now().Add(30 * time.Second))
	w, _ := flate.NewWriter(c.nc, flate.DefaultCompression)
	br := bufio.NewReader(flate.NewReader(c.br))
	send := func(s string) {
		t.Helper()
		if _, err := io.WriteString(w, s); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	read := func() string {
		t.Helper()
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return strings.TrimSuffix(l, "\r\n")
	}
	send("z1 IDLE\r\n")
	if l := read(); l != "+ idling" {
		t.Fatalf("IDLE: %q", l)
	}
	for range 3 {
		if l := read(); l != "* OK Still here" {
			t.Fatalf("IDLE over DEFLATE: %q, want * OK Still here", l)
		}
	}
	send("DONE\r\n")
	for {
		l := read()
		if l == "z1 OK IDLE completed" {
			break
		}
		if l != "* OK Still here" {
			t.Fatalf("IDLE over DEFLATE after DONE: %q", l)
		}
	}
	send("z2 NOOP\r\n")
	if l := read(); l != "z2 OK NOOP completed" {
		t.Fatalf("NOOP after IDLE over DEFLATE: %q", l)
	}
}
