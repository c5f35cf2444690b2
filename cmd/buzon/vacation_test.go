package main

// End-to-end tests of Sieve vacation: buzon serve relaying through its
// own SMTP listener, scripts uploaded over ManageSieve with sievelib, mail
// sent with smtplib and read with imaplib.

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/buzon-mail/buzon/internal/clienttest"
	"github.com/buzon-mail/buzon/internal/smtpclient"
)

// roundcubeVacation is the script Roundcube's vacation dialog writes.
const roundcubeVacation = `require ["vacation"];
# rule:[Out of office]
if true
{
	vacation :days 7 :addresses ["alice@example.org", "info@example.org"] :subject "Out of office" "I am away until Monday. Your mail waits for me.";
}
`

// uploadVacation puts script as alice's active script with sievelib and
// checks that the server names vacation.
func uploadVacation(t *testing.T, in *instance, script string) {
	t.Helper()
	needSievelib(t)
	f := filepath.Join(t.TempDir(), "vacation.sieve")
	if err := os.WriteFile(f, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	host, port := in.hostPort("sieve")
	want := "connect True\nvacation True True\nputscript True \nsetactive True\n"
	if got := python(t, "a-password\n", "sievelib_vacation.py", host, port, "alice@example.org", f); got != want {
		t.Fatalf("sievelib said:\n%s\nwant:\n%s", got, want)
	}
}

// needSievelib skips a test when Python's sievelib is missing.
func needSievelib(t *testing.T) {
	t.Helper()
	py := clienttest.Python(t)
	if err := exec.Command(py, "-c", "import sievelib.managesieve").Run(); err != nil {
		t.Skipf("%s cannot import sievelib (apt-get install python3-sievelib, or scripts/deps.sh): %v", py, err)
	}
}

// TestVacationEndToEnd: alice turns on Roundcube's vacation; bob writes
// to her and gets one reply, read with imaplib in his INBOX, from her,
// "Out of office", answering his message and marked auto-replied, sent
// from the null sender; bob's second message gets none, nor does a
// mailing list's or a bounce. Alice has every message.
func TestVacationEndToEnd(t *testing.T) {
	t.Parallel()
	in, _ := startSubmission(t, "")
	uploadVacation(t, in, roundcubeVacation)
	host, port := in.hostPort("smtp")
	send := func(from, extra, subject string) {
		t.Helper()
		msg := "From: " + from + "\r\nTo: Alice <alice@example.org>\r\nSubject: " + subject +
			"\r\nMessage-ID: <" + strings.ReplaceAll(subject, " ", ".") + "@example.org>\r\n" + extra + "\r\nHi Alice.\r\n"
		envFrom := from
		if strings.HasPrefix(extra, "X-Bounce") {
			envFrom = ""
		}
		if out := python(t, msg, "smtp_send.py", host, port, envFrom, "alice@example.org"); !strings.HasPrefix(out, "250 ") {
			t.Fatalf("SMTP %q: %q", subject, out)
		}
	}
	send("bob@example.org", "", "lunch on friday")
	in.waitLog(`msg="vacation reply sent" account=alice@example.org script=roundcube to=bob@example.org`, 1)
	send("bob@example.org", "", "lunch again")
	in.waitLog(`msg="no vacation reply: replied to within the period" account=alice@example.org to=bob@example.org`, 1)
	send("bob@example.org", "List-Id: <friends.lists.example.org>\r\n", "list mail")
	in.waitLog(`msg="no vacation reply: List-Id field"`, 1)
	send("bob@example.org", "X-Bounce: yes\r\n", "a bounce")
	in.waitLog(`msg="no vacation reply: the null sender"`, 1)

	imapHost, imapPort := in.hostPort("imap")
	out := python(t, "", "imap_messages.py", imapHost, imapPort, "bob@example.org", "a-password")
	msgs := strings.Split(strings.TrimSuffix(out, "--end--\n"), "--end--\n")
	if len(msgs) != 1 {
		t.Fatalf("bob's INBOX holds %d messages, want the one reply:\n%s", len(msgs), out)
	}
	reply := strings.ReplaceAll(msgs[0], "\r\n", "\n")
	for _, want := range []string{
		"Return-Path: <>\n", "\nFrom: <alice@example.org>\n", "\nTo: <bob@example.org>\n", "\nSubject: Out of office\n",
		"\nIn-Reply-To: <lunch.on.friday@example.org>\n", "\nReferences: <lunch.on.friday@example.org>\n",
		"\nAuto-Submitted: auto-replied (vacation)\n", "\n\nI am away until Monday. Your mail waits for me.\n",
	} {
		if !strings.Contains(reply, want) {
			t.Errorf("the reply lacks %q:\n%s", want, reply)
		}
	}
	out = python(t, "", "imap_messages.py", imapHost, imapPort, "alice@example.org", "a-password")
	if n := strings.Count(out, "--end--\n"); n != 4 {
		t.Errorf("alice's INBOX holds %d messages, want all 4:\n%s", n, out)
	}
	if n := strings.Count(in.logs(), `msg="vacation reply sent"`); n != 1 {
		t.Errorf("%d replies sent, want 1:\n%s", n, in.logs())
	}
}

// TestVacationRelayDown: with the relay down, alice's mail is stored all
// the same, and the log says the reply was not sent, and so is mail her
// script redirects; without a relay, the server refuses vacation scripts
// at upload and does not name vacation.
func TestVacationRelayDown(t *testing.T) {
	t.Parallel()
	needSievelib(t)
	data := t.TempDir()
	conf := writeConfig(t, fmt.Sprintf("[submission]\nrelay = %q\nrelay_tls = \"none\"\nrelay_connect_timeout = \"5s\"\n", freePort(t)))
	in := start(t, data, "--config", conf)
	mustBuzon(t, "a-password\n", "user", "add", "--data", data, "alice@example.org")
	uploadVacation(t, in, roundcubeVacation)
	host, port := in.hostPort("smtp")
	msg := "From: bob@example.net\r\nTo: alice@example.org\r\nSubject: are you there\r\n\r\nHi.\r\n"
	if out := python(t, msg, "smtp_send.py", host, port, "bob@example.net", "alice@example.org"); !strings.HasPrefix(out, "250 ") {
		t.Fatalf("SMTP: %q", out)
	}
	in.waitLog(`msg="vacation reply not sent" account=alice@example.org script=roundcube to=bob@example.net err="relay `, 1)
	imapHost, imapPort := in.hostPort("imap")
	if out := python(t, "", "imap_messages.py", imapHost, imapPort, "alice@example.org", "a-password"); !strings.Contains(out, "Subject: are you there") {
		t.Errorf("alice's INBOX:\n%s", out)
	}
	// A redirect the relay cannot take keeps the message: carol's 250
	// comes once it is in alice's INBOX.
	mustBuzon(t, `redirect "bob@example.net";`, "sieve", "put", "--data", data, "--config", conf, "alice@example.org", "forward")
	mustBuzon(t, "", "sieve", "activate", "--data", data, "--config", conf, "alice@example.org", "forward")
	msg = "From: carol@example.net\r\nTo: alice@example.org\r\nSubject: forward me\r\n\r\nHi.\r\n"
	if out := python(t, msg, "smtp_send.py", host, port, "carol@example.net", "alice@example.org"); !strings.HasPrefix(out, "250 ") {
		t.Fatalf("SMTP: %q", out)
	}
	if out := python(t, "", "imap_messages.py", imapHost, imapPort, "alice@example.org", "a-password"); !strings.Contains(out, "Subject: forward me") {
		t.Errorf("alice's INBOX after a redirect with the relay down:\n%s", out)
	}
	in.waitLog(`msg="sieve redirect failed; message kept" account=alice@example.org script=forward to=bob@example.net err="relay `, 1)

	// No relay: refused, and said why.
	plain := start(t, "")
	mustBuzon(t, "a-password\n", "user", "add", "--data", plain.data, "alice@example.org")
	f := filepath.Join(t.TempDir(), "vacation.sieve")
	if err := os.WriteFile(f, []byte(roundcubeVacation), 0o644); err != nil {
		t.Fatal(err)
	}
	h, p := plain.hostPort("sieve")
	got := python(t, "a-password\n", "sievelib_vacation.py", h, p, "alice@example.org", f)
	if !strings.Contains(got, "vacation False False\n") || !strings.Contains(got, "putscript False") ||
		!strings.Contains(got, "no relay to send replies through (submission.relay)") {
		t.Errorf("without a relay, sievelib said:\n%s", got)
	}
}

// fakeRelay is an SMTP relay that offers the extensions given and
// records each transaction's MAIL line; one connection at a time.
func fakeRelay(t *testing.T, exts ...string) (addr string, mails <-chan string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ch := make(chan string, 16)
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			serveFakeRelay(nc, exts, ch)
		}
	}()
	return l.Addr().String(), ch
}

func serveFakeRelay(nc net.Conn, exts []string, mails chan<- string) {
	defer nc.Close()
	r := bufio.NewReader(nc)
	fmt.Fprintf(nc, "220 relay.example ESMTP\r\n")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		switch verb := strings.ToUpper(strings.SplitN(line, " ", 2)[0]); verb {
		case "EHLO":
			fmt.Fprintf(nc, "250-relay.example\r\n")
			for _, e := range exts {
				fmt.Fprintf(nc, "250-%s\r\n", e)
			}
			fmt.Fprintf(nc, "250 PIPELINING\r\n")
		case "MAIL":
			mails <- line
			fmt.Fprintf(nc, "250 ok\r\n")
		case "DATA":
			fmt.Fprintf(nc, "354 go on\r\n")
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
			}
			fmt.Fprintf(nc, "250 taken\r\n")
		case "QUIT":
			fmt.Fprintf(nc, "221 bye\r\n")
			return
		default:
			fmt.Fprintf(nc, "250 ok\r\n")
		}
	}
}

// TestRelaySenderSMTPUTF8: SMTPUTF8 is declared at MAIL when the sender,
// the recipient or the message's header is not ASCII (RFC 6531 3.4), and
// such a message fails, before MAIL, at a relay that does not offer it.
func TestRelaySenderSMTPUTF8(t *testing.T) {
	t.Parallel()
	const ascii = "From: bob@example.net\r\nSubject: hi\r\n\r\nGr\xc3\xbc\xc3\x9fe\r\n" // 8-bit body only
	for _, tc := range []struct {
		name, from, to, msg string
		utf8                bool
	}{
		{"ASCII", "alice@example.org", "bob@example.net", ascii, false},
		{"sender", "ålice@example.org", "bob@example.net", ascii, true},
		{"recipient", "alice@example.org", "bøb@example.net", ascii, true},
		{"header", "alice@example.org", "bob@example.net", "From: bøb@example.net\r\nSubject: hi\r\n\r\nhi\r\n", true},
		{"no header end", "alice@example.org", "bob@example.net", "Subject: gr\xc3\xbc\xc3\x9fe", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, offer := range []bool{true, false} {
				exts := []string{"8BITMIME"}
				if offer {
					exts = append(exts, "SMTPUTF8")
				}
				addr, mails := fakeRelay(t, exts...)
				s := relaySender{smtpclient.Config{Addr: addr, Security: smtpclient.Plain}}
				err := s.Send(t.Context(), tc.from, tc.to, strings.NewReader(tc.msg))
				if tc.utf8 && !offer {
					if err == nil || !strings.Contains(err.Error(), "SMTPUTF8") {
						t.Errorf("relay without SMTPUTF8: %v, want an error naming it", err)
					}
					select {
					case m := <-mails:
						t.Errorf("relay without SMTPUTF8 got %q", m)
					default:
					}
					continue
				}
				if err != nil {
					t.Fatalf("offer %v: %v", offer, err)
				}
				if m := <-mails; strings.Contains(m, " SMTPUTF8") != tc.utf8 {
					t.Errorf("offer %v: %q, want SMTPUTF8 %v", offer, m, tc.utf8)
				}
			}
		})
	}
}
