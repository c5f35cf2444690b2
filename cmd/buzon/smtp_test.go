package main

// Tests of the SMTP listener, the server as the MX of its accounts, with
// real clients.

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/clienttest"
)

// TestSMTPSwaks delivers over SMTP with swaks, as another mail server
// would deliver to this one as its MX: STARTTLS, two local recipients and
// an unknown one in one transaction. Both accounts then read the message
// over POP3, under the Return-Path and Received fields the server added.
func TestSMTPSwaks(t *testing.T) {
	t.Parallel()
	swaks := clienttest.Need(t, "swaks", "swaks")
	in := start(t, "", "--hostname", "mx.example.org")
	for _, user := range []string{"alice@example.org", "bob@example.org"} {
		mustBuzon(t, "a-password\n", "user", "add", "--data", in.data, user)
	}
	msg := "From: carol@example.net\r\nTo: alice@example.org, bob@example.org\r\nSubject: over SMTP\r\nMessage-ID: <smtp-1@example.net>\r\n\r\n.a line that starts with a dot\r\nGr\xc3\xbc\xc3\x9fe\r\n"
	cmd := exec.Command(swaks, "--server", in.ports["smtp"], "--tls", "--ehlo", "relay.example.net",
		"--from", "carol@example.net", "--to", "alice@example.org,nobody@example.org,bob@example.org",
		"--data", "-")
	cmd.Stdin = strings.NewReader(msg)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	// swaks marks what it read over TLS with "<~", refusals with "<~*".
	for _, want := range []string{
		"<-  250-STARTTLS",
		"<~  250 2.1.5 recipient <alice@example.org> OK",
		"<~* 550 5.1.1 <nobody@example.org> no such user",
		"<~  250 2.1.5 recipient <bob@example.org> OK",
		"<~  250 2.0.0 message delivered, id ",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("swaks's transcript lacks %q:\n%s", want, out)
		}
	}
	trace := regexp.MustCompile(`^Return-Path: <carol@example\.net>\r\n` +
		`Received: from relay\.example\.net \(\[127\.0\.0\.1\]\)\r\n` +
		`\tby mx\.example\.org \(buzon\) with ESMTPS \(TLS [0-9.]+ TLS_[A-Z0-9_]+\)\r\n` +
		`\tid [A-Z2-7]{12}; [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\n`)
	host, port := in.hostPort("pop3")
	for _, user := range []string{"alice@example.org", "bob@example.org"} {
		dir := t.TempDir()
		if n := python(t, "", "pop3_download.py", host, port, user, "a-password", dir, "keep"); n != "1\n" {
			t.Fatalf("%s has %q messages over POP3, want 1", user, n)
		}
		b, err := os.ReadFile(filepath.Join(dir, "1"))
		if err != nil {
			t.Fatal(err)
		}
		got := string(b)
		loc := trace.FindStringIndex(got)
		if loc == nil {
			t.Fatalf("%s's message does not start with the trace fields:\n%s", user, got)
		}
		// swaks ends the data with a line break of its own.
		if rest := got[loc[1]:]; rest != msg+"\r\n" {
			t.Errorf("%s's message after the trace fields: %q, want %q", user, rest, msg+"\r\n")
		}
	}
}

// TestSMTPNoRelay: the server is no open relay. swaks, as a spammer
// would, asks it to deliver to another domain, with and without the old
// routing tricks (a source route, a percent hack); each recipient is
// refused at RCPT and nothing is stored or sent. There is no AUTH to
// try.
func TestSMTPNoRelay(t *testing.T) {
	t.Parallel()
	swaks := clienttest.Need(t, "swaks", "swaks")
	in := start(t, "", "--hostname", "mx.example.org")
	mustBuzon(t, "a-password\n", "user", "add", "--data", in.data, "alice@example.org")
	for _, to := range []string{"victim@example.com", "@mx.example.org:victim@example.com", "victim%example.com@example.org", "victim@example.com@example.org"} {
		cmd := exec.Command(swaks, "--server", in.ports["smtp"], "--from", "spammer@example.net", "--to", to,
			"--ehlo", "spammer.example.net", "--body", "buy now")
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("swaks --to %s succeeded:\n%s", to, out)
		}
		if !regexp.MustCompile(`(?m)^<\*\* 5(50|01) 5\.1\.[13] `).Match(out) {
			t.Errorf("swaks --to %s: no refusal at RCPT:\n%s", to, out)
		}
	}
	cmd := exec.Command(swaks, "--server", in.ports["smtp"], "--from", "spammer@example.net", "--to", "alice@example.org",
		"--auth", "PLAIN", "--auth-user", "alice@example.org", "--auth-password", "a-password")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "Host did not advertise authentication") {
		t.Errorf("swaks with AUTH: %v\n%s", err, out)
	}
	host, port := in.hostPort("pop3")
	if n := python(t, "", "pop3_download.py", host, port, "alice@example.org", "a-password", t.TempDir(), "keep"); n != "0\n" {
		t.Errorf("alice has %q messages, want none", n)
	}
}

// TestSMTPConnectionLimit: the SMTP listener counts towards
// limits.max_connections_per_ip with the others, and a connection over
// it hears 421 4.7.0 (RFC 5321 3.8) rather than a silent close.
func TestSMTPConnectionLimit(t *testing.T) {
	t.Parallel()
	in := start(t, "", "--config", writeConfig(t, "[limits]\nmax_connections_per_ip = 2\n"))
	var lines []string
	for range 3 {
		c, err := net.Dial("tcp", in.ports["smtp"])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		lines = append(lines, line)
	}
	for i, want := range []string{"220 ", "220 ", "421 4.7.0 "} {
		if !strings.HasPrefix(lines[i], want) {
			t.Errorf("connection %d: %q, want %q", i+1, lines[i], want)
		}
	}
}
