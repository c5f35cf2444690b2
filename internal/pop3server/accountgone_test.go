package pop3server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/clienttest"
	"github.com/buzon-mail/buzon/internal/pop3server/pop3test"
	"github.com/buzon-mail/buzon/internal/store"
)

// TestAccountDeleted: an account deleted while its session is in
// TRANSACTION state (buzon user del) ends the session at its next
// command, whichever it is, with -ERR [SYS/PERM] rather than go on with
// a maildrop that no longer exists: no message is sent, no deletion or
// retrieval is applied (QUIT does not try to expunge), and another
// account's session goes on untouched.
func TestAccountDeleted(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"STAT", "LIST", "UIDL 1", "RETR 1", "TOP 1 0", "DELE 1", "RSET", "NOOP", "QUIT"} {
		t.Run(strings.Fields(cmd)[0], func(t *testing.T) {
			t.Parallel()
			st := &faultStore{Store: openStore(t, t.TempDir())}
			// A session records retrievals by itself when its client
			// is quiet for a moment (250 ms), as alice is while the
			// test deletes her account, however long that takes: what
			// counts is what is recorded once her next command has
			// reached the server.
			var deleted, cmdRead atomic.Bool
			var expunges, marks atomic.Int32
			st.expunge = func(do func() (store.ExpungeResult, error)) (store.ExpungeResult, error) {
				expunges.Add(1)
				return do()
			}
			st.markRetrieved = func(_ bool, do func() error) error {
				if cmdRead.Load() {
					marks.Add(1)
				}
				return do()
			}
			env := pop3test.Start(t, st, pop3test.Options{Listener: func(l net.Listener) net.Listener {
				return readsAfter{Listener: l, armed: &deleted, read: &cmdRead}
			}})
			env.Append(t, alice, []byte(msgHello), store.Flags{})
			env.Append(t, alice, []byte(msgDots), store.Flags{})
			env.Append(t, bob, []byte(msgLong), store.Flags{})

			bobs := login(t, env, bob)
			// Alice has retrieved and deleted messages, to be recorded
			// and expunged at QUIT, were her account still there.
			conn := loggedIn(t, env, "RETR 2", "DELE 2")
			r := bufio.NewReader(conn)
			readReplies(t, r, 4) // greeting, USER, PASS, RETR
			for line := ""; line != ".\r\n"; {
				var err error
				if line, err = r.ReadString('\n'); err != nil {
					t.Fatal(err)
				}
			}
			readReplies(t, r, 1) // DELE

			if err := env.Store.DeleteAccount(context.Background(), alice); err != nil {
				t.Fatal(err)
			}
			deleted.Store(true)
			if _, err := io.WriteString(conn, cmd+"\r\n"); err != nil {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(time.Minute)) // a hang guard, not an assertion
			if line, err := r.ReadString('\n'); err != nil || line != "-ERR [SYS/PERM] your account has been deleted\r\n" {
				t.Fatalf("%s after the account was deleted: %q, %v; want -ERR [SYS/PERM]", cmd, line, err)
			}
			if rest, err := io.ReadAll(r); err != nil || len(rest) > 0 {
				t.Errorf("after the -ERR: %q, %v; want the connection closed", rest, err)
			}

			// Bob's session goes on, and so does his mail.
			if n, size, err := bobs.Stat(); err != nil || n != 1 || size != int64(len(msgLong)) {
				t.Errorf("bob's STAT: %d %d, %v; want his one message", n, size, err)
			}
			if err := bobs.Quit(); err != nil {
				t.Errorf("bob's QUIT: %v", err)
			}
			env.Stop() // alice's session has ended
			if n := expunges.Load(); n != 0 {
				t.Errorf("%d expunges tried for the deleted account; want none", n)
			}
			if n := marks.Load(); n != 0 {
				t.Errorf("%d retrievals recorded for the deleted account after %s; want none", n, cmd)
			}
			if inbox := env.Inbox(t, bob); len(inbox) != 1 {
				t.Errorf("bob's INBOX holds %d messages; want 1", len(inbox))
			}
		})
	}
}

// readsAfter is a listener whose connections set read when the server
// reads from them once armed is set.
type readsAfter struct {
	net.Listener
	armed, read *atomic.Bool
}

func (l readsAfter) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return readsAfterConn{nc, l}, nil
}

type readsAfterConn struct {
	net.Conn
	l readsAfter
}

func (c readsAfterConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.l.armed.Load() {
		c.l.read.Store(true)
	}
	return n, err
}

// deafStore is a store whose watchers never fire, as when the deletion's
// notification from another process has not arrived yet.
type deafStore struct{ store.Store }

func (deafStore) Watch(int64) store.Watcher { return deafWatcher{} }

type deafWatcher struct{}

func (deafWatcher) C() <-chan struct{} { return nil }
func (deafWatcher) Close()             {}

// TestAccountDeletedUnnoticed: a command that reaches the store before
// the deletion's notification does learns of it from the store, and ends
// the session the same way.
func TestAccountDeletedUnnoticed(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"RETR 1", "TOP 1 0", "QUIT"} {
		t.Run(strings.Fields(cmd)[0], func(t *testing.T) {
			t.Parallel()
			env := pop3test.Start(t, deafStore{openStore(t, t.TempDir())}, pop3test.Options{})
			env.Append(t, alice, []byte(msgHello), store.Flags{})
			env.Append(t, alice, []byte(msgDots), store.Flags{})
			conn := loggedIn(t, env, "DELE 2")
			r := bufio.NewReader(conn)
			readReplies(t, r, 4) // greeting, USER, PASS, DELE
			if err := env.Store.DeleteAccount(context.Background(), alice); err != nil {
				t.Fatal(err)
			}
			if _, err := io.WriteString(conn, cmd+"\r\n"); err != nil {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(time.Minute)) // a hang guard, not an assertion
			if line, err := r.ReadString('\n'); err != nil || line != "-ERR [SYS/PERM] your account has been deleted\r\n" {
				t.Fatalf("%s after the account was deleted: %q, %v; want -ERR [SYS/PERM]", cmd, line, err)
			}
			if rest, err := io.ReadAll(r); err != nil || len(rest) > 0 {
				t.Errorf("after the -ERR: %q, %v; want the connection closed", rest, err)
			}
		})
	}
}

// TestPoplibAccountDeleted: Python's poplib, logged in when the account
// is deleted, hears the -ERR [SYS/PERM] at its next command, and then
// that the connection is closed.
func TestPoplibAccountDeleted(t *testing.T) {
	t.Parallel()
	python := clienttest.Need(t, "python3", "python3")
	env := pop3test.Start(t, openStore(t, t.TempDir()), pop3test.Options{})
	env.Append(t, alice, []byte(msgHello), store.Flags{})
	host, port := hostPort(t, env.Addr)
	cmd := exec.Command(python, filepath.Join("testdata", "poplib_client.py"), "deleted", host, port, alice, pop3test.Password, t.TempDir())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := bufio.NewReader(stdout)
	if line, err := out.ReadString('\n'); line != "logged in\n" {
		cmd.Wait()
		t.Fatalf("poplib: %q, %v\n%s", line, err, stderr.String())
	}
	if err := env.Store.DeleteAccount(context.Background(), alice); err != nil {
		t.Fatal(err)
	}
	io.WriteString(stdin, "go on\n")
	rest, _ := io.ReadAll(out)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("poplib: %v\n%s", err, stderr.String())
	}
	var res struct{ Errors []string }
	if err := json.Unmarshal(rest, &res); err != nil {
		t.Fatalf("poplib printed %q: %v", rest, err)
	}
	if len(res.Errors) != 2 || res.Errors[0] != "-ERR [SYS/PERM] your account has been deleted" || !strings.Contains(res.Errors[1], "EOF") {
		t.Errorf("poplib's errors: %q; want the -ERR [SYS/PERM], then the connection closed", res.Errors)
	}
}
