package sieve

import (
	"cmp"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// The checker turns the parse tree into the commands and tests Execute
// runs, with every argument checked and every tag resolved, so that
// nothing is left to be found wrong at delivery.

// compileError is raised (panicked) inside the parser and checker and
// turned into an error by recoverCompile; nothing escapes the package.
type compileError struct{ err *CompileError }

func compileErrorf(line int, format string, args ...any) compileError {
	return compileError{&CompileError{Line: line, Msg: fmt.Sprintf(format, args...)}}
}

func recoverCompile(err *error) {
	if r := recover(); r != nil {
		ce, ok := r.(compileError)
		if !ok {
			panic(r)
		}
		*err = ce.err
	}
}

// str is a string argument. When the script requires "variables" and the
// string names one, it is expanded at each run (RFC 5229 3).
type str struct {
	s    string
	vars bool
}

type cmdKind int

const (
	cmdIf cmdKind = iota
	cmdStop
	cmdKeep
	cmdFileInto
	cmdDiscard
	cmdSetFlag
	cmdAddFlag
	cmdRemoveFlag
	cmdSet
	cmdVacation
	cmdRedirect
)

// command is a checked command.
type command struct {
	line int
	kind cmdKind

	// if/elsif/else: the branches in order; the else branch has no test.
	branches []branch

	// keep and fileinto; redirect's address is mailbox
	mailbox  str
	copy     bool // RFC 3894
	create   bool // RFC 5490 3.2
	hasFlags bool // :flags given (RFC 5232 5)
	flags    []str

	// setflag, addflag, removeflag: varName is "" for the internal
	// variable. set: varName and value.
	varName   string
	value     str
	modifiers []string // set's modifiers, in the order they apply

	// vacation (RFC 5230)
	vac *vacationCmd
}

// vacationCmd is a checked vacation command (RFC 5230 4, RFC 6131).
type vacationCmd struct {
	period    int64 // seconds; -1 when neither :days nor :seconds is given
	subject   str
	hasSubj   bool
	from      str
	addresses []str
	mime      bool
	handle    str
	hasHandle bool
	reason    str
	// defaultHandle is the handle without :handle (see vacationHandle).
	defaultHandle string
}

type branch struct {
	cond  *test // nil for else
	block []*command
}

type testKind int

const (
	testAddress testKind = iota
	testAllOf
	testAnyOf
	testEnvelope
	testExists
	testFalse
	testTrue
	testHeader
	testNot
	testSize
	testBody
	testHasFlag
	testMailboxExists
	testString
	testDate
	testCurrentDate
)

type addrPart int

const (
	partAll addrPart = iota
	partLocal
	partDomain
	partUser   // RFC 5233
	partDetail // RFC 5233
)

type bodyTransform int

const (
	bodyText bodyTransform = iota
	bodyRaw
	bodyContent
)

// test is a checked test.
type test struct {
	line  int
	kind  testKind
	m     matcher
	part  addrPart
	names []str // header names, envelope parts, mailboxes, variables, sources
	tests []*test

	over bool // size
	size int64

	transform    bodyTransform
	contentTypes []str

	index int  // RFC 5260 6: 1-based, 0 for none
	last  bool // RFC 5260 6 :last

	zone         str  // RFC 5260 4.1 :zone
	hasZone      bool // :zone given
	originalZone bool
	datePart     str
}

// Compile limits. A script larger or deeper than these is refused, and
// Execute stops a run that would go past the run limits.
const (
	// MaxScriptSize is the largest script Compile accepts.
	MaxScriptSize = 1 << 20
	maxNesting    = 32
	maxNumber     = 1<<53 - 1
)

// extension names as require names them, and whether buzon does them.
var supported = map[string]bool{
	"fileinto":                   true,
	"envelope":                   true,
	"imap4flags":                 true,
	"mailbox":                    true,
	"copy":                       true,
	"subaddress":                 true,
	"body":                       true,
	"variables":                  true,
	"relational":                 true,
	"comparator-i;ascii-numeric": true,
	"comparator-i;octet":         true,
	"comparator-i;ascii-casemap": true,
	"encoded-character":          true,
	"regex":                      true,
	"date":                       true,
	"index":                      true,
}

// sendsMail are the extensions and commands that would need to send mail.
// vacation and vacation-seconds are supported where Options.Vacation says
// the server can send (a relay is configured), redirect where
// Options.Redirect does; the others never are: reject and ereject would
// answer the sender with a refusal buzon cannot give after the message
// was taken (a bounce of its own, which buzon never sends), and notify
// needs methods (mailto, xmpp) buzon has none of.
var sendsMail = map[string]bool{
	"redirect": true, "vacation": true, "vacation-seconds": true, "reject": true,
	"ereject": true, "notify": true, "enotify": true,
}

// vacationExtensions are the extensions Options.Vacation turns on.
var vacationExtensions = map[string]bool{"vacation": true, "vacation-seconds": true}

// refusedSending says why a command or extension that sends mail is
// refused: for vacation, what the server needs to do it.
func (c *checker) refusedSending(name string) string {
	switch strings.ToLower(name) {
	case "vacation", "vacation-seconds":
		if c.opts.Relay {
			return "out-of-office replies are turned off on this server (sieve.vacation)"
		}
		return "this server has no relay to send replies through (submission.relay)"
	case "redirect":
		if c.opts.Relay {
			return "forwarding is turned off on this server (sieve.redirect)"
		}
		return "this server has no relay to forward mail through (submission.relay)"
	case "reject", "ereject":
		return "buzon does not refuse mail after taking it"
	}
	return "buzon sends no notifications"
}

// notAddressFields are well-known fields that hold no addresses, which
// RFC 5228 5.1 has the address test refuse. Fields not known either way
// (X-Original-To, X-Envelope-From, ...) are allowed: many hold addresses.
var notAddressFields = map[string]bool{
	"subject": true, "comments": true, "keywords": true, "date": true, "resent-date": true,
	"received": true, "message-id": true, "resent-message-id": true, "in-reply-to": true,
	"references": true, "mime-version": true, "content-type": true,
	"content-transfer-encoding": true, "content-disposition": true, "content-id": true,
	"content-description": true, "list-id": true,
}

// checker checks the parse tree against what the script requires.
type checker struct {
	opts       Options
	req        map[string]bool
	regexInsts int64 // the size of the :regex programs compiled so far
}

func (c *checker) need(line int, ext, what string) {
	if !c.req[ext] {
		panic(compileErrorf(line, "%s needs require %q", what, ext))
	}
}

// check checks the whole script.
func check(nodes []*node, opts Options) (cmds []*command, req map[string]bool, err error) {
	defer recoverCompile(&err)
	c := &checker{opts: opts, req: map[string]bool{}}
	// RFC 5228 3.2: require comes before any other command.
	for len(nodes) > 0 && nodes[0].name == "require" {
		c.require(nodes[0])
		nodes = nodes[1:]
	}
	return c.commands(nodes), c.req, nil
}

func (c *checker) require(n *node) {
	if len(n.args) != 1 || n.args[0].kind != argStrings || len(n.tests) > 0 || n.hasBlock {
		panic(compileErrorf(n.line, "require takes one string list of extensions"))
	}
	for _, ext := range n.args[0].strs {
		name := strings.ToLower(ext)
		switch {
		case vacationExtensions[name] && c.opts.Vacation:
		case sendsMail[name]:
			panic(compileErrorf(n.line, "extension %q is not supported: %s", ext, c.refusedSending(name)))
		case !supported[name]:
			panic(compileErrorf(n.line, "extension %q is not supported", ext))
		}
		c.req[name] = true
		if name == "vacation-seconds" {
			c.req["vacation"] = true // RFC 6131 2 extends vacation
		}
	}
}

// commands checks a list of commands, joining if/elsif/else.
func (c *checker) commands(nodes []*node) []*command {
	var cmds []*command
	for _, n := range nodes {
		switch n.name {
		case "elsif", "else":
			var prev *command
			if len(cmds) > 0 {
				prev = cmds[len(cmds)-1]
			}
			if prev == nil || prev.kind != cmdIf || prev.branches[len(prev.branches)-1].cond == nil {
				panic(compileErrorf(n.line, "%s without an if before it", n.name))
			}
			prev.branches = append(prev.branches, c.branch(n))
			continue
		}
		cmds = append(cmds, c.command(n))
	}
	return cmds
}

// branch checks if, elsif and else: a test (none for else) and a block.
func (c *checker) branch(n *node) branch {
	if !n.hasBlock {
		panic(compileErrorf(n.line, "%s needs a block", n.name))
	}
	var b branch
	if n.name == "else" {
		if len(n.args) > 0 || len(n.tests) > 0 {
			panic(compileErrorf(n.line, "else takes no arguments"))
		}
	} else {
		if len(n.args) > 0 || len(n.tests) != 1 || n.testList {
			panic(compileErrorf(n.line, "%s takes exactly one test", n.name))
		}
		b.cond = c.test(n.tests[0])
	}
	b.block = c.commands(n.block)
	return b
}

// args walks a command's or test's arguments: tagged ones, each with
// the value it may take, come first in any order (RFC 5228 2.6.2), then
// the positional ones.
type args struct {
	n    *node
	rest []argument // what eachTag has not taken yet
	pos  []argument // the positional arguments, once eachTag has run
}

func (c *checker) args(n *node) *args {
	return &args{n: n, rest: n.args}
}

func kindName(k argKind) string {
	switch k {
	case argNumber:
		return "number"
	case argTag:
		return "tag"
	}
	return "string"
}

// eachTag calls f on each tag in order; f returns whether it took the
// tag, and a tag that takes a value calls value() to take it. What
// follows the tags is positional, where no tag may appear.
func (a *args) eachTag(f func(tag string, line int, value func(argKind) argument) bool) {
	for len(a.rest) > 0 && a.rest[0].kind == argTag {
		t := a.rest[0]
		a.rest = a.rest[1:]
		value := func(kind argKind) argument {
			if len(a.rest) == 0 || a.rest[0].kind != kind {
				panic(compileErrorf(t.line, "%s: :%s needs a %s", a.n.name, t.tag, kindName(kind)))
			}
			v := a.rest[0]
			a.rest = a.rest[1:]
			return v
		}
		if !f(t.tag, t.line, value) {
			panic(compileErrorf(t.line, "%s: unknown tag :%s", a.n.name, t.tag))
		}
	}
	a.pos = a.rest
	for _, p := range a.pos {
		if p.kind == argTag {
			panic(compileErrorf(p.line, "%s: tag :%s after the positional arguments", a.n.name, p.tag))
		}
	}
}

// positional checks the positional arguments against a pattern of
// kinds: 's' one string, 'l' a string list, 'n' a number.
func (a *args) positional(kinds string) []argument {
	// Any tag still there is one the command does not know.
	a.eachTag(func(string, int, func(argKind) argument) bool { return false })
	if len(a.pos) != len(kinds) {
		panic(compileErrorf(a.n.line, "%s takes %d positional argument(s), found %d", a.n.name, len(kinds), len(a.pos)))
	}
	for i, k := range kinds {
		p := a.pos[i]
		switch k {
		case 's':
			if p.kind != argStrings || len(p.strs) != 1 {
				panic(compileErrorf(p.line, "%s: argument %d must be a single string", a.n.name, i+1))
			}
		case 'l':
			if p.kind != argStrings {
				panic(compileErrorf(p.line, "%s: argument %d must be a string list", a.n.name, i+1))
			}
		case 'n':
			if p.kind != argNumber {
				panic(compileErrorf(p.line, "%s: argument %d must be a number", a.n.name, i+1))
			}
		}
	}
	return a.pos
}

// noTests refuses tests and blocks on a command that takes none.
func noTests(n *node) {
	if len(n.tests) > 0 {
		panic(compileErrorf(n.line, "%s takes no test", n.name))
	}
	if n.hasBlock {
		panic(compileErrorf(n.line, "%s takes no block", n.name))
	}
}

// str makes a string argument: encoded characters decoded when the
// script requires encoded-character (RFC 5228 2.4.2.4), and marked for
// expansion when it requires variables.
func (c *checker) str(line int, s string) str {
	if c.req["encoded-character"] {
		var err error
		if s, err = decodeEncoded(s); err != nil {
			panic(compileErrorf(line, "%v", err))
		}
	}
	v := str{s: s, vars: c.req["variables"] && strings.Contains(s, "${")}
	if v.vars {
		// RFC 5229 3: a reference into a namespace whose extension
		// the script does not require is an error, and this package
		// has no such extension.
		_, _, err := replaceRefs(s, math.MaxInt, func(name string) (string, bool, error) {
			if ns, ok := namespace(name); ok {
				return "", false, fmt.Errorf("${%s}: unknown variable namespace %q", name, ns)
			}
			return "", false, nil
		})
		if err != nil {
			panic(compileErrorf(line, "%v", err))
		}
	}
	return v
}

// namespace returns the namespace of a variable reference's name, and
// whether it is a namespaced name: identifier "." *(variable-name ".")
// variable-name (RFC 5229 3).
func namespace(name string) (string, bool) {
	ns, rest, found := strings.Cut(name, ".")
	if !found || !isIdentifier(ns) {
		return "", false
	}
	for part := range strings.SplitSeq(rest, ".") {
		if !isIdentifier(part) && !isNumber(part) {
			return "", false
		}
	}
	return ns, true
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func (c *checker) strs(a argument) []str {
	out := make([]str, len(a.strs))
	for i, s := range a.strs {
		out[i] = c.str(a.line, s)
	}
	return out
}

// command checks one command other than elsif and else.
func (c *checker) command(n *node) *command {
	cmd := &command{line: n.line}
	switch n.name {
	case "require":
		panic(compileErrorf(n.line, "require must come before any other command"))
	case "if":
		cmd.kind = cmdIf
		cmd.branches = []branch{c.branch(n)}
		return cmd
	case "stop", "discard":
		noTests(n)
		c.args(n).positional("")
		cmd.kind = cmdStop
		if n.name == "discard" {
			cmd.kind = cmdDiscard
		}
	case "keep", "fileinto":
		noTests(n)
		cmd.kind = cmdKeep
		if n.name == "fileinto" {
			c.need(n.line, "fileinto", "fileinto")
			cmd.kind = cmdFileInto
		}
		a := c.args(n)
		a.eachTag(func(tag string, line int, value func(argKind) argument) bool {
			switch {
			case tag == "flags":
				c.need(line, "imap4flags", ":flags")
				cmd.hasFlags = true
				cmd.flags = c.strs(value(argStrings))
			case tag == "copy" && cmd.kind == cmdFileInto:
				c.need(line, "copy", ":copy")
				cmd.copy = true
			case tag == "create" && cmd.kind == cmdFileInto:
				c.need(line, "mailbox", ":create")
				cmd.create = true
			default:
				return false
			}
			return true
		})
		if cmd.kind == cmdFileInto {
			p := a.positional("s")
			cmd.mailbox = c.str(p[0].line, p[0].strs[0])
			if !cmd.mailbox.vars && !utf8.ValidString(cmd.mailbox.s) {
				panic(compileErrorf(n.line, "fileinto: the mailbox name is not UTF-8"))
			}
			if !cmd.mailbox.vars && !validMailbox(cmd.mailbox.s) {
				panic(compileErrorf(n.line, "fileinto: invalid mailbox name %q", cmd.mailbox.s))
			}
		} else {
			a.positional("")
		}
	case "setflag", "addflag", "removeflag":
		noTests(n)
		c.need(n.line, "imap4flags", n.name)
		cmd.kind = map[string]cmdKind{"setflag": cmdSetFlag, "addflag": cmdAddFlag, "removeflag": cmdRemoveFlag}[n.name]
		a := c.args(n)
		a.eachTag(func(string, int, func(argKind) argument) bool { return false })
		var p []argument
		if len(a.pos) == 2 {
			p = a.positional("sl")
			cmd.varName = c.varName(p[0].line, p[0].strs[0])
			p = p[1:]
		} else {
			p = a.positional("l")
		}
		cmd.flags = c.strs(p[0])
	case "set":
		noTests(n)
		c.need(n.line, "variables", "set")
		cmd.kind = cmdSet
		a := c.args(n)
		prec := map[int]string{}
		a.eachTag(func(tag string, line int, _ func(argKind) argument) bool {
			p, ok := modifierPrecedence[tag]
			if !ok {
				return false
			}
			if tag == "quoteregex" {
				c.need(line, "regex", ":quoteregex")
			}
			if prev, dup := prec[p]; dup {
				panic(compileErrorf(line, "set: :%s and :%s cannot be used together", prev, tag))
			}
			prec[p] = tag
			return true
		})
		// RFC 5229 4.1: higher precedence applies first.
		for _, p := range []int{40, 30, 20, 10} {
			if m, ok := prec[p]; ok {
				cmd.modifiers = append(cmd.modifiers, m)
			}
		}
		p := a.positional("ss")
		cmd.varName = c.varName(p[0].line, p[0].strs[0])
		cmd.value = c.str(p[1].line, p[1].strs[0])
	case "vacation":
		if !c.opts.Vacation {
			panic(compileErrorf(n.line, "vacation is not supported: %s", c.refusedSending(n.name)))
		}
		noTests(n)
		c.need(n.line, "vacation", "vacation")
		cmd.kind = cmdVacation
		cmd.vac = c.vacation(n)
	case "redirect":
		if !c.opts.Redirect {
			panic(compileErrorf(n.line, "redirect is not supported: %s", c.refusedSending(n.name)))
		}
		noTests(n)
		cmd.kind = cmdRedirect
		a := c.args(n)
		a.eachTag(func(tag string, line int, _ func(argKind) argument) bool {
			if tag != "copy" {
				return false
			}
			c.need(line, "copy", ":copy")
			cmd.copy = true
			return true
		})
		p := a.positional("s")
		cmd.mailbox = c.str(p[0].line, p[0].strs[0])
		// RFC 5228 4.2: an address that is not one is an error, at
		// compile time where it is known.
		if !cmd.mailbox.vars {
			if _, ok := redirectAddress(cmd.mailbox.s); !ok {
				panic(compileErrorf(p[0].line, "redirect: %q is not an address", cmd.mailbox.s))
			}
		}
	case "reject", "ereject", "notify":
		panic(compileErrorf(n.line, "%s is not supported: %s", n.name, c.refusedSending(n.name)))
	default:
		panic(compileErrorf(n.line, "unknown command %q", n.name))
	}
	return cmd
}

// vacation checks vacation's arguments (RFC 5230 4, RFC 6131 2).
func (c *checker) vacation(n *node) *vacationCmd {
	v := &vacationCmd{period: -1}
	a := c.args(n)
	seen := map[string]bool{}
	a.eachTag(func(tag string, line int, value func(argKind) argument) bool {
		if seen[tag] {
			panic(compileErrorf(line, "vacation: :%s given twice", tag))
		}
		seen[tag] = true
		single := func() argument {
			p := value(argStrings)
			if len(p.strs) != 1 {
				panic(compileErrorf(line, "vacation: :%s takes a single string", tag))
			}
			return p
		}
		switch tag {
		case "days", "seconds":
			if tag == "seconds" {
				c.need(line, "vacation-seconds", ":seconds")
			}
			if seen["days"] && seen["seconds"] {
				panic(compileErrorf(line, "vacation: :days and :seconds cannot be used together"))
			}
			p := value(argNumber)
			v.period = p.num
			if tag == "days" {
				// RFC 5230 4.1: at least 1 day; a larger number than a
				// site allows is reduced to its maximum, at delivery.
				v.period = min(max(p.num, 1), math.MaxInt64/86400) * 86400
			}
		case "subject":
			p := single()
			v.subject, v.hasSubj = c.str(p.line, p.strs[0]), true
		case "from":
			p := single()
			v.from = c.str(p.line, p.strs[0])
		case "addresses":
			v.addresses = c.strs(value(argStrings))
		case "mime":
			v.mime = true
		case "handle":
			p := single()
			v.handle, v.hasHandle = c.str(p.line, p.strs[0]), true
		default:
			return false
		}
		return true
	})
	p := a.positional("s")
	v.reason = c.str(p[0].line, p[0].strs[0])
	v.defaultHandle = vacationHandle(v)
	return v
}

// vacationHandle is the handle of a vacation without :handle (RFC 5230
// 4.2: vacations that differ in what they say are different replies;
// the period and :addresses change who gets one and when, not what it
// says). It is made as Pigeonhole makes it, of the arguments as the
// script writes them, before variables are expanded: the reason, then
// the subject, the from and whether it is MIME, those not given written
// as placeholders. So a script whose subject is "Auto: ${subject}", as
// Thunderbird's dialog writes, sends one reply per sender and period,
// not one per subject the sender writes.
func vacationHandle(v *vacationCmd) string {
	var b strings.Builder
	b.WriteString(v.reason.s)
	if v.hasSubj {
		b.WriteString(v.subject.s)
	} else {
		b.WriteString("<default-subject>")
	}
	b.WriteString(cmp.Or(v.from.s, "<default-from>"))
	if v.mime {
		b.WriteString("<MIME>")
	} else {
		b.WriteString("<NO-MIME>")
	}
	return b.String()
}

// modifierPrecedence is the precedence of set's modifiers (RFC 5229
// 4.1); :quoteregex, from the regex draft, shares :quotewildcard's.
var modifierPrecedence = map[string]int{
	"lower": 40, "upper": 40,
	"lowerfirst": 30, "upperfirst": 30,
	"quotewildcard": 20, "quoteregex": 20,
	"length": 10,
}

// varName checks a variable name that set and the flag commands assign
// to (RFC 5229 3: identifiers only; match variables cannot be set).
func (c *checker) varName(line int, name string) string {
	c.need(line, "variables", "a variable name")
	if !isIdentifier(name) {
		panic(compileErrorf(line, "%q is not a valid variable name", name))
	}
	return strings.ToLower(name)
}

func isIdentifier(s string) bool {
	if s == "" || !isIdentStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isIdentStart(s[i]) && (s[i] < '0' || s[i] > '9') {
			return false
		}
	}
	return true
}

// test checks one test.
func (c *checker) test(n *node) *test {
	t := &test{line: n.line}
	switch n.name {
	case "allof", "anyof":
		t.kind = testAllOf
		if n.name == "anyof" {
			t.kind = testAnyOf
		}
		if len(n.args) > 0 || !n.testList || len(n.tests) == 0 {
			panic(compileErrorf(n.line, "%s takes a list of tests in parentheses", n.name))
		}
		for _, sub := range n.tests {
			t.tests = append(t.tests, c.test(sub))
		}
		return t
	case "not":
		t.kind = testNot
		if len(n.args) > 0 || n.testList || len(n.tests) != 1 {
			panic(compileErrorf(n.line, "not takes one test"))
		}
		t.tests = []*test{c.test(n.tests[0])}
		return t
	case "true", "false":
		t.kind = testTrue
		if n.name == "false" {
			t.kind = testFalse
		}
		if len(n.args) > 0 || len(n.tests) > 0 {
			panic(compileErrorf(n.line, "%s takes no arguments", n.name))
		}
		return t
	}
	if len(n.tests) > 0 {
		panic(compileErrorf(n.line, "%s takes no tests", n.name))
	}
	a := c.args(n)
	var p []argument
	switch n.name {
	case "address":
		t.kind = testAddress
		c.matchTags(a, t, true, true, false, false)
		p = a.positional("ll")
		t.names = c.strs(p[0])
		for _, h := range t.names {
			if !h.vars && notAddressFields[strings.ToLower(h.s)] {
				panic(compileErrorf(p[0].line, "address: %s is not a field of addresses (use header)", h.s))
			}
		}
	case "envelope":
		c.need(n.line, "envelope", "envelope")
		t.kind = testEnvelope
		c.matchTags(a, t, true, false, false, false)
		p = a.positional("ll")
		t.names = c.strs(p[0])
		for _, part := range t.names {
			if !part.vars && part.s != "" {
				switch strings.ToLower(part.s) {
				case "from", "to":
				default:
					panic(compileErrorf(p[0].line, "envelope: unknown envelope part %q (from and to are known)", part.s))
				}
			}
		}
	case "header":
		t.kind = testHeader
		c.matchTags(a, t, false, true, false, false)
		p = a.positional("ll")
		t.names = c.strs(p[0])
	case "exists":
		t.kind = testExists
		a.eachTag(func(string, int, func(argKind) argument) bool { return false })
		t.names = c.strs(a.positional("l")[0])
		return t
	case "size":
		t.kind = testSize
		seen := false
		a.eachTag(func(tag string, line int, value func(argKind) argument) bool {
			if tag != "over" && tag != "under" {
				return false
			}
			if seen {
				panic(compileErrorf(line, "size takes one of :over and :under"))
			}
			seen = true
			t.over = tag == "over"
			t.size = value(argNumber).num
			return true
		})
		if !seen {
			panic(compileErrorf(n.line, "size needs :over or :under"))
		}
		a.positional("")
		return t
	case "body":
		c.need(n.line, "body", "body")
		t.kind = testBody
		c.matchTags(a, t, false, false, true, false)
		p = a.positional("l")
		if t.m.kind == matchCount {
			panic(compileErrorf(n.line, "body cannot use :count"))
		}
	case "hasflag":
		c.need(n.line, "imap4flags", "hasflag")
		t.kind = testHasFlag
		c.matchTags(a, t, false, false, false, false)
		if len(a.pos) == 2 {
			p = a.positional("ll")
			for _, s := range p[0].strs {
				t.names = append(t.names, str{s: c.varName(p[0].line, s)})
			}
			p = p[1:]
		} else {
			p = a.positional("l")
		}
	case "mailboxexists":
		c.need(n.line, "mailbox", "mailboxexists")
		t.kind = testMailboxExists
		a.eachTag(func(string, int, func(argKind) argument) bool { return false })
		t.names = c.strs(a.positional("l")[0])
		return t
	case "string":
		c.need(n.line, "variables", "string")
		t.kind = testString
		c.matchTags(a, t, false, false, false, false)
		p = a.positional("ll")
		t.names = c.strs(p[0])
	case "date":
		c.need(n.line, "date", "date")
		t.kind = testDate
		c.matchTags(a, t, false, true, false, true)
		p = a.positional("lsl")
		if len(p[0].strs) != 1 {
			panic(compileErrorf(p[0].line, "date takes one header name"))
		}
		t.names = c.strs(p[0])
		t.datePart = c.str(p[1].line, p[1].strs[0])
		c.checkDatePart(p[1].line, t.datePart)
		p = p[2:]
	case "currentdate":
		c.need(n.line, "date", "currentdate")
		t.kind = testCurrentDate
		c.matchTags(a, t, false, false, false, true)
		if t.originalZone {
			panic(compileErrorf(n.line, "currentdate cannot use :originalzone"))
		}
		p = a.positional("sl")
		t.datePart = c.str(p[0].line, p[0].strs[0])
		c.checkDatePart(p[0].line, t.datePart)
		p = p[1:]
	case "redirect", "vacation", "reject", "ereject", "notify", "valid_notify_method", "notify_method_capability":
		panic(compileErrorf(n.line, "%s is not a test", n.name))
	default:
		panic(compileErrorf(n.line, "unknown test %q", n.name))
	}
	keys := p[len(p)-1]
	t.m.keys = c.strs(keys)
	c.compileKeys(keys.line, &t.m)
	return t
}

func (c *checker) checkDatePart(line int, part str) {
	if part.vars {
		return
	}
	if _, ok := dateParts[strings.ToLower(part.s)]; !ok {
		panic(compileErrorf(line, "unknown date part %q", part.s))
	}
}

// matchTags takes the comparator, match type and, as the test allows,
// address part, index, body transform and zone tags.
func (c *checker) matchTags(a *args, t *test, addr, index, body, zone bool) {
	t.m.cmp = cmpCasemap
	var haveCmp, haveMatch, havePart, haveTransform bool
	a.eachTag(func(tag string, line int, value func(argKind) argument) bool {
		once := func(seen *bool, what string) {
			if *seen {
				panic(compileErrorf(line, "%s: more than one %s", a.n.name, what))
			}
			*seen = true
		}
		switch tag {
		case "comparator":
			once(&haveCmp, "comparator")
			v := value(argStrings)
			if len(v.strs) != 1 {
				panic(compileErrorf(line, ":comparator takes one string"))
			}
			switch name := strings.ToLower(v.strs[0]); name {
			case "i;octet":
				t.m.cmp = cmpOctet
			case "i;ascii-casemap":
				t.m.cmp = cmpCasemap
			case "i;ascii-numeric":
				c.need(line, "comparator-i;ascii-numeric", "comparator i;ascii-numeric")
				t.m.cmp = cmpNumeric
			default:
				panic(compileErrorf(line, "unknown comparator %q", v.strs[0]))
			}
		case "is", "contains", "matches":
			once(&haveMatch, "match type")
			t.m.kind = map[string]matchKind{"is": matchIs, "contains": matchContains, "matches": matchMatches}[tag]
		case "regex":
			once(&haveMatch, "match type")
			c.need(line, "regex", ":regex")
			t.m.kind = matchRegex
		case "value", "count":
			once(&haveMatch, "match type")
			c.need(line, "relational", ":"+tag)
			t.m.kind = matchValue
			if tag == "count" {
				t.m.kind = matchCount
			}
			v := value(argStrings)
			if len(v.strs) != 1 {
				panic(compileErrorf(line, ":%s takes one relational operator", tag))
			}
			op := strings.ToLower(v.strs[0])
			switch op {
			case "gt", "ge", "lt", "le", "eq", "ne":
			default:
				panic(compileErrorf(line, "unknown relational operator %q", v.strs[0]))
			}
			t.m.rel = op
		case "all", "localpart", "domain", "user", "detail":
			if !addr {
				return false
			}
			once(&havePart, "address part")
			if tag == "user" || tag == "detail" {
				c.need(line, "subaddress", ":"+tag)
			}
			t.part = map[string]addrPart{"all": partAll, "localpart": partLocal, "domain": partDomain, "user": partUser, "detail": partDetail}[tag]
		case "index":
			if !index {
				return false
			}
			c.need(line, "index", ":index")
			if t.index != 0 {
				panic(compileErrorf(line, "more than one :index"))
			}
			v := value(argNumber)
			if v.num < 1 {
				panic(compileErrorf(line, ":index counts from 1"))
			}
			t.index = int(min(v.num, 1<<30))
		case "last":
			if !index {
				return false
			}
			c.need(line, "index", ":last")
			t.last = true
		case "raw", "text", "content":
			if !body {
				return false
			}
			once(&haveTransform, "body transform")
			switch tag {
			case "raw":
				t.transform = bodyRaw
			case "text":
				t.transform = bodyText
			case "content":
				t.transform = bodyContent
				t.contentTypes = c.strs(value(argStrings))
			}
		case "zone":
			if !zone || t.originalZone || t.hasZone {
				return false
			}
			v := value(argStrings)
			if len(v.strs) != 1 {
				panic(compileErrorf(line, ":zone takes one string"))
			}
			t.zone = c.str(line, v.strs[0])
			t.hasZone = true
			if !t.zone.vars {
				if _, ok := parseZone(t.zone.s); !ok {
					panic(compileErrorf(line, "invalid time zone %q (the form is +hhmm or -hhmm)", v.strs[0]))
				}
			}
		case "originalzone":
			if !zone || t.originalZone || t.hasZone {
				return false
			}
			t.originalZone = true
		default:
			return false
		}
		return true
	})
	if t.last && t.index == 0 {
		panic(compileErrorf(a.n.line, ":last needs :index"))
	}
	// RFC 4790 9.1: i;ascii-numeric does equality and ordering only.
	if t.m.cmp == cmpNumeric {
		switch t.m.kind {
		case matchContains, matchMatches, matchRegex:
			panic(compileErrorf(a.n.line, "comparator i;ascii-numeric cannot do substring matches"))
		}
	}
	if t.m.kind == matchRegex && t.m.cmp == cmpNumeric {
		panic(compileErrorf(a.n.line, "comparator i;ascii-numeric cannot do :regex"))
	}
}

// compileKeys prepares the keys that do not depend on variables:
// :matches patterns are parsed and :regex expressions compiled now, so
// that a bad one is a compile error and a run does not do it again.
func (c *checker) compileKeys(line int, m *matcher) {
	switch m.kind {
	case matchMatches:
		m.globs = make([][]globTok, len(m.keys))
		for i, k := range m.keys {
			if k.vars {
				continue
			}
			toks, err := parseGlob(k.s, m.cmp)
			if err != nil {
				panic(compileErrorf(line, "%v", err))
			}
			m.globs[i] = toks
		}
	case matchRegex:
		m.res = make([]*regex, len(m.keys))
		for i, k := range m.keys {
			if k.vars {
				continue
			}
			re, err := m.compile(k.s)
			if err != nil {
				panic(compileErrorf(line, "%v", err))
			}
			if c.regexInsts += re.insts; c.regexInsts > maxScriptRegexInsts {
				panic(compileErrorf(line, "the script's regular expressions are too large: more than %d steps in all", maxScriptRegexInsts))
			}
			m.res[i] = re
		}
	}
}

// decodeEncoded decodes the ${hex:...} and ${unicode:...} of a string
// (RFC 5228 2.4.2.4). A sequence that is not well formed is left as it
// is; a Unicode value that is not a character is an error.
func decodeEncoded(s string) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	out, _, err := replaceRefs(s, math.MaxInt, decodeRef)
	return out, err
}

// decodeRef decodes what is between the braces of an encoded character,
// or returns false when it is not one. It reads no further than the first
// byte that is neither a hex digit nor white space, so that each byte of
// a long run of "${" is read a bounded number of times.
func decodeRef(inner string) (string, bool, error) {
	colon := strings.IndexByte(inner[:min(len(inner), len("unicode:"))], ':')
	if colon < 0 {
		return "", false, nil
	}
	kind, seq := inner[:colon], inner[colon+1:]
	unicode := strings.EqualFold(kind, "unicode")
	if !unicode && !strings.EqualFold(kind, "hex") {
		return "", false, nil
	}
	maxValue := uint32(0xff)
	if unicode {
		maxValue = 0x10ffff
	}
	var out []byte
	for i := 0; i < len(seq); {
		if c := seq[i]; c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			i++
			continue
		}
		// One number: hex digits up to white space or the end.
		start, v := i, uint32(0)
		for ; i < len(seq) && seq[i] != ' ' && seq[i] != '\t' && seq[i] != '\r' && seq[i] != '\n'; i++ {
			d, ok := hexDigit(seq[i])
			if !ok {
				return "", false, nil
			}
			if v = v<<4 | d; v > maxValue {
				if unicode {
					return "", false, fmt.Errorf("${unicode:%.16s} is not a Unicode character", seq[start:])
				}
				return "", false, nil
			}
		}
		if !unicode {
			out = append(out, byte(v))
			continue
		}
		if v >= 0xd800 && v <= 0xdfff {
			return "", false, fmt.Errorf("${unicode:%s} is not a Unicode character", seq[start:i])
		}
		out = utf8.AppendRune(out, rune(v))
	}
	if out == nil {
		return "", false, nil // no number at all
	}
	return string(out), true, nil
}

func hexDigit(c byte) (uint32, bool) {
	switch {
	case '0' <= c && c <= '9':
		return uint32(c - '0'), true
	case 'a' <= c && c <= 'f':
		return uint32(c - 'a' + 10), true
	case 'A' <= c && c <= 'F':
		return uint32(c - 'A' + 10), true
	}
	return 0, false
}
