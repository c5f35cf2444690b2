package managesieve

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// command is one parsed command.
type command struct {
	// name is the command's keyword, upper-cased (RFC 5804 4: commands
	// are case-insensitive).
	name string
	// args are its arguments, in order.
	args []arg
}

// arg is one argument: a string, quoted or literal (RFC 5804 4), or an
// atom such as HAVESPACE's number.
type arg struct {
	s    string
	atom bool
}

// source supplies the pieces of a command: lines, and the octets of the
// literals between them.
type source interface {
	// line returns the next line without its CRLF (or bare LF), or
	// errLineTooLong, having read past it, when it is over max octets.
	line(max int) ([]byte, error)
	// literal reads n octets.
	literal(n int64) ([]byte, error)
	// discard reads and drops n octets.
	discard(n int64) error
}

// parseLimits bound what one command may carry.
type parseLimits struct {
	// maxLine is the longest line, between literals.
	maxLine int
	// maxLiteral is the largest literal taken.
	maxLiteral int64
	// maxDiscard is the largest literal read and dropped to answer a
	// refusal and go on; past it the session ends (errTooBig.fatal).
	maxDiscard int64
}

// maxArgs is the most arguments any command takes (commandSpec.maxArgs),
// and so the most literals a command whose name is unknown may carry and
// still be read to its end and refused with NO.
const maxArgs = 2

// literalsAllowed is the most literals a command of that name may carry:
// one per argument it takes (RFC 5804 2), so that no command holds more
// than its arguments' worth of memory.
func literalsAllowed(name string) int {
	if spec, ok := commands[name]; ok {
		return spec.maxArgs
	}
	return maxArgs
}

// syntaxError is a malformed command, refused with NO. The command's
// remaining lines and literals have been read.
type syntaxError struct{ msg string }

func (e syntaxError) Error() string { return e.msg }

// errTooBig is a literal larger than parseLimits.maxLiteral, answered
// with NO (QUOTA/MAXSIZE) when it was read and dropped, or, fatal, with
// BYE: a client announcing an absurd literal is not waited for.
type errTooBig struct {
	size, limit int64 // limit is parseLimits.maxLiteral
	fatal       bool
}

func (e errTooBig) Error() string { return fmt.Sprintf("literal of %d octets is too large", e.size) }

// errTooManyLiterals ends a session whose command carries more literals
// than it has arguments (literalsAllowed): refusing it and going on would
// mean reading the rest of it first, however long.
var errTooManyLiterals = errors.New("too many literals in one command")

// errLineTooLong is a line over parseLimits.maxLine.
var errLineTooLong = errors.New("line too long")

// parseCommand reads one command from src (RFC 5804 4): a keyword, then
// arguments separated by spaces, each a quoted string, a literal
// ({n} or {n+}: there is no continuation request in ManageSieve, so both
// are taken as non-synchronizing) or an atom. A malformed command is read
// to its end, so that the next one starts on a clean line.
func parseCommand(src source, lim parseLimits) (command, error) {
	p := &parser{src: src, lim: lim, maxLiterals: maxArgs}
	line, err := src.line(lim.maxLine)
	if err != nil {
		if errors.Is(err, errLineTooLong) {
			return command{}, syntaxError{"line too long"}
		}
		return command{}, err
	}
	p.line = line
	cmd, err := p.command()
	if se, ok := errors.AsType[syntaxError](err); ok {
		// The rest of the command may hold literals, whose octets must
		// not be read as commands.
		if err := p.skip(); err != nil {
			return command{}, err
		}
		return command{name: cmd.name}, se
	}
	return cmd, err
}

// parser reads one command.
type parser struct {
	src source
	lim parseLimits
	// line is the current line, pos the position in it.
	line []byte
	pos  int
	// literals counts the literals read, maxLiterals bounds them.
	literals, maxLiterals int
}

func (p *parser) command() (command, error) {
	var cmd command
	name := p.atom()
	if name == "" {
		if len(p.line) == 0 {
			return cmd, syntaxError{"empty command"}
		}
		return cmd, syntaxError{"expected a command name"}
	}
	cmd.name = strings.ToUpper(name)
	p.maxLiterals = literalsAllowed(cmd.name)
	for {
		if p.pos == len(p.line) {
			return cmd, nil
		}
		if p.line[p.pos] != ' ' {
			return cmd, syntaxError{fmt.Sprintf("unexpected %q", p.line[p.pos])}
		}
		for p.pos < len(p.line) && p.line[p.pos] == ' ' {
			p.pos++ // runs of spaces, as some clients send, count as one
		}
		if p.pos == len(p.line) {
			return cmd, nil
		}
		a, err := p.arg()
		if err != nil {
			return cmd, err
		}
		cmd.args = append(cmd.args, a)
	}
}

// arg reads one argument at p.pos.
func (p *parser) arg() (arg, error) {
	switch p.line[p.pos] {
	case '"':
		s, err := p.quoted()
		return arg{s: s}, err
	case '{':
		s, err := p.literal()
		return arg{s: s}, err
	}
	a := p.atom()
	if a == "" {
		return arg{}, syntaxError{fmt.Sprintf("unexpected %q", p.line[p.pos])}
	}
	return arg{s: a, atom: true}, nil
}

// atom reads a run of printable ASCII other than the specials.
func (p *parser) atom() string {
	start := p.pos
	for p.pos < len(p.line) {
		c := p.line[p.pos]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"{}()\`, c) >= 0 {
			break
		}
		p.pos++
	}
	return string(p.line[start:p.pos])
}

// quoted reads a quoted string (RFC 5804 4): UTF-8 without CR, LF or
// NUL, with backslash escaping only a quote and a backslash.
func (p *parser) quoted() (string, error) {
	p.pos++ // the opening quote
	var b []byte
	for p.pos < len(p.line) {
		c := p.line[p.pos]
		p.pos++
		switch c {
		case '"':
			if !utf8.Valid(b) {
				return "", syntaxError{"quoted string is not UTF-8"}
			}
			return string(b), nil
		case '\\':
			if p.pos == len(p.line) || p.line[p.pos] != '"' && p.line[p.pos] != '\\' {
				return "", syntaxError{`a backslash in a quoted string escapes only " and \`}
			}
			b = append(b, p.line[p.pos])
			p.pos++
		case 0, '\r':
			return "", syntaxError{"control character in quoted string"}
		default:
			b = append(b, c)
		}
	}
	return "", syntaxError{"unterminated quoted string"}
}

// literal reads a literal whose {n} or {n+} is at p.pos, then the line
// that follows its octets.
func (p *parser) literal() (string, error) {
	n, err := p.literalSize()
	if err != nil {
		return "", err
	}
	if p.literals++; p.literals > p.maxLiterals {
		return "", errTooManyLiterals
	}
	var data []byte
	if n > p.lim.maxLiteral {
		if n > p.lim.maxDiscard {
			return "", errTooBig{size: n, limit: p.lim.maxLiteral, fatal: true}
		}
		if err := p.src.discard(n); err != nil {
			return "", err
		}
		if err := p.nextLine(); err != nil {
			return "", err
		}
		if err := p.skip(); err != nil {
			return "", err
		}
		return "", errTooBig{size: n, limit: p.lim.maxLiteral}
	}
	if data, err = p.src.literal(n); err != nil {
		return "", err
	}
	return string(data), p.nextLine()
}

// literalSize reads "{n}" or "{n+}", which must end the line.
func (p *parser) literalSize() (int64, error) {
	rest := string(p.line[p.pos:])
	end := strings.IndexByte(rest, '}')
	if end < 0 || end != len(rest)-1 {
		return 0, syntaxError{"a literal's {size} must end the line"}
	}
	digits := strings.TrimSuffix(rest[1:end], "+")
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n < 0 || digits == "" || digits[0] == '+' || digits[0] == '-' {
		return 0, syntaxError{"bad literal size"}
	}
	p.pos = len(p.line)
	return n, nil
}

// nextLine reads the line after a literal's octets.
func (p *parser) nextLine() error {
	line, err := p.src.line(p.lim.maxLine)
	p.line, p.pos = line, 0
	if errors.Is(err, errLineTooLong) {
		// Read to its end: nothing of it is left for skip to look at.
		return syntaxError{"line too long"}
	}
	return err
}

// skip reads what is left of a malformed command: the literals its lines
// announce and the lines after them.
func (p *parser) skip() error {
	for {
		i := len(p.line) - 1
		if i < 0 || p.line[i] != '}' {
			return nil
		}
		j := strings.LastIndexByte(string(p.line), '{')
		if j < 0 {
			return nil
		}
		p.pos = j
		n, err := p.literalSize()
		if err != nil {
			return nil // not a literal: the command ends here
		}
		if p.literals++; p.literals > p.maxLiterals {
			return errTooManyLiterals
		}
		if n > p.lim.maxDiscard {
			return errTooBig{size: n, limit: p.lim.maxLiteral, fatal: true}
		}
		if err := p.src.discard(n); err != nil {
			return err
		}
		line, err := p.src.line(p.lim.maxLine)
		if errors.Is(err, errLineTooLong) {
			return nil
		}
		if err != nil {
			return err
		}
		p.line, p.pos = line, 0
	}
}
