package imapserver

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/clienttest"
	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/teststore"
)

// TestMbsync syncs several folders both ways with mbsync: the first sync
// copies the server's mail and flags, a second is a no-op, and changes on
// either side then reach the other.
func TestMbsync(t *testing.T) {
	t.Parallel()
	mbsync := clienttest.Need(t, "mbsync", "isync")
	e := newTestEnv(t)
	e.deliver("INBOX", "Subject: one\n\nfirst\n", `\Seen`)
	e.deliver("INBOX", "Subject: two\n\nsecond\n", `\Flagged`)
	e.deliver("INBOX", "Subject: three\n\nthird\n")
	e.deliver("Archive", "Subject: old\n\narchived\n", `\Seen`)
	c := e.login()
	c.mustOK("CREATE Work/Sub")
	c.mustOK("LOGOUT")
	e.deliver("Work/Sub", "Subject: work\n\nwork\n", `\Answered`)

	sync, mail := mbsyncSetup(t, mbsync, e, "INBOX Archive Work/Sub")
	// local lists a maildir folder as "subject flags" lines.
	local := func(folder string) []string {
		t.Helper()
		var out []string
		for _, sub := range []string{"cur", "new"} {
			dir := filepath.Join(mail, folder, sub)
			ents, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, ent := range ents {
				b, err := os.ReadFile(filepath.Join(dir, ent.Name()))
				if err != nil {
					t.Fatal(err)
				}
				subject := ""
				for _, l := range strings.Split(string(b), "\n") {
					if s, ok := strings.CutPrefix(strings.TrimRight(l, "\r"), "Subject: "); ok {
						subject = s
					}
				}
				_, flags, _ := strings.Cut(ent.Name(), ":2,")
				out = append(out, subject+" "+flags)
			}
		}
		slices.Sort(out)
		return out
	}
	// remote lists a server mailbox the same way, and its HIGHESTMODSEQ.
	remote := func(mailbox string) ([]string, store.ModSeq) {
		t.Helper()
		sess := e.session()
		mb, err := sess.Mailbox(context.Background(), mailbox)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		err = sess.Messages(context.Background(), mb.ID, store.AllUIDs(), store.FieldFlags|store.FieldSize, func(m *store.MessageInfo) error {
			body, err := sess.OpenBody(context.Background(), mb.ID, m.UID)
			if err != nil {
				return err
			}
			defer body.Close()
			b := make([]byte, body.Size())
			body.ReadAt(b, 0)
			subject := strings.TrimPrefix(strings.SplitN(string(b), "\r\n", 2)[0], "Subject: ")
			out = append(out, subject+" "+maildirFlags(m.Flags))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		st, err := sess.Status(context.Background(), mb.ID)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(out)
		return out, st.HighestModSeq
	}

	sync()
	for _, f := range []string{"INBOX", "Archive", "Work/Sub"} {
		want, _ := remote(f)
		if got := local(f); !slices.Equal(got, want) {
			t.Errorf("after first sync, %s: local %q, server %q", f, got, want)
		}
	}
	_, modBefore := remote("INBOX")
	filesBefore := local("INBOX")
	sync()
	if _, modAfter := remote("INBOX"); modAfter != modBefore {
		t.Errorf("second sync changed the server: HIGHESTMODSEQ %d -> %d", modBefore, modAfter)
	}
	if got := local("INBOX"); !slices.Equal(got, filesBefore) {
		t.Errorf("second sync changed the maildir: %q -> %q", filesBefore, got)
	}

	// A local deletion and a local flag reach the server; a server-side
	// append reaches the maildir.
	for _, sub := range []string{"cur", "new"} {
		dir := filepath.Join(mail, "INBOX", sub)
		ents, _ := os.ReadDir(dir)
		for _, ent := range ents {
			b, _ := os.ReadFile(filepath.Join(dir, ent.Name()))
			switch {
			case strings.Contains(string(b), "Subject: one"):
				if err := os.Remove(filepath.Join(dir, ent.Name())); err != nil {
					t.Fatal(err)
				}
			case strings.Contains(string(b), "Subject: three"):
				name := ent.Name()
				if !strings.Contains(name, ":2,") {
					name += ":2,"
				}
				if err := os.Rename(filepath.Join(dir, ent.Name()), filepath.Join(mail, "INBOX", "cur", name+"F")); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	e.deliver("Archive", "Subject: fresh\n\nnew on the server\n")
	sync()
	got, _ := remote("INBOX")
	if want := []string{"three F", "two F"}; !slices.Equal(got, want) {
		t.Errorf("server INBOX after local changes: %q, want %q", got, want)
	}
	if got := local("Archive"); !slices.Equal(got, []string{"fresh ", "old S"}) {
		t.Errorf("maildir Archive after server append: %q", got)
	}
}

// maildirFlags spells flags the way maildir file names do.
func maildirFlags(f store.Flags) string {
	var s string
	for _, x := range []struct {
		bit  store.SystemFlags
		char string
	}{{store.FlagDraft, "D"}, {store.FlagFlagged, "F"}, {store.FlagAnswered, "R"}, {store.FlagSeen, "S"}, {store.FlagDeleted, "T"}} {
		if f.System&x.bit != 0 {
			s += x.char
		}
	}
	return s
}

// mbsyncSetup writes an mbsync configuration that syncs the folders named
// in patterns of e's test account, over IMAPS, into a Maildir tree. It
// returns the sync, which fails the test if mbsync does, and the tree.
func mbsyncSetup(t *testing.T, mbsync string, e *testEnv, patterns string) (sync func() string, mail string) {
	t.Helper()
	home := t.TempDir()
	mail = filepath.Join(home, "mail")
	ca := filepath.Join(home, "ca.pem")
	if err := os.WriteFile(ca, e.certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	_, port := e.hostPort(e.tlsAddr)
	if err := os.MkdirAll(mail, 0o700); err != nil {
		t.Fatal(err)
	}
	rc := filepath.Join(home, "mbsyncrc")
	conf := fmt.Sprintf(`IMAPAccount test
Host localhost
Port %s
User %s
Pass %s
SSLType IMAPS
CertificateFile %s

IMAPStore remote
Account test

MaildirStore local
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel test
Far :remote:
Near :local:
Patterns %s
Create Both
Expunge Both
SyncState *
Sync All
`, port, testUser, testPass, ca, mail, mail, patterns)
	if err := os.WriteFile(rc, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return func() string {
		t.Helper()
		cmd := exec.Command(mbsync, "-c", rc, "-a")
		cmd.Env = append(os.Environ(), "HOME="+home)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("mbsync: %v\n%s", err, out)
		}
		return string(out)
	}, mail
}

// TestMbsyncLargeFolder: mbsync's first sync of a folder fetches each new
// message with a UID FETCH of its own, all pipelined; with more messages
// than the command rate lets through in the flood time, the sync is
// slowed down, never cut off as a flood. The rate limit is the store's
// same on any store: the embedded one only.
func TestMbsyncLargeFolder(t *testing.T) {
	t.Parallel()
	teststore.EmbeddedOnly(t)
	mbsync := clienttest.Need(t, "mbsync", "isync")
	const rate = 50
	n := rate * (2 + int(testFlood/time.Second) + 3)
	e := newTestEnv(t, func(c *Config) { c.Limits.CommandsPerSecond, c.flood = rate, testFlood })
	for i := range n {
		e.deliver("INBOX", fmt.Sprintf("Subject: %d\n\nbody %d\n", i, i))
	}
	sync, mail := mbsyncSetup(t, mbsync, e, "INBOX")
	sync()
	got := 0
	for _, sub := range []string{"cur", "new"} {
		ents, err := os.ReadDir(filepath.Join(mail, "INBOX", sub))
		if err != nil {
			t.Fatal(err)
		}
		got += len(ents)
	}
	if got != n {
		t.Errorf("mbsync fetched %d of %d messages", got, n)
	}
}
