package pop3server_test

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/buzon-mail/buzon/internal/auth"
	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/pop3server"
	"github.com/buzon-mail/buzon/internal/pop3server/pop3test"
	"github.com/buzon-mail/buzon/internal/store"
)

var update = flag.Bool("update", false, "rewrite the golden transcripts in testdata from what the server says")

// A transcript (testdata/*.txt) is a conversation with the server:
//
//	# comment
//	C: a line the client sends (consecutive C: lines go in one write, so
//	   they are pipelined)
//	S: a line the server must send, after normalising: the INBOX
//	   UIDVALIDITY in hex reads {uidv}, SCRAM server messages read
//	   {scram-server-first} and {scram-server-final}, and control bytes
//	   and bytes that are not UTF-8 read \xNN. "S:" alone is an empty
//	   line.
//	-- directive (see run)
//
// C: lines may use ${name} variables: ${scram-first} and ${scram-final}
// (the SCRAM-SHA-256 client messages for alice, the second computed
// from the server's last challenge), and ${long:N} (N bytes of "x").
//
// With -update the S: lines are rewritten from what the server says,
// reading until it has been quiet for a moment; review the diff.
var transcripts = []struct {
	file string
	// remote fakes the client address of plain connections.
	remote string
	// messages are the fixture messages in alice's INBOX, in order.
	messages []string
	config   func(*pop3server.Config)
	auth     func(*config.Auth)
	// check looks at the store after the transcript and Shutdown.
	check func(t *testing.T, env *pop3test.Env, uids []store.UID)
}{
	{file: "greeting_quit.txt"},
	{file: "user_pass.txt", messages: fixtureAll},
	{file: "wrong_state.txt", messages: fixtureAll},
	{file: "bad_arguments.txt", messages: fixtureAll},
	{file: "unknown_commands.txt"},
	{file: "long_lines.txt", messages: fixtureAll},
	{file: "pipelining.txt", messages: fixtureAll},
	{file: "pipelined_garbage.txt", messages: fixtureAll},
	{file: "capa.txt", messages: fixtureAll},
	{file: "capa_expire.txt", config: func(c *pop3server.Config) { c.POP3.ExpireDays = 7 }},
	{file: "stls.txt", messages: fixtureAll},
	{file: "stls_injection.txt", messages: fixtureAll},
	{file: "stls_remote.txt", remote: "192.0.2.10", messages: fixtureAll},
	{file: "pop3s.txt", messages: fixtureAll},
	{file: "plaintext_refused.txt", remote: "192.0.2.10"},
	{file: "plaintext_allowed.txt", remote: "192.0.2.10", config: func(c *pop3server.Config) { c.AllowPlaintext = true }},
	{file: "auth_plain.txt", messages: fixtureAll},
	{file: "auth_login.txt", messages: fixtureAll},
	{file: "auth_scram.txt", remote: "192.0.2.10", messages: fixtureAll},
	{file: "auth_failures.txt"},
	{file: "lockout.txt", auth: func(a *config.Auth) { a.LockoutAfter = 2 }},
	{file: "stat_list_uidl.txt", messages: fixtureAll},
	{file: "retr_dot_stuffing.txt", messages: []string{msgDots, msgUnterminated, msgEmptyBody}},
	{file: "retr_8bit.txt", messages: []string{msg8bit}},
	{file: "top.txt", messages: []string{msgLong, msgDots, msgHeaderOnly}},
	{file: "dele_rset_quit.txt", messages: fixtureAll, check: keptUIDs(0, 3, 4)},
	{file: "dele_quit.txt", messages: fixtureAll, check: keptUIDs(1, 2)},
	{file: "dele_no_quit.txt", messages: fixtureAll, check: keptUIDs(0, 1, 2, 3, 4)},
	{file: "in_use.txt", messages: fixtureAll},
	{file: "in_use_stale.txt", messages: fixtureAll, check: keptUIDs(0, 2, 3, 4),
		config: func(c *pop3server.Config) { c.POP3.StaleSession = config.Duration(time.Nanosecond) }},
	{file: "expunged_elsewhere.txt", messages: fixtureAll, check: keptUIDs(0, 2, 3, 4)},
	{file: "delivered_meanwhile.txt", messages: fixtureAll, check: onlyLater},
	{file: "empty_maildrop.txt"},
	{file: "idle_timeout.txt", messages: fixtureAll, check: keptUIDs(0, 1, 2, 3, 4),
		config: func(c *pop3server.Config) { c.POP3.IdleTimeout = config.Duration(time.Second) }},
	{file: "shutdown.txt", messages: fixtureAll, check: keptUIDs(1, 2, 3, 4)},
	{file: "session_limit.txt", config: func(c *pop3server.Config) { c.Sessions = auth.NewSessionLimiter(1) }},
}

func TestTranscripts(t *testing.T) {
	for _, tc := range transcripts {
		t.Run(strings.TrimSuffix(tc.file, ".txt"), func(t *testing.T) {
			t.Parallel()
			opts := pop3test.Options{Config: tc.config, Auth: tc.auth}
			if tc.remote != "" {
				opts.Listener = fakeRemote(netip.MustParseAddr(tc.remote))
			}
			env := pop3test.Start(t, openStore(t, t.TempDir()), opts)
			var uids []store.UID
			for _, m := range tc.messages {
				uids = append(uids, env.Append(t, alice, []byte(m), store.Flags{}).UID)
			}
			path := filepath.Join("testdata", tc.file)
			golden, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			r := &runner{t: t, env: env, uids: uids, sessions: map[string]*session{}}
			got := r.run(string(golden))
			env.Stop()
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			} else if got != string(golden) {
				t.Errorf("transcript differs from %s:\n%s", path, diff(string(golden), got))
			}
			if tc.check != nil {
				tc.check(t, env, uids)
			}
		})
	}
}

// onlyLater checks that INBOX holds msgLater alone.
func onlyLater(t *testing.T, env *pop3test.Env, _ []store.UID) {
	t.Helper()
	inbox := env.Inbox(t, alice)
	if len(inbox) != 1 || inbox[0].Size != int64(len(msgLater)) {
		t.Errorf("INBOX holds %d messages; want msgLater alone", len(inbox))
	}
}

// keptUIDs checks that INBOX holds exactly the fixture messages with the
// given indexes.
func keptUIDs(indexes ...int) func(*testing.T, *pop3test.Env, []store.UID) {
	return func(t *testing.T, env *pop3test.Env, uids []store.UID) {
		t.Helper()
		var want, got []store.UID
		for _, i := range indexes {
			want = append(want, uids[i])
		}
		for _, m := range env.Inbox(t, alice) {
			got = append(got, m.UID)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("INBOX UIDs after the session = %v, want %v", got, want)
		}
	}
}

// session is one client connection of a transcript.
type session struct {
	conn net.Conn
	r    *bufio.Reader
}

type runner struct {
	t        *testing.T
	env      *pop3test.Env
	uids     []store.UID
	sessions map[string]*session
	cur      *session
	// pending are C: lines not yet sent.
	pending []string
	// lastServer is the last line read from the server, raw.
	lastServer string
	out        strings.Builder
	// update: what the golden file expects is being rewritten.
	updating bool
}

// run plays a transcript and returns it as it happened. Directives:
//
//	-- session NAME  switch to session NAME, connecting it (plain) if new;
//	                 the transcript starts in session "A"
//	-- tls-session NAME  the same over implicit TLS
//	-- starttls      start TLS (after the server's +OK to STLS)
//	-- expunge N     expunge fixture message N (1-based) by another path
//	-- deliver       deliver msgLater to alice's INBOX
//	-- shutdown      start a server Shutdown
//	-- close         the client hangs up
//	-- settle        wait until alice's maildrop is unlocked
//	-- eof           the server must have closed the connection
func (r *runner) run(transcript string) string {
	r.updating = *update
	lines := strings.Split(strings.TrimSuffix(transcript, "\n"), "\n")
	first := true
	for _, line := range lines {
		isC := strings.HasPrefix(line, "C:")
		if !isC {
			r.send()
		}
		switch {
		case strings.HasPrefix(line, "#"), line == "":
			r.emit(line)
		case isC:
			if first {
				r.connect("A", false)
				first = false
			}
			r.emit(line)
			r.pending = append(r.pending, r.expand(strings.TrimPrefix(strings.TrimPrefix(line, "C:"), " ")))
		case strings.HasPrefix(line, "S:"):
			if first {
				r.connect("A", false)
				first = false
			}
			if r.updating {
				r.drain() // the placeholder is replaced by what the server says
				continue
			}
			r.expect(strings.TrimPrefix(strings.TrimPrefix(line, "S:"), " "))
		case strings.HasPrefix(line, "-- "):
			if r.updating {
				r.drain()
			}
			r.emit(line)
			first = r.directive(strings.Fields(line[3:]), first)
		default:
			r.t.Fatalf("bad transcript line %q", line)
		}
	}
	r.send()
	if r.updating {
		r.drain()
	}
	for _, s := range r.sessions {
		s.conn.Close()
	}
	return r.out.String()
}

func (r *runner) emit(line string) {
	r.out.WriteString(line)
	r.out.WriteByte('\n')
}

func (r *runner) directive(f []string, first bool) bool {
	switch f[0] {
	case "session", "tls-session":
		if s, ok := r.sessions[f[1]]; ok {
			r.cur = s
		} else {
			r.connect(f[1], f[0] == "tls-session")
		}
		return false
	case "starttls":
		r.cur.conn.SetDeadline(time.Time{})
		tc := tls.Client(r.cur.conn, r.env.ClientTLS)
		if err := tc.Handshake(); err != nil {
			r.t.Fatalf("starttls: %v", err)
		}
		r.cur.conn, r.cur.r = tc, bufio.NewReader(tc)
	case "expunge":
		n, _ := strconv.Atoi(f[1])
		r.env.WithInbox(r.t, alice, func(sess store.Session, inbox store.Mailbox) {
			if _, err := sess.Expunge(context.Background(), inbox.ID, store.UIDSetOf(r.uids[n-1]), false); err != nil {
				r.t.Fatal(err)
			}
		})
	case "deliver":
		r.env.Append(r.t, alice, []byte(msgLater), store.Flags{})
	case "shutdown":
		go r.env.Stop()
	case "close":
		r.cur.conn.Close()
	case "settle":
		r.env.WaitUnlocked(r.t, alice)
	case "eof":
		if r.updating {
			return first
		}
		r.cur.conn.SetReadDeadline(time.Now().Add(time.Minute)) // a hang guard, not an assertion
		if line, err := r.cur.r.ReadString('\n'); err == nil || line != "" {
			r.t.Errorf("expected the server to close; it sent %q", line)
		}
	default:
		r.t.Fatalf("unknown directive %q", f[0])
	}
	return first
}

func (r *runner) connect(name string, implicitTLS bool) {
	var conn net.Conn
	var err error
	if implicitTLS {
		conn, err = tls.Dial("tcp", r.env.TLSAddr, r.env.ClientTLS)
	} else {
		conn, err = net.Dial("tcp", r.env.Addr)
	}
	if err != nil {
		r.t.Fatal(err)
	}
	s := &session{conn: conn, r: bufio.NewReader(conn)}
	r.sessions[name] = s
	r.cur = s
}

// send writes the pending C: lines in one write.
func (r *runner) send() {
	if len(r.pending) == 0 {
		return
	}
	data := strings.Join(r.pending, "\r\n") + "\r\n"
	r.pending = nil
	if _, err := r.cur.conn.Write([]byte(data)); err != nil {
		r.t.Fatalf("send: %v", err)
	}
	if r.updating {
		r.drain()
	}
}

// readLine reads one server line, raw, without CRLF.
func (r *runner) readLine(timeout time.Duration) (string, error) {
	r.cur.conn.SetReadDeadline(time.Now().Add(timeout))
	line, err := r.cur.r.ReadString('\n')
	if err != nil {
		return line, err
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	r.lastServer = line
	return line, nil
}

// expect reads a line and records it; a difference shows in the final
// comparison with the golden file.
func (r *runner) expect(want string) {
	line, err := r.readLine(time.Minute) // a hang guard, not an assertion
	if err != nil {
		r.t.Fatalf("reading the server's %q: %v (transcript so far:\n%s)", want, err, r.out.String())
	}
	r.emitServer(line)
}

func (r *runner) emitServer(line string) {
	n := r.normalise(line)
	if n == "" {
		r.emit("S:")
	} else {
		r.emit("S: " + n)
	}
}

// drain reads what the server says until it is quiet (update mode only).
func (r *runner) drain() {
	if r.cur == nil {
		return
	}
	for {
		line, err := r.readLine(300 * time.Millisecond)
		if err != nil {
			if line != "" {
				r.emitServer(line)
			}
			return
		}
		r.emitServer(line)
	}
}

func (r *runner) normalise(line string) string {
	r.env.WithInbox(r.t, alice, func(_ store.Session, inbox store.Mailbox) {
		line = strings.ReplaceAll(line, fmt.Sprintf("%08x", inbox.UIDValidity), "{uidv}")
	})
	if strings.HasPrefix(line, "+ ") {
		if b, err := base64.StdEncoding.DecodeString(line[2:]); err == nil {
			switch {
			case strings.HasPrefix(string(b), "r="):
				line = "+ {scram-server-first}"
			case strings.HasPrefix(string(b), "v="):
				line = "+ {scram-server-final}"
			}
		}
	}
	var b strings.Builder
	for i := 0; i < len(line); {
		c, size := utf8.DecodeRuneInString(line[i:])
		if c == utf8.RuneError && size == 1 || c < ' ' || c == 0x7f {
			fmt.Fprintf(&b, `\x%02x`, line[i])
		} else {
			b.WriteString(line[i : i+size])
		}
		i += size
	}
	return b.String()
}

// SCRAM-SHA-256 client for alice (RFC 5802 3).
const scramClientFirstBare = "n=alice@example.org,r=fyko+d2lbbFgONRv9qkxdawL"

func (r *runner) expand(line string) string {
	return os.Expand(line, func(name string) string {
		switch {
		case name == "scram-first":
			return base64.StdEncoding.EncodeToString([]byte("n,," + scramClientFirstBare))
		case name == "scram-final":
			return base64.StdEncoding.EncodeToString([]byte(scramFinal(r.t, r.lastServer, pop3test.Password)))
		case strings.HasPrefix(name, "long:"):
			n, _ := strconv.Atoi(name[5:])
			return strings.Repeat("x", n)
		}
		r.t.Fatalf("unknown variable %q", name)
		return ""
	})
}

// scramFinal answers the server-first message in challenge ("+ base64").
func scramFinal(t *testing.T, challenge, password string) string {
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(challenge, "+ "))
	if err != nil {
		t.Fatalf("SCRAM challenge %q: %v", challenge, err)
	}
	serverFirst := string(b)
	var nonce, salt string
	iter := 0
	for _, attr := range strings.Split(serverFirst, ",") {
		switch {
		case strings.HasPrefix(attr, "r="):
			nonce = attr[2:]
		case strings.HasPrefix(attr, "s="):
			salt = attr[2:]
		case strings.HasPrefix(attr, "i="):
			iter, _ = strconv.Atoi(attr[2:])
		}
	}
	saltBytes, _ := base64.StdEncoding.DecodeString(salt)
	salted, err := pbkdf2.Key(sha256.New, password, saltBytes, iter, sha256.Size)
	if err != nil {
		t.Fatal(err)
	}
	mac := func(key []byte, s string) []byte {
		h := hmac.New(sha256.New, key)
		io.WriteString(h, s)
		return h.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	withoutProof := "c=" + base64.StdEncoding.EncodeToString([]byte("n,,")) + ",r=" + nonce
	authMessage := scramClientFirstBare + "," + serverFirst + "," + withoutProof
	sig := mac(storedKey[:], authMessage)
	proof := make([]byte, len(clientKey))
	for i := range proof {
		proof[i] = clientKey[i] ^ sig[i]
	}
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)
}

// diff shows the first differing lines of two transcripts.
func diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  want %q\n  got  %q\n", i+1, wl, gl)
			if b.Len() > 2000 {
				break
			}
		}
	}
	return b.String()
}

// fakeRemote makes accepted connections report addr as the client's.
func fakeRemote(addr netip.Addr) func(net.Listener) net.Listener {
	return func(l net.Listener) net.Listener { return remoteListener{l, addr} }
}

type remoteListener struct {
	net.Listener
	addr netip.Addr
}

func (l remoteListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return remoteConn{c, net.TCPAddrFromAddrPort(netip.AddrPortFrom(l.addr, 40000))}, nil
}

type remoteConn struct {
	net.Conn
	remote net.Addr
}

func (c remoteConn) RemoteAddr() net.Addr { return c.remote }
