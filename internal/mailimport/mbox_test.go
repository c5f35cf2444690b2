package mailimport

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

// scanned is what a test expects of one scanned message.
type scanned struct {
	folders []string
	flags   []string
	date    string // RFC 3339, "" for none
	skip    bool
	body    string // a substring of the message as read, "" to not look
	absent  string // a substring the message as read must not have
}

func checkScan(t *testing.T, items []*Item, want []scanned) {
	t.Helper()
	if len(items) != len(want) {
		for _, it := range items {
			t.Logf("%s %v %v", it.Where, it.Folders, it.Flags.Names())
		}
		t.Fatalf("%d messages, want %d", len(items), len(want))
	}
	for i, w := range want {
		it := items[i]
		if !slices.Equal(it.Folders, w.folders) {
			t.Errorf("%s: folders %q, want %q", it.Where, it.Folders, w.folders)
		}
		if got := it.Flags.Names(); !slices.Equal(got, w.flags) && !(len(got) == 0 && len(w.flags) == 0) {
			t.Errorf("%s: flags %q, want %q", it.Where, got, w.flags)
		}
		if w.date != "" {
			if d, _ := time.Parse(time.RFC3339, w.date); !it.Date.Equal(d) {
				t.Errorf("%s: date %v, want %v", it.Where, it.Date, d)
			}
		}
		if (it.Skip != "") != w.skip {
			t.Errorf("%s: skip %q, want skipped %v", it.Where, it.Skip, w.skip)
		}
		if w.body == "" && w.absent == "" || it.Skip != "" {
			continue
		}
		r, err := it.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), w.body) {
			t.Errorf("%s: message %q lacks %q", it.Where, b, w.body)
		}
		if w.absent != "" && strings.Contains(string(b), w.absent) {
			t.Errorf("%s: message %q has %q", it.Where, b, w.absent)
		}
	}
}

func TestMboxScan(t *testing.T) {
	tests := []struct {
		file   string
		folder string
		gmail  bool
		want   []scanned
	}{
		{"mutt.mbox", "Old", false, []scanned{
			{folders: []string{"Old"}, flags: []string{`\Seen`, `\Answered`}, date: "2026-11-26T09:15:00Z",
				body: "Escaped lines:\nFrom the start of a line\n>From two levels\n>Fromage is not escaped\n", absent: "Status:"},
			{folders: []string{"Old"}, flags: []string{`\Flagged`, `\Draft`, "$Label1", "project-x"}, date: "2026-11-26T10:00:00Z",
				body: "A line in a paragraph\nFrom here on, unescaped, which mboxo writers leave\nstill the same message.\n", absent: "X-Keywords"},
			{folders: []string{"Old"}, date: "2026-11-26T11:00:00Z", body: "\nA message without a header.\n"},
			{folders: []string{"Old"}, date: "2026-11-26T12:00:00Z", body: "body with a NUL \x00 here\n"},
		}},
		{"thunderbird.mbox", "", false, []scanned{
			{folders: []string{"INBOX"}, flags: []string{`\Seen`, `\Answered`, "$label1", "nonjunk"}, date: "2026-11-25T08:00:00Z",
				body: "From: carol@example.net\r\nSubject: read and replied in Thunderbird\r\n\r\nHello.\r\n", absent: "X-Mozilla"},
			{folders: []string{"INBOX"}, flags: []string{`\Seen`}, skip: true},
			{folders: []string{"INBOX"}, flags: []string{`\Flagged`}, date: "2026-11-25T08:10:00Z", body: "Star.\r\n"},
		}},
		{"takeout.mbox", "Mail", true, []scanned{
			{folders: []string{"INBOX", "Work, old"}, flags: []string{`\Seen`}, date: "2026-11-23T14:00:00Z", body: "X-Gmail-Labels: Inbox"},
			{folders: []string{"Sent"}, flags: []string{`\Seen`, `\Flagged`}},
			{folders: []string{"Résumés"}, flags: nil},
			{folders: []string{"Archive"}, flags: []string{`\Seen`}},
			{folders: []string{"Junk"}, flags: nil, body: "Five.\r\n"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			items, err := Mbox{Path: filepath.Join("testdata", tc.file), Folder: tc.folder, GmailLabels: tc.gmail, Location: time.UTC}.Scan()
			if err != nil {
				t.Fatal(err)
			}
			checkScan(t, items, tc.want)
		})
	}
}

// A message ends before the empty line that precedes the next "From "
// line, and the last one before the file's last empty line: the bytes
// between are the mbox's, not the message's.
func TestMboxMessageEnds(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "box")
	os.WriteFile(path, []byte("\nFrom a Thu Nov 26 09:15:00 2026\nSubject: one\n\nbody one\n\n\nFrom b Thu Nov 26 09:15:00 2026\nSubject: two\n\nbody two\n\n"), 0o600)
	items, err := Mbox{Path: path}.Scan()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range items {
		r, _ := it.Open()
		b, _ := io.ReadAll(r)
		r.Close()
		got = append(got, string(b))
	}
	want := []string{"Subject: one\n\nbody one\n\n", "Subject: two\n\nbody two\n"}
	if !slices.Equal(got, want) {
		t.Errorf("messages %q, want %q", got, want)
	}
	if _, err := (Mbox{Path: filepath.Join("testdata")}).Scan(); err == nil {
		t.Error("a directory scanned as an mbox")
	}
	os.WriteFile(path, []byte("Subject: not an mbox\n\nbody\n"), 0o600)
	if _, err := (Mbox{Path: path}).Scan(); err == nil || !strings.Contains(err.Error(), "not an mbox") {
		t.Errorf("a file without a From line: %v", err)
	}
}

func TestFromLineDate(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"From alice@example.org Thu Nov  5 09:15:00 2026", "2026-11-05T09:15:00Z"},
		{"From - Thu Nov 05 09:15:00 2026", "2026-11-05T09:15:00Z"},
		{"From 1849@xxx Mon Nov 23 14:00:00 +0100 2026", "2026-11-23T13:00:00Z"},
		{"From MAILER-DAEMON Fri Jul  8 12:08:34 2011 -0700", "2011-07-08T19:08:34Z"},
		{"From someone", ""},
		{"From bob@example.org Thu, 26 Nov 2026 09:15:00 +0100", "2026-11-26T08:15:00Z"},
		{"From the desk of Bob,", ""},
		{"From here on, unescaped, which mboxo writers leave", ""},
	} {
		got := fromLineDate(tc.line, time.UTC)
		if tc.want == "" {
			if !got.IsZero() {
				t.Errorf("%q: %v, want none", tc.line, got)
			}
			continue
		}
		want, _ := time.Parse(time.RFC3339, tc.want)
		if !got.Equal(want) {
			t.Errorf("%q: %v, want %v", tc.line, got, want)
		}
	}
}

func TestSpecialUse(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"Sent", store.SpecialSent},
		{"Sent Items", store.SpecialSent},
		{"sent messages", store.SpecialSent},
		{"[Gmail]/Sent Mail", store.SpecialSent},
		{"Deleted Items", store.SpecialTrash},
		{"Deleted Messages", store.SpecialTrash},
		{"Trash", store.SpecialTrash},
		{"Spam", store.SpecialJunk},
		{"Junk", store.SpecialJunk},
		{"Junk E-mail", store.SpecialJunk},
		{"Drafts", store.SpecialDrafts},
		{"Archive", store.SpecialArchive},
		{"Archives", store.SpecialArchive},
		{"Work/Sent", ""},
		{"INBOX", ""},
		{"Sentinel", ""},
	} {
		if got := SpecialUse(tc.name); got != tc.want {
			t.Errorf("SpecialUse(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestMboxTree(t *testing.T) {
	root := t.TempDir()
	one := func(subject string) string {
		return "From - Wed Nov 25 08:00:00 2026\nSubject: " + subject + "\n\n" + subject + "\n"
	}
	write := func(root string, files map[string]string) {
		for path, content := range files {
			os.MkdirAll(filepath.Join(root, filepath.Dir(path)), 0o700)
			if err := os.WriteFile(filepath.Join(root, path), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(root, map[string]string{
		"Inbox":                        one("thunderbird inbox"),
		"Inbox.msf":                    "// <!-- <mdb:mork:z v=\"1.4\"/> -->\n",
		"Work.sbd/Projects":            one("a project"),
		"Old.mbox":                     one("an mbox file"),
		"Leading":                      "\n\r\n" + one("after empty lines"),
		"Empty":                        "",
		"Apple.mbox/mbox":              one("apple mail export"),
		"Apple.mbox/Sub.mbox/mbox":     one("apple sub-folder"),
		"Apple.mbox/table_of_contents": "binary",
		"Apple.mbox/Info.plist":        "<?xml version=\"1.0\"?>\n",
		"notes.txt":                    "not an mbox\n",
	})
	outside := filepath.Join(t.TempDir(), "another user's")
	write(filepath.Dir(outside), map[string]string{"another user's": one("secret")})
	os.Symlink(outside, filepath.Join(root, "Linked"))
	tests := []struct {
		dir     string
		folders []string
		skipped []string
	}{
		{root, []string{"Apple", "Apple/Sub", "INBOX", "Leading", "Old", "Work/Projects"}, []string{"Linked", "notes.txt"}},
		// Apple Mail's export of one mailbox, named itself.
		{filepath.Join(root, "Apple.mbox"), []string{"Apple", "Apple/Sub"}, nil},
	}
	for _, tc := range tests {
		items, err := MboxTree{Dir: tc.dir}.Scan()
		if err != nil {
			t.Fatal(err)
		}
		var folders, skipped []string
		for _, it := range items {
			if it.Skip != "" {
				skipped = append(skipped, filepath.Base(it.Where))
				continue
			}
			folders = append(folders, it.Folders[0])
		}
		if !slices.Equal(folders, tc.folders) || !slices.Equal(skipped, tc.skipped) {
			t.Errorf("%s: folders %q, skipped %q; want %q, %q", tc.dir, folders, skipped, tc.folders, tc.skipped)
		}
	}
}

// The "From " lines that separate messages are those with a date, as mutt
// reads them, an empty line before them or not; others are body lines.
func TestMboxSeparators(t *testing.T) {
	path := filepath.Join(t.TempDir(), "box")
	os.WriteFile(path, []byte("From a Thu Nov 26 09:15:00 2026\nSubject: one\n\nDear all,\n\nFrom the desk of Bob,\nregards\n"+
		"From b Thu Nov 26 09:17:00 2026\nSubject: two\n\nbody two\n"), 0o600)
	items, err := Mbox{Path: path}.Scan()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range items {
		r, _ := it.Open()
		b, _ := io.ReadAll(r)
		r.Close()
		got = append(got, string(b))
	}
	want := []string{"Subject: one\n\nDear all,\n\nFrom the desk of Bob,\nregards\n", "Subject: two\n\nbody two\n"}
	if !slices.Equal(got, want) {
		t.Errorf("messages %q, want %q", got, want)
	}
}

// The path the administrator names is theirs to choose, a link or not;
// the file read later is the one scanned, and no FIFO blocks the scan.
func TestMboxPath(t *testing.T) {
	dir := t.TempDir()
	mutt, _ := filepath.Abs(filepath.Join("testdata", "mutt.mbox"))
	link := filepath.Join(dir, "alice")
	os.Symlink(mutt, link)
	items, err := Mbox{Path: link}.Scan()
	if err != nil || len(items) != 4 {
		t.Fatalf("a linked mbox: %d messages, %v", len(items), err)
	}
	copied := filepath.Join(dir, "copy")
	b, _ := os.ReadFile(mutt)
	os.WriteFile(copied, b, 0o600)
	os.Remove(link)
	os.Symlink(copied, link) // another file, the same bytes
	if r, err := items[0].Open(); err == nil {
		r.Close()
		t.Error("a message read from a file put in the scanned one's place")
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no FIFO here: %v", err)
	}
	if _, err := (Mbox{Path: fifo}).Scan(); err == nil {
		t.Error("a FIFO scanned as an mbox")
	}
}
