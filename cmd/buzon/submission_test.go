package main

// Tests of the submission listeners, where the accounts send mail, with
// real clients, relaying through buzon's own SMTP listener.

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/buzon-mail/buzon/internal/clienttest"
)

// submissionListeningRE finds the submission listeners' addresses in the
// log.
var submissionListeningRE = regexp.MustCompile(`msg=listening proto=(submissions?) addr=(\S+)`)

// startSubmission starts a server for mx.example.org whose submission
// listeners relay to its own SMTP listener, over STARTTLS verified
// against its self-signed certificate: mail an account sends to another
// comes back in as it would from the MTA of a real setup. It returns
// the server and the submission listeners' addresses.
func startSubmission(t *testing.T, extraConfig string) (*instance, map[string]string) {
	t.Helper()
	// The SMTP listener's port must be known before the server starts,
	// to name it as the relay: a free one, taken at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	smtpAddr := l.Addr().String()
	l.Close()
	data := t.TempDir()
	conf := writeConfig(t, fmt.Sprintf(`[listen]
submission = "127.0.0.1:0"
submissions = "127.0.0.1:0"

[submission]
relay = %q
relay_tls = "starttls"
relay_ca_file = %q
%s`, smtpAddr, filepath.Join(data, "tls", "cert.pem"), extraConfig))
	in := start(t, data, "--hostname", "mx.example.org", "--config", conf, "--smtp", smtpAddr)
	ports := map[string]string{}
	for _, m := range submissionListeningRE.FindAllStringSubmatch(in.logs(), -1) {
		ports[m[1]] = m[2]
	}
	if len(ports) != 2 {
		t.Fatalf("submission listeners: %v\n%s", ports, in.logs())
	}
	for _, user := range []string{"alice@example.org", "bob@example.org"} {
		mustBuzon(t, "a-password\n", "user", "add", "--data", data, user)
	}
	mustBuzon(t, "", "alias", "add", "--data", data, "info@example.org", "alice@example.org")
	return in, ports
}

// TestSubmissionEndToEnd: alice sends with Python's smtplib, over
// submission (STARTTLS) as herself and over submissions (implicit TLS)
// as her alias; buzon relays both through its own SMTP listener into
// bob's INBOX, where imaplib reads them under both servers' Received
// fields, the submission's saying ESMTPSA. A stranger's address is
// refused in MAIL FROM, and in the From field of a message whose MAIL
// FROM is alice's own, after DATA; neither arrives.
func TestSubmissionEndToEnd(t *testing.T) {
	t.Parallel()
	in, ports := startSubmission(t, "")
	ca := filepath.Join(in.data, "tls", "cert.pem")
	for _, tt := range []struct {
		mode, listener, from, envelope, subject, want string
	}{
		{"starttls", "submission", "Alice <alice@example.org>", "", "over submission", "sent\n"},
		{"tls", "submissions", "Info <info@example.org>", "", "over submissions", "sent\n"},
		{"tls", "submissions", "The Boss <ceo@example.com>", "", "forged", "refused 553 5.7.1 <ceo@example.com> is not an address of alice@example.org\n"},
		{"starttls", "submission", "The Boss <ceo@example.com>", "alice@example.org", "forged From",
			"refused 553 5.7.1 From: <ceo@example.com> is not an address of alice@example.org\n"},
		{"starttls", "submission", "alice@example.org, " + strings.Repeat("g:;, ", 5000) + "ceo@example.com", "alice@example.org", "padded From",
			"refused 550 5.6.0 From: a group, where only mailboxes are allowed (RFC 5322 3.6.2)\n"},
	} {
		host, port, _ := net.SplitHostPort(ports[tt.listener])
		args := []string{tt.mode, host, port, ca, "alice@example.org", "a-password",
			tt.from, "bob@example.org", tt.subject}
		if tt.envelope != "" {
			args = append(args, tt.envelope)
		}
		if got := python(t, "", "submission_send.py", args...); got != tt.want {
			t.Errorf("%s as %s (MAIL FROM %q): %q, want %q", tt.listener, tt.from, tt.envelope, got, tt.want)
		}
	}
	host, port := in.hostPort("imap")
	out := python(t, "", "imap_messages.py", host, port, "bob@example.org", "a-password")
	msgs := strings.Split(strings.TrimSuffix(out, "--end--\n"), "--end--\n")
	if len(msgs) != 2 {
		t.Fatalf("bob's INBOX holds %d messages, want 2:\n%s", len(msgs), out)
	}
	for i, want := range []struct{ subject, from, proto string }{
		{"over submission", "alice@example.org", "ESMTPSA"},
		{"over submissions", "info@example.org", "ESMTPSA"},
	} {
		m := strings.ReplaceAll(msgs[i], "\r\n", "\n")
		trace := regexp.MustCompile(`^Return-Path: <` + regexp.QuoteMeta(want.from) + `>\n` +
			`Received: from mx\.example\.org \(\[127\.0\.0\.1\]\)\n\tby mx\.example\.org \(buzon\) with ESMTPS \(TLS [^\n]+\)\n\tid \w+ for <bob@example\.org>; [^\n]+\n` +
			`Received: from \S+ \(\[127\.0\.0\.1\]\)\n\tby mx\.example\.org \(buzon\) with ` + want.proto + ` \(TLS [^\n]+\)\n\tid \w+ for <bob@example\.org>; [^\n]+\n`)
		if !trace.MatchString(m) {
			t.Errorf("message %d does not start with both servers' trace fields:\n%s", i+1, m)
		}
		if !strings.Contains(m, "\nSubject: "+want.subject+"\n") || !strings.Contains(m, "\nSent over submission.\n") {
			t.Errorf("message %d:\n%s", i+1, m)
		}
	}
}

// TestSubmissionCurlEndToEnd: curl sends a message file with --mail-from,
// --mail-rcpt and --user over smtp:// with STARTTLS; buzon adds the Date
// and Message-ID it lacks, and bob reads it.
func TestSubmissionCurlEndToEnd(t *testing.T) {
	t.Parallel()
	curl := clienttest.Need(t, "curl", "curl")
	in, ports := startSubmission(t, "")
	_, port, _ := net.SplitHostPort(ports["submission"])
	cmd := exec.Command(curl, "--silent", "--show-error", "--url", "smtp://mx.example.org:"+port,
		"--resolve", "mx.example.org:"+port+":127.0.0.1", "--ssl-reqd", "--cacert", filepath.Join(in.data, "tls", "cert.pem"),
		"--user", "alice@example.org:a-password",
		"--mail-from", "alice+curl@example.org", "--mail-rcpt", "bob@example.org", "--upload-file", "-")
	cmd.Stdin = strings.NewReader("From: alice+curl@example.org\r\nTo: bob@example.org\r\nSubject: from curl\r\n\r\nHello.\r\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	host, imapPort := in.hostPort("imap")
	out := python(t, "", "imap_messages.py", host, imapPort, "bob@example.org", "a-password")
	for _, want := range []string{"\nDate: ", "\nMessage-ID: <", "@mx.example.org>", "\nSubject: from curl", "Return-Path: <alice+curl@example.org>"} {
		if !strings.Contains(strings.ReplaceAll(out, "\r\n", "\n"), want) {
			t.Errorf("bob's message lacks %q:\n%s", want, out)
		}
	}
}

// TestSubmissionNeedsRelay: a submission listener without a relay stops
// the server at its start, saying what to set.
func TestSubmissionNeedsRelay(t *testing.T) {
	t.Parallel()
	conf := writeConfig(t, "[listen]\nsubmission = \"127.0.0.1:0\"\n")
	_, errOut, code := buzon(t, "", "serve", "--data", t.TempDir(), "--config", conf)
	if code == 0 || !strings.Contains(errOut, "listen.submission is on, but submission.relay is not set") {
		t.Errorf("serve: exit %d, %s", code, errOut)
	}
}

// TestSubmissionSwaks: swaks, as admins test a submission server, logs
// in with PLAIN over STARTTLS and with LOGIN over implicit TLS; a wrong
// password is refused with 535 and sends nothing.
func TestSubmissionSwaks(t *testing.T) {
	t.Parallel()
	swaks := clienttest.Need(t, "swaks", "swaks")
	in, ports := startSubmission(t, "")
	for _, tt := range []struct {
		name     string
		args     []string
		password string
		want     string
	}{
		{"STARTTLS, PLAIN", []string{"--server", ports["submission"], "--tls", "--auth", "PLAIN"}, "a-password", "<~  250 2.0.0 message sent, id "},
		{"implicit TLS, LOGIN", []string{"--server", ports["submissions"], "--tls-on-connect", "--auth", "LOGIN"}, "a-password", "<~  250 2.0.0 message sent, id "},
		{"wrong password", []string{"--server", ports["submissions"], "--tls-on-connect", "--auth", "PLAIN"}, "wrong", "<~* 535 5.7.8 authentication credentials invalid"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append(tt.args, "--auth-user", "alice@example.org", "--auth-password", tt.password,
				"--from", "alice@example.org", "--to", "bob@example.org", "--ehlo", "laptop.example.org",
				"--header", "Subject: "+tt.name, "--body", "Hello from swaks.")
			out, _ := exec.Command(swaks, args...).CombinedOutput()
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("swaks's transcript lacks %q:\n%s", tt.want, out)
			}
		})
	}
	host, port := in.hostPort("imap")
	if got := python(t, "", "imap_subjects.py", host, port, "bob@example.org", "a-password"); got != "STARTTLS, PLAIN\nimplicit TLS, LOGIN\n" {
		t.Errorf("bob's subjects: %q", got)
	}
}

// TestSubmissionMutt: mutt sends as a person's mail client would, over
// submissions with its smtp_url, the account's address as user name.
func TestSubmissionMutt(t *testing.T) {
	t.Parallel()
	mutt := clienttest.Need(t, "mutt", "mutt")
	in, ports := startSubmission(t, "")
	_, port, _ := net.SplitHostPort(ports["submissions"])
	home := t.TempDir()
	muttrc := filepath.Join(home, "muttrc")
	conf := fmt.Sprintf(`set from = "Alice <alice@example.org>"
set use_from = yes
set smtp_url = "smtps://alice%%40example.org@127.0.0.1:%s/"
set smtp_pass = "a-password"
set ssl_ca_certificates_file = "%s"
set record = ""
set copy = no
set charset = "utf-8"
set send_charset = "utf-8"
`, port, filepath.Join(in.data, "tls", "cert.pem"))
	if err := os.WriteFile(muttrc, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(mutt, "-n", "-F", muttrc, "-s", "from mutt", "--", "bob@example.org")
	cmd.Env = append(os.Environ(), "HOME="+home, "MAIL="+filepath.Join(home, "mbox"))
	cmd.Stdin = strings.NewReader("Hello from mutt.\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mutt: %v\n%s", err, out)
	}
	host, imapPort := in.hostPort("imap")
	if got := python(t, "", "imap_subjects.py", host, imapPort, "bob@example.org", "a-password"); got != "from mutt\n" {
		t.Errorf("bob's subjects: %q", got)
	}
}
