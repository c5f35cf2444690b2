package main

// Graceful shutdown under load. See SECURITY.md.

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// outcome is what a client was told about one message.
type outcome int

const (
	acked   outcome = iota // 2xx, APPEND OK: must be stored
	refused                // 4xx, NO: must not be stored
	unknown                // the connection ended first: either way, but whole
)

// loadLedger records every message sent and what its sender heard.
type loadLedger struct {
	mu      sync.Mutex
	sent    map[string][]byte  // Message-ID -> message
	heard   map[string]outcome // Message-ID -> outcome
	answers []string           // unexpected answers: failures
	// refusals counts the temporary refusals by their text.
	refusals map[string]int
}

func (l *loadLedger) send(id string, msg []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent[id] = msg
	l.heard[id] = unknown
}

func (l *loadLedger) hear(id string, o outcome, answer string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.heard[id] = o
	if o == refused {
		l.refusals[answer]++
	}
}

func (l *loadLedger) unexpected(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.answers = append(l.answers, fmt.Sprintf(format, args...))
}

func (l *loadLedger) count(o outcome) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, h := range l.heard {
		if h == o {
			n++
		}
	}
	return n
}

// TestShutdownUnderLoad sends SIGTERM while clients deliver over LMTP and
// append over IMAP without pause, reconnecting when a connection ends.
// Every message is acknowledged (then it must survive the restart byte for
// byte), refused with a temporary error (then it must not be stored), or
// cut off by the connection closing (then it is stored whole or not at
// all); no message is stored twice or truncated; no client hears a
// permanent error or a server bug; the server exits cleanly within its
// grace period; `buzon check` finds nothing wrong.
func TestShutdownUnderLoad(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	const user, pass = "load@example.org", "load-pw"
	addUser(t, data, user, pass)
	// A grace period far beyond the test's patience: a server that waits
	// it out instead of ending sessions after their work in flight fails
	// the wait for its exit below.
	conf := filepath.Join(t.TempDir(), "buzon.toml")
	if err := os.WriteFile(conf, []byte("shutdown_grace = \"1h\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	in := start(t, data, "--config", conf)
	ledger := &loadLedger{sent: map[string][]byte{}, heard: map[string]outcome{}, refusals: map[string]int{}}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(2)
		go func() { defer wg.Done(); lmtpLoad(in, ledger, user, fmt.Sprintf("lmtp%d", w)) }()
		go func() { defer wg.Done(); appendLoad(t, in, ledger, user, pass, fmt.Sprintf("imap%d", w)) }()
	}
	// SIGTERM at a random moment once load is flowing.
	time.Sleep(time.Duration(800+rng.IntN(700)) * time.Millisecond) // when to stop is the random part; not an assertion
	if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-in.exited:
	case <-time.After(2 * time.Minute):
		t.Fatal("buzon serve still running 2 minutes after SIGTERM: it is waiting out its grace period instead of ending sessions once their work in flight is done")
	}
	if in.exitErr != nil {
		t.Errorf("buzon serve exited with %v:\n%s", in.exitErr, in.logs())
	}
	wg.Wait()
	t.Logf("after SIGTERM: %d messages acknowledged, %d refused, %d cut off",
		ledger.count(acked), ledger.count(refused), ledger.count(unknown))
	t.Logf("temporary refusals: %v", ledger.refusals)
	for _, a := range ledger.answers {
		t.Errorf("a client heard %s", a)
	}
	if ledger.count(acked) == 0 {
		t.Fatal("nothing was acknowledged: the load never flowed")
	}

	// After a restart, every acknowledged message is there, whole, once.
	again := start(t, data)
	stored := map[string]int{}
	for _, m := range fetchAll(t, again.ports["imap"], user, pass, "INBOX") {
		match := messageIDRE.FindSubmatch(m)
		if match == nil {
			t.Errorf("a stored message has no Message-ID: %.200q", m)
			continue
		}
		id := string(match[1])
		stored[id]++
		switch sent, ok := ledger.sent[id]; {
		case !ok:
			t.Errorf("message %s was never sent", id)
		case !bytes.Equal(m, sent):
			t.Errorf("message %s is stored as %d bytes, not the %d sent: truncated or damaged", id, len(m), len(sent))
		case stored[id] == 2:
			t.Errorf("message %s is stored twice", id)
		case ledger.heard[id] == refused:
			t.Errorf("message %s was refused, yet stored", id)
		}
	}
	for id, o := range ledger.heard {
		if o == acked && stored[id] == 0 {
			t.Errorf("acknowledged message %s is missing after the restart", id)
		}
	}
	again.stop()
	if out, _, code := buzon(t, "", "check", "--data", data); code != 0 || !strings.Contains(out, "no problems") {
		t.Errorf("buzon check after a shutdown under load: exit %d\n%s", code, out)
	}
}

// lmtpLoad delivers over LMTP, one message per transaction, reconnecting
// until the server no longer accepts connections.
func lmtpLoad(in *instance, l *loadLedger, user, name string) {
	for n := 0; ; {
		c, err := net.DialTimeout("tcp", in.ports["lmtp"], 5*time.Second)
		if err != nil {
			return
		}
		lc := &lmtpConn{c: c, r: bufio.NewReader(c)}
		if r, err := lc.reply(); err != nil || !strings.HasPrefix(r, "220") {
			c.Close()
			if err == nil && !strings.HasPrefix(r, "421") {
				l.unexpected("LMTP greeting %q", r)
			}
			return
		}
		if r, err := lc.cmd("LHLO load.test"); err != nil || !strings.HasPrefix(r, "250") {
			c.Close()
			if err == nil && !strings.HasPrefix(r, "421") {
				l.unexpected("LHLO: %q", r)
			}
			return
		}
		for {
			// An MTA's pace, not a flood: the server keeps LMTP
			// sessions through its grace period, and every message is
			// read back afterwards.
			time.Sleep(10 * time.Millisecond)
			n++
			id := fmt.Sprintf("%s-%d@shutdown.test", name, n)
			msg := testMessage(id, 3000+n%7*1000)
			l.send(id, msg)
			r, err := lc.deliver(user, msg)
			if err != nil {
				break // cut off: unknown
			}
			switch {
			case strings.HasPrefix(r, "250"):
				l.hear(id, acked, r)
			case strings.HasPrefix(r, "4"):
				l.hear(id, refused, r)
			default:
				l.hear(id, refused, r)
				l.unexpected("LMTP %q for %s", r, id)
			}
			if strings.HasPrefix(r, "421") {
				break
			}
		}
		c.Close()
	}
}

// appendLoad appends over IMAP, reconnecting until the server no longer
// accepts connections.
func appendLoad(t *testing.T, in *instance, l *loadLedger, user, pass, name string) {
	for n := 0; ; {
		c, err := net.DialTimeout("tcp", in.ports["imap"], 5*time.Second)
		if err != nil {
			return
		}
		ic := &rawIMAP{t: t, c: c, r: bufio.NewReader(c)}
		greeting, err := ic.readResp()
		if err != nil || !strings.HasPrefix(greeting, "* OK") {
			c.Close()
			if err == nil && !strings.HasPrefix(greeting, "* BYE") {
				l.unexpected("IMAP greeting %q", greeting)
			}
			return
		}
		if !appendSession(ic, l, user, pass, name, &n) {
			c.Close()
			return
		}
		c.Close()
	}
}

// appendSession logs in and appends until the connection ends. It reports
// whether it got as far as logging in.
func appendSession(ic *rawIMAP, l *loadLedger, user, pass, name string, n *int) bool {
	write := func(s string) error {
		ic.c.SetWriteDeadline(time.Now().Add(30 * time.Second))
		_, err := ic.c.Write([]byte(s))
		return err
	}
	// read returns the tagged response to tag, or "" when the connection
	// ends first; continuation requests come back as "+".
	read := func(tag string) string {
		for {
			line, err := ic.readResp()
			switch {
			case err != nil:
				return ""
			case strings.HasPrefix(line, tag+" "):
				return strings.TrimPrefix(line, tag+" ")
			case strings.HasPrefix(line, "+"):
				return "+"
			}
		}
	}
	if write(fmt.Sprintf("l LOGIN %s %s\r\n", user, pass)) != nil {
		return false
	}
	if r := read("l"); !strings.HasPrefix(r, "OK") {
		if r != "" {
			l.unexpected("IMAP LOGIN %q", r)
		}
		return false
	}
	for {
		*n++
		id := fmt.Sprintf("%s-%d@shutdown.test", name, *n)
		msg := testMessage(id, 3000+*n%7*1000)
		l.send(id, msg)
		if write(fmt.Sprintf("a APPEND INBOX {%d}\r\n", len(msg))) != nil {
			return true
		}
		switch r := read("a"); {
		case r == "":
			return true
		case r == "+":
		default:
			l.hear(id, refused, r)
			if !strings.HasPrefix(r, "NO") || respCode(r) == "SERVERBUG" {
				l.unexpected("IMAP APPEND (before the message) %q for %s", r, id)
			}
			continue
		}
		if write(string(msg)+"\r\n") != nil {
			return true
		}
		switch r := read("a"); {
		case r == "":
			return true
		case strings.HasPrefix(r, "OK"):
			l.hear(id, acked, r)
		default:
			l.hear(id, refused, r)
			if !strings.HasPrefix(r, "NO") || respCode(r) == "SERVERBUG" {
				l.unexpected("IMAP APPEND %q for %s", r, id)
			}
		}
	}
}

// TestHangup: SIGHUP, which a closing terminal sends, stops the server as
// SIGTERM does, with a clean exit; started with SIGHUP ignored, as nohup
// starts it, the server leaves it ignored, so the kernel drops one.
func TestHangup(t *testing.T) {
	t.Parallel()
	if signal.Ignored(syscall.SIGHUP) {
		t.Skip("the tests run with SIGHUP ignored (nohup), and so would the server")
	}
	in := start(t, "")
	in.cmd.Process.Signal(syscall.SIGHUP)
	select {
	case <-in.exited:
	case <-time.After(60 * time.Second):
		t.Fatalf("buzon serve did not stop on SIGHUP:\n%s", in.logs())
	}
	if in.exitErr != nil || !strings.Contains(in.logs(), `msg="buzon stopped"`) {
		t.Fatalf("SIGHUP: exit %v, want a clean stop:\n%s", in.exitErr, in.logs())
	}

	if err := exec.Command("nohup", buzonBin, "version").Run(); err != nil {
		t.Skipf("no nohup to start the server with SIGHUP ignored: %v", err)
	}
	kept := startWith(t, "", "nohup")
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", kept.cmd.Process.Pid))
	if err != nil {
		t.Skipf("no /proc to read the server's ignored signals: %v", err)
	}
	// SigIgn is a hexadecimal mask, bit n-1 for signal n: SIGHUP is 1.
	m := regexp.MustCompile(`(?m)^SigIgn:\s*([0-9a-f]+)$`).FindSubmatch(status)
	if m == nil {
		t.Fatalf("no SigIgn in %s", status)
	}
	if mask, err := strconv.ParseUint(string(m[1]), 16, 64); err != nil || mask&1 == 0 {
		t.Errorf("buzon serve started under nohup no longer ignores SIGHUP (SigIgn %s)", m[1])
	}
}
