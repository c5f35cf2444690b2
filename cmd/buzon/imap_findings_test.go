package main

// What real clients tripped on in the IMAP server, found by the client
// tests and kept here as their regression tests: UID commands on a view
// that another session changed.

import (
	"testing"
)

// Thunderbird alerts the user on any tagged NO. A UID FETCH naming a
// message another session expunged answers OK, reporting the EXPUNGE as
// RFC 9051 7.5.1 allows during a UID command, and so does the next one.
func TestUIDFetchAfterExpungeElsewhere(t *testing.T) {
	const user = "expunged@example.org"
	in := clServer(t, user)
	clDeliver(t, in, user, clPlainMsg, clIntlMsg, clLongMsg)
	tb := clDial(t, in, "imap", "Thunderbird", "%d")
	tb.ok("LOGIN " + user + " " + clPass)
	tb.ok(`select "INBOX"`)
	ios := clDial(t, in, "imaps", "iPhone", "%d")
	ios.ok("LOGIN " + user + " " + clPass)
	ios.ok("SELECT INBOX")
	ios.ok(`UID MOVE 2 "Deleted Messages"`)

	res := tb.cmd("UID fetch 1:* (FLAGS)")
	if res.status != "OK" || len(clFind(res.untagged, "* 2 EXPUNGE")) != 1 {
		t.Errorf("UID fetch 1:* (FLAGS) after a move elsewhere: %q, want OK with * 2 EXPUNGE", res.all())
	}
	if uids := clByUID(t, clFetches(t, "Thunderbird", res.untagged)); len(uids) != 2 || uids[1].items == nil || uids[3].items == nil {
		t.Errorf("UID fetch 1:* (FLAGS) after a move elsewhere fetched %v, want UIDs 1 and 3", uids)
	}
	if res := tb.cmd("UID fetch 1:* (FLAGS)"); res.status != "OK" {
		t.Errorf("UID fetch 1:* (FLAGS) again: %q", res.all())
	}

	// A UID FETCH of just the message gone, before anything told the
	// session: nothing to fetch, the EXPUNGE and OK.
	ios.ok(`UID MOVE 3 "Deleted Messages"`)
	res = tb.cmd("UID fetch 3 (UID FLAGS)")
	if res.status != "OK" || len(clFind(res.untagged, "* 2 EXPUNGE")) != 1 {
		t.Errorf("UID fetch 3 after a move elsewhere: %q, want OK with * 2 EXPUNGE", res.all())
	}
}
