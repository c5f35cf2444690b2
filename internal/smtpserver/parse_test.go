package smtpserver

import (
	"errors"
	"math"
	"net/netip"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseCommand(t *testing.T) {
	for _, tt := range []struct {
		line, verb, arg string
		code            int // of the error; 0: none
	}{
		{"LHLO client.example.net", "LHLO", "client.example.net", 0},
		{"lhlo x", "LHLO", "x", 0},
		{"QUIT", "QUIT", "", 0},
		{"MAIL FROM:<a@b> SIZE=5", "MAIL", "FROM:<a@b> SIZE=5", 0},
		{"rcpt TO:<a@b>", "RCPT", "TO:<a@b>", 0},
		{"", "", "", 500},
		{" NOOP", "", "", 500},
		{strings.Repeat("X", 17), "", "", 500},
		{"RCPT TO:<bob\x00@example.org>", "", "", 501},
		{"NOOP \r", "", "", 501},
		{"NOOP \x7f", "", "", 501},
		{"NOOP \t", "NOOP", "\t", 0},
	} {
		verb, arg, err := parseCommand(tt.line)
		if code := replyCode(err); code != tt.code || verb != tt.verb || arg != tt.arg {
			t.Errorf("parseCommand(%q) = %q, %q, %v; want %q, %q, code %d", tt.line, verb, arg, err, tt.verb, tt.arg, tt.code)
		}
	}
}

// replyCode is the code of a parser's error, 0 for none.
func replyCode(err error) int {
	if err == nil {
		return 0
	}
	var r reply
	if !errors.As(err, &r) {
		return -1
	}
	return r.code
}

func TestParseMail(t *testing.T) {
	for _, tt := range []struct {
		arg     string
		mailbox string // of the path
		address string // what it is looked up by
		size    int64
		code    int // of the error; 0: none
	}{
		{"FROM:<carol@example.net>", "carol@example.net", "carol@example.net", -1, 0},
		{"from:<carol@example.net>", "carol@example.net", "carol@example.net", -1, 0},
		{"FROM: <carol@example.net>", "carol@example.net", "carol@example.net", -1, 0},
		{"FROM:<>", "", "", -1, 0},
		{"FROM:<> SIZE=100", "", "", 100, 0},
		// RFC 5321 4.1.2: the quoted form stays for Return-Path.
		{`FROM:<"a b"@example.org>`, `"a b"@example.org`, "a b@example.org", -1, 0},
		{`FROM:<"a\"b\\c"@example.org>`, `"a\"b\\c"@example.org`, `a"b\c@example.org`, -1, 0},
		// RFC 5321 C: a source route is dropped.
		{"FROM:<@relay.example,@b.example:carol@example.net>", "carol@example.net", "carol@example.net", -1, 0},
		{"FROM:<carol@[192.0.2.1]>", "carol@[192.0.2.1]", "carol@[192.0.2.1]", -1, 0},
		{"FROM:<first..last@example.net>", "first..last@example.net", "first..last@example.net", -1, 0},
		{"FROM:<jos\u00e9@ex\u00e4mple.net> SMTPUTF8", "jos\u00e9@ex\u00e4mple.net", "jos\u00e9@ex\u00e4mple.net", -1, 0},
		{"FROM:<a@b> SIZE=5000000000 BODY=8BITMIME SMTPUTF8", "a@b", "a@b", 5000000000, 0},
		{"FROM:<a@b> size=12 body=7bit", "a@b", "a@b", 12, 0},
		// RFC 1870 6: up to 20 digits; past int64 it saturates.
		{"FROM:<a@b> SIZE=99999999999999999999", "a@b", "a@b", math.MaxInt64, 0},
		{"FROM:<a@b> SIZE=999999999999999999999", "", "", 0, 501},
		{"FROM:<a@b> SIZE=", "", "", 0, 501},
		{"FROM:<a@b> SIZE=-1", "", "", 0, 501},
		{"FROM:<a@b> SIZE=1 SIZE=2", "", "", 0, 501},
		// The same parameter twice, as Python's smtplib sends SMTPUTF8
		// and BODY=8BITMIME when its caller gave them too: taken once.
		{"FROM:<a@b> SMTPUTF8 SMTPUTF8 BODY=8BITMIME body=8bitmime", "a@b", "a@b", -1, 0},
		{"FROM:<a@b> SIZE=7 SIZE=7", "a@b", "a@b", 7, 0},
		{"FROM:<a@b> BODY=7BIT BODY=8BITMIME", "", "", 0, 501},
		{"FROM:<a@b> BODY=BINARYMIME", "", "", 0, 555},
		{"FROM:<a@b> BODY=9BIT", "", "", 0, 501},
		{"FROM:<a@b> SMTPUTF8=yes", "", "", 0, 501},
		{"FROM:<a@b> RET=FULL", "", "", 0, 555},
		{"FROM:<postmaster>", "", "", 0, 501},
		{"FROM:a@b", "", "", 0, 501},
		{"FROM:<a@b", "", "", 0, 501},
		{"FROM:<a@b>x", "", "", 0, 501},
		{"FROM:<a b@c>", "", "", 0, 501},
		{"FROM:<a@>", "", "", 0, 501},
		{"FROM:<@b>", "", "", 0, 501},
		{`FROM:<"unterminated@b>`, "", "", 0, 501},
		{"FROM:<@relay:>", "", "", 0, 501},
		{"FROM:<a@b\xff>", "", "", 0, 501},
		// Nothing that a Unicode-aware reader would take for a line break
		// or a control reaches the Return-Path line: NEL, LINE SEPARATOR,
		// PARAGRAPH SEPARATOR, other C1 controls, quoted or not.
		{"FROM:<a\u0085b@example.net> SMTPUTF8", "", "", 0, 501},
		{"FROM:<\"a\u2028X-Spam-Flag: NO\"@example.net> SMTPUTF8", "", "", 0, 501},
		{"FROM:<a@ex\u2029ample.net> SMTPUTF8", "", "", 0, 501},
		{"FROM:<a\u009bb@example.net> SMTPUTF8", "", "", 0, 501},
		{"FROM:<\u200cab@example.net> SMTPUTF8", "\u200cab@example.net", "\u200cab@example.net", -1, 0},
		{"TO:<a@b>", "", "", 0, 501},
		{"", "", "", 0, 501},
	} {
		m, err := parseMail(tt.arg)
		if code := replyCode(err); code != tt.code {
			t.Errorf("parseMail(%q): %v, want code %d", tt.arg, err, tt.code)
			continue
		}
		if err != nil {
			continue
		}
		if m.from.mailbox != tt.mailbox || m.from.address() != tt.address || m.size != tt.size {
			t.Errorf("parseMail(%q) = %q (%q), size %d; want %q (%q), size %d", tt.arg, m.from.mailbox, m.from.address(), m.size, tt.mailbox, tt.address, tt.size)
		}
	}
}

func TestParseRcpt(t *testing.T) {
	for _, tt := range []struct {
		arg, mailbox, address string
		postmaster            bool
		code                  int
	}{
		{"TO:<alice@example.org>", "alice@example.org", "alice@example.org", false, 0},
		{"to:<Alice+news@Example.ORG>", "Alice+news@Example.ORG", "Alice+news@Example.ORG", false, 0},
		// RFC 5321 4.5.1: <postmaster> has no domain.
		{"TO:<postmaster>", "postmaster", "postmaster", true, 0},
		{"TO:<Postmaster>", "Postmaster", "Postmaster", true, 0},
		{"TO:<postmaster@example.org>", "postmaster@example.org", "postmaster@example.org", false, 0},
		{`TO:<"alice"@example.org>`, `"alice"@example.org`, "alice@example.org", false, 0},
		{"TO:<@a.example,@b.example:alice@example.org>", "alice@example.org", "alice@example.org", false, 0},
		{"TO:<bob>", "", "", false, 501},
		{"TO:<>", "", "", false, 501},
		{"TO:<alice@example.org> NOTIFY=NEVER", "", "", false, 555},
		{"TO:alice@example.org", "", "", false, 501},
		{"FROM:<alice@example.org>", "", "", false, 501},
	} {
		p, err := parseRcpt(tt.arg)
		if code := replyCode(err); code != tt.code {
			t.Errorf("parseRcpt(%q): %v, want code %d", tt.arg, err, tt.code)
			continue
		}
		if err == nil && (p.mailbox != tt.mailbox || p.address() != tt.address || p.isPostmaster() != tt.postmaster) {
			t.Errorf("parseRcpt(%q) = %q (%q, postmaster %v)", tt.arg, p.mailbox, p.address(), p.isPostmaster())
		}
	}
}

func TestParseBDAT(t *testing.T) {
	for _, tt := range []struct {
		arg  string
		size int64
		last bool
		ok   bool
	}{
		{"100", 100, false, true},
		{"0 LAST", 0, true, true},
		{"5 last", 5, true, true},
		{"", 0, false, false},
		{"x", 0, false, false},
		{"-1", 0, false, false},
		{"5 LAST more", 0, false, false},
		{"5 FIRST", 0, false, false},
		{"99999999999999999999", 0, false, false},
	} {
		size, last, err := parseBDAT(tt.arg)
		if (err == nil) != tt.ok || err == nil && (size != tt.size || last != tt.last) {
			t.Errorf("parseBDAT(%q) = %d, %v, %v", tt.arg, size, last, err)
		}
	}
}

// FuzzParseCommand feeds arbitrary command lines to the parsers: they
// must not panic, and a path they take must come out again the same when
// written back between angle brackets, with nothing in it that could
// break a reply or a Return-Path line.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"LHLO client.example.net",
		"EHLO client.example.net",
		"HELO [192.0.2.1]",
		"STARTTLS",
		"MAIL FROM:<jörg@bücher.example> BODY=8BITMIME SMTPUTF8",
		"MAIL FROM:<carol@example.net> SIZE=5000000000 BODY=8BITMIME SMTPUTF8",
		"MAIL FROM:<alice@example.org> AUTH=<> SIZE=300",
		"MAIL FROM: <alice@example.org> AUTH=alice+2Bx@example.org",
		`MAIL FROM:<"a b"@example.org>`,
		"RCPT TO:<postmaster>",
		"RCPT TO:<@a,@b:user@[192.0.2.1]>",
		"BDAT 1000 LAST",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		verb, arg, err := parseCommand(line)
		if err != nil {
			return
		}
		var p path
		switch verb {
		case "MAIL":
			m, err := parseMail(arg)
			if err != nil {
				return
			}
			p = m.from
		case "RCPT":
			if p, err = parseRcpt(arg); err != nil {
				return
			}
		case "BDAT":
			if size, _, err := parseBDAT(arg); err == nil && size < 0 {
				t.Fatalf("BDAT size %d", size)
			}
			return
		default:
			return
		}
		if strings.ContainsAny(p.mailbox, "\r\n\x00<>") && !strings.HasPrefix(p.mailbox, `"`) || !utf8.ValidString(p.mailbox) {
			t.Fatalf("path %q from %q", p.mailbox, line)
		}
		if strings.ContainsAny(p.mailbox, "\r\n\x00") {
			t.Fatalf("control bytes in path %q", p.mailbox)
		}
		again, rest, err := parsePath("<"+p.mailbox+">", errBadRecipient)
		if err != nil || rest != "" || again != p {
			t.Fatalf("path %q of %q parses again as %+v, %q, %v", p.mailbox, line, again, rest, err)
		}
	})
}

// FuzzFromClause: whatever name EHLO or HELO gives, the Received field's
// from clause is one line whose comment closes where it should: no
// client can forge trace fields below ours (RFC 5321 4.4).
func FuzzFromClause(f *testing.F) {
	for _, s := range []string{"EHLO client.example.net", "HELO [192.0.2.1]", "EHLO [IPv6:2001:db8::1]", "EHLO my(pc)", `EHLO a\)b`, "EHLO bücher.example", "EHLO \xff\xfe.example", "EHLO a\u2028X-Spam-Flag:NO", "HELO a\u0085b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		verb, arg, err := parseCommand(line)
		if err != nil || verb != "EHLO" && verb != "HELO" {
			return
		}
		name, _, _ := strings.Cut(strings.TrimSpace(arg), " ")
		got := fromClause(name, netip.MustParseAddr("192.0.2.1"))
		if !utf8.ValidString(got) || strings.ContainsFunc(got, lineBreakOrControl) {
			t.Fatalf("from clause of %q: %q", name, got)
		}
		// The clause ends with the comment that holds the address; the
		// comment's parentheses balance, escaped ones aside.
		depth, i := 0, strings.IndexByte(got, '(')
		if i < 0 || !strings.HasSuffix(got, ")") {
			t.Fatalf("from clause of %q: %q", name, got)
		}
		for ; i < len(got); i++ {
			switch got[i] {
			case '\\':
				i++
			case '(':
				depth++
			case ')':
				depth--
				if depth == 0 && i != len(got)-1 {
					t.Fatalf("from clause of %q: %q: the comment ends early", name, got)
				}
			}
		}
		if depth != 0 {
			t.Fatalf("from clause of %q: %q: unbalanced comment", name, got)
		}
	})
}
