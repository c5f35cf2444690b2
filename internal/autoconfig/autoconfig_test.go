package autoconfig

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hostile is a valid account name with every character XML gives a
// meaning to that an account name may hold.
const hostile = "x<y>&'z]]>@example.org"

func testServer(t testing.TB, mod func(*Config)) *Server {
	t.Helper()
	cfg := Config{
		Incoming: []Endpoint{
			{Protocol: "imap", Host: "mail.example.org", Port: 993, Security: TLS},
			{Protocol: "imap", Host: "mail.example.org", Port: 143, Security: STARTTLS},
			{Protocol: "pop3", Host: "mail.example.org", Port: 995, Security: TLS},
		},
		Outgoing: []Endpoint{{Protocol: "smtp", Host: "smtp.example.org", Port: 587, Security: STARTTLS}},
		Domains: func(context.Context) ([]string, error) {
			return []string{"example.org", "example.net"}, nil
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// do sends one request to s, as over HTTPS, and returns the recorded
// answer.
func do(s *Server, method, target, host, body string) *httptest.ResponseRecorder {
	return doOver(s, true, method, target, host, body)
}

// doOver is do over HTTPS if secure, plain HTTP if not.
func doOver(s *Server, secure bool, method, target, host, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if host != "" {
		r.Host = host
	}
	if secure {
		r.TLS = &tls.ConnectionState{HandshakeComplete: true}
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

func adBody(addr string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(addr))
	return `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>` + b.String() + `</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>`
}

func TestThunderbird(t *testing.T) {
	s := testServer(t, nil)
	for _, tc := range []struct {
		name, target, host string
		domain             string // "" when the answer is not 200
		status             int
	}{
		{"autoconfig host, address", "/mail/config-v1.1.xml?emailaddress=fay%40example.org", "autoconfig.example.org", "example.org", 200},
		{"address decides", "/mail/config-v1.1.xml?emailaddress=Fay%40Example.NET", "autoconfig.example.org", "example.net", 200},
		{"hostile address", "/mail/config-v1.1.xml?emailaddress=" + strings.ReplaceAll(hostile, "&", "%26"), "autoconfig.example.org", "example.org", 200},
		{"autoconfig host, no address", "/mail/config-v1.1.xml", "autoconfig.example.org:80", "example.org", 200},
		{"well-known, no address", "/.well-known/autoconfig/mail/config-v1.1.xml", "example.net", "example.net", 200},
		{"well-known, address", "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=a%40example.net", "example.net", "example.net", 200},
		{"other domain", "/mail/config-v1.1.xml?emailaddress=fay%40example.com", "autoconfig.example.org", "", 404},
		{"other host", "/mail/config-v1.1.xml", "autoconfig.example.com", "", 404},
		{"hostile host", "/mail/config-v1.1.xml", "<x>&", "", 404},
		{"subdomain is not the domain", "/mail/config-v1.1.xml?emailaddress=a%40sub.example.org", "", "", 404},
		{"no local part", "/mail/config-v1.1.xml?emailaddress=%40example.org", "", "", 400},
		{"no domain", "/mail/config-v1.1.xml?emailaddress=fay", "", "", 400},
		{"space", "/mail/config-v1.1.xml?emailaddress=f+y%40example.org", "", "", 400},
		{"control character", "/mail/config-v1.1.xml?emailaddress=f%00y%40example.org", "", "", 400},
		{"quote", "/mail/config-v1.1.xml?emailaddress=%22f%22%40example.org", "", "", 400},
		{"too long", "/mail/config-v1.1.xml?emailaddress=" + strings.Repeat("a", 400) + "%40example.org", "", "", 400},
		{"path with a slash more", "/mail//config-v1.1.xml", "autoconfig.example.org", "", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := do(s, "GET", tc.target, tc.host, "")
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if tc.status != 200 {
				if body := w.Body.String(); body != http.StatusText(tc.status)+"\n" {
					t.Errorf("refusal says more than its status: %q", body)
				}
				return
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/xml") {
				t.Errorf("Content-Type %q: Thunderbird parses text/xml and application/xml only", ct)
			}
			var c clientConfig
			if err := xml.Unmarshal(w.Body.Bytes(), &c); err != nil {
				t.Fatalf("answer is not XML: %v\n%s", err, w.Body)
			}
			want := clientConfig{XMLName: xml.Name{Local: "clientConfig"}, Version: "1.1", Provider: emailProvider{
				ID: tc.domain, Domains: []string{tc.domain}, DisplayName: tc.domain, DisplayShortName: tc.domain,
				Incoming: []tbServer{
					{"imap", "mail.example.org", 993, "SSL", "%EMAILADDRESS%", "password-cleartext"},
					{"imap", "mail.example.org", 143, "STARTTLS", "%EMAILADDRESS%", "password-cleartext"},
					{"pop3", "mail.example.org", 995, "SSL", "%EMAILADDRESS%", "password-cleartext"},
				},
				Outgoing: []tbServer{{"smtp", "smtp.example.org", 587, "STARTTLS", "%EMAILADDRESS%", "password-cleartext"}},
			}}
			if !equalXML(c, want) {
				t.Errorf("answer\n%s\nwant %+v", w.Body, want)
			}
		})
	}
}

func equalXML(a, b any) bool {
	x, _ := xml.Marshal(a)
	y, _ := xml.Marshal(b)
	return bytes.Equal(x, y)
}

// TestThunderbirdWithoutOutgoing: with no submission server configured,
// the answer has no outgoingServer (Thunderbird then goes on to its
// other sources; README says so).
func TestThunderbirdWithoutOutgoing(t *testing.T) {
	s := testServer(t, func(c *Config) { c.Outgoing = nil })
	w := do(s, "GET", "/mail/config-v1.1.xml?emailaddress=fay%40example.org", "", "")
	var c clientConfig
	if err := xml.Unmarshal(w.Body.Bytes(), &c); err != nil || w.Code != 200 {
		t.Fatalf("%d %v\n%s", w.Code, err, w.Body)
	}
	if len(c.Provider.Outgoing) != 0 || len(c.Provider.Incoming) != 3 {
		t.Errorf("servers: %s", w.Body)
	}
}

func TestAutodiscover(t *testing.T) {
	s := testServer(t, nil)
	for _, tc := range []struct {
		name, path, body string
		login            string // "" when the answer is not 200
		status           int
	}{
		{"outlook", "/autodiscover/autodiscover.xml", adBody("Fay@Example.org"), "fay@example.org", 200},
		{"capitalised path", "/Autodiscover/Autodiscover.xml", adBody("fay@example.org"), "fay@example.org", 200},
		{"upper-case path", "/AUTODISCOVER/AUTODISCOVER.XML", adBody("fay@example.org"), "fay@example.org", 200},
		{"hostile address", "/autodiscover/autodiscover.xml", adBody(hostile), hostile, 200},
		{"no schema named", "/autodiscover/autodiscover.xml",
			`<Autodiscover><Request><EMailAddress>fay@example.net</EMailAddress></Request></Autodiscover>`, "fay@example.net", 200},
		{"other domain", "/autodiscover/autodiscover.xml", adBody("fay@example.com"), "", 404},
		{"invalid address", "/autodiscover/autodiscover.xml", adBody("fay"), "", 400},
		{"no address", "/autodiscover/autodiscover.xml", `<Autodiscover><Request/></Autodiscover>`, "", 400},
		{"empty body", "/autodiscover/autodiscover.xml", "", "", 400},
		{"not XML", "/autodiscover/autodiscover.xml", "EMailAddress=fay@example.org", "", 400},
		{"other root", "/autodiscover/autodiscover.xml", `<Discover><Request><EMailAddress>fay@example.org</EMailAddress></Request></Discover>`, "", 400},
		{"ActiveSync schema", "/autodiscover/autodiscover.xml", strings.Replace(adBody("fay@example.org"), "outlook/responseschema", "mobilesync/responseschema", 1), "", 400},
		{"entity", "/autodiscover/autodiscover.xml",
			`<!DOCTYPE a [<!ENTITY e "fay@example.org">]><Autodiscover><Request><EMailAddress>&e;</EMailAddress></Request></Autodiscover>`, "", 400},
		{"too long", "/autodiscover/autodiscover.xml", adBody("fay@example.org") + strings.Repeat(" ", maxBody), "", 413},
		{"too long inside", "/autodiscover/autodiscover.xml", strings.Replace(adBody("fay@example.org"), "<Request>", "<Request>"+strings.Repeat("<a/>", maxBody), 1), "", 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := do(s, "POST", tc.path, "autodiscover.example.org", tc.body)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if tc.status != 200 {
				return
			}
			var d adDocument
			if err := xml.Unmarshal(w.Body.Bytes(), &d); err != nil {
				t.Fatalf("answer is not XML in Autodiscover's namespaces: %v\n%s", err, w.Body)
			}
			p := func(typ string, host string, port int, enc string) adProtocol {
				return adProtocol{Type: typ, Server: host, Port: port, DomainRequired: "off", LoginName: tc.login,
					SPA: "off", SSL: "on", Encryption: enc, AuthRequired: "on"}
			}
			smtp := p("SMTP", "smtp.example.org", 587, "TLS")
			smtp.UsePOPAuth = "on"
			want := adAccount{AccountType: "email", Action: "settings", Protocols: []adProtocol{
				p("IMAP", "mail.example.org", 993, "SSL"), p("POP3", "mail.example.org", 995, "SSL"), smtp}}
			if !equalXML(d.Response.Account, want) {
				t.Errorf("answer\n%s\nwant %+v", w.Body, want)
			}
		})
	}
}

// plist reads an XML property list into Go values: map[string]any,
// []any, string, int64, bool. It fails on anything else, so that a
// malformed profile fails the test.
func plist(t *testing.T, doc []byte) map[string]any {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	var value func(start xml.StartElement) (any, error)
	value = func(start xml.StartElement) (any, error) {
		switch start.Name.Local {
		case "string", "integer", "key":
			var s string
			if err := d.DecodeElement(&s, &start); err != nil {
				return nil, err
			}
			if start.Name.Local == "integer" {
				var n int64
				_, err := fmt.Sscan(s, &n)
				return n, err
			}
			return s, nil
		case "true", "false":
			return start.Name.Local == "true", d.Skip()
		case "array", "dict":
			var items []any
			for {
				tok, err := d.Token()
				if err != nil {
					return nil, err
				}
				switch tok := tok.(type) {
				case xml.StartElement:
					v, err := value(tok)
					if err != nil {
						return nil, err
					}
					items = append(items, v)
				case xml.EndElement:
					if start.Name.Local == "array" {
						return items, nil
					}
					m := map[string]any{}
					for i := 0; i+1 < len(items); i += 2 {
						m[items[i].(string)] = items[i+1]
					}
					if len(items)%2 != 0 {
						return nil, errors.New("dict with a key and no value")
					}
					return m, nil
				}
			}
		}
		return nil, errors.New("unknown plist element " + start.Name.Local)
	}
	for {
		tok, err := d.Token()
		if err != nil {
			t.Fatalf("profile: %v\n%s", err, doc)
		}
		if start, ok := tok.(xml.StartElement); ok && start.Name.Local == "dict" {
			v, err := value(start)
			if err != nil {
				t.Fatalf("profile: %v\n%s", err, doc)
			}
			return v.(map[string]any)
		}
	}
}

var uuidRE = regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-5[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$`)

func TestApple(t *testing.T) {
	s := testServer(t, nil)
	get := func(addr string) *httptest.ResponseRecorder {
		return do(s, "GET", "/apple/mail.mobileconfig?emailaddress="+strings.NewReplacer("&", "%26", "@", "%40").Replace(addr), "mail.example.org", "")
	}
	w := get(hostile)
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/x-apple-aspen-config" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := w.Header().Get("Content-Disposition"); cd != "attachment; filename=example.org.mobileconfig" {
		t.Errorf("Content-Disposition %q", cd)
	}
	if !bytes.Contains(w.Body.Bytes(), []byte(`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN"`)) {
		t.Errorf("no plist DOCTYPE:\n%s", w.Body)
	}
	profile := plist(t, w.Body.Bytes())
	mail := profile["PayloadContent"].([]any)[0].(map[string]any)
	for key, want := range map[string]any{
		"EmailAccountType":                       "EmailTypeIMAP",
		"EmailAddress":                           hostile,
		"IncomingMailServerAuthentication":       "EmailAuthPassword",
		"IncomingMailServerHostName":             "mail.example.org",
		"IncomingMailServerPortNumber":           int64(993),
		"IncomingMailServerUseSSL":               true,
		"IncomingMailServerUsername":             hostile,
		"OutgoingMailServerHostName":             "smtp.example.org",
		"OutgoingMailServerPortNumber":           int64(587),
		"OutgoingMailServerUseSSL":               true,
		"OutgoingMailServerUsername":             hostile,
		"OutgoingPasswordSameAsIncomingPassword": true,
		"PayloadType":                            "com.apple.mail.managed",
		"PayloadVersion":                         int64(1),
	} {
		if mail[key] != want {
			t.Errorf("%s = %#v, want %#v", key, mail[key], want)
		}
	}
	for _, key := range []string{"IncomingPassword", "OutgoingPassword"} {
		if _, ok := mail[key]; ok {
			t.Errorf("the profile holds %s", key)
		}
	}
	if profile["PayloadType"] != "Configuration" || profile["PayloadVersion"] != int64(1) {
		t.Errorf("profile: %v", profile)
	}
	ids := func(p map[string]any) []string {
		m := p["PayloadContent"].([]any)[0].(map[string]any)
		return []string{p["PayloadUUID"].(string), p["PayloadIdentifier"].(string), m["PayloadUUID"].(string), m["PayloadIdentifier"].(string)}
	}
	first := ids(profile)
	for _, u := range []string{first[0], first[2]} {
		if !uuidRE.MatchString(u) {
			t.Errorf("PayloadUUID %q is not an upper-case version 5 UUID", u)
		}
	}
	if first[0] == first[2] || first[1] == first[3] {
		t.Errorf("profile and payload share an identifier: %q", first)
	}
	// Installing again replaces: the same address, the same identifiers;
	// another address, others.
	if again := ids(plist(t, get(hostile).Body.Bytes())); strings.Join(again, " ") != strings.Join(first, " ") {
		t.Errorf("identifiers changed between requests: %q, then %q", first, again)
	}
	if upper := ids(plist(t, get(strings.ToUpper(hostile)).Body.Bytes())); strings.Join(upper, " ") != strings.Join(first, " ") {
		t.Errorf("identifiers depend on the address's case: %q, then %q", first, upper)
	}
	other := ids(plist(t, get("fay@example.org").Body.Bytes()))
	for i := range other {
		if other[i] == first[i] {
			t.Errorf("two addresses share identifier %q", other[i])
		}
	}
	if !strings.HasPrefix(first[1], "org.example.") {
		t.Errorf("PayloadIdentifier %q is not in reverse-DNS form", first[1])
	}

	for _, tc := range []struct {
		name, target string
		status       int
	}{
		{"no address", "/apple/mail.mobileconfig", 400},
		{"invalid", "/apple/mail.mobileconfig?emailaddress=fay", 400},
		{"other domain", "/apple/mail.mobileconfig?emailaddress=fay%40example.com", 404},
	} {
		if w := do(s, "GET", tc.target, "mail.example.org", ""); w.Code != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, w.Code, tc.status)
		}
	}
}

// TestAppleChoosesIMAPOverTLS: a profile holds one account: IMAP before
// POP3, implicit TLS before STARTTLS, whatever the order configured; TLS
// is required ("Use SSL") whichever way it starts, so that nobody on the
// way can strip STARTTLS and read the password.
func TestAppleChoosesIMAPOverTLS(t *testing.T) {
	for _, tc := range []struct {
		name     string
		incoming []Endpoint
		typ      string
		port     int64
		ssl      bool
	}{
		{"pop3 first", []Endpoint{{"pop3", "h", 995, TLS}, {"imap", "h", 143, STARTTLS}, {"imap", "h", 993, TLS}}, "EmailTypeIMAP", 993, true},
		{"starttls only", []Endpoint{{"imap", "h", 143, STARTTLS}}, "EmailTypeIMAP", 143, true},
		{"pop3 only", []Endpoint{{"pop3", "h", 110, STARTTLS}, {"pop3", "h", 995, TLS}}, "EmailTypePOP", 995, true},
	} {
		s := testServer(t, func(c *Config) { c.Incoming = tc.incoming })
		mail := plist(t, do(s, "GET", "/apple/mail.mobileconfig?emailaddress=fay%40example.org", "", "").Body.Bytes())["PayloadContent"].([]any)[0].(map[string]any)
		if mail["EmailAccountType"] != tc.typ || mail["IncomingMailServerPortNumber"] != tc.port || mail["IncomingMailServerUseSSL"] != tc.ssl {
			t.Errorf("%s: %v %v %v", tc.name, mail["EmailAccountType"], mail["IncomingMailServerPortNumber"], mail["IncomingMailServerUseSSL"])
		}
		if mail["OutgoingMailServerPortNumber"] != int64(587) || mail["OutgoingMailServerUseSSL"] != true {
			t.Errorf("%s: outgoing STARTTLS server on %v, Use SSL %v: TLS not required", tc.name, mail["OutgoingMailServerPortNumber"], mail["OutgoingMailServerUseSSL"])
		}
	}
}

// TestAppleOnlyOverTLS: the profile, which the device trusts whatever
// it holds and which carries no signature, is not served over plain
// HTTP, where anyone on the way could swap it, unless AppleOverHTTP says
// that a proxy terminated TLS in front.
func TestAppleOnlyOverTLS(t *testing.T) {
	const target = "/apple/mail.mobileconfig?emailaddress=fay%40example.org"
	for _, tc := range []struct {
		name     string
		overHTTP bool
		secure   bool
		method   string
		status   int
	}{
		{"HTTPS", false, true, "GET", 200},
		{"HTTP", false, false, "GET", 404},
		{"HTTP, HEAD", false, false, "HEAD", 404},
		{"HTTP, wrong method", false, false, "POST", 404},
		{"HTTP behind a TLS proxy", true, false, "GET", 200},
		{"HTTPS, HTTP allowed too", true, true, "GET", 200},
	} {
		s := testServer(t, func(c *Config) { c.AppleOverHTTP = tc.overHTTP })
		w := doOver(s, tc.secure, tc.method, target, "mail.example.org", "")
		if w.Code != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, w.Code, tc.status)
		}
		if tc.status == 404 && w.Body.String() != "Not Found\n" {
			t.Errorf("%s: the refusal says more than its status: %q", tc.name, w.Body)
		}
	}
	// The other answers are the same over HTTP and HTTPS.
	s := testServer(t, nil)
	if a, b := doOver(s, false, "GET", "/mail/config-v1.1.xml?emailaddress=fay%40example.org", "", ""), do(s, "GET", "/mail/config-v1.1.xml?emailaddress=fay%40example.org", "", ""); a.Code != 200 || a.Body.String() != b.Body.String() {
		t.Errorf("Thunderbird's answer over HTTP: %d\n%s", a.Code, a.Body)
	}
}

// TestAutodiscoverOrder: Outlook takes the first incoming server of the
// answer, which is the first of the configured order: POP3 when it comes
// first. Each protocol is named once, by its first server; the preferred
// submission server follows.
func TestAutodiscoverOrder(t *testing.T) {
	for _, tc := range []struct {
		name     string
		incoming []Endpoint
		outgoing []Endpoint
		want     []string
	}{
		{"imap first", []Endpoint{{"imap", "h", 993, TLS}, {"imap", "h", 143, STARTTLS}, {"pop3", "h", 995, TLS}}, nil,
			[]string{"IMAP 993 SSL", "POP3 995 SSL"}},
		{"pop3 first", []Endpoint{{"pop3", "h", 110, STARTTLS}, {"imap", "h", 993, TLS}, {"pop3", "h", 995, TLS}},
			[]Endpoint{{"smtp", "s", 465, TLS}, {"smtp", "s", 587, STARTTLS}},
			[]string{"POP3 110 TLS", "IMAP 993 SSL", "SMTP 465 SSL"}},
		{"pop3 only", []Endpoint{{"pop3", "h", 995, TLS}}, []Endpoint{{"smtp", "s", 587, STARTTLS}},
			[]string{"POP3 995 SSL", "SMTP 587 TLS"}},
	} {
		s := testServer(t, func(c *Config) { c.Incoming, c.Outgoing = tc.incoming, tc.outgoing })
		w := do(s, "POST", "/autodiscover/autodiscover.xml", "", adBody("fay@example.org"))
		var d adDocument
		if err := xml.Unmarshal(w.Body.Bytes(), &d); err != nil || w.Code != 200 {
			t.Fatalf("%s: %d %v\n%s", tc.name, w.Code, err, w.Body)
		}
		var got []string
		for _, p := range d.Response.Account.Protocols {
			got = append(got, fmt.Sprintf("%s %d %s", p.Type, p.Port, p.Encryption))
		}
		if strings.Join(got, ", ") != strings.Join(tc.want, ", ") {
			t.Errorf("%s: servers %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestAppleWithoutOutgoing: Apple's payload needs an outgoing server, so
// without one there is no profile, rather than one that fails to install.
func TestAppleWithoutOutgoing(t *testing.T) {
	s := testServer(t, func(c *Config) { c.Outgoing = nil })
	if w := do(s, "GET", "/apple/mail.mobileconfig?emailaddress=fay%40example.org", "", ""); w.Code != 404 {
		t.Errorf("status %d: %s", w.Code, w.Body)
	}
}

// TestSameAnswerForEveryAddress: the answers tell nothing of which
// accounts exist: for two addresses of a domain they differ only by the
// address itself (and, in Apple's profile, the identifiers made from it).
func TestSameAnswerForEveryAddress(t *testing.T) {
	s := testServer(t, nil)
	a, b := "fay@example.org", "nobody-here@example.org"
	tb := func(addr string) string {
		return do(s, "GET", "/mail/config-v1.1.xml?emailaddress="+addr, "", "").Body.String()
	}
	if tb(a) != tb(b) {
		t.Errorf("Thunderbird answers differ:\n%s\n%s", tb(a), tb(b))
	}
	ad := func(addr string) string {
		return do(s, "POST", "/autodiscover/autodiscover.xml", "", adBody(addr)).Body.String()
	}
	if strings.ReplaceAll(ad(a), a, b) != ad(b) {
		t.Errorf("Autodiscover answers differ beyond the address:\n%s\n%s", ad(a), ad(b))
	}
	apple := func(addr string) string {
		body := do(s, "GET", "/apple/mail.mobileconfig?emailaddress="+addr, "", "").Body.String()
		return regexp.MustCompile(`[0-9A-F]{8}-[0-9A-F-]{27}`).ReplaceAllString(body, "UUID")
	}
	if strings.ReplaceAll(apple(a), a, b) != apple(b) {
		t.Errorf("Apple profiles differ beyond the address:\n%s\n%s", apple(a), apple(b))
	}
}

func TestMethods(t *testing.T) {
	s := testServer(t, nil)
	for _, tc := range []struct {
		method, target string
		status         int
		allow          string
	}{
		{"POST", "/mail/config-v1.1.xml?emailaddress=fay%40example.org", 405, "GET, HEAD"},
		{"PUT", "/.well-known/autoconfig/mail/config-v1.1.xml", 405, "GET, HEAD"},
		{"GET", "/autodiscover/autodiscover.xml", 405, "POST"},
		{"DELETE", "/apple/mail.mobileconfig?emailaddress=fay%40example.org", 405, "GET, HEAD"},
		{"HEAD", "/mail/config-v1.1.xml?emailaddress=fay%40example.org", 200, ""},
		{"GET", "/", 404, ""},
		{"GET", "/autodiscover/autodiscover.json", 404, ""},
	} {
		w := do(s, tc.method, tc.target, "autoconfig.example.org", "")
		if w.Code != tc.status || w.Header().Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d Allow %q, want %d %q", tc.method, tc.target, w.Code, w.Header().Get("Allow"), tc.status, tc.allow)
		}
	}
}

// countingHandler counts the log records at each level.
type countingHandler struct {
	slog.Handler
	mu     sync.Mutex
	levels map[slog.Level]int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.levels[r.Level]++
	return nil
}

func (h *countingHandler) count(l slog.Level) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.levels[l]
}

// TestDomainsRead: the served domains are read once per DomainsTTL. A
// failed read leaves the last list answering, is logged once for the run
// of failures, and is tried again after the back-off, not at each
// request; before any list was read, requests get 503 without detail.
func TestDomainsRead(t *testing.T) {
	var calls atomic.Int32
	var failing atomic.Bool
	now := time.Unix(1e9, 0)
	logs := &countingHandler{Handler: slog.DiscardHandler, levels: map[slog.Level]int{}}
	failing.Store(true)
	s := testServer(t, func(c *Config) {
		c.Domains = func(context.Context) ([]string, error) {
			calls.Add(1)
			if failing.Load() {
				return nil, errors.New("store closed")
			}
			return []string{"example.org"}, nil
		}
		c.DomainsTTL = time.Minute
		c.Now = func() time.Time { return now }
		c.Logger = slog.New(logs)
	})
	get := func() *httptest.ResponseRecorder {
		return do(s, "GET", "/mail/config-v1.1.xml?emailaddress=fay%40example.org", "", "")
	}
	for _, step := range []struct {
		name    string
		advance time.Duration
		failing bool
		status  int
		reads   int32 // in all, after the step's request
	}{
		{"never read, failing", 0, true, 503, 1},
		{"within the back-off", domainsRetry - time.Second, true, 503, 1},
		{"after the back-off", time.Second, false, 200, 2},
		{"within the TTL", time.Minute - time.Second, false, 200, 2},
		{"TTL over, failing: the old list", time.Second, true, 200, 3},
		{"within the back-off, the old list", time.Second, true, 200, 3},
		{"after the back-off, still failing", domainsRetry, true, 200, 4},
		{"read again", domainsRetry, false, 200, 5},
		{"within the TTL again", domainsRetry, false, 200, 5},
	} {
		now = now.Add(step.advance)
		failing.Store(step.failing)
		w := get()
		if w.Code != step.status || calls.Load() != step.reads {
			t.Fatalf("%s: status %d after %d reads, want %d after %d", step.name, w.Code, calls.Load(), step.status, step.reads)
		}
		if w.Code != 200 && w.Body.String() != http.StatusText(w.Code)+"\n" {
			t.Errorf("%s: the refusal says more than its status: %q", step.name, w.Body)
		}
	}
	// Two runs of failures, each logged once, and the end of each.
	if warn, info, errs := logs.count(slog.LevelWarn), logs.count(slog.LevelInfo), logs.count(slog.LevelError); warn != 2 || info != 2 || errs != 0 {
		t.Errorf("logged %d warnings, %d infos, %d errors; want 2, 2, 0", warn, info, errs)
	}
}

// TestDomainsReadNotTheClients: the domains are read with a context of
// the server's, so that a client that went away neither cuts the read
// short nor, by failing it, makes the next request read again.
func TestDomainsReadNotTheClients(t *testing.T) {
	var calls atomic.Int32
	now := time.Unix(1e9, 0)
	s := testServer(t, func(c *Config) {
		c.Domains = func(ctx context.Context) ([]string, error) {
			calls.Add(1)
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if _, ok := ctx.Deadline(); !ok {
				return nil, errors.New("a read without a deadline")
			}
			return []string{"example.org"}, nil
		}
		c.Now = func() time.Time { return now }
	})
	for i := range 5 {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r := httptest.NewRequestWithContext(ctx, "GET", "/mail/config-v1.1.xml?emailaddress=fay%40example.org", nil)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("request %d of a client gone: status %d", i, w.Code)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d reads for five requests of clients gone within the TTL, want 1", n)
	}
}

// TestDomainsReadPanics: a panic in the read ends it like an error, so
// that later requests read again rather than wait on it for ever.
func TestDomainsReadPanics(t *testing.T) {
	var calls atomic.Int32
	now := time.Unix(1e9, 0)
	s := testServer(t, func(c *Config) {
		c.Domains = func(context.Context) ([]string, error) {
			if calls.Add(1) == 1 {
				panic("a bug")
			}
			return []string{"example.org"}, nil
		}
		c.Now = func() time.Time { return now }
	})
	get := func() int {
		return do(s, "GET", "/mail/config-v1.1.xml?emailaddress=fay%40example.org", "", "").Code
	}
	if code := get(); code != 503 {
		t.Errorf("the read panicked: status %d, want 503", code)
	}
	now = now.Add(domainsRetry)
	if code := get(); code != 200 || calls.Load() != 2 {
		t.Errorf("after the back-off: status %d after %d reads", code, calls.Load())
	}
}

// TestDomainsReadOnce: while one request reads the domains, the others
// answer from the last list without waiting for it.
func TestDomainsReadOnce(t *testing.T) {
	var calls atomic.Int32
	entered, release := make(chan struct{}), make(chan struct{})
	now := time.Unix(1e9, 0)
	var mu sync.Mutex
	s := testServer(t, func(c *Config) {
		c.Domains = func(context.Context) ([]string, error) {
			if calls.Add(1) == 2 {
				close(entered)
				<-release
			}
			return []string{"example.org"}, nil
		}
		c.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	})
	get := func() int {
		return do(s, "GET", "/mail/config-v1.1.xml?emailaddress=fay%40example.org", "", "").Code
	}
	if code := get(); code != 200 {
		t.Fatalf("status %d", code)
	}
	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	slow := make(chan int)
	go func() { slow <- get() }()
	<-entered
	for range 3 {
		if code := get(); code != 200 {
			t.Errorf("while another request reads: status %d", code)
		}
	}
	close(release)
	if code := <-slow; code != 200 {
		t.Errorf("the reading request: status %d", code)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("%d reads, want 2", n)
	}
}

func TestNew(t *testing.T) {
	domains := func(context.Context) ([]string, error) { return nil, nil }
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no incoming", Config{Domains: domains}},
		{"no port", Config{Incoming: []Endpoint{{"imap", "h", 0, TLS}}, Domains: domains}},
		{"no host", Config{Incoming: []Endpoint{{"imap", "", 993, TLS}}, Domains: domains}},
		{"outgoing without host", Config{Incoming: []Endpoint{{"imap", "h", 993, TLS}}, Outgoing: []Endpoint{{"smtp", "", 465, TLS}}, Domains: domains}},
		{"no domains", Config{Incoming: []Endpoint{{"imap", "h", 993, TLS}}}},
	} {
		if _, err := New(tc.cfg); err == nil {
			t.Errorf("%s: New accepted %+v", tc.name, tc.cfg)
		}
	}
}

// TestSlowClients: the HTTP server drops a client that sends its header
// slowly (slowloris) or holds an idle connection open, and bounds the
// header's size.
func TestSlowClients(t *testing.T) {
	hs := httptest.NewUnstartedServer(nil)
	hs.Config = testServer(t, func(c *Config) { c.HeaderTimeout = 200 * time.Millisecond }).HTTPServer()
	hs.Start()
	defer hs.Close()
	if hs.Config.MaxHeaderBytes <= 0 || hs.Config.ReadTimeout <= 0 || hs.Config.WriteTimeout <= 0 {
		t.Errorf("unbounded: %+v", hs.Config)
	}
	for _, tc := range []struct{ name, send string }{
		{"half a header", "GET /mail/config-v1.1.xml HTTP/1.1\r\nHost: autoconfig.example.org\r\n"},
		{"nothing", ""},
		{"idle after an answer", "GET /mail/config-v1.1.xml HTTP/1.1\r\nHost: autoconfig.example.org\r\n\r\n"},
	} {
		c, err := net.Dial("tcp", hs.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, tc.send)
		// The server closes the connection: the read ends (after any
		// answer) well before this generous deadline.
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		_, err = io.Copy(io.Discard, c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("%s: the connection was not closed", tc.name)
		}
		c.Close()
	}
}

// TestOverHTTP: the answers as a client gets them through net/http.
func TestOverHTTP(t *testing.T) {
	hs := httptest.NewUnstartedServer(testServer(t, nil))
	hs.Config = testServer(t, nil).HTTPServer()
	hs.Start()
	defer hs.Close()
	resp, err := http.Post(hs.URL+"/Autodiscover/Autodiscover.xml", "text/xml; charset=utf-8", strings.NewReader(adBody("fay@example.org")))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte("<LoginName>fay@example.org</LoginName>")) {
		t.Errorf("%s\n%s", resp.Status, body)
	}
}
