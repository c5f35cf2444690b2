package imapserver

import (
	"strings"
	"testing"
)

// TestSortResAfterFailedSync: a SORT RETURN (SAVE) that sorted its
// messages but ends in NO because the sync after it failed leaves the
// search result variable empty, as a SEARCH does (RFC 5182 2.1).
func TestSortResAfterFailedSync(t *testing.T) {
	var fs *failingSync
	e := newTestEnv(t, func(cfg *Config) {
		fs = &failingSync{Store: cfg.Store}
		cfg.Store = fs
	})
	e.deliver("INBOX", "Subject: one\n\nfirst\n", `\Seen`)
	e.deliver("INBOX", "Subject: two\n\nsecond\n")
	c := e.login()
	c.mustOK("SELECT INBOX")
	c.mustOK("SORT RETURN (SAVE) (SUBJECT) UTF-8 SEEN")
	if got := strings.Join(c.mustOK("UID SEARCH $"), " "); got != "* SEARCH 1" {
		t.Fatalf("after SAVE SEEN: %q", got)
	}
	fs.armed.Store(true)
	if _, tagged := c.cmd("SORT RETURN (SAVE) (SUBJECT) UTF-8 BODY second"); !strings.Contains(tagged, " NO [UNAVAILABLE]") {
		t.Fatalf("SORT whose sync fails: %q, want NO [UNAVAILABLE]", tagged)
	}
	if got := strings.Join(c.mustOK("UID SEARCH $"), " "); got != "* SEARCH" {
		t.Errorf("after the NO: %q, want an empty result", got)
	}
}
