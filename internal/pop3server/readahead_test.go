package pop3server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/pop3client"
	"github.com/buzon-mail/buzon/internal/pop3server"
	"github.com/buzon-mail/buzon/internal/pop3server/pop3test"
	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/teststore"
)

// startBatch starts a server whose alice holds the messages of bodies,
// over a teststore.Batching, so that sessions read ahead whatever the
// store.
func startBatch(t *testing.T, bodies [][]byte) (*pop3test.Env, *teststore.Batching) {
	t.Helper()
	st := teststore.BatchBodies(openStore(t, t.TempDir()))
	env := pop3test.Start(t, st, pop3test.Options{})
	for _, b := range bodies {
		env.Append(t, alice, b, store.Flags{})
	}
	return env, st
}

// numbered returns n messages numbered from 1, each of a different size
// and with lines to dot-stuff.
func numbered(n int) [][]byte {
	var out [][]byte
	for i := 1; i <= n; i++ {
		out = append(out, fmt.Appendf(nil, "Subject: message %d\r\n\r\n%s.dot\r\nend\r\n", i, strings.Repeat("a line\r\n", i)))
	}
	return out
}

// retr retrieves message n and checks it is want.
func retr(t *testing.T, c *pop3client.Client, n int, want []byte) {
	t.Helper()
	var got bytes.Buffer
	if _, err := c.Retr(n, &got); err != nil {
		t.Fatalf("RETR %d: %v", n, err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("RETR %d: %d bytes that differ from the %d stored", n, got.Len(), len(want))
	}
}

// checkOpen checks how many bodies the server holds open. A NOOP first
// makes sure the commands before it are done.
func checkOpen(t *testing.T, c *pop3client.Client, st *teststore.Batching, want int32, when string) {
	t.Helper()
	if err := c.Noop(); err != nil {
		t.Fatal(err)
	}
	if n := st.Unclosed.Load(); n != want {
		t.Errorf("%s: %d bodies open, want %d", when, n, want)
	}
}

// checkClosed checks, after the sessions ended, that every body was closed
// once.
func checkClosed(t *testing.T, env *pop3test.Env, st *teststore.Batching) {
	t.Helper()
	env.Stop()
	if n, twice := st.Unclosed.Load(), st.ClosedTwice.Load(); n != 0 || twice != 0 {
		t.Errorf("after the session: %d bodies left open, %d closed twice", n, twice)
	}
}

// TestReadAhead: a client that downloads the maildrop in order gets every
// message as stored, with far fewer calls to the store than messages;
// messages too large to read ahead are opened alone.
func TestReadAhead(t *testing.T) {
	t.Parallel()
	bodies := numbered(40)
	bodies[9] = bigMessage(1<<20+1000, false) // left out by the store
	bodies[24] = bigMessage(3<<20, true)      // ends a window
	env, st := startBatch(t, bodies)
	c := login(t, env, alice)
	for n := 1; n <= len(bodies); n++ {
		if n == 30 {
			// TOP leaves the body in the window for a RETR.
			var top bytes.Buffer
			if _, err := c.Top(n, 0, &top); err != nil || top.Len() == 0 || !bytes.HasPrefix(bodies[n-1], top.Bytes()) {
				t.Fatalf("TOP %d = %q, %v", n, top.Bytes(), err)
			}
		}
		retr(t, c, n, bodies[n-1])
	}
	calls := st.OpenBodyCalls.Load() + st.OpenBodiesCalls.Load()
	t.Logf("%d messages: %d OpenBody calls, %d OpenBodies calls", len(bodies), st.OpenBodyCalls.Load(), st.OpenBodiesCalls.Load())
	if st.OpenBodiesCalls.Load() == 0 || calls > 10 {
		t.Errorf("%d messages took %d OpenBody and %d OpenBodies calls; want a few", len(bodies), st.OpenBodyCalls.Load(), st.OpenBodiesCalls.Load())
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	checkClosed(t, env, st)
	for i, m := range env.Inbox(t, alice) {
		if m.Flags.System&store.FlagSeen == 0 {
			t.Errorf("message %d not \\Seen after its RETR", i+1)
		}
	}
}

// TestReadAheadDele: DELE of a message read ahead lets go of its body, and
// the message is refused and expunged at QUIT as without read-ahead.
func TestReadAheadDele(t *testing.T) {
	t.Parallel()
	bodies := numbered(10)
	env, st := startBatch(t, bodies)
	c := login(t, env, alice)
	retr(t, c, 1, bodies[0])
	retr(t, c, 2, bodies[1]) // opens 2 to 10
	checkOpen(t, c, st, 8, "after RETR 2")
	if err := c.Dele(3); err != nil {
		t.Fatal(err)
	}
	checkOpen(t, c, st, 7, "after DELE 3")
	if _, err := c.Retr(3, io.Discard); err == nil || !strings.Contains(err.Error(), "already deleted") {
		t.Errorf("RETR of a message marked deleted: %v", err)
	}
	before := st.OpenBodyCalls.Load() + st.OpenBodiesCalls.Load()
	for n := 4; n <= 10; n++ {
		retr(t, c, n, bodies[n-1])
	}
	if after := st.OpenBodyCalls.Load() + st.OpenBodiesCalls.Load(); after != before {
		t.Errorf("RETR 4 to 10 called the store %d times; want none, all read ahead", after-before)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	checkClosed(t, env, st)
	if inbox := env.Inbox(t, alice); len(inbox) != 9 || inbox[2].UID != 4 {
		t.Errorf("INBOX after QUIT holds %d messages, want 9 without the third", len(inbox))
	}
}

// TestReadAheadRset: RSET drops the window; the messages it undeletes and
// the ones read ahead are retrieved as usual. A session that ends without
// QUIT closes its window too.
func TestReadAheadRset(t *testing.T) {
	t.Parallel()
	bodies := numbered(10)
	env, st := startBatch(t, bodies)
	c := login(t, env, alice)
	retr(t, c, 1, bodies[0])
	if err := c.Dele(2); err != nil {
		t.Fatal(err)
	}
	retr(t, c, 3, bodies[2]) // 2 is deleted: 3 comes next, and opens 3 to 10
	checkOpen(t, c, st, 7, "after RETR 3")
	if st.OpenBodiesCalls.Load() != 1 {
		t.Errorf("RETR 1, DELE 2, RETR 3 called OpenBodies %d times; want once", st.OpenBodiesCalls.Load())
	}
	if err := c.Rset(); err != nil {
		t.Fatal(err)
	}
	checkOpen(t, c, st, 0, "after RSET")
	for n := 2; n <= 6; n++ {
		retr(t, c, n, bodies[n-1])
	}
	checkOpen(t, c, st, 4, "after RETR 2 to 6") // 7 to 10 read ahead
	c.Close()
	checkClosed(t, env, st)
	if inbox := env.Inbox(t, alice); len(inbox) != 10 {
		t.Errorf("INBOX after RSET and a dropped connection holds %d messages, want 10", len(inbox))
	}
}

// TestReadAheadExpungedElsewhere: a message expunged through another
// session (IMAP) after it was read ahead is sent, as if the RETR had come
// a little earlier; one expunged before answers "no longer exists", as
// without read-ahead, and the session goes on.
func TestReadAheadExpungedElsewhere(t *testing.T) {
	t.Parallel()
	bodies := numbered(10)
	env, st := startBatch(t, bodies)
	expunge := func(uid store.UID) {
		env.WithInbox(t, alice, func(sess store.Session, inbox store.Mailbox) {
			if gone, err := sess.Expunge(context.Background(), inbox.ID, store.UIDSetOf(uid), false); err != nil || len(gone.UIDs) != 1 {
				t.Fatalf("expunge %d: %v, %v", uid, gone, err)
			}
		})
	}
	c := login(t, env, alice)
	expunge(8)
	retr(t, c, 1, bodies[0])
	retr(t, c, 2, bodies[1]) // opens 2 to 10, without 8
	expunge(3)
	for n := 3; n <= 10; n++ {
		if n == 8 {
			if _, err := c.Retr(n, io.Discard); err == nil || !strings.Contains(err.Error(), "no longer exists") {
				t.Errorf("RETR of a message expunged before the read-ahead: %v", err)
			}
			continue
		}
		retr(t, c, n, bodies[n-1])
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	checkClosed(t, env, st)
	inbox := env.Inbox(t, alice)
	if len(inbox) != 8 {
		t.Fatalf("INBOX holds %d messages, want 8", len(inbox))
	}
	for _, m := range inbox {
		if m.Flags.System&store.FlagSeen == 0 {
			t.Errorf("message UID %d not \\Seen after its RETR", m.UID)
		}
	}
}

// TestReadAheadOnlyInOrder: a client that picks messages here and there
// has nothing read ahead that it may never ask for.
func TestReadAheadOnlyInOrder(t *testing.T) {
	t.Parallel()
	bodies := numbered(20)
	env, st := startBatch(t, bodies)
	c := login(t, env, alice)
	for _, n := range []int{3, 7, 5, 1, 20, 12} {
		retr(t, c, n, bodies[n-1])
	}
	if _, err := c.Top(14, 2, io.Discard); err != nil {
		t.Fatal(err)
	}
	if n := st.OpenBodiesCalls.Load(); n != 0 {
		t.Errorf("messages retrieved out of order: %d OpenBodies calls, want none", n)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	checkClosed(t, env, st)
}

// TestReadAheadIdle: a session whose client goes quiet lets go of the
// bodies it read ahead (Config.ReadAheadIdle), and the next RETR in order
// reads them again. It runs alone (no t.Parallel): its checks that bodies
// were read ahead race the 50 ms idle limit, which a machine busy with the
// other tests could overrun between a RETR and the check.
func TestReadAheadIdle(t *testing.T) {
	bodies := numbered(10)
	st := teststore.BatchBodies(openStore(t, t.TempDir()))
	env := pop3test.Start(t, st, pop3test.Options{Config: func(cfg *pop3server.Config) {
		cfg.ReadAheadIdle = 50 * time.Millisecond
	}})
	for _, b := range bodies {
		env.Append(t, alice, b, store.Flags{})
	}
	c := login(t, env, alice)
	retr(t, c, 1, bodies[0])
	retr(t, c, 2, bodies[1])
	if n := st.Unclosed.Load(); n == 0 {
		t.Fatal("no bodies read ahead after RETR 1 and 2")
	}
	// The client sends nothing until the session has let go of them (the
	// bound is 600 times what the session is to wait: a server that never
	// lets go fails rather than hangs).
	for waited := time.Duration(0); st.Unclosed.Load() > 0; waited += 10 * time.Millisecond {
		if waited > 30*time.Second {
			t.Fatalf("%d bodies still open after the client was quiet for %v", st.Unclosed.Load(), waited)
		}
		time.Sleep(10 * time.Millisecond)
	}
	retr(t, c, 3, bodies[2])
	if n := st.Unclosed.Load(); n == 0 {
		t.Error("no bodies read ahead after RETR 3")
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	checkClosed(t, env, st)
}
