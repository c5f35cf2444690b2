package pop3server

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"

	"github.com/buzon-mail/buzon/internal/auth"
	"github.com/buzon-mail/buzon/internal/store"
)

// errPlaintext is the answer to a password in the clear where that is not
// allowed (RFC 2595 2.2). It carries no response code: [AUTH] would make
// clients ask the user for another password, which would not help.
const errPlaintext = "plaintext authentication is not allowed without TLS; use STLS first"

// cmdCapa lists the capabilities (RFC 2449 5). The login ones (USER, SASL,
// STLS) are shown only before login, where they can be used.
func (c *conn) cmdCapa(cmd command) {
	c.writeLine("+OK capability list follows")
	c.writeLine("TOP")
	c.writeLine("UIDL")
	c.writeLine("RESP-CODES")
	c.writeLine("AUTH-RESP-CODE")
	c.writeLine("PIPELINING")
	// RFC 2449 6.7: NEVER means messages stay until the client deletes them.
	if days := c.srv.cfg.POP3.ExpireDays; days > 0 {
		c.writeLine("EXPIRE %d", days)
	} else {
		c.writeLine("EXPIRE NEVER")
	}
	if c.state == stateAuthorization {
		if c.plaintextAllowed() {
			c.writeLine("USER")
		}
		c.writeLine("SASL %s", strings.Join(auth.Mechanisms(c.plaintextAllowed()), " "))
		if c.srv.cfg.TLS != nil && !c.tls {
			c.writeLine("STLS")
		}
	}
	c.writeLine("IMPLEMENTATION buzon")
	c.writeLine(".")
}

// cmdStls starts TLS (RFC 2595 4). It is allowed only in AUTHORIZATION
// state, and everything learnt from the client before it is forgotten.
func (c *conn) cmdStls(cmd command) {
	switch {
	case c.tls:
		xuser("", "TLS is already active")
	case c.srv.cfg.TLS == nil:
		xuser("", "STLS is not available")
	}
	c.writeLine("+OK begin TLS negotiation")
	c.flush()
	if n := c.br.Buffered(); n > 0 {
		c.log.Warn("pop3 client sent data after STLS before TLS; discarded", "bytes", n)
	}
	c.startTLS()
	c.user = ""
}

// cmdUser names the user for PASS (RFC 1939 7).
func (c *conn) cmdUser(cmd command) {
	if !c.plaintextAllowed() {
		xuser("", errPlaintext)
	}
	c.user = cmd.args[0]
	c.writeLine("+OK send PASS")
}

// cmdPass checks the password for the name given by USER (RFC 1939 7).
// The password is the whole rest of the line, so it may hold spaces.
func (c *conn) cmdPass(cmd command) {
	if !c.plaintextAllowed() {
		xuser("", errPlaintext)
	}
	if c.user == "" {
		xuser("", "send USER first")
	}
	user := c.user
	c.user = "" // RFC 1939 7: after a failed PASS the client starts again with USER
	acct, err := c.srv.cfg.Auth.Login(c.ctx, c.remote, user, cmd.rest)
	xauth(err)
	c.login(acct, "USER")
}

// cmdAuth runs a SASL exchange (RFC 5034). Without an argument it lists
// the mechanisms, as many servers do for older clients (RFC 1734 did
// not define this, but clients probe with it).
func (c *conn) cmdAuth(cmd command) {
	offered := auth.Mechanisms(c.plaintextAllowed())
	if len(cmd.args) == 0 {
		c.writeLine("+OK SASL mechanisms follow")
		for _, m := range offered {
			c.writeLine("%s", m)
		}
		c.writeLine(".")
		return
	}
	name := strings.ToUpper(cmd.args[0])
	if !slices.Contains(offered, name) {
		if slices.Contains(auth.Mechanisms(true), name) {
			xuser("", errPlaintext)
		}
		xuser("", "unsupported authentication mechanism")
	}
	mech, err := c.srv.cfg.Auth.NewMechanism(name, c.remote)
	xauth(err)

	// RFC 5034 4: an initial response may follow the mechanism name, "="
	// standing for an empty one.
	var resp []byte
	if len(cmd.args) == 2 {
		resp, err = auth.DecodeResponse(cmd.args[1])
		xauth(err)
	}
	for {
		challenge, done, err := mech.Next(c.ctx, resp)
		xauth(err)
		if done {
			// RFC 5034 4: data that comes with success is sent as one
			// more challenge, to which the client answers with an empty
			// line.
			if len(challenge) > 0 {
				if resp := c.saslStep(challenge); len(resp) != 0 {
					xuser("", "expected an empty response")
				}
			}
			break
		}
		resp = c.saslStep(challenge)
	}
	c.login(mech.Account(), name)
}

// saslStep sends a challenge and reads the client's decoded response
// (RFC 5034 4).
func (c *conn) saslStep(challenge []byte) []byte {
	c.writeLine("+ %s", base64.StdEncoding.EncodeToString(challenge))
	line, err := c.readLine(c.srv.cfg.Limits.MaxLineLength)
	if err != nil {
		xuser("", "%s", err)
	}
	resp, err := auth.DecodeResponse(line)
	xauth(err)
	return resp
}

// xauth turns an authentication error into a refusal.
func xauth(err error) {
	switch {
	case err == nil:
		return
	case errors.Is(err, auth.ErrAuthFailed):
		// RFC 2449 8.1.2 (AUTH-RESP-CODE), RFC 3206 5.
		xuser(codeAuth, "authentication failed")
	case errors.Is(err, auth.ErrLockedOut):
		xuser(codeSysTemp, "too many failed logins; try again later")
	case errors.Is(err, auth.ErrCancelled):
		xuser("", "authentication cancelled") // RFC 5034 4
	case errors.Is(err, auth.ErrMalformed):
		xuser("", "malformed authentication exchange")
	case errors.Is(err, auth.ErrUnsupported):
		xuser("", "unsupported authentication mechanism")
	}
	xcheck(err, "authenticate")
}

// login enters TRANSACTION state for an authenticated account: it takes a
// session slot and the maildrop lock (RFC 1939 8), ending a stale session
// that holds them if need be (takeover.go), then snapshots INBOX. On
// failure everything taken is given back and the session stays in
// AUTHORIZATION.
func (c *conn) login(acct store.Account, method string) {
	ctx := c.ctx
	var releases []func()
	defer func() {
		if c.state != stateTransaction {
			for i := len(releases) - 1; i >= 0; i-- {
				releases[i]()
			}
		}
	}()

	releases, refusal := c.takeMaildrop(ctx, acct)
	if refusal != nil {
		releases, refusal = c.takeOver(ctx, acct, refusal)
	}
	if refusal != nil {
		c.log.Info("pop3 login refused", "account", acct.Name, "reason", refusal.text)
		panic(*refusal)
	}

	// Watched before the snapshot, so that a deletion after it is seen
	// (xaccountGone); one before it fails the snapshot.
	watch := c.srv.cfg.Store.Watch(acct.ID)
	releases = append(releases, watch.Close)
	sess, err := c.srv.cfg.Store.Open(ctx, acct.ID)
	xcheck(err, "open store session")
	releases = append(releases, func() {
		if err := sess.Close(); err != nil {
			c.log.Warn("pop3 close store session", "err", err)
		}
	})

	inbox, err := sess.Mailbox(ctx, "INBOX")
	xcheck(err, "find INBOX")
	msgs, err := snapshot(ctx, sess, inbox.ID)
	xcheck(err, "list INBOX")

	c.account, c.session, c.inbox, c.msgs, c.watch = acct, sess, inbox, msgs, watch
	c.log = c.log.With("account", acct.Name) // before hold: takeOver reads it
	c.heardNow()
	// Forgotten as a holder last, after the lock is released (see hold).
	c.releases = append([]func(){c.srv.hold(c)}, releases...)
	c.state = stateTransaction
	count, size := c.maildropSize()
	c.log.Info("pop3 login", "method", method, "tls", c.tls, "messages", count)
	c.writeLine("+OK maildrop has %d messages (%d octets)", count, size)
}

// snapshot lists INBOX for the maildrop.
func snapshot(ctx context.Context, sess store.Session, mailboxID int64) ([]message, error) {
	var msgs []message
	err := sess.Messages(ctx, mailboxID, store.AllUIDs(), store.FieldSize|store.FieldFlags|store.FieldRetrieved,
		func(mi *store.MessageInfo) error {
			msgs = append(msgs, message{
				uid:       mi.UID,
				size:      mi.Size,
				retrieved: !mi.Retrieved.IsZero() && mi.Flags.System&store.FlagSeen != 0,
			})
			return nil
		})
	return msgs, err
}
