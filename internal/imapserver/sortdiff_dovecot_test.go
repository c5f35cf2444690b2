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
	t.Parallel()
	teststore.EmbeddedOnly(t)
	addr := searchDovecot(t)
	msgs := slices.DeleteFunc(searchDiffCorpus(t), func(m searchDiffMessage) bool {
		_, out := sortDiffLeftOut[filepath.Base(m.name)]
		return out
	})
	bc, dc, mailbox, _ := diffClients(t, addr, "sortdiff", msgs)
	compareDovecot(t, bc, dc, mailbox, sortDiffCommands, sortAnswer)
}

// compareDovecot selects the mailbox on each server, with CONDSTORE
// enabled, runs cmds on both and fails where answer, what to compare of a
// command's answer, differs; then again after an EXPUNGE, so that
// numbers and UIDs differ and parents are gone.
func compareDovecot(t *testing.T, bc, dc *client, mailbox string, cmds []string, answer func(c *client, cmd string) string) {
	t.Helper()
	for c, mailbox := range map[*client]string{bc: "INBOX", dc: mailbox} {
		c.mustOK("ENABLE CONDSTORE")
		c.mustOK("SELECT " + mailbox)
	}
	run := func(round string) {
		for _, cmd := range cmds {
			b, d := answer(bc, cmd), answer(dc, cmd)
			if testing.Verbose() {
				t.Logf("%s: %s\n  buzon:   %s", round, cmd, b)
			}
			if b != d {
				t.Errorf("%s: %s\n  buzon:   %s\n  dovecot: %s", round, cmd, b, d)
			}
		}
	}
	run("all")
	bc.mustOK("EXPUNGE")
	dc.mustOK("EXPUNGE")
	run("expunged")
}

var sortModSeq = regexp.MustCompile(`\(MODSEQ \d+\)`)

// sortAnswer is what TestSortDovecot compares of a SORT command's
// answer: answerOf's, with MODSEQ's value left out.
func sortAnswer(c *client, cmd string) string {
	return answerOf(c, cmd, "SORT", func(l string) string { return sortModSeq.ReplaceAllString(l, "(MODSEQ)") })
}

// answerOf runs a command and returns what to compare of its answer:
// the status, the response code of a NO, and the untagged responses
// named resp, each through clean.
func answerOf(c *client, cmd, resp string, clean func(string) string) string {
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
		if strings.HasPrefix(l, "* "+resp) {
			out = append(out, clean(l))
		}
	}
	return strings.Join(out, " ")
}
