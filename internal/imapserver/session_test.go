package imapserver

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

// TestEnableOnce: ENABLED lists what the command turned on, not what was
// on before (RFC 5161 3.2); UTF8=ACCEPT is implied by IMAP4rev2.
func TestEnableOnce(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	for _, tc := range []struct {
		name string
		cmds []string // ENABLE arguments
		want []string // their ENABLED responses
	}{
		{"UTF8=ACCEPT twice", []string{"UTF8=ACCEPT", "UTF8=ACCEPT"}, []string{"* ENABLED UTF8=ACCEPT", "* ENABLED"}},
		{"after IMAP4rev2", []string{"IMAP4rev2", "UTF8=ACCEPT"}, []string{"* ENABLED IMAP4rev2", "* ENABLED"}},
		{"CONDSTORE twice", []string{"CONDSTORE UTF8=ACCEPT", "UTF8=ACCEPT CONDSTORE"}, []string{"* ENABLED CONDSTORE UTF8=ACCEPT", "* ENABLED"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.login()
			for i, args := range tc.cmds {
				if got := strings.Join(c.mustOK("ENABLE "+args), "\n"); got != tc.want[i] {
					t.Errorf("ENABLE %s: %q, want %q", args, got, tc.want[i])
				}
			}
		})
	}
}

// TestRespTextASCII: an error that names a mailbox is 7-bit for a client
// that has not enabled UTF-8, with the name as the client spelt it in
// modified UTF-7; one that has gets UTF-8. No control character the
// client sent breaks the response line.
func TestRespTextASCII(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	c := e.login()
	_, tagged := c.cmd("SELECT Caf&AOk-")
	if !strings.Contains(tagged, " NO ") || !strings.Contains(tagged, "Caf&AOk-") || !isASCII(tagged) {
		t.Errorf("SELECT Caf&AOk-: %q, want NO naming Caf&AOk-, in ASCII", tagged)
	}

	c.mustOK("ENABLE UTF8=ACCEPT")
	if _, tagged := c.cmd(`SELECT "Café"`); !strings.Contains(tagged, " NO ") || !strings.Contains(tagged, "Café") {
		t.Errorf("SELECT Café with UTF8=ACCEPT: %q, want NO naming Café", tagged)
	}
	_, tagged = c.cmd("SELECT {7+}\r\nx\ny\rzé")
	if !strings.Contains(tagged, " NO ") || !strings.Contains(tagged, "x y zé") {
		t.Errorf("SELECT of a name with a CR and LF: %q, want NO naming x y zé", tagged)
	}
	c.mustOK("NOOP") // nothing of the name was taken for a command
}

// logBuffer is a log handler's output, safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestIDLogBounded: what a client says in ID is logged once a session,
// within RFC 2971 3.3's bounds (30 pairs, names of 30 octets, values of
// 1024), however much it sends, before login too.
func TestIDLogBounded(t *testing.T) {
	t.Parallel()
	logs := &logBuffer{}
	e := newTestEnv(t, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	c := e.dial()
	var cmd strings.Builder
	cmd.WriteString(`ID ("` + strings.Repeat("n", 100) + `" {5000+}` + "\r\n" + strings.Repeat("v", 5000))
	for i := range 40 {
		fmt.Fprintf(&cmd, ` "k%d" {2000+}`+"\r\n"+strings.Repeat("w", 2000), i)
	}
	cmd.WriteString(")")
	c.mustOK(cmd.String())
	c.mustOK(`ID ("name" "again")`)

	var ids []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "client id") {
			ids = append(ids, l)
		}
	}
	if len(ids) != 1 {
		t.Fatalf("%d log lines of client IDs, want 1", len(ids))
	}
	id := ids[0]
	if n := strings.Count(id, " id."); n != 30 {
		t.Errorf("%d ID fields logged, want 30", n)
	}
	if strings.Contains(id, strings.Repeat("n", 31)) || !strings.Contains(id, strings.Repeat("n", 30)) {
		t.Errorf("the 100-byte field name is not cut to 30: %.200q", id)
	}
	if strings.Contains(id, strings.Repeat("v", 1025)) || !strings.Contains(id, strings.Repeat("v", 1024)) ||
		strings.Contains(id, strings.Repeat("w", 1025)) {
		t.Errorf("values not cut to 1024 bytes: a log line of %d bytes", len(id))
	}
}

// failingSync is a store whose next HighestModSeq fails once armed: the
// sync after a command fails.
type failingSync struct {
	store.Store
	armed atomic.Bool
}

func (s *failingSync) Open(ctx context.Context, id int64) (store.Session, error) {
	sess, err := s.Store.Open(ctx, id)
	if err != nil {
		return nil, err
	}
	return &failingSyncSession{Session: sess, s: s}, nil
}

type failingSyncSession struct {
	store.Session
	s *failingSync
}

func (ss *failingSyncSession) HighestModSeq(ctx context.Context, mailboxID int64, notBefore time.Time) (store.ModSeq, error) {
	if ss.s.armed.CompareAndSwap(true, false) {
		return 0, fmt.Errorf("test: %w", store.ErrUnavailable)
	}
	return ss.Session.HighestModSeq(ctx, mailboxID, notBefore)
}

// TestSearchResAfterFailedSync: a SEARCH or SORT RETURN (SAVE) that found
// its messages but ends in NO because the sync after it failed leaves the
// search result variable empty, as any NO does (RFC 5182 2.1).
func TestSearchResAfterFailedSync(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ seen, body string }{
		{"SEARCH RETURN (SAVE) SEEN", "SEARCH RETURN (SAVE) BODY second"},
		{"SORT RETURN (SAVE) (SUBJECT) UTF-8 SEEN", "SORT RETURN (SAVE) (SUBJECT) UTF-8 BODY second"},
	} {
		t.Run(strings.Fields(tc.seen)[0], func(t *testing.T) {
			var fs *failingSync
			e := newTestEnv(t, func(cfg *Config) {
				fs = &failingSync{Store: cfg.Store}
				cfg.Store = fs
			})
			e.deliver("INBOX", "Subject: one\n\nfirst\n", `\Seen`)
			e.deliver("INBOX", "Subject: two\n\nsecond\n")
			c := e.login()
			c.mustOK("SELECT INBOX")
			c.mustOK(tc.seen)
			if got := strings.Join(c.mustOK("UID SEARCH $"), " "); got != "* SEARCH 1" {
				t.Fatalf("after SAVE SEEN: %q", got)
			}
			// A search by BODY reads the messages, and does not sync
			// before: what fails is the sync after it.
			fs.armed.Store(true)
			if _, tagged := c.cmd(tc.body); !strings.Contains(tagged, " NO [UNAVAILABLE]") {
				t.Fatalf("%s whose sync fails: %q, want NO [UNAVAILABLE]", tc.body, tagged)
			}
			if got := strings.Join(c.mustOK("UID SEARCH $"), " "); got != "* SEARCH" {
				t.Errorf("after the NO: %q, want an empty result", got)
			}
		})
	}
}

// TestLiteralAfterIdleOrSASL: a line that ends in a non-synchronising
// literal where the server expects DONE in IDLE, or a SASL response, is
// answered BAD and its literal skipped: what the literal holds is not
// taken for a command. So is a line too long there.
func TestLiteralAfterIdleOrSASL(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, func(c *Config) { c.Limits.MaxLineLength = 1024 })
	smuggled := "{9+}\r\nx1 NOOP\r\n\r\n" // a literal holding a command
	long := strings.Repeat("z", 2000) + " "
	for _, tc := range []struct {
		name, start, prompt, line string
	}{
		{"IDLE", "i IDLE", "+ idling", "FOO "},
		{"IDLE, a line too long", "i IDLE", "+ idling", long},
		{"SASL", "i AUTHENTICATE PLAIN", "+ ", "abc "},
		{"SASL, a line too long", "i AUTHENTICATE PLAIN", "+ ", long},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.dial()
			if strings.Contains(tc.start, "IDLE") {
				c.mustOK("LOGIN " + testUser + " " + testPass)
				c.mustOK("SELECT INBOX")
			}
			c.write(tc.start + "\r\n")
			if l := c.readLine(); !strings.HasPrefix(l, strings.TrimSpace(tc.prompt)) {
				t.Fatalf("%s: %q, want %q", tc.start, l, tc.prompt)
			}
			c.write(tc.line + smuggled)
			if _, tagged := c.readUntil("i"); !strings.HasPrefix(tagged, "i BAD") {
				t.Errorf("%.20q...: %q, want BAD", tc.line, tagged)
			}
			c.write("n NOOP\r\n")
			if untagged, tagged := c.readUntil("n"); len(untagged) > 0 || !strings.HasPrefix(tagged, "n OK") {
				t.Errorf("NOOP after: %q %q; want only n OK, the literal not run", untagged, tagged)
			}
		})
	}
}

// TestRefusedStateReadsNoLiteral: a command refused in the session's state
// is refused before its arguments are read: before login, "SELECT {n}"
// gets BAD and no "+ Ready" inviting n bytes, and a non-synchronising
// literal is skipped; the session goes on.
func TestRefusedStateReadsNoLiteral(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	c := e.dial()
	c.write("a1 SELECT {1000000}\r\n")
	if line := c.readLine(); !strings.HasPrefix(line, "a1 BAD ") || !strings.Contains(line, "not allowed") {
		t.Fatalf("SELECT before login: %q, want BAD (and no continuation)", line)
	}
	c.write("a2 SELECT {5+}\r\nINBOX\r\n")
	if line := c.readLine(); !strings.HasPrefix(line, "a2 BAD ") {
		t.Fatalf("SELECT with a literal before login: %q", line)
	}
	c.mustOK("NOOP")
	c.mustOK("LOGIN " + testUser + " " + testPass)
}
