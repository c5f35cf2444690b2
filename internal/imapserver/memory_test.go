package imapserver

import (
	"bufio"
	"bytes"
	"compress/flate"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/auth"
)

// waitParked waits until every connection of srv waits for its client
// holding no buffer and no compressor, and fails if that does not come.
func waitParked(t *testing.T, srv *Server, conns int) {
	t.Helper()
	waitWaiting(t, srv, conns, false)
}

// waitWaiting waits until every connection of srv waits for its client
// holding no buffer, and a compressor just when deflater is set, and
// fails if that does not come.
func waitWaiting(t *testing.T, srv *Server, conns int, deflater bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		srv.mu.Lock()
		waiting, holding := 0, 0
		for c := range srv.conns {
			if !c.waiting {
				continue
			}
			// c's goroutine set waiting after parking, and touches
			// neither reader nor writer until the client speaks.
			waiting++
			if c.w.bw != nil || (c.w.fw != nil) != deflater || c.r.br != nil {
				holding++
			}
		}
		srv.mu.Unlock()
		switch {
		case waiting == conns && holding == 0:
			return
		case time.Now().After(deadline):
			t.Fatalf("%d of %d connections waiting for their clients, %d of them holding buffers or, compressor wanted %v, not",
				waiting, conns, holding, deflater)
		}
		time.Sleep(time.Millisecond) // polling
	}
}

// TestCompressParks: a session with COMPRESS DEFLATE on gives its
// compressor back once quiet between commands, and in IDLE, and the
// compressors that take over, coming from other sessions too, carry the
// stream on: each client decodes what it is sent as one stream.
func TestCompressParks(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, func(c *Config) { c.deflateQuiet = time.Millisecond })
	body := strings.Repeat("all work and no play\n", 3000)
	e.deliver("INBOX", "Subject: one\n\n"+body)
	var fs []*flateConn
	for range 2 {
		c := e.login()
		c.mustOK("COMPRESS DEFLATE")
		_ = c.nc.SetDeadline(time.Now().Add(time.Minute))
		w, _ := flate.NewWriter(c.nc, flate.BestSpeed)
		fs = append(fs, &flateConn{w: w, br: bufio.NewReader(flate.NewReader(c.br))})
	}
	waitParked(t, e.srv, 2)
	tag := 0
	run := func(f *flateConn, cmd, want string) []string {
		t.Helper()
		tag++
		out := f.cmd(t, fmt.Sprintf("z%d", tag), cmd)
		if last := out[len(out)-1]; !strings.Contains(last, want) {
			t.Fatalf("%s: %q", cmd, last)
		}
		waitParked(t, e.srv, 2)
		return out
	}
	for round := range 3 {
		for i, f := range fs {
			if round == 0 {
				run(f, "SELECT INBOX", "OK [READ-WRITE]")
			}
			out := run(f, "FETCH 1 BODY.PEEK[TEXT]", "OK")
			if len(out) < 2 || out[1] != crlf(body) {
				t.Fatalf("round %d, session %d: FETCH over DEFLATE: %.100q", round, i, out)
			}
			run(f, "NOOP", "OK NOOP")
		}
	}

	// IDLE: parked while waiting, and a wake-up's EXISTS arrives.
	f := fs[0]
	if _, err := f.w.Write([]byte("i1 IDLE\r\n")); err != nil {
		t.Fatal(err)
	}
	f.w.Flush()
	if line, _ := f.br.ReadString('\n'); !strings.HasPrefix(line, "+ ") {
		t.Fatalf("IDLE: %q", line)
	}
	waitParked(t, e.srv, 2)
	e.deliver("INBOX", "Subject: two\n\nhi\n")
	if line, _ := f.br.ReadString('\n'); line != "* 2 EXISTS\r\n" {
		t.Fatalf("in IDLE: %q", line)
	}
	waitParked(t, e.srv, 2)
	f.w.Write([]byte("DONE\r\n"))
	f.w.Flush()
	if line, _ := f.br.ReadString('\n'); line != "i1 OK IDLE completed\r\n" {
		t.Fatalf("DONE: %q", line)
	}
	run(fs[1], "NOOP", "OK NOOP")
}

// serverGoroutine matches a goroutine dump's frame in the package's own
// code, not its tests.
var serverGoroutine = regexp.MustCompile(`/internal/imapserver/[a-z0-9]+\.go:`)

// serverGoroutines counts the goroutines running the package's code, and
// returns their dump.
func serverGoroutines() (int, string) {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var count int
	var dump strings.Builder
	for g := range bytes.SplitSeq(buf, []byte("\n\n")) {
		if serverGoroutine.Match(g) {
			count++
			dump.Write(g)
			dump.WriteString("\n\n")
		}
	}
	return count, dump.String()
}

// TestBurstLeavesNothing: after a burst of sessions of every kind (IDLE,
// COMPRESS, implicit TLS, STARTTLS, mid-command) ends, however each ends,
// the server is back where it started: no session, no IDLE watcher, no
// mailbox feed, no goroutine of its own. It stays serial: it counts the
// process's goroutines, and parallel tests' servers would add to them.
func TestBurstLeavesNothing(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.Sessions = auth.NewSessionLimiter(1000) })
	e.deliver("INBOX", "Subject: one\n\nhi\n")
	baseline, _ := serverGoroutines()

	const each = 6
	type session struct {
		c    *client
		idle bool
		f    *flateConn // set when compressed
	}
	var sessions []*session
	for i := range 5 * each {
		s := &session{}
		switch kind := i % 5; kind {
		case 0, 1: // plain, in IDLE
			s.c = e.login()
			s.idle = true
		case 2: // compressed, in IDLE
			s.c = e.login()
			s.c.mustOK("COMPRESS DEFLATE")
			w, _ := flate.NewWriter(s.c.nc, flate.BestSpeed)
			s.f = &flateConn{w: w, br: bufio.NewReader(flate.NewReader(s.c.br))}
			s.idle = true
		case 3: // implicit TLS, in IDLE
			nc, err := tls.Dial("tcp", e.tlsAddr, e.tls)
			if err != nil {
				t.Fatal(err)
			}
			s.c = &client{t: t, nc: nc, br: bufio.NewReader(nc)}
			t.Cleanup(func() { nc.Close() })
			s.c.readLine()
			s.c.mustOK("LOGIN " + testUser + " " + testPass)
			s.idle = true
		case 4: // STARTTLS, selected, not idling
			c := e.dial()
			c.mustOK("STARTTLS")
			tc := tls.Client(c.nc, e.tls)
			s.c = &client{t: t, nc: tc, br: bufio.NewReader(tc)}
			s.c.mustOK("LOGIN " + testUser + " " + testPass)
		}
		sessions = append(sessions, s)
	}
	for _, s := range sessions {
		cmd := func(c string) {
			if s.f != nil {
				s.f.cmd(t, "s", c)
			} else {
				s.c.mustOK(c)
			}
		}
		cmd("SELECT INBOX")
		if !s.idle {
			continue
		}
		s.c.deadline()
		if s.f != nil {
			s.f.w.Write([]byte("i IDLE\r\n"))
			s.f.w.Flush()
			if line, _ := s.f.br.ReadString('\n'); !strings.HasPrefix(line, "+ ") {
				t.Fatalf("IDLE: %q", line)
			}
		} else {
			s.c.idle("i")
		}
	}
	e.deliver("INBOX", "Subject: two\n\nhi\n")
	for i, s := range sessions {
		if !s.idle {
			continue
		}
		var line string
		if s.f != nil {
			line, _ = s.f.br.ReadString('\n')
		} else {
			line = s.c.readLine() + "\r\n"
		}
		if line != "* 2 EXISTS\r\n" {
			t.Fatalf("session %d in IDLE: %q", i, line)
		}
	}

	// Every way a session ends: hung up on in IDLE or between commands,
	// in the middle of a command, or logged out.
	for i, s := range sessions {
		switch {
		case i%3 == 0:
			s.c.nc.Close()
		case i%3 == 1 && s.f == nil:
			if s.idle {
				s.c.write("DONE\r\n")
			}
			s.c.write("x APPEND INBOX {100}\r\n") // and 10 bytes of 100
			s.c.write("Subject: ")
			s.c.nc.Close()
		case s.f == nil:
			if s.idle {
				s.c.write("DONE\r\n")
				s.c.readUntil("i")
			}
			s.c.mustOK("LOGOUT")
			s.c.nc.Close()
		default:
			s.f.w.Write([]byte("DONE\r\n"))
			s.f.w.Flush()
			s.f.br.ReadString('\n')
			s.f.cmd(t, "x", "LOGOUT")
			s.c.nc.Close()
		}
	}

	deadline := time.Now().Add(30 * time.Second)
	for {
		e.srv.mu.Lock()
		conns, idlers, feeds := len(e.srv.conns), len(e.srv.idlers), len(e.srv.feeds)
		e.srv.mu.Unlock()
		n, dump := serverGoroutines()
		if conns == 0 && idlers == 0 && feeds == 0 && n <= baseline {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after every session ended: %d sessions, %d accounts with idlers, %d feeds, %d goroutines (%d before):\n%s",
				conns, idlers, feeds, n, baseline, dump)
		}
		time.Sleep(10 * time.Millisecond) // polling
	}
}

// TestDeflaters: a compressor handed from one session to the next refers
// to nothing the first wrote (its output decodes on its own, as a client
// that never saw the first session's would), and at most
// maxParkedDeflaters are kept.
func TestDeflaters(t *testing.T) {
	t.Parallel()
	var d deflaters
	text := strings.Repeat("* 1 FETCH (FLAGS (\\Seen) UID 4711)\r\n", 100)
	var first, second bytes.Buffer
	fw := d.get(&first)
	fw.Write([]byte(text))
	fw.Flush()
	d.put(fw)
	fw = d.get(&second)
	fw.Write([]byte(text)) // all back references, had the first stayed
	fw.Flush()
	got, err := io.ReadAll(flate.NewReader(&second))
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) { // no final block: the stream goes on
		t.Fatal(err)
	}
	if string(got) != text {
		t.Fatalf("second session's output decodes to %.60q", got)
	}

	var held []*flate.Writer
	for range 2 * maxParkedDeflaters {
		held = append(held, d.get(io.Discard))
	}
	for _, fw := range held {
		d.put(fw)
	}
	if n := len(d.free); n != maxParkedDeflaters {
		t.Errorf("%d compressors kept, want %d", n, maxParkedDeflaters)
	}
}

// TestCompressKeepsWhileBusy: between the commands of a busy session the
// compressor stays, so that each answer may refer back to the ones before.
func TestCompressKeepsWhileBusy(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	c := e.login()
	c.mustOK("COMPRESS DEFLATE")
	_ = c.nc.SetDeadline(time.Now().Add(time.Minute))
	w, _ := flate.NewWriter(c.nc, flate.BestSpeed)
	f := &flateConn{w: w, br: bufio.NewReader(flate.NewReader(c.br))}
	for i := range 3 {
		if out := f.cmd(t, fmt.Sprintf("n%d", i), "NOOP"); out[len(out)-1] != fmt.Sprintf("n%d OK NOOP completed", i) {
			t.Fatalf("NOOP: %q", out)
		}
		waitWaiting(t, e.srv, 1, true)
	}
}
