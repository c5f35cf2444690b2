package imapserver

import (
	"context"
	"strings"
	"testing"

	"github.com/buzon-mail/buzon/internal/store"
)

// TestRenderCache: a FETCH answered from the cache of rendered items says
// what the first one said, and a session in UTF-8 mode gets its own
// rendering (quoted UTF-8, not literals).
func TestRenderCache(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.deliver("INBOX", "Subject: caf\xc3\xa9\nFrom: J\xc3\xbcrgen <j@example.org>\nContent-Type: text/plain; charset=utf-8\n\nbody\n")
	e.deliver("INBOX", "Subject: plain\nFrom: a@example.org\n\nbody\n")
	const items = "FETCH 1:* (ENVELOPE BODYSTRUCTURE BODY)"

	c := e.login()
	c.mustOK("SELECT INBOX")
	first := strings.Join(c.mustOK(items), "\n")
	again := strings.Join(c.mustOK(items), "\n")
	if first != again {
		t.Errorf("second FETCH differs:\n%s\n---\n%s", first, again)
	}
	if !strings.Contains(first, "{5}\r\ncafé") {
		t.Errorf("non-UTF-8 session: subject not a literal:\n%s", first)
	}

	u := e.login()
	u.mustOK("ENABLE UTF8=ACCEPT")
	u.mustOK("SELECT INBOX")
	utf := strings.Join(u.mustOK(items), "\n")
	if !strings.Contains(utf, `"café"`) {
		t.Errorf("UTF-8 session got another session's rendering:\n%s", utf)
	}
	if again := strings.Join(c.mustOK(items), "\n"); again != first {
		t.Errorf("non-UTF-8 session after a UTF-8 one:\n%s", again)
	}
}

// TestSharedFeed: sessions of one mailbox share change reads, yet each
// hears of every change, whether it idles or sends commands.
func TestSharedFeed(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.deliver("INBOX", "Subject: one\n\n1\n")
	var idlers []*client
	for range 3 {
		c := e.login()
		c.mustOK("SELECT INBOX")
		c.idle("i")
		idlers = append(idlers, c)
	}
	busy := e.login()
	busy.mustOK("SELECT INBOX")

	e.deliver("INBOX", "Subject: two\n\n2\n")
	for i, c := range idlers {
		if l := c.readLine(); l != "* 2 EXISTS" {
			t.Errorf("idler %d: %q", i, l)
		}
	}
	if untagged := busy.mustOK("NOOP"); len(untagged) != 1 || untagged[0] != "* 2 EXISTS" {
		t.Errorf("NOOP: %q", untagged)
	}
	busy.mustOK(`STORE 1 +FLAGS (\Flagged)`)
	for i, c := range idlers {
		if l := c.readLine(); l != `* 1 FETCH (FLAGS (\Flagged))` {
			t.Errorf("idler %d after STORE: %q", i, l)
		}
		c.write("DONE\r\n")
		if l := c.readLine(); !strings.HasPrefix(l, "i OK") {
			t.Errorf("idler %d DONE: %q", i, l)
		}
	}
}

// TestSearchFlagsFromView: a search by flags, answered from the view,
// sees every change made since the view was built, anywhere, and never a
// message expunged meanwhile.
func TestSearchFlagsFromView(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	for i := range 4 {
		e.deliver("INBOX", "Subject: "+itoa(uint32(i))+"\n\nbody\n")
	}
	c := e.login()
	c.mustOK("SELECT INBOX")
	other := e.login()
	other.mustOK("SELECT INBOX")

	search := func(want ...string) {
		t.Helper()
		untagged := c.mustOK("SEARCH UNSEEN")
		if got := untagged[len(untagged)-1]; got != strings.Join(append([]string{"* SEARCH"}, want...), " ") {
			t.Errorf("SEARCH UNSEEN: %q, want %v", untagged, want)
		}
	}
	search("1", "2", "3", "4")
	other.mustOK(`STORE 2 +FLAGS (\Seen)`)
	search("1", "3", "4")
	c.mustOK(`STORE 3 +FLAGS (\Seen)`)
	search("1", "4")
	e.deliver("INBOX", "Subject: new\n\nbody\n")
	search("1", "4", "5")
	other.mustOK(`STORE 1 +FLAGS (\Deleted)`)
	other.mustOK("EXPUNGE")
	// Message 1 is gone but not yet reported (no EXPUNGE during SEARCH).
	search("4", "5")
	c.mustOK("NOOP")
	search("3", "4")
	if untagged := c.mustOK(`SEARCH OR SEEN UID 1:2`); untagged[len(untagged)-1] != "* SEARCH 1 2" {
		t.Errorf("SEARCH OR SEEN UID 1:2: %q", untagged)
	}
}

// TestSearchEnvelopeCache: searches by subject and address answered from
// the envelope cache find what the messages say, new messages included,
// and a message without a usable structure sends the search to the
// messages themselves.
func TestSearchEnvelopeCache(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.deliver("INBOX", "Subject: =?utf-8?q?caf=C3=A9?= meeting\nFrom: =?utf-8?q?J=C3=BCrgen?= <j@example.org>\nTo: team@example.org\n\nbody\n")
	e.deliver("INBOX", "Subject: lunch\nFrom: bob@example.org\nCc: Carol <carol@example.org>\n\nbody\n")
	c := e.login()
	c.mustOK("SELECT INBOX")
	for _, tc := range []struct{ criteria, want string }{
		{`SUBJECT "café"`, "* SEARCH 1"},
		{`SUBJECT MEETING`, "* SEARCH 1"},
		{`FROM "jürgen"`, "* SEARCH 1"},
		{`FROM bob UNSEEN`, "* SEARCH 2"},
		{`OR CC carol TO team`, "* SEARCH 1 2"},
		{`NOT SUBJECT lunch`, "* SEARCH 1"},
	} {
		for range 2 { // read, then cached
			untagged := c.mustOK("SEARCH CHARSET UTF-8 " + tc.criteria)
			if got := untagged[len(untagged)-1]; got != tc.want {
				t.Errorf("SEARCH %s: %q, want %q", tc.criteria, untagged, tc.want)
			}
		}
	}
	e.deliver("INBOX", "Subject: another meeting\n\nbody\n")
	if untagged := c.mustOK("SEARCH SUBJECT meeting"); untagged[len(untagged)-1] != "* SEARCH 1 3" {
		t.Errorf("after a delivery: %q", untagged)
	}

	sess := e.session()
	mb, err := sess.Mailbox(context.Background(), "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	raw := "Subject: no structure meeting\r\n\r\nbody\r\n"
	if _, err := sess.Append(context.Background(), mb.ID, &store.NewMessage{Body: strings.NewReader(raw), Size: int64(len(raw))}); err != nil {
		t.Fatal(err)
	}
	if untagged := c.mustOK("SEARCH SUBJECT meeting"); untagged[len(untagged)-1] != "* SEARCH 1 3 4" {
		t.Errorf("with a message without structure: %q", untagged)
	}
}
