package mailimport

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/buzon-mail/buzon/internal/clienttest"
)

// TestImportCorpus imports the shared corpus of real-world and malformed
// messages twice, as a Maildir and as an mboxrd file written here: every
// message arrives, its lines ending in CRLF and otherwise as it was, the
// same through both, and a second run adds nothing.
func TestImportCorpus(t *testing.T) {
	corpus := clienttest.NeedCorpus(t)
	var files []string
	filepath.WalkDir(corpus, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && strings.HasSuffix(path, ".raw") {
			files = append(files, path)
		}
		return nil
	})
	if len(files) == 0 {
		t.Skip("no .raw messages in the corpus")
	}
	root := t.TempDir()
	mbox := filepath.Join(t.TempDir(), "corpus.mbox")
	var box bytes.Buffer
	var mdFiles []maildirFile
	var originals [][]byte
	fromLine := regexp.MustCompile(`(?m)^(>*From )`)
	for i, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		originals = append(originals, b)
		mdFiles = append(mdFiles, maildirFile{path: fmt.Sprintf("cur/%d.M%dP1.host:2,S", 1700000000+i, i), body: string(b)})
		// mboxrd: one more ">" before each "From " line, and an empty
		// line before the next separator.
		fmt.Fprintf(&box, "From corpus@example.org Thu Nov 26 09:15:00 2026\n%s", fromLine.ReplaceAll(b, []byte(">$1")))
		if !bytes.HasSuffix(b, []byte("\n")) {
			box.WriteString("\n")
		}
		box.WriteString("\n")
	}
	writeMaildir(t, root, mdFiles, nil)
	os.WriteFile(mbox, box.Bytes(), 0o600)

	f := newFixture(t)
	sources := []Source{Maildir{Dir: root}, Mbox{Path: mbox, Folder: "Corpus"}}
	sum := f.mustRun(sources...)
	if sum.Imported != 2*len(originals) || len(sum.Skipped) != 0 {
		t.Fatalf("%d imported, skipped %v; want %d, none", sum.Imported, sum.Skipped, 2*len(originals))
	}
	_, inbox := f.mailbox("INBOX")
	_, fromMbox := f.mailbox("Corpus")
	for i, orig := range originals {
		// The store has CRLF line ends; the rest is the message's. An
		// mbox cannot tell a message without a last line end.
		want := strings.ReplaceAll(string(orig), "\r", "")
		wantMbox := want
		if !strings.HasSuffix(want, "\n") {
			wantMbox += "\n"
		}
		for j, got := range []stored{inbox[i], fromMbox[i]} {
			if w := []string{want, wantMbox}[j]; strings.ReplaceAll(got.body, "\r", "") != w {
				t.Errorf("%s: stored %q, want %q", files[i], got.body, orig)
			}
			if strings.Contains(strings.ReplaceAll(got.body, "\r\n", ""), "\n") {
				t.Errorf("%s: stored with a bare LF", files[i])
			}
		}
		if want == wantMbox && inbox[i].body != fromMbox[i].body {
			t.Errorf("%s: the mbox gave another message than the Maildir", files[i])
		}
	}
	sum = f.mustRun(sources...)
	if sum.Imported != 0 || sum.Present != 2*len(originals) {
		t.Errorf("second run: %d imported, %d there", sum.Imported, sum.Present)
	}
}

// FuzzMboxScan: whatever the file holds, a scan ends, and each message it
// finds reads back no longer than its place in the file.
func FuzzMboxScan(f *testing.F) {
	for _, name := range []string{"mutt.mbox", "thunderbird.mbox", "takeout.mbox"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("From \n\nFrom \n>From \n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "box")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		items, err := Mbox{Path: path, GmailLabels: true}.Scan()
		if err != nil {
			return
		}
		var total int64
		for _, it := range items {
			if it.Size < 0 {
				t.Fatalf("%s: size %d", it.Where, it.Size)
			}
			total += it.Size
			r, err := it.Open()
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(r)
			r.Close()
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(b)) > it.Size {
				t.Fatalf("%s: read %d bytes of a message of %d", it.Where, len(b), it.Size)
			}
			if len(it.Folders) == 0 {
				t.Fatalf("%s: no folder", it.Where)
			}
		}
		if total > int64(len(data)) {
			t.Fatalf("messages of %d bytes in a file of %d", total, len(data))
		}
	})
}
