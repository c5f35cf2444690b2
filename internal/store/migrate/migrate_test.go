package migrate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/migrate"
	"github.com/buzon-mail/buzon/internal/store/postgres"
	"github.com/buzon-mail/buzon/internal/store/postgres/pgtest"
	"github.com/buzon-mail/buzon/internal/store/sqlite"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// openPostgres opens a postgres Store on a new database.
func openPostgres(t *testing.T) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), postgres.Config{DSN: pgtest.Start(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestCopy moves a populated store (the embedded one, as `buzon
// migrate-store` does, and a PostgreSQL one) into PostgreSQL, interrupted
// once, and checks that everything a client can see came across unchanged.
func TestCopy(t *testing.T) {
	sources := []struct {
		name string
		open func(t *testing.T) store.Store
	}{
		{"sqlite", func(t *testing.T) store.Store {
			// Keeping one expunge, it forgets those before the last
			// of the mailboxes that lost several.
			s, err := sqlite.Open(sqlite.Config{Dir: t.TempDir(), KeptExpunges: 1})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}},
		{"postgres", func(t *testing.T) store.Store { return openPostgres(t) }},
	}
	for _, src := range sources {
		t.Run(src.name, func(t *testing.T) {
			t.Parallel()
			from := src.open(t)
			populate(t, from)
			to := openPostgres(t)
			secrets := makeSecrets(t, from.(store.SecretKeeper), to)
			roundTrip(t, from, to)
			checkSecrets(t, to, secrets)
		})
	}
}

// populate gives from two accounts with varied mail: several mailboxes,
// flags and keywords, expunged messages (UIDNEXT above the last UID), a
// large body, POP3 retrieval, subscriptions, a quota, Sieve scripts.
func populate(t *testing.T, from store.Store) {
	ctx := t.Context()
	for ai, name := range []string{"alice@example.org", "bob@example.org"} {
		a, err := from.CreateAccount(ctx, name, store.Credentials{PasswordHash: "$hash$" + name, SCRAMSHA256: "scram" + name})
		if err != nil {
			t.Fatal(err)
		}
		if err := from.SetQuota(ctx, name, store.Quota{MaxBytes: 1 << 30, MaxMessages: 1000 + int64(ai)}); err != nil {
			t.Fatal(err)
		}
		ss, err := from.Open(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer ss.Close()
		inbox, err := ss.Mailbox(ctx, "INBOX")
		if err != nil {
			t.Fatal(err)
		}
		work, err := ss.CreateMailbox(ctx, "Work/Projects", "")
		if err != nil {
			t.Fatal(err)
		}
		for i := range 30 {
			mb := inbox.ID
			if i%3 == 0 {
				mb = work.ID
			}
			body := fmt.Appendf(nil, "From: x@example.org\r\nSubject: %d\r\n\r\n%s\r\n", i, bytes.Repeat([]byte("ab"), i*10))
			if i == 7 {
				body = bytes.Repeat([]byte("0123456789abcde\n"), 3<<16) // 3 MiB, several chunks
			}
			if _, err := ss.Append(ctx, mb, &store.NewMessage{
				Body: bytes.NewReader(body), Size: int64(len(body)), Structure: []byte{0, byte(i), 0xff},
				Flags:        store.Flags{System: store.SystemFlags(i % 4), Keywords: []string{"$Label" + fmt.Sprint(i%3)}},
				InternalDate: time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(i) * time.Hour),
			}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := ss.StoreFlags(ctx, inbox.ID, store.NewUIDSet(store.UIDRange{Start: 2, Stop: 6}), store.FlagsAdd,
			store.Flags{System: store.FlagDeleted, Keywords: []string{"Junk"}}, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := ss.Expunge(ctx, inbox.ID, store.AllUIDs(), true); err != nil {
			t.Fatal(err)
		}
		// The last message goes too, so UIDNEXT is above every UID left.
		st, _ := ss.Status(ctx, inbox.ID)
		if _, err := ss.Expunge(ctx, inbox.ID, store.UIDSetOf(st.UIDNext-1), false); err != nil {
			t.Fatal(err)
		}
		if err := ss.MarkRetrieved(ctx, inbox.ID, store.UIDSetOf(8), time.Date(2021, 5, 6, 7, 8, 9, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
		if _, err := ss.Copy(ctx, inbox.ID, store.NewUIDSet(store.UIDRange{Start: 8, Stop: 12}), work.ID); err != nil {
			t.Fatal(err)
		}
		if err := ss.SetSubscribed(ctx, "Work/Projects", true); err != nil {
			t.Fatal(err)
		}
		if err := ss.SetSubscribed(ctx, "Gone/Away", true); err != nil {
			t.Fatal(err)
		}
		// Sieve scripts: alice's second is active, bob has none active.
		for _, sc := range []string{"main", "Ñandú"} {
			if err := ss.PutSieveScript(ctx, sc, fmt.Appendf(nil, "# %s of %s\r\nkeep;\r\n", sc, name), 0); err != nil {
				t.Fatal(err)
			}
		}
		if ai == 0 {
			if err := ss.ActivateSieveScript(ctx, "Ñandú"); err != nil {
				t.Fatal(err)
			}
		}
		// The records of a vacation reply and of two redirects.
		rt := ss.(store.ReplyTracker)
		now := time.Now().Truncate(time.Millisecond)
		if due, err := rt.ReplyDue(ctx, "vacation "+name, now, 7*24*time.Hour); err != nil || !due {
			t.Fatalf("ReplyDue: %v, %v", due, err)
		}
		for i := range 2 {
			if err := rt.RecordReply(ctx, fmt.Sprintf("redirect %d %s", i, name), now.Add(time.Duration(i)*time.Minute), 12*time.Hour); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, a := range []store.Alias{
		{Name: "postmaster@example.org", Account: "alice@example.org"},
		{Name: "abuse@example.org", Account: "alice@example.org"},
		{Name: "robert@example.net", Account: "bob@example.org"},
	} {
		if err := from.AddAlias(ctx, a.Name, a.Account); err != nil {
			t.Fatal(err)
		}
	}
}

// makeSecrets gives from two secrets, one of whose names to has a secret
// of its own already, and returns the secrets to should hold after a copy.
func makeSecrets(t *testing.T, from store.SecretKeeper, to store.SecretKeeper) map[string][]byte {
	ctx := t.Context()
	want := map[string][]byte{}
	for _, name := range []string{"scram-unknown", "taken"} {
		v, err := from.Secret(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		want[name] = v
	}
	v, err := to.Secret(ctx, "taken")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(v, want["taken"]) {
		t.Fatal("two stores made the same secret")
	}
	want["taken"] = v
	return want
}

// checkSecrets checks that to holds exactly the secrets of want.
func checkSecrets(t *testing.T, to store.SecretKeeper, want map[string][]byte) {
	got, err := to.Secrets(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("the target has %d secrets, want %d", len(got), len(want))
	}
	for name, v := range want {
		if !bytes.Equal(got[name], v) {
			t.Errorf("secret %q after the copy: %x, want %x", name, got[name], v)
		}
	}
}

// roundTrip copies from into to, interrupting the first run, and compares.
func roundTrip(t *testing.T, from store.Store, to store.Importer) {
	ctx := t.Context()

	// The first run stops part-way through, as if killed.
	cctx, cancel := context.WithCancel(ctx)
	var calls int
	err := migrate.Copy(cctx, from, to, func(done, total int64) {
		if calls++; calls == 25 {
			cancel()
		}
	})
	cancel()
	if err == nil {
		t.Fatal("the interrupted copy succeeded")
	}
	if _, err := to.LookupAccount(ctx, "bob@example.org"); !errors.Is(err, store.ErrNoAccount) {
		t.Errorf("an account half imported is visible: %v", err)
	}

	var last, total int64
	if err := migrate.Copy(ctx, from, to, func(done, tot int64) { last, total = done, tot }); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if last != total || total == 0 {
		t.Errorf("progress ended at %d of %d", last, total)
	}
	// A third run finds everything done.
	if err := migrate.Copy(ctx, from, to, nil); err != nil {
		t.Fatalf("third run: %v", err)
	}
	compare(t, from, to)

	// The migrated store goes on from where the source was.
	a, err := to.LookupAccount(ctx, "alice@example.org")
	if err != nil {
		t.Fatal(err)
	}
	ss, err := to.Open(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	inbox, _ := ss.Mailbox(ctx, "INBOX")
	before, _ := ss.Status(ctx, inbox.ID)
	res, err := ss.Append(ctx, inbox.ID, &store.NewMessage{Body: bytes.NewReader([]byte("x\r\n")), Size: 3})
	if err != nil {
		t.Fatal(err)
	}
	if res.UID != before.UIDNext || res.ModSeq <= before.HighestModSeq || res.UIDValidity != inbox.UIDValidity {
		t.Errorf("append after migration: %+v; status before %+v", res, before)
	}
}

// compare checks that to holds what from holds, as clients see it.
func compare(t *testing.T, from, to store.Store) {
	ctx := t.Context()
	fal, err := from.Aliases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tal, err := to.Aliases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(fal) == 0 || !slices.Equal(fal, tal) {
		t.Errorf("aliases %v, want %v", tal, fal)
	}
	fa, err := from.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ta, err := to.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(fa) != len(ta) {
		t.Fatalf("%d accounts, want %d", len(ta), len(fa))
	}
	for i := range fa {
		f, g := fa[i], ta[i]
		if f.Name != g.Name || f.Credentials != g.Credentials || f.Quota != g.Quota || !f.Created.Equal(g.Created) {
			t.Errorf("account %+v, want %+v", g, f)
		}
		fs, err := from.Open(ctx, f.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer fs.Close()
		ts, err := to.Open(ctx, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer ts.Close()
		compareAccount(t, f.Name, fs, ts)
	}
}

func compareAccount(t *testing.T, name string, fs, ts store.Session) {
	ctx := t.Context()
	fq, _ := fs.QuotaUsage(ctx)
	tq, _ := ts.QuotaUsage(ctx)
	if fq != tq {
		t.Errorf("%s: quota usage %+v, want %+v", name, tq, fq)
	}
	fsubs, _ := fs.Subscriptions(ctx)
	tsubs, _ := ts.Subscriptions(ctx)
	if !slices.Equal(fsubs, tsubs) {
		t.Errorf("%s: subscriptions %v, want %v", name, tsubs, fsubs)
	}
	fscripts, ferr := readScripts(t, fs)
	tscripts, terr := readScripts(t, ts)
	if ferr != nil || terr != nil {
		t.Fatalf("%s: sieve scripts: %v, %v", name, ferr, terr)
	}
	if len(fscripts) == 0 || !slices.EqualFunc(fscripts, tscripts, func(f, g store.SieveScript) bool {
		return f.Name == g.Name && bytes.Equal(f.Content, g.Content) && f.Size == g.Size && f.Active == g.Active && f.Modified.Equal(g.Modified)
	}) {
		t.Errorf("%s: sieve scripts %+v, want %+v", name, tscripts, fscripts)
	}
	freplies, treplies := replies(t, fs), replies(t, ts)
	if len(freplies) != 3 || !slices.EqualFunc(freplies, treplies, func(f, g store.Reply) bool {
		return f.Key == g.Key && f.Sent.Equal(g.Sent) && f.Expires.Equal(g.Expires)
	}) {
		t.Errorf("%s: records of replies %+v, want %+v", name, treplies, freplies)
	}
	fmbs, err := fs.Mailboxes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tmbs, err := ts.Mailboxes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(fmbs) != len(tmbs) {
		t.Fatalf("%s: mailboxes %v, want %v", name, tmbs, fmbs)
	}
	for i := range fmbs {
		f, g := fmbs[i], tmbs[i]
		if f.Name != g.Name || f.UIDValidity != g.UIDValidity || f.SpecialUse != g.SpecialUse {
			t.Errorf("%s: mailbox %+v, want %+v", name, g, f)
			continue
		}
		fst, _ := fs.Status(ctx, f.ID)
		tst, _ := ts.Status(ctx, g.ID)
		slices.Sort(fst.Keywords)
		slices.Sort(tst.Keywords)
		if fst.Messages != tst.Messages || fst.UIDNext != tst.UIDNext || fst.HighestModSeq != tst.HighestModSeq ||
			fst.Unseen != tst.Unseen || fst.Size != tst.Size || !slices.Equal(fst.Keywords, tst.Keywords) {
			t.Errorf("%s %s: status %+v, want %+v", name, f.Name, tst, fst)
		}
		fch, _ := fs.Changes(ctx, f.ID, 0)
		tch, _ := ts.Changes(ctx, g.ID, 0)
		for _, u := range fch.Expunged {
			if !slices.Contains(tch.Expunged, u) {
				t.Errorf("%s %s: expunged UID %d not kept", name, f.Name, u)
			}
		}
		if fch.ForgottenTo != tch.ForgottenTo {
			t.Errorf("%s %s: expunges forgotten to MODSEQ %d, want %d", name, f.Name, tch.ForgottenTo, fch.ForgottenTo)
		}
		fm := messages(t, fs, f.ID)
		tm := messages(t, ts, g.ID)
		if len(fm) != len(tm) {
			t.Fatalf("%s %s: %d messages, want %d", name, f.Name, len(tm), len(fm))
		}
		for j := range fm {
			x, y := fm[j], tm[j]
			if x.UID != y.UID || x.ModSeq != y.ModSeq || !x.Flags.Equal(y.Flags) || !x.InternalDate.Equal(y.InternalDate) ||
				x.Size != y.Size || !bytes.Equal(x.Structure, y.Structure) || !x.Retrieved.Equal(y.Retrieved) ||
				x.SaveDate.IsZero() || !x.SaveDate.Equal(y.SaveDate) {
				t.Errorf("%s %s: message %+v, want %+v", name, f.Name, y, x)
				continue
			}
			if !bytes.Equal(body(t, fs, f.ID, x.UID), body(t, ts, g.ID, y.UID)) {
				t.Errorf("%s %s: body of message %d differs", name, f.Name, x.UID)
			}
		}
	}
}

func messages(t *testing.T, ss store.Session, mailboxID int64) []store.MessageInfo {
	var out []store.MessageInfo
	if err := ss.Messages(t.Context(), mailboxID, store.AllUIDs(), store.FieldAll, func(m *store.MessageInfo) error {
		c := *m
		c.Structure = slices.Clone(m.Structure)
		out = append(out, c)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func body(t *testing.T, ss store.Session, mailboxID int64, uid store.UID) []byte {
	b, err := ss.OpenBody(t.Context(), mailboxID, uid)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	data, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestCopyAliasTaken: an alias whose name the target gives another
// account stops the copy, which neither moves it nor says it succeeded.
func TestCopyAliasTaken(t *testing.T) {
	ctx := t.Context()
	from, err := sqlite.Open(sqlite.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer from.Close()
	to := openPostgres(t)
	for _, s := range []struct {
		st      store.Store
		account string
	}{{from, "alice@example.org"}, {to, "carol@example.org"}} {
		if _, err := s.st.CreateAccount(ctx, s.account, store.Credentials{}); err != nil {
			t.Fatal(err)
		}
		if err := s.st.AddAlias(ctx, "info@example.org", s.account); err != nil {
			t.Fatal(err)
		}
	}
	if err := migrate.Copy(ctx, from, to, nil); !errors.Is(err, store.ErrAliasExists) {
		t.Errorf("Copy = %v, want %v", err, store.ErrAliasExists)
	}
	if a, err := to.LookupAddress(ctx, "info@example.org"); err != nil || a.Name != "carol@example.org" {
		t.Errorf("after the copy, info@ reaches %+v, %v", a, err)
	}
}

// readScripts reads a session's Sieve scripts with their contents.
func readScripts(t *testing.T, ss store.Session) ([]store.SieveScript, error) {
	list, err := ss.SieveScripts(t.Context())
	for i := range list {
		if err != nil {
			break
		}
		list[i], err = ss.SieveScript(t.Context(), list[i].Name)
	}
	return list, err
}

// replies lists a session's records of replies, by key.
func replies(t *testing.T, ss store.Session) []store.Reply {
	list, err := ss.(store.ReplyTracker).Replies(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(list, func(a, b store.Reply) int { return strings.Compare(a.Key, b.Key) })
	return list
}
