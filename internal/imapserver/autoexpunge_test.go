package imapserver

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/teststore"
)

// testClock is a clock a test sets, shared by a server and its store.
type testClock struct {
	mu sync.Mutex
	t  time.Time // guarded by mu
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// newClockEnv starts a server whose clock and store's clock are clk,
// with Trash and Junk expunged after trash and junk days.
func newClockEnv(t *testing.T, clk *testClock, trash, junk int) *testEnv {
	return newTestEnvStore(t, teststore.Options{Now: clk.now}, func(c *Config) {
		c.now = clk.now
		c.IMAP.ExpungeTrashDays, c.IMAP.ExpungeJunkDays = trash, junk
	})
}

// uidsIn lists the UIDs of a mailbox, read through the store.
func (e *testEnv) uidsIn(name string) []store.UID {
	e.t.Helper()
	sess := e.session()
	mb, err := sess.Mailbox(context.Background(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	var uids []store.UID
	err = sess.Messages(context.Background(), mb.ID, store.AllUIDs(), 0, func(m *store.MessageInfo) error {
		uids = append(uids, m.UID)
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return uids
}

// TestAutoexpunge: a login expunges from Trash and Junk what was saved
// there more than the configured days ago, counted from the save date:
// a message received 60 days ago and moved to Trash today stays, one put
// there 40 days ago goes, as does Junk of 40 days; other mailboxes keep
// theirs, however old. A session in IDLE on Trash sees the expunge.
func TestAutoexpunge(t *testing.T) {
	t.Parallel()
	// e.deliver dates messages 1-Mar-2024: "today" is 60 days on.
	today := time.Date(2024, 4, 30, 12, 0, 0, 0, time.UTC)
	daysAgo := func(n int) time.Time { return today.AddDate(0, 0, -n) }
	clk := &testClock{t: daysAgo(60)}
	e := newClockEnv(t, clk, 30, 30)

	received := e.deliver("INBOX", "Subject: received 60 days ago\n\nold\n")
	clk.set(daysAgo(40))
	e.deliver("Trash", "Subject: deleted 40 days ago\n\ngoes\n")
	e.deliver("Junk", "Subject: spam of 40 days ago\n\ngoes\n")
	e.deliver("Archive", "Subject: archived 40 days ago\n\nstays\n")
	clk.set(daysAgo(10))
	e.deliver("Trash", "Subject: deleted 10 days ago\n\nstays\n")

	// A login 10 days ago: nothing was due.
	idler := e.login()
	idler.mustOK("SELECT Trash")
	if got := e.uidsIn("Trash"); !slices.Equal(got, []store.UID{1, 2}) {
		t.Fatalf("Trash after a login with nothing due: %v, want [1 2]", got)
	}
	idler.idle("i")

	// Today: the old message is moved to Trash, then a login.
	clk.set(today)
	sess := e.session()
	inbox, _ := sess.Mailbox(context.Background(), "INBOX")
	trash, _ := sess.Mailbox(context.Background(), "Trash")
	if _, err := sess.Move(context.Background(), inbox.ID, store.UIDSetOf(received.UID), trash.ID); err != nil {
		t.Fatal(err)
	}
	c := e.login()

	for _, w := range []struct {
		name string
		want []store.UID
	}{
		{"Trash", []store.UID{2, 3}}, // 3: moved in today
		{"Junk", nil},
		{"Archive", []store.UID{1}},
		{"INBOX", nil},
	} {
		if got := e.uidsIn(w.name); !slices.Equal(got, w.want) {
			t.Errorf("%s after autoexpunge: %v, want %v", w.name, got, w.want)
		}
	}
	// The session in IDLE hears of the move in and of the expunge, in
	// whatever order the two changes reach it.
	var heard []string
	for !slices.Contains(heard, "* 1 EXPUNGE") {
		heard = append(heard, idler.readLine())
		if len(heard) > 10 {
			t.Fatalf("IDLE on Trash heard %q, no expunge of message 1", heard)
		}
	}
	idler.write("DONE\r\n")
	idler.readUntil("i")

	c.mustOK("SELECT Trash")
	got := c.mustOK("UID FETCH 3 (SAVEDATE INTERNALDATE)")
	want := `* 2 FETCH (UID 3 SAVEDATE "30-Apr-2024 12:00:00 +0000" INTERNALDATE " 1-Mar-2024 12:00:00 +0000")`
	if !slices.Contains(got, want) {
		t.Errorf("the message moved to Trash today: %q, want %q", got, want)
	}
}

// TestAutoexpungeOncePerHour: an account's Trash is expired at most once
// an hour per process, however often it logs in; and 0 days keeps Junk.
func TestAutoexpungeOncePerHour(t *testing.T) {
	t.Parallel()
	today := time.Date(2024, 4, 30, 12, 0, 0, 0, time.UTC)
	clk := &testClock{t: today}
	e := newClockEnv(t, clk, 30, 0)
	e.login().mustOK("LOGOUT")

	clk.set(today.AddDate(0, 0, -31))
	e.deliver("Trash", "Subject: deleted 31 days ago\n\n.\n")
	e.deliver("Junk", "Subject: spam of 31 days ago\n\n.\n")
	clk.set(today.Add(59 * time.Minute))
	e.login().mustOK("LOGOUT")
	if got := e.uidsIn("Trash"); len(got) != 1 {
		t.Errorf("Trash after a second login within the hour: %v, want it untouched", got)
	}
	clk.set(today.Add(61 * time.Minute))
	e.login().mustOK("LOGOUT")
	if got := e.uidsIn("Trash"); len(got) != 0 {
		t.Errorf("Trash after a login past the hour: %v, want it empty", got)
	}
	if got := e.uidsIn("Junk"); len(got) != 1 {
		t.Errorf("Junk with expunge_junk_days 0: %v, want it kept", got)
	}
}

// TestAutoexpungeManyDays: days as many as the configuration allows, or
// more (a Server built without Validate), keep Trash and Junk: the
// cutoff does not wrap past what a timestamp holds into the future.
func TestAutoexpungeManyDays(t *testing.T) {
	t.Parallel()
	today := time.Date(2024, 4, 30, 12, 0, 0, 0, time.UTC)
	clk := &testClock{t: today.AddDate(-1, 0, 0)}
	e := newClockEnv(t, clk, 999_999_999, config.MaxDays)
	e.deliver("Trash", "Subject: deleted a year ago\n\nstays\n")
	e.deliver("Junk", "Subject: spam of a year ago\n\nstays\n")
	clk.set(today)
	e.login()
	for _, name := range []string{"Trash", "Junk"} {
		if got := e.uidsIn(name); !slices.Equal(got, []store.UID{1}) {
			t.Errorf("%s after a login: %v, want [1]", name, got)
		}
	}
}
