package smtpserver

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"flag"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/auth"
	"github.com/buzon-mail/buzon/internal/clienttest"
	"github.com/buzon-mail/buzon/internal/clienttest/transcript"
	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/message"
	"github.com/buzon-mail/buzon/internal/smtpclient"
)

var update = flag.Bool("update", false, "rewrite the golden transcripts in testdata/submission from what the server says")

// submissionPassword is every submission test account's password.
const submissionPassword = "secret-pw"

// submissionFixture is a submission server over a store with alice and
// bob, alice with the alias info@example.org, relaying to relay.
type submissionFixture struct {
	*fixture
	relay     *fakeRelay
	clientTLS *tls.Config
}

// newSubmissionFixture starts a submission server relaying to a fake
// relay with rules, on a listener of its own per listen call.
func newSubmissionFixture(t *testing.T, rules relayRules, opts ...func(*Config)) *submissionFixture {
	t.Helper()
	relay := startRelay(t, rules)
	acfg := config.Default().Auth
	acfg.Argon2Time, acfg.Argon2Memory = 1, 64
	acfg.FailureDelay, acfg.MaxFailureDelay = 0, 0
	opts = append([]func(*Config){func(c *Config) {
		c.Protocol = Submission
		authn, err := auth.New(acfg, c.Deliverer.Store, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.Auth = authn
		c.Relay = smtpclient.Config{Addr: relay.addr, Security: smtpclient.Plain, Hostname: "mx.example.org",
			ConnectTimeout: 30 * time.Second}
	}}, opts...)
	f, clientTLS := newSMTPFixture(t, 0, opts...)
	ctx := context.Background()
	cred, err := auth.NewHasher(acfg).Credentials(submissionPassword)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"alice@example.org", "bob@example.org"} {
		if err := f.st.SetCredentials(ctx, name, cred); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.st.AddAlias(ctx, "info@example.org", "alice@example.org"); err != nil {
		t.Fatal(err)
	}
	return &submissionFixture{fixture: f, relay: relay, clientTLS: clientTLS}
}

// listen serves the fixture's server on another listener, with implicit
// TLS when implicitTLS is set, its clients seen as coming from remote
// when it is valid; it returns the listener's address.
func (f *submissionFixture) listen(t *testing.T, remote netip.Addr, implicitTLS bool) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if remote.IsValid() {
		l = clienttest.FakeRemote(l, remote)
	}
	serve := f.srv.Serve
	if implicitTLS {
		serve = f.srv.ServeTLS
	}
	done := make(chan error, 1)
	go func() { done <- serve(l) }()
	t.Cleanup(func() {
		// The fixture's own cleanup, which runs after this one, shuts the
		// server down; a listener closed here ends its Serve at once.
		l.Close()
		if err := <-done; err != nil && !errors.Is(err, ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return addr
}

// The transcripts in testdata/submission, played by package transcript
// (its doc says how they read); the server's ids read {id}. The
// thunderbird, outlook and apple_mail transcripts replay what those
// clients send, as their SMTP logs show it.
var submissionTranscripts = []struct {
	file  string
	rules relayRules
	opts  func(*Config)
	// remote has the client come from 192.0.2.10, not loopback.
	remote bool
	// relayed are the recipients of each transaction the relay took.
	relayed []string
}{
	{file: "auth.txt"},
	{file: "senders.txt", relayed: []string{"bob@example.org", "bob@example.org", "bob@example.org"}},
	{file: "relay_refuses.txt", rules: relayRules{refuse: map[string]string{"nobody@example.net": "550 5.1.1 <nobody@example.net>: Recipient address rejected: User unknown"}},
		relayed: []string{"bob@example.org carol@example.net"}},
	{file: "pipelining.txt", relayed: []string{"bob@example.org carol@example.net", "bob@example.org"}},
	{file: "bdat.txt", relayed: []string{"bob@example.org"}},
	{file: "plaintext_refused.txt", remote: true, relayed: []string{"bob@example.org"}},
	{file: "thunderbird.txt", remote: true, relayed: []string{"bob@example.org carol@example.net"}},
	{file: "outlook.txt", remote: true, relayed: []string{"bob@example.org"}},
	{file: "apple_mail.txt", relayed: []string{"bob@example.org"}},
	{file: "implicit_tls.txt", relayed: []string{"bob@example.org"}},
	{file: "relay_fails.txt", rules: relayRules{failAt: ".", failReply: "451 4.3.0 Error: queue file write error"}},
	{file: "relay_gone.txt", rules: relayRules{failAt: "RCPT"}},
	{file: "max_errors.txt", opts: func(c *Config) { c.MaxErrors = 3 }},
}

// TestSubmissionTranscripts: AUTH before MAIL (RFC 4954), only after TLS
// off loopback, senders held to the account's addresses, the relay's
// answers passed on, and its failures made 451.
func TestSubmissionTranscripts(t *testing.T) {
	for _, tc := range submissionTranscripts {
		t.Run(strings.TrimSuffix(tc.file, ".txt"), func(t *testing.T) {
			var opts []func(*Config)
			if tc.opts != nil {
				opts = append(opts, tc.opts)
			}
			f := newSubmissionFixture(t, tc.rules, opts...)
			remote := f.listen(t, netip.MustParseAddr("192.0.2.10"), false)
			implicit := f.listen(t, netip.Addr{}, true)
			p := transcript.Protocol{
				Dial: func(implicitTLS bool) (net.Conn, error) {
					if implicitTLS {
						return tls.Dial("tcp", implicit, f.clientTLS)
					}
					return net.Dial("tcp", f.addr)
				},
				ClientTLS: f.clientTLS,
				Directive: func(args []string) bool {
					return false
				},
				Normalise: normaliseIDs,
			}
			if tc.remote {
				p.Dial = func(bool) (net.Conn, error) { return net.Dial("tcp", remote) }
			}
			transcript.Check(t, filepath.Join("testdata", "submission", tc.file), p, *update)
			var got []string
			for _, tx := range f.relay.transactions() {
				got = append(got, strings.Join(tx.rcpts, " "))
			}
			if strings.Join(got, "|") != strings.Join(tc.relayed, "|") {
				t.Errorf("relayed %q, want %q", got, tc.relayed)
			}
		})
	}
}

var idPattern = regexp.MustCompile(`id [A-Z2-7]{12}`)

// normaliseIDs puts {id} for the transaction ids, which change from run
// to run.
func normaliseIDs(line string) string {
	return idPattern.ReplaceAllString(line, "id {id}")
}

// submit runs a session on addr: EHLO, AUTH PLAIN as user, MAIL from,
// RCPT to each of rcpts, and the message msg; it returns the last reply
// (or the first one that is not a success) and the replies before.
func submit(t *testing.T, addr, user, from string, rcpts []string, msg string) string {
	t.Helper()
	l := dialLMTP(t, addr)
	for _, cmd := range []string{"EHLO client.example.net",
		"AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+submissionPassword)),
		"MAIL FROM:<" + from + ">"} {
		if r := l.cmd(cmd); r[0] != '2' {
			return r
		}
	}
	for _, to := range rcpts {
		if r := l.cmd("RCPT TO:<" + to + ">"); r[0] != '2' {
			return r
		}
	}
	if r := l.cmd("DATA"); !strings.HasPrefix(r, "354 ") {
		return r
	}
	l.send(dotStuff(msg) + ".\r\n")
	return l.reply()
}

// TestSubmissionSenders: an account sends as its own address, an alias of
// it, a +detail of either, in any case, in MAIL FROM and in the From
// and Sender fields; another address is refused with 553 5.7.1 naming
// it, a From or Sender that is not a mailbox-list as RFC 5322 3.4 writes
// it (of at most 10 and 1 addresses, one field each) with 550 5.6.0, and
// nothing reaches the relay.
func TestSubmissionSenders(t *testing.T) {
	msg := func(header string) string {
		return header + "To: bob@example.org\r\nSubject: hi\r\n\r\nHello.\r\n"
	}
	for _, tt := range []struct {
		name, from, header, want string
	}{
		{"own address", "alice@example.org", "From: Alice <alice@example.org>\r\n", "250 2.0.0 message sent"},
		{"own address in other case", "Alice@EXAMPLE.org", "From: ALICE@example.ORG\r\n", "250 2.0.0 message sent"},
		{"alias", "info@example.org", "From: Info <info@example.org>\r\n", "250 2.0.0 message sent"},
		{"+detail", "alice+lists@example.org", "From: alice+lists@example.org\r\n", "250 2.0.0 message sent"},
		{"alias +detail", "info+news@example.org", "From: info+news@example.org\r\n", "250 2.0.0 message sent"},
		{"From with two of hers", "alice@example.org", "From: alice@example.org, Info <info@example.org>\r\n", "250 2.0.0 message sent"},
		{"From of ten, all hers", "alice@example.org", "From: " + strings.Repeat("alice@example.org, ", 9) + "Info <info@example.org>\r\n", "250 2.0.0 message sent"},
		{"From and Sender both hers", "alice@example.org", "From: alice@example.org, info@example.org\r\nSender: alice@example.org\r\n", "250 2.0.0 message sent"},
		{"another account in MAIL", "bob@example.org", "From: alice@example.org\r\n", "553 5.7.1 <bob@example.org> is not an address of alice@example.org"},
		{"stranger in MAIL", "ceo@example.com", "From: alice@example.org\r\n", "553 5.7.1 <ceo@example.com> is not an address of alice@example.org"},
		{"null sender", "", "From: alice@example.org\r\n", "553 5.7.1 the null sender"},
		{"detail of nobody", "nobody+x@example.org", "From: alice@example.org\r\n", "553 5.7.1 <nobody+x@example.org>"},
		{"stranger in From", "alice@example.org", "From: The Boss <ceo@example.com>\r\n", "553 5.7.1 From: <ceo@example.com> is not an address of alice@example.org"},
		{"another account in From", "alice@example.org", "From: alice@example.org, bob@example.org\r\n", "553 5.7.1 From: <bob@example.org>"},
		{"second From field", "alice@example.org", "From: alice@example.org\r\nFrom: ceo@example.com\r\n", "550 5.6.0 more than one From field"},
		{"second Sender field", "alice@example.org", "From: alice@example.org\r\nSender: alice@example.org\r\nSender: ceo@example.com\r\n", "550 5.6.0 more than one Sender field"},
		// The review's padding: a forgiving reader stopped at 10000
		// entries, empty groups among them, before ceo@.
		{"From padded with groups", "alice@example.org", "From: alice@example.org, " + strings.Repeat("g:;, ", 5000) + "ceo@example.com\r\n", "550 5.6.0 From: a group"},
		{"Sender padded with groups", "alice@example.org", "From: alice@example.org\r\nSender: alice@example.org, " + strings.Repeat("g:;, ", 5000) + "ceo@example.com\r\n", "550 5.6.0 Sender: more than 1 addresses"},
		{"From in a group", "alice@example.org", "From: Us: alice@example.org;\r\n", "550 5.6.0 From: a group"},
		{"From without a comma", "alice@example.org", "From: alice@example.org ceo@example.com\r\n", "550 5.6.0 From: 'c' after <alice@example.org>: addresses are separated by commas"},
		{"From with two angle-addrs", "alice@example.org", "From: Alice <alice@example.org> <ceo@example.com>\r\n", "550 5.6.0 From: '<' after"},
		{"From with eleven addresses", "alice@example.org", "From: " + strings.Repeat("alice@example.org, ", 10) + "info@example.org\r\n", "550 5.6.0 From: more than 10 addresses"},
		{"Sender with two", "alice@example.org", "From: alice@example.org\r\nSender: alice@example.org, info@example.org\r\n", "550 5.6.0 Sender: more than 1 addresses"},
		{"From with a route", "alice@example.org", "From: <@example.org:ceo@example.com>\r\n", "550 5.6.0 From: a source route"},
		{"folded From", "alice@example.org", "From: Alice\r\n <ceo@example.com>\r\n", "553 5.7.1 From: <ceo@example.com>"},
		{"stranger in Sender", "alice@example.org", "From: alice@example.org\r\nSender: ceo@example.com\r\n", "553 5.7.1 Sender: <ceo@example.com>"},
		{"no From", "alice@example.org", "", "550 5.6.0 the message has no From field"},
		{"empty From", "alice@example.org", "From: \r\n", "550 5.6.0 From: an empty address"},
		{"From without a domain", "alice@example.org", "From: alice\r\n", `550 5.6.0 From: "alice" is not an address`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newSubmissionFixture(t, relayRules{})
			got := submit(t, f.addr, "alice@example.org", tt.from, []string{"bob@example.org"}, msg(tt.header))
			if !strings.HasPrefix(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			txs := f.relay.transactions()
			if sent := strings.HasPrefix(tt.want, "250"); sent != (len(txs) == 1) {
				t.Fatalf("relay took %d messages", len(txs))
			}
		})
	}
}

// TestSubmissionHeaderLimit: a message whose header did not end within
// the parser's limit (1 MiB) is refused, so that no field after it goes
// to the relay unread; a header under the limit, or one without a body
// after it, is read whole.
func TestSubmissionHeaderLimit(t *testing.T) {
	pad := strings.Repeat("X-Pad: "+strings.Repeat("x", 70)+"\r\n", message.DefaultMaxHeaderBytes/79)
	for _, tt := range []struct {
		name, msg, want string
	}{
		{"From after 1 MiB of fields", "From: alice@example.org\r\n" + pad + "From: ceo@example.com\r\nSubject: hi\r\n\r\nHello.\r\n", "552 5.3.4 the header is over 1048576 bytes"},
		{"1 MiB of fields without a body", "From: alice@example.org\r\n" + pad + "Sender: ceo@example.com\r\n", "552 5.3.4 "},
		{"just under 1 MiB", "From: alice@example.org\r\n" + pad[:len(pad)-79*13] + "\r\nHello.\r\n", "250 2.0.0 message sent"},
		{"no body", "From: alice@example.org\r\nSubject: hi\r\n", "250 2.0.0 message sent"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newSubmissionFixture(t, relayRules{})
			got := submit(t, f.addr, "alice@example.org", "alice@example.org", []string{"bob@example.org"}, tt.msg)
			if !strings.HasPrefix(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			if sent := strings.HasPrefix(tt.want, "250"); sent != (len(f.relay.transactions()) == 1) {
				t.Fatalf("relay took %d messages", len(f.relay.transactions()))
			}
		})
	}
}

// TestSubmissionAllowAnySender: submission.allow_any_sender lets an
// account send as anyone; the null sender stays refused.
func TestSubmissionAllowAnySender(t *testing.T) {
	f := newSubmissionFixture(t, relayRules{}, func(c *Config) { c.AllowAnySender = true })
	msg := "From: ceo@example.com\r\nSubject: hi\r\n\r\nHello.\r\n"
	if got := submit(t, f.addr, "alice@example.org", "ceo@example.com", []string{"bob@example.org"}, msg); !strings.HasPrefix(got, "250 ") {
		t.Errorf("as a stranger: %q", got)
	}
	if got := submit(t, f.addr, "alice@example.org", "", []string{"bob@example.org"}, msg); !strings.HasPrefix(got, "553 5.7.1 ") {
		t.Errorf("as <>: %q", got)
	}
}

// TestSubmissionRate: past MaxMessagesPerHour an account's MAIL is put
// off with 451 4.7.0, another account's is not.
func TestSubmissionRate(t *testing.T) {
	f := newSubmissionFixture(t, relayRules{}, func(c *Config) { c.MaxMessagesPerHour = 2 })
	msg := func(from string) string { return "From: " + from + "\r\nSubject: hi\r\n\r\nHello.\r\n" }
	for i, tt := range []struct{ user, want string }{
		{"alice@example.org", "250 "},
		{"alice@example.org", "250 "},
		{"alice@example.org", "451 4.7.0 more than 2 messages in an hour"},
		{"bob@example.org", "250 "},
	} {
		if got := submit(t, f.addr, tt.user, tt.user, []string{"carol@example.net"}, msg(tt.user)); !strings.HasPrefix(got, tt.want) {
			t.Errorf("message %d as %s: %q, want %q", i+1, tt.user, got, tt.want)
		}
	}
	if n := len(f.relay.transactions()); n != 3 {
		t.Errorf("relay took %d messages, want 3", n)
	}
}

// TestSubmissionTraceFields: the relay gets the message with a Received
// field on top that says ESMTPSA (RFC 3848), and a Date and Message-ID
// where the client gave none (RFC 6409 8.2, 8.3), and else the message as
// the client sent it.
func TestSubmissionTraceFields(t *testing.T) {
	bare := "From: alice@example.org\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\nHello.\r\n.dot line\r\n"
	full := "Date: Fri, 27 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@client>\r\n" + bare
	for _, tt := range []struct {
		name, msg string
		added     []string
	}{
		{"bare", bare, []string{"Date: ", "Message-ID: <"}},
		{"full", full, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newSubmissionFixture(t, relayRules{})
			if got := submit(t, f.addr, "alice@example.org", "alice@example.org", []string{"bob@example.org"}, tt.msg); !strings.HasPrefix(got, "250 ") {
				t.Fatalf("submit: %q", got)
			}
			txs := f.relay.transactions()
			if len(txs) != 1 {
				t.Fatalf("relay took %d messages", len(txs))
			}
			data := txs[0].data
			rx := regexp.MustCompile(`^Received: from client\.example\.net \(\[127\.0\.0\.1\]\)\r\n\tby mx\.example\.org \(buzon\) with ESMTPA\r\n\tid [A-Z2-7]{12} for <bob@example\.org>; [^\r\n]+\r\n`)
			loc := rx.FindStringIndex(data)
			if loc == nil {
				t.Fatalf("the relay's message starts %q", data[:min(len(data), 300)])
			}
			rest := data[loc[1]:]
			for _, field := range tt.added {
				line, after, _ := strings.Cut(rest, "\r\n")
				if !strings.HasPrefix(line, field) {
					t.Fatalf("after Received: %q, want %s", line, field)
				}
				rest = after
			}
			if rest != tt.msg {
				t.Errorf("the message as relayed: %q, want %q", rest, tt.msg)
			}
			if txs[0].from != "<alice@example.org>" {
				t.Errorf("relay's MAIL FROM:%s", txs[0].from)
			}
		})
	}
}

// TestSubmissionRelayFailures: whatever goes wrong at the relay, the
// client hears a refusal it can act on at the command that met it, the
// relay's own when it gave one, and 451 when it broke, so that nothing
// the relay did not take is acknowledged.
func TestSubmissionRelayFailures(t *testing.T) {
	msg := "From: alice@example.org\r\nSubject: hi\r\n\r\nHello.\r\n"
	for _, tt := range []struct {
		name  string
		rules relayRules
		down  bool
		want  string
	}{
		{name: "relay down", down: true, want: "451 4.4.1 relay unavailable"},
		{name: "MAIL refused", rules: relayRules{failAt: "MAIL", failReply: "554 5.7.1 sender blocked"}, want: "554 5.7.1 relay: sender blocked"},
		{name: "MAIL needs a login at the relay", rules: relayRules{failAt: "MAIL", failReply: "530 5.7.0 Authentication required"}, want: "451 4.4.1 relay unavailable"},
		{name: "closed at MAIL", rules: relayRules{failAt: "MAIL"}, want: "451 4.4.2 relay failed"},
		{name: "RCPT refused for now", rules: relayRules{failAt: "RCPT", failReply: "450 4.2.0 greylisted"}, want: "450 4.2.0 <bob@example.org> relay: greylisted"},
		{name: "closed at RCPT", rules: relayRules{failAt: "RCPT"}, want: "451 4.4.2 <bob@example.org> relay failed"},
		{name: "DATA refused", rules: relayRules{failAt: "DATA", failReply: "554 5.5.1 no valid recipients"}, want: "554 5.5.1 relay: no valid recipients"},
		{name: "closed at DATA", rules: relayRules{failAt: "DATA"}, want: "451 4.4.2 relay failed"},
		{name: "message refused", rules: relayRules{failAt: ".", failReply: "552 5.3.4 message too big"}, want: "552 5.3.4 relay: message too big"},
		{name: "closed at the end", rules: relayRules{failAt: "."}, want: "451 4.4.2 relay failed"},
		{name: "relay closing", rules: relayRules{failAt: ".", failReply: "421 4.3.2 shutting down"}, want: "451 4.4.2 relay failed"},
		{name: "hangs at the end", rules: relayRules{hangAt: "."}, want: "451 4.4.2 relay failed"},
		{name: "hangs at RCPT", rules: relayRules{hangAt: "RCPT"}, want: "451 4.4.2 <bob@example.org> relay failed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newSubmissionFixture(t, tt.rules, func(c *Config) {
				// The test waits this long for the hanging relay.
				c.Relay.CommandTimeout, c.Relay.DataTimeout = 200*time.Millisecond, 200*time.Millisecond
			})
			if tt.down {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				f.srv.cfg.Relay.Addr = l.Addr().String()
				l.Close()
			}
			got := submit(t, f.addr, "alice@example.org", "alice@example.org", []string{"bob@example.org"}, msg)
			if !strings.HasPrefix(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			if n := len(f.relay.transactions()); n != 0 {
				t.Errorf("relay took %d messages", n)
			}
		})
	}
}

// TestSubmissionRelayDroppedIdle: a relay that drops the connection
// while the client is still sending the message (Postfix's smtpd_timeout)
// gets it on a new one, the transaction replayed, and the client its 250.
func TestSubmissionRelayDroppedIdle(t *testing.T) {
	f := newSubmissionFixture(t, relayRules{dropAtData: true})
	msg := "From: alice@example.org\r\nSubject: hi\r\n\r\nHello.\r\n"
	got := submit(t, f.addr, "alice@example.org", "alice@example.org", []string{"bob@example.org", "carol@example.net"}, msg)
	if !strings.HasPrefix(got, "250 2.0.0 message sent") {
		t.Fatalf("got %q", got)
	}
	txs := f.relay.transactions()
	if len(txs) != 1 || strings.Join(txs[0].rcpts, " ") != "bob@example.org carol@example.net" || !strings.HasSuffix(txs[0].data, msg) {
		t.Errorf("relay took %+v", txs)
	}
	f.relay.mu.Lock()
	defer f.relay.mu.Unlock()
	if f.relay.conns != 2 {
		t.Errorf("relay had %d connections, want 2", f.relay.conns)
	}
}

// TestSubmissionRelayLogin: with relay credentials, the relay session
// logs in with AUTH PLAIN before MAIL, with the password a command
// prints; a relay that refuses the login is a 451 for the client.
func TestSubmissionRelayLogin(t *testing.T) {
	msg := "From: alice@example.org\r\nSubject: hi\r\n\r\nHello.\r\n"
	for _, tt := range []struct {
		name, command, want string
	}{
		{"right password", "echo relay-pw", "250 "},
		{"wrong password", "echo wrong", "451 4.4.1 "},
		{"failing command", "exit 3", "451 4.4.1 "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newSubmissionFixture(t, relayRules{user: "buzon", password: "relay-pw"}, func(c *Config) {
				c.Relay.Username, c.Relay.Password = "buzon", smtpclient.CommandPassword(tt.command)
			})
			got := submit(t, f.addr, "alice@example.org", "alice@example.org", []string{"bob@example.org"}, msg)
			if !strings.HasPrefix(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			if txs := f.relay.transactions(); tt.want == "250 " && (len(txs) != 1 || txs[0].authed != "buzon") {
				t.Errorf("relay took %+v", txs)
			}
		})
	}
}

// TestSubmissionSMTPUTF8: an internationalized message goes on with
// SMTPUTF8 to a relay that offers it; a relay that does not makes MAIL
// a 553 5.6.7 (RFC 6531 3.5) before anything is sent.
func TestSubmissionSMTPUTF8(t *testing.T) {
	for _, tt := range []struct {
		name  string
		rules relayRules
		want  string
	}{
		{"relay takes it", relayRules{}, "250 2.1.0"},
		{"relay does not", relayRules{noSMTPUTF8: true}, "553 5.6.7"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newSubmissionFixture(t, tt.rules)
			l := dialLMTP(t, f.addr)
			l.cmd("EHLO client.example.net")
			l.cmd("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00alice@example.org\x00"+submissionPassword)))
			if got := l.cmd("MAIL FROM:<alice@example.org> SMTPUTF8 BODY=8BITMIME"); !strings.HasPrefix(got, tt.want) {
				t.Fatalf("MAIL: %q, want %q", got, tt.want)
			}
			// Once the relay is known not to carry it, EHLO stops
			// offering SMTPUTF8.
			l.send("EHLO client.example.net\r\n")
			ehlo := ""
			for {
				line, err := l.r.ReadString('\n')
				if err != nil {
					t.Fatal(err)
				}
				ehlo += line
				if line[3] == ' ' {
					break
				}
			}
			if offered := strings.Contains(ehlo, "SMTPUTF8"); offered != !tt.rules.noSMTPUTF8 {
				t.Errorf("EHLO after the relay was reached:\n%s", ehlo)
			}
		})
	}
	f := newSubmissionFixture(t, relayRules{})
	msg := "From: alice@example.org\r\nTo: bob@example.org\r\nSubject: ¡hola!\r\n\r\nñ\r\n"
	l := dialLMTP(t, f.addr)
	for _, cmd := range []string{"EHLO client.example.net",
		"AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00alice@example.org\x00"+submissionPassword)),
		"MAIL FROM:<alice@example.org> SMTPUTF8 BODY=8BITMIME", "RCPT TO:<bob@example.org>", "DATA"} {
		l.cmd(cmd)
	}
	l.send(msg + ".\r\n")
	if got := l.reply(); !strings.HasPrefix(got, "250 ") {
		t.Fatalf("end of data: %q", got)
	}
	txs := f.relay.transactions()
	if len(txs) != 1 || txs[0].from != "<alice@example.org> BODY=8BITMIME SMTPUTF8" && !strings.Contains(txs[0].from, "SMTPUTF8") {
		t.Fatalf("relay took %+v", txs)
	}
	if !strings.Contains(txs[0].data, "with UTF8SMTPA") || !strings.HasSuffix(txs[0].data, msg) {
		t.Errorf("relayed %q", txs[0].data)
	}
}

// TestSubmission8BitMIME: 8-bit mail (BODY=8BITMIME) goes only to a
// relay that offers 8BITMIME (RFC 6152 3), and is refused at MAIL
// otherwise, after which EHLO stops offering 8BITMIME, so that clients
// send 7-bit MIME; 7-bit mail goes either way.
func TestSubmission8BitMIME(t *testing.T) {
	for _, tt := range []struct {
		name  string
		rules relayRules
		mail  string
		want  string
		param string // in the relay's MAIL
	}{
		{"relay takes it", relayRules{}, "MAIL FROM:<alice@example.org> BODY=8BITMIME", "250 ", "BODY=8BITMIME"},
		{"relay does not", relayRules{no8BITMIME: true}, "MAIL FROM:<alice@example.org> BODY=8BITMIME", "554 5.6.3 ", ""},
		{"7-bit to a relay without it", relayRules{no8BITMIME: true}, "MAIL FROM:<alice@example.org> BODY=7BIT", "250 ", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newSubmissionFixture(t, tt.rules)
			l := dialLMTP(t, f.addr)
			l.cmd("EHLO client.example.net")
			l.cmd("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00alice@example.org\x00"+submissionPassword)))
			if got := l.cmd(tt.mail); !strings.HasPrefix(got, tt.want) {
				t.Fatalf("MAIL: %q, want %q", got, tt.want)
			}
			if tt.want != "250 " {
				l.send("EHLO client.example.net\r\n")
				ehlo := ""
				for !strings.Contains(ehlo, "250 ") {
					line, err := l.r.ReadString('\n')
					if err != nil {
						t.Fatal(err)
					}
					ehlo += line
				}
				if strings.Contains(ehlo, "8BITMIME") {
					t.Errorf("EHLO after the relay was reached:\n%s", ehlo)
				}
				return
			}
			l.cmd("RCPT TO:<bob@example.org>")
			l.cmd("DATA")
			l.send("From: alice@example.org\r\nSubject: hi\r\n\r\nHello.\r\n.\r\n")
			if got := l.reply(); !strings.HasPrefix(got, "250 ") {
				t.Fatalf("end of data: %q", got)
			}
			txs := f.relay.transactions()
			if len(txs) != 1 || strings.Contains(txs[0].from, "BODY=8BITMIME") != (tt.param != "") {
				t.Fatalf("relay took %+v", txs)
			}
		})
	}
}

// TestSubmissionPython: Python's smtplib, as scripts and many programs
// send mail: STARTTLS and LOGIN on submission, SMTP_SSL on submissions,
// send_message as the account and as an alias, and a stranger's From
// refused with the reply that names it.
func TestSubmissionPython(t *testing.T) {
	py := clienttest.Need(t, "python3", "python3")
	f := newSubmissionFixture(t, relayRules{})
	implicit := f.listen(t, netip.Addr{}, true)
	remote := f.listen(t, netip.MustParseAddr("192.0.2.10"), false)
	for _, tt := range []struct {
		name, mode, addr, from, envelope, want string
	}{
		{"starttls as the account", "starttls", remote, "alice@example.org", "", "sent\n"},
		{"starttls as an alias", "starttls", remote, "Info <info@example.org>", "", "sent\n"},
		{"implicit TLS", "tls", implicit, "alice@example.org", "", "sent\n"},
		{"implicit TLS as +detail", "tls", implicit, "alice+x@example.org", "", "sent\n"},
		{"as a stranger", "starttls", remote, "ceo@example.com", "", "refused 553 b'5.7.1 <ceo@example.com> is not an address of alice@example.org'\n"},
		// The header check, past a MAIL FROM of her own.
		{"as a stranger in From only", "starttls", remote, "The Boss <ceo@example.com>", "alice@example.org",
			"refused 553 b'5.7.1 From: <ceo@example.com> is not an address of alice@example.org'\n"},
		{"plaintext off loopback", "plain", remote, "alice@example.org", "", "no auth\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			host, port, _ := net.SplitHostPort(tt.addr)
			args := []string{filepath.Join("testdata", "submit.py"), tt.mode, host, port, f.caFile,
				"alice@example.org", submissionPassword, tt.from, "bob@example.org"}
			if tt.envelope != "" {
				args = append(args, tt.envelope)
			}
			cmd := exec.Command(py, args...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("submit.py: %v\n%s", err, out)
			}
			if string(out) != tt.want {
				t.Errorf("submit.py: %q, want %q", out, tt.want)
			}
		})
	}
	if n := len(f.relay.transactions()); n != 4 {
		t.Errorf("relay took %d messages, want 4", n)
	}
}

// TestSubmissionCurl: curl submits over STARTTLS (smtp://, --ssl-reqd)
// and implicit TLS (smtps://) with --user; a wrong password is refused.
func TestSubmissionCurl(t *testing.T) {
	curl := clienttest.Need(t, "curl", "curl")
	f := newSubmissionFixture(t, relayRules{})
	implicit := f.listen(t, netip.Addr{}, true)
	msg := "From: alice@example.org\r\nTo: bob@example.org\r\nSubject: curl\r\n\r\nHello.\r\n"
	for _, tt := range []struct {
		name, url, addr, password string
		ok                        bool
	}{
		{"starttls", "smtp", f.addr, submissionPassword, true},
		{"implicit TLS", "smtps", implicit, submissionPassword, true},
		{"wrong password", "smtps", implicit, "nope", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, port, _ := net.SplitHostPort(tt.addr)
			cmd := exec.Command(curl, "--silent", "--show-error", "--url", tt.url+"://mx.example.org:"+port+"/client.example.net",
				"--resolve", "mx.example.org:"+port+":127.0.0.1", "--ssl-reqd", "--cacert", f.caFile,
				"--user", "alice@example.org:"+tt.password,
				"--mail-from", "alice@example.org", "--mail-rcpt", "bob@example.org", "--upload-file", "-")
			cmd.Stdin = strings.NewReader(msg)
			out, err := cmd.CombinedOutput()
			if (err == nil) != tt.ok {
				t.Fatalf("curl: %v\n%s", err, out)
			}
			// curl's exit status 67: "the user name, password, or
			// similar was not accepted".
			if exit := (*exec.ExitError)(nil); !tt.ok && (!errors.As(err, &exit) || exit.ExitCode() != 67) {
				t.Errorf("curl: %v, want exit status 67 (login denied)\n%s", err, out)
			}
		})
	}
	txs := f.relay.transactions()
	if len(txs) != 2 || !strings.HasSuffix(txs[1].data, msg) || !strings.Contains(txs[1].data, "with ESMTPSA (TLS") {
		t.Errorf("relay took %+v", txs)
	}
}

// TestSubmissionShutdown: a relay that hangs does not hold Shutdown past
// its context: the relay connection goes with the server's.
func TestSubmissionShutdown(t *testing.T) {
	f := newSubmissionFixture(t, relayRules{hangAt: "."})
	done := make(chan string, 1)
	go func() {
		l := dialLMTP(t, f.addr)
		for _, cmd := range []string{"EHLO client.example.net",
			"AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00alice@example.org\x00"+submissionPassword)),
			"MAIL FROM:<alice@example.org>", "RCPT TO:<bob@example.org>", "DATA"} {
			l.cmd(cmd)
		}
		l.send("From: alice@example.org\r\n\r\nHi.\r\n.\r\n")
		l.c.SetReadDeadline(time.Now().Add(time.Minute))
		line, _ := l.r.ReadString('\n')
		done <- line
	}()
	<-f.relay.hung
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := f.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v", err)
	}
	if line := <-done; strings.HasPrefix(line, "250") {
		t.Errorf("the client was told %q", line)
	}
}
