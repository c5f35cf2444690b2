package main

// Tests of `buzon import` as people use it: a running server whose IMAP
// clients see the mail arrive, a Maildir a real Dovecot wrote compared
// through IMAP with what that Dovecot serves, mbsync moving a Dovecot
// account with the README's configuration, mailboxes Python's mailbox
// module writes, and an import killed in the middle.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/buzon-mail/buzon/internal/clienttest"
	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/store"
)

const importPass = "import-secret"

// folderMsg is a message as a server reports it: flags sorted, \Recent
// left out.
type folderMsg struct {
	flags []string
	date  time.Time
	body  string
}

func (m folderMsg) String() string {
	subject := regexp.MustCompile(`(?m)^Subject: (.*)\r$`).FindStringSubmatch(m.body)
	s := ""
	if subject != nil {
		s = subject[1]
	}
	return fmt.Sprintf("{%q %v %d bytes %q}", s, m.flags, len(m.body), m.date.UTC().Format(time.RFC3339))
}

// imapLogin connects to an IMAP server without TLS and logs in.
func imapLogin(t *testing.T, addr, user, pass string, h *imapclient.UnilateralDataHandler) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, &imapclient.Options{UnilateralDataHandler: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Fatalf("login %s at %s: %v", user, addr, err)
	}
	return c
}

// imapFolders lists the folders that can hold messages, by name.
func imapFolders(t *testing.T, c *imapclient.Client) []string {
	t.Helper()
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range list {
		if !slices.Contains(l.Attrs, imap.MailboxAttrNoSelect) && !slices.Contains(l.Attrs, imap.MailboxAttrNonExistent) {
			names = append(names, l.Mailbox)
		}
	}
	slices.Sort(names)
	return names
}

// imapFolder reads a folder's messages in UID order.
func imapFolder(t *testing.T, c *imapclient.Client, mailbox string) []folderMsg {
	t.Helper()
	sel, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatalf("EXAMINE %s: %v", mailbox, err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true, InternalDate: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil {
		t.Fatalf("FETCH %s: %v", mailbox, err)
	}
	slices.SortFunc(msgs, func(a, b *imapclient.FetchMessageBuffer) int { return int(a.UID) - int(b.UID) })
	out := make([]folderMsg, len(msgs))
	for i, m := range msgs {
		var flags []string
		for _, f := range m.Flags {
			if f != "\\Recent" {
				flags = append(flags, string(f))
			}
		}
		slices.Sort(flags)
		out[i] = folderMsg{flags: flags, date: m.InternalDate}
		if len(m.BodySection) == 1 {
			out[i].body = string(m.BodySection[0].Bytes)
		}
	}
	return out
}

// compareFolders compares, folder by folder, what the old server and
// buzon report, and returns how many messages it compared. rename maps
// the old server's names of special folders to buzon's. Without keywords,
// only system flags are compared; with mbsync, the X-TUID field mbsync
// adds to each message it copies is left out of buzon's.
func compareFolders(t *testing.T, old, bz *imapclient.Client, rename map[string]string, keywords, mbsync bool) int {
	t.Helper()
	compared := 0
	for _, name := range imapFolders(t, old) {
		want := imapFolder(t, old, name)
		if len(want) == 0 {
			continue
		}
		target := name
		if r, ok := rename[name]; ok {
			target = r
		}
		got := imapFolder(t, bz, target)
		if mbsync {
			for i := range got {
				got[i].body = tuidRE.ReplaceAllString(got[i].body, "")
			}
		}
		if !keywords {
			for _, list := range [][]folderMsg{want, got} {
				for i := range list {
					list[i].flags = slices.DeleteFunc(list[i].flags, func(f string) bool { return !strings.HasPrefix(f, `\`) })
				}
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: buzon's %s has %d messages, the old server's %d:\nbuzon %v\nold   %v", name, target, len(got), len(want), got, want)
			continue
		}
		for i := range want {
			g, w := got[i], want[i]
			if g.body != w.body || !slices.Equal(g.flags, w.flags) || !g.date.Equal(w.date) {
				t.Errorf("%s message %d: buzon %v, old server %v", name, i+1, g, w)
			}
			compared++
		}
	}
	return compared
}

var tuidRE = regexp.MustCompile(`(?m)^X-TUID: \S+\r\n`)

// prepareOldAccount gives a Dovecot user folders (nested, non-ASCII,
// Outlook's and Apple's special names), messages with dates of their own,
// and flags and keywords, on top of what dovecot.sh fill put in INBOX.
func prepareOldAccount(t *testing.T, d *clienttest.Dovecot, user string) {
	t.Helper()
	if out, err := d.Script("fill", "25", user); err != nil {
		t.Fatalf("dovecot.sh fill: %v\n%s", err, out)
	}
	c := imapLogin(t, d.Addr("IMAP"), user, "pass", nil)
	base := time.Date(2019, 6, 1, 8, 30, 0, 0, time.FixedZone("", 2*3600))
	folders := []string{"Work/Projects", "Été/Août", "Sent Items", "Deleted Messages"}
	for i, folder := range folders {
		if err := c.Create(folder, nil).Wait(); err != nil {
			t.Fatalf("CREATE %s: %v", folder, err)
		}
		for j, flags := range [][]imap.Flag{{imap.FlagSeen}, {imap.FlagAnswered, "$Forwarded"}, nil} {
			msg := fmt.Sprintf("From: Old <old@example.net>\r\nTo: %s@example.net\r\nSubject: %s %d\r\nMessage-ID: <%d.%d@example.net>\r\n\r\nIn %s.\r\n", user, folder, j, i, j, folder)
			cmd := c.Append(folder, int64(len(msg)), &imap.AppendOptions{Flags: flags, Time: base.Add(time.Duration(i*10+j) * 24 * time.Hour)})
			cmd.Write([]byte(msg))
			cmd.Close()
			if _, err := cmd.Wait(); err != nil {
				t.Fatalf("APPEND %s: %v", folder, err)
			}
		}
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	for seq, flags := range map[uint32][]imap.Flag{
		1: {imap.FlagSeen, imap.FlagAnswered},
		2: {imap.FlagFlagged, "$Forwarded", "project-x"},
		3: {imap.FlagDraft, imap.FlagSeen},
		4: {imap.FlagSeen, imap.FlagDeleted},
		5: {"$Junk"},
	} {
		if err := c.Store(imap.SeqSetNum(seq), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: flags, Silent: true}, nil).Close(); err != nil {
			t.Fatal(err)
		}
	}
	c.Logout().Wait()
}

// specialRenames are the old server's special folders as buzon has them.
var specialRenames = map[string]string{"Sent Items": "Sent", "Deleted Messages": "Trash"}

// TestImportFromDovecot moves the mail of Dovecot users into buzon, while
// buzon runs, two ways: buzon import of the user's Maildir, and mbsync
// with the README's configuration; then compares what the two servers
// report through IMAP, folder by folder: bodies byte for byte, flags (and
// keywords, which mbsync does not copy) and INTERNALDATE. A second run of
// either copies nothing.
func TestImportFromDovecot(t *testing.T) {
	t.Parallel()
	d := clienttest.StartDovecot(t, "bzimport", 2)
	data := t.TempDir()
	for _, user := range []string{"alice@example.org", "bob@example.org"} {
		mustBuzon(t, importPass+"\n", "user", "add", "--data", data, user)
	}
	in := start(t, data)

	t.Run("maildir", func(t *testing.T) {
		prepareOldAccount(t, d, "user1")
		maildir := filepath.Join(d.Dir, "mail", "user1", "Maildir")
		// A message restored from a backup: its name is older than every
		// other's, its UID, in the dovecot-uidlist Dovecot writes when it
		// finds the file, the last. Dovecot's order is the one to keep.
		restored := filepath.Join(maildir, "cur", "1500000000.M1P1.restored:2,S")
		if err := os.WriteFile(restored, []byte("From: Old <old@example.net>\nSubject: restored\n\nFrom a backup.\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		// Dovecot's mail user owns its Maildirs, and must read the file.
		if fi, err := os.Stat(filepath.Dir(restored)); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				os.Chown(restored, int(st.Uid), int(st.Gid))
			}
		}
		sync := imapLogin(t, d.Addr("IMAP"), "user1", "pass", nil)
		if sel, err := sync.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil || sel.NumMessages != 26 {
			t.Fatalf("Dovecot's INBOX with the restored message: %v, %v", sel, err)
		}
		// And a message that arrives after it, unseen (in new/).
		later := "From: Old <old@example.net>\r\nSubject: after the restore\r\n\r\nNew.\r\n"
		cmd := sync.Append("INBOX", int64(len(later)), nil)
		cmd.Write([]byte(later))
		cmd.Close()
		if _, err := cmd.Wait(); err != nil {
			t.Fatalf("APPEND: %v", err)
		}
		sync.Logout().Wait()
		out := mustBuzon(t, "", "import", "--data", data, "alice@example.org", maildir)
		if !strings.Contains(out, "imported 39 messages") {
			t.Errorf("first import:\n%s", out)
		}
		old := imapLogin(t, d.Addr("IMAP"), "user1", "pass", nil)
		bz := imapLogin(t, in.ports["imap"], "alice@example.org", importPass, nil)
		if n := compareFolders(t, old, bz, specialRenames, true, false); n != 39 {
			t.Errorf("compared %d messages, want 39", n)
		}
		if got, want := imapFolders(t, bz), []string{"Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash", "Work", "Work/Projects", "Été", "Été/Août"}; !slices.Equal(got, want) {
			t.Errorf("buzon's folders %q, want %q", got, want)
		}
		out = mustBuzon(t, "", "import", "--data", data, "alice@example.org", maildir)
		if !strings.Contains(out, "imported 0 messages (0 bytes) into alice@example.org, 39 already there") {
			t.Errorf("second import:\n%s", out)
		}
		compareFolders(t, old, bz, specialRenames, true, false)
	})

	t.Run("mbsync", func(t *testing.T) {
		mbsync := clienttest.Need(t, "mbsync", "isync")
		prepareOldAccount(t, d, "user2")
		home := t.TempDir()
		rc := readmeMbsyncrc(t, map[string]map[string]string{
			"old":   {"Host": "localhost", "Port": fmt.Sprint(d.Ports["IMAPS"]), "User": "user2", "CertificateFile": filepath.Join(d.Dir, "tls", "cert.pem")},
			"buzon": {"Host": "localhost", "Port": portOf(in.ports["imaps"]), "User": "bob@example.org", "CertificateFile": filepath.Join(data, "tls", "cert.pem")},
			// The old server's folders that are only parents of others,
			// as the README says, in mbsync's spelling.
			"folders": {"Patterns": "+!Work !&AMk-t&AOk-"},
		})
		os.WriteFile(filepath.Join(home, ".mbsyncrc"), []byte(rc), 0o600)
		os.WriteFile(filepath.Join(home, ".old-password"), []byte("pass\n"), 0o600)
		os.WriteFile(filepath.Join(home, ".buzon-password"), []byte(importPass+"\n"), 0o600)
		sync := func() string {
			t.Helper()
			cmd := exec.Command(mbsync, "-a")
			cmd.Env = append(os.Environ(), "HOME="+home)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("mbsync -a: %v\n%s\n%s", err, out, rc)
			}
			return string(out)
		}
		sync()
		old := imapLogin(t, d.Addr("IMAP"), "user2", "pass", nil)
		bz := imapLogin(t, in.ports["imap"], "bob@example.org", importPass, nil)
		if n := compareFolders(t, old, bz, specialRenames, false, true); n != 37 {
			t.Errorf("compared %d messages, want 37", n)
		}
		// A copy made twice would show in the counts.
		sync()
		if n := compareFolders(t, old, bz, specialRenames, false, true); n != 37 {
			t.Errorf("after the second run, compared %d messages, want 37", n)
		}
	})
}

func portOf(hostPort string) string {
	return hostPort[strings.LastIndexByte(hostPort, ':')+1:]
}

// readmeMbsyncrc returns the mbsync configuration of README.md's "From a
// live IMAP account", with the settings of each IMAPAccount and Channel
// named in set replaced or added: the servers and users the test has, the
// exclusions it needs. A value starting with "+" is added to the line's.
func readmeMbsyncrc(t *testing.T, set map[string]map[string]string) string {
	t.Helper()
	var block []string
	for _, l := range codeLines(t, filepath.Join("..", "..", "README.md")) {
		if l.section == "From a live IMAP account" {
			block = append(block, l.text)
		}
	}
	if len(block) == 0 {
		t.Fatal("README.md has no mbsync configuration under \"From a live IMAP account\"")
	}
	var out []string
	section := ""
	flush := func() {
		for key, value := range set[section] {
			out = append(out, key+" "+strings.TrimPrefix(value, "+"))
		}
		delete(set, section)
	}
	for _, line := range block {
		key, rest, _ := strings.Cut(line, " ")
		switch {
		case key == "IMAPAccount" || key == "Channel":
			section = rest
		case section != "" && line == "":
			flush()
			section = ""
		case section != "":
			if v, ok := set[section][key]; ok {
				if add, ok := strings.CutPrefix(v, "+"); ok {
					line += " " + add
				} else {
					line = key + " " + v
				}
				delete(set[section], key)
			}
		}
		out = append(out, line)
	}
	flush()
	if len(set) > 0 {
		t.Fatalf("README's mbsync configuration lacks the sections %v", set)
	}
	return strings.Join(out, "\n") + "\n"
}

// TestImportWhileServing imports Thunderbird's local folders into an
// account whose INBOX a client watches with IDLE: the client hears of the
// new mail, and the folders are there with their flags.
func TestImportWhileServing(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	const user = "carol@example.org"
	mustBuzon(t, importPass+"\n", "user", "add", "--data", data, user)
	in := start(t, data)
	exists := make(chan uint32, 16)
	c := imapLogin(t, in.ports["imap"], user, importPass, &imapclient.UnilateralDataHandler{
		Mailbox: func(m *imapclient.UnilateralDataMailbox) {
			if m.NumMessages != nil {
				exists <- *m.NumMessages
			}
		},
	})
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	out := mustBuzon(t, "", "import", "--data", data, user, filepath.Join("testdata", "import", "Local Folders"))
	// The messages may be told of one by one.
	for n := uint32(0); n != 2; {
		select {
		case n = <-exists:
		case <-time.After(30 * time.Second):
			t.Fatalf("the IDLE client did not hear of the 2 messages imported into INBOX:\n%s", out)
		}
	}
	idle.Close()
	idle.Wait()
	if !strings.Contains(out, "imported 5 messages") || !strings.Contains(out, "deleted in Thunderbird") {
		t.Errorf("summary:\n%s", out)
	}
	if got, want := imapFolders(t, c), []string{"Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash", "Work", "Work/Projects"}; !slices.Equal(got, want) {
		t.Errorf("folders %q, want %q", got, want)
	}
	for _, tc := range []struct {
		folder string
		flags  [][]string
	}{
		{"INBOX", [][]string{{`\Answered`, `\Seen`}, nil}},
		{"Sent", [][]string{{`\Seen`}}},
		{"Work", [][]string{{"$label1", `\Flagged`, `\Seen`}}},
		{"Work/Projects", [][]string{nil}},
	} {
		msgs := imapFolder(t, c, tc.folder)
		var flags [][]string
		for _, m := range msgs {
			flags = append(flags, m.flags)
		}
		if !slices.EqualFunc(flags, tc.flags, func(a, b []string) bool { return slices.Equal(a, b) }) {
			t.Errorf("%s: flags %q, want %q", tc.folder, flags, tc.flags)
		}
	}
}

// storeFolder reads a folder straight from the store, in UID order.
func storeFolder(t *testing.T, data, account, mailbox string) []folderMsg {
	t.Helper()
	cfg := config.Default()
	cfg.Data = data
	st, err := openStore(cfg, slog.New(slog.DiscardHandler), useExisting)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	acct, err := st.LookupAccount(ctx, account)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := st.Open(ctx, acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	mb, err := sess.Mailbox(ctx, mailbox)
	if err != nil {
		t.Fatalf("mailbox %s: %v", mailbox, err)
	}
	var out []folderMsg
	var uids []store.UID
	err = sess.Messages(ctx, mb.ID, store.AllUIDs(), store.FieldFlags|store.FieldDate, func(mi *store.MessageInfo) error {
		flags := mi.Flags.Names()
		slices.Sort(flags)
		out = append(out, folderMsg{flags: flags, date: mi.InternalDate})
		uids = append(uids, mi.UID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, uid := range uids {
		b, err := sess.OpenBody(ctx, mb.ID, uid)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
		b.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[i].body = string(body)
	}
	return out
}

// TestImportPythonMailbox imports an mbox and a Maildir that Python's
// mailbox module wrote, with flags, sub-folders and dates set through
// its API.
func TestImportPythonMailbox(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	python(t, "", filepath.Join("import", "write_mailboxes.py"), dir)
	data := t.TempDir()
	const user = "dave@example.org"
	mustBuzon(t, importPass+"\n", "user", "add", "--data", data, user)
	mustBuzon(t, "", "import", "--data", data, "--folder", "Old", user, filepath.Join(dir, "box.mbox"))
	mustBuzon(t, "", "import", "--data", data, user, filepath.Join(dir, "Maildir"))
	date := func(s string) time.Time { d, _ := time.Parse(time.RFC3339, s); return d }
	for _, tc := range []struct {
		folder string
		want   []folderMsg
	}{
		// The mbox's dates are the From lines', written in UTC by the
		// script and read in this machine's zone.
		{"Old", []folderMsg{
			{[]string{`\Answered`, `\Seen`}, time.Date(2024, 2, 3, 4, 5, 6, 0, time.Local), "From: py@example.net\r\nSubject: mbox one\r\n\r\nFrom the mbox.\r\n"},
			{[]string{`\Flagged`}, time.Date(2024, 2, 4, 4, 5, 6, 0, time.Local), "From: py@example.net\r\nSubject: mbox two\r\n\r\n>not escaped\r\n"},
		}},
		{"INBOX", []folderMsg{
			{[]string{`\Seen`}, date("2023-01-02T03:04:05Z"), "From: py@example.net\r\nSubject: maildir one\r\n\r\nCur, seen.\r\n"},
			{nil, date("2023-01-03T03:04:05Z"), "From: py@example.net\r\nSubject: maildir two\r\n\r\nNew.\r\n"},
		}},
		{"Work/Reports", []folderMsg{
			{[]string{`\Answered`, `\Flagged`, `\Seen`}, date("2023-01-04T03:04:05Z"), "From: py@example.net\r\nSubject: maildir three\r\n\r\nIn a sub-folder.\r\n"},
		}},
	} {
		got := storeFolder(t, data, user, tc.folder)
		if len(got) != len(tc.want) {
			t.Errorf("%s: %v, want %v", tc.folder, got, tc.want)
			continue
		}
		for i, w := range tc.want {
			if g := got[i]; g.body != w.body || !slices.Equal(g.flags, w.flags) || !g.date.Equal(w.date) {
				t.Errorf("%s message %d: %v %q, want %v %q", tc.folder, i+1, g, g.body, w, w.body)
			}
		}
	}
}

// TestImportKilled kills an import with SIGKILL once it has stored some
// messages, runs it again, and finds every message once, in order, and a
// store `buzon check --repair` leaves sound.
func TestImportKilled(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const messages = 300
	var b strings.Builder
	for i := range messages {
		fmt.Fprintf(&b, "From sender@example.net Thu Nov 26 09:%02d:%02d 2026\nFrom: sender@example.net\nSubject: number %d\n\n%s\n\n", i/60, i%60, i, strings.Repeat("padding line\n", 100))
	}
	box := filepath.Join(dir, "big.mbox")
	os.WriteFile(box, []byte(b.String()), 0o600)
	data := filepath.Join(dir, "data")
	const user = "erin@example.org"
	mustBuzon(t, importPass+"\n", "user", "add", "--data", data, user)
	conf := filepath.Join(dir, "buzon.toml")
	os.WriteFile(conf, []byte(fmt.Sprintf("data = %q\n[log]\nlevel = \"debug\"\n", data)), 0o600)

	cmd := exec.Command(buzonBin, "import", "--config", conf, user, box)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	appended := 0
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "import: message appended") {
			if appended++; appended == 40 {
				cmd.Process.Kill()
				break
			}
		}
	}
	io.Copy(io.Discard, stderr)
	cmd.Wait()
	if appended < 40 {
		t.Fatalf("the import ended after %d messages, before it was killed", appended)
	}
	before := len(storeFolder(t, data, user, "big"))
	if before < 40 || before == messages {
		t.Fatalf("after the kill the folder has %d messages, want from 40 to %d", before, messages-1)
	}
	out := mustBuzon(t, "", "import", "--config", conf, user, box)
	if want := "imported " + store.Count(messages-before, "message"); !strings.Contains(out, want) {
		t.Errorf("the second run does not say %q:\n%s", want, out)
	}
	got := storeFolder(t, data, user, "big")
	if len(got) != messages {
		t.Fatalf("%d messages after the second run, want %d", len(got), messages)
	}
	for i, m := range got {
		if !strings.Contains(m.body, fmt.Sprintf("Subject: number %d\r\n", i)) {
			t.Fatalf("message %d is %v: repeated or out of order", i+1, m)
		}
	}
	// A kill between a body's write and its row's commit leaves the body
	// behind, as for any writer of the store; check --repair removes it.
	if out, _, code := buzon(t, "", "check", "--data", data, "--repair"); code != 0 {
		t.Errorf("buzon check --repair: exit %d\n%s", code, out)
	}
	if out, _, code := buzon(t, "", "check", "--data", data); code != 0 || !strings.Contains(out, "no problems") {
		t.Errorf("buzon check after repair: exit %d\n%s", code, out)
	}
}

// TestImportUsage: command lines that cannot run say why, with the exit
// code of a usage error (2) or of a failure (1), and import nothing.
func TestImportUsage(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	mustBuzon(t, importPass+"\n", "user", "add", "--data", data, "gina@example.org")
	mbox := filepath.Join("..", "..", "internal", "mailimport", "testdata", "mutt.mbox")
	for _, tc := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"gina@example.org"}, 2, "an address and at least one source"},
		{[]string{"gina@example.org", filepath.Join(data, "missing")}, 2, "no such file"},
		{[]string{"--folder", "X", "gina@example.org", filepath.Join("testdata", "import", "Local Folders")}, 2, "are for mbox files"},
		{[]string{"nobody@example.org", mbox}, 1, "no account nobody@example.org: add it first"},
		{[]string{"gina@example.org", filepath.Join("testdata", "import", "write_mailboxes.py")}, 1, "not an mbox"},
	} {
		_, errOut, code := buzon(t, "", append([]string{"import", "--data", data}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.says) {
			t.Errorf("import %q: exit %d, want %d saying %q:\n%s", tc.args, code, tc.code, tc.says, errOut)
		}
	}
	if msgs := storeFolder(t, data, "gina@example.org", "INBOX"); len(msgs) != 0 {
		t.Errorf("INBOX has %d messages after imports that failed", len(msgs))
	}
}

// TestImportPaths: the paths an administrator names, as they name them:
// a link to an mbox (/var/mail/alice often is one) and to a Maildir, and
// Apple Mail's export of one mailbox (Inbox.mbox/ with its mbox and
// Info.plist), which goes into the folder it is named for.
func TestImportPaths(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	const user = "hana@example.org"
	mustBuzon(t, importPass+"\n", "user", "add", "--data", data, user)
	mutt, _ := filepath.Abs(filepath.Join("..", "..", "internal", "mailimport", "testdata", "mutt.mbox"))
	mustSymlink := func(target, link string) {
		t.Helper()
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	mustSymlink(mutt, filepath.Join(dir, "spool-alice"))
	maildir := filepath.Join(dir, "Maildir")
	for _, sub := range []string{"cur", "new", "tmp"} {
		os.MkdirAll(filepath.Join(maildir, sub), 0o700)
	}
	os.WriteFile(filepath.Join(maildir, "cur", "1700000000.M1P1.host:2,S"), []byte("Subject: maildir\n\nvia a link\n"), 0o600)
	mustSymlink(maildir, filepath.Join(dir, "maildir-link"))
	apple := filepath.Join(dir, "Inbox.mbox")
	os.MkdirAll(apple, 0o700)
	os.WriteFile(filepath.Join(apple, "mbox"), []byte("From - Wed Nov 25 08:00:00 2026\nSubject: apple\n\nexported\n"), 0o600)
	os.WriteFile(filepath.Join(apple, "Info.plist"), []byte("<?xml version=\"1.0\"?>\n<plist/>\n"), 0o600)

	out := mustBuzon(t, "", "import", "--data", data, user, filepath.Join(dir, "spool-alice"), filepath.Join(dir, "maildir-link"), apple)
	if !strings.Contains(out, "imported 6 messages") || strings.Contains(out, "skipped") {
		t.Errorf("summary:\n%s", out)
	}
	for folder, want := range map[string]int{"spool-alice": 4, "INBOX": 2} {
		if got := len(storeFolder(t, data, user, folder)); got != want {
			t.Errorf("%s has %d messages, want %d", folder, got, want)
		}
	}
}

// TestImportOneMessage: the summary of an import of one message says so
// in the singular, as people write it.
func TestImportOneMessage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	mustBuzon(t, importPass+"\n", "user", "add", "--data", data, "ines@example.org")
	mbox := filepath.Join(dir, "old.mbox")
	if err := os.WriteFile(mbox, []byte("From bob@example.net Sat Jan  3 10:00:00 2026\nSubject: old\n\nold mail\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := mustBuzon(t, "", "import", "--data", data, "ines@example.org", mbox); !strings.HasPrefix(out, "imported 1 message (") {
		t.Errorf("summary:\n%s", out)
	}
}
