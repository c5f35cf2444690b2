package mailimport

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// maildirFile is a message file of a Maildir a test writes.
type maildirFile struct {
	path  string // below the Maildir's root: "cur/1700000000.M1P1.host,S=40:2,S"
	body  string
	mtime time.Time
}

// writeMaildir writes a Maildir tree: the files, and the other files
// (keywords, uidlist) as given.
func writeMaildir(t *testing.T, root string, files []maildirFile, other map[string]string) {
	t.Helper()
	for _, dir := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		path := filepath.Join(root, f.path)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(f.body), 0o600); err != nil {
			t.Fatal(err)
		}
		if !f.mtime.IsZero() {
			if err := os.Chtimes(path, f.mtime, f.mtime); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, content := range other {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func msg(subject string) string {
	return fmt.Sprintf("From: a@example.org\nSubject: %s\n\n%s body\n", subject, subject)
}

func TestMaildirScan(t *testing.T) {
	root := t.TempDir()
	day := func(d int) time.Time { return time.Date(2025, 3, d, 10, 0, 0, 0, time.UTC) }
	writeMaildir(t, root, []maildirFile{
		// Listed out of order: dovecot-uidlist decides.
		{"cur/1700000300.M3P1.host,S=40,W=42:2,FRab", msg("three"), day(3)},
		{"cur/1700000100.M1P1.host,S=40,W=42:2,S", msg("one"), day(1)},
		{"new/1700000200.M2P1.host", msg("two, new"), day(2)},
		{"tmp/1700000400.M4P1.host", msg("being delivered"), day(4)},
		{".Work.Projects/cur/1600000000.M1P1.host:2,ST", msg("trashed"), day(5)},
		{".Work.Projects/cur/1600000001.M1P1.host:2,DP", msg("draft"), day(6)},
		{".&AMk-t&AOk-/cur/1600000002.M1P1.host:2,", msg("summer"), day(7)},
		{".Sent Items/new/1600000003.M1P1.host", msg("sent"), day(8)},
	}, map[string]string{
		"dovecot-keywords": "0 $Forwarded\n1 project-x\n2 not(valid\n",
		"dovecot-uidlist":  "3 V1700000000 N4 G0123\n1 :1700000100.M1P1.host,S=40,W=42\n2 :1700000200.M2P1.host\n3 W42 :1700000300.M3P1.host,S=40,W=42\n",
		"subscriptions":    "Work\n",
	})
	// .Work exists only as the parent of .Work.Projects, in names; a
	// linked file and a linked folder are not followed.
	os.Symlink("/etc/passwd", filepath.Join(root, "cur", "1700000500.M5P1.host:2,S"))
	os.Symlink(t.TempDir(), filepath.Join(root, ".Elsewhere"))
	items, err := Maildir{Dir: root}.Scan()
	if err != nil {
		t.Fatal(err)
	}
	checkScan(t, items, []scanned{
		{folders: []string{"INBOX"}, flags: []string{`\Seen`}, date: "2025-03-01T10:00:00Z", body: "one body"},
		{folders: []string{"INBOX"}, flags: nil, date: "2025-03-02T10:00:00Z", body: "two, new body"},
		{folders: []string{"INBOX"}, flags: []string{`\Answered`, `\Flagged`, "$Forwarded", "project-x"}, date: "2025-03-03T10:00:00Z"},
		{folders: []string{"INBOX"}, flags: nil, skip: true},
		{folders: []string{"Sent Items"}, flags: nil, date: "2025-03-08T10:00:00Z"},
		{folders: []string{"Work/Projects"}, flags: []string{`\Seen`, `\Deleted`}, date: "2025-03-05T10:00:00Z"},
		{folders: []string{"Work/Projects"}, flags: []string{`\Draft`}, date: "2025-03-06T10:00:00Z"},
		{folders: []string{"Été"}, flags: nil, date: "2025-03-07T10:00:00Z", body: "summer body"},
	})

	// Dovecot's LAYOUT=fs: folders are plain directories.
	fsRoot := t.TempDir()
	writeMaildir(t, fsRoot, []maildirFile{
		{"cur/1:2,S", msg("inbox"), day(1)},
		{"Work/cur/2:2,F", msg("work"), day(2)},
		{"Work/Projects/new/3", msg("project"), day(3)},
	}, nil)
	items, err = Maildir{Dir: fsRoot}.Scan()
	if err != nil {
		t.Fatal(err)
	}
	checkScan(t, items, []scanned{
		{folders: []string{"INBOX"}, flags: []string{`\Seen`}},
		{folders: []string{"Work"}, flags: []string{`\Flagged`}},
		{folders: []string{"Work/Projects"}, flags: nil, body: "project body"},
	})

	if _, err := (Maildir{Dir: t.TempDir()}).Scan(); err == nil {
		t.Error("an empty folder scanned as a Maildir")
	}
}
