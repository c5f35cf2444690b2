package main

// One account on several devices at once: Thunderbird on the desktop, Mail
// on the iPhone, and a POP3 client that leaves mail on the server.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestTwoDevices runs a Thunderbird-style session (STARTTLS, CONDSTORE)
// and an iPhone-style one (IMAPS, COMPRESS) idling on the same INBOX: a
// flag set on one, a message moved on the other and new mail each reach
// the other side at once, and both keep message numbers that
// agree with the server. A POP3 client downloading meanwhile sees sizes
// equal to RFC822.SIZE, bytes equal to BODY[], UIDLs that do not change,
// and its downloads show up as \Seen on both phones and desktops.
func TestTwoDevices(t *testing.T) {
	t.Parallel()
	const user = "uma@example.org"
	in := clServer(t, user)
	msgs := []string{clPlainMsg, clIntlMsg, clLongMsg, clAppleMsg, clMixedMsg, clMsg("Subject: short-lived", "", "gone soon")}
	clDeliver(t, in, user, msgs...)
	// "At once" with room for a loaded machine; on an idle one the
	// updates take milliseconds.
	const soon = 5 * time.Second

	tb := clDial(t, in, "imap", "Thunderbird", "%d")
	tb.starttls()
	tb.ok("AUTHENTICATE PLAIN " + clPlainIR(user))
	tb.ok("ENABLE CONDSTORE")
	tb.ok(`select "INBOX" (CONDSTORE)`)
	tb.ok("UID fetch 1:* (FLAGS)")

	ios := clDial(t, in, "imaps", "iPhone Mail", "%d")
	ios.ok("AUTHENTICATE PLAIN " + clPlainIR(user))
	ios.compress()
	ios.ok("SELECT INBOX")
	if live := clSearch(t, ios.ok("UID SEARCH 1:* NOT DELETED").untagged); len(live) != 6 {
		t.Fatalf("iPhone sees %v", live)
	}
	tb.idle()
	ios.idle()

	// The iPhone flags a message: Thunderbird hears at once.
	ios.done()
	ios.ok(`UID STORE 2 +FLAGS (\Flagged)`)
	ios.idle()
	got := tb.await(regexp.MustCompile(`^\* 2 FETCH `), soon)
	if f, err := clParseFetch(got[len(got)-1]); err != nil || f.uid() != 2 || !f.hasFlag(`\Flagged`) {
		t.Errorf("Thunderbird, flag set on the iPhone: %q %v", got, err)
	}

	// Thunderbird moves a message to Trash: the iPhone hears at once.
	tb.done()
	tb.ok(`UID move 3 "Trash"`)
	tb.idle()
	ios.await(regexp.MustCompile(`^\* 3 EXPUNGE$`), soon)
	ios.done()
	// Commands by sequence number while the other side expunges: no
	// EXPUNGE in their answers (RFC 9051 7.5.1), which would shift the
	// numbers they use; it comes with the next NOOP.
	tb.done()
	tb.ok(`UID store 6 +FLAGS (\Deleted)`)
	tb.ok("UID expunge 6")
	for _, command := range []string{"FETCH 1:* (FLAGS)", `STORE 1 +FLAGS (\Answered)`, "SEARCH ALL"} {
		res := ios.cmd(command)
		clNoExpunge(t, "iPhone Mail", command, res.all())
	}
	if res := ios.ok("NOOP"); !slices.Contains(res.untagged, "* 5 EXPUNGE") {
		t.Errorf("NOOP after an expunge elsewhere: %q", res.untagged)
	}
	tb.idle()
	iosView := clByUID(t, clFetches(t, "iPhone Mail", ios.ok("UID FETCH 1:* (FLAGS)").untagged))
	for uid, seq := range map[int64]uint32{1: 1, 2: 2, 4: 3, 5: 4} {
		if iosView[uid].seq != seq {
			t.Errorf("iPhone after the move: UID %d is message %d, want %d", uid, iosView[uid].seq, seq)
		}
	}
	if len(iosView) != 4 || !iosView[2].hasFlag(`\Flagged`) {
		t.Errorf("iPhone after the move: %v", iosView)
	}
	ios.idle()

	// A POP3 client, leaving mail on the server, downloads everything.
	sizes, bodies := map[int64]int64{}, map[int64]string{}
	for _, f := range clFetches(t, "checker", clIMAPOnce(t, in, user, "UID FETCH 1:* (UID RFC822.SIZE BODY.PEEK[])")) {
		b, _ := f.section("BODY[]")
		sizes[f.uid()], bodies[f.uid()] = f.items["RFC822.SIZE"].num(), b
	}
	pop := clDialPOP3(t, in, "pop3s", "POP3 client")
	pop.ok("USER " + user)
	pop.ok("PASS " + clPass)
	list := pop.numbered(pop.multi("LIST"))
	uidls := pop.numbered(pop.multi("UIDL"))
	if len(list) != 4 || len(uidls) != 4 {
		t.Fatalf("POP3 LIST %v UIDL %v, want the 4 messages IMAP sees", list, uidls)
	}
	byHash := map[string]int64{}
	for uid, b := range bodies {
		byHash[clSHA(b)] = uid
	}
	uidlOf := map[int64]string{}
	for n := 1; n <= 4; n++ {
		body := strings.Join(pop.multi(fmt.Sprintf("RETR %d", n)), "")
		uid, ok := byHash[clSHA(body)]
		if !ok {
			t.Errorf("POP3 RETR %d: bytes that are no message's BODY[]", n)
			continue
		}
		if list[n] != fmt.Sprint(sizes[uid]) || len(body) != int(sizes[uid]) {
			t.Errorf("POP3 message %d (UID %d): LIST %s, RETR %d octets, RFC822.SIZE %d", n, uid, list[n], len(body), sizes[uid])
		}
		uidlOf[uid] = uidls[n]
	}
	// Both IMAP sessions learn that the downloads were read.
	for _, c := range []*clIMAP{tb, ios} {
		seen := map[uint32]bool{}
		deadline := time.Now().Add(soon)
		for len(seen) < 4 && time.Now().Before(deadline) {
			s, ok := c.poll(time.Until(deadline))
			if !ok {
				break
			}
			if f, err := clParseFetch(s); err == nil && f.hasFlag(`\Seen`) {
				seen[f.seq] = true
			}
		}
		if len(seen) != 4 {
			t.Errorf("%s: \\Seen from the POP3 downloads reached messages %v, want all 4", c.who, slices.Sorted(maps.Keys(seen)))
		}
	}

	// While the POP3 session still holds its listing, the iPhone deletes a
	// message. POP3 keeps its numbering (RFC 1939), and the message is gone.
	ios.done()
	ios.ok(`UID MOVE 4 "Deleted Messages"`)
	ios.idle()
	tb.await(regexp.MustCompile(`^\* 3 EXPUNGE$`), soon)
	if again := pop.numbered(pop.multi("UIDL")); len(again) != 4 || again[3] != uidlOf[4] {
		t.Errorf("POP3 UIDL within the session after an IMAP move: %v", again)
	}
	if s := pop.cmd("RETR 3"); strings.HasPrefix(s, "+OK") {
		// Served from the session's snapshot: then the same bytes.
		if body := strings.Join(pop.data(), ""); body != bodies[4] {
			t.Errorf("RETR of a message moved away: other bytes")
		}
	} else if !strings.HasPrefix(s, "-ERR") {
		t.Errorf("RETR of a message moved away: %q", s)
	}
	pop.ok("QUIT")

	// New mail reaches both devices and the next POP3 check, where the
	// old UIDLs are unchanged.
	clDeliver(t, in, user, clMsg("From: c@example.net", "Subject: late news", "", "news"))
	tb.await(regexp.MustCompile(`^\* 4 EXISTS$`), soon)
	ios.await(regexp.MustCompile(`^\* 4 EXISTS$`), soon)
	pop = clDialPOP3(t, in, "pop3", "POP3 client (next check)")
	pop.ok("USER " + user)
	pop.ok("PASS " + clPass)
	next := pop.numbered(pop.multi("UIDL"))
	want := []string{uidlOf[1], uidlOf[2], uidlOf[5]}
	if len(next) != 4 || !slices.Equal([]string{next[1], next[2], next[3]}, want) || slices.Contains(want, next[4]) {
		t.Errorf("POP3 UIDL on the next check: %v, want %v and a new one", next, want)
	}
	pop.ok("QUIT")
	tb.done()
	ios.done()
	tbView := clByUID(t, clFetches(t, "Thunderbird", tb.ok("UID fetch 1:* (FLAGS)").untagged))
	iosView = clByUID(t, clFetches(t, "iPhone Mail", ios.ok("UID FETCH 1:* (FLAGS)").untagged))
	for uid, f := range tbView {
		if iosView[uid].seq != f.seq || !slices.Equal(iosView[uid].flags(), f.flags()) {
			t.Errorf("UID %d: Thunderbird sees message %d %v, the iPhone %d %v", uid, f.seq, f.flags(), iosView[uid].seq, iosView[uid].flags())
		}
	}
	if len(tbView) != 4 || len(iosView) != 4 {
		t.Errorf("views at the end: %d and %d messages", len(tbView), len(iosView))
	}
}

// clIMAPOnce runs one command in INBOX on a fresh connection, read-only,
// and returns its untagged responses.
func clIMAPOnce(t *testing.T, in *instance, user, command string) []string {
	t.Helper()
	c := clDial(t, in, "imaps", "checker", "c%d")
	c.ok("AUTHENTICATE PLAIN " + clPlainIR(user))
	c.ok("EXAMINE INBOX")
	res := c.ok(command)
	c.ok("LOGOUT")
	return res.untagged
}

func clSHA(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
