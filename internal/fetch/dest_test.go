package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/clienttest"
	"github.com/buzon-mail/buzon/internal/delivery"
	"github.com/buzon-mail/buzon/internal/durable"
	"github.com/buzon-mail/buzon/internal/store"
)

// spooled makes a Message of raw bytes.
func spooled(t *testing.T, id string, raw []byte) *Message {
	t.Helper()
	d := newDownload(&delivery.Spooler{Dir: t.TempDir(), MemoryLimit: memoryLimit})
	if _, err := d.Write(raw); err != nil {
		t.Fatal(err)
	}
	m, err := d.message(id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestDownload: a message written in pieces, kept in memory or past
// memoryLimit in a file, reads back with CRLF line endings, and its size
// and hash are those of what reads back (what the store keeps).
func TestDownload(t *testing.T) {
	big := testMessage(2, 2*memoryLimit)
	for _, tc := range []struct {
		name      string
		raw, want []byte
	}{
		{"memory", testMessage(1, 0), testMessage(1, 0)},
		{"bare LF", lf(testMessage(1, 0)), testMessage(1, 0)},
		{"file", big, big},
		{"file, bare LF", lf(big), big},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDownload(&delivery.Spooler{Dir: t.TempDir(), MemoryLimit: memoryLimit})
			for rest := tc.raw; len(rest) > 0; {
				n := min(len(rest), 1000)
				if _, err := d.Write(rest[:n]); err != nil {
					t.Fatal(err)
				}
				rest = rest[n:]
			}
			m, err := d.message("x")
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			for range 2 {
				if got, _ := io.ReadAll(m.Open()); !bytes.Equal(got, tc.want) {
					t.Fatalf("read back %d bytes, want %d", len(got), len(tc.want))
				}
			}
			if m.Size != int64(len(tc.want)) || m.SHA256 != sha256.Sum256(tc.want) {
				t.Errorf("size %d, hash %s; want %d, %x", m.Size, m.Hash(), len(tc.want), sha256.Sum256(tc.want))
			}
		})
	}
}

// noIntent records nothing.
func noIntent(Ref) error { return nil }

func TestLFWriter(t *testing.T) {
	for _, tc := range []struct {
		chunks []string
		want   string
	}{
		{[]string{"a\r\nb\r\n"}, "a\nb\n"},
		{[]string{"a\r", "\nb"}, "a\nb"},
		{[]string{"a\rb\r"}, "a\rb\r"},
		{[]string{"a\n\r\n"}, "a\n\n"},
		{[]string{"", "\r", "\r", "\n"}, "\r\n"},
	} {
		var out bytes.Buffer
		w := &lfWriter{w: &out}
		for _, c := range tc.chunks {
			w.Write([]byte(c))
		}
		w.flush()
		if out.String() != tc.want {
			t.Errorf("%q: got %q, want %q", tc.chunks, out.String(), tc.want)
		}
	}
}

func TestMboxrdWriter(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"From me\n", ">From me\n"},
		{">From me\n", ">>From me\n"},
		{">>>From x\nFrom\nFrom:\n", ">>>>From x\nFrom\nFrom:\n"},
		{"a From b\n From c\n", "a From b\n From c\n"},
		{"Fro", "Fro"},
		{">>", ">>"},
		{"\nFrom ", "\n>From "},
	} {
		// Byte by byte, to cross every boundary, and whole.
		for _, split := range []bool{false, true} {
			var out bytes.Buffer
			q := &mboxrdWriter{w: &out}
			if split {
				for i := range len(tc.in) {
					q.Write([]byte{tc.in[i]})
				}
			} else {
				q.Write([]byte(tc.in))
			}
			q.flush()
			if out.String() != tc.want {
				t.Errorf("%q (split %v): got %q, want %q", tc.in, split, out.String(), tc.want)
			}
		}
	}
}

// TestMboxTornWrite: a crash part-way through an append leaves part of a
// message at the end of the file; the next attempt removes exactly that,
// and never what another program appended meanwhile.
func TestMboxTornWrite(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	for _, tc := range []struct {
		name string
		// damage changes the file after an intent at ref was recorded.
		damage    func(t *testing.T, path string, ref Ref)
		wantCount int
	}{
		{"cut short", func(t *testing.T, path string, ref Ref) {
			// Write the attempt fully, then cut it at half.
			if err := newMbox(path, clock.Now, nil).Deliver(ctx, spooled(t, "x", testMessage(2, 3000)), nil, noIntent); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, ref.Offset+ref.Length/2); err != nil {
				t.Fatal(err)
			}
		}, 2},
		{"nothing written", func(*testing.T, string, Ref) {}, 2},
		{"another program appended", func(t *testing.T, path string, ref Ref) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString("\nFrom other@example.net Sat Mar  1 12:00:00 2025\nSubject: message 9\n\nshort\n\n")
			f.Close()
		}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "mbox")
			b := newMbox(path, clock.Now, nil)
			if err := b.Deliver(ctx, spooled(t, "1", testMessage(1, 0)), nil, noIntent); err != nil {
				t.Fatal(err)
			}
			// An attempt that stops right after its intent.
			var ref Ref
			stop := errors.New("stop")
			err := b.Deliver(ctx, spooled(t, "2", testMessage(2, 3000)), nil, func(r Ref) error { ref = r; return stop })
			if !errors.Is(err, stop) {
				t.Fatal(err)
			}
			tc.damage(t, path, ref)
			if has, err := b.Has(ctx, ref); err != nil || has {
				t.Fatalf("Has after damage: %v, %v", has, err)
			}
			if err := b.Deliver(ctx, spooled(t, "2", testMessage(2, 3000)), &ref, noIntent); err != nil {
				t.Fatal(err)
			}
			msgs := readMbox(t, path)
			if len(msgs) != tc.wantCount || !bytes.Equal(msgs[1], lf(testMessage(2, 3000))) && tc.wantCount == 2 {
				t.Fatalf("mbox holds %d messages: %v", len(msgs), subjects(msgs))
			}
			if !slices.Contains(subjects(msgs), "message 2") {
				t.Errorf("message 2 missing: %v", subjects(msgs))
			}
		})
	}
}

// TestMboxSeparator: appending to a file that does not end with an empty
// line adds one, so the new From line starts a message.
func TestMboxSeparator(t *testing.T) {
	for _, existing := range []string{"", "From a@b Sat Mar  1 12:00:00 2025\nSubject: message 0\n\nno blank", "From a@b Sat Mar  1 12:00:00 2025\nSubject: message 0\n\none newline\n"} {
		path := filepath.Join(t.TempDir(), "mbox")
		if existing != "" {
			os.WriteFile(path, []byte(existing), 0o600)
		}
		if err := newMbox(path, time.Now, nil).Deliver(context.Background(), spooled(t, "1", testMessage(1, 0)), nil, noIntent); err != nil {
			t.Fatal(err)
		}
		msgs := readMbox(t, path)
		if n := len(msgs); n != 1+min(len(existing), 1) || !bytes.Equal(msgs[n-1], lf(testMessage(1, 0))) {
			t.Errorf("after %q: %q", existing, msgs)
		}
	}
}

// TestMboxDotlock: a stale .lock is broken; a live one makes the append
// wait.
func TestMboxDotlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mbox")
	lock := path + ".lock"
	os.WriteFile(lock, []byte("1\n"), 0o600)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(lock, old, old)
	if err := newMbox(path, time.Now, nil).Deliver(context.Background(), spooled(t, "1", testMessage(1, 0)), nil, noIntent); err != nil {
		t.Fatalf("stale lock: %v", err)
	}
	if _, err := os.Stat(lock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dotlock left behind: %v", err)
	}
	os.WriteFile(lock, []byte("1\n"), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := newMbox(path, time.Now, nil).Deliver(ctx, spooled(t, "2", testMessage(2, 0)), nil, noIntent); !errors.Is(err, context.Canceled) {
		t.Errorf("with a live lock: %v, want to wait", err)
	}
	if n := len(readMbox(t, path)); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
}

// denyDotlock fails to make a dotlock as a folder without write
// permission for us does (tests run as root, whom none refuses).
func denyDotlock(name string) (*os.File, error) {
	return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.EACCES}
}

// TestMboxDotlockDenied: in a folder that does not let us make a dotlock
// (a system mailbox in /var/mail), an append goes on under the kernel's
// locks, yet still waits while another program's dotlock is there.
func TestMboxDotlockDenied(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mbox")
	b := newMbox(path, time.Now, nil)
	b.createDotlock = denyDotlock
	if err := b.Deliver(context.Background(), spooled(t, "1", testMessage(1, 0)), nil, noIntent); err != nil {
		t.Fatalf("dotlock denied: %v", err)
	}
	os.WriteFile(path+".lock", []byte("1\n"), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Deliver(ctx, spooled(t, "2", testMessage(2, 0)), nil, noIntent); !errors.Is(err, context.Canceled) {
		t.Errorf("with another program's dotlock: %v, want to wait", err)
	}
	if n := len(readMbox(t, path)); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
}

// TestMaildirHas finds a delivered message in new/ and, once a mail
// client has moved it, in cur/; an interrupted attempt's tmp/ file goes.
func TestMaildirHas(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "Maildir")
	d, err := newMaildir(dir, "host/with:odd", time.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ref Ref
	if err := d.Deliver(ctx, spooled(t, "1", testMessage(1, 0)), nil, func(r Ref) error { ref = r; return nil }); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(ref.Name, `.host\057with\072odd`) {
		t.Errorf("name %q does not end with the escaped host", ref.Name)
	}
	for _, step := range []struct {
		move func()
		want bool
	}{
		// A crash between link and unlink left the tmp/ link.
		{func() { os.Link(filepath.Join(dir, "new", ref.Name), filepath.Join(dir, "tmp", ref.Name)) }, true},
		{func() { os.Rename(filepath.Join(dir, "new", ref.Name), filepath.Join(dir, "cur", ref.Name+":2,S")) }, true},
		{func() { os.Remove(filepath.Join(dir, "cur", ref.Name+":2,S")) }, false},
	} {
		step.move()
		if has, err := d.Has(ctx, ref); err != nil || has != step.want {
			t.Errorf("Has: %v, %v; want %v", has, err, step.want)
		}
		if _, err := os.Stat(filepath.Join(dir, "tmp", ref.Name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("tmp/ link left behind: %v", err)
		}
	}
	// An attempt cut short in tmp/.
	os.WriteFile(filepath.Join(dir, "tmp", "partial"), []byte("Subject: half"), 0o600)
	if err := d.Deliver(ctx, spooled(t, "2", testMessage(2, 0)), &Ref{Name: "partial"}, noIntent); err != nil {
		t.Fatal(err)
	}
	checkMaildir(t, dir, [2]int{2, 2})
}

// TestNewFoldersDurable: the folders and the mbox file a destination
// creates are synced into their parents, every level, before a message
// stored in them counts as stored (and may be deleted on the server); so
// are those a run that crashed before syncing them left behind, which the
// next run finds there.
func TestNewFoldersDurable(t *testing.T) {
	for _, kind := range []string{"maildir", "mbox"} {
		for _, left := range []bool{false, true} {
			name := kind
			if left {
				name += "/left by a crash"
			}
			t.Run(name, func(t *testing.T) {
				base := t.TempDir()
				a := Account{Name: "x"}
				var want []string
				switch kind {
				case "maildir":
					a.Maildir = filepath.Join(base, "a", "b", "Maildir")
					want = []string{base, filepath.Join(base, "a"), filepath.Join(base, "a", "b"), a.Maildir}
					if left {
						for _, sub := range []string{"tmp", "new", "cur"} {
							os.MkdirAll(filepath.Join(a.Maildir, sub), 0o700)
						}
					}
				case "mbox":
					a.Mbox = filepath.Join(base, "a", "b", "inbox.mbox")
					want = []string{base, filepath.Join(base, "a"), filepath.Join(base, "a", "b")}
					if left {
						os.MkdirAll(filepath.Dir(a.Mbox), 0o700)
						os.WriteFile(a.Mbox, nil, 0o600)
					}
				}
				f := New(Config{}, Options{})
				var synced []string
				f.syncDir = func(dir string) error {
					synced = append(synced, dir)
					return durable.SyncDir(dir)
				}
				d, err := f.destination(context.Background(), &a)
				if err != nil {
					t.Fatal(err)
				}
				if err := d.Deliver(context.Background(), spooled(t, "1", testMessage(1, 0)), nil, noIntent); err != nil {
					t.Fatal(err)
				}
				for _, dir := range want {
					if !slices.Contains(synced, dir) {
						t.Errorf("%s was not synced after an entry was made in it (synced: %q)", dir, synced)
					}
				}
			})
		}
	}
}

// TestStoreDestHas finds a message in the store by the UIDs after the
// intent and its hash, not by anything else that arrived meanwhile.
func TestStoreDestHas(t *testing.T) {
	ctx := context.Background()
	local := startLocalStore(t, store.Quota{})
	d := &delivery.Deliverer{Store: local.st}
	dest, err := newStoreDest(ctx, StoreTarget{Account: localUser, Mailbox: "INBOX"}, &delivery.Spooler{MemoryLimit: 1 << 20}, d)
	if err != nil {
		t.Fatal(err)
	}
	var ref Ref
	// Bare LF: the store keeps CRLF, and the hash is of what it keeps.
	if err := dest.Deliver(ctx, spooled(t, "1", lf(testMessage(1, 0))), nil, func(r Ref) error { ref = r; return nil }); err != nil {
		t.Fatal(err)
	}
	other := ref
	other.SHA256 = strings.Repeat("0", 64)
	moved := ref
	moved.UIDNext++
	gone := ref
	gone.UIDValidity++
	for _, tc := range []struct {
		ref  Ref
		want bool
	}{{ref, true}, {other, false}, {moved, false}, {gone, false}} {
		if has, err := dest.Has(ctx, tc.ref); err != nil || has != tc.want {
			t.Errorf("Has(%+v) = %v, %v; want %v", tc.ref, has, err, tc.want)
		}
	}
	if got := local.messages(t, "INBOX"); len(got) != 1 || !bytes.Equal(got[0], testMessage(1, 0)) {
		t.Errorf("store holds %q", got)
	}
}

// countingStore counts the sessions opened on a store.
type countingStore struct {
	store.Store
	opens atomic.Int32
}

var _ store.Store = (*countingStore)(nil)

func (c *countingStore) Open(ctx context.Context, accountID int64) (store.Session, error) {
	c.opens.Add(1)
	return c.Store.Open(ctx, accountID)
}

// TestStoreDestDeliver: a message goes in with one store session, which
// reads the mailbox's UIDNEXT for the intent and appends; one over the
// store's size limit is refused before anything is recorded.
func TestStoreDestDeliver(t *testing.T) {
	ctx := context.Background()
	local := startLocalStore(t, store.Quota{})
	st := &countingStore{Store: local.st}
	d := &delivery.Deliverer{Store: st}
	limit := int64(len(testMessage(1, 0)))
	dest, err := newStoreDest(ctx, StoreTarget{Account: localUser, Mailbox: "INBOX"}, &delivery.Spooler{MemoryLimit: 1 << 20, MaxSize: limit}, d)
	if err != nil {
		t.Fatal(err)
	}
	st.opens.Store(0) // the set-up's, which looks for the mailbox
	for i := 1; i <= 3; i++ {
		m := spooled(t, fmt.Sprint(i), testMessage(i, 0))
		var ref Ref
		if err := dest.Deliver(ctx, m, nil, func(r Ref) error { ref = r; return nil }); err != nil {
			t.Fatal(err)
		}
		if want := (Ref{UIDValidity: ref.UIDValidity, UIDNext: uint32(i), Length: m.Size, SHA256: m.Hash()}); ref != want {
			t.Errorf("message %d: intent %+v, want %+v", i, ref, want)
		}
	}
	if n := st.opens.Load(); n != 3 {
		t.Errorf("%d store sessions for 3 messages, want 3", n)
	}
	intents := 0
	err = dest.Deliver(ctx, spooled(t, "big", testMessage(4, 100)), nil, func(Ref) error { intents++; return nil })
	if !errors.Is(err, delivery.ErrTooLarge) || intents != 0 {
		t.Errorf("a message over the limit: %v, %d intents recorded", err, intents)
	}
	if got, want := local.subjects(t, "INBOX"), wantSubjects([2]int{1, 3}); !slices.Equal(got, want) {
		t.Errorf("store holds %v, want %v", got, want)
	}
}

// TestMDA: exit 0 stores; 75, or a command the shell cannot find, stops
// the run with the message on the server; anything else skips the
// message.
func TestMDA(t *testing.T) {
	b := startBuzon(t)
	b.deliver(t, "INBOX", testMessages(1, 3)...)
	out := t.TempDir()
	for _, tc := range []struct {
		name     string
		script   string
		fetched  int
		failed   int
		stop     error
		leftOver int
	}{
		{"not found", `no-such-mda-here`, 0, 1, errCannotRun, 3},
		{"fail one", `f=` + out + `/tmp.$$; cat > $f; if grep -q "message 2" $f; then rm $f; echo nope >&2; exit 1; fi; mv $f ` + out + `/$BUZON_FETCH_ID`, 2, 1, nil, 1},
		{"try later", `exit 75`, 0, 1, ErrTryLater, 1},
		{"all", `cat > ` + out + `/$BUZON_FETCH_ID`, 1, 0, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := b.account(t, ProtoPOP3, TLSImplicit)
			a.Name, a.Mode, a.Maildir, a.MDA = "mda", ModeDelete, "", tc.script
			cfg := testConfig(t, a)
			cfg.StateDir = filepath.Join(out, "state")
			s := fetchOnce(t, cfg, testOptions(t))[0]
			if s.Fetched != tc.fetched || s.Failed != tc.failed || !errors.Is(s.Err, tc.stop) && (tc.stop != nil || s.Err != nil) {
				t.Errorf("%v", s)
			}
			if n := b.count(t, "INBOX"); n != tc.leftOver {
				t.Errorf("%d left on the server, want %d", n, tc.leftOver)
			}
		})
	}
	files, _ := filepath.Glob(filepath.Join(out, "pop3:*"))
	var msgs [][]byte
	for _, f := range files {
		b, _ := os.ReadFile(f)
		msgs = append(msgs, b)
	}
	if got := subjects(msgs); !slices.Equal(got, wantSubjects([2]int{1, 3})) {
		t.Errorf("MDA got %v", got)
	}
}

// TestRealClients reads what was fetched with Python's mailbox module
// (Maildir and mbox) and, where installed, mutt.
func TestRealClients(t *testing.T) {
	py := clienttest.Need(t, "python3", "python3")
	b := startBuzon(t)
	b.deliver(t, "INBOX", testMessages(1, 12)...)
	for _, kind := range []string{"maildir", "mbox"} {
		t.Run(kind, func(t *testing.T) {
			a := b.account(t, ProtoIMAP, TLSImplicit)
			withDest(t, &a, kind, nil)
			mustFetch(t, testConfig(t, a), testOptions(t))
			path := a.Maildir + a.Mbox
			out, err := exec.Command(py, "testdata/readmail.py", kind, path).CombinedOutput()
			if err != nil {
				t.Fatalf("readmail.py: %v\n%s", err, out)
			}
			want := "12\n" + strings.Join(wantSubjects([2]int{1, 12}), "\n") + "\n"
			if string(out) != want {
				t.Errorf("readmail.py %s:\n%s\nwant\n%s", kind, out, want)
			}
			if muttOut, ok := muttCount(t, kind, path); ok && muttOut != 12 {
				t.Errorf("mutt counts %d messages, want 12", muttOut)
			}
		})
	}
}

// muttCount has mutt open a folder read-only in a pseudo-terminal (made
// by script(1)) and pipe every message to a file, and returns how many
// arrived; ok is false when mutt or script is missing.
func muttCount(t *testing.T, kind, path string) (n int, ok bool) {
	t.Helper()
	mutt, err1 := exec.LookPath("mutt")
	script, err2 := exec.LookPath("script")
	if err1 != nil || err2 != nil {
		return 0, false
	}
	out := filepath.Join(t.TempDir(), "piped")
	cmdline := mutt + ` -n -F /dev/null -R -f ` + path + ` -e 'set pipe_split=yes wait_key=no'` +
		` -e 'push "<tag-pattern>.<enter><tag-prefix><pipe-message>cat >> ` + out + `<enter><quit>"'`
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, "-qec", cmdline, "/dev/null")
	// Without ~/Mail mutt first asks whether to create it, and the
	// question eats the keys pushed.
	home := t.TempDir()
	os.Mkdir(filepath.Join(home, "Mail"), 0o700)
	cmd.Env = append(os.Environ(), "TERM=dumb", "HOME="+home)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("mutt %s: %v\n%q", kind, err, b)
		return 0, false
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Errorf("mutt piped nothing: %v", err)
		return 0, false
	}
	return strings.Count(string(b), "\nSubject: message "), true
}

// TestHasSyncs: a destination reports a message stored only once what
// holds it is durable. A run that stopped between writing a message and
// syncing it (a crash, or a sync that failed) must not have the next run
// find the message, count it stored and delete it on the server while a
// power cut can still take it: Has syncs first, and a sync that fails
// fails Has.
func TestHasSyncs(t *testing.T) {
	ctx := context.Background()
	errSync := errors.New("sync failed")
	t.Run("maildir", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "Maildir")
		failNew := func(d string) error {
			if d == filepath.Join(dir, "new") {
				return errSync
			}
			return nil
		}
		d, err := newMaildir(dir, "host", time.Now, failNew)
		if err != nil {
			t.Fatal(err)
		}
		var ref Ref
		if err := d.Deliver(ctx, spooled(t, "1", testMessage(1, 0)), nil, func(r Ref) error { ref = r; return nil }); !errors.Is(err, errSync) {
			t.Fatalf("Deliver with new/ unsyncable: %v", err)
		}
		var synced []string
		for _, step := range []struct {
			name    string
			syncDir func(string) error
			wantDir string
			wantErr error
		}{
			{"new/ still unsyncable", failNew, "", errSync},
			{"in new/", nil, filepath.Join(dir, "new"), nil},
			{"moved to cur/", nil, filepath.Join(dir, "cur"), nil},
		} {
			if step.wantDir == filepath.Join(dir, "cur") {
				os.Rename(filepath.Join(dir, "new", ref.Name), filepath.Join(dir, "cur", ref.Name+":2,S"))
			}
			synced = nil
			fresh, err := newMaildir(dir, "host", time.Now, func(d string) error {
				synced = append(synced, d)
				if step.syncDir != nil {
					return step.syncDir(d)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			synced = nil
			has, err := fresh.Has(ctx, ref)
			if step.wantErr != nil {
				if !errors.Is(err, step.wantErr) || has {
					t.Errorf("%s: Has = %v, %v; want the sync's error", step.name, has, err)
				}
				continue
			}
			if err != nil || !has || !slices.Contains(synced, step.wantDir) {
				t.Errorf("%s: Has = %v, %v, syncing %q; want true after syncing %s", step.name, has, err, synced, step.wantDir)
			}
		}
	})
	t.Run("mbox", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "mbox")
		var ref Ref
		if err := newMbox(path, time.Now, nil).Deliver(ctx, spooled(t, "1", testMessage(1, 0)), nil, func(r Ref) error { ref = r; return nil }); err != nil {
			t.Fatal(err)
		}
		// As a crash after the write, before its sync, leaves it.
		for _, step := range []struct {
			name    string
			sync    error
			wantHas bool
		}{
			{"still unsyncable", errSync, false},
			{"synced", nil, true},
		} {
			syncs := 0
			fresh := newMbox(path, time.Now, nil)
			fresh.syncFile = func(*os.File) error { syncs++; return step.sync }
			has, err := fresh.Has(ctx, ref)
			if !errors.Is(err, step.sync) || has != step.wantHas || syncs == 0 {
				t.Errorf("%s: Has = %v, %v after %d syncs; want %v, %v after a sync", step.name, has, err, syncs, step.wantHas, step.sync)
			}
		}
	})
}

// TestMkdirAllSyncErrors: a failed sync of a level is an error, but for a
// folder found there that we may not open (made by someone who could).
func TestMkdirAllSyncErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		found   bool
		err     error
		wantErr bool
	}{
		{"made, EIO", false, syscall.EIO, true},
		{"made, no permission", false, fs.ErrPermission, true},
		{"found, EIO", true, syscall.EIO, true},
		{"found, no permission", true, &fs.PathError{Op: "open", Path: "x", Err: syscall.EACCES}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			dir := filepath.Join(base, "a")
			if tc.found {
				os.Mkdir(dir, 0o700)
			}
			err := mkdirAll(dir, func(d string) error {
				if d == base {
					return tc.err
				}
				return nil
			})
			if (err != nil) != tc.wantErr {
				t.Errorf("mkdirAll = %v; want an error: %v", err, tc.wantErr)
			}
		})
	}
}
