package sqlite

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

// accountSession opens a session on the account name of st, for the
// caller to close.
func accountSession(tb testing.TB, st *Store, name string) store.Session {
	tb.Helper()
	acct, err := st.LookupAccount(tb.Context(), name)
	if err != nil {
		tb.Fatal(err)
	}
	ss, err := st.Open(tb.Context(), acct.ID)
	if err != nil {
		tb.Fatal(err)
	}
	return ss
}

// mailOf reads every message of an account, by mailbox name and UID:
// body, flags, keywords and save date, as one comparable string each.
func mailOf(t *testing.T, st *Store, name string) map[string]string {
	t.Helper()
	ctx := t.Context()
	ss := accountSession(t, st, name)
	defer ss.Close()
	boxes, err := ss.Mailboxes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, mb := range boxes {
		err := ss.Messages(ctx, mb.ID, store.AllUIDs(), store.FieldFlags|store.FieldSaveDate, func(m *store.MessageInfo) error {
			b, err := ss.OpenBody(ctx, mb.ID, m.UID)
			if err != nil {
				return err
			}
			defer b.Close()
			buf := make([]byte, b.Size())
			if _, err := b.ReadAt(buf, 0); err != nil {
				return err
			}
			if m.SaveDate.IsZero() {
				return fmt.Errorf("%s/%d has no save date", mb.Name, m.UID)
			}
			out[fmt.Sprintf("%s/%d", mb.Name, m.UID)] = fmt.Sprintf("flags %d %v saved %s: %s",
				m.Flags.System, m.Flags.Keywords, m.SaveDate.Format(time.RFC3339Nano), buf)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// uidValidities reads the UIDVALIDITY of each of an account's mailboxes.
func uidValidities(t *testing.T, st *Store, name string) map[string]uint32 {
	t.Helper()
	ss := accountSession(t, st, name)
	defer ss.Close()
	boxes, err := ss.Mailboxes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint32{}
	for _, mb := range boxes {
		out[mb.Name] = mb.UIDValidity
	}
	return out
}

// checkClean opens the store in dir and fails the test unless Check finds
// nothing wrong.
func checkClean(t *testing.T, dir string) store.CheckReport {
	t.Helper()
	rep, err := verify(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// fillStore makes two accounts with mail in two mailboxes, flags,
// keywords and a copy (a second name for a body), and files of the server
// next to the store.
func fillStore(t *testing.T, st *Store) {
	t.Helper()
	ctx := t.Context()
	for _, name := range []string{"alice@example.org", "bob@example.org"} {
		_, ss, inbox := newAccount(t, st, name)
		work, err := ss.CreateMailbox(ctx, "Work", "")
		if err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			appendBody(t, ss, inbox.ID, fmt.Sprintf("Subject: %s %d\r\n\r\n%s\r\n", name, i, strings.Repeat("body ", i*50)))
		}
		if _, err := ss.StoreFlags(ctx, inbox.ID, store.UIDSetOf(1, 2, 3), store.FlagsAdd,
			store.Flags{System: store.FlagSeen, Keywords: []string{"$Label1"}}, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := ss.Copy(ctx, inbox.ID, store.UIDSetOf(2, 4), work.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := ss.Expunge(ctx, inbox.ID, store.UIDSetOf(5), false); err != nil {
			t.Fatal(err)
		}
		for _, sc := range []string{"main", "spare"} {
			if err := ss.PutSieveScript(ctx, sc, []byte("# "+sc+" of "+name+"\r\nkeep;\r\n"), 0); err != nil {
				t.Fatal(err)
			}
		}
		if err := ss.ActivateSieveScript(ctx, "main"); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(st.dir, "tls"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]fs.FileMode{"tls/cert.pem": 0o644, "tls/key.pem": 0o600, "first-account-created": 0o600} {
		if err := os.WriteFile(filepath.Join(st.dir, name), []byte(name+" contents\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(st.dir, name), mode); err != nil {
			t.Fatal(err)
		}
	}
	// What a data folder holds besides, and a backup must not.
	if err := os.MkdirAll(filepath.Join(st.dir, tmpDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(st.dir, tmpDir, "spooled"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestBackup: a backup of a store is a data folder holding the same mail,
// flags, Sieve scripts and server files, with the store's file modes, that Check passes;
// restoring it gives the same mail under new UIDVALIDITY values.
func TestBackup(t *testing.T) {
	st := openTest(t, Config{})
	fillStore(t, st)
	dest := filepath.Join(t.TempDir(), "backup")
	var progress []BackupProgress
	rep, err := st.Backup(t.Context(), dest, BackupOptions{Progress: func(p BackupProgress) { progress = append(progress, p) }})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Accounts != 2 || rep.Messages != 2*(20-1+2) || rep.Expunged != 0 || rep.Deleted != 0 || rep.Damage != nil || !rep.Quiescent {
		t.Errorf("report %+v; want 2 accounts, 42 messages, quiescent", rep)
	}
	if len(progress) != 2 || progress[1].AccountsDone != 2 || progress[1].Messages != rep.Messages {
		t.Errorf("progress %+v", progress)
	}
	if _, err := os.Stat(dest + partialSuffix); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s left behind: %v", dest+partialSuffix, err)
	}
	if c := checkClean(t, dest); c.Accounts != 2 || c.Messages != rep.Messages {
		t.Errorf("check of the backup: %+v", c)
	}

	all := files(t, dest)
	for _, f := range all {
		if strings.HasPrefix(f, tmpDir+"/") || strings.HasPrefix(f, trashDir+"/") || strings.HasSuffix(f, ".sock") {
			t.Errorf("backup holds %s", f)
		}
		fi, err := os.Stat(filepath.Join(dest, f))
		if err != nil {
			t.Fatal(err)
		}
		want := fs.FileMode(0o600)
		if f == "tls/cert.pem" {
			want = 0o644
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", f, fi.Mode().Perm(), want)
		}
	}
	for _, want := range []string{"tls/cert.pem", "tls/key.pem", "first-account-created", backupManifest, accountsDB} {
		if !slices.Contains(all, want) {
			t.Errorf("backup lacks %s: %v", want, all)
		}
		if data, err := os.ReadFile(filepath.Join(dest, want)); want == "tls/key.pem" && string(data) != want+" contents\n" {
			t.Errorf("%s holds %q, %v", want, data, err)
		}
	}
	err = filepath.WalkDir(dest, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			if fi, err := d.Info(); err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("folder %s: mode %v, %v; want 0700", path, fi.Mode().Perm(), err)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Bodies are copies, not links to the store's.
	for _, f := range all {
		if strings.Contains(f, "/"+msgDir+"/") {
			fi, _ := os.Stat(filepath.Join(dest, f))
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink != 1 {
				t.Errorf("%s has %d links", f, st.Nlink)
			}
		}
	}

	restored := filepath.Join(t.TempDir(), "data")
	rrep, err := Restore(t.Context(), dest, restored, RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rrep.Accounts != 2 || rrep.Messages != rep.Messages || rrep.MovedAside != "" || rrep.UIDValidity < uint32(time.Now().Unix()) {
		t.Errorf("restore report %+v", rrep)
	}
	if slices.Contains(files(t, restored), backupManifest) {
		t.Errorf("the restored folder has the backup's manifest")
	}
	st2 := openTest(t, Config{Dir: restored})
	for _, name := range []string{"alice@example.org", "bob@example.org"} {
		before, after := mailOf(t, st, name), mailOf(t, st2, name)
		if len(before) != 21 || !maps.Equal(before, after) {
			t.Errorf("%s: restored mail differs:\nbefore %d: %v\nafter %d: %v", name, len(before), slices.Sorted(maps.Keys(before)), len(after), slices.Sorted(maps.Keys(after)))
		}
		old, now := uidValidities(t, st, name), uidValidities(t, st2, name)
		seen := map[uint32]bool{}
		for box, v := range now {
			if v <= old[box] || v < rrep.UIDValidity || seen[v] {
				t.Errorf("%s %s: UIDVALIDITY %d after restore, %d before (base %d)", name, box, v, old[box], rrep.UIDValidity)
			}
			seen[v] = true
		}
		// A mailbox made after the restore gets a UIDVALIDITY above them.
		ss := accountSession(t, st2, name)
		// The Sieve scripts come back, the same one active.
		if list, err := ss.SieveScripts(t.Context()); err != nil || len(list) != 2 || !list[0].Active || list[1].Active {
			t.Errorf("%s: restored sieve scripts %+v, %v; want main active, spare", name, list, err)
		}
		if act, err := ss.ActiveSieveScript(t.Context()); err != nil || string(act.Content) != "# main of "+name+"\r\nkeep;\r\n" {
			t.Errorf("%s: restored active script %+v, %v", name, act, err)
		}
		mb, err := ss.CreateMailbox(t.Context(), "New", "")
		ss.Close()
		if err != nil {
			t.Fatal(err)
		}
		for box, v := range now {
			if mb.UIDValidity <= v {
				t.Errorf("%s: new mailbox's UIDVALIDITY %d not above %s's %d", name, mb.UIDValidity, box, v)
			}
		}
	}
	// Accounts made after the restore start above the restored ones.
	_, ss, inbox := newAccount(t, st2, "carol@example.org")
	ss.Close()
	if inbox.UIDValidity <= rrep.UIDValidity {
		t.Errorf("new account's INBOX UIDVALIDITY %d, restored ones from %d", inbox.UIDValidity, rrep.UIDValidity)
	}
}

// TestBackupWhileChanging: what another process changes in an account
// after the backup copied its database (expunges, a mailbox deleted, mail
// appended, COPY then EXPUNGE, an account deleted) leaves the backup the
// account as it was at one moment, every message of that moment in it;
// an account that never keeps still gets its gone bodies expunged in the
// copy; a body the store itself lacks is reported.
func TestBackupWhileChanging(t *testing.T) {
	st := openTest(t, Config{})
	fillStore(t, st)
	other := openTest(t, Config{Dir: st.dir}) // as the server would
	ctx := t.Context()
	alice, _ := st.LookupAccount(ctx, "alice@example.org")
	bob, _ := st.LookupAccount(ctx, "bob@example.org")
	session := func() (store.Session, store.Mailbox) {
		ss, err := other.Open(ctx, alice.ID)
		if err != nil {
			t.Fatal(err)
		}
		inbox, err := ss.Mailbox(ctx, "INBOX")
		if err != nil {
			t.Fatal(err)
		}
		return ss, inbox
	}
	// backup runs a backup with change run once, after alice's database
	// is first copied, and checks the backup holds her mail as the store
	// does at the end.
	backup := func(change func(ss store.Session, inbox store.Mailbox)) (BackupReport, *Store) {
		t.Helper()
		changed := false
		dest := filepath.Join(t.TempDir(), "backup")
		rep, err := st.Backup(ctx, dest, BackupOptions{afterSnapshot: func(id int64) {
			if id == alice.ID && !changed {
				changed = true
				ss, inbox := session()
				defer ss.Close()
				change(ss, inbox)
			}
		}})
		if err != nil {
			t.Fatal(err)
		}
		checkClean(t, dest)
		b := openTest(t, Config{Dir: dest})
		if got, live := mailOf(t, b, "alice@example.org"), mailOf(t, st, "alice@example.org"); !maps.Equal(got, live) {
			t.Errorf("backup's mail differs from the store's:\nbackup %v\nstore  %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(live)))
		}
		return rep, b
	}

	// Damage: a body gone from under the live store.
	bodies := bodyFiles(t, st, bob.ID)
	if err := os.Remove(filepath.Join(st.accountDir(bob.ID), bodies[0])); err != nil {
		t.Fatal(err)
	}
	rep, b := backup(func(ss store.Session, inbox store.Mailbox) {
		if _, err := ss.Expunge(ctx, inbox.ID, store.UIDSetOf(1, 2, 3, 6), false); err != nil {
			t.Fatal(err)
		}
		if err := ss.DeleteMailbox(ctx, "Work"); err != nil {
			t.Fatal(err)
		}
		appendBody(t, ss, inbox.ID, "Subject: after\r\n\r\nin the second copy\r\n")
		if err := other.DeleteAccount(ctx, "bob@example.org"); err != nil {
			t.Fatal(err)
		}
	})
	// Bob's damage is not seen: his account went before his bodies were
	// looked at. Alice's database was copied again, after the changes.
	if rep.Quiescent || rep.Accounts != 1 || rep.Deleted != 1 || rep.Expunged != 0 || rep.Messages != 19-4+1 {
		t.Errorf("report %+v; want not quiescent, 1 account, 1 deleted, 16 messages", rep)
	}
	if _, err := b.LookupAccount(ctx, "bob@example.org"); !errors.Is(err, store.ErrNoAccount) {
		t.Errorf("deleted account in the backup: %v", err)
	}
	if _, err := os.Stat(b.accountDir(bob.ID)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("deleted account's folder in the backup: %v", err)
	}
	// The expunges are tombstones, as they are in the store.
	ss, err := b.Open(ctx, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	inbox, _ := ss.Mailbox(ctx, "INBOX")
	changes, err := ss.Changes(ctx, inbox.ID, 1)
	ss.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(changes.Expunged, []store.UID{1, 2, 3, 5, 6}) {
		t.Errorf("expunged in the backup: %v, want 1:3,5:6", changes.Expunged)
	}

	// COPY then EXPUNGE, as clients move mail without MOVE: the body
	// the first copy names is gone, and lives on under the new name.
	rep, _ = backup(func(ss store.Session, inbox store.Mailbox) {
		archive, err := ss.CreateMailbox(ctx, "Kept", "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ss.Copy(ctx, inbox.ID, store.UIDSetOf(7, 8), archive.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := ss.Expunge(ctx, inbox.ID, store.UIDSetOf(7, 8), false); err != nil {
			t.Fatal(err)
		}
	})
	if rep.Expunged != 0 || rep.Messages != 16 {
		t.Errorf("report %+v; want 16 messages, none expunged in the copy", rep)
	}

	// An account that changes after every copy of its database, each
	// time expunging a message the copy names whose body is not in the
	// backup yet (the one appended the time before): after the last copy
	// the one body gone is expunged in the copy.
	tries := 0
	var last store.UID = 4 // all bodies are still to copy the first time
	dest := filepath.Join(t.TempDir(), "backup")
	rep, err = st.Backup(ctx, dest, BackupOptions{afterSnapshot: func(id int64) {
		if id != alice.ID {
			return
		}
		tries++
		ss, inbox := session()
		defer ss.Close()
		if res, err := ss.Expunge(ctx, inbox.ID, store.UIDSetOf(last), false); err != nil || len(res.UIDs) != 1 {
			t.Fatalf("expunge %d: %+v, %v", last, res, err)
		}
		last = appendBody(t, ss, inbox.ID, fmt.Sprintf("Subject: busy %d\r\n\r\nx\r\n", tries)).UID
	}})
	if err != nil {
		t.Fatal(err)
	}
	if tries != snapshots || rep.Expunged != 1 || rep.Messages != 15 {
		t.Errorf("busy account: %d copies, report %+v; want %d copies, 1 expunged, 15 messages", tries, rep, snapshots)
	}
	checkClean(t, dest)
	b = openTest(t, Config{Dir: dest})
	live := mailOf(t, st, "alice@example.org")
	delete(live, fmt.Sprintf("INBOX/%d", last)) // appended after the last copy
	if got := mailOf(t, b, "alice@example.org"); !maps.Equal(got, live) {
		t.Errorf("busy account: backup's mail differs from the store's:\nbackup %v\nstore  %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(live)))
	}

	// Damage, without the account going away.
	dest2 := filepath.Join(t.TempDir(), "backup")
	body := bodyFiles(t, st, alice.ID)[0]
	if err := os.Remove(filepath.Join(st.accountDir(alice.ID), body)); err != nil {
		t.Fatal(err)
	}
	rep, err = st.Backup(ctx, dest2, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Damage) != 1 || !strings.Contains(rep.Damage[0], filepath.Base(body)) || rep.Expunged != 0 {
		t.Errorf("report %+v; want the missing body %s as damage", rep, body)
	}
	checkClean(t, dest2)
}

// TestBackupInterrupted: a backup that fails or is cancelled leaves
// neither the destination nor its .partial folder; one killed leaves only
// the .partial folder, which restore refuses and the next backup replaces.
func TestBackupInterrupted(t *testing.T) {
	st := openTest(t, Config{})
	fillStore(t, st)
	dest := filepath.Join(t.TempDir(), "backup")
	ctx, cancel := context.WithCancel(t.Context())
	_, err := st.Backup(ctx, dest, BackupOptions{afterSnapshot: func(int64) { cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled backup: %v", err)
	}
	for _, p := range []string{dest, dest + partialSuffix} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("cancelled backup left %s: %v", p, err)
		}
	}

	// A kill: the process stops inside the hook, as far as the files
	// tell.
	killed := errors.New("killed")
	func() {
		defer func() {
			if r := recover(); r != killed {
				panic(r)
			}
		}()
		st.Backup(t.Context(), dest, BackupOptions{afterSnapshot: func(int64) { panic(killed) }})
	}()
	if _, err := os.Stat(dest); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("killed backup made %s: %v", dest, err)
	}
	if _, err := os.Stat(filepath.Join(dest+partialSuffix, accountsDB)); err != nil {
		t.Fatalf("killed backup: %v", err)
	}
	for _, tc := range []struct{ backup, want string }{
		{dest + partialSuffix, "a backup that was interrupted"},
		{dest, "there is no such folder"},
		{st.dir, "not a finished buzon backup"},
	} {
		if _, err := Restore(t.Context(), tc.backup, filepath.Join(t.TempDir(), "data"), RestoreOptions{}); err == nil ||
			!strings.Contains(err.Error(), tc.want) {
			t.Errorf("restore of %s: %v; want %q", tc.backup, err, tc.want)
		}
	}
	if _, err := st.Backup(t.Context(), dest, BackupOptions{}); err != nil {
		t.Fatalf("backup after a killed one: %v", err)
	}
	checkClean(t, dest)
	// The refusal says what to do instead.
	if _, err := st.Backup(t.Context(), dest, BackupOptions{}); err == nil ||
		!strings.Contains(err.Error(), "exists already; a backup goes into a new folder: give another name, or remove the old backup first") {
		t.Errorf("backup onto an existing one: %v", err)
	}
	if _, err := st.Backup(t.Context(), filepath.Join(st.dir, "b"), BackupOptions{}); err == nil || !strings.Contains(err.Error(), "overlap") {
		t.Errorf("backup into the data folder: %v", err)
	}
}

// TestRestoreRefuses: restore keeps out of a folder in use or holding
// something, unless forced, and then moves it aside; it keeps
// UIDVALIDITY only of a quiescent backup.
func TestRestoreRefuses(t *testing.T) {
	st := openTest(t, Config{})
	fillStore(t, st)
	ctx := t.Context()
	quiet := filepath.Join(t.TempDir(), "quiet")
	if rep, err := st.Backup(ctx, quiet, BackupOptions{}); err != nil || !rep.Quiescent {
		t.Fatalf("backup: %+v, %v", rep, err)
	}
	other := openTest(t, Config{Dir: st.dir})
	busy := filepath.Join(t.TempDir(), "busy")
	if rep, err := st.Backup(ctx, busy, BackupOptions{}); err != nil || rep.Quiescent {
		t.Fatalf("backup: %+v, %v", rep, err)
	}
	other.Close()

	// Into a folder a Store has open (a running server).
	inUse := t.TempDir()
	running := openTest(t, Config{Dir: inUse})
	if _, err := Restore(ctx, quiet, inUse, RestoreOptions{Force: true}); !errors.Is(err, ErrInUse) {
		t.Errorf("restore into a folder in use: %v", err)
	}
	running.Close()

	// Into a folder with something in it.
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "precious"), []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(ctx, quiet, full, RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("restore into a full folder: %v", err)
	}
	if data, err := os.ReadFile(filepath.Join(full, "precious")); string(data) != "keep me" {
		t.Errorf("refused restore touched the folder: %q, %v", data, err)
	}
	rep, err := Restore(ctx, quiet, full, RestoreOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(rep.MovedAside, "precious")); string(data) != "keep me" {
		t.Errorf("forced restore: old folder %q: %q, %v", rep.MovedAside, data, err)
	}
	checkClean(t, full)

	if _, err := Restore(ctx, quiet, filepath.Join(quiet, "data"), RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "overlap") {
		t.Errorf("restore into the backup: %v", err)
	}
	if _, err := Restore(ctx, filepath.Join(full, "x"), full, RestoreOptions{Force: true}); err == nil || !strings.Contains(err.Error(), "overlap") {
		t.Errorf("restore of a backup inside the data folder: %v", err)
	}

	// A mount point (a new disk's, say) can be neither replaced nor
	// moved aside.
	if mountPoint("/dev/shm") {
		if _, err := Restore(ctx, quiet, "/dev/shm", RestoreOptions{Force: true}); err == nil || !strings.Contains(err.Error(), "mount point") {
			t.Errorf("restore onto a mount point: %v", err)
		}
	} else {
		t.Log("/dev/shm is not a mount point here: the mount-point refusal is not checked")
	}

	// An empty folder is fine (a fresh volume's mount point is one).
	empty := t.TempDir()
	if _, err := Restore(ctx, quiet, empty, RestoreOptions{}); err != nil {
		t.Errorf("restore into an empty folder: %v", err)
	}

	// --keep-uidvalidity: refused for a backup of a store in use, done
	// for a quiescent one.
	if _, err := Restore(ctx, busy, filepath.Join(t.TempDir(), "d"), RestoreOptions{KeepUIDValidity: true}); err == nil ||
		!strings.Contains(err.Error(), "cannot be kept") {
		t.Errorf("keeping the UIDVALIDITY of a busy backup: %v", err)
	}
	kept := filepath.Join(t.TempDir(), "d")
	rep, err = Restore(ctx, quiet, kept, RestoreOptions{KeepUIDValidity: true})
	if err != nil || rep.UIDValidity != 0 {
		t.Fatalf("restore keeping UIDVALIDITY: %+v, %v", rep, err)
	}
	st2 := openTest(t, Config{Dir: kept})
	for _, name := range []string{"alice@example.org", "bob@example.org"} {
		if a, b := uidValidities(t, st, name), uidValidities(t, st2, name); fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("%s: UIDVALIDITY %v, kept %v", name, a, b)
		}
		if !maps.Equal(mailOf(t, st, name), mailOf(t, st2, name)) {
			t.Errorf("%s: mail differs", name)
		}
	}
}

// BenchmarkBackup backs up one account of 5,000 messages of 8 KB, copying
// bodies one at a time and copyWorkers at a time; msgs/s is the rate.
func BenchmarkBackup(b *testing.B) {
	for _, workers := range []int{1, copyWorkers} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			const n = 5000
			st := benchStore(b, Config{})
			if _, err := st.CreateAccount(b.Context(), "bench@example.org", store.Credentials{}); err != nil {
				b.Fatal(err)
			}
			ss := accountSession(b, st, "bench@example.org")
			defer ss.Close()
			inbox, err := ss.Mailbox(b.Context(), "INBOX")
			if err != nil {
				b.Fatal(err)
			}
			body := strings.Repeat("x", 8<<10)
			var wg sync.WaitGroup
			sem := make(chan struct{}, 32) // group commit, as under load
			for i := range n {
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					m := fmt.Sprintf("Subject: %d\r\n\r\n%s", i, body)
					if _, err := ss.Append(b.Context(), inbox.ID, &store.NewMessage{Body: strings.NewReader(m), Size: int64(len(m)), Structure: []byte("s")}); err != nil {
						b.Error(err)
					}
				}()
			}
			wg.Wait()
			dir := b.TempDir()
			i := 0
			for b.Loop() {
				dest := filepath.Join(dir, fmt.Sprint(i))
				if _, err := st.Backup(b.Context(), dest, BackupOptions{workers: workers}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				os.RemoveAll(dest)
				i++
				b.StartTimer()
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// TestRestoreWhere: a restore goes where the data folder really is, with
// the owner it is given, and its UIDVALIDITY values stay above the
// backup's taking when the restoring machine's clock is behind.
func TestRestoreWhere(t *testing.T) {
	st := openTest(t, Config{})
	fillStore(t, st)
	ctx := t.Context()
	backup := filepath.Join(t.TempDir(), "backup")
	if _, err := st.Backup(ctx, backup, BackupOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("link", func(t *testing.T) {
		// /var/lib/buzon -> /disk/buzon, with a store in it.
		disk := filepath.Join(t.TempDir(), "buzon")
		old := openTest(t, Config{Dir: disk})
		newAccount(t, old, "old@example.org")
		old.Close()
		link := filepath.Join(t.TempDir(), "buzon")
		if err := os.Symlink(disk, link); err != nil {
			t.Fatal(err)
		}
		rep, err := Restore(ctx, backup, link, RestoreOptions{Force: true})
		if err != nil {
			t.Fatal(err)
		}
		if target, err := os.Readlink(link); err != nil || target != disk {
			t.Errorf("the data folder's link now %q, %v; want it to point to %s still", target, err, disk)
		}
		if filepath.Dir(rep.MovedAside) != filepath.Dir(disk) {
			t.Errorf("old store moved aside to %s, want it beside %s", rep.MovedAside, disk)
		}
		if c := checkClean(t, disk); c.Accounts != 2 {
			t.Errorf("%s after the restore: %+v", disk, c)
		}
	})

	t.Run("clock behind", func(t *testing.T) {
		// The backup says it was taken ten days from now: the clock of
		// the machine restoring is ten days behind the one that ran the
		// store, which handed out UIDVALIDITY values from its clock.
		ahead := filepath.Join(t.TempDir(), "backup")
		if err := os.CopyFS(ahead, os.DirFS(backup)); err != nil {
			t.Fatal(err)
		}
		taken := time.Now().Add(10 * 24 * time.Hour).UTC().Truncate(time.Second)
		m := manifest{Taken: taken, Quiescent: true, Accounts: 2, Messages: 42}
		if err := os.WriteFile(filepath.Join(ahead, backupManifest), m.encode(), 0o600); err != nil {
			t.Fatal(err)
		}
		rep, err := Restore(ctx, ahead, filepath.Join(t.TempDir(), "data"), RestoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if want := uint32(taken.Unix() + uidValidityMargin); rep.UIDValidity < want {
			t.Errorf("UIDVALIDITY from %d, below the backup's taking plus the margin, %d", rep.UIDValidity, want)
		}
	})

	t.Run("owner", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root")
		}
		const nobody = 65534
		data := filepath.Join(t.TempDir(), "data")
		if _, err := Restore(ctx, backup, data, RestoreOptions{Owner: &Owner{nobody, nobody}}); err != nil {
			t.Fatal(err)
		}
		err := filepath.WalkDir(data, func(path string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := os.Lstat(path)
			if err != nil {
				return err
			}
			if s := fi.Sys().(*syscall.Stat_t); s.Uid != nobody || s.Gid != nobody {
				t.Errorf("%s belongs to %d:%d", path, s.Uid, s.Gid)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// TestRestoreSwap: the folder restored into keeps its old store, locked,
// until the copy is whole, so a server started during the copy waits for
// it rather than making an empty store in its place; a store made where
// there was none while the copy ran is left alone, and the error says
// where the copy is.
func TestRestoreSwap(t *testing.T) {
	st := openTest(t, Config{})
	fillStore(t, st)
	ctx := t.Context()
	backup := filepath.Join(t.TempDir(), "backup")
	if _, err := st.Backup(ctx, backup, BackupOptions{}); err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(t.TempDir(), "data")
	old := openTest(t, Config{Dir: dir})
	newAccount(t, old, "old@example.org")
	old.Close()
	lockBefore, err := os.Stat(filepath.Join(dir, "store.lock"))
	if err != nil {
		t.Fatal(err)
	}
	swapped := false
	rep, err := Restore(ctx, backup, dir, RestoreOptions{Force: true, beforeSwap: func() {
		swapped = true
		if _, err := os.Stat(filepath.Join(dir, accountsDB)); err != nil {
			t.Errorf("the old store left %s before the copy was whole: %v", dir, err)
		}
		if aside, _ := filepath.Glob(dir + ".before-restore-*"); len(aside) != 0 {
			t.Errorf("moved aside before the copy was whole: %v", aside)
		}
	}})
	if err != nil || !swapped {
		t.Fatalf("restore: %+v, %v", rep, err)
	}
	if c := checkClean(t, rep.MovedAside); c.Accounts != 1 {
		t.Errorf("moved aside: %+v", c)
	}
	// A server started during the copy waits in Open for a lock on the
	// old store.lock, and must hold the restored folder's once it has it.
	if lockAfter, err := os.Stat(filepath.Join(dir, "store.lock")); err != nil || !os.SameFile(lockBefore, lockAfter) {
		t.Errorf("the restored folder's store.lock is not the file a waiting server locks (%v)", err)
	}

	// Interrupted during the copy (^C): the folder is as it was.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Restore(cancelled, backup, dir, RestoreOptions{Force: true}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled restore: %v", err)
	}
	if aside, _ := filepath.Glob(dir + ".before-restore-*"); len(aside) != 1 {
		t.Errorf("cancelled restore moved the folder aside: %v", aside)
	}
	if c := checkClean(t, dir); c.Accounts != 2 {
		t.Errorf("the folder after a cancelled restore: %+v", c)
	}

	// A server started on the missing folder while the copy ran.
	dir = filepath.Join(t.TempDir(), "data")
	_, err = Restore(ctx, backup, dir, RestoreOptions{beforeSwap: func() {
		s := openTest(t, Config{Dir: dir})
		newAccount(t, s, "new@example.org")
		s.Close()
	}})
	if err == nil || !strings.Contains(err.Error(), "made a new store there") || !strings.Contains(err.Error(), dir+partialSuffix) {
		t.Fatalf("restore while a store was made there: %v", err)
	}
	if c := checkClean(t, dir+partialSuffix); c.Accounts != 2 {
		t.Errorf("the restored copy: %+v", c)
	}
	if c := checkClean(t, dir); c.Accounts != 1 {
		t.Errorf("the store made meanwhile: %+v", c)
	}
}

// TestRestoreKeepUIDValidityChanged: --keep-uidvalidity over the store
// the backup was taken of is refused once that store has changed since
// (a server ran on it, or a restore renewed its UIDVALIDITY), and allowed
// while it has not, or over another store. Two restores in one second
// move the folder aside under two names.
func TestRestoreKeepUIDValidityChanged(t *testing.T) {
	st := openTest(t, Config{})
	fillStore(t, st)
	ctx := t.Context()
	backup := filepath.Join(t.TempDir(), "backup")
	if _, err := st.Backup(ctx, backup, BackupOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := st.dir
	st.Close()
	keep := RestoreOptions{Force: true, KeepUIDValidity: true}
	if _, err := Restore(ctx, backup, dir, keep); err != nil {
		t.Fatalf("keeping UIDVALIDITY over the unchanged store: %v", err)
	}

	for _, tc := range []struct {
		name   string
		change func(t *testing.T, ss store.Session)
	}{
		{"delivery", func(t *testing.T, ss store.Session) {
			inbox, err := ss.Mailbox(ctx, "INBOX")
			if err != nil {
				t.Fatal(err)
			}
			appendBody(t, ss, inbox.ID, "Subject: after the backup\r\n\r\nlost\r\n")
		}},
		{"new mailbox", func(t *testing.T, ss store.Session) {
			if _, err := ss.CreateMailbox(ctx, "After", ""); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			if _, err := Restore(ctx, backup, dir, keep); err != nil {
				t.Fatal(err)
			}
			live := openTest(t, Config{Dir: dir})
			ss := accountSession(t, live, "bob@example.org")
			tc.change(t, ss)
			ss.Close()
			live.Close()
			_, err := Restore(ctx, backup, dir, keep)
			if err == nil || !strings.Contains(err.Error(), "bob@example.org changed after the backup") {
				t.Fatalf("keeping UIDVALIDITY over a store changed since: %v", err)
			}
			if _, err := os.Stat(dir + partialSuffix); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("refused restore left %s: %v", dir+partialSuffix, err)
			}
			if _, err := Restore(ctx, backup, dir, RestoreOptions{Force: true}); err != nil {
				t.Errorf("restore with new UIDVALIDITY: %v", err)
			}
			// Which gave alice's mailboxes new values too: keeping the
			// backup's now would take them back down.
			if _, err := Restore(ctx, backup, dir, keep); err == nil || !strings.Contains(err.Error(), "changed after the backup") {
				t.Errorf("keeping UIDVALIDITY over a restore that renewed it: %v", err)
			}
		})
	}

	// Another store, whose account 1 is someone else.
	other := openTest(t, Config{})
	_, ss, inbox := newAccount(t, other, "alice@example.org")
	appendBody(t, ss, inbox.ID, "Subject: other store\r\n\r\nx\r\n")
	ss.Close()
	other.Close()
	if _, err := Restore(ctx, backup, other.dir, keep); err != nil {
		t.Errorf("keeping UIDVALIDITY over another store: %v", err)
	}
}

// TestMoveAside: folders moved aside in the same second get names of
// their own; none replaces another.
func TestMoveAside(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	now := time.Now()
	var names []string
	for i := range 3 {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "n"), []byte{byte('0' + i)}, 0o600); err != nil {
			t.Fatal(err)
		}
		aside, err := moveAside(dir, now)
		if err != nil {
			t.Fatalf("move aside %d: %v", i, err)
		}
		names = append(names, aside)
	}
	for i, aside := range names {
		if data, err := os.ReadFile(filepath.Join(aside, "n")); err != nil || string(data) != string(rune('0'+i)) {
			t.Errorf("%s holds %q, %v; want folder %d", aside, data, err, i)
		}
	}
}

// TestPartialOverlap: the <dest>.partial that backup and restore remove
// before they start is never the data folder or the backup, nor a folder
// they did not make.
func TestPartialOverlap(t *testing.T) {
	ctx := t.Context()
	parent := t.TempDir()
	st := openTest(t, Config{Dir: filepath.Join(parent, "mail"+partialSuffix)})
	fillStore(t, st)
	if _, err := st.Backup(ctx, filepath.Join(parent, "mail"), BackupOptions{}); err == nil || !strings.Contains(err.Error(), "overlaps") {
		t.Errorf("backup to the data folder less its .partial: %v", err)
	}
	if c := checkClean(t, st.dir); c.Accounts != 2 {
		t.Errorf("the data folder after: %+v", c)
	}

	backup := filepath.Join(parent, "backup"+partialSuffix)
	if _, err := st.Backup(ctx, backup, BackupOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(ctx, backup, filepath.Join(parent, "backup"), RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "overlaps") {
		t.Errorf("restore of a backup named like the folder's .partial: %v", err)
	}
	if _, err := readManifest(backup); err != nil {
		t.Errorf("the backup after: %v", err)
	}

	// A folder of someone else's where the .partial goes.
	for _, dest := range []string{filepath.Join(parent, "b"), filepath.Join(parent, "d")} {
		if err := os.MkdirAll(dest+partialSuffix, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dest+partialSuffix, "precious"), []byte("keep me"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Backup(ctx, filepath.Join(parent, "b"), BackupOptions{}); err == nil || !strings.Contains(err.Error(), "in the way") {
		t.Errorf("backup over another's b.partial: %v", err)
	}
	if _, err := Restore(ctx, backup, filepath.Join(parent, "d"), RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "in the way") {
		t.Errorf("restore over another's d.partial: %v", err)
	}
	for _, name := range []string{"b", "d"} {
		if data, err := os.ReadFile(filepath.Join(parent, name+partialSuffix, "precious")); string(data) != "keep me" {
			t.Errorf("%s%s/precious: %q, %v", name, partialSuffix, data, err)
		}
	}
}

// TestRestoreNewerSchema: a backup whose databases a newer buzon wrote is
// refused before anything is copied, saying what to do.
func TestRestoreNewerSchema(t *testing.T) {
	st := openTest(t, Config{})
	fillStore(t, st)
	ctx := t.Context()
	alice, _ := st.LookupAccount(ctx, "alice@example.org")
	for _, db := range []string{accountsDB, filepath.Join(accountsDir, fmt.Sprint(alice.ID), mailDBName)} {
		t.Run(filepath.Base(db), func(t *testing.T) {
			backup := filepath.Join(t.TempDir(), "backup")
			if _, err := st.Backup(ctx, backup, BackupOptions{}); err != nil {
				t.Fatal(err)
			}
			d, err := openDB(filepath.Join(backup, db), 1, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := d.ExecContext(ctx, `PRAGMA user_version = 99`); err != nil {
				t.Fatal(err)
			}
			d.Close()
			dir := filepath.Join(t.TempDir(), "data")
			_, err = Restore(ctx, backup, dir, RestoreOptions{})
			if err == nil || !strings.Contains(err.Error(), "schema version 99") || !strings.Contains(err.Error(), "or a newer one") {
				t.Errorf("restore of a newer backup: %v", err)
			}
			for _, p := range []string{dir, dir + partialSuffix} {
				if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("refused restore made %s: %v", p, err)
				}
			}
		})
	}
}

// TestRestoreBeforeSaveDates: a backup made before save dates (mail.db
// version 4) restores, and migrates when opened: its messages in Trash
// are dated with that time, those elsewhere have none; messages saved
// after get one.
func TestRestoreBeforeSaveDates(t *testing.T) {
	st := openTest(t, Config{})
	fillStore(t, st)
	ctx := t.Context()
	alice, _ := st.LookupAccount(ctx, "alice@example.org")
	ss := accountSession(t, st, "alice@example.org")
	trash, err := ss.Mailbox(ctx, "Trash")
	if err != nil {
		t.Fatal(err)
	}
	appendBody(t, ss, trash.ID, "Subject: deleted before the backup\r\n\r\nold\r\n")
	ss.Close()
	backup := filepath.Join(t.TempDir(), "backup")
	if _, err := st.Backup(ctx, backup, BackupOptions{}); err != nil {
		t.Fatal(err)
	}
	toBeforeSaveDates(ctx, t, filepath.Join(backup, accountsDir, fmt.Sprint(alice.ID), mailDBName))
	// SQLite's clock, which dates the upgrade, counts milliseconds.
	before := time.Now().Truncate(time.Millisecond)
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := Restore(ctx, backup, dir, RestoreOptions{}); err != nil {
		t.Fatalf("restore of a backup from before save dates: %v", err)
	}
	restored := openTest(t, Config{Dir: dir})
	ss = accountSession(t, restored, "alice@example.org")
	defer ss.Close()
	after := time.Now()
	inbox, err := ss.Mailbox(ctx, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	appendBody(t, ss, inbox.ID, "Subject: after the restore\r\n\r\nnew\r\n")
	var n, unsaved int
	err = ss.Messages(ctx, inbox.ID, store.AllUIDs(), store.FieldSaveDate, func(m *store.MessageInfo) error {
		n++
		if m.SaveDate.IsZero() {
			unsaved++
		}
		return nil
	})
	if err != nil || n < 2 || unsaved != n-1 {
		t.Errorf("restored INBOX: %d messages, %d without a save date (%v); want all but the new one", n, unsaved, err)
	}
	if saved := saveDates(t, ss, trash.ID); len(saved) != 1 || saved[0].Before(before) || saved[0].After(after) {
		t.Errorf("restored Trash: save dates %v, want one in [%v, %v]", saved, before, after)
	}
}
