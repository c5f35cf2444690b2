package message

import (
	"strings"
	"testing"
)

// TestParseMailboxList: the mailbox-lists of RFC 5322 3.4 are read as a
// strict reader (Python's email.headerregistry, say) reads them, and
// everything else is refused, above all what a forgiving reader would
// read as fewer addresses than a strict one.
func TestParseMailboxList(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string // the addresses, "name <local@domain>" joined by " | "
		err  string // part of the error, when refused
	}{
		{in: "alice@example.org", want: " <alice@example.org>"},
		{in: "Alice <alice@example.org>", want: "Alice <alice@example.org>"},
		{in: `"Smith, Alice" <alice@example.org>, bob@example.org`, want: "Smith, Alice <alice@example.org> |  <bob@example.org>"},
		{in: "John Q. Public <jqp@example.org>", want: "John Q. Public <jqp@example.org>"},
		{in: "=?utf-8?q?Al=C3=ADce?= <alice@example.org>", want: "=?utf-8?q?Al=C3=ADce?= <alice@example.org>"},
		{in: "Alicía <alicía@exämple.org>", want: "Alicía <alicía@exämple.org>"},
		{in: "alice@example.org (Alice)", want: " <alice@example.org>"},
		{in: "(c) alice@example.org (c)", want: " <alice@example.org>"},
		{in: "Alice < alice@example.org >", want: "Alice <alice@example.org>"},
		{in: "alice (c) @ (c) example.org", err: "before @ is not a local part"},
		{in: "alice @example.org", err: "before @ is not a local part"},
		{in: "<alice @example.org>", err: "no @domain right after it"},
		{in: "alice@ example.org", err: "not a domain"},
		{in: "Alice\r\n <alice@example.org>", want: "Alice <alice@example.org>"},
		{in: `"al ice"@example.org`, want: " <al ice@example.org>"},
		{in: "a@[192.0.2.1]", want: " <a@[192.0.2.1]>"},
		{in: "first.last@sub.example.org", want: " <first.last@sub.example.org>"},

		{in: "", err: "an empty address"},
		{in: "  (just a comment) ", err: "an empty address"},
		{in: "alice@example.org ceo@example.com", err: "separated by commas"},
		{in: "Alice <alice@example.org> <ceo@example.com>", err: "separated by commas"},
		{in: "ceo@example.com <alice@example.org>", err: "separated by commas"},
		{in: "alice@example.org, " + strings.Repeat("g:;, ", 5000) + "ceo@example.com", err: "a group"},
		{in: "alice@example.org, " + strings.Repeat(`"g:;, "`, 3) + "ceo@example.com", err: "before @ is not a local part"},
		{in: "alice@example.org, g:;, ceo@example.com", err: "a group"},
		{in: "Us: alice@example.org;", err: "a group"},
		{in: "alice@example.org,", err: "an empty address"},
		{in: "alice@example.org,, bob@example.org", err: "where an address should be"},
		{in: ", alice@example.org", err: "where an address should be"},
		{in: "alice", err: `"alice" is not an address`},
		{in: "Alice Smith", err: "is not an address"},
		{in: "@example.org", err: "without a local part"},
		{in: "Al ice@example.org", err: "before @ is not a local part"},
		{in: "<@relay.example.net:ceo@example.com>", err: "source route"},
		{in: "<alice@example.org", err: "not closed"},
		{in: "Alice <alice@example.org>>", err: "separated by commas"},
		{in: `"Alice <alice@example.org>`, err: "unterminated quoted string"},
		{in: "alice@example.org (Alice", err: "unterminated comment"},
		{in: "a..b@example.org", err: "not a local part"},
		{in: ".a@example.org", err: "not a local part"},
		{in: "a@example..org", err: "not a domain"},
		{in: "a@", err: "not a domain"},
		{in: `a@"example.org"`, err: "not a domain"},
		{in: "a@[192.0.2.1", err: "not a domain literal"},
		{in: "a@b@example.org", err: "separated by commas"},
		{in: "Smith, Alice <alice@example.org>", err: "is not an address"},
		{in: "Alice [work] <alice@example.org>", err: "not allowed here"},
		{in: strings.Repeat("a@example.org, ", 10) + "b@example.org", err: "more than 10 addresses"},
	} {
		got, err := ParseMailboxList(tt.in, 10)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseMailboxList(%q) = %v, %v; want an error with %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseMailboxList(%q): %v", tt.in, err)
			continue
		}
		var s []string
		for _, a := range got {
			s = append(s, a.Name+" <"+a.Mailbox+"@"+a.Host+">")
		}
		if strings.Join(s, " | ") != tt.want {
			t.Errorf("ParseMailboxList(%q) = %q, want %q", tt.in, strings.Join(s, " | "), tt.want)
		}
	}
}

// FuzzParseMailboxList: what ParseMailboxList takes, ParseAddressList,
// the forgiving reader, reads as the same addresses.
func FuzzParseMailboxList(f *testing.F) {
	for _, s := range []string{"alice@example.org", "Alice <alice@example.org>, bob@example.org", `"a b" <"x y"@[1.2.3.4]>`,
		"alice@example.org ceo@example.com", "a@b, g:;, c@d", "(c) a@b (c), <c@d>", "John Q. Public <jqp@example.org>", `<""@0>`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		strict, err := ParseMailboxList(s, 100)
		if err != nil {
			return
		}
		loose := ParseAddressList(s)
		if len(loose) != len(strict) {
			t.Fatalf("%q: strict %v, forgiving %v", s, strict, loose)
		}
		for i, a := range strict {
			if b := loose[i]; a.Host != b.Host || a.Mailbox != b.Mailbox && !strings.ContainsAny(a.Mailbox, "\" \\") {
				t.Fatalf("%q: strict %v, forgiving %v", s, strict, loose)
			}
		}
	})
}
