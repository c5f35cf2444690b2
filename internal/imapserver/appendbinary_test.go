package imapserver

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestAppendBinary: a binary APPEND (RFC 3516 literal8) is stored byte for
// byte when its line ends are CRLF, NULs and 8-bit bytes included; one
// with a bare CR or LF, which the store's CRLF form would change, is
// refused with NO [UNKNOWN-CTE] and leaves nothing behind (RFC 3516 4.4).
func TestAppendBinary(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	c := e.login()
	message := func(payload string) string {
		return "Subject: bin\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
			"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n" +
			payload + "\r\n--b--\r\n"
	}
	appendBinary := func(msg string) string {
		t.Helper()
		c.write("b1 APPEND INBOX ~{" + strconv.Itoa(len(msg)) + "+}\r\n" + msg + "\r\n")
		_, tagged := c.readUntil("b1")
		return tagged
	}

	for _, payload := range []string{"A\rB", "A\nB", "AB\r"} {
		if tagged := appendBinary(message(payload)); !strings.HasPrefix(tagged, "b1 NO [UNKNOWN-CTE] ") {
			t.Errorf("APPEND with payload %q: %s, want NO [UNKNOWN-CTE]", payload, tagged)
		}
	}
	if got := c.mustOK("STATUS INBOX (MESSAGES)"); !slices.Equal(got, []string{`* STATUS "INBOX" (MESSAGES 0)`}) {
		t.Fatalf("after refused APPENDs: %q", got)
	}

	payload := "\x00\xff\x01 binary\r\nline two\x00"
	msg := message(payload)
	if tagged := appendBinary(msg); !strings.HasPrefix(tagged, "b1 OK ") {
		t.Fatalf("APPEND of CRLF binary: %s", tagged)
	}
	c.mustOK("SELECT INBOX")
	got := c.mustOK("FETCH 1 (RFC822.SIZE BINARY.PEEK[1])")
	want := "* 1 FETCH (RFC822.SIZE " + strconv.Itoa(len(msg)) + " BINARY[1] ~{" + strconv.Itoa(len(payload)) + "}\r\n" + payload + ")"
	if len(got) != 1 || got[0] != want {
		t.Errorf("FETCH: %q, want %q", got, want)
	}
}
