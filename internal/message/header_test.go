package message

import (
	"testing"
)

func TestHeaderFields(t *testing.T) {
	const header = "From: ann@example.org\r\n" +
		"Subject: a folded\r\n subject\r\n" +
		"X-Broken line\r\n" +
		"to: bob@example.com\r\n" +
		"Subject : second\r\n" +
		"\r\n"
	tests := []struct {
		name   string
		header string
		names  []string
		not    bool
		want   string
	}{{
		name: "selected fields keep order and folding", header: header,
		names: []string{"SUBJECT", "To"},
		want:  "Subject: a folded\r\n subject\r\nto: bob@example.com\r\nSubject : second\r\n\r\n",
	}, {
		name: "NOT keeps the rest, broken lines included", header: header,
		names: []string{"subject", "to"}, not: true,
		want: "From: ann@example.org\r\nX-Broken line\r\n\r\n",
	}, {
		name: "nothing selected still ends with the empty line", header: header,
		names: []string{"Cc"},
		want:  "\r\n",
	}, {
		name: "no empty line in a header that has none", header: "Subject: x\r\nFrom: a@b",
		names: []string{"from"},
		want:  "From: a@b\r\n",
	}, {
		name: "names match ASCII case-insensitively only", header: "K\u212aey: x\r\n\r\n",
		names: []string{"kkey"},
		want:  "\r\n",
	}, {
		name: "a continuation with nothing before it has no name", header: " orphan\r\nA: 1\r\n\r\n",
		names: []string{"A"}, not: true,
		want: " orphan\r\n\r\n",
	}, {
		name: "bare LF", header: "A: 1\nB: 2\n\n",
		names: []string{"b"},
		want:  "B: 2\n\n",
	}, {
		name: "empty header", header: "",
		names: []string{"a"},
		want:  "",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(HeaderFields([]byte(tt.header), tt.names, tt.not))
			if got != tt.want {
				t.Errorf("HeaderFields(%q, %q, %v) = %q, want %q", tt.header, tt.names, tt.not, got, tt.want)
			}
		})
	}
}

func TestUnfold(t *testing.T) {
	tests := []struct{ in, want string }{
		{" plain\r\n", "plain"},
		{" a\r\n b\r\n\tc\r\n", "a b\tc"},
		{" a\n b\n", "a b"},
		{"\t \r\n", ""},
		{" caf\xe9 ", "caf\xe9"},
	}
	for _, tt := range tests {
		if got := unfold([]byte(tt.in)); got != tt.want {
			t.Errorf("unfold(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestEnvelopeFields checks which occurrence of a field counts, and the
// RFC 9051 7.5.2 defaults for Sender and Reply-To.
func TestEnvelopeFields(t *testing.T) {
	tests := []struct {
		name   string
		header string
		check  func(*Envelope) bool
	}{{
		name:   "first occurrence wins",
		header: "Subject: one\r\nSubject: two\r\n",
		check:  func(e *Envelope) bool { return e.Subject == "one" },
	}, {
		name:   "white space before the colon",
		header: "Subject  : spaced\r\n",
		check:  func(e *Envelope) bool { return e.Subject == "spaced" },
	}, {
		name:   "empty Sender defaults to From",
		header: "From: a@b.c\r\nSender:\r\nReply-To: r@b.c\r\n",
		check: func(e *Envelope) bool {
			return e.Sender[0].Mailbox == "a" && e.ReplyTo[0].Mailbox == "r"
		},
	}, {
		name:   "no From, no defaults",
		header: "Sender: s@b.c\r\n",
		check:  func(e *Envelope) bool { return e.From == nil && e.ReplyTo == nil && e.Sender[0].Mailbox == "s" },
	}, {
		name:   "raw values",
		header: "Date: Tue,\r\n 3 Mar 2026\r\nMessage-ID:  <x@y> \r\nIn-Reply-To: <a@b> (comment)\r\n",
		check: func(e *Envelope) bool {
			return e.Date == "Tue, 3 Mar 2026" && e.MessageID == "<x@y>" && e.InReplyTo == "<a@b> (comment)"
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h headerInfo
			h.scan([]byte(tt.header), true)
			env := h.envelope()
			if !tt.check(env) {
				t.Errorf("envelope of %q: %+v", tt.header, env)
			}
		})
	}
}

func TestContentFields(t *testing.T) {
	tests := []struct {
		name     string
		header   string
		inDigest bool
		want     string // dumpPart's first line, offsets stripped
	}{
		{"default", "", false, "text/plain (\"charset\" \"us-ascii\") enc=7BIT"},
		{"digest default", "", true, "message/rfc822 enc=7BIT"},
		{"digest with explicit type", "Content-Type: text/plain\r\n", true, "text/plain enc=7BIT"},
		{"unparsable type", "Content-Type: text\r\n", false, "text/plain (\"charset\" \"us-ascii\") enc=7BIT"},
		{"unparsable type in digest", "Content-Type: ;\r\n", true, "text/plain (\"charset\" \"us-ascii\") enc=7BIT"},
		{"case folded", "Content-Type: Text/HTML; Charset=UTF-8\r\nContent-Transfer-Encoding: Quoted-Printable\r\n", false,
			"text/html (\"charset\" \"UTF-8\") enc=QUOTED-PRINTABLE"},
		{"encoding with junk", "Content-Transfer-Encoding: base64; foo\r\n", false, "text/plain (\"charset\" \"us-ascii\") enc=BASE64"},
		{"empty encoding", "Content-Transfer-Encoding:\r\n", false, "text/plain (\"charset\" \"us-ascii\") enc=7BIT"},
		{"other fields", "Content-ID: <a@b>\r\nContent-Description: d\r\nContent-Location: l\r\nContent-MD5: m\r\nContent-Disposition: ATTACHMENT; Filename=x\r\nContent-Language: en-GB , de\r\n", false,
			"text/plain (\"charset\" \"us-ascii\") enc=7BIT id=\"<a@b>\" desc=\"d\" loc=\"l\" md5=\"m\" disp=attachment (\"filename\" \"x\") lang=[\"en-GB\" \"de\"]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Part
			var h headerInfo
			h.scan([]byte(tt.header), false)
			h.setContent(&p, tt.inDigest)
			got := dumpTree(&p)
			got = got[len("root [0 0 0) lines=0 ") : len(got)-1]
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}
