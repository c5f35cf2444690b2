package delivery

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/buzon-mail/buzon/internal/sieve"
	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/teststore"
)

// sieveFixture is a store with one account, a Deliverer whose log the
// test reads, and the Spooler messages go through.
type sieveFixture struct {
	t    *testing.T
	st   store.Store
	d    *Deliverer
	acct store.Account
	sp   *Spooler
	log  *bytes.Buffer
}

func newSieveFixture(t *testing.T) *sieveFixture {
	st := teststore.Open(t, t.TempDir())
	acct, err := st.CreateAccount(t.Context(), "alice@example.org", store.Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	var mu sync.Mutex
	d := &Deliverer{Store: st, Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &log}, nil))}
	return &sieveFixture{t: t, st: st, d: d, acct: acct, sp: &Spooler{Dir: t.TempDir(), MemoryLimit: 1 << 20}, log: &log}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// activate puts script as the account's active script, "main"; "" leaves
// none.
func (f *sieveFixture) activate(script string) {
	f.t.Helper()
	ss, err := f.st.Open(f.t.Context(), f.acct.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	defer ss.Close()
	if script == "" {
		if err := ss.ActivateSieveScript(f.t.Context(), ""); err != nil {
			f.t.Fatal(err)
		}
		return
	}
	if err := ss.PutSieveScript(f.t.Context(), "main", []byte(script), 0); err != nil {
		f.t.Fatal(err)
	}
	if err := ss.ActivateSieveScript(f.t.Context(), "main"); err != nil {
		f.t.Fatal(err)
	}
}

func (f *sieveFixture) spool(msg string) *Spooled {
	f.t.Helper()
	sp, err := f.sp.Spool(strings.NewReader(msg))
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { sp.Close() })
	return sp
}

// contents lists, by mailbox, the account's messages as "Subject [flags]".
func (f *sieveFixture) contents() map[string][]string {
	f.t.Helper()
	ctx := f.t.Context()
	ss, err := f.st.Open(ctx, f.acct.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	defer ss.Close()
	boxes, err := ss.Mailboxes(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string][]string{}
	for _, mb := range boxes {
		err := ss.Messages(ctx, mb.ID, store.AllUIDs(), store.FieldFlags|store.FieldSize, func(m *store.MessageInfo) error {
			body, err := ss.OpenBody(ctx, mb.ID, m.UID)
			if err != nil {
				return err
			}
			defer body.Close()
			buf := make([]byte, body.Size())
			if _, err := body.ReadAt(buf, 0); err != nil {
				return err
			}
			_, subject, _ := strings.Cut(string(buf), "Subject: ")
			subject, _, _ = strings.Cut(subject, "\r\n")
			out[mb.Name] = append(out[mb.Name], fmt.Sprintf("%s %v", subject, m.Flags.Names()))
			return nil
		})
		if err != nil {
			f.t.Fatal(err)
		}
	}
	return out
}

func testMsg(subject string) string {
	return "Return-Path: <list-bounces@lists.example.net>\r\nFrom: Bob <bob@example.net>\r\nTo: alice@example.org\r\n" +
		"Subject: " + subject + "\r\nList-Id: <go.lists.example.net>\r\n\r\nHello.\r\n"
}

// TestSieveDelivery: each action of a script, carried out by delivery:
// keep, fileinto (with :create, its parents, and falling back to INBOX),
// flags, several copies, discard; scripts that do not compile or fail
// keep the message and say so in the log.
func TestSieveDelivery(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		script  string
		env     Envelope
		subject string
		want    map[string][]string // mailbox -> "Subject [flags]"
		copies  int
		log     string // in the log, if not ""
	}{
		{name: "no script", want: map[string][]string{"INBOX": {"hi []"}}, copies: 1},
		{name: "implicit keep", script: `if header :contains "subject" "nothing" { discard; }`,
			want: map[string][]string{"INBOX": {"hi []"}}, copies: 1},
		{name: "fileinto :create with parents and flags",
			script: `require ["fileinto", "mailbox", "imap4flags"];
				if header :contains "list-id" "go.lists" { fileinto :create :flags ["\\Seen", "$Lists"] "Lists/Go"; }`,
			want: map[string][]string{"Lists/Go": {`hi [\Seen $Lists]`}}, copies: 1},
		{name: "fileinto a mailbox that is not there",
			script: `require "fileinto"; fileinto "Nowhere";`,
			want:   map[string][]string{"INBOX": {"hi []"}}, copies: 1, log: "mailbox not usable"},
		{name: "fileinto a name that cannot be a mailbox",
			script: `require ["fileinto", "mailbox"]; fileinto :create "a//b";`,
			want:   map[string][]string{"INBOX": {"hi []"}}, copies: 1, log: "mailbox not usable"},
		{name: "fileinto an existing mailbox, case kept",
			script: `require "fileinto"; fileinto "Receipts";`,
			want:   map[string][]string{"Receipts": {"hi []"}}, copies: 1},
		{name: "fileinto inbox in any case",
			script: `require "fileinto"; fileinto "inbox";`,
			want:   map[string][]string{"INBOX": {"hi []"}}, copies: 1},
		{name: "keep and fileinto :copy",
			script: `require ["fileinto", "copy", "imap4flags"]; fileinto :copy "Receipts"; addflag "\\Flagged"; keep;`,
			want:   map[string][]string{"Receipts": {"hi []"}, "INBOX": {`hi [\Flagged]`}}, copies: 2},
		{name: "a missing mailbox and keep make one copy, with the last one's flags",
			script: `require ["fileinto", "imap4flags"]; fileinto :flags "$A" "Nowhere"; keep :flags "$B";`,
			want:   map[string][]string{"INBOX": {`hi [$B]`}}, copies: 1, log: "mailbox not usable"},
		{name: "one copy per mailbox, :create if any asked it",
			script: `require ["fileinto", "mailbox", "imap4flags"]; fileinto :flags "$A" "New"; fileinto :create "New"; fileinto "New"; fileinto "inbox"; keep :flags "$B";`,
			want:   map[string][]string{"New": {`hi []`}, "INBOX": {`hi [$B]`}}, copies: 2},
		{name: "flags that are not IMAP flags",
			script: `require "imap4flags"; keep :flags ["\\Seen", "\\Recent", "bad(flag", "$Ok"];`,
			want:   map[string][]string{"INBOX": {`hi [\Seen $Ok]`}}, copies: 1},
		{name: "discard", script: `discard;`, want: map[string][]string{}, copies: 0, log: "discarded by the sieve script"},
		{name: "envelope :detail",
			script: `require ["envelope", "subaddress", "fileinto", "mailbox"];
				if envelope :detail "to" "lists" { fileinto :create "Lists"; }`,
			env:  Envelope{From: "bob@example.net", To: "alice+lists@example.org"},
			want: map[string][]string{"Lists": {"hi []"}}, copies: 1},
		{name: "envelope from",
			script: `require ["envelope", "fileinto", "mailbox"];
				if envelope :is "from" "" { fileinto :create "Bounces"; } else { fileinto :create "People"; }`,
			env:  Envelope{From: "", To: "alice@example.org"},
			want: map[string][]string{"Bounces": {"hi []"}}, copies: 1},
		{name: "does not compile",
			script: `require "fileinto"; fileinto "Lists" # no semicolon`,
			want:   map[string][]string{"INBOX": {"hi []"}}, copies: 1, log: "sieve script does not compile; message kept"},
		{name: "fails at run time",
			script: `require ["fileinto", "copy"];` + strings.Repeat(`fileinto :copy "Receipts"; fileinto :copy "Lists"; `, 40),
			want:   map[string][]string{"INBOX": {"hi []"}}, copies: 1, log: "sieve script failed; message kept"},
		{name: "sends mail",
			script: `redirect "bob@example.net";`,
			want:   map[string][]string{"INBOX": {"hi []"}}, copies: 1, log: "does not compile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newSieveFixture(t)
			ss, err := f.st.Open(t.Context(), f.acct.ID)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ss.CreateMailbox(t.Context(), "Receipts", ""); err != nil {
				t.Fatal(err)
			}
			ss.Close()
			f.activate(tc.script)
			env := tc.env
			if env.To == "" {
				env = Envelope{From: "bob@example.net", To: "alice@example.org"}
			}
			got, err := f.d.DeliverAccount(t.Context(), f.acct, f.spool(testMsg("hi")), env)
			if err != nil {
				t.Fatalf("DeliverAccount: %v", err)
			}
			if len(got.Copies) != tc.copies {
				t.Errorf("%d copies stored (%+v), want %d", len(got.Copies), got.Copies, tc.copies)
			}
			if wantScript := map[bool]string{true: "main"}[tc.script != ""]; got.Script != wantScript {
				t.Errorf("Script %q, want %q", got.Script, wantScript)
			}
			contents := f.contents()
			for box, msgs := range contents {
				if !slices.Equal(msgs, tc.want[box]) {
					t.Errorf("%s holds %q, want %q", box, msgs, tc.want[box])
				}
			}
			for box, msgs := range tc.want {
				if _, ok := contents[box]; !ok {
					t.Errorf("no mailbox %s; want it to hold %q", box, msgs)
				}
			}
			if tc.log != "" && !strings.Contains(f.log.String(), tc.log) {
				t.Errorf("log lacks %q:\n%s", tc.log, f.log)
			}
			if strings.Contains(tc.log, "message kept") && (!strings.Contains(f.log.String(), "account=alice@example.org") ||
				!strings.Contains(f.log.String(), "script=main")) {
				t.Errorf("the warning does not name the account and script:\n%s", f.log)
			}
		})
	}
}

// TestSieveHeaderFromFile: a message spooled to a file, too big for
// memory, is filtered on its header as one in memory is.
func TestSieveHeaderFromFile(t *testing.T) {
	t.Parallel()
	f := newSieveFixture(t)
	f.sp.MemoryLimit = 100
	f.activate(`require ["fileinto", "mailbox", "body"];
		if allof (header :contains "subject" "big one", body :contains "needle") { fileinto :create "Big"; }`)
	msg := testMsg("the big one") + strings.Repeat("hay\r\n", 5000) + "needle\r\n"
	if _, err := f.d.DeliverAccount(t.Context(), f.acct, f.spool(msg), Envelope{To: "alice@example.org"}); err != nil {
		t.Fatal(err)
	}
	if got := f.contents()["Big"]; len(got) != 1 {
		t.Errorf("Big holds %q; want the message", got)
	}
}

// TestSieveQuota: every copy counts against the quota. When the first
// does not fit, nothing is stored and the error says why (the sender
// hears 552 and bounces, or retries); when a later one does not fit, the
// delivery succeeds with the copies stored before, so that no retry
// stores them twice.
func TestSieveQuota(t *testing.T) {
	t.Parallel()
	f := newSieveFixture(t)
	f.activate(`require ["fileinto", "copy", "mailbox"]; fileinto :copy :create "Receipts"; keep;`)
	msg := testMsg("quota")
	if err := f.st.SetQuota(t.Context(), f.acct.Name, store.Quota{MaxMessages: 1}); err != nil {
		t.Fatal(err)
	}
	got, err := f.d.DeliverAccount(t.Context(), f.acct, f.spool(msg), Envelope{To: "alice@example.org"})
	if err != nil || len(got.Copies) != 1 || got.Copies[0].Mailbox != "Receipts" {
		t.Errorf("DeliverAccount with room for one copy: %+v, %v; want a copy in Receipts", got, err)
	}
	if !strings.Contains(f.log.String(), "copy not stored") {
		t.Errorf("the copy left out is not logged:\n%s", f.log)
	}
	got, err = f.d.DeliverAccount(t.Context(), f.acct, f.spool(msg), Envelope{To: "alice@example.org"})
	if !errors.Is(err, store.ErrOverQuota) || len(got.Copies) != 0 {
		t.Errorf("DeliverAccount with no room: %+v, %v; want %v and nothing stored", got, err, store.ErrOverQuota)
	}
	if c := Classify(err); c.Code != 552 {
		t.Errorf("Classify(%v) = %d, want 552", err, c.Code)
	}
	if n := len(f.contents()["Receipts"]) + len(f.contents()["INBOX"]); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
}

// TestScriptCache: a script is compiled once for every delivery and every
// account that runs it; a changed script is compiled anew; the cache
// stays within its bound.
func TestScriptCache(t *testing.T) {
	t.Parallel()
	f := newSieveFixture(t)
	bob, err := f.st.CreateAccount(t.Context(), "bob@example.org", store.Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	script := `require "fileinto"; if header :is "subject" "x" { fileinto "INBOX"; }`
	for _, id := range []int64{f.acct.ID, bob.ID} {
		ss, err := f.st.Open(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if err := ss.PutSieveScript(t.Context(), "shared", []byte(script), 0); err != nil {
			t.Fatal(err)
		}
		if err := ss.ActivateSieveScript(t.Context(), "shared"); err != nil {
			t.Fatal(err)
		}
		ss.Close()
	}
	for range 3 {
		for _, acct := range []store.Account{f.acct, bob} {
			if _, err := f.d.DeliverAccount(t.Context(), acct, f.spool(testMsg("x")), Envelope{To: acct.Name}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := f.d.scripts.len(); n != 1 {
		t.Errorf("%d scripts cached after two accounts ran one script, want 1", n)
	}
	f.activate(`discard;`)
	if got, err := f.d.DeliverAccount(t.Context(), f.acct, f.spool(testMsg("x")), Envelope{To: f.acct.Name}); err != nil || len(got.Copies) != 0 {
		t.Errorf("after the script changed: %+v, %v; want it discarded", got, err)
	}
	if n := f.d.scripts.len(); n != 2 {
		t.Errorf("%d scripts cached, want 2", n)
	}

	var c scriptCache
	for i := range maxCachedScripts + 10 {
		if _, err := c.compile(scriptVersion{name: fmt.Sprint(i)}, fmt.Appendf(nil, "# %d\r\nkeep;", i), sieve.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.len(); n != maxCachedScripts {
		t.Errorf("%d scripts cached, want the bound, %d", n, maxCachedScripts)
	}
	// The most recent stay.
	c.mu.Lock()
	_, recent := c.byHash[sha(fmt.Appendf(nil, "# %d\r\nkeep;", maxCachedScripts+9))]
	_, old := c.byHash[sha(fmt.Appendf(nil, "# %d\r\nkeep;", 0))]
	c.mu.Unlock()
	if !recent || old {
		t.Errorf("the cache kept the oldest (%v) or lost the newest (%v)", old, !recent)
	}
}

// countingSession counts the reads of the active script's text.
type countingSession struct {
	store.Session
	reads int
}

func (s *countingSession) ActiveSieveScript(ctx context.Context) (store.SieveScript, error) {
	s.reads++
	return s.Session.ActiveSieveScript(ctx)
}

// TestScriptReadOnce: a delivery reads the active script's text only when
// the cache has not compiled that version: once for the first delivery,
// not for the next ones, once more after the script changed; none when no
// script is active.
func TestScriptReadOnce(t *testing.T) {
	t.Parallel()
	f := newSieveFixture(t)
	ctx := t.Context()
	sess, err := f.st.Open(ctx, f.acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	counted := &countingSession{Session: sess}
	deliver := func() {
		t.Helper()
		if _, err := f.d.DeliverSession(ctx, counted, f.acct.Name, "INBOX", f.spool(testMsg("x")), Envelope{To: f.acct.Name}); err != nil {
			t.Fatal(err)
		}
	}
	for _, step := range []struct {
		script string // "-": as it is
		reads  int    // of the text, so far
	}{
		{"", 0},
		{`require ["fileinto", "mailbox"]; fileinto :create "Lists";`, 1},
		{"-", 1},
		{"-", 1},
		{`keep;`, 2},
		{"-", 2},
		{"", 2},
	} {
		if step.script != "-" {
			f.activate(step.script)
		}
		deliver()
		if counted.reads != step.reads {
			t.Errorf("after a delivery with %q: %d reads of the script, want %d", step.script, counted.reads, step.reads)
		}
	}
	if got := f.contents(); len(got["Lists"]) != 3 || len(got["INBOX"]) != 4 {
		t.Errorf("delivered %v; want 3 in Lists, 4 in INBOX", got)
	}
}

// TestReturnPath: the envelope sender of a message that comes without
// one, only from a path in angle brackets that could go to a relay as
// one.
func TestReturnPath(t *testing.T) {
	t.Parallel()
	sp := &Spooler{}
	for _, tc := range []struct{ msg, want string }{
		{"Return-Path: <bob@example.net>\r\nSubject: x\r\n\r\nbody\r\n", "bob@example.net"},
		{"Subject: x\r\nreturn-path:   < bob@example.net >  \r\n\r\nReturn-Path: <no@body>\r\n", "bob@example.net"},
		{"Return-Path: <>\r\n\r\n", ""},
		{"Return-Path: bare@example.net\r\n\r\n", ""},
		{"Return-Path: bob@x> NOTIFY=NEVER ORCPT=rfc822;a\r\n\r\n", ""},
		{"Return-Path: <bob@x> NOTIFY=NEVER ORCPT=rfc822;a\r\n\r\n", ""},
		{"Return-Path: <bob@x NOTIFY=NEVER>\r\n\r\n", ""},
		{"Return-Path: <bob@x<evil@y>\r\n\r\n", ""},
		{"Return-Path: <\"b ob\"@example.net>\r\n\r\n", "\"b ob\"@example.net"},
		{"Return-Path: <bøb@example.net>\r\n\r\n", "bøb@example.net"},
		{"Subject: none\r\n\r\n", ""},
		{"Return-Path: <first@example.net>\r\nReturn-Path: <second@example.net>\r\n\r\n", "first@example.net"},
		{"Return-Path:\r\n <folded@example.net>\r\n\r\n", "folded@example.net"},
		{"Return-Path :\r\n\t<spaced@example.net>\r\nSubject: x\r\n\r\n", "spaced@example.net"},
	} {
		msg, err := sp.Spool(strings.NewReader(tc.msg))
		if err != nil {
			t.Fatal(err)
		}
		if got := msg.ReturnPath(); got != tc.want {
			t.Errorf("ReturnPath of %q = %q, want %q", tc.msg, got, tc.want)
		}
		msg.Close()
	}
}

func sha(b []byte) [32]byte { return sha256.Sum256(b) }

// TestSieveFlags: flag names a script gives that IMAP cannot show are left
// out with a warning, whatever the interpreter let through.
func TestSieveFlags(t *testing.T) {
	t.Parallel()
	f := newSieveFixture(t)
	got := f.d.flags("alice@example.org", "main", []string{`\seen`, `\Recent`, "bad(flag", "$Ok", "$ok", ""})
	if want := []string{`\Seen`, "$Ok"}; !slices.Equal(got.Names(), want) {
		t.Errorf("flags %q, want %q", got.Names(), want)
	}
	if n := strings.Count(f.log.String(), "not an IMAP flag"); n != 3 {
		t.Errorf("%d warnings, want 3:\n%s", n, f.log)
	}
}

// TestSieveConcurrent: deliveries at once to one account each run its
// script (one compiled copy, shared) and store what it says.
func TestSieveConcurrent(t *testing.T) {
	t.Parallel()
	f := newSieveFixture(t)
	f.activate(`require ["fileinto", "mailbox"]; if header :contains "subject" "list" { fileinto :create "Lists"; }`)
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		subject := "plain"
		if i%2 == 0 {
			subject = "list"
		}
		msg := f.spool(testMsg(subject))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := f.d.DeliverAccount(t.Context(), f.acct, msg, Envelope{To: f.acct.Name}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := f.contents()
	if len(got["Lists"]) != n/2 || len(got["INBOX"]) != n/2 || f.d.scripts.len() != 1 {
		t.Errorf("Lists %d, INBOX %d, %d scripts cached; want %d, %d, 1", len(got["Lists"]), len(got["INBOX"]), f.d.scripts.len(), n/2, n/2)
	}
}
