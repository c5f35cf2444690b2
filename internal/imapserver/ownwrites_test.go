package imapserver

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

// changesCounter counts its sessions' Changes calls.
type changesCounter struct {
	store.Store
	n atomic.Int32
}

func (s *changesCounter) Open(ctx context.Context, id int64) (store.Session, error) {
	sess, err := s.Store.Open(ctx, id)
	if err != nil {
		return nil, err
	}
	return &countedSession{Session: sess, s: s}, nil
}

type countedSession struct {
	store.Session
	s *changesCounter
}

func (ss *countedSession) Changes(ctx context.Context, mailboxID int64, since store.ModSeq) (*store.ChangeSet, error) {
	ss.s.n.Add(1)
	return ss.Session.Changes(ctx, mailboxID, since)
}

// deliverThree puts messages "one", "two" and "three" in INBOX, UIDs 1 to 3.
func (e *testEnv) deliverThree() {
	for _, s := range []string{"one", "two", "three"} {
		e.deliver("INBOX", "Subject: "+s+"\r\n\r\n"+s+"\r\n")
	}
}

// ownWritesEnv starts a server on the store wrap makes of the test's
// store, with three messages in INBOX, and logs a session in that
// selects it.
func ownWritesEnv(t *testing.T, wrap func(store.Store) store.Store) (*testEnv, *client) {
	e := newTestEnv(t, func(cfg *Config) { cfg.Store = wrap(cfg.Store) })
	e.deliverThree()
	c := e.login()
	c.mustOK("SELECT INBOX")
	return e, c
}

// TestOwnWrites: a session's own STORE, APPEND, EXPUNGE and FETCH that
// sets \Seen reach its view from their own results, without reading the
// change back (no Changes call), and the view stays exact: message
// numbers, flags for SEARCH, EXISTS for its own APPEND. When another
// session changed the mailbox first, the write does not stand for the
// change and the session reads and reports it.
func TestOwnWrites(t *testing.T) {
	t.Parallel()
	var cc *changesCounter
	e, c := ownWritesEnv(t, func(st store.Store) store.Store {
		cc = &changesCounter{Store: st}
		return cc
	})
	c.mustOK("SEARCH UNSEEN") // the view now keeps flags too
	cc.n.Store(0)

	expect := func(cmd string, want ...string) {
		t.Helper()
		got := c.mustOK(cmd)
		if !slices.Equal(got, want) {
			t.Errorf("%s: %q, want %q", cmd, got, want)
		}
	}
	expect(`STORE 1 +FLAGS (\Seen)`, `* 1 FETCH (FLAGS (\Seen))`)
	expect(`FETCH 2 BODY[]`, "* 2 FETCH (BODY[] {21}\r\nSubject: two\r\n\r\ntwo\r\n FLAGS (\\Seen))")
	msg := "Subject: four\r\n\r\nfour\r\n"
	c.write("a1 APPEND INBOX (\\Flagged) {" + itoa(uint32(len(msg))) + "+}\r\n" + msg + "\r\n")
	untagged, tagged := c.readUntil("a1")
	if !slices.Equal(untagged, []string{"* 4 EXISTS"}) || !strings.HasPrefix(tagged, "a1 OK [APPENDUID ") {
		t.Errorf("APPEND: %q %q", untagged, tagged)
	}
	expect(`STORE 3:4 +FLAGS.SILENT (\Deleted)`)
	expect(`EXPUNGE`, `* 3 EXPUNGE`, `* 3 EXPUNGE`)
	expect(`SEARCH UNSEEN`, `* SEARCH`)
	expect(`SEARCH SEEN`, `* SEARCH 1 2`)
	expect(`FETCH 1:* (UID FLAGS)`, `* 1 FETCH (UID 1 FLAGS (\Seen))`, `* 2 FETCH (UID 2 FLAGS (\Seen))`)
	expect(`NOOP`)
	if n := cc.n.Load(); n != 0 {
		t.Errorf("the session read its own writes back: %d Changes calls", n)
	}

	// Another session's change comes first: the next write of this one
	// does not stand for it, and both are reported.
	other := e.login()
	other.mustOK("SELECT INBOX")
	other.mustOK(`STORE 2 +FLAGS.SILENT (\Flagged)`)
	got := c.mustOK(`STORE 1 +FLAGS (\Answered)`)
	want := []string{`* 1 FETCH (FLAGS (\Seen \Answered))`, `* 2 FETCH (FLAGS (\Seen \Flagged))`}
	if !slices.Equal(got, want) {
		t.Errorf("STORE after another session's: %q, want %q", got, want)
	}
	if cc.n.Load() == 0 {
		t.Error("the change made elsewhere was not read")
	}
	expect(`SEARCH FLAGGED`, `* SEARCH 2`)

	// A STORE that changes some of the messages named reports them all,
	// in order, from what StoreFlags returned.
	cc.n.Store(0)
	expect(`STORE 1:2 +FLAGS (\Flagged)`, `* 1 FETCH (FLAGS (\Seen \Answered \Flagged))`, `* 2 FETCH (FLAGS (\Seen \Flagged))`)
	expect(`STORE 1:2 +FLAGS (\Seen)`, `* 1 FETCH (FLAGS (\Seen \Answered \Flagged))`, `* 2 FETCH (FLAGS (\Seen \Flagged))`)
	if n := cc.n.Load(); n != 0 {
		t.Errorf("the session read its own writes back: %d Changes calls", n)
	}
}

// raceAfterAppend runs, once armed by a session's Append, an action at
// that session's next HighestModSeq: another session's change landing
// between the APPEND and the sync after it, or a failure of that sync.
type raceAfterAppend struct {
	store.Store
	armed  atomic.Bool
	action func(ctx context.Context, account int64) error
}

func (s *raceAfterAppend) Open(ctx context.Context, id int64) (store.Session, error) {
	sess, err := s.Store.Open(ctx, id)
	if err != nil {
		return nil, err
	}
	return &raceSession{Session: sess, s: s, account: id}, nil
}

type raceSession struct {
	store.Session
	s       *raceAfterAppend
	account int64
}

func (ss *raceSession) Append(ctx context.Context, mailboxID int64, m *store.NewMessage) (store.AppendResult, error) {
	res, err := ss.Session.Append(ctx, mailboxID, m)
	if err == nil && ss.s.action != nil {
		ss.s.armed.Store(true)
	}
	return res, err
}

func (ss *raceSession) HighestModSeq(ctx context.Context, mailboxID int64, notBefore time.Time) (store.ModSeq, error) {
	if ss.s.armed.CompareAndSwap(true, false) {
		if err := ss.s.action(ctx, ss.account); err != nil {
			return 0, err
		}
	}
	return ss.Session.HighestModSeq(ctx, mailboxID, notBefore)
}

// TestOwnAppendAnnounced: the EXISTS for a session's own APPEND, which
// the view took in from the append's result, reaches the client also
// when the sync after the command finds another change (and adds no
// message of its own), and when that sync fails, then at the next
// command. (Found in review: the count was overwritten, or lost.)
func TestOwnAppendAnnounced(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		action func(rs *raceAfterAppend) func(ctx context.Context, account int64) error
	}{
		{"another session's flag change", func(rs *raceAfterAppend) func(context.Context, int64) error {
			return func(ctx context.Context, account int64) error {
				other, err := rs.Store.Open(ctx, account)
				if err != nil {
					return err
				}
				defer other.Close()
				mb, err := other.Mailbox(ctx, "INBOX")
				if err != nil {
					return err
				}
				_, err = other.StoreFlags(ctx, mb.ID, store.UIDSetOf(1), store.FlagsAdd, store.Flags{System: store.FlagFlagged}, 0)
				return err
			}
		}},
		{"a failed sync", func(*raceAfterAppend) func(context.Context, int64) error {
			return func(context.Context, int64) error { return fmt.Errorf("test: %w", store.ErrUnavailable) }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rs *raceAfterAppend
			_, c := ownWritesEnv(t, func(st store.Store) store.Store {
				rs = &raceAfterAppend{Store: st}
				return rs
			})
			rs.action = tc.action(rs)
			msg := "Subject: four\r\n\r\nfour\r\n"
			c.write("a1 APPEND INBOX {" + itoa(uint32(len(msg))) + "+}\r\n" + msg + "\r\n")
			untagged, _ := c.readUntil("a1")
			untagged = append(untagged, c.mustOK("NOOP")...)
			if n := strings.Count(strings.Join(untagged, "\n"), "* 4 EXISTS"); n != 1 {
				t.Errorf("APPEND and NOOP: %q; want one * 4 EXISTS", untagged)
			}
		})
	}
}

// TestStoreSilentAfterOtherChange: a STORE .SILENT that lands on a
// message another session changed first, unseen by this one, must not
// hide that change: the flags go to the client (RFC 9051 6.4.6), with
// UID and MODSEQ under CONDSTORE, so that a later CHANGEDSINCE resync
// does not skip it. Alone in the mailbox, .SILENT stays silent.
func TestStoreSilentAfterOtherChange(t *testing.T) {
	t.Parallel()
	for _, condstore := range []bool{false, true} {
		t.Run(fmt.Sprintf("condstore=%v", condstore), func(t *testing.T) {
			e, a := ownWritesEnv(t, func(st store.Store) store.Store { return st })
			if condstore {
				a.mustOK("ENABLE CONDSTORE")
			}
			if got := a.mustOK(`STORE 1 +FLAGS.SILENT (\Seen)`); len(got) != 0 && !condstore {
				t.Errorf("STORE .SILENT alone: %q, want nothing", got)
			}
			b := e.login()
			b.mustOK("SELECT INBOX")
			b.mustOK(`STORE 2 +FLAGS (\Deleted)`)

			got := a.mustOK(`STORE 2 +FLAGS.SILENT (\Seen)`)
			got = append(got, a.mustOK("NOOP")...)
			want := `* 2 FETCH (FLAGS (\Seen \Deleted))`
			if condstore {
				want = `* 2 FETCH (UID 2 FLAGS (\Seen \Deleted) MODSEQ (`
			}
			if !slices.ContainsFunc(got, func(l string) bool { return strings.HasPrefix(l, want) }) {
				t.Errorf("after another session's change: %q, want a line starting %q", got, want)
			}

			// A UID set past the view makes the session catch up before
			// the write, reporting the other session's change; the flags
			// after the write must follow in the STORE's response (with
			// their MODSEQ, RFC 7162 3.1.3), or the client is left with
			// those from before it.
			b.mustOK(`STORE 3 +FLAGS (\Flagged)`)
			got = a.mustOK(`UID STORE 1:* FLAGS.SILENT (\Seen)`)
			var last string
			for _, l := range got {
				if strings.HasPrefix(l, "* 3 FETCH") {
					last = l
				}
			}
			want = `* 3 FETCH (FLAGS (\Seen))`
			if condstore {
				want = `* 3 FETCH (UID 3 FLAGS (\Seen) MODSEQ (`
			}
			if !strings.HasPrefix(last, want) {
				t.Errorf("UID STORE 1:* .SILENT after another session's change: %q, want the last of message 3 to start %q", got, want)
			}
		})
	}
}
