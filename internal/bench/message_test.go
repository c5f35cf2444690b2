package bench

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"
)

func TestGeneratorDeterministic(t *testing.T) {
	g := Generator{Seed: 1, MinSize: 1024, MaxSize: 100 * 1024}
	if !bytes.Equal(g.Message(3, 7), g.Message(3, 7)) {
		t.Fatal("the same seed, user and index gave different messages")
	}
	others := map[string][]byte{
		"other index": g.Message(3, 8),
		"other user":  g.Message(4, 7),
		"other seed":  Generator{Seed: 2, MinSize: 1024, MaxSize: 100 * 1024}.Message(3, 7),
	}
	for name, m := range others {
		if bytes.Equal(m, g.Message(3, 7)) {
			t.Errorf("%s gave the same message", name)
		}
	}
}

// TestGeneratorGolden pins the corpus: two servers, or two campaigns, are
// only comparable if the same seed still makes the same mail. Change the
// hashes only with a deliberate change of the generator.
func TestGeneratorGolden(t *testing.T) {
	g := Generator{Seed: 1, MinSize: 1024, MaxSize: 100 * 1024}
	tests := []struct {
		user, index int
		want        string
	}{
		{1, 1, "b9e36243aac8c947"},
		{1, 2, "a463e993fc4ca890"},
		{42, 100000, "2e7034b997426c8f"},
	}
	for _, tc := range tests {
		got := fmt.Sprintf("%x", sha256.Sum256(g.Message(tc.user, tc.index)))[:16]
		if got != tc.want {
			t.Errorf("message %d of user %d hashes to %s, want %s", tc.index, tc.user, got, tc.want)
		}
	}
}

// TestGeneratorWellFormed parses many generated messages: CRLF lines of
// at most 998 octets (RFC 5322 2.1.1), the headers a client lists, MIME
// structure that parses to the end, sizes near the bounds.
func TestGeneratorWellFormed(t *testing.T) {
	g := Generator{Seed: 7, MinSize: 1024, MaxSize: 100 * 1024}
	kinds := map[string]int{}
	ids := map[string]bool{}
	for i := 1; i <= 300; i++ {
		raw := g.Message(5, i)
		if n := len(raw); n < g.MinSize*3/4 || n > g.MaxSize*11/10 {
			t.Errorf("message %d: %d bytes, outside %d-%d", i, n, g.MinSize, g.MaxSize)
		}
		for j, line := range bytes.SplitAfter(raw, []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			if !bytes.HasSuffix(line, []byte("\r\n")) || bytes.Count(line, []byte("\r")) != 1 {
				t.Fatalf("message %d line %d is not CRLF-terminated: %q", i, j+1, line)
			}
			if len(line) > 1000 {
				t.Fatalf("message %d line %d is %d octets long", i, j+1, len(line))
			}
		}
		m, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		for _, h := range []string{"From", "To", "Subject", "Date", "Message-Id", "Mime-Version", "Content-Type"} {
			if m.Header.Get(h) == "" {
				t.Errorf("message %d has no %s", i, h)
			}
		}
		if _, err := m.Header.Date(); err != nil {
			t.Errorf("message %d: Date: %v", i, err)
		}
		if _, err := m.Header.AddressList("From"); err != nil {
			t.Errorf("message %d: From: %v", i, err)
		}
		id := m.Header.Get("Message-Id")
		if ids[id] {
			t.Errorf("message %d repeats Message-ID %s", i, id)
		}
		ids[id] = true
		walkMIME(t, fmt.Sprintf("message %d", i), m.Header.Get("Content-Type"), m.Body, kinds)
	}
	for _, kind := range []string{"text/plain", "text/html", "multipart/alternative", "multipart/mixed", "message/rfc822", "base64"} {
		if kinds[kind] == 0 {
			t.Errorf("no %s among 300 messages (%v)", kind, kinds)
		}
	}
}

// walkMIME reads a MIME entity to its end, counting its kinds.
func walkMIME(t *testing.T, name, contentType string, body io.Reader, kinds map[string]int) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		t.Fatalf("%s: Content-Type %q: %v", name, contentType, err)
	}
	kinds[mt]++
	if !strings.HasPrefix(mt, "multipart/") {
		if _, err := io.Copy(io.Discard, body); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return
	}
	mr := multipart.NewReader(body, params["boundary"])
	parts := 0
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s part %d: %v", name, parts+1, err)
		}
		parts++
		if p.Header.Get("Content-Transfer-Encoding") == "base64" {
			kinds["base64"]++
		}
		walkMIME(t, fmt.Sprintf("%s part %d", name, parts), p.Header.Get("Content-Type"), p, kinds)
	}
	if parts == 0 {
		t.Errorf("%s: %s without parts", name, mt)
	}
}

func TestDotStuff(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a\r\nb\r\n", "a\r\nb\r\n.\r\n"},
		{".hidden\r\n..two\r\nx.y\r\n", "..hidden\r\n...two\r\nx.y\r\n.\r\n"},
		{".", "..\r\n.\r\n"},
		{"no newline", "no newline\r\n.\r\n"},
	}
	for _, tc := range tests {
		if got := string(dotStuff([]byte(tc.in))); got != tc.want {
			t.Errorf("dotStuff(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestToCRLF(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a\nb\n", "a\r\nb\r\n"},
		{"a\r\nb\n", "a\r\nb\r\n"},
		{"\n", "\r\n"},
		{"none", "none"},
	}
	for _, tc := range tests {
		if got := string(toCRLF([]byte(tc.in))); got != tc.want {
			t.Errorf("toCRLF(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestReadMbox(t *testing.T) {
	mbox := "From fill@localhost Mon Jan  1 00:00:00 2024\n" +
		"Subject: one\n\nbody\n>From the start\n>>From quoted\n\n" +
		"From fill@localhost Mon Jan  1 00:00:01 2024\n" +
		"Subject: two\n\nlast\n\n"
	msgs, err := readMbox(strings.NewReader(mbox))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Subject: one\r\n\r\nbody\r\nFrom the start\r\n>From quoted\r\n",
		"Subject: two\r\n\r\nlast\r\n",
	}
	if len(msgs) != len(want) {
		t.Fatalf("%d messages, want %d: %q", len(msgs), len(want), msgs)
	}
	for i := range want {
		if string(msgs[i]) != want[i] {
			t.Errorf("message %d = %q, want %q", i+1, msgs[i], want[i])
		}
	}
}
