package imapserver

import (
	"slices"
	"strings"
	"testing"
)

// TestRenameInboxBelowItself: renaming INBOX moves its messages into a
// new mailbox and leaves INBOX, and its children, where they are (RFC
// 9051 6.3.6), so the new mailbox may be one of INBOX's children, as
// clients that archive the inbox as "INBOX/old-messages" ask. It used
// to be refused as a rename of a mailbox below itself, which it stays
// for every other mailbox.
func TestRenameInboxBelowItself(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.deliverThree()
	c := e.login()
	c.mustOK("CREATE INBOX/Child")
	watcher := e.login()
	watcher.mustOK("SELECT INBOX")

	c.mustOK("RENAME INBOX INBOX/old")
	got := c.mustOK(`LIST "" "*"`)
	for _, want := range []string{`"INBOX"`, `"INBOX/Child"`, `"INBOX/old"`} {
		if !slices.ContainsFunc(got, func(l string) bool { return strings.HasSuffix(l, " "+want) }) {
			t.Errorf("LIST after RENAME INBOX INBOX/old: %q, want %s", got, want)
		}
	}
	if slices.ContainsFunc(got, func(l string) bool { return strings.Contains(l, "INBOX/old/") }) {
		t.Errorf("LIST after RENAME INBOX INBOX/old: %q; INBOX's children went with its messages", got)
	}
	for _, tc := range []struct{ mailbox, want string }{
		{"INBOX", `* STATUS "INBOX" (MESSAGES 0)`},
		{"INBOX/old", `* STATUS "INBOX/old" (MESSAGES 3)`},
		{"INBOX/Child", `* STATUS "INBOX/Child" (MESSAGES 0)`},
	} {
		if got := c.mustOK("STATUS " + tc.mailbox + " (MESSAGES)"); !slices.Equal(got, []string{tc.want}) {
			t.Errorf("STATUS %s: %q, want %q", tc.mailbox, got, tc.want)
		}
	}
	// A session with INBOX selected sees its messages go.
	if got := watcher.mustOK("NOOP"); !slices.Equal(got, []string{"* 1 EXPUNGE", "* 1 EXPUNGE", "* 1 EXPUNGE"}) {
		t.Errorf("NOOP in the renamed INBOX: %q, want its three messages expunged", got)
	}

	// Again, to a name that is taken now; and any other mailbox still
	// cannot go below itself.
	for _, tc := range []struct{ cmd, want string }{
		{"RENAME INBOX INBOX/old", "NO [ALREADYEXISTS]"},
		{"RENAME INBOX/Child INBOX/Child/deeper", "NO [CANNOT]"},
	} {
		if untagged, tagged := c.cmd(tc.cmd); !strings.Contains(tagged, " "+tc.want+" ") {
			t.Errorf("%s: %q %q, want %s", tc.cmd, untagged, tagged, tc.want)
		}
	}
	// A lower-case inbox is INBOX (RFC 9051 5.1).
	e.deliver("INBOX", "Subject: later\r\n\r\nlater\r\n")
	c.mustOK("RENAME inbox inbox/older")
	if got := c.mustOK("STATUS INBOX/older (MESSAGES)"); !slices.Equal(got, []string{`* STATUS "INBOX/older" (MESSAGES 1)`}) {
		t.Errorf("STATUS INBOX/older: %q, want the message INBOX held", got)
	}
}
