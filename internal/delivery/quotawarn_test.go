package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/bytesize"
	"github.com/buzon-mail/buzon/internal/message"
	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/teststore"
)

// warnFixture is an account with a quota on the test store (the embedded
// one, or PostgreSQL with BUZON_TEST_STORE=postgres) and a Deliverer
// that warns at levels, recording the levels of the notices it stores.
type warnFixture struct {
	t    *testing.T
	st   store.Store
	d    *Deliverer
	acct store.Account
	sp   *Spooler
	log  *bytes.Buffer

	mu     sync.Mutex
	warned []int // guarded by mu
}

func newWarnFixture(t *testing.T, st store.Store, levels []int, q store.Quota) *warnFixture {
	t.Helper()
	ctx := t.Context()
	if _, err := st.CreateAccount(ctx, "alice@example.org", store.Credentials{}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetQuota(ctx, "alice@example.org", q); err != nil {
		t.Fatal(err)
	}
	acct, err := st.LookupAddress(ctx, "alice@example.org")
	if err != nil {
		t.Fatal(err)
	}
	f := &warnFixture{t: t, st: st, acct: acct, sp: &Spooler{Dir: t.TempDir(), MemoryLimit: 1 << 20}, log: &bytes.Buffer{}}
	var logMu sync.Mutex
	f.d = &Deliverer{
		Store: st, Logger: slog.New(slog.NewTextHandler(lockedWriter{&logMu, f.log}, nil)),
		QuotaWarnings: levels, Hostname: "mx.example.org",
		Warned: func(level int) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.warned = append(f.warned, level)
		},
	}
	return f
}

// levels returns the levels warned of so far.
func (f *warnFixture) levels() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.warned)
}

// sized is a message of exactly n bytes (n above 100 or so).
func sized(n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: bob@example.net\r\nSubject: %d bytes\r\n\r\n", n)
	for rest := n - b.Len(); rest > 0; {
		l := min(rest, 78)
		if rest-l == 1 {
			l-- // no line of a lone byte
		}
		b.WriteString(strings.Repeat("x", l-2) + "\r\n")
		rest -= l
	}
	return b.String()
}

// deliver delivers a message of n bytes, which must succeed.
func (f *warnFixture) deliver(n int) {
	f.t.Helper()
	msg, err := f.sp.Spool(strings.NewReader(sized(n)))
	if err != nil {
		f.t.Fatal(err)
	}
	defer msg.Close()
	if msg.Size() != int64(n) {
		f.t.Fatalf("message of %d bytes spooled as %d", n, msg.Size())
	}
	if _, err := f.d.DeliverAccount(f.t.Context(), f.acct, msg, Envelope{To: f.acct.Name}); err != nil {
		f.t.Fatalf("deliver %d bytes: %v", n, err)
	}
}

// expungeAll empties every mailbox of the account, as a user making room.
func (f *warnFixture) expungeAll() {
	f.t.Helper()
	ctx := f.t.Context()
	sess, err := f.st.Open(ctx, f.acct.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	defer sess.Close()
	boxes, err := sess.Mailboxes(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, mb := range boxes {
		if _, err := sess.Expunge(ctx, mb.ID, store.AllUIDs(), false); err != nil {
			f.t.Fatal(err)
		}
	}
}

// notices returns the quota notices in a mailbox, parsed.
func (f *warnFixture) notices(mailbox string) []*mail.Message {
	f.t.Helper()
	ctx := f.t.Context()
	sess, err := f.st.Open(ctx, f.acct.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	defer sess.Close()
	mb, err := sess.Mailbox(ctx, mailbox)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []*mail.Message
	err = sess.Messages(ctx, mb.ID, store.AllUIDs(), store.FieldSize, func(m *store.MessageInfo) error {
		body, err := sess.OpenBody(ctx, mb.ID, m.UID)
		if err != nil {
			return err
		}
		defer body.Close()
		buf := make([]byte, body.Size())
		if _, err := body.ReadAt(buf, 0); err != nil {
			return err
		}
		msg, err := mail.ReadMessage(bytes.NewReader(buf))
		if err != nil {
			return err
		}
		if strings.HasPrefix(msg.Header.Get("Subject"), "Your mailbox is") {
			out = append(out, msg)
		}
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

// expunge is a step that empties the account instead of delivering.
const expunge = -1

// TestQuotaWarnings: a delivery that takes the account's use across a
// level, by size or by messages, puts one notice into INBOX naming the
// highest level crossed; one that stays on a side of every level puts
// none, and a mailbox that falls below a level and rises past it again
// is warned again. A notice that does not fit in the quota is left out
// and the delivery succeeds.
func TestQuotaWarnings(t *testing.T) {
	t.Parallel()
	const mb = 1_000_000
	for _, tc := range []struct {
		name   string
		levels []int
		quota  store.Quota
		steps  []int // sizes of messages delivered in turn, or expunge
		want   []int // levels warned of, in turn
		log    string
	}{
		{"by size", []int{80, 95}, store.Quota{MaxBytes: mb}, []int{700_000, 99_000, 1_000, 100_000, 60_000}, []int{80, 95}, ""},
		{"by messages", []int{80}, store.Quota{MaxMessages: 10}, []int{100, 100, 100, 100, 100, 100, 100, 100, 100}, []int{80}, ""},
		{"by messages with room to spare in size", []int{50}, store.Quota{MaxBytes: mb, MaxMessages: 4}, []int{100, 100, 100}, []int{50}, ""},
		{"two levels at once", []int{80, 95}, store.Quota{MaxBytes: mb}, []int{500_000, 460_000}, []int{95}, ""},
		{"levels in any order", []int{95, 80}, store.Quota{MaxBytes: mb}, []int{850_000, 110_000}, []int{80, 95}, ""},
		{"from nothing past a level", []int{50}, store.Quota{MaxBytes: mb}, []int{600_000}, []int{50}, ""},
		{"not crossed", []int{90}, store.Quota{MaxBytes: mb}, []int{500_000, 300_000, 99_000}, nil, ""},
		{"sitting above", []int{80}, store.Quota{MaxBytes: mb}, []int{850_000, 10_000, 10_000, 10_000}, []int{80}, ""},
		{"again after falling below", []int{80}, store.Quota{MaxBytes: mb}, []int{850_000, 10_000, expunge, 700_000, 150_000}, []int{80, 80}, ""},
		{"no quota", []int{80}, store.Quota{}, []int{850_000, 100_000}, nil, ""},
		{"no levels", nil, store.Quota{MaxBytes: mb}, []int{850_000, 100_000}, nil, ""},
		{"notice does not fit", []int{95}, store.Quota{MaxBytes: mb}, []int{900_000, 99_900}, nil, "quota warning not stored: it does not fit in the quota"},
		// The notice counts: at 9 of 10 messages it takes the last place,
		// reaching the level it names.
		{"the notice takes the last place", []int{95}, store.Quota{MaxMessages: 10}, []int{100, 100, 100, 100, 100, 100, 100, 100, 100}, []int{95}, ""},
		// A delivery that leaves the use a notice's size below a level
		// is warned of that level: the notice would take it there, and
		// the next delivery would start above it.
		{"the notice takes the use past the next level", []int{80, 95}, store.Quota{MaxBytes: mb}, []int{949_700, 10_000, 10_000}, []int{95}, ""},
		{"the notice takes the use to the first level", []int{80}, store.Quota{MaxBytes: mb}, []int{799_500}, []int{80}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newWarnFixture(t, teststore.Open(t, t.TempDir()), tc.levels, tc.quota)
			for _, n := range tc.steps {
				if n == expunge {
					f.expungeAll()
					continue
				}
				f.deliver(n)
			}
			if got := f.levels(); !slices.Equal(got, tc.want) {
				t.Errorf("warned of %v, want %v\n%s", got, tc.want, f.log)
			}
			notices := f.notices("INBOX")
			if len(notices) != len(tc.want) && !slices.Contains(tc.steps, expunge) {
				t.Errorf("%d notices in INBOX, want %d", len(notices), len(tc.want))
			}
			if tc.log != "" && !strings.Contains(f.log.String(), tc.log) {
				t.Errorf("the log does not say %q:\n%s", tc.log, f.log)
			}
			if strings.Contains(f.log.String(), "level=ERROR") {
				t.Errorf("the log has an error:\n%s", f.log)
			}
		})
	}
}

// TestQuotaWarningSubject: the notice's subject says how full the mailbox
// is after the delivery, which is at least the level crossed, and the
// fuller of size and messages decides.
func TestQuotaWarningSubject(t *testing.T) {
	t.Parallel()
	f := newWarnFixture(t, teststore.Open(t, t.TempDir()), []int{80, 95}, store.Quota{MaxBytes: 1_000_000, MaxMessages: 1000})
	f.deliver(500_000)
	f.deliver(460_000)
	notices := f.notices("INBOX")
	if len(notices) != 1 {
		t.Fatalf("%d notices, want 1\n%s", len(notices), f.log)
	}
	if got := notices[0].Header.Get("Subject"); got != "Your mailbox is 96% full" {
		t.Errorf("Subject: %q", got)
	}
}

// TestQuotaWarningCountsItself: the notice tells the use once it is
// stored itself, as the store then reports it, and names the level it
// lands on.
func TestQuotaWarningCountsItself(t *testing.T) {
	t.Parallel()
	f := newWarnFixture(t, teststore.Open(t, t.TempDir()), []int{80, 95}, store.Quota{MaxBytes: 1_000_000, MaxMessages: 1000})
	f.deliver(949_700)
	notices := f.notices("INBOX")
	if got := f.levels(); len(notices) != 1 || !slices.Equal(got, []int{95}) {
		t.Fatalf("warned of %v with %d notices, want 95 once\n%s", got, len(notices), f.log)
	}
	if got := notices[0].Header.Get("Subject"); got != "Your mailbox is 95% full" {
		t.Errorf("Subject: %q", got)
	}
	sess, err := f.st.Open(t.Context(), f.acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	u, err := sess.QuotaUsage(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(notices[0].Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		fmt.Sprintf("Size:      %s of %s (%d%%)", bytesize.Format(u.Bytes), bytesize.Format(u.MaxBytes), percent(u.Bytes, u.MaxBytes)),
		fmt.Sprintf("Messages:  %d of 1,000 (0%%)", u.Messages),
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the notice does not say %q, the use with it stored:\n%s", want, body)
		}
	}
	if want := fmt.Sprintf("bytes=%d max_bytes=1000000 messages=2 ", u.Bytes); !strings.Contains(f.log.String(), want) {
		t.Errorf("the log does not say %q:\n%s", want, f.log)
	}
}

// TestQuotaWarningSieve: usage is the account's, whatever folder mail goes
// to: a message a script files into a folder of its own warns too, and
// the notice goes to INBOX, past the script (which would have filed it
// away with the rest).
func TestQuotaWarningSieve(t *testing.T) {
	t.Parallel()
	st := teststore.Open(t, t.TempDir())
	f := newWarnFixture(t, st, []int{80}, store.Quota{MaxBytes: 1_000_000})
	sess, err := st.Open(t.Context(), f.acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.PutSieveScript(t.Context(), "main", []byte(`require ["fileinto", "mailbox"]; fileinto :create "Lists/Big"; stop;`), 0); err != nil {
		t.Fatal(err)
	}
	if err := sess.ActivateSieveScript(t.Context(), "main"); err != nil {
		t.Fatal(err)
	}
	f.deliver(700_000)
	f.deliver(150_000)
	if got := f.levels(); !slices.Equal(got, []int{80}) {
		t.Errorf("warned of %v, want [80]\n%s", got, f.log)
	}
	if n := len(f.notices("INBOX")); n != 1 {
		t.Errorf("%d notices in INBOX, want 1", n)
	}
	lists, err := sess.Mailbox(t.Context(), "Lists/Big")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := sess.Status(t.Context(), lists.ID); err != nil || st.Messages != 2 {
		t.Errorf("Lists/Big holds %d messages (%v), want the 2 delivered", st.Messages, err)
	}
	if n := len(f.notices("Lists/Big")); n != 0 {
		t.Errorf("%d notices in Lists/Big, want none", n)
	}
}

// TestQuotaWarningDeliverSession: the fetch client's path, which keeps
// mail in a mailbox of its choosing, warns in INBOX.
func TestQuotaWarningDeliverSession(t *testing.T) {
	t.Parallel()
	st := teststore.Open(t, t.TempDir())
	f := newWarnFixture(t, st, []int{80}, store.Quota{MaxBytes: 1_000_000})
	sess, err := st.Open(t.Context(), f.acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if _, err := sess.CreateMailbox(t.Context(), "Fetched", ""); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{700_000, 150_000} {
		msg, err := f.sp.Spool(strings.NewReader(sized(n)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.d.DeliverSession(t.Context(), sess, f.acct.Name, "Fetched", msg, Envelope{}); err != nil {
			t.Fatal(err)
		}
		msg.Close()
	}
	if got := f.levels(); !slices.Equal(got, []int{80}) {
		t.Errorf("warned of %v, want [80]\n%s", got, f.log)
	}
	if n := len(f.notices("INBOX")); n != 1 {
		t.Errorf("%d notices in INBOX, want 1", n)
	}
}

// failingAppends is a store whose sessions fail every Append after their
// first (a notice, after the delivery's one copy) and every QuotaUsage
// after their first when quotaFails is set.
type failingAppends struct {
	store.Store
	quotaFails bool
}

func (s *failingAppends) Open(ctx context.Context, id int64) (store.Session, error) {
	sess, err := s.Store.Open(ctx, id)
	if err != nil {
		return nil, err
	}
	return &failingSession{Session: sess, quotaFails: s.quotaFails}, nil
}

type failingSession struct {
	store.Session
	quotaFails      bool
	appends, quotas int
}

var errInjected = errors.New("injected failure")

func (s *failingSession) Append(ctx context.Context, mailboxID int64, msg *store.NewMessage) (store.AppendResult, error) {
	if s.appends++; s.appends > 1 {
		return store.AppendResult{}, errInjected
	}
	return s.Session.Append(ctx, mailboxID, msg)
}

func (s *failingSession) QuotaUsage(ctx context.Context) (store.QuotaUsage, error) {
	if s.quotas++; s.quotaFails && s.quotas > 1 {
		return store.QuotaUsage{}, errInjected
	}
	return s.Session.QuotaUsage(ctx)
}

// TestQuotaWarningFails: a notice that cannot be stored, or a use that
// cannot be read after the delivery, costs the delivery nothing: it
// succeeds, its copy is stored, and the log says what happened.
func TestQuotaWarningFails(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		quotaFails bool
		log        string
	}{
		{"the notice's append fails", false, "quota warning not stored"},
		{"the use after cannot be read", true, "cannot read the quota after the delivery"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := teststore.Open(t, t.TempDir())
			f := newWarnFixture(t, &failingAppends{Store: st, quotaFails: tc.quotaFails}, []int{50}, store.Quota{MaxBytes: 1_000_000})
			msg, err := f.sp.Spool(strings.NewReader(sized(600_000)))
			if err != nil {
				t.Fatal(err)
			}
			defer msg.Close()
			res, err := f.d.DeliverAccount(t.Context(), f.acct, msg, Envelope{To: f.acct.Name})
			if err != nil || len(res.Copies) != 1 {
				t.Fatalf("delivery: %+v, %v; want one copy stored", res, err)
			}
			if !strings.Contains(f.log.String(), tc.log) {
				t.Errorf("the log does not say %q:\n%s", tc.log, f.log)
			}
			if got := f.levels(); len(got) != 0 {
				t.Errorf("warned of %v; the notice was not stored", got)
			}
			sess, err := st.Open(t.Context(), f.acct.ID)
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			if u, err := sess.QuotaUsage(t.Context()); err != nil || u.Messages != 1 {
				t.Errorf("the account holds %d messages (%v), want the one delivered", u.Messages, err)
			}
		})
	}
}

// barrier holds the first append of each delivery until n of them have
// come: deliveries running at once that have all read the use before any
// stores a copy.
type barrier struct {
	mu      sync.Mutex
	waiting int // guarded by mu
	n       int
	release chan struct{}
}

func newBarrier(n int) *barrier { return &barrier{n: n, release: make(chan struct{})} }

func (b *barrier) wait(ctx context.Context) error {
	b.mu.Lock()
	if b.waiting++; b.waiting == b.n {
		close(b.release)
	}
	b.mu.Unlock()
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// barrierStore is a store whose sessions' first append waits at the
// barrier it holds then (none: no wait).
type barrierStore struct {
	store.Store
	mu sync.Mutex
	b  *barrier // guarded by mu
}

func (s *barrierStore) set(b *barrier) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = b
}

func (s *barrierStore) Open(ctx context.Context, id int64) (store.Session, error) {
	sess, err := s.Store.Open(ctx, id)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return &barrierSession{Session: sess, b: s.b}, nil
}

type barrierSession struct {
	store.Session
	b *barrier // nil once passed
}

func (s *barrierSession) Append(ctx context.Context, mailboxID int64, msg *store.NewMessage) (store.AppendResult, error) {
	if b := s.b; b != nil { // the delivery's copy; the notice goes by
		s.b = nil
		if err := b.wait(ctx); err != nil {
			return store.AppendResult{}, err
		}
	}
	return s.Session.Append(ctx, mailboxID, msg)
}

// deliverAtOnce delivers a message of size bytes with each Deliverer at
// once, all of them failing the test unless they succeed.
func deliverAtOnce(t *testing.T, f *warnFixture, size int, ds ...*Deliverer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(ds))
	for _, d := range ds {
		msg, err := f.sp.Spool(strings.NewReader(sized(size)))
		if err != nil {
			t.Fatal(err)
		}
		defer msg.Close()
		wg.Go(func() {
			_, err := d.DeliverAccount(ctx, f.acct, msg, Envelope{To: f.acct.Name})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestQuotaWarningConcurrent: deliveries to one account at once that cross
// a level together, each having read the use below it before any stored
// its copy, send one notice between them; they do not wait for one another
// to store their copies.
func TestQuotaWarningConcurrent(t *testing.T) {
	t.Parallel()
	const n = 4
	st := &barrierStore{Store: teststore.Open(t, t.TempDir())}
	f := newWarnFixture(t, st, []int{80}, store.Quota{MaxBytes: 1_000_000})
	f.deliver(700_000) // alone
	st.set(newBarrier(n))
	deliverAtOnce(t, f, 50_000, f.d, f.d, f.d, f.d)
	if got := f.levels(); !slices.Equal(got, []int{80}) {
		t.Errorf("warned of %v, want [80] once\n%s", got, f.log)
	}
	if got := len(f.notices("INBOX")); got != 1 {
		t.Errorf("%d notices, want 1", got)
	}
	// The gates of the deliveries are gone with them.
	f.d.warnGates.mu.Lock()
	defer f.d.warnGates.mu.Unlock()
	if len(f.d.warnGates.byAccount) != 0 {
		t.Errorf("%d gates left after the deliveries", len(f.d.warnGates.byAccount))
	}
}

// TestQuotaWarningTwoNodes: two processes on one store (two nodes on
// PostgreSQL) delivering at once across a level do not know of each
// other's notice: they may send one each, as ARCHITECTURE.md says, but
// never none.
func TestQuotaWarningTwoNodes(t *testing.T) {
	t.Parallel()
	key := t.TempDir()
	one, two := &barrierStore{Store: teststore.Open(t, key)}, &barrierStore{Store: teststore.Open(t, key)}
	f := newWarnFixture(t, one, []int{80}, store.Quota{MaxBytes: 1_000_000})
	f.deliver(700_000)
	other := &Deliverer{Store: two, QuotaWarnings: f.d.QuotaWarnings, Hostname: f.d.Hostname, Warned: f.d.Warned}
	b := newBarrier(2)
	one.set(b)
	two.set(b)
	deliverAtOnce(t, f, 60_000, f.d, other)
	if got := f.levels(); len(got) < 1 || len(got) > 2 || got[0] != 80 || got[len(got)-1] != 80 {
		t.Errorf("warned of %v, want 80 once or twice\n%s", got, f.log)
	}
}

// TestQuotaNotice: the notice is a well-formed message that says, in
// plain words, how full the mailbox is, what happens when it is full and
// what to do.
func TestQuotaNotice(t *testing.T) {
	t.Parallel()
	date := time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC)
	u := store.QuotaUsage{Quota: store.Quota{MaxBytes: 2 << 30, MaxMessages: 100_000}, Bytes: 1932735284, Messages: 12_344} // the notice makes 12,345
	d := &Deliverer{Hostname: "mx.example.org"}
	raw, _ := d.quotaNotice("alice@example.org", u, date)
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []struct{ name, want string }{
		{"From", "Mail server <postmaster@mx.example.org>"},
		{"To", "<alice@example.org>"},
		{"Subject", "Your mailbox is 90% full"},
		{"Date", "Fri, 27 Nov 2026 09:30:00 +0000"},
		{"Auto-Submitted", "auto-generated"},
		{"MIME-Version", "1.0"},
		{"Content-Type", "text/plain; charset=us-ascii"},
	} {
		if got := msg.Header.Get(h.name); got != h.want {
			t.Errorf("%s: %q, want %q", h.name, got, h.want)
		}
	}
	if _, err := msg.Header.AddressList("From"); err != nil {
		t.Errorf("From: %v", err)
	}
	if _, err := msg.Header.AddressList("To"); err != nil {
		t.Errorf("To: %v", err)
	}
	if _, err := msg.Header.Date(); err != nil {
		t.Errorf("Date: %v", err)
	}
	id := msg.Header.Get("Message-ID")
	if !strings.HasPrefix(id, "<quota.") || !strings.HasSuffix(id, "@mx.example.org>") {
		t.Errorf("Message-ID: %q", id)
	}
	if other, _ := d.quotaNotice("alice@example.org", u, date); bytes.Equal(raw, other) {
		t.Error("two notices have the same Message-ID")
	}
	body := string(raw[bytes.Index(raw, []byte("\r\n\r\n"))+4:])
	for _, want := range []string{
		"Your mailbox alice@example.org is 90% full.",
		"Size:      1.8 GB of 2 GB (90%)",
		"Messages:  12,345 of 100,000 (12%)",
		"refused", "delete mail", "Trash and Junk",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the notice does not say %q:\n%s", want, body)
		}
	}
	for i, line := range strings.Split(strings.TrimSuffix(string(raw), "\r\n"), "\r\n") {
		if len(line) > 78 {
			t.Errorf("line %d is %d characters long: %q", i+1, len(line), line)
		}
		if strings.ContainsAny(line, "\r\n") {
			t.Errorf("line %d has a bare CR or LF", i+1)
		}
	}
	for _, b := range raw {
		if b >= 0x80 {
			t.Fatal("the notice is not ASCII")
		}
	}
	// A quota of messages alone says nothing of size.
	u = store.QuotaUsage{Quota: store.Quota{MaxMessages: 1000}, Messages: 950}
	if raw, _ := d.quotaNotice("alice@example.org", u, date); strings.Contains(string(raw), "Size:") || !strings.Contains(string(raw), "Subject: Your mailbox is 95% full") {
		t.Errorf("a notice of messages alone:\n%s", raw)
	}
	// Account names the store takes: UTF-8, and characters a local part
	// must quote.
	for _, tc := range []struct {
		account, to, charset, encoding string
	}{
		{"josé@example.org", "<josé@example.org>", "utf-8", "8bit"},
		{"a,b@example.org", `<"a,b"@example.org>`, "us-ascii", "7bit"},
		{"a(b@example.org", `<"a(b"@example.org>`, "us-ascii", "7bit"},
		{"a:b@example.org", `<"a:b"@example.org>`, "us-ascii", "7bit"},
		{"a;b@example.org", `<"a;b"@example.org>`, "us-ascii", "7bit"},
		{"a@b@example.org", `<"a@b"@example.org>`, "us-ascii", "7bit"},
		{"x@exa(mple.org", "", "us-ascii", "7bit"}, // no To can name it
	} {
		raw, _ := d.quotaNotice(tc.account, u, date)
		msg, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Errorf("%s: %v", tc.account, err)
			continue
		}
		if got := msg.Header.Get("To"); got != tc.to {
			t.Errorf("%s: To: %q, want %q", tc.account, got, tc.to)
		}
		if tc.to != "" {
			if to, err := msg.Header.AddressList("To"); err != nil || len(to) != 1 || to[0].Address != tc.account {
				t.Errorf("%s: net/mail reads To %q as %v (%v)", tc.account, msg.Header.Get("To"), to, err)
			}
		}
		if got, want := msg.Header.Get("Content-Type"), "text/plain; charset="+tc.charset; got != want {
			t.Errorf("%s: Content-Type: %q, want %q", tc.account, got, want)
		}
		if got := msg.Header.Get("Content-Transfer-Encoding"); got != tc.encoding {
			t.Errorf("%s: Content-Transfer-Encoding: %q, want %q", tc.account, got, tc.encoding)
		}
		if body, _ := io.ReadAll(msg.Body); !strings.Contains(string(body), "Your mailbox "+tc.account+" is 95% full.") {
			t.Errorf("%s: the body does not name the account:\n%s", tc.account, body)
		}
		// Our own parser, whose envelope IMAP serves.
		part, err := message.Parse(bytes.NewReader(raw))
		if err != nil {
			t.Errorf("%s: %v", tc.account, err)
			continue
		}
		i := strings.LastIndexByte(tc.account, '@')
		local, domain := tc.account[:i], tc.account[i+1:]
		env := part.Envelope
		switch {
		case tc.to == "" && len(env.To) != 0:
			t.Errorf("%s: envelope To %+v, want none", tc.account, env.To)
		case tc.to != "" && (len(env.To) != 1 || env.To[0].Mailbox != local || env.To[0].Host != domain):
			t.Errorf("%s: envelope To %+v, want %s at %s", tc.account, env.To, local, domain)
		}
		if cs, _ := part.Param("charset"); part.MediaType != "text" || cs != tc.charset || part.Encoding != strings.ToUpper(tc.encoding) {
			t.Errorf("%s: parsed as %s/%s charset %q %s", tc.account, part.MediaType, part.MediaSubtype, cs, part.Encoding)
		}
	}
}

func TestPercent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		use, limit, want int64
	}{
		{0, 100, 0},
		{79, 100, 79},
		{80, 100, 80},
		{799_999, 1_000_000, 79},
		{800_000, 1_000_000, 80},
		{1 << 62, 1 << 62, 100},
		{(1 << 62) / 100 * 95, 1 << 62, 94}, // rounded down, exactly
		{1 << 62, 1 << 60, 400},
		{math.MaxInt64, 1, math.MaxInt64},
		{150, 100, 150},
	} {
		if got := percent(tc.use, tc.limit); got != tc.want {
			t.Errorf("percent(%d, %d) = %d, want %d", tc.use, tc.limit, got, tc.want)
		}
	}
	if reached(100, 0, 1) {
		t.Error("no limit is reached")
	}
}

// TestThousands: counts of messages in the notice are written as
// people read them.
func TestThousands(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 12345: "12,345", 1234567: "1,234,567"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
