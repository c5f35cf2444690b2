package pop3server_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/auth"
	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/pop3client"
	"github.com/buzon-mail/buzon/internal/pop3server"
	"github.com/buzon-mail/buzon/internal/pop3server/pop3test"
	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/teststore"
)

// stale makes every session stale at once, so that any second login
// takes the maildrop over.
func stale(c *pop3server.Config) { c.POP3.StaleSession = config.Duration(time.Nanosecond) }

// readReplies reads n status lines and fails unless each starts with +OK.
func readReplies(t *testing.T, r *bufio.Reader, n int) {
	t.Helper()
	for range n {
		line, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "+OK") {
			t.Fatalf("got %q, %v; want +OK", line, err)
		}
	}
}

// TestTakeOverBlockedWriter: the usual phone case. The client lost its
// signal in the middle of a big RETR, so its session is stuck writing to
// a peer that reads nothing; its next login ends that session rather
// than hearing [IN-USE] for minutes, and the DELE the lost session had
// made is not applied.
func TestTakeOverBlockedWriter(t *testing.T) {
	t.Parallel()
	env := pop3test.Start(t, openStore(t, t.TempDir()), pop3test.Options{Config: stale})
	env.Append(t, alice, bigMessage(16<<20, false), store.Flags{})
	env.Append(t, alice, []byte(msgHello), store.Flags{})

	lost := loggedIn(t, env, "DELE 2", "RETR 1")
	r := bufio.NewReader(lost)
	readReplies(t, r, 5) // greeting, USER, PASS, DELE, RETR; the body is never read

	c := login(t, env, alice)
	count, _, err := c.Stat()
	if err != nil || count != 2 {
		t.Fatalf("STAT after the takeover = %d, %v; want both messages", count, err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	// The rest of the body, then the end of the connection (EOF, or a
	// reset); the deadline is a hang guard, not an assertion.
	lost.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := io.Copy(io.Discard, r); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Error("the session taken over kept its connection")
	}
	if inbox := env.Inbox(t, alice); len(inbox) != 2 {
		t.Errorf("INBOX holds %d messages; the lost session's DELE must not be applied", len(inbox))
	}
}

// TestTakeOverWaitsForQuit: a session that is applying its QUIT is not
// ended; the new login waits for it and then sees its deletions done.
func TestTakeOverWaitsForQuit(t *testing.T) {
	t.Parallel()
	st := &faultStore{Store: openStore(t, t.TempDir())}
	entered, proceed := make(chan struct{}), make(chan struct{})
	st.expunge = func(do func() (store.ExpungeResult, error)) (store.ExpungeResult, error) {
		close(entered)
		<-proceed
		return do()
	}
	env := pop3test.Start(t, st, pop3test.Options{Config: stale})
	fill(t, env, [][]byte{[]byte(msgHello), []byte(msgLong)})

	quitting := loggedIn(t, env, "DELE 1", "QUIT")
	<-entered // the replies wait in the server's buffer: QUIT was pipelined

	type result struct {
		count int
		err   error
	}
	second := make(chan result, 1)
	go func() {
		c, err := pop3client.Dial(context.Background(), env.Addr)
		if err != nil {
			second <- result{err: err}
			return
		}
		defer c.Close()
		if err := c.User(alice, pop3test.Password); err != nil {
			second <- result{err: err}
			return
		}
		count, _, err := c.Stat()
		second <- result{count, err}
		c.Quit()
	}()
	close(proceed)
	// Greeting, USER, PASS, DELE, and QUIT: the deletions applied.
	readReplies(t, bufio.NewReader(quitting), 5)
	res := <-second
	if res.err != nil || res.count != 1 {
		t.Errorf("second login: %d messages, %v; want 1, after the first session's QUIT", res.count, res.err)
	}
}

// TestTakeOverSessionLimit: a stale session that fills the account's
// session limit is ended for a new login as one holding the lock is.
func TestTakeOverSessionLimit(t *testing.T) {
	t.Parallel()
	env := pop3test.Start(t, openStore(t, t.TempDir()), pop3test.Options{Config: func(c *pop3server.Config) {
		stale(c)
		c.Sessions = auth.NewSessionLimiter(1)
	}})
	fill(t, env, [][]byte{[]byte(msgHello)})
	first := login(t, env, alice)
	if err := first.Dele(1); err != nil {
		t.Fatal(err)
	}
	second := login(t, env, alice)
	if count, _, err := second.Stat(); err != nil || count != 1 {
		t.Errorf("STAT after the takeover = %d, %v; want 1", count, err)
	}
	if err := first.Quit(); err == nil {
		t.Error("the session taken over answered QUIT")
	}
}

// TestNoTakeOver: a session that is not stale, or any session when
// pop3.stale_session is 0, keeps the maildrop, and a second login hears
// [IN-USE] (RFC 2449 8.1.1).
func TestNoTakeOver(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		stale time.Duration
	}{
		{"live session", time.Hour},
		{"takeover off", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := pop3test.Start(t, openStore(t, t.TempDir()), pop3test.Options{Config: func(c *pop3server.Config) {
				c.POP3.StaleSession = config.Duration(tc.stale)
			}})
			fill(t, env, [][]byte{[]byte(msgHello)})
			first := login(t, env, alice)
			c, err := pop3client.Dial(context.Background(), env.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = c.User(alice, pop3test.Password)
			var e *pop3client.Error
			if !errors.As(err, &e) || e.Code != "IN-USE" {
				t.Errorf("second login: %v; want [IN-USE]", err)
			}
			if err := first.Noop(); err != nil {
				t.Errorf("the first session was ended: %v", err)
			}
		})
	}
}

// TestTakeOverAcrossNodes: two nodes on one shared store (PostgreSQL). A
// login on node B ends a silent session holding the maildrop on node A,
// as it would one of its own, and the lost session's DELE is not applied;
// a live session on node A keeps the maildrop, and the login hears
// [IN-USE]. Node A's pop3.stale_session decides, as it is A's session.
func TestTakeOverAcrossNodes(t *testing.T) {
	t.Parallel()
	if teststore.Backend() != "postgres" {
		t.Skip("needs a store that several nodes share: BUZON_TEST_STORE=postgres")
	}
	for _, tc := range []struct {
		name      string
		staleOnA  time.Duration
		takenOver bool
	}{
		{"silent session", time.Nanosecond, true},
		{"live session", time.Hour, false},
		{"takeover off on A", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			a := pop3test.Start(t, openStore(t, dir), pop3test.Options{Config: func(c *pop3server.Config) {
				c.POP3.StaleSession = config.Duration(tc.staleOnA)
			}})
			b := pop3test.Start(t, openStore(t, dir), pop3test.Options{Config: stale})
			fill(t, a, [][]byte{[]byte(msgHello), []byte(msgLong)})

			first := login(t, a, alice)
			if err := first.Dele(1); err != nil {
				t.Fatal(err)
			}
			c, err := pop3client.Dial(context.Background(), b.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = c.User(alice, pop3test.Password)
			if !tc.takenOver {
				var e *pop3client.Error
				if !errors.As(err, &e) || e.Code != "IN-USE" {
					t.Errorf("login on node B: %v; want [IN-USE]", err)
				}
				if err := first.Noop(); err != nil {
					t.Errorf("node A's session was ended: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("login on node B: %v; want the stale session on node A taken over", err)
			}
			if count, _, err := c.Stat(); err != nil || count != 2 {
				t.Errorf("STAT on node B = %d, %v; want both messages: node A's DELE is not applied", count, err)
			}
			if err := first.Noop(); err == nil {
				t.Error("node A's session taken over still answers")
			}
		})
	}
}
