package imapserver

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/teststore"
)

// TestFetchReadsAhead: a FETCH of bodies over many messages opens them
// several at a time where the store can (teststore.Batching makes both
// stores able), sends each as stored, and closes what it opened by the
// end of the command. Messages expunged elsewhere, too large to read
// ahead, or named here and there change nothing the client sees.
func TestFetchReadsAhead(t *testing.T) {
	t.Parallel()
	var bs *teststore.Batching
	e := newTestEnv(t, func(cfg *Config) {
		bs = teststore.BatchBodies(cfg.Store)
		cfg.Store = bs
	})
	var msgs []string
	for i := 1; i <= 40; i++ {
		msg := fmt.Sprintf("Subject: message %d\r\n\r\n%s", i, strings.Repeat("a line\r\n", i))
		if i == 10 {
			msg += strings.Repeat("0123456789abcdef\r\n", 90_000) // 1.6 MB: not read ahead
		}
		e.deliver("INBOX", msg)
		msgs = append(msgs, msg)
	}
	c := e.login()
	c.mustOK("SELECT INBOX")

	// check checks the answers to a FETCH of BODY.PEEK[] of the messages
	// numbered want, and that no body was left open.
	check := func(cmd string, untagged []string, want []int) {
		t.Helper()
		var got []string
		for _, line := range untagged {
			if strings.Contains(line, " FETCH ") {
				got = append(got, line)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d FETCH responses, want %d", cmd, len(got), len(want))
		}
		for i, n := range want {
			msg := msgs[n-1]
			uid := "" // UIDs are message numbers here
			if strings.HasPrefix(cmd, "UID ") {
				uid = fmt.Sprintf("UID %d ", n)
			}
			if exp := fmt.Sprintf("* %d FETCH (%sBODY[] {%d}\r\n%s)", n, uid, len(msg), msg); got[i] != exp {
				t.Errorf("%s: response %d is %.60q, want message %d", cmd, i, got[i], n)
			}
		}
		if open, twice := bs.Unclosed.Load(), bs.ClosedTwice.Load(); open != 0 || twice != 0 {
			t.Errorf("%s: %d bodies left open, %d closed twice", cmd, open, twice)
		}
	}
	calls := func() int32 { return bs.OpenBodyCalls.Load() + bs.OpenBodiesCalls.Load() }

	all := make([]int, 40)
	for i := range all {
		all[i] = i + 1
	}
	check("FETCH 1:40", c.mustOK("FETCH 1:40 BODY.PEEK[]"), all)
	t.Logf("FETCH of 40 bodies: %d OpenBody calls, %d OpenBodies calls", bs.OpenBodyCalls.Load(), bs.OpenBodiesCalls.Load())
	if n := calls(); bs.OpenBodiesCalls.Load() == 0 || n > 6 {
		t.Errorf("FETCH of 40 bodies called the store %d times (%d OpenBodies); want a few", n, bs.OpenBodiesCalls.Load())
	}

	before := calls()
	check("UID FETCH 3,5:7,20,33", c.mustOK("UID FETCH 3,5:7,20,33 BODY.PEEK[]"), []int{3, 5, 6, 7, 20, 33})
	if n := calls() - before; n > 3 {
		t.Errorf("UID FETCH of 6 bodies called the store %d times; want fewer", n)
	}
	check("FETCH 40", c.mustOK("FETCH 40 BODY.PEEK[]"), []int{40})

	// Message 5 expunged elsewhere stays in the view; FETCH answers for
	// the others and then NO (RFC 5530 EXPUNGEISSUED), as without
	// read-ahead.
	sess := e.session()
	inbox, err := sess.Mailbox(context.Background(), "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sess.Expunge(context.Background(), inbox.ID, store.UIDSetOf(5), false); err != nil {
		t.Fatal(err)
	}
	untagged, tagged := c.cmd("FETCH 1:8 BODY.PEEK[]")
	if !strings.Contains(tagged, "NO [EXPUNGEISSUED]") {
		t.Errorf("FETCH of a message expunged elsewhere: %s", tagged)
	}
	check("FETCH 1:8", untagged, []int{1, 2, 3, 4, 6, 7, 8})
}
