package smtpserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/clienttest"
	"github.com/buzon-mail/buzon/internal/delivery"
	"github.com/buzon-mail/buzon/internal/server"
	"github.com/buzon-mail/buzon/internal/store"
)

// newSMTPFixture is newFixture with the server in SMTP mode, offering
// STARTTLS with a self-signed certificate for mx.example.org, and returns
// the TLS configuration a client that trusts it uses.
func newSMTPFixture(t testing.TB, maxSize int64, opts ...func(*Config)) (*fixture, *tls.Config) {
	t.Helper()
	cert, roots, certPEM := clienttest.Cert(t, "mx.example.org", "127.0.0.1")
	opts = append([]func(*Config){func(c *Config) {
		c.Protocol = SMTP
		c.TLS = server.TLSConfig(cert)
	}}, opts...)
	f := newFixture(t, maxSize, opts...)
	f.caFile = filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(f.caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return f, &tls.Config{RootCAs: roots, ServerName: "mx.example.org"}
}

// TestSMTPTranscripts replays the SMTP sessions in testdata/smtp byte for
// byte. A transcript is a list of lines:
//
//	C: text              the client sends text and CRLF; consecutive C
//	                     lines go in one write, as a pipelining client
//	                     sends them
//	S: text              the server's next reply line is text exactly, or
//	                     starts with it when text ends with *
//	! starttls           the client starts TLS, trusting the test's
//	                     certificate
//	! closed             the server has closed the connection
//	! size N             the server's message size limit (before any C)
//	! deliver ADDRESS    a message is delivered to ADDRESS first
//	! stored ADDRESS N   at the end, ADDRESS's INBOX holds N messages
//	# comment
//
// A reply the transcript does not expect fails it, as one it expects but
// does not get: after the last line, unless the server closed, a NOOP
// must get its own reply.
func TestSMTPTranscripts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "smtp", "*.txt"))
	if err != nil || len(files) < 8 {
		t.Fatalf("transcripts: %v, %v", files, err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			replay(t, strings.Split(strings.TrimRight(string(b), "\n"), "\n"))
		})
	}
}

// replay runs one transcript; see TestSMTPTranscripts.
func replay(t *testing.T, lines []string) {
	var maxSize int64
	type count struct {
		addr string
		n    int
	}
	var stored []count
	var setup []string
	var steps []string
	for i, line := range lines {
		directive, arg, _ := strings.Cut(strings.TrimPrefix(line, "! "), " ")
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case !strings.HasPrefix(line, "! "):
			steps = append(steps, line)
		case directive == "size":
			maxSize, _ = strconv.ParseInt(arg, 10, 64)
		case directive == "deliver":
			setup = append(setup, arg)
		case directive == "stored":
			addr, n, _ := strings.Cut(arg, " ")
			k, err := strconv.Atoi(n)
			if err != nil {
				t.Fatalf("line %d: %q", i+1, line)
			}
			stored = append(stored, count{addr, k})
		default:
			steps = append(steps, line)
		}
	}
	f, clientTLS := newSMTPFixture(t, maxSize)
	for _, addr := range setup {
		msg, err := (&delivery.Spooler{}).Spool(strings.NewReader(testMessage))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.srv.cfg.Deliverer.Deliver(context.Background(), addr, msg); err != nil {
			t.Fatal(err)
		}
		msg.Close()
	}
	nc, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { nc.Close() }()
	r := bufio.NewReader(nc)
	var batch strings.Builder
	send := func() {
		if batch.Len() == 0 {
			return
		}
		if _, err := io.WriteString(nc, batch.String()); err != nil {
			t.Fatalf("sending %q: %v", batch.String(), err)
		}
		batch.Reset()
	}
	read := func() (string, error) {
		nc.SetReadDeadline(time.Now().Add(30 * time.Second))
		line, err := r.ReadString('\n')
		if err == nil && !strings.HasSuffix(line, "\r\n") {
			err = errors.New("reply line without CRLF")
		}
		return strings.TrimSuffix(line, "\r\n"), err
	}
	closed := false
	for i, step := range steps {
		switch {
		case strings.HasPrefix(step, "C:"):
			batch.WriteString(strings.TrimPrefix(strings.TrimPrefix(step, "C:"), " ") + "\r\n")
		case strings.HasPrefix(step, "S: "):
			send()
			want := strings.TrimPrefix(step, "S: ")
			got, err := read()
			if err != nil {
				t.Fatalf("step %d: want %q, read %q: %v", i+1, want, got, err)
			}
			if prefix, ok := strings.CutSuffix(want, "*"); ok && strings.HasPrefix(got, prefix) || got == want {
				continue
			}
			t.Fatalf("step %d: got %q, want %q", i+1, got, want)
		case step == "! starttls":
			send()
			tc := tls.Client(nc, clientTLS)
			if err := tc.Handshake(); err != nil {
				t.Fatalf("step %d: TLS handshake: %v", i+1, err)
			}
			nc, r = tc, bufio.NewReader(tc)
		case step == "! closed":
			send()
			if got, err := read(); err == nil {
				t.Fatalf("step %d: the connection is open: %q", i+1, got)
			}
			closed = true
		default:
			t.Fatalf("step %d: %q is not a transcript line", i+1, step)
		}
	}
	send()
	if !closed {
		io.WriteString(nc, "NOOP\r\n")
		if got, err := read(); err != nil || got != "250 2.0.0 OK, nothing done" {
			t.Fatalf("after the transcript, NOOP: %q, %v", got, err)
		}
	}
	for _, c := range stored {
		if got := f.inbox(t, c.addr); len(got) != c.n {
			t.Errorf("%s has %d messages, want %d", c.addr, len(got), c.n)
		}
	}
}

// starttls upgrades a test client's connection after EHLO.
func (l *rawLMTP) starttls(cfg *tls.Config) {
	l.t.Helper()
	if got := l.cmd("STARTTLS"); !strings.HasPrefix(got, "220 ") {
		l.t.Fatalf("STARTTLS: %q", got)
	}
	tc := tls.Client(l.c, cfg)
	if err := tc.Handshake(); err != nil {
		l.t.Fatal(err)
	}
	l.c, l.r = tc, bufio.NewReader(tc)
}

// TestSMTPTraceFields: each message starts with Return-Path and the
// Received field of RFC 5321 4.4, whose "with" names the protocol as
// RFC 3848 and RFC 6531 3.7.3 do, whose "for" names the recipient when
// there is one, and whose From-domain is the HELO name when it is one.
func TestSMTPTraceFields(t *testing.T) {
	f, clientTLS := newSMTPFixture(t, 0)
	pm, err := f.st.CreateAccount(context.Background(), "postmaster@mx.example.org", store.Credentials{PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	f.ids[pm.Name] = pm.ID
	for _, tt := range []struct {
		name      string
		greet     string
		tls       bool
		from      string // MAIL's argument
		rcpts     []string
		wantField string // a regular expression, for all of the Received field
	}{
		{
			name: "EHLO with STARTTLS, one recipient", greet: "EHLO client.example.net", tls: true,
			from: "<carol@example.net>", rcpts: []string{"alice@example.org"},
			wantField: `Return-Path: <carol@example\.net>\r\nReceived: from client\.example\.net \(\[127\.0\.0\.1\]\)\r\n\tby mx\.example\.org \(buzon\) with ESMTPS \(TLS 1\.3 TLS_[A-Z0-9_]+\)\r\n\tid [A-Z2-7]{12} for <alice@example\.org>; [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\n`,
		},
		{
			name: "EHLO, two recipients: no for", greet: "EHLO client.example.net",
			from: "<carol@example.net>", rcpts: []string{"alice@example.org", "bob@example.org"},
			wantField: `Return-Path: <carol@example\.net>\r\nReceived: from client\.example\.net \(\[127\.0\.0\.1\]\)\r\n\tby mx\.example\.org \(buzon\) with ESMTP\r\n\tid [A-Z2-7]{12}; [^\r]+\r\n`,
		},
		{
			name: "HELO, a bounce", greet: "HELO [192.0.2.7]",
			from: "<>", rcpts: []string{"alice@example.org"},
			wantField: `Return-Path: <>\r\nReceived: from \[192\.0\.2\.7\] \(\[127\.0\.0\.1\]\)\r\n\tby mx\.example\.org \(buzon\) with SMTP\r\n\tid [A-Z2-7]{12} for <alice@example\.org>; [^\r]+\r\n`,
		},
		{
			name: "SMTPUTF8 over TLS", greet: "EHLO client.example.net", tls: true,
			from: "<jörg@example.net> SMTPUTF8", rcpts: []string{"alice@example.org"},
			wantField: `Return-Path: <jörg@example\.net>\r\nReceived: from client\.example\.net \(\[127\.0\.0\.1\]\)\r\n\tby mx\.example\.org \(buzon\) with UTF8SMTPS \(TLS[^)]+\)\r\n\tid [A-Z2-7]{12} for <alice@example\.org>; [^\r]+\r\n`,
		},
		{
			// RFC 5321 4.4's "for" takes a mailbox: the one <postmaster>
			// reached.
			name: "to postmaster", greet: "EHLO client.example.net",
			from: "<carol@example.net>", rcpts: []string{"postmaster"},
			wantField: `Return-Path: <carol@example\.net>\r\nReceived: from client\.example\.net \(\[127\.0\.0\.1\]\)\r\n\tby mx\.example\.org \(buzon\) with ESMTP\r\n\tid [A-Z2-7]{12} for <postmaster@mx\.example\.org>; [^\r]+\r\n`,
		},
		{
			// A HELO name that is not a domain goes in a comment, escaped.
			name: "HELO name that is no domain", greet: "EHLO my(pc)",
			from: "<carol@example.net>", rcpts: []string{"alice@example.org"},
			wantField: `Return-Path: <carol@example\.net>\r\nReceived: from \[127\.0\.0\.1\] \(helo=my\\\(pc\\\)\)\r\n\tby mx\.example\.org \(buzon\) with ESMTP\r\n\tid [A-Z2-7]{12} for <alice@example\.org>; [^\r]+\r\n`,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			owner := "alice@example.org"
			if tt.rcpts[0] == "postmaster" {
				owner = pm.Name
			}
			before := len(f.inbox(t, owner))
			l := dialLMTP(t, f.addr)
			if got := l.cmd(tt.greet); !strings.HasPrefix(got, "250 ") {
				t.Fatalf("%s: %q", tt.greet, got)
			}
			if tt.tls {
				l.starttls(clientTLS)
				l.cmd(tt.greet)
			}
			lines := []string{"MAIL FROM:" + tt.from}
			for _, r := range tt.rcpts {
				lines = append(lines, "RCPT TO:<"+r+">")
			}
			lines = append(lines, "DATA")
			for _, line := range lines {
				if got := l.cmd(line); !strings.HasPrefix(got, "250 ") && !strings.HasPrefix(got, "354 ") {
					t.Fatalf("%s: %q", line, got)
				}
			}
			if got := l.cmd(dotStuff(testMessage) + "."); !strings.HasPrefix(got, "250 2.0.0 message delivered") {
				t.Fatalf("after the data: %q", got)
			}
			got := f.inbox(t, owner)
			if len(got) != before+1 {
				t.Fatalf("%s has %d messages, want %d", owner, len(got), before+1)
			}
			re := regexp.MustCompile(`(?s)^` + tt.wantField + `(.*)$`)
			m := re.FindStringSubmatch(got[before])
			if m == nil {
				t.Fatalf("stored message:\n%s\nwant its trace fields to match\n%s", got[before], tt.wantField)
			}
			if m[1] != testMessage {
				t.Errorf("after the trace fields: %q, want the message as sent", m[1])
			}
		})
	}
}

// TestSMTPReceivedBehindProxy: behind a load balancer that speaks the
// PROXY protocol, the Received field names the client's address the
// header gives, not the balancer's.
func TestSMTPReceivedBehindProxy(t *testing.T) {
	f, _ := newSMTPFixture(t, 0)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go f.srv.Serve(server.NewListener(inner, server.ListenerConfig{Proxy: true}))
	c, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	l := &rawLMTP{t: t, c: c, r: bufio.NewReader(c)}
	l.send("PROXY TCP6 2001:db8::25 2001:db8::1 40000 25\r\n")
	l.reply()
	l.cmd("EHLO client.example.net")
	replies := lmtpSessionOn(l, []string{"MAIL FROM:<carol@example.net>", "RCPT TO:<alice@example.org>"}, testMessage)
	if len(replies) != 1 || !strings.HasPrefix(replies[0], "250 ") {
		t.Fatalf("replies after the data: %q", replies)
	}
	got := f.inbox(t, "alice@example.org")
	if want := "Received: from client.example.net ([IPv6:2001:db8::25])\r\n"; len(got) != 1 || !strings.Contains(got[0], want) {
		t.Errorf("alice's INBOX: %q, want a message with %q", got, want)
	}
}

// lmtpSessionOn is lmtpSession on a connection already greeted.
func lmtpSessionOn(l *rawLMTP, lines []string, msg string) []string {
	l.t.Helper()
	for _, line := range lines {
		if r := l.cmd(line); !strings.HasPrefix(r, "250") {
			l.t.Fatalf("%s: %q", line, r)
		}
	}
	if r := l.cmd("DATA"); !strings.HasPrefix(r, "354") {
		l.t.Fatalf("DATA: %q", r)
	}
	l.send(dotStuff(msg) + ".\r\nNOOP\r\n")
	var got []string
	for {
		r := l.reply()
		if strings.Contains(r, "nothing") {
			return got
		}
		got = append(got, r)
	}
}

// TestSMTPMailLoop: a message that arrives with more than MaxReceived
// Received fields in its header is refused for good, 554 5.4.6 (RFC 5321
// 6.3, RFC 3463), and not stored; Received lines in the body do not count.
func TestSMTPMailLoop(t *testing.T) {
	f, _ := newSMTPFixture(t, 0, func(c *Config) { c.MaxReceived = 10 })
	hops := func(n int, name string) string {
		return strings.Repeat(name+": from a.example by b.example; Fri, 27 Nov 2026 10:00:00 +0000\r\n", n)
	}
	for _, tt := range []struct {
		name string
		msg  string
		want string
	}{
		{"at the limit", hops(10, "Received") + testMessage, "250 2.0.0 "},
		{"over the limit", hops(11, "Received") + testMessage, "554 5.4.6 "},
		{"over the limit, any case", hops(6, "Received") + hops(5, "RECEIVED") + testMessage, "554 5.4.6 "},
		{"over the limit, folded fields", strings.ReplaceAll(hops(11, "received"), " by", "\r\n\tby") + testMessage, "554 5.4.6 "},
		{"obsolete space before the colon", hops(11, "Received ") + testMessage, "554 5.4.6 "},
		{"in the body", testMessage + hops(20, "Received"), "250 2.0.0 "},
		{"other trace fields", hops(20, "X-Received") + testMessage, "250 2.0.0 "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.inbox(t, "alice@example.org"))
			l := dialLMTP(t, f.addr)
			l.cmd("EHLO client.example.net")
			replies := lmtpSessionOn(l, []string{"MAIL FROM:<carol@example.net>", "RCPT TO:<alice@example.org>"}, tt.msg)
			if len(replies) != 1 || !strings.HasPrefix(replies[0], tt.want) {
				t.Fatalf("replies after the data: %q, want one %q", replies, tt.want)
			}
			stored := len(f.inbox(t, "alice@example.org")) - before
			if want := map[bool]int{true: 1, false: 0}[tt.want == "250 2.0.0 "]; stored != want {
				t.Errorf("stored %d copies, want %d", stored, want)
			}
		})
	}
}

// TestSMTPPythonPipelining delivers with Python's smtplib, a client no one
// here wrote: STARTTLS, then MAIL, three RCPTs and DATA in one write
// (RFC 2920), the unknown recipient refused among them, and the message
// taken once for the two others.
func TestSMTPPythonPipelining(t *testing.T) {
	py := clienttest.Need(t, "python3", "python3")
	f, _ := newSMTPFixture(t, 0)
	host, port, _ := net.SplitHostPort(f.addr)
	big := testMessage + strings.Repeat(".a line of text for a large message\r\n", 4000)
	for _, msg := range []string{testMessage, big} {
		cmd := exec.Command(py, filepath.Join("testdata", "smtp_pipeline.py"), host, port, f.caFile,
			"carol@example.net", "alice@example.org", "nobody@example.org", "bob@example.org")
		cmd.Stdin = strings.NewReader(msg)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("smtp_pipeline.py: %v\n%s", err, out)
		}
		// MAIL, the three RCPTs, DATA, and the reply to the message. bob's
		// quota is one message: the second finds his mailbox full.
		want := "250\n250\n550\n250\n354\n250\n"
		if msg == big {
			want = "250\n250\n550\n452\n354\n250\n"
		}
		if string(out) != want {
			t.Errorf("replies: %q, want %q", out, want)
		}
	}
	if bob := f.inbox(t, "bob@example.org"); len(bob) != 1 || !strings.HasSuffix(bob[0], "\r\n"+testMessage) {
		t.Errorf("bob's INBOX: %d messages, want the first", len(bob))
	}
	got := f.inbox(t, "alice@example.org")
	if len(got) != 2 || !strings.HasSuffix(got[0], "\r\n"+testMessage) || !strings.HasSuffix(got[1], "\r\n"+big) {
		t.Fatalf("alice's INBOX holds %d messages, not the two sent byte for byte", len(got))
	}
	for _, m := range got {
		if !strings.HasPrefix(m, "Return-Path: <carol@example.net>\r\nReceived: from client.example.net ([127.0.0.1])\r\n\tby mx.example.org (buzon) with ESMTPS (TLS") {
			t.Errorf("alice's message starts %q", m[:min(len(m), 200)])
		}
	}
}

// failingStore is a store whose appends to one account fail, as a full
// disk or a broken database would fail them.
type failingStore struct {
	store.Store
	// account is the name of the account whose appends fail.
	account string
}

func (s failingStore) Open(ctx context.Context, id int64) (store.Session, error) {
	sess, err := s.Store.Open(ctx, id)
	if err != nil {
		return nil, err
	}
	if a, err := s.Store.LookupAccount(ctx, s.account); err == nil && a.ID == id {
		return failingSession{sess}, nil
	}
	return sess, nil
}

type failingSession struct{ store.Session }

func (failingSession) Append(context.Context, int64, *store.NewMessage) (store.AppendResult, error) {
	return store.AppendResult{}, errors.New("append: input/output error")
}

// TestSMTPOneReplyForAll: SMTP has one reply for the message, so it is
// 250 only when every copy is stored. When one recipient's copy fails and
// another's was stored, the whole message gets 451 4.3.0: the sender
// retries (TestSMTPRetryStoresOnlyMissing); duplicates, never a loss.
// When no copy was stored, the reply is the failure's own.
func TestSMTPOneReplyForAll(t *testing.T) {
	for _, tt := range []struct {
		name  string
		rcpts []string
		// deleted is an account removed between RCPT and DATA.
		deleted string
		want    string
		stored  int // alice's copies
	}{
		{name: "one copy fails, one is stored", rcpts: []string{"alice@example.org", "bob@example.org"}, want: "451 4.3.0 ", stored: 1},
		{name: "the one copy fails", rcpts: []string{"bob@example.org"}, want: "451 4.3.0 "},
		{name: "every copy is stored", rcpts: []string{"alice@example.org", "alice+news@example.org"}, want: "250 2.0.0 ", stored: 2},
		{name: "a recipient deleted since RCPT, another stored", rcpts: []string{"carol@example.org", "alice@example.org"}, deleted: "carol@example.org", want: "451 4.3.0 ", stored: 1},
		{name: "the one recipient deleted since RCPT", rcpts: []string{"carol@example.org"}, deleted: "carol@example.org", want: "550 5.1.1 "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var st store.Store
			f, _ := newSMTPFixture(t, 0, func(c *Config) {
				st = c.Deliverer.Store
				c.Deliverer = &delivery.Deliverer{Store: failingStore{Store: st, account: "bob@example.org"}}
			})
			if _, err := st.CreateAccount(context.Background(), "carol@example.org", store.Credentials{PasswordHash: "x"}); err != nil {
				t.Fatal(err)
			}
			l := dialLMTP(t, f.addr)
			l.cmd("EHLO client.example.net")
			lines := []string{"MAIL FROM:<dave@example.net>"}
			for _, r := range tt.rcpts {
				lines = append(lines, "RCPT TO:<"+r+">")
			}
			for _, line := range lines {
				if got := l.cmd(line); !strings.HasPrefix(got, "250 ") {
					t.Fatalf("%s: %q", line, got)
				}
			}
			if tt.deleted != "" {
				if err := st.DeleteAccount(context.Background(), tt.deleted); err != nil {
					t.Fatal(err)
				}
			}
			replies := lmtpSessionOn(l, nil, testMessage)
			if len(replies) != 1 || !strings.HasPrefix(replies[0], tt.want) {
				t.Fatalf("replies after the data: %q, want one %q", replies, tt.want)
			}
			if got := f.inbox(t, "alice@example.org"); len(got) != tt.stored {
				t.Errorf("alice has %d messages, want %d", len(got), tt.stored)
			}
		})
	}
}

// recoveringStore is failingStore until recovered is set: a disk that
// fills and then has room again.
type recoveringStore struct {
	failingStore
	recovered *atomic.Bool
}

func (s recoveringStore) Open(ctx context.Context, id int64) (store.Session, error) {
	if s.recovered.Load() {
		return s.Store.Open(ctx, id)
	}
	return s.failingStore.Open(ctx, id)
}

// TestSMTPRetryStoresOnlyMissing: after a 451 for the whole message, the
// sender's retries store only the copies still missing, so a recipient
// whose copy keeps failing does not give the others a copy at every
// retry; once every copy is stored the reply is 250. A message sent again
// after its 250, or the same text from another sender, is a new message.
func TestSMTPRetryStoresOnlyMissing(t *testing.T) {
	recovered := new(atomic.Bool)
	f, _ := newSMTPFixture(t, 0, func(c *Config) {
		failing := failingStore{Store: c.Deliverer.Store, account: "bob@example.org"}
		c.Deliverer = &delivery.Deliverer{Store: recoveringStore{failing, recovered}}
	})
	if err := f.st.SetQuota(context.Background(), "bob@example.org", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	send := func(from string) string {
		t.Helper()
		l := dialLMTP(t, f.addr)
		l.cmd("EHLO client.example.net")
		replies := lmtpSessionOn(l, []string{"MAIL FROM:<" + from + ">", "RCPT TO:<alice@example.org>", "RCPT TO:<bob@example.org>"}, testMessage)
		if len(replies) != 1 {
			t.Fatalf("replies after the data: %q, want one", replies)
		}
		return replies[0]
	}
	counts := func() [2]int {
		return [2]int{len(f.inbox(t, "alice@example.org")), len(f.inbox(t, "bob@example.org"))}
	}
	for i, step := range []struct {
		what    string
		from    string
		recover bool
		want    string
		counts  [2]int // alice's and bob's messages after the step
	}{
		{"bob's copy fails", "dave@example.net", false, "451 4.3.0 ", [2]int{1, 0}},
		{"the retry, bob's copy fails again", "dave@example.net", false, "451 4.3.0 ", [2]int{1, 0}},
		{"the same text from another sender", "erin@example.net", false, "451 4.3.0 ", [2]int{2, 0}},
		{"the retry once bob's mailbox works", "dave@example.net", true, "250 2.0.0 ", [2]int{2, 1}},
		{"sent again after its 250", "dave@example.net", true, "250 2.0.0 ", [2]int{3, 2}},
	} {
		recovered.Store(step.recover)
		if got := send(step.from); !strings.HasPrefix(got, step.want) {
			t.Fatalf("step %d (%s): reply %q, want %q", i, step.what, got, step.want)
		}
		if got := counts(); got != step.counts {
			t.Errorf("step %d (%s): alice and bob hold %v messages, want %v", i, step.what, got, step.counts)
		}
	}
}

// TestSMTPRetryOfSpooledMessage: the retry memory reads a message it
// must know again from the spool, past the trace fields, which differ at
// each try. A message too large to spool in memory, stored for alice
// and not bob, is stored once for each when the sender tries again,
// however it sends it (DATA, then BDAT in two chunks), and a third try
// before bob's mailbox works stores nothing more.
func TestSMTPRetryOfSpooledMessage(t *testing.T) {
	recovered := new(atomic.Bool)
	f, _ := newSMTPFixture(t, 0, func(c *Config) {
		failing := failingStore{Store: c.Deliverer.Store, account: "bob@example.org"}
		c.Deliverer = &delivery.Deliverer{Store: recoveringStore{failing, recovered}}
	})
	if err := f.st.SetQuota(context.Background(), "bob@example.org", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("From: dave@example.net\r\nSubject: big\r\n\r\n")
	for i := 0; b.Len() < 200<<10; i++ {
		fmt.Fprintf(&b, "line %d of a message larger than the spool keeps in memory\r\n", i)
	}
	msg := b.String()
	envelope := []string{"MAIL FROM:<dave@example.net>", "RCPT TO:<alice@example.org>", "RCPT TO:<bob@example.org>"}
	viaData := func() string {
		l := dialLMTP(t, f.addr)
		l.cmd("EHLO client.example.net")
		replies := lmtpSessionOn(l, envelope, msg)
		if len(replies) != 1 {
			t.Fatalf("replies after the data: %q, want one", replies)
		}
		return replies[0]
	}
	viaBDAT := func() string {
		l := dialLMTP(t, f.addr)
		l.cmd("EHLO client.example.net")
		for _, line := range envelope {
			if r := l.cmd(line); !strings.HasPrefix(r, "250 ") {
				t.Fatalf("%s: %q", line, r)
			}
		}
		half := len(msg) / 2
		l.send(fmt.Sprintf("BDAT %d\r\n%s", half, msg[:half]))
		if r := l.reply(); !strings.HasPrefix(r, "250 ") {
			t.Fatalf("first chunk: %q", r)
		}
		l.send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(msg)-half, msg[half:]))
		return l.reply()
	}
	for i, step := range []struct {
		send    func() string
		recover bool
		want    string
		counts  [2]int // alice's and bob's messages after the step
	}{
		{viaData, false, "451 4.3.0 ", [2]int{1, 0}},
		{viaBDAT, false, "451 4.3.0 ", [2]int{1, 0}},
		{viaBDAT, true, "250 2.0.0 ", [2]int{1, 1}},
	} {
		recovered.Store(step.recover)
		if got := step.send(); !strings.HasPrefix(got, step.want) {
			t.Fatalf("try %d: reply %q, want %q", i+1, got, step.want)
		}
		if got := [2]int{len(f.inbox(t, "alice@example.org")), len(f.inbox(t, "bob@example.org"))}; got != step.counts {
			t.Errorf("try %d: alice and bob hold %v messages, want %v", i+1, got, step.counts)
		}
	}
	for _, name := range []string{"alice@example.org", "bob@example.org"} {
		if got := f.inbox(t, name); len(got) == 1 && !strings.HasSuffix(got[0], msg) {
			t.Errorf("%s's copy differs from the message sent", name)
		}
	}
}

// TestSMTPShutdown: as in LMTP, a session between transactions hears 421
// at once, and a transaction in flight, here over TLS, finishes and gets
// its one reply before the goodbye; Shutdown returns after it is stored.
func TestSMTPShutdown(t *testing.T) {
	f, clientTLS := newSMTPFixture(t, 0)
	idle := dialLMTP(t, f.addr)
	idle.cmd("EHLO client.example.net")
	busy := dialLMTP(t, f.addr)
	busy.cmd("EHLO client.example.net")
	busy.starttls(clientTLS)
	busy.cmd("EHLO client.example.net")
	for _, line := range []string{"MAIL FROM:<carol@example.net>", "RCPT TO:<alice@example.org>", "DATA"} {
		busy.cmd(line)
	}
	busy.send("Subject: in flight\r\n\r\n")

	done := make(chan error, 1)
	go func() { done <- f.srv.Shutdown(context.Background()) }()
	if got := idle.reply(); !strings.HasPrefix(got, "421 4.3.2") {
		t.Errorf("idle session during shutdown: %q", got)
	}
	busy.send("body\r\n.\r\n")
	// The reply is left unread until Shutdown has returned: its 250 says
	// the message is stored, so reading it first would leave the check
	// of the INBOX nothing to catch.
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := f.inbox(t, "alice@example.org"); len(got) != 1 {
		t.Errorf("INBOX holds %d messages once Shutdown returned, want the one in flight", len(got))
	}
	if got := busy.reply(); !strings.HasPrefix(got, "250 2.0.0 message delivered") {
		t.Errorf("transaction in flight: %q", got)
	}
	if got := busy.reply(); !strings.HasPrefix(got, "421 4.3.2") {
		t.Errorf("after the transaction in flight: %q, want 421 4.3.2", got)
	}
}

// TestSMTPHandshakeStall: a client that sends STARTTLS and then nothing
// of a handshake is closed once TLSHandshakeTimeout has passed.
func TestSMTPHandshakeStall(t *testing.T) {
	f, _ := newSMTPFixture(t, 0, func(c *Config) { c.TLSHandshakeTimeout = 200 * time.Millisecond })
	l := dialLMTP(t, f.addr)
	l.cmd("EHLO client.example.net")
	if got := l.cmd("STARTTLS"); !strings.HasPrefix(got, "220 ") {
		t.Fatalf("STARTTLS: %q", got)
	}
	// Within the generous deadline of reply's reads, the server gives up.
	l.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if n, err := l.r.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("after a stalled handshake: read %d bytes, %v; want the connection closed", n, err)
	}
}

// TestSMTPLimits: the limits of the [smtp] settings, each answered as the
// protocol defines: a RCPT past MaxRecipients is 452 4.5.3 (RFC 5321
// 4.5.3.1.10) and the transaction goes on with the others; a client
// silent past the read timeout hears 421 4.4.2 and is closed, and its
// message, cut off, is stored for no one.
func TestSMTPLimits(t *testing.T) {
	f, _ := newSMTPFixture(t, 0, func(c *Config) {
		c.MaxRecipients = 2
		c.ReadTimeout = time.Second
	})
	l := dialLMTP(t, f.addr)
	l.cmd("EHLO client.example.net")
	for _, tt := range []struct{ line, want string }{
		{"MAIL FROM:<carol@example.net>", "250 "},
		{"RCPT TO:<alice@example.org>", "250 "},
		{"RCPT TO:<bob@example.org>", "250 "},
		{"RCPT TO:<alice+news@example.org>", "452 4.5.3 "},
		{"DATA", "354 "},
	} {
		if got := l.cmd(tt.line); !strings.HasPrefix(got, tt.want) {
			t.Fatalf("%s: %q, want %q", tt.line, got, tt.want)
		}
	}
	l.send("Subject: cut off\r\n\r\n")
	if got := l.reply(); !strings.HasPrefix(got, "421 4.4.2 ") {
		t.Errorf("a client silent past the timeout: %q", got)
	}
	if _, err := l.r.ReadString('\n'); err == nil {
		t.Error("the connection stayed open")
	}
	if got := f.inbox(t, "alice@example.org"); len(got) != 0 {
		t.Errorf("alice has %d messages, want none", len(got))
	}
}

// TestSMTPTLSMinimumVersion: STARTTLS takes TLS 1.2 and 1.3, and refuses
// a client that offers no more than TLS 1.1.
func TestSMTPTLSMinimumVersion(t *testing.T) {
	f, clientTLS := newSMTPFixture(t, 0)
	for _, tt := range []struct {
		max uint16
		ok  bool
	}{{tls.VersionTLS11, false}, {tls.VersionTLS12, true}, {tls.VersionTLS13, true}} {
		l := dialLMTP(t, f.addr)
		l.cmd("EHLO client.example.net")
		if got := l.cmd("STARTTLS"); !strings.HasPrefix(got, "220 ") {
			t.Fatalf("STARTTLS: %q", got)
		}
		cfg := clientTLS.Clone()
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, tt.max
		err := tls.Client(l.c, cfg).Handshake()
		if ok := err == nil; ok != tt.ok {
			t.Errorf("TLS up to %s: handshake %v", tls.VersionName(tt.max), err)
		}
	}
}

// TestSMTPCurl delivers with curl's SMTP client, another that no one here
// wrote: STARTTLS required (--ssl-reqd), the certificate checked against
// the test's, one recipient.
func TestSMTPCurl(t *testing.T) {
	curl := clienttest.Need(t, "curl", "curl")
	f, _ := newSMTPFixture(t, 0)
	_, port, _ := net.SplitHostPort(f.addr)
	cmd := exec.Command(curl, "--silent", "--show-error", "--url", "smtp://mx.example.org:"+port+"/client.example.net",
		"--resolve", "mx.example.org:"+port+":127.0.0.1", "--ssl-reqd", "--cacert", f.caFile,
		"--mail-from", "carol@example.net", "--mail-rcpt", "alice@example.org", "--upload-file", "-")
	cmd.Stdin = strings.NewReader(testMessage)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	got := f.inbox(t, "alice@example.org")
	if len(got) != 1 || !strings.HasSuffix(got[0], "\r\n"+testMessage) || !strings.Contains(got[0], "Received: from client.example.net ([127.0.0.1])\r\n\tby mx.example.org (buzon) with ESMTPS (TLS") {
		t.Errorf("alice's INBOX: %q", got)
	}
}

// TestSMTPQuotaAtRCPT: a recipient whose byte quota has no room for the
// message MAIL declared, trace fields included, is refused at RCPT with
// 452 4.2.2, however large the SIZE=; without SIZE=, one with room for
// a message of a few lines is taken.
func TestSMTPQuotaAtRCPT(t *testing.T) {
	f, _ := newSMTPFixture(t, 0)
	if err := f.st.SetQuota(context.Background(), "alice@example.org", store.Quota{MaxBytes: 10_000}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		mail string
		want string
	}{
		{"MAIL FROM:<carol@example.net> SIZE=8000", "250 "},
		{"MAIL FROM:<carol@example.net> SIZE=9500", "452 4.2.2 <alice@example.org> "},
		{"MAIL FROM:<carol@example.net> SIZE=20000", "452 4.2.2 "},
		// Without a size limit, SIZE= may be as large as int64 holds:
		// the sum with the usage must not wrap round to room.
		{"MAIL FROM:<carol@example.net> SIZE=99999999999999999999", "452 4.2.2 "},
		{"MAIL FROM:<carol@example.net> SIZE=9223372036854775000", "452 4.2.2 "},
		{"MAIL FROM:<carol@example.net>", "250 "},
	} {
		l := dialLMTP(t, f.addr)
		l.cmd("EHLO client.example.net")
		l.cmd(tt.mail)
		if got := l.cmd("RCPT TO:<alice@example.org>"); !strings.HasPrefix(got, tt.want) {
			t.Errorf("%s, then RCPT: %q, want %q", tt.mail, got, tt.want)
		}
	}
}

// TestSMTPTemporaryRefusalsNotCounted: only permanent refusals count
// towards MaxErrors. A message to more recipients than MaxRecipients (a
// mailing list) gets 452 4.5.3 for those past the limit and must still be
// taken for the others: the sender sends them the message in a
// transaction of their own. Were the 452s counted, the session would end
// with 421 before the data, and the same again at every retry.
func TestSMTPTemporaryRefusalsNotCounted(t *testing.T) {
	f, _ := newSMTPFixture(t, 0, func(c *Config) {
		c.MaxRecipients = 2
		c.MaxErrors = 3
	})
	l := dialLMTP(t, f.addr)
	l.cmd("EHLO client.example.net")
	want := []struct{ line, want string }{
		{"MAIL FROM:<list@example.net>", "250 "},
		{"RCPT TO:<alice@example.org>", "250 "},
		{"RCPT TO:<alice+list@example.org>", "250 "},
	}
	for i := range 10 {
		want = append(want, struct{ line, want string }{fmt.Sprintf("RCPT TO:<alice+%d@example.org>", i), "452 4.5.3 "})
	}
	want = append(want, struct{ line, want string }{"DATA", "354 "})
	for _, tt := range want {
		if got := l.cmd(tt.line); !strings.HasPrefix(got, tt.want) {
			t.Fatalf("%s: %q, want %q", tt.line, got, tt.want)
		}
	}
	if got := l.cmd(dotStuff(testMessage) + "."); !strings.HasPrefix(got, "250 2.0.0 ") {
		t.Fatalf("after the data: %q", got)
	}
	// Permanent refusals still count: the third ends the session.
	for i, want := range []string{"500 5.5.2 ", "500 5.5.2 ", "500 5.5.2 "} {
		if got := l.cmd("XYZZY"); !strings.HasPrefix(got, want) {
			t.Fatalf("unknown command %d: %q, want %q", i+1, got, want)
		}
	}
	if got := l.reply(); !strings.HasPrefix(got, "421 4.7.0 ") {
		t.Errorf("after 3 permanent refusals: %q, want 421 4.7.0", got)
	}
	if got := f.inbox(t, "alice@example.org"); len(got) != 2 {
		t.Errorf("alice has %d messages, want 2 (alice and alice+list)", len(got))
	}
}

// TestSMTPLongLinesCounted: a command line over the limit is refused
// (500 5.5.2) and counts towards MaxErrors like any permanent refusal, so
// a client that sends nothing else is sent away rather than answered
// for as long as it keeps sending.
func TestSMTPLongLinesCounted(t *testing.T) {
	f, _ := newSMTPFixture(t, 0, func(c *Config) {
		c.MaxLineLength = 100
		c.MaxErrors = 3
	})
	l := dialLMTP(t, f.addr)
	long := "NOOP " + strings.Repeat("x", 200)
	for i, want := range []string{"500 5.5.2 ", "500 5.5.2 ", "500 5.5.2 ", "421 4.7.0 "} {
		if i < 3 {
			l.send(long + "\r\n")
		}
		if got := l.reply(); !strings.HasPrefix(got, want) {
			t.Fatalf("reply %d: %q, want %q", i+1, got, want)
		}
	}
}

// TestSMTPLongNames: names that go into the trace fields are bounded, so
// that the Return-Path line and the Received field's lines stay within
// RFC 5322 2.1.1's 998 octets: a path over maxPath is 501 (RFC 5321
// 4.5.3.1.10, "Path too long"), a HELO name over 255 octets 501.
func TestSMTPLongNames(t *testing.T) {
	f, _ := newSMTPFixture(t, 0)
	l := dialLMTP(t, f.addr)
	longLocal := strings.Repeat("a", maxPath-len("@example.net")+1)
	for _, tt := range []struct{ line, want string }{
		{"EHLO " + strings.Repeat("h", 256), "501 5.5.4 "},
		{"EHLO " + strings.Repeat("h", 255), "250 "},
		{"MAIL FROM:<" + longLocal + "@example.net>", "501 5.1.7 "},
		{"MAIL FROM:<" + longLocal[1:] + "@example.net>", "250 "},
		{"RCPT TO:<" + strings.Repeat("a", maxPath) + "@example.org>", "501 5.1.3 "},
		{"RCPT TO:<alice@example.org>", "250 "},
		{"DATA", "354 "},
		{dotStuff(testMessage) + ".", "250 "},
	} {
		if got := l.cmd(tt.line); !strings.HasPrefix(got, tt.want) {
			t.Fatalf("%.40s...: %q, want %q", tt.line, got, tt.want)
		}
	}
	got := f.inbox(t, "alice@example.org")
	if len(got) != 1 {
		t.Fatalf("alice has %d messages, want 1", len(got))
	}
	for line := range strings.SplitSeq(got[0], "\r\n") {
		if len(line) > 998 {
			t.Errorf("a line of %d octets: %.60q...", len(line), line)
		}
	}
}

// TestSMTPPythonPastRCPTMAX: Python's smtplib pipelines a message to more
// recipients than the server takes, more past the limit than MaxErrors:
// those past it get 452 4.5.3, and the message is taken for the others.
func TestSMTPPythonPastRCPTMAX(t *testing.T) {
	py := clienttest.Need(t, "python3", "python3")
	f, _ := newSMTPFixture(t, 0, func(c *Config) {
		c.MaxRecipients = 2
		c.MaxErrors = 3
	})
	host, port, _ := net.SplitHostPort(f.addr)
	args := []string{filepath.Join("testdata", "smtp_pipeline.py"), host, port, f.caFile, "list@example.net"}
	want := "250\n"
	for i := range 10 {
		args = append(args, fmt.Sprintf("alice+%d@example.org", i))
		want += map[bool]string{true: "250\n", false: "452\n"}[i < 2]
	}
	want += "354\n250\n"
	cmd := exec.Command(py, args...)
	cmd.Stdin = strings.NewReader(testMessage)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("smtp_pipeline.py: %v\n%s", err, out)
	}
	if string(out) != want {
		t.Errorf("replies: %q, want %q", out, want)
	}
	if got := f.inbox(t, "alice@example.org"); len(got) != 2 {
		t.Errorf("alice has %d messages, want 2 (alice+0 and alice+1)", len(got))
	}
}

// TestSMTPRetryNotRefusedForItsOwnCopy: the retry after a 451 finds the
// quota of a recipient whose copy was stored at the first try smaller by
// that copy. Refused at RCPT for it (452 4.2.2), the recipient would be
// retried by the sender until its mailbox had room, and bounced as full
// after days with the message in it. A recipient with a copy remembered
// for a retry is not refused at RCPT for its quota: the append decides,
// and for this message it is not made.
func TestSMTPRetryNotRefusedForItsOwnCopy(t *testing.T) {
	recovered := new(atomic.Bool)
	f, _ := newSMTPFixture(t, 0, func(c *Config) {
		failing := failingStore{Store: c.Deliverer.Store, account: "bob@example.org"}
		c.Deliverer = &delivery.Deliverer{Store: recoveringStore{failing, recovered}}
	})
	ctx := context.Background()
	if err := f.st.SetQuota(ctx, "bob@example.org", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	// Room for the message once, not twice.
	size := len(testMessage) + 100
	if err := f.st.SetQuota(ctx, "alice@example.org", store.Quota{MaxBytes: int64(2*size + traceRoom)}); err != nil {
		t.Fatal(err)
	}
	mail := fmt.Sprintf("MAIL FROM:<dave@example.net> SIZE=%d", size)
	for i, step := range []struct {
		recover bool
		want    string
	}{{false, "451 4.3.0 "}, {true, "250 2.0.0 "}} {
		recovered.Store(step.recover)
		l := dialLMTP(t, f.addr)
		l.cmd("EHLO client.example.net")
		replies := lmtpSessionOn(l, []string{mail, "RCPT TO:<alice@example.org>", "RCPT TO:<bob@example.org>"}, testMessage)
		if len(replies) != 1 || !strings.HasPrefix(replies[0], step.want) {
			t.Fatalf("try %d: replies %q, want %q", i+1, replies, step.want)
		}
	}
	if a, b := len(f.inbox(t, "alice@example.org")), len(f.inbox(t, "bob@example.org")); a != 1 || b != 1 {
		t.Errorf("alice and bob hold %d and %d messages, want 1 each", a, b)
	}
	// Another message to alice is still refused at RCPT for her quota.
	l := dialLMTP(t, f.addr)
	l.cmd("EHLO client.example.net")
	l.cmd(fmt.Sprintf("MAIL FROM:<erin@example.net> SIZE=%d", size))
	if got := l.cmd("RCPT TO:<alice@example.org>"); !strings.HasPrefix(got, "452 4.2.2 ") {
		t.Errorf("a new message to alice, full: %q, want 452 4.2.2", got)
	}
}

// TestSMTPPythonSendMessageUTF8: Python's smtplib send_message, for a
// message from an internationalized address, adds SMTPUTF8 and
// BODY=8BITMIME to the options its caller gave, the same ones here, so
// MAIL names each twice; the message is taken, with the sender as given.
func TestSMTPPythonSendMessageUTF8(t *testing.T) {
	py := clienttest.Need(t, "python3", "python3")
	f, _ := newSMTPFixture(t, 0)
	host, port, _ := net.SplitHostPort(f.addr)
	const script = `import smtplib, sys
from email.message import EmailMessage
m = EmailMessage()
m["From"], m["To"], m["Subject"] = "jörg@bücher.example", "alice@example.org", "Grüße"
m.set_content("Schöne Grüße\n")
with smtplib.SMTP(sys.argv[1], int(sys.argv[2]), local_hostname="client.example.net") as s:
    print(s.send_message(m, mail_options=["SMTPUTF8", "BODY=8BITMIME"]))
`
	out, err := exec.Command(py, "-c", script, host, port).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "{}" {
		t.Fatalf("send_message: %v\n%s", err, out)
	}
	got := f.inbox(t, "alice@example.org")
	if len(got) != 1 || !strings.HasPrefix(got[0], "Return-Path: <jörg@bücher.example>\r\nReceived: from client.example.net ([127.0.0.1])\r\n\tby mx.example.org (buzon) with UTF8SMTP\r\n") {
		t.Errorf("alice's INBOX: %q", got)
	}
}
