package mailimport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/delivery"
	"github.com/buzon-mail/buzon/internal/progress"
	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/teststore"
)

func TestMain(m *testing.M) { teststore.Main(m) }

// fixture is an account to import into.
type fixture struct {
	t    *testing.T
	st   store.Store
	acct store.Account
	sp   *delivery.Spooler
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st := teststore.Open(t, t.TempDir())
	acct, err := st.CreateAccount(context.Background(), "alice@example.org", store.Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, st: st, acct: acct, sp: &delivery.Spooler{Dir: t.TempDir(), MemoryLimit: 1 << 20}}
}

func (f *fixture) run(ctx context.Context, p progress.Progress, sources ...Source) (*Summary, error) {
	return Import(ctx, Options{Store: f.st, Account: f.acct, Spooler: f.sp, Progress: p}, sources...)
}

func (f *fixture) mustRun(sources ...Source) *Summary {
	f.t.Helper()
	sum, err := f.run(context.Background(), nil, sources...)
	if err != nil {
		f.t.Fatal(err)
	}
	return sum
}

// stored is a message as the store has it.
type stored struct {
	flags []string
	date  time.Time
	body  string
}

// mailbox reads a mailbox's messages in UID order.
func (f *fixture) mailbox(name string) (store.Mailbox, []stored) {
	f.t.Helper()
	ctx := context.Background()
	sess, err := f.st.Open(ctx, f.acct.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	defer sess.Close()
	mb, err := sess.Mailbox(ctx, name)
	if err != nil {
		f.t.Fatalf("mailbox %s: %v", name, err)
	}
	var out []stored
	var uids []store.UID
	err = sess.Messages(ctx, mb.ID, store.AllUIDs(), store.FieldFlags|store.FieldDate, func(mi *store.MessageInfo) error {
		out = append(out, stored{flags: mi.Flags.Names(), date: mi.InternalDate})
		uids = append(uids, mi.UID)
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	for i, uid := range uids {
		b, err := sess.OpenBody(ctx, mb.ID, uid)
		if err != nil {
			f.t.Fatal(err)
		}
		data, _ := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
		b.Close()
		out[i].body = string(data)
	}
	return mb, out
}

func (f *fixture) count(name string) int {
	f.t.Helper()
	_, msgs := f.mailbox(name)
	return len(msgs)
}

func TestImport(t *testing.T) {
	f := newFixture(t)
	root := t.TempDir()
	day := func(d int) time.Time { return time.Date(2025, 3, d, 10, 0, 0, 0, time.UTC) }
	writeMaildir(t, root, []maildirFile{
		{"cur/1700000100.M1P1.host:2,S", msg("one"), day(1)},
		{"new/1700000200.M2P1.host", msg("two"), day(2)},
		{"cur/1700000300.M3P1.host:2,RFa", msg("three"), day(3)},
		{".Work.Projects/cur/1600000000.M1P1.host:2,ST", msg("trashed"), day(5)},
		{".&AMk-t&AOk-/cur/1600000002.M1P1.host:2,", msg("summer"), day(7)},
		{".Sent Items/cur/1600000003.M1P1.host:2,S", msg("sent"), day(8)},
		{".Deleted Messages/cur/1600000004.M1P1.host:2,S", msg("deleted"), day(9)},
		{".Spam/cur/1600000005.M1P1.host:2,S", msg("spam"), day(10)},
	}, map[string]string{"dovecot-keywords": "0 $Forwarded\n"})
	sources := []Source{
		Maildir{Dir: root},
		Mbox{Path: filepath.Join("testdata", "mutt.mbox"), Folder: "Old", Location: time.UTC},
	}
	sum := f.mustRun(sources...)
	if sum.Imported != 12 || sum.Present != 0 || len(sum.Skipped) != 0 {
		t.Errorf("first run: %d imported, %d there, skipped %v; want 12, 0, none", sum.Imported, sum.Present, sum.Skipped)
	}
	if want := []string{"Work", "Work/Projects", "Été", "Old"}; !slices.Equal(sum.Created, want) {
		t.Errorf("created %q, want %q", sum.Created, want)
	}

	_, inbox := f.mailbox("INBOX")
	want := []stored{
		{[]string{`\Seen`}, day(1), "From: a@example.org\r\nSubject: one\r\n\r\none body\r\n"},
		{nil, day(2), "From: a@example.org\r\nSubject: two\r\n\r\ntwo body\r\n"},
		{[]string{`\Answered`, `\Flagged`, "$Forwarded"}, day(3), "From: a@example.org\r\nSubject: three\r\n\r\nthree body\r\n"},
	}
	if len(inbox) != len(want) {
		t.Fatalf("INBOX has %d messages, want %d", len(inbox), len(want))
	}
	for i, w := range want {
		g := inbox[i]
		if !slices.Equal(g.flags, w.flags) && !(len(g.flags) == 0 && len(w.flags) == 0) || !g.date.Equal(w.date) || g.body != w.body {
			t.Errorf("INBOX message %d: %q %v %q, want %q %v %q", i+1, g.flags, g.date, g.body, w.flags, w.date, w.body)
		}
	}
	// Other servers' special folders are the account's.
	for _, tc := range []struct{ folder, body string }{{"Sent", "sent body"}, {"Trash", "deleted body"}, {"Junk", "spam body"}, {"Été", "summer body"}} {
		_, msgs := f.mailbox(tc.folder)
		if len(msgs) != 1 || !strings.Contains(msgs[0].body, tc.body) {
			t.Errorf("%s: %d messages, want the one with %q", tc.folder, len(msgs), tc.body)
		}
	}
	_, work := f.mailbox("Work/Projects")
	if len(work) != 1 || !slices.Equal(work[0].flags, []string{`\Seen`, `\Deleted`}) {
		t.Errorf("Work/Projects: %+v, want the trashed message, \\Deleted", work)
	}
	// Broken messages arrive with CRLF, as a delivery stores them.
	_, old := f.mailbox("Old")
	if len(old) != 4 || old[2].body != "\r\nA message without a header.\r\n" || !strings.Contains(old[3].body, "body with a NUL \x00 here\r\n") {
		t.Errorf("Old: %+v", old)
	}
	ctx := context.Background()
	sess, _ := f.st.Open(ctx, f.acct.ID)
	subs, _ := sess.Subscriptions(ctx)
	sess.Close()
	for _, name := range sum.Created {
		if !slices.Contains(subs, name) {
			t.Errorf("created folder %s is not subscribed (%q)", name, subs)
		}
	}

	// The second run finds everything there.
	sum = f.mustRun(sources...)
	if sum.Imported != 0 || sum.Present != 12 || len(sum.Created) != 0 {
		t.Errorf("second run: %d imported, %d there, created %q; want 0, 12, none", sum.Imported, sum.Present, sum.Created)
	}
	if n := f.count("INBOX"); n != 3 {
		t.Errorf("INBOX has %d messages after the second run", n)
	}
}

// Two copies of a message in a source are two messages: the second is
// not taken for the first, in the first run or the next.
func TestImportIdenticalMessages(t *testing.T) {
	f := newFixture(t)
	path := filepath.Join(t.TempDir(), "twice")
	m := "From x Thu Nov 26 09:15:00 2026\nSubject: same\n\nsame\n\n"
	os.WriteFile(path, []byte(m+m+m), 0o600)
	src := Mbox{Path: path, Folder: "INBOX"}
	for run := 1; run <= 2; run++ {
		f.mustRun(src)
		if n := f.count("INBOX"); n != 3 {
			t.Fatalf("run %d: INBOX has %d messages, want 3", run, n)
		}
	}
}

// stopAfter cancels an import after n messages, as an interruption would.
type stopAfter struct {
	n      int
	cancel func()
}

func (p *stopAfter) Start(int, int64) {}
func (p *stopAfter) Finish()          {}
func (p *stopAfter) Stored(int64) {
	if p.n--; p.n == 0 {
		p.cancel()
	}
}

func TestImportInterruptedAndQuota(t *testing.T) {
	f := newFixture(t)
	path := filepath.Join(t.TempDir(), "many")
	var b strings.Builder
	for i := range 20 {
		fmt.Fprintf(&b, "From x Thu Nov 26 09:15:%02d 2026\nSubject: message %d\n\nbody %d\n\n", i, i, i)
	}
	os.WriteFile(path, []byte(b.String()), 0o600)
	src := Mbox{Path: path, Folder: "Old"}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := f.run(ctx, &stopAfter{n: 5, cancel: cancel}, src); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted import: %v", err)
	}
	if n := f.count("Old"); n != 5 {
		t.Fatalf("after the interruption Old has %d messages, want 5", n)
	}
	if err := f.st.SetQuota(context.Background(), f.acct.Name, store.Quota{MaxMessages: 12}); err != nil {
		t.Fatal(err)
	}
	sum, err := f.run(context.Background(), nil, src)
	if !errors.Is(err, ErrOverQuota) || sum.Imported != 7 || sum.Present != 5 {
		t.Fatalf("over quota: %v, %d imported, %d there; want ErrOverQuota, 7, 5", err, sum.Imported, sum.Present)
	}
	if !strings.Contains(err.Error(), "after this run imported 7 messages") {
		t.Errorf("the quota error does not say how far it got: %v", err)
	}
	f.st.SetQuota(context.Background(), f.acct.Name, store.Quota{})
	sum = f.mustRun(src)
	if sum.Imported != 8 || sum.Present != 12 {
		t.Errorf("after raising the quota: %d imported, %d there; want 8, 12", sum.Imported, sum.Present)
	}
	_, msgs := f.mailbox("Old")
	if len(msgs) != 20 {
		t.Fatalf("Old has %d messages, want 20", len(msgs))
	}
	for i, m := range msgs {
		if !strings.Contains(m.body, fmt.Sprintf("Subject: message %d\r\n", i)) {
			t.Errorf("message %d is %q: out of order or repeated", i, m.body)
		}
	}
}

func TestImportSkips(t *testing.T) {
	f := newFixture(t)
	f.sp.MaxSize = 100
	path := filepath.Join(t.TempDir(), "box")
	os.WriteFile(path, []byte("From x Thu Nov 26 09:15:00 2026\nSubject: small\n\nok\n\n"+
		"From x Thu Nov 26 09:15:00 2026\nSubject: large\n\n"+strings.Repeat("x", 200)+"\n\n"+
		"From x Thu Nov 26 09:15:00 2026\n"), 0o600)
	sum := f.mustRun(Mbox{Path: path, Folder: "INBOX"}, Mbox{Path: filepath.Join("testdata", "thunderbird.mbox"), Folder: "Bad/"})
	var reasons []string
	for _, s := range sum.Skipped {
		reasons = append(reasons, s.Reason)
	}
	if sum.Imported != 1 || len(reasons) != 5 ||
		!strings.Contains(reasons[0], "size limit") || reasons[1] != "empty" ||
		!strings.Contains(reasons[2], "invalid") || !strings.Contains(reasons[3], "deleted in Thunderbird") {
		t.Errorf("%d imported, skipped %q", sum.Imported, reasons)
	}
}

// Two imports into one account at once: the second waits for nothing and
// says why it does not run.
func TestImportLocked(t *testing.T) {
	f := newFixture(t)
	release, err := f.st.Lock(context.Background(), f.acct.ID, "import")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, err := f.run(context.Background(), nil, Mbox{Path: filepath.Join("testdata", "mutt.mbox")}); err == nil || !strings.Contains(err.Error(), "another import") {
		t.Errorf("import while another runs: %v", err)
	}
}

// items is a source of items a test makes.
type items []*Item

func (s items) Scan() ([]*Item, error) { return s, nil }
func (s items) String() string         { return "test items" }

// failingReader fails after giving the start of a message.
type failingReader struct{ done bool }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.done {
		return 0, errors.New("input/output error")
	}
	r.done = true
	return copy(p, "Subject: half\n"), nil
}

func (r *failingReader) Close() error { return nil }

// A message that cannot be read from its source is skipped; a spool that
// cannot be written (a full or missing spool directory) stops the import,
// which would otherwise skip every message after it.
func TestImportSpoolFails(t *testing.T) {
	f := newFixture(t)
	unreadable := items{{Folders: []string{"INBOX"}, Where: "unreadable", open: func() (io.ReadCloser, error) { return &failingReader{}, nil }}}
	sum := f.mustRun(unreadable)
	if len(sum.Skipped) != 1 || !strings.Contains(sum.Skipped[0].Reason, "input/output error") {
		t.Errorf("an unreadable message: skipped %v", sum.Skipped)
	}

	f.sp = &delivery.Spooler{Dir: filepath.Join(t.TempDir(), "missing"), MemoryLimit: 0}
	sum, err := f.run(context.Background(), nil, Mbox{Path: filepath.Join("testdata", "mutt.mbox"), Folder: "Old"})
	if err == nil || len(sum.Skipped) != 0 || sum.Imported != 0 {
		t.Errorf("with no spool directory: %v, %d imported, skipped %v; want an error, nothing imported or skipped", err, sum.Imported, sum.Skipped)
	}
}

// Two source folders going into one mailbox (.Sent and .Sent Items) share
// it: a message in each is there twice, in the first run and the next.
func TestImportFoldersOfOneMailbox(t *testing.T) {
	f := newFixture(t)
	root := t.TempDir()
	writeMaildir(t, root, []maildirFile{
		{".Sent/cur/1600000001.M1P1.host:2,S", msg("sent"), time.Time{}},
		{".Sent Items/cur/1600000002.M1P1.host:2,S", msg("sent"), time.Time{}},
	}, nil)
	for run, want := range []struct{ imported, present int }{{2, 0}, {0, 2}} {
		sum := f.mustRun(Maildir{Dir: root})
		if sum.Imported != want.imported || sum.Present != want.present {
			t.Errorf("run %d: %d imported, %d there; want %d, %d", run+1, sum.Imported, sum.Present, want.imported, want.present)
		}
		if n := f.count("Sent"); n != 2 {
			t.Errorf("run %d: Sent has %d messages, want 2", run+1, n)
		}
	}
}

// crashAfterCreate is a store whose sessions stop, as a kill would, right
// after they made a mailbox.
type crashAfterCreate struct{ store.Store }

func (s crashAfterCreate) Open(ctx context.Context, id int64) (store.Session, error) {
	sess, err := s.Store.Open(ctx, id)
	return crashSession{sess}, err
}

type crashSession struct{ store.Session }

func (s crashSession) CreateMailbox(ctx context.Context, name, use string) (store.Mailbox, error) {
	if _, err := s.Session.CreateMailbox(ctx, name, use); err != nil {
		return store.Mailbox{}, err
	}
	return store.Mailbox{}, errors.New("killed")
}

// An import killed right after it made a folder leaves it subscribed.
func TestImportKilledAfterCreate(t *testing.T) {
	f := newFixture(t)
	src := Mbox{Path: filepath.Join("testdata", "mutt.mbox"), Folder: "Old"}
	if _, err := Import(context.Background(), Options{Store: crashAfterCreate{f.st}, Account: f.acct, Spooler: f.sp}, src); err == nil {
		t.Fatal("the import went on after its kill")
	}
	f.mustRun(src)
	ctx := context.Background()
	sess, err := f.st.Open(ctx, f.acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if subs, _ := sess.Subscriptions(ctx); !slices.Contains(subs, "Old") {
		t.Errorf("Old is not subscribed (%q)", subs)
	}
}
