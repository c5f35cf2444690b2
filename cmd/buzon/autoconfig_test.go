package main

// Mail client autoconfiguration against a running `buzon serve`: curl
// asks for each answer as the clients do (Thunderbird's GET of
// autoconfig.<domain> and of the domain's .well-known, Outlook's POST,
// Safari's download of the Apple profile), and the clients' kind of
// parser reads it: Python's xml.etree and plistlib, and plistutil,
// libimobiledevice's reader of Apple property lists.

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
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

var autoconfigListeningRE = regexp.MustCompile(`msg=listening proto=(autoconfigs?) addr=(\S+)`)

// acAnswer is one HTTP answer as curl got it.
type acAnswer struct {
	status      string // "200"
	contentType string
	body        []byte
}

// acCurl sends one request with curl to the autoconfig listener at
// scheme://addr, as sent to host (the Host header).
func acCurl(t *testing.T, method, scheme, addr, host, target, body string) acAnswer {
	t.Helper()
	curl := clienttest.Need(t, "curl", "curl")
	out := filepath.Join(t.TempDir(), "answer")
	args := []string{"-sS", "-k", "-X", method, "-o", out, "-w", "%{http_code} %{content_type}",
		"-H", "Host: " + host, "--max-time", "15", scheme + "://" + addr + target}
	if body != "" {
		args = append(args, "-H", "Content-Type: text/xml; charset=utf-8", "--data-binary", body)
	}
	cmd := exec.Command(curl, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("curl %v: %v\n%s", args, err, stderr.String())
	}
	status, ct, _ := strings.Cut(stdout.String(), " ")
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return acAnswer{status, ct, b}
}

func acPOX(addr string) string {
	return `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>` + addr + `</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>`
}

// TestAutoconfigClients: with both listeners on and a submission server
// configured, every client's answer names the listeners' own ports (IMAP's
// overridden by the config, as behind a NAT), in the order of preference,
// the address as user name and no password; an account that exists and one
// that does not get the same answer.
func TestAutoconfigClients(t *testing.T) {
	t.Parallel()
	conf := filepath.Join(t.TempDir(), "buzon.toml")
	if err := os.WriteFile(conf, []byte("[autoconfig]\nsubmission = \"smtp.example.org:465\"\nimap_port = 143\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	in := clServer(t, "fay@example.org", "--config", conf, "--hostname", "mail.example.org",
		"--autoconfig", "127.0.0.1:0", "--autoconfigs", "127.0.0.1:0")
	web := map[string]string{}
	for _, m := range autoconfigListeningRE.FindAllStringSubmatch(in.logs(), -1) {
		web[m[1]] = m[2]
	}
	if web["autoconfig"] == "" || web["autoconfigs"] == "" {
		t.Fatalf("autoconfig listeners not logged:\n%s", in.logs())
	}
	port := func(name string) string { _, p := in.hostPort(name); return p }

	// Thunderbird: autoconfig.<domain> over HTTP with the address, then
	// the domain's .well-known over HTTPS without it, as Thunderbird asks
	// when told not to send addresses.
	tb := acCurl(t, "GET", "http", web["autoconfig"], "autoconfig.example.org", "/mail/config-v1.1.xml?emailaddress=fay%40example.org", "")
	if tb.status != "200" || !strings.HasPrefix(tb.contentType, "text/xml") {
		t.Fatalf("Thunderbird: %s %s\n%s", tb.status, tb.contentType, tb.body)
	}
	want := fmt.Sprintf(`provider example.org example.org
incomingServer imap mail.example.org %s SSL %%EMAILADDRESS%% password-cleartext
incomingServer imap mail.example.org 143 STARTTLS %%EMAILADDRESS%% password-cleartext
incomingServer pop3 mail.example.org %s SSL %%EMAILADDRESS%% password-cleartext
incomingServer pop3 mail.example.org %s STARTTLS %%EMAILADDRESS%% password-cleartext
outgoingServer smtp smtp.example.org 465 SSL %%EMAILADDRESS%% password-cleartext
`, port("imaps"), port("pop3s"), port("pop3"))
	if got := python(t, string(tb.body), "autoconfig_read.py", "thunderbird"); got != want {
		t.Errorf("Thunderbird reads\n%s\nwant\n%s", got, want)
	}
	wellKnown := acCurl(t, "GET", "https", web["autoconfigs"], "example.org", "/.well-known/autoconfig/mail/config-v1.1.xml", "")
	if !bytes.Equal(wellKnown.body, tb.body) {
		t.Errorf(".well-known over HTTPS answers otherwise:\n%s", wellKnown.body)
	}
	if ghost := acCurl(t, "GET", "http", web["autoconfig"], "autoconfig.example.org", "/mail/config-v1.1.xml?emailaddress=ghost%40example.org", ""); !bytes.Equal(ghost.body, tb.body) {
		t.Errorf("an address without an account gets another answer (%s):\n%s", ghost.status, ghost.body)
	}

	// Outlook: POST over HTTPS, the path capitalised as Outlook sends it.
	ad := acCurl(t, "POST", "https", web["autoconfigs"], "autodiscover.example.org", "/Autodiscover/Autodiscover.xml", acPOX("fay@example.org"))
	if ad.status != "200" {
		t.Fatalf("Autodiscover: %s\n%s", ad.status, ad.body)
	}
	want = fmt.Sprintf(`account email settings
protocol IMAP mail.example.org %s fay@example.org on SSL off on
protocol POP3 mail.example.org %s fay@example.org on SSL off on
protocol SMTP smtp.example.org 465 fay@example.org on SSL off on
`, port("imaps"), port("pop3s"))
	if got := python(t, string(ad.body), "autoconfig_read.py", "autodiscover"); got != want {
		t.Errorf("Outlook reads\n%s\nwant\n%s", got, want)
	}
	ghost := acCurl(t, "POST", "https", web["autoconfigs"], "autodiscover.example.org", "/autodiscover/autodiscover.xml", acPOX("ghost@example.org"))
	if string(ghost.body) != strings.ReplaceAll(string(ad.body), "fay@", "ghost@") {
		t.Errorf("an address without an account gets another answer (%s):\n%s", ghost.status, ghost.body)
	}

	// Apple: the profile Safari downloads and the device installs.
	apple := acCurl(t, "GET", "https", web["autoconfigs"], "mail.example.org", "/apple/mail.mobileconfig?emailaddress=fay%40example.org", "")
	if apple.status != "200" || apple.contentType != "application/x-apple-aspen-config" {
		t.Fatalf("Apple profile: %s %s\n%s", apple.status, apple.contentType, apple.body)
	}
	got := python(t, string(apple.body), "autoconfig_read.py", "apple")
	for _, line := range []string{
		"  EmailAccountType EmailTypeIMAP",
		"  EmailAddress fay@example.org",
		"  IncomingMailServerHostName mail.example.org",
		"  IncomingMailServerPortNumber " + port("imaps"),
		"  IncomingMailServerUseSSL True",
		"  IncomingMailServerUsername fay@example.org",
		"  OutgoingMailServerHostName smtp.example.org",
		"  OutgoingMailServerPortNumber 465",
		"  OutgoingMailServerUseSSL True",
		"  OutgoingPasswordSameAsIncomingPassword True",
		"  PayloadType com.apple.mail.managed",
	} {
		if !strings.Contains(got, line+"\n") {
			t.Errorf("the profile lacks %q:\n%s", line, got)
		}
	}
	if strings.Contains(got, "Password ") && regexp.MustCompile(`(?m)^  (Incoming|Outgoing)Password `).MatchString(got) {
		t.Errorf("the profile holds a password:\n%s", got)
	}
	if again := acCurl(t, "GET", "https", web["autoconfigs"], "mail.example.org", "/apple/mail.mobileconfig?emailaddress=fay%40example.org", ""); !bytes.Equal(again.body, apple.body) {
		t.Errorf("a second download differs: installing it would add a second account")
	}
	plistutil := clienttest.Need(t, "plistutil", "libplist-utils")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.mobileconfig"), apple.body, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(plistutil, "-i", filepath.Join(dir, "p.mobileconfig"), "-o", filepath.Join(dir, "p.bin"), "-f", "bin").CombinedOutput(); err != nil {
		t.Errorf("plistutil cannot read the profile: %v\n%s", err, out)
	}

	// Refusals, without detail.
	for _, tc := range []struct {
		method, scheme, target, body, status string
	}{
		{"GET", "http", "/mail/config-v1.1.xml?emailaddress=fay%40example.com", "", "404"},
		{"GET", "http", "/mail/config-v1.1.xml?emailaddress=fay", "", "400"},
		{"POST", "https", "/autodiscover/autodiscover.xml", acPOX("fay@elsewhere.net"), "404"},
		{"GET", "https", "/autodiscover/autodiscover.xml", "", "405"},
		{"POST", "http", "/mail/config-v1.1.xml", "x", "405"},
		{"GET", "http", "/metrics", "", "404"},
		{"GET", "http", "/apple/mail.mobileconfig?emailaddress=fay%40example.org", "", "404"}, // over HTTPS only
	} {
		a := acCurl(t, tc.method, tc.scheme, web[map[string]string{"http": "autoconfig", "https": "autoconfigs"}[tc.scheme]], "autoconfig.example.org", tc.target, tc.body)
		if a.status != tc.status || len(a.body) > 40 {
			t.Errorf("%s %s: %s %q, want %s and no detail", tc.method, tc.target, a.status, a.body, tc.status)
		}
	}

	// HTTPS serves the certificate IMAPS does.
	cert := func(addr string) []byte {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: clTimeout}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Raw
	}
	if !bytes.Equal(cert(web["autoconfigs"]), cert(in.ports["imaps"])) {
		t.Error("autoconfigs serves another certificate than IMAPS")
	}
}

// TestAutoconfigDNS: the records `buzon autoconfig dns` prints follow the
// configuration: the advertised host and ports in order of preference, a
// "." target for a protocol not offered, _submissions for implicit TLS.
func TestAutoconfigDNS(t *testing.T) {
	t.Parallel()
	conf := filepath.Join(t.TempDir(), "buzon.toml")
	if err := os.WriteFile(conf, []byte(`[listen]
imap = "0.0.0.0:1143"
imaps = "0.0.0.0:1993"
pop3 = "off"
autoconfigs = "0.0.0.0:8443"
[autoconfig]
domains = ["Example.org."]
host = "mail.example.org"
imaps_port = 993
imap_port = 143
submission = "smtp.example.org:465"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	out := mustBuzon(t, "", "autoconfig", "dns", "--config", conf)
	var records []string
	for _, line := range strings.Split(out, "\n") {
		if line != "" && !strings.HasPrefix(line, ";") {
			records = append(records, strings.Join(strings.Fields(line), " "))
		}
	}
	want := []string{
		"autoconfig.example.org. IN CNAME mail.example.org.",
		"autodiscover.example.org. IN CNAME mail.example.org.",
		"_autodiscover._tcp.example.org. IN SRV 0 0 443 mail.example.org.",
		"_imaps._tcp.example.org. IN SRV 0 1 993 mail.example.org.",
		"_imap._tcp.example.org. IN SRV 10 1 143 mail.example.org.",
		"_pop3s._tcp.example.org. IN SRV 20 1 1995 mail.example.org.",
		"_pop3._tcp.example.org. IN SRV 0 0 0 .",
		"_submissions._tcp.example.org. IN SRV 0 1 465 smtp.example.org.",
	}
	if strings.Join(records, "\n") != strings.Join(want, "\n") {
		t.Errorf("records:\n%s\nwant:\n%s", strings.Join(records, "\n"), strings.Join(want, "\n"))
	}
	if _, stderr, code := buzon(t, "", "autoconfig", "dns"); code != 2 || !strings.Contains(stderr, "name the mail domains") {
		t.Errorf("without domains: exit %d\n%s", code, stderr)
	}
}

// TestREADMEAutoconfig: README's "Setting up mail clients" shows a
// configuration and the records `buzon autoconfig dns` prints for it;
// the configuration loads and the command prints those records.
func TestREADMEAutoconfig(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Setting up mail clients\n")
	if !ok {
		t.Fatal("README.md has no section \"Setting up mail clients\"")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	blocks := map[string]string{} // info string -> the first block with it
	for _, m := range regexp.MustCompile("(?s)```([a-z]*)\n(.*?)```").FindAllStringSubmatch(section, -1) {
		if _, seen := blocks[m[1]]; !seen {
			blocks[m[1]] = m[2]
		}
	}
	if blocks["toml"] == "" || blocks[""] == "" {
		t.Fatalf("README's section lacks its configuration or its records: %q", blocks)
	}
	conf := filepath.Join(t.TempDir(), "buzon.toml")
	if err := os.WriteFile(conf, []byte(blocks["toml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	out := mustBuzon(t, "", "autoconfig", "dns", "--config", conf, "example.org")
	var printed []string
	for _, line := range strings.Split(out, "\n") {
		if line != "" && !strings.HasPrefix(line, ";") {
			printed = append(printed, line)
		}
	}
	if got, want := strings.Join(printed, "\n")+"\n", blocks[""]; got != want {
		t.Errorf("buzon autoconfig dns prints\n%s\nREADME shows\n%s", got, want)
	}
}

// TestAutoconfigWelcome: the first start's welcome lists the
// autoconfiguration listeners with the mail ones.
func TestAutoconfigWelcome(t *testing.T) {
	t.Parallel()
	in := start(t, "", "--hostname", "mail.example.org", "--autoconfig", "127.0.0.1:0", "--autoconfigs", "127.0.0.1:0")
	for _, what := range []string{"HTTP ", "HTTPS"} {
		in.waitOutput(regexp.MustCompile(`(?m)^  ` + what + ` +127\.0\.0\.1:\d+ +mail client autoconfiguration$`))
	}
}

// TestAutoconfigConnectionLimit: the autoconfig listeners count towards
// limits.max_connections_per_ip with the mail listeners, and a client
// over it on plain HTTP hears 503 rather than a bare close.
func TestAutoconfigConnectionLimit(t *testing.T) {
	t.Parallel()
	conf := filepath.Join(t.TempDir(), "buzon.toml")
	if err := os.WriteFile(conf, []byte("[limits]\nmax_connections_per_ip = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	in := start(t, "", "--config", conf, "--hostname", "mail.example.org", "--autoconfig", "127.0.0.1:0")
	m := autoconfigListeningRE.FindStringSubmatch(in.logs())
	if m == nil {
		t.Fatalf("no autoconfig listener logged:\n%s", in.logs())
	}
	held, err := net.Dial("tcp", in.ports["imap"])
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	held.SetReadDeadline(time.Now().Add(clTimeout))
	if _, err := bufio.NewReader(held).ReadString('\n'); err != nil { // the greeting: counted
		t.Fatal(err)
	}
	if a := acCurl(t, "GET", "http", m[2], "autoconfig.mail.example.org", "/mail/config-v1.1.xml", ""); a.status != "503" {
		t.Errorf("over the per-address limit: %s %q", a.status, a.body)
	}
	held.Close()
	// The slot is free once the server has seen the close.
	deadline := time.Now().Add(clTimeout)
	for {
		a := acCurl(t, "GET", "http", m[2], "autoconfig.mail.example.org", "/mail/config-v1.1.xml", "")
		if a.status == "200" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still refused after the other connection closed: %s", a.status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAutoconfigNothingToTell: autoconfig with no IMAP or POP3 listener
// on is a configuration error that stops serve at once, not a listener
// answering clients with nothing.
func TestAutoconfigNothingToTell(t *testing.T) {
	t.Parallel()
	_, stderr, code := buzon(t, "", "serve", "--data", t.TempDir(), "--imap", "off", "--imaps", "off", "--pop3", "off", "--pop3s", "off",
		"--lmtp", "127.0.0.1:0", "--smtp", "off", "--sieve", "off", "--autoconfig", "127.0.0.1:0")
	if code != 1 || !strings.Contains(stderr, "none of autoconfig.advertise") {
		t.Errorf("exit %d:\n%s", code, stderr)
	}
}

// TestAutoconfigOwnSubmission: with buzon's own submission listeners on
// and no autoconfig.submission, the answers name them as the outgoing
// server, implicit TLS first (RFC 8314): Thunderbird gets an answer it
// keeps (one with an outgoingServer), the start warns of no missing
// one, and the Apple profile is served, over HTTPS only unless
// autoconfig.apple_profile_over_http says a TLS proxy is in front.
// Python's smtplib, set up as each outgoingServer says (its port, SSL
// or STARTTLS), logs in and sends, through buzon's SMTP listener as the
// relay.
func TestAutoconfigOwnSubmission(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		config   string
		overHTTP string // the status of the profile over plain HTTP
	}{
		{"profile over HTTPS only", "", "404"},
		{"profile over HTTP too", "[autoconfig]\napple_profile_over_http = true\nsubmission_port = 587\n", "200"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, smtpAddr := t.TempDir(), freePort(t)
			conf := writeConfig(t, fmt.Sprintf("[submission]\nrelay = %q\nrelay_tls = \"starttls\"\nrelay_ca_file = %q\n%s",
				smtpAddr, filepath.Join(data, "tls", "cert.pem"), tc.config))
			in := start(t, data, "--config", conf, "--hostname", "mail.example.org", "--smtp", smtpAddr,
				"--submission", "127.0.0.1:0", "--submissions", "127.0.0.1:0",
				"--autoconfig", "127.0.0.1:0", "--autoconfigs", "127.0.0.1:0")
			mustBuzon(t, clPass+"\n", "user", "add", "--data", data, "fay@example.org")
			listeners := map[string]string{}
			for _, re := range []*regexp.Regexp{autoconfigListeningRE, submissionListeningRE} {
				for _, m := range re.FindAllStringSubmatch(in.logs(), -1) {
					listeners[m[1]] = m[2]
				}
			}
			if len(listeners) != 4 {
				t.Fatalf("listeners: %v\n%s", listeners, in.logs())
			}
			if strings.Contains(in.logs(), "no outgoing server") {
				t.Errorf("the start warns of no outgoing server:\n%s", in.logs())
			}
			port := func(name string) string { _, p, _ := net.SplitHostPort(listeners[name]); return p }
			submissionPort := port("submission")
			if tc.config != "" {
				submissionPort = "587" // autoconfig.submission_port
			}

			tb := acCurl(t, "GET", "https", listeners["autoconfigs"], "autoconfig.example.org", "/mail/config-v1.1.xml?emailaddress=fay%40example.org", "")
			got := python(t, string(tb.body), "autoconfig_read.py", "thunderbird")
			want := fmt.Sprintf(`outgoingServer smtp mail.example.org %s SSL %%EMAILADDRESS%% password-cleartext
outgoingServer smtp mail.example.org %s STARTTLS %%EMAILADDRESS%% password-cleartext
`, port("submissions"), submissionPort)
			if tb.status != "200" || !strings.HasSuffix(got, want) {
				t.Errorf("Thunderbird (%s) reads\n%s\nwant it to end\n%s", tb.status, got, want)
			}
			sends := 0
			for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
				f := strings.Fields(line) // outgoingServer smtp HOST PORT SOCKET USER AUTH
				if f[0] != "outgoingServer" || f[3] == "587" {
					continue // 587 is told, not bound: a firewall would forward it
				}
				mode := map[string]string{"SSL": "tls", "STARTTLS": "starttls"}[f[4]]
				if sent := python(t, "", "submission_send.py", mode, "127.0.0.1", f[3], filepath.Join(data, "tls", "cert.pem"),
					"fay@example.org", clPass, "fay@example.org", "fay@example.org", "set up by autoconfig"); sent != "sent\n" {
					t.Errorf("smtplib, as %s says: %q", line, sent)
				}
				sends++
			}
			if want := map[bool]int{true: 2, false: 1}[tc.config == ""]; sends != want {
				t.Errorf("sent through %d outgoing servers, want %d", sends, want)
			}

			ad := acCurl(t, "POST", "https", listeners["autoconfigs"], "autodiscover.example.org", "/autodiscover/autodiscover.xml", acPOX("fay@example.org"))
			want = fmt.Sprintf("protocol SMTP mail.example.org %s fay@example.org on SSL off on\n", port("submissions"))
			if got := python(t, string(ad.body), "autoconfig_read.py", "autodiscover"); !strings.HasSuffix(got, want) {
				t.Errorf("Outlook reads\n%s\nwant it to end\n%s", got, want)
			}

			const apple = "/apple/mail.mobileconfig?emailaddress=fay%40example.org"
			profile := acCurl(t, "GET", "https", listeners["autoconfigs"], "mail.example.org", apple, "")
			if profile.status != "200" {
				t.Fatalf("Apple profile over HTTPS: %s\n%s", profile.status, profile.body)
			}
			got = python(t, string(profile.body), "autoconfig_read.py", "apple")
			for _, line := range []string{
				"  OutgoingMailServerHostName mail.example.org",
				"  OutgoingMailServerPortNumber " + port("submissions"),
				"  OutgoingMailServerUseSSL True",
			} {
				if !strings.Contains(got, line+"\n") {
					t.Errorf("the profile lacks %q:\n%s", line, got)
				}
			}
			if plain := acCurl(t, "GET", "http", listeners["autoconfig"], "mail.example.org", apple, ""); plain.status != tc.overHTTP {
				t.Errorf("Apple profile over HTTP: %s, want %s", plain.status, tc.overHTTP)
			}
		})
	}
}

// TestAutoconfigDNSOwnSubmission: `buzon autoconfig dns` names buzon's
// own submission listeners where autoconfig.submission is empty:
// _submissions preferred, on the port told; one that is off gets ".".
func TestAutoconfigDNSOwnSubmission(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, listen string
		want         []string
	}{
		{"both", "submissions = \"0.0.0.0:1465\"\nsubmission = \"0.0.0.0:587\"\n", []string{
			"_submissions._tcp.example.org. IN SRV 0 1 465 mail.example.org.",
			"_submission._tcp.example.org. IN SRV 10 1 587 mail.example.org.",
		}},
		{"STARTTLS only", "submission = \"0.0.0.0:587\"\n", []string{
			"_submissions._tcp.example.org. IN SRV 0 0 0 .",
			"_submission._tcp.example.org. IN SRV 0 1 587 mail.example.org.",
		}},
		{"none", "", nil},
	} {
		conf := writeConfig(t, `[listen]
imaps = "0.0.0.0:993"
imap = "off"
pop3 = "off"
pop3s = "off"
`+tc.listen+`
[submission]
relay = "127.0.0.1:10025"
relay_tls = "none"
[autoconfig]
host = "mail.example.org"
submissions_port = 465
`)
		out := mustBuzon(t, "", "autoconfig", "dns", "--config", conf, "example.org")
		var records []string
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "_submission") && !strings.HasPrefix(line, ";") {
				records = append(records, strings.Join(strings.Fields(line), " "))
			}
		}
		if strings.Join(records, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s: records\n%s\nwant\n%s", tc.name, strings.Join(records, "\n"), strings.Join(tc.want, "\n"))
		}
		if tc.want == nil && !strings.Contains(out, "; no submission server") {
			t.Errorf("%s: no word of the missing submission server:\n%s", tc.name, out)
		}
	}
}
