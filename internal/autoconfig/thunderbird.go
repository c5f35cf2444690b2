package autoconfig

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"strconv"
)

// Thunderbird's autoconfig format, clientConfig version 1.1, as its
// account setup reads it (readFromXML): the first incomingServer it can
// use is the account's, the others alternatives the person may pick
// (IMAP or POP3); an answer without an outgoingServer it rejects whole.
type clientConfig struct {
	XMLName  xml.Name      `xml:"clientConfig"`
	Version  string        `xml:"version,attr"`
	Provider emailProvider `xml:"emailProvider"`
}

type emailProvider struct {
	ID               string     `xml:"id,attr"`
	Domains          []string   `xml:"domain"`
	DisplayName      string     `xml:"displayName"`
	DisplayShortName string     `xml:"displayShortName"`
	Incoming         []tbServer `xml:"incomingServer"`
	Outgoing         []tbServer `xml:"outgoingServer"`
}

type tbServer struct {
	Type       string `xml:"type,attr"` // imap, pop3, smtp
	Hostname   string `xml:"hostname"`
	Port       int    `xml:"port"`
	SocketType string `xml:"socketType"` // SSL (implicit TLS) or STARTTLS
	// Username is a placeholder Thunderbird fills in: the whole address,
	// buzon's login name.
	Username string `xml:"username"`
	// Authentication "password-cleartext" is a password sent as it is
	// (AUTH PLAIN, LOGIN, USER/PASS), inside TLS.
	Authentication string `xml:"authentication"`
}

// thunderbird answers GET /mail/config-v1.1.xml?emailaddress=ADDR (asked
// of autoconfig.<domain>) and GET
// /.well-known/autoconfig/mail/config-v1.1.xml (asked of the domain).
// Thunderbird sends the address to both unless told not to; without one,
// the Host the request was sent to names the domain.
func (s *Server) thunderbird(w http.ResponseWriter, r *http.Request) {
	var domain string
	var err error
	if addr := r.URL.Query().Get("emailaddress"); addr != "" {
		_, domain, err = s.address(r.Context(), addr)
	} else {
		domain, err = s.hostDomain(r.Context(), r)
	}
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	p := emailProvider{ID: domain, Domains: []string{domain}, DisplayName: domain, DisplayShortName: domain}
	for _, e := range s.cfg.Incoming {
		p.Incoming = append(p.Incoming, tbEndpoint(e))
	}
	for _, e := range s.cfg.Outgoing {
		p.Outgoing = append(p.Outgoing, tbEndpoint(e))
	}
	writeXML(w, "text/xml; charset=utf-8", clientConfig{Version: "1.1", Provider: p})
}

func tbEndpoint(e Endpoint) tbServer {
	socket := "SSL"
	if e.Security == STARTTLS {
		socket = "STARTTLS"
	}
	return tbServer{Type: e.Protocol, Hostname: e.Host, Port: e.Port, SocketType: socket,
		Username: "%EMAILADDRESS%", Authentication: "password-cleartext"}
}

// writeXML answers v as an XML document of the given content type. It is
// encoded whole before anything is sent, so that a failure is a 500 and
// not half a document.
func writeXML(w http.ResponseWriter, contentType string, v any) {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(v); err != nil {
		fail(w, http.StatusInternalServerError)
		return
	}
	b.WriteByte('\n')
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.Write(b.Bytes())
}
