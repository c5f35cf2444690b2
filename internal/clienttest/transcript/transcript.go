// Package transcript plays golden transcripts of a line-based protocol
// (POP3, ManageSieve) against a server under test and compares what the
// server says with the file. It is for tests only.
//
// A transcript is a conversation with the server, a line at a time:
//
//	# comment
//	C: a line the client sends (consecutive C: lines go in one write,
//	   so they are pipelined). "{+}" at the end of a C: line is a
//	   literal holding the C| lines that follow, each with its CRLF; the
//	   command's own CRLF follows them. "{=}" is the same without the
//	   last line's CRLF, for a SASL response sent as a literal.
//	C| a line of such a literal
//	S: a line the server must send, as Protocol.Normalise leaves it,
//	   with control bytes and bytes that are not UTF-8 written \xNN.
//	   "S:" alone is an empty line.
//	-- directive
//
// The directives every protocol has:
//
//	-- session NAME      switch to session NAME, connecting it if new; the
//	                     transcript starts in session "A"
//	-- tls-session NAME  the same over implicit TLS
//	-- starttls          start TLS (after the server's yes to STARTTLS/STLS)
//	-- close             the client hangs up
//	-- eof               the server must have closed the connection
//	-- wait-eof          the same (the name says a timeout is expected)
//
// and Protocol.Directive adds the protocol's own. C: and C| lines may use
// ${name} variables: ${long:N} (N bytes of "x"), ${b64:TEXT} (TEXT in
// base64), ${plain:USER:PASSWORD} (the base64 of a SASL PLAIN response),
// and those Protocol.Expand adds.
//
// With update set, the S: lines are rewritten from what the server says,
// reading until it has been quiet for a moment: review the diff.
package transcript

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// Protocol is what a protocol's tests plug in.
type Protocol struct {
	// Dial connects a new session, over implicit TLS when tls is set.
	Dial func(tls bool) (net.Conn, error)
	// ClientTLS is the client's side of -- starttls and -- tls-session.
	ClientTLS *tls.Config
	// Directive runs a directive of the protocol's own, and reports
	// whether it knew it.
	Directive func(args []string) bool
	// Expand gives the value of a variable of the protocol's own, given
	// the server's last line, and reports whether it knew it.
	Expand func(name, lastServer string) (string, bool)
	// Normalise rewrites a server line before it is recorded, putting
	// placeholders for what changes from run to run.
	Normalise func(line string) string
}

// hangGuard bounds every read that must succeed: a server that hangs
// fails the test instead of stalling the suite. It is not an assertion.
const hangGuard = time.Minute

// quiet is how long update mode waits for more from the server.
const quiet = 300 * time.Millisecond

// Check plays the transcript in the file at path against the server and
// fails t where what the server says differs from it; with update, it
// rewrites the file instead.
func Check(t *testing.T, path string, p Protocol, update bool) {
	t.Helper()
	golden, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{t: t, p: p, updating: update, sessions: map[string]*session{}}
	got := r.run(string(golden))
	if update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	} else if got != string(golden) {
		t.Errorf("transcript differs from %s:\n%s", path, Diff(string(golden), got))
	}
}

// session is one client connection of a transcript.
type session struct {
	conn net.Conn
	r    *bufio.Reader
}

type runner struct {
	t        *testing.T
	p        Protocol
	updating bool
	sessions map[string]*session
	cur      *session
	// pending is what the C: lines so far would send.
	pending strings.Builder
	// literal collects the C| lines of a literal, to be written where
	// the C: line said {+}; literalAt is that place in pending.
	literal   *strings.Builder
	literalAt int
	// chomp drops the literal's last CRLF ({=}).
	chomp bool
	// drained says update mode has read what the server says since the
	// last write or directive.
	drained bool
	// lastServer is the last line read from the server, raw.
	lastServer string
	out        strings.Builder
}

// run plays a transcript and returns it as it happened.
func (r *runner) run(transcript string) string {
	for _, line := range strings.Split(strings.TrimSuffix(transcript, "\n"), "\n") {
		if r.cur == nil && (strings.HasPrefix(line, "C") || strings.HasPrefix(line, "S:")) {
			r.connect("A", false)
		}
		if strings.HasPrefix(line, "C|") {
			r.emit(line)
			r.literal.WriteString(r.expand(strings.TrimPrefix(strings.TrimPrefix(line, "C|"), " ")) + "\r\n")
			continue
		}
		if r.literal != nil {
			r.endLiteral()
		}
		if !strings.HasPrefix(line, "C:") {
			r.send()
		}
		switch {
		case strings.HasPrefix(line, "#"), line == "":
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
			if r.updating {
				// What the server says replaces the S: lines: a run of
				// them is one drain, or a timeout would fall inside it.
				if !r.drained {
					r.drain()
				}
				continue
			}
			r.expect()
		case strings.HasPrefix(line, "-- "):
			f := strings.Fields(line[3:])
			if r.updating {
				// Before an eof, whatever the server says until it
				// closes, however long it takes (an idle timeout).
				if f[0] == "eof" || f[0] == "wait-eof" {
					r.drainFor(hangGuard)
				} else {
					r.drain()
				}
			}
			r.emit(line)
			r.directive(f)
			r.drained = false
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
	case "session", "tls-session":
		if s, ok := r.sessions[f[1]]; ok {
			r.cur = s
		} else {
			r.connect(f[1], f[0] == "tls-session")
		}
	case "starttls":
		r.cur.conn.SetDeadline(time.Time{})
		tc := tls.Client(r.cur.conn, r.p.ClientTLS)
		if err := tc.Handshake(); err != nil {
			r.t.Fatalf("starttls: %v", err)
		}
		r.cur.conn, r.cur.r = tc, bufio.NewReader(tc)
	case "close":
		r.cur.conn.Close()
	case "eof", "wait-eof":
		if r.updating {
			return
		}
		r.cur.conn.SetReadDeadline(time.Now().Add(hangGuard))
		if line, err := r.cur.r.ReadString('\n'); err == nil || line != "" {
			r.t.Errorf("expected the server to close; it sent %q", line)
		}
	default:
		if r.p.Directive == nil || !r.p.Directive(f) {
			r.t.Fatalf("unknown directive %q", f[0])
		}
	}
}

func (r *runner) connect(name string, implicitTLS bool) {
	conn, err := r.p.Dial(implicitTLS)
	if err != nil {
		r.t.Fatalf("session %s: %v", name, err)
	}
	s := &session{conn: conn, r: bufio.NewReader(conn)}
	r.sessions[name] = s
	r.cur = s
}

// send writes the pending C: lines in one write; in update mode it then
// records what the server says to them.
func (r *runner) send() {
	if r.pending.Len() == 0 {
		return
	}
	data := r.pending.String()
	r.pending.Reset()
	if _, err := r.cur.conn.Write([]byte(data)); err != nil {
		r.t.Fatalf("send: %v", err)
	}
	r.drained = false
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
	r.lastServer = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	return r.lastServer, nil
}

// expect reads a line and records it; a difference shows in the final
// comparison with the golden file.
func (r *runner) expect() {
	line, err := r.readLine(hangGuard)
	if err != nil {
		r.t.Fatalf("reading the server's next line: %v (transcript so far:\n%s)", err, r.out.String())
	}
	r.emitServer(line)
}

func (r *runner) emitServer(line string) {
	if r.p.Normalise != nil {
		line = r.p.Normalise(line)
	}
	if n := Escape(line); n == "" {
		r.emit("S:")
	} else {
		r.emit("S: " + n)
	}
}

// drain reads what the server says until it is quiet (update mode only).
func (r *runner) drain() { r.drainFor(quiet) }

// drainFor reads what the server says until it has said nothing for
// wait, or closes (update mode only).
func (r *runner) drainFor(wait time.Duration) {
	if r.cur == nil {
		return
	}
	r.drained = true
	for {
		line, err := r.readLine(wait)
		if err != nil {
			if line != "" {
				r.emitServer(line)
			}
			return
		}
		r.emitServer(line)
	}
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
		if r.p.Expand != nil {
			if v, ok := r.p.Expand(name, r.lastServer); ok {
				return v
			}
		}
		r.t.Fatalf("unknown variable %q", name)
		return ""
	})
}

// Escape writes control bytes and bytes that are not UTF-8 as \xNN, so
// that a transcript stays a readable text file.
func Escape(line string) string {
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

// Diff shows the first differing lines of two transcripts.
func Diff(want, got string) string {
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
