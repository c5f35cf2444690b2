package imapserver

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestQresyncSelectFails: a QRESYNC SELECT whose read of the changes
// fails (a store briefly unavailable) is answered NO and leaves no
// mailbox selected, whether one was selected before or not (RFC 9051
// 6.3.2). It used to leave the mailbox selected behind the NO, so the
// client, taking the session for unselected, had commands answered
// against a mailbox whose state it had never been told.
func TestQresyncSelectFails(t *testing.T) {
	t.Parallel()
	var fc *failingChanges
	e := newTestEnv(t, func(cfg *Config) {
		fc = &failingChanges{Store: cfg.Store, failed: make(chan struct{}, 1)}
		cfg.Store = fc
	})
	e.deliverThree()
	c := e.login()
	c.mustOK("ENABLE QRESYNC")
	c.mustOK(`CREATE Other`)
	first := c.mustOK("EXAMINE INBOX")
	uidValidity, modSeq := respCode(t, "UIDVALIDITY", first...), respCode(t, "HIGHESTMODSEQ", first...)
	c.mustOK("UNSELECT")
	resync := "SELECT INBOX (QRESYNC (" + strconv.FormatUint(uidValidity, 10) + " " + strconv.FormatUint(modSeq, 10) + "))"

	for _, before := range []string{"", "SELECT Other", "SELECT INBOX"} {
		t.Run("after "+cmp.Or(before, "nothing"), func(t *testing.T) {
			if before != "" {
				c.mustOK(before)
			}
			fc.armed.Store(true)
			untagged, tagged := c.cmd(resync)
			if !strings.Contains(tagged, " NO ") {
				t.Fatalf("%s with Changes failing: %q %q, want NO", resync, untagged, tagged)
			}
			<-fc.failed
			if i := slices.IndexFunc(untagged, func(l string) bool {
				return strings.HasSuffix(l, " EXISTS") || strings.HasPrefix(l, "* FLAGS ")
			}); i >= 0 {
				t.Errorf("failed SELECT sent %q: a client takes that for the mailbox's state", untagged[i])
			}
			// RFC 9051 6.3.2: no mailbox is selected, so commands of
			// the selected state are refused.
			for _, cmd := range []string{"FETCH 1 (FLAGS)", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)"} {
				if untagged, tagged := c.cmd(cmd); !strings.Contains(tagged, " BAD ") || len(untagged) > 0 {
					t.Errorf("%s after the failed SELECT: %q %q, want BAD", cmd, untagged, tagged)
				}
			}
			// And the next SELECT works and starts afresh.
			if got := c.mustOK(resync); !slices.Contains(got, "* 3 EXISTS") {
				t.Errorf("%s again: %q, want the mailbox selected", resync, got)
			}
			c.mustOK("UNSELECT")
		})
	}
}
