package pop3server_test

import (
	"testing"

	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/teststore"
)

const (
	alice = "alice@example.org"
	bob   = "bob@example.org"
)

// openStore opens the store the tests run on, in dir (or, with
// BUZON_TEST_STORE=postgres, a database standing for dir), and closes it
// when the test ends.
func openStore(t testing.TB, dir string) store.Store {
	t.Helper()
	return teststore.Open(t, dir)
}

func TestMain(m *testing.M) { teststore.Main(m) }

// Fixture messages, stored as delivered: CRLF line endings.
const (
	msgHello = "From: Bob <bob@example.org>\r\n" +
		"To: alice@example.org\r\n" +
		"Subject: Hello\r\n" +
		"Message-ID: <hello@example.org>\r\n" +
		"\r\n" +
		"Hello Alice,\r\n" +
		"how are you?\r\n"
	// msgDots has lines that must be dot-stuffed, one of them looking
	// like the terminator.
	msgDots = "From: bob@example.org\r\n" +
		"Subject: dots\r\n" +
		"\r\n" +
		".\r\n" +
		"..\r\n" +
		".leading dot\r\n" +
		"a line with a . inside\r\n" +
		". \r\n" +
		"end\r\n"
	// msg8bit has a raw UTF-8 header and a Latin-1 body.
	msg8bit = "From: Zoë <zoe@example.org>\r\n" +
		"Subject: café crème\r\n" +
		"Content-Type: text/plain; charset=iso-8859-1\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n" +
		"\r\n" +
		"Caf\xe9 cr\xe8me, na\xefve \xff\x80.\r\n" +
		"NUL-free but binary-ish: \x01\x7f\r\n"
	// msgLong has a body of six lines, for TOP.
	msgLong = "From: bob@example.org\r\n" +
		"Subject: six lines\r\n" +
		"\r\n" +
		"line 1\r\n" +
		"line 2\r\n" +
		".line 3\r\n" +
		"line 4\r\n" +
		"\r\n" +
		"line 6\r\n"
	// msgUnterminated does not end with a line break.
	msgUnterminated = "Subject: unterminated\r\n" +
		"\r\n" +
		"last line without CRLF"
	// msgEmptyBody is a header and an empty body.
	msgEmptyBody = "Subject: empty body\r\n" +
		"\r\n"
	// msgHeaderOnly has no blank line at all.
	msgHeaderOnly = "Subject: header only\r\n" +
		"X-Other: yes\r\n"
)

// fixtureAll is the usual INBOX.
var fixtureAll = []string{msgHello, msgDots, msg8bit, msgLong, msgUnterminated}
