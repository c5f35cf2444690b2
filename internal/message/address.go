package message

import "strings"

// maxAddresses bounds the addresses read from one field, so that a
// hostile header cannot make a huge envelope.
const maxAddresses = 10000

// addrToken is a lexical token of an address field (RFC 5322 3.2, 3.4).
type addrToken struct {
	// kind is 'a' for an atom (dots, domain literals and 8-bit bytes
	// included), 'q' for a quoted string, 'c' for a comment, 0 at the
	// end, or the special character itself: < > @ , ; :
	kind byte
	text string // the atom, or the content of a quoted string or comment
	// space tells whether white space (or a comment) came before the
	// token, which separates words of a phrase.
	space bool
}

// addrLexer splits an address field into tokens.
type addrLexer struct {
	s string
	// Scratch space for the tokens of one address, reused from one
	// address to the next.
	words, spec []addrToken
}

func (l *addrLexer) next() addrToken {
	space := false
	for l.s != "" {
		switch c := l.s[0]; c {
		case ' ', '\t', '\r', '\n':
			space = true
			l.s = l.s[1:]
		case '(':
			rest := SkipComment(l.s)
			text := strings.TrimSuffix(l.s[1:len(l.s)-len(rest)], ")")
			l.s = rest
			return addrToken{kind: 'c', text: text, space: space}
		case '"':
			var text string
			text, l.s = cutQuoted(l.s)
			return addrToken{kind: 'q', text: text, space: space}
		case '<', '>', '@', ',', ';', ':':
			l.s = l.s[1:]
			return addrToken{kind: c, space: space}
		case '[': // RFC 5322 3.4.1 domain literal
			n := strings.IndexByte(l.s, ']') + 1
			if n == 0 {
				n = len(l.s)
			}
			text := l.s[:n]
			l.s = l.s[n:]
			return addrToken{kind: 'a', text: text, space: space}
		default:
			// Every byte that ends an atom starts another case
			// above, so the atom is never empty; a stray ")" is
			// part of it.
			n := strings.IndexAny(l.s, " \t\r\n(\"<>@,;:[")
			if n < 0 {
				n = len(l.s)
			}
			text := l.s[:n]
			l.s = l.s[n:]
			return addrToken{kind: 'a', text: text, space: space}
		}
	}
	return addrToken{}
}

// ParseAddressList parses an address list (RFC 5322 3.4), an address
// field's value unfolded, into ENVELOPE addresses (RFC 9051 7.5.2). It
// never fails; junk is read the way mail clients read it:
//   - groups ("Friends: a@x, b@y;") become start and end markers, an
//     unterminated group is closed at the end;
//   - a phrase before <addr-spec> is the display name; with a bare
//     addr-spec, a comment or words before it are ("a@x (Ann)");
//   - the obsolete route of <@relay1,@relay2:user@host> is kept in Adl;
//   - a missing comma between two name-addrs is forgiven;
//   - a missing local part or domain becomes MissingMailbox or
//     MissingDomain, since IMAP reads a NIL host as a group marker;
//   - encoded words in names are left as they are (RFC 9051 7.5.2).
func ParseAddressList(s string) []Address {
	var (
		out        []Address
		lx         = addrLexer{s: s}
		inGroup    bool
		afterAngle bool // a name-addr ended and no separator came yet
	)
	for len(out) < maxAddresses {
		words, comment, stop := lx.phrase()
		switch stop.kind {
		case ':':
			if !inGroup {
				out = append(out, Address{Mailbox: phraseText(words), GroupStart: true})
				inGroup, afterAngle = true, false
				continue
			}
			// A colon inside a group is junk; read it as a separator.
			fallthrough
		case ',', ';', 0:
			// Words left after a name-addr with no "@" are junk that
			// followed it, not an address.
			if len(words) > 0 && !(afterAngle && !hasAt(words)) {
				out = append(out, addrSpecAddress(words, comment))
			}
			afterAngle = false
			if stop.kind == ';' && inGroup {
				out = append(out, Address{GroupEnd: true})
				inGroup = false
			}
		case '<':
			a := lx.angleAddr()
			a.Name = phraseText(words)
			out = append(out, a)
			afterAngle = true
		}
		if stop.kind == 0 {
			break
		}
	}
	if inGroup {
		out = append(out, Address{GroupEnd: true})
	}
	return out
}

// phrase reads words (atoms, quoted strings and "@") up to one of
// : , ; < or the end, which it returns as stop. comment is the last
// comment seen, the display name of a bare addr-spec. A stray ">" is
// skipped.
func (l *addrLexer) phrase() (words []addrToken, comment string, stop addrToken) {
	words = l.words[:0]
	defer func() { l.words = words }()
	for {
		t := l.next()
		switch t.kind {
		case 'a', 'q', '@':
			words = append(words, t)
		case 'c':
			if c := strings.TrimSpace(t.text); c != "" {
				comment = c
			}
		case '>':
		default:
			return words, comment, t
		}
	}
}

// angleAddr reads an angle-addr after its "<": an optional obsolete route
// (RFC 5322 4.4) and an addr-spec, up to ">" or the end.
func (l *addrLexer) angleAddr() Address {
	var a Address
	spec := l.spec[:0]
	defer func() { l.spec = spec }()
	for {
		t := l.next()
		switch t.kind {
		case 'a', 'q', '@':
			spec = append(spec, t)
		case ',':
			if len(spec) > 0 && spec[0].kind == '@' {
				spec = append(spec, addrToken{kind: 'a', text: ","})
			}
		case ':':
			switch {
			case len(spec) > 0 && spec[0].kind == '@' && a.Adl == "":
				a.Adl = joinTokens(spec)
				spec = spec[:0]
			case !hasAt(spec):
				// Junk before the addr-spec, such as the scheme of
				// <mailto:a@b>: joined to it, it would make another
				// address, one a reply would go to.
				spec = spec[:0]
			}
		case 'c', ';':
		default: // '>', '<', or the end
			a.Mailbox, a.Host = splitAddrSpec(spec)
			return fillMissing(a)
		}
	}
}

// addrSpecAddress makes an address of words that hold no angle-addr:
// normally a bare addr-spec, perhaps with a display name as a comment
// after it, or, in broken mail, as words before it.
func addrSpecAddress(words []addrToken, comment string) Address {
	at := -1
	for i, w := range words {
		if w.kind == '@' {
			at = i
			break
		}
	}
	if at < 0 {
		return fillMissing(Address{Name: comment, Mailbox: phraseText(words)})
	}
	// The local part is the words that touch the "@"; words before them,
	// separated by white space, are a display name.
	start := at
	for start > 0 && !words[start].space {
		start--
	}
	end := at + 1
	for end < len(words) && !words[end].space {
		end++
	}
	name := comment
	if start > 0 && name == "" {
		name = phraseText(words[:start])
	}
	mailbox, host := splitAddrSpec(words[start:end])
	return fillMissing(Address{Name: name, Mailbox: mailbox, Host: host})
}

// splitAddrSpec splits addr-spec tokens at the first "@" into local part
// and domain, each written without white space.
func splitAddrSpec(spec []addrToken) (mailbox, host string) {
	for i, t := range spec {
		if t.kind == '@' {
			return joinTokens(spec[:i]), joinTokens(spec[i+1:])
		}
	}
	return joinTokens(spec), ""
}

// joinTokens writes tokens next to each other.
func joinTokens(ts []addrToken) string {
	if len(ts) == 1 {
		return tokenText(ts[0])
	}
	var b strings.Builder
	for _, t := range ts {
		b.WriteString(tokenText(t))
	}
	return b.String()
}

// phraseText writes the words of a phrase (RFC 5322 3.2.5) separated by
// single spaces where the field had white space.
func phraseText(ts []addrToken) string {
	if len(ts) == 1 {
		return tokenText(ts[0])
	}
	var b strings.Builder
	for i, t := range ts {
		if i > 0 && t.space {
			b.WriteByte(' ')
		}
		b.WriteString(tokenText(t))
	}
	return b.String()
}

func tokenText(t addrToken) string {
	if t.kind == '@' {
		return "@"
	}
	return t.text
}

func hasAt(ts []addrToken) bool {
	for _, t := range ts {
		if t.kind == '@' {
			return true
		}
	}
	return false
}

// fillMissing puts placeholders in the missing parts of an address that
// is not a group marker.
func fillMissing(a Address) Address {
	if a.Mailbox == "" {
		a.Mailbox = MissingMailbox
	}
	if a.Host == "" {
		a.Host = MissingDomain
	}
	return a
}
