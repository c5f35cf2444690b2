package pop3server_test

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/auth"
	"github.com/buzon-mail/buzon/internal/clienttest"
	"github.com/buzon-mail/buzon/internal/clienttest/transcript"
	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/pop3server"
	"github.com/buzon-mail/buzon/internal/pop3server/pop3test"
	"github.com/buzon-mail/buzon/internal/store"
)

var update = flag.Bool("update", false, "rewrite the golden transcripts in testdata from what the server says")

// The transcripts in testdata are played by package transcript (its doc
// says how they read). Server lines read {uidv} for the INBOX
// UIDVALIDITY in hex, and {scram-server-first} and {scram-server-final}
// for the SCRAM server messages. C: lines may use ${scram-first} and
// ${scram-final}, the SCRAM-SHA-256 client messages for alice (the
// second computed from the server's last challenge). Directives of
// POP3's own:
//
//	-- expunge N  expunge fixture message N (1-based) by another path
//	-- deliver    deliver msgLater to alice's INBOX
//	-- shutdown   start a server Shutdown
//	-- settle     wait until alice's maildrop is unlocked
var transcripts = []struct {
	file string
	// remote fakes the client address of plain connections.
	remote string
	// messages are the fixture messages in alice's INBOX, in order.
	messages []string
	config   func(*pop3server.Config)
	auth     func(*config.Auth)
	// check looks at the store after the transcript and Shutdown.
	check func(t *testing.T, env *pop3test.Env, uids []store.UID)
}{
	{file: "greeting_quit.txt"},
	{file: "user_pass.txt", messages: fixtureAll},
	{file: "wrong_state.txt", messages: fixtureAll},
	{file: "bad_arguments.txt", messages: fixtureAll},
	{file: "unknown_commands.txt"},
	{file: "long_lines.txt", messages: fixtureAll},
	{file: "pipelining.txt", messages: fixtureAll},
	{file: "pipelined_garbage.txt", messages: fixtureAll},
	{file: "capa.txt", messages: fixtureAll},
	{file: "capa_expire.txt", config: func(c *pop3server.Config) { c.POP3.ExpireDays = 7 }},
	{file: "stls.txt", messages: fixtureAll},
	{file: "stls_injection.txt", messages: fixtureAll},
	{file: "stls_remote.txt", remote: "192.0.2.10", messages: fixtureAll},
	{file: "pop3s.txt", messages: fixtureAll},
	{file: "plaintext_refused.txt", remote: "192.0.2.10"},
	{file: "plaintext_allowed.txt", remote: "192.0.2.10", config: func(c *pop3server.Config) { c.AllowPlaintext = true }},
	{file: "auth_plain.txt", messages: fixtureAll},
	{file: "auth_login.txt", messages: fixtureAll},
	{file: "auth_scram.txt", remote: "192.0.2.10", messages: fixtureAll},
	{file: "auth_failures.txt"},
	{file: "lockout.txt", auth: func(a *config.Auth) { a.LockoutAfter = 2 }},
	{file: "stat_list_uidl.txt", messages: fixtureAll},
	{file: "retr_dot_stuffing.txt", messages: []string{msgDots, msgUnterminated, msgEmptyBody}},
	{file: "retr_8bit.txt", messages: []string{msg8bit}},
	{file: "top.txt", messages: []string{msgLong, msgDots, msgHeaderOnly}},
	{file: "dele_rset_quit.txt", messages: fixtureAll, check: keptUIDs(0, 3, 4)},
	{file: "dele_quit.txt", messages: fixtureAll, check: keptUIDs(1, 2)},
	{file: "dele_no_quit.txt", messages: fixtureAll, check: keptUIDs(0, 1, 2, 3, 4)},
	{file: "in_use.txt", messages: fixtureAll},
	{file: "in_use_stale.txt", messages: fixtureAll, check: keptUIDs(0, 2, 3, 4),
		config: func(c *pop3server.Config) { c.POP3.StaleSession = config.Duration(time.Nanosecond) }},
	{file: "expunged_elsewhere.txt", messages: fixtureAll, check: keptUIDs(0, 2, 3, 4)},
	{file: "delivered_meanwhile.txt", messages: fixtureAll, check: onlyLater},
	{file: "empty_maildrop.txt"},
	{file: "idle_timeout.txt", messages: fixtureAll, check: keptUIDs(0, 1, 2, 3, 4),
		config: func(c *pop3server.Config) { c.POP3.IdleTimeout = config.Duration(time.Second) }},
	{file: "shutdown.txt", messages: fixtureAll, check: keptUIDs(1, 2, 3, 4)},
	{file: "session_limit.txt", config: func(c *pop3server.Config) { c.Sessions = auth.NewSessionLimiter(1) }},
}

func TestTranscripts(t *testing.T) {
	t.Parallel()
	for _, tc := range transcripts {
		t.Run(strings.TrimSuffix(tc.file, ".txt"), func(t *testing.T) {
			t.Parallel()
			opts := pop3test.Options{Config: tc.config, Auth: tc.auth}
			if tc.remote != "" {
				opts.Listener = func(l net.Listener) net.Listener {
					return clienttest.FakeRemote(l, netip.MustParseAddr(tc.remote))
				}
			}
			env := pop3test.Start(t, openStore(t, t.TempDir()), opts)
			var uids []store.UID
			for _, m := range tc.messages {
				uids = append(uids, env.Append(t, alice, []byte(m), store.Flags{}).UID)
			}
			transcript.Check(t, filepath.Join("testdata", tc.file), protocol(t, env, uids), *update)
			env.Stop()
			if tc.check != nil {
				tc.check(t, env, uids)
			}
		})
	}
}

// onlyLater checks that INBOX holds msgLater alone.
func onlyLater(t *testing.T, env *pop3test.Env, _ []store.UID) {
	t.Helper()
	inbox := env.Inbox(t, alice)
	if len(inbox) != 1 || inbox[0].Size != int64(len(msgLater)) {
		t.Errorf("INBOX holds %d messages; want msgLater alone", len(inbox))
	}
}

// keptUIDs checks that INBOX holds exactly the fixture messages with the
// given indexes.
func keptUIDs(indexes ...int) func(*testing.T, *pop3test.Env, []store.UID) {
	return func(t *testing.T, env *pop3test.Env, uids []store.UID) {
		t.Helper()
		var want, got []store.UID
		for _, i := range indexes {
			want = append(want, uids[i])
		}
		for _, m := range env.Inbox(t, alice) {
			got = append(got, m.UID)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("INBOX UIDs after the session = %v, want %v", got, want)
		}
	}
}

// protocol is what the transcripts need of POP3 and of env, where uids
// are alice's fixture messages.
func protocol(t *testing.T, env *pop3test.Env, uids []store.UID) transcript.Protocol {
	return transcript.Protocol{
		Dial: func(implicitTLS bool) (net.Conn, error) {
			if implicitTLS {
				return tls.Dial("tcp", env.TLSAddr, env.ClientTLS)
			}
			return net.Dial("tcp", env.Addr)
		},
		ClientTLS: env.ClientTLS,
		Directive: func(f []string) bool {
			switch f[0] {
			case "expunge":
				n, _ := strconv.Atoi(f[1])
				env.WithInbox(t, alice, func(sess store.Session, inbox store.Mailbox) {
					if _, err := sess.Expunge(context.Background(), inbox.ID, store.UIDSetOf(uids[n-1]), false); err != nil {
						t.Fatal(err)
					}
				})
			case "deliver":
				env.Append(t, alice, []byte(msgLater), store.Flags{})
			case "shutdown":
				go env.Stop()
			case "settle":
				env.WaitUnlocked(t, alice)
			default:
				return false
			}
			return true
		},
		Expand: func(name, lastServer string) (string, bool) {
			switch name {
			case "scram-first":
				return base64.StdEncoding.EncodeToString([]byte("n,," + scramClientFirstBare)), true
			case "scram-final":
				return base64.StdEncoding.EncodeToString([]byte(scramFinal(t, lastServer, pop3test.Password))), true
			}
			return "", false
		},
		Normalise: func(line string) string {
			env.WithInbox(t, alice, func(_ store.Session, inbox store.Mailbox) {
				line = strings.ReplaceAll(line, fmt.Sprintf("%08x", inbox.UIDValidity), "{uidv}")
			})
			if b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(line, "+ ")); err == nil && strings.HasPrefix(line, "+ ") {
				switch {
				case strings.HasPrefix(string(b), "r="):
					return "+ {scram-server-first}"
				case strings.HasPrefix(string(b), "v="):
					return "+ {scram-server-final}"
				}
			}
			return line
		},
	}
}

// SCRAM-SHA-256 client for alice (RFC 5802 3).
const scramClientFirstBare = "n=alice@example.org,r=fyko+d2lbbFgONRv9qkxdawL"

// scramFinal answers the server-first message in challenge ("+ base64").
func scramFinal(t *testing.T, challenge, password string) string {
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(challenge, "+ "))
	if err != nil {
		t.Fatalf("SCRAM challenge %q: %v", challenge, err)
	}
	serverFirst := string(b)
	var nonce, salt string
	iter := 0
	for _, attr := range strings.Split(serverFirst, ",") {
		switch {
		case strings.HasPrefix(attr, "r="):
			nonce = attr[2:]
		case strings.HasPrefix(attr, "s="):
			salt = attr[2:]
		case strings.HasPrefix(attr, "i="):
			iter, _ = strconv.Atoi(attr[2:])
		}
	}
	saltBytes, _ := base64.StdEncoding.DecodeString(salt)
	salted, err := pbkdf2.Key(sha256.New, password, saltBytes, iter, sha256.Size)
	if err != nil {
		t.Fatal(err)
	}
	mac := func(key []byte, s string) []byte {
		h := hmac.New(sha256.New, key)
		io.WriteString(h, s)
		return h.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	withoutProof := "c=" + base64.StdEncoding.EncodeToString([]byte("n,,")) + ",r=" + nonce
	authMessage := scramClientFirstBare + "," + serverFirst + "," + withoutProof
	sig := mac(storedKey[:], authMessage)
	proof := make([]byte, len(clientKey))
	for i := range proof {
		proof[i] = clientKey[i] ^ sig[i]
	}
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)
}
