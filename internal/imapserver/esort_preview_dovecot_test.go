package imapserver

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/buzon-mail/buzon/internal/message"
	"github.com/buzon-mail/buzon/internal/store/teststore"
)

// esortDiffCommands are the SORT RETURN commands TestESortDovecot
// compares: each result option alone and together, by number and by UID,
// searches that find nothing, MODSEQ, SAVE and the "$" it fills, and
// commands either server should refuse.
var esortDiffCommands = []string{
	"SORT RETURN (MIN MAX COUNT ALL) (ARRIVAL) UTF-8 ALL",
	"SORT RETURN (ALL) (REVERSE DATE) UTF-8 ALL",
	"SORT RETURN () (SUBJECT) UTF-8 ALL",
	"SORT RETURN (ALL) (DISPLAYFROM) UTF-8 ALL",
	"UID SORT RETURN (MIN MAX) (SIZE) UTF-8 ALL",
	"UID SORT RETURN (ALL COUNT) (FROM REVERSE SIZE) UTF-8 SEEN",
	"SORT RETURN (COUNT) (DATE) UTF-8 UID 100000",
	"SORT RETURN (MIN MAX ALL) (DATE) UTF-8 UID 100000",
	"SORT RETURN (MIN) (REVERSE ARRIVAL) UTF-8 UNSEEN",
	"SORT RETURN (MAX) (REVERSE SUBJECT REVERSE DATE) UTF-8 ALL",
	"SORT RETURN (ALL) (ARRIVAL) UTF-8 MODSEQ 1",
	"SORT RETURN (MIN MAX) (REVERSE SIZE) UTF-8 MODSEQ 1",
	"sort return (count all) (to) utf-8 deleted",
	"SORT RETURN (SAVE MIN) (SIZE) UTF-8 ALL",
	"SEARCH RETURN (ALL) $",
	"SORT RETURN (SAVE) (REVERSE SIZE) UTF-8 FLAGGED",
	"UID SEARCH RETURN (ALL) $",
	"UID SORT RETURN (SAVE ALL) (DATE) UTF-8 OR SEEN DRAFT",
	"SEARCH RETURN (COUNT ALL) $",
	"SORT RETURN (SAVE MIN MAX) (SUBJECT) UTF-8 ALL",
	"SEARCH RETURN (ALL) $",
	"SORT RETURN (FOO) (DATE) UTF-8 ALL",
	"SORT RETURN (ALL) (DATE) X-NO-SUCH-CHARSET ALL",
	"SORT RETURN (ALL) DATE UTF-8 ALL",
}

// TestESortDovecot runs SORT RETURN commands on this server and on
// Dovecot, holding the messages of TestSortDovecot, and fails where the
// answers differ: ALL as written, since the order of its numbers and
// which of them make ranges is the answer (RFC 5267 3).
func TestESortDovecot(t *testing.T) {
	t.Parallel()
	teststore.EmbeddedOnly(t)
	addr := searchDovecot(t)
	msgs := slices.DeleteFunc(searchDiffCorpus(t), func(m searchDiffMessage) bool {
		_, out := sortDiffLeftOut[filepath.Base(m.name)]
		return out
	})
	bc, dc, mailbox, _ := diffClients(t, addr, "esortdiff", msgs)
	compareDovecot(t, bc, dc, mailbox, esortDiffCommands, func(c *client, cmd string) string {
		return answerOf(c, cmd, "ESEARCH", esortItems)
	})
}

var esortTag = regexp.MustCompile(`^\* ESEARCH \(TAG "[^"]*"\) ?`)

// esortItems is what TestESortDovecot compares of an ESEARCH response:
// its return data without the tag, in order of name (RFC 4731 3.1 lets
// them come in any), MODSEQ without its value, which the servers count
// apart.
func esortItems(l string) string {
	f := strings.Fields(esortTag.ReplaceAllString(l, ""))
	var items []string
	for i := 0; i < len(f); i++ {
		item := strings.ToUpper(f[i])
		switch {
		case item == "UID" || i+1 == len(f):
		case item == "MODSEQ":
			i++
		default:
			i++
			item += " " + f[i]
		}
		items = append(items, item)
	}
	slices.Sort(items)
	return "ESEARCH " + strings.Join(items, " ")
}

// previewDiffAccepted are the messages whose previews Dovecot makes
// otherwise, by design on one side or the other; each says why. Every
// other message must have the same preview on both.
var previewDiffAccepted = map[string]string{
	// Dovecot makes its preview of the first leaf part alone, and of
	// nothing when that is no text it can read; buzon reads the first
	// text a reader sees, wherever it is.
	"broken-headers.eml":           "Dovecot reads the first part alone",
	"deep.eml":                     "Dovecot reads the first part alone",
	"header-cut-by-delimiter.eml":  "Dovecot reads the first part alone",
	"message-global.eml":           "Dovecot reads the first part alone",
	"no-boundary.eml":              "Dovecot reads the first part alone",
	"unused-boundary.eml":          "Dovecot reads the first part alone",
	"html-only-inline.raw":         "Dovecot reads the first part alone",
	"multipart-wo-boundary.raw":    "Dovecot reads the first part alone",
	"ctype-invalid-characters.raw": "Dovecot reads the first part alone",
	"empty-ctype-bad-content.raw":  "Dovecot reads the first part alone",
	"unknowncte.eml":               "Dovecot makes nothing of an unknown encoding; buzon passes it through, as SEARCH reads it",
	// A text part that is an attachment is not what a reader sees
	// first: buzon passes over it, Dovecot does not.
	"global.eml":                          "a text attachment first",
	"attachment-only-text-attachment.raw": "a text attachment alone",
	// 8-bit text without a charset: buzon reads it as Windows-1252, as
	// SEARCH and header values do; Dovecot makes U+FFFD of it, or
	// sends it on as it is, not UTF-8.
	"raw8bit.eml":                            "unlabelled 8-bit text",
	"mime-bad-content-transfer-encoding.raw": "unlabelled 8-bit text",
	"non-mime-missing-charset.raw":           "unlabelled 8-bit text",
	"chardet-fail.raw":                       "unlabelled 8-bit text",
	"chardet-success-big-5.raw":              "unlabelled 8-bit text",
	"chardet-success-iso-8859-1.raw":         "unlabelled 8-bit text",
	// buzon leaves out an HTML document's <head>, its <title> with
	// it, and the zero-width characters that newsletters pad their
	// preview text with; Dovecot keeps both.
	"non-mime-html-charset-header-only.raw": "an HTML <title>",
	"non-mime-html.raw":                     "an HTML <title>",
	"newsletter.eml":                        "an HTML <title> and zero-width padding",
}

// TestPreviewDovecot fetches the PREVIEW of every message of the search
// corpus and of testdata/preview from this server and from Dovecot. Where
// RFC 8970 fixes the answer, buzon's must keep to it: a string, never NIL
// without LAZY, valid UTF-8 of at most 256 characters (200 here). What
// the text is, the RFC leaves to the server: the two must agree but on
// previewDiffAccepted, which is logged.
func TestPreviewDovecot(t *testing.T) {
	t.Parallel()
	teststore.EmbeddedOnly(t)
	addr := searchDovecot(t)
	msgs := searchDiffCorpus(t)
	files, _ := filepath.Glob("testdata/preview/*.eml")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, searchDiffMessage{name: f, raw: string(b), flags: "()", date: searchDiffDates[0]})
	}
	bc, dc, mailbox, kept := diffClients(t, addr, "previewdiff", msgs)
	bc.mustOK("SELECT INBOX")
	dc.mustOK("SELECT " + mailbox)
	ours, theirs := fetchPreviews(t, bc), fetchPreviews(t, dc)
	same := 0
	for i, m := range kept {
		name := filepath.Base(m.name)
		b, bok := ours[i+1]
		d, dok := theirs[i+1]
		if !bok || b.kind != 's' {
			t.Errorf("%s: buzon's PREVIEW %v, want a string (RFC 8970 3.2)", name, b)
			continue
		}
		if !utf8.ValidString(b.s) || utf8.RuneCountInString(b.s) > message.PreviewChars || strings.TrimSpace(b.s) != b.s {
			t.Errorf("%s: buzon's PREVIEW %q: not trimmed valid UTF-8 of at most %d characters", name, b.s, message.PreviewChars)
		}
		switch why, accepted := previewDiffAccepted[name]; {
		case dok && d.kind == 's' && d.s == b.s:
			same++
			if accepted {
				t.Errorf("%s: accepted as different (%s), but the same now: %q", name, why, b.s)
			}
		case accepted:
			t.Logf("%s: %s\n  buzon:   %q\n  dovecot: %v", name, why, b.s, d)
		default:
			t.Errorf("%s: previews differ\n  buzon:   %q\n  dovecot: %v", name, b.s, d)
		}
	}
	t.Logf("%d of %d previews the same as Dovecot's", same, len(kept))
}

// fetchPreviews fetches every message's PREVIEW, by message number.
func fetchPreviews(t *testing.T, c *client) map[int]respValue {
	t.Helper()
	out := map[int]respValue{}
	for _, l := range c.mustOK("FETCH 1:* (PREVIEW)") {
		items, err := parseFetchLine(l)
		if err != nil {
			continue // not a FETCH response
		}
		var n int
		if _, err := fmt.Sscanf(l, "* %d FETCH", &n); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		out[n] = items["PREVIEW"]
	}
	return out
}
