package imapserver

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// syntaxError is a command the server cannot parse: answered with BAD
// and, when set, a response code.
type syntaxError struct{ code, msg string }

func (e syntaxError) Error() string { return e.msg }

// xsyntaxErrorf aborts the command with a BAD answer.
func xsyntaxErrorf(format string, args ...any) {
	panic(syntaxError{msg: fmt.Sprintf(format, args...)})
}

// ioError is a failure of the connection itself: the session ends without
// an answer.
type ioError struct{ err error }

func (e ioError) Error() string { return e.err.Error() }

// literalHeader describes a literal announced at the end of a line:
// "{n}", "{n+}" (RFC 7888 LITERAL+) or "~{n}" (RFC 3516 literal8).
type literalHeader struct {
	size   int64
	sync   bool // the client waits for "+ " before sending
	binary bool // literal8: may hold NUL bytes
}

// parser reads one command: the line it starts on and, through r, the
// literals and continuation lines that follow. Its x-methods abort with a
// syntaxError (or userError, ioError) panic that the command loop turns
// into an answer.
type parser struct {
	r    *reader
	line []byte
	pos  int

	// awaitLiteral readies the session for the bytes of a literal, asking
	// the client to go on with a synchronising one ("+ Ready"); nil where
	// nobody listens (the fuzz target).
	awaitLiteral func(sync bool)
	// maxLiteral is the largest literal taken into memory.
	maxLiteral int64
	// maxMessage is the largest APPEND message literal that a failed
	// command still reads and drops (RFC 7888 4 lets the server close
	// instead; clients rely on a NO [TRYCREATE] they can act on): 0
	// before login, then Limits.MaxMessageSize, the APPENDLIMIT.
	maxMessage int64
	// messages is set once the literals still to come are APPEND's
	// messages: after the mailbox name, its grammar has no others.
	messages bool
	// refuse, when set, is the answer to a command that will take none
	// of its literals (LOGIN before TLS): the client is not asked for a
	// synchronising one, and one on its way is dropped.
	refuse *userError
}

// The line a parser holds is always the one whose literal, if it ends in
// one, has not been read yet: discardRest relies on it.

func newParser(r *reader, line []byte, maxLiteral int64, awaitLiteral func(sync bool)) *parser {
	return &parser{r: r, line: line, maxLiteral: maxLiteral, awaitLiteral: awaitLiteral}
}

func (p *parser) atEnd() bool { return p.pos >= len(p.line) }

func (p *parser) peek() byte {
	if p.atEnd() {
		return 0
	}
	return p.line[p.pos]
}

// take consumes s (ASCII case-insensitive) when it comes next.
func (p *parser) take(s string) bool {
	if len(p.line)-p.pos < len(s) || !strings.EqualFold(string(p.line[p.pos:p.pos+len(s)]), s) {
		return false
	}
	p.pos += len(s)
	return true
}

func (p *parser) xtake(s string) {
	if !p.take(s) {
		p.xerrorf("expected %q", s)
	}
}

func (p *parser) xspace() { p.xtake(" ") }

func (p *parser) xend() {
	if !p.atEnd() {
		p.xerrorf("unexpected data at end of command")
	}
}

func (p *parser) xerrorf(format string, args ...any) {
	xsyntaxErrorf("%s (at byte %d)", fmt.Sprintf(format, args...), p.pos)
}

// RFC 9051 9: atom-specials.
func isAtomChar(c byte) bool {
	return c > ' ' && c < 0x7f && strings.IndexByte(`(){%*"\]`, c) < 0
}

func isAStringChar(c byte) bool { return isAtomChar(c) || c == ']' }

func (p *parser) takeWhile(ok func(byte) bool) string {
	start := p.pos
	for !p.atEnd() && ok(p.line[p.pos]) {
		p.pos++
	}
	return string(p.line[start:p.pos])
}

func (p *parser) xatom() string {
	s := p.takeWhile(isAtomChar)
	if s == "" {
		p.xerrorf("expected atom")
	}
	return s
}

// xtag reads a command tag: astring characters except "+" (RFC 9051 9).
func (p *parser) xtag() string {
	s := p.takeWhile(func(c byte) bool { return isAStringChar(c) && c != '+' })
	if s == "" {
		p.xerrorf("expected tag")
	}
	return s
}

func (p *parser) xnumber64() uint64 {
	s := p.takeWhile(func(c byte) bool { return c >= '0' && c <= '9' })
	if s == "" {
		p.xerrorf("expected number")
	}
	n, err := strconv.ParseUint(s, 10, 63)
	if err != nil {
		p.xerrorf("number out of range")
	}
	return n
}

func (p *parser) xnumber() uint32 {
	n := p.xnumber64()
	if n > math.MaxUint32 {
		p.xerrorf("number out of range")
	}
	return uint32(n)
}

func (p *parser) xnznumber() uint32 {
	n := p.xnumber()
	if n == 0 {
		p.xerrorf("expected non-zero number")
	}
	return n
}

// xquoted reads a quoted string (RFC 9051 9 quoted). 8-bit bytes are kept
// (IMAP4rev2 and UTF8=ACCEPT allow UTF-8 there).
func (p *parser) xquoted() string {
	p.xtake(`"`)
	var b []byte
	for {
		if p.atEnd() {
			p.xerrorf("unterminated quoted string")
		}
		c := p.line[p.pos]
		p.pos++
		switch c {
		case '"':
			return string(b)
		case '\\':
			if p.atEnd() || (p.line[p.pos] != '"' && p.line[p.pos] != '\\') {
				p.xerrorf(`bad escape in quoted string`)
			}
			b = append(b, p.line[p.pos])
			p.pos++
		case 0:
			p.xerrorf("NUL in quoted string")
		default:
			b = append(b, c)
		}
	}
}

// literalAhead reports whether a literal header starts here.
func (p *parser) literalAhead() bool {
	return p.peek() == '{' || (p.peek() == '~' && p.pos+1 < len(p.line) && p.line[p.pos+1] == '{')
}

// xliteralHeader reads "{n}", "{n+}" or "~{n}" at the end of the line.
func (p *parser) xliteralHeader(allowBinary bool) literalHeader {
	var h literalHeader
	if p.take("~") {
		if !allowBinary {
			p.xerrorf("literal8 not allowed here")
		}
		h.binary = true
	}
	p.xtake("{")
	h.size = int64(p.xnumber64())
	h.sync = !p.take("+")
	p.xtake("}")
	if !p.atEnd() {
		p.xerrorf("literal header not at end of line")
	}
	return h
}

// tailLiteral parses a literal header ending line, if there is one.
func tailLiteral(line []byte) (literalHeader, bool) {
	if !bytes.HasSuffix(line, []byte("}")) {
		return literalHeader{}, false
	}
	i := bytes.LastIndexByte(line, '{')
	if i < 0 {
		return literalHeader{}, false
	}
	num := line[i+1 : len(line)-1]
	h := literalHeader{sync: true, binary: i > 0 && line[i-1] == '~'}
	if bytes.HasSuffix(num, []byte("+")) {
		h.sync = false
		num = num[:len(num)-1]
	}
	n, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil || n < 0 || len(num) == 0 || num[0] == '+' || num[0] == '-' {
		return literalHeader{}, false
	}
	h.size = n
	return h, true
}

// nextLine reads the line that continues the command after a literal.
func (p *parser) nextLine() {
	line, err := p.r.readLine()
	if err != nil {
		if e, ok := err.(*lineTooLongError); ok {
			// Resynchronise: the rest of the command is gone, but a
			// non-synchronising literal after it must still be skipped.
			p.line, p.pos = e.Tail, len(e.Tail)
			xsyntaxErrorf("line too long")
		}
		panic(ioError{err})
	}
	p.line, p.pos = line, 0
}

// xliteral reads a literal into memory: at most max bytes.
func (p *parser) xliteral(allowBinary bool) []byte {
	h := p.xliteralHeader(allowBinary)
	if p.refuse != nil {
		p.refuseLiteral(h, p.refuse.code, p.refuse.msg)
	}
	if h.size > p.maxLiteral {
		p.refuseLiteral(h, "TOOBIG", "literal too big")
	}
	if p.awaitLiteral != nil {
		p.awaitLiteral(h.sync)
	}
	p.r.pace.begin()
	buf := make([]byte, h.size)
	if _, err := io.ReadFull(p.r.br, buf); err != nil {
		panic(ioError{err})
	}
	if !h.binary && bytes.IndexByte(buf, 0) >= 0 {
		p.nextLine()
		xsyntaxErrorf("NUL in literal")
	}
	p.nextLine()
	return buf
}

// refuseLiteral aborts the command because of a literal it will not take,
// with NO [code]. A synchronising literal has not been sent, so nothing is
// left to skip. A non-synchronising one is on its way (RFC 7888 4): up to
// the absurd-line bound it is read and dropped; beyond, the answer is BAD
// [TOOBIG], left unread in p.line so that discardRest gives up on it and
// the connection closes.
func (p *parser) refuseLiteral(h literalHeader, code, msg string) {
	switch {
	case h.sync:
		p.line, p.pos = nil, 0
	case h.size > p.r.absurd:
		panic(syntaxError{code: "TOOBIG", msg: msg})
	default:
		if err := p.r.discard(h.size); err != nil {
			panic(ioError{err})
		}
		p.nextLine()
		p.pos = len(p.line)
	}
	panic(userError{code: code, msg: msg})
}

// unskippableError is a non-synchronising literal that follows a failed
// command and is too big to read and drop: the session must end.
type unskippableError struct{ size int64 }

func (e *unskippableError) Error() string {
	return fmt.Sprintf("non-synchronising literal of %d bytes after an error", e.size)
}

// discardRest skips what remains of a command that failed, so the next
// line read is the next command: the literals a client sends without
// waiting (RFC 7888) and the lines after them. A literal over the
// absurd-line bound, or for an APPEND message over maxMessage, is not
// read: an *unskippableError. The literals are read and dropped as they
// come, not held.
func (p *parser) discardRest() error {
	limit := p.r.absurd
	if p.messages {
		limit = max(limit, p.maxMessage)
	}
	for p.line != nil {
		h, ok := tailLiteral(p.line)
		if !ok || h.sync {
			return nil
		}
		if h.size > limit {
			return &unskippableError{size: h.size}
		}
		if err := p.r.discard(h.size); err != nil {
			return err
		}
		line, err := p.r.readLine()
		if err != nil {
			if e, ok := err.(*lineTooLongError); ok {
				p.line, p.pos = e.Tail, 0
				continue
			}
			return err
		}
		p.line, p.pos = line, 0
	}
	return nil
}

// xstring reads a quoted string or a literal.
func (p *parser) xstring() string {
	if p.peek() == '"' {
		return p.xquoted()
	}
	if p.literalAhead() {
		return string(p.xliteral(false))
	}
	p.xerrorf("expected string")
	return ""
}

// xastring reads an atom (with "]"), quoted string or literal.
func (p *parser) xastring() string {
	if p.peek() == '"' || p.literalAhead() {
		return p.xstring()
	}
	s := p.takeWhile(isAStringChar)
	if s == "" {
		p.xerrorf("expected astring")
	}
	return s
}

// xlistMailbox reads a LIST pattern: atom with wildcards, or a string.
func (p *parser) xlistMailbox() string {
	if p.peek() == '"' || p.literalAhead() {
		return p.xstring()
	}
	s := p.takeWhile(func(c byte) bool { return isAStringChar(c) || c == '%' || c == '*' })
	if s == "" {
		p.xerrorf("expected mailbox pattern")
	}
	return s
}

// xnil reads NIL.
func (p *parser) takeNil() bool {
	if p.take("NIL") {
		if !p.atEnd() && isAtomChar(p.peek()) {
			p.pos -= 3
			return false
		}
		return true
	}
	return false
}

// xnstring reads NIL (as "") or a string.
func (p *parser) xnstring() (string, bool) {
	if p.takeNil() {
		return "", false
	}
	return p.xstring(), true
}

// numRange is a range of a sequence set; 0 stands for "*".
type numRange struct{ first, last uint32 }

// numSet is a sequence set of message numbers or UIDs (RFC 9051 9
// sequence-set), or "$", the saved search result (RFC 5182).
type numSet struct {
	ranges    []numRange
	searchRes bool
}

func (s numSet) String() string {
	if s.searchRes {
		return "$"
	}
	var b strings.Builder
	num := func(n uint32) {
		if n == 0 {
			b.WriteByte('*')
		} else {
			b.WriteString(strconv.FormatUint(uint64(n), 10))
		}
	}
	for i, r := range s.ranges {
		if i > 0 {
			b.WriteByte(',')
		}
		num(r.first)
		if r.last != r.first {
			b.WriteByte(':')
			num(r.last)
		}
	}
	return b.String()
}

func (p *parser) xseqNumber() uint32 {
	if p.take("*") {
		return 0
	}
	return p.xnznumber()
}

// xnumSet reads a sequence-set, or "$" when allowed.
func (p *parser) xnumSet(allowSearchRes bool) numSet {
	if allowSearchRes && p.take("$") {
		return numSet{searchRes: true}
	}
	var s numSet
	for {
		r := numRange{first: p.xseqNumber()}
		r.last = r.first
		if p.take(":") {
			r.last = p.xseqNumber()
		}
		s.ranges = append(s.ranges, r)
		if !p.take(",") {
			return s
		}
	}
}

// xflag reads a flag: a system flag ("\Seen") or a keyword atom.
func (p *parser) xflag() string {
	if p.take(`\`) {
		return `\` + p.xatom()
	}
	return p.xatom()
}

// xflagList reads "(" [flag *(SP flag)] ")".
func (p *parser) xflagList() []string {
	p.xtake("(")
	var flags []string
	for !p.take(")") {
		if len(flags) > 0 {
			p.xspace()
		}
		flags = append(flags, p.xflag())
	}
	return flags
}

// xatomList reads "(" [atom *(SP atom)] ")", upper-cased.
func (p *parser) xatomList() []string {
	p.xtake("(")
	var l []string
	for !p.take(")") {
		if len(l) > 0 {
			p.xspace()
		}
		l = append(l, strings.ToUpper(p.xatom()))
	}
	return l
}

// dateTimeLayout is IMAP's date-time (RFC 9051 9), without its quotes:
// "dd-Mon-yyyy hh:mm:ss +zzzz", the day padded with a space.
const dateTimeLayout = "_2-Jan-2006 15:04:05 -0700"

// xdateTime reads a quoted date-time (RFC 9051 9).
func (p *parser) xdateTime() time.Time {
	s := p.xquoted()
	t, err := time.Parse(dateTimeLayout, s)
	if err != nil {
		p.xerrorf("bad date-time %q", s)
	}
	return t
}

// xdate reads a search date (RFC 9051 9 date): d-Mon-yyyy, maybe quoted.
func (p *parser) xdate() time.Time {
	var s string
	if p.peek() == '"' {
		s = p.xquoted()
	} else {
		s = p.takeWhile(func(c byte) bool { return c != ' ' && c != ')' })
	}
	t, err := time.Parse("2-Jan-2006", s)
	if err != nil {
		p.xerrorf("bad date %q", s)
	}
	return t
}
