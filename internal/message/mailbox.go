package message

import (
	"errors"
	"fmt"
	"strings"
)

// ParseMailboxList parses a mailbox-list (RFC 5322 3.4), the value of a
// From field (3.6.2) unfolded, strictly: where ParseAddressList reads
// junk as mail clients display it, this one refuses what the grammar
// does not allow, so that a server deciding who may send reads the same
// addresses as any other strict reader. It refuses groups, source routes
// (RFC 5322 4.4), empty list elements, a missing comma, an unterminated
// quoted string, comment or angle-addr, white space or comments inside
// an addr-spec, and more than max mailboxes. It
// takes the obsolete phrase with dots ("John Q. Public", 4.1) and 8-bit
// text (RFC 6532 3.2). A quoted local part is returned unquoted.
func ParseMailboxList(s string, max int) ([]Address, error) {
	p := mailboxParser{s: s}
	var out []Address
	for {
		if len(out) == max {
			return nil, fmt.Errorf("more than %d addresses", max)
		}
		a, err := p.mailbox()
		if err != nil {
			return nil, err
		}
		out = append(out, a)
		if err := p.skipCFWS(); err != nil {
			return nil, err
		}
		switch {
		case p.s == "":
			return out, nil
		case p.s[0] == ',':
			p.s = p.s[1:]
		default:
			return nil, fmt.Errorf("%q after <%s@%s>: addresses are separated by commas", p.s[0], a.Mailbox, a.Host)
		}
	}
}

// mailboxParser reads a mailbox-list from s, which holds what is left.
type mailboxParser struct{ s string }

// mailbox reads a name-addr or an addr-spec (RFC 5322 3.4).
func (p *mailboxParser) mailbox() (Address, error) {
	var words []string
	for {
		if err := p.skipCFWS(); err != nil {
			return Address{}, err
		}
		if p.s == "" {
			if len(words) == 0 {
				return Address{}, errors.New("an empty address")
			}
			return Address{}, fmt.Errorf("%q is not an address", strings.Join(words, " "))
		}
		switch c := p.s[0]; {
		case c == '<': // RFC 5322 3.4 name-addr
			p.s = p.s[1:]
			a, err := p.addrSpec()
			if err != nil {
				return Address{}, err
			}
			if err := p.skipCFWS(); err != nil {
				return Address{}, err
			}
			if p.s == "" || p.s[0] != '>' {
				return Address{}, fmt.Errorf("<%s@%s not closed by >", a.Mailbox, a.Host)
			}
			p.s = p.s[1:]
			a.Name = strings.Join(words, " ")
			return a, nil
		case c == '@' && len(words) == 0:
			return Address{}, errors.New("an address without a local part")
		case c == '@':
			return Address{}, fmt.Errorf("%q before @ is not a local part", strings.Join(words, " "))
		case c == ':':
			return Address{}, errors.New("a group, where only mailboxes are allowed")
		case (c == ',' || c == ';' || c == '>') && len(words) > 0:
			return Address{}, fmt.Errorf("%q is not an address", strings.Join(words, " "))
		case c == ',' || c == ';' || c == '>':
			return Address{}, fmt.Errorf("%q where an address should be", c)
		}
		// A word: the start of a display name, or a bare addr-spec's
		// local part, which an "@" follows.
		rest := p.s
		w, err := p.word()
		if err != nil {
			return Address{}, err
		}
		if len(words) == 0 && strings.HasPrefix(p.s, "@") {
			p.s = rest
			return p.addrSpec()
		}
		words = append(words, w)
	}
}

// addrSpec reads local-part "@" domain (RFC 5322 3.4.1), with CFWS
// around them as the grammar allows.
func (p *mailboxParser) addrSpec() (Address, error) {
	if err := p.skipCFWS(); err != nil {
		return Address{}, err
	}
	if strings.HasPrefix(p.s, "@") {
		return Address{}, errors.New("a source route (RFC 5322 4.4)")
	}
	quoted := strings.HasPrefix(p.s, `"`)
	local, err := p.word()
	if err != nil {
		return Address{}, err
	}
	if local == "" {
		return Address{}, errors.New("an empty local part")
	}
	if !quoted && !dotAtom(local) {
		return Address{}, fmt.Errorf("%q is not a local part", local)
	}
	// The grammar allows CFWS around the "@" and the dots; no client
	// writes it, and forgiving readers (ParseAddressList among them)
	// read "a (x) @ b" as another address, or none.
	if !strings.HasPrefix(p.s, "@") {
		return Address{}, fmt.Errorf("%q has no @domain right after it", local)
	}
	p.s = p.s[1:]
	if strings.HasPrefix(p.s, "[") { // domain-literal, without obsolete quoted pairs
		end := strings.IndexAny(p.s[1:], "[]\\") + 1
		if end == 0 || p.s[end] != ']' {
			return Address{}, fmt.Errorf("%s@%s: not a domain literal", local, p.s)
		}
		domain := p.s[:end+1]
		p.s = p.s[end+1:]
		return Address{Mailbox: local, Host: domain}, nil
	}
	if strings.HasPrefix(p.s, `"`) {
		return Address{}, fmt.Errorf("%s@%s: not a domain", local, p.s)
	}
	domain, err := p.word()
	if err != nil || !dotAtom(domain) {
		return Address{}, fmt.Errorf("%s@%s: not a domain", local, domain)
	}
	return Address{Mailbox: local, Host: domain}, nil
}

// word reads an atom, its dots included, or a quoted string, whose
// content it returns. A phrase may have dots (RFC 5322 4.1,
// obs-phrase); addrSpec checks its dot-atoms.
func (p *mailboxParser) word() (string, error) {
	if strings.HasPrefix(p.s, `"`) {
		var b strings.Builder
		for i := 1; i < len(p.s); i++ {
			switch c := p.s[i]; c {
			case '"':
				p.s = p.s[i+1:]
				return b.String(), nil
			case '\\':
				if i++; i == len(p.s) {
					break
				}
				b.WriteByte(p.s[i])
			default:
				b.WriteByte(c)
			}
		}
		return "", errors.New("an unterminated quoted string")
	}
	n := 0
	for n < len(p.s) && (atext(p.s[n]) || p.s[n] == '.') {
		n++
	}
	switch {
	case p.s == "":
		return "", errors.New("the end where a word should be")
	case n == 0:
		return "", fmt.Errorf("%q is not allowed here", p.s[0])
	}
	w := p.s[:n]
	p.s = p.s[n:]
	return w, nil
}

// skipCFWS skips folding white space and comments (RFC 5322 3.2.2).
func (p *mailboxParser) skipCFWS() error {
	for p.s != "" {
		switch p.s[0] {
		case ' ', '\t', '\r', '\n':
			p.s = p.s[1:]
		case '(':
			rest, ok := skipCommentEnds(p.s)
			if !ok {
				return errors.New("an unterminated comment")
			}
			p.s = rest
		default:
			return nil
		}
	}
	return nil
}

// atext says c may be in an atom (RFC 5322 3.2.3), or is a byte of
// UTF-8 (RFC 6532 3.2).
func atext(c byte) bool {
	switch {
	case c >= 0x80, 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// dotAtom says s is atoms joined by single dots (RFC 5322 3.2.3).
func dotAtom(s string) bool {
	return s != "" && s[0] != '.' && s[len(s)-1] != '.' && !strings.Contains(s, "..")
}
