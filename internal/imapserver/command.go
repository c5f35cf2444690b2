package imapserver

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/buzon-mail/buzon/internal/store"
)

// command is one parsed client command.
type command struct {
	tag  string
	name string // upper-case; "UID FETCH" for the UID forms
	uid  bool   // a UID command: numbers are UIDs
	args any    // the *xxxArgs of the command, nil when it takes none
	// p is the command's parser, for commands that read on while they run
	// (APPEND's message literals).
	p *parser
}

// parseCommand reads a command's tag, name and arguments (for APPEND, up to
// the first message literal). It panics with syntaxError on bad input.
func parseCommand(p *parser) *command {
	cmd := &command{tag: p.xtag()}
	p.xspace()
	parseCommandName(p, cmd)
	parseArgs(p, cmd)
	return cmd
}

// parseCommandName reads the command's name.
func parseCommandName(p *parser, cmd *command) {
	cmd.name = strings.ToUpper(p.xatom())
	if cmd.name == "UID" {
		p.xspace()
		cmd.uid = true
		cmd.name = "UID " + strings.ToUpper(p.xatom())
	}
	if _, ok := commands[cmd.name]; !ok {
		xsyntaxErrorf("unknown command %q", cmd.name)
	}
}

// parseArgs reads the arguments of the command named.
func parseArgs(p *parser, cmd *command) {
	if spec := commands[cmd.name]; spec.parse != nil {
		cmd.args = spec.parse(p, cmd)
	}
	if cmd.name != "APPEND" {
		p.xend()
	}
}

// Argument types, one per command that takes arguments.

type authenticateArgs struct {
	mech    string
	initial []byte // nil: no initial response (RFC 4959)
}

type loginArgs struct{ user, pass string }

type enableArgs struct{ caps []string }

type selectArgs struct {
	mailbox   string
	condstore bool
	qresync   *qresyncArgs
}

// qresyncArgs are SELECT's QRESYNC parameters (RFC 7162 3.2.5).
type qresyncArgs struct {
	uidValidity uint32
	modSeq      uint64
	knownUIDs   *numSet
}

type mailboxArgs struct{ mailbox string }

type createArgs struct {
	mailbox string
	use     []string // CREATE-SPECIAL-USE (RFC 6154 3)
}

type renameArgs struct{ from, to string }

type listArgs struct {
	lsub        bool
	selOpts     []string // LIST-EXTENDED selection options (RFC 5258 3.1)
	ref         string
	patterns    []string
	retOpts     []string // return options (RFC 5258 3.2)
	statusItems []string // RETURN (STATUS (...)) (RFC 5819)
}

type statusArgs struct {
	mailbox string
	items   []string
}

type appendArgs struct {
	mailbox string
	first   appendMessage
}

// appendMessage is one message of an APPEND: its options and the header
// of the literal that holds it, which the command then streams.
type appendMessage struct {
	flags []string
	date  time.Time
	utf8  bool // UTF8 (literal8) form (RFC 6855 4)
	lit   literalHeader
}

type quotaArgs struct{ root string }

type idArgs struct{ params []string } // name value pairs, "" for NIL, clipped (RFC 2971 3.3)

type compressArgs struct{ mech string }

type numSetArgs struct{ set numSet } // UID EXPUNGE

type copyArgs struct {
	set     numSet
	mailbox string
}

type storeArgs struct {
	set            numSet
	unchangedSince uint64
	hasUnchanged   bool
	op             store.FlagOp
	silent         bool
	flags          []string
}

type fetchArgs struct {
	set          numSet
	items        []fetchItem
	changedSince uint64
	hasChanged   bool
	vanished     bool
}

type searchArgs struct {
	ret       []string // RETURN options, upper-case; nil when absent
	hasReturn bool
	charset   string
	key       *searchKey
}

func parseAuthenticate(p *parser, _ *command) any {
	p.xspace()
	a := &authenticateArgs{mech: strings.ToUpper(p.xatom())}
	if p.take(" ") {
		// RFC 4959 SASL-IR: base64 or "=" for an empty response.
		s := p.takeWhile(func(c byte) bool { return c != ' ' })
		if s == "" {
			p.xerrorf("expected initial response")
		}
		a.initial = []byte(s)
	}
	return a
}

func parseLogin(p *parser, _ *command) any {
	p.xspace()
	a := &loginArgs{user: p.xastring()}
	p.xspace()
	a.pass = p.xastring()
	return a
}

func parseEnable(p *parser, _ *command) any {
	a := &enableArgs{}
	for p.take(" ") {
		a.caps = append(a.caps, strings.ToUpper(p.xatom()))
	}
	if len(a.caps) == 0 {
		p.xerrorf("ENABLE needs a capability")
	}
	return a
}

func parseSelect(p *parser, _ *command) any {
	p.xspace()
	a := &selectArgs{mailbox: p.xastring()}
	if !p.take(" (") {
		return a
	}
	for i := 0; !p.take(")"); i++ {
		if i > 0 {
			p.xspace()
		}
		switch {
		case p.take("CONDSTORE"):
			a.condstore = true // RFC 7162 3.1.8
		case p.take("QRESYNC ("):
			// RFC 7162 3.2.5
			q := &qresyncArgs{uidValidity: p.xnznumber()}
			p.xspace()
			q.modSeq = p.xnumber64()
			if p.take(" ") {
				if p.peek() != '(' {
					s := p.xnumSet(false)
					q.knownUIDs = &s
					p.take(" ")
				}
				if p.take("(") {
					// seq-match-data: the store keeps every expunged UID,
					// so it is read and not needed.
					p.xnumSet(false)
					p.xspace()
					p.xnumSet(false)
					p.xtake(")")
				}
			}
			p.xtake(")")
			a.qresync = q
		default:
			p.xerrorf("unknown SELECT parameter")
		}
	}
	return a
}

func parseMailbox(p *parser, _ *command) any {
	p.xspace()
	return &mailboxArgs{mailbox: p.xastring()}
}

func parseCreate(p *parser, _ *command) any {
	p.xspace()
	a := &createArgs{mailbox: p.xastring()}
	if p.take(" (") {
		// RFC 6154 3: "USE (" special-use-attrs ")"
		p.xtake("USE (")
		for i := 0; !p.take(")"); i++ {
			if i > 0 {
				p.xspace()
			}
			p.xtake(`\`)
			a.use = append(a.use, `\`+p.xatom())
		}
		p.xtake(")")
	}
	return a
}

func parseRename(p *parser, _ *command) any {
	p.xspace()
	a := &renameArgs{from: p.xastring()}
	p.xspace()
	a.to = p.xastring()
	return a
}

func parseList(p *parser, cmd *command) any {
	a := &listArgs{lsub: cmd.name == "LSUB"}
	p.xspace()
	if !a.lsub && p.peek() == '(' {
		a.selOpts = p.xatomList()
		p.xspace()
	}
	a.ref = p.xastring()
	p.xspace()
	if !a.lsub && p.take("(") {
		// RFC 5258 3: several patterns.
		for i := 0; !p.take(")"); i++ {
			if i > 0 {
				p.xspace()
			}
			a.patterns = append(a.patterns, p.xlistMailbox())
		}
	} else {
		a.patterns = []string{p.xlistMailbox()}
	}
	if !a.lsub && p.take(" RETURN (") {
		for i := 0; !p.take(")"); i++ {
			if i > 0 {
				p.xspace()
			}
			opt := strings.ToUpper(p.xatom())
			a.retOpts = append(a.retOpts, opt)
			if opt == "STATUS" {
				// RFC 5819
				p.xspace()
				a.statusItems = p.xatomList()
			}
		}
	}
	return a
}

func parseStatus(p *parser, _ *command) any {
	p.xspace()
	a := &statusArgs{mailbox: p.xastring()}
	p.xspace()
	a.items = p.xatomList()
	if len(a.items) == 0 {
		p.xerrorf("STATUS needs an item")
	}
	return a
}

func parseAppend(p *parser, _ *command) any {
	p.xspace()
	a := &appendArgs{mailbox: p.xastring()}
	p.messages = true
	p.xspace()
	a.first = p.xappendMessage()
	return a
}

// xappendMessage reads "[flags SP] [date-time SP] literal" or its UTF8
// form (RFC 9051 6.3.12, RFC 3502 MULTIAPPEND, RFC 6855 4, RFC 3516).
// The literal's bytes are left for the command to stream.
func (p *parser) xappendMessage() appendMessage {
	var m appendMessage
	if p.peek() == '(' {
		m.flags = p.xflagList()
		p.xspace()
	}
	if p.peek() == '"' {
		m.date = p.xdateTime()
		p.xspace()
	}
	if p.take("UTF8 (") {
		m.utf8 = true
		m.lit = p.xliteralHeader(true)
	} else {
		if !p.literalAhead() {
			p.xerrorf("expected message literal")
		}
		m.lit = p.xliteralHeader(true)
	}
	p.r.pace.begin() // the command streams it
	return m
}

func parseQuotaRoot(p *parser, _ *command) any {
	p.xspace()
	return &quotaArgs{root: p.xastring()}
}

func parseSetQuota(p *parser, _ *command) any {
	// Refused whatever it says (RFC 9208 4.1.3); read it to be well-formed.
	p.xspace()
	p.xastring()
	p.xspace()
	p.xtake("(")
	for i := 0; !p.take(")"); i++ {
		if i > 0 {
			p.xspace()
		}
		p.xatom()
		p.xspace()
		p.xnumber64()
	}
	return nil
}

func parseID(p *parser, _ *command) any {
	// RFC 2971 3.1
	p.xspace()
	a := &idArgs{}
	if p.takeNil() {
		return a
	}
	p.xtake("(")
	for i := 0; !p.take(")"); i++ {
		if i > 0 {
			p.xspace()
		}
		k := p.xstring()
		p.xspace()
		v, _ := p.xnstring()
		// RFC 2971 3.3: at most 30 pairs, field names of at most 30
		// octets, values of at most 1024. What a client sends beyond
		// is dropped, not kept for the log.
		if len(a.params) < 2*30 {
			a.params = append(a.params, clipUTF8(k, 30), clipUTF8(v, 1024))
		}
	}
	return a
}

// clipUTF8 cuts s to at most n bytes, at the start of a UTF-8 sequence.
func clipUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func parseCompress(p *parser, _ *command) any {
	p.xspace()
	return &compressArgs{mech: strings.ToUpper(p.xatom())}
}

func parseUIDExpunge(p *parser, _ *command) any {
	p.xspace()
	return &numSetArgs{set: p.xnumSet(true)}
}

func parseCopy(p *parser, _ *command) any {
	p.xspace()
	a := &copyArgs{set: p.xnumSet(true)}
	p.xspace()
	a.mailbox = p.xastring()
	return a
}

func parseStore(p *parser, _ *command) any {
	p.xspace()
	a := &storeArgs{set: p.xnumSet(true)}
	p.xspace()
	if p.take("(UNCHANGEDSINCE ") {
		// RFC 7162 3.1.3
		a.unchangedSince = p.xnumber64()
		a.hasUnchanged = true
		p.xtake(") ")
	}
	switch {
	case p.take("+"):
		a.op = store.FlagsAdd
	case p.take("-"):
		a.op = store.FlagsRemove
	default:
		a.op = store.FlagsReplace
	}
	p.xtake("FLAGS")
	a.silent = p.take(".SILENT")
	p.xspace()
	if p.peek() == '(' {
		a.flags = p.xflagList()
	} else {
		a.flags = append(a.flags, p.xflag())
		for p.take(" ") {
			a.flags = append(a.flags, p.xflag())
		}
	}
	return a
}
