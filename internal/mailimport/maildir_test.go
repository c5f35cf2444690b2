package mailimport

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
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
		// dovecot-uidlist decides the order, which is not that of the
		// names' times (the messages were moved in).
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
		// Dovecot's lines end in the last name it knew, flags and all.
		"dovecot-uidlist": "3 V1700000000 N4 G0123\n1 W42 :1700000300.M3P1.host,S=40,W=42:2,FR\n2 :1700000100.M1P1.host,S=40,W=42:2,S\n3 :1700000200.M2P1.host\n",
		"subscriptions":   "Work\n",
	})
	// .Work exists only as the parent of .Work.Projects, in names; a
	// linked file and a linked folder are not followed, the folder
	// being another user's Maildir with a message.
	os.Symlink("/etc/passwd", filepath.Join(root, "cur", "1700000500.M5P1.host:2,S"))
	elsewhere := t.TempDir()
	writeMaildir(t, elsewhere, []maildirFile{{"cur/1500000000.M1P1.host:2,S", msg("another user's"), day(9)}}, nil)
	os.Symlink(elsewhere, filepath.Join(root, ".Elsewhere"))
	items, err := Maildir{Dir: root}.Scan()
	if err != nil {
		t.Fatal(err)
	}
	checkScan(t, items, []scanned{
		{folders: []string{"INBOX"}, flags: []string{`\Answered`, `\Flagged`, "$Forwarded", "project-x"}, date: "2025-03-03T10:00:00Z"},
		{folders: []string{"INBOX"}, flags: []string{`\Seen`}, date: "2025-03-01T10:00:00Z", body: "one body"},
		{folders: []string{"INBOX"}, flags: nil, date: "2025-03-02T10:00:00Z", body: "two, new body"},
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

// A Maildir someone else can write, changed between the scan and the
// reads: a folder or its cur/ swapped for a link to another user's
// Maildir, a message for a FIFO. Nothing outside the Maildir is read and
// nothing blocks. (With a FIFO, or a link out, in place of Dovecot's
// files, the scan refuses the Maildir, and returns.)
func TestMaildirSwappedAfterScan(t *testing.T) {
	root, other := t.TempDir(), t.TempDir()
	const name = "1700000100.M1P1.host:2,S"
	writeMaildir(t, root, []maildirFile{
		{"cur/" + name, msg("inbox"), time.Time{}},
		{"cur/1700000200.M2P1.host:2,S", msg("to be a FIFO"), time.Time{}},
		{".Work/cur/" + name, msg("work"), time.Time{}},
	}, nil)
	// The other user's Maildir has files of the same names.
	writeMaildir(t, other, []maildirFile{{"cur/" + name, msg("secret"), time.Time{}}}, nil)
	items, err := Maildir{Dir: root}.Scan()
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 3 {
		t.Fatalf("%d messages, want 3", len(items))
	}
	swap := func(dir, target string) {
		if err := os.Rename(dir, dir+"-moved"); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, dir); err != nil {
			t.Fatal(err)
		}
	}
	swap(filepath.Join(root, ".Work"), other)
	swap(filepath.Join(root, "cur"), filepath.Join(other, "cur"))
	for _, it := range items {
		r, err := it.Open()
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(r)
		r.Close()
		t.Errorf("%s read after the swap: %q", it.Where, b)
	}

	// A FIFO in a message's place.
	root = t.TempDir()
	writeMaildir(t, root, []maildirFile{{"cur/" + name, msg("inbox"), time.Time{}}}, nil)
	items, err = Maildir{Dir: root}.Scan()
	if err != nil || len(items) != 1 {
		t.Fatalf("%d messages, %v", len(items), err)
	}
	os.Remove(filepath.Join(root, "cur", name))
	if err := syscall.Mkfifo(filepath.Join(root, "cur", name), 0o600); err != nil {
		t.Skipf("no FIFO here: %v", err)
	}
	if r, err := items[0].Open(); err == nil {
		r.Close()
		t.Error("a FIFO opened as a message")
	}

	for _, file := range []string{"dovecot-keywords", "dovecot-uidlist"} {
		root := t.TempDir()
		writeMaildir(t, root, []maildirFile{{"cur/" + name, msg("inbox"), time.Time{}}}, nil)
		if err := syscall.Mkfifo(filepath.Join(root, file), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := (Maildir{Dir: root}).Scan(); err == nil {
			t.Errorf("a FIFO as %s: scanned", file)
		}
		os.Remove(filepath.Join(root, file))
		os.WriteFile(filepath.Join(other, file), []byte("0 secret\n"), 0o600)
		os.Symlink(filepath.Join(other, file), filepath.Join(root, file))
		if _, err := (Maildir{Dir: root}).Scan(); err == nil {
			t.Errorf("a link out as %s: scanned", file)
		}
	}
}

// A mail client at work on the Maildir while it is imported: a message
// whose flags change, or that moves from new/ to cur/, after the scan is
// read where it is now, with the flags it has now; one listed in both
// new/ and cur/ (moved during the scan) is one message.
func TestMaildirLive(t *testing.T) {
	root := t.TempDir()
	writeMaildir(t, root, []maildirFile{
		{"cur/1700000100.M1P1.host:2,S", msg("flagged later"), time.Time{}},
		{"new/1700000200.M2P1.host", msg("read later"), time.Time{}},
		{"new/1700000300.M3P1.host", msg("moved during the scan"), time.Time{}},
	}, nil)
	if err := os.Link(filepath.Join(root, "new/1700000300.M3P1.host"), filepath.Join(root, "cur/1700000300.M3P1.host:2,RS")); err != nil {
		t.Fatal(err)
	}
	items, err := Maildir{Dir: root}.Scan()
	if err != nil {
		t.Fatal(err)
	}
	for _, mv := range [][2]string{
		{"cur/1700000100.M1P1.host:2,S", "cur/1700000100.M1P1.host:2,FS"},
		{"new/1700000200.M2P1.host", "cur/1700000200.M2P1.host:2,S"},
	} {
		if err := os.Rename(filepath.Join(root, mv[0]), filepath.Join(root, mv[1])); err != nil {
			t.Fatal(err)
		}
	}
	// The flags are read with the message.
	for _, it := range items {
		r, err := it.Open()
		if err != nil {
			t.Fatalf("%s: %v", it.Where, err)
		}
		r.Close()
	}
	checkScan(t, items, []scanned{
		{folders: []string{"INBOX"}, flags: []string{`\Seen`, `\Flagged`}, body: "flagged later body"},
		{folders: []string{"INBOX"}, flags: []string{`\Seen`}, body: "read later body"},
		{folders: []string{"INBOX"}, flags: []string{`\Seen`, `\Answered`}, body: "moved during the scan body"},
	})
}

// TestCompareMaildirNames: unique names order by their delivery time, the
// microseconds of one second compared as numbers, not as strings.
func TestCompareMaildirNames(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1700000000.M99999P42Q1.host", "1700000000.M123456P42Q2.host", -1},
		{"1700000000.M123456P42Q2.host", "1700000000.M99999P42Q1.host", 1},
		{"999999999.M900000P1.host", "1700000000.M1P1.host", -1},
		{"1700000000.M5P1.a", "1700000000.M5P1.b", -1},
		{"1700000000.12345_1.host", "1700000000.12345_2.host", -1}, // no M field: as strings
		{"1700000000.M5P1.host", "1700000000.M5P1.host", 0},
		{"junk", "1700000000.M5P1.host", -1},
	} {
		if got := compareMaildirNames(tc.a, tc.b); got != tc.want {
			t.Errorf("compareMaildirNames(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
