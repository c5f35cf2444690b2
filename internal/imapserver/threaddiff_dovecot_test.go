package imapserver

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/buzon-mail/buzon/internal/clienttest"
	"github.com/buzon-mail/buzon/internal/store/teststore"
)

// threadDiffCommands are the THREAD commands TestThreadDovecot compares:
// both algorithms, by number and UID, with search keys and charsets, and
// commands either server should refuse.
var threadDiffCommands = []string{
	"THREAD REFERENCES UTF-8 ALL",
	"UID THREAD REFERENCES UTF-8 ALL",
	"THREAD ORDEREDSUBJECT UTF-8 ALL",
	"UID THREAD ORDEREDSUBJECT UTF-8 ALL",
	"THREAD REFERENCES US-ASCII UNSEEN",
	"UID THREAD REFERENCES UTF-8 NOT DELETED",
	"THREAD ORDEREDSUBJECT UTF-8 OR FLAGGED SEEN",
	"THREAD REFERENCES UTF-8 SUBJECT plan",
	"THREAD REFERENCES UTF-8 FROM example.org",
	"THREAD REFERENCES UTF-8 SENTSINCE 5-Mar-2024",
	"THREAD REFERENCES UTF-8 MODSEQ 1",
	"THREAD REFERENCES ISO-8859-1 SUBJECT menu",
	"thread references utf-8 all",
	"THREAD REFERENCES UTF-8 UID 100000",
	"THREAD REFERENCES X-NO-SUCH-CHARSET ALL",
	"THREAD REFERENCES ALL",
	"THREAD (REFERENCES) UTF-8 ALL",
}

// Where Dovecot departs from RFC 5256, the case is left out here, and
// covered by tests of its own:
//   - "THREAD REFS": Dovecot's own algorithm, not offered here (BAD, as
//     for any algorithm not offered; TestParseThread).
//   - No message found: Dovecot answers "* THREAD " with a space, which
//     RFC 5256 5's grammar does not have; buzon answers "* THREAD"
//     (TestThread). threadAnswer takes the space away.
// Both servers thread every message of the corpus alike, so none is
// left out beyond those SORT leaves out (sortDiffLeftOut), whose
// differences of sent date would show here too.

// TestThreadDovecot runs THREAD commands on this server and on Dovecot,
// holding the same messages: those of testdata/thread, which go through
// the cases of RFC 5256 4, those of TestSortDovecot, and where Dovecot's
// script can write them, messages like a year of a person's mail, whose
// subjects repeat. It fails where the answers differ.
func TestThreadDovecot(t *testing.T) {
	t.Parallel()
	teststore.EmbeddedOnly(t)
	addr := searchDovecot(t)
	msgs := threadDiffCorpus(t)
	msgs = slices.DeleteFunc(msgs, func(m searchDiffMessage) bool {
		_, out := sortDiffLeftOut[filepath.Base(m.name)]
		return out
	})
	bc, dc, mailbox, _ := diffClients(t, addr, "threaddiff", msgs)
	compareDovecot(t, bc, dc, mailbox, threadDiffCommands, threadAnswer)
}

// threadDiffCorpus reads the messages of the differential test.
func threadDiffCorpus(t *testing.T) []searchDiffMessage {
	files, err := filepath.Glob("testdata/thread/*.eml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/thread: %v", err)
	}
	var msgs []searchDiffMessage
	add := func(name, raw string) {
		i := len(msgs)
		msgs = append(msgs, searchDiffMessage{
			name:  name,
			raw:   crlf(raw),
			flags: searchDiffFlags[i%len(searchDiffFlags)],
			date:  searchDiffDates[i%len(searchDiffDates)],
		})
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		add(f, string(b))
	}
	for _, m := range generatedMail(t, 120) {
		add("generated", m)
	}
	for _, m := range searchDiffCorpus(t) {
		add(m.name, m.raw)
	}
	return msgs
}

// generatedMail returns n messages from dovecot.sh's generator, or none
// where it cannot run.
func generatedMail(t *testing.T, n int) []string {
	if _, err := os.Stat(clienttest.DovecotScript); err != nil {
		return nil
	}
	if _, err := exec.LookPath("python3"); err != nil {
		return nil
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "gen.mbox")
	cmd := exec.Command(clienttest.DovecotScript, "mbox", file, strconv.Itoa(n))
	cmd.Env = append(os.Environ(), "PEER_DIR="+filepath.Join(dir, "peer"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Logf("dovecot.sh mbox: %v\n%s", err, out)
		return nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, m := range strings.Split("\n"+string(b), "\nFrom ") {
		if _, rest, ok := strings.Cut(m, "\n"); ok && strings.TrimSpace(rest) != "" {
			msgs = append(msgs, rest)
		}
	}
	return msgs
}

// threadAnswer is what TestThreadDovecot compares of a THREAD command's
// answer: answerOf's, with Dovecot's "* THREAD " (see above) written
// as RFC 5256 5 has it.
func threadAnswer(c *client, cmd string) string {
	return answerOf(c, cmd, "THREAD", func(l string) string { return strings.TrimSuffix(l, " ") })
}
