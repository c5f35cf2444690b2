package main

import (
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/buzon-mail/buzon/internal/store/postgres/pgtest"
)

// quotaMsg is a message of about n bytes with a subject.
func quotaMsg(subject string, n int) string {
	var b strings.Builder
	b.WriteString("From: carol@example.net\r\nTo: alice@example.org\r\nSubject: " + subject + "\r\n\r\n")
	for b.Len() < n {
		b.WriteString(strings.Repeat("x", 76) + "\r\n")
	}
	return b.String()
}

var noticeSubjectRE = regexp.MustCompile(`^Your mailbox is (\d+)% full$`)

// TestQuotaWarningClients: with the default levels (80% and 95%), mail
// that fills an account's quota over LMTP and then SMTP puts a notice
// into INBOX as it passes each level, once: Python's imaplib lists it
// among the mail, poplib downloads it, and it reads as a well-formed
// message from postmaster@<hostname>. With quota_warnings = [] no notice
// comes. On the embedded store and on PostgreSQL.
func TestQuotaWarningClients(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		backend string
		levels  string // the [delivery] quota_warnings setting; "" for the default
	}{
		{"sqlite", ""},
		{"postgres", ""},
		{"sqlite", "[]"},
	} {
		name := tc.backend
		if tc.levels != "" {
			name += " quota_warnings=" + tc.levels
		}
		t.Run(name, func(t *testing.T) {
			var conf strings.Builder
			if tc.backend == "postgres" {
				fmt.Fprintf(&conf, "[store]\nbackend = \"postgres\"\ndsn = %q\n", pgtest.Start(t))
			}
			if tc.levels != "" {
				fmt.Fprintf(&conf, "[delivery]\nquota_warnings = %s\n", tc.levels)
			}
			file := filepath.Join(t.TempDir(), "buzon.toml")
			if err := os.WriteFile(file, []byte(conf.String()), 0o600); err != nil {
				t.Fatal(err)
			}
			in := start(t, "", "--config", file, "--hostname", "mx.example.org")
			where := []string{"--config", file, "--data", in.data}
			mustBuzon(t, "a-password\n", append([]string{"user", "add", "alice@example.org"}, where...)...)
			mustBuzon(t, "", append([]string{"user", "quota", "alice@example.org", "100K"}, where...)...)

			// 83% of 100 KiB over LMTP: past 80.
			host, port := in.hostPort("lmtp")
			for _, m := range []struct {
				subject string
				size    int
			}{{"big attachment", 85_000}, {"a small one", 2_000}} {
				if out := python(t, quotaMsg(m.subject, m.size), "lmtp_send.py", host, port, "carol@example.net", "alice@example.org"); out != "" {
					t.Fatalf("LMTP %q: %q", m.subject, out)
				}
			}
			// Past 95 over SMTP.
			host, port = in.hostPort("smtp")
			if out := python(t, quotaMsg("another attachment", 10_000), "smtp_send.py", host, port, "carol@example.net", "alice@example.org"); !strings.HasPrefix(out, "250 ") {
				t.Fatalf("SMTP: %q", out)
			}

			host, port = in.hostPort("imap")
			subjects := strings.Split(strings.TrimSpace(python(t, "", "imap_subjects.py", host, port, "alice@example.org", "a-password")), "\n")
			var levels []int
			var others []string
			for _, s := range subjects {
				if m := noticeSubjectRE.FindStringSubmatch(s); m != nil {
					n, _ := strconv.Atoi(m[1])
					levels = append(levels, n)
					continue
				}
				others = append(others, s)
			}
			if want := []string{"big attachment", "a small one", "another attachment"}; strings.Join(others, "|") != strings.Join(want, "|") {
				t.Errorf("INBOX over IMAP holds %q, want %q and the notices", others, want)
			}
			if tc.levels == "[]" {
				if len(levels) != 0 {
					t.Errorf("notices with quota_warnings = []: %v", subjects)
				}
				return
			}
			// The first notice after the message that passed 80%, the
			// second after the one that passed 95%.
			if len(levels) != 2 || levels[0] < 80 || levels[0] >= 95 || levels[1] < 95 || levels[1] > 100 ||
				!noticeSubjectRE.MatchString(subjects[1]) || !noticeSubjectRE.MatchString(subjects[4]) {
				t.Fatalf("INBOX over IMAP: %q; want a notice after the first message and after the last", subjects)
			}

			dir := t.TempDir()
			host, port = in.hostPort("pop3")
			if out := python(t, "", "pop3_download.py", host, port, "alice@example.org", "a-password", dir, "keep"); out != "5\n" {
				t.Fatalf("pop3_download.py: %q", out)
			}
			raw, err := os.ReadFile(filepath.Join(dir, "2"))
			if err != nil {
				t.Fatal(err)
			}
			msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
			if err != nil {
				t.Fatalf("the notice does not parse: %v\n%s", err, raw)
			}
			from, err := msg.Header.AddressList("From")
			if err != nil || len(from) != 1 || from[0].Address != "postmaster@mx.example.org" {
				t.Errorf("From: %q (%v)", msg.Header.Get("From"), err)
			}
			if to, err := msg.Header.AddressList("To"); err != nil || len(to) != 1 || to[0].Address != "alice@example.org" {
				t.Errorf("To: %q (%v)", msg.Header.Get("To"), err)
			}
			if _, err := msg.Header.Date(); err != nil {
				t.Errorf("Date: %v", err)
			}
			if id := msg.Header.Get("Message-ID"); !strings.HasSuffix(id, "@mx.example.org>") {
				t.Errorf("Message-ID: %q", id)
			}
			for _, want := range []string{"KB of 100 KB", "refused", "Trash and Junk"} {
				if !strings.Contains(string(raw), want) {
					t.Errorf("the notice does not say %q:\n%s", want, raw)
				}
			}
			if n := strings.Count(in.logs(), `msg="quota warning stored" account=alice@example.org`); n != 2 {
				t.Errorf("the log tells of %d notices, want 2:\n%s", n, in.logs())
			}
		})
	}
}

// TestQuotaWarningDeliverAndMetrics: `buzon deliver`, run by an MTA beside
// the server, warns as LMTP does, with the server's settings, and the
// server counts the notices its own deliveries store by level.
func TestQuotaWarningDeliverAndMetrics(t *testing.T) {
	t.Parallel()
	addr := freePort(t)
	file := filepath.Join(t.TempDir(), "buzon.toml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf("hostname = \"mx.example.org\"\n[listen]\nmetrics = %q\n[delivery]\nquota_warnings = [50, 90]\n", addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	in := start(t, "", "--config", file)
	where := []string{"--config", file, "--data", in.data}
	mustBuzon(t, "a-password\n", append([]string{"user", "add", "alice@example.org"}, where...)...)
	mustBuzon(t, "", append([]string{"user", "quota", "alice@example.org", "100K"}, where...)...)
	// Past 50% with buzon deliver, past 90% over LMTP.
	mustBuzon(t, quotaMsg("by the MTA", 60_000), append([]string{"deliver", "alice@example.org"}, where...)...)
	host, port := in.hostPort("lmtp")
	if out := python(t, quotaMsg("over LMTP", 35_000), "lmtp_send.py", host, port, "carol@example.net", "alice@example.org"); out != "" {
		t.Fatalf("LMTP: %q", out)
	}
	host, port = in.hostPort("imap")
	got := strings.Split(strings.TrimSpace(python(t, "", "imap_subjects.py", host, port, "alice@example.org", "a-password")), "\n")
	if len(got) != 4 || got[0] != "by the MTA" || !noticeSubjectRE.MatchString(got[1]) || got[2] != "over LMTP" || !noticeSubjectRE.MatchString(got[3]) {
		t.Errorf("INBOX over IMAP: %q; want each message followed by a notice", got)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	// The server counts its own deliveries' notices: LMTP's, not buzon deliver's.
	if !strings.Contains(string(body), `buzon_quota_warnings_total{level="90"} 1`) || strings.Contains(string(body), `buzon_quota_warnings_total{level="50"}`) {
		t.Errorf("metrics:\n%s", body)
	}
}

// TestQuotaWarningFetch: `buzon fetch` into a buzon account warns as LMTP
// does, with the settings of the server's configuration, and its log
// tells of the notice once and of each message once.
func TestQuotaWarningFetch(t *testing.T) {
	t.Parallel()
	src := startFetchSource(t, 2, 45_000)
	file := filepath.Join(t.TempDir(), "buzon.toml")
	if err := os.WriteFile(file, []byte("hostname = \"mx.example.org\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	local := start(t, "", "--config", file)
	where := []string{"--config", file, "--data", local.data}
	mustBuzon(t, "b-password\n", append([]string{"user", "add", "bob@example.org"}, where...)...)
	mustBuzon(t, "", append([]string{"user", "quota", "bob@example.org", "100K"}, where...)...)

	// Two messages of 45,000 bytes: 88% of 100 KiB, past 80.
	conf := writeFetchConfig(t, src, "pop3", "keep", "",
		fmt.Sprintf("store = { data = %q, config = %q, account = \"bob@example.org\" }\n", local.data, file))
	out, logs, code := buzon(t, "", "fetch", "--config", conf)
	if code != 0 || !strings.Contains(out, "fetched 2") {
		t.Fatalf("buzon fetch: exit %d\n%s%s", code, out, logs)
	}
	if n := strings.Count(logs, `msg="quota warning stored" account=bob@example.org quota_level=80 `); n != 1 {
		t.Errorf("the log tells of %d notices at 80%%, want 1:\n%s", n, logs)
	}
	// The run's own line per message (at debug), not the Deliverer's too.
	if stored, delivered := strings.Count(logs, "msg=stored "), strings.Count(logs, "msg=delivered "); stored != 2 || delivered != 0 {
		t.Errorf("the log has %d lines stored and %d delivered, want 2 and none:\n%s", stored, delivered, logs)
	}

	host, port := local.hostPort("imap")
	got := strings.Split(strings.TrimSpace(python(t, "", "imap_subjects.py", host, port, "bob@example.org", "b-password")), "\n")
	if len(got) != 3 || got[0] != "message 1" || got[1] != "message 2" || !noticeSubjectRE.MatchString(got[2]) {
		t.Errorf("INBOX over IMAP: %q; want the two messages and a notice", got)
	}
}
