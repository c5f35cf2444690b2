package smtpserver

import (
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/buzon-mail/buzon/internal/server"
)

// received is the Received field an SMTP server puts above a message it
// takes (RFC 5321 4.4), folded, CRLF included:
//
//	Received: from client.example.net ([192.0.2.1])
//		by mx.example.org (buzon) with ESMTPS (TLS 1.3 TLS_AES_128_GCM_SHA256)
//		id 3KQ7PZ6Q2V5T for <alice@example.org>; Fri, 27 Nov 2026 11:20:00 +0000
//
// The client's address is the one the listener reports: with the PROXY
// protocol, the client's behind the load balancer. The "for" clause names
// the recipient only when there is one, so that a message's other
// recipients do not learn who else received it (RFC 5321 7.2).
func (c *conn) received(now time.Time) string {
	var b strings.Builder
	b.WriteString("Received: from " + fromClause(c.helo, server.AddrOf(c.raw.RemoteAddr())))
	b.WriteString("\r\n\tby " + c.srv.cfg.Hostname + " (buzon) with " + c.protocolName())
	if c.tls != "" {
		b.WriteString(" (" + c.tls + ")") // a comment, as other servers name it
	}
	b.WriteString("\r\n\tid " + c.id)
	if len(c.rcpts) == 1 {
		rcpt := c.rcpts[0].addr
		if !strings.Contains(rcpt, "@") {
			// <postmaster>, which RCPT allows but a Mailbox in the
			// "for" clause does not: the address it reached.
			rcpt = c.rcpts[0].key
		}
		b.WriteString(" for <" + rcpt + ">")
	}
	b.WriteString("; " + now.Format(time.RFC1123Z) + "\r\n")
	return b.String()
}

// fromClause is what follows "from" in a Received field: the HELO name
// and the client's address literal in a comment, "client.example.net
// ([192.0.2.1])". RFC 5321 4.4: From-domain is a domain or an address
// literal; a HELO name that is neither goes in the comment, escaped.
func fromClause(helo string, ip netip.Addr) string {
	lit := addressLiteral(ip)
	if validHelo(helo) {
		return helo + " (" + lit + ")"
	}
	return lit + " (helo=" + commentText(helo) + ")"
}

// protocolName is the Received field's "with" (RFC 3848; RFC 6531 3.7.3
// for a transaction with SMTPUTF8): SMTP after HELO, ESMTP after EHLO, an
// S after STARTTLS, an A at the end after AUTH.
func (c *conn) protocolName() string {
	name := "SMTP"
	switch {
	case c.utf8:
		name = "UTF8SMTP"
	case c.esmtp || c.tls != "":
		name = "ESMTP"
	}
	if c.tls != "" {
		name += "S"
	}
	if c.account.ID != 0 {
		name += "A" // RFC 3848 2: authenticated, ESMTPSA
	}
	return name
}

// addressLiteral is an IP address as RFC 5321 4.1.3 writes it:
// [192.0.2.1], [IPv6:2001:db8::1]; "[unknown]" for a connection with
// none (a unix socket).
func addressLiteral(ip netip.Addr) string {
	switch {
	case !ip.IsValid():
		return "[unknown]"
	case ip.Is4():
		return "[" + ip.String() + "]"
	}
	return "[IPv6:" + ip.String() + "]"
}

// validHelo says the HELO name can stand as the Received field's
// From-domain: a domain as scanDomain reads them, or an address literal
// of letters, digits, dots, colons and hyphens ([192.0.2.1],
// [IPv6:2001:db8::1]), nothing a comment or a header could be made of.
func validHelo(name string) bool {
	if inner, ok := strings.CutPrefix(name, "["); ok {
		inner, ok = strings.CutSuffix(inner, "]")
		return ok && inner != "" && strings.Trim(inner, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:-") == ""
	}
	return name != "" && scanDomain(name) == len(name) && !strings.HasPrefix(name, ".") && !strings.HasPrefix(name, "-") &&
		utf8.ValidString(name) && !strings.ContainsFunc(name, lineBreakOrControl)
}

// commentText makes s safe inside a comment of a header field
// (RFC 5322 3.2.2): parentheses and backslashes are escaped; a byte that
// is not UTF-8, a control (tab included) or a line separator becomes "?",
// so the field stays one line of UTF-8 to every reader.
func commentText(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '(' || r == ')' || r == '\\':
			b.WriteByte('\\')
		case r == utf8.RuneError || lineBreakOrControl(r):
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// hopCounter counts the Received fields of a message's header as its data
// streams past, for the loop detection of RFC 5321 6.3. It looks at the
// start of each header line, and at nothing once the header has ended.
type hopCounter struct {
	// count is the number of Received fields so far.
	count int
	// body says the empty line that ends the header has passed.
	body bool
	// start holds the start of the current line, n bytes of it, and long
	// says the line has more than start holds.
	start [16]byte
	n     int
	long  bool
}

// scan takes the next piece of the message.
func (h *hopCounter) scan(p []byte) {
	for _, ch := range p {
		if h.body {
			return
		}
		if ch != '\n' {
			if h.n < len(h.start) {
				h.start[h.n] = ch
				h.n++
			} else {
				h.long = true
			}
			continue
		}
		line := strings.TrimRight(string(h.start[:h.n]), "\r")
		switch {
		case line == "" && !h.long:
			h.body = true
		case isReceived(line):
			h.count++
		}
		h.n, h.long = 0, false
	}
}

// isReceived says a header line starts a Received field: its name, any
// case, then a colon, with the spaces RFC 5322 4.5's obsolete syntax
// allows before it.
func isReceived(line string) bool {
	rest, ok := cutPrefixFold(line, "Received")
	return ok && strings.HasPrefix(strings.TrimLeft(rest, " \t"), ":")
}
