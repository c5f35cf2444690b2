package imapserver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

// viewClient is a client that keeps its view of the mailbox as a real
// client must: the count of messages from EXISTS and EXPUNGE.
type viewClient struct {
	nc     net.Conn
	br     *bufio.Reader
	n      int
	exists int
}

func dialView(addr string) (*viewClient, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &viewClient{nc: nc, br: bufio.NewReader(nc)}
	if _, err := c.line(); err != nil {
		return nil, err
	}
	return c, nil
}

// line reads a response line, literals included, and applies EXISTS and
// EXPUNGE to the view.
func (c *viewClient) line() (string, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(60 * time.Second))
	var b strings.Builder
	for {
		l, err := c.br.ReadString('\n')
		if err != nil {
			return "", err
		}
		b.WriteString(l)
		if n, ok := literalSize(l); ok {
			buf := make([]byte, n)
			if _, err := io.ReadFull(c.br, buf); err != nil {
				return "", err
			}
			b.Write(buf)
			continue
		}
		break
	}
	s := strings.TrimSuffix(b.String(), "\r\n")
	if f := strings.Fields(s); len(f) == 3 && f[0] == "*" {
		n, err := strconv.Atoi(f[1])
		switch {
		case err != nil:
		case f[2] == "EXISTS":
			c.exists = n
		case f[2] == "EXPUNGE":
			if n < 1 || n > c.exists {
				return "", fmt.Errorf("EXPUNGE %d with %d messages", n, c.exists)
			}
			c.exists--
		}
	}
	return s, nil
}

func (c *viewClient) cmd(s string) ([]string, error) {
	c.n++
	tag := fmt.Sprintf("v%d", c.n)
	if _, err := fmt.Fprintf(c.nc, "%s %s\r\n", tag, s); err != nil {
		return nil, err
	}
	var out []string
	for {
		l, err := c.line()
		if err != nil {
			return out, err
		}
		if strings.HasPrefix(l, tag+" ") {
			if !strings.HasPrefix(l, tag+" OK") {
				return out, fmt.Errorf("%s: %s", s, l)
			}
			return out, nil
		}
		out = append(out, l)
	}
}

// state fetches the flags of every message as "uid:flags" lines.
func (c *viewClient) state() ([]string, error) {
	out, err := c.cmd("FETCH 1:* (UID FLAGS)")
	if c.exists == 0 {
		out, err = nil, nil // "1:*" names nothing in an empty mailbox
	}
	var st []string
	for _, l := range out {
		if !strings.Contains(l, " FETCH ") {
			continue
		}
		i := strings.Index(l, "UID ")
		j := strings.Index(l, "FLAGS (")
		if i < 0 || j < 0 {
			return nil, fmt.Errorf("odd FETCH %q", l)
		}
		uid := strings.Fields(l[i+4:])[0]
		flags := strings.Fields(l[j+7 : strings.Index(l[j:], ")")+j])
		slices.Sort(flags)
		st = append(st, uid+":"+strings.Join(flags, " "))
	}
	slices.Sort(st)
	return st, err
}

// TestConcurrentSessions has several clients change flags, append and
// expunge in one mailbox while others IDLE; in the end every client's
// view and flags agree with the store.
func TestConcurrentSessions(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	for range 20 {
		e.deliver("INBOX", "Subject: x\n\nx\n")
	}
	const mutators, idlers, rounds = 3, 2, 40
	var wg sync.WaitGroup
	errs := make(chan error, mutators+idlers)
	var idleClients []*viewClient
	for range idlers {
		c, err := dialView(e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.nc.Close()
		for _, s := range []string{"LOGIN " + testUser + " " + testPass, "SELECT INBOX"} {
			if _, err := c.cmd(s); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := fmt.Fprintf(c.nc, "idle IDLE\r\n"); err != nil {
			t.Fatal(err)
		}
		if l, err := c.line(); err != nil || !strings.HasPrefix(l, "+") {
			t.Fatalf("IDLE: %q %v", l, err)
		}
		idleClients = append(idleClients, c)
	}
	// Idlers read their notifications as they come, until DONE's answer.
	idleDone := make(chan struct{}, idlers)
	for _, c := range idleClients {
		go func() {
			for {
				l, err := c.line()
				if err != nil {
					errs <- fmt.Errorf("idler: %w", err)
					idleDone <- struct{}{}
					return
				}
				if strings.HasPrefix(l, "idle ") {
					idleDone <- struct{}{}
					return
				}
			}
		}()
	}
	var mutClients []*viewClient
	for i := range mutators {
		c, err := dialView(e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.nc.Close()
		for _, s := range []string{"LOGIN " + testUser + " " + testPass, "SELECT INBOX"} {
			if _, err := c.cmd(s); err != nil {
				t.Fatal(err)
			}
		}
		mutClients = append(mutClients, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			flags := []string{`\Seen`, `\Flagged`, `\Answered`, `$Work`, `\Deleted`}
			for range rounds {
				var cmd string
				switch r := rng.IntN(10); {
				case c.exists == 0 || r == 0:
					cmd = "APPEND INBOX {13+}\r\nSubject: y\r\n\r\n"
				case r == 1:
					cmd = "EXPUNGE"
				case r == 2:
					cmd = "UID EXPUNGE 1:*"
				case r == 3:
					cmd = "SEARCH UNSEEN"
				default:
					op := []string{"+", "-", ""}[rng.IntN(3)]
					n := 1 + rng.IntN(c.exists)
					cmd = fmt.Sprintf("STORE %d:%d %sFLAGS (%s)", n, min(n+rng.IntN(3), c.exists), op, flags[rng.IntN(len(flags))])
					if rng.IntN(2) == 0 {
						cmd = fmt.Sprintf("UID STORE 1:* %sFLAGS.SILENT (%s)", op, flags[rng.IntN(len(flags))])
					}
				}
				if _, err := c.cmd(cmd); err != nil && !strings.Contains(err.Error(), "EXPUNGEISSUED") {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, c := range idleClients {
		if _, err := fmt.Fprintf(c.nc, "DONE\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	for range idleClients {
		select {
		case <-idleDone:
		case <-time.After(60 * time.Second):
			t.Fatal("IDLE did not end")
		}
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// The truth, from the store.
	sess := e.session()
	mb, err := sess.Mailbox(context.Background(), "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	err = sess.Messages(context.Background(), mb.ID, store.AllUIDs(), store.FieldFlags, func(m *store.MessageInfo) error {
		f := m.Flags.Names()
		slices.Sort(f)
		want = append(want, strconv.Itoa(int(m.UID))+":"+strings.Join(f, " "))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	for i, c := range append(mutClients, idleClients...) {
		if _, err := c.cmd("NOOP"); err != nil {
			t.Fatal(err)
		}
		if c.exists != len(want) {
			t.Errorf("client %d: view has %d messages, store %d", i, c.exists, len(want))
		}
		got, err := c.state()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("client %d: flags\n got  %v\n want %v", i, got, want)
		}
	}
}
