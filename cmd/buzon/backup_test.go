package main

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/jackc/pgx/v5"

	"github.com/buzon-mail/buzon/internal/clienttest"
	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/postgres/pgtest"
	"github.com/buzon-mail/buzon/internal/store/sqlite"
)

const backupUser = "backup@example.org"

// backupMessage is a distinct message of a few kilobytes named by id.
func backupMessage(id string, rng *rand.Rand) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: load@example.net\r\nTo: %s\r\nMessage-ID: <%s>\r\nSubject: backup test %s\r\n\r\n", backupUser, id, id)
	for range 10 + rng.IntN(80) {
		fmt.Fprintf(&b, "%s %016x line of a message that must be in the backup\r\n", id, rng.Uint64())
	}
	return b.String()
}

// backupMail reads a mailbox over IMAP with go-imap's client: UIDVALIDITY,
// and each message's body and flags by Message-ID, with its UID.
type backupMsg struct {
	uid   imap.UID
	body  string
	flags []imap.Flag
}

func backupMail(t *testing.T, in *instance) (uint32, map[string]backupMsg) {
	t.Helper()
	c := clGoClient(t, in, backupUser, nil)
	sel, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]backupMsg{}
	if sel.NumMessages == 0 {
		return sel.UIDValidity, out
	}
	msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		body := string(m.BodySection[0].Bytes)
		id := messageIDRE.FindStringSubmatch(body)
		if id == nil {
			t.Fatalf("UID %d has no Message-ID:\n%s", m.UID, body)
		}
		out[id[1]] = backupMsg{m.UID, body, m.Flags}
	}
	c.Logout().Wait()
	return sel.UIDValidity, out
}

// TestBackupWhileDelivering takes a backup of a running server while a
// client appends mail, another sets flags and expunges, and checks the
// promises: every message acknowledged before the backup started is in it
// byte for byte with its flags, nothing in it is anything but mail that
// was sent, and buzon check finds nothing wrong. Then it restores the
// backup, serves it, and reads the mail back over IMAP (go-imap's client)
// and POP3 (Python's poplib): the same messages and flags under a new,
// higher UIDVALIDITY, and POP3 UIDLs made from it.
func TestBackupWhileDelivering(t *testing.T) {
	t.Parallel()
	in := clServer(t, backupUser) // and the postmaster the first start makes
	rng := rand.New(rand.NewPCG(1, 2))
	sent := map[string]string{} // Message-ID -> body, every message offered
	var keep []string
	for i := range 60 {
		id := fmt.Sprintf("before-%d@example.net", i)
		sent[id] = backupMessage(id, rng)
		keep = append(keep, id)
	}
	for i := 0; i < len(keep); i += 20 {
		var msgs []string
		for _, id := range keep[i : i+20] {
			msgs = append(msgs, sent[id])
		}
		clDeliver(t, in, backupUser, msgs...) // fails unless each is accepted
	}
	c := clGoClient(t, in, backupUser, nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		from, to imap.UID
		flag     imap.Flag
	}{{1, 10, imap.FlagFlagged}, {11, 20, imap.FlagSeen}, {15, 25, imap.FlagAnswered}} {
		if err := c.Store(imap.UIDSet{{Start: f.from, Stop: f.to}}, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true,
			Flags: []imap.Flag{f.flag}}, nil).Close(); err != nil {
			t.Fatal(err)
		}
	}
	validity, before := backupMail(t, in)
	if len(before) != len(keep) {
		t.Fatalf("%d messages before the backup, want %d", len(before), len(keep))
	}

	// The load: appends (all acknowledged ones recorded), and flag changes
	// and expunges of what was appended during the test only, with a
	// keyword going on and off the earlier mail.
	var mu sync.Mutex
	appended := map[string]string{} // Message-ID -> body, offered during the backup
	var appendedUIDs []imap.UID
	stop := make(chan struct{})
	started := make(chan struct{})
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	app := clGoClient(t, in, backupUser, nil)
	chg := clGoClient(t, in, backupUser, nil)
	if _, err := chg.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(3, 4))
		for i := 0; !stopped(); i++ {
			id := fmt.Sprintf("during-%d@example.net", i)
			body := backupMessage(id, rng)
			mu.Lock()
			appended[id] = body
			mu.Unlock()
			cmd := app.Append("INBOX", int64(len(body)), nil)
			cmd.Write([]byte(body))
			if err := cmd.Close(); err != nil {
				errs <- err
				return
			}
			data, err := cmd.Wait()
			if err != nil {
				errs <- fmt.Errorf("append: %w", err)
				return
			}
			mu.Lock()
			appendedUIDs = append(appendedUIDs, data.UID)
			mu.Unlock()
			if i == 5 {
				close(started)
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; !stopped(); i++ {
			mu.Lock()
			uids := append([]imap.UID(nil), appendedUIDs...)
			mu.Unlock()
			op := imap.StoreFlagsAdd
			if i%2 == 1 {
				op = imap.StoreFlagsDel
			}
			if err := chg.Store(imap.UIDSet{{Start: 30, Stop: 40}}, &imap.StoreFlags{Op: op, Silent: true,
				Flags: []imap.Flag{"$Label1"}}, nil).Close(); err != nil {
				errs <- fmt.Errorf("store: %w", err)
				return
			}
			if len(uids) == 0 {
				continue
			}
			uid := uids[i%len(uids)]
			flag := imap.FlagFlagged
			if i%3 == 0 {
				flag = imap.FlagDeleted
			}
			if err := chg.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true,
				Flags: []imap.Flag{flag}}, nil).Close(); err != nil {
				errs <- fmt.Errorf("store: %w", err)
				return
			}
			if flag == imap.FlagDeleted {
				if _, err := chg.UIDExpunge(imap.UIDSetNum(uid)).Collect(); err != nil {
					errs <- fmt.Errorf("expunge: %w", err)
					return
				}
			}
		}
	}()
	<-started
	dest := filepath.Join(t.TempDir(), "backup")
	out, errOut, code := buzon(t, "", "backup", "--data", in.data, dest)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("load: %v", err)
	}
	if code != 0 || !regexp.MustCompile(`^backed up 2 accounts, \d+ messages, `).MatchString(out) {
		t.Fatalf("backup: exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out, "not in use") {
		t.Errorf("backup of a running server says the store was not in use:\n%s", out)
	}
	if out, _, code := buzon(t, "", "check", "--data", dest); code != 0 || !strings.Contains(out, "no problems") {
		t.Fatalf("check of the backup: exit %d\n%s", code, out)
	}

	// Restore and serve it.
	restored := filepath.Join(t.TempDir(), "restored")
	out = mustBuzon(t, "", "restore", "--data", restored, dest)
	if !strings.Contains(out, "every mailbox has a new UIDVALIDITY") {
		t.Errorf("restore says:\n%s", out)
	}
	in.stop()
	in2 := start(t, restored)
	newValidity, after := backupMail(t, in2)
	if newValidity <= validity {
		t.Errorf("UIDVALIDITY %d after the restore, %d before", newValidity, validity)
	}
	for _, id := range keep {
		m, ok := after[id]
		if !ok {
			t.Errorf("%s, acknowledged before the backup, is not in it", id)
			continue
		}
		if m.body != sent[id] {
			t.Errorf("%s differs:\n%q\nwant\n%q", id, m.body, sent[id])
		}
		if m.uid != before[id].uid {
			t.Errorf("%s: UID %d, was %d", id, m.uid, before[id].uid)
		}
		for _, f := range []imap.Flag{imap.FlagFlagged, imap.FlagSeen, imap.FlagAnswered} {
			if hasFlag(m.flags, f) != hasFlag(before[id].flags, f) {
				t.Errorf("%s: flags %v, were %v", id, m.flags, before[id].flags)
			}
		}
	}
	during := 0
	for id, m := range after {
		if _, ok := sent[id]; ok {
			continue
		}
		during++
		if body, ok := appended[id]; !ok || m.body != body {
			t.Errorf("restored %s (UID %d) is not a message that was sent:\n%q", id, m.uid, m.body)
		}
	}
	t.Logf("backup holds %d messages appended while it ran, of %d appended", during, len(appended))

	// POP3 with a real client: the same messages, byte for byte, and
	// UIDLs from the new UIDVALIDITY.
	host, port := in2.hostPort("pop3")
	uidls := python(t, "", "pop3_uidl.py", host, port, backupUser, clPass)
	lines := strings.Split(strings.TrimSpace(uidls), "\n")
	if len(lines) != len(after) {
		t.Errorf("POP3 lists %d messages, IMAP %d", len(lines), len(after))
	}
	prefix := fmt.Sprintf("%08x", newValidity)
	for _, l := range lines {
		if f := strings.Fields(l); len(f) != 2 || !strings.HasPrefix(f[1], prefix) {
			t.Errorf("UIDL %q does not carry the new UIDVALIDITY %s", l, prefix)
		}
	}
	dl := t.TempDir()
	if n := strings.TrimSpace(python(t, "", "pop3_download.py", host, port, backupUser, clPass, dl, "keep")); n != strconv.Itoa(len(after)) {
		t.Errorf("POP3 downloaded %s messages, want %d", n, len(after))
	}
	bodies := map[string]bool{}
	for _, m := range after {
		bodies[m.body] = true
	}
	for i := 1; i <= len(after); i++ {
		b, err := os.ReadFile(filepath.Join(dl, strconv.Itoa(i)))
		if err != nil || !bodies[string(b)] {
			t.Errorf("POP3 message %d is not one IMAP shows (%v)", i, err)
		}
	}
}

// TestRestoreRefuses: restore keeps out of a data folder a server runs on
// and, unless forced, out of one that holds anything, which --force moves
// aside; it keeps UIDVALIDITY only of a backup of a stopped store, and not
// over that store once a server has run on it since. backup
// and restore send PostgreSQL users to the README.
func TestRestoreRefuses(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	mustBuzon(t, clPass+"\n", "user", "add", "--data", data, backupUser)
	quiet := filepath.Join(t.TempDir(), "quiet")
	out := mustBuzon(t, "", "backup", "--data", data, quiet)
	if !strings.Contains(out, "not in use") {
		t.Errorf("backup of a stopped store:\n%s", out)
	}
	in := start(t, data)
	clDeliver(t, in, backupUser, clMsg("Subject: one", "", "one"))
	busy := filepath.Join(t.TempDir(), "busy")
	mustBuzon(t, "", "backup", "--data", data, busy)

	// Onto the running server, even forced.
	if _, errOut, code := buzon(t, "", "restore", "--force", "--data", data, quiet); code != 1 || !strings.Contains(errOut, "stop it before restoring") {
		t.Errorf("restore onto a running server: exit %d, %s", code, errOut)
	}
	in.stop()
	if _, errOut, code := buzon(t, "", "restore", "--data", data, quiet); code != 1 || !strings.Contains(errOut, "is not empty (--force moves it aside)") {
		t.Errorf("restore onto a store: exit %d, %s", code, errOut)
	}
	if _, errOut, code := buzon(t, "", "restore", "--keep-uidvalidity", "--data", filepath.Join(t.TempDir(), "d"), busy); code != 1 ||
		!strings.Contains(errOut, "UIDVALIDITY cannot be kept") {
		t.Errorf("restore keeping the UIDVALIDITY of a backup of a running server: exit %d, %s", code, errOut)
	}
	if _, errOut, code := buzon(t, "", "restore", "--data", filepath.Join(t.TempDir(), "d"), data); code != 1 ||
		!strings.Contains(errOut, "not a finished buzon backup") {
		t.Errorf("restore of a data folder that is no backup: exit %d, %s", code, errOut)
	}

	// The server took a message after the quiet backup: its UID would
	// be handed out again, so the backup's UIDVALIDITY cannot be kept.
	if _, errOut, code := buzon(t, "", "restore", "--force", "--keep-uidvalidity", "--data", data, quiet); code != 1 ||
		!strings.Contains(errOut, "changed after the backup was taken") {
		t.Errorf("restore keeping UIDVALIDITY over the store changed since: exit %d, %s", code, errOut)
	}
	out = mustBuzon(t, "", "restore", "--force", "--data", data, quiet)
	m := regexp.MustCompile(`moved the former contents of \S+ to (\S+)\n`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("forced restore:\n%s", out)
	}
	// The old folder is whole, message and all.
	if out := mustBuzon(t, "", "check", "--data", m[1]); !strings.Contains(out, "1 account, 1 message: no problems") {
		t.Errorf("the folder moved aside: %s", out)
	}
	if out := mustBuzon(t, "", "check", "--data", data); !strings.Contains(out, "1 account, 0 messages: no problems") {
		t.Errorf("the restored folder: %s", out)
	}

	conf := filepath.Join(t.TempDir(), "pg.toml")
	if err := os.WriteFile(conf, []byte("[store]\nbackend = \"postgres\"\ndsn = \"postgres://localhost/buzon\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"backup", "--config", conf, filepath.Join(t.TempDir(), "b")}, {"restore", "--config", conf, quiet}} {
		if _, errOut, code := buzon(t, "", args...); code != 1 || !strings.Contains(errOut, "pg_dump") || !strings.Contains(errOut, "README.md") {
			t.Errorf("%s on PostgreSQL: exit %d, %s", args[0], code, errOut)
		}
	}
}

// TestBackupKilled kills a backup while it copies: what it leaves is
// named .partial, restore refuses it, and the next backup replaces it.
func TestBackupKilled(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	fillBackupStore(t, data, 200, 256<<10)
	dest := filepath.Join(t.TempDir(), "backup")
	cmd := exec.Command(buzonBin, "backup", "--data", data, dest)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Bodies are being copied once the first shard folder exists.
	shards := filepath.Join(dest+".partial", "accounts", "1", "msg")
	for {
		if ents, _ := os.ReadDir(shards); len(ents) > 0 {
			break
		}
		if _, err := os.Stat(dest); err == nil {
			t.Fatal("the backup finished before it could be killed: make the store larger")
		}
		time.Sleep(time.Millisecond) // polling the file system; nothing to wait on
	}
	cmd.Process.Signal(syscall.SIGKILL)
	var ee *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &ee) {
		t.Fatalf("killed backup: %v", err)
	}
	if _, err := os.Stat(dest); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a killed backup made %s (%v)", dest, err)
	}
	for _, backup := range []string{dest, dest + ".partial"} {
		if _, errOut, code := buzon(t, "", "restore", "--data", filepath.Join(t.TempDir(), "d"), backup); code != 1 {
			t.Errorf("restore of %s: exit %d, %s", backup, code, errOut)
		}
	}
	out := mustBuzon(t, "", "backup", "--data", data, dest)
	if !strings.Contains(out, "1 account, 200 messages") {
		t.Errorf("backup after the kill:\n%s", out)
	}
	if _, err := os.Stat(dest + ".partial"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s.partial still there: %v", dest, err)
	}
	mustBuzon(t, "", "check", "--data", dest)
}

// fillBackupStore makes a store in data with one account holding n
// messages of size bytes, written straight through the store (faster than
// delivering them).
func fillBackupStore(t *testing.T, data string, n, size int) {
	t.Helper()
	mustBuzon(t, clPass+"\n", "user", "add", "--data", data, backupUser)
	cfg := sqlite.DefaultConfig()
	cfg.Dir = data
	st, err := sqlite.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	acct, err := st.LookupAccount(t.Context(), backupUser)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := st.Open(t.Context(), acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	inbox, err := ss.Mailbox(t.Context(), "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	body := "Subject: big\r\n\r\n" + strings.Repeat("0123456789abcdef", size/16) + "\r\n"
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() { // in parallel, so that group commit saves fsyncs
			defer wg.Done()
			b := fmt.Sprintf("X-N: %d\r\n", i) + body
			_, err := ss.Append(t.Context(), inbox.ID, &store.NewMessage{Body: strings.NewReader(b), Size: int64(len(b)), Structure: []byte("s")})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestRestoreMbsync: mbsync, which keeps a local copy of the mailbox and
// propagates deletions both ways, meets a restored server. Mail that came
// after the backup is in the local copy only; under the new UIDVALIDITY
// mbsync refuses to sync the mailbox rather than pair its UIDs with other
// messages or take the server's lack of that mail for a deletion, so the
// local copy keeps it. (With the old UIDVALIDITY, mbsync takes the mail
// that arrived after the restore for the mail it holds under the same
// UID, and never downloads it; had none arrived, it would delete its only
// copy of the mail that came after the backup.)
func TestRestoreMbsync(t *testing.T) {
	t.Parallel()
	mbsync := clienttest.Need(t, "mbsync", "isync")
	data := t.TempDir()
	mustBuzon(t, clPass+"\n", "user", "add", "--data", data, backupUser)
	deliver := func(data, subject string) {
		t.Helper()
		mustBuzon(t, clMsg("Message-ID: <"+strings.ReplaceAll(subject, " ", ".")+"@example.net>", "Subject: "+subject, "", subject), "deliver", "--data", data, backupUser)
	}
	for _, s := range []string{"one", "two", "three"} {
		deliver(data, s)
	}
	dest := filepath.Join(t.TempDir(), "backup")
	mustBuzon(t, "", "backup", "--data", data, dest)
	deliver(data, "after the backup")

	home := t.TempDir()
	mail := filepath.Join(home, "mail")
	sync := func(in *instance) (string, error) {
		t.Helper()
		host, port := in.hostPort("imap")
		rc := filepath.Join(home, "mbsyncrc")
		conf := fmt.Sprintf("IMAPAccount test\nHost %s\nPort %s\nUser %s\nPass %s\nSSLType None\nAuthMechs PLAIN\n\n"+
			"IMAPStore remote\nAccount test\n\nMaildirStore local\nPath %s/\nInbox %s/INBOX\n\n"+
			"Channel test\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Both\nExpunge Both\nSyncState *\nSync All\n",
			host, port, backupUser, clPass, mail, mail)
		if err := os.WriteFile(rc, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(mbsync, "-c", rc, "-a")
		cmd.Env = append(os.Environ(), "HOME="+home)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	local := func() []string {
		t.Helper()
		var subjects []string
		for _, sub := range []string{"cur", "new"} {
			ents, err := os.ReadDir(filepath.Join(mail, "INBOX", sub))
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ents {
				b, err := os.ReadFile(filepath.Join(mail, "INBOX", sub, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				if m := regexp.MustCompile(`(?m)^Subject: (.*)\r?$`).FindStringSubmatch(string(b)); m != nil {
					subjects = append(subjects, m[1])
				}
			}
		}
		slices.Sort(subjects)
		return subjects
	}
	if err := os.MkdirAll(mail, 0o700); err != nil {
		t.Fatal(err)
	}
	in := start(t, data)
	if out, err := sync(in); err != nil {
		t.Fatalf("mbsync: %v\n%s", err, out)
	}
	in.stop()
	want := []string{"after the backup", "one", "three", "two"}
	if got := local(); !slices.Equal(got, want) {
		t.Fatalf("local copy before the restore: %q, want %q", got, want)
	}

	restored := filepath.Join(t.TempDir(), "restored")
	mustBuzon(t, "", "restore", "--data", restored, dest)
	deliver(restored, "after the restore") // takes the UID "after the backup" had
	in = start(t, restored)
	out, err := sync(in)
	if err == nil || !strings.Contains(out, "UIDVALIDITY") {
		t.Errorf("mbsync after the restore: %v\n%s", err, out)
	}
	if got := local(); !slices.Equal(got, want) {
		t.Errorf("local copy after syncing with the restored server: %q, want %q", got, want)
	}
}

// TestPostgresRestoreUIDValidity: the SQL README.md gives for a restored
// PostgreSQL database raises every mailbox's UIDVALIDITY above what it was
// and a day above the clock, each its own; a mailbox made afterwards gets
// a higher one still; and buzon check finds nothing wrong.
func TestPostgresRestoreUIDValidity(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Start(t)
	conf := postgresConfig(t, dsn)
	mustBuzon(t, clPass+"\n", "user", "add", "--config", conf, backupUser)
	mustBuzon(t, clPass+"\n", "user", "add", "--config", conf, "other@example.org")
	var script strings.Builder
	for _, l := range codeLines(t, filepath.Join("..", "..", "README.md")) {
		if l.section == "Backups on PostgreSQL" {
			script.WriteString(l.text + "\n")
		}
	}
	if !strings.Contains(script.String(), "UPDATE mailboxes") {
		t.Fatalf("README.md's Backups on PostgreSQL has no SQL:\n%s", script.String())
	}
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	validities := func() map[int64]int64 {
		t.Helper()
		rows, err := conn.Query(ctx, `SELECT id, uidvalidity FROM mailboxes`)
		if err != nil {
			t.Fatal(err)
		}
		out := map[int64]int64{}
		for rows.Next() {
			var id, v int64
			if err := rows.Scan(&id, &v); err != nil {
				t.Fatal(err)
			}
			out[id] = v
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	before := validities()
	if _, err := conn.PgConn().Exec(ctx, script.String()).ReadAll(); err != nil {
		t.Fatalf("README.md's SQL: %v", err)
	}
	after := validities()
	floor := time.Now().Unix() + 86400 - 60
	seen := map[int64]bool{}
	for id, v := range after {
		if v <= before[id] || v < floor || v > 1<<32-1 || seen[v] {
			t.Errorf("mailbox %d: UIDVALIDITY %d after, %d before", id, v, before[id])
		}
		seen[v] = true
	}
	if len(after) != len(before) || len(after) < 2 {
		t.Fatalf("mailboxes: %d before, %d after", len(before), len(after))
	}
	if out := mustBuzon(t, "", "check", "--config", conf); !strings.Contains(out, "no problems") {
		t.Errorf("check after the SQL:\n%s", out)
	}
	in := start(t, "", "--config", conf)
	c := clGoClient(t, in, backupUser, nil)
	if err := c.Create("Later", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status("Later", &imap.StatusOptions{UIDValidity: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	for id, v := range after {
		if int64(st.UIDValidity) <= v {
			t.Errorf("a mailbox made after the SQL has UIDVALIDITY %d, mailbox %d %d", st.UIDValidity, id, v)
		}
	}
}

// TestRestoreFetchmail: fetchmail leaving mail on the server (UIDL, keep)
// downloads every message again from a restored server, whose UIDLs come
// from the new UIDVALIDITY, and nothing again from one restored with
// --keep-uidvalidity from a backup of the stopped server.
func TestRestoreFetchmail(t *testing.T) {
	t.Parallel()
	bin := clienttest.Need(t, "fetchmail", "fetchmail")
	data := t.TempDir()
	mustBuzon(t, clPass+"\n", "user", "add", "--data", data, backupUser)
	for _, s := range []string{"one", "two", "three"} {
		mustBuzon(t, clMsg("Subject: "+s, "", s), "deliver", "--data", data, backupUser)
	}
	dest := filepath.Join(t.TempDir(), "backup")
	mustBuzon(t, "", "backup", "--data", data, dest)

	home := t.TempDir()
	// poll fetches once, keeping mail on the server and its UIDLs in home,
	// and returns how many messages it delivered.
	poll := func(in *instance) int {
		t.Helper()
		host, port := in.hostPort("pop3")
		outDir := t.TempDir()
		rc := fmt.Sprintf("set no bouncemail\npoll %s port %s proto POP3 uidl\n"+
			"  user \"%s\" there with password \"%s\" is \"tester\" here\n"+
			"  options keep no stripcr sslproto '' mda \"cat > %s/msg.$$\"\n", host, port, backupUser, clPass, outDir)
		rcfile := filepath.Join(home, "fetchmailrc")
		if err := os.WriteFile(rcfile, []byte(rc), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "--nodetach", "--nosyslog", "--invisible", "--fetchmailrc", rcfile,
			"--idfile", filepath.Join(home, "fetchids"), "--pidfile", filepath.Join(home, "fetchmail.pid"))
		cmd.Env = append(os.Environ(), "HOME="+home)
		out, err := cmd.CombinedOutput()
		// 0: mail fetched, 1: none (fetchmail(1) EXIT CODES).
		if ee := (*exec.ExitError)(nil); err != nil && (!errors.As(err, &ee) || ee.ExitCode() != 1) {
			t.Fatalf("fetchmail: %v\n%s", err, out)
		}
		ents, err := os.ReadDir(outDir)
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	in := start(t, data)
	if n := poll(in); n != 3 {
		t.Fatalf("first poll delivered %d messages, want 3", n)
	}
	if n := poll(in); n != 0 {
		t.Fatalf("second poll delivered %d messages, want 0", n)
	}
	in.stop()
	ids, err := os.ReadFile(filepath.Join(home, "fetchids"))
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		flags []string
		want  int
	}{{nil, 3}, {[]string{"--keep-uidvalidity"}, 0}} {
		// Each case starts from what fetchmail knew before the restore.
		if err := os.WriteFile(filepath.Join(home, "fetchids"), ids, 0o600); err != nil {
			t.Fatal(err)
		}
		restored := filepath.Join(t.TempDir(), "restored")
		mustBuzon(t, "", append(append([]string{"restore", "--data", restored}, c.flags...), dest)...)
		in := start(t, restored)
		if n := poll(in); n != c.want {
			t.Errorf("restore %v: fetchmail delivered %d messages, want %d", c.flags, n, c.want)
		}
		in.stop()
	}
}

// TestRestoreAsRoot: root restoring into the server's data folder (made
// with install -o buzon, as README says, in a folder of root's, where that
// user cannot make DIR.partial or move DIR aside) restores it and gives
// every restored file the folder's owner, so the server can open them.
func TestRestoreAsRoot(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	data := t.TempDir()
	mustBuzon(t, clPass+"\n", "user", "add", "--data", data, backupUser)
	dest := filepath.Join(t.TempDir(), "backup")
	mustBuzon(t, "", "backup", "--data", data, dest)
	const nobody = 65534
	for _, tc := range []struct {
		name string
		fill bool // the folder holds a store of the user's (--force)
	}{{"empty", false}, {"full", true}} {
		t.Run(tc.name, func(t *testing.T) {
			folder := filepath.Join(t.TempDir(), "buzon")
			args := []string{"restore", "--data", folder, dest}
			if tc.fill {
				mustBuzon(t, clPass+"\n", "user", "add", "--data", folder, "old@example.org")
				args = append(args, "--force")
			} else if err := os.Mkdir(folder, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := filepath.WalkDir(folder, func(path string, _ fs.DirEntry, err error) error {
				if err == nil {
					err = os.Lchown(path, nobody, nobody)
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if out := mustBuzon(t, "", args...); strings.Contains(out, "belong to root") {
				t.Errorf("restore into the folder of %d says:\n%s", nobody, out)
			}
			err := filepath.WalkDir(folder, func(path string, _ fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				fi, err := os.Lstat(path)
				if err != nil {
					return err
				}
				if st := fi.Sys().(*syscall.Stat_t); st.Uid != nobody || st.Gid != nobody {
					t.Errorf("%s belongs to %d:%d, want the folder's owner %d", path, st.Uid, st.Gid, nobody)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if aside, _ := filepath.Glob(folder + ".before-restore-*"); tc.fill != (len(aside) == 1) {
				t.Errorf("moved aside: %v", aside)
			}
		})
	}

	// Into a folder nothing says the owner of (a new machine's): root's,
	// and restore says so.
	out := mustBuzon(t, "", "restore", "--data", filepath.Join(t.TempDir(), "new"), dest)
	if !strings.Contains(out, "the restored files belong to root") {
		t.Errorf("restore as root into a new folder says:\n%s", out)
	}
}
