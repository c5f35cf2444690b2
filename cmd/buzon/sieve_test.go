package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/buzon-mail/buzon/internal/store/postgres/pgtest"
)

// filterScript files, flags and discards as the tests of this file
// expect.
const filterScript = `require ["fileinto", "mailbox", "imap4flags", "envelope", "subaddress"];
# Mailing lists go to a folder of their own, made when the first arrives.
if header :contains "subject" "[go-nuts]" {
    fileinto :create "Lists/Go";
    stop;
}
if header :contains "subject" "urgent" {
    addflag "\\Flagged";
    keep;
    stop;
}
if header :contains "subject" "spam" {
    discard;
    stop;
}
if envelope :detail "to" "shop" {
    fileinto :create :flags ["\\Seen", "$Receipt"] "Shopping";
}
`

// TestSieveFiltering: a script put with buzon sieve put and activated
// files, flags and discards the mail that arrives afterwards, while the
// server runs: over SMTP and LMTP (Python's smtplib), and from buzon
// deliver to an address with a +detail; IMAP (imaplib) shows the folders
// and flags; POP3 (poplib) sees INBOX alone. A stored script that does not
// compile keeps mail in INBOX and the log says why; deactivated, mail
// goes to INBOX. On the embedded store and on PostgreSQL.
func TestSieveFiltering(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var in *instance
			var where []string // --data DIR or --config FILE
			if backend == "postgres" {
				conf := postgresConfig(t, pgtest.Start(t))
				where = []string{"--config", conf}
				in = start(t, "", where...)
			} else {
				in = start(t, "")
				where = []string{"--data", in.data}
			}
			cmd := func(stdin string, args ...string) string {
				t.Helper()
				return mustBuzon(t, stdin, append(args, where...)...)
			}
			cmd("a-password\n", "user", "add", "alice@example.org")
			cmd(filterScript, "sieve", "put", "alice@example.org", "main")
			cmd("", "sieve", "activate", "alice@example.org", "main")

			host, port := in.hostPort("smtp")
			for _, subject := range []string{"[go-nuts] Go 1.26 is out", "urgent: call me", "spam: cheap watches", "plain hello"} {
				msg := "From: carol@example.net\r\nTo: alice@example.org\r\nSubject: " + subject + "\r\n\r\nhello\r\n"
				if out := python(t, msg, "smtp_send.py", host, port, "carol@example.net", "alice@example.org"); !strings.HasPrefix(out, "250 ") {
					t.Errorf("SMTP %q: %q", subject, out)
				}
			}
			host, port = in.hostPort("lmtp")
			for _, m := range []struct{ subject, rcpt string }{
				{"[go-nuts] over LMTP", "alice@example.org"},
				{"your receipt", "alice+shop@example.org"},
			} {
				msg := "From: mta@example.net\r\nSubject: " + m.subject + "\r\n\r\nhi\r\n"
				if out := python(t, msg, "lmtp_send.py", host, port, "mta@example.net", m.rcpt); out != "" {
					t.Errorf("LMTP %q: %q", m.subject, out)
				}
			}
			cmd("Return-Path: <shop@example.com>\r\nSubject: order shipped\r\n\r\nhi\r\n", "deliver", "alice+shop@example.org")

			host, port = in.hostPort("imap")
			want := "INBOX: urgent: call me [\\Flagged]\nINBOX: plain hello []\n" +
				"Lists/Go: [go-nuts] Go 1.26 is out []\nLists/Go: [go-nuts] over LMTP []\n" +
				"Shopping: your receipt [$Receipt \\Seen]\nShopping: order shipped [$Receipt \\Seen]\n"
			if got := python(t, "", "imap_mailbox_flags.py", host, port, "alice@example.org", "a-password"); got != want {
				t.Errorf("alice's mailboxes over IMAP:\n%s\nwant\n%s", got, want)
			}
			host, port = in.hostPort("pop3")
			if got := python(t, "", "pop3_stat.py", host, port, "alice@example.org", "a-password", "plain"); !strings.HasPrefix(got, "2 ") {
				t.Errorf("POP3 STAT: %q, want INBOX's 2 messages", got)
			}
			if !regexp.MustCompile(`msg="discarded by the sieve script" account=alice@example.org script=main from=carol@example.net`).MatchString(in.logs()) {
				t.Errorf("the server did not log the discard:\n%s", in.logs())
			}

			// A script that no longer compiles, as one stored by another
			// program may be, keeps the mail.
			putRaw(t, where, "alice@example.org", "main", `require "vacation"; vacation "away";`)
			host, port = in.hostPort("lmtp")
			python(t, "Subject: [go-nuts] while broken\r\n\r\nhi\r\n", "lmtp_send.py", host, port, "mta@example.net", "alice@example.org")
			host, port = in.hostPort("imap")
			if got := python(t, "", "imap_mailbox_flags.py", host, port, "alice@example.org", "a-password"); !strings.Contains(got, "INBOX: [go-nuts] while broken []") {
				t.Errorf("with a script that does not compile, the mail is not in INBOX:\n%s", got)
			}
			if !regexp.MustCompile(`level=WARN msg="sieve script does not compile; message kept" account=alice@example.org script=main err=.*no relay to send replies through`).MatchString(in.logs()) {
				t.Errorf("the server did not warn of the script:\n%s", in.logs())
			}
			// Deactivated: INBOX.
			cmd("", "sieve", "deactivate", "alice@example.org")
			host, port = in.hostPort("lmtp")
			python(t, "Subject: spam after all\r\n\r\nhi\r\n", "lmtp_send.py", host, port, "mta@example.net", "alice@example.org")
			host, port = in.hostPort("pop3")
			if got := python(t, "", "pop3_stat.py", host, port, "alice@example.org", "a-password", "plain"); !strings.HasPrefix(got, "4 ") {
				t.Errorf("POP3 STAT after deactivating: %q, want 4 messages", got)
			}
		})
	}
}

// putRaw stores a script as it is, unchecked, through the store itself.
func putRaw(t *testing.T, where []string, account, name, content string) {
	t.Helper()
	var cf commonFlags
	switch where[0] {
	case "--data":
		cf.data = where[1]
	default:
		cf.configFile = where[1]
	}
	cfg, err := cf.load()
	if err != nil {
		t.Fatal(err)
	}
	st, err := openStore(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), useExisting)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	acct, err := st.LookupAccount(ctx, account)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := st.Open(ctx, acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	if err := ss.PutSieveScript(ctx, name, []byte(content), 0); err != nil {
		t.Fatal(err)
	}
}

// TestSieveCommands: every buzon sieve subcommand, flags before and after
// the arguments, what each prints, and each refusal, with its exit code.
func TestSieveCommands(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	mustBuzon(t, "a-password\n", "user", "add", "--data", data, "alice@example.org")
	sieve := func(stdin string, args ...string) (string, string, int) {
		t.Helper()
		return buzon(t, stdin, append([]string{"sieve"}, append(args, "--data", data)...)...)
	}
	for _, tc := range []struct {
		stdin string
		args  []string
		out   string
	}{
		{filterScript, []string{"put", "Alice@example.org", "main"},
			"stored script \"main\" of alice@example.org; to run it at delivery: buzon sieve activate alice@example.org main\n"},
		{"keep;\r\n", []string{"put", "alice@example.org", "Ñandú spare"},
			"stored script \"Ñandú spare\" of alice@example.org; to run it at delivery: buzon sieve activate alice@example.org 'Ñandú spare'\n"},
		{"", []string{"activate", "alice@example.org", "main"}, "script \"main\" of alice@example.org is active: delivery runs it from now on\n"},
		{"keep;", []string{"put", "alice@example.org", "Ñandú spare"}, "replaced script \"Ñandú spare\" of alice@example.org (not active)\n"},
		{filterScript, []string{"put", "alice@example.org", "main"},
			"replaced script \"main\" of alice@example.org, which is active: delivery runs it from now on\n"},
		{"", []string{"get", "alice@example.org", "main"}, filterScript},
		{"", []string{"rename", "alice@example.org", "main", "filters"}, "renamed script \"main\" of alice@example.org to \"filters\"\n"},
		{"", []string{"check", "alice@example.org"}, "script \"filters\" of alice@example.org is valid\n"},
		{"", []string{"check", "alice@example.org", "Ñandú spare"}, "script \"Ñandú spare\" of alice@example.org is valid\n"},
		{filterScript, []string{"check"}, "standard input: valid\n"},
		{"", []string{"del", "alice@example.org", "Ñandú spare"}, "deleted script \"Ñandú spare\" of alice@example.org\n"},
	} {
		out, errOut, code := sieve(tc.stdin, tc.args...)
		if code != 0 || out != tc.out {
			t.Errorf("sieve %v: exit %d, %q%s; want %q", tc.args, code, out, errOut, tc.out)
		}
	}
	// Flags before the arguments too.
	list, _, _ := buzon(t, "", "sieve", "--data", data, "list", "alice@example.org")
	if !regexp.MustCompile(`^NAME +SIZE +ACTIVE +MODIFIED\nfilters +` + strconv.Itoa(len(filterScript)) + ` +yes +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n$`).MatchString(list) {
		t.Errorf("sieve list:\n%s", list)
	}

	for _, tc := range []struct {
		stdin string
		args  []string
		code  int
		err   string
	}{
		{"require \"fileinto\";\nfileinto \"x\"\n", []string{"put", "alice@example.org", "bad"}, 1, `script "bad" not stored: line 2: `},
		{"redirect \"bob@example.net\";", []string{"put", "alice@example.org", "bad"}, 1, "no relay to forward mail through"},
		{"keep;", []string{"put", "alice@example.org", "tab\there"}, 1, "invalid name"},
		{"keep;", []string{"put", "nobody@example.org", "x"}, 1, "no such account"},
		{"", []string{"get", "alice@example.org", "bad"}, 1, `alice@example.org has no script "bad" (buzon sieve list alice@example.org)`},
		{"", []string{"activate", "alice@example.org", "missing"}, 1, `alice@example.org has no script "missing"`},
		{"", []string{"del", "alice@example.org", "filters"}, 1, `"filters" is alice@example.org's active script; deactivate it first`},
		{"", []string{"del", "alice@example.org", "missing"}, 1, `has no script "missing"`},
		{"", []string{"rename", "alice@example.org", "missing", "x"}, 1, `has no script "missing"`},
		{"keep;", []string{"check"}, 0, ""},
		{"if true {", []string{"check"}, 1, "standard input: line 1: "},
		{"", []string{"put", "alice@example.org"}, 2, "wrong number of arguments"},
		{"", []string{"list"}, 2, "wrong number of arguments"},
		{"", []string{"edit", "alice@example.org"}, 2, "unknown subcommand"},
	} {
		_, errOut, code := sieve(tc.stdin, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.err) {
			t.Errorf("sieve %v: exit %d, %q; want %d and %q", tc.args, code, errOut, tc.code, tc.err)
		}
	}
	// The store's limits are ManageSieve's.
	conf := filepath.Join(t.TempDir(), "buzon.toml")
	if err := os.WriteFile(conf, fmt.Appendf(nil, "data = %q\n[sieve]\nmax_scripts = 1\nmax_script_size = 1024\n", data), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := buzon(t, "keep;", "sieve", "put", "--config", conf, "alice@example.org", "second"); code != 1 || !strings.Contains(errOut, "sieve.max_scripts") {
		t.Errorf("put over max_scripts: exit %d, %q", code, errOut)
	}
	if _, errOut, code := buzon(t, "#"+strings.Repeat("x", 1024)+"\nkeep;", "sieve", "put", "--config", conf, "alice@example.org", "filters"); code != 1 || !strings.Contains(errOut, "sieve.max_script_size") {
		t.Errorf("put over max_script_size: exit %d, %q", code, errOut)
	}

	deact, _, _ := sieve("", "deactivate", "alice@example.org")
	if deact != "alice@example.org has no active script: its mail goes to INBOX\n" {
		t.Errorf("deactivate: %q", deact)
	}
	if _, errOut, code := sieve("", "check", "alice@example.org"); code != 1 || !strings.Contains(errOut, "has no active script") {
		t.Errorf("check without an active script: exit %d, %q", code, errOut)
	}
	if out := mustBuzon(t, "", "sieve", "del", "alice@example.org", "filters", "--data", data); out != "deleted script \"filters\" of alice@example.org\n" {
		t.Errorf("del after deactivate: %q", out)
	}

	// A backup and a restore keep the scripts.
	mustBuzon(t, "keep;", "sieve", "put", "alice@example.org", "kept", "--data", data)
	mustBuzon(t, "", "sieve", "activate", "alice@example.org", "kept", "--data", data)
	backup := filepath.Join(t.TempDir(), "backup")
	mustBuzon(t, "", "backup", "--data", data, backup)
	restored := filepath.Join(t.TempDir(), "restored")
	mustBuzon(t, "", "restore", "--data", restored, backup)
	if got := mustBuzon(t, "", "sieve", "check", "alice@example.org", "--data", restored); got != "script \"kept\" of alice@example.org is valid\n" {
		t.Errorf("the restored store's active script: %q", got)
	}
}

// TestSieveMigrateStore: buzon migrate-store carries an account's scripts
// into PostgreSQL, the active one still active, and mail delivered there
// afterwards is filtered by it.
func TestSieveMigrateStore(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	mustBuzon(t, "a-password\n", "user", "add", "--data", data, "alice@example.org")
	mustBuzon(t, filterScript, "sieve", "put", "--data", data, "alice@example.org", "main")
	mustBuzon(t, "keep;\r\n", "sieve", "put", "--data", data, "alice@example.org", "spare")
	mustBuzon(t, "", "sieve", "activate", "--data", data, "alice@example.org", "main")
	dsn := pgtest.Start(t)
	mustBuzon(t, "", "migrate-store", "--from", data, "--to", dsn)
	conf := postgresConfig(t, dsn)
	list := mustBuzon(t, "", "sieve", "list", "--config", conf, "alice@example.org")
	if !regexp.MustCompile(`(?m)^main +`+strconv.Itoa(len(filterScript))+` +yes `).MatchString(list) ||
		!regexp.MustCompile(`(?m)^spare +7 +  `).MatchString(list) {
		t.Errorf("scripts after migrate-store:\n%s", list)
	}
	if got := mustBuzon(t, "", "sieve", "get", "--config", conf, "alice@example.org", "main"); got != filterScript {
		t.Errorf("main after migrate-store:\n%s", got)
	}
	mustBuzon(t, "Subject: spam, migrated\r\n\r\nhi\r\n", "deliver", "--config", conf, "alice@example.org")
	mustBuzon(t, "Subject: [go-nuts] migrated\r\n\r\nhi\r\n", "deliver", "--config", conf, "alice@example.org")
	in := start(t, "", "--config", conf)
	host, port := in.hostPort("imap")
	if got, want := python(t, "", "imap_mailbox_flags.py", host, port, "alice@example.org", "a-password"), "Lists/Go: [go-nuts] migrated []\n"; got != want {
		t.Errorf("after migrate-store, alice's mailboxes:\n%s\nwant\n%s", got, want)
	}
}
