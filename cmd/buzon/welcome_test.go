package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestClientAddr: the welcome text names the host name where the listener
// takes every interface, which no client can connect to.
func TestClientAddr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ addr, want string }{
		{"127.0.0.1:1143", "127.0.0.1:1143"},
		{"0.0.0.0:993", "mail.example.org:993"},
		{"[::]:993", "mail.example.org:993"},
		{":995", "mail.example.org:995"},
		{"[2001:db8::1]:143", "[2001:db8::1]:143"},
		{"mx.example.net:110", "mx.example.net:110"},
	} {
		if got := clientAddr(tc.addr, "mail.example.org"); got != tc.want {
			t.Errorf("clientAddr(%q) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

// welcomeEndRE matches the welcome's last lines: the commands it suggests.
var welcomeEndRE = regexp.MustCompile(`(?m)^Add accounts with:\s+(.+) someone@example\.org\nDeliver a test mail:\s+(.+ \| (.+)) (\S+)\nAdd aliases with:\s+(.+) info@example\.org (\S+)\n`)

// TestWelcome: the first start lists the addresses the server is bound to
// (the ports it picked for port 0, not the configured 0), under the right
// protocol and security, and the commands it suggests work as printed on
// its store, with or without a config file. Its account is postmaster@ the
// host name, so it makes no alias.
func TestWelcome(t *testing.T) {
	t.Parallel()
	for _, withConfig := range []bool{false, true} {
		t.Run(fmt.Sprintf("config=%v", withConfig), func(t *testing.T) {
			var extra []string
			cfgFile := ""
			if withConfig {
				cfgFile = filepath.Join(t.TempDir(), "buzon.toml")
				if err := os.WriteFile(cfgFile, []byte("[log]\nformat = \"text\"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				extra = []string{"--config", cfgFile}
			}
			in := start(t, "", append(extra, "--hostname", "mail.example.org")...)
			m := in.waitOutput(welcomeEndRE)
			out := in.output()
			for _, l := range []struct{ listener, line string }{
				{"imap", "IMAP %s STARTTLS"},
				{"imaps", "IMAP %s SSL/TLS"},
				{"pop3", "POP3 %s STARTTLS"},
				{"pop3s", "POP3 %s SSL/TLS"},
				{"lmtp", "LMTP %s for your MTA"},
				{"smtp", "SMTP %s STARTTLS, incoming mail only (the MX), not for sending"},
				{"sieve", "Sieve %s ManageSieve, STARTTLS, for mail filters"},
			} {
				want := fmt.Sprintf(l.line, in.ports[l.listener])
				if !slices.Contains(welcomeSettings(out), want) {
					t.Errorf("welcome lacks %q:\n%s", want, out)
				}
			}
			// The addresses' column is one, the LMTP socket's long path in
			// the test's temporary folder included.
			col := -1
			for _, line := range strings.Split(out, "\n") {
				if !strings.HasPrefix(line, "  ") || !slices.ContainsFunc([]string{"IMAP", "POP3", "LMTP", "SMTP", "Sieve"}, func(p string) bool { return strings.HasPrefix(line, "  "+p+" ") }) {
					continue
				}
				after := strings.Index(line, strings.Fields(line)[1]) + len(strings.Fields(line)[1])
				at := len(line) - len(strings.TrimLeft(line[after:], " ")) // where the third column starts
				if col == -1 {
					col = at
				} else if at != col {
					t.Errorf("settings out of column:\n%s", out)
					break
				}
			}
			if strings.Contains(out, ":0 ") {
				t.Errorf("welcome names port 0:\n%s", out)
			}
			if strings.Contains(out, "aliases\n") {
				t.Errorf("the first account, postmaster@ itself, got aliases:\n%s", out)
			}
			userAdd, deliverLine, deliver, rcpt, aliasAdd := strings.Fields(m[1]), m[2]+" "+m[4], strings.Fields(m[3]), m[4], strings.Fields(m[5])
			if m[6] != rcpt {
				t.Errorf("the alias suggested names %s, not the account %s", m[6], rcpt)
			}
			if withConfig && !slices.Contains(userAdd, cfgFile) {
				t.Errorf("%q does not name the config file %s", m[1], cfgFile)
			}
			if userAdd[0] != buzonBin {
				t.Errorf("%q does not run the binary that was started, %s", m[1], buzonBin)
			}
			mustBuzon(t, "a-password\n", append(userAdd[1:], "someone@example.org")...)
			// The test mail's command is whole, as a person pastes it: it
			// brings its own message.
			if out, err := exec.Command("sh", "-c", deliverLine).CombinedOutput(); err != nil {
				t.Errorf("%s: %v\n%s", deliverLine, err, out)
			}
			mustBuzon(t, "", append(aliasAdd[1:], "info@example.org", rcpt)...)
			mustBuzon(t, "Subject: test\r\n\r\nhello\r\n", append(deliver[1:], "info@example.org")...)
			list := mustBuzon(t, "", "user", "list", "--data", in.data)
			if !strings.Contains(list, "someone@example.org") || !regexp.MustCompile(`postmaster@mail\.example\.org\s+2\s.*info@example\.org\n`).MatchString(list) {
				t.Errorf("after the welcome's commands:\n%s", list)
			}
		})
	}
}

// welcomeSettings returns the welcome's mail client settings, each line
// with its runs of spaces made one.
func welcomeSettings(out string) []string {
	var lines []string
	for _, line := range strings.Split(out, "\n") {
		if slices.ContainsFunc([]string{"IMAP", "POP3", "LMTP", "SMTP", "Sieve"}, func(p string) bool { return strings.HasPrefix(line, "  "+p+" ") }) {
			lines = append(lines, strings.Join(strings.Fields(line), " "))
		}
	}
	return lines
}

// TestListenInUse: a listener whose port is taken stops the first start
// before it makes an account, with an error that says what to do, and the
// next start with a free port makes the account then.
func TestListenInUse(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	data := t.TempDir()
	args := []string{"serve", "--data", data, "--imap", taken.Addr().String()}
	for _, name := range listenerNames[1:] {
		args = append(args, "--"+name, "127.0.0.1:0")
	}
	out, errOut, code := buzon(t, "", args...)
	if code != 1 || !strings.Contains(errOut, "address already in use (another program, or another buzon serve, listens there: stop it, or set --imap or listen.imap") {
		t.Errorf("exit %d, stderr:\n%s", code, errOut)
	}
	if welcomeRE.MatchString(out) {
		t.Errorf("a server that did not start handed out a password:\n%s", out)
	}
	start(t, data).waitOutput(welcomeRE)
}

// TestServeDataInUse: a second server on a data folder already served
// stops with an error that says so and what to do, and leaves the first
// one serving.
func TestServeDataInUse(t *testing.T) {
	t.Parallel()
	first := start(t, "")
	args := []string{"serve", "--data", first.data}
	for _, name := range listenerNames {
		args = append(args, "--"+name, "127.0.0.1:0")
	}
	_, errOut, code := buzon(t, "", args...)
	if code != 1 || !strings.Contains(errOut, "another buzon server already serves this data folder; stop it first, or give this server another data folder (--data or data in the config file)") {
		t.Errorf("exit %d, stderr:\n%s", code, errOut)
	}
	select {
	case <-first.exited:
		t.Error("the first server stopped")
	default:
	}
}

// TestServeFlagOverridesConfig: a listen flag overrides the config file's
// setting even when that setting is one the server could not use, as
// "flags override the config file" promises; without the flag, the error
// names the setting.
func TestServeFlagOverridesConfig(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, "[listen]\nimap = \"1143\"\n")
	_, errOut, code := buzon(t, "", "serve", "--data", t.TempDir(), "--config", cfg)
	if code != 1 || !strings.Contains(errOut, `listen.imap: "1143" is not host:port`) {
		t.Errorf("bad listen.imap: exit %d, stderr:\n%s", code, errOut)
	}
	start(t, "", "--config", cfg) // with --imap 127.0.0.1:0
}

// TestWelcomeAccountsAddedFirst: a store whose accounts were added before
// the server first ran gets no account of the server's own, but its first
// start still tells the mail client settings; later starts do not. The
// account added first gets postmaster@ its domain and postmaster@ the host
// name as aliases, unless an account has the name.
func TestWelcomeAccountsAddedFirst(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		accounts []string // in the order added
		aliases  string   // buzon alias list's lines, runs of spaces made one
	}{
		{"one account", []string{"alice@example.org"},
			"postmaster@example.org alice@example.org\npostmaster@mx.example.net alice@example.org"},
		{"the first added, not the first by name", []string{"zoe@example.org", "alice@example.org"},
			"postmaster@example.org zoe@example.org\npostmaster@mx.example.net zoe@example.org"},
		{"a postmaster account of the domain", []string{"alice@example.org", "postmaster@example.org"},
			"postmaster@mx.example.net alice@example.org"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testWelcomeAccountsAddedFirst(t, tc.accounts, tc.aliases)
		})
	}
}

func testWelcomeAccountsAddedFirst(t *testing.T, accounts []string, aliases string) {
	data := t.TempDir()
	for _, a := range accounts {
		mustBuzon(t, "a-password\n", "user", "add", "--data", data, a)
	}
	in := start(t, data, "--hostname", "mx.example.net")
	m := in.waitOutput(welcomeEndRE)
	out := in.output()
	if welcomeRE.MatchString(out) || !strings.Contains(out, "Mail client settings") || !slices.Contains(welcomeSettings(out), "IMAP "+in.ports["imap"]+" STARTTLS") {
		t.Errorf("first start on accounts added before:\n%s", out)
	}
	if m[4] != accounts[0] {
		t.Errorf("the welcome's test mail goes to %s, not the account added first, %s", m[4], accounts[0])
	}
	made := regexp.MustCompile(`(?m)^(\S+) \S+$`).ReplaceAllString(aliases, "$1")
	if want := "Mail to " + strings.ReplaceAll(made, "\n", " and ") + " reaches " + accounts[0] + ": buzon made them its aliases\n"; !strings.Contains(out, want) {
		t.Errorf("the welcome does not say %q:\n%s", want, out)
	}
	list := mustBuzon(t, "", "alias", "list", "--data", data)
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(list), "\n")[1:] {
		got = append(got, strings.Join(strings.Fields(line), " "))
	}
	if strings.Join(got, "\n") != aliases {
		t.Errorf("aliases after the first start:\n%s\nwant\n%s", list, aliases)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(mustBuzon(t, "", "user", "list", "--data", data)), "\n")[1:] {
		names = append(names, strings.Fields(line)[0])
	}
	slices.Sort(names)
	if !slices.Equal(names, slices.Sorted(slices.Values(accounts))) {
		t.Errorf("accounts after the first start: %v, want %v", names, accounts)
	}
	in.stop()
	again := start(t, data)
	again.stop() // all it printed is in, then
	if again.output() != "" {
		t.Errorf("second start printed:\n%s", again.output())
	}
}
