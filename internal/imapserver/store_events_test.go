package imapserver

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/buzon-mail/buzon/internal/store"
)

// TestNoStructure: a message stored without a usable structure (never
// parsed, or corrupt) is still served, as text/plain.
func TestNoStructure(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	sess := e.session()
	mb, err := sess.Mailbox(context.Background(), "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	raw := "Subject: bare\r\nFrom: x@example.org\r\n\r\nno structure here\r\n"
	for _, structure := range [][]byte{nil, []byte("\xffcorrupt")} {
		_, err := sess.Append(context.Background(), mb.ID, &store.NewMessage{
			Body: strings.NewReader(raw), Size: int64(len(raw)), Structure: structure,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	c := e.login()
	c.mustOK("SELECT INBOX")
	for _, seq := range []string{"1", "2"} {
		out := strings.Join(c.mustOK("FETCH "+seq+" (ENVELOPE BODYSTRUCTURE BODY.PEEK[] BODY.PEEK[HEADER] BODY.PEEK[TEXT] BODY.PEEK[1] BINARY.PEEK[1])"), "\n")
		for _, want := range []string{
			`ENVELOPE (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)`,
			`BODYSTRUCTURE ("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 19 1 NIL NIL NIL NIL)`,
			"BODY[] {" + itoa(uint32(len(raw))) + "}\r\n" + raw,
			"BODY[HEADER] {38}\r\nSubject: bare\r\nFrom: x@example.org\r\n\r\n",
			"BODY[TEXT] {19}\r\nno structure here\r\n",
			"BODY[1] {19}\r\nno structure here\r\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("message %s lacks %q:\n%s", seq, want, out)
			}
		}
	}
	out := c.mustOK(`SEARCH SUBJECT bare BODY "structure here"`)
	if out[0] != "* SEARCH 1 2" {
		t.Errorf("search: %q", out)
	}
}

// TestOutsideChanges: changes made straight in the store, as POP3 QUIT,
// LMTP delivery or an admin command make them, reach a session in IDLE.
func TestOutsideChanges(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.deliver("INBOX", "Subject: one\n\n1\n")
	e.deliver("INBOX", "Subject: two\n\n2\n")
	c := e.login()
	c.mustOK("SELECT INBOX")
	c.idle("i")

	e.deliver("INBOX", "Subject: three\n\n3\n")
	if l := c.readLine(); l != "* 3 EXISTS" {
		t.Errorf("after delivery: %q", l)
	}
	sess := e.session()
	mb, _ := sess.Mailbox(context.Background(), "INBOX")
	// POP3 UPDATE state: expunge without \Deleted.
	if _, err := sess.Expunge(context.Background(), mb.ID, store.UIDSetOf(1), false); err != nil {
		t.Fatal(err)
	}
	if l := c.readLine(); l != "* 1 EXPUNGE" {
		t.Errorf("after POP3 deletion: %q", l)
	}
	if _, err := sess.StoreFlags(context.Background(), mb.ID, store.UIDSetOf(3), store.FlagsAdd, store.Flags{System: store.FlagSeen}, 0); err != nil {
		t.Fatal(err)
	}
	if l := c.readLine(); l != `* 2 FETCH (FLAGS (\Seen))` {
		t.Errorf("after a flag change: %q", l)
	}
	c.write("DONE\r\n")
	if l := c.readLine(); !strings.HasPrefix(l, "i OK") {
		t.Errorf("DONE: %q", l)
	}

	// The selected mailbox deleted elsewhere ends the session.
	c.mustOK("CREATE Doomed")
	c.mustOK("SELECT Doomed")
	if err := sess.DeleteMailbox(context.Background(), "Doomed"); err != nil {
		t.Fatal(err)
	}
	untagged, tagged := c.cmd("NOOP")
	if len(untagged) == 0 || !strings.HasPrefix(untagged[0], "* BYE") {
		t.Errorf("NOOP on a deleted mailbox: %q %q", untagged, tagged)
	}
}

// TestUIDFromElsewhere: a client that learnt a UID on another connection
// (an APPENDUID, another device) can name it in a UID command at once; the
// session announces the new message first, then acts on it.
func TestUIDFromElsewhere(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.deliver("INBOX", "Subject: one\n\n1\n")
	c := e.login()
	c.mustOK("SELECT INBOX")
	res := e.deliver("INBOX", "Subject: two\n\n2\n")
	uid := fmt.Sprint(res.UID)
	untagged := c.mustOK(`UID STORE ` + uid + ` +FLAGS (\Flagged)`)
	if len(untagged) < 2 || untagged[0] != "* 2 EXISTS" || !strings.Contains(untagged[1], `\Flagged`) {
		t.Fatalf("UID STORE of a message delivered after SELECT: %q", untagged)
	}
	untagged = c.mustOK(`UID FETCH ` + uid + ` (FLAGS)`)
	if len(untagged) != 1 || !strings.Contains(untagged[0], `\Flagged`) {
		t.Errorf("flags after the store: %q", untagged)
	}
	e.deliver("INBOX", "Subject: three\n\n3\n")
	if untagged := c.mustOK(`UID FETCH * (UID)`); len(untagged) != 2 || untagged[0] != "* 3 EXISTS" {
		t.Errorf("UID FETCH * after a delivery: %q", untagged)
	}
}
