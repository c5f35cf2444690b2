package server

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestDeliveryMetrics: what the Deliverer reports comes out of /metrics
// under its name and labels, and a nil Metrics (no metrics listener)
// takes reports without failing.
func TestDeliveryMetrics(t *testing.T) {
	m := NewMetrics()
	m.Delivered(250, 1000)
	m.Delivered(452, 500)
	m.QuotaWarned(90)
	m.VacationReplied("sent")
	m.VacationReplied("sent")
	m.VacationReplied("failed")
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(w.Body)
	for _, want := range []string{
		`buzon_deliveries_total{code="250"} 1`,
		`buzon_deliveries_total{code="452"} 1`,
		`buzon_delivered_bytes_total 1000`,
		`buzon_quota_warnings_total{level="90"} 1`,
		`buzon_vacation_replies_total{outcome="sent"} 2`,
		`buzon_vacation_replies_total{outcome="failed"} 1`,
	} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}

	var none *Metrics
	none.Delivered(250, 1)
	none.QuotaWarned(80)
	none.VacationReplied("sent")
}
