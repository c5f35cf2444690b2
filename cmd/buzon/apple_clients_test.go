package main

// Apple Mail, as the iPhone and the Mac run it against an IMAP server
// that is not iCloud.

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// The header fields Apple Mail asks for when it lists messages, spelt as
// it spells them (lower case). It matches the answer to its request by
// the section name, so the name must come back.
const clAppleHeaders = "date subject from to cc message-id in-reply-to references content-type x-priority " +
	"x-uniform-type-identifier x-universally-unique-identifier list-id list-unsubscribe"

var clInternalDateRE = regexp.MustCompile(`^[ 0-3]\d-(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)-\d{4} \d\d:\d\d:\d\d [-+]\d{4}$`)

// TestAppleMailIOS replays the iPhone's Mail app over IMAPS: ID with its
// fields before login, AUTHENTICATE PLAIN, COMPRESS DEFLATE, folder
// discovery with LIST "" "" then "*" and "%" (and XLIST, which it tries and
// does without), NAMESPACE pipelined with LIST, SELECT INBOX, UID SEARCH
// 1:* NOT DELETED, the message list fetch with BODYSTRUCTURE and
// INTERNALDATE, previews as partial fetches of the first text part, IDLE
// over the compressed stream, and deleting with MOVE to "Deleted Messages"
// and sending to "Sent Messages", the names Apple Mail uses.
func TestAppleMailIOS(t *testing.T) {
	t.Parallel()
	const user = "fay@example.org"
	in := clServer(t, user)
	msgs := []string{clPlainMsg, clAppleMsg, clLongMsg, clIntlMsg}
	clDeliver(t, in, user, msgs...)
	other := clDial(t, in, "imap", "other client", "o%d")
	other.ok("LOGIN " + user + " " + clPass)
	other.ok(`CREATE "Projects/2025"`)
	other.ok("SELECT INBOX")
	// Marked deleted elsewhere, not expunged: the iPhone hides it.
	other.ok(`UID STORE 4 +FLAGS.SILENT (\Deleted)`)

	ios := clDial(t, in, "imaps", "iPhone Mail", "%d")
	caps := clCaps(t, ios.greeting)
	clRequire(t, "iPhone Mail (greeting)", caps, "IMAP4REV1", "AUTH=PLAIN", "ID")
	ios.ok(`ID ("name" "iPhone Mail" "version" "21D61" "os" "iOS" "os-version" "17.3.1 (21D61)")`)
	auth := ios.ok("AUTHENTICATE PLAIN " + clPlainIR(user))
	caps = clCaps(t, auth.text)
	clRequire(t, "iPhone Mail (after login)", caps, "COMPRESS=DEFLATE", "IDLE", "UIDPLUS", "MOVE", "NAMESPACE", "CONDSTORE")
	ios.compress()
	if caps := clCaps(t, ios.ok("CAPABILITY").untagged[0]); caps["COMPRESS=DEFLATE"] {
		t.Errorf("COMPRESS=DEFLATE still offered with compression on (RFC 4978 3)")
	}

	// The hierarchy delimiter first.
	if l := ios.ok(`LIST "" ""`); !slices.Contains(l.untagged, `* LIST (\Noselect) "/" ""`) {
		t.Errorf(`LIST "" "": %q`, l.untagged)
	}
	// NAMESPACE and LIST pipelined, as iOS sends them.
	nsTag := ios.start("NAMESPACE")
	listTag := ios.start(`LIST "" "*"`)
	ns := ios.finish(nsTag)
	list := ios.finish(listTag)
	if ns.status != "OK" || !slices.Contains(ns.untagged, `* NAMESPACE (("" "/")) NIL NIL`) {
		t.Errorf("pipelined NAMESPACE: %q", ns.all())
	}
	if list.status != "OK" {
		t.Fatalf("pipelined LIST: %q", list.text)
	}
	all := clLists(t, "LIST", list.untagged)
	for name, use := range map[string]string{"Sent": `\Sent`, "Trash": `\Trash`, "Drafts": `\Drafts`, "Junk": `\Junk`, "Archive": `\Archive`} {
		if !all[name].has(use) {
			t.Errorf(`LIST "" "*": %s lacks %s (Apple Mail maps folders by it): %+v`, name, use, all[name])
		}
	}
	for _, name := range []string{"INBOX", "Projects", "Projects/2025"} {
		if _, ok := all[name]; !ok {
			t.Errorf(`LIST "" "*" lacks %s`, name)
		}
	}
	top := clLists(t, "LIST", ios.ok(`LIST "" "%"`).untagged)
	if _, ok := top["Projects/2025"]; ok || !top["Projects"].has(`\HasChildren`) {
		t.Errorf(`LIST "" "%%" must stop at the delimiter and say Projects has children: %+v`, top)
	}
	sub := clLists(t, "LIST", ios.ok(`LIST "Projects/" "%"`).untagged)
	if _, ok := sub["Projects/2025"]; !ok || len(sub) != 1 {
		t.Errorf(`LIST "Projects/" "%%": %+v`, sub)
	}
	// XLIST, Gmail's old command: not offered, refused, and the session
	// goes on (Apple Mail then uses LIST).
	if caps["XLIST"] {
		t.Errorf("XLIST offered")
	}
	if x := ios.cmd(`XLIST "" "*"`); x.status != "BAD" && x.status != "NO" {
		t.Errorf("XLIST: %q", x.all())
	}

	sel := ios.ok("SELECT INBOX")
	if !slices.Contains(sel.untagged, "* 4 EXISTS") {
		t.Errorf("SELECT INBOX: %q", sel.untagged)
	}
	if clCodeValue(t, sel.untagged, "UIDVALIDITY") == 0 {
		t.Errorf("SELECT INBOX: UIDVALIDITY 0")
	}
	live := clSearch(t, ios.ok("UID SEARCH 1:* NOT DELETED").untagged)
	if !slices.Equal(live, []int64{1, 2, 3}) {
		t.Errorf("UID SEARCH 1:* NOT DELETED: %v, want [1 2 3]", live)
	}
	if deleted := clSearch(t, ios.ok("UID SEARCH 1:* DELETED").untagged); !slices.Equal(deleted, []int64{4}) {
		t.Errorf("UID SEARCH 1:* DELETED: %v, want [4]", deleted)
	}

	// The message list.
	res := ios.ok("UID FETCH 1:3 (FLAGS UID RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (" + clAppleHeaders + ")] BODYSTRUCTURE)")
	clNoExpunge(t, "iPhone Mail", "UID FETCH", res.untagged)
	listing := clByUID(t, clFetches(t, "iPhone Mail", res.untagged))
	for uid := int64(1); uid <= 3; uid++ {
		f, ok := listing[uid]
		if !ok {
			t.Fatalf("message list lacks UID %d", uid)
		}
		msg := msgs[uid-1]
		if f.items["RFC822.SIZE"].num() != int64(len(msg)) {
			t.Errorf("UID %d: RFC822.SIZE %v, want %d", uid, f.items["RFC822.SIZE"], len(msg))
		}
		if d := f.items["INTERNALDATE"]; d.str == nil || !clInternalDateRE.MatchString(*d.str) {
			t.Errorf("UID %d: INTERNALDATE %v is not a quoted date-time", uid, d)
		}
		if !f.items["BODYSTRUCTURE"].isList {
			t.Errorf("UID %d: BODYSTRUCTURE %v", uid, f.items["BODYSTRUCTURE"])
		}
		h, ok := f.section("BODY[HEADER.FIELDS (" + clAppleHeaders + ")]")
		if !ok {
			t.Fatalf("UID %d: the header fields come back under another name than asked for: %v", uid, f.order)
		}
		if want := clFilterHeader(msg, strings.Fields(clAppleHeaders)); h != want {
			t.Errorf("UID %d: header fields %q, want %q", uid, h, want)
		}
	}

	// Previews: the first 10 KB of the text part; the rest on opening.
	prev := clFetches(t, "iPhone Mail", ios.ok("UID FETCH 3 (BODY.PEEK[1]<0.10240>)").untagged)
	body := strings.SplitN(clLongMsg, "\r\n\r\n", 2)[1]
	if len(prev) != 1 || prev[0].uid() != 3 {
		t.Fatalf("partial fetch: %+v", prev)
	}
	if got, ok := prev[0].section("BODY[1]<0>"); !ok || got != body[:10240] {
		t.Errorf("BODY[1]<0.10240> of a single-part message: %d bytes (%v), want its first 10240 body bytes", len(got), ok)
	}
	rest := clFetches(t, "iPhone Mail", ios.ok("UID FETCH 3 (BODY.PEEK[1]<10240.1048576>)").untagged)
	if got, ok := rest[0].section("BODY[1]<10240>"); !ok || got != body[10240:] {
		t.Errorf("BODY[1]<10240.1048576>: %d bytes (%v), want the remaining %d", len(got), ok, len(body)-10240)
	}
	// A partial fetch past the end is an empty string, not an error.
	if past := clFetches(t, "iPhone Mail", ios.ok("UID FETCH 1 (BODY.PEEK[1]<100000.10240>)").untagged); len(past) != 1 {
		t.Errorf("partial fetch past the end: %+v", past)
	} else if got, ok := past[0].section("BODY[1]<100000>"); !ok || got != "" {
		t.Errorf("partial fetch past the end: %q %v", got, ok)
	}
	// The HTML part and the inline image of the photo message.
	parts := clFetches(t, "iPhone Mail", ios.ok("UID FETCH 2 (BODY.PEEK[1.MIME] BODY.PEEK[1] BODY.PEEK[2])").untagged)
	if html, _ := parts[0].section("BODY[1]"); !strings.HasPrefix(html, `<html><body><img src=3D"cid:hike@icloud.example">`) {
		t.Errorf("BODY[1] of the photo message: %q", html)
	}
	if img, _ := parts[0].section("BODY[2]"); img != clBase64(clBlob(30<<10)) {
		t.Errorf("BODY[2], the inline image: %d bytes", len(img))
	}
	// Opening a message marks it read; .SILENT asks for no FETCH back.
	if st := ios.ok(`UID STORE 2 +FLAGS.SILENT (\Seen)`); len(clFetches(t, "iPhone Mail", st.untagged)) != 0 {
		t.Errorf("STORE .SILENT without CONDSTORE answered with FETCH: %q", st.untagged)
	}

	// IDLE over the compressed stream: each update must be flushed.
	ios.idle()
	clDeliver(t, in, user, clMixedMsg)
	ios.await(regexp.MustCompile(`^\* 5 EXISTS$`), 5*time.Second)
	other.ok(`UID STORE 1 +FLAGS (\Flagged)`)
	got := ios.await(regexp.MustCompile(`^\* 1 FETCH `), 5*time.Second)
	if f, err := clParseFetch(got[len(got)-1]); err != nil || !f.hasFlag(`\Flagged`) {
		t.Errorf("flag change during IDLE: %q %v", got, err)
	}
	ios.done()
	newest := clByUID(t, clFetches(t, "iPhone Mail", ios.ok("UID FETCH 5:* (FLAGS UID RFC822.SIZE INTERNALDATE BODYSTRUCTURE)").untagged))
	if newest[5].items["RFC822.SIZE"].num() != int64(len(clMixedMsg)) {
		t.Errorf("new message after IDLE: %+v", newest)
	}

	// Deleting on the iPhone: MOVE to "Deleted Messages", which is Trash
	// here; Trash gains it and no other folder appears.
	mv := ios.ok(`UID MOVE 1 "Deleted Messages"`)
	if len(clFind(mv.untagged, "* OK [COPYUID ")) != 1 || !slices.Contains(mv.untagged, "* 1 EXPUNGE") {
		t.Errorf(`UID MOVE to "Deleted Messages": %q`, mv.all())
	}
	// Sending: the copy goes to "Sent Messages", which is Sent.
	sent := clMsg("From: Fay <fay@example.org>", "To: carol@example.net", "Subject: Re: Lunch on Friday?",
		"Date: Mon, 03 Feb 2025 12:00:00 +0100", "Message-ID: <ios-7@example.org>", "X-Mailer: iPhone Mail (21D61)",
		"Mime-Version: 1.0 (1.0)", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 7bit", "", "See you there")
	if app := ios.appendMsg(`"Sent Messages"`, `(\Seen)`, sent, false); app.status != "OK" || !strings.HasPrefix(clCode(app.text), "APPENDUID ") {
		t.Errorf(`APPEND to "Sent Messages": %q`, app.text)
	}
	// The answers carry the names asked, the counts of Trash and Sent.
	st := clStatus(t, ios.ok(`STATUS "Deleted Messages" (MESSAGES UNSEEN)`).untagged)
	if st["Deleted Messages"]["MESSAGES"] != 1 {
		t.Errorf(`STATUS "Deleted Messages" answers for Trash: %v`, st)
	}
	st = clStatus(t, ios.ok(`STATUS "Sent Messages" (MESSAGES)`).untagged)
	if st["Sent Messages"]["MESSAGES"] != 1 {
		t.Errorf(`STATUS "Sent Messages" answers for Sent: %v`, st)
	}
	after := clLists(t, "LIST", ios.ok(`LIST "" "*"`).untagged)
	for _, name := range []string{"Deleted Messages", "Sent Messages"} {
		if _, ok := after[name]; ok {
			t.Errorf("a folder %q appeared", name)
		}
	}
	ios.ok("NOOP")
	ios.ok("LOGOUT")

	// go-imap's client parses the same message list and preview.
	gm := clGoFetch(t, in, user, "INBOX", []imap.UID{2, 3}, &imap.FetchOptions{
		UID: true, Flags: true, RFC822Size: true, InternalDate: true,
		BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		BodySection: []*imap.FetchItemBodySection{
			{Specifier: imap.PartSpecifierHeader, HeaderFields: strings.Fields(clAppleHeaders), Peek: true},
			{Part: []int{1}, Partial: &imap.SectionPartial{Offset: 0, Size: 10240}, Peek: true},
		},
	})
	if m := gm[3]; m == nil || m.RFC822Size != int64(len(clLongMsg)) || m.InternalDate.IsZero() || m.BodyStructure == nil || len(m.BodySection) != 2 {
		t.Errorf("go-imap reads the message list differently: %+v", m)
	} else {
		for _, s := range m.BodySection {
			if s.Section.Partial != nil && string(s.Bytes) != body[:10240] {
				t.Errorf("go-imap reads the preview differently: %d bytes", len(s.Bytes))
			}
		}
	}
	if m := gm[2]; m == nil {
		t.Errorf("go-imap: no UID 2")
	} else if mp, ok := m.BodyStructure.(*imap.BodyStructureMultiPart); !ok || !strings.EqualFold(mp.Subtype, "related") || len(mp.Children) != 2 {
		t.Errorf("go-imap reads the photo message's BODYSTRUCTURE as %#v", m.BodyStructure)
	} else if img, ok := mp.Children[1].(*imap.BodyStructureSinglePart); !ok || !strings.EqualFold(img.Type, "image") || img.ID != "<hike@icloud.example>" {
		t.Errorf("go-imap reads the inline image as %#v", mp.Children[1])
	}
}

// TestAppleMailMac replays Mail on the Mac, which uses CONDSTORE and
// QRESYNC where offered: ENABLE QRESYNC, SELECT with QRESYNC on later
// visits, flag sync with CHANGEDSINCE, drafts replaced as the user types
// (APPEND a new version, delete and UID EXPUNGE the old), and IDLE.
func TestAppleMailMac(t *testing.T) {
	t.Parallel()
	const user = "gus@example.org"
	in := clServer(t, user)
	clDeliver(t, in, user, clPlainMsg, clIntlMsg)

	mac := clDial(t, in, "imaps", "Mac Mail", "%d")
	mac.ok(`ID ("name" "Mac OS X Mail" "version" "16.0 (3774.400.31)" "os" "Mac OS X" "os-version" "14.3 (23D56)" "vendor" "Apple Inc.")`)
	mac.ok("AUTHENTICATE PLAIN " + clPlainIR(user))
	if en := mac.ok("ENABLE QRESYNC"); !slices.Contains(en.untagged, "* ENABLED QRESYNC") {
		t.Fatalf("ENABLE QRESYNC: %q", en.all())
	}
	sel := mac.ok("SELECT INBOX (CONDSTORE)")
	uidValidity := clCodeValue(t, sel.untagged, "UIDVALIDITY")
	modSeq := clCodeValue(t, sel.untagged, "HIGHESTMODSEQ")
	mac.ok("UID FETCH 1:* (FLAGS UID RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (" + clAppleHeaders + ")])")

	// Drafts: each autosave appends a new version and removes the old.
	mac.ok("UNSELECT")
	var lastUID string
	for i, text := range []string{"Hi Carol,", "Hi Carol, lunch", "Hi Carol, lunch on Friday works."} {
		draft := clMsg("From: Gus <gus@example.org>", "To: carol@example.net", "Subject: Lunch",
			"X-Uniform-Type-Identifier: com.apple.mail-draft", "X-Universally-Unique-Identifier: 5C3E1E9A-0001",
			"Mime-Version: 1.0 (Mac OS X Mail 16.0)", "Content-Type: text/plain; charset=us-ascii", "", text)
		app := mac.appendMsg("Drafts", `(\Seen \Draft)`, draft, false)
		code := strings.Fields(clCode(app.text))
		if app.status != "OK" || len(code) != 3 || code[0] != "APPENDUID" {
			t.Fatalf("APPEND draft %d: %q", i, app.text)
		}
		if lastUID != "" {
			mac.ok("SELECT Drafts")
			mac.ok(`UID STORE ` + lastUID + ` +FLAGS.SILENT (\Deleted)`)
			mac.ok("UID EXPUNGE " + lastUID)
			mac.ok("UNSELECT")
		}
		lastUID = code[2]
	}
	drafts := clStatus(t, mac.ok("STATUS Drafts (MESSAGES UIDNEXT)").untagged)["Drafts"]
	if drafts["MESSAGES"] != 1 || drafts["UIDNEXT"] != 4 {
		t.Errorf("Drafts after three autosaves: %v", drafts)
	}
	mac.ok("LOGOUT")

	// While the Mac sleeps, the phone reads one message and deletes the
	// other.
	phone := clDial(t, in, "imaps", "iPhone Mail", "%d")
	phone.ok("AUTHENTICATE PLAIN " + clPlainIR(user))
	phone.ok("SELECT INBOX")
	phone.ok(`UID STORE 1 +FLAGS (\Seen)`)
	phone.ok(`UID MOVE 2 Trash`)
	phone.ok("LOGOUT")

	// The Mac wakes and resynchronises with what it remembered.
	mac = clDial(t, in, "imaps", "Mac Mail (again)", "%d")
	mac.ok("AUTHENTICATE PLAIN " + clPlainIR(user))
	mac.ok("ENABLE QRESYNC")
	resync := mac.ok(fmt.Sprintf("SELECT INBOX (QRESYNC (%d %d))", uidValidity, modSeq))
	if !slices.Contains(resync.untagged, "* VANISHED (EARLIER) 2") {
		t.Errorf("SELECT QRESYNC: no VANISHED (EARLIER) 2: %q", resync.untagged)
	}
	changed := clFetches(t, "Mac Mail", resync.untagged)
	if len(changed) != 1 || changed[0].uid() != 1 || !changed[0].hasFlag(`\Seen`) || !changed[0].items["MODSEQ"].isList {
		t.Errorf("SELECT QRESYNC: want one FETCH (UID 1 FLAGS (\\Seen) MODSEQ ...): %q", resync.untagged)
	}
	if !slices.Contains(resync.untagged, "* 1 EXISTS") {
		t.Errorf("SELECT QRESYNC: EXISTS: %q", resync.untagged)
	}
	mac.idle()
	clDeliver(t, in, user, clAppleMsg)
	mac.await(regexp.MustCompile(`^\* 2 EXISTS$`), 5*time.Second)
	mac.done()
	mac.ok("LOGOUT")
}
