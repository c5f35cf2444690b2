package sieve

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/buzon-mail/buzon/internal/message"
)

// Run limits: Sieve has no loops, so a run's work is bounded by the
// script's size times the message's; these bound it further, so that
// neither a hostile script nor a hostile message makes a run long or
// large.
const (
	// MaxActions is the most actions a run may take (fileinto and keep,
	// duplicates included); a run past it fails and the message is kept.
	MaxActions = 64
	// maxVariableSize bounds one variable's value (RFC 5229 3 lets an
	// implementation truncate; Pigeonhole's default is 4 KiB too).
	maxVariableSize = 4096
	// maxVariables bounds the number of variables a run sets.
	maxVariables = 256
	// maxMatchVars is how many match variables are kept: ${0} to ${9}.
	maxMatchVars = 10
	// maxBodyBytes bounds what the body test reads of a message.
	maxBodyBytes = 1 << 20
	// maxWork bounds the bytes a run may compare, summed over every
	// comparison of a value with a key.
	maxWork = 128 << 20
)

// errStop ends a run at stop (RFC 5228 3.3).
var errStop = errors.New("stop")

// run is one execution of a script against a message.
type run struct {
	ctx context.Context
	s   *Script
	msg Message
	env Envelope
	e   Environment

	fields    map[string][]string          // the header's field values by lower-cased name, read on first use
	texts     map[string]string            // header values decoded, by value
	addrs     map[string][]message.Address // address fields parsed, by value
	body      *bodyCache
	vars      map[string]string
	matchVars []string
	flags     string              // the internal variable of imap4flags (RFC 5232 3)
	res       map[regexKey]*regex // :regex keys with variables, compiled
	work      int64

	actions      []Action
	implicitKeep bool // RFC 5228 2.10.2
}

// spend counts work and fails the run past maxWork.
func (r *run) spend(n int64) error {
	r.work += n
	if r.work > maxWork {
		return errTooMuchWork
	}
	return r.ctx.Err()
}

// Execute runs the script against a message and returns what to do with
// it: never an empty list (the implicit keep is a Keep). On an error the
// caller must keep the message in INBOX, as RFC 5228 2.10.6 asks.
//
// The actions come in the order the script took them, the implicit keep
// last, duplicates included (at most MaxActions of them, and the implicit
// keep): a fileinto "INBOX" or a second fileinto into one mailbox is the
// caller's to store once (RFC 5228 2.10.3), since only the caller knows
// which names are one mailbox, and where a fileinto into a mailbox that
// does not exist goes instead. Discard is returned when nothing is to be
// stored: alone, or after a Vacation.
func (s *Script) Execute(ctx context.Context, msg Message, env Envelope, e Environment) ([]Action, error) {
	r := &run{ctx: ctx, s: s, msg: msg, env: env, e: e, implicitKeep: true}
	if err := r.commands(s.cmds); err != nil && err != errStop {
		return nil, err
	}
	if r.implicitKeep {
		r.actions = append(r.actions, Action{Kind: Keep, Flags: strings.Fields(r.flags)})
	}
	for _, a := range r.actions {
		if a.Kind == Keep || a.Kind == FileInto {
			return r.actions, nil
		}
	}
	// Nothing stored: a Discard, after the replies and redirects.
	return append(r.actions, Action{Kind: Discard}), nil
}

func (r *run) commands(cmds []*command) error {
	for _, c := range cmds {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		if err := r.command(c); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) command(c *command) error {
	switch c.kind {
	case cmdIf:
		for _, b := range c.branches {
			ok := true
			if b.cond != nil {
				var err error
				if ok, err = r.test(b.cond); err != nil {
					return err
				}
			}
			if ok {
				return r.commands(b.block)
			}
		}
		return nil
	case cmdStop:
		return errStop
	case cmdDiscard:
		// RFC 5228 4.4: cancels the implicit keep, nothing else.
		r.implicitKeep = false
		return nil
	case cmdKeep, cmdFileInto:
		if len(r.actions) >= MaxActions {
			return fmt.Errorf("sieve: line %d: more than %d actions", c.line, MaxActions)
		}
		flags := r.flags
		if c.hasFlags {
			fs, err := r.expandAll(c.flags)
			if err != nil {
				return err
			}
			if flags, err = r.addFlags("", fs); err != nil {
				return err
			}
		}
		a := Action{Kind: Keep, Flags: strings.Fields(flags)}
		if c.kind == cmdFileInto {
			mb, err := r.expand(c.mailbox)
			if err != nil {
				return err
			}
			if !validMailbox(mb) {
				return fmt.Errorf("sieve: line %d: fileinto: invalid mailbox name %q", c.line, mb)
			}
			a = Action{Kind: FileInto, Mailbox: mb, Create: c.create, Flags: a.Flags}
		}
		r.actions = append(r.actions, a)
		// RFC 3894 3: :copy leaves the implicit keep as it was.
		if !c.copy {
			r.implicitKeep = false
		}
		return nil
	case cmdSetFlag, cmdAddFlag, cmdRemoveFlag:
		fs, err := r.expandAll(c.flags)
		if err != nil {
			return err
		}
		cur := r.flags
		if c.varName != "" {
			cur = r.vars[c.varName]
		}
		switch c.kind {
		case cmdSetFlag:
			cur, err = r.addFlags("", fs)
		case cmdAddFlag:
			cur, err = r.addFlags(cur, fs)
		case cmdRemoveFlag:
			cur, err = r.removeFlags(cur, fs)
		}
		if err != nil {
			return err
		}
		if c.varName == "" {
			r.flags = cur
			return nil
		}
		return r.setVar(c.varName, cur)
	case cmdSet:
		v, err := r.expand(c.value)
		if err != nil {
			return err
		}
		for _, m := range c.modifiers {
			v = modify(m, v)
		}
		return r.setVar(c.varName, v)
	case cmdVacation:
		return r.vacation(c)
	case cmdRedirect:
		return r.redirect(c)
	}
	return fmt.Errorf("sieve: line %d: unknown command", c.line)
}

// vacation adds the reply a vacation command asks for (RFC 5230 4). It
// leaves the implicit keep as it is; a second vacation in one run is an
// error, as Pigeonhole has it (RFC 5230 4.7 allows one reply per
// message), so the message is kept and no reply goes.
func (r *run) vacation(c *command) error {
	for _, a := range r.actions {
		if a.Kind == Vacation {
			return fmt.Errorf("sieve: line %d: a second vacation", c.line)
		}
	}
	if len(r.actions) >= MaxActions {
		return fmt.Errorf("sieve: line %d: more than %d actions", c.line, MaxActions)
	}
	v := c.vac
	out := &VacationReply{Period: -1, MIME: v.mime}
	if v.period >= 0 {
		out.Period = time.Duration(min(v.period, int64(math.MaxInt64/time.Second))) * time.Second
	}
	var err error
	if out.Subject, err = r.expand(v.subject); err != nil {
		return err
	}
	if out.From, err = r.expand(v.from); err != nil {
		return err
	}
	if out.Addresses, err = r.expandAll(v.addresses); err != nil {
		return err
	}
	if out.Reason, err = r.expand(v.reason); err != nil {
		return err
	}
	if out.Handle, err = r.expand(v.handle); err != nil {
		return err
	}
	if !v.hasHandle {
		out.Handle = v.defaultHandle
	}
	r.actions = append(r.actions, Action{Kind: Vacation, Vacation: out})
	return nil
}

// redirect adds a Redirect (RFC 5228 4.2); without :copy it cancels the
// implicit keep (RFC 3894 3).
func (r *run) redirect(c *command) error {
	n := 0
	for _, a := range r.actions {
		if a.Kind == Redirect {
			n++
		}
	}
	if n >= MaxRedirects {
		return fmt.Errorf("sieve: line %d: more than %d redirects", c.line, MaxRedirects)
	}
	if len(r.actions) >= MaxActions {
		return fmt.Errorf("sieve: line %d: more than %d actions", c.line, MaxActions)
	}
	v, err := r.expand(c.mailbox)
	if err != nil {
		return err
	}
	addr, ok := redirectAddress(v)
	if !ok {
		return fmt.Errorf("sieve: line %d: redirect: %q is not an address", c.line, v)
	}
	r.actions = append(r.actions, Action{Kind: Redirect, Address: addr, Copy: c.copy})
	if !c.copy {
		r.implicitKeep = false
	}
	return nil
}

// redirectAddress reads redirect's argument: one address (RFC 5322
// mailbox, a display name allowed), returned as local@domain, the domain
// in lower case.
func redirectAddress(s string) (string, bool) {
	if strings.ContainsAny(s, "\x00\r\n") {
		return "", false
	}
	as := message.ParseAddressList(s)
	if len(as) != 1 || as[0].GroupStart || as[0].GroupEnd || as[0].Mailbox == "" || as[0].Host == "" ||
		as[0].Mailbox == message.MissingMailbox || as[0].Host == message.MissingDomain {
		return "", false
	}
	// Domains are case-insensitive (RFC 5321 2.4); the local part is
	// the receiving server's to read.
	return as[0].Mailbox + "@" + strings.ToLower(as[0].Host), true
}

// validMailbox refuses mailbox names no store could take.
func validMailbox(name string) bool {
	return name != "" && !strings.ContainsAny(name, "\x00\r\n") && len(name) <= 1024
}

func (r *run) test(t *test) (bool, error) {
	if err := r.spend(1); err != nil {
		return false, err
	}
	switch t.kind {
	case testTrue:
		return true, nil
	case testFalse:
		return false, nil
	case testNot:
		ok, err := r.test(t.tests[0])
		return !ok, err
	case testAllOf, testAnyOf:
		// RFC 5228 5.2, 5.3: evaluated left to right, short-circuit.
		for _, sub := range t.tests {
			ok, err := r.test(sub)
			if err != nil {
				return false, err
			}
			if ok != (t.kind == testAllOf) {
				return ok, nil
			}
		}
		return t.kind == testAllOf, nil
	case testSize:
		// RFC 5228 5.9: strictly over or under.
		if t.over {
			return r.msg.Size > t.size, nil
		}
		return r.msg.Size < t.size, nil
	case testExists:
		names, err := r.expandAll(t.names)
		if err != nil {
			return false, err
		}
		for _, n := range names {
			values, err := r.header(n, 0, false)
			if err != nil || len(values) == 0 {
				return false, err
			}
		}
		return true, nil
	case testHeader:
		values, err := r.fieldValues(t.names, t.index, t.last, func(values []string, raw string) []string {
			return append(values, r.headerText(raw))
		})
		if err != nil {
			return false, err
		}
		return r.match(&t.m, values)
	case testAddress:
		values, err := r.fieldValues(t.names, t.index, t.last, func(values []string, raw string) []string {
			return appendAddressParts(values, r.addresses(raw), t.part)
		})
		if err != nil {
			return false, err
		}
		return r.match(&t.m, values)
	case testEnvelope:
		names, err := r.expandAll(t.names)
		if err != nil {
			return false, err
		}
		var values []string
		for _, n := range names {
			switch strings.ToLower(n) {
			case "from":
				values = appendEnvelopeParts(values, r.env.From, t.part)
			case "to":
				values = appendEnvelopeParts(values, r.env.To, t.part)
			}
		}
		return r.match(&t.m, values)
	case testBody:
		values, err := r.bodyValues(t)
		if err != nil {
			return false, err
		}
		return r.match(&t.m, values)
	case testHasFlag:
		// RFC 5232 4: the flags as the variables hold them, whether
		// IMAP can store them or not, the same for the internal variable
		// and named ones.
		var values []string
		if len(t.names) == 0 {
			values = strings.Fields(r.flags)
		} else {
			for _, n := range t.names {
				values = append(values, strings.Fields(r.vars[n.s])...)
			}
		}
		return r.match(&t.m, values)
	case testMailboxExists:
		names, err := r.expandAll(t.names)
		if err != nil {
			return false, err
		}
		for _, n := range names {
			if r.e == nil {
				return false, nil
			}
			ok, err := r.e.MailboxExists(r.ctx, n)
			if err != nil {
				return false, fmt.Errorf("sieve: mailboxexists %q: %w", n, err)
			}
			if !ok {
				return false, nil
			}
		}
		return true, nil
	case testString:
		values, err := r.expandAll(t.names)
		if err != nil {
			return false, err
		}
		// RFC 5229 5: for :count, empty strings are not counted.
		if t.m.kind == matchCount {
			kept := values[:0]
			for _, v := range values {
				if v != "" {
					kept = append(kept, v)
				}
			}
			values = kept
		}
		return r.match(&t.m, values)
	case testDate, testCurrentDate:
		values, err := r.dateValues(t)
		if err != nil {
			return false, err
		}
		return r.match(&t.m, values)
	}
	return false, fmt.Errorf("sieve: line %d: unknown test", t.line)
}

// fieldValues gathers what the header and address tests compare: for
// each field the names expand to, in order, each of its values (after
// :index and :last) as add makes them.
func (r *run) fieldValues(names []str, index int, last bool, add func(values []string, raw string) []string) ([]string, error) {
	expanded, err := r.expandAll(names)
	if err != nil {
		return nil, err
	}
	var values []string
	for _, n := range expanded {
		raws, err := r.header(n, index, last)
		if err != nil {
			return nil, err
		}
		for _, raw := range raws {
			values = add(values, raw)
		}
	}
	return values, nil
}

// header returns the values of the fields named, unfolded, in order;
// with an index (RFC 5260 6) only the index-th of them, counted from the
// end with last. Field names compare ASCII case-insensitively (RFC 5322
// 1.2.2).
func (r *run) header(name string, index int, last bool) ([]string, error) {
	if r.fields == nil {
		if err := r.readHeader(); err != nil {
			return nil, err
		}
	}
	values := r.fields[message.ASCIILower(name)]
	if err := r.spend(int64(len(values))); err != nil {
		return nil, err
	}
	if index > 0 {
		if index > len(values) {
			return nil, nil
		}
		if last {
			return values[len(values)-index : len(values)-index+1], nil
		}
		return values[index-1 : index], nil
	}
	return values, nil
}

// readHeader indexes the message's header fields by name, once per run,
// in one pass over the header (internal/message's, linear however the
// fields are folded), heeding the run's context on long headers.
func (r *run) readHeader() error {
	r.fields = map[string][]string{}
	n := 0
	for f := range message.Fields(r.msg.Header) {
		if n++; n%1024 == 0 {
			if err := r.ctx.Err(); err != nil {
				return err
			}
		}
		name := message.ASCIILower(string(f.Name))
		r.fields[name] = append(r.fields[name], f.SpacedValue())
	}
	return r.spend(int64(len(r.msg.Header)))
}

// headerText is a header value as the header and date tests compare it:
// RFC 2047 encoded words decoded (RFC 5228 5.7), white space around it
// removed. Each value is decoded once per run, however many tests read it.
func (r *run) headerText(raw string) string {
	if t, ok := r.texts[raw]; ok {
		return t
	}
	t := strings.TrimSpace(message.DecodeHeaderValue(raw))
	if r.texts == nil {
		r.texts = map[string]string{}
	}
	r.texts[raw] = t
	return t
}

// addresses parses an address field's value with internal/message's
// parser, once per run for each value.
func (r *run) addresses(raw string) []message.Address {
	if as, ok := r.addrs[raw]; ok {
		return as
	}
	as := message.ParseAddressList(raw)
	if r.addrs == nil {
		r.addrs = map[string][]message.Address{}
	}
	r.addrs[raw] = as
	return as
}

// appendAddressParts appends the part asked for of each address
// (RFC 5228 5.1, RFC 5233). Group names are not addresses; an address
// without a domain has an empty one.
func appendAddressParts(values []string, addrs []message.Address, part addrPart) []string {
	for _, a := range addrs {
		if a.GroupStart || a.GroupEnd {
			continue
		}
		local, domain := a.Mailbox, a.Host
		if local == message.MissingMailbox {
			local = ""
		}
		if domain == message.MissingDomain {
			domain = ""
		}
		if v, ok := addressPart(local, domain, part); ok {
			values = append(values, v)
		}
	}
	return values
}

// appendEnvelopeParts appends the part asked for of an envelope address.
// The null reverse path <> is the empty string, whatever the part
// (RFC 5228 5.4).
func appendEnvelopeParts(values []string, addr string, part addrPart) []string {
	addr = strings.TrimSuffix(strings.TrimPrefix(addr, "<"), ">")
	if addr == "" {
		return append(values, "")
	}
	local, domain := addr, ""
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		local, domain = addr[:i], addr[i+1:]
	}
	if v, ok := addressPart(local, domain, part); ok {
		values = append(values, v)
	}
	return values
}

// addressPart returns one part of an address; :detail of an address
// without a separator is no value at all (RFC 5233 4).
func addressPart(local, domain string, part addrPart) (string, bool) {
	switch part {
	case partLocal:
		return local, true
	case partDomain:
		return domain, true
	case partUser, partDetail:
		// RFC 5233 4: the separator is "+", the first one counts.
		user, detail, found := strings.Cut(local, "+")
		if part == partUser {
			return user, true
		}
		return detail, found
	}
	if domain == "" {
		return local, true
	}
	return local + "@" + domain, true
}
