package smtpserver

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/buzon-mail/buzon/internal/delivery"
	"github.com/buzon-mail/buzon/internal/server"
	"github.com/buzon-mail/buzon/internal/store"
)

// TestDeliveryMetrics: the delivery metrics count each copy by the reply
// code the client was sent for it. A message too large for the room left
// in a mailbox (no SIZE= declared, so RCPT could not tell) is 452 4.2.2
// in SMTP, a temporary failure there, and counts as 452; LMTP's 552 5.2.2
// counts as 552.
func TestDeliveryMetrics(t *testing.T) {
	big := testMessage + strings.Repeat("a line to fill the mailbox\r\n", 100)
	for _, tt := range []struct {
		name     string
		protocol Protocol
		greeting string
		full     string // the reply to the message that does not fit
		code     string // and its code in the metrics
		not      string // a code that must not be counted
	}{
		{"SMTP", SMTP, "EHLO client.example.net", "452 4.2.2 ", "452", "552"},
		{"LMTP", LMTP, "LHLO client.example.net", "552 5.2.2 ", "552", "452"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := server.NewMetrics()
			f := newFixture(t, 0, func(c *Config) {
				c.Protocol = tt.protocol
				c.Deliverer = &delivery.Deliverer{Store: c.Deliverer.Store, Observe: m.Delivered}
			})
			// Room for the small message, and more than RCPT keeps for the
			// trace fields, but not for the big one.
			if err := f.st.SetQuota(context.Background(), "alice@example.org", store.Quota{MaxBytes: traceRoom + 1000}); err != nil {
				t.Fatal(err)
			}
			for _, msg := range []struct{ body, want string }{{big, tt.full}, {testMessage, "250 "}} {
				l := dialLMTP(t, f.addr)
				l.cmd(tt.greeting)
				replies := lmtpSessionOn(l, []string{"MAIL FROM:<dave@example.net>", "RCPT TO:<alice@example.org>"}, msg.body)
				if len(replies) != 1 || !strings.HasPrefix(replies[0], msg.want) {
					t.Fatalf("replies after %d octets: %q, want %q", len(msg.body), replies, msg.want)
				}
			}
			rec := httptest.NewRecorder()
			m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			metrics := rec.Body.String()
			for _, want := range []string{
				`buzon_deliveries_total{code="` + tt.code + `"} 1`,
				`buzon_deliveries_total{code="250"} 1`,
			} {
				if !strings.Contains(metrics, want) {
					t.Errorf("metrics lack %s", want)
				}
			}
			if bad := `buzon_deliveries_total{code="` + tt.not + `"}`; strings.Contains(metrics, bad) {
				t.Errorf("metrics count %s, a reply never sent", bad)
			}
		})
	}
}
