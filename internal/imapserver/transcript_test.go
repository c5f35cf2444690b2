package imapserver

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/clienttest/transcript"
	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/teststore"
)

var update = flag.Bool("update", false, "rewrite the golden transcripts in testdata/transcripts")

// TestTranscripts replays each testdata/transcripts/*.txt against a fresh
// server and compares what the server says with the file.
//
// A transcript has:
//
//	# comment
//	! deliver MAILBOX FILE [FLAG...]   append the message FILE (see messageFile) through the store
//	! quota BYTES MESSAGES             set the account's quota
//	! save NAME                        remember the last MODSEQ the server sent as {{NAME}} ({{NAME-1}} one less)
//	! option NAME                      a server option before the first command (plaintext, tinylimits,
//	                                   clock: the server's and the store's clock stand at transcriptNow)
//	C: line                            sent on connection 1 (C2: on connection 2, ...)
//	S: line                            expected from connection 1 (S2: ...)
//
// In C: lines, {{lit:FILE}} and {{lit+:FILE}} are a synchronising and a
// non-synchronising literal holding a message file, {{str:"..."}} a
// synchronising literal holding a Go-quoted string, and {{crlf}} ends a
// command and begins the next in the same write, as clients that pipeline
// do. After a C: line the client reads up to the tagged answer (of the
// last command of the line), or up to a "+" continuation, after which the
// next C: line of that connection continues the command.
// UIDVALIDITY and MODSEQ values and today's dates are normalised.
func TestTranscripts(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/transcripts/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			t.Parallel()
			runTranscript(t, file)
		})
	}
}

type transcriptConn struct {
	nc      net.Conn
	br      *bufio.Reader
	pending string // tag of a command waiting for more client data
}

var (
	normUIDValidity = regexp.MustCompile(`(UIDVALIDITY|APPENDUID|COPYUID) \d+`)
	normToday       = regexp.MustCompile(`"[ 0-9]\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d [-+]\d{4}"`)
	// MODSEQ values differ between backends: they are normalised, and
	// commands refer to them through variables.
	modSeqRE = regexp.MustCompile(`(HIGHESTMODSEQ |MODSEQ \(|MODSEQ )(\d+)`)
	varRE    = regexp.MustCompile(`\{\{([a-z]+)(-1)?\}\}`)
)

// transcriptNow is the time of transcripts with "! option clock": in
// 2024, so that normalise keeps its dates.
var transcriptNow = time.Date(2024, 6, 15, 12, 0, 0, 0, time.UTC)

func normalise(line string) string {
	line = normUIDValidity.ReplaceAllString(line, "$1 <uidvalidity>")
	line = modSeqRE.ReplaceAllString(line, "$1<modseq>")
	if !strings.Contains(line, "-2024 ") {
		line = normToday.ReplaceAllString(line, `"<date>"`)
	}
	return line
}

func runTranscript(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	var opts []envOption
	var storeOpts teststore.Options
	for _, l := range lines {
		if name, ok := strings.CutPrefix(l, "! option "); ok && name == "clock" {
			now := func() time.Time { return transcriptNow }
			storeOpts.Now = now
			opts = append(opts, func(c *Config) { c.now = now })
		} else if ok {
			opts = append(opts, transcriptOption(t, name))
		}
	}
	e := newTestEnvStore(t, storeOpts, opts...)
	conns := map[string]*transcriptConn{}
	var out []string
	var lastModSeq uint64
	vars := map[string]uint64{}
	record := func(id, line string) {
		for _, m := range modSeqRE.FindAllStringSubmatch(line, -1) {
			lastModSeq, _ = strconv.ParseUint(m[2], 10, 64)
		}
		out = append(out, "S"+id+": "+normalise(line))
	}
	readResp := func(id string, tc *transcriptConn, tag string) {
		for {
			line := readTranscriptLine(t, tc)
			record(id, line)
			if strings.HasPrefix(line, "+") {
				tc.pending = tag
				return
			}
			if tag != "" && strings.HasPrefix(line, tag+" ") {
				tc.pending = ""
				return
			}
			if tag == "" && strings.HasPrefix(line, "* BYE") {
				return
			}
		}
	}
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "S"):
			continue // expectations are regenerated and compared as a whole
		case strings.HasPrefix(l, "! deliver "):
			f := strings.Fields(strings.TrimPrefix(l, "! deliver "))
			msg, err := os.ReadFile(messageFile(f[1]))
			if err != nil {
				t.Fatal(err)
			}
			e.deliver(f[0], string(msg), f[2:]...)
			out = append(out, l)
			continue
		case strings.HasPrefix(l, "! save "):
			vars[strings.TrimPrefix(l, "! save ")] = lastModSeq
			out = append(out, l)
			continue
		case strings.HasPrefix(l, "! quota "):
			var q store.Quota
			if _, err := fmt.Sscanf(l, "! quota %d %d", &q.MaxBytes, &q.MaxMessages); err != nil {
				t.Fatal(err)
			}
			if err := e.store.SetQuota(context.Background(), testUser, q); err != nil {
				t.Fatal(err)
			}
			out = append(out, l)
			continue
		case !strings.HasPrefix(l, "C"):
			out = append(out, l)
			continue
		}
		id, text, _ := strings.Cut(strings.TrimPrefix(l, "C"), ": ")
		tc := conns[id]
		if tc == nil {
			nc, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { nc.Close() })
			tc = &transcriptConn{nc: nc, br: bufio.NewReader(nc)}
			conns[id] = tc
			record(id, readTranscriptLine(t, tc))
		}
		out = append(out, l)
		tag := tc.pending
		if i := strings.LastIndex(text, pipelined); i >= 0 {
			// Commands sent at once: the answers run up to the last's.
			tag, _, _ = strings.Cut(text[i+len(pipelined):], " ")
		} else if tag == "" {
			tag, _, _ = strings.Cut(text, " ")
		}
		text = strings.ReplaceAll(text, pipelined, "\r\n")
		text = varRE.ReplaceAllStringFunc(text, func(v string) string {
			m := varRE.FindStringSubmatch(v)
			n, ok := vars[m[1]]
			if !ok {
				t.Fatalf("unknown variable %s", v)
			}
			if m[2] != "" {
				n--
			}
			return strconv.FormatUint(n, 10)
		})
		if text == "(wait)" {
			// Read one more untagged line, e.g. an IDLE notification.
			line := readTranscriptLine(t, tc)
			record(id, line)
			continue
		}
		answered := sendTranscript(t, tc, text, func(plus string) { record(id, plus) })
		if !answered {
			readResp(id, tc, tag)
		}
	}
	got := strings.Join(out, "\n") + "\n"
	if *update {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got != string(data) {
		t.Errorf("transcript differs; run with -update to accept\n%s", transcript.Diff(string(data), got))
	}
}

func transcriptOption(t *testing.T, name string) envOption {
	switch name {
	case "plaintext-off":
		// Loopback allows plaintext; nothing to do for the plain case.
		return func(c *Config) {}
	case "tinylimits":
		return func(c *Config) {
			c.Limits.MaxLineLength = 200
			c.Limits.MaxLiteral = 100
			c.Limits.MaxMessageSize = 1000
			c.Limits.MaxMailboxes = 8
			c.Limits.MaxMailboxNameLength = 40
		}
	}
	t.Fatalf("unknown option %q", name)
	return nil
}

// messageFile is where a transcript's message file is: in
// testdata/messages, which the FETCH and SEARCH differentials read too, or,
// named with its folder ("clients/draft.eml"), elsewhere in testdata.
func messageFile(name string) string {
	if strings.Contains(name, "/") {
		return filepath.Join("testdata", name)
	}
	return filepath.Join("testdata/messages", name)
}

// pipelined separates the commands of a C: line sent in one write.
const pipelined = "{{crlf}}"

var litRE = regexp.MustCompile(`\{\{(lit\+?):([^}]+)\}\}|\{\{str:("(?:[^"\\]|\\.)*")\}\}`)

// sendTranscript sends a client line, expanding literals and waiting for
// the continuation of each synchronising one. It reports whether the
// server answered the command already, refusing a literal.
func sendTranscript(t *testing.T, tc *transcriptConn, text string, plus func(string)) bool {
	for {
		m := litRE.FindStringSubmatchIndex(text)
		if m == nil {
			break
		}
		var content string
		sync := true
		if m[2] >= 0 {
			kind, name := text[m[2]:m[3]], text[m[4]:m[5]]
			b, err := os.ReadFile(messageFile(name))
			if err != nil {
				t.Fatal(err)
			}
			content, sync = crlf(string(b)), kind == "lit"
		} else {
			s, err := strconv.Unquote(text[m[6]:m[7]])
			if err != nil {
				t.Fatal(err)
			}
			content = s
		}
		if !sync {
			transcriptWrite(t, tc, text[:m[0]]+fmt.Sprintf("{%d+}\r\n", len(content))+content)
			text = text[m[1]:]
			continue
		}
		transcriptWrite(t, tc, text[:m[0]]+fmt.Sprintf("{%d}\r\n", len(content)))
		line := readTranscriptLine(t, tc)
		plus(line)
		if !strings.HasPrefix(line, "+") {
			// Refused: the server answered at once.
			tc.pending = ""
			return true
		}
		transcriptWrite(t, tc, content)
		text = text[m[1]:]
	}
	transcriptWrite(t, tc, text+"\r\n")
	return false
}

func transcriptWrite(t *testing.T, tc *transcriptConn, s string) {
	_ = tc.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(tc.nc, s); err != nil {
		t.Fatal(err)
	}
}

func readTranscriptLine(t *testing.T, tc *transcriptConn) string {
	_ = tc.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	var b strings.Builder
	for {
		line, err := tc.br.ReadString('\n')
		if err != nil {
			if b.Len() == 0 && line == "" {
				return "(connection closed)"
			}
			t.Fatalf("read: %v (%q)", err, b.String()+line)
		}
		if n, ok := literalSize(line); ok {
			buf := make([]byte, n)
			if _, err := io.ReadFull(tc.br, buf); err != nil {
				t.Fatal(err)
			}
			b.WriteString(strings.TrimSuffix(line, "\r\n"))
			b.WriteString(strconv.Quote(string(buf)))
			continue
		}
		b.WriteString(strings.TrimSuffix(line, "\r\n"))
		return b.String()
	}
}
