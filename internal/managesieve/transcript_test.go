package managesieve_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/buzon-mail/buzon/internal/auth"
	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/managesieve"
	"github.com/buzon-mail/buzon/internal/sieve"
)

var update = flag.Bool("update", false, "rewrite the golden transcripts in testdata from what the server says")

// A transcript (testdata/*.txt) is a conversation with the server:
//
//	# comment
//	C: a line the client sends (consecutive C: lines go in one write,
//	   so they are pipelined). "{+}" at the end of a C: line is a
//	   literal holding the C| lines that follow, each with its CRLF; the
//	   command's own CRLF follows them. "{=}" is the same without the
//	   last line's CRLF, for a SASL response sent as a literal.
//	C| a line of such a literal
//	S: a line the server must send; control bytes and bytes that are not
//	   UTF-8 read \xNN, and the SIEVE capability's value reads
//	   {extensions}. "S:" alone is an empty line.
//	-- directive (see run)
//
// C: lines may use ${name} variables: ${plain:USER:PASSWORD} (the base64
// of a PLAIN response), ${b64:TEXT} and ${long:N} (N bytes of "x").
//
// With -update the S: lines are rewritten from what the server says,
// reading until it has been quiet for a moment; review the diff.
var transcripts = []struct {
	file string
	opts options
	// check looks at the store after the transcript and Shutdown.
	check func(t *testing.T, e *env)
}{
	{file: "greeting_logout.txt"},
	{file: "logout_pipelined.txt"},
	{file: "authenticate.txt"},
	{file: "authenticate_login.txt"},
	{file: "auth_failures.txt"},
	{file: "lockout.txt", opts: options{auth: func(a *config.Auth) { a.LockoutAfter = 2 }}},
	{file: "plaintext_refused.txt", opts: options{remote: "192.0.2.10"}},
	{file: "starttls.txt", opts: options{remote: "192.0.2.10"}},
	{file: "starttls_injection.txt"},
	{file: "wrong_state.txt"},
	{file: "syntax.txt"},
	{file: "scripts.txt", check: scriptsLeft(map[string]string{
		"vacation-free": "require \"fileinto\";\r\nfileinto \"Lists\";\r\n",
		"renamed":       "keep;\r\n",
	}, "vacation-free")},
	{file: "empty_script.txt", check: scriptsLeft(map[string]string{"roundcube": "", "quoted": ""}, "roundcube")},
	{file: "refused_scripts.txt", check: scriptsLeft(map[string]string{}, "")},
	{file: "quota.txt", opts: options{config: func(c *managesieve.Config) {
		c.Sieve.MaxScripts, c.Sieve.MaxScriptSize = 2, 1024
	}}, check: scriptsLeft(map[string]string{"one": "keep;", "two": "keep;\r\n"}, "")},
	{file: "huge_literal.txt", opts: options{config: func(c *managesieve.Config) { c.Sieve.MaxScriptSize = 1024 }}},
	{file: "literal_before_login.txt", opts: options{config: func(c *managesieve.Config) { c.Limits.MaxLineLength = 1024 }}},
	{file: "max_errors.txt", opts: options{config: func(c *managesieve.Config) { c.Sieve.MaxErrors = 3 }}},
	{file: "idle_timeout.txt", opts: options{config: func(c *managesieve.Config) { c.Sieve.LoginTimeout = config.Duration(time.Second) }}},
	{file: "idle_after_login.txt", opts: options{config: func(c *managesieve.Config) { c.Sieve.IdleTimeout = config.Duration(time.Second) }}},
	{file: "session_limit.txt", opts: options{config: func(c *managesieve.Config) { c.Sessions = auth.NewSessionLimiter(1) }}},
	{file: "shutdown.txt"},
	{file: "account_deleted.txt"},
	{file: "accounts_apart.txt", check: scriptsLeft(map[string]string{}, "")},
}

func TestTranscripts(t *testing.T) {
	for _, tc := range transcripts {
		t.Run(strings.TrimSuffix(tc.file, ".txt"), func(t *testing.T) {
			t.Parallel()
			e := start(t, tc.opts)
			path := filepath.Join("testdata", tc.file)
			golden, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			r := &runner{t: t, env: e, sessions: map[string]*session{}}
			got := r.run(string(golden))
			e.shutdown()
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			} else if got != string(golden) {
				t.Errorf("transcript differs from %s:\n%s", path, diff(string(golden), got))
			}
			if tc.check != nil {
				tc.check(t, e)
			}
		})
	}
}

// scriptsLeft checks alice's scripts after a transcript: their names and
// content, and which one is active ("" for none).
func scriptsLeft(want map[string]string, active string) func(*testing.T, *env) {
	return func(t *testing.T, e *env) {
		t.Helper()
		got := map[string]string{}
		gotActive := ""
		for _, s := range e.scripts(t, alice) {
			got[s.Name] = string(s.Content)
			if s.Active {
				gotActive = s.Name
			}
			if s.Size != int64(len(s.Content)) {
				t.Errorf("script %q: size %d, content %d octets", s.Name, s.Size, len(s.Content))
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) || gotActive != active {
			t.Errorf("alice's scripts = %q, active %q; want %q, active %q", got, gotActive, want, active)
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
	env      *env
	sessions map[string]*session
	cur      *session
	// pending is what the C: lines so far would send.
	pending strings.Builder
	// literal collects the C| lines of a literal, to be written where
	// the C: line said {+}; literalAt is that place in pending.
	literal   *strings.Builder
	literalAt int
	// chomp drops the literal's last CRLF ({=}).
	chomp    bool
	out      strings.Builder
	updating bool
}

// run plays a transcript and returns it as it happened. Directives:
//
//	-- session NAME  switch to session NAME, connecting it if new; the
//	                 transcript starts in session "A"
//	-- starttls      start TLS (after the server's OK to STARTTLS)
//	-- shutdown      start a server Shutdown
//	-- delete-account NAME  delete an account, as buzon user del does
//	-- eof           the server must have closed the connection
//	-- wait-eof      the same, allowing the server time (a timeout)
func (r *runner) run(transcript string) string {
	r.updating = *update
	lines := strings.Split(strings.TrimSuffix(transcript, "\n"), "\n")
	for _, line := range lines {
		if r.cur == nil && (strings.HasPrefix(line, "C") || strings.HasPrefix(line, "S:")) {
			r.connect("A")
		}
		switch {
		case strings.HasPrefix(line, "C|"):
			r.emit(line)
			r.literal.WriteString(r.expand(strings.TrimPrefix(strings.TrimPrefix(line, "C|"), " ")) + "\r\n")
			continue
		case r.literal != nil:
			r.endLiteral()
		}
		switch {
		case strings.HasPrefix(line, "#"), line == "":
			r.send()
			r.emit(line)
		case strings.HasPrefix(line, "C:"):
			r.emit(line)
			text := r.expand(strings.TrimPrefix(strings.TrimPrefix(line, "C:"), " "))
			rest, plus := strings.CutSuffix(text, "{+}")
			rest, eq := strings.CutSuffix(rest, "{=}")
			if plus || eq {
				r.pending.WriteString(rest)
				r.literal, r.literalAt, r.chomp = &strings.Builder{}, r.pending.Len(), eq
				continue
			}
			r.pending.WriteString(text + "\r\n")
		case strings.HasPrefix(line, "S:"):
			r.send()
			if r.updating {
				r.drain()
				continue
			}
			r.expect()
		case strings.HasPrefix(line, "-- "):
			r.send()
			if r.updating {
				r.drain()
			}
			r.emit(line)
			r.directive(strings.Fields(line[3:]))
		default:
			r.t.Fatalf("bad transcript line %q", line)
		}
	}
	if r.literal != nil {
		r.endLiteral()
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

// endLiteral puts the literal collected into pending, with its size.
func (r *runner) endLiteral() {
	p := r.pending.String()
	lit := r.literal.String()
	if r.chomp {
		lit = strings.TrimSuffix(lit, "\r\n")
	}
	r.pending.Reset()
	r.pending.WriteString(p[:r.literalAt] + "{" + strconv.Itoa(len(lit)) + "+}\r\n" + lit + p[r.literalAt:] + "\r\n")
	r.literal = nil
}

func (r *runner) emit(line string) {
	r.out.WriteString(line)
	r.out.WriteByte('\n')
}

func (r *runner) directive(f []string) {
	switch f[0] {
	case "session":
		if s, ok := r.sessions[f[1]]; ok {
			r.cur = s
		} else {
			r.connect(f[1])
		}
	case "starttls":
		r.cur.conn.SetDeadline(time.Time{})
		tc := tls.Client(r.cur.conn, r.env.clientTLS)
		if err := tc.Handshake(); err != nil {
			r.t.Fatalf("starttls: %v", err)
		}
		r.cur.conn, r.cur.r = tc, bufio.NewReader(tc)
	case "shutdown":
		go r.env.shutdown()
	case "delete-account":
		if err := r.env.store.DeleteAccount(context.Background(), f[1]); err != nil {
			r.t.Fatalf("delete account %s: %v", f[1], err)
		}
	case "eof", "wait-eof":
		if r.updating {
			return
		}
		r.cur.conn.SetReadDeadline(time.Now().Add(time.Minute)) // a hang guard, not an assertion
		if line, err := r.cur.r.ReadString('\n'); err == nil || line != "" {
			r.t.Errorf("expected the server to close; it sent %q", line)
		}
	default:
		r.t.Fatalf("unknown directive %q", f[0])
	}
}

func (r *runner) connect(name string) {
	conn, err := net.Dial("tcp", r.env.addr)
	if err != nil {
		r.t.Fatal(err)
	}
	s := &session{conn: conn, r: bufio.NewReader(conn)}
	r.sessions[name] = s
	r.cur = s
}

// send writes the pending C: lines in one write.
func (r *runner) send() {
	if r.pending.Len() == 0 {
		return
	}
	data := r.pending.String()
	r.pending.Reset()
	if _, err := r.cur.conn.Write([]byte(data)); err != nil {
		r.t.Fatalf("send: %v", err)
	}
}

// readLine reads one server line, raw, without CRLF.
func (r *runner) readLine(timeout time.Duration) (string, error) {
	r.cur.conn.SetReadDeadline(time.Now().Add(timeout))
	line, err := r.cur.r.ReadString('\n')
	if err != nil {
		return line, err
	}
	return strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"), nil
}

// expect reads a line and records it; a difference shows in the final
// comparison with the golden file.
func (r *runner) expect() {
	line, err := r.readLine(time.Minute) // a hang guard, not an assertion
	if err != nil {
		r.t.Fatalf("reading the server's next line: %v (transcript so far:\n%s)", err, r.out.String())
	}
	r.emitServer(line)
}

func (r *runner) emitServer(line string) {
	if n := normalise(line); n == "" {
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

func normalise(line string) string {
	line = strings.Replace(line, quoteExtensions, "{extensions}", 1)
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

func (r *runner) expand(line string) string {
	return os.Expand(line, func(name string) string {
		kind, arg, _ := strings.Cut(name, ":")
		switch kind {
		case "plain":
			user, pass, _ := strings.Cut(arg, ":")
			return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
		case "b64":
			return base64.StdEncoding.EncodeToString([]byte(arg))
		case "long":
			n, _ := strconv.Atoi(arg)
			return strings.Repeat("x", n)
		}
		r.t.Fatalf("unknown variable %q", name)
		return ""
	})
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

// quoteExtensions is the SIEVE capability's value as the server sends
// it, which changes as the language gains extensions.
var quoteExtensions = `"SIEVE" "` + strings.Join(sieve.Extensions(), " ") + `"`
