package storetest

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/buzon-mail/buzon/internal/store"
)

// testOpenBodies checks store.BodyBatcher, for backends that implement it:
// order, messages that do not exist, isolation, the memory bounds, and
// that what it opened outlives an expunge.
func testOpenBodies(t *testing.T, e *env) {
	_, ss := e.account("alice@example.org")
	bb, ok := ss.(store.BodyBatcher)
	if !ok {
		t.Skip("the backend does not implement store.BodyBatcher")
	}
	inbox := e.mailbox(ss, "INBOX")
	uids := e.appendN(ss, inbox.ID, 1, 5)
	want := func(uid store.UID) []byte { return testMessage(int(uid)) } // appendN's message i got UID i
	all := int64(1 << 30)

	// open calls OpenBodies and reads what it returns, closing it; a nil
	// entry reads as nil.
	open := func(ss store.Session, mailboxID int64, uids []store.UID, maxBytes int64) [][]byte {
		t.Helper()
		bodies, err := ss.(store.BodyBatcher).OpenBodies(e.ctx, mailboxID, uids, maxBytes)
		if err != nil {
			t.Fatalf("OpenBodies(%d, %v, %d): %v", mailboxID, uids, maxBytes, err)
		}
		if len(bodies) != len(uids) {
			t.Fatalf("OpenBodies(%d, %v) returned %d bodies", mailboxID, uids, len(bodies))
		}
		out := make([][]byte, len(bodies))
		for i, b := range bodies {
			if b == nil {
				continue
			}
			data, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()+1))
			if err != nil || int64(len(data)) != b.Size() {
				t.Errorf("body of UID %d: read %d bytes of %d, %v", uids[i], len(data), b.Size(), err)
			}
			out[i] = data
			b.Close()
		}
		return out
	}
	check := func(what string, got, wants [][]byte) {
		t.Helper()
		for i := range wants {
			if !bytes.Equal(got[i], wants[i]) || (got[i] == nil) != (wants[i] == nil) {
				t.Errorf("%s: body %d is %s, want %s", what, i, describe(got[i]), describe(wants[i]))
			}
		}
	}

	// In the order asked, not the UIDs' order.
	order := []store.UID{uids[3], uids[0], uids[4], uids[1]}
	check("out of order", open(ss, inbox.ID, order, all),
		[][]byte{want(uids[3]), want(uids[0]), want(uids[4]), want(uids[1])})
	if got := open(ss, inbox.ID, nil, all); len(got) != 0 {
		t.Errorf("OpenBodies of no UIDs returned %d bodies", len(got))
	}

	// The budget: bodies are opened in the order asked while their sizes
	// fit in it.
	budget := int64(len(want(uids[2])) + len(want(uids[0])))
	check("within a budget", open(ss, inbox.ID, []store.UID{uids[2], uids[0], uids[1]}, budget),
		[][]byte{want(uids[2]), want(uids[0]), nil})

	// An opened body outlives an expunge; a UID expunged before, or never
	// given, has no body.
	bodies, err := bb.OpenBodies(e.ctx, inbox.ID, []store.UID{uids[1]}, all)
	if err != nil || len(bodies) != 1 || bodies[0] == nil {
		t.Fatalf("OpenBodies(%d) = %v, %v", uids[1], bodies, err)
	}
	if _, err := ss.Expunge(e.ctx, inbox.ID, store.UIDSetOf(uids[1]), false); err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(io.NewSectionReader(bodies[0], 0, bodies[0].Size()))
	if err != nil || !bytes.Equal(data, want(uids[1])) {
		t.Errorf("body opened before its message was expunged reads %.40q, %v", data, err)
	}
	bodies[0].Close()
	check("expunged and missing", open(ss, inbox.ID, []store.UID{uids[0], uids[1], 999, uids[2]}, all),
		[][]byte{want(uids[0]), nil, nil, want(uids[2])})

	// A body too large to read at once may be left out; one returned is
	// whole.
	big := bytes.Repeat([]byte("0123456789abcdef\r\n"), 1<<17) // 2.25 MiB
	copy(big, "Subject: big\r\n\r\n")
	res, err := ss.Append(e.ctx, inbox.ID, &store.NewMessage{Body: bytes.NewReader(big), Size: int64(len(big))})
	if err != nil {
		t.Fatal(err)
	}
	got := open(ss, inbox.ID, []store.UID{res.UID, uids[4]}, all)
	if got[0] != nil && !bytes.Equal(got[0], big) {
		t.Errorf("large body: read %d bytes that differ from the %d stored", len(got[0]), len(big))
	}
	check("after a large body", got[1:], [][]byte{want(uids[4])})
	if got := e.body(ss, inbox.ID, res.UID); !bytes.Equal(got, big) {
		t.Errorf("OpenBody of the large body: %d bytes that differ from the %d stored", len(got), len(big))
	}

	// Another account's mailbox, and one that does not exist, have no
	// messages; neither is an error.
	_, bob := e.account("bob@example.org")
	check("another account's mailbox", open(bob, inbox.ID, []store.UID{uids[0], uids[2]}, all), [][]byte{nil, nil})
	check("no such mailbox", open(ss, inbox.ID+1000, []store.UID{uids[0]}, all), [][]byte{nil})
}

// describe names a test message by its subject, for test failures.
func describe(b []byte) string {
	if b == nil {
		return "nil"
	}
	if _, rest, ok := bytes.Cut(b, []byte("Subject: ")); ok {
		subject, _, _ := bytes.Cut(rest, []byte("\r\n"))
		return fmt.Sprintf("%q (%d bytes)", subject, len(b))
	}
	return fmt.Sprintf("%d bytes", len(b))
}
