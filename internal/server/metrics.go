package server

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the server's Prometheus metrics, in a registry of their own
// (no global state: two servers in one test process keep apart counts).
// A nil *Metrics records nothing.
type Metrics struct {
	reg            *prometheus.Registry
	connections    *prometheus.CounterVec // listener, outcome
	open           *prometheus.GaugeVec   // listener
	deliveries     *prometheus.CounterVec // status class
	deliveredBytes prometheus.Counter
	quotaWarnings  *prometheus.CounterVec // level
	vacation       *prometheus.CounterVec // outcome
	logins         *prometheus.CounterVec // result
}

// NewMetrics makes the metrics, with Go runtime and process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		connections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "buzon_connections_total", Help: "Connections by listener and outcome (accepted, refused).",
		}, []string{"listener", "outcome"}),
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "buzon_connections_open", Help: "Connections open now, by listener.",
		}, []string{"listener"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "buzon_deliveries_total", Help: "Delivery attempts by reply code (250, 451, 452, 550, 552).",
		}, []string{"code"}),
		deliveredBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "buzon_delivered_bytes_total", Help: "Bytes of mail delivered.",
		}),
		quotaWarnings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "buzon_quota_warnings_total", Help: "Quota warnings put into accounts' INBOX, by level (delivery.quota_warnings).",
		}, []string{"level"}),
		vacation: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "buzon_vacation_replies_total", Help: "Sieve vacation actions by outcome (sent, failed, dropped, skipped, error).",
		}, []string{"outcome"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "buzon_logins_total", Help: "Password checks by result (ok, failed, locked_out).",
		}, []string{"result"}),
	}
	m.reg.MustRegister(m.connections, m.open, m.deliveries, m.deliveredBytes, m.quotaWarnings, m.vacation, m.logins,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Delivered counts one delivery attempt with its reply code and size.
func (m *Metrics) Delivered(code int, size int64) {
	if m == nil {
		return
	}
	m.deliveries.WithLabelValues(itoa(code)).Inc()
	if code/100 == 2 {
		m.deliveredBytes.Add(float64(size))
	}
}

// QuotaWarned counts one quota warning stored, with its level in percent.
func (m *Metrics) QuotaWarned(level int) {
	if m == nil {
		return
	}
	m.quotaWarnings.WithLabelValues(strconv.Itoa(level)).Inc()
}

// VacationReplied counts one Sieve vacation action by its outcome: a
// reply sent, one the relay failed or that was dropped, one not due.
func (m *Metrics) VacationReplied(outcome string) {
	if m == nil {
		return
	}
	m.vacation.WithLabelValues(outcome).Inc()
}

// Login counts one password check.
func (m *Metrics) Login(result string) {
	if m == nil {
		return
	}
	m.logins.WithLabelValues(result).Inc()
}

func (m *Metrics) connection(listener, outcome string) {
	if m == nil {
		return
	}
	m.connections.WithLabelValues(listener, outcome).Inc()
	if outcome == "accepted" {
		m.open.WithLabelValues(listener).Inc()
	}
}

func (m *Metrics) closed(listener string) {
	if m == nil {
		return
	}
	m.open.WithLabelValues(listener).Dec()
}

func itoa(n int) string {
	if n >= 100 && n < 1000 {
		return string([]byte{byte('0' + n/100), byte('0' + n/10%10), byte('0' + n%10)})
	}
	return "other"
}
