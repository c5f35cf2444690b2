package pop3server

import (
	"errors"
	"slices"

	"github.com/buzon-mail/buzon/internal/store"
)

// Read-ahead. Where opening a body is a round trip to a database server
// (a store.BodyBatcher, store/postgres), a session whose client goes
// through the maildrop in order opens the messages after the one asked
// for in the same call: one query per window of messages rather than one
// per RETR. A body opened ahead is read whole at once, as OpenBody reads
// a small one, so a message expunged by another session meanwhile is sent
// as if the RETR had come a little earlier, which the client cannot tell.
// A client that goes quiet for Config.ReadAheadIdle has the window
// dropped, so that idle sessions do not hold bodies in memory. With the
// embedded store, whose OpenBody opens a file, nothing changes.

const (
	// readAheadMessages is the most messages a window holds, the one
	// asked for included.
	readAheadMessages = 16
	// readAheadBytes bounds the sizes of a window's messages, and so what
	// a session holds in memory for it.
	readAheadBytes = 2 << 20
)

// aheadBody is a message of the read-ahead window.
type aheadBody struct {
	// n is the message number.
	n int
	// body is nil when the store did not open it (the message is gone,
	// or too large to read at once); OpenBody then opens it or says it
	// is gone, as without read-ahead.
	body store.Body
}

// openBody opens message n's body for RETR (retr) or TOP. The body comes
// from the read-ahead window when it is there. Otherwise the window is
// dropped and, when the client goes through the maildrop in order and the
// store allows, a new one opened from n on; else the body is opened alone.
// owned says the caller closes the body; when it is false, the window
// keeps it, for a RETR that may follow a TOP.
func (c *conn) openBody(n int, retr bool) (body store.Body, owned bool) {
	prev := c.lastSent
	c.lastSent = n
	i := c.aheadIndex(n)
	if i < 0 {
		c.dropAhead()
		if c.follows(prev, n) {
			c.readAhead(n)
			i = c.aheadIndex(n)
		}
	}
	if i >= 0 {
		body = c.ahead[i].body
		if retr {
			// A message retrieved is not retrieved again, as a rule:
			// the window lets go of it.
			c.ahead = slices.Delete(c.ahead, i, i+1)
		}
		if body != nil {
			return body, retr
		}
	}
	body, err := c.session.OpenBody(c.ctx, c.inbox.ID, c.msgs[n-1].uid)
	if errors.Is(err, store.ErrNoMessage) {
		// Expunged by another path (IMAP) since the snapshot, or with
		// the account.
		c.xaccountLookup()
		xuser("", "message no longer exists")
	}
	xcheck(err, "open message")
	return body, true
}

// follows says whether message n comes next after message prev (0: none):
// every message between them is marked deleted.
func (c *conn) follows(prev, n int) bool {
	if prev < 1 || prev >= n {
		return false
	}
	for k := prev + 1; k < n; k++ {
		if !c.msgs[k-1].deleted {
			return false
		}
	}
	return true
}

// readAhead opens a window from message n on: n and the messages after it
// not marked deleted, at most readAheadMessages of them, as long as their
// sizes add up to at most readAheadBytes. It does nothing if the store
// cannot open bodies together or if the window would hold n alone.
func (c *conn) readAhead(n int) {
	bb, ok := c.session.(store.BodyBatcher)
	if !ok {
		return
	}
	var uids []store.UID
	var size int64
	for k := n; k <= len(c.msgs) && len(c.ahead) < readAheadMessages; k++ {
		m := &c.msgs[k-1]
		if m.deleted {
			continue
		}
		if size += m.size; size > readAheadBytes {
			break
		}
		c.ahead = append(c.ahead, aheadBody{n: k})
		uids = append(uids, m.uid)
	}
	if len(uids) < 2 {
		c.ahead = c.ahead[:0]
		return
	}
	bodies, err := bb.OpenBodies(c.ctx, c.inbox.ID, uids, readAheadBytes)
	if err != nil {
		c.ahead = c.ahead[:0]
		xcheck(err, "open messages")
	}
	for i, b := range bodies {
		c.ahead[i].body = b
	}
}

// aheadIndex is the index in the window of message n, or -1.
func (c *conn) aheadIndex(n int) int {
	for i, a := range c.ahead {
		if a.n == n {
			return i
		}
	}
	return -1
}

// forgetAhead closes message n's body if the window holds it: DELE makes
// it useless.
func (c *conn) forgetAhead(n int) {
	if i := c.aheadIndex(n); i >= 0 {
		if b := c.ahead[i].body; b != nil {
			b.Close()
		}
		c.ahead = slices.Delete(c.ahead, i, i+1)
	}
}

// dropAhead closes the window's bodies.
func (c *conn) dropAhead() {
	for _, a := range c.ahead {
		if a.body != nil {
			a.body.Close()
		}
	}
	clear(c.ahead) // the array is kept, the bodies must not be
	c.ahead = c.ahead[:0]
}
