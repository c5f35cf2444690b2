package autoconfig

import (
	"crypto/tls"
	"encoding/xml"
	"errors"
	"io"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/buzon-mail/buzon/internal/store"
)

// FuzzRequests sends whatever a client might to every endpoint: any
// address, Host and Autodiscover body. The server must answer 200 with a
// well-formed document, or refuse with 400, 404, 405 or 413; never fail
// otherwise. An answer for an address names it as a login takes it, in
// canonical form (store.CanonicalAccountName), and no other: read back,
// Outlook's login name and Apple's address and user names are that
// address, and Thunderbird's domain is its domain.
func FuzzRequests(f *testing.F) {
	for _, seed := range []struct{ addr, host, body string }{
		{"fay@example.org", "autoconfig.example.org", adBody("fay@example.org")},
		{hostile, "example.org", adBody(hostile)},
		{"Fay@Example.NET ", "autoconfig.example.net:80", `<Autodiscover><Request><EMailAddress>a@example.net</EMailAddress></Request></Autodiscover>`},
		{"a\x00@example.org", "<&>", `<!DOCTYPE a [<!ENTITY e "x">]><Autodiscover>&e;</Autodiscover>`},
		{"\xff@example.org", "", "<Autodiscover><Request><EMailAddress>\xff@example.org</EMailAddress>"},
		{"\ufffe@example.org", "example.org", adBody("\u0085@example.org")},
	} {
		f.Add(seed.addr, seed.host, seed.body)
	}
	s := testServer(f, nil)
	f.Fuzz(func(t *testing.T, addr, host, body string) {
		q := "?emailaddress=" + url.QueryEscape(addr)
		for _, r := range []struct {
			method, target, body string
			addr                 string // the address asked for; "" when none
		}{
			{"GET", "/mail/config-v1.1.xml" + q, "", addr},
			{"GET", "/.well-known/autoconfig/mail/config-v1.1.xml", "", ""},
			{"POST", "/autodiscover/autodiscover.xml", body, bodyAddress(body)},
			// adBody writes a character XML cannot carry as U+FFFD.
			{"POST", "/autodiscover/autodiscover.xml", adBody(addr), bodyAddress(adBody(addr))},
			{"GET", "/apple/mail.mobileconfig" + q, "", addr},
		} {
			req := httptest.NewRequest(r.method, "/", strings.NewReader(r.body))
			req.URL.Path, req.URL.RawQuery, _ = strings.Cut(r.target, "?")
			req.Host = host
			req.TLS = &tls.ConnectionState{HandshakeComplete: true} // Apple's profile is served over TLS only
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			switch w.Code {
			case 200:
				d := xml.NewDecoder(strings.NewReader(w.Body.String()))
				for {
					if _, err := d.Token(); err != nil {
						if !errors.Is(err, io.EOF) {
							t.Fatalf("%s %s: answer is not well-formed: %v", r.method, r.target, err)
						}
						break
					}
				}
				if r.addr != "" {
					checkNamed(t, r.method+" "+r.target, w.Body.Bytes(), store.CanonicalAccountName(r.addr))
				}
			case 400, 404, 405, 413:
			default:
				t.Fatalf("%s %s: status %d", r.method, r.target, w.Code)
			}
		}
	})
}

// bodyAddress is the address an Autodiscover request body names, as the
// server reads it; "" when it names none.
func bodyAddress(body string) string {
	var req adRequest
	if xml.NewDecoder(strings.NewReader(body)).Decode(&req) != nil {
		return ""
	}
	return req.Request.EMailAddress
}

// checkNamed fails t unless the answer doc names canonical: as Outlook's
// login name, Apple's address and user names, Thunderbird's domain.
func checkNamed(t *testing.T, what string, doc []byte, canonical string) {
	t.Helper()
	domain := canonical[strings.LastIndexByte(canonical, '@')+1:]
	var got []string
	var want []string
	switch {
	case strings.Contains(what, "/apple/"):
		mail := plist(t, doc)["PayloadContent"].([]any)[0].(map[string]any)
		for _, key := range []string{"EmailAddress", "IncomingMailServerUsername", "OutgoingMailServerUsername", "PayloadDisplayName"} {
			s, _ := mail[key].(string)
			got, want = append(got, s), append(want, canonical)
		}
	case strings.Contains(what, "/autodiscover/"):
		var d adDocument
		if err := xml.Unmarshal(doc, &d); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		for _, p := range d.Response.Account.Protocols {
			got, want = append(got, p.LoginName), append(want, canonical)
		}
	default:
		var c clientConfig
		if err := xml.Unmarshal(doc, &c); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		got, want = append(got, c.Provider.ID), append(want, domain)
	}
	if len(got) == 0 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s: the answer names %q, want %q", what, got, want)
	}
}
