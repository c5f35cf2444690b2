package smtpserver

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/buzon-mail/buzon/internal/delivery"
)

// state is where a session is in the protocol, one bit each, so a
// command's entry in commands can name all the states that allow it.
type state uint8

const (
	// stateStart: before LHLO (RFC 2033 4.1).
	stateStart state = 1 << iota
	// stateReady: between transactions.
	stateReady
	// stateMail: after MAIL, before a recipient was accepted.
	stateMail
	// stateRcpt: with at least one recipient accepted; the message may
	// come.
	stateRcpt
	// stateChunks: between BDAT chunks (RFC 3030 2).
	stateChunks

	anyState = stateStart | stateReady | stateMail | stateRcpt | stateChunks
)

// command is an entry of the command table.
type command struct {
	// states are those that allow the command; in any other it is out of
	// sequence: 503 (RFC 5321 4.1.4).
	states state
	run    func(c *conn, arg string)
	// refused, when set, runs before the 503 of a command out of
	// sequence: BDAT's chunk follows it all the same, and is read and
	// dropped rather than taken for commands (RFC 3030 2).
	refused func(c *conn, arg string)
}

// commands are the LMTP commands and the states that allow each.
var commands = map[string]command{
	"LHLO": {states: anyState, run: (*conn).cmdLHLO},
	"HELO": {states: anyState, run: (*conn).cmdHELO},
	"EHLO": {states: anyState, run: (*conn).cmdHELO},
	"MAIL": {states: stateReady, run: (*conn).cmdMAIL},
	"RCPT": {states: stateMail | stateRcpt, run: (*conn).cmdRCPT},
	"DATA": {states: stateRcpt, run: (*conn).cmdDATA},
	"BDAT": {states: stateRcpt | stateChunks, run: (*conn).cmdBDAT, refused: (*conn).skipChunk},
	"RSET": {states: anyState, run: (*conn).cmdRSET},
	"NOOP": {states: anyState, run: (*conn).cmdNOOP},
	"VRFY": {states: anyState, run: (*conn).cmdVRFY},
	"HELP": {states: anyState, run: (*conn).cmdHELP},
	"QUIT": {states: anyState, run: (*conn).cmdQUIT},
}

// outOfSequence is the text of the 503 for a command the session's state
// does not allow.
func (c *conn) outOfSequence(verb string) string {
	switch {
	case c.state == stateStart:
		return "send LHLO first"
	case c.state == stateChunks:
		return verb + " not allowed between BDAT chunks"
	case verb == "MAIL":
		return "nested MAIL command"
	case c.state == stateMail:
		return "no valid recipients"
	}
	return "send MAIL and RCPT first"
}

// cmdLHLO greets the client and names the extensions (RFC 2033 4.1). As
// EHLO does, it ends any transaction (RFC 5321 4.1.4).
func (c *conn) cmdLHLO(arg string) {
	if strings.TrimSpace(arg) == "" {
		xreply(501, [3]int{5, 5, 4}, "syntax: LHLO domain")
	}
	c.endTx()
	c.state = stateReady
	cfg := &c.srv.cfg
	size := "SIZE"
	if cfg.MaxMessageSize > 0 {
		size = fmt.Sprintf("SIZE %d", cfg.MaxMessageSize)
	}
	c.writeLines(reply{code: 250}, []string{
		cfg.Hostname,
		"PIPELINING",
		"ENHANCEDSTATUSCODES",
		"8BITMIME",
		size,
		"CHUNKING",
		"SMTPUTF8",
		fmt.Sprintf("LIMITS RCPTMAX=%d", cfg.MaxRecipients),
	})
}

// cmdHELO answers HELO and EHLO, which an LMTP server must refuse
// (RFC 2033 4.1).
func (c *conn) cmdHELO(string) {
	xreply(500, [3]int{5, 5, 1}, "this is an LMTP server: use LHLO")
}

// cmdMAIL starts a transaction, unless the declared size is over the
// limit or the server is shutting down.
func (c *conn) cmdMAIL(arg string) {
	m, err := parseMail(arg)
	if err != nil {
		panic(err)
	}
	if limit := c.srv.cfg.MaxMessageSize; limit > 0 && m.size > limit {
		panic(replyTooLarge) // RFC 1870 6.1
	}
	if !c.srv.conns.IfOpen(func() { c.busy.Store(true) }) {
		c.readFailed(errGoodbye) // RFC 5321 3.8
	}
	c.from = m.from
	c.state = stateMail
	c.writeReply(reply{250, [3]int{2, 1, 0}, "sender <" + m.from.mailbox + "> OK"})
}

// cmdRCPT refuses unknown recipients at once (RFC 2033 4.2), so the MTA
// bounces them without sending the message.
func (c *conn) cmdRCPT(arg string) {
	p, err := parseRcpt(arg)
	if err != nil {
		panic(err)
	}
	if len(c.rcpts) >= c.srv.cfg.MaxRecipients {
		xreply(452, [3]int{4, 5, 3}, "too many recipients") // RFC 5321 4.5.3.1.10
	}
	key := p.address()
	if p.isPostmaster() {
		key = "postmaster@" + c.srv.cfg.Hostname // RFC 5321 4.5.1
	}
	key = strings.ToLower(key)
	acct, err := c.srv.cfg.Deliverer.Lookup(c.srv.ctx, key)
	if err != nil {
		if !errors.Is(err, delivery.ErrUnknownRecipient) {
			c.log.Error("recipient lookup", "rcpt", key, "err", err)
		}
		r := deliveryReply(err)
		r.text = "<" + p.mailbox + "> " + r.text
		panic(r)
	}
	c.rcpts = append(c.rcpts, recipient{addr: p.mailbox, key: key, acct: acct})
	c.state = stateRcpt
	c.writeReply(reply{250, [3]int{2, 1, 5}, "recipient <" + p.mailbox + "> OK"})
}

// cmdDATA reads the message and delivers it (RFC 5321 4.1.1.4), with a
// reply per recipient (RFC 2033 4.2).
func (c *conn) cmdDATA(arg string) {
	if arg != "" {
		xreply(501, [3]int{5, 5, 4}, "DATA takes no argument")
	}
	c.writeReply(reply{354, [3]int{}, "end data with <CR><LF>.<CR><LF>"})
	m := c.newData()
	if err := readData(c.br, m.write); err != nil {
		m.close()
		c.readFailed(err)
	}
	c.deliver(m)
}

// cmdBDAT takes a chunk of the message (RFC 3030 2); the last one is
// delivered, with a reply per recipient (RFC 2033 4.2).
func (c *conn) cmdBDAT(arg string) {
	size, last, err := parseBDAT(arg)
	if err != nil {
		c.badChunkSize(err)
	}
	if c.data == nil {
		c.data = c.newData()
		c.state = stateChunks
	}
	if err := readChunk(c.br, size, c.data.write); err != nil {
		c.readFailed(err)
	}
	if last {
		m := c.data
		c.data = nil
		c.deliver(m)
		return
	}
	if m := c.data; m.err != nil {
		// RFC 3030 4.2: the client sends no more chunks after a failure.
		c.logRefusal(m.err)
		c.endTx()
		panic(deliveryReply(m.err))
	}
	c.writeReply(reply{250, [3]int{2, 0, 0}, fmt.Sprintf("%d octets received", size)})
}

// skipChunk reads and drops the chunk of a BDAT out of sequence.
func (c *conn) skipChunk(arg string) {
	size, _, err := parseBDAT(arg)
	if err != nil {
		c.badChunkSize(err)
	}
	if err := readChunk(c.br, size, func([]byte) {}); err != nil {
		c.readFailed(err)
	}
}

// badChunkSize ends a session whose BDAT has no size to read: where its
// chunk ends cannot be known, and its bytes must not be taken for
// commands.
func (c *conn) badChunkSize(err error) {
	r := err.(reply)
	r.text += "; closing"
	c.writeReply(r)
	c.flush()
	c.lingeringClose()
	xabort(err)
}

// cmdRSET ends the transaction without delivering it.
func (c *conn) cmdRSET(string) {
	c.endTx()
	c.writeReply(reply{250, [3]int{2, 0, 0}, "reset"})
}

func (c *conn) cmdNOOP(string) {
	c.writeReply(reply{250, [3]int{2, 0, 0}, "OK, nothing done"})
}

// cmdVRFY says nothing about accounts (RFC 5321 3.5.3: 252).
func (c *conn) cmdVRFY(string) {
	c.writeReply(reply{252, [3]int{2, 5, 0}, "cannot verify; send mail and the reply to RCPT will tell"})
}

func (c *conn) cmdHELP(string) {
	c.writeReply(reply{214, [3]int{2, 0, 0}, "LMTP (RFC 2033): LHLO MAIL RCPT DATA BDAT RSET NOOP VRFY HELP QUIT"})
}

func (c *conn) cmdQUIT(string) {
	c.endTx()
	c.writeReply(reply{221, [3]int{2, 0, 0}, c.srv.cfg.Hostname + " closing connection"})
	c.leaving, c.quit = true, true
}

// newData starts taking a transaction's message, with the Return-Path
// line above it when the server adds one.
func (c *conn) newData() *msgData {
	// msgData holds the message to the size limit as the client sent it
	// (RFC 1870 5). The spool's own limit would count it with line
	// endings made CRLF and the Return-Path line added, and refuse a
	// message of bare CRs or LFs that SIZE= had declared within it.
	sp := *c.srv.cfg.Spooler // a Spooler is its settings only
	sp.MaxSize = 0
	var field string
	if c.srv.cfg.ReturnPath {
		// RFC 5321 4.4; the path came on a command line, which holds no
		// control bytes.
		field = "Return-Path: <" + c.from.mailbox + ">\r\n"
	}
	m := &msgData{w: sp.Writer(nil), limit: c.srv.cfg.MaxMessageSize, maxLine: c.srv.cfg.MaxLineLength}
	if field != "" {
		if _, err := m.w.Write([]byte(field)); err != nil {
			m.fail(err)
		}
	}
	return m
}

// deliver finishes the message and delivers a copy per recipient, each
// answered after its copy is durable, in RCPT order (RFC 2033 4.2); then
// the transaction is over.
func (c *conn) deliver(m *msgData) {
	defer c.endTx()
	msg, err := m.finish()
	if err != nil {
		c.logRefusal(err)
		for _, rcpt := range c.rcpts {
			c.writeRcptReply(rcpt, err)
		}
		return
	}
	defer msg.Close()
	// A recipient named twice gets one copy and the same reply twice
	// (RFC 2033 4.2: a reply per successful RCPT), as Dovecot does: an MTA
	// whose aliases expand to one address twice does not deliver twice.
	done := map[string]error{}
	for _, rcpt := range c.rcpts {
		err, dup := done[rcpt.key]
		if !dup {
			_, err = c.srv.cfg.Deliverer.DeliverAccount(c.srv.ctx, rcpt.acct, msg)
			if err != nil {
				c.log.Warn("delivery failed", "rcpt", rcpt.key, "from", c.from.mailbox, "err", err)
			}
			done[rcpt.key] = err
		}
		c.writeRcptReply(rcpt, err)
	}
}

// writeRcptReply writes a recipient's reply to the end of the data.
func (c *conn) writeRcptReply(rcpt recipient, err error) {
	r := deliveryReply(err)
	r.text = "<" + rcpt.addr + "> " + r.text
	c.writeReply(r)
}

// logRefusal logs why a message was not taken: at Info when the client
// caused it (too large, a line too long), else as an error.
func (c *conn) logRefusal(err error) {
	if errors.Is(err, delivery.ErrTooLarge) || errors.Is(err, errLineTooLong) || errors.Is(err, io.ErrUnexpectedEOF) {
		c.log.Info("message not taken", "err", err)
		return
	}
	c.log.Error("spool", "err", err)
}

// endTx ends the transaction, if one is open; during Shutdown the
// session then ends, once its replies are sent.
func (c *conn) endTx() {
	if c.data != nil {
		c.data.close()
		c.data = nil
	}
	c.from, c.rcpts = path{}, nil
	if c.state != stateStart {
		c.state = stateReady
	}
	if !c.busy.Load() {
		return
	}
	// No lock needed: Close sets closing before it looks at busy, so
	// either it finds the session idle and interrupts its read, or the
	// session sees Closing here.
	c.busy.Store(false)
	if c.srv.conns.Closing() {
		c.leaving = true
	}
}
