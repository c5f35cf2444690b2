package imapserver

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/buzon-mail/buzon/internal/clienttest"
	"github.com/buzon-mail/buzon/internal/message"
)

// goClient logs in with go-imap's client, an implementation independent
// of ours.
func (e *testEnv) goClient() *imapclient.Client {
	e.t.Helper()
	c, err := imapclient.DialInsecure(e.addr, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	if err := c.Login(testUser, testPass).Wait(); err != nil {
		e.t.Fatal(err)
	}
	return c
}

func flagNames(fl []imap.Flag) string {
	s := make([]string, len(fl))
	for i, f := range fl {
		s[i] = string(f)
	}
	slices.Sort(s)
	return strings.Join(s, " ")
}

// TestResync is the CONDSTORE/QRESYNC scenario: a client remembers the
// mailbox, goes away while flags change and messages are expunged, and
// catches up when it comes back, first with CONDSTORE through go-imap's
// client, then with SELECT QRESYNC.
func TestResync(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	for range 6 {
		e.deliver("INBOX", "From: a@example.org\nSubject: resync\n\nbody\n")
	}
	c := e.goClient()
	sel, err := c.Select("INBOX", &imap.SelectOptions{CondStore: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages != 6 || sel.HighestModSeq == 0 {
		t.Fatalf("select: %+v", sel)
	}
	known := sel.HighestModSeq
	uidValidity := sel.UIDValidity
	c.Logout().Wait()

	// Meanwhile, another client changes flags and expunges.
	o := e.login()
	o.mustOK("SELECT INBOX")
	o.mustOK(`UID STORE 2 +FLAGS (\Flagged)`)
	o.mustOK(`UID STORE 5 +FLAGS ($Important \Seen)`)
	o.mustOK(`UID STORE 3,4 +FLAGS.SILENT (\Deleted)`)
	o.mustOK("EXPUNGE")
	o.mustOK("LOGOUT")

	// CONDSTORE: what changed since the MODSEQ remembered.
	c = e.goClient()
	sel, err = c.Select("INBOX", &imap.SelectOptions{CondStore: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.UIDValidity != uidValidity || sel.NumMessages != 4 || sel.HighestModSeq <= known {
		t.Fatalf("reselect: %+v", sel)
	}
	msgs, err := c.Fetch(imap.UIDSetNum(1, 2, 3, 4, 5, 6), &imap.FetchOptions{
		UID: true, Flags: true, ModSeq: true, ChangedSince: known,
	}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	got := map[imap.UID]string{}
	for _, m := range msgs {
		got[m.UID] = flagNames(m.Flags)
		if m.ModSeq <= known {
			t.Errorf("UID %d: MODSEQ %d not after %d", m.UID, m.ModSeq, known)
		}
	}
	want := map[imap.UID]string{2: `\Flagged`, 5: `$Important \Seen`}
	if len(got) != len(want) || got[2] != want[2] || got[5] != want[5] {
		t.Errorf("changed since %d: %v, want %v", known, got, want)
	}
	uids, err := c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if all := uids.AllUIDs(); !slices.Equal(all, []imap.UID{1, 2, 5, 6}) {
		t.Errorf("UIDs left: %v", all)
	}
	c.Logout().Wait()

	// QRESYNC: the same in one round trip (go-imap's client has no QRESYNC).
	r := e.login()
	r.mustOK("ENABLE QRESYNC")
	out := r.mustOK(fmtQresync(uidValidity, known))
	joined := strings.Join(out, "\n")
	for _, want := range []string{
		"* VANISHED (EARLIER) 3:4",
		`* 2 FETCH (UID 2 FLAGS (\Flagged) MODSEQ (`,
		`* 3 FETCH (UID 5 FLAGS (\Seen $Important) MODSEQ (`,
		"* 4 EXISTS",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("SELECT QRESYNC lacks %q:\n%s", want, joined)
		}
	}
	if strings.Contains(joined, "UID 1 ") || strings.Contains(joined, "UID 6 ") {
		t.Errorf("SELECT QRESYNC reports unchanged messages:\n%s", joined)
	}
}

func fmtQresync(uidValidity uint32, modSeq uint64) string {
	return fmt.Sprintf("SELECT INBOX (QRESYNC (%d %d 1:6))", uidValidity, modSeq)
}

// TestCorpusSections appends real-world and malformed messages and checks,
// with go-imap's client, that BODYSTRUCTURE parses and that BODY[n] of
// every part holds exactly the bytes at that part's offsets.
func TestCorpusSections(t *testing.T) {
	t.Parallel()
	root := clienttest.NeedCorpus(t)
	var files []string
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".raw") {
			files = append(files, path)
		}
		return nil
	})
	if len(files) == 0 {
		t.Skip("corpus is empty")
	}
	e := newTestEnv(t)
	var raws [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		raw := crlf(string(b))
		raws = append(raws, []byte(raw))
		e.deliver("INBOX", raw)
	}
	c := e.goClient()
	if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	for i, raw := range raws {
		seq := uint32(i + 1)
		name := filepath.Base(files[i])
		msgs, err := c.Fetch(imap.SeqSetNum(seq), &imap.FetchOptions{
			BodyStructure: &imap.FetchItemBodyStructure{Extended: true}, Envelope: true, RFC822Size: true,
		}).Collect()
		if err != nil || len(msgs) != 1 {
			t.Errorf("%s: FETCH BODYSTRUCTURE: %v", name, err)
			continue
		}
		if msgs[0].RFC822Size != int64(len(raw)) {
			t.Errorf("%s: RFC822.SIZE %d, want %d", name, msgs[0].RFC822Size, len(raw))
		}
		part, err := message.Parse(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		var paths [][]int
		msgs[0].BodyStructure.Walk(func(path []int, _ imap.BodyStructure) bool {
			if len(path) > 0 {
				paths = append(paths, slices.Clone(path))
			}
			return true
		})
		if len(paths) == 0 {
			paths = [][]int{{1}}
		}
		var items []*imap.FetchItemBodySection
		for _, p := range paths {
			items = append(items, &imap.FetchItemBodySection{Part: p, Peek: true})
			items = append(items, &imap.FetchItemBodySection{Part: p, Specifier: imap.PartSpecifierMIME, Peek: true})
		}
		items = append(items, &imap.FetchItemBodySection{Peek: true},
			&imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true})
		secs, err := c.Fetch(imap.SeqSetNum(seq), &imap.FetchOptions{BodySection: items}).Collect()
		if err != nil || len(secs) != 1 {
			t.Errorf("%s: FETCH sections: %v", name, err)
			continue
		}
		for _, it := range items {
			got := secs[0].FindBodySection(it)
			spec := message.SpecifierNone
			switch it.Specifier {
			case imap.PartSpecifierMIME:
				spec = message.SpecifierMIME
			case imap.PartSpecifierHeader:
				spec = message.SpecifierHeader
			}
			start, end, err := part.SectionRange(it.Part, spec)
			if err != nil {
				t.Errorf("%s: section %v %s: %v", name, it.Part, it.Specifier, err)
				continue
			}
			if want := raw[start:end]; !bytes.Equal(got, want) {
				t.Errorf("%s: BODY[%v.%s] = %q, want %q", name, it.Part, it.Specifier, trunc(got), trunc(want))
			}
		}
	}
}

func trunc(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}
