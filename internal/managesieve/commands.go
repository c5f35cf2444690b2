package managesieve

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/buzon-mail/buzon/internal/auth"
	"github.com/buzon-mail/buzon/internal/sieve"
	"github.com/buzon-mail/buzon/internal/store"
)

// commandSpec is a command's handler, where it is allowed, and its
// arguments.
type commandSpec struct {
	run func(*conn, command)
	// authenticated: only after login; otherwise only before it, unless
	// any is set.
	authenticated, any bool
	// minArgs and maxArgs bound the argument count.
	minArgs, maxArgs int
	// atoms says which arguments are atoms (numbers); the others are
	// strings.
	atoms []bool
	// usage is the syntax, told to a client that gets the arguments wrong.
	usage string
}

// commands is every command the server knows (RFC 5804 2), and where it
// may be used. UNAUTHENTICATE (2.14.1) is not offered.
var commands = map[string]commandSpec{
	"AUTHENTICATE": {run: (*conn).cmdAuthenticate, minArgs: 1, maxArgs: 2, usage: `AUTHENTICATE "mechanism" ["initial response"]`},
	"STARTTLS":     {run: (*conn).cmdStartTLS, usage: "STARTTLS"},
	"LOGOUT":       {run: (*conn).cmdLogout, any: true, usage: "LOGOUT"},
	"CAPABILITY":   {run: (*conn).cmdCapability, any: true, usage: "CAPABILITY"},
	"NOOP":         {run: (*conn).cmdNoop, any: true, maxArgs: 1, usage: `NOOP ["tag"]`},
	"HAVESPACE":    {run: (*conn).cmdHaveSpace, authenticated: true, minArgs: 2, maxArgs: 2, atoms: []bool{false, true}, usage: `HAVESPACE "name" size`},
	"PUTSCRIPT":    {run: (*conn).cmdPutScript, authenticated: true, minArgs: 2, maxArgs: 2, usage: `PUTSCRIPT "name" {size+} script`},
	"LISTSCRIPTS":  {run: (*conn).cmdListScripts, authenticated: true, usage: "LISTSCRIPTS"},
	"SETACTIVE":    {run: (*conn).cmdSetActive, authenticated: true, minArgs: 1, maxArgs: 1, usage: `SETACTIVE "name"`},
	"GETSCRIPT":    {run: (*conn).cmdGetScript, authenticated: true, minArgs: 1, maxArgs: 1, usage: `GETSCRIPT "name"`},
	"DELETESCRIPT": {run: (*conn).cmdDeleteScript, authenticated: true, minArgs: 1, maxArgs: 1, usage: `DELETESCRIPT "name"`},
	"RENAMESCRIPT": {run: (*conn).cmdRenameScript, authenticated: true, minArgs: 2, maxArgs: 2, usage: `RENAMESCRIPT "old name" "new name"`},
	"CHECKSCRIPT":  {run: (*conn).cmdCheckScript, authenticated: true, minArgs: 1, maxArgs: 1, usage: `CHECKSCRIPT {size+} script`},
}

// writeCapabilities lists the capabilities (RFC 5804 1.7), each a line of
// one or two strings. SASL and STARTTLS are listed only before login,
// where they can be used; OWNER after it. SIEVE names vacation only where
// the server can send its replies; MAXREDIRECTS is listed where it can
// forward. NOTIFY never is: buzon does not notify.
func (c *conn) writeCapabilities() {
	capability := func(name, value string) {
		c.writeString(name)
		if value != "" || name == "SASL" || name == "SIEVE" {
			c.writeRaw(" ")
			c.writeString(value)
		}
		c.writeRaw("\r\n")
	}
	capability("IMPLEMENTATION", "buzon")
	capability("SIEVE", strings.Join(sieve.ExtensionsWith(c.srv.cfg.SieveOptions), " "))
	if c.srv.cfg.SieveOptions.Redirect {
		capability("MAXREDIRECTS", strconv.Itoa(sieve.MaxRedirects))
	}
	if c.account.ID == 0 {
		capability("SASL", strings.Join(auth.Mechanisms(c.plaintextAllowed()), " "))
		if c.srv.cfg.TLS != nil && !c.tls {
			capability("STARTTLS", "")
		}
	} else {
		capability("OWNER", c.account.Name)
	}
	capability("VERSION", "1.0")
}

// cmdCapability lists the capabilities again (RFC 5804 2.4).
func (c *conn) cmdCapability(cmd command) {
	c.writeCapabilities()
	c.writeResp("OK", "", "capability completed")
}

// cmdNoop does nothing, echoing a tag the client gave (RFC 5804 2.13).
func (c *conn) cmdNoop(cmd command) {
	if len(cmd.args) == 1 {
		c.writeResp("OK", "TAG "+quote(cmd.args[0].s), "done")
		return
	}
	c.writeResp("OK", "", "done")
}

// cmdLogout ends the session (RFC 5804 2.3).
func (c *conn) cmdLogout(cmd command) {
	c.writeResp("OK", "", "logout completed")
	c.done = true
}

// cmdStartTLS starts TLS and lists the capabilities again, as they are
// now (RFC 5804 2.2).
func (c *conn) cmdStartTLS(cmd command) {
	switch {
	case c.tls:
		xuser("", "TLS is already active")
	case c.srv.cfg.TLS == nil:
		xuser("", "STARTTLS is not available")
	}
	c.writeResp("OK", "", "begin TLS negotiation")
	c.flush()
	if n := c.br.Buffered(); n > 0 {
		c.log.Warn("managesieve client sent data after STARTTLS before TLS; discarded", "bytes", n)
	}
	c.startTLS()
	c.writeCapabilities()
	c.writeResp("OK", "", "TLS active")
}

// errPlaintext is the answer to a plaintext mechanism where it is not
// allowed (RFC 5804 1.3 ENCRYPT-NEEDED).
const errPlaintext = "a password in the clear needs TLS; use STARTTLS first"

// cmdAuthenticate runs a SASL exchange (RFC 5804 2.1): challenges and
// responses are strings holding base64, "*" cancels, and data that comes
// with success is sent in the OK's SASL response code.
func (c *conn) cmdAuthenticate(cmd command) {
	offered := auth.Mechanisms(c.plaintextAllowed())
	name := strings.ToUpper(cmd.args[0].s)
	if !slices.Contains(offered, name) {
		if slices.Contains(auth.Mechanisms(true), name) {
			xuser(codeEncryptNeeded, errPlaintext)
		}
		xuser("", "unsupported authentication mechanism")
	}
	mech, err := c.srv.cfg.Auth.NewMechanism(name, c.remote)
	xauth(err)

	var resp []byte
	if len(cmd.args) == 2 {
		// An empty string is an empty initial response, as in IMAP's
		// SASL-IR (RFC 4959 3) written "=".
		if resp, err = decodeSASL(cmd.args[1].s); err != nil {
			xauth(err)
		}
	}
	for {
		challenge, done, err := mech.Next(c.ctx, resp)
		xauth(err)
		if done {
			acct := mech.Account()
			c.login(acct, name)
			code := ""
			if len(challenge) > 0 {
				code = "SASL " + quote(base64.StdEncoding.EncodeToString(challenge))
			}
			c.writeResp("OK", code, "logged in")
			return
		}
		resp = c.saslStep(challenge)
	}
}

// decodeSASL decodes a client's base64 string; "" is an empty response.
func decodeSASL(s string) ([]byte, error) {
	if s == "" {
		return []byte{}, nil
	}
	return auth.DecodeResponse(s)
}

// saslStep sends a challenge and reads the client's response: one string
// on a line, "*" for a cancel (RFC 5804 2.1).
func (c *conn) saslStep(challenge []byte) []byte {
	c.writeString(base64.StdEncoding.EncodeToString(challenge))
	c.writeRaw("\r\n")
	p := &parser{src: c, lim: c.limits(), maxLiterals: 1}
	line, err := c.line(c.srv.cfg.Limits.MaxLineLength)
	if err != nil {
		xuser("", "authentication cancelled: %s", err)
	}
	p.line = line
	if len(line) == 0 || line[0] != '"' && line[0] != '{' {
		p.skip()
		xuser("", "authentication cancelled: expected a string")
	}
	a, err := p.arg()
	if err != nil || p.pos != len(p.line) {
		p.skip()
		xuser("", "authentication cancelled: malformed response")
	}
	if a.s == "*" {
		xuser("", "authentication cancelled")
	}
	resp, err := decodeSASL(a.s)
	xauth(err)
	return resp
}

// xauth turns an authentication error into a refusal; unknown accounts
// and wrong passwords get the same one.
func xauth(err error) {
	switch {
	case err == nil:
		return
	case errors.Is(err, auth.ErrAuthFailed):
		xuser("", "authentication failed")
	case errors.Is(err, auth.ErrLockedOut):
		xuser(codeTryLater, "too many failed logins; try again later")
	case errors.Is(err, auth.ErrCancelled):
		xuser("", "authentication cancelled")
	case errors.Is(err, auth.ErrMalformed):
		xuser("", "malformed authentication exchange")
	case errors.Is(err, auth.ErrUnsupported):
		xuser("", "unsupported authentication mechanism")
	}
	xcheck(err, "authenticate")
}

// login enters the authenticated state: it takes a session slot and opens
// the account's store session.
func (c *conn) login(acct store.Account, method string) {
	slot, ok := c.srv.cfg.Sessions.Acquire(acct.ID)
	if !ok {
		c.log.Info("managesieve login refused", "account", acct.Name, "reason", "too many sessions")
		xuser(codeTryLater, "too many sessions of this account")
	}
	sess, err := c.srv.cfg.Store.Open(c.ctx, acct.ID)
	if err != nil {
		slot()
		xcheck(err, "open store session")
	}
	c.release = func() {
		if err := sess.Close(); err != nil {
			c.log.Warn("managesieve close store session", "err", err)
		}
		slot()
	}
	c.account, c.scripts = acct, sess
	c.log = c.log.With("account", acct.Name)
	c.log.Info("managesieve login", "method", method, "tls", c.tls)
}

// checkSize refuses a script over Config.Sieve.MaxScriptSize.
func (c *conn) checkSize(size int64) {
	if size > c.srv.cfg.Sieve.MaxScriptSize {
		xuser(codeMaxSize, "a script may have at most %d octets", c.srv.cfg.Sieve.MaxScriptSize)
	}
}

// predictCount refuses, for HAVESPACE, a new script when the account has
// Config.Sieve.MaxScripts; replacing one is always allowed. It is a
// prediction: PUTSCRIPT leaves the count to the store, which counts in
// the write that stores the script.
func (c *conn) predictCount(name string) {
	list, err := c.scripts.SieveScripts(c.ctx)
	xcheck(err, "list scripts")
	if slices.ContainsFunc(list, func(s store.SieveScript) bool { return s.Name == name }) {
		return
	}
	if len(list) >= c.srv.cfg.Sieve.MaxScripts {
		xuser(codeMaxScripts, "an account may keep at most %d scripts", c.srv.cfg.Sieve.MaxScripts)
	}
}

// xname refuses a script name RFC 5804 1.6 does not allow.
func xname(name string) {
	if err := store.ValidSieveScriptName(name); err != nil {
		xcheck(err, "script name")
	}
}

// compile checks a script, refusing it with what is wrong and where.
func (c *conn) compile(script string) {
	_, err := sieve.CompileWith([]byte(script), c.srv.cfg.SieveOptions)
	if ce, ok := errors.AsType[*sieve.CompileError](err); ok {
		xuser("", "%s", ce.Error())
	}
	if err != nil {
		panic(serverError{text: "the script could not be checked", err: fmt.Errorf("compile: %w", err)})
	}
}

// cmdHaveSpace says whether a script of that name and size would be taken
// (RFC 5804 2.5).
func (c *conn) cmdHaveSpace(cmd command) {
	name := cmd.args[0].s
	size, err := strconv.ParseInt(cmd.args[1].s, 10, 64)
	if err != nil || size < 0 {
		xbad(`usage: HAVESPACE "name" size`)
	}
	xname(name)
	c.checkSize(size)
	c.predictCount(name)
	c.writeResp("OK", "", "putscript would succeed")
}

// cmdPutScript checks a script and stores it, replacing one of the same
// name, which stays active if it was (RFC 5804 2.6).
func (c *conn) cmdPutScript(cmd command) {
	name, script := cmd.args[0].s, cmd.args[1].s
	xname(name)
	c.checkSize(int64(len(script)))
	c.compile(script)
	err := c.scripts.PutSieveScript(c.ctx, name, []byte(script), c.srv.cfg.Sieve.MaxScripts)
	if errors.Is(err, store.ErrLimit) {
		xuser(codeMaxScripts, "an account may keep at most %d scripts", c.srv.cfg.Sieve.MaxScripts)
	}
	xcheck(err, "put script")
	c.log.Info("managesieve script stored", "script", name, "size", len(script))
	c.writeResp("OK", "", "script stored")
}

// cmdCheckScript checks a script without storing it (RFC 5804 2.12).
func (c *conn) cmdCheckScript(cmd command) {
	c.checkSize(int64(len(cmd.args[0].s)))
	c.compile(cmd.args[0].s)
	c.writeResp("OK", "", "script is valid")
}

// cmdListScripts lists the scripts, marking the active one (RFC 5804 2.7).
func (c *conn) cmdListScripts(cmd command) {
	list, err := c.scripts.SieveScripts(c.ctx)
	xcheck(err, "list scripts")
	for _, s := range list {
		c.writeString(s.Name)
		if s.Active {
			c.writeRaw(" ACTIVE")
		}
		c.writeRaw("\r\n")
	}
	c.writeResp("OK", "", "listscripts completed")
}

// cmdSetActive makes a script the active one, or, with "", none (RFC 5804
// 2.8). The script is checked again first: one stored by an older buzon
// may use what this one no longer accepts, and delivery would then keep
// every message in INBOX.
func (c *conn) cmdSetActive(cmd command) {
	name := cmd.args[0].s
	if name != "" {
		s, err := c.scripts.SieveScript(c.ctx, name)
		xcheck(err, "get script")
		c.compile(string(s.Content))
	}
	xcheck(c.scripts.ActivateSieveScript(c.ctx, name), "activate script")
	c.log.Info("managesieve script activated", "script", name)
	c.writeResp("OK", "", "setactive completed")
}

// cmdGetScript sends a script as a literal (RFC 5804 2.9).
func (c *conn) cmdGetScript(cmd command) {
	s, err := c.scripts.SieveScript(c.ctx, cmd.args[0].s)
	xcheck(err, "get script")
	c.writeRaw(fmt.Sprintf("{%d}\r\n", len(s.Content)))
	c.writeRaw(string(s.Content))
	c.writeRaw("\r\n")
	c.writeResp("OK", "", "getscript completed")
}

// cmdDeleteScript deletes a script that is not active (RFC 5804 2.10).
func (c *conn) cmdDeleteScript(cmd command) {
	xcheck(c.scripts.DeleteSieveScript(c.ctx, cmd.args[0].s), "delete script")
	c.log.Info("managesieve script deleted", "script", cmd.args[0].s)
	c.writeResp("OK", "", "script deleted")
}

// cmdRenameScript renames a script, which stays active if it was (RFC
// 5804 2.11.1).
func (c *conn) cmdRenameScript(cmd command) {
	from, to := cmd.args[0].s, cmd.args[1].s
	xname(to)
	xcheck(c.scripts.RenameSieveScript(c.ctx, from, to), "rename script")
	c.log.Info("managesieve script renamed", "script", from, "to", to)
	c.writeResp("OK", "", "script renamed")
}
