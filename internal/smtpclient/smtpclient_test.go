package smtpclient

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/clienttest"
	"github.com/buzon-mail/buzon/internal/server"
)

// TestParseReply: a refusal's enhanced code is read from its first line
// and taken off every line; a code of another class, or none, is text.
func TestParseReply(t *testing.T) {
	for _, tt := range []struct {
		code int
		text string
		want Reply
	}{
		{550, "5.1.1 <x@example.org>: Recipient address rejected", Reply{550, [3]int{5, 1, 1}, "<x@example.org>: Recipient address rejected"}},
		{451, "4.3.0 Error: queue file write error", Reply{451, [3]int{4, 3, 0}, "Error: queue file write error"}},
		{554, "Transaction failed", Reply{554, [3]int{}, "Transaction failed"}},
		{550, "4.1.1 wrong class", Reply{550, [3]int{}, "4.1.1 wrong class"}},
		{550, "5.7.1 first\n5.7.1 second", Reply{550, [3]int{5, 7, 1}, "first second"}},
		{550, "5.1.1000 too long", Reply{550, [3]int{}, "5.1.1000 too long"}},
	} {
		if got := parseReply(tt.code, tt.text); *got != tt.want {
			t.Errorf("parseReply(%d, %q) = %+v, want %+v", tt.code, tt.text, *got, tt.want)
		}
	}
}

// fakeServer answers one connection with the lines of script: "S: x" is
// sent, "C: x" must come (a prefix, when it ends with *), "TLS" starts
// TLS as the server, "EOF" wants the client to close the connection
// without another line and "ABORTED" to close it before the line "."
// that would end a message. It reports the first mismatch on done.
func fakeServer(t *testing.T, cert tls.Certificate, implicitTLS bool, script []string) (string, <-chan error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	done := make(chan error, 1)
	go func() {
		nc, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(time.Minute))
		if implicitTLS {
			nc = tls.Server(nc, server.TLSConfig(cert))
		}
		br := bufio.NewReader(nc)
		for _, line := range script {
			switch {
			case line == "TLS":
				nc = tls.Server(nc, server.TLSConfig(cert))
				br = bufio.NewReader(nc)
			case line == "EOF", line == "ABORTED":
				for {
					got, err := br.ReadString('\n')
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil || line == "EOF" || got == ".\r\n" {
						done <- fmt.Errorf("got %q, %v; want the connection closed", got, err)
						return
					}
				}
			case strings.HasPrefix(line, "S: "):
				if _, err := nc.Write([]byte(line[3:] + "\r\n")); err != nil {
					done <- err
					return
				}
			case strings.HasPrefix(line, "C: "):
				got, err := br.ReadString('\n')
				want := line[3:]
				got = strings.TrimSuffix(got, "\r\n")
				if prefix, ok := strings.CutSuffix(want, "*"); err != nil || got != want && !(ok && strings.HasPrefix(got, prefix)) {
					done <- errors.New("got " + got + ", want " + want)
					return
				}
			}
		}
		done <- nil
	}()
	return l.Addr().String(), done
}

// testCert is a self-signed certificate for mx.example.org and 127.0.0.1,
// and a pool that trusts it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	cert, roots, _ := clienttest.Cert(t, "mx.example.org", "127.0.0.1")
	return cert, roots
}

var ehloReply = []string{"S: 250-relay.example.net", "S: 250-STARTTLS", "S: 250-AUTH LOGIN PLAIN", "S: 250 8BITMIME"}

// TestSession: a whole session over STARTTLS with a login and a message
// whose lines need dot-stuffing, and over implicit TLS.
func TestSession(t *testing.T) {
	cert, roots := testCert(t)
	session := append(append(append(append([]string{"S: 220 relay.example.net ESMTP", "C: EHLO mx.example.org"}, ehloReply...),
		"C: STARTTLS", "S: 220 go ahead", "TLS", "C: EHLO mx.example.org"), ehloReply...),
		"C: AUTH PLAIN AGJ1em9uAHMzY3JldA==", "S: 235 2.7.0 OK",
		"C: MAIL FROM:<alice@example.org> BODY=8BITMIME", "S: 250 2.1.0 OK",
		"C: RCPT TO:<bob@example.net>", "S: 250 2.1.5 OK",
		"C: RCPT TO:<nobody@example.net>", "S: 550 5.1.1 no such user",
		"C: DATA", "S: 354 go",
		"C: Subject: hi", "C: ", "C: ..dot", "C: last", "C: .", "S: 250 2.0.0 Ok: queued as X",
		"C: QUIT", "S: 221 bye")
	addr, done := fakeServer(t, cert, false, session)
	c, err := Dial(context.Background(), Config{Addr: addr, TLS: &tls.Config{RootCAs: roots}, Hostname: "mx.example.org",
		Username: "buzon", Password: StaticPassword("s3cret")})
	if err != nil {
		t.Fatal(err)
	}
	if !c.TLS() {
		t.Error("not over TLS")
	}
	if _, ok := c.Extension("8bitmime"); !ok {
		t.Error("8BITMIME not seen")
	}
	if err := c.Mail("alice@example.org", "BODY=8BITMIME"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("bob@example.net"); err != nil {
		t.Fatal(err)
	}
	var r *Reply
	if err := c.Rcpt("nobody@example.net"); !errors.As(err, &r) || r.Code != 550 || r.Enhanced != [3]int{5, 1, 1} {
		t.Fatalf("refused RCPT: %v", err)
	}
	text, err := c.Data(strings.NewReader("Subject: hi\r\n\r\n.dot\r\nlast"))
	if err != nil || text != "2.0.0 Ok: queued as X" {
		t.Fatalf("Data: %q, %v", text, err)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestDialFailures: what keeps a session from starting is an error that
// says what to change.
func TestDialFailures(t *testing.T) {
	cert, roots := testCert(t)
	for _, tt := range []struct {
		name   string
		script []string
		cfg    Config
		want   string
	}{
		{"no STARTTLS offered", []string{"S: 220 hi", "C: EHLO *", "S: 250 relay"}, Config{}, "offers no STARTTLS"},
		{"certificate not trusted", []string{"S: 220 hi", "C: EHLO *", "S: 250-relay", "S: 250 STARTTLS", "C: STARTTLS", "S: 220 go", "TLS", "C: EHLO *"},
			Config{}, "certificate"},
		{"greeting refused", []string{"S: 554 5.3.2 not now"}, Config{}, "greeting: 554 5.3.2 not now"},
		{"no AUTH PLAIN", append(append([]string{"S: 220 hi", "C: EHLO *"}, ehloReply[:2]...), "S: 250 AUTH LOGIN"),
			Config{Security: Plain, Username: "u", Password: StaticPassword("p")}, "offers no AUTH PLAIN"},
		{"login refused", append(append([]string{"S: 220 hi", "C: EHLO *"}, ehloReply...), "C: AUTH PLAIN *", "S: 535 5.7.8 bad"),
			Config{Security: Plain, Username: "u", Password: StaticPassword("p")}, "AUTH as u: 535 5.7.8 bad"},
		{"password command fails", append([]string{"S: 220 hi", "C: EHLO *"}, ehloReply...),
			Config{Security: Plain, Username: "u", Password: CommandPassword("echo no such secret >&2; exit 1")}, "no such secret"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr, _ := fakeServer(t, cert, false, tt.script)
			cfg := tt.cfg
			cfg.Addr = addr
			if tt.name == "certificate not trusted" {
				cfg.TLS = &tls.Config{RootCAs: x509.NewCertPool()}
			} else {
				cfg.TLS = &tls.Config{RootCAs: roots}
			}
			_, err := Dial(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Dial: %v, want %q", err, tt.want)
			}
		})
	}
}

// TestImplicitTLS: with ImplicitTLS the handshake comes first, and the
// certificate is verified for the host in Addr.
func TestImplicitTLS(t *testing.T) {
	cert, roots := testCert(t)
	addr, done := fakeServer(t, cert, true, append(append([]string{"S: 220 hi", "C: EHLO *"}, ehloReply...), "C: QUIT", "S: 221 bye"))
	c, err := Dial(context.Background(), Config{Addr: addr, Security: ImplicitTLS, TLS: &tls.Config{RootCAs: roots}})
	if err != nil {
		t.Fatal(err)
	}
	if !c.TLS() {
		t.Error("not over TLS")
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestDataNotStarted: a relay that closed the connection, or said 421,
// before DATA reports ErrNotStarted, which a caller may retry; one that
// refused DATA does not.
func TestDataNotStarted(t *testing.T) {
	cert, _ := testCert(t)
	for _, tt := range []struct {
		name       string
		answer     []string
		notStarted bool
	}{
		{"closed", nil, true},
		{"421", []string{"S: 421 4.4.2 timeout"}, true},
		{"554", []string{"S: 554 5.5.1 no valid recipients"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			script := append(append([]string{"S: 220 hi", "C: EHLO *"}, ehloReply...), "C: DATA")
			addr, _ := fakeServer(t, cert, false, append(script, tt.answer...))
			c, err := Dial(context.Background(), Config{Addr: addr, Security: Plain})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Abort()
			_, err = c.Data(strings.NewReader("x\r\n"))
			if errors.Is(err, ErrNotStarted) != tt.notStarted {
				t.Errorf("Data: %v", err)
			}
		})
	}
}

// failingReader gives its text, then an error: a spool that cannot be
// read to its end.
type failingReader struct{ text string }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.text == "" {
		return 0, errors.New("disk on fire")
	}
	n := copy(p, r.text)
	r.text = r.text[n:]
	return n, nil
}

// TestOutOfStep: the message goes only after a 354 to DATA, a success
// is a 2xx to any other command, and a message that cannot be read to
// its end is never ended: the relay sees the connection close before
// the final dot, and discards what it got (RFC 5321 4.1.1.4). Each
// failure is an error that is not a *Reply, so that the caller's client
// hears "try again" rather than the relay's word.
func TestOutOfStep(t *testing.T) {
	cert, _ := testCert(t)
	hello := append([]string{"S: 220 hi", "C: EHLO *"}, ehloReply...)
	for _, tt := range []struct {
		name   string
		script []string
		run    func(*Client) error
	}{
		{"2xx to DATA", []string{"C: DATA", "S: 250 2.0.0 OK", "EOF"},
			func(c *Client) error { _, err := c.Data(strings.NewReader("Subject: x\r\n\r\nRSET\r\n")); return err }},
		{"3xx after the data", []string{"C: DATA", "S: 354 go", "C: Subject: x", "C: ", "C: hi", "C: .", "S: 354 again?"},
			func(c *Client) error { _, err := c.Data(strings.NewReader("Subject: x\r\n\r\nhi\r\n")); return err }},
		{"3xx to MAIL", []string{"C: MAIL FROM:<a@example.org>", "S: 354 go"},
			func(c *Client) error { return c.Mail("a@example.org") }},
		{"3xx to RCPT", []string{"C: RCPT TO:<b@example.net>", "S: 334 what"},
			func(c *Client) error { return c.Rcpt("b@example.net") }},
		{"read error mid-message", []string{"C: DATA", "S: 354 go", "ABORTED"},
			func(c *Client) error {
				_, err := c.Data(&failingReader{"Subject: x\r\n\r\n" + strings.Repeat("line\r\n", 2000) + "half a li"})
				return err
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr, done := fakeServer(t, cert, false, append(hello, tt.script...))
			c, err := Dial(context.Background(), Config{Addr: addr, Security: Plain})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Abort()
			err = tt.run(c)
			var r *Reply
			if err == nil || errors.As(err, &r) || errors.Is(err, ErrNotStarted) {
				t.Fatalf("got %v, want an error that is not the relay's reply", err)
			}
			c.Abort()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// slowReader gives its text after a pause: a client on a slow link.
type slowReader struct {
	pause time.Duration
	text  string
}

func (r *slowReader) Read(p []byte) (int, error) {
	if r.pause > 0 {
		time.Sleep(r.pause)
		r.pause = 0
	}
	if r.text == "" {
		return 0, io.EOF
	}
	n := copy(p, r.text)
	r.text = r.text[n:]
	return n, nil
}

// TestDataSlowUpload: sending a message may take longer than the
// DataTimeout, which bounds the relay's reply to its end; only a stall
// of the relay ends it.
func TestDataSlowUpload(t *testing.T) {
	cert, _ := testCert(t)
	script := append(append([]string{"S: 220 hi", "C: EHLO *"}, ehloReply...),
		"C: DATA", "S: 354 go", "C: Subject: x", "C: ", "C: slow", "C: .", "S: 250 2.0.0 queued")
	addr, done := fakeServer(t, cert, false, script)
	const dataTimeout = time.Second
	c, err := Dial(context.Background(), Config{Addr: addr, Security: Plain, DataTimeout: dataTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Abort()
	body := io.MultiReader(strings.NewReader("Subject: x\r\n\r\n"), &slowReader{dataTimeout * 3 / 2, "slow\r\n"})
	if text, err := c.Data(body); err != nil || text != "2.0.0 queued" {
		t.Fatalf("Data: %q, %v", text, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestCheckPath: an address that would end the path early, and pass what
// follows to the relay as parameters or a command, is refused by Mail
// and Rcpt before anything is written (the zero Client has no
// connection to write to).
func TestCheckPath(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"", true},
		{"bob@example.net", true},
		{"bøb@exämple.net", true},
		{`"b ob"@example.net`, true},
		{`"b\"o b"@example.net`, true},
		{"bob@x> NOTIFY=NEVER ORCPT=rfc822;a", false},
		{"bob@x NOTIFY=NEVER", false},
		{"<bob@x>", false},
		{"bob@x\r\nRCPT TO:<eve@y>", false},
		{"bob\x00@x", false},
		{"bob\x7f@x", false},
		{`"b ob@x`, false},
		{"\"b\\\r\"@x", false},
	} {
		err := CheckPath(tc.addr)
		if (err == nil) != tc.ok {
			t.Errorf("CheckPath(%q) = %v, want ok %v", tc.addr, err, tc.ok)
		}
		if tc.ok {
			continue
		}
		var c Client
		if err := c.Mail(tc.addr); err == nil {
			t.Errorf("Mail(%q) took it", tc.addr)
		}
		if err := c.Rcpt(tc.addr); err == nil {
			t.Errorf("Rcpt(%q) took it", tc.addr)
		}
	}
}
