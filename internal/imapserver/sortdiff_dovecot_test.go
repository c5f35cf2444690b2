package imapserver

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/buzon-mail/buzon/internal/store/teststore"
)

// sortDiffCommands are the SORT commands TestSortDovecot compares: every
// key, REVERSE, several keys, search keys and charsets, and commands
// either server should refuse.
var sortDiffCommands = []string{
	"SORT (ARRIVAL) UTF-8 ALL",
	"SORT (REVERSE ARRIVAL) UTF-8 ALL",
	"SORT (DATE) UTF-8 ALL",
	"SORT (REVERSE DATE) UTF-8 ALL",
	"SORT (SIZE) UTF-8 ALL",
	"SORT (REVERSE SIZE) UTF-8 ALL",
	"SORT (SUBJECT) UTF-8 ALL",
	"SORT (FROM) UTF-8 ALL",
	"SORT (TO) UTF-8 ALL",
	"SORT (CC) UTF-8 ALL",
	"SORT (DISPLAYFROM) UTF-8 ALL",
	"SORT (DISPLAYTO) UTF-8 ALL",
	"SORT (SUBJECT DATE) UTF-8 ALL",
	"SORT (REVERSE SUBJECT REVERSE DATE) UTF-8 ALL",
	"SORT (FROM REVERSE SIZE) UTF-8 ALL",
	"UID SORT (DATE) UTF-8 ALL",
	"UID SORT (SUBJECT) UTF-8 SEEN",
	"SORT (DATE) US-ASCII UNSEEN",
	"SORT (SIZE) UTF-8 OR FLAGGED DELETED",
	"SORT (ARRIVAL) UTF-8 MODSEQ 1",
	"SORT (SUBJECT) ISO-8859-1 SUBJECT date",
	"sort (date) utf-8 all",
	"SORT (DATE) UTF-8 UID 100000",
	"SORT (DATE) X-NO-SUCH-CHARSET ALL",
	"SORT () UTF-8 ALL",
	"SORT (FOO) UTF-8 ALL",
	"SORT (REVERSE) UTF-8 ALL",
	"SORT (DATE) ALL",
	"SORT DATE UTF-8 ALL",
}

// sortDiffLeftOut are messages of the search corpus that the two servers
// sort apart on purpose, so that every other difference fails the test.
// Each is covered by a test of its own.
var sortDiffLeftOut = map[string]string{
	// TestSentTime: buzon reads Date fields as SENTON does; Dovecot
	// sorts these by their arrival, as for a Date it cannot read.
	"Date: Monday, 04-Mar-24 10:00:00 GMT": "RFC 850's form",
	"Date: Mon Mar  4 10:00:00 2024":       "asctime's form",
	"Date: 2024-03-04T10:00:00Z":           "ISO 8601",
	// Unlabelled 8-bit: buzon reads "Caf\xe9" as Latin-1, as SEARCH
	// does, and sorts it as "Café"; Dovecot sorts it after every "Caf"
	// followed by a letter.
	"raw8bit.eml": "a Latin-1 subject",
	// A Cc of "unterminated <x@y" sorts by the mailbox ENVELOPE gives it
	// in buzon, by something else in Dovecot.
	"addresses.eml": "a broken Cc",
}

// TestSortDovecot runs SORT commands on this server and on Dovecot,
// holding the same messages (those of TestSearchDovecot but
// sortDiffLeftOut), and fails where the answers differ.
func TestSortDovecot(t *testing.T) {
	teststore.EmbeddedOnly(t)
	addr := searchDovecot(t)
	msgs := slices.DeleteFunc(searchDiffCorpus(t), func(m searchDiffMessage) bool {
		_, out := sortDiffLeftOut[filepath.Base(m.name)]
		return out
	})
	bc, dc, mailbox, _ := diffClients(t, addr, "sortdiff", msgs)
	for c, mailbox := range map[*client]string{bc: "INBOX", dc: mailbox} {
		c.mustOK("ENABLE CONDSTORE")
		c.mustOK("SELECT " + mailbox)
	}
	run := func(round string) {
		for _, cmd := range sortDiffCommands {
			b, d := sortAnswer(bc, cmd), sortAnswer(dc, cmd)
			if b == d {
				continue
			}
			t.Errorf("%s: %s\n  buzon:   %s\n  dovecot: %s", round, cmd, b, d)
		}
	}
	run("all")
	// Again with holes in the UIDs, so numbers and UIDs differ.
	bc.mustOK("EXPUNGE")
	dc.mustOK("EXPUNGE")
	run("expunged")
}

var sortModSeq = regexp.MustCompile(`\(MODSEQ \d+\)`)

// sortAnswer runs a SORT command and returns what to compare of its
// answer: the SORT response with MODSEQ's value left out, the status and
// the response code of a NO.
func sortAnswer(c *client, cmd string) string {
	untagged, tagged := c.cmd(cmd)
	_, status, _ := strings.Cut(tagged, " ")
	word, rest, _ := strings.Cut(status, " ")
	out := []string{word}
	if word == "NO" && strings.HasPrefix(rest, "[") {
		code, _, _ := strings.Cut(rest[1:], "]")
		code, _, _ = strings.Cut(code, " ")
		out = append(out, "["+code+"]")
	}
	for _, l := range untagged {
		if strings.HasPrefix(l, "* SORT") {
			out = append(out, sortModSeq.ReplaceAllString(l, "(MODSEQ)"))
		}
	}
	return strings.Join(out, " ")
}
