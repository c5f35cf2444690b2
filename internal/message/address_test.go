package message

import (
	"strings"
	"testing"
)

func TestParseAddressList(t *testing.T) {
	tests := []struct {
		in   string
		want string // as dumpAddresses writes it
	}{
		{"", ""},
		{"ann@example.org", `("" "" "ann" "example.org")`},
		{"Ann Example <ann@example.org>", `("Ann Example" "" "ann" "example.org")`},
		{`"Doe, John" <j@x.y>, k@x.y`, `("Doe, John" "" "j" "x.y") ("" "" "k" "x.y")`},
		{`"a \"quoted\" name" <a@b>`, `("a \"quoted\" name" "" "a" "b")`},
		{"j@x.y (John Doe)", `("John Doe" "" "j" "x.y")`},
		{"(comment) John (another) <j@x.y> (trailing)", `("John" "" "j" "x.y")`},
		{"John   Q.  Public <jqp@x.y>", `("John Q. Public" "" "jqp" "x.y")`},
		{"=?UTF-8?Q?Bj=C3=B6rn?= <b@x.se>", `("=?UTF-8?Q?Bj=C3=B6rn?=" "" "b" "x.se")`},
		{`"john doe"@x.y`, `("" "" "john doe" "x.y")`},
		{"user@[192.0.2.1]", `("" "" "user" "[192.0.2.1]")`},
		{"<@r1.example,@r2.example:u@h.example>", `("" "@r1.example,@r2.example" "u" "h.example")`},
		{"Friends: a@b.c, Bob <b@b.c>;", `group("Friends") ("" "" "a" "b.c") ("Bob" "" "b" "b.c") end-group`},
		{"undisclosed-recipients:;", `group("undisclosed-recipients") end-group`},
		{"G: a@b.c; , x@y.z", `group("G") ("" "" "a" "b.c") end-group ("" "" "x" "y.z")`},
		{"G: a@b.c", `group("G") ("" "" "a" "b.c") end-group`},
		{"a@b.c;", `("" "" "a" "b.c")`},

		// Junk.
		{"bob", `("" "" "bob" "MISSING_DOMAIN")`},
		{"<>", `("" "" "MISSING_MAILBOX" "MISSING_DOMAIN")`},
		{"@example.org", `("" "" "MISSING_MAILBOX" "example.org")`},
		{"Bob <bob@>", `("Bob" "" "bob" "MISSING_DOMAIN")`},
		{"A <a@x> B <b@y>", `("A" "" "a" "x") ("B" "" "b" "y")`},
		{"A <a@x> trailing junk, c@d", `("A" "" "a" "x") ("" "" "c" "d")`},
		{"John Doe john@x.y", `("John Doe" "" "john" "x.y")`},
		{"a@b.c,,, ,d@e.f", `("" "" "a" "b.c") ("" "" "d" "e.f")`},
		{"<a@b.c", `("" "" "a" "b.c")`},
		{"a@b.c>", `("" "" "a" "b.c")`},
		{`"unterminated <x@y>`, `("" "" "unterminated <x@y>" "MISSING_DOMAIN")`},
		{"(unterminated <x@y>", ""},
		{"a@b@c", `("" "" "a" "b@c")`},
		{")@g", `("" "" ")" "g")`}, // a stray ")" once stalled the lexer
		{"a) b@c", `("a)" "" "b" "c")`},
		{"caf\xe9 <c@x>", `("caf\xe9" "" "c" "x")`},
		{"A: B: c@d;", `group("A") ("" "" "B" "MISSING_DOMAIN") ("" "" "c" "d") end-group`},
		{"Ann <mailto:ann@example.org>", `("Ann" "" "ann" "example.org")`},
		{"<a b:c@d>", `("" "" "c" "d")`},
	}
	for _, tt := range tests {
		got := dumpAddresses(ParseAddressList(tt.in))
		if got != tt.want {
			t.Errorf("ParseAddressList(%q)\n got %s\nwant %s", tt.in, got, tt.want)
		}
	}
}

func TestParseAddressListBounded(t *testing.T) {
	list := ParseAddressList(strings.Repeat("a@b,", 2*maxAddresses))
	if len(list) != maxAddresses {
		t.Errorf("%d addresses, want %d", len(list), maxAddresses)
	}
}
