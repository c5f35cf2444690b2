package fetch

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

// fakeOAuth checks the OAuth 2.0 tokens the fake servers are given: it
// accepts one token, and refuses others with the error RFC 7628 3.2.2
// sends as a challenge.
type fakeOAuth struct {
	mech  string // "OAUTHBEARER" or "XOAUTH2"
	token string // the token accepted

	mu        sync.Mutex
	responses []string // the clients' initial responses, decoded
	answers   []string // the clients' answers to a refusal, as sent
}

const fakeOAuthRefusal = `{"status":"401","schemes":"bearer","scope":"https://mail.example.net/"}`

// check reads an initial response (base64) and returns "" for the token
// accepted, or the challenge refusing it.
func (o *fakeOAuth) check(resp string) string {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(resp))
	o.mu.Lock()
	o.responses = append(o.responses, string(raw))
	o.mu.Unlock()
	if err == nil && strings.HasSuffix(string(raw), "\x01auth=Bearer "+o.token+"\x01\x01") {
		return ""
	}
	return base64.StdEncoding.EncodeToString([]byte(fakeOAuthRefusal))
}

func (o *fakeOAuth) answered(line string) {
	o.mu.Lock()
	o.answers = append(o.answers, strings.TrimRight(line, "\r\n"))
	o.mu.Unlock()
}

func (o *fakeOAuth) seen() (responses, answers []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.responses), slices.Clone(o.answers)
}

// TestOAuth: with auth = "oauthbearer" or "xoauth2", the token
// password_command prints is presented with that SASL mechanism over
// IMAP (with and without SASL-IR, RFC 4959) and POP3 (RFC 5034); a token
// refused is a login error that names the server's status and scope, and
// leaves every message on the server; a server that does not offer the
// mechanism is told apart from one that refuses the token.
func TestOAuth(t *testing.T) {
	for _, proto := range []string{"imap", "imap sasl-ir", "pop3"} {
		for _, auth := range []string{AuthOAuthBearer, AuthXOAuth2} {
			t.Run(proto+" "+auth, func(t *testing.T) {
				mech := map[string]string{AuthOAuthBearer: "OAUTHBEARER", AuthXOAuth2: "XOAUTH2"}[auth]
				o := &fakeOAuth{mech: mech, token: "ya29.fresh"}
				var a Account
				var left func() int
				if proto == "pop3" {
					f := startFakePOP3(t, &fakePOP3{oauth: o})
					f.add(testMessages(1, 2)...)
					a, left = fakeAccount(t, f), f.count
				} else {
					f := startFakeIMAP(t, &fakeIMAP{oauth: o, saslIR: proto == "imap sasl-ir"})
					f.add("INBOX", testMessages(1, 2)...)
					a, left = fakeIMAPAccount(t, f), func() int { return len(f.messages("INBOX")) }
				}
				token := t.TempDir() + "/token"
				a.Auth, a.Password, a.PasswordCommand = auth, "", "cat "+token
				a.User = "alice,=x@example.net" // "," and "=" are escaped in OAUTHBEARER's header
				cfg := testConfig(t, a)
				writeFile(t, token, "ya29.stale\n")

				s := fetchOnce(t, cfg, testOptions(t))[0]
				if !errors.Is(s.Err, ErrLogin) || !strings.Contains(s.Err.Error(), "status 401; the token needs scope https://mail.example.net/") ||
					!strings.Contains(s.Err.Error(), "password_command") || strings.Contains(s.Err.Error(), "ya29") {
					t.Errorf("refused token: %v; want a login error naming the status and scope, not the token", s.Err)
				}
				if left() != 2 {
					t.Errorf("%d messages left on the server after a refused login, want 2", left())
				}
				_, answers := o.seen()
				if want := map[bool][]string{true: {"*"}, false: nil}[proto == "pop3"]; !slices.Equal(answers, want) {
					// go-imap's client cannot answer the refusal; the
					// connection is closed instead.
					t.Errorf("answers to the refusal: %q, want %q", answers, want)
				}

				writeFile(t, token, "ya29.fresh\n")
				if s := mustFetch(t, cfg, testOptions(t)); s.Fetched != 2 {
					t.Errorf("run with a fresh token: %v", s)
				}
				checkMaildir(t, cfg.Accounts[0].Maildir, [2]int{1, 2})
				responses, _ := o.seen()
				want := "user=alice,=x@example.net\x01auth=Bearer ya29.fresh\x01\x01"
				if auth == AuthOAuthBearer {
					want = fmt.Sprintf("n,a=alice=2C=3Dx@example.net,\x01host=%s\x01port=%d\x01auth=Bearer ya29.fresh\x01\x01", a.Host, a.Port)
				}
				if len(responses) != 2 || responses[1] != want {
					t.Errorf("initial responses %q; want the second %q", responses, want)
				}
			})
		}
	}

	t.Run("mechanism not offered", func(t *testing.T) {
		f := startFakeIMAP(t, &fakeIMAP{oauth: &fakeOAuth{mech: "XOAUTH2", token: "t"}})
		a := fakeIMAPAccount(t, f)
		a.Auth, a.Password, a.PasswordCommand = AuthOAuthBearer, "", "echo t"
		s := fetchOnce(t, testConfig(t, a), testOptions(t))[0]
		if s.Err == nil || errors.Is(s.Err, ErrLogin) || !strings.Contains(s.Err.Error(), "does not offer AUTH=OAUTHBEARER") {
			t.Errorf("IMAP: %v", s.Err)
		}
		p := startFakePOP3(t, &fakePOP3{oauth: &fakeOAuth{mech: "OAUTHBEARER", token: "t"}})
		a = fakeAccount(t, p)
		a.Auth, a.Password, a.PasswordCommand = AuthXOAuth2, "", "echo t"
		s = fetchOnce(t, testConfig(t, a), testOptions(t))[0]
		if s.Err == nil || errors.Is(s.Err, ErrLogin) || !strings.Contains(s.Err.Error(), "does not offer SASL XOAUTH2") {
			t.Errorf("POP3: %v", s.Err)
		}
	})
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
