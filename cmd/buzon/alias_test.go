package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/buzon-mail/buzon/internal/clienttest"
)

// TestAliasDelivery: mail to an alias, sent while the server runs by
// Python's smtplib over SMTP (as another mail server would) and over LMTP
// (as an MTA would), reaches the account, one copy per message however
// many of the account's addresses it names; RCPT TO:<postmaster> reaches
// the first start's account. The account reads it over IMAP (imaplib) and
// POP3 (poplib); an alias is no login name.
func TestAliasDelivery(t *testing.T) {
	t.Parallel()
	in := start(t, "", "--hostname", "mx.example.org")
	postmasterPassword := in.waitOutput(welcomeRE)[2]
	mustBuzon(t, "a-password\n", "user", "add", "--data", in.data, "alice@example.org")
	// Flags before and after the arguments, as for buzon user.
	mustBuzon(t, "", "alias", "add", "info@example.org", "Alice@Example.org", "--data", in.data)
	mustBuzon(t, "", "alias", "--data", in.data, "add", "postmaster@example.org", "alice@example.org")

	host, port := in.hostPort("smtp")
	for _, tc := range []struct {
		subject string
		rcpts   []string
		want    string // smtp_send.py's report
	}{
		{"to info, alice and postmaster", []string{"info@example.org", "alice@example.org", "postmaster"}, "250 2.0.0 message delivered"},
		{"to postmaster of the domain", []string{"postmaster@example.org", "nobody@example.org", "Info@example.org"},
			"refused nobody@example.org 550\n250 2.0.0 message delivered"},
	} {
		msg := "From: carol@example.net\r\nTo: info@example.org\r\nSubject: " + tc.subject + "\r\n\r\nhello\r\n"
		if out := python(t, msg, "smtp_send.py", append([]string{host, port, "carol@example.net"}, tc.rcpts...)...); !strings.HasPrefix(out, tc.want) {
			t.Errorf("SMTP %s: %q, want %q", tc.subject, out, tc.want)
		}
	}
	host, port = in.hostPort("lmtp")
	if out := python(t, "From: mta@example.net\r\nSubject: over LMTP to info+orders\r\n\r\nhi\r\n", "lmtp_send.py", host, port,
		"mta@example.net", "info+orders@example.org"); out != "" {
		t.Errorf("LMTP to an alias with a +detail: %q", out)
	}

	host, port = in.hostPort("imap")
	got := python(t, "", "imap_subjects.py", host, port, "alice@example.org", "a-password")
	if want := "to info, alice and postmaster\nto postmaster of the domain\nover LMTP to info+orders\n"; got != want {
		t.Errorf("alice's INBOX over IMAP:\n%s\nwant\n%s", got, want)
	}
	host, port = in.hostPort("pop3")
	if got := python(t, "", "pop3_stat.py", host, port, "postmaster@mx.example.org", postmasterPassword, "plain"); !strings.HasPrefix(got, "1 ") {
		t.Errorf("postmaster@mx.example.org over POP3 (messages, octets): %q, want the one for <postmaster>", got)
	}
	// An alias is no login name, for IMAP or POP3.
	if out := python(t, "", "pop3_stat.py", host, port, "info@example.org", "a-password", "plain", "expect-fail"); !strings.Contains(out, "[AUTH]") {
		t.Errorf("POP3 login as an alias: %q, want an [AUTH] refusal", out)
	}
	host, port = in.hostPort("imap")
	cmd := exec.Command(clienttest.Need(t, "python3", "python3"), filepath.Join("testdata", "imap_login.py"), host, port, "info@example.org", "a-password")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "AUTHENTICATIONFAILED") {
		t.Errorf("IMAP login as an alias: %v\n%s\nwant it refused with AUTHENTICATIONFAILED", err, out)
	}
}

// TestAliasCommands: buzon alias add, del and list, their refusals, what
// buzon user list and del say of an account's aliases, and a backup and
// restore that keep them.
func TestAliasCommands(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	// No store to make: an alias needs an account.
	if _, errOut, code := buzon(t, "", "alias", "list", "--data", filepath.Join(data, "none")); code != 1 || !strings.Contains(errOut, "no store in data folder") {
		t.Errorf("alias list without a store: exit %d, %q", code, errOut)
	}
	for _, a := range []string{"alice@example.org", "bob@example.org"} {
		mustBuzon(t, "a-password\n", "user", "add", "--data", data, a)
	}
	for _, tc := range []struct {
		args []string
		out  string
	}{
		{[]string{"add", "Postmaster@example.org", "alice@example.org"}, "added alias postmaster@example.org of alice@example.org\n"},
		{[]string{"add", "Info@Example.org", "alice@example.org"}, "added alias info@example.org of alice@example.org\n"},
		{[]string{"add", "abuse@example.org", "alice@example.org"}, "added alias abuse@example.org of alice@example.org\n"},
		// A domain without a postmaster: how to give it one.
		{[]string{"add", "sales@example.net", "BOB@example.org"}, "added alias sales@example.net of bob@example.org\n" +
			"no one receives mail for postmaster@example.net, which RFC 5321 asks every domain to take; to give it to bob@example.org:\n" +
			"  buzon alias add postmaster@example.net bob@example.org\n"},
		{[]string{"add", "old@example.org", "bob@example.org"}, "added alias old@example.org of bob@example.org\n"},
		{[]string{"del", "OLD@example.org"}, "deleted alias old@example.org\n"},
	} {
		if out := mustBuzon(t, "", append(append([]string{"alias"}, tc.args...), "--data", data)...); out != tc.out {
			t.Errorf("alias %v: %q, want %q", tc.args, out, tc.out)
		}
	}
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"add", "info@example.org", "bob@example.org"}, 1, "alias already exists"},
		{[]string{"add", "bob@example.org", "alice@example.org"}, 1, "account already exists"},
		{[]string{"add", "x@example.org", "info@example.org"}, 1, "info@example.org is an alias of alice@example.org"},
		{[]string{"add", "x@example.org", "nobody@example.org"}, 1, "no such account"},
		{[]string{"add", "x", "alice@example.org"}, 1, "not an address"},
		{[]string{"del", "old@example.org"}, 1, "no such alias"},
		{[]string{"del", "alice@example.org"}, 1, "no such alias"},
		{[]string{"add", "x@example.org"}, 2, "wrong number of arguments"},
		{[]string{"rename", "x@example.org"}, 2, "unknown subcommand"},
	} {
		_, errOut, code := buzon(t, "", append(append([]string{"alias"}, tc.args...), "--data", data)...)
		if code != tc.code || !strings.Contains(errOut, tc.err) {
			t.Errorf("alias %v: exit %d, %q; want %d and %q", tc.args, code, errOut, tc.code, tc.err)
		}
	}
	if _, errOut, code := buzon(t, "a-password\n", "user", "add", "--data", data, "info@example.org"); code != 1 || !strings.Contains(errOut, "alias already exists") {
		t.Errorf("user add of an alias's name: exit %d, %q", code, errOut)
	}

	wantAliases := "abuse@example.org alice@example.org\ninfo@example.org alice@example.org\npostmaster@example.org alice@example.org\nsales@example.net bob@example.org"
	if got := aliasList(t, data); got != wantAliases {
		t.Errorf("alias list:\n%s\nwant\n%s", got, wantAliases)
	}
	if list := mustBuzon(t, "", "user", "list", "--data", data); !regexp.MustCompile(`(?m)^alice@example\.org .*  abuse@example\.org, info@example\.org, postmaster@example\.org$`).MatchString(list) ||
		!regexp.MustCompile(`(?m)^bob@example\.org .*  sales@example\.net$`).MatchString(list) {
		t.Errorf("user list does not show the aliases:\n%s", list)
	}

	// A backup keeps them, and so the store restored from it.
	backup := filepath.Join(t.TempDir(), "backup")
	mustBuzon(t, "", "backup", "--data", data, backup)
	restored := filepath.Join(t.TempDir(), "restored")
	mustBuzon(t, "", "restore", "--data", restored, backup)
	if got := aliasList(t, restored); got != wantAliases {
		t.Errorf("alias list of the restored store:\n%s\nwant\n%s", got, wantAliases)
	}
	if out := mustBuzon(t, "hi\r\n", "deliver", "--data", restored, "info+x@example.org"); out != "" {
		t.Errorf("deliver: %q", out)
	}
	// One copy for an account named by its address and its aliases, as
	// over LMTP; another for a +detail.
	if out := mustBuzon(t, "hi\r\n", "deliver", "--data", restored, "info@example.org", "alice@example.org", "abuse@example.org", "alice+x@example.org"); out != "" {
		t.Errorf("deliver: %q", out)
	}
	if list := mustBuzon(t, "", "user", "list", "--data", restored); !regexp.MustCompile(`(?m)^alice@example\.org +3 `).MatchString(list) {
		t.Errorf("after deliver to info+x@, then to alice@, two of her aliases and alice+x@, want 3 messages:\n%s", list)
	}

	// Deleting an account deletes its aliases, and says so.
	if out := mustBuzon(t, "", "user", "del", "--data", data, "alice@example.org"); out != "deleted alice@example.org and its aliases abuse@example.org, info@example.org, postmaster@example.org\n" {
		t.Errorf("user del of an account with aliases: %q", out)
	}
	if out := mustBuzon(t, "", "user", "del", "--data", data, "bob@example.org"); out != "deleted bob@example.org and its aliases sales@example.net\n" {
		t.Errorf("user del of an account with an alias: %q", out)
	}
	if got := aliasList(t, data); got != "" {
		t.Errorf("aliases after their accounts were deleted:\n%s", got)
	}
	mustBuzon(t, "a-password\n", "user", "add", "--data", data, "info@example.org")
	if out := mustBuzon(t, "", "user", "del", "--data", data, "info@example.org"); out != "deleted info@example.org\n" {
		t.Errorf("user del of an account without aliases: %q", out)
	}
}

// aliasList returns buzon alias list's lines without the heading, each
// with its runs of spaces made one.
func aliasList(t *testing.T, data string) string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(mustBuzon(t, "", "alias", "list", "--data", data)), "\n")
	if strings.Join(strings.Fields(lines[0]), " ") != "ALIAS ACCOUNT" {
		t.Fatalf("alias list's heading: %q", lines[0])
	}
	var out []string
	for _, l := range lines[1:] {
		out = append(out, strings.Join(strings.Fields(l), " "))
	}
	return strings.Join(out, "\n")
}
