package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/delivery"
	"github.com/buzon-mail/buzon/internal/sieve"
	"github.com/buzon-mail/buzon/internal/smtpclient"
	"github.com/buzon-mail/buzon/internal/store"
)

// runSieve manages an account's Sieve scripts, as a ManageSieve client
// does for its user: the one active script runs at delivery and files,
// flags or discards the account's mail.
func runSieve(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("sieve", `usage: buzon sieve list       [--data DIR] [--config FILE] ACCOUNT
       buzon sieve get        [--data DIR] [--config FILE] ACCOUNT NAME
       buzon sieve put        [--data DIR] [--config FILE] ACCOUNT NAME < script
       buzon sieve activate   [--data DIR] [--config FILE] ACCOUNT NAME
       buzon sieve deactivate [--data DIR] [--config FILE] ACCOUNT
       buzon sieve del        [--data DIR] [--config FILE] ACCOUNT NAME
       buzon sieve rename     [--data DIR] [--config FILE] ACCOUNT NAME NEWNAME
       buzon sieve check      [--data DIR] [--config FILE] [ACCOUNT [NAME]] < script

An account keeps Sieve scripts (RFC 5228) by name; the one active script
runs at delivery (LMTP, SMTP, deliver, fetch) and keeps, files, flags or
discards each message. put and check compile the script first and refuse
one with errors, printing the line; put replaces a script of that name
(an active one stays active). check with no ACCOUNT checks standard
input; with an ACCOUNT its active script, or the script NAME. vacation
(out-of-office replies) and redirect are allowed where the configuration
can send (submission.relay set, sieve.vacation and sieve.redirect on);
reject and notify are refused. sieve.max_scripts and sieve.max_script_size
apply as they do over ManageSieve. Give the same --data or --config as the
server; it sees the change at once.`, stderr)
	var cf commonFlags
	cf.register(fs)
	sub, pos, err := parseSubcommand(fs, args, map[string][2]int{ // fewest and most arguments
		"list": {1, 1}, "get": {2, 2}, "put": {2, 2}, "activate": {2, 2}, "deactivate": {1, 1},
		"del": {2, 2}, "rename": {3, 3}, "check": {0, 2},
	})
	if err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	opts := sieveOptions(cfg)
	if sub == "check" && len(pos) == 0 {
		return checkScript(stdin, stdout, "standard input", opts)
	}
	st, err := openStore(cfg, newLogger(cfg.Log, stderr), useExisting)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := context.Background()
	acct, err := st.LookupAccount(ctx, store.CanonicalAccountName(pos[0]))
	if err != nil {
		return err
	}
	sess, err := st.Open(ctx, acct.ID)
	if err != nil {
		return err
	}
	defer sess.Close()
	c := &sieveCmd{ctx: ctx, sess: sess, account: acct.Name, limits: cfg.Sieve, opts: opts, stdout: stdout}

	switch sub {
	case "list":
		return c.list()
	case "get":
		sc, err := c.script(pos[1])
		if err != nil {
			return err
		}
		_, err = stdout.Write(sc.Content)
		return err
	case "put":
		return c.put(pos[1], stdin)
	case "activate":
		return c.activate(pos[1])
	case "deactivate":
		if err := sess.ActivateSieveScript(ctx, ""); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s has no active script: its mail goes to INBOX\n", acct.Name)
	case "del":
		err := sess.DeleteSieveScript(ctx, pos[1])
		switch {
		case errors.Is(err, store.ErrSieveScriptActive):
			return fmt.Errorf("%q is %s's active script; deactivate it first (buzon sieve deactivate %s) or activate another", pos[1], acct.Name, acct.Name)
		case errors.Is(err, store.ErrNoSieveScript):
			return c.noScript(pos[1])
		case err != nil:
			return err
		}
		fmt.Fprintf(stdout, "deleted script %q of %s\n", pos[1], acct.Name)
	case "rename":
		err := sess.RenameSieveScript(ctx, pos[1], pos[2])
		switch {
		case errors.Is(err, store.ErrNoSieveScript):
			return c.noScript(pos[1])
		case errors.Is(err, store.ErrSieveScriptExists):
			return fmt.Errorf("%s already has a script %q", acct.Name, pos[2])
		case err != nil:
			return err
		}
		fmt.Fprintf(stdout, "renamed script %q of %s to %q\n", pos[1], acct.Name, pos[2])
	case "check":
		var sc store.SieveScript
		if len(pos) == 2 {
			sc, err = c.script(pos[1])
		} else if sc, err = sess.ActiveSieveScript(ctx); errors.Is(err, store.ErrNoSieveScript) {
			return fmt.Errorf("%s has no active script", acct.Name)
		}
		if err != nil {
			return err
		}
		if _, err := sieve.CompileWith(sc.Content, opts); err != nil {
			return fmt.Errorf("script %q of %s: %w", sc.Name, acct.Name, err)
		}
		fmt.Fprintf(stdout, "script %q of %s is valid\n", sc.Name, acct.Name)
	}
	return nil
}

// sieveCmd is one run of `buzon sieve` on an account.
type sieveCmd struct {
	ctx     context.Context
	sess    store.Session
	account string
	limits  config.Sieve
	opts    sieve.Options // what delivery lets scripts do
	stdout  io.Writer
}

func (c *sieveCmd) noScript(name string) error {
	return fmt.Errorf("%s has no script %q (buzon sieve list %s)", c.account, name, c.account)
}

// script reads a script, saying which are there when it is not.
func (c *sieveCmd) script(name string) (store.SieveScript, error) {
	sc, err := c.sess.SieveScript(c.ctx, name)
	if errors.Is(err, store.ErrNoSieveScript) {
		return sc, c.noScript(name)
	}
	return sc, err
}

func (c *sieveCmd) list() error {
	scripts, err := c.sess.SieveScripts(c.ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSIZE\tACTIVE\tMODIFIED")
	for _, sc := range scripts {
		active := ""
		if sc.Active {
			active = "yes"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", sc.Name, sc.Size, active, sc.Modified.Local().Format(time.DateTime))
	}
	return tw.Flush()
}

// put compiles the script on standard input and stores it, within the
// limits ManageSieve keeps (RFC 5804 2.6).
func (c *sieveCmd) put(name string, stdin io.Reader) error {
	if err := store.ValidSieveScriptName(name); err != nil {
		return err
	}
	src, err := io.ReadAll(io.LimitReader(stdin, c.limits.MaxScriptSize+1))
	if err != nil {
		return fmt.Errorf("read the script: %w", err)
	}
	if int64(len(src)) > c.limits.MaxScriptSize {
		return fmt.Errorf("the script is larger than sieve.max_script_size, %d bytes", c.limits.MaxScriptSize)
	}
	if _, err := sieve.CompileWith(src, c.opts); err != nil {
		return fmt.Errorf("script %q not stored: %w", name, err)
	}
	// Only what is said below depends on this; the store counts the
	// scripts against the limit in the write itself.
	old, err := c.sess.SieveScripts(c.ctx)
	if err != nil {
		return err
	}
	replaced, active := false, false
	for _, sc := range old {
		if sc.Name == name {
			replaced, active = true, sc.Active
		}
	}
	err = c.sess.PutSieveScript(c.ctx, name, src, c.limits.MaxScripts)
	if errors.Is(err, store.ErrLimit) {
		return fmt.Errorf("%s has %d scripts, sieve.max_scripts; delete one first", c.account, c.limits.MaxScripts)
	}
	if err != nil {
		return err
	}
	switch {
	case active:
		fmt.Fprintf(c.stdout, "replaced script %q of %s, which is active: delivery runs it from now on\n", name, c.account)
	case replaced:
		fmt.Fprintf(c.stdout, "replaced script %q of %s (not active)\n", name, c.account)
	default:
		fmt.Fprintf(c.stdout, "stored script %q of %s; to run it at delivery: buzon sieve activate %s %s\n", name, c.account, c.account, shellWord(name))
	}
	return nil
}

// activate makes a script the active one, once it is sure to compile:
// a script stored by another version of buzon, or copied in, may not.
func (c *sieveCmd) activate(name string) error {
	sc, err := c.script(name)
	if err != nil {
		return err
	}
	if _, err := sieve.CompileWith(sc.Content, c.opts); err != nil {
		return fmt.Errorf("script %q not activated: %w", name, err)
	}
	if err := c.sess.ActivateSieveScript(c.ctx, name); errors.Is(err, store.ErrNoSieveScript) {
		return c.noScript(name) // deleted meanwhile
	} else if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "script %q of %s is active: delivery runs it from now on\n", name, c.account)
	return nil
}

// checkScript compiles a script from r and says whether it is valid.
func checkScript(r io.Reader, stdout io.Writer, what string, opts sieve.Options) error {
	src, err := io.ReadAll(io.LimitReader(r, sieve.MaxScriptSize+1))
	if err != nil {
		return fmt.Errorf("read the script: %w", err)
	}
	if _, err := sieve.CompileWith(src, opts); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	fmt.Fprintf(stdout, "%s: valid\n", what)
	return nil
}

// shellWord quotes s for a shell when it needs it.
func shellWord(s string) string {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == '@' || r == '+') {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}

// sieveOptions is what the configuration lets scripts do: vacation and
// redirect where mail can be sent (a relay, and sieve.vacation and
// sieve.redirect on). ManageSieve, delivery and this command all take it
// from here, so that a script one of them takes the others run.
func sieveOptions(cfg config.Config) sieve.Options {
	relay := cfg.Submission.Relay != ""
	return sieve.Options{Relay: relay, Vacation: relay && cfg.Sieve.Vacation, Redirect: relay && cfg.Sieve.Redirect}
}

// vacationDeliverer gives a Deliverer what it needs to send the replies
// of Sieve vacation and forward the messages of redirect, when the
// configuration allows them: a Sender through submission.relay and the
// settings of [sieve]. Without, the Deliverer refuses those scripts as
// ManageSieve does.
func vacationDeliverer(d *delivery.Deliverer, cfg config.Config) error {
	opts := sieveOptions(cfg)
	if !opts.Vacation && !opts.Redirect {
		return nil
	}
	rc, err := relayConfig(cfg)
	if err != nil {
		return err
	}
	d.Sender = relaySender{rc}
	d.Vacation = delivery.VacationConfig{Off: !opts.Vacation,
		MinPeriod: cfg.Sieve.VacationMinPeriod.D(), DefaultPeriod: cfg.Sieve.VacationDefaultPeriod.D(),
		MaxPeriod: cfg.Sieve.VacationMaxPeriod.D(), Timeout: cfg.Sieve.VacationTimeout.D(),
	}
	d.Redirect = delivery.RedirectConfig{Off: !opts.Redirect,
		EnvelopeFrom: cfg.Sieve.RedirectEnvelopeFrom, Timeout: cfg.Sieve.RedirectTimeout.D(),
		DuplicatePeriod: cfg.Sieve.RedirectDuplicatePeriod.D()}
	return nil
}

// relaySender sends mail on through the relay MTA, one connection each:
// vacation replies and redirects are few, and a connection held open
// between them would only time out at the relay.
type relaySender struct{ cfg smtpclient.Config }

// Send implements delivery.Sender, within ctx's deadline.
func (s relaySender) Send(ctx context.Context, from, to string, msg io.Reader) error {
	// RFC 6531 3.4: a non-ASCII sender, recipient or header (a UTF-8
	// account's own address, an RFC 6532 message forwarded) needs
	// SMTPUTF8 declared at MAIL, so the header is read first.
	header, msg, err := readHeader(msg)
	if err != nil {
		return fmt.Errorf("read the message: %w", err)
	}
	utf8 := !isASCII(from) || !isASCII(to) || !isASCII(string(header))
	c, err := smtpclient.Dial(ctx, s.cfg)
	if err != nil {
		return fmt.Errorf("relay %s: %w", s.cfg.Addr, err)
	}
	var params []string
	if utf8 {
		if _, ok := c.Extension("SMTPUTF8"); !ok {
			c.Abort()
			return fmt.Errorf("relay %s: the address or header is not ASCII, and the relay does not offer SMTPUTF8 (RFC 6531)", s.cfg.Addr)
		}
		params = append(params, "SMTPUTF8")
	}
	if _, ok := c.Extension("8BITMIME"); ok {
		params = append(params, "BODY=8BITMIME")
	} else {
		// RFC 6152 3: no 8-bit data to a relay that has not said it
		// takes it. A forwarded message that holds some fails (and is
		// kept); smtpclient then leaves the data unended, so the relay
		// drops what it got.
		msg = sevenBit{msg}
	}
	err = c.Mail(from, params...)
	if err == nil {
		err = c.Rcpt(to)
	}
	if err == nil {
		_, err = c.Data(msg)
	}
	if err != nil {
		c.Abort()
		return fmt.Errorf("relay %s: %w", s.cfg.Addr, err)
	}
	c.Close()
	return nil
}

// readHeader reads a message's header, up to and with the empty line
// that ends it (or the whole message when it has none), and returns it
// with a reader of the whole message.
func readHeader(r io.Reader) ([]byte, io.Reader, error) {
	br := bufio.NewReader(r)
	var header []byte
	for {
		line, err := br.ReadBytes('\n')
		header = append(header, line...)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		if string(line) == "\r\n" || string(line) == "\n" {
			break
		}
	}
	return header, io.MultiReader(bytes.NewReader(header), br), nil
}

// sevenBit reads a message that must be 7-bit, failing at the first
// octet that is not.
type sevenBit struct{ r io.Reader }

func (s sevenBit) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	for _, b := range p[:n] {
		if b >= 0x80 {
			return 0, errors.New("the message holds 8-bit data, and the relay does not offer 8BITMIME")
		}
	}
	return n, err
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
