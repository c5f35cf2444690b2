package main

// What real clients tripped on in the IMAP server, found by the client
// tests and kept here as their regression tests: UID commands on a view
// that another session changed, and the names Outlook and Apple Mail use
// for the special folders.

import (
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// Thunderbird alerts the user on any tagged NO. A UID FETCH naming a
// message another session expunged answers OK, reporting the EXPUNGE as
// RFC 9051 7.5.1 allows during a UID command, and so does the next one.
func TestUIDFetchAfterExpungeElsewhere(t *testing.T) {
	t.Parallel()
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

// go-imap v2's client, like others, matches a STATUS answer to its
// command by the mailbox name: the answer for an alias carries the alias.
func TestStatusOfAliasEchoesName(t *testing.T) {
	t.Parallel()
	const user = "status-alias@example.org"
	in := clServer(t, user)
	g := clGoClient(t, in, user, nil)
	for _, alias := range []string{"Sent Items", "Deleted Items", "Sent Messages", "Deleted Messages", "Junk E-mail", "Junk Email"} {
		st, err := g.Status(alias, &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil || st.NumMessages == nil || st.Mailbox != alias {
			t.Errorf("go-imap STATUS %q: %+v %v, want MESSAGES 0 for %q", alias, st, err, alias)
		}
	}
	ol := clDial(t, in, "imaps", "Outlook", "A%d")
	ol.ok("LOGIN " + clQuote(user) + " " + clQuote(clPass))
	if st := clStatus(t, ol.ok(`STATUS "Sent" (MESSAGES)`).untagged); len(st) != 1 || st["Sent"] == nil {
		t.Errorf(`STATUS "Sent": %v`, st)
	}
}

// Outlook 2013 and later call the junk folder "Junk Email", Outlook 2010
// "Junk E-mail": both are Junk.
func TestJunkEmailAlias(t *testing.T) {
	t.Parallel()
	const user = "junk@example.org"
	in := clServer(t, user)
	clDeliver(t, in, user, clPlainMsg)
	ol := clDial(t, in, "imaps", "Outlook", "A%d")
	ol.ok("LOGIN " + clQuote(user) + " " + clQuote(clPass))
	ol.ok(`SELECT "INBOX"`)
	ol.ok(`UID COPY 1 "Junk Email"`)
	if st := clStatus(t, ol.ok(`STATUS "Junk" (MESSAGES)`).untagged); st["Junk"]["MESSAGES"] != 1 {
		t.Errorf(`UID COPY to "Junk Email" missed Junk: %v`, st)
	}
	if l := clLists(t, "LIST", ol.ok(`LIST "" "*"`).untagged); len(l) != 6 {
		t.Errorf(`after UID COPY to "Junk Email": %v, want the 6 default folders`, l)
	}
}

// Outlook creates its special folders when LIST does not show them by its
// names. CREATE of an alias whose folder exists is refused, so that sent
// mail does not split between Sent and a new "Sent Items".
func TestCreateAliasOfSpecialFolder(t *testing.T) {
	t.Parallel()
	const user = "create-alias@example.org"
	in := clServer(t, user)
	ol := clDial(t, in, "imaps", "Outlook", "A%d")
	ol.ok("LOGIN " + clQuote(user) + " " + clQuote(clPass))
	if res := ol.cmd(`CREATE "Sent Items"`); res.status != "NO" || clCode(res.text) != "ALREADYEXISTS" {
		t.Errorf(`CREATE "Sent Items": %q, want NO [ALREADYEXISTS]`, res.text)
	}
	ol.appendMsg(`"Sent Items"`, `(\Seen)`, clPlainMsg, false)
	if st := clStatus(t, ol.ok(`STATUS "Sent" (MESSAGES)`).untagged); st["Sent"]["MESSAGES"] != 1 {
		t.Errorf(`the APPEND after CREATE "Sent Items" missed Sent: %v`, st)
	}
	if l := clLists(t, "LIST", ol.ok(`LIST "" "*"`).untagged); len(l) != 6 {
		t.Errorf(`after CREATE "Sent Items": %v, want the 6 default folders`, l)
	}

	// Without the special folder, the alias makes one.
	ol.ok(`DELETE "Junk"`)
	ol.ok(`CREATE "Junk E-mail"`)
	l := clLists(t, "LIST", ol.ok(`LIST "" "*"`).untagged)
	if j, ok := l["Junk E-mail"]; !ok || !j.has(`\Junk`) {
		t.Errorf(`CREATE "Junk E-mail" without Junk: %v, want a \Junk folder`, l)
	}
	if res := ol.cmd(`CREATE "Junk Email"`); clCode(res.text) != "ALREADYEXISTS" {
		t.Errorf(`CREATE "Junk Email" after "Junk E-mail": %q, want NO [ALREADYEXISTS]`, res.text)
	}
}

// SUBSCRIBE of an alias subscribes the folder it stands for; LSUB and
// LIST (SUBSCRIBED) show that folder, not a name that does not exist.
func TestSubscribeAlias(t *testing.T) {
	t.Parallel()
	const user = "subscribe-alias@example.org"
	in := clServer(t, user)
	ol := clDial(t, in, "imaps", "Outlook", "A%d")
	ol.ok("LOGIN " + clQuote(user) + " " + clQuote(clPass))
	ol.ok(`UNSUBSCRIBE "Sent"`)
	ol.ok(`SUBSCRIBE "Sent Items"`)
	lsub := clLists(t, "LSUB", ol.ok(`LSUB "" "*"`).untagged)
	if _, ok := lsub["Sent"]; !ok {
		t.Errorf(`LSUB after SUBSCRIBE "Sent Items": %v, want Sent`, lsub)
	}
	if _, ok := lsub["Sent Items"]; ok {
		t.Errorf(`LSUB after SUBSCRIBE "Sent Items" lists the alias: %v`, lsub)
	}
	for _, s := range ol.ok(`LIST (SUBSCRIBED) "" "*"`).untagged {
		if strings.Contains(s, `\NonExistent`) {
			t.Errorf(`LIST (SUBSCRIBED) after SUBSCRIBE "Sent Items": %q`, s)
		}
	}
	ol.ok(`UNSUBSCRIBE "Sent Items"`)
	if lsub := clLists(t, "LSUB", ol.ok(`LSUB "" "*"`).untagged); lsub["Sent"].name != "" {
		t.Errorf(`LSUB after UNSUBSCRIBE "Sent Items": %v, want no Sent`, lsub)
	}
}
