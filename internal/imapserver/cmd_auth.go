package imapserver

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/buzon-mail/buzon/internal/auth"
	"github.com/buzon-mail/buzon/internal/store"
)

// plaintextAllowed reports whether passwords may be sent in the clear on
// this connection (RFC 9051 11.1).
func (c *conn) plaintextAllowed() bool {
	return auth.PlaintextAllowed(c.tls, c.remote, c.srv.cfg.AllowPlaintext)
}

// capabilities lists what the server offers in the current state.
func (c *conn) capabilities() string {
	// IDLE before login too, as Dovecot does: clients such as imaplib
	// read capabilities only from the greeting.
	caps := []string{"IMAP4rev2", "IMAP4rev1", "LITERAL+", "ENABLE", "ID", "SASL-IR", "IDLE"}
	if c.state == stateNotAuth {
		if c.srv.cfg.TLS != nil && !c.tls {
			caps = append(caps, "STARTTLS")
		}
		if !c.plaintextAllowed() {
			caps = append(caps, "LOGINDISABLED") // RFC 9051 6.2.3
		}
		for _, m := range auth.Mechanisms(c.plaintextAllowed()) {
			caps = append(caps, "AUTH="+m)
		}
		return strings.Join(caps, " ")
	}
	caps = append(caps,
		"UIDPLUS", "MOVE", "NAMESPACE", "UNSELECT",
		"SPECIAL-USE", "CREATE-SPECIAL-USE", "CHILDREN", "LIST-EXTENDED", "LIST-STATUS",
		"STATUS=SIZE", "ESEARCH", "SEARCHRES", "SORT", "SORT=DISPLAY", "ESORT",
		"THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES",
		"APPENDLIMIT="+strconv.FormatInt(c.srv.cfg.Limits.MaxMessageSize, 10),
		"MULTIAPPEND", "BINARY", "UTF8=ACCEPT", "CONDSTORE", "QRESYNC",
		"QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE", "SAVEDATE", "WITHIN", "PREVIEW")
	if !c.compressed {
		caps = append(caps, "COMPRESS=DEFLATE")
	}
	return strings.Join(caps, " ")
}

// RFC 9051 6.1.1
func (c *conn) cmdCapability(cmd *command) {
	c.w.str("* CAPABILITY " + c.capabilities() + "\r\n")
}

// RFC 9051 6.1.2; CHECK (6.4.1) does the same here: the store syncs every
// change as it is made.
func (c *conn) cmdNoop(cmd *command) {}

// RFC 9051 6.1.3
func (c *conn) cmdLogout(cmd *command) {
	c.w.str("* BYE logging out\r\n")
	c.w.str(cmd.tag + " OK LOGOUT completed\r\n")
	c.w.flush()
	c.done, c.closing = true, true
	// A compressing client may still be sending the end of its flush when
	// the OK arrives: the inflater passes on the command as soon as its
	// input pauses, and a client's deflater can write one flush in several
	// pieces. A close with those bytes unread would reset the connection,
	// and the reset can overtake the BYE and the OK.
	c.linger = c.compressed
}

// RFC 2971 3.1. The first ID that says something is logged, at most 30
// pairs of clipped strings (see parseID); later ones are not, so that a
// client repeating it cannot fill the log.
func (c *conn) cmdID(cmd *command) {
	a := cmd.args.(*idArgs)
	if len(a.params) > 0 && !c.idLogged {
		c.idLogged = true
		attrs := make([]any, 0, len(a.params))
		for i := 0; i+1 < len(a.params); i += 2 {
			attrs = append(attrs, "id."+strings.ToLower(a.params[i]), a.params[i+1])
		}
		c.log.Info("client id", attrs...)
	}
	c.w.str(`* ID ("name" "buzon" "vendor" "buzon")` + "\r\n")
}

// RFC 9051 6.2.1
func (c *conn) cmdStarttls(cmd *command) {
	if c.tls || c.srv.cfg.TLS == nil {
		xsyntaxErrorf("STARTTLS not available")
	}
	if c.r.buffered() > 0 {
		// Commands pipelined after STARTTLS would be taken as if they came
		// over TLS (CVE-2011-0411 and kin).
		c.closing = true
		xsyntaxErrorf("data after STARTTLS")
	}
	c.w.str(cmd.tag + " OK begin TLS negotiation now\r\n")
	c.w.flush()
	c.done = true
	c.setIO(true)
	if !c.handshake() {
		c.closing = true
	}
}

// RFC 9051 6.2.2, RFC 4959 (SASL-IR)
func (c *conn) cmdAuthenticate(cmd *command) {
	a := cmd.args.(*authenticateArgs)
	if !c.plaintextAllowed() && a.mech != auth.SCRAMSHA256 {
		xuserErrorf("PRIVACYREQUIRED", "use TLS before a plaintext mechanism")
	}
	mech, err := c.srv.cfg.Auth.NewMechanism(a.mech, c.remote)
	if err != nil {
		xuserErrorf("CANNOT", "unsupported mechanism %s", a.mech)
	}
	var resp []byte
	if a.initial != nil {
		resp, err = auth.DecodeResponse(string(a.initial))
		c.xauthError(err)
	}
	for {
		challenge, done, err := mech.Next(c.ctx, resp)
		c.xauthError(err)
		if done {
			if len(challenge) > 0 {
				// RFC 9051 6.2.2: IMAP has no success data, so a final
				// challenge carries it; its answer is empty.
				c.w.str("+ " + base64.StdEncoding.EncodeToString(challenge) + "\r\n")
				c.w.flush()
				if _, err := c.readAuthLine(cmd.p); err != nil {
					c.xauthError(err)
				}
			}
			c.loggedIn(cmd, mech.Account())
			return
		}
		c.w.str("+ " + base64.StdEncoding.EncodeToString(challenge) + "\r\n")
		c.w.flush()
		resp, err = c.readAuthLine(cmd.p)
		c.xauthError(err)
	}
}

// readAuthLine reads and decodes a client's SASL response line. It is
// read as part of the command (p), so that a literal ending a line that
// is not base64 is skipped, not taken for commands.
func (c *conn) readAuthLine(p *parser) ([]byte, error) {
	p.nextLine()
	return auth.DecodeResponse(string(p.line))
}

// xauthError turns an authentication failure into its answer.
func (c *conn) xauthError(err error) {
	switch {
	case err == nil:
		return
	case errors.Is(err, auth.ErrCancelled):
		xsyntaxErrorf("authentication cancelled") // RFC 9051 6.2.2
	case errors.Is(err, auth.ErrMalformed):
		xsyntaxErrorf("%v", err)
	case errors.Is(err, auth.ErrAuthFailed):
		xuserErrorf("AUTHENTICATIONFAILED", "authentication failed")
	case errors.Is(err, auth.ErrLockedOut):
		xuserErrorf("UNAVAILABLE", "too many failed logins; try again later")
	}
	xcheckf(err, "authenticate")
}

// RFC 9051 6.2.3
func (c *conn) cmdLogin(cmd *command) {
	a := cmd.args.(*loginArgs)
	if e := c.loginRefusal(); e != nil {
		panic(*e)
	}
	acct, err := c.srv.cfg.Auth.Login(c.ctx, c.remote, a.user, a.pass)
	c.xauthError(err)
	c.loggedIn(cmd, acct)
}

// loginRefusal is why LOGIN is refused on this connection, nil when it is
// not: no password in the clear before TLS (RFC 9051 6.2.3, 11.1).
func (c *conn) loginRefusal() *userError {
	if c.plaintextAllowed() {
		return nil
	}
	return &userError{code: "PRIVACYREQUIRED", msg: "LOGIN is disabled before TLS"}
}

// loggedIn starts the authenticated state for acct.
func (c *conn) loggedIn(cmd *command, acct store.Account) {
	release, ok := c.srv.cfg.Sessions.Acquire(acct.ID)
	if !ok {
		xuserErrorf("UNAVAILABLE", "too many sessions for this account")
	}
	sess, err := c.srv.cfg.Store.Open(c.ctx, acct.ID)
	if err != nil {
		release()
	}
	xcheckf(err, "open account")
	c.acct, c.sess, c.release = acct, sess, release
	c.state = stateAuth
	c.pace.hard = time.Time{} // the login deadline is met
	c.log = c.log.With("account", acct.Name)
	c.log.Info("logged in", "cmd", cmd.name)
	c.autoexpunge()
	// RFC 9051 7.1: CAPABILITY in the tagged OK, as it changed.
	c.ok("[CAPABILITY %s] logged in", c.capabilities())
}

// RFC 5161 3.1
func (c *conn) cmdEnable(cmd *command) {
	condstore := false // turned on by this command
	a := cmd.args.(*enableArgs)
	var enabled []string
	for _, capa := range a.caps {
		switch capa {
		case "IMAP4REV2":
			if !c.rev2 {
				c.rev2, c.utf8, c.w.utf8 = true, true, true
				enabled = append(enabled, "IMAP4rev2")
			}
		case "UTF8=ACCEPT":
			// RFC 6855 3; implied by IMAP4rev2. RFC 5161 3.2: ENABLED
			// lists only what this command turned on.
			if !c.utf8 {
				c.utf8, c.w.utf8 = true, true
				enabled = append(enabled, "UTF8=ACCEPT")
			}
		case "CONDSTORE":
			if !c.condstore && !condstore {
				condstore = true
				enabled = append(enabled, "CONDSTORE")
			}
		case "QRESYNC":
			// RFC 7162 3.2.3: QRESYNC implies CONDSTORE.
			if !c.qresync {
				c.qresync, condstore = true, !c.condstore
				enabled = append(enabled, "QRESYNC")
			}
		}
	}
	c.w.str("* ENABLED")
	for _, e := range enabled {
		c.w.str(" " + e)
	}
	c.w.str("\r\n")
	if condstore {
		c.enableCondstore() // after ENABLED: RFC 7162 3.1's HIGHESTMODSEQ, when selected
	}
}

// RFC 4978 3
func (c *conn) cmdCompress(cmd *command) {
	a := cmd.args.(*compressArgs)
	if c.compressed {
		xuserErrorf("COMPRESSIONACTIVE", "compression already active")
	}
	if a.mech != "DEFLATE" {
		xsyntaxErrorf("unknown compression mechanism %s", a.mech)
	}
	c.w.str(cmd.tag + " OK DEFLATE active\r\n")
	c.w.flush()
	c.done = true
	c.compressed = true
	c.w.startDeflate()
	// The client starts compressing right after our OK; anything it sent
	// before is already in the buffer and, per RFC 4978, there is none.
	// That buffer now belongs to the inflater, which reads on from it,
	// with no deadline and not paced.
	_ = c.raw.SetReadDeadline(time.Time{})
	inflate := newInflateReader(c.r.detach())
	c.srv.mu.Lock() // interruptLocked reads c.inflate
	c.inflate = inflate
	c.srv.mu.Unlock()
	c.r.setSource(inflate)
}
