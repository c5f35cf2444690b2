package pop3server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

// UIDL is the unique-id listing of an INBOX message (RFC 1939 7): the
// mailbox's UIDVALIDITY and the message's UID as 16 hex digits. Neither
// changes while the message exists, so its UIDL is the same in every
// session, and the same after a migration that keeps UIDs.
func UIDL(uidValidity uint32, uid store.UID) string {
	return fmt.Sprintf("%08x%08x", uidValidity, uint32(uid))
}

// maildropSize counts the messages not marked deleted and their octets
// (RFC 1939 5 STAT).
func (c *conn) maildropSize() (count int, size int64) {
	for _, m := range c.msgs {
		if !m.deleted {
			count++
			size += m.size
		}
	}
	return count, size
}

// xmessage finds the message a command argument names. A number out of
// range, or a message marked deleted, is refused (RFC 1939 5).
func (c *conn) xmessage(arg string) (int, *message) {
	n, ok := parseNumber(arg)
	if !ok {
		xuser("", "invalid message number %s", echo(arg))
	}
	if n < 1 || n > len(c.msgs) {
		xuser("", "no such message, only %d messages in maildrop", len(c.msgs))
	}
	m := &c.msgs[n-1]
	if m.deleted {
		xuser("", "message %d already deleted", n)
	}
	return n, m
}

// cmdStat reports the maildrop size (RFC 1939 5).
func (c *conn) cmdStat(cmd command) {
	count, size := c.maildropSize()
	c.writeLine("+OK %d %d", count, size)
}

// cmdList reports message sizes (RFC 1939 5), which are exact: what RETR
// sends before dot-stuffing.
func (c *conn) cmdList(cmd command) {
	if len(cmd.args) == 1 {
		n, m := c.xmessage(cmd.args[0])
		c.writeLine("+OK %d %d", n, m.size)
		return
	}
	count, size := c.maildropSize()
	c.writeLine("+OK %d messages (%d octets)", count, size)
	for i, m := range c.msgs {
		if !m.deleted {
			c.writeLine("%d %d", i+1, m.size)
		}
	}
	c.writeLine(".")
}

// cmdUidl reports unique ids (RFC 1939 7).
func (c *conn) cmdUidl(cmd command) {
	uv := c.inbox.UIDValidity
	if len(cmd.args) == 1 {
		n, m := c.xmessage(cmd.args[0])
		c.writeLine("+OK %d %s", n, UIDL(uv, m.uid))
		return
	}
	c.writeLine("+OK unique-id listing follows")
	for i, m := range c.msgs {
		if !m.deleted {
			c.writeLine("%d %s", i+1, UIDL(uv, m.uid))
		}
	}
	c.writeLine(".")
}

// cmdRetr sends a message (RFC 1939 5). Its retrieval, which sets \Seen
// and starts the EXPIRE clock, is recorded when the session ends, with the
// session's other first retrievals (recordRetrievals), and only once the
// whole message has been handed to the network: a client that disconnects
// mid-message leaves the message as it was.
func (c *conn) cmdRetr(cmd command) {
	n, m := c.xmessage(cmd.args[0])
	c.sendMessage(n, -1)
	if m.retrieved {
		return
	}
	c.flush()
	m.retrieved, m.retrievedNow = true, true
	c.unrecorded++
}

// recordRetrievalsDelay is how long a session waits for the client's next
// command before it records the retrievals so far. A client that
// downloads message after message gets them recorded together; one that
// stops to read lets other sessions (IMAP devices) see \Seen at once.
const recordRetrievalsDelay = 250 * time.Millisecond

// recordRetrievalsTimeout bounds recording a session's retrievals, which
// happens after the client is gone or told goodbye.
const recordRetrievalsTimeout = 10 * time.Second

// recordRetrievals records the messages this session retrieved for the
// first time and has not recorded yet, in one store call: one durable write
// per burst of downloads, not one per message. It runs when the client
// pauses (recordRetrievalsDelay) and when the session ends, however it
// ends; in the UPDATE state (quitting) the messages about to be expunged
// are left out. A failure is logged and, with retryLater (at a pause),
// tried again when the session ends; then the client has its messages,
// which stay unseen and unexpired.
func (c *conn) recordRetrievals(quitting, retryLater bool) {
	var uids []store.UID
	var taken []int // indexes in c.msgs of uids
	for i := range c.msgs {
		m := &c.msgs[i]
		if m.retrievedNow && !(quitting && m.deleted) {
			uids = append(uids, m.uid)
			taken = append(taken, i)
		}
		m.retrievedNow = false
	}
	c.unrecorded = 0
	if len(uids) == 0 {
		return
	}
	// The session's context ends with the connection.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), recordRetrievalsTimeout)
	defer cancel()
	if err := c.session.MarkRetrieved(ctx, c.inbox.ID, store.UIDSetOf(uids...), c.srv.cfg.Now()); err != nil {
		c.log.Warn("pop3 record retrievals", "messages", len(uids), "err", err)
		if retryLater {
			// At a pause: tried again when the session ends (not at
			// every pause: the store may be down for a while).
			for _, i := range taken {
				c.msgs[i].retrievedNow = true
			}
		}
	}
}

// cmdTop sends a message's header and the first lines of its body
// (RFC 1939 7). It does not count as retrieval.
func (c *conn) cmdTop(cmd command) {
	n, _ := c.xmessage(cmd.args[0])
	lines, ok := parseNumber(cmd.args[1])
	if !ok {
		xuser("", "invalid line count %s", echo(cmd.args[1]))
	}
	c.sendMessage(n, lines)
}

// sendMessage streams message n as a multi-line response: the whole of it
// with bodyLines < 0, else as TOP does.
func (c *conn) sendMessage(n, bodyLines int) {
	body, owned := c.openBody(n, bodyLines < 0)
	if owned {
		defer body.Close()
	}
	if bodyLines < 0 {
		c.writeLine("+OK %d octets", body.Size())
	} else {
		c.writeLine("+OK top of message follows")
	}
	if c.bodyBuf == nil {
		c.bodyBuf = make([]byte, bodyBufSize)
	}
	err := writeBody(c.bw, io.NewSectionReader(body, 0, body.Size()), bodyLines, c.bodyBuf)
	var re readError
	if errors.As(err, &re) {
		// The response has begun: the client can only be told by
		// cutting it short.
		c.log.Error("pop3 read message", "uid", c.msgs[n-1].uid, "err", err)
	}
	if err != nil {
		xabort(err)
	}
}

// cmdDele marks a message deleted; it is removed at QUIT (RFC 1939 5).
func (c *conn) cmdDele(cmd command) {
	n, m := c.xmessage(cmd.args[0])
	m.deleted = true
	c.forgetAhead(n)
	c.writeLine("+OK message %d deleted", n)
}

// cmdRset unmarks every deleted message (RFC 1939 5).
func (c *conn) cmdRset(cmd command) {
	c.dropAhead() // it skipped the messages RSET gives back
	for i := range c.msgs {
		c.msgs[i].deleted = false
	}
	count, size := c.maildropSize()
	c.writeLine("+OK maildrop has %d messages (%d octets)", count, size)
}

// cmdNoop does nothing (RFC 1939 5).
func (c *conn) cmdNoop(cmd command) {
	c.writeLine("+OK")
}

// cmdQuit ends the session. In TRANSACTION state it enters UPDATE and
// expunges the messages marked deleted, in one store call (RFC 1939 6).
// The maildrop is unlocked before the answer, so a client that logs in
// again at once does not find it in use.
func (c *conn) cmdQuit(cmd command) {
	if c.state == stateAuthorization {
		c.state = stateUpdate // no UPDATE work: just end the session
		c.writeLine("+OK %s POP3 server signing off", c.srv.cfg.Hostname)
		return
	}
	if !c.beginUpdate() {
		// A new login took the maildrop first: the deletions are
		// dropped, as if the client had gone without QUIT.
		xabort(errTakenOver)
	}
	c.state = stateUpdate
	c.recordRetrievals(true, false)
	var uids []store.UID
	for _, m := range c.msgs {
		if m.deleted {
			uids = append(uids, m.uid)
		}
	}
	var err error
	if len(uids) > 0 {
		var removed store.ExpungeResult
		removed, err = c.session.Expunge(c.ctx, c.inbox.ID, store.UIDSetOf(uids...), false)
		if err == nil {
			c.log.Info("pop3 expunged", "deleted", len(uids), "removed", len(removed.UIDs))
		}
	}
	c.logout()
	if errors.Is(err, store.ErrNoAccount) || errors.Is(err, store.ErrNoMailbox) {
		// Deleted after the command came, before its watcher fired?
		// (INBOX goes only with its account.)
		c.xaccountLookup()
	}
	if err != nil {
		c.log.Error("pop3 expunge at QUIT", "uids", len(uids), "err", err)
		code := codeSysPerm
		if store.IsTemporary(err) {
			code = codeSysTemp
		}
		c.writeErr(code, "some deleted messages not removed") // RFC 1939 6
		return
	}
	count, _ := c.maildropSize()
	c.writeLine("+OK %s POP3 server signing off (%d messages left)", c.srv.cfg.Hostname, count)
}
