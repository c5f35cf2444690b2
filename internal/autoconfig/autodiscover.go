package autoconfig

import (
	"encoding/xml"
	"errors"
	"io"
	"net/http"
)

// The schemas of Outlook's POX Autodiscover (MS-OXDSCLI): the request
// names the response schema it can read, and the only one buzon answers
// in is Outlook's, whose "email" account type carries IMAP, POP3 and SMTP
// settings.
const (
	adResponseNS = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
	adOutlookNS  = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
)

// adRequest is the body Outlook (and Thunderbird, which asks too) POSTs.
// Elements are matched by local name, whatever their namespace.
type adRequest struct {
	XMLName xml.Name `xml:"Autodiscover"`
	Request struct {
		EMailAddress             string `xml:"EMailAddress"`
		AcceptableResponseSchema string `xml:"AcceptableResponseSchema"`
	} `xml:"Request"`
}

type adDocument struct {
	XMLName  xml.Name   `xml:"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006 Autodiscover"`
	Response adResponse `xml:"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a Response"`
}

type adResponse struct {
	Account adAccount `xml:"Account"`
}

type adAccount struct {
	AccountType string       `xml:"AccountType"` // "email": not Exchange
	Action      string       `xml:"Action"`      // "settings": the settings follow
	Protocols   []adProtocol `xml:"Protocol"`
}

// adProtocol is one server. SSL "on" says the connection is secured;
// Encryption says how: "SSL" implicit TLS, "TLS" STARTTLS. Outlook reads
// Encryption. Thunderbird's reader of this answer does not: with SSL on
// it takes STARTTLS on the standard plaintext ports (143, 110, 25, 587)
// and implicit TLS on any other, so that a STARTTLS server on another
// port fails there (README says so). SPA "off": no NTLM or Kerberos, a
// password inside TLS.
type adProtocol struct {
	Type           string `xml:"Type"` // IMAP, POP3, SMTP
	Server         string `xml:"Server"`
	Port           int    `xml:"Port"`
	DomainRequired string `xml:"DomainRequired"`
	LoginName      string `xml:"LoginName"`
	SPA            string `xml:"SPA"`
	SSL            string `xml:"SSL"`
	Encryption     string `xml:"Encryption"`
	AuthRequired   string `xml:"AuthRequired"`
	// UsePOPAuth "on" (SMTP only): log in to the outgoing server with the
	// incoming server's name and password.
	UsePOPAuth string `xml:"UsePOPAuth,omitempty"`
}

// autodiscover answers POST /autodiscover/autodiscover.xml: the first
// IMAP server and the first POP3 server, in the order configured, then
// the preferred submission server, each one Protocol element, with the
// address as the login name. Outlook uses the first incoming server;
// Thunderbird, which asks here too, reads all.
func (s *Server) autodiscover(w http.ResponseWriter, r *http.Request) {
	var req adRequest
	body := http.MaxBytesReader(w, r.Body, maxBody)
	err := xml.NewDecoder(body).Decode(&req)
	if err == nil {
		// What follows the document counts against the bound too.
		_, err = io.Copy(io.Discard, body)
	}
	if err != nil {
		var tooLong *http.MaxBytesError
		if errors.As(err, &tooLong) {
			fail(w, http.StatusRequestEntityTooLarge)
			return
		}
		fail(w, http.StatusBadRequest)
		return
	}
	if schema := req.Request.AcceptableResponseSchema; schema != "" && schema != adOutlookNS {
		// ActiveSync (mobilesync) and the like: nothing buzon speaks.
		fail(w, http.StatusBadRequest)
		return
	}
	addr, _, err := s.address(r.Context(), req.Request.EMailAddress)
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	acct := adAccount{AccountType: "email", Action: "settings"}
	told := map[string]bool{}
	for _, e := range s.cfg.Incoming {
		if !told[e.Protocol] {
			told[e.Protocol] = true
			acct.Protocols = append(acct.Protocols, adEndpoint(e, addr))
		}
	}
	if len(s.cfg.Outgoing) > 0 {
		p := adEndpoint(s.cfg.Outgoing[0], addr)
		p.UsePOPAuth = "on"
		acct.Protocols = append(acct.Protocols, p)
	}
	writeXML(w, "text/xml; charset=utf-8", adDocument{Response: adResponse{Account: acct}})
}

func adEndpoint(e Endpoint, login string) adProtocol {
	types := map[string]string{"imap": "IMAP", "pop3": "POP3", "smtp": "SMTP"}
	enc := "SSL"
	if e.Security == STARTTLS {
		enc = "TLS"
	}
	return adProtocol{Type: types[e.Protocol], Server: e.Host, Port: e.Port, DomainRequired: "off",
		LoginName: login, SPA: "off", SSL: "on", Encryption: enc, AuthRequired: "on"}
}
