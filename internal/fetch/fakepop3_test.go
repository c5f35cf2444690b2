package fetch

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakePOP3 is a small POP3 server (RFC 1939) for what buzon's own server
// never does: lack UIDL, or never answer.
type fakePOP3 struct {
	addr string
	// noUIDL makes UIDL fail and leaves it out of CAPA.
	noUIDL bool
	// uidl, when set, gives a message's UIDL, which a broken server may
	// give to more than one message.
	uidl func(msg []byte) string
	// garbledUIDL ends the UIDL listing with a line our client cannot
	// read (no message number), which breaks its session.
	garbledUIDL bool
	// noTOP makes TOP fail and leaves it out of CAPA.
	noTOP bool
	// silent accepts connections and never says anything.
	silent bool
	// deleErr refuses every DELE with -ERR; guarded by mu.
	deleErr bool
	// noStuff sends lines starting with "." as they are, without the
	// dot-stuffing RFC 1939 3 asks for.
	noStuff bool
	// listSize, when set, gives the size LIST announces for a message.
	listSize func(msg []byte) int
	// dropRetr, when set, makes the RETR of the messages it picks send
	// half the message and close the connection.
	dropRetr func(msg []byte) bool

	// bareLF sends messages with LF line endings, as a server keeping
	// them so may.
	bareLF bool
	// pass, when set, is the reply to PASS.
	pass string
	// oauth, when set, offers its SASL mechanism (RFC 5034).
	oauth *fakeOAuth

	mu sync.Mutex
	// quit says how QUIT goes wrong: "drop" closes the connection
	// without a reply or a deletion, "reply lost" makes the deletions and
	// closes it without a reply. Guarded by mu.
	quit string
	// drop is the maildrop, CRLF line endings; guarded by mu.
	drop [][]byte
}

func startFakePOP3(t *testing.T, f *fakePOP3) *fakePOP3 {
	t.Helper()
	f.addr = serveFake(t, func(c net.Conn) {
		if !f.silent {
			f.serve(c)
			return
		}
		c.Read(make([]byte, 1))
	})
	return f
}

// serveFake runs a fake server on a loopback port until the test ends,
// serve handling each connection (which is closed after), and returns
// its address. The end of the test closes the listener and every
// connection still open, and waits for the handlers.
func serveFake(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		open  []net.Conn // guarded by mu
		conns sync.WaitGroup
	)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			conns.Add(1)
			go func() {
				defer conns.Done()
				defer c.Close()
				serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		conns.Wait()
	})
	return l.Addr().String()
}

func (f *fakePOP3) add(msgs ...[]byte) {
	f.mu.Lock()
	f.drop = append(f.drop, msgs...)
	f.mu.Unlock()
}

func (f *fakePOP3) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.drop)
}

func (f *fakePOP3) serve(c net.Conn) {
	br := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	reply := func(format string, args ...any) {
		fmt.Fprintf(w, format+"\r\n", args...)
		w.Flush()
	}
	f.mu.Lock()
	drop := append([][]byte(nil), f.drop...)
	deleErr, quit := f.deleErr, f.quit
	f.mu.Unlock()
	deleted := map[int]bool{}
	reply("+OK fake POP3")
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			reply("-ERR empty")
			continue
		}
		n := 0
		if len(fields) > 1 {
			n, _ = strconv.Atoi(fields[1])
		}
		valid := n >= 1 && n <= len(drop) && !deleted[n]
		multi := func(body []byte) {
			w.WriteString("+OK\r\n")
			if len(body) > 0 && !bytes.HasSuffix(body, []byte("\r\n")) {
				// RFC 1939 3: the "." goes on a line of its own.
				body = append(body[:len(body):len(body)], "\r\n"...)
			}
			for _, l := range bytes.SplitAfter(body, []byte("\r\n")) {
				if len(l) > 0 && l[0] == '.' && !f.noStuff {
					w.WriteByte('.')
				}
				if f.bareLF {
					l = lf(l)
				}
				w.Write(l)
			}
			w.WriteString(".\r\n")
			w.Flush()
		}
		switch strings.ToUpper(fields[0]) {
		case "CAPA":
			caps := "USER\r\n"
			if !f.noTOP {
				caps += "TOP\r\n"
			}
			if !f.noUIDL {
				caps += "UIDL\r\n"
			}
			if f.oauth != nil {
				caps += "SASL " + f.oauth.mech + "\r\n"
			}
			multi([]byte(caps))
		case "AUTH":
			// RFC 5034 4: the initial response on the line, or after an
			// empty challenge; a refusal is a challenge holding the error,
			// which the client answers ("*" cancels).
			if f.oauth == nil || len(fields) < 2 || !strings.EqualFold(fields[1], f.oauth.mech) {
				reply("-ERR unknown mechanism")
				continue
			}
			resp := ""
			if len(fields) > 2 {
				resp = fields[2]
			} else {
				reply("+ ")
				if resp, err = br.ReadString('\n'); err != nil {
					return
				}
			}
			challenge := f.oauth.check(resp)
			if challenge == "" {
				reply("+OK logged in")
				continue
			}
			reply("+ %s", challenge)
			answer, err := br.ReadString('\n')
			if err != nil {
				return
			}
			f.oauth.answered(answer)
			reply("-ERR [AUTH] token refused")
		case "PASS":
			if f.pass != "" {
				reply("%s", f.pass)
				continue
			}
			reply("+OK")
		case "USER", "NOOP":
			reply("+OK")
		case "LIST":
			var b bytes.Buffer
			for i, m := range drop {
				switch {
				case deleted[i+1]:
				case f.listSize != nil:
					fmt.Fprintf(&b, "%d %d\r\n", i+1, f.listSize(m))
				default:
					fmt.Fprintf(&b, "%d %d\r\n", i+1, len(m))
				}
			}
			multi(b.Bytes())
		case "UIDL":
			id := func(m []byte) string {
				if f.uidl != nil {
					return f.uidl(m)
				}
				return fmt.Sprintf("u%x", sha256.Sum256(m))
			}
			switch {
			case f.noUIDL:
				reply("-ERR no UIDL here")
			case len(fields) > 1 && !valid:
				reply("-ERR no such message")
			case len(fields) > 1:
				reply("+OK %d %s", n, id(drop[n-1]))
			default:
				var b bytes.Buffer
				for i, m := range drop {
					if !deleted[i+1] {
						fmt.Fprintf(&b, "%d %s\r\n", i+1, id(m))
					}
				}
				if f.garbledUIDL {
					b.WriteString("what?\r\n")
				}
				multi(b.Bytes())
			}
		case "TOP":
			if f.noTOP {
				reply("-ERR no TOP here")
				continue
			}
			if !valid {
				reply("-ERR no such message")
				continue
			}
			m := drop[n-1]
			multi(m[:bytes.Index(m, []byte("\r\n\r\n"))+4])
		case "RETR":
			if !valid {
				reply("-ERR no such message")
				continue
			}
			if f.dropRetr != nil && f.dropRetr(drop[n-1]) {
				m := drop[n-1]
				w.WriteString("+OK\r\n")
				w.Write(m[:len(m)/2])
				w.Flush()
				return
			}
			multi(drop[n-1])
		case "DELE":
			if !valid || deleErr {
				reply("-ERR no such message")
				continue
			}
			deleted[n] = true
			reply("+OK")
		case "QUIT":
			if quit == "drop" {
				return
			}
			f.mu.Lock()
			// Remove what was deleted, by identity: another session may
			// have changed the maildrop meanwhile.
			var keep [][]byte
			for _, m := range f.drop {
				gone := false
				for i := range deleted {
					if bytes.Equal(drop[i-1], m) {
						gone = true
					}
				}
				if !gone {
					keep = append(keep, m)
				}
			}
			f.drop = keep
			f.mu.Unlock()
			if quit != "reply lost" {
				reply("+OK bye")
			}
			return
		default:
			reply("-ERR unknown command")
		}
	}
}

// fakeAccount is a fetch account for a fake server, without TLS.
func fakeAccount(t *testing.T, f *fakePOP3) Account {
	host, port := splitAddr(t, f.addr)
	return Account{Name: "fake", Protocol: ProtoPOP3, Host: host, Port: port, TLS: TLSNone, AllowInsecure: true,
		User: "u", Password: "p", Mode: ModeDelete, Maildir: t.TempDir() + "/Maildir"}
}

// TestPOP3WithoutUIDL: only delete mode works; messages are recognised by
// their header hash, so a crash between storing and QUIT does not
// duplicate them, and two identical messages are both stored.
func TestPOP3WithoutUIDL(t *testing.T) {
	f := startFakePOP3(t, &fakePOP3{noUIDL: true})
	f.add(testMessages(1, 4)...)
	f.add(testMessage(4, 0)) // the same message twice
	a := fakeAccount(t, f)
	a.Mode = ModeKeep
	if s := fetchOnce(t, testConfig(t, a), testOptions(t))[0]; s.Err == nil || !strings.Contains(s.Err.Error(), "UIDL") {
		t.Errorf("keep mode without UIDL: %v", s.Err)
	}
	a.Mode = ModeDelete
	cfg := testConfig(t, a)
	crashFetch(t, cfg, testOptions(t), "quit", 1)
	if f.count() != 5 {
		t.Fatalf("the crashed run deleted messages: %d left", f.count())
	}
	s := mustFetch(t, cfg, testOptions(t))
	if s.Fetched != 0 || s.Deleted != 5 || f.count() != 0 {
		t.Errorf("rerun: %v, %d left", s, f.count())
	}
	msgs := maildirMessages(t, a.Maildir)
	if got := strings.Join(subjects(msgs), ","); got != "message 1,message 2,message 3,message 4,message 4" {
		t.Errorf("maildir holds %s", got)
	}
}

// TestPOP3DuplicateUIDL: a server that gives several messages one UIDL
// (against RFC 1939 7) must not make the client take them for one message
// and delete one it never fetched. Messages 1 and 2 share a UIDL, and so
// do the two copies of message 4.
func TestPOP3DuplicateUIDL(t *testing.T) {
	uidl := func(m []byte) string {
		switch s := subjects([][]byte{m})[0]; s {
		case "message 1", "message 2":
			return "dup"
		default:
			return strings.ReplaceAll(s, " ", "-")
		}
	}
	drop := append(testMessages(1, 4), testMessage(4, 0))
	all := []string{"message 1", "message 2", "message 3", "message 4", "message 4"}
	t.Run("delete", func(t *testing.T) {
		f := startFakePOP3(t, &fakePOP3{uidl: uidl})
		f.add(drop...)
		a := fakeAccount(t, f)
		s := mustFetch(t, testConfig(t, a), testOptions(t))
		if got := subjects(maildirMessages(t, a.Maildir)); !slices.Equal(got, all) {
			t.Errorf("maildir holds %v, want %v (run %v)", got, all, s)
		}
		if s.Fetched != 5 || s.Deleted != 5 || f.count() != 0 {
			t.Errorf("run: %v, %d left", s, f.count())
		}
	})
	t.Run("crash", func(t *testing.T) {
		// Stored and recorded, not deleted: the rerun knows every
		// message again and stores none twice.
		f := startFakePOP3(t, &fakePOP3{uidl: uidl})
		f.add(drop...)
		a := fakeAccount(t, f)
		cfg := testConfig(t, a)
		crashFetch(t, cfg, testOptions(t), "quit", 1)
		s := mustFetch(t, cfg, testOptions(t))
		if got := subjects(maildirMessages(t, a.Maildir)); !slices.Equal(got, all) {
			t.Errorf("maildir holds %v, want %v", got, all)
		}
		if s.Fetched != 0 || s.Deleted != 5 || f.count() != 0 {
			t.Errorf("rerun: %v, %d left", s, f.count())
		}
	})
	t.Run("keep", func(t *testing.T) {
		f := startFakePOP3(t, &fakePOP3{uidl: uidl})
		f.add(drop...)
		a := fakeAccount(t, f)
		a.Mode = ModeKeep
		cfg := testConfig(t, a)
		if s := mustFetch(t, cfg, testOptions(t)); s.Fetched != 5 {
			t.Errorf("first run: %v", s)
		}
		if s := mustFetch(t, cfg, testOptions(t)); s.Fetched != 0 || s.AlreadyFetched != 5 {
			t.Errorf("second run: %v", s)
		}
		if got := subjects(maildirMessages(t, a.Maildir)); !slices.Equal(got, all) {
			t.Errorf("maildir holds %v, want %v", got, all)
		}
		if f.count() != 5 {
			t.Errorf("%d left on the server, want 5", f.count())
		}
	})
	t.Run("no TOP", func(t *testing.T) {
		// Nothing tells the messages of a shared UIDL apart: they stay
		// on the server, and the others are fetched.
		f := startFakePOP3(t, &fakePOP3{uidl: uidl, noTOP: true})
		f.add(drop...)
		a := fakeAccount(t, f)
		s := mustFetch(t, testConfig(t, a), testOptions(t))
		if got, want := subjects(maildirMessages(t, a.Maildir)), []string{"message 3"}; !slices.Equal(got, want) {
			t.Errorf("maildir holds %v, want %v", got, want)
		}
		if s.Fetched != 1 || s.Deleted != 1 || s.Failed != 4 || f.count() != 4 {
			t.Errorf("run: %v, %d left", s, f.count())
		}
	})
}

// TestPOP3UIDLWithSpaces: ids with spaces (against RFC 1939 7) are taken
// whole, so two that share their first word are two messages, not one
// shared id that, without TOP to tell them apart, leaves both unfetched.
func TestPOP3UIDLWithSpaces(t *testing.T) {
	f := startFakePOP3(t, &fakePOP3{noTOP: true, uidl: func(m []byte) string {
		return "20240101 000" + strings.TrimPrefix(subjects([][]byte{m})[0], "message ")
	}})
	f.add(testMessages(1, 3)...)
	a := fakeAccount(t, f)
	a.Mode = ModeKeep
	cfg := testConfig(t, a)
	if s := mustFetch(t, cfg, testOptions(t)); s.Fetched != 3 {
		t.Errorf("first run: %v", s)
	}
	checkMaildir(t, a.Maildir, [2]int{1, 3})
	if s := mustFetch(t, cfg, testOptions(t)); s.Fetched != 0 || s.AlreadyFetched != 3 {
		t.Errorf("second run: %v", s)
	}
}

// TestPOP3DeleRefused: a DELE the server refuses is an error of the run,
// so that a maildrop that never empties is seen, and is tried again by
// the next run.
func TestPOP3DeleRefused(t *testing.T) {
	f := startFakePOP3(t, &fakePOP3{deleErr: true})
	f.add(testMessages(1, 2)...)
	a := fakeAccount(t, f)
	cfg := testConfig(t, a)
	if s := mustFetch(t, cfg, testOptions(t)); s.Fetched != 2 || s.Deleted != 0 || s.Failed != 2 {
		t.Errorf("first run: %v", s)
	}
	f.mu.Lock()
	f.deleErr = false
	f.mu.Unlock()
	if s := mustFetch(t, cfg, testOptions(t)); s.Fetched != 0 || s.Deleted != 2 || s.Failed != 0 || f.count() != 0 {
		t.Errorf("second run: %v, %d left", s, f.count())
	}
	checkMaildir(t, a.Maildir, [2]int{1, 2})
}

// dotMessage is message i with a line holding only "." in its body,
// which a POP3 server must send as ".." (RFC 1939 3).
func dotMessage(i int) []byte {
	return fmt.Appendf(nil, "From: Bob <bob@example.net>\r\nSubject: message %d\r\nMessage-ID: <%d.dot@example.net>\r\n\r\n"+
		"The next line holds only a dot.\r\n.\r\nAnd this is the rest of the message, which a server that\r\n"+
		"does not dot-stuff the line above never lets a client see.\r\n", i, i)
}

// beforeDot is the size of the part of a dotMessage before its "." line:
// what a client reads of it from a server that does not dot-stuff.
func beforeDot(m []byte) int {
	if i := bytes.Index(m, []byte("\r\n.\r\n")); i >= 0 {
		return i + 2
	}
	return len(m)
}

// TestPOP3CutShort: a server that does not dot-stuff a line holding only
// "." ends the message there for the client and sends the rest, which the
// client reads as the next reply. The copy cut short is neither stored nor
// deleted, and the rest of the maildrop is fetched: whether the copy is
// seen to be shorter than LIST announced, or, with LIST announcing what
// was read, the reply after it is seen to be out of step (the next RETR,
// or the NOOP after the last message).
func TestPOP3CutShort(t *testing.T) {
	for _, tc := range []struct {
		name     string
		listSize func([]byte) int
		dotAt    int
	}{
		{"shorter than LIST", nil, 2},
		{"next reply out of step", beforeDot, 2},
		{"last message", beforeDot, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFakePOP3(t, &fakePOP3{noStuff: true, listSize: tc.listSize})
			for i := 1; i <= 4; i++ {
				if i == tc.dotAt {
					f.add(dotMessage(i))
				} else {
					f.add(testMessage(i, 0))
				}
			}
			a := fakeAccount(t, f)
			cfg := testConfig(t, a)
			var others [][2]int
			for i := 1; i <= 4; i++ {
				if i != tc.dotAt {
					others = append(others, [2]int{i, i})
				}
			}
			for run := 1; run <= 2; run++ {
				s := mustFetch(t, cfg, testOptions(t))
				if want := map[int]int{1: 3, 2: 0}[run]; s.Fetched != want || s.Deleted != want || s.Failed != 1 {
					t.Errorf("run %d: %v, want %d fetched and deleted, 1 error", run, s, want)
				}
				if f.count() != 1 {
					t.Fatalf("run %d: %d messages left on the server, want the one cut short", run, f.count())
				}
				checkMaildir(t, a.Maildir, others...)
			}
		})
	}
}

// TestPOP3BrokenRetr: a message whose RETR drops the connection every
// time stays on the server; a new session goes on with the messages after
// it, and the deletions are made.
func TestPOP3BrokenRetr(t *testing.T) {
	f := startFakePOP3(t, &fakePOP3{dropRetr: func(m []byte) bool { return bytes.Contains(m, []byte("Subject: message 2\r\n")) }})
	f.add(testMessages(1, 4)...)
	a := fakeAccount(t, f)
	cfg := testConfig(t, a)
	for run := 1; run <= 2; run++ {
		s := mustFetch(t, cfg, testOptions(t))
		if want := map[int]int{1: 3, 2: 0}[run]; s.Fetched != want || s.Deleted != want || s.Failed != 1 {
			t.Errorf("run %d: %v, want %d fetched and deleted, 1 error", run, s, want)
		}
		if f.count() != 1 {
			t.Errorf("run %d: %d messages left on the server, want 1", run, f.count())
		}
		checkMaildir(t, a.Maildir, [2]int{1, 1}, [2]int{3, 4})
	}

	// A server that drops every RETR is given up after a few sessions.
	f = startFakePOP3(t, &fakePOP3{dropRetr: func([]byte) bool { return true }})
	f.add(testMessages(1, 9)...)
	s := fetchOnce(t, testConfig(t, fakeAccount(t, f)), testOptions(t))[0]
	if s.Err == nil || s.Failed != maxReconnects+1 || s.Fetched != 0 || f.count() != 9 {
		t.Errorf("every RETR dropped: %v, %d left", s, f.count())
	}
}

func TestCutShort(t *testing.T) {
	for _, tc := range []struct {
		got, announced int64
		short          bool
	}{
		{92, 92, false},
		{48, 92, true},         // ended at a "." line not dot-stuffed
		{100, 92, false},       // LIST counted LF line ends
		{94, 92, false},        // a final CRLF the message lacked
		{90, 92, false},        // 2 octets
		{85, 92, false},        // 2 octets and 1/16
		{84, 92, true},         // more
		{96000, 100000, false}, // a header left out
		{90000, 100000, true},
		{0, 0, false},
	} {
		if got := cutShort(tc.got, tc.announced); got != tc.short {
			t.Errorf("cutShort(%d, %d) = %v", tc.got, tc.announced, got)
		}
	}
}

// TestSourceChanged: an account that now reads another server account
// (another user here) sets the old state aside and starts afresh, rather
// than take the new maildrop's messages for the old one's where their
// UIDLs meet: in delete mode it would delete them without downloading
// them.
func TestSourceChanged(t *testing.T) {
	// Messages 1-3 and 4-6 have the ids "id-1" to "id-3".
	uidl := func(m []byte) string {
		var i int
		fmt.Sscanf(subjects([][]byte{m})[0], "message %d", &i)
		return fmt.Sprintf("id-%d", (i-1)%3+1)
	}
	f := startFakePOP3(t, &fakePOP3{uidl: uidl})
	f.add(testMessages(1, 3)...)
	a := fakeAccount(t, f)
	a.Mode, a.User = ModeKeep, "old"
	var logs logBuffer
	opts := testOptions(t)
	opts.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(&logs, testLogWriter{t}), nil))
	cfg := testConfig(t, a)
	if s := mustFetch(t, cfg, opts); s.Fetched != 3 {
		t.Fatalf("first run: %v", s)
	}
	f.mu.Lock()
	f.drop = testMessages(4, 6)
	f.mu.Unlock()
	cfg.Accounts[0].Mode, cfg.Accounts[0].User = ModeDelete, "new"
	if s := mustFetch(t, cfg, opts); s.Fetched != 3 || s.Deleted != 3 {
		t.Errorf("after the change: %v", s)
	}
	checkMaildir(t, a.Maildir, [2]int{1, 6})
	if logs.count("set aside") != 1 {
		t.Errorf("the log does not say the state was set aside")
	}
	if old, _ := filepath.Glob(filepath.Join(cfg.StateDir, "fake.state.*.old")); len(old) != 1 {
		t.Errorf("files set aside: %v", old)
	}
}

// TestTimeout: a server that accepts the connection and never answers
// is reported as not answering, after the account's timeout.
func TestTimeout(t *testing.T) {
	f := startFakePOP3(t, &fakePOP3{silent: true})
	a := fakeAccount(t, f)
	cfg := testConfig(t, a)
	cfg.Accounts[0].Timeout = 1e9 // 1s, the least allowed
	s := fetchOnce(t, cfg, testOptions(t))[0]
	if !errors.Is(s.Err, ErrTimeout) || !strings.Contains(s.Err.Error(), f.addr) {
		t.Errorf("error %v, want ErrTimeout naming the server", s.Err)
	}
}

// TestConnectRefused: nothing listening is ErrConnect.
func TestConnectRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	a := fakeAccount(t, &fakePOP3{addr: addr})
	s := fetchOnce(t, testConfig(t, a), testOptions(t))[0]
	if !errors.Is(s.Err, ErrConnect) {
		t.Errorf("error %v, want ErrConnect", s.Err)
	}
}

// TestPOP3QuitFails: deletions take effect at QUIT (RFC 1939 6), so a QUIT
// without a reply may or may not have deleted. The run says so, and the
// next run finds out from the maildrop: it deletes what is still there and
// forgets what went, storing nothing twice.
func TestPOP3QuitFails(t *testing.T) {
	for _, quit := range []string{"drop", "reply lost"} {
		t.Run(quit, func(t *testing.T) {
			f := startFakePOP3(t, &fakePOP3{quit: quit})
			f.add(testMessages(1, 3)...)
			a := fakeAccount(t, f)
			cfg := testConfig(t, a)
			s := fetchOnce(t, cfg, testOptions(t))[0]
			if s.Err == nil || !strings.Contains(s.Err.Error(), "QUIT") || s.Fetched != 3 {
				t.Errorf("run with QUIT failing: %v", s)
			}
			f.mu.Lock()
			f.quit = ""
			f.mu.Unlock()
			f.add(testMessage(4, 0))
			s = mustFetch(t, cfg, testOptions(t))
			if want := map[string]int{"drop": 4, "reply lost": 1}[quit]; s.Fetched != 1 || s.Deleted != want || f.count() != 0 {
				t.Errorf("next run: %v, want 1 fetched, %d deleted; %d left", s, want, f.count())
			}
			checkMaildir(t, a.Maildir, [2]int{1, 4})
			st, err := openState(cfg.StateDir, a.Name, "")
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if n := st.messages(); n != 0 {
				t.Errorf("the state still knows %d messages", n)
			}
		})
	}
}

// TestPOP3OddMessages: what servers send of odd messages is stored as it
// was: lines starting with dots (dot-stuffed, RFC 1939 3), a line of 200
// kB, a last line without its line break (the server adds one before the
// "."), a body sent with bare LF line ends.
func TestPOP3OddMessages(t *testing.T) {
	long := testMessage(2, 0)
	long = append(long, bytes.Repeat([]byte("x"), 200_000)...)
	long = append(long, "\r\n"...)
	noEOL := append(testMessage(3, 0), "no line break at the end"...)
	dots := append(testMessage(4, 0), ".\r\n..\r\n...\r\n. \r\n.end\r\n"...)
	for _, bareLF := range []bool{false, true} {
		t.Run(fmt.Sprintf("bare LF %v", bareLF), func(t *testing.T) {
			f := startFakePOP3(t, &fakePOP3{bareLF: bareLF})
			f.add(testMessage(1, 0), long, noEOL, dots)
			a := fakeAccount(t, f)
			if s := mustFetch(t, testConfig(t, a), testOptions(t)); s.Fetched != 4 || s.Deleted != 4 || s.Failed != 0 {
				t.Errorf("run: %v", s)
			}
			got := map[string][]byte{}
			for _, m := range maildirMessages(t, a.Maildir) {
				got[subjects([][]byte{m})[0]] = m
			}
			for i, want := range [][]byte{testMessage(1, 0), long, append(noEOL, "\r\n"...), dots} {
				subject := fmt.Sprintf("message %d", i+1)
				if !bytes.Equal(got[subject], lf(want)) {
					t.Errorf("%s stored as %q…, want %q…", subject, trim(got[subject]), trim(lf(want)))
				}
			}
		})
	}
}

// trim shortens a message for an error.
func trim(b []byte) []byte { return b[:min(len(b), 300)] }

// TestPOP3LoginRefused: a refusal with [SYS/TEMP] (RFC 3206 4) is a
// failure for now, not a wrong password; one with [AUTH], or with no code,
// is ErrLogin.
func TestPOP3LoginRefused(t *testing.T) {
	for _, tc := range []struct {
		reply string
		login bool
		says  string
	}{
		{"-ERR [SYS/TEMP] the mail store is down", false, "login refused for now"},
		{"-ERR [AUTH] wrong password", true, "wrong password"},
		{"-ERR no", true, `refused user "u"`},
	} {
		t.Run(tc.reply, func(t *testing.T) {
			f := startFakePOP3(t, &fakePOP3{pass: tc.reply})
			f.add(testMessage(1, 0))
			s := fetchOnce(t, testConfig(t, fakeAccount(t, f)), testOptions(t))[0]
			if s.Err == nil || errors.Is(s.Err, ErrLogin) != tc.login || !strings.Contains(s.Err.Error(), tc.says) {
				t.Errorf("error %v, want one saying %q (ErrLogin %v)", s.Err, tc.says, tc.login)
			}
			if f.count() != 1 {
				t.Errorf("%d left on the server", f.count())
			}
		})
	}
}

// TestPOP3MessageWithoutUIDL: a server that gives one message an empty
// UIDL (RFC 1939 7 wants 1 to 70 characters) no longer stops the account.
// In delete mode the message without one is known by its header and
// fetched; with keep it stays on the server, an error of the run, and the
// others are fetched once. The same holds when the listing also has a line
// the client cannot read at all, which breaks the session: the next one
// asks each message's UIDL on its own.
func TestPOP3MessageWithoutUIDL(t *testing.T) {
	for _, garbled := range []bool{false, true} {
		t.Run(fmt.Sprintf("garbled=%v", garbled), func(t *testing.T) { testPOP3MessageWithoutUIDL(t, garbled) })
	}
}

func testPOP3MessageWithoutUIDL(t *testing.T, garbled bool) {
	uidl := func(m []byte) string {
		if s := subjects([][]byte{m})[0]; s != "message 2" {
			return strings.ReplaceAll(s, " ", "-")
		}
		return ""
	}
	for _, mode := range []string{ModeDelete, ModeKeep} {
		t.Run(mode, func(t *testing.T) {
			f := startFakePOP3(t, &fakePOP3{uidl: uidl, garbledUIDL: garbled})
			f.add(testMessages(1, 3)...)
			a := fakeAccount(t, f)
			a.Mode = mode
			cfg := testConfig(t, a)
			if mode == ModeDelete {
				// Stored, not deleted: the rerun knows message 2 by its
				// header and stores it once.
				crashFetch(t, cfg, testOptions(t), "quit", 1)
				s := mustFetch(t, cfg, testOptions(t))
				if s.Fetched != 0 || s.Deleted != 3 || s.Failed != 0 || f.count() != 0 {
					t.Errorf("run: %v, %d left", s, f.count())
				}
				checkMaildir(t, a.Maildir, [2]int{1, 3})
				return
			}
			for run := 1; run <= 2; run++ {
				s := mustFetch(t, cfg, testOptions(t))
				if want := map[int]int{1: 2, 2: 0}[run]; s.Fetched != want || s.Failed != 1 || s.AlreadyFetched != 2-want {
					t.Errorf("run %d: %v, want %d fetched, 1 error", run, s, want)
				}
			}
			checkMaildir(t, a.Maildir, [2]int{1, 1}, [2]int{3, 3})
			if f.count() != 3 {
				t.Errorf("%d left on the server, want 3", f.count())
			}
		})
	}
}

// TestKeepDays: with mode = "keep", a message goes from the server
// keep_days after it was first downloaded, by the injected clock, and not
// a moment before; a keep_days meant as "for ever", past what a Duration
// holds, keeps it.
func TestKeepDays(t *testing.T) {
	for _, tc := range []struct {
		days    int
		advance []time.Duration // clock moves before each later run
		left    []int           // messages on the server after each
	}{
		{1, []time.Duration{23 * time.Hour, time.Hour}, []int{1, 0}},
		{200_000, []time.Duration{10 * 24 * time.Hour, 100 * 365 * 24 * time.Hour}, []int{1, 1}},
	} {
		t.Run(fmt.Sprint(tc.days), func(t *testing.T) {
			f := startFakePOP3(t, &fakePOP3{})
			f.add(testMessage(1, 0))
			a := fakeAccount(t, f)
			a.Mode, a.KeepDays = ModeKeep, tc.days
			cfg := testConfig(t, a)
			clock := newTestClock()
			opts := testOptions(t)
			opts.Now = clock.Now
			if s := mustFetch(t, cfg, opts); s.Fetched != 1 || s.Deleted != 0 {
				t.Fatalf("first run: %v", s)
			}
			for i, d := range tc.advance {
				clock.Advance(d)
				s := mustFetch(t, cfg, opts)
				if f.count() != tc.left[i] || s.Deleted != 1-tc.left[i] {
					t.Errorf("after %v more: %v, %d left, want %d", d, s, f.count(), tc.left[i])
				}
			}
			checkMaildir(t, a.Maildir, [2]int{1, 1})
		})
	}
}

// TestOneMaildirTwoAccounts: two accounts fetching at the same time, at
// the same instant by the clock, in one process, into one Maildir, each
// with its own counter of deliveries, give every message a name of its
// own (the random part of the name), so none replaces another.
func TestOneMaildirTwoAccounts(t *testing.T) {
	const n = 40
	maildir := filepath.Join(t.TempDir(), "Maildir")
	var accts []Account
	for i, name := range []string{"a", "b"} {
		f := startFakePOP3(t, &fakePOP3{})
		f.add(testMessages(i*n+1, i*n+n)...)
		a := fakeAccount(t, f)
		a.Name, a.Maildir = name, maildir
		accts = append(accts, a)
	}
	cfg := testConfig(t, accts...)
	opts := testOptions(t)
	opts.Now = newTestClock().Now // a clock that stands still
	f := New(cfg, opts)
	defer f.Close()
	var wg sync.WaitGroup
	sums := make([]Summary, len(accts))
	for i, a := range accts {
		wg.Go(func() {
			s, err := f.RunOnce(context.Background(), a.Name)
			if err != nil || len(s) != 1 {
				t.Errorf("%s: %v, %v", a.Name, s, err)
				return
			}
			sums[i] = s[0]
		})
	}
	wg.Wait()
	for _, s := range sums {
		if s.Err != nil || s.Fetched != n {
			t.Errorf("run: %v", s)
		}
	}
	checkMaildir(t, maildir, [2]int{1, 2 * n})
}

// TestPOP3UIDLReused: a server that gives a new message the UIDL of one
// fetched before (against RFC 1939 7) must not have the new message
// skipped as fetched, or deleted without being downloaded. A message of
// another size than the one recorded under its UIDL is taken for a new
// message: fetched, with a warning, and its keep_days counted from then.
// A message recorded by a buzon that kept no sizes is taken as the same.
func TestPOP3UIDLReused(t *testing.T) {
	uidl := func([]byte) string { return "1" }
	first, second := testMessage(1, 0), testMessage(2, 500)
	replace := func(f *fakePOP3, msgs ...[]byte) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.drop = msgs
	}
	for _, tc := range []struct {
		name string
		a    func(a *Account)
		// quit is how the first run's QUIT goes.
		quit string
		// after the first run, the clock moves on by advance, and the
		// server holds second in place of first.
		advance time.Duration
		// wantDeleted is what the run after the change deletes.
		wantDeleted int
		// wantLeft is how many messages the server holds after it.
		wantLeft int
	}{
		{"keep", func(a *Account) { a.Mode = ModeKeep }, "", 24 * time.Hour, 0, 1},
		{"keep_days", func(a *Account) { a.Mode, a.KeepDays = ModeKeep, 1 }, "", 25 * time.Hour, 0, 1},
		{"delete, QUIT reply lost", func(a *Account) {}, "reply lost", time.Hour, 1, 0},
		{"delete, connection dropped at QUIT", func(a *Account) {}, "drop", time.Hour, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFakePOP3(t, &fakePOP3{uidl: uidl, quit: tc.quit})
			f.add(first)
			a := fakeAccount(t, f)
			tc.a(&a)
			cfg := testConfig(t, a)
			clock := newTestClock()
			var logs logBuffer
			opts := testOptions(t)
			opts.Now = clock.Now
			opts.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(&logs, testLogWriter{t}), nil))
			if s := fetchOnce(t, cfg, opts)[0]; s.Fetched != 1 {
				t.Fatalf("first run: %v", s)
			}
			f.mu.Lock()
			f.quit = ""
			f.mu.Unlock()
			replace(f, second)
			clock.Advance(tc.advance)
			s := mustFetch(t, cfg, opts)
			if s.Fetched != 1 || s.Deleted != tc.wantDeleted || f.count() != tc.wantLeft {
				t.Errorf("run after the UIDL was reused: %v, %d left; want 1 fetched, %d deleted, %d left", s, f.count(), tc.wantDeleted, tc.wantLeft)
			}
			if logs.count("under the UIDL of a message fetched before") != 1 {
				t.Errorf("no warning that the server reused a UIDL")
			}
			if got := subjects(maildirMessages(t, a.Maildir)); !slices.Equal(got, []string{"message 1", "message 2"}) {
				t.Errorf("maildir holds %v", got)
			}
			if tc.wantLeft == 0 {
				return
			}
			// Known now: skipped, not fetched again; deleted keep_days
			// after it was fetched, not after the first message was.
			s = mustFetch(t, cfg, opts)
			if s.Fetched != 0 || s.Deleted != 0 || s.AlreadyFetched != 1 {
				t.Errorf("next run: %v; want it skipped", s)
			}
			if a.KeepDays > 0 {
				clock.Advance(24 * time.Hour)
				if s := mustFetch(t, cfg, opts); s.Fetched != 0 || s.Deleted != 1 {
					t.Errorf("run keep_days after it was fetched: %v", s)
				}
			}
			checkMaildir(t, a.Maildir, [2]int{1, 2})
		})
	}
	t.Run("recorded without a size", func(t *testing.T) {
		f := startFakePOP3(t, &fakePOP3{uidl: uidl})
		f.add(second)
		a := fakeAccount(t, f)
		a.Mode = ModeKeep
		cfg := testConfig(t, a)
		st, err := openState(cfg.StateDir, a.Name, a.source())
		if err != nil {
			t.Fatal(err)
		}
		// As an older buzon recorded it.
		if err := st.write(record{Op: "stored", ID: "1", At: time.Now().UTC()}); err != nil {
			t.Fatal(err)
		}
		st.Close()
		if s := mustFetch(t, cfg, testOptions(t)); s.Fetched != 0 || s.AlreadyFetched != 1 {
			t.Errorf("run: %v; want the message skipped as fetched", s)
		}
	})
}
