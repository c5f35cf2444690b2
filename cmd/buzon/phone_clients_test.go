package main

// Phone clients: K-9 Mail / Thunderbird for Android, which idles for hours
// and refreshes IDLE itself, and FairEmail, which resynchronises with
// QRESYNC after losing the network.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The header fields K-9 Mail asks for when it lists messages.
const clK9Headers = "date subject from content-type to cc reply-to message-id references in-reply-to X-K9mail-Identity Chat-Version"

// TestK9Idle replays K-9 Mail's push: COMPRESS DEFLATE, SELECT INBOX,
// SEARCH for the messages not deleted, UID FETCH of their headers, then
// IDLE, refreshed with DONE and IDLE more often than the server's idle
// timeout (K-9 refreshes every 24 minutes, under the 29 of RFC 2177 3;
// here the timeout is 3 s and the refresh every 0.4 s). New mail and flag
// changes arrive in every IDLE of the chain; the session outlives many
// timeouts; without a refresh the server logs it out with BYE (RFC 9051
// 7.1.5), and the phone reconnects.
func TestK9Idle(t *testing.T) {
	t.Parallel()
	const user = "kai@example.org"
	conf := filepath.Join(t.TempDir(), "buzon.toml")
	if err := os.WriteFile(conf, []byte("[imap]\nidle_timeout = \"3s\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	in := clServer(t, user, "--config", conf)
	clDeliver(t, in, user, clPlainMsg, clIntlMsg)

	k9 := clDial(t, in, "imaps", "K-9 Mail", "%d")
	tag := k9.start("AUTHENTICATE PLAIN")
	k9.continuation()
	k9.write(clPlainIR(user) + "\r\n")
	if res := k9.finish(tag); res.status != "OK" {
		t.Fatal(res.text)
	}
	k9.ok(`ID ("name" "K-9 Mail" "version" "6.802")`)
	k9.compress()
	k9.ok(`LIST "" "*"`)
	k9.ok(`SELECT "INBOX"`)
	seqs := clSearch(t, k9.ok("SEARCH 1:2 NOT DELETED").untagged)
	if !slices.Equal(seqs, []int64{1, 2}) {
		t.Errorf("SEARCH 1:2 NOT DELETED: %v", seqs)
	}
	heads := clByUID(t, clFetches(t, "K-9 Mail", k9.ok("UID FETCH 1,2 (UID INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS ("+clK9Headers+")])").untagged))
	if len(heads) != 2 {
		t.Errorf("header fetch: %v", heads)
	}

	// The desktop client changes flags in sessions of its own (the idle
	// timeout would end a session kept open).
	desk := func(command string) {
		t.Helper()
		d := clDial(t, in, "imap", "desktop client", "d%d")
		d.ok("LOGIN " + user + " " + clPass)
		d.ok("SELECT INBOX")
		d.ok(command)
		d.ok("LOGOUT")
	}

	// A chain of IDLEs, each shorter than the timeout, covering several
	// timeouts; something happens in some of them.
	const refresh = 400 * time.Millisecond
	start := time.Now()
	exists := 2
	for i := 0; time.Since(start) < 6500*time.Millisecond; i++ {
		k9.idle()
		switch i % 3 {
		case 0:
			clDeliver(t, in, user, clMsg("From: a@example.net", fmt.Sprintf("Subject: push %d", i), "", "hi"))
			exists++
			k9.await(regexp.MustCompile(fmt.Sprintf(`^\* %d EXISTS$`, exists)), 5*time.Second)
		case 1:
			desk(fmt.Sprintf(`STORE 1 FLAGS (\Seen $Label%d)`, i))
			got := k9.await(regexp.MustCompile(`^\* 1 FETCH `), 5*time.Second)
			if f, err := clParseFetch(got[len(got)-1]); err != nil || !f.hasFlag(fmt.Sprintf("$Label%d", i)) {
				t.Errorf("flag change %d during IDLE: %q %v", i, got, err)
			}
		}
		if extra := k9.quiet(refresh); len(extra) > 0 {
			for _, s := range extra {
				if strings.HasPrefix(s, "* BYE") {
					t.Fatalf("logged out %v into a chain of IDLEs refreshed every %v: %q", time.Since(start), refresh, extra)
				}
			}
		}
		k9.done()
	}
	// The server answers after the chain: the session is alive.
	if res := k9.ok("NOOP"); res.status != "OK" {
		t.Fatal(res.text)
	}
	// K-9 fetches the new messages it was told of.
	all := clByUID(t, clFetches(t, "K-9 Mail", k9.ok("UID FETCH 1:* (UID FLAGS)").untagged))
	if len(all) != exists {
		t.Errorf("after the chain: %d messages, EXISTS said %d", len(all), exists)
	}

	// One IDLE left alone past the timeout: BYE, then the connection ends.
	k9.idle()
	said, closed := k9.closed(10 * time.Second)
	if !closed || !slices.ContainsFunc(said, func(s string) bool { return strings.HasPrefix(s, "* BYE") }) {
		t.Errorf("IDLE past the 3 s timeout: closed %v after %q; want BYE and a close", closed, said)
	}
	// The phone reconnects and carries on.
	again := clDial(t, in, "imaps", "K-9 Mail (reconnected)", "%d")
	again.ok("AUTHENTICATE PLAIN " + clPlainIR(user))
	if sel := again.ok(`SELECT "INBOX"`); !slices.Contains(sel.untagged, fmt.Sprintf("* %d EXISTS", exists)) {
		t.Errorf("after reconnecting: %q", sel.untagged)
	}
}

// TestFairEmailQResync replays FairEmail, which keeps a local copy and
// resynchronises with QRESYNC (RFC 7162): it syncs INBOX, loses the
// network in the middle of IDLE, and while it is away a desktop client
// flags, reads, expunges, moves and receives mail. On reconnecting,
// SELECT INBOX (QRESYNC (uidvalidity modseq known-uids)) must report the
// expunged UIDs with VANISHED (EARLIER), the changed and new messages with
// FETCH (UID FLAGS MODSEQ), and the right EXISTS, so the phone needs no
// full resync; afterwards it keeps going with CHANGEDSINCE and IDLE,
// where expunges arrive as VANISHED.
func TestFairEmailQResync(t *testing.T) {
	t.Parallel()
	const user = "fern@example.org"
	in := clServer(t, user)
	for i := 1; i <= 6; i++ {
		clDeliver(t, in, user, clMsg("From: b@example.net", fmt.Sprintf("Subject: message %d", i),
			fmt.Sprintf("Message-ID: <m%d@example.net>", i), "", "body"))
	}

	fe := clDial(t, in, "imaps", "FairEmail", "%d")
	fe.ok("CAPABILITY")
	fe.ok("AUTHENTICATE PLAIN " + clPlainIR(user))
	fe.ok(`ID ("name" "FairEmail" "version" "1.2231" "os" "Android" "os.version" "14")`)
	if en := fe.ok("ENABLE CONDSTORE QRESYNC UTF8=ACCEPT"); !strings.Contains(en.untagged[0], "QRESYNC") {
		t.Fatalf("ENABLE: %q", en.untagged)
	}
	fe.ok(`LIST "" "*" RETURN (SPECIAL-USE)`)
	sel := fe.ok("SELECT INBOX (CONDSTORE)")
	uidValidity := clCodeValue(t, sel.untagged, "UIDVALIDITY")
	modSeq := clCodeValue(t, sel.untagged, "HIGHESTMODSEQ")
	synced := clByUID(t, clFetches(t, "FairEmail", fe.ok("UID FETCH 1:* (UID FLAGS MODSEQ)").untagged))
	if len(synced) != 6 {
		t.Fatalf("first sync: %d messages", len(synced))
	}
	fe.idle()
	// The network goes: no DONE, no LOGOUT.
	fe.raw.Close()

	desk := clDial(t, in, "imap", "desktop client", "d%d")
	desk.ok("LOGIN " + user + " " + clPass)
	desk.ok("SELECT INBOX")
	desk.ok(`UID STORE 2 +FLAGS (\Flagged)`)
	desk.ok(`UID STORE 5 +FLAGS (\Seen)`)
	desk.ok(`UID STORE 3 +FLAGS (\Deleted)`)
	desk.ok("EXPUNGE")
	desk.ok("UID MOVE 4 Archive")
	clDeliver(t, in, user, clPlainMsg, clIntlMsg) // UIDs 7 and 8
	desk.ok(`UID STORE 8 +FLAGS (\Deleted)`)
	desk.ok("UID EXPUNGE 8")

	fe = clDial(t, in, "imaps", "FairEmail (reconnected)", "%d")
	fe.ok("AUTHENTICATE PLAIN " + clPlainIR(user))
	fe.ok("ENABLE CONDSTORE QRESYNC UTF8=ACCEPT")
	resync := fe.ok(fmt.Sprintf("SELECT INBOX (QRESYNC (%d %d 1:6))", uidValidity, modSeq))
	if !slices.Contains(resync.untagged, "* 5 EXISTS") {
		t.Errorf("SELECT QRESYNC: want 5 EXISTS (1, 2, 5, 6, 7): %q", resync.untagged)
	}
	vanished := clFind(resync.untagged, "* VANISHED (EARLIER) ")
	if len(vanished) != 1 || strings.TrimPrefix(vanished[0], "* VANISHED (EARLIER) ") != "3:4" {
		t.Errorf("SELECT QRESYNC: VANISHED (EARLIER) %q, want 3:4 (8 was never known to the phone)", vanished)
	}
	changed := clByUID(t, clFetches(t, "FairEmail", resync.untagged))
	for uid, flag := range map[int64]string{2: `\Flagged`, 5: `\Seen`, 7: ""} {
		f, ok := changed[uid]
		if !ok || !f.items["MODSEQ"].isList || flag != "" && !f.hasFlag(flag) {
			t.Errorf("SELECT QRESYNC: UID %d: %+v, want FETCH (UID FLAGS MODSEQ)%s", uid, f, flag)
		}
	}
	if len(changed) != 3 {
		t.Errorf("SELECT QRESYNC reported %d messages, want 3: %q", len(changed), resync.untagged)
	}
	newModSeq := clCodeValue(t, resync.untagged, "HIGHESTMODSEQ")
	if newModSeq <= modSeq {
		t.Errorf("HIGHESTMODSEQ %d after changes, was %d", newModSeq, modSeq)
	}
	// Sequence numbers agree with what the phone now believes: 1 2 5 6 7.
	for uid, seq := range map[int64]uint32{2: 2, 5: 3, 7: 5} {
		if f, ok := changed[uid]; ok && f.seq != seq {
			t.Errorf("UID %d reported as message %d, want %d", uid, f.seq, seq)
		}
	}
	// Nothing more since.
	if more := fe.ok(fmt.Sprintf("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)", newModSeq)); len(more.untagged) != 0 {
		t.Errorf("CHANGEDSINCE the new HIGHESTMODSEQ: %q", more.untagged)
	}
	// The same catch-up as a FETCH, for a client that selected plainly.
	catch := fe.ok(fmt.Sprintf("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)", modSeq))
	if v := clFind(catch.untagged, "* VANISHED (EARLIER) "); len(v) != 1 || !strings.HasPrefix(v[0], "* VANISHED (EARLIER) 3:4") {
		t.Errorf("UID FETCH CHANGEDSINCE VANISHED: %q", catch.untagged)
	}

	// Back to IDLE: with QRESYNC on, expunges come as VANISHED.
	fe.idle()
	desk.ok("UID MOVE 6 Trash")
	got := fe.await(regexp.MustCompile(`^\* VANISHED 6$`), 5*time.Second)
	for _, s := range got {
		if strings.HasSuffix(s, " EXPUNGE") {
			t.Errorf("EXPUNGE with QRESYNC on (RFC 7162 3.2.10): %q", s)
		}
	}
	desk.ok(`UID STORE 1 +FLAGS (\Answered)`)
	got = fe.await(regexp.MustCompile(`^\* 1 FETCH `), 5*time.Second)
	if f, err := clParseFetch(got[len(got)-1]); err != nil || f.uid() != 1 || !f.hasFlag(`\Answered`) || !f.items["MODSEQ"].isList {
		t.Errorf("flag change during IDLE with QRESYNC: %q %v", got, err)
	}
	fe.done()

	// A mailbox whose UIDVALIDITY changed (deleted and made again): no
	// VANISHED, no FETCH; the phone starts over.
	desk.ok("CREATE Temp")
	st := clStatus(t, desk.ok("STATUS Temp (UIDVALIDITY HIGHESTMODSEQ)").untagged)["Temp"]
	desk.ok("DELETE Temp")
	desk.ok("CREATE Temp")
	res := fe.ok(fmt.Sprintf("SELECT Temp (QRESYNC (%d %d))", st["UIDVALIDITY"], st["HIGHESTMODSEQ"]))
	if v := clCodeValue(t, res.untagged, "UIDVALIDITY"); v == uint64(st["UIDVALIDITY"]) {
		t.Errorf("a re-created mailbox kept UIDVALIDITY %d", v)
	}
	if len(clFind(res.untagged, "* VANISHED")) != 0 || len(clFetches(t, "FairEmail", res.untagged)) != 0 {
		t.Errorf("SELECT QRESYNC with a stale UIDVALIDITY: %q", res.untagged)
	}
	fe.ok("LOGOUT")
}
