package imapserver

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/teststore"
)

// TestFetchVanishedOnce: a UID FETCH (CHANGEDSINCE n VANISHED) reports
// each expunge once. A message expunged elsewhere that the session's
// view still holds goes as a plain VANISHED, which takes it out of the
// client's count (RFC 7162 3.2.10), not also as VANISHED (EARLIER),
// which a client reads as news of a message it no longer counts: told
// both, a client that drops the UID at the first has no message to take
// out at the second, and its count stays one too high. Expunges from
// before the view go as VANISHED (EARLIER), whether the store still
// knows when each went or has forgotten (RFC 7162 5).
func TestFetchVanishedOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts teststore.Options
		star bool // UID FETCH 1:*, else 1:5
	}{
		{"remembered", teststore.Options{}, false},
		{"remembered, 1:*", teststore.Options{}, true},
		// One expunge kept: the three below leave the store knowing only
		// that UIDs below the last went some time after n.
		{"forgotten", teststore.Options{KeptExpunges: 1}, false},
		{"forgotten, 1:*", teststore.Options{KeptExpunges: 1}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnvStore(t, tc.opts)
			for i := range 5 {
				e.deliver("INBOX", "Subject: "+strconv.Itoa(i+1)+"\r\n\r\nbody\r\n")
			}
			sess := e.session()
			inbox, err := sess.Mailbox(context.Background(), "INBOX")
			if err != nil {
				t.Fatal(err)
			}
			expunge := func(uid store.UID) {
				t.Helper()
				if _, err := sess.Expunge(context.Background(), inbox.ID, store.UIDSetOf(uid), false); err != nil {
					t.Fatal(err)
				}
			}

			c := e.login()
			c.mustOK("ENABLE QRESYNC")
			since := respCode(t, "HIGHESTMODSEQ", c.mustOK("EXAMINE INBOX")...)
			c.mustOK("UNSELECT")
			expunge(1)
			expunge(2)
			c.mustOK("SELECT INBOX") // the view: 3, 4, 5
			expunge(4)               // elsewhere, not yet reported

			// UIDs within the view, and beyond it, which makes the view
			// catch up before the command runs.
			cmd := "UID FETCH 1:5 (FLAGS) (CHANGEDSINCE " + strconv.FormatUint(since, 10) + " VANISHED)"
			if tc.star {
				cmd = strings.Replace(cmd, "1:5", "1:*", 1)
			}
			var vanished []string
			for _, l := range c.mustOK(cmd) {
				if strings.HasPrefix(l, "* VANISHED") {
					vanished = append(vanished, l)
				}
			}
			slices.Sort(vanished)
			if want := []string{"* VANISHED (EARLIER) 1:2", "* VANISHED 4"}; !slices.Equal(vanished, want) {
				t.Errorf("%s: %q, want %q", cmd, vanished, want)
			}
			// What the client counts is what there is.
			if got := c.mustOK("NOOP"); len(got) > 0 {
				t.Errorf("NOOP after: %q, want nothing left to report", got)
			}
			if got := c.mustOK("SEARCH ALL"); !slices.Equal(got, []string{"* SEARCH 1 2"}) {
				t.Errorf("SEARCH ALL after: %q, want messages 1 and 2", got)
			}
		})
	}
}

func TestMergeUIDs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ a, b, want []store.UID }{
		{nil, nil, []store.UID{}},
		{[]store.UID{1, 3}, nil, []store.UID{1, 3}},
		{nil, []store.UID{2}, []store.UID{2}},
		{[]store.UID{1, 3, 5}, []store.UID{2, 3, 6}, []store.UID{1, 2, 3, 5, 6}},
		{[]store.UID{4, 5}, []store.UID{1, 2}, []store.UID{1, 2, 4, 5}},
	} {
		if got := mergeUIDs(tc.a, tc.b); !slices.Equal(got, tc.want) {
			t.Errorf("mergeUIDs(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
