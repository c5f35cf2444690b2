package smtpserver

import (
	"cmp"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/buzon-mail/buzon/internal/auth"
	"github.com/buzon-mail/buzon/internal/delivery"
	"github.com/buzon-mail/buzon/internal/server"
	"github.com/buzon-mail/buzon/internal/store"
)

// state is where a session is in the protocol, one bit each, so a
// command's entry in commands can name all the states that allow it.
type state uint8

const (
	// stateStart: before LHLO (RFC 2033 4.1), or EHLO or HELO
	// (RFC 5321 4.1.4), and again after STARTTLS (RFC 3207 4.2).
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

// commands are the commands of both protocols and the states that allow
// each; a command of the other protocol refuses itself.
var commands = map[string]command{
	"LHLO":     {states: anyState, run: (*conn).cmdLHLO},
	"EHLO":     {states: anyState, run: (*conn).cmdEHLO},
	"HELO":     {states: anyState, run: (*conn).cmdHELO},
	"STARTTLS": {states: stateReady, run: (*conn).cmdSTARTTLS},
	"AUTH":     {states: stateReady, run: (*conn).cmdAUTH},
	"MAIL":     {states: stateReady, run: (*conn).cmdMAIL},
	"RCPT":     {states: stateMail | stateRcpt, run: (*conn).cmdRCPT},
	"DATA":     {states: stateRcpt, run: (*conn).cmdDATA},
	"BDAT":     {states: stateRcpt | stateChunks, run: (*conn).cmdBDAT, refused: (*conn).skipChunk},
	"RSET":     {states: anyState, run: (*conn).cmdRSET},
	"NOOP":     {states: anyState, run: (*conn).cmdNOOP},
	"VRFY":     {states: anyState, run: (*conn).cmdVRFY},
	"EXPN":     {states: anyState, run: (*conn).cmdEXPN},
	"HELP":     {states: anyState, run: (*conn).cmdHELP},
	"QUIT":     {states: anyState, run: (*conn).cmdQUIT},
}

// outOfSequence is the text of the 503 for a command the session's state
// does not allow.
func (c *conn) outOfSequence(verb string) string {
	switch {
	case c.state == stateStart && c.srv.cfg.Protocol.esmtp():
		return "send EHLO first"
	case c.state == stateStart:
		return "send LHLO first"
	case c.state == stateChunks:
		return verb + " not allowed between BDAT chunks"
	case verb == "MAIL":
		return "nested MAIL command"
	case verb == "STARTTLS":
		return "STARTTLS within a transaction; RSET first"
	case c.state == stateMail:
		return "no valid recipients"
	}
	return "send MAIL and RCPT first"
}

// cmdLHLO greets an LMTP client and names the extensions (RFC 2033 4.1).
// An SMTP server refuses it, as an LMTP server refuses EHLO.
func (c *conn) cmdLHLO(arg string) {
	if c.srv.cfg.Protocol.esmtp() {
		xreply(500, [3]int{5, 5, 1}, "this is an SMTP server: use EHLO")
	}
	c.greet("LHLO", arg, true)
}

// cmdEHLO greets an SMTP client and names the extensions (RFC 5321
// 4.1.1.1); an LMTP server must refuse it (RFC 2033 4.1).
func (c *conn) cmdEHLO(arg string) {
	if !c.srv.cfg.Protocol.esmtp() {
		xreply(500, [3]int{5, 5, 1}, "this is an LMTP server: use LHLO")
	}
	c.greet("EHLO", arg, true)
}

// cmdHELO greets an SMTP client that knows no extensions: a plain 250
// (RFC 5321 4.1.1.1). An LMTP server must refuse it (RFC 2033 4.1).
func (c *conn) cmdHELO(arg string) {
	if !c.srv.cfg.Protocol.esmtp() {
		xreply(500, [3]int{5, 5, 1}, "this is an LMTP server: use LHLO")
	}
	c.greet("HELO", arg, false)
}

// greet answers LHLO, EHLO (extended) or HELO. As RSET does, it ends any
// transaction (RFC 5321 4.1.4).
func (c *conn) greet(verb, arg string, extended bool) {
	name, _, _ := strings.Cut(strings.TrimSpace(arg), " ")
	if name == "" {
		xreply(501, [3]int{5, 5, 4}, "syntax: %s domain", verb)
	}
	if c.srv.cfg.Protocol.esmtp() && len(name) > maxDomain {
		xreply(501, [3]int{5, 5, 4}, "domain name too long")
	}
	c.endTx()
	c.state = stateReady
	c.helo, c.esmtp = name, extended
	cfg := &c.srv.cfg
	if !extended {
		c.writeReply(reply{code: 250, text: cfg.Hostname})
		return
	}
	size := "SIZE"
	if cfg.MaxMessageSize > 0 {
		size = fmt.Sprintf("SIZE %d", cfg.MaxMessageSize)
	}
	lines := []string{
		cfg.Hostname,
		"PIPELINING",
		"ENHANCEDSTATUSCODES",
	}
	if !(cfg.Protocol == Submission && c.srv.relayNo8Bit.Load()) {
		lines = append(lines, "8BITMIME")
	}
	lines = append(lines, size, "CHUNKING")
	if !(cfg.Protocol == Submission && c.srv.relayNoUTF8.Load()) {
		lines = append(lines, "SMTPUTF8")
	}
	if cfg.Protocol.esmtp() && cfg.TLS != nil && c.tls == "" {
		lines = append(lines, "STARTTLS")
	}
	if cfg.Protocol == Submission && c.plaintextAllowed() {
		// RFC 4954 3; off loopback, only after TLS (RFC 8314 3.3).
		lines = append(lines, "AUTH "+strings.Join(auth.Mechanisms(true), " "))
	}
	lines = append(lines, fmt.Sprintf("LIMITS RCPTMAX=%d", cfg.MaxRecipients))
	c.writeLines(reply{code: 250}, lines)
}

// cmdSTARTTLS starts TLS (RFC 3207 4). What the client sent after the
// command, before the handshake, is refused with the connection: a client
// may not pipeline past STARTTLS (RFC 2920 3.1), and those bytes, taken
// for commands of the TLS session, would let a man in the middle inject
// commands into it (CVE-2011-0411 and its kin).
func (c *conn) cmdSTARTTLS(arg string) {
	switch {
	case !c.srv.cfg.Protocol.esmtp() || c.srv.cfg.TLS == nil:
		xreply(502, [3]int{5, 5, 1}, "STARTTLS not available")
	case c.tls != "":
		xreply(503, [3]int{5, 5, 1}, "TLS already active") // RFC 3207 4.2
	case arg != "":
		xreply(501, [3]int{5, 5, 4}, "syntax: STARTTLS") // RFC 3207 4
	}
	if n := c.br.Buffered(); n > 0 {
		c.log.Warn("client sent data after STARTTLS before TLS; closing", "bytes", n)
		c.writeReply(reply{554, [3]int{5, 5, 0}, "commands pipelined after STARTTLS; closing"})
		c.flush()
		c.lingeringClose()
		xabort(errors.New("data pipelined after STARTTLS"))
	}
	c.writeReply(reply{220, [3]int{2, 0, 0}, "ready to start TLS"})
	c.flush()
	c.startTLS()
	// RFC 3207 4.2: the server forgets what the client told it before,
	// and the client starts again with EHLO.
	c.state, c.helo, c.esmtp, c.account = stateStart, "", false, store.Account{}
	c.log.Debug("tls started", "tls", c.tls)
}

// startTLS runs the TLS handshake, after STARTTLS or at once on a
// listener of implicit TLS, and carries the session over it.
func (c *conn) startTLS() {
	tc, err := server.Handshake(c.srv.ctx, c.raw, c.srv.cfg.TLS, c.srv.cfg.TLSHandshakeTimeout)
	if err != nil {
		xabort(err)
	}
	c.tls = server.TLSName(tc.ConnectionState())
	c.nc = tc
	c.br.Reset(sockReader{c})
	c.bw.Reset(sockWriter{c})
}

// cmdMAIL starts a transaction, unless the declared size is over the
// limit or the server is shutting down.
func (c *conn) cmdMAIL(arg string) {
	submission := c.srv.cfg.Protocol == Submission
	if submission && c.account.ID == 0 {
		xreply(530, [3]int{5, 7, 0}, "authentication required") // RFC 4954 6
	}
	m, err := parseMail(arg)
	if err != nil {
		panic(err)
	}
	c.checkPathLength(m.from, errBadSender.enh)
	if limit := c.srv.cfg.MaxMessageSize; limit > 0 && m.size > limit {
		panic(replyTooLarge) // RFC 1870 6.1
	}
	if submission {
		c.checkSender(m.from)
		if !c.srv.sendRates.take(c.account.ID, time.Now()) {
			c.log.Warn("sending rate exceeded", "per_hour", c.srv.cfg.MaxMessagesPerHour)
			xreply(451, [3]int{4, 7, 0}, "more than %d messages in an hour; try again later", c.srv.cfg.MaxMessagesPerHour)
		}
	}
	if !c.srv.conns.IfOpen(func() { c.busy.Store(true) }) {
		c.readFailed(errGoodbye) // RFC 5321 3.8
	}
	c.from, c.utf8, c.size = m.from, m.utf8, m.size
	c.id = rand.Text()[:12]
	if submission {
		c.openRelay(m)
	}
	c.state = stateMail
	c.writeReply(reply{250, [3]int{2, 1, 0}, "sender <" + m.from.mailbox + "> OK"})
}

// Lengths SMTP allows in the names that go into its trace fields.
const (
	// maxPath is the longest mailbox MAIL or RCPT may name. RFC 5321
	// 4.5.3.1.3 sets 256 octets but asks servers to take more where
	// they can, and long VERP and SRS addresses exist; beyond this one,
	// the Return-Path line or the Received field's "for" line would pass
	// RFC 5322 2.1.1's 998 octets.
	maxPath = 900
	// maxDomain is the longest domain (RFC 5321 4.5.3.1.2) EHLO or HELO
	// may give, which the Received field names.
	maxDomain = 255
)

// checkPathLength refuses, in SMTP, a path longer than maxPath: 501,
// "Path too long" (RFC 5321 4.5.3.1.10), with enh for the sender or the
// recipient. LMTP takes what its MTA took.
func (c *conn) checkPathLength(p path, enh [3]int) {
	if c.srv.cfg.Protocol.esmtp() && len(p.mailbox) > maxPath {
		xreply(501, enh, "path too long")
	}
}

// cmdRCPT refuses unknown recipients at once (RFC 2033 4.2), so the
// sender bounces them without sending the message. Every recipient must
// be a local account: nothing is relayed. SMTP also refuses a recipient
// whose quota leaves no room for the message.
func (c *conn) cmdRCPT(arg string) {
	p, err := parseRcpt(arg)
	if err != nil {
		panic(err)
	}
	c.checkPathLength(p, errBadRecipient.enh)
	if len(c.rcpts) >= c.srv.cfg.MaxRecipients {
		xreply(452, [3]int{4, 5, 3}, "too many recipients") // RFC 5321 4.5.3.1.10
	}
	if c.srv.cfg.Protocol == Submission {
		c.relayRcpt(p)
		return
	}
	key := p.address()
	if p.isPostmaster() {
		key = "postmaster@" + c.srv.cfg.Hostname // RFC 5321 4.5.1
	}
	key = strings.ToLower(key)
	to, err := c.srv.cfg.Deliverer.Lookup(c.srv.ctx, key)
	if err != nil {
		if !errors.Is(err, delivery.ErrUnknownRecipient) {
			c.log.Error("recipient lookup", "rcpt", key, "err", err)
		}
		r := deliveryReply(err)
		r.text = "<" + p.mailbox + "> " + r.text
		panic(r)
	}
	rcpt := recipient{addr: p.mailbox, key: key, acct: to.Account, copyKey: to.CopyKey()}
	if c.srv.cfg.Protocol == SMTP {
		if err := c.checkQuota(rcpt.acct, rcpt.copyKey); err != nil {
			r := c.failureReply(err)
			r.text = "<" + p.mailbox + "> " + r.text
			panic(r)
		}
	}
	c.rcpts = append(c.rcpts, rcpt)
	c.state = stateRcpt
	c.writeReply(reply{250, [3]int{2, 1, 5}, "recipient <" + p.mailbox + "> OK"})
}

// cmdDATA reads the message and delivers it (RFC 5321 4.1.1.4), with a
// reply per recipient in LMTP (RFC 2033 4.2).
func (c *conn) cmdDATA(arg string) {
	if arg != "" {
		xreply(501, [3]int{5, 5, 4}, "DATA takes no argument")
	}
	if c.srv.cfg.Protocol == Submission && c.relay == nil {
		c.endTx()
		xreply(451, [3]int{4, 4, 2}, "relay failed in this transaction; try again later")
	}
	c.writeReply(reply{354, [3]int{}, "end data with <CR><LF>.<CR><LF>"})
	// The client waits for the 354; then the message comes, and the
	// acknowledgement of its first segment must not wait for the delayed-
	// ACK timer (see server.QuickAck).
	c.flush()
	server.QuickAck(c.nc)
	m := c.newData()
	if err := readData(c.br, m.write); err != nil {
		m.close()
		c.readFailed(err)
	}
	c.deliver(m)
}

// cmdBDAT takes a chunk of the message (RFC 3030 2); the last one is
// delivered, with a reply per recipient in LMTP (RFC 2033 4.2).
func (c *conn) cmdBDAT(arg string) {
	size, last, err := parseBDAT(arg)
	if err != nil {
		c.badChunkSize(err)
	}
	if c.data == nil {
		c.data = c.newData()
		c.state = stateChunks
	}
	// The chunk may follow its command line in a write of its own, held
	// back by the client's Nagle until the line is acknowledged.
	server.QuickAck(c.nc)
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
		panic(c.failureReply(m.err))
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

// cmdEXPN expands nothing: buzon has no mailing lists, and an answer
// would only help harvesters (RFC 5321 3.5.3, 7.3).
func (c *conn) cmdEXPN(string) {
	c.writeReply(reply{502, [3]int{5, 5, 1}, "EXPN not available"})
}

func (c *conn) cmdHELP(string) {
	switch c.srv.cfg.Protocol {
	case Submission:
		c.writeReply(reply{214, [3]int{2, 0, 0}, "submission (RFC 6409), for this server's accounts: EHLO HELO STARTTLS AUTH MAIL RCPT DATA BDAT RSET NOOP VRFY EXPN HELP QUIT"})
		return
	case SMTP:
		c.writeReply(reply{214, [3]int{2, 0, 0}, "SMTP (RFC 5321), mail for local accounts only: EHLO HELO STARTTLS MAIL RCPT DATA BDAT RSET NOOP VRFY EXPN HELP QUIT"})
		return
	}
	c.writeReply(reply{214, [3]int{2, 0, 0}, "LMTP (RFC 2033): LHLO MAIL RCPT DATA BDAT RSET NOOP VRFY EXPN HELP QUIT"})
}

func (c *conn) cmdQUIT(string) {
	c.endTx()
	c.writeReply(reply{221, [3]int{2, 0, 0}, c.srv.cfg.Hostname + " closing connection"})
	c.leaving, c.quit = true, true
}

// newData starts taking a transaction's message, with the trace fields
// above it that the server adds: Return-Path, then in SMTP Received
// (RFC 5321 4.4).
func (c *conn) newData() *msgData {
	// msgData holds the message to the size limit as the client sent it
	// (RFC 1870 5). The spool's own limit would count it with line
	// endings made CRLF and the trace fields added, and refuse a message
	// of bare CRs or LFs that SIZE= had declared within it.
	sp := *c.srv.cfg.Spooler // a Spooler is its settings only
	sp.MaxSize = 0
	var fields string
	if c.srv.cfg.ReturnPath {
		// RFC 5321 4.4; the path came on a command line, which holds no
		// control bytes.
		fields = "Return-Path: <" + c.from.mailbox + ">\r\n"
	}
	m := &msgData{w: sp.Writer(nil), limit: c.srv.cfg.MaxMessageSize, maxLine: c.srv.cfg.MaxLineLength}
	if c.srv.cfg.Protocol == SMTP {
		fields += c.received(time.Now())
		m.hops = &hopCounter{}
	}
	m.trace = int64(len(fields))
	if fields != "" {
		if _, err := m.w.Write([]byte(fields)); err != nil {
			m.fail(err)
		}
	}
	return m
}

// deliver finishes the message and delivers a copy per recipient; then
// the transaction is over.
func (c *conn) deliver(m *msgData) {
	defer c.endTx()
	if c.srv.cfg.Protocol == Submission {
		c.relayMessage(m)
		return
	}
	msg, err := m.finish()
	if err == nil && m.hops != nil && m.hops.count > c.srv.cfg.MaxReceived {
		msg.Close()
		err = fmt.Errorf("%w: %d Received fields", errLoop, m.hops.count)
	}
	if err != nil {
		c.logRefusal(err)
		if c.srv.cfg.Protocol == SMTP {
			c.writeReply(c.failureReply(err))
			return
		}
		for _, rcpt := range c.rcpts {
			c.writeRcptReply(rcpt, err)
		}
		return
	}
	defer msg.Close()
	if c.srv.cfg.Protocol == SMTP {
		keys := make([]string, len(c.rcpts))
		for i, rcpt := range c.rcpts {
			keys[i] = rcpt.copyKey
		}
		tx := c.srv.retries.message(c.from.mailbox, keys, msg, m.trace, time.Now())
		done := c.deliverCopies(msg, tx)
		r := c.messageReply(done, msg.Size())
		c.rememberCopies(tx, done, r)
		c.writeReply(r)
		return
	}
	done := c.deliverCopies(msg, nil)
	// A recipient named twice gets the same reply twice (RFC 2033 4.2: a
	// reply per successful RCPT), in RCPT order.
	for _, rcpt := range c.rcpts {
		c.writeRcptReply(rcpt, done[rcpt.copyKey])
	}
}

// deliverCopies delivers a copy of msg to each recipient, and returns the
// outcome of each by its copyKey, nil for a copy that is durable: a
// recipient named twice, or by an alias of an account named too, gets
// one copy.
//
// In SMTP, a copy stored at an earlier try of the same message, which was
// answered 451, is not stored again (retry.go); tx is the message's
// dealings with the memory of such copies, nil in LMTP.
func (c *conn) deliverCopies(msg *delivery.Spooled, tx *retryMessage) map[string]error {
	done := map[string]error{}
	for _, rcpt := range c.rcpts {
		key := rcpt.copyKey
		if _, dup := done[key]; dup {
			continue
		}
		if tx != nil && tx.stored(key, time.Now()) {
			c.log.Info("copy stored at an earlier try; not stored again", "rcpt", rcpt.key, "from", c.from.mailbox, "id", c.id)
			done[key] = nil
			continue
		}
		// The account's Sieve script sees the recipient as found, quoting
		// undone and <postmaster> given its domain.
		env := delivery.Envelope{From: c.from.mailbox, To: rcpt.key}
		_, err := c.srv.cfg.Deliverer.DeliverAccountAs(c.srv.ctx, rcpt.acct, msg, env, c.replyCode)
		if err != nil {
			c.log.Warn("delivery failed", "rcpt", rcpt.key, "from", c.from.mailbox, "id", c.id, "err", err)
		}
		done[key] = err
	}
	return done
}

// messageReply is SMTP's one reply to a message (RFC 5321 4.1.1.4),
// given its outcome per recipient: 250 only when every copy is durable.
// When some copies are stored and others failed, the reply is 451 for
// the whole message: the sender tries again later, the recipients whose
// copy failed get it then (or hear at RCPT why not), and those who have
// it are not given it again (rememberCopies). Duplicates over a loss: a
// 250 would lose the copies that failed, and a 5xx would bounce the
// message to its sender for recipients who have it. When no copy is stored, the reply is the
// first failure's, a temporary one first, so that a recipient the
// sender may retry is not bounced with the others.
func (c *conn) messageReply(done map[string]error, size int64) reply {
	stored := 0
	for _, err := range done {
		if err == nil {
			stored++
		}
	}
	var temporary, permanent error
	for _, rcpt := range c.rcpts { // in RCPT order, for the first failure
		switch err := done[rcpt.copyKey]; {
		case err == nil:
		case c.failureReply(err).code < 500:
			temporary = cmp.Or(temporary, err)
		default:
			permanent = cmp.Or(permanent, err)
		}
	}
	log := c.log.With("id", c.id, "from", c.from.mailbox, "size", size, "recipients", len(done), "stored", stored)
	switch {
	case stored == len(done):
		log.Info("message received")
		return reply{250, [3]int{2, 0, 0}, "message delivered, id " + c.id}
	case stored > 0:
		log.Warn("message stored for some recipients only; asked the sender to try again")
		return reply{451, [3]int{4, 3, 0}, "delivered to some recipients only; try again later"}
	case temporary != nil:
		log.Warn("message not stored")
		return c.failureReply(temporary)
	}
	log.Info("message refused")
	return c.failureReply(permanent)
}

// rememberCopies records the copies stored when the message's reply is a
// 451 for the whole message, so that its retry does not store them again,
// and forgets them once the reply is 250.
func (c *conn) rememberCopies(tx *retryMessage, done map[string]error, r reply) {
	var stored []string
	for key, err := range done {
		if err == nil {
			stored = append(stored, key)
		}
	}
	if err := tx.settle(r.code, stored, time.Now()); err != nil {
		// Its retry stores every copy again: duplicates, not a loss.
		c.log.Error("remember the copies stored for a retry", "id", c.id, "err", err)
	}
}

// writeRcptReply writes a recipient's reply to the end of the data.
func (c *conn) writeRcptReply(rcpt recipient, err error) {
	r := c.failureReply(err)
	r.text = "<" + rcpt.addr + "> " + r.text
	c.writeReply(r)
}

// traceRoom is what the quota check at RCPT allows beyond SIZE= for
// the Return-Path and Received fields, a few hundred octets, which the
// stored message holds and the declared size does not.
const traceRoom = 1024

// checkQuota refuses a recipient whose quota leaves no room for the
// message: the size MAIL's SIZE= declared, if any, and its trace
// fields. The sender learns at RCPT rather than after sending it, and
// for that recipient only; a message that passed it and then failed the
// quota after the data, with others stored, would have them receive it
// again at every retry (see messageReply). A quota that cannot be read
// lets the recipient by: the append checks it again, atomically. So does
// a full quota when a copy for key is remembered for a retry (retry.go):
// that copy may be what fills it, and were this transaction its
// message's retry, a refusal here would have the sender retry the
// recipient, and in the end bounce it as full, with the message in its
// mailbox; the retry stores no second copy, and any other message meets
// the quota at its append. key is the recipient's copyKey.
func (c *conn) checkQuota(acct store.Account, key string) error {
	ctx := c.srv.ctx
	sess, err := c.srv.cfg.Deliverer.Store.Open(ctx, acct.ID)
	if err != nil {
		c.log.Warn("quota check", "account", acct.Name, "err", err)
		return nil
	}
	defer sess.Close()
	u, err := sess.QuotaUsage(ctx)
	if err != nil {
		c.log.Warn("quota check", "account", acct.Name, "err", err)
		return nil
	}
	// The room left is compared, not the sum: SIZE= may be near
	// math.MaxInt64 when there is no size limit, and the sum would wrap.
	if u.MaxMessages > 0 && u.Messages >= u.MaxMessages || u.MaxBytes > 0 && max(c.size, 0) > u.MaxBytes-u.Bytes-traceRoom {
		if c.srv.retries.waiting(c.from.mailbox, key, time.Now()) {
			c.log.Info("quota full, but a copy is remembered for a retry; left to the append", "rcpt", key)
			return nil
		}
		return fmt.Errorf("%s: %w", acct.Name, store.ErrOverQuota)
	}
	return nil
}

// logRefusal logs why a message was not taken: at Info when the client
// caused it (too large, a line too long), else as an error.
func (c *conn) logRefusal(err error) {
	if errors.Is(err, delivery.ErrTooLarge) || errors.Is(err, errLineTooLong) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, errLoop) {
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
	c.from, c.rcpts, c.utf8, c.size, c.id = path{}, nil, false, -1, ""
	c.closeRelay()
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
