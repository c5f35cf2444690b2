package main

// Thunderbird's IMAP side (nsImapProtocol), as its IMAP log shows it.

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// TestThunderbirdIMAP replays Thunderbird's IMAP side: a STARTTLS
// connection that authenticates with PLAIN, sends ID, turns on CONDSTORE
// and UTF8=ACCEPT, discovers folders with LIST-EXTENDED and SPECIAL-USE,
// syncs INBOX with CONDSTORE (flags first, then the header fields of its
// database, then whole messages in chunks and MIME parts on demand),
// marks read, deletes to Trash with MOVE and with COPY + UID EXPUNGE,
// stores a sent message in Sent, polls other folders with STATUS, and
// idles; and the second connection it opens for another folder, which
// polls with NOOP and CHECK.
func TestThunderbirdIMAP(t *testing.T) {
	t.Parallel()
	const user = "tess@example.org"
	in := clServer(t, user)
	msgs := []string{clPlainMsg, clMixedMsg, clIntlMsg}
	clDeliver(t, in, user, msgs...)
	// A folder another client created, with a non-ASCII name.
	other := clDial(t, in, "imap", "other client", "o%d")
	other.ok("LOGIN " + user + " " + clPass)
	other.ok(`CREATE "Soci&AOk-t&AOk-"`)
	other.ok(`CREATE "Lists/golang-nuts"`)

	mustBuzon(t, "", "user", "quota", user, "100M", "--data", in.data)

	tb := clDial(t, in, "imap", "Thunderbird", "%d")
	caps := clCaps(t, tb.greeting)
	clRequire(t, "Thunderbird (greeting)", caps, "IMAP4REV1", "STARTTLS")
	tb.starttls()
	// Capabilities learnt before TLS are forgotten (RFC 9051 6.2.1).
	capa := tb.ok("CAPABILITY")
	caps = clCaps(t, capa.untagged[0])
	clRequire(t, "Thunderbird (after STARTTLS)", caps, "AUTH=PLAIN", "ID", "IDLE")
	if caps["STARTTLS"] || caps["LOGINDISABLED"] {
		t.Errorf("after STARTTLS: %q", capa.untagged[0])
	}

	// "authenticate PLAIN", then the credentials after the server's "+".
	tag := tb.start("authenticate PLAIN")
	tb.continuation()
	tb.write(clPlainIR(user) + "\r\n")
	auth := tb.finish(tag)
	if auth.status != "OK" {
		t.Fatalf("AUTHENTICATE PLAIN: %s", auth.text)
	}
	// Thunderbird takes the capabilities from the tagged OK and asks no
	// more; they must name what it uses from here on.
	caps = clCaps(t, auth.text)
	clRequire(t, "Thunderbird (after login)", caps, "IMAP4REV1", "IDLE", "UIDPLUS", "MOVE",
		"CONDSTORE", "ENABLE", "UTF8=ACCEPT", "LIST-EXTENDED", "SPECIAL-USE", "NAMESPACE", "ID", "LITERAL+")

	id := tb.ok(`ID ("name" "Thunderbird" "version" "128.5.2")`)
	if ids := clFind(id.untagged, "* ID "); len(ids) != 1 {
		t.Errorf("ID: %q", id.untagged)
	} else if vals, err := clParseValues(strings.TrimPrefix(ids[0], "* ID ")); err != nil || len(vals) != 1 ||
		!(vals[0].isList && len(vals[0].list)%2 == 0 || vals[0].atom == "NIL") {
		t.Errorf("ID response %q does not parse as a field list: %v", ids[0], err)
	}
	if en := tb.ok("enable CONDSTORE"); !slices.Contains(en.untagged, "* ENABLED CONDSTORE") {
		t.Errorf("ENABLE CONDSTORE: %q", en.all())
	}
	if en := tb.ok("ENABLE UTF8=ACCEPT"); !slices.Contains(en.untagged, "* ENABLED UTF8=ACCEPT") {
		t.Errorf("ENABLE UTF8=ACCEPT: %q", en.all())
	}
	if ns := tb.ok("namespace"); !slices.Contains(ns.untagged, `* NAMESPACE (("" "/")) NIL NIL`) {
		t.Errorf("NAMESPACE: %q", ns.untagged)
	}

	// Folder discovery: subscribed folders with their special use, then
	// all of them, then LSUB as older versions do.
	specials := map[string]string{"Sent": `\Sent`, "Trash": `\Trash`, "Drafts": `\Drafts`, "Junk": `\Junk`, "Archive": `\Archive`}
	subscribed := clLists(t, "LIST", tb.ok(`list (subscribed) "" "*" return (special-use)`).untagged)
	for name, use := range specials {
		l, ok := subscribed[name]
		if !ok || !l.has(`\Subscribed`) || !l.has(use) {
			t.Errorf("LIST (SUBSCRIBED): %s is %+v, want \\Subscribed and %s", name, l, use)
		}
	}
	if l := subscribed["INBOX"]; !l.has(`\Subscribed`) || l.delim != "/" {
		t.Errorf("LIST (SUBSCRIBED): INBOX is %+v", l)
	}
	all := clLists(t, "LIST", tb.ok(`list "" "*"`).untagged)
	for _, name := range []string{"INBOX", "Sent", "Trash", "Drafts", "Junk", "Archive", "Société", "Lists", "Lists/golang-nuts"} {
		if _, ok := all[name]; !ok {
			t.Errorf(`LIST "" "*" lacks %q (UTF-8 names once UTF8=ACCEPT is on): %v`, name, slices.Sorted(maps.Keys(all)))
		}
	}
	for name, use := range specials {
		if !all[name].has(use) {
			t.Errorf(`LIST "" "*": %s lacks %s: %+v`, name, use, all[name])
		}
	}
	if !all["Lists"].has(`\HasChildren`) || !all["Lists/golang-nuts"].has(`\HasNoChildren`) {
		t.Errorf("LIST children: %+v %+v", all["Lists"], all["Lists/golang-nuts"])
	}
	lsub := clLists(t, "LSUB", tb.ok(`lsub "" "*"`).untagged)
	for _, name := range []string{"INBOX", "Sent", "Trash"} {
		if _, ok := lsub[name]; !ok {
			t.Errorf("LSUB lacks %s", name)
		}
	}
	if l := clLists(t, "LIST", tb.ok(`list "" "INBOX"`).untagged); len(l) != 1 || l["INBOX"].delim != "/" {
		t.Errorf(`list "" "INBOX": %+v`, l)
	}

	// Open INBOX with CONDSTORE.
	sel := tb.ok(`select "INBOX" (CONDSTORE)`)
	if !slices.Contains(sel.untagged, "* 3 EXISTS") || !slices.Contains(sel.untagged, "* 0 RECENT") {
		t.Errorf("SELECT: %q", sel.untagged)
	}
	if flags := clFind(sel.untagged, "* FLAGS ("); len(flags) != 1 || !strings.Contains(flags[0], `\Seen`) {
		t.Errorf("SELECT FLAGS: %q", sel.untagged)
	}
	if pf := clFind(sel.untagged, "* OK [PERMANENTFLAGS "); len(pf) != 1 || !strings.Contains(pf[0], `\*`) {
		// Without \* Thunderbird cannot store its $label and Junk keywords.
		t.Errorf("PERMANENTFLAGS lacks \\*: %q", pf)
	}
	uidValidity := clCodeValue(t, sel.untagged, "UIDVALIDITY")
	uidNext := clCodeValue(t, sel.untagged, "UIDNEXT")
	modSeq := clCodeValue(t, sel.untagged, "HIGHESTMODSEQ")
	if uidValidity == 0 || uidNext != 4 || modSeq == 0 {
		t.Errorf("SELECT: UIDVALIDITY %d UIDNEXT %d HIGHESTMODSEQ %d", uidValidity, uidNext, modSeq)
	}
	if !strings.Contains(sel.text, "[READ-WRITE]") {
		t.Errorf("SELECT: %q", sel.text)
	}

	// The quota shown in the status bar, in KiB (RFC 9208 5.1).
	quota := tb.ok(`getquotaroot "INBOX"`)
	if !slices.Contains(quota.untagged, `* QUOTAROOT "INBOX" ""`) ||
		!slices.ContainsFunc(quota.untagged, func(s string) bool {
			return strings.HasPrefix(s, `* QUOTA "" (STORAGE `) && strings.Contains(s, " 102400")
		}) {
		t.Errorf("GETQUOTAROOT: %q", quota.untagged)
	}

	// Flags of everything, then the headers of the messages it lacks.
	flags := clByUID(t, clFetches(t, "Thunderbird", tb.ok("UID fetch 1:* (FLAGS)").untagged))
	if len(flags) != 3 {
		t.Fatalf("UID fetch 1:* (FLAGS): %d messages", len(flags))
	}
	for u, f := range flags {
		if _, ok := f.items["FLAGS"]; !ok || len(f.flags()) != 0 {
			t.Errorf("UID %d: flags %v, want an empty FLAGS", u, f.items)
		}
	}
	const tbHeaders = "From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To"
	hdr := tb.ok("UID fetch 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (" + tbHeaders + ")])")
	heads := clByUID(t, clFetches(t, "Thunderbird", hdr.untagged))
	for i, msg := range msgs {
		f, ok := heads[int64(i+1)]
		if !ok {
			t.Fatalf("header fetch lacks UID %d", i+1)
		}
		if got := f.items["RFC822.SIZE"].num(); got != int64(len(msg)) {
			t.Errorf("UID %d: RFC822.SIZE %d, delivered %d bytes", i+1, got, len(msg))
		}
		h, ok := f.section("BODY[HEADER.FIELDS (" + tbHeaders + ")]")
		if !ok {
			t.Fatalf("UID %d: no BODY[HEADER.FIELDS (...)] under the name asked for: %v", i+1, f.order)
		}
		if want := clFilterHeader(msg, strings.Fields(tbHeaders)); h != want {
			t.Errorf("UID %d: header fields\n%q\nwant\n%q", i+1, h, want)
		}
		if f.hasFlag(`\Seen`) {
			t.Errorf("UID %d: BODY.PEEK set \\Seen", i+1)
		}
	}

	// Opening a message: MIME structure first, then the parts shown, then
	// (for a large message) the whole of it in 250000-byte chunks,
	// mail.imap.chunk_size.
	bs := clFetches(t, "Thunderbird", tb.ok("UID fetch 2 (UID RFC822.SIZE BODYSTRUCTURE)").untagged)
	if len(bs) != 1 || !bs[0].items["BODYSTRUCTURE"].isList {
		t.Fatalf("BODYSTRUCTURE: %+v", bs)
	}
	if !strings.Contains(strings.ToLower(bs[0].items["BODYSTRUCTURE"].String()), `"mixed"`) {
		t.Errorf("BODYSTRUCTURE of a multipart/mixed: %v", bs[0].items["BODYSTRUCTURE"])
	}
	parts := clFetches(t, "Thunderbird", tb.ok("UID fetch 2 (UID RFC822.SIZE BODY.PEEK[HEADER] BODY.PEEK[1.1.MIME] BODY.PEEK[1.1] BODY.PEEK[1.2] BODY.PEEK[2.MIME])").untagged)
	if len(parts) != 1 {
		t.Fatalf("parts: %d responses", len(parts))
	}
	for section, want := range map[string]string{
		"BODY[HEADER]":   clHeader(clMixedMsg),
		"BODY[1.1.MIME]": "Content-Type: text/plain; charset=UTF-8; format=flowed\r\nContent-Transfer-Encoding: 7bit\r\n\r\n",
		"BODY[1.1]":      "The report is attached.\r\n",
		"BODY[1.2]":      "<html><body><p>The report is <b>attached</b>.</p></body></html>\r\n",
		"BODY[2.MIME]":   "Content-Type: application/pdf; name=\"report.pdf\"\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
	} {
		if got, ok := parts[0].section(section); !ok || got != want {
			t.Errorf("%s: %q (found %v), want %q", section, got, ok, want)
		}
	}
	size := int64(len(clMixedMsg))
	var whole strings.Builder
	for off := int64(0); off < size; off += 250000 {
		res := clFetches(t, "Thunderbird", tb.ok(fmt.Sprintf("UID fetch 2 (UID RFC822.SIZE BODY.PEEK[]<%d.250000>)", off)).untagged)
		if len(res) != 1 {
			t.Fatalf("chunk at %d: %d responses", off, len(res))
		}
		chunk, ok := res[0].section(fmt.Sprintf("BODY[]<%d>", off))
		if !ok {
			t.Fatalf("chunk at %d: no BODY[]<%d>: %v", off, off, res[0].order)
		}
		if want := min(250000, size-off); int64(len(chunk)) != want {
			t.Errorf("chunk at %d: %d bytes, want %d", off, len(chunk), want)
		}
		whole.WriteString(chunk)
	}
	if whole.String() != clMixedMsg {
		t.Errorf("the chunks do not add up to the message delivered (%d bytes, want %d)", whole.Len(), size)
	}
	// A small message in one piece; reading it is not marking it read.
	one := clFetches(t, "Thunderbird", tb.ok("UID fetch 3 (UID RFC822.SIZE BODY.PEEK[])").untagged)
	if body, ok := one[0].section("BODY[]"); !ok || body != clIntlMsg {
		t.Errorf("UID fetch 3 BODY.PEEK[]: %q", body)
	}
	// Thunderbird marks it read itself.
	st := tb.ok(`UID store 3 +FLAGS (\Seen)`)
	if f := clFetches(t, "Thunderbird", st.untagged); len(f) != 1 || !f[0].hasFlag(`\Seen`) || f[0].uid() != 3 || !f[0].items["MODSEQ"].isList {
		t.Errorf("UID store +FLAGS: %q (UID, FLAGS and, with CONDSTORE, MODSEQ)", st.untagged)
	}

	// Its junk filter and tags are keywords.
	if kw := clFetches(t, "Thunderbird", tb.ok(`UID store 1 +FLAGS (Junk $label1)`).untagged); len(kw) != 1 || !kw[0].hasFlag("Junk") || !kw[0].hasFlag("$label1") {
		t.Errorf("keywords: %+v", kw)
	}
	tb.ok(`UID store 1 -FLAGS (Junk)`)
	tb.ok(`UID store 1 +FLAGS (NonJunk)`)
	// A server-side search with non-ASCII text, sent as a literal; the
	// subject it matches is RFC 2047-encoded.
	tag = tb.start("UID SEARCH CHARSET UTF-8 SUBJECT {7}")
	tb.continuation()
	tb.write("Málaga\r\n")
	if found := tb.finish(tag); found.status != "OK" || !slices.Equal(clSearch(t, found.untagged), []int64{3}) {
		t.Errorf("UID SEARCH CHARSET UTF-8 SUBJECT Málaga: %q", found.all())
	}

	// Other folders are polled with STATUS.
	stat := clStatus(t, tb.ok(`STATUS "Sent" (UIDNEXT MESSAGES UNSEEN RECENT)`).untagged)
	if s := stat["Sent"]; s["UIDNEXT"] != 1 || s["MESSAGES"] != 0 || s["UNSEEN"] != 0 || s["RECENT"] != 0 {
		t.Errorf("STATUS Sent: %v", stat)
	}
	// With UTF8=ACCEPT on, names go both ways in UTF-8 (RFC 6855 3).
	stat = clStatus(t, tb.ok(`STATUS "Société" (UIDNEXT MESSAGES UNSEEN RECENT HIGHESTMODSEQ)`).untagged)
	if s, ok := stat["Société"]; !ok || s["MESSAGES"] != 0 || s["HIGHESTMODSEQ"] <= 0 {
		t.Errorf("STATUS of a non-ASCII folder, UTF8=ACCEPT on: %v", stat)
	}

	// Sending: the copy goes to Sent, already read.
	sent := clMsg("From: Tess <tess@example.org>", "To: carol@example.net", "Subject: Re: Lunch on Friday?",
		"Date: Mon, 03 Feb 2025 11:00:00 +0100", "Message-ID: <reply-6@example.org>", "In-Reply-To: <lunch-1@example.net>",
		"User-Agent: Mozilla Thunderbird", "MIME-Version: 1.0", "Content-Type: text/plain; charset=UTF-8; format=flowed",
		"Content-Transfer-Encoding: 7bit", "", "Noon is fine.")
	app := tb.appendMsg(`"Sent"`, `(\Seen)`, sent, false)
	if app.status != "OK" || !strings.HasPrefix(clCode(app.text), "APPENDUID ") {
		t.Fatalf("APPEND to Sent: %q", app.text)
	}
	// A draft, with LITERAL+ and a date.
	draft := clMsg("From: Tess <tess@example.org>", "Subject: (draft)", "X-Mozilla-Draft-Info: internal/draft; vcard=0",
		"MIME-Version: 1.0", "Content-Type: text/plain; charset=UTF-8", "", "unfinished")
	if app := tb.appendMsg(`"Drafts"`, `(\Seen \Draft) " 7-Feb-2025 10:00:00 +0100"`, draft, true); app.status != "OK" {
		t.Errorf("APPEND to Drafts: %q", app.text)
	}

	// A second connection for Sent, as Thunderbird opens one per busy
	// folder; this one with SASL-IR and compression.
	tb2 := clDial(t, in, "imaps", "Thunderbird (2nd connection)", "%d")
	if res := tb2.cmd("authenticate PLAIN " + clPlainIR(user)); res.status != "OK" {
		t.Fatalf("AUTHENTICATE PLAIN with SASL-IR: %q", res.text)
	}
	tb2.compress()
	tb2.ok("enable CONDSTORE")
	sel2 := tb2.ok(`select "Sent" (CONDSTORE)`)
	if !slices.Contains(sel2.untagged, "* 1 EXISTS") {
		t.Errorf("SELECT Sent: %q", sel2.untagged)
	}
	sentFetch := clFetches(t, "Thunderbird", tb2.ok("UID fetch 1:* (FLAGS)").untagged)
	if len(sentFetch) != 1 || !sentFetch[0].hasFlag(`\Seen`) {
		t.Errorf("Sent after APPEND (\\Seen): %+v", sentFetch)
	}
	body := clFetches(t, "Thunderbird", tb2.ok("UID fetch 1 (UID RFC822.SIZE BODY.PEEK[])").untagged)
	if b, _ := body[0].section("BODY[]"); b != sent {
		t.Errorf("the sent message read back differs: %q", b)
	}

	// Deleting: moved to Trash with MOVE...
	mv := tb.ok(`UID move 1 "Trash"`)
	if copyuid := clFind(mv.untagged, "* OK [COPYUID "); len(copyuid) != 1 || !strings.HasPrefix(clCode(copyuid[0]), "COPYUID ") {
		t.Errorf("UID MOVE: no untagged COPYUID: %q", mv.untagged)
	}
	if !slices.Contains(mv.untagged, "* 1 EXPUNGE") {
		t.Errorf("UID MOVE: no EXPUNGE: %q", mv.untagged)
	}
	// ...and, as with servers without MOVE, with COPY, \Deleted and UID
	// EXPUNGE of just that message.
	if cp := tb.ok(`UID copy 3 "Trash"`); !strings.HasPrefix(clCode(cp.text), "COPYUID ") {
		t.Errorf("UID COPY: %q", cp.text)
	}
	tb.ok(`UID store 3 +FLAGS (\Deleted)`)
	ex := tb.ok("UID expunge 3")
	if !slices.Contains(ex.untagged, "* 2 EXPUNGE") {
		t.Errorf("UID EXPUNGE 3 (now message 2): %q", ex.untagged)
	}
	if clCodeValue(t, []string{ex.text}, "HIGHESTMODSEQ") <= modSeq {
		t.Errorf("UID EXPUNGE with CONDSTORE: %q", ex.text)
	}
	trash := clStatus(t, tb.ok(`STATUS "Trash" (UIDNEXT MESSAGES UNSEEN RECENT)`).untagged)["Trash"]
	if trash["MESSAGES"] != 2 || trash["UNSEEN"] != 1 {
		t.Errorf("Trash after two deletions: %v", trash)
	}

	// IDLE on INBOX: new mail, a flag set elsewhere and an expunge
	// elsewhere each arrive at once; Thunderbird ends IDLE, fetches and
	// idles again.
	tb.idle()
	clDeliver(t, in, user, clLongMsg)
	tb.await(regexp.MustCompile(`^\* 2 EXISTS$`), 5*time.Second)
	tb.done()
	// New UIDs from the last known one on: UID 3 is gone, so "4:*" holds
	// the new message only.
	newer := clByUID(t, clFetches(t, "Thunderbird", tb.ok("UID fetch 4:* (FLAGS)").untagged))
	if _, ok := newer[4]; !ok || len(newer) != 1 {
		t.Errorf("UID fetch 4:* after new mail: %v", slices.Sorted(maps.Keys(newer)))
	}
	// "n:*" past the last UID still answers with the last message (RFC
	// 9051 6.4.8); clients poll this way.
	if past := clByUID(t, clFetches(t, "Thunderbird", tb.ok("UID fetch 9:* (FLAGS)").untagged)); len(past) != 1 || past[4].uid() != 4 {
		t.Errorf("UID fetch 9:* : %v, want the last message, UID 4", slices.Sorted(maps.Keys(past)))
	}
	tb.idle()
	other.ok("SELECT INBOX")
	other.ok(`UID STORE 2 +FLAGS (\Flagged)`)
	got := tb.await(regexp.MustCompile(`^\* 1 FETCH `), 5*time.Second)
	if f, err := clParseFetch(got[len(got)-1]); err != nil || f.uid() != 2 || !f.hasFlag(`\Flagged`) || !f.items["MODSEQ"].isList {
		t.Errorf("flag change during IDLE: %q (%v)", got, err)
	}
	other.ok("UID STORE 4 +FLAGS.SILENT (\\Deleted)")
	other.ok("UID EXPUNGE 4")
	tb.await(regexp.MustCompile(`^\* 2 EXPUNGE$`), 5*time.Second)
	tb.done()

	// Meanwhile Sent, on the second connection, learns of a second sent
	// message by polling.
	if app := tb.appendMsg(`"Sent"`, `(\Seen)`, sent, true); app.status != "OK" {
		t.Fatal(app.text)
	}
	if res := tb2.ok("NOOP"); !slices.Contains(res.untagged, "* 2 EXISTS") {
		t.Errorf("NOOP on Sent after an APPEND elsewhere: %q", res.untagged)
	}
	tb2.ok("CHECK")
	tb2.ok("LOGOUT")

	// Reopening INBOX later, with what it remembers from before.
	tb.ok("UNSELECT")
	sel = tb.ok(`select "INBOX" (CONDSTORE)`)
	if v := clCodeValue(t, sel.untagged, "UIDVALIDITY"); v != uidValidity {
		t.Errorf("UIDVALIDITY changed from %d to %d", uidValidity, v)
	}
	changed := clFetches(t, "Thunderbird", tb.ok(fmt.Sprintf("UID fetch 1:* (FLAGS) (CHANGEDSINCE %d)", modSeq)).untagged)
	if len(changed) != 1 || changed[0].uid() != 2 || !changed[0].hasFlag(`\Flagged`) {
		t.Errorf("CHANGEDSINCE %d: %+v, want UID 2 flagged", modSeq, changed)
	}
	if bye := tb.cmd("LOGOUT"); bye.status != "OK" || !slices.ContainsFunc(bye.untagged, func(s string) bool { return strings.HasPrefix(s, "* BYE") }) {
		t.Errorf("LOGOUT: %q", bye.all())
	}

	// go-imap's client reads the same header fetch the same way.
	gm := clGoFetch(t, in, user, "INBOX", []imap.UID{2}, &imap.FetchOptions{
		UID: true, RFC822Size: true, Flags: true,
		BodySection: []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierHeader, HeaderFields: strings.Fields(tbHeaders), Peek: true}},
	})
	if m := gm[2]; m == nil || m.RFC822Size != int64(len(clMixedMsg)) || len(m.BodySection) != 1 ||
		string(m.BodySection[0].Bytes) != clFilterHeader(clMixedMsg, strings.Fields(tbHeaders)) {
		t.Errorf("go-imap reads the header fetch differently: %+v", m)
	}
}
