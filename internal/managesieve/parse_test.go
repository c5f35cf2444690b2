package managesieve

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
)

// bytesSource is a source over a buffer, as the fuzz target and the table
// tests feed the parser.
type bytesSource struct{ br *bufio.Reader }

func newBytesSource(data string) bytesSource {
	return bytesSource{bufio.NewReader(strings.NewReader(data))}
}

func (s bytesSource) line(max int) ([]byte, error) {
	line, err := s.br.ReadBytes('\n')
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'})
	if len(line) > max {
		return nil, errLineTooLong
	}
	return line, nil
}

func (s bytesSource) literal(n int64) ([]byte, error) {
	b := make([]byte, n)
	_, err := io.ReadFull(s.br, b)
	return b, err
}

func (s bytesSource) discard(n int64) error {
	_, err := s.br.Discard(int(n))
	return err
}

var testLimits = parseLimits{maxLine: 1024, maxLiteral: 100, maxDiscard: 400}

func TestParseCommand(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want command
		err  string // "" for none, else a piece of the error
		// next is the command expected after this one, proving that the
		// parser resynchronized.
		next string
	}{
		{in: "LOGOUT\r\n", want: command{name: "LOGOUT"}},
		{in: "logout\n", want: command{name: "LOGOUT"}},
		{in: `noop "a b"` + "\r\n", want: command{name: "NOOP", args: []arg{{s: "a b"}}}},
		{in: `HAVESPACE "x" 123` + "\r\n", want: command{name: "HAVESPACE", args: []arg{{s: "x"}, {s: "123", atom: true}}}},
		{in: `RENAMESCRIPT  "a"   "b"` + "\r\n", want: command{name: "RENAMESCRIPT", args: []arg{{s: "a"}, {s: "b"}}}},
		{in: `NOOP "\\ \""` + "\r\n", want: command{name: "NOOP", args: []arg{{s: `\ "`}}}},
		{in: "PUTSCRIPT \"s\" {5+}\r\nkeep;\r\n", want: command{name: "PUTSCRIPT", args: []arg{{s: "s"}, {s: "keep;"}}}},
		{in: "PUTSCRIPT {1}\r\na {2+}\r\nb\n\r\n", want: command{name: "PUTSCRIPT", args: []arg{{s: "a"}, {s: "b\n"}}}},
		{in: "NOOP {0+}\r\n\r\n", want: command{name: "NOOP", args: []arg{{s: ""}}}},
		{in: `NOOP "é"` + "\r\n", want: command{name: "NOOP", args: []arg{{s: "é"}}}},
		{in: "\r\nNOOP\r\n", err: "empty command", next: "NOOP"},
		{in: "NOOP \"x\r\nNOOP\r\n", err: "unterminated", next: "NOOP"},
		{in: "NOOP \"\xff\"\r\nNOOP\r\n", err: "UTF-8", next: "NOOP"},
		{in: "NOOP \"a\\b\"\r\nNOOP\r\n", err: "backslash", next: "NOOP"},
		{in: "NOOP {3+} x\r\nNOOP\r\n", err: "end the line", next: "NOOP"},
		{in: "NOOP {x+}\r\nNOOP\r\n", err: "bad literal size", next: "NOOP"},
		{in: "NOOP {-1}\r\nNOOP\r\n", err: "bad literal size", next: "NOOP"},
		{in: "NOOP (x) {6+}\r\nLOGOUT\r\nNOOP\r\n", err: "unexpected", next: "NOOP"},
		{in: "NOOP \"a\"junk\r\nNOOP\r\n", err: "unexpected", next: "NOOP"},
		{in: "PUTSCRIPT \"s\" {200+}\r\n" + strings.Repeat("x", 200) + "\r\nNOOP\r\n", err: "too large", next: "NOOP"},
		{in: "PUTSCRIPT \"s\" {401+}\r\n" + strings.Repeat("x", 401) + "\r\n", err: "too large"},
		{in: "NOOP " + strings.Repeat("x", 1100) + "\r\nNOOP\r\n", err: "line too long", next: "NOOP"},
		{in: "PUTSCRIPT {1+}\r\na " + strings.Repeat("x", 1100) + " {5+}\r\nNOOP\r\n", err: "line too long", next: "NOOP"},
		{in: "NOOP" + strings.Repeat(" {0+}\r\n", 9) + "\r\n", err: "too many literals"},
		{in: "NOOP x" + strings.Repeat(" {0+}\r\n", 9) + "\r\n", err: "too many literals"},
		// As many literals as the command has arguments, no more: NOOP
		// takes one, PUTSCRIPT two; an unknown command as many as any.
		{in: "NOOP {0+}\r\n {0+}\r\n\r\n", err: "too many literals"},
		{in: "PUTSCRIPT {1+}\r\na {1+}\r\nb {1+}\r\nc\r\n", err: "too many literals"},
		{in: "XYZZY {1+}\r\na {1+}\r\nb\r\nNOOP\r\n", want: command{name: "XYZZY", args: []arg{{s: "a"}, {s: "b"}}}, next: "NOOP"},
		{in: "NOOP \"x\" junk {0+}\r\n {0+}\r\n\r\n", err: "too many literals"},
	} {
		t.Run(fmt.Sprintf("%.30q", tc.in), func(t *testing.T) {
			src := newBytesSource(tc.in)
			got, err := parseCommand(src, testLimits)
			if tc.err == "" {
				if err != nil || !reflect.DeepEqual(got, tc.want) {
					t.Errorf("parseCommand = %+v, %v; want %+v", got, err, tc.want)
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseCommand = %+v, %v; want an error with %q", got, err, tc.err)
			}
			if tc.next != "" {
				if next, err := parseCommand(src, testLimits); err != nil || next.name != tc.next {
					t.Errorf("then = %+v, %v; want %s", next, err, tc.next)
				}
			}
		})
	}
}

// FuzzParseCommand feeds the parser anything. It must not panic, must
// keep to its limits, and a command it accepts, written back with quote
// or as literals, must parse to the same command.
func FuzzParseCommand(f *testing.F) {
	for _, seed := range []string{
		"LOGOUT\r\n",
		`AUTHENTICATE "PLAIN" "AGFsaWNlAHB3"` + "\r\n",
		"PUTSCRIPT \"s\" {5+}\r\nkeep;\r\n",
		"PUTSCRIPT {1}\r\na {2+}\r\nb\n\r\n",
		`HAVESPACE "x" 123` + "\r\n",
		`NOOP "\\ \""` + "\r\n",
		"NOOP \"x\" junk {3+}\r\nabc\r\nNOOP\r\n",
		"PUTSCRIPT \"s\" {200+}\r\n" + strings.Repeat("x", 200) + "\r\n",
		"NOOP {99999999999999999999+}\r\n",
		"\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		src := newBytesSource(string(data))
		for range 10 {
			cmd, err := parseCommand(src, testLimits)
			if err != nil {
				var tb errTooBig
				var se syntaxError
				if errors.As(err, &tb) && !tb.fatal || errors.As(err, &se) {
					continue
				}
				return
			}
			for _, a := range cmd.args {
				if int64(len(a.s)) > testLimits.maxLiteral && !a.atom {
					t.Fatalf("argument of %d octets over the limit", len(a.s))
				}
			}
			again, err := parseCommand(newBytesSource(format(cmd)), parseLimits{maxLine: 1 << 20, maxLiteral: 1 << 20, maxDiscard: 1 << 20})
			if err != nil || !reflect.DeepEqual(again, cmd) {
				t.Fatalf("%+v written as %q parses to %+v, %v", cmd, format(cmd), again, err)
			}
		}
	})
}

// format writes a command as a client would.
func format(cmd command) string {
	var b strings.Builder
	b.WriteString(cmd.name)
	for _, a := range cmd.args {
		b.WriteByte(' ')
		switch {
		case a.atom:
			b.WriteString(a.s)
		case strings.HasPrefix(quote(a.s), "{"):
			fmt.Fprintf(&b, "{%d+}\r\n%s", len(a.s), a.s)
		default:
			b.WriteString(quote(a.s))
		}
	}
	b.WriteString("\r\n")
	return b.String()
}

func TestQuote(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", `""`},
		{"plain", `"plain"`},
		{`a "b" \c`, `"a \"b\" \\c"`},
		{"é", `"é"`},
		{"a\r\nb", "{4}\r\na\r\nb"},
		{"nul\x00", "{4}\r\nnul\x00"},
		{"\xff", "{1}\r\n\xff"},
		{strings.Repeat("x", 1024), `"` + strings.Repeat("x", 1024) + `"`},
		{strings.Repeat("x", 1025), "{1025}\r\n" + strings.Repeat("x", 1025)},
	} {
		if got := quote(tc.in); got != tc.want {
			t.Errorf("quote(%.20q) = %.40q, want %.40q", tc.in, got, tc.want)
		}
	}
}

// TestMaxArgs: an unknown command may carry as many literals as the
// command that takes the most arguments, so maxArgs must keep up with the
// table.
func TestMaxArgs(t *testing.T) {
	t.Parallel()
	most := 0
	for _, spec := range commands {
		most = max(most, spec.maxArgs)
	}
	if most != maxArgs {
		t.Errorf("maxArgs = %d; the commands take at most %d arguments", maxArgs, most)
	}
}
