package pop3server

import (
	"bytes"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		line string
		want command
		err  error
	}{
		{"QUIT", command{name: "QUIT", args: []string{}}, nil},
		{"quit", command{name: "QUIT", args: []string{}}, nil},
		{"LIST 1", command{name: "LIST", args: []string{"1"}, rest: "1"}, nil},
		{"TOP  1   2 ", command{name: "TOP", args: []string{"1", "2"}, rest: " 1   2 "}, nil},
		{"PASS  two words ", command{name: "PASS", args: []string{"two", "words"}, rest: " two words "}, nil},
		{"PASS pässwörd", command{name: "PASS", args: []string{"pässwörd"}, rest: "pässwörd"}, nil},
		{"AUTH PLAIN =", command{name: "AUTH", args: []string{"PLAIN", "="}, rest: "PLAIN ="}, nil},
		{"X1", command{name: "X1", args: []string{}}, nil},
		{"", command{}, errEmptyCommand},
		{" LIST", command{}, errBadKeyword},
		{"LI\tST", command{}, errBadBytes},
		{"LIST\x00", command{}, errBadBytes},
		{"LIST 1\r", command{}, errBadBytes},
		{"DEL\x7f", command{}, errBadBytes},
		{"L!ST", command{}, errBadKeyword},
		{"ÜSER x", command{}, errBadKeyword},
		{strings.Repeat("A", 17), command{}, errBadKeyword},
	} {
		got, err := parseCommand(tc.line)
		if err != tc.err || got.name != tc.want.name || got.rest != tc.want.rest || !slices.Equal(got.args, tc.want.args) {
			t.Errorf("parseCommand(%q) = %+v, %v; want %+v, %v", tc.line, got, err, tc.want, tc.err)
		}
	}
}

func TestParseNumber(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s    string
		want int
		ok   bool
	}{
		{"0", 0, true}, {"1", 1, true}, {"007", 7, true}, {"999999999", 999999999, true},
		{"", 0, false}, {"-1", 0, false}, {"+1", 0, false}, {"1x", 0, false},
		{"1000000000", 1000000000, true}, {"2147483647", math.MaxInt32, true},
		{"99999999999999999999999", math.MaxInt32, true}, // saturates: RFC 1939 TOP allows any count
		{" 1", 0, false}, {"١", 0, false},
	} {
		if got, ok := parseNumber(tc.s); got != tc.want || ok != tc.ok {
			t.Errorf("parseNumber(%q) = %d, %v; want %d, %v", tc.s, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzCommand checks that the command parser never panics and that what
// it accepts is well-formed: an upper-case alphanumeric keyword, arguments
// without spaces or control characters that rebuild the rest of the line.
func FuzzCommand(f *testing.F) {
	for _, s := range []string{"USER alice@example.org", "PASS two words", "TOP 1 10", "AUTH PLAIN =", "", " ", "LIST\x00", "ÜSER"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		cmd, err := parseCommand(line)
		if err != nil {
			return
		}
		if cmd.name == "" || cmd.name != strings.ToUpper(cmd.name) || len(cmd.name) > maxKeyword {
			t.Fatalf("bad keyword %q from %q", cmd.name, line)
		}
		for _, c := range []byte(cmd.name) {
			if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
				t.Fatalf("bad keyword %q from %q", cmd.name, line)
			}
		}
		for _, a := range cmd.args {
			if a == "" || strings.ContainsFunc(a, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
				t.Fatalf("bad argument %q from %q", a, line)
			}
		}
		if !slices.Equal(cmd.args, strings.Fields(cmd.rest)) || !strings.HasSuffix(line, cmd.rest) {
			t.Fatalf("arguments %q do not match the rest %q of %q", cmd.args, cmd.rest, line)
		}
		if _, known := commands[cmd.name]; known && len(line) >= len(cmd.name) && !strings.EqualFold(line[:len(cmd.name)], cmd.name) {
			t.Fatalf("keyword %q is not the start of %q", cmd.name, line)
		}
	})
}

func TestWriteBody(t *testing.T) {
	t.Parallel()
	const msg = "Subject: x\r\n" +
		"\r\n" +
		".1\r\n" +
		"2\r\n" +
		"..3\r\n"
	for _, tc := range []struct {
		msg       string
		bodyLines int
		want      string
	}{
		{"", -1, ".\r\n"},
		{"a", -1, "a\r\n.\r\n"},
		{"a\r\n", -1, "a\r\n.\r\n"},
		{".", -1, "..\r\n.\r\n"},
		{".\r\n.", -1, "..\r\n..\r\n.\r\n"},
		{"a\n.b\n", -1, "a\n..b\n.\r\n"},
		{msg, -1, "Subject: x\r\n\r\n..1\r\n2\r\n...3\r\n.\r\n"},
		{msg, 0, "Subject: x\r\n\r\n.\r\n"},
		{msg, 1, "Subject: x\r\n\r\n..1\r\n.\r\n"},
		{msg, 3, "Subject: x\r\n\r\n..1\r\n2\r\n...3\r\n.\r\n"},
		{msg, 9, "Subject: x\r\n\r\n..1\r\n2\r\n...3\r\n.\r\n"},
		{"\r\nbody\r\n", 0, "\r\n.\r\n"},
		{"A: b\r\nC: d", 0, "A: b\r\nC: d\r\n.\r\n"},
		{"A: b\r\n\r\nno end", 5, "A: b\r\n\r\nno end\r\n.\r\n"},
	} {
		var b bytes.Buffer
		if err := writeBody(&b, strings.NewReader(tc.msg), tc.bodyLines, make([]byte, 7)); err != nil || b.String() != tc.want {
			t.Errorf("writeBody(%q, %d) = %q, %v; want %q", tc.msg, tc.bodyLines, b.String(), err, tc.want)
		}
	}
}

// FuzzWriteBody checks that undoing the dot-stuffing of what writeBody
// sends gives back the message, with CRLF added when it did not end with
// a line break.
func FuzzWriteBody(f *testing.F) {
	for _, s := range []string{"", ".", "a\r\n.\r\n", "..\r\n.x", strings.Repeat("y", 40000) + "\r\n.z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		want := msg
		if want != "" && !strings.HasSuffix(want, "\n") {
			want += "\r\n"
		}
		// Pieces of every size meet dots at piece boundaries.
		for _, size := range []int{1, 2, 5, bodyBufSize} {
			var b bytes.Buffer
			if err := writeBody(&b, strings.NewReader(msg), -1, make([]byte, size)); err != nil {
				t.Fatal(err)
			}
			if got := unstuff(t, b.String()); got != want {
				t.Fatalf("round trip of %q in pieces of %d gave %q", msg, size, got)
			}
		}
	})
}

// unstuff decodes a multi-line response body the simple way: line by
// line.
func unstuff(t *testing.T, s string) string {
	var out strings.Builder
	for s != "" {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			t.Fatalf("response does not end with a line break: %q", s)
		}
		line := s[:i+1]
		s = s[i+1:]
		if line == ".\r\n" {
			if s != "" {
				t.Fatalf("data after the terminator: %q", s)
			}
			return out.String()
		}
		out.WriteString(strings.TrimPrefix(line, "."))
	}
	t.Fatal("no terminator")
	return ""
}

// BenchmarkWriteBody sends a 50 KB message of 72-byte lines, some
// starting with a dot, as RETR does.
func BenchmarkWriteBody(b *testing.B) {
	var msg strings.Builder
	for i := 0; msg.Len() < 50000; i++ {
		if i%100 == 0 {
			msg.WriteString(".")
		}
		msg.WriteString(strings.Repeat("x", 70) + "\r\n")
	}
	buf := make([]byte, bodyBufSize)
	b.SetBytes(int64(msg.Len()))
	for b.Loop() {
		if err := writeBody(io.Discard, strings.NewReader(msg.String()), -1, buf); err != nil {
			b.Fatal(err)
		}
	}
}
