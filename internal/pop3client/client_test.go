package pop3client_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/buzon-mail/buzon/internal/auth"
	"github.com/buzon-mail/buzon/internal/pop3client"
	"github.com/buzon-mail/buzon/internal/pop3server"
	"github.com/buzon-mail/buzon/internal/pop3server/pop3test"
	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/sqlite"
)

const alice = "alice@example.org"

var messages = []string{
	"From: bob@example.org\r\nSubject: one\r\n\r\nHello.\r\n",
	"Subject: dots\r\n\r\n.\r\n..\r\n.x\r\n",
	"Subject: 8bit caf\xc3\xa9\r\n\r\nna\xefve\r\nline 2\r\nline 3\r\n",
	"Subject: unterminated\r\n\r\nno line break",
}

// start runs a server over a fresh sqlite store with the messages in
// alice's INBOX.
func start(t *testing.T, opts pop3test.Options) (*pop3test.Env, []store.UID) {
	t.Helper()
	st, err := sqlite.Open(sqlite.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	env := pop3test.Start(t, st, opts)
	var uids []store.UID
	for _, m := range messages {
		uids = append(uids, env.Append(t, alice, []byte(m), store.Flags{}).UID)
	}
	return env, uids
}

func dial(t *testing.T, env *pop3test.Env) *pop3client.Client {
	t.Helper()
	c, err := pop3client.Dial(context.Background(), env.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestSession(t *testing.T) {
	env, uids := start(t, pop3test.Options{})
	c := dial(t, env)
	if !strings.Contains(c.Greeting(), "POP3 server ready") || c.TLS() {
		t.Errorf("greeting %q, TLS %v", c.Greeting(), c.TLS())
	}
	caps, err := c.Capa()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"TOP", "UIDL", "USER", "PIPELINING", "RESP-CODES", "STLS", "sasl"} {
		if !caps.Has(name) {
			t.Errorf("CAPA lacks %s: %v", name, caps)
		}
	}
	if got := fmt.Sprint(caps["SASL"]); got != "[SCRAM-SHA-256 PLAIN LOGIN]" {
		t.Errorf("SASL mechanisms %s", got)
	}
	if err := c.User(alice, pop3test.Password); err != nil {
		t.Fatal(err)
	}

	total := 0
	for _, m := range messages {
		total += len(m)
	}
	if n, size, err := c.Stat(); n != len(messages) || size != int64(total) || err != nil {
		t.Errorf("Stat = %d, %d, %v; want %d, %d", n, size, err, len(messages), total)
	}
	list, err := c.List()
	if err != nil || len(list) != len(messages) {
		t.Fatalf("List = %v, %v", list, err)
	}
	uidls, err := c.UIDL()
	if err != nil || len(uidls) != len(messages) {
		t.Fatalf("UIDL = %v, %v", uidls, err)
	}
	for i, m := range messages {
		n := i + 1
		if list[i] != (pop3client.MessageSize{Number: n, Size: int64(len(m))}) {
			t.Errorf("List[%d] = %+v; want size %d", i, list[i], len(m))
		}
		if size, err := c.ListOne(n); size != int64(len(m)) || err != nil {
			t.Errorf("ListOne(%d) = %d, %v", n, size, err)
		}
		want := env.UIDL(t, alice, uids[i])
		if uidls[i] != (pop3client.MessageUID{Number: n, UID: want}) {
			t.Errorf("UIDL[%d] = %+v; want %s", i, uidls[i], want)
		}
		if uid, err := c.UIDLOne(n); uid != want || err != nil {
			t.Errorf("UIDLOne(%d) = %q, %v; want %q", n, uid, err, want)
		}
		var b bytes.Buffer
		got, err := c.Retr(n, &b)
		wantBody := m
		if !strings.HasSuffix(m, "\n") {
			wantBody += "\r\n" // the server ends the last line
		}
		if err != nil || b.String() != wantBody || got != int64(len(wantBody)) {
			t.Errorf("Retr(%d) = %q, %d, %v; want %q", n, b.String(), got, err, wantBody)
		}
	}

	var top bytes.Buffer
	if _, err := c.Top(3, 1, &top); err != nil || top.String() != "Subject: 8bit caf\xc3\xa9\r\n\r\nna\xefve\r\n" {
		t.Errorf("Top(3, 1) = %q, %v", top.String(), err)
	}
	if err := c.Noop(); err != nil {
		t.Error(err)
	}
	if err := c.Dele(1); err != nil {
		t.Fatal(err)
	}
	if err := c.Dele(1); !errors.As(err, new(*pop3client.Error)) {
		t.Errorf("second Dele(1) = %v; want a -ERR", err)
	}
	if err := c.Rset(); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{2, 4} {
		if err := c.Dele(n); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	var left []store.UID
	for _, m := range env.Inbox(t, alice) {
		left = append(left, m.UID)
	}
	if want := []store.UID{uids[0], uids[2]}; fmt.Sprint(left) != fmt.Sprint(want) {
		t.Errorf("INBOX after Quit = %v; want %v", left, want)
	}
}

func TestTLS(t *testing.T) {
	env, _ := start(t, pop3test.Options{})

	c, err := pop3client.DialTLS(context.Background(), env.TLSAddr, env.ClientTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.TLS() {
		t.Error("DialTLS: TLS() is false")
	}
	if err := c.STLS(env.ClientTLS); err == nil {
		t.Error("STLS over TLS succeeded")
	}
	if err := c.AuthPlain(alice, pop3test.Password); err != nil {
		t.Fatal(err)
	}
	if n, _, err := c.Stat(); n != len(messages) || err != nil {
		t.Errorf("Stat = %d, %v", n, err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}

	c = dial(t, env)
	if err := c.STLS(env.ClientTLS); err != nil {
		t.Fatal(err)
	}
	caps, err := c.Capa()
	if err != nil || caps.Has("STLS") || !c.TLS() {
		t.Errorf("after STLS: CAPA %v, %v, TLS %v", caps, err, c.TLS())
	}
	if err := c.User(alice, pop3test.Password); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}

	// A certificate the client does not trust fails the handshake.
	c = dial(t, env)
	if err := c.STLS(&tls.Config{ServerName: "127.0.0.1"}); err == nil {
		t.Error("STLS trusted a self-signed certificate")
	}
}

func TestErrorCodes(t *testing.T) {
	env, _ := start(t, pop3test.Options{
		Config: func(c *pop3server.Config) { c.Sessions = auth.NewSessionLimiter(1) },
	})
	c := dial(t, env)
	err := c.User(alice, "wrong")
	var e *pop3client.Error
	if !errors.As(err, &e) || e.Command != "PASS" || e.Code != pop3client.CodeAuth || e.Text != "authentication failed" ||
		!pop3client.HasCode(err, pop3client.CodeAuth) || pop3client.HasCode(err, pop3client.CodeSys) {
		t.Errorf("wrong password: %#v", err)
	}
	if err.Error() != "pop3 PASS: -ERR [AUTH] authentication failed" {
		t.Errorf("Error() = %q", err.Error())
	}
	// A password too long for an initial response still makes a proper
	// exchange.
	if err := c.AuthPlain(alice, strings.Repeat("p", 300)); !pop3client.HasCode(err, pop3client.CodeAuth) {
		t.Errorf("AuthPlain with a long wrong password: %v", err)
	}
	if err := c.AuthPlain(alice, pop3test.Password); err != nil {
		t.Fatal(err)
	}

	// A second session of alice is over the limit of one.
	c2 := dial(t, env)
	err = c2.User(alice, pop3test.Password)
	if !pop3client.HasCode(err, pop3client.CodeSysTemp) || !pop3client.HasCode(err, pop3client.CodeSys) {
		t.Errorf("second session: %v; want [SYS/TEMP]", err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}

func TestInUse(t *testing.T) {
	env, _ := start(t, pop3test.Options{})
	c := dial(t, env)
	if err := c.User(alice, pop3test.Password); err != nil {
		t.Fatal(err)
	}
	c2 := dial(t, env)
	if err := c2.User(alice, pop3test.Password); !pop3client.HasCode(err, pop3client.CodeInUse) {
		t.Errorf("second session: %v; want [IN-USE]", err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	if err := c2.AuthPlain(alice, pop3test.Password); err != nil {
		t.Errorf("after the first session quit: %v", err)
	}
}

func TestHasCode(t *testing.T) {
	for _, tc := range []struct {
		code, ask string
		want      bool
	}{
		{"SYS/TEMP", "SYS/TEMP", true},
		{"SYS/TEMP", "SYS", true},
		{"SYS/TEMP", "sys/temp", true},
		{"SYS/TEMP", "SYS/PERM", false},
		{"SYSTEM", "SYS", false},
		{"SYS", "SYS/TEMP", false},
		{"", "AUTH", false},
		{"IN-USE", "IN-USE", true},
	} {
		e := &pop3client.Error{Code: tc.code}
		if got := e.HasCode(tc.ask); got != tc.want {
			t.Errorf("Error{Code: %q}.HasCode(%q) = %v", tc.code, tc.ask, got)
		}
	}
	if pop3client.HasCode(errors.New("x"), "AUTH") || pop3client.HasCode(nil, "AUTH") {
		t.Error("HasCode true for an error that is no *Error")
	}
}

// fakeServer answers a client over a pipe with a script: the greeting,
// then for each command line read, the next response.
func fakeServer(t *testing.T, greeting string, responses ...string) *pop3client.Client {
	t.Helper()
	cc, sc := net.Pipe()
	go func() {
		defer sc.Close()
		io.WriteString(sc, greeting)
		buf := make([]byte, 4096)
		for _, r := range responses {
			if _, err := sc.Read(buf); err != nil {
				return
			}
			io.WriteString(sc, r)
		}
	}()
	c, err := pop3client.NewClient(cc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRetrUnstuffing(t *testing.T) {
	long := strings.Repeat("z", 10000)
	for _, tc := range []struct {
		name, wire, want string
	}{
		{"plain", "a\r\nb\r\n.\r\n", "a\r\nb\r\n"},
		{"stuffed", "..\r\n...\r\n..x\r\nx.\r\n.\r\n", ".\r\n..\r\n.x\r\nx.\r\n"},
		{"long lines", ".." + long + "\r\n" + long + ".\r\n.\r\n", "." + long + "\r\n" + long + ".\r\n"},
		{"bare LF", "a\n..b\n.\n", "a\n.b\n"},
		{"empty", ".\r\n", ""},
		{"8-bit", "\xff\xfe\r\n.\r\n", "\xff\xfe\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fakeServer(t, "+OK hi\r\n", "+OK x octets\r\n"+tc.wire, "+OK\r\n")
			var b bytes.Buffer
			n, err := c.Retr(1, &b)
			if err != nil || b.String() != tc.want || n != int64(len(tc.want)) {
				t.Fatalf("Retr = %q, %d, %v; want %q", b.String(), n, err, tc.want)
			}
			if err := c.Noop(); err != nil {
				t.Errorf("the response was not read to its end: %v", err)
			}
		})
	}
}

// TestListings: a UIDL is the rest of its line, even with spaces in it
// (which RFC 1939 7 forbids, but two ids cut to their first word could
// meet); a scan listing may have more after the size (RFC 1939 5).
func TestListings(t *testing.T) {
	c := fakeServer(t, "+OK hi\r\n",
		"+OK\r\n1 20240101 0001\r\n2 20240101 0002\r\n3\t  plain  \r\n.\r\n",
		"+OK 2 20240101 0002 \r\n",
		"+OK\r\n1 92 extra information\r\n2\t17\r\n.\r\n",
		"+OK 1 92 more\r\n")
	uidls, err := c.UIDL()
	want := []pop3client.MessageUID{{1, "20240101 0001"}, {2, "20240101 0002"}, {3, "plain"}}
	if err != nil || fmt.Sprint(uidls) != fmt.Sprint(want) {
		t.Errorf("UIDL = %v, %v; want %v", uidls, err, want)
	}
	if uid, err := c.UIDLOne(2); uid != "20240101 0002" || err != nil {
		t.Errorf("UIDLOne = %q, %v", uid, err)
	}
	sizes, err := c.List()
	if wantSizes := []pop3client.MessageSize{{1, 92}, {2, 17}}; err != nil || fmt.Sprint(sizes) != fmt.Sprint(wantSizes) {
		t.Errorf("List = %v, %v; want %v", sizes, err, wantSizes)
	}
	if size, err := c.ListOne(1); size != 92 || err != nil {
		t.Errorf("ListOne = %d, %v", size, err)
	}

	// A number without an id leaves that message out of UIDL, and the
	// session goes on; a line without a number breaks it.
	for _, tc := range []struct {
		line    string
		uidlBad bool
		ids     int
	}{{"1", false, 0}, {"1 ", false, 0}, {"x y", true, 0}, {"1 -5", false, 1}, {"1 big", false, 1}} {
		c := fakeServer(t, "+OK hi\r\n", "+OK\r\n"+tc.line+"\r\n.\r\n", "+OK\r\n")
		uidls, uerr := c.UIDL()
		_, lerr := fakeServer(t, "+OK hi\r\n", "+OK\r\n"+tc.line+"\r\n.\r\n").List()
		if !errors.Is(lerr, pop3client.ErrProtocol) || errors.Is(uerr, pop3client.ErrProtocol) != tc.uidlBad || len(uidls) != tc.ids {
			t.Errorf("listing %q: UIDL %v, %v; LIST %v", tc.line, uidls, uerr, lerr)
		}
		if nerr := c.Noop(); (nerr == nil) == tc.uidlBad {
			t.Errorf("listing %q: NOOP after UIDL: %v", tc.line, nerr)
		}
	}
}

func TestProtocolErrors(t *testing.T) {
	c := fakeServer(t, "+OK hi\r\n", "* what\r\n")
	if err := c.Noop(); !errors.Is(err, pop3client.ErrProtocol) {
		t.Errorf("garbage response: %v; want ErrProtocol", err)
	}
	if err := c.Noop(); !errors.Is(err, pop3client.ErrProtocol) {
		t.Errorf("a broken client went on: %v", err)
	}

	c = fakeServer(t, "+OK hi\r\n", "+OK\r\npart of a messa")
	if _, err := c.Retr(1, io.Discard); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("connection closed mid-message: %v; want ErrUnexpectedEOF", err)
	}

	if _, err := pop3client.NewClient(pipeWith(t, "-ERR [SYS/TEMP] busy\r\n")); !pop3client.HasCode(err, pop3client.CodeSysTemp) {
		t.Errorf("refused greeting: %v", err)
	}
	c = fakeServer(t, "+OK hi\r\n", "+OK 3 x\r\n", "+OK two\r\n")
	if _, _, err := c.Stat(); !errors.Is(err, pop3client.ErrProtocol) {
		t.Errorf("bad STAT: %v", err)
	}
}

func pipeWith(t *testing.T, s string) net.Conn {
	cc, sc := net.Pipe()
	go func() {
		io.WriteString(sc, s)
		sc.Close()
	}()
	t.Cleanup(func() { cc.Close() })
	return cc
}

// TestAuth: a SASL initial response goes with AUTH when the line fits in
// 255 octets and after the server's empty challenge otherwise (RFC 5034
// 4); a challenge in answer to it is the server's refusal (RFC 7628
// 3.2.2), which the client cancels with "*" and reports.
func TestAuth(t *testing.T) {
	token := "ya29.a0" + strings.Repeat("x", 40)
	short := []byte("user=alice@example.org\x01auth=Bearer " + token + "\x01\x01")
	long := []byte("n,a=alice@example.org,\x01auth=Bearer " + strings.Repeat("t", 300) + "\x01\x01")
	b64 := base64.StdEncoding.EncodeToString
	refusal := `{"status":"401","schemes":"bearer","scope":"https://mail.example.org/"}`
	for _, tc := range []struct {
		name      string
		mech      string
		ir        []byte
		responses []string
		wantSent  []string
		wantCode  string // of the *Error, "" for success
		wantChall string
		protocol  bool // the error is ErrProtocol
	}{
		{"fits", "XOAUTH2", short, []string{"+OK welcome\r\n"},
			[]string{"AUTH XOAUTH2 " + b64(short)}, "", "", false},
		{"too long for the line", "OAUTHBEARER", long, []string{"+ \r\n", "+OK welcome\r\n"},
			[]string{"AUTH OAUTHBEARER", b64(long)}, "", "", false},
		{"refused with a challenge", "XOAUTH2", short, []string{"+ " + b64([]byte(refusal)) + "\r\n", "-ERR [AUTH] invalid token\r\n"},
			[]string{"AUTH XOAUTH2 " + b64(short), "*"}, "AUTH", refusal, false},
		{"refused at once", "XOAUTH2", short, []string{"-ERR [AUTH] no\r\n"},
			[]string{"AUTH XOAUTH2 " + b64(short)}, "AUTH", "", false},
		{"mechanism refused before the response", "OAUTHBEARER", long, []string{"-ERR unknown mechanism\r\n"},
			[]string{"AUTH OAUTHBEARER"}, "-", "", false},
		{"cancel accepted", "XOAUTH2", short, []string{"+ e30=\r\n", "+OK\r\n"},
			[]string{"AUTH XOAUTH2 " + b64(short), "*"}, "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc, sc := net.Pipe()
			sent := make(chan []string, 1)
			go func() {
				defer sc.Close()
				var lines []string
				defer func() { sent <- lines }()
				io.WriteString(sc, "+OK hi\r\n")
				br := bufio.NewReader(sc)
				for _, r := range tc.responses {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					lines = append(lines, strings.TrimSuffix(line, "\r\n"))
					io.WriteString(sc, r)
				}
			}()
			c, err := pop3client.NewClient(cc)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Auth(tc.mech, tc.ir)
			c.Close()
			if got := <-sent; !slices.Equal(got, tc.wantSent) {
				t.Errorf("sent %q, want %q", got, tc.wantSent)
			}
			var e *pop3client.Error
			switch {
			case tc.protocol:
				if !errors.Is(err, pop3client.ErrProtocol) {
					t.Errorf("Auth = %v, want ErrProtocol", err)
				}
			case tc.wantCode == "":
				if err != nil {
					t.Errorf("Auth = %v", err)
				}
			case !errors.As(err, &e):
				t.Errorf("Auth = %v, want an *Error", err)
			case tc.wantCode != "-" && e.Code != tc.wantCode, e.Challenge != tc.wantChall:
				t.Errorf("Auth = %#v, want code %s and challenge %q", e, tc.wantCode, tc.wantChall)
			}
		})
	}
}
