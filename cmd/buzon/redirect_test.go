package main

// End-to-end tests of Sieve redirect: buzon serve relaying through its own
// SMTP listener, scripts put with buzon sieve, mail sent with smtplib and
// read with imaplib.

import (
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/delivery"
)

// TestRedirectEndToEnd: alice's script forwards to bob, through the
// relay: carol's message lands in bob's INBOX under the field naming
// alice, and not in alice's; with :copy in both. When bob forwards back
// to alice, the message that went round is kept by alice, not sent on.
// A message sent twice (as after a lost 250) is forwarded once, and the
// second delivery, found forwarded, keeps it in alice's INBOX (a false
// match must not lose a message), with or without a Message-ID.
func TestRedirectEndToEnd(t *testing.T) {
	t.Parallel()
	in, _ := startSubmission(t, "")
	smtpHost, smtpPort := in.hostPort("smtp")
	imapHost, imapPort := in.hostPort("imap")
	// buzon sieve with the server's configuration, which names the
	// relay: without it, redirect is refused.
	conf := in.cmd.Args[slices.Index(in.cmd.Args, "--config")+1]
	put := func(account, script string) {
		t.Helper()
		mustBuzon(t, script, "sieve", "put", "--data", in.data, "--config", conf, account, "main")
		mustBuzon(t, "", "sieve", "activate", "--data", in.data, "--config", conf, account, "main")
	}
	sendMsg := func(msg string) {
		t.Helper()
		if out := python(t, msg, "smtp_send.py", smtpHost, smtpPort, "carol@example.net", "alice@example.org"); !strings.HasPrefix(out, "250 ") {
			t.Fatalf("SMTP %q: %q", msg, out)
		}
	}
	send := func(subject string) {
		t.Helper()
		sendMsg("From: carol@example.net\r\nTo: alice@example.org\r\nSubject: " + subject + "\r\n\r\nHi.\r\n")
	}
	inbox := func(account string) []string {
		t.Helper()
		out := python(t, "", "imap_messages.py", imapHost, imapPort, account, "a-password")
		if out == "" {
			return nil
		}
		return strings.Split(strings.TrimSuffix(strings.ReplaceAll(out, "\r\n", "\n"), "--end--\n"), "--end--\n")
	}

	put("alice@example.org", `redirect "bob@example.org";`)
	send("forwarded")
	// The forward is done before carol's 250: bob has it now.
	bob := inbox("bob@example.org")
	// Under the relay's trace fields, alice's field, then the message as
	// her delivery stored it but for its Return-Path: bob's delivery
	// writes bob's, the envelope sender alice's address.
	if len(bob) != 1 || !strings.Contains(bob[0], "\nX-Sieve-Redirected-From: alice@example.org\nReceived: from relay.example.net ") ||
		!strings.HasPrefix(bob[0], "Return-Path: <alice@example.org>\n") || strings.Count(bob[0], "Return-Path:") != 1 ||
		!strings.Contains(bob[0], "\nSubject: forwarded\n") {
		t.Fatalf("bob's INBOX:\n%s", strings.Join(bob, "--end--\n"))
	}
	if alice := inbox("alice@example.org"); len(alice) != 0 {
		t.Errorf("alice keeps what she forwarded without :copy:\n%s", strings.Join(alice, "--end--\n"))
	}

	put("alice@example.org", `require "copy"; redirect :copy "bob@example.org";`)
	send("copied")
	if bob := inbox("bob@example.org"); len(bob) != 2 || !strings.Contains(bob[1], "\nSubject: copied\n") {
		t.Errorf("bob's INBOX after :copy:\n%s", strings.Join(bob, "--end--\n"))
	}
	if alice := inbox("alice@example.org"); len(alice) != 1 || !strings.Contains(alice[0], "\nSubject: copied\n") ||
		strings.Contains(alice[0], "X-Sieve-Redirected-From") {
		t.Errorf("alice's INBOX after :copy:\n%s", strings.Join(alice, "--end--\n"))
	}

	// A loop: alice forwards to bob, who forwards to alice.
	put("alice@example.org", `redirect "bob@example.org";`)
	put("bob@example.org", `redirect "alice@example.org";`)
	send("round and round")
	alice := inbox("alice@example.org")
	if len(alice) != 2 || !strings.Contains(alice[1], "X-Sieve-Redirected-From: bob@example.org\nReceived: ") ||
		!strings.Contains(alice[1], "\nX-Sieve-Redirected-From: alice@example.org\nReceived: ") {
		t.Errorf("alice's INBOX after the loop:\n%s", strings.Join(alice, "--end--\n"))
	}
	if n := len(inbox("bob@example.org")); n != 2 {
		t.Errorf("bob's INBOX holds %d after the loop, want his 2 from before", n)
	}
	in.waitLog(`msg="sieve redirect failed; message kept" account=alice@example.org script=main to=bob@example.org err="the message was forwarded by alice@example.org before: a loop"`, 1)

	// Sent twice: bob gets it once, and alice's second delivery finds
	// the forward recorded (sieve.redirect_duplicate_period) and keeps
	// the message instead of forwarding it again. The Date is
	// now's: one far from the server's clock is not plausible, and such a
	// message is forwarded every time.
	put("bob@example.org", `keep;`)
	date := time.Now().UTC().Format(time.RFC1123Z)
	for range 2 {
		sendMsg("From: carol@example.net\r\nTo: alice@example.org\r\nSubject: once\r\nDate: " + date + "\r\nMessage-ID: <once@example.net>\r\n\r\nHi.\r\n")
	}
	if bob := inbox("bob@example.org"); len(bob) != 3 || !strings.Contains(bob[2], "\nSubject: once\n") {
		t.Errorf("bob's INBOX after a message sent twice:\n%s", strings.Join(bob, "--end--\n"))
	}
	if alice := inbox("alice@example.org"); len(alice) != 3 || !strings.Contains(alice[2], "\nSubject: once\n") ||
		strings.Contains(alice[2], "X-Sieve-Redirected-From") {
		t.Errorf("alice's INBOX after a message sent twice, want her 2 from before and the second try:\n%s", strings.Join(alice, "--end--\n"))
	}
	in.waitLog(`msg="redirect already sent; message kept" account=alice@example.org script=main to=bob@example.org`, 1)

	// Without a Message-ID, sent twice: each try comes under a Received
	// of its own (another id, another time), and is the same message.
	for range 2 {
		sendMsg("From: carol@example.net\r\nTo: alice@example.org\r\nSubject: no id\r\nDate: " + date + "\r\n\r\nHi.\r\n")
	}
	if bob := inbox("bob@example.org"); len(bob) != 4 || !strings.Contains(bob[3], "\nSubject: no id\n") {
		t.Errorf("bob's INBOX after a message without a Message-ID sent twice:\n%s", strings.Join(bob, "--end--\n"))
	}
	if alice := inbox("alice@example.org"); len(alice) != 4 || !strings.Contains(alice[3], "\nSubject: no id\n") {
		t.Errorf("alice's INBOX after a message without a Message-ID sent twice, want 3 from before and the second try:\n%s", strings.Join(alice, "--end--\n"))
	}
	in.waitLog(`msg="redirect already sent; message kept" account=alice@example.org script=main to=bob@example.org`, 2)
}

// TestRedirectDuplicatePeriod: sieve.redirect_duplicate_period reaches
// the Deliverer, its 0 (no check) too.
func TestRedirectDuplicatePeriod(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ set, want time.Duration }{
		{12 * time.Hour, 12 * time.Hour},
		{time.Minute, time.Minute},
		{0, 0},
	} {
		cfg := config.Default()
		cfg.Submission.Relay = "relay.example.net:25"
		cfg.Sieve.RedirectDuplicatePeriod = config.Duration(tc.set)
		var d delivery.Deliverer
		if err := vacationDeliverer(&d, cfg); err != nil {
			t.Fatal(err)
		}
		if d.Redirect.DuplicatePeriod != tc.want {
			t.Errorf("sieve.redirect_duplicate_period %v: the Deliverer's period is %v, want %v", tc.set, d.Redirect.DuplicatePeriod, tc.want)
		}
	}
}

// TestSevenBit: a message for a relay without 8BITMIME is read as it is
// while it is 7-bit, and fails at the first octet that is not.
func TestSevenBit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		msg string
		ok  bool
	}{
		{"Subject: hi\r\n\r\nplain\r\n", true},
		{"Subject: hi\r\n\r\nGr\xc3\xbc\xc3\x9fe\r\n", false},
	} {
		got, err := io.ReadAll(sevenBit{strings.NewReader(tc.msg)})
		if (err == nil) != tc.ok || (tc.ok && string(got) != tc.msg) {
			t.Errorf("%q: read %q, %v; want ok %v", tc.msg, got, err, tc.ok)
		}
	}
}
