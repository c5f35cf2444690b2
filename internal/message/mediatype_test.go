package message

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseMediaType(t *testing.T) {
	p := func(kv ...string) []Param {
		var ps []Param
		for i := 0; i < len(kv); i += 2 {
			ps = append(ps, Param{Name: kv[i], Value: kv[i+1]})
		}
		return ps
	}
	tests := []struct {
		in       string
		typ, sub string
		params   []Param
		ok       bool
	}{
		{"text/plain", "text", "plain", nil, true},
		{" Text / Plain ; charset = \"UTF-8\" ", "text", "plain", p("charset", "UTF-8"), true},
		{"(comment) text/plain (c); charset=us-ascii (Plain text)", "text", "plain", p("charset", "us-ascii"), true},
		{"multipart/mixed; boundary=\"----=_Part_1\"", "multipart", "mixed", p("boundary", "----=_Part_1"), true},
		{"multipart/mixed;\tboundary=----=_Part_1", "multipart", "mixed", p("boundary", "----=_Part_1"), true},
		{"text/plain; name=\"a \\\"q\\\" b\"", "text", "plain", p("name", "a \"q\" b"), true},
		{"text/plain; name=\"unterminated", "text", "plain", p("name", "unterminated"), true},
		{"text/plain; name=\"a\"junk; b=c", "text", "plain", p("name", "a", "b", "c"), true},
		{"application/pdf name=\"x.pdf\"", "application", "pdf", p("name", "x.pdf"), true},
		{"application/pdf; name=Invoice_(3).pdf", "application", "pdf", p("name", "Invoice_(3).pdf"), true},
		{"application/pdf; name=a b.pdf ; x=1", "application", "pdf", p("name", "a b.pdf", "x", "1"), true},
		{"text/html;iso-8859-1", "text", "html", nil, true},
		{"text/html; ; ;charset=x;", "text", "html", p("charset", "x"), true},
		{"text/plain; A=1; a=2; B=3", "text", "plain", p("a", "1", "b", "3"), true},
		{"text/plain; =x; y", "text", "plain", nil, true},
		{"text/plain>", "text", "plain", nil, true},
		{"text/calendar; method=text/calendar", "text", "calendar", p("method", "text/calendar"), true},
		{"t\xe9xt/pl\xe2in", "t\xe9xt", "pl\xe2in", nil, true},
		{"text", "", "", nil, false},
		{"text/", "", "", nil, false},
		{"/plain", "", "", nil, false},
		{";", "", "", nil, false},
		{"", "", "", nil, false},
		{"<html>", "", "", nil, false},

		// RFC 2231
		{"a/b; title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A", "a", "b", p("title", "This is ***fun***"), true},
		{"a/b; title*0*=us-ascii'en'This%20is%20even%20more%20; title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2=\"isn't it!\"",
			"a", "b", p("title", "This is even more ***fun*** isn't it!"), true},
		{"a/b; name*1=\"b\"; name*0=\"a\"; name*2=c", "a", "b", p("name", "abc"), true},
		{"a/b; name=\"old\"; name*=utf-8''new", "a", "b", p("name", "new"), true},
		{"a/b; x=1; name*0=a; y=2; name*1=b", "a", "b", p("x", "1", "name", "ab", "y", "2"), true},
		{"a/b; name*=iso-8859-1''caf%E9", "a", "b", p("name", "café"), true},
		{"a/b; name*=windows-1251''%CF%F0%E8%E2%E5%F2", "a", "b", p("name", "Привет"), true},
		{"a/b; name*=no-such-charset''%41%ff", "a", "b", p("name", "A\xff"), true},
		{"a/b; name*=utf-8''100%25 %zz%4", "a", "b", p("name", "100% %zz%4"), true},
		{"a/b; name*=noquotes%41", "a", "b", p("name", "noquotesA"), true},
		{"a/b; name*0*=utf-8''%E2%82; name*1*=%AC", "a", "b", p("name", "€"), true},
		{"a/b; name*x=1; *=2; name*99999=3", "a", "b", p("name*x", "1", "*", "2", "name*99999", "3"), true},
	}
	for _, tt := range tests {
		typ, sub, params, ok := parseMediaType(tt.in)
		if typ != tt.typ || sub != tt.sub || ok != tt.ok || !reflect.DeepEqual(params, tt.params) {
			t.Errorf("parseMediaType(%q) = %q, %q, %q, %v; want %q, %q, %q, %v",
				tt.in, typ, sub, params, ok, tt.typ, tt.sub, tt.params, tt.ok)
		}
	}
}

func TestParseDisposition(t *testing.T) {
	tests := []struct {
		in     string
		typ    string
		params []Param
	}{
		{"attachment", "attachment", nil},
		{"Inline; FILENAME=\"a.txt\"", "inline", []Param{{"filename", "a.txt"}}},
		{"; filename=x", "", []Param{{"filename", "x"}}},
		{"", "", nil},
	}
	for _, tt := range tests {
		typ, params := parseDisposition(tt.in)
		if typ != tt.typ || !reflect.DeepEqual(params, tt.params) {
			t.Errorf("parseDisposition(%q) = %q, %q; want %q, %q", tt.in, typ, params, tt.typ, tt.params)
		}
	}
}

// TestParseParamsBounded checks that a hostile number of parameters is
// cut off, and does not take quadratic time.
func TestParseParamsBounded(t *testing.T) {
	var b strings.Builder
	for i := range 100000 {
		b.WriteString("; p")
		b.WriteString(strings.Repeat("x", i%50))
		b.WriteString("=v")
	}
	if got := len(parseParams(b.String())); got != 50 {
		t.Errorf("%d distinct parameters, want 50", got)
	}
	if got := len(parseLanguage(strings.Repeat("en,", 1000))); got != maxLanguages {
		t.Errorf("%d languages, want %d", got, maxLanguages)
	}
}
