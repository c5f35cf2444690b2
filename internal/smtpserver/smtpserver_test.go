package smtpserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/clienttest"
	"github.com/buzon-mail/buzon/internal/delivery"
	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/sqlite"
)

// fixture is an LMTP server over a real store with two accounts, one of
// them with a one-message quota.
type fixture struct {
	st   store.Store
	srv  *Server
	addr string
	ids  map[string]int64
	// caFile holds the certificate an SMTP fixture's STARTTLS presents.
	caFile string
}

func newFixture(t testing.TB, maxSize int64, opts ...func(*Config)) *fixture {
	t.Helper()
	cfg := sqlite.DefaultConfig()
	cfg.Dir = t.TempDir()
	st, err := sqlite.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	f := &fixture{st: st, ids: map[string]int64{}}
	for _, name := range []string{"alice@example.org", "bob@example.org"} {
		a, err := st.CreateAccount(ctx, name, store.Credentials{PasswordHash: "x"})
		if err != nil {
			t.Fatal(err)
		}
		f.ids[name] = a.ID
	}
	if err := st.SetQuota(ctx, "bob@example.org", store.Quota{MaxMessages: 1}); err != nil {
		t.Fatal(err)
	}
	scfg := Config{
		Deliverer:      &delivery.Deliverer{Store: st},
		Spooler:        &delivery.Spooler{Dir: t.TempDir(), MemoryLimit: 1 << 16, MaxSize: maxSize},
		Hostname:       "mx.example.org",
		MaxMessageSize: maxSize,
		Logger:         clienttest.Logger(t, slog.LevelInfo, nil),
	}
	for _, o := range opts {
		o(&scfg)
	}
	f.srv = New(scfg)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = l.Addr().String()
	done := make(chan error, 1)
	go func() { done <- f.srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		f.srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return f
}

// inbox returns the bodies in an account's INBOX.
func (f *fixture) inbox(t *testing.T, name string) []string {
	t.Helper()
	ctx := context.Background()
	sess, err := f.st.Open(ctx, f.ids[name])
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	mb, err := sess.Mailbox(ctx, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	err = sess.Messages(ctx, mb.ID, store.AllUIDs(), store.FieldSize, func(m *store.MessageInfo) error {
		b, err := sess.OpenBody(ctx, mb.ID, m.UID)
		if err != nil {
			return err
		}
		defer b.Close()
		buf, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
		bodies = append(bodies, string(buf))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return bodies
}

const testMessage = "From: carol@example.net\r\nTo: alice@example.org\r\nSubject: hello\r\n\r\n.leading dot\r\n8-bit: \xc3\xa9t\xc3\xa9\r\n"

// TestPerRecipientStatus checks RFC 2033 4.2: unknown recipients are
// refused at RCPT, and after DATA each accepted one gets its own reply.
func TestPerRecipientStatus(t *testing.T) {
	f := newFixture(t, 0)
	// Fill bob's one-message quota first.
	if err := deliver(t, f.addr, []string{"bob@example.org"}, testMessage); err != nil {
		t.Fatal(err)
	}

	l := dialLMTP(t, f.addr)
	l.cmd("LHLO client.example.net")
	rcptReplies, dataReplies := l.transaction("carol@example.net", []string{"nobody@example.org", "alice@example.org", "Alice+news@Example.ORG", "bob@example.org"}, testMessage)
	if r := rcptReplies[0]; !strings.HasPrefix(r, "550 5.1.1 ") {
		t.Fatalf("unknown recipient: %q", r)
	}
	for i, r := range rcptReplies[1:] {
		if !strings.HasPrefix(r, "250 ") {
			t.Fatalf("RCPT %d: %q", i+2, r)
		}
	}
	if len(dataReplies) != 3 {
		t.Fatalf("replies after DATA: %q, want 3", dataReplies)
	}
	for i, want := range []string{"250 2.0.0 <alice@example.org> ", "250 2.0.0 <Alice+news@Example.ORG> ", "552 5.2.2 <bob@example.org> "} {
		if !strings.HasPrefix(dataReplies[i], want) {
			t.Errorf("reply %d after DATA: %q, want %q", i+1, dataReplies[i], want)
		}
	}
	if got := f.inbox(t, "alice@example.org"); len(got) != 2 || got[0] != testMessage || got[1] != testMessage {
		t.Errorf("alice's INBOX: %q", got)
	}
	if got := f.inbox(t, "bob@example.org"); len(got) != 1 {
		t.Errorf("bob's INBOX holds %d messages, want 1", len(got))
	}
}

// deliver sends msg to rcpts in one transaction and returns nil if every
// recipient took it, else an error naming the first reply that was not
// 250.
func deliver(t *testing.T, addr string, rcpts []string, msg string) error {
	t.Helper()
	l := dialLMTP(t, addr)
	l.cmd("LHLO client.example.net")
	rcptReplies, dataReplies := l.transaction("carol@example.net", rcpts, msg)
	for _, r := range append(rcptReplies, dataReplies...) {
		if !strings.HasPrefix(r, "250 ") {
			return replyError(r)
		}
	}
	l.cmd("QUIT")
	return nil
}

// replyError is a reply that was not the 250 a test hoped for.
type replyError string

func (e replyError) Error() string { return string(e) }

// TestLineTooLong: a message with a line over the limit is refused for
// good, for every recipient, rather than put off: trying again would not
// shorten the line.
func TestLineTooLong(t *testing.T) {
	f := newFixture(t, 1<<20)
	msg := testMessage + strings.Repeat("x", 70000) + "\r\n"
	err := deliver(t, f.addr, []string{"alice@example.org"}, msg)
	if err == nil || !strings.HasPrefix(err.Error(), "554 5.6.0 ") {
		t.Fatalf("message with a 70,000-byte line: %v, want a permanent refusal", err)
	}
	if got := f.inbox(t, "alice@example.org"); len(got) != 0 {
		t.Errorf("the message was stored")
	}
}

func TestTooLarge(t *testing.T) {
	f := newFixture(t, 1000)
	err := deliver(t, f.addr, []string{"alice@example.org"}, testMessage+strings.Repeat("xxxxxxxxx\r\n", 200))
	if err == nil || !strings.HasPrefix(err.Error(), "552 5.3.4 ") {
		t.Fatalf("oversized message: %v", err)
	}
	if got := f.inbox(t, "alice@example.org"); len(got) != 0 {
		t.Errorf("an oversized message was stored")
	}
	// The connection's next transaction works.
	if err := deliver(t, f.addr, []string{"alice@example.org"}, testMessage); err != nil {
		t.Fatal(err)
	}
}

// TestPythonLMTP delivers with Python's smtplib.LMTP, a client no one
// here wrote, including a message large enough to need a file spool.
func TestPythonLMTP(t *testing.T) {
	py := clienttest.Need(t, "python3", "python3")
	f := newFixture(t, 0)
	big := testMessage + strings.Repeat("line of text for a large message\r\n", 4000)
	for _, msg := range []string{testMessage, big} {
		host, port, _ := net.SplitHostPort(f.addr)
		cmd := exec.Command(py, filepath.Join("..", "..", "testdata", "clients", "lmtp_send.py"), host, port, "carol@example.net", "alice@example.org", "nobody@example.org")
		cmd.Stdin = strings.NewReader(msg)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("lmtp_send.py: %v\n%s", err, out.String())
		}
		if want := "refused nobody@example.org 550\n"; out.String() != want {
			t.Errorf("script said %q, want %q", out.String(), want)
		}
	}
	if got := f.inbox(t, "alice@example.org"); len(got) != 2 || got[0] != testMessage || got[1] != big {
		t.Errorf("alice's INBOX holds %d messages, not the two sent byte for byte", len(got))
	}
}

// TestSwaksLMTP delivers with swaks, the SMTP test tool, speaking LMTP with
// PIPELINING: MAIL, both RCPTs and DATA go in one write, and each
// recipient gets its own answer, the unknown one 550 at RCPT.
func TestSwaksLMTP(t *testing.T) {
	swaks := clienttest.Need(t, "swaks", "swaks")
	f := newFixture(t, 0)
	cmd := exec.Command(swaks, "--protocol", "LMTP", "--server", f.addr, "--pipeline",
		"--from", "carol@example.net", "--to", "alice@example.org,nobody@example.org", "--data", "-")
	cmd.Stdin = strings.NewReader(testMessage)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	// swaks marks the answers it takes for refusals with "<**".
	for _, want := range []string{
		"<-  250 2.1.5 recipient <alice@example.org> OK",
		"<** 550 5.1.1 <nobody@example.org> ",
		"<-  250 2.0.0 <alice@example.org> delivered",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("swaks's transcript lacks %q:\n%s", want, out)
		}
	}
	// swaks ends the data it is given with a line break of its own, and
	// stuffs the leading dot, which must arrive unstuffed.
	got := f.inbox(t, "alice@example.org")
	if want := testMessage + "\r\n"; len(got) != 1 || got[0] != want {
		t.Errorf("alice's INBOX: %q, want %q", got, []string{want})
	}
}

// TestRecipientDeletedBeforeData: an account accepted at RCPT and deleted
// before DATA gets a permanent 550, as an unknown one does, not a
// temporary failure that would have the MTA retry for days.
func TestRecipientDeletedBeforeData(t *testing.T) {
	f := newFixture(t, 0)
	l := dialLMTP(t, f.addr)
	for _, line := range []string{"LHLO client.example.net", "MAIL FROM:<carol@example.net>", "RCPT TO:<alice@example.org>", "RCPT TO:<bob@example.org>"} {
		if r := l.cmd(line); !strings.HasPrefix(r, "250 ") {
			t.Fatalf("%s: %q", line, r)
		}
	}
	if err := f.st.DeleteAccount(context.Background(), "bob@example.org"); err != nil {
		t.Fatal(err)
	}
	if r := l.cmd("DATA"); !strings.HasPrefix(r, "354 ") {
		t.Fatalf("DATA: %q", r)
	}
	l.send(dotStuff(testMessage) + ".\r\n")
	if r := l.reply(); !strings.HasPrefix(r, "250 ") {
		t.Errorf("alice: %q", r)
	}
	if r := l.reply(); !strings.HasPrefix(r, "550 5.1.1 <bob@example.org> ") {
		t.Errorf("deleted recipient: %q", r)
	}
}

// TestShutdown: a session between transactions hears 421 at once; a
// transaction in flight finishes, gets its reply, and then the connection
// ends; Shutdown returns only after that delivery is stored.
func TestShutdown(t *testing.T) {
	f := newFixture(t, 0)
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(c)
		r.ReadString('\n')
		fmt.Fprintf(c, "LHLO test\r\n")
		for {
			l, _ := r.ReadString('\n')
			if strings.HasPrefix(l, "250 ") {
				return c, r
			}
		}
	}
	idle, idleR := dial()
	defer idle.Close()
	busy, busyR := dial()
	defer busy.Close()
	fmt.Fprintf(busy, "MAIL FROM:<a@example.net>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
	for range 3 {
		busyR.ReadString('\n')
	}
	fmt.Fprintf(busy, "Subject: in flight\r\n\r\n")

	done := make(chan error, 1)
	go func() { done <- f.srv.Shutdown(context.Background()) }()
	if l, _ := idleR.ReadString('\n'); !strings.HasPrefix(l, "421 4.3.2") {
		t.Errorf("idle session during shutdown: %q", l)
	}
	fmt.Fprintf(busy, "body\r\n.\r\n")
	// The replies are left unread until Shutdown has returned: its 250
	// says the message is stored, so reading it first would leave the
	// check of the INBOX nothing to catch.
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := f.inbox(t, "alice@example.org"); len(got) != 1 {
		t.Errorf("INBOX holds %d messages once Shutdown returned, want the one in flight", len(got))
	}
	if l, _ := busyR.ReadString('\n'); !strings.HasPrefix(l, "250 ") {
		t.Errorf("transaction in flight: %q", l)
	}
	// Then the goodbye, before the connection closes (RFC 5321 3.8).
	if l, _ := busyR.ReadString('\n'); !strings.HasPrefix(l, "421 4.3.2") {
		t.Errorf("after the transaction in flight: %q, want 421 4.3.2", l)
	}
	if _, err := busyR.ReadString('\n'); err == nil {
		t.Error("the connection stayed open after its transaction")
	}
}

// TestBDATCutShort: a client that announces a BDAT chunk and closes the
// connection before sending all of it has not finished its message
// (RFC 3030 2), and nothing is delivered, DATA or BDAT alike.
func TestBDATCutShort(t *testing.T) {
	f := newFixture(t, 1<<20)
	for _, cmd := range []string{"BDAT 5000 LAST", "BDAT 5000", "DATA"} {
		l := dialLMTP(t, f.addr)
		for _, line := range []string{"LHLO test", "MAIL FROM:<carol@example.net>", "RCPT TO:<alice@example.org>"} {
			if r := l.cmd(line); !strings.HasPrefix(r, "250") {
				t.Fatalf("%s: %q", line, r)
			}
		}
		l.send(cmd + "\r\n")
		if cmd == "DATA" {
			if r := l.reply(); !strings.HasPrefix(r, "354") {
				t.Fatalf("DATA: %q", r)
			}
		}
		l.send(testMessage) // 100 bytes or so of the 5000
		l.c.(*net.TCPConn).CloseWrite()
		// Whatever the server answers, until it closes: a chunk it took
		// for whole would be delivered before its reply.
		io.Copy(io.Discard, l.r)
		l.c.Close()
	}
	if got := f.inbox(t, "alice@example.org"); len(got) != 0 {
		t.Errorf("alice has %d messages from transactions cut short: %q", len(got), got)
	}
}

// rawLMTP is a client connection for tests that write LMTP byte by byte.
type rawLMTP struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

// dialLMTP connects and reads the greeting.
func dialLMTP(t *testing.T, addr string) *rawLMTP {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	l := &rawLMTP{t: t, c: c, r: bufio.NewReader(c)}
	l.reply()
	return l
}

func (l *rawLMTP) send(s string) {
	l.t.Helper()
	if _, err := io.WriteString(l.c, s); err != nil {
		l.t.Fatal(err)
	}
}

// reply reads one reply and returns its last line, without CRLF.
func (l *rawLMTP) reply() string {
	l.t.Helper()
	l.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		line, err := l.r.ReadString('\n')
		if err != nil {
			l.t.Fatalf("reading a reply: %v", err)
		}
		if len(line) < 4 || line[3] != '-' {
			return strings.TrimRight(line, "\r\n")
		}
	}
}

// cmd sends a command line and returns its reply.
func (l *rawLMTP) cmd(line string) string {
	l.t.Helper()
	l.send(line + "\r\n")
	return l.reply()
}

// TestDuplicateRecipient: a recipient named twice in a transaction (an
// MTA's aliases expanding to one address twice) gets one copy, and a
// reply for each RCPT, in order (RFC 2033 4.2). A +detail address is
// another recipient.
func TestDuplicateRecipient(t *testing.T) {
	f := newFixture(t, 0)
	rcpts := []string{"alice@example.org", "alice@example.org", "Alice@Example.ORG", "alice+news@example.org"}
	lines := []string{"LHLO client.example.net", "MAIL FROM:<carol@example.net>"}
	for _, r := range rcpts {
		lines = append(lines, "RCPT TO:<"+r+">")
	}
	replies := lmtpSession(t, f.addr, lines, testMessage)
	if len(replies) != len(rcpts) {
		t.Fatalf("replies after the data: %q, want one per RCPT", replies)
	}
	for i, r := range replies {
		if !strings.HasPrefix(r, "250 ") || !strings.Contains(r, "<"+rcpts[i]+">") {
			t.Errorf("reply %d: %q, want 250 for %s", i+1, r, rcpts[i])
		}
	}
	if got := f.inbox(t, "alice@example.org"); len(got) != 2 {
		t.Errorf("alice's INBOX holds %d messages, want 2 (one for alice, one for alice+news)", len(got))
	}
}

// dotStuff returns msg (CRLF lines) dot-stuffed (RFC 5321 4.5.2).
func dotStuff(msg string) string {
	return strings.ReplaceAll("\r\n"+msg, "\r\n.", "\r\n..")[2:]
}

// transaction runs MAIL, a RCPT per recipient and, when one was
// accepted, DATA with msg. It returns the replies to the RCPTs and those
// after the data, one per accepted recipient.
func (l *rawLMTP) transaction(from string, rcpts []string, msg string) (rcptReplies, dataReplies []string) {
	l.t.Helper()
	if r := l.cmd("MAIL FROM:<" + from + ">"); !strings.HasPrefix(r, "250 ") {
		l.t.Fatalf("MAIL: %q", r)
	}
	accepted := 0
	for _, rcpt := range rcpts {
		r := l.cmd("RCPT TO:<" + rcpt + ">")
		rcptReplies = append(rcptReplies, r)
		if strings.HasPrefix(r, "250 ") {
			accepted++
		}
	}
	if accepted == 0 {
		l.cmd("RSET")
		return rcptReplies, nil
	}
	if r := l.cmd("DATA"); !strings.HasPrefix(r, "354 ") {
		l.t.Fatalf("DATA: %q", r)
	}
	l.send(dotStuff(msg) + ".\r\n")
	for range accepted {
		dataReplies = append(dataReplies, l.reply())
	}
	return rcptReplies, dataReplies
}

// lmtpSession sends lines (each must be answered 250), then DATA and msg,
// and returns the replies that follow the data: those before the reply
// to a NOOP sent after it.
func lmtpSession(t *testing.T, addr string, lines []string, msg string) []string {
	t.Helper()
	l := dialLMTP(t, addr)
	for _, line := range lines {
		if r := l.cmd(line); !strings.HasPrefix(r, "250") {
			t.Fatalf("%s: %q", line, r)
		}
	}
	if r := l.cmd("DATA"); !strings.HasPrefix(r, "354") {
		t.Fatalf("DATA: %q", r)
	}
	l.send(dotStuff(msg) + ".\r\nNOOP\r\n")
	var got []string
	for {
		r := l.reply()
		if strings.Contains(r, "nothing") { // the NOOP's
			return got
		}
		got = append(got, r)
	}
}

// TestSlowData: the read timeout bounds each wait for the client, not the
// whole message: data that keeps coming, slower than the timeout in all,
// is delivered, and its lines are never read as commands.
func TestSlowData(t *testing.T) {
	const timeout = 2 * time.Second
	f := newFixture(t, 0, func(c *Config) { c.ReadTimeout = timeout })
	l := dialLMTP(t, f.addr)
	for _, line := range []string{"LHLO test", "MAIL FROM:<carol@example.net>", "RCPT TO:<alice@example.org>", "DATA"} {
		l.cmd(line)
	}
	l.send("Subject: slow\r\n\r\n")
	// Four pauses of half the timeout: twice the timeout in all.
	for range 4 {
		time.Sleep(timeout / 2) // pacing the client, not an assertion
		l.send("RSET\r\n")
	}
	if got := l.cmd("."); !strings.HasPrefix(got, "250") {
		t.Fatalf("slow message: %q", got)
	}
	want := "Subject: slow\r\n\r\n" + strings.Repeat("RSET\r\n", 4)
	if got := f.inbox(t, "alice@example.org"); len(got) != 1 || got[0] != want {
		t.Errorf("alice's INBOX: %q, want %q", got, want)
	}
}

// TestBDATRefusedPerRecipient: a BDAT chunk the spool cannot take (here
// its folder is missing, found once the chunk outgrows memory) is read to
// its end and answered once per recipient (RFC 2033 4.2), so that the
// next command's reply is not taken for a recipient's, and the rest of
// the chunk is not read as commands.
func TestBDATRefusedPerRecipient(t *testing.T) {
	f := newFixture(t, 1<<20, func(c *Config) {
		c.Spooler = &delivery.Spooler{Dir: filepath.Join(t.TempDir(), "missing"), MemoryLimit: 1 << 16, MaxSize: 1 << 20}
	})
	l := dialLMTP(t, f.addr)
	for _, line := range []string{"LHLO test", "MAIL FROM:<carol@example.net>", "RCPT TO:<alice@example.org>", "RCPT TO:<bob@example.org>"} {
		if got := l.cmd(line); !strings.HasPrefix(got, "250") {
			t.Fatalf("%s: %q", line, got)
		}
	}
	chunk := "Subject: big\r\n\r\n" + strings.Repeat("RSET\r\n", 30000)
	l.send(fmt.Sprintf("BDAT %d LAST\r\n%sNOOP\r\n", len(chunk), chunk))
	for _, rcpt := range []string{"alice@example.org", "bob@example.org"} {
		if got := l.reply(); !strings.HasPrefix(got, "4") {
			t.Errorf("reply for %s: %q, want a temporary failure", rcpt, got)
		}
	}
	if got := l.reply(); !strings.Contains(got, "nothing") {
		t.Errorf("reply to the NOOP: %q", got)
	}
	if got := f.inbox(t, "alice@example.org"); len(got) != 0 {
		t.Errorf("alice's INBOX: %q", got)
	}
}

// TestBDATWithSmallLineLimit: a line limit set low (limits.max_line_length
// may be 1024) does not cut a BDAT chunk of a few KB whose lines are short.
func TestBDATWithSmallLineLimit(t *testing.T) {
	f := newFixture(t, 1<<20, func(c *Config) { c.MaxLineLength = 1024 })
	msg := "Subject: chunks\r\n\r\n" + strings.Repeat("a short line of the message\r\n", 200)
	l := dialLMTP(t, f.addr)
	l.send(fmt.Sprintf("LHLO test\r\nMAIL FROM:<carol@example.net>\r\nRCPT TO:<alice@example.org>\r\nBDAT %d LAST\r\n%s", len(msg), msg))
	for i := range 4 {
		if got := l.reply(); !strings.HasPrefix(got, "250") {
			t.Fatalf("reply %d: %q", i+1, got)
		}
	}
	if got := f.inbox(t, "alice@example.org"); len(got) != 1 || got[0] != msg {
		t.Errorf("alice's INBOX: %d messages", len(got))
	}
}

// TestReturnPath: with ReturnPath, each message starts with the envelope
// sender (RFC 5321 4.4), <> for a bounce; without, it is stored as sent.
func TestReturnPath(t *testing.T) {
	f := newFixture(t, 0, func(c *Config) { c.ReturnPath = true })
	for _, from := range []string{"carol@example.net", ""} {
		replies := lmtpSession(t, f.addr, []string{"LHLO test", "MAIL FROM:<" + from + ">", "RCPT TO:<alice@example.org>"}, testMessage)
		if len(replies) != 1 || !strings.HasPrefix(replies[0], "250") {
			t.Fatalf("from <%s>: %q", from, replies)
		}
	}
	want := []string{"Return-Path: <carol@example.net>\r\n" + testMessage, "Return-Path: <>\r\n" + testMessage}
	if got := f.inbox(t, "alice@example.org"); !slices.Equal(got, want) {
		t.Errorf("alice's INBOX: %q, want %q", got, want)
	}

	plain := newFixture(t, 0)
	deliver(t, plain.addr, []string{"alice@example.org"}, testMessage)
	if got := plain.inbox(t, "alice@example.org"); len(got) != 1 || got[0] != testMessage {
		t.Errorf("without ReturnPath: %q", got)
	}
}
