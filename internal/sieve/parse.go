package sieve

import (
	"strconv"
	"strings"
)

// The parse tree of a script, before the checker gives it meaning
// (RFC 5228 8.2).

// argKind is the kind of an argument.
type argKind int

const (
	argStrings argKind = iota // a string or a string list
	argNumber
	argTag
)

// argument is one argument of a command or test (RFC 5228 2.6).
type argument struct {
	line int
	kind argKind
	strs []string // argStrings
	num  int64    // argNumber
	tag  string   // argTag, lower-case, without the colon
}

// node is a command or a test: an identifier, its arguments, its tests
// and, for a command, its block.
type node struct {
	line  int
	name  string // lower-case
	args  []argument
	tests []*node
	// testList tells that tests were written in parentheses, as allof,
	// anyof and not's single test may not be the other way round.
	testList bool
	block    []*node
	hasBlock bool
}

// parser reads a script (RFC 5228 8.1 lexical tokens, 8.2 grammar).
type parser struct {
	src   []byte
	pos   int
	line  int
	depth int
}

func (p *parser) errorf(line int, format string, args ...any) {
	panic(compileErrorf(line, format, args...))
}

// parse parses a whole script into its commands.
func parse(src []byte) (cmds []*node, err error) {
	defer recoverCompile(&err)
	p := &parser{src: src, line: 1}
	cmds = p.commands(false)
	return cmds, nil
}

// commands reads commands up to the end of the script or, inside a block,
// up to its closing brace.
func (p *parser) commands(inBlock bool) []*node {
	var cmds []*node
	for {
		p.skipSpace()
		if p.pos >= len(p.src) {
			if inBlock {
				p.errorf(p.line, "missing } at the end of the script")
			}
			return cmds
		}
		if p.src[p.pos] == '}' {
			if !inBlock {
				p.errorf(p.line, "unexpected }")
			}
			p.pos++
			return cmds
		}
		cmds = append(cmds, p.command())
	}
}

// command reads one command: identifier arguments (";" / block).
func (p *parser) command() *node {
	line := p.line
	name, ok := p.identifier()
	if !ok {
		p.errorf(line, "expected a command, found %s", p.describe())
	}
	n := &node{line: line, name: name}
	p.arguments(n)
	p.skipSpace()
	if p.pos >= len(p.src) {
		p.errorf(line, "missing ; after %s", name)
	}
	switch p.src[p.pos] {
	case ';':
		p.pos++
	case '{':
		p.pos++
		p.enter(line)
		n.hasBlock = true
		n.block = p.commands(true)
		p.depth--
	default:
		p.errorf(p.line, "expected ; or { after the arguments of %s, found %s", name, p.describe())
	}
	return n
}

// enter counts one level of nesting and refuses too many.
func (p *parser) enter(line int) {
	p.depth++
	if p.depth > maxNesting {
		p.errorf(line, "blocks and tests nest deeper than %d levels", maxNesting)
	}
}

// arguments reads *argument [test / test-list] into n.
func (p *parser) arguments(n *node) {
	for {
		p.skipSpace()
		if p.pos >= len(p.src) {
			return
		}
		line := p.line
		switch c := p.src[p.pos]; {
		case c == ':':
			p.pos++
			tag, ok := p.identifier()
			if !ok {
				p.errorf(line, "expected a tag name after :")
			}
			n.args = append(n.args, argument{line: line, kind: argTag, tag: tag})
		case c >= '0' && c <= '9':
			n.args = append(n.args, argument{line: line, kind: argNumber, num: p.number()})
		case c == '"' || c == '[' || p.atText():
			n.args = append(n.args, argument{line: line, kind: argStrings, strs: p.stringList()})
		case c == '(':
			p.pos++
			p.enter(line)
			n.testList = true
			for {
				n.tests = append(n.tests, p.test())
				p.skipSpace()
				if p.pos < len(p.src) && p.src[p.pos] == ',' {
					p.pos++
					continue
				}
				if p.pos < len(p.src) && p.src[p.pos] == ')' {
					p.pos++
					break
				}
				p.errorf(p.line, "expected , or ) in a test list, found %s", p.describe())
			}
			p.depth--
			return
		case isIdentStart(c):
			p.enter(line)
			n.tests = append(n.tests, p.test())
			p.depth--
			return
		default:
			return
		}
	}
}

// test reads one test: identifier arguments.
func (p *parser) test() *node {
	p.skipSpace()
	line := p.line
	name, ok := p.identifier()
	if !ok {
		p.errorf(line, "expected a test, found %s", p.describe())
	}
	n := &node{line: line, name: name}
	p.arguments(n)
	return n
}

// stringList reads a string or a bracketed list of strings.
func (p *parser) stringList() (strs []string) {
	if p.src[p.pos] != '[' {
		return []string{p.string()}
	}
	p.pos++
	for {
		p.skipSpace()
		if p.pos >= len(p.src) || (p.src[p.pos] != '"' && !p.atText()) {
			p.errorf(p.line, "expected a string in a string list, found %s", p.describe())
		}
		strs = append(strs, p.string())
		p.skipSpace()
		if p.pos < len(p.src) && p.src[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.src) && p.src[p.pos] == ']' {
			p.pos++
			return strs
		}
		p.errorf(p.line, "expected , or ] in a string list, found %s", p.describe())
	}
}

// string reads a quoted string or a multi-line text: string.
func (p *parser) string() string {
	if p.src[p.pos] == '"' {
		return p.quoted()
	}
	return p.multiline()
}

// quoted reads a quoted string (RFC 5228 2.4.2): \" and \\ are escapes,
// and any other backslash is dropped.
func (p *parser) quoted() string {
	line := p.line
	p.pos++
	var b strings.Builder
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch c {
		case '"':
			p.pos++
			return b.String()
		case '\\':
			p.pos++
			if p.pos >= len(p.src) {
				p.errorf(p.line, "the string started at line %d does not end", line)
			}
			c = p.src[p.pos]
		}
		if c == '\n' {
			p.line++
		}
		b.WriteByte(c)
		p.pos++
	}
	p.errorf(p.line, "the string started at line %d does not end", line)
	return ""
}

// atText tells whether a multi-line string starts here.
func (p *parser) atText() bool {
	const text = "text:"
	return len(p.src)-p.pos >= len(text) && strings.EqualFold(string(p.src[p.pos:p.pos+len(text)]), text)
}

// multiline reads text: up to a line holding only ".", removing the
// leading dot of lines that start with ".." (RFC 5228 2.4.2). Lines end in
// CRLF in the text, whatever the script used.
func (p *parser) multiline() string {
	line := p.line
	p.pos += len("text:")
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t') {
		p.pos++
	}
	switch {
	case p.pos < len(p.src) && p.src[p.pos] == '#':
		p.skipLine()
	case p.pos < len(p.src) && p.src[p.pos] == '\r' && p.pos+1 < len(p.src) && p.src[p.pos+1] == '\n':
		p.pos += 2
		p.line++
	case p.pos < len(p.src) && p.src[p.pos] == '\n':
		p.pos++
		p.line++
	default:
		p.errorf(line, "text: must be followed by the end of the line")
	}
	var b strings.Builder
	for p.pos < len(p.src) {
		end := p.pos
		for end < len(p.src) && p.src[end] != '\n' {
			end++
		}
		l := strings.TrimSuffix(string(p.src[p.pos:end]), "\r")
		if end == len(p.src) {
			break // no line end: not a terminated text
		}
		p.pos = end + 1
		p.line++
		if l == "." {
			return b.String()
		}
		// Dot-stuffing: the writer doubled a leading dot.
		l = strings.TrimPrefix(l, ".")
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	p.errorf(p.line, "the text: started at line %d has no line of a single . to end it", line)
	return ""
}

// number reads a number with its optional K, M or G (RFC 5228 2.4.1).
func (p *parser) number() int64 {
	line := p.line
	start := p.pos
	for p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '9' {
		p.pos++
	}
	n, err := strconv.ParseInt(string(p.src[start:p.pos]), 10, 64)
	if err != nil || n > maxNumber {
		p.errorf(line, "number %s is too large", p.src[start:p.pos])
	}
	if p.pos < len(p.src) {
		shift := 0
		switch p.src[p.pos] {
		case 'k', 'K':
			shift = 10
		case 'm', 'M':
			shift = 20
		case 'g', 'G':
			shift = 30
		}
		if shift > 0 {
			p.pos++
			n <<= shift
			if n > maxNumber {
				p.errorf(line, "number %s is too large", p.src[start:p.pos])
			}
		}
	}
	if p.pos < len(p.src) && isIdentStart(p.src[p.pos]) {
		p.errorf(line, "a number ends with a letter other than K, M or G")
	}
	return n
}

// identifier reads an identifier (RFC 5228 8.1), lower-cased since
// identifiers are case-insensitive.
func (p *parser) identifier() (string, bool) {
	if p.pos >= len(p.src) || !isIdentStart(p.src[p.pos]) {
		return "", false
	}
	start := p.pos
	for p.pos < len(p.src) && (isIdentStart(p.src[p.pos]) || p.src[p.pos] >= '0' && p.src[p.pos] <= '9') {
		p.pos++
	}
	return strings.ToLower(string(p.src[start:p.pos])), true
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

// skipSpace skips white space and comments.
func (p *parser) skipSpace() {
	for p.pos < len(p.src) {
		switch c := p.src[p.pos]; c {
		case '\n':
			p.line++
			p.pos++
		case ' ', '\t', '\r':
			p.pos++
		case '#':
			p.skipLine()
		case '/':
			if p.pos+1 >= len(p.src) || p.src[p.pos+1] != '*' {
				return
			}
			line := p.line
			p.pos += 2
			for {
				if p.pos >= len(p.src) {
					p.errorf(p.line, "the /* comment started at line %d does not end", line)
				}
				if p.src[p.pos] == '*' && p.pos+1 < len(p.src) && p.src[p.pos+1] == '/' {
					p.pos += 2
					break
				}
				if p.src[p.pos] == '\n' {
					p.line++
				}
				p.pos++
			}
		default:
			return
		}
	}
}

// skipLine skips the rest of the line, its line end included.
func (p *parser) skipLine() {
	for p.pos < len(p.src) && p.src[p.pos] != '\n' {
		p.pos++
	}
	if p.pos < len(p.src) {
		p.pos++
		p.line++
	}
}

// describe names what is at the current position, for an error.
func (p *parser) describe() string {
	if p.pos >= len(p.src) {
		return "the end of the script"
	}
	c := p.src[p.pos]
	if c < ' ' || c >= 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	return strconv.Quote(string(c))
}
