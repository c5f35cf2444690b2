package imapserver

import (
	"bufio"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/buzon-mail/buzon/internal/store"
)

// TestRenameSelected: a session that renames its selected mailbox, or a
// parent of it, stays in the selected state (RFC 9051 leaves it only by
// CLOSE, UNSELECT, SELECT or LOGOUT) and keeps following the mailbox
// under its new name: message numbers, and new mail.
func TestRenameSelected(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ selected, from, to, after string }{
		{"Work", "Work", "Job", "Job"},
		{"Work/Sub", "Work", "Job", "Job/Sub"},
	} {
		t.Run(tc.selected, func(t *testing.T) {
			e := newTestEnv(t)
			c := e.login()
			c.mustOK("CREATE " + tc.selected)
			e.deliver(tc.selected, "Subject: one\r\n\r\none\r\n")
			e.deliver(tc.selected, "Subject: two\r\n\r\ntwo\r\n")
			c.mustOK("SELECT " + tc.selected)
			c.mustOK("RENAME " + tc.from + " " + tc.to)

			got := c.mustOK("FETCH 1:* (UID)")
			if want := []string{"* 1 FETCH (UID 1)", "* 2 FETCH (UID 2)"}; !slices.Equal(got, want) {
				t.Errorf("FETCH after RENAME: %q, want %q", got, want)
			}
			e.deliver(tc.after, "Subject: three\r\n\r\nthree\r\n")
			if got := c.mustOK("NOOP"); !slices.Contains(got, "* 3 EXISTS") {
				t.Errorf("NOOP after a delivery to %s: %q, want * 3 EXISTS", tc.after, got)
			}
			c.mustOK("STORE 3 +FLAGS (\\Flagged)")
			if got := c.mustOK("STATUS " + tc.after + " (MESSAGES)"); !slices.Equal(got, []string{"* STATUS \"" + tc.after + "\" (MESSAGES 3)"}) {
				t.Errorf("STATUS: %q", got)
			}
		})
	}
}

// TestRenamedElsewhere: a session whose selected mailbox another session
// renames is not thrown out: the mailbox is the same, and the session
// goes on seeing its messages and its new mail.
func TestRenamedElsewhere(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	a, b := e.login(), e.login()
	a.mustOK("CREATE Work")
	e.deliver("Work", "Subject: one\r\n\r\none\r\n")
	b.mustOK("SELECT Work")
	a.mustOK("RENAME Work Job")
	e.deliver("Job", "Subject: two\r\n\r\ntwo\r\n")
	got := b.mustOK("NOOP")
	if slices.ContainsFunc(got, func(l string) bool { return strings.HasPrefix(l, "* BYE") }) || !slices.Contains(got, "* 2 EXISTS") {
		t.Errorf("NOOP after a rename elsewhere and a delivery: %q, want * 2 EXISTS and no BYE", got)
	}
	if got := b.mustOK("FETCH 1:* (UID)"); !slices.Equal(got, []string{"* 1 FETCH (UID 1)", "* 2 FETCH (UID 2)"}) {
		t.Errorf("FETCH after a rename elsewhere: %q", got)
	}
	// The session renames it in turn, by the name it has now; the name
	// it selected it by is long gone.
	b.mustOK("RENAME Job Other")
	e.deliver("Other", "Subject: three\r\n\r\nthree\r\n")
	if got := b.mustOK("NOOP"); !slices.Contains(got, "* 3 EXISTS") {
		t.Errorf("NOOP after renaming the selected mailbox again: %q, want * 3 EXISTS", got)
	}
}

// TestRenameParentOfStaleSelection: a session has A/B selected; another
// renames A to Z and makes a new A/B with a message of its own; the first
// then renames A. Its selection is still the mailbox now called Z/B, not
// the new one, whose message it must neither show nor expunge.
func TestRenameParentOfStaleSelection(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	a, b := e.login(), e.login()
	a.mustOK("CREATE A/B")
	e.deliver("A/B", "Subject: mine\r\n\r\nmine\r\n")
	b.mustOK("SELECT A/B")
	a.mustOK("RENAME A Z")
	a.mustOK("CREATE A/B")
	e.deliver("A/B", "Subject: other\r\n\r\nother\r\n")
	b.mustOK("RENAME A Q")
	if got := strings.Join(b.mustOK("FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])"), "\n"); !strings.Contains(got, "Subject: mine") {
		t.Errorf("FETCH of the selected mailbox after renaming another A: %q, want its own message", got)
	}
	b.mustOK(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	b.mustOK("EXPUNGE")
	for name, want := range map[string]string{"Z/B": "0", "Q/B": "1"} {
		if got := a.mustOK("STATUS " + name + " (MESSAGES)"); !slices.Equal(got, []string{`* STATUS "` + name + `" (MESSAGES ` + want + ")"}) {
			t.Errorf("STATUS %s: %q, want %s messages", name, got, want)
		}
	}
}

// TestDeleteSelected: deleting the selected mailbox ends the session with
// BYE after the tagged OK, as another session's delete does, instead of
// leaving a client that believes a mailbox is selected to meet BAD.
func TestDeleteSelected(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	c := e.login()
	c.mustOK("CREATE Doomed")
	e.deliver("Doomed", "Subject: one\r\n\r\none\r\n")
	c.mustOK("SELECT Doomed")
	untagged, tagged := c.cmd("DELETE Doomed")
	if !strings.Contains(tagged, " OK ") || len(untagged) != 1 || !strings.HasPrefix(untagged[0], "* BYE ") {
		t.Fatalf("DELETE of the selected mailbox: %q %q, want * BYE then OK", untagged, tagged)
	}
	c.deadline()
	if rest, err := io.ReadAll(bufio.NewReader(c.br)); err != nil || len(rest) > 0 {
		t.Errorf("after BYE: %q, %v; want the connection closed", rest, err)
	}
	other := e.login()
	if _, tagged := other.cmd("SELECT Doomed"); !strings.Contains(tagged, " NO ") {
		t.Errorf("SELECT of the deleted mailbox: %s", tagged)
	}
}

// TestMoveWithinMailbox: MOVE into the selected mailbox itself is COPY
// and EXPUNGE (RFC 6851): COPYUID, the expunge, then the new message.
func TestMoveWithinMailbox(t *testing.T) {
	t.Parallel()
	e, c := ownWritesEnv(t, func(st store.Store) store.Store { return st })
	untagged, tagged := c.cmd("MOVE 1 INBOX")
	if !strings.Contains(tagged, " OK ") {
		t.Fatalf("MOVE 1 INBOX: %s", tagged)
	}
	if len(untagged) != 3 || !strings.HasPrefix(untagged[0], "* OK [COPYUID ") || !strings.HasSuffix(untagged[0], " 1 4] moved") ||
		untagged[1] != "* 1 EXPUNGE" || untagged[2] != "* 3 EXISTS" {
		t.Errorf("MOVE 1 INBOX: %q", untagged)
	}
	if got := c.mustOK("FETCH 1:* (UID)"); !slices.Equal(got, []string{"* 1 FETCH (UID 2)", "* 2 FETCH (UID 3)", "* 3 FETCH (UID 4)"}) {
		t.Errorf("FETCH after the move: %q", got)
	}
	if got := e.login().mustOK("STATUS INBOX (MESSAGES UIDNEXT)"); !slices.Equal(got, []string{`* STATUS "INBOX" (MESSAGES 3 UIDNEXT 5)`}) {
		t.Errorf("STATUS after the move: %q", got)
	}
}

// TestRenameMovesSubscriptions: the subscriptions of a renamed mailbox
// and of the names below it follow it, so that a client showing
// subscribed folders only keeps showing them; other names and INBOX's
// own rename leave subscriptions alone. RETURN (SUBSCRIBED) marks names
// but adds none that do not exist (RFC 5258 3.2).
func TestRenameMovesSubscriptions(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	c := e.login()
	for _, n := range []string{"W/X", "W/Gone", "Wx"} {
		c.mustOK("CREATE " + n)
	}
	for _, n := range []string{"W", "W/X", "W/Gone", "Wx"} {
		c.mustOK("SUBSCRIBE " + n)
	}
	c.mustOK("DELETE W/Gone") // its subscription stays (RFC 9051 6.3.5)
	c.mustOK("RENAME W V")
	got := c.mustOK(`LIST (SUBSCRIBED) "" *`)
	for _, want := range []string{
		`* LIST (\HasChildren \Subscribed) "/" "V"`,
		`* LIST (\HasNoChildren \Subscribed) "/" "V/X"`,
		`* LIST (\NonExistent \Subscribed) "/" "V/Gone"`,
		`* LIST (\HasNoChildren \Subscribed) "/" "Wx"`,
	} {
		if !slices.Contains(got, want) {
			t.Errorf("LIST (SUBSCRIBED) after RENAME lacks %q: %q", want, got)
		}
	}
	for _, l := range got {
		if strings.Contains(l, `"W"`) || strings.Contains(l, `"W/`) {
			t.Errorf("old name still subscribed: %q", l)
		}
	}

	got = c.mustOK(`LIST "" V/% RETURN (CHILDREN SUBSCRIBED)`)
	if want := []string{`* LIST (\HasNoChildren \Subscribed) "/" "V/X"`}; !slices.Equal(got, want) {
		t.Errorf("LIST RETURN (SUBSCRIBED): %q, want %q (no line for V/Gone, which does not exist)", got, want)
	}
}
