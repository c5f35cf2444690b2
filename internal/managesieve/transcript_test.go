package managesieve_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/auth"
	"github.com/buzon-mail/buzon/internal/clienttest/transcript"
	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/managesieve"
	"github.com/buzon-mail/buzon/internal/sieve"
)

var update = flag.Bool("update", false, "rewrite the golden transcripts in testdata from what the server says")

// The transcripts in testdata are played by package transcript (its doc
// says how they read). Server lines read {extensions} for the SIEVE
// capability's value. Directives of ManageSieve's own:
//
//	-- shutdown            start a server Shutdown
//	-- delete-account NAME delete an account, as buzon user del does
var transcripts = []struct {
	file string
	opts options
	// check looks at the store after the transcript and Shutdown.
	check func(t *testing.T, e *env)
}{
	{file: "greeting_logout.txt"},
	{file: "logout_pipelined.txt"},
	{file: "authenticate.txt"},
	{file: "authenticate_login.txt"},
	{file: "auth_failures.txt"},
	{file: "lockout.txt", opts: options{auth: func(a *config.Auth) { a.LockoutAfter = 2 }}},
	{file: "plaintext_refused.txt", opts: options{remote: "192.0.2.10"}},
	{file: "starttls.txt", opts: options{remote: "192.0.2.10"}},
	{file: "starttls_injection.txt"},
	{file: "wrong_state.txt"},
	{file: "syntax.txt"},
	{file: "scripts.txt", check: scriptsLeft(map[string]string{
		"vacation-free": "require \"fileinto\";\r\nfileinto \"Lists\";\r\n",
		"renamed":       "keep;\r\n",
	}, "vacation-free")},
	{file: "empty_script.txt", check: scriptsLeft(map[string]string{"roundcube": "", "quoted": ""}, "roundcube")},
	{file: "refused_scripts.txt", check: scriptsLeft(map[string]string{}, "")},
	{file: "with_relay.txt", opts: options{config: func(c *managesieve.Config) { c.SieveOptions = sieve.Options{Vacation: true, Redirect: true} }},
		check: scriptsLeft(map[string]string{"forward": "require \"copy\"; redirect :copy \"Bob <bob@example.org>\";", "roundcube": "require [\"vacation\"];\r\n# rule:[Out of office]\r\nif true\r\n{\r\n\tvacation :days 7 :addresses \"alice@example.org\" :subject \"Out of office\" \"I am away until Monday.\";\r\n}\r\n"}, "roundcube")},
	{file: "quota.txt", opts: options{config: func(c *managesieve.Config) {
		c.Sieve.MaxScripts, c.Sieve.MaxScriptSize = 2, 1024
	}}, check: scriptsLeft(map[string]string{"one": "keep;", "two": "keep;\r\n"}, "")},
	{file: "huge_literal.txt", opts: options{config: func(c *managesieve.Config) { c.Sieve.MaxScriptSize = 1024 }}},
	{file: "literal_before_login.txt", opts: options{config: func(c *managesieve.Config) { c.Limits.MaxLineLength = 1024 }}},
	{file: "max_errors.txt", opts: options{config: func(c *managesieve.Config) { c.Sieve.MaxErrors = 3 }}},
	{file: "idle_timeout.txt", opts: options{config: func(c *managesieve.Config) { c.Sieve.LoginTimeout = config.Duration(time.Second) }}},
	{file: "idle_after_login.txt", opts: options{config: func(c *managesieve.Config) { c.Sieve.IdleTimeout = config.Duration(time.Second) }}},
	{file: "session_limit.txt", opts: options{config: func(c *managesieve.Config) { c.Sessions = auth.NewSessionLimiter(1) }}},
	{file: "shutdown.txt"},
	{file: "account_deleted.txt"},
	{file: "accounts_apart.txt", check: scriptsLeft(map[string]string{}, "")},
}

func TestTranscripts(t *testing.T) {
	t.Parallel()
	for _, tc := range transcripts {
		t.Run(strings.TrimSuffix(tc.file, ".txt"), func(t *testing.T) {
			t.Parallel()
			e := start(t, tc.opts)
			transcript.Check(t, filepath.Join("testdata", tc.file), e.protocol(t), *update)
			e.shutdown()
			if tc.check != nil {
				tc.check(t, e)
			}
		})
	}
}

// protocol is what the transcripts need of ManageSieve and of e.
func (e *env) protocol(t *testing.T) transcript.Protocol {
	return transcript.Protocol{
		Dial: func(implicitTLS bool) (net.Conn, error) {
			if implicitTLS {
				return nil, errors.New("ManageSieve has no implicit TLS")
			}
			return net.Dial("tcp", e.addr)
		},
		ClientTLS: e.clientTLS,
		Directive: func(f []string) bool {
			switch f[0] {
			case "shutdown":
				go e.shutdown()
			case "delete-account":
				if err := e.store.DeleteAccount(context.Background(), f[1]); err != nil {
					t.Fatalf("delete account %s: %v", f[1], err)
				}
			default:
				return false
			}
			return true
		},
		Normalise: func(line string) string {
			return strings.Replace(line, quoteExtensions, "{extensions}", 1)
		},
	}
}

// scriptsLeft checks alice's scripts after a transcript: their names and
// content, and which one is active ("" for none).
func scriptsLeft(want map[string]string, active string) func(*testing.T, *env) {
	return func(t *testing.T, e *env) {
		t.Helper()
		got := map[string]string{}
		gotActive := ""
		for _, s := range e.scripts(t, alice) {
			got[s.Name] = string(s.Content)
			if s.Active {
				gotActive = s.Name
			}
			if s.Size != int64(len(s.Content)) {
				t.Errorf("script %q: size %d, content %d octets", s.Name, s.Size, len(s.Content))
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) || gotActive != active {
			t.Errorf("alice's scripts = %q, active %q; want %q, active %q", got, gotActive, want, active)
		}
	}
}

// quoteExtensions is the SIEVE capability's value as the server sends
// it, which changes as the language gains extensions.
var quoteExtensions = `"SIEVE" "` + strings.Join(sieve.Extensions(), " ") + `"`
