package bench

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// step is one turn of a scripted server: it reads exactly client (when
// set), then writes server.
type step struct{ client, server string }

// scripted returns a lineConn whose peer follows the script; the test
// fails if the client says anything else.
func scripted(t *testing.T, script []step) lineConn {
	t.Helper()
	cli, srv := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer srv.Close()
		for i, s := range script {
			if s.client != "" {
				got := make([]byte, len(s.client))
				if _, err := io.ReadFull(srv, got); err != nil {
					t.Errorf("step %d: reading %q: %v", i+1, s.client, err)
					return
				}
				if string(got) != s.client {
					t.Errorf("step %d: client sent %q, want %q", i+1, got, s.client)
					return
				}
			}
			if s.server != "" {
				if _, err := srv.Write([]byte(s.server)); err != nil {
					t.Errorf("step %d: writing: %v", i+1, err)
					return
				}
			}
		}
	}()
	t.Cleanup(func() {
		cli.Close()
		<-done
	})
	return lineConn{conn: cli, stop: func() bool { return true }, r: bufio.NewReaderSize(cli, 16),
		w: bufio.NewWriter(cli), timeout: 5 * time.Second}
}

func TestLiteralSize(t *testing.T) {
	tests := []struct {
		line string
		n    int64
		ok   bool
	}{
		{"* 1 FETCH (BODY[] {123}\r\n", 123, true},
		{"* 1 FETCH (BODY[] {0}\r\n", 0, true},
		{"b1 APPEND INBOX {5+}\r\n", 5, true},
		{"* OK text ends in }\r\n", 0, false},
		{"* OK {x}\r\n", 0, false},
		{"* 1 FETCH (FLAGS ())\r\n", 0, false},
		{"}\r\n", 0, false},
	}
	for _, tc := range tests {
		n, ok := literalSize([]byte(tc.line))
		if n != tc.n || ok != tc.ok {
			t.Errorf("literalSize(%q) = %d, %v; want %d, %v", tc.line, n, ok, tc.n, tc.ok)
		}
	}
}

func TestIMAPClient(t *testing.T) {
	greeting := "* OK [CAPABILITY IMAP4rev1 IDLE] ready\r\n"
	tests := []struct {
		name    string
		script  []step
		run     func(c *imapConn) error
		wantErr string // substring of the error; "" for none
	}{
		{
			name: "login and select count EXISTS among other untagged responses",
			script: []step{
				{"", greeting},
				{"b1 LOGIN \"user1\" \"p\\\"w\"\r\n", "b1 OK [CAPABILITY IMAP4rev1 LITERAL+] logged in\r\n"},
				{"b2 SELECT \"INBOX\"\r\n", "* FLAGS (\\Seen)\r\n* 12 EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 7] ok\r\nb2 OK [READ-WRITE] done\r\n"},
			},
			run: func(c *imapConn) error {
				if c.literalPlus {
					return errors.New("LITERAL+ before login")
				}
				if err := c.login("user1", `p"w`); err != nil {
					return err
				}
				if !c.literalPlus {
					return errors.New("LITERAL+ from the LOGIN response code missed")
				}
				n, err := c.selectMailbox("INBOX")
				if err == nil && n != 12 {
					err = errors.New("wrong EXISTS count")
				}
				return err
			},
		},
		{
			name: "literals are skipped whatever they hold",
			script: []step{
				{"", greeting},
				{"b1 FETCH 1:2 BODY.PEEK[]\r\n",
					"* 1 FETCH (UID 5 ENVELOPE (NIL {9}\r\nsubj\r\nect NIL) BODY[] {21}\r\nb1 OK fake\r\n* 9 BYE\r\n)\r\n" +
						"* 2 FETCH (BODY[] {3}\r\nabc)\r\n* 3 EXPUNGE\r\nb1 OK done\r\n"},
			},
			run: func(c *imapConn) error {
				c.exists = 3
				n, lits, err := c.fetch("1:2", "BODY.PEEK[]")
				if err != nil {
					return err
				}
				if n != 2 || lits != 33 || c.exists != 2 {
					return errors.New("wrong counts: " + strings.Join([]string{strconv.Itoa(n), strconv.Itoa(int(lits)), strconv.Itoa(c.exists)}, " "))
				}
				return nil
			},
		},
		{
			name: "APPEND waits for the continuation without LITERAL+",
			script: []step{
				{"", greeting},
				{"b1 APPEND \"INBOX\" () {5}\r\n", "+ go ahead\r\n"},
				{"hello\r\n", "* 4 EXISTS\r\nb1 OK [APPENDUID 7 4] done\r\n"},
			},
			run: func(c *imapConn) error { return c.appendMessage("INBOX", "", []byte("hello")) },
		},
		{
			name: "APPEND does not wait with LITERAL+",
			script: []step{
				{"", "* OK [CAPABILITY IMAP4rev1 LITERAL+] ready\r\n"},
				{"b1 APPEND \"INBOX\" (\\Seen) {5+}\r\nhello\r\n", "b1 OK done\r\n"},
			},
			run: func(c *imapConn) error { return c.appendMessage("INBOX", `\Seen`, []byte("hello")) },
		},
		{
			name: "APPEND refused",
			script: []step{
				{"", greeting},
				{"b1 APPEND \"INBOX\" () {5}\r\n", "b1 NO [OVERQUOTA] full\r\n"},
			},
			run:     func(c *imapConn) error { return c.appendMessage("INBOX", "", []byte("hello")) },
			wantErr: "OVERQUOTA",
		},
		{
			name: "IDLE until EXISTS grows, then DONE",
			script: []step{
				{"", greeting},
				{"b1 IDLE\r\n", "+ idling\r\n* OK Still here\r\n* 1 EXPUNGE\r\n* 5 EXISTS\r\n"},
				{"DONE\r\n", "b1 OK IDLE terminated\r\n"},
			},
			run: func(c *imapConn) error {
				c.exists = 4
				tag, err := c.idle()
				if err != nil {
					return err
				}
				if err := c.waitExists(4); err != nil {
					return err
				}
				return c.done(tag)
			},
		},
		{
			name: "tagged NO",
			script: []step{
				{"", greeting},
				{"b1 LOGIN \"u\" \"x\"\r\n", "b1 NO [AUTHENTICATIONFAILED] no\r\n"},
			},
			run:     func(c *imapConn) error { return c.login("u", "x") },
			wantErr: "AUTHENTICATIONFAILED",
		},
		{
			name: "unexpected BYE",
			script: []step{
				{"", greeting},
				{"b1 NOOP\r\n", "* BYE shutting down\r\n"},
			},
			run:     func(c *imapConn) error { return c.command("NOOP", nil, "NOOP") },
			wantErr: "BYE shutting down",
		},
		{
			name: "LOGOUT's BYE is expected",
			script: []step{
				{"", greeting},
				{"b1 LOGOUT\r\n", "* BYE bye\r\nb1 OK done\r\n"},
			},
			run: func(c *imapConn) error { return c.logout() },
		},
		{
			name: "SEARCH counts matches",
			script: []step{
				{"", greeting},
				{"b1 SEARCH UNSEEN\r\n", "* SEARCH 1 4 9\r\nb1 OK done\r\n"},
			},
			run: func(c *imapConn) error {
				n, err := c.search("UNSEEN")
				if err == nil && n != 3 {
					err = errors.New("wrong match count " + strconv.Itoa(n))
				}
				return err
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &imapConn{lineConn: scripted(t, tc.script)}
			if err := c.readResp(); err != nil {
				t.Fatal(err)
			}
			c.noteCapabilities()
			err := tc.run(c)
			checkErr(t, err, tc.wantErr)
		})
	}
}

func TestPOP3Client(t *testing.T) {
	tests := []struct {
		name    string
		script  []step
		run     func(c *pop3Conn) error
		wantErr string
	}{
		{
			name: "login, stat, retr with byte-stuffing",
			script: []step{
				{"", "+OK ready\r\n"},
				{"USER u\r\n", "+OK\r\n"},
				{"PASS p\r\n", "+OK logged in\r\n"},
				{"STAT\r\n", "+OK 2 345\r\n"},
				{"RETR 1\r\n", "+OK 14 octets\r\nab\r\n..dot\r\n\r\nlong line here\r\n.\r\n"},
			},
			run: func(c *pop3Conn) error {
				if err := c.login("u", "p"); err != nil {
					return err
				}
				n, size, err := c.stat()
				if err != nil || n != 2 || size != 345 {
					return errors.New("wrong STAT")
				}
				got, err := c.retr(1)
				if err == nil && got != int64(len("ab\r\n.dot\r\n\r\nlong line here\r\n")) {
					err = errors.New("wrong size " + strconv.Itoa(int(got)))
				}
				return err
			},
		},
		{
			name: "maildrop in use",
			script: []step{
				{"", "+OK ready\r\n"},
				{"USER u\r\n", "+OK\r\n"},
				{"PASS p\r\n", "-ERR [IN-USE] locked\r\n"},
			},
			run:     func(c *pop3Conn) error { return c.login("u", "p") },
			wantErr: "[IN-USE]",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &pop3Conn{lineConn: scripted(t, tc.script)}
			if _, err := c.reply("greeting"); err != nil {
				t.Fatal(err)
			}
			checkErr(t, tc.run(c), tc.wantErr)
		})
	}
}

func TestLMTPClient(t *testing.T) {
	hello := []step{
		{"", "220-mx.example.org LMTP\r\n220 ready\r\n"},
		{"LHLO bench.example.net\r\n", "250-mx.example.org\r\n250-PIPELINING\r\n250 8BITMIME\r\n"},
	}
	tests := []struct {
		name    string
		script  []step
		rcpts   []string
		wantErr string
	}{
		{
			name: "one reply per recipient after DATA",
			script: append(hello[:2:2],
				step{"MAIL FROM:<bench@example.net>\r\n", "250 ok\r\n"},
				step{"RCPT TO:<a>\r\n", "250 ok\r\n"},
				step{"RCPT TO:<b>\r\n", "250 ok\r\n"},
				step{"DATA\r\n", "354 go\r\n"},
				step{"..x\r\n.\r\n", "250 2.0.0 <a> saved\r\n250 2.0.0 <b> saved\r\n"},
			),
			rcpts: []string{"a", "b"},
		},
		{
			name: "a refused recipient resets the transaction",
			script: append(hello[:2:2],
				step{"MAIL FROM:<bench@example.net>\r\n", "250 ok\r\n"},
				step{"RCPT TO:<nobody>\r\n", "550 5.1.1 no such user\r\n"},
				step{"RSET\r\n", "250 ok\r\n"},
			),
			rcpts:   []string{"nobody"},
			wantErr: "recipient nobody",
		},
		{
			name: "a failed delivery names its recipient",
			script: append(hello[:2:2],
				step{"MAIL FROM:<bench@example.net>\r\n", "250 ok\r\n"},
				step{"RCPT TO:<a>\r\n", "250 ok\r\n"},
				step{"RCPT TO:<b>\r\n", "250 ok\r\n"},
				step{"DATA\r\n", "354 go\r\n"},
				step{"..x\r\n.\r\n", "250 2.0.0 <a> saved\r\n452 4.2.2 <b> over quota\r\n"},
			),
			rcpts:   []string{"a", "b"},
			wantErr: "deliver to b",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &lmtpConn{lineConn: scripted(t, tc.script)}
			if _, err := c.reply("greeting", 220); err != nil {
				t.Fatal(err)
			}
			if err := c.command("LHLO", 250, "LHLO bench.example.net"); err != nil {
				t.Fatal(err)
			}
			checkErr(t, c.deliver(sender, tc.rcpts, dotStuff([]byte(".x\r\n"))), tc.wantErr)
		})
	}
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("no error, want one with %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q does not mention %q", err, want)
	}
}
