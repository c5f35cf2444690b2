package autoconfig

import (
	"encoding/xml"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzRequests sends whatever a client might to every endpoint: any
// address, Host and Autodiscover body. The server must answer 200 with a
// well-formed document that names the address as given (or not at all),
// or refuse with 400, 404, 405 or 413; never fail otherwise.
func FuzzRequests(f *testing.F) {
	for _, seed := range []struct{ addr, host, body string }{
		{"fay@example.org", "autoconfig.example.org", adBody("fay@example.org")},
		{hostile, "example.org", adBody(hostile)},
		{"", "autoconfig.example.net:80", `<Autodiscover><Request><EMailAddress>a@example.net</EMailAddress></Request></Autodiscover>`},
		{"a\x00@example.org", "<&>", `<!DOCTYPE a [<!ENTITY e "x">]><Autodiscover>&e;</Autodiscover>`},
		{"\xff@example.org", "", "<Autodiscover><Request><EMailAddress>\xff@example.org</EMailAddress>"},
	} {
		f.Add(seed.addr, seed.host, seed.body)
	}
	s := testServer(f, nil)
	f.Fuzz(func(t *testing.T, addr, host, body string) {
		q := "?emailaddress=" + url.QueryEscape(addr)
		for _, r := range []struct{ method, target, body string }{
			{"GET", "/mail/config-v1.1.xml" + q, ""},
			{"GET", "/.well-known/autoconfig/mail/config-v1.1.xml", ""},
			{"POST", "/autodiscover/autodiscover.xml", body},
			{"GET", "/apple/mail.mobileconfig" + q, ""},
		} {
			req := httptest.NewRequest(r.method, "/", strings.NewReader(r.body))
			req.URL.Path, req.URL.RawQuery, _ = strings.Cut(r.target, "?")
			req.Host = host
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			switch w.Code {
			case 200:
				d := xml.NewDecoder(w.Body)
				for {
					if _, err := d.Token(); err != nil {
						if err.Error() != "EOF" {
							t.Fatalf("%s %s: answer is not well-formed: %v", r.method, r.target, err)
						}
						break
					}
				}
			case 400, 404, 405, 413:
			default:
				t.Fatalf("%s %s: status %d", r.method, r.target, w.Code)
			}
		}
	})
}
