package fetch

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func mustOpenState(t *testing.T, dir string) *state {
	t.Helper()
	s, err := openState(dir, "acct", "pop3://u@h:995")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStateReplay: what the journal records survives a reopen, with or
// without the compaction a clean close does.
func TestStateReplay(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	s := mustOpenState(t, dir)
	steps := []error{
		s.intent("INBOX", 7, "1", Ref{Name: "a"}, "fp1", 0),
		s.stored("INBOX", "1", at, "fp1", false),
		s.intent("INBOX", 7, "2", Ref{Name: "b"}, "", 0),
		s.intent("INBOX", 7, "4", Ref{Name: "d"}, "", 0),
		s.stored("INBOX", "4", at, "", true),
		s.intent("INBOX", 7, "5", Ref{Name: "e"}, "", 0),
		s.stored("INBOX", "5", at, "", true),
		s.seen("INBOX", []string{"5"}),
		s.intent("", 0, "uidl-3", Ref{Offset: 10, Length: 20, SHA256: "00"}, "", 2048),
		s.stored("", "uidl-3", at, "", false),
		s.forget("", []string{"uidl-3"}),
		s.intent("", 0, "uidl-6", Ref{Offset: 30, Length: 20, SHA256: "01"}, "", 4096),
		s.stored("", "uidl-6", at, "", false),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	s.Close() // a crash: no compaction
	check := func(s *state) {
		t.Helper()
		in := s.folder("INBOX")
		if in.UIDValidity != 7 || len(in.Messages) != 4 {
			t.Fatalf("INBOX state %+v", in)
		}
		if e := in.Messages["1"]; !e.Stored.Equal(at) || e.FP != "fp1" || e.Intent != nil {
			t.Errorf("message 1: %+v", e)
		}
		if e := in.Messages["2"]; e.stored() || e.Intent == nil || e.Intent.Name != "b" {
			t.Errorf("message 2: %+v", e)
		}
		if e := in.Messages["4"]; !e.stored() || !e.SeenDue || in.Messages["1"].SeenDue || in.Messages["5"].SeenDue {
			t.Errorf("\\Seen due on 1, 4, 5: %v, %v, %v; want only on 4", in.Messages["1"].SeenDue, e.SeenDue, in.Messages["5"].SeenDue)
		}
		if pop := s.folder("").Messages; len(pop) != 1 || pop["uidl-6"] == nil || pop["uidl-6"].Size != 4096 || !pop["uidl-6"].stored() {
			t.Errorf("POP3 folder holds %+v; want uidl-6 stored, of 4096 octets", pop)
		}
	}
	s = mustOpenState(t, dir)
	check(s)
	if err := s.compact(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = mustOpenState(t, dir)
	defer s.Close()
	check(s)
}

// TestStateTornJournal: a last line cut short by a crash is ignored; a
// damaged line before the last is an error.
func TestStateTornJournal(t *testing.T) {
	dir := t.TempDir()
	s := mustOpenState(t, dir)
	s.intent("", 0, "a", Ref{}, "", 0)
	s.stored("", "a", time.Now(), "", false)
	s.Close()
	journal := filepath.Join(dir, "acct.journal")
	good, _ := os.ReadFile(journal)
	torn := append(append([]byte{}, good...), `{"op":"stored","id":"b","at":"2025-`...)
	os.WriteFile(journal, torn, 0o600)
	s = mustOpenState(t, dir)
	if e := s.folder("").Messages["a"]; e == nil || !e.stored() || len(s.folder("").Messages) != 1 {
		t.Errorf("after a torn line: %+v", s.folder("").Messages)
	}
	// Opening folded the journal into the snapshot; writing goes on.
	if err := s.stored("", "c", time.Now(), "", false); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = mustOpenState(t, dir)
	if len(s.folder("").Messages) != 2 {
		t.Errorf("after reopening: %+v", s.folder("").Messages)
	}
	s.stored("", "d", time.Now(), "", false)
	s.Close()

	b, _ := os.ReadFile(journal)
	lines := strings.SplitAfter(string(b), "\n")
	damaged := lines[0] + "{garbage}\n" + strings.Join(lines[1:], "")
	os.WriteFile(journal, []byte(damaged), 0o600)
	if _, err := openState(dir, "acct", ""); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("damaged journal: %v", err)
	}
}

// TestStateStaleJournal: a crash between writing a new snapshot and
// emptying the journal leaves a journal of the old generation, which is
// not applied again.
func TestStateStaleJournal(t *testing.T) {
	dir := t.TempDir()
	s := mustOpenState(t, dir)
	s.stored("", "a", time.Now(), "", false)
	journal := filepath.Join(dir, "acct.journal")
	stale, _ := os.ReadFile(journal)
	s.forget("", []string{"a"})
	if err := s.compact(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	os.WriteFile(journal, stale, 0o600)
	s = mustOpenState(t, dir)
	defer s.Close()
	if n := len(s.folder("").Messages); n != 0 {
		t.Errorf("the stale journal was replayed: %+v", s.folder("").Messages)
	}
}

// TestStateSetAside: a state about another server account is set aside
// in a file of its own, and the account starts with an empty one.
func TestStateSetAside(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	s := mustOpenState(t, dir)
	s.stored("", "a", at, "", false)
	s.intent("", 0, "b", Ref{Name: "b"}, "", 0)
	s.Close() // no compaction: the journal holds the records
	s, err := openState(dir, "acct", "pop3://v@h:995")
	if err != nil {
		t.Fatal(err)
	}
	if s.messages() != 0 || s.snap.Source != "pop3://v@h:995" || s.asideFrom != "pop3://u@h:995" {
		t.Errorf("after the change: %d messages, source %q, set aside from %q", s.messages(), s.snap.Source, s.asideFrom)
	}
	b, err := os.ReadFile(s.asidePath)
	if err != nil || !strings.HasPrefix(filepath.Base(s.asidePath), "acct.state.") ||
		!strings.Contains(string(b), `"pop3://u@h:995"`) || !strings.Contains(string(b), `"a"`) || !strings.Contains(string(b), `"b"`) {
		t.Errorf("set aside in %s: %s %v", s.asidePath, b, err)
	}
	s.stored("", "c", at, "", false)
	s.Close()
	s, err = openState(dir, "acct", "pop3://v@h:995")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.asidePath != "" || s.messages() != 1 || s.folder("").Messages["c"] == nil {
		t.Errorf("reopened: set aside %q, messages %+v", s.asidePath, s.folder("").Messages)
	}
	if old, _ := filepath.Glob(filepath.Join(dir, "acct.state.*.old")); len(old) != 1 {
		t.Errorf("files set aside: %v", old)
	}
}

// TestStateLock: one process at a time works on an account.
func TestStateLock(t *testing.T) {
	dir := t.TempDir()
	s := mustOpenState(t, dir)
	if _, err := openState(dir, "acct", ""); err == nil || !strings.Contains(err.Error(), "another buzon fetch") {
		t.Errorf("second open: %v", err)
	}
	s.Close()
	mustOpenState(t, dir).Close()
}

// failingJournal is a journal on a disk that fills up: the next write
// stores part of its bytes and fails, as write(2) does with ENOSPC, or
// the next sync fails; cutting the file back fails too if failTruncate.
type failingJournal struct {
	journalFile
	failWrite, failSync, failTruncate bool
}

var _ journalFile = (*failingJournal)(nil)

func (j *failingJournal) Write(p []byte) (int, error) {
	if !j.failWrite {
		return j.journalFile.Write(p)
	}
	j.failWrite = false
	n, _ := j.journalFile.Write(p[:len(p)/2])
	return n, syscall.ENOSPC
}

func (j *failingJournal) Sync() error {
	if j.failSync {
		j.failSync = false
		return syscall.EIO
	}
	return j.journalFile.Sync()
}

func (j *failingJournal) Truncate(size int64) error {
	if j.failTruncate {
		return syscall.EIO
	}
	return j.journalFile.Truncate(size)
}

// TestStateJournalWriteFails: a record that fails to be written or
// synced is not kept, neither in memory nor in the file, and the records
// after it (a daemon keeps its state open from run to run) load after a
// restart, even when cutting off what was written failed too.
func TestStateJournalWriteFails(t *testing.T) {
	for _, tc := range []failingJournal{
		{failWrite: true},
		{failSync: true},
		{failWrite: true, failTruncate: true},
		{failSync: true, failTruncate: true},
	} {
		name := fmt.Sprintf("write=%v/sync=%v/truncate=%v", tc.failWrite, tc.failSync, tc.failTruncate)
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
			s := mustOpenState(t, dir)
			if err := s.stored("", "a", at, "", false); err != nil {
				t.Fatal(err)
			}
			j := tc
			j.journalFile = s.journal
			s.journal = &j
			if err := s.stored("", "b", at, "", false); err == nil {
				t.Fatal("the failed write was reported a success")
			}
			if s.folder("").Messages["b"] != nil {
				t.Error("the failed record was applied")
			}
			if s.broken != tc.failTruncate {
				t.Errorf("broken = %v, want %v", s.broken, tc.failTruncate)
			}
			j.failTruncate = false // the disk has room again
			if err := s.intent("", 0, "c", Ref{Name: "c"}, "", 0); err != nil {
				t.Fatal(err)
			}
			if err := s.stored("", "c", at, "", false); err != nil {
				t.Fatal(err)
			}
			s.Close() // killed: no compaction
			s = mustOpenState(t, dir)
			defer s.Close()
			msgs := s.folder("").Messages
			if len(msgs) != 2 || msgs["a"] == nil || !msgs["a"].stored() || msgs["c"] == nil || !msgs["c"].stored() {
				t.Errorf("after reopening: %+v", msgs)
			}
		})
	}
}

// TestStateCompactionFails: a compaction whose new snapshot reached the
// disk but failed after (the sync of the folder failed) leaves the
// journal on disk a generation behind, which load ignores: the records
// written after it must go to a new journal, not be lost to the next
// load.
func TestStateCompactionFails(t *testing.T) {
	for _, tc := range []struct {
		name    string
		renamed bool // the new snapshot replaced the old before the failure
	}{
		{"after the rename", true},
		{"before the rename", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
			s := mustOpenState(t, dir)
			if err := s.stored("", "a", at, "", false); err != nil {
				t.Fatal(err)
			}
			s.writeFile = func(name string, b []byte, perm os.FileMode) error {
				if tc.renamed {
					if err := os.WriteFile(name, b, perm); err != nil {
						return err
					}
				}
				return syscall.EIO
			}
			if err := s.compact(); err == nil {
				t.Fatal("the failed compaction was reported a success")
			}
			s.writeFile = nil // the disk works again
			for _, r := range []record{
				{Op: "stored", ID: "b", At: at},
				{Op: "intent", Folder: "INBOX", UIDValidity: 7, ID: "1", Ref: &Ref{Name: "x"}},
				{Op: "stored", Folder: "INBOX", ID: "1", At: at, SeenDue: true},
				{Op: "copied", Folder: "INBOX", ID: "1"},
			} {
				if err := s.write(r); err != nil {
					t.Fatal(err)
				}
			}
			s.Close() // killed: no compaction
			s = mustOpenState(t, dir)
			defer s.Close()
			pop := s.folder("").Messages
			if len(pop) != 2 || pop["a"] == nil || !pop["a"].stored() || pop["b"] == nil || !pop["b"].stored() {
				t.Errorf("POP3 messages after reopening: %+v", pop)
			}
			if e := s.folder("INBOX").Messages["1"]; e == nil || !e.stored() || !e.Copied || !e.SeenDue {
				t.Errorf("INBOX message 1 after reopening: %+v; want stored, copied, \\Seen due", e)
			}
		})
	}
}
