package main

// Outlook for Windows on an IMAP account: LOGIN with quoted strings, its
// own names for the special folders, folders with spaces and accents in
// modified UTF-7, and deleting with \Deleted and EXPUNGE.

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/emersion/go-imap/v2"
)

// clUTF7 spells a mailbox name in modified UTF-7 (RFC 3501 5.1.3), as
// IMAP4rev1 clients send it.
func clUTF7(s string) string {
	enc := base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)
	var b strings.Builder
	var run []rune
	flush := func() {
		if len(run) > 0 {
			var buf []byte
			for _, u := range utf16.Encode(run) {
				buf = append(buf, byte(u>>8), byte(u))
			}
			b.WriteString("&" + enc.EncodeToString(buf) + "-")
			run = nil
		}
	}
	for _, r := range s {
		switch {
		case r == '&':
			flush()
			b.WriteString("&-")
		case r >= 0x20 && r <= 0x7e:
			flush()
			b.WriteRune(r)
		default:
			run = append(run, r)
		}
	}
	flush()
	return b.String()
}

// clQuote is an IMAP quoted string.
func clQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// TestOutlookIMAP replays Outlook's IMAP side: CAPABILITY, LOGIN with the
// address and a password full of quotes and backslashes as quoted
// strings, LIST and LSUB, its special folders by their Outlook names
// ("Sent Items", "Deleted Items", "Junk E-mail"), which the server maps to
// the special-use folders, the message list by UID with whole headers,
// downloads with BODY.PEEK[], deleting by copying to "Deleted Items" then
// \Deleted and EXPUNGE, sending into "Sent Items", folders with spaces and
// accents, and IDLE on INBOX.
func TestOutlookIMAP(t *testing.T) {
	t.Parallel()
	const user = "olive@example.org"
	const password = `P@ss "word" \ 1`
	in := clServer(t, "someone@example.org")
	mustBuzon(t, password+"\n", "user", "add", "--data", in.data, user)
	msgs := []string{clPlainMsg, clMixedMsg, clIntlMsg}
	clDeliver(t, in, user, msgs...)

	ol := clDial(t, in, "imaps", "Outlook", "A%d")
	ol.ok("CAPABILITY")
	login := ol.ok("LOGIN " + clQuote(user) + " " + clQuote(password))
	clRequire(t, "Outlook", clCaps(t, login.text), "IDLE", "UIDPLUS", "NAMESPACE")
	ol.ok("CAPABILITY")
	all := clLists(t, "LIST", ol.ok(`LIST "" "*"`).untagged)
	if len(all) < 6 {
		t.Errorf(`LIST "" "*": %v`, all)
	}
	ol.ok(`LSUB "" "*"`)

	// Outlook's special folders by its names: each answers for the
	// special-use folder, and none appears as a folder of its own.
	for alias, folder := range map[string]string{"Sent Items": "Sent", "Deleted Items": "Trash", "Junk E-mail": "Junk"} {
		res := ol.ok(`STATUS ` + clQuote(alias) + ` (MESSAGES UNSEEN UIDNEXT UIDVALIDITY)`)
		st := clStatus(t, res.untagged)
		if len(st) != 1 {
			t.Errorf("STATUS %q: %q", alias, res.untagged)
		}
		for name, items := range st {
			if name != alias && name != folder {
				t.Errorf("STATUS %q answered for %q", alias, name)
			}
			if items["UIDNEXT"] != 1 || items["UIDVALIDITY"] <= 0 {
				t.Errorf("STATUS %q: %v", alias, items)
			}
		}
	}
	// Its own name for Junk since Outlook 2013.
	if res := ol.cmd(`STATUS "Junk Email" (MESSAGES)`); res.status != "OK" {
		t.Errorf(`STATUS "Junk Email": %q`, res.text)
	}

	sel := ol.ok(`SELECT "INBOX"`)
	if !slices.Contains(sel.untagged, "* 3 EXISTS") {
		t.Errorf("SELECT INBOX: %q", sel.untagged)
	}
	uids := clByUID(t, clFetches(t, "Outlook", ol.ok("UID FETCH 1:* (UID FLAGS)").untagged))
	if len(uids) != 3 {
		t.Fatalf("UID FETCH 1:* (UID FLAGS): %v", uids)
	}
	heads := clByUID(t, clFetches(t, "Outlook", ol.ok("UID FETCH 1:3 (UID RFC822.SIZE FLAGS INTERNALDATE BODY.PEEK[HEADER])").untagged))
	for i, msg := range msgs {
		f := heads[int64(i+1)]
		if h, ok := f.section("BODY[HEADER]"); !ok || h != clHeader(msg) {
			t.Errorf("UID %d BODY[HEADER]: %q", i+1, h)
		}
		if f.items["RFC822.SIZE"].num() != int64(len(msg)) {
			t.Errorf("UID %d RFC822.SIZE: %v", i+1, f.items["RFC822.SIZE"])
		}
	}
	for i, msg := range msgs {
		f := clFetches(t, "Outlook", ol.ok(fmt.Sprintf("UID FETCH %d (UID RFC822.SIZE BODY.PEEK[])", i+1)).untagged)
		if len(f) != 1 {
			t.Fatalf("UID FETCH %d BODY.PEEK[]: %d responses", i+1, len(f))
		}
		if b, _ := f[0].section("BODY[]"); b != msg {
			t.Errorf("UID %d: downloaded %d bytes, not the %d delivered", i+1, len(b), len(msg))
		}
	}

	// Delete: copy to "Deleted Items", mark \Deleted, expunge.
	if cp := ol.ok(`UID COPY 1 "Deleted Items"`); !strings.HasPrefix(clCode(cp.text), "COPYUID ") {
		t.Errorf(`UID COPY to "Deleted Items": %q`, cp.text)
	}
	if st := ol.ok(`UID STORE 1 +FLAGS (\Deleted)`); len(clFetches(t, "Outlook", st.untagged)) != 1 {
		t.Errorf("UID STORE +FLAGS (\\Deleted): %q", st.untagged)
	}
	if ex := ol.ok("EXPUNGE"); !slices.Equal(ex.untagged, []string{"* 1 EXPUNGE"}) {
		t.Errorf("EXPUNGE: %q", ex.untagged)
	}
	// The same by sequence number: message 2 is UID 3 now.
	if st := clFetches(t, "Outlook", ol.ok(`STORE 2 +FLAGS (\Deleted)`).untagged); len(st) != 1 || st[0].seq != 2 || !st[0].hasFlag(`\Deleted`) {
		t.Errorf("STORE 2 +FLAGS (\\Deleted): %+v", st)
	}
	if ex := ol.ok("EXPUNGE"); !slices.Equal(ex.untagged, []string{"* 2 EXPUNGE"}) {
		t.Errorf("EXPUNGE: %q", ex.untagged)
	}
	// Move to junk the Outlook 2010 way.
	ol.ok(`UID COPY 2 "Junk E-mail"`)
	trash := ol.ok(`SELECT "Deleted Items"`)
	if !slices.Contains(trash.untagged, "* 1 EXISTS") {
		t.Errorf(`SELECT "Deleted Items": %q`, trash.untagged)
	}
	if b := clFetches(t, "Outlook", ol.ok("UID FETCH 1 (UID RFC822.SIZE BODY.PEEK[])").untagged); len(b) != 1 {
		t.Errorf(`"Deleted Items" holds %d messages`, len(b))
	} else if got, _ := b[0].section("BODY[]"); got != clPlainMsg {
		t.Errorf(`the message in "Deleted Items" is not the one deleted`)
	}

	// Sending.
	sent := clMsg("From: Olive <olive@example.org>", "To: carol@example.net", "Subject: RE: Lunch on Friday?",
		"Date: Mon, 3 Feb 2025 12:30:00 +0100", "Message-ID: <000001db7622$1b2c3d40$@example.org>",
		"X-Mailer: Microsoft Outlook 16.0", "Thread-Index: AQHbdiIbLD1AAbCdEfGh", "Content-Language: en-gb",
		"MIME-Version: 1.0", `Content-Type: text/plain; charset="us-ascii"`, "Content-Transfer-Encoding: 7bit", "", "Noon it is.")
	if app := ol.appendMsg(`"Sent Items"`, `(\Seen)`, sent, false); app.status != "OK" {
		t.Errorf(`APPEND to "Sent Items": %q`, app.text)
	}

	// Folders with spaces, accents and more, in modified UTF-7.
	names := []string{"Projets été", "Customers/Müller & Söhne GmbH", "Reise 2025 🏖", "日本語"}
	for _, n := range names {
		if res := ol.cmd("CREATE " + clQuote(clUTF7(n))); res.status != "OK" {
			t.Errorf("CREATE %q (%s): %q", n, clUTF7(n), res.text)
		}
		ol.ok("SUBSCRIBE " + clQuote(clUTF7(n)))
	}
	listed := clLists(t, "LIST", ol.ok(`LIST "" "*"`).untagged)
	subscribed := clLists(t, "LSUB", ol.ok(`LSUB "" "*"`).untagged)
	for _, n := range names {
		if _, ok := listed[clUTF7(n)]; !ok {
			t.Errorf("LIST lacks %q as %q", n, clUTF7(n))
		}
		if _, ok := subscribed[clUTF7(n)]; !ok {
			t.Errorf("LSUB lacks %q as %q", n, clUTF7(n))
		}
	}
	if !listed["Customers"].has(`\HasChildren`) {
		t.Errorf("the superior Customers: %+v", listed["Customers"])
	}
	if res := ol.ok("STATUS " + clQuote(clUTF7(names[0])) + " (MESSAGES)"); len(clStatus(t, res.untagged)[clUTF7(names[0])]) != 1 {
		t.Errorf("STATUS of a non-ASCII folder: %q", res.untagged)
	}
	ol.ok("UID COPY 1 " + clQuote(clUTF7(names[2])))
	ol.ok("RENAME " + clQuote(clUTF7(names[0])) + " " + clQuote(clUTF7("Archive/"+names[0])))
	ol.ok("DELETE " + clQuote(clUTF7(names[3])))
	// Another client, in UTF-8, sees the same folders.
	g := clGoClientAs(t, in, user, password, nil)
	boxes, err := g.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var goNames []string
	for _, b := range boxes {
		goNames = append(goNames, b.Mailbox)
	}
	for _, n := range []string{"Archive/Projets été", "Customers/Müller & Söhne GmbH", "Reise 2025 🏖"} {
		if !slices.Contains(goNames, n) {
			t.Errorf("go-imap does not list %q: %q", n, goNames)
		}
	}
	if slices.Contains(goNames, "日本語") || slices.Contains(goNames, "Projets été") {
		t.Errorf("deleted or renamed folders still listed: %q", goNames)
	}
	if st, err := g.Status("Reise 2025 🏖", &imap.StatusOptions{NumMessages: true}).Wait(); err != nil || st.NumMessages == nil || *st.NumMessages != 1 {
		t.Errorf("go-imap STATUS of the folder Outlook copied into: %+v %v", st, err)
	}

	// IDLE on INBOX.
	ol.ok(`SELECT "INBOX"`)
	ol.idle()
	clDeliver(t, in, user, clLongMsg)
	ol.await(regexp.MustCompile(`^\* 2 EXISTS$`), 5*time.Second)
	ol.done()
	ol.ok("NOOP")
	ol.ok("LOGOUT")
}
