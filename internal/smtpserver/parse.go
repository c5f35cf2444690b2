package smtpserver

import (
	"math"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The parsers of command lines are pure functions of the line: the
// connection reads it, they take it apart, and their errors are the
// replies the client gets.

// maxVerb is the longest command verb taken for one; a longer word is
// refused as unknown without a look at it.
const maxVerb = 16

// parseCommand splits a command line, without its line ending, into its
// verb, upper-cased (RFC 5321 2.4: verbs are case-insensitive), and the
// argument after the space that follows it. A line with a control byte is
// refused: a path or parameter holds none, and a NUL or CR in an address
// would reach the logs and the Return-Path line.
func parseCommand(line string) (verb, arg string, err error) {
	for i := 0; i < len(line); i++ {
		if c := line[i]; c < ' ' && c != '\t' || c == 0x7f {
			return "", "", reply{501, [3]int{5, 5, 2}, "control characters in command"}
		}
	}
	verb, arg, _ = strings.Cut(line, " ")
	if verb == "" || len(verb) > maxVerb {
		return "", "", reply{500, [3]int{5, 5, 2}, "syntax error: no command"}
	}
	return strings.ToUpper(verb), arg, nil
}

// path is a mailbox named by MAIL or RCPT (RFC 5321 4.1.2).
type path struct {
	// mailbox is the mailbox as the client wrote it, without the angle
	// brackets and any source route: a quoted local part keeps its quotes
	// and escapes, as Return-Path must show it ("a b"@example.org).
	mailbox string
	// local is the local part with quoting undone: "alice"@x and alice@x
	// name one mailbox (RFC 5321 4.1.2).
	local string
	// domain is empty for the null reverse path <> and for
	// <postmaster> (RFC 5321 4.5.1).
	domain string
}

// address is the path's mailbox in the form accounts are looked up by:
// the local part unquoted. Empty for the null path.
func (p path) address() string {
	if p.local == "" {
		return ""
	}
	if p.domain == "" {
		return p.local
	}
	return p.local + "@" + p.domain
}

// isPostmaster says the path is <postmaster>, without a domain, which
// every server must accept at RCPT (RFC 5321 4.5.1).
func (p path) isPostmaster() bool {
	return p.domain == "" && strings.EqualFold(p.local, "postmaster")
}

// mailArgs is what MAIL FROM carries.
type mailArgs struct {
	from path
	// size is the SIZE= parameter (RFC 1870 6), -1 when absent; 20 digits
	// are allowed, and a value past int64 reads as math.MaxInt64.
	size int64
	// utf8 says the SMTPUTF8 parameter was given (RFC 6531 3.4).
	utf8 bool
	// eightBit says BODY=8BITMIME was given (RFC 6152 2).
	eightBit bool
}

// Syntax error replies of MAIL and RCPT (RFC 3463 X.1.7, X.1.3, X.5.4).
var (
	errBadSender    = reply{501, [3]int{5, 1, 7}, "bad sender address syntax"}
	errBadRecipient = reply{501, [3]int{5, 1, 3}, "bad recipient address syntax"}
	errMailSyntax   = reply{501, [3]int{5, 5, 4}, "syntax: MAIL FROM:<address> [parameters]"}
	errRcptSyntax   = reply{501, [3]int{5, 5, 4}, "syntax: RCPT TO:<address>"}
)

// parseMail parses the argument of MAIL: FROM:<reverse-path> and the
// parameters LHLO and EHLO offer (RFC 5321 4.1.1.2): SIZE= (RFC 1870), BODY=
// 7BIT or 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531 3.4). Any other is
// refused with 555 (RFC 5321 4.1.1.11).
func parseMail(arg string) (mailArgs, error) {
	rest, ok := cutPrefixFold(arg, "FROM:")
	if !ok {
		return mailArgs{}, errMailSyntax
	}
	p, rest, err := parsePath(strings.TrimLeft(rest, " "), errBadSender)
	if err != nil {
		return mailArgs{}, err
	}
	if p.domain == "" && p.local != "" {
		return mailArgs{}, errBadSender // <postmaster> is for RCPT only
	}
	m := mailArgs{from: p, size: -1}
	// A parameter given again with the same value is taken once:
	// Python's smtplib adds SMTPUTF8 and BODY=8BITMIME to those its
	// caller gave for an internationalized message, naming them twice.
	// Two values are refused, as neither can be chosen.
	seen := map[string]string{}
	for _, param := range strings.Fields(rest) {
		key, value, hasValue := strings.Cut(param, "=")
		key = strings.ToUpper(key)
		if prev, ok := seen[key]; ok {
			if !strings.EqualFold(prev, param) {
				return mailArgs{}, reply{501, [3]int{5, 5, 4}, key + " given twice"}
			}
			continue
		}
		seen[key] = param
		switch key {
		case "SIZE":
			size, ok := parseSize(value)
			if !ok {
				return mailArgs{}, reply{501, [3]int{5, 5, 4}, "SIZE takes a number of octets"}
			}
			m.size = size
		case "BODY":
			switch strings.ToUpper(value) {
			case "7BIT":
			case "8BITMIME":
				m.eightBit = true
			case "BINARYMIME": // RFC 3030 3: not offered
				return mailArgs{}, reply{555, [3]int{5, 5, 4}, "BODY=BINARYMIME not supported"}
			default:
				return mailArgs{}, reply{501, [3]int{5, 5, 4}, "BODY is 7BIT or 8BITMIME"}
			}
		case "SMTPUTF8":
			if hasValue {
				return mailArgs{}, reply{501, [3]int{5, 5, 4}, "SMTPUTF8 takes no value"}
			}
			m.utf8 = true
		case "AUTH":
			// RFC 4954 5: the identity a trusted relay vouches for;
			// submission knows its client's from AUTH, so it is read
			// and ignored, as RFC 4954 5 allows.
			if value == "" {
				return mailArgs{}, reply{501, [3]int{5, 5, 4}, "AUTH takes a mailbox or <>"}
			}
		default:
			return mailArgs{}, reply{555, [3]int{5, 5, 4}, "MAIL parameter not supported"}
		}
	}
	return m, nil
}

// parseSize reads SIZE='s value: 1 to 20 digits (RFC 1870 6:
// size-value ::= 1*20DIGIT), saturating at math.MaxInt64.
func parseSize(s string) (int64, bool) {
	if s == "" || len(s) > 20 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		d := int64(s[i] - '0')
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		if n > (math.MaxInt64-d)/10 {
			n = math.MaxInt64
			continue
		}
		n = n*10 + d
	}
	return n, true
}

// parseRcpt parses the argument of RCPT: TO:<forward-path>, a mailbox or
// <postmaster> (RFC 5321 4.1.1.3). LHLO and EHLO offer no RCPT parameters, so any
// is refused with 555 (RFC 5321 4.1.1.11).
func parseRcpt(arg string) (path, error) {
	rest, ok := cutPrefixFold(arg, "TO:")
	if !ok {
		return path{}, errRcptSyntax
	}
	p, rest, err := parsePath(strings.TrimLeft(rest, " "), errBadRecipient)
	if err != nil {
		return path{}, err
	}
	if p.local == "" {
		return path{}, errBadRecipient // <> is a sender only
	}
	if strings.TrimLeft(rest, " ") != "" {
		return path{}, reply{555, [3]int{5, 5, 4}, "RCPT parameters not supported"}
	}
	return p, nil
}

// parsePath parses a path at the start of s (RFC 5321 4.1.2) and returns
// it and what follows it, which must be empty or start with a space. The
// null path <> has an empty local part; a mailbox without a domain is
// taken only for postmaster. A source route (<@a,@b:user@host>) is read
// and dropped (RFC 5321 C). The syntax is RFC 5321's with the leniency
// mail in the wild needs: dots anywhere in an unquoted local part (RFC
// 5321's Dot-string would refuse "first..last"), underscores in domains.
// UTF-8 is allowed where RFC 6531 3.3 allows it, without controls or
// line separators (lineBreakOrControl). bad is the error for a malformed
// path.
func parsePath(s string, bad reply) (p path, rest string, err error) {
	if !strings.HasPrefix(s, "<") {
		return path{}, "", bad
	}
	s = s[1:]
	if strings.HasPrefix(s, ">") {
		rest, err := afterPath(s[1:], bad)
		return path{}, rest, err
	}
	if strings.HasPrefix(s, "@") {
		route, after, ok := strings.Cut(s, ":")
		if !ok || !validRoute(route) {
			return path{}, "", bad
		}
		s = after
	}
	local, n := scanLocal(s)
	if n == 0 {
		return path{}, "", bad
	}
	p.local = local
	p.mailbox = s[:n]
	s = s[n:]
	if strings.HasPrefix(s, "@") {
		m := scanDomain(s[1:])
		if m == 0 {
			return path{}, "", bad
		}
		p.domain = s[1 : 1+m]
		p.mailbox += s[:1+m]
		s = s[1+m:]
	} else if !p.isPostmaster() {
		return path{}, "", bad
	}
	if !strings.HasPrefix(s, ">") || !utf8.ValidString(p.mailbox) || strings.ContainsFunc(p.mailbox, lineBreakOrControl) {
		return path{}, "", bad
	}
	rest, err = afterPath(s[1:], bad)
	return p, rest, err
}

// lineBreakOrControl reports a rune no address or name that goes into a
// header field may hold: a control (C0, DEL, C1 with NEL among them) or
// Unicode's LINE and PARAGRAPH SEPARATOR. The command parser refuses C0
// controls; the others come as UTF-8 (RFC 6531 3.3), and a reader that
// splits lines the Unicode way (Python's str.splitlines, a JavaScript
// regular expression) would take them for the end of our trace field
// and what follows for a field of the client's making.
func lineBreakOrControl(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
}

// afterPath checks what follows a path's '>': nothing, or parameters
// after a space.
func afterPath(s string, bad reply) (string, error) {
	if s != "" && s[0] != ' ' {
		return "", bad
	}
	return s, nil
}

// validRoute checks a source route without its ':': one or more
// "@domain", separated by commas (RFC 5321 4.1.2 A-d-l).
func validRoute(route string) bool {
	for at := range strings.SplitSeq(route, ",") {
		if len(at) < 2 || at[0] != '@' || scanDomain(at[1:]) != len(at)-1 {
			return false
		}
	}
	return true
}

// scanLocal reads a local part at the start of s: a quoted string or a
// run of atext and dots (RFC 5321 4.1.2, RFC 6531 3.3). It returns the
// local part unquoted and how many bytes of s it took; 0 when there is
// none.
func scanLocal(s string) (string, int) {
	if !strings.HasPrefix(s, `"`) {
		n := 0
		for n < len(s) && (isAtext(s[n]) || s[n] == '.') {
			n++
		}
		return s[:n], n
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			if b.Len() == 0 {
				return "", 0
			}
			return b.String(), i + 1
		case c == '\\': // quoted-pairSMTP: %d92 %d32-126
			if i+1 == len(s) || s[i+1] < ' ' || s[i+1] > '~' {
				return "", 0
			}
			i++
			b.WriteByte(s[i])
		case c >= ' ' && c <= '~' || c >= 0x80: // qtextSMTP, UTF-8
			b.WriteByte(c)
		default:
			return "", 0
		}
	}
	return "", 0 // no closing quote
}

// isAtext reports an atext byte (RFC 5322 3.2.3), or a byte of UTF-8
// (RFC 6531 3.3).
func isAtext(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c >= 0x80:
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// scanDomain returns how many bytes at the start of s make a domain: an
// address literal in brackets (RFC 5321 4.1.3, without the angle
// brackets its dcontent would allow), or letters, digits,
// hyphens, dots, underscores and UTF-8 (RFC 6531 3.3 U-labels). 0 when
// there is none.
func scanDomain(s string) int {
	if strings.HasPrefix(s, "[") {
		for i := 1; i < len(s); i++ {
			switch c := s[i]; {
			case c == ']':
				if i == 1 {
					return 0
				}
				return i + 1
			case c < '!' || c > '~' || c == '[' || c == '\\' || c == '<' || c == '>': // dcontent
				return 0
			}
		}
		return 0
	}
	n := 0
	for n < len(s) {
		c := s[n]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c >= 0x80) {
			break
		}
		n++
	}
	return n
}

// parseBDAT parses the argument of BDAT: the chunk's size in octets and,
// for the last chunk, LAST (RFC 3030 2).
func parseBDAT(arg string) (size int64, last bool, err error) {
	fields := strings.Fields(arg)
	bad := reply{501, [3]int{5, 5, 4}, "syntax: BDAT size [LAST]"}
	if len(fields) == 0 || len(fields) > 2 {
		return 0, false, bad
	}
	size, ok := parseSize(fields[0])
	if !ok || size == math.MaxInt64 {
		return 0, false, bad
	}
	if len(fields) == 2 {
		if !strings.EqualFold(fields[1], "LAST") {
			return 0, false, bad
		}
		last = true
	}
	return size, last, nil
}

// cutPrefixFold is strings.CutPrefix with the prefix matched regardless
// of case.
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}
