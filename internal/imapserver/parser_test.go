package imapserver

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
)

// parseAll runs the command parser over raw client input, the way the
// connection does: command after command, literals read or skipped,
// APPEND messages discarded, failed commands skipped to their end. It
// returns one line per command: its name, or its error. The error is nil
// when the input ends between two commands, io.EOF or another when it
// ends inside one.
func parseAll(data []byte) (out []string, err error) {
	r := &reader{br: bufio.NewReaderSize(bytes.NewReader(data), 4096), maxLine: 1000, absurd: 100000}
	for range 1000 {
		if _, err := r.br.Peek(1); err == io.EOF {
			return out, nil
		}
		line, err := r.readLine()
		var tooLong *lineTooLongError
		switch {
		case errors.As(err, &tooLong):
			p := newParser(r, tooLong.Tail, 0, nil)
			if err := p.discardRest(); err != nil {
				return out, err
			}
			out = append(out, "too long")
			continue
		case err != nil:
			return out, err
		}
		p := newParser(r, line, 1000, nil)
		res, fatal := parseOne(p)
		if fatal != nil {
			return out, fatal
		}
		out = append(out, res)
	}
	return out, nil
}

// parseOne parses one command and, for APPEND, reads its messages.
func parseOne(p *parser) (res string, fatal error) {
	defer func() {
		x := recover()
		if x == nil {
			return
		}
		switch e := x.(type) {
		case syntaxError:
			res = "BAD " + e.msg
		case userError:
			res = "NO " + e.msg
		case ioError:
			fatal = e.err
			return
		default:
			panic(x)
		}
		if err := p.discardRest(); err != nil {
			fatal = err
		}
	}()
	cmd := parseCommand(p)
	if a, ok := cmd.args.(*appendArgs); ok {
		m := a.first
		for {
			if m.lit.size > 10000 {
				p.refuseLiteral(m.lit, "TOOBIG", "too big")
			}
			if err := p.r.discard(m.lit.size); err != nil {
				panic(ioError{err})
			}
			p.nextLine()
			if m.utf8 {
				p.xtake(")")
			}
			if p.atEnd() {
				break
			}
			p.xspace()
			m = p.xappendMessage()
		}
	}
	return cmd.name, nil
}

func TestParseCommands(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
	}{
		{"a NOOP\r\n", []string{"NOOP"}},
		{"a noop\nb capability\r\n", []string{"NOOP", "CAPABILITY"}},
		{"a UID fetch 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From)]<0.10>)\r\n", []string{"UID FETCH"}},
		{"a FETCH 1 (BODY[1.2.MIME] BINARY[1] BINARY.SIZE[2] RFC822 MODSEQ) (CHANGEDSINCE 5)\r\n", []string{"FETCH"}},
		{"a LOGIN {4+}\r\nuser {4+}\r\npass\r\n", []string{"LOGIN"}},
		{"a APPEND INBOX (\\Seen) \" 1-Jan-2024 10:00:00 +0000\" {5+}\r\nhello {3+}\r\nbye\r\nb NOOP\r\n", []string{"APPEND", "NOOP"}},
		{"a APPEND INBOX UTF8 (~{2+}\r\nhi)\r\n", []string{"APPEND"}},
		{"a FROB\r\nb NOOP\r\n", []string{`BAD unknown command "FROB"`, "NOOP"}},
		// A failed command's non-synchronising literal is skipped.
		{"a FROB {5+}\r\nhello\r\nb NOOP\r\n", []string{`BAD unknown command "FROB"`, "NOOP"}},
		{"a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n", []string{"SELECT"}},
		{"a SEARCH RETURN (MIN COUNT SAVE) CHARSET UTF-8 OR (FROM \"x\" NOT SEEN) UID $ 2:4 MODSEQ 5 SENTBEFORE 1-Feb-2024\r\n", []string{"SEARCH"}},
		{"a STORE 1:2 (UNCHANGEDSINCE 12) +FLAGS.SILENT (\\Deleted $Junk)\r\n", []string{"STORE"}},
		// RFC 8514 and RFC 5032.
		{"a SEARCH SAVEDSINCE 1-Jun-2024 SAVEDBEFORE \"2-Jun-2024\" SAVEDON 3-Jun-2024 SAVEDATESUPPORTED OLDER 5 YOUNGER 7\r\nb FETCH 1 (SAVEDATE)\r\n",
			[]string{"SEARCH", "FETCH"}},
		{"a SEARCH OLDER 0\r\nb SEARCH YOUNGER 4294967296\r\nc SEARCH SAVEDON 2024-06-01\r\n", []string{
			`BAD expected non-zero number (at byte 16)`, `BAD number out of range (at byte 27)`, `BAD bad date "2024-06-01" (at byte 27)`}},
		{"a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (% INBOX/*) RETURN (CHILDREN STATUS (MESSAGES UNSEEN))\r\n", []string{"LIST"}},
		{"a CREATE Sent (USE (\\Sent))\r\n", []string{"CREATE"}},
		{"a ID NIL\r\nb ID (\"name\" \"x\" \"version\" NIL)\r\n", []string{"ID", "ID"}},
		{"a FETCH 1 (BODY[]<4294967296.9223372036854775807>)\r\n", []string{"FETCH"}},
		{"a FETCH 1 ()\r\nb FETCH 1 (UID )\r\n", []string{`BAD unknown FETCH item "" (at byte 11)`, `BAD unknown FETCH item "" (at byte 15)`}},
		{"a FETCH 1 (BODY[]<3.0>)\r\nb FETCH 1 (BODY[]<0.9223372036854775808>)\r\n", []string{
			`BAD expected non-zero number (at byte 21)`, `BAD number out of range (at byte 39)`}},
		{"a LOGIN x\r\n", []string{`BAD expected " " (at byte 9)`}},
		{"a LOGIN {2000+}\r\n" + strings.Repeat("x", 2000) + "\r\nb NOOP\r\n", []string{"NO literal too big", "NOOP"}},
		{strings.Repeat("x", 3000) + "\r\nb NOOP\r\n", []string{"too long", "NOOP"}},
	}
	for _, tt := range tests {
		got, err := parseAll([]byte(tt.in))
		if err != nil && err != io.EOF {
			t.Errorf("%q: %v", tt.in, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%q:\n got  %q\n want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzParseCommand feeds arbitrary client input to the command parser: it
// must never panic other than through its error helpers, nor loop. And
// when the input ends between two commands, every command, failed ones
// too, must have been read to its end and no further: a command sent
// after it is parsed on its own.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"a NOOP\r\n",
		"a LOGIN {4}\r\nuser \"pass\"\r\n",
		"a APPEND INBOX (\\Seen) {5+}\r\nhello\r\n",
		"a UID FETCH 1:*,$ (BODY.PEEK[1.2.HEADER.FIELDS.NOT (A B)]<1.2> BINARY[1])\r\n",
		"a SEARCH OR NOT (SEEN) HEADER x \"y\" UID 3:*\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := parseAll(data)
		if err != nil || len(out) >= 999 {
			return
		}
		// A copy: the fuzzing engine's slice may have room past its end,
		// which append would write into.
		more, err := parseAll(slices.Concat(data, []byte("z NOOP\r\n")))
		if want := append(out, "NOOP"); err != nil || !slices.Equal(more, want) {
			t.Fatalf("%q then a NOOP: %q, %v; want %q", data, more, err, want)
		}
	})
}
