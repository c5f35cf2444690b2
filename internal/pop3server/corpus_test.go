package pop3server_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/clienttest"
	"github.com/buzon-mail/buzon/internal/pop3server/pop3test"
	"github.com/buzon-mail/buzon/internal/store"
)

// crlf makes every bare LF a CRLF, as delivery stores messages.
func crlf(b []byte) []byte {
	var out bytes.Buffer
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out.WriteByte('\r')
		}
		out.WriteByte(c)
	}
	return out.Bytes()
}

// TestCorpusOctets serves every message of the shared corpus of real-world
// and malformed mail, and reads the answers byte by byte, with a reader
// of its own rather than a client's: STAT and LIST count the octets of
// each message exactly as RETR sends it once the dot-stuffing is undone
// (RFC 1939 5, 11), and TOP n 0 is its header and the blank line ending
// it (RFC 1939 7).
func TestCorpusOctets(t *testing.T) {
	t.Parallel()
	root := clienttest.NeedCorpus(t)
	env := pop3test.Start(t, openStore(t, t.TempDir()), pop3test.Options{})
	var msgs [][]byte
	var names []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".raw") && !strings.HasSuffix(path, ".eml") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil || len(b) == 0 {
			return err
		}
		msgs = append(msgs, crlf(b))
		names = append(names, strings.TrimPrefix(path, root+"/"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) == 0 {
		t.Skip("no messages in the corpus")
	}
	var total int64
	for _, m := range msgs {
		env.Append(t, alice, m, store.Flags{})
		total += int64(len(m))
	}

	nc, err := net.Dial("tcp", env.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(time.Minute))
	br := bufio.NewReader(nc)
	line := func() string {
		t.Helper()
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the server: %v", err)
		}
		if !strings.HasSuffix(l, "\r\n") {
			t.Fatalf("a line from the server does not end with CRLF: %q", l)
		}
		return strings.TrimSuffix(l, "\r\n")
	}
	// multi reads a multi-line response after its +OK line and undoes
	// the dot-stuffing: every line comes back with its CRLF.
	multi := func() []byte {
		t.Helper()
		var out bytes.Buffer
		for {
			l := line()
			if l == "." {
				return out.Bytes()
			}
			l, _ = strings.CutPrefix(l, ".")
			out.WriteString(l + "\r\n")
		}
	}
	cmd := func(format string, args ...any) string {
		t.Helper()
		fmt.Fprintf(nc, format+"\r\n", args...)
		l := line()
		if !strings.HasPrefix(l, "+OK") {
			t.Fatalf("%s: %s", fmt.Sprintf(format, args...), l)
		}
		return l
	}
	line() // greeting
	cmd("USER %s", alice)
	cmd("PASS %s", pop3test.Password)
	if got, want := cmd("STAT"), fmt.Sprintf("+OK %d %d", len(msgs), total); got != want {
		t.Errorf("STAT: %s; want %s", got, want)
	}
	cmd("LIST")
	listing := multi()
	for i, m := range msgs {
		n := i + 1
		name := names[i]
		if want := fmt.Sprintf("%d %d\r\n", n, len(m)); !bytes.Contains(listing, []byte(want)) {
			t.Errorf("%s: LIST lacks %q", name, want)
		}
		got := cmd("RETR %d", n)
		if want := "+OK " + strconv.Itoa(len(m)) + " octets"; got != want {
			t.Errorf("%s: RETR answered %q; want %q", name, got, want)
		}
		body := multi()
		// The server ends a last line that has no line break; that
		// CRLF is no part of the message.
		if !bytes.HasSuffix(m, []byte("\r\n")) {
			body = bytes.TrimSuffix(body, []byte("\r\n"))
		}
		if !bytes.Equal(body, m) {
			t.Errorf("%s: RETR sent %d octets that differ from the %d stored", name, len(body), len(m))
		}
		cmd("TOP %d 0", n)
		header := multi()
		want := m
		if i := bytes.Index(m, []byte("\r\n\r\n")); i >= 0 {
			want = m[:i+4]
		}
		if !bytes.HasSuffix(want, []byte("\r\n")) {
			want = append(bytes.Clone(want), "\r\n"...)
		}
		if !bytes.Equal(header, want) {
			t.Errorf("%s: TOP %d 0 sent %q; want %q", name, n, trim(header), trim(want))
		}
	}
	cmd("QUIT")
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after QUIT: %v; want EOF", err)
	}
}

// trim shortens a message for an error.
func trim(b []byte) []byte {
	if len(b) > 300 {
		return b[:300]
	}
	return b
}
