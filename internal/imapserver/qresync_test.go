package imapserver

import (
	"context"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/teststore"
)

// respCode finds "[NAME n]" in lines and returns n, or fails the test.
func respCode(t *testing.T, name string, lines ...string) uint64 {
	t.Helper()
	re := regexp.MustCompile(`\[` + name + ` (\d+)\]`)
	for _, l := range lines {
		if m := re.FindStringSubmatch(l); m != nil {
			n, _ := strconv.ParseUint(m[1], 10, 64)
			return n
		}
	}
	t.Fatalf("no [%s] in %q", name, lines)
	return 0
}

// TestVanishedStar: UID FETCH 1:* (CHANGEDSINCE ... VANISHED) reports the
// highest UIDs when they are the ones expunged, and all of them when the
// mailbox is empty: "*" is not the highest UID left (RFC 7162 3.2.6).
func TestVanishedStar(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.deliverThree()
	b := e.login()
	b.mustOK("ENABLE CONDSTORE")
	before := respCode(t, "HIGHESTMODSEQ", b.mustOK("SELECT INBOX")...)

	vanished := func() []string {
		t.Helper()
		a := e.login()
		a.mustOK("ENABLE QRESYNC")
		a.mustOK("SELECT INBOX")
		var got []string
		for _, l := range a.mustOK("UID FETCH 1:* (FLAGS) (CHANGEDSINCE " + strconv.FormatUint(before, 10) + " VANISHED)") {
			if strings.HasPrefix(l, "* VANISHED") {
				got = append(got, l)
			}
		}
		return got
	}
	b.mustOK(`UID STORE 3 +FLAGS.SILENT (\Deleted)`)
	b.mustOK("UID EXPUNGE 3")
	if got := vanished(); !slices.Equal(got, []string{"* VANISHED (EARLIER) 3"}) {
		t.Errorf("after the highest UID went: %q", got)
	}
	b.mustOK(`STORE 1:* +FLAGS.SILENT (\Deleted)`)
	b.mustOK("EXPUNGE")
	if got := vanished(); !slices.Equal(got, []string{"* VANISHED (EARLIER) 1:3"}) {
		t.Errorf("after every message went: %q", got)
	}
}

// TestHighestModSeqBelowHeldExpunge: while an expunge made elsewhere waits
// for a moment it may be sent (RFC 9051 7.5.1), MODSEQs above it may go
// out in FETCH responses; the server then says HIGHESTMODSEQ below the
// expunge (RFC 7162 3.2, erratum 1810), so that a client cut off there
// resyncs from it and hears of the expunge.
func TestHighestModSeqBelowHeldExpunge(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.deliverThree()
	a := e.login()
	a.mustOK("ENABLE QRESYNC")
	uidValidity := respCode(t, "UIDVALIDITY", a.mustOK("SELECT INBOX")...)

	b := e.login()
	b.mustOK("ENABLE CONDSTORE")
	b.mustOK("SELECT INBOX")
	b.mustOK(`UID STORE 1 +FLAGS.SILENT (\Deleted)`)
	_, tagged := b.cmd("UID EXPUNGE 1")
	expunged := respCode(t, "HIGHESTMODSEQ", tagged)
	b.mustOK(`UID STORE 3 +FLAGS (\Flagged)`)

	got := a.mustOK("FETCH 2 (FLAGS)") // no EXPUNGE may be sent during FETCH
	if !slices.ContainsFunc(got, func(l string) bool { return strings.HasPrefix(l, `* 3 FETCH (UID 3 FLAGS (\Flagged) MODSEQ (`) }) {
		t.Fatalf("FETCH: %q, want the flag change of message 3", got)
	}
	floor := respCode(t, "HIGHESTMODSEQ", got...)
	if floor >= expunged {
		t.Fatalf("HIGHESTMODSEQ %d during FETCH, not below the held expunge's %d", floor, expunged)
	}

	// A client cut off now resyncs from there and learns of the expunge.
	c := e.login()
	c.mustOK("ENABLE QRESYNC")
	resync := c.mustOK("SELECT INBOX (QRESYNC (" + strconv.FormatUint(uidValidity, 10) + " " + strconv.FormatUint(floor, 10) + " 1:3))")
	if !slices.Contains(resync, "* VANISHED (EARLIER) 1") {
		t.Errorf("resync from HIGHESTMODSEQ %d: %q, want VANISHED (EARLIER) 1", floor, resync)
	}
}

// changesHook runs before its sessions' next Changes call, once.
type changesHook struct {
	store.Store
	before atomic.Pointer[func()]
}

func (s *changesHook) Open(ctx context.Context, id int64) (store.Session, error) {
	sess, err := s.Store.Open(ctx, id)
	if err != nil {
		return nil, err
	}
	return &hookedSession{Session: sess, s: s}, nil
}

type hookedSession struct {
	store.Session
	s *changesHook
}

func (ss *hookedSession) Changes(ctx context.Context, mailboxID int64, since store.ModSeq) (*store.ChangeSet, error) {
	if f := ss.s.before.Swap(nil); f != nil {
		(*f)()
	}
	return ss.Session.Changes(ctx, mailboxID, since)
}

// TestQresyncSelectExpungeMeanwhile: a message expunged between the
// snapshot a QRESYNC SELECT builds its view from and its read of the
// changes is in the view (EXISTS counts it), so it is reported as a plain
// VANISHED afterwards, not as VANISHED (EARLIER) too, which would make
// the client take it out twice.
func TestQresyncSelectExpungeMeanwhile(t *testing.T) {
	t.Parallel()
	var hook *changesHook
	e := newTestEnv(t, func(cfg *Config) { hook = &changesHook{Store: cfg.Store}; cfg.Store = hook })
	e.deliverThree()
	a := e.login()
	a.mustOK("ENABLE QRESYNC")
	first := a.mustOK("SELECT INBOX")
	uidValidity, modSeq := respCode(t, "UIDVALIDITY", first...), respCode(t, "HIGHESTMODSEQ", first...)
	a.mustOK("UNSELECT")

	expunge := func() {
		sess := e.session()
		mb, err := sess.Mailbox(context.Background(), "INBOX")
		if err == nil {
			_, err = sess.Expunge(context.Background(), mb.ID, store.UIDSetOf(2), false)
		}
		if err != nil {
			t.Error(err)
		}
	}
	hook.before.Store(&expunge)
	got := a.mustOK("SELECT INBOX (QRESYNC (" + strconv.FormatUint(uidValidity, 10) + " " + strconv.FormatUint(modSeq, 10) + "))")
	if !slices.Contains(got, "* 3 EXISTS") {
		t.Fatalf("SELECT: %q, want the view taken before the expunge", got)
	}
	got = append(got, a.mustOK("NOOP")...)
	var vanished []string
	for _, l := range got {
		if strings.HasPrefix(l, "* VANISHED") {
			vanished = append(vanished, l)
		}
	}
	if !slices.Equal(vanished, []string{"* VANISHED 2"}) {
		t.Errorf("SELECT and NOOP: %q, want one * VANISHED 2, no (EARLIER) for a message EXISTS counted", vanished)
	}
}

// TestCondstoreEnabledWhileSelected: the first CONDSTORE enabling command
// in the selected state tells the client the mailbox's HIGHESTMODSEQ,
// which its SELECT did not need to (RFC 7162 3.1); later ones do not.
func TestCondstoreEnabledWhileSelected(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.deliver("INBOX", "Subject: one\r\n\r\none\r\n")
	for _, enable := range []string{"FETCH 1 (MODSEQ)", "ENABLE CONDSTORE", "STATUS INBOX (HIGHESTMODSEQ)"} {
		c := e.login()
		c.mustOK("SELECT INBOX")
		got := c.mustOK(enable)
		if !slices.ContainsFunc(got, func(l string) bool { return strings.HasPrefix(l, "* OK [HIGHESTMODSEQ ") }) {
			t.Errorf("%s in the selected state: %q, want HIGHESTMODSEQ", enable, got)
		}
		if again := c.mustOK("FETCH 1 (MODSEQ)"); slices.ContainsFunc(again, func(l string) bool { return strings.HasPrefix(l, "* OK [HIGHESTMODSEQ ") }) {
			t.Errorf("after %s, FETCH MODSEQ again: %q", enable, again)
		}
	}
}

// TestForgottenExpunges: a store that keeps one expunge per mailbox has
// forgotten when UIDs 1 and 2 went; a session whose view is older, a
// QRESYNC SELECT and a UID FETCH VANISHED from before them still learn of
// every expunged message, found by comparing UIDs (RFC 7162 5).
func TestForgottenExpunges(t *testing.T) {
	t.Parallel()
	e := newTestEnvStore(t, teststore.Options{KeptExpunges: 1})
	for i := range 6 {
		e.deliver("INBOX", "Subject: "+strconv.Itoa(i)+"\r\n\r\nbody\r\n")
	}
	a := e.login()
	a.mustOK("ENABLE QRESYNC")
	sel := a.mustOK("SELECT INBOX")
	uidValidity, before := respCode(t, "UIDVALIDITY", sel...), respCode(t, "HIGHESTMODSEQ", sel...)

	b := e.login()
	b.mustOK("SELECT INBOX")
	for _, uid := range []string{"1", "2", "3"} {
		b.mustOK(`UID STORE ` + uid + ` +FLAGS.SILENT (\Deleted)`)
		b.mustOK("UID EXPUNGE " + uid)
	}
	e.deliver("INBOX", "Subject: 7\r\n\r\nbody\r\n")

	// The session selected before the expunges.
	if got := a.mustOK("NOOP"); !slices.Contains(got, "* VANISHED 1:3") || !slices.Contains(got, "* 4 EXISTS") {
		t.Errorf("NOOP of a session from before the forgotten expunges: %q, want VANISHED 1:3 and 4 EXISTS", got)
	}

	vanished := func(lines []string) []string {
		var got []string
		for _, l := range lines {
			if strings.HasPrefix(l, "* VANISHED") {
				got = append(got, l)
			}
		}
		return got
	}
	c := e.login()
	c.mustOK("ENABLE QRESYNC")
	for _, known := range []string{"", " 1:6", " 2:5"} {
		cmd := "SELECT INBOX (QRESYNC (" + strconv.FormatUint(uidValidity, 10) + " " + strconv.FormatUint(before, 10) + known + "))"
		want := "* VANISHED (EARLIER) 1:3"
		if known == " 2:5" {
			want = "* VANISHED (EARLIER) 2:3"
		}
		if got := vanished(c.mustOK(cmd)); !slices.Equal(got, []string{want}) {
			t.Errorf("%s: %q, want %q", cmd, got, want)
		}
	}
	got := c.mustOK("UID FETCH 1:* (FLAGS) (CHANGEDSINCE " + strconv.FormatUint(before, 10) + " VANISHED)")
	if v := vanished(got); !slices.Equal(v, []string{"* VANISHED (EARLIER) 1:3"}) {
		t.Errorf("UID FETCH VANISHED from before the forgotten expunges: %q, want VANISHED (EARLIER) 1:3", got)
	}
	if !slices.ContainsFunc(got, func(l string) bool { return strings.HasPrefix(l, "* 4 FETCH (UID 7 ") }) {
		t.Errorf("UID FETCH CHANGEDSINCE: %q, want the message added since", got)
	}
}
