package smtpserver

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/buzon-mail/buzon/internal/auth"
	"github.com/buzon-mail/buzon/internal/delivery"
	"github.com/buzon-mail/buzon/internal/message"
	"github.com/buzon-mail/buzon/internal/server"
	"github.com/buzon-mail/buzon/internal/smtpclient"
)

// Submission (RFC 6409): the accounts' mail clients log in with AUTH and
// hand over their mail, which goes on to the relay MTA while the client
// waits. The relay's answer to each command is the client's: a 250 for a
// message is sent only once the relay has taken it, and a relay that
// fails or does not answer in time gets the client a 451, so that it
// tries again. Nothing is queued here, and nothing is acknowledged that
// the relay did not take.

// plaintextAllowed says the session may log in: over TLS, from loopback,
// or anywhere when the configuration allows it (auth.PlaintextAllowed).
// SCRAM alone without TLS would keep the password, but not the mail,
// from a listener: submission offers AUTH only where it may be sent.
func (c *conn) plaintextAllowed() bool {
	return auth.PlaintextAllowed(c.tls != "", server.AddrOf(c.raw.RemoteAddr()), c.srv.cfg.AllowPlaintext)
}

// cmdAUTH logs the client in (RFC 4954 4): AUTH mechanism
// [initial-response], then challenges and responses, one line each.
func (c *conn) cmdAUTH(arg string) {
	switch {
	case c.srv.cfg.Protocol != Submission:
		// As before AUTH was known: the MX takes no logins.
		xreply(500, [3]int{5, 5, 2}, "unknown command")
	case c.account.ID != 0:
		xreply(503, [3]int{5, 5, 1}, "already authenticated") // RFC 4954 4
	case !c.plaintextAllowed():
		// RFC 4954 6: 538 5.7.11.
		xreply(538, [3]int{5, 7, 11}, "encryption required: STARTTLS first")
	}
	name, initial, hasInitial := strings.Cut(strings.TrimSpace(arg), " ")
	if name == "" {
		xreply(501, [3]int{5, 5, 4}, "syntax: AUTH mechanism [initial-response]")
	}
	mech, err := c.srv.cfg.Auth.NewMechanism(name, server.AddrOf(c.raw.RemoteAddr()))
	c.xauth(err)
	var resp []byte
	if hasInitial {
		resp, err = auth.DecodeResponse(initial) // "=" is an empty one
		c.xauth(err)
	}
	for {
		challenge, done, err := mech.Next(c.srv.ctx, resp)
		c.xauth(err)
		if done {
			// SMTP has no success with data: it comes as one more
			// challenge, to which the client answers with an empty line
			// (RFC 4954 4).
			if len(challenge) > 0 {
				if resp := c.saslStep(challenge); len(resp) != 0 {
					xreply(501, [3]int{5, 5, 2}, "expected an empty response")
				}
			}
			break
		}
		resp = c.saslStep(challenge)
	}
	c.account = mech.Account()
	c.log = c.log.With("account", c.account.Name)
	c.log.Info("submission login", "mechanism", strings.ToUpper(name), "tls", c.tls)
	c.writeReply(reply{235, [3]int{2, 7, 0}, "authentication successful"})
}

// saslStep sends a challenge and reads the client's decoded response.
func (c *conn) saslStep(challenge []byte) []byte {
	c.writeReply(reply{334, [3]int{}, base64.StdEncoding.EncodeToString(challenge)})
	line, err := c.readLine()
	if errors.Is(err, errLineTooLong) {
		xreply(500, [3]int{5, 5, 6}, "authentication response too long")
	}
	if err != nil {
		c.readFailed(err)
	}
	resp, err := auth.DecodeResponse(string(line))
	c.xauth(err)
	return resp
}

// xauth turns an authentication error into its reply (RFC 4954 6).
func (c *conn) xauth(err error) {
	switch {
	case err == nil:
		return
	case errors.Is(err, auth.ErrAuthFailed):
		xreply(535, [3]int{5, 7, 8}, "authentication credentials invalid")
	case errors.Is(err, auth.ErrLockedOut):
		xreply(454, [3]int{4, 7, 0}, "too many failed logins; try again later")
	case errors.Is(err, auth.ErrCancelled):
		xreply(501, [3]int{5, 0, 0}, "authentication cancelled")
	case errors.Is(err, auth.ErrMalformed):
		xreply(501, [3]int{5, 5, 2}, "malformed authentication exchange")
	case errors.Is(err, auth.ErrUnsupported):
		xreply(504, [3]int{5, 5, 4}, "unsupported authentication mechanism")
	}
	c.log.Error("authenticate", "err", err)
	xreply(454, [3]int{4, 7, 0}, "temporary authentication failure; try again later")
}

// checkSender refuses a reverse path that is not the account's: the
// null path, which is for bounces (RFC 5321 4.5.5) and would hide who
// sent, and another's address (RFC 6409 6.1).
func (c *conn) checkSender(from path) {
	if from.local == "" {
		xreply(553, [3]int{5, 7, 1}, "the null sender <> is for bounces; send as your own address")
	}
	if !c.owns(from.address()) {
		xreply(553, [3]int{5, 7, 1}, "<%s> is not an address of %s", from.mailbox, c.account.Name)
	}
}

// owns says the logged-in account may send as addr: its own address, an
// alias of it, or a +detail of either, found as RCPT finds a recipient
// (local part and domain in any case), unless AllowAnySender.
func (c *conn) owns(addr string) bool {
	if c.srv.cfg.AllowAnySender {
		return true
	}
	r, err := c.srv.cfg.Deliverer.Lookup(c.srv.ctx, strings.ToLower(addr))
	switch {
	case errors.Is(err, delivery.ErrUnknownRecipient):
		return false
	case err != nil:
		c.log.Error("sender lookup", "addr", addr, "err", err)
		xreply(451, [3]int{4, 3, 0}, "cannot check the sender now; try again later")
	}
	return r.Account.ID == c.account.ID
}

// openRelay starts the transaction at the relay, for MAIL, with the
// parameters the relay takes.
func (c *conn) openRelay(m mailArgs) {
	cl, err := smtpclient.Dial(c.srv.ctx, c.srv.cfg.Relay)
	if err != nil {
		c.log.Warn("relay unavailable", "err", err)
		c.endTx()
		xreply(451, [3]int{4, 4, 1}, "relay unavailable; try again later")
	}
	c.relay = cl
	_, utf8 := cl.Extension("SMTPUTF8")
	c.srv.relayNoUTF8.Store(!utf8)
	_, eightBit := cl.Extension("8BITMIME")
	c.srv.relayNo8Bit.Store(!eightBit)
	c.relayParams = relayParams(cl, m)
	if m.utf8 && !slices.Contains(c.relayParams, "SMTPUTF8") {
		c.endTx()
		// RFC 6531 3.5: the next hop cannot carry it.
		xreply(553, [3]int{5, 6, 7}, "the relay does not take SMTPUTF8 mail")
	}
	if m.eightBit && !slices.Contains(c.relayParams, "BODY=8BITMIME") {
		c.endTx()
		// RFC 6152 3: 8-bit data goes only to a server that offers
		// 8BITMIME; converting it is a relay's work, not this one's.
		xreply(554, [3]int{5, 6, 3}, "the relay does not take 8-bit mail; send it as 7-bit MIME")
	}
	if err := cl.Mail(m.from.mailbox, c.relayParams...); err != nil {
		r := c.relayReply(err)
		c.endTx()
		if r.code == 530 {
			// The relay wants buzon to log in: its 530 would tell the
			// client to, which it did. A configuration to fix, and the
			// client's message kept until then.
			c.log.Error("the relay asks for a login; set submission.relay_user and its password", "reply", strings.TrimSpace(r.String()))
			r = reply{451, [3]int{4, 4, 1}, "relay unavailable; try again later"}
		}
		panic(r)
	}
}

// relayParams are the parameters of MAIL at the relay: those of the
// client's MAIL that the relay offers.
func relayParams(cl *smtpclient.Client, m mailArgs) []string {
	var params []string
	if _, ok := cl.Extension("SIZE"); ok && m.size >= 0 {
		// RFC 1870 6: an estimate; the trace fields come on top.
		params = append(params, fmt.Sprintf("SIZE=%d", m.size+min(traceRoom, math.MaxInt64-m.size)))
	}
	if _, ok := cl.Extension("8BITMIME"); ok && m.eightBit {
		params = append(params, "BODY=8BITMIME")
	}
	if _, ok := cl.Extension("SMTPUTF8"); ok && m.utf8 {
		params = append(params, "SMTPUTF8")
	}
	return params
}

// reopenRelay replays the transaction on a new relay connection: MAIL,
// and RCPT for each recipient the relay took before. Any refusal now is
// an error that is not a Reply: the client is to try the whole message
// again.
func (c *conn) reopenRelay() error {
	if c.relay != nil {
		c.relay.Abort()
		c.relay = nil
	}
	cl, err := smtpclient.Dial(c.srv.ctx, c.srv.cfg.Relay)
	if err != nil {
		return err
	}
	c.relay = cl
	if err := cl.Mail(c.from.mailbox, c.relayParams...); err != nil {
		return fmt.Errorf("MAIL again: %s", err)
	}
	for _, rcpt := range c.rcpts {
		if err := cl.Rcpt(rcpt.addr); err != nil {
			return fmt.Errorf("RCPT TO:<%s> again: %s", rcpt.addr, err)
		}
	}
	return nil
}

// relayRcpt asks the relay to take a recipient, and gives the client its
// answer.
func (c *conn) relayRcpt(p path) {
	if c.relay == nil {
		xreply(451, [3]int{4, 4, 2}, "relay failed in this transaction; try again later")
	}
	if err := c.relay.Rcpt(p.mailbox); err != nil {
		r := c.relayReply(err)
		r.text = "<" + p.mailbox + "> " + r.text
		panic(r)
	}
	c.rcpts = append(c.rcpts, recipient{addr: p.mailbox, key: strings.ToLower(p.address())})
	c.state = stateRcpt
	c.writeReply(reply{250, [3]int{2, 1, 5}, "recipient <" + p.mailbox + "> OK"})
}

// relayReply is the client's reply to a command the relay failed: the
// relay's own refusal, or, when the relay broke or did not answer in
// time, 451 with the relay connection dropped (the client tries again).
// A relay closing (421) is not passed on: it would say this server is.
func (c *conn) relayReply(err error) reply {
	var r *smtpclient.Reply
	if errors.As(err, &r) && r.Code >= 450 && r.Code < 600 {
		enh := r.Enhanced
		if enh == [3]int{} {
			enh = [3]int{r.Code / 100, 0, 0}
		}
		return reply{r.Code, enh, "relay: " + strings.Map(printable, r.Text)}
	}
	c.log.Warn("relay failed", "id", c.id, "err", err)
	if c.relay != nil {
		c.relay.Abort()
		c.relay = nil
	}
	return reply{451, [3]int{4, 4, 2}, "relay failed; try again later"}
}

// printable keeps a relay's reply text one line of text.
func printable(r rune) rune {
	if lineBreakOrControl(r) {
		return ' '
	}
	return r
}

// closeRelay ends the transaction's relay connection, if any.
func (c *conn) closeRelay() {
	if c.relay != nil {
		c.relay.Close()
		c.relay = nil
	}
	c.relayParams = nil
}

// relayMessage checks the message's header, adds the trace and the
// fields RFC 6409 8 lets a submission server add, and sends it to the
// relay; the relay's reply to the end of the data is the client's.
func (c *conn) relayMessage(m *msgData) {
	msg, err := m.finish()
	if err != nil {
		c.logRefusal(err)
		panic(c.failureReply(err))
	}
	defer msg.Close()
	if c.relay == nil {
		xreply(451, [3]int{4, 4, 2}, "relay failed in this transaction; try again later")
	}
	hasDate, hasID := c.checkHeader(msg)
	now := time.Now()
	fields := c.received(now)
	if !hasDate {
		fields += "Date: " + now.Format(time.RFC1123Z) + "\r\n" // RFC 6409 8.2
	}
	if !hasID {
		fields += "Message-ID: <" + rand.Text() + "@" + c.srv.cfg.Hostname + ">\r\n" // RFC 6409 8.3
	}
	body := func() io.Reader { return io.MultiReader(strings.NewReader(fields), msg.Reader()) }
	text, err := c.relay.Data(body())
	if errors.Is(err, smtpclient.ErrNotStarted) {
		// The relay dropped the connection while the client was sending
		// the message, as Postfix does to one idle past smtpd_timeout (10
		// seconds under stress): once more on a new one, which cannot
		// duplicate it.
		c.log.Info("relay connection lost before the message; connecting again", "id", c.id, "err", err)
		if err = c.reopenRelay(); err == nil {
			text, err = c.relay.Data(body())
		}
	}
	if err != nil {
		r := c.relayReply(err)
		c.log.Warn("message not sent", "id", c.id, "from", c.from.mailbox, "recipients", len(c.rcpts), "reply", r.String())
		panic(r)
	}
	relayed, _, _ := strings.Cut(text, "\n")
	relayed = strings.Map(printable, relayed)
	c.log.Info("message sent", "id", c.id, "from", c.from.mailbox, "recipients", len(c.rcpts),
		"size", msg.Size(), "relay", relayed)
	c.writeReply(reply{250, [3]int{2, 0, 0}, "message sent, id " + c.id + "; relay: " + relayed})
	// Sent now, not after the relay's QUIT, which endTx waits for.
	c.flush()
}

// maxAuthors bounds the addresses of a From field, each looked up in
// the store: a message has one author, or a few (RFC 5322 3.6.2).
const maxAuthors = 10

// checkHeader refuses a message whose From or Sender field names an
// address that is not the account's, or that has no From (RFC 5322
// 3.6.2), and says whether it has a Date and a Message-ID.
//
// The fields are read strictly (message.ParseMailboxList), as the
// grammar has them, one From and at most one Sender (RFC 5322 3.6), and
// the whole header must be read: what a forgiving reader would skip, or
// read as fewer addresses than a strict one, is refused rather than
// relayed unchecked.
func (c *conn) checkHeader(msg *delivery.Spooled) (hasDate, hasID bool) {
	h := make([]byte, msg.Part().BodyStart)
	if _, err := io.ReadFull(msg.Reader(), h); err != nil {
		c.log.Error("read the spooled header", "err", err)
		xreply(451, [3]int{4, 3, 0}, "local error; try again later")
	}
	// The parser ends a header at the blank line (RFC 5322 2.1), at the
	// end of a message without a body, or, past its limit, at the line
	// that would go over it: the fields after that line would reach the
	// relay unread.
	if int64(len(h)) < msg.Size() && !bytes.HasSuffix(h, []byte("\n\r\n")) && string(h) != "\r\n" {
		xreply(552, [3]int{5, 3, 4}, "the header is over %d bytes", message.DefaultMaxHeaderBytes)
	}
	var froms, senders int
	checked := map[string]bool{}
	for f := range message.Fields(h) {
		switch {
		case bytes.EqualFold(f.Name, []byte("Date")):
			hasDate = true
		case bytes.EqualFold(f.Name, []byte("Message-ID")):
			hasID = true
		case bytes.EqualFold(f.Name, []byte("From")):
			if froms++; froms > 1 {
				xreply(550, [3]int{5, 6, 0}, "more than one From field (RFC 5322 3.6)")
			}
			c.checkAuthors("From", f.Value(), maxAuthors, checked)
		case bytes.EqualFold(f.Name, []byte("Sender")):
			if senders++; senders > 1 {
				xreply(550, [3]int{5, 6, 0}, "more than one Sender field (RFC 5322 3.6)")
			}
			c.checkAuthors("Sender", f.Value(), 1, checked) // RFC 5322 3.6.2: one mailbox
		}
	}
	if froms == 0 {
		xreply(550, [3]int{5, 6, 0}, "the message has no From field (RFC 5322 3.6.2)")
	}
	return hasDate, hasID
}

// checkAuthors refuses an address field that is not a list of at most
// max mailboxes (550 5.6.0: the message is malformed, and a strict
// reader would read other addresses than a forgiving one), or that
// names an address the account may not send as (553 5.7.1, RFC 6409
// 6.1, 8.1), each address looked up once per message (checked).
func (c *conn) checkAuthors(field, value string, max int, checked map[string]bool) {
	addrs, err := message.ParseMailboxList(value, max)
	if err != nil {
		xreply(550, [3]int{5, 6, 0}, "%s: %s (RFC 5322 3.6.2)", field, strings.Map(printable, err.Error()))
	}
	for _, a := range addrs {
		addr := a.Mailbox + "@" + a.Host
		key := strings.ToLower(addr)
		if checked[key] {
			continue
		}
		if !c.owns(addr) {
			xreply(553, [3]int{5, 7, 1}, "%s: <%s> is not an address of %s", field, strings.Map(printable, addr), c.account.Name)
		}
		checked[key] = true
	}
}
