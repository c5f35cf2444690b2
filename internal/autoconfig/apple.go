package autoconfig

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// apple answers GET /apple/mail.mobileconfig?emailaddress=ADDR with a
// configuration profile that sets up the account in Mail on iOS, iPadOS
// and macOS: an unsigned XML property list whose one payload is
// com.apple.mail.managed. Its user name is the address; it holds no
// password, so the device asks for it while installing. Its identifiers
// are derived from the address, so that installing it again replaces the
// account instead of adding a second one. Apple requires an outgoing
// server in the payload: without one configured, 404. ServeHTTP answers
// it over TLS only (Config.AppleOverHTTP).
func (s *Server) apple(w http.ResponseWriter, r *http.Request) {
	addr, domain, err := s.address(r.Context(), r.URL.Query().Get("emailaddress"))
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	if len(s.cfg.Outgoing) == 0 {
		fail(w, http.StatusNotFound)
		return
	}
	out := s.cfg.Outgoing[0]
	in := s.appleIncoming()
	accountType := "EmailTypeIMAP"
	if in.Protocol == "pop3" {
		accountType = "EmailTypePOP"
	}
	// "Use SSL" is on for STARTTLS servers too: every server buzon names
	// is reached over TLS, and the key says whether TLS is required, not
	// how it starts. Apple's reference has it "designate whether the
	// server uses SSL for authentication"; Profile Manager shows it as
	// "Use SSL", MDM consoles (Ivanti) as "Require SSL". On, Mail starts
	// with the handshake on 993, 995 and 465 and sends STARTTLS first on
	// 143, 110 and 587 (Apple gives iCloud's SMTP as port 587, "SSL
	// required"); off, it may log in without TLS when the server offers
	// no STARTTLS, so that whoever strips STARTTLS from the greeting on
	// the way reads the password. The generators of mailcow (true
	// whatever the port, 587 included) and go-mail-discovery (true for
	// SSL and STARTTLS alike) say the same.
	mail := plistDict{
		{"EmailAccountDescription", addr},
		{"EmailAccountType", accountType},
		{"EmailAddress", addr},
		{"IncomingMailServerAuthentication", "EmailAuthPassword"},
		{"IncomingMailServerHostName", in.Host},
		{"IncomingMailServerPortNumber", in.Port},
		{"IncomingMailServerUseSSL", true},
		{"IncomingMailServerUsername", addr},
		{"OutgoingMailServerAuthentication", "EmailAuthPassword"},
		{"OutgoingMailServerHostName", out.Host},
		{"OutgoingMailServerPortNumber", out.Port},
		{"OutgoingMailServerUseSSL", true},
		{"OutgoingMailServerUsername", addr},
		{"OutgoingPasswordSameAsIncomingPassword", true},
		{"PayloadDescription", "The mail account " + addr},
		{"PayloadDisplayName", addr},
		{"PayloadIdentifier", profileID(domain, addr, "account")},
		{"PayloadType", "com.apple.mail.managed"},
		{"PayloadUUID", nameUUID(addr, "account")},
		{"PayloadVersion", 1},
	}
	profile := plistDict{
		{"PayloadContent", []any{mail}},
		{"PayloadDescription", "Sets up " + addr + " in Mail. The device asks for its password."},
		{"PayloadDisplayName", "Mail: " + addr},
		{"PayloadIdentifier", profileID(domain, addr, "profile")},
		{"PayloadOrganization", domain},
		{"PayloadRemovalDisallowed", false},
		{"PayloadType", "Configuration"},
		{"PayloadUUID", nameUUID(addr, "profile")},
		{"PayloadVersion", 1},
	}
	var b bytes.Buffer
	if err := writePlist(&b, profile); err != nil {
		s.log.Error("autoconfig: apple profile", "err", err)
		fail(w, http.StatusInternalServerError)
		return
	}
	// Safari hands a download of this type to the profile installer.
	w.Header().Set("Content-Type", "application/x-apple-aspen-config")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": domain + ".mobileconfig"}))
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.Write(b.Bytes())
}

// appleIncoming is the server the profile names: a profile holds one
// account, so IMAP before POP3, and implicit TLS before STARTTLS, since
// the profile cannot say which a port speaks (Mail goes by the port).
func (s *Server) appleIncoming() Endpoint {
	in := slices.Clone(s.cfg.Incoming)
	slices.SortStableFunc(in, func(a, b Endpoint) int {
		if a.Protocol != b.Protocol {
			return strings.Compare(a.Protocol, b.Protocol) // imap < pop3
		}
		return int(a.Security) - int(b.Security)
	})
	return in[0]
}

// profileID is a PayloadIdentifier in the reverse-DNS form Apple asks
// for: the domain reversed, then kind and the address's UUID, since an
// address holds characters an identifier may not.
func profileID(domain, addr, kind string) string {
	labels := strings.Split(domain, ".")
	slices.Reverse(labels)
	return strings.Join(labels, ".") + ".mail." + kind + "." + nameUUID(addr, kind)
}

// nameUUID derives a UUID from an address and what it identifies: a
// name-based UUID (version 5, SHA-1; RFC 9562 5.5) in the URL namespace,
// of "mailto:ADDR#KIND". The same address always gets the same one.
func nameUUID(addr, kind string) string {
	urlNS := [16]byte{0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}
	h := sha1.New()
	h.Write(urlNS[:])
	h.Write([]byte("mailto:" + addr + "#" + kind))
	u := h.Sum(nil)[:16]
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // the RFC 9562 variant
	x := hex.EncodeToString(u)
	return strings.ToUpper(x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:])
}

// plistDict is a property list dictionary, its keys in the order given.
type plistDict []plistEntry

type plistEntry struct {
	key   string
	value any // string, int, bool, []any or plistDict
}

// plistDoctype is the document type Apple's property lists declare.
const plistDoctype = `<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">`

// plistWriter writes an XML property list. Every string goes through
// encoding/xml's escaping; the markup around it (indentation, <true/>,
// which encoding/xml would write as <true></true>) is written as is.
type plistWriter struct {
	b     *bytes.Buffer
	enc   *xml.Encoder
	depth int
}

// writePlist writes v as an XML property list document to b.
func writePlist(b *bytes.Buffer, v plistDict) error {
	b.WriteString(xml.Header + plistDoctype + "\n<plist version=\"1.0\">")
	p := &plistWriter{b: b, enc: xml.NewEncoder(b)}
	if err := p.value(v); err != nil {
		return err
	}
	b.WriteString("\n</plist>\n")
	return nil
}

// line starts a line at the current depth.
func (p *plistWriter) line() {
	p.b.WriteString("\n" + strings.Repeat("\t", p.depth))
}

// element writes <name>text</name>, text escaped.
func (p *plistWriter) element(name, text string) error {
	p.line()
	if err := p.enc.EncodeElement(text, xml.StartElement{Name: xml.Name{Local: name}}); err != nil {
		return err
	}
	return p.enc.Flush()
}

func (p *plistWriter) value(v any) error {
	switch v := v.(type) {
	case string:
		return p.element("string", v)
	case int:
		return p.element("integer", strconv.Itoa(v))
	case bool:
		p.line()
		p.b.WriteString("<" + strconv.FormatBool(v) + "/>")
		return nil
	case []any:
		return p.container("array", len(v), func(i int) error { return p.value(v[i]) })
	case plistDict:
		return p.container("dict", len(v), func(i int) error {
			if err := p.element("key", v[i].key); err != nil {
				return err
			}
			return p.value(v[i].value)
		})
	}
	return fmt.Errorf("plist: no encoding for %T", v)
}

func (p *plistWriter) container(name string, n int, item func(int) error) error {
	p.line()
	p.b.WriteString("<" + name + ">")
	p.depth++
	for i := range n {
		if err := item(i); err != nil {
			return err
		}
	}
	p.depth--
	p.line()
	p.b.WriteString("</" + name + ">")
	return nil
}
