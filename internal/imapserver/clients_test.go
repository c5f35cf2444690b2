package imapserver

// Replays of what real clients send, command for command, with the
// things each relies on in the answers: the untagged data it parses and
// the codes it acts on. The sequences come from the clients' protocol
// logs (Thunderbird's IMAP log, Apple Mail's and Outlook's as users post
// them, K-9's and FairEmail's debug logs, mutt's and Evolution's debug
// output, Roundcube's imap_debug).

import (
	"bufio"
	"compress/flate"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/store/teststore"
)

// withPrefix returns the lines that start with prefix.
func withPrefix(lines []string, prefix string) []string {
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// clientMsg is message n of a test, as a client would append it.
func clientMsg(n int) string {
	return fmt.Sprintf("From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: message %d\r\n"+
		"Date: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <m%d@example.org>\r\n\r\nBody %d.\r\n", n, n, n)
}

// appendSync appends with a synchronising literal, as most clients do:
// the command line, the "+" the client waits for, then the message.
func (c *client) appendSync(args, msg string) (untagged []string, tagged string) {
	c.t.Helper()
	c.n++
	tag := fmt.Sprintf("t%d", c.n)
	c.write(fmt.Sprintf("%s APPEND %s {%d}\r\n", tag, args, len(msg)))
	if l := c.readLine(); !strings.HasPrefix(l, "+ ") {
		c.t.Fatalf("APPEND %s: %q, want a continuation", args, l)
	}
	c.write(msg + "\r\n")
	return c.readUntil(tag)
}

// listed parses the LIST or LSUB lines of a response by mailbox name: the
// attributes of each.
func listed(t *testing.T, lines []string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, l := range lines {
		rest, ok := strings.CutPrefix(l, "* LIST (")
		if !ok {
			rest, ok = strings.CutPrefix(l, "* LSUB (")
		}
		if !ok {
			continue
		}
		attrs, name, ok := strings.Cut(rest, `) "/" `)
		if !ok {
			t.Fatalf("LIST line %q: want the delimiter /", l)
		}
		if uq, err := strconv.Unquote(name); err == nil {
			name = uq
		}
		out[name] = strings.Fields(attrs)
	}
	return out
}

// TestClientsThunderbird replays Thunderbird (nsImapProtocol) with
// CONDSTORE on: first setup, opening INBOX with a flag sync and the header
// prefetch, reading a message in chunks, the "new mail?" check after
// NOOP, tagging, deleting with MOVE, saving and replacing a draft, and
// folder management.
func TestClientsThunderbird(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	for n := 1; n <= 3; n++ {
		e.deliver("INBOX", clientMsg(n))
	}
	tb := e.login()
	tb.mustOK(`ID ("name" "Thunderbird" "version" "128.5.2")`)
	if got := tb.mustOK("enable CONDSTORE"); !slices.Equal(got, []string{"* ENABLED CONDSTORE"}) {
		t.Errorf("enable CONDSTORE: %q", got)
	}
	tb.mustOK("namespace")

	// Folder discovery: subscribed folders with their special use, then
	// the special-use ones alone.
	specials := map[string]string{"Sent": `\Sent`, "Trash": `\Trash`, "Drafts": `\Drafts`, "Junk": `\Junk`, "Archive": `\Archive`}
	subs := listed(t, tb.mustOK(`list (subscribed) "" "*" return (special-use)`))
	for name, use := range specials {
		if !slices.Contains(subs[name], `\Subscribed`) || !slices.Contains(subs[name], use) {
			t.Errorf(`list (subscribed): %s has %q, want \Subscribed and %s`, name, subs[name], use)
		}
	}
	special := listed(t, tb.mustOK(`list (special-use) "" "*"`))
	if _, ok := special["INBOX"]; ok || len(special) != len(specials) {
		t.Errorf(`list (special-use): %v, want the %d special folders alone`, special, len(specials))
	}
	tb.mustOK(`create "Tbird"`)
	tb.mustOK(`subscribe "Tbird"`)
	if l := listed(t, tb.mustOK(`list "" "Tbird"`)); !slices.Equal(l["Tbird"], []string{`\HasNoChildren`}) {
		t.Errorf(`list "" "Tbird": %v`, l)
	}

	// Open INBOX: the flags of everything, then the headers of its
	// database, then GETQUOTAROOT for the quota bar.
	sel := tb.mustOK(`select "INBOX" (CONDSTORE)`)
	hms := respCode(t, "HIGHESTMODSEQ", sel...)
	if respCode(t, "UIDNEXT", sel...) != 4 || respCode(t, "UIDVALIDITY", sel...) == 0 {
		t.Errorf("select: %q", sel)
	}
	if got := tb.mustOK(`getquotaroot "INBOX"`); !slices.Equal(got, []string{`* QUOTAROOT "INBOX"`}) {
		t.Errorf("getquotaroot without a quota: %q, want the mailbox with no root", got)
	}
	if got := tb.mustOK("UID fetch 1:* (FLAGS)"); len(got) != 3 || got[0] != `* 1 FETCH (UID 1 FLAGS ())` {
		t.Errorf("UID fetch 1:* (FLAGS): %q", got)
	}
	heads := tb.mustOK("UID fetch 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)])")
	if len(heads) != 3 || !strings.Contains(heads[2], "RFC822.SIZE 154 ") || !strings.Contains(heads[2], "BODY[HEADER.FIELDS (FROM TO CC BCC SUBJECT") ||
		!strings.Contains(heads[2], "Subject: message 3\r\n") || strings.Contains(heads[2], `\Seen`) {
		t.Errorf("header prefetch: %q", heads)
	}
	// Reading message 2 in chunks sets \Seen; Thunderbird learns it from
	// the FETCH itself.
	body := tb.mustOK("UID fetch 2 (UID RFC822.SIZE BODY[]<0.65536>)")
	if len(body) != 1 || !strings.Contains(body[0], "BODY[]<0> {154}") || !strings.Contains(body[0], `FLAGS (\Seen)`) {
		t.Errorf("chunked body: %q", body)
	}
	// After NOOP, "UID fetch <UIDNEXT>:*" asks for new mail; with none,
	// it names the last message (RFC 9051 9, seq-range), as everywhere.
	tb.mustOK("noop")
	if got := tb.mustOK("UID fetch 4:* (FLAGS)"); !slices.Equal(got, []string{`* 3 FETCH (UID 3 FLAGS ())`}) {
		t.Errorf("UID fetch 4:* with UIDNEXT 4: %q", got)
	}
	if got := tb.mustOK("UID fetch 1:* (FLAGS) (CHANGEDSINCE " + strconv.FormatUint(hms, 10) + ")"); len(got) != 1 || !strings.HasPrefix(got[0], `* 2 FETCH (UID 2 FLAGS (\Seen) MODSEQ (`) {
		t.Errorf("CHANGEDSINCE after reading message 2: %q", got)
	}
	// A tag new to the mailbox comes with a FLAGS response first.
	tag := tb.mustOK(`uid store 3 +Flags ($label1 NonJunk)`)
	if len(tag) != 3 || !strings.HasPrefix(tag[0], "* FLAGS (") || !strings.Contains(tag[0], "$label1") ||
		!strings.Contains(tag[1], "PERMANENTFLAGS") || !strings.HasPrefix(tag[2], "* 3 FETCH (UID 3 FLAGS ($label1 NonJunk) MODSEQ (") {
		t.Errorf("a new keyword: %q", tag)
	}
	// Delete: MOVE to Trash.
	mv := tb.mustOK(`uid move 1 "Trash"`)
	if len(mv) != 2 || !strings.HasPrefix(mv[0], "* OK [COPYUID ") || mv[1] != "* 1 EXPUNGE" {
		t.Errorf("uid move: %q", mv)
	}

	// A draft saved, then replaced: APPEND to Drafts, find it by
	// Message-ID, delete it by UID.
	draft := clientMsg(9)
	_, tagged := tb.appendSync(`"Drafts" (\Draft \Seen)`, draft)
	uid := respCode(t, "APPENDUID [0-9]+", tagged)
	tb.mustOK(`select "Drafts"`)
	if got := tb.mustOK(`UID SEARCH UNDELETED HEADER Message-ID "<m9@example.org>"`); !slices.Equal(got, []string{"* SEARCH " + strconv.FormatUint(uid, 10)}) {
		t.Errorf("the draft by Message-ID: %q, want UID %d", got, uid)
	}
	tb.mustOK(fmt.Sprintf(`uid store %d +FLAGS (\Deleted)`, uid))
	if got := tb.mustOK(fmt.Sprintf("UID expunge %d", uid)); !slices.Contains(got, "* 1 EXPUNGE") {
		t.Errorf("UID expunge of the old draft: %q", got)
	}

	tb.mustOK(`rename "Tbird" "Tbird2"`)
	if l := listed(t, tb.mustOK(`list "" "Tbird2"`)); len(l) != 1 {
		t.Errorf("after rename: %v", l)
	}
	tb.mustOK(`delete "Tbird2"`)
	if l := listed(t, tb.mustOK(`list "" "Tbird*"`)); len(l) != 0 {
		t.Errorf("after delete: %v", l)
	}
}

// TestClientsAppleMail replays Mail on the Mac and on iOS: ID before
// login, the delimiter probe, STATUS of every folder with HIGHESTMODSEQ
// (how it decides what to sync), the sent copy APPENDed with \Seen and a
// date under Apple's own folder name, INBOX with CONDSTORE, marking read
// with .SILENT, and IDLE, DONE, IDLE again.
func TestClientsAppleMail(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.deliver("INBOX", clientMsg(1))
	e.deliver("INBOX", clientMsg(2))
	m := e.dial()
	if got := m.mustOK(`ID ("name" "Mac OS X Mail" "version" "16.0 (3731.500.231)" "os" "Mac OS X" "vendor" "Apple Inc.")`); len(got) != 1 || !strings.HasPrefix(got[0], "* ID (") {
		t.Errorf("ID before login: %q", got)
	}
	m.mustOK("LOGIN " + testUser + " " + testPass)
	if got := m.mustOK(`LIST "" ""`); !slices.Equal(got, []string{`* LIST (\Noselect) "/" ""`}) {
		t.Errorf(`LIST "" "": %q`, got)
	}
	all := listed(t, m.mustOK(`LIST "" "*"`))
	for name := range all {
		st := m.mustOK(fmt.Sprintf("STATUS %q (MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)", name))
		if len(st) != 1 || !strings.HasPrefix(st[0], fmt.Sprintf("* STATUS %q (MESSAGES ", name)) || !strings.Contains(st[0], " HIGHESTMODSEQ ") {
			t.Errorf("STATUS %s: %q", name, st)
		}
	}
	// The sent copy goes to Apple's name for Sent, which the server
	// knows as an alias.
	_, tagged := m.appendSync(`"Sent Messages" (\Seen) "27-Nov-2026 05:00:00 +0100"`, clientMsg(3))
	if !strings.Contains(tagged, "OK [APPENDUID ") {
		t.Fatalf("APPEND to Sent Messages: %q", tagged)
	}
	if st := m.mustOK(`STATUS "Sent Messages" (MESSAGES UNSEEN)`); !slices.Equal(st, []string{`* STATUS "Sent Messages" (MESSAGES 1 UNSEEN 0)`}) {
		t.Errorf("STATUS of the alias after APPEND: %q", st)
	}
	m.mustOK(`EXAMINE "Sent"`)
	// The instant given, in its zone or (the PostgreSQL store keeps no
	// zone) in UTC.
	date := `INTERNALDATE "27-Nov-2026 05:00:00 +0100"`
	if teststore.Backend() == "postgres" {
		date = `INTERNALDATE "27-Nov-2026 04:00:00 +0000"`
	}
	if got := m.mustOK("UID FETCH 1 (FLAGS INTERNALDATE)"); len(got) != 1 || !strings.Contains(got[0], `FLAGS (\Seen)`) ||
		!strings.Contains(got[0], date) {
		t.Errorf("the sent copy: %q, want \\Seen and the date it was given", got)
	}

	sel := m.mustOK("SELECT INBOX (CONDSTORE)")
	if !slices.Contains(sel, "* OK [CLOSED] previous mailbox closed") {
		t.Errorf("SELECT after EXAMINE: %q, want [CLOSED]", sel)
	}
	hms := respCode(t, "HIGHESTMODSEQ", sel...)
	if got := m.mustOK("UID SEARCH 1:* NOT DELETED"); !slices.Equal(got, []string{"* SEARCH 1 2"}) {
		t.Errorf("UID SEARCH 1:* NOT DELETED: %q", got)
	}
	// .SILENT with CONDSTORE: the new MODSEQ, no flags (RFC 7162 3.1.3).
	st := m.mustOK(`UID STORE 2 +FLAGS.SILENT (\Seen)`)
	if len(st) != 1 || !strings.HasPrefix(st[0], "* 2 FETCH (UID 2 MODSEQ (") || strings.Contains(st[0], "FLAGS") {
		t.Errorf("UID STORE +FLAGS.SILENT: %q", st)
	}
	// STATUS of the selected mailbox agrees with it.
	got := m.mustOK(`STATUS "INBOX" (MESSAGES UNSEEN HIGHESTMODSEQ)`)
	if len(got) != 1 || !strings.HasPrefix(got[0], `* STATUS "INBOX" (MESSAGES 2 UNSEEN 1 HIGHESTMODSEQ `) {
		t.Errorf("STATUS of the selected INBOX: %q", got)
	} else if ms, _ := strconv.ParseUint(strings.TrimSuffix(got[0][strings.LastIndexByte(got[0], ' ')+1:], ")"), 10, 64); ms <= hms {
		t.Errorf("STATUS of the selected INBOX: %q, HIGHESTMODSEQ not past %d", got, hms)
	}

	// IDLE, DONE to send something, IDLE again: each IDLE hears what
	// came meanwhile.
	for round, n := range []int{4, 5} {
		m.idle("i")
		e.deliver("INBOX", clientMsg(n))
		if l := m.readLine(); l != fmt.Sprintf("* %d EXISTS", n-1) {
			t.Errorf("IDLE %d: %q, want the new message", round, l)
		}
		m.write("DONE\r\n")
		if untagged, tagged := m.readUntil("i"); tagged != "i OK IDLE completed" || len(untagged) > 0 {
			t.Errorf("DONE %d: %q %q", round, untagged, tagged)
		}
		m.mustOK(fmt.Sprintf("UID FETCH %d:* (FLAGS)", n-1))
	}
}

// TestClientsOutlook replays Outlook's IMAP side: LIST "" "*" and its own
// folder names, delete as UID COPY to "Deleted Items", UID STORE \Deleted
// and UID EXPUNGE, STATUS of the special folders, and a second
// connection that polls the same mailbox with NOOP.
func TestClientsOutlook(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	for n := 1; n <= 3; n++ {
		e.deliver("INBOX", clientMsg(n))
	}
	o := e.dial()
	o.mustOK(`LOGIN "` + testUser + `" "` + testPass + `"`)
	all := listed(t, o.mustOK(`LIST "" "*"`))
	if _, ok := all["INBOX"]; !ok {
		t.Fatalf(`LIST "" "*": %v`, all)
	}
	for _, name := range []string{"Sent Items", "Deleted Items", "Junk E-mail"} {
		if _, tagged := o.cmd(fmt.Sprintf("CREATE %q", name)); !strings.Contains(tagged, "[ALREADYEXISTS]") {
			t.Errorf("CREATE %s: %q, want ALREADYEXISTS: it stands for the special folder", name, tagged)
		}
	}
	poll := e.login()
	poll.mustOK(`SELECT "INBOX"`)

	o.mustOK(`SELECT "INBOX"`)
	if got := o.mustOK("UID FETCH 1:* (UID FLAGS)"); len(got) != 3 {
		t.Errorf("UID FETCH 1:*: %q", got)
	}
	if got := o.mustOK("UID FETCH 2 (UID RFC822.SIZE BODY.PEEK[])"); len(got) != 1 || strings.Contains(got[0], `\Seen`) {
		t.Errorf("BODY.PEEK[]: %q", got)
	}
	o.mustOK(`UID STORE 2 +FLAGS (\Seen)`)
	if got := o.mustOK(`UID COPY 2 "Deleted Items"`); len(got) != 0 {
		t.Errorf("UID COPY: %q", got)
	}
	if got := o.mustOK(`UID STORE 2 +FLAGS (\Deleted)`); !slices.Equal(got, []string{`* 2 FETCH (UID 2 FLAGS (\Seen \Deleted))`}) {
		t.Errorf("UID STORE \\Deleted: %q", got)
	}
	if got := o.mustOK("UID EXPUNGE 2"); !slices.Equal(got, []string{"* 2 EXPUNGE"}) {
		t.Errorf("UID EXPUNGE 2: %q", got)
	}
	if got := o.mustOK(`STATUS "Deleted Items" (MESSAGES UNSEEN)`); !slices.Equal(got, []string{`* STATUS "Deleted Items" (MESSAGES 1 UNSEEN 0)`}) {
		t.Errorf("STATUS of Deleted Items: %q", got)
	}
	// The polling connection learns of both at its next NOOP, the flag
	// change first: it had message 2.
	if got := poll.mustOK("NOOP"); !slices.Equal(got, []string{`* 2 FETCH (FLAGS (\Seen \Deleted))`, "* 2 EXPUNGE"}) &&
		!slices.Equal(got, []string{"* 2 EXPUNGE"}) {
		t.Errorf("NOOP of the polling connection: %q", got)
	}
	if got := poll.mustOK("UID FETCH 1:* (UID)"); !slices.Equal(got, []string{"* 1 FETCH (UID 1)", "* 2 FETCH (UID 3)"}) {
		t.Errorf("after the poll: %q", got)
	}
	// The copy is in Trash under Outlook's name, as read.
	o.mustOK(`SELECT "Deleted Items"`)
	if got := o.mustOK("UID FETCH 1:* (UID FLAGS)"); !slices.Equal(got, []string{`* 1 FETCH (UID 1 FLAGS (\Seen))`}) {
		t.Errorf("Deleted Items: %q", got)
	}
	o.mustOK("CHECK")
}

// TestClientsPhones replays K-9, FairEmail and the Gmail app against IMAP:
// COMPRESS is covered in compress_test.go; here, ENABLE QRESYNC, a SELECT
// with the UIDs the phone holds after another device changed the mailbox,
// and UID MOVE.
func TestClientsPhones(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	for n := 1; n <= 5; n++ {
		e.deliver("INBOX", clientMsg(n))
	}
	phone := e.login()
	phone.mustOK(`ID ("name" "FairEmail" "version" "1.2250")`)
	phone.mustOK("ENABLE QRESYNC")
	sel := phone.mustOK("SELECT INBOX")
	uv, hms := respCode(t, "UIDVALIDITY", sel...), respCode(t, "HIGHESTMODSEQ", sel...)
	phone.mustOK("UID FETCH 1:* (FLAGS)")
	phone.mustOK("LOGOUT")

	// Meanwhile, on the desktop.
	desk := e.login()
	desk.mustOK("SELECT INBOX")
	desk.mustOK(`UID STORE 2 +FLAGS.SILENT (\Seen)`)
	desk.mustOK("UID MOVE 3 Trash")
	desk.mustOK(`UID STORE 4 +FLAGS.SILENT (\Deleted)`)
	desk.mustOK("UID EXPUNGE 4")
	e.deliver("INBOX", clientMsg(6))

	phone = e.login()
	phone.mustOK("ENABLE QRESYNC")
	sel = phone.mustOK(fmt.Sprintf("SELECT INBOX (QRESYNC (%d %d 1:5))", uv, hms))
	if got := withPrefix(sel, "* VANISHED"); !slices.Equal(got, []string{"* VANISHED (EARLIER) 3:4"}) {
		t.Errorf("QRESYNC: %q, want VANISHED (EARLIER) 3:4", got)
	}
	fetches := withPrefix(sel, "* ")
	var changed []string
	for _, l := range fetches {
		if strings.Contains(l, " FETCH ") {
			u, _ := fetchValue(l, "UID")
			fl, _ := fetchValue(l, "FLAGS")
			changed = append(changed, u+":"+fl)
		}
	}
	if !slices.Equal(changed, []string{`2:\Seen`, "6:"}) {
		t.Errorf("QRESYNC FETCHes: %q (from %q)", changed, sel)
	}
	if respCode(t, "UIDNEXT", sel...) != 7 || !slices.Contains(sel, "* 4 EXISTS") {
		t.Errorf("QRESYNC SELECT: %q", sel)
	}
	// A UID MOVE with QRESYNC: COPYUID, then VANISHED, not EXPUNGE.
	mv := phone.mustOK("UID MOVE 6 Archive")
	if len(mv) != 2 || !strings.HasPrefix(mv[0], "* OK [COPYUID ") || mv[1] != "* VANISHED 6" {
		t.Errorf("UID MOVE with QRESYNC: %q", mv)
	}
}

// TestClientsMutt replays mutt and neomutt: the delimiter probe, LSUB,
// the header fetch of their index, a message fetched without
// parentheses, flags synced with .SILENT on leaving, EXPUNGE, and the
// STATUS of mailboxes it watches.
func TestClientsMutt(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	for n := 1; n <= 3; n++ {
		e.deliver("INBOX", clientMsg(n))
	}
	mu := e.login()
	if got := mu.mustOK(`LIST "" ""`); !slices.Equal(got, []string{`* LIST (\Noselect) "/" ""`}) {
		t.Errorf(`LIST "" "": %q`, got)
	}
	lsub := listed(t, mu.mustOK(`LSUB "" "*"`))
	for _, name := range []string{"INBOX", "Sent", "Trash", "Drafts"} {
		if _, ok := lsub[name]; !ok {
			t.Errorf("LSUB lacks %s: %v", name, lsub)
		}
	}
	mu.mustOK(`SELECT "INBOX"`)
	idx := mu.mustOK(`UID FETCH 1:3 (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (DATE FROM SENDER SUBJECT TO CC MESSAGE-ID REFERENCES CONTENT-TYPE CONTENT-DESCRIPTION IN-REPLY-TO REPLY-TO LINES LIST-POST X-LABEL X-ORIGINAL-TO)])`)
	if len(idx) != 3 || !strings.Contains(idx[0], "INTERNALDATE ") || !strings.Contains(idx[0], "Message-ID: <m1@example.org>") {
		t.Errorf("the index fetch: %q", idx)
	}
	if got := mu.mustOK("UID FETCH 2 BODY.PEEK[]"); len(got) != 1 || !strings.HasSuffix(got[0], "Body 2.\r\n)") {
		t.Errorf("UID FETCH 2 BODY.PEEK[]: %q", got)
	}
	// Leaving the mailbox: flags changed locally go out silently.
	if got := mu.mustOK(`UID STORE 2 +FLAGS.SILENT (\Seen)`); len(got) != 0 {
		t.Errorf(".SILENT answered %q", got)
	}
	mu.mustOK(`UID STORE 1,3 +FLAGS.SILENT (\Deleted)`)
	mu.mustOK(`UID COPY 3 "Trash"`)
	if got := mu.mustOK("EXPUNGE"); !slices.Equal(got, []string{"* 1 EXPUNGE", "* 2 EXPUNGE"}) {
		t.Errorf("EXPUNGE of 1 and 3: %q, each number as it is when sent", got)
	}
	if got := mu.mustOK(`STATUS "Trash" (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)`); len(got) != 1 ||
		!strings.HasPrefix(got[0], `* STATUS "Trash" (MESSAGES 1 RECENT 0 UIDNEXT 2 UIDVALIDITY `) {
		t.Errorf("STATUS Trash: %q", got)
	}
	mu.mustOK("CLOSE")
}

// TestClientsEvolution replays Evolution's camel-imapx: ENABLE of both
// CONDSTORE and QRESYNC in one command, LIST with every return option
// (STATUS too, so that it needs no STATUS per folder), and SELECT QRESYNC
// with known UIDs and the sequence match data.
func TestClientsEvolution(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	for n := 1; n <= 4; n++ {
		e.deliver("INBOX", clientMsg(n))
	}
	ev := e.login()
	ev.mustOK(`ID ("name" "Evolution" "version" "3.50.2")`)
	if got := ev.mustOK("ENABLE CONDSTORE QRESYNC"); !slices.Equal(got, []string{"* ENABLED CONDSTORE QRESYNC"}) {
		t.Errorf("ENABLE CONDSTORE QRESYNC: %q", got)
	}
	list := ev.mustOK(`LIST "" "*" RETURN (SUBSCRIBED CHILDREN SPECIAL-USE STATUS (MESSAGES UNSEEN UIDVALIDITY UIDNEXT HIGHESTMODSEQ))`)
	for i, l := range list {
		if !strings.HasPrefix(l, "* LIST ") {
			continue
		}
		name := l[strings.LastIndex(l, `"/" `)+4:]
		if i+1 >= len(list) || !strings.HasPrefix(list[i+1], "* STATUS "+name+" (MESSAGES ") || !strings.Contains(list[i+1], "HIGHESTMODSEQ") {
			t.Errorf("LIST-STATUS: %q is not followed by its STATUS", l)
		}
	}
	if l := listed(t, list); !slices.Contains(l["INBOX"], `\Subscribed`) || !slices.Contains(l["Trash"], `\Trash`) {
		t.Errorf("LIST RETURN (SUBSCRIBED SPECIAL-USE): %v", l)
	}
	sel := ev.mustOK("SELECT INBOX")
	uv, hms := respCode(t, "UIDVALIDITY", sel...), respCode(t, "HIGHESTMODSEQ", sel...)
	ev.mustOK(`UID STORE 1 +FLAGS.SILENT (\Deleted)`)
	ev.mustOK("UID EXPUNGE 1")
	ev.mustOK(`UID STORE 3 +FLAGS.SILENT (\Seen)`)
	ev.mustOK("UNSELECT")
	sel = ev.mustOK(fmt.Sprintf("SELECT INBOX (QRESYNC (%d %d 1:4 (1,4 1,4)))", uv, hms))
	if got := withPrefix(sel, "* VANISHED"); !slices.Equal(got, []string{"* VANISHED (EARLIER) 1"}) {
		t.Errorf("VANISHED: %q", got)
	}
	if got := withPrefix(sel, "* 2 FETCH"); len(got) != 1 || !strings.HasPrefix(got[0], `* 2 FETCH (UID 3 FLAGS (\Seen) MODSEQ (`) {
		t.Errorf("FETCH of the change: %q", sel)
	}
}

// TestClientsRoundcube replays Roundcube, which lists a folder with SORT
// (RFC 5256; DISPLAYFROM and DISPLAYTO where SORT=DISPLAY, RFC 5957, is
// offered; as SORT RETURN (ALL), answered with ESEARCH, where ESORT, RFC
// 5267, is) and threads it with THREAD, by the first algorithm offered of
// REFS (Dovecot's own), REFERENCES and ORDEREDSUBJECT: SORT and THREAD
// REFERENCES answer, and REFS, which is not offered, gets BAD and a
// session that goes on.
func TestClientsRoundcube(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.deliver("INBOX", clientMsg(1))
	rc := e.dial()
	caps := rc.mustOK("CAPABILITY")
	rc.mustOK(`ID ("name" "Roundcube" "version" "1.6.9" "php" "8.2.7" "os" "Linux")`)
	_, tagged := rc.cmd("LOGIN " + testUser + " " + testPass)
	var offered []string
	for _, c := range append(caps, tagged) {
		for _, capa := range strings.Fields(strings.NewReplacer("[", " ", "]", " ").Replace(c)) {
			if strings.HasPrefix(capa, "SORT") || strings.HasPrefix(capa, "THREAD") || capa == "ESORT" {
				offered = append(offered, capa)
			}
		}
	}
	if want := []string{"SORT", "SORT=DISPLAY", "ESORT", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES"}; !slices.Equal(offered, want) {
		t.Errorf("SORT and THREAD capabilities after login: %q, want %q", offered, want)
	}
	rc.mustOK(`SELECT "INBOX"`)
	for cmd, want := range map[string]string{
		"SORT (ARRIVAL) UTF-8 ALL":                 "* SORT 1",
		"UID SORT (REVERSE DATE) UTF-8 ALL":        "* SORT 1",
		"UID SORT (DISPLAYFROM) UTF-8 NOT DELETED": "* SORT 1",
		"UID THREAD REFERENCES US-ASCII ALL":       "* THREAD (1)",
		"THREAD REFERENCES US-ASCII UNDELETED":     "* THREAD (1)",
	} {
		if got := rc.mustOK(cmd); !slices.Equal(got, []string{want}) {
			t.Errorf("%s: %q, want %q", cmd, got, want)
		}
	}
	if got := rc.mustOK("UID SORT RETURN (ALL) (REVERSE ARRIVAL) UTF-8 ALL"); len(got) != 1 ||
		!strings.HasPrefix(got[0], "* ESEARCH (TAG ") || !strings.HasSuffix(got[0], ") UID ALL 1") {
		t.Errorf("UID SORT RETURN (ALL): %q, want one ESEARCH", got)
	}
	for _, cmd := range []string{"THREAD REFS UTF-8 ALL", "UID THREAD REFS US-ASCII ALL"} {
		if untagged, tagged := rc.cmd(cmd); !strings.Contains(tagged, " BAD ") || len(untagged) > 0 {
			t.Errorf("%s: %q %q, want BAD alone", cmd, untagged, tagged)
		}
	}
	// The session is still in INBOX.
	if got := rc.mustOK("UID FETCH 1:* (UID INTERNALDATE)"); len(got) != 1 {
		t.Errorf("after the BADs: %q", got)
	}
	if got := rc.mustOK("GETQUOTAROOT INBOX"); !slices.Equal(got, []string{`* QUOTAROOT "INBOX"`}) {
		t.Errorf("GETQUOTAROOT: %q", got)
	}
	rc.mustOK(`UID STORE 1 +FLAGS.SILENT (\Seen)`)
	if got := rc.mustOK(`UID MOVE 1 "Trash"`); len(got) != 2 || got[1] != "* 1 EXPUNGE" {
		t.Errorf("UID MOVE: %q", got)
	}
}

// TestClientsK9CompressIdle replays K-9's push connection: COMPRESS
// DEFLATE right after login, INBOX selected, IDLE. Mail delivered and a
// message deleted from another device reach it through the compressed
// stream while it idles, and the stream survives the wake-ups.
func TestClientsK9CompressIdle(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.deliver("INBOX", clientMsg(1))
	k9 := e.login()
	k9.mustOK("COMPRESS DEFLATE")
	_ = k9.nc.SetDeadline(time.Now().Add(30 * time.Second))
	w, _ := flate.NewWriter(k9.nc, flate.DefaultCompression)
	z := &flateConn{w: w, br: bufio.NewReader(flate.NewReader(k9.br))}
	if out := z.cmd(t, "2", "SELECT INBOX"); !slices.Contains(out, "* 1 EXISTS") {
		t.Fatalf("SELECT over DEFLATE: %q", out)
	}
	read := func() string {
		t.Helper()
		l, err := z.br.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return strings.TrimSuffix(l, "\r\n")
	}
	send := func(s string) {
		t.Helper()
		if _, err := io.WriteString(w, s); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	send("3 IDLE\r\n")
	if l := read(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("IDLE: %q", l)
	}
	e.deliver("INBOX", clientMsg(2))
	if l := read(); l != "* 2 EXISTS" {
		t.Errorf("new mail in IDLE over DEFLATE: %q", l)
	}
	other := e.login()
	other.mustOK("SELECT INBOX")
	other.mustOK("UID MOVE 1 Trash")
	if l := read(); l != "* 1 EXPUNGE" {
		t.Errorf("a move elsewhere in IDLE over DEFLATE: %q", l)
	}
	send("DONE\r\n")
	if l := read(); l != "3 OK IDLE completed" {
		t.Errorf("DONE: %q", l)
	}
	if out := z.cmd(t, "4", "UID FETCH 1:* (UID FLAGS)"); !slices.Equal(out, []string{"* 1 FETCH (UID 2 FLAGS ())", "4 OK UID FETCH completed"}) {
		t.Errorf("after IDLE: %q", out)
	}
}
