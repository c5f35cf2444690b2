package message

import (
	"bytes"
	"errors"
	"os"
	"testing"
)

func parseFile(t *testing.T, name string) ([]byte, *Part) {
	t.Helper()
	raw, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	root, err := Parse(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return raw, root
}

func TestSectionRange(t *testing.T) {
	const innerHeader = "From: Carol <carol@example.net>\r\nTo: Ann Example <ann@example.org>\r\nSubject: Inner message\r\n" +
		"Date: Mon, 2 Mar 2026 08:00:00 +0000\r\nMessage-ID: <inner-1@example.net>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/alternative; boundary=inner\r\n\r\n"
	const innerBody = "--inner\r\nContent-Type: text/plain\r\n\r\nInner text.\r\n--inner\r\nContent-Type: text/html\r\n\r\n<p>Inner text.</p>\r\n--inner--\r\n"
	const daveHeader = "From: Dave <dave@example.com>\r\nSubject: Plain inner\r\n\r\n"
	tests := []struct {
		file string
		path []int
		spec Specifier
		want string // the bytes, or "" with err
		err  bool
	}{
		{file: "nested-rfc822.eml", path: []int{1}, want: "Two forwarded messages follow."},
		{file: "nested-rfc822.eml", path: []int{1}, spec: SpecifierMIME, want: "Content-Type: text/plain\r\n\r\n"},
		{file: "nested-rfc822.eml", path: []int{1}, spec: SpecifierHeader, err: true},
		{file: "nested-rfc822.eml", path: []int{1}, spec: SpecifierText, err: true},
		{file: "nested-rfc822.eml", path: []int{2}, want: innerHeader + innerBody},
		{file: "nested-rfc822.eml", path: []int{2}, spec: SpecifierMIME, want: "Content-Type: message/rfc822\r\nContent-Description: forwarded, multipart\r\n\r\n"},
		{file: "nested-rfc822.eml", path: []int{2}, spec: SpecifierHeader, want: innerHeader},
		{file: "nested-rfc822.eml", path: []int{2}, spec: SpecifierText, want: innerBody},
		{file: "nested-rfc822.eml", path: []int{2, 1}, want: "Inner text."},
		{file: "nested-rfc822.eml", path: []int{2, 2}, spec: SpecifierMIME, want: "Content-Type: text/html\r\n\r\n"},
		{file: "nested-rfc822.eml", path: []int{2, 2, 1}, want: "<p>Inner text.</p>"},
		{file: "nested-rfc822.eml", path: []int{2, 3}, err: true},
		{file: "nested-rfc822.eml", path: []int{3, 1}, want: "Just text."},
		{file: "nested-rfc822.eml", path: []int{3, 1}, spec: SpecifierMIME, want: daveHeader},
		{file: "nested-rfc822.eml", path: []int{3}, spec: SpecifierHeader, want: daveHeader},
		{file: "nested-rfc822.eml", path: []int{3, 2}, err: true},
		{file: "nested-rfc822.eml", path: []int{4}, err: true},
		{file: "nested-rfc822.eml", path: []int{0}, err: true},
		{file: "nested-rfc822.eml", path: []int{-1}, err: true},
		{file: "nested-rfc822.eml", spec: SpecifierMIME, err: true},
		{file: "nested-rfc822.eml", spec: Specifier(42), err: true},

		{file: "simple.eml", path: []int{1}, want: "Hello Bob,\r\n\r\nthis is a plain message without a Content-Type.\r\n"},
		{file: "simple.eml", path: []int{2}, err: true},
		{file: "simple.eml", spec: SpecifierText, want: "Hello Bob,\r\n\r\nthis is a plain message without a Content-Type.\r\n"},

		{file: "message-global.eml", path: []int{1}, spec: SpecifierHeader, want: "From: =?UTF-8?Q?J=C3=BCrgen?= <juergen@example.de>\r\nSubject: inner\r\n\r\n"},
		{file: "message-global.eml", path: []int{1, 1}, want: "inner body\r\n"},
		{file: "message-global.eml", path: []int{1, 2}, err: true},

		{file: "header-only.eml", spec: SpecifierHeader, want: "From: ann@example.org\r\nSubject: No body, no empty line"},
		{file: "header-only.eml", spec: SpecifierText, want: ""},
	}
	for _, tt := range tests {
		raw, root := parseFile(t, tt.file)
		start, end, err := root.SectionRange(tt.path, tt.spec)
		if tt.err {
			if !errors.Is(err, ErrNoSection) {
				t.Errorf("%s %v %d: err = %v, want ErrNoSection", tt.file, tt.path, tt.spec, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %v %d: %v", tt.file, tt.path, tt.spec, err)
			continue
		}
		if got := string(raw[start:end]); got != tt.want {
			t.Errorf("%s %v %d = %q, want %q", tt.file, tt.path, tt.spec, got, tt.want)
		}
	}
}

func TestSectionWholeMessage(t *testing.T) {
	raw, root := parseFile(t, "nested-rfc822.eml")
	start, end, err := root.SectionRange(nil, SpecifierNone)
	if err != nil || start != 0 || end != int64(len(raw)) {
		t.Errorf("BODY[] = [%d, %d), %v; want [0, %d)", start, end, err, len(raw))
	}
	start, end, _ = root.SectionRange(nil, SpecifierHeader)
	header := raw[start:end]
	got := string(HeaderFields(header, []string{"subject", "from"}, false))
	if want := "From: Ann Example <ann@example.org>\r\nSubject: Fwd: two messages\r\n\r\n"; got != want {
		t.Errorf("HEADER.FIELDS (SUBJECT FROM) = %q, want %q", got, want)
	}
}

func TestMessageAndParam(t *testing.T) {
	_, root := parseFile(t, "nested-rfc822.eml")
	if root.Message() != nil {
		t.Error("a multipart has no encapsulated message")
	}
	p2, _ := root.Section([]int{2})
	if m := p2.Message(); m == nil || m.Envelope.Subject != "Inner message" {
		t.Errorf("Message() of part 2 = %+v", m)
	}
	if b, ok := root.Param("boundary"); !ok || b != "outer" {
		t.Errorf(`Param("boundary") = %q, %v`, b, ok)
	}
	if _, ok := root.Param("charset"); ok {
		t.Error(`Param("charset") found on a multipart`)
	}
}
