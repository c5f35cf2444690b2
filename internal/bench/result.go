package bench

import (
	"slices"
	"time"
)

// Result is what Run measured: each run and their median.
type Result struct {
	// Config is the benchmark's configuration, defaults applied.
	Config Config `json:"config"`
	// Started is when Run began.
	Started time.Time `json:"started"`
	// Runs are the measured runs, in order.
	Runs []RunResult `json:"runs"`
	// Median holds, for each metric and latency field, the median over
	// Runs of the runs that have it.
	Median RunResult `json:"median"`
}

// RunResult is one measured run.
type RunResult struct {
	// Seconds is the run's wall-clock time.
	Seconds float64 `json:"seconds"`
	// Ops counts the profile's main operation: messages delivered,
	// sessions, IMAP commands, idle connections.
	Ops int64 `json:"ops"`
	// Metrics are the run's figures, rates and sizes, in report order.
	Metrics []Metric `json:"metrics"`
	// Latencies summarise each operation's latencies.
	Latencies []Latency `json:"latencies,omitempty"`
	// Server is the server's resource use, when its processes were given.
	Server *Usage `json:"server,omitempty"`
}

// Metric is one named figure of a run.
type Metric struct {
	// Name says what is measured, e.g. "messages/s".
	Name string `json:"name"`
	// Value is the figure, in Unit.
	Value float64 `json:"value"`
	// Unit is the figure's unit, e.g. "1/s", "MB/s", "KiB".
	Unit string `json:"unit"`
	// Higher is true when a larger value is better.
	Higher bool `json:"higher_is_better"`
}

// Latency summarises one operation's latencies, in milliseconds; the
// percentiles are exact (nearest rank over every operation).
type Latency struct {
	// Op names the operation, e.g. "deliver", "fetch-all", "session".
	Op string `json:"op"`
	// Count is the number of operations measured.
	Count int `json:"count"`
	// Mean is the average latency.
	Mean float64 `json:"mean_ms"`
	// P50, P90 and P99 are percentiles, Max the slowest operation.
	P50 float64 `json:"p50_ms"`
	// P90: see P50.
	P90 float64 `json:"p90_ms"`
	// P99: see P50.
	P99 float64 `json:"p99_ms"`
	// Max: see P50.
	Max float64 `json:"max_ms"`
}

// Usage is the server's resource use during a run, summed over its
// processes and their descendants.
type Usage struct {
	// Processes counts the server's processes at the end of the run.
	Processes int `json:"processes"`
	// CPUSeconds is the user and system CPU time the server spent in the
	// run, including that of processes that ended during it.
	CPUSeconds float64 `json:"cpu_seconds"`
	// RSSBeforeKiB and RSSAfterKiB are the resident memory at the start
	// and end of the run, RSSPeakKiB the most seen in between (sampled).
	RSSBeforeKiB int64 `json:"rss_before_kib"`
	RSSAfterKiB  int64 `json:"rss_after_kib"`
	RSSPeakKiB   int64 `json:"rss_peak_kib"`
}

func metric(name, unit string, v float64, higher bool) Metric {
	return Metric{Name: name, Value: v, Unit: unit, Higher: higher}
}

// medianRun returns the median of each metric, latency field and usage
// field over runs. Names keep their first run's order.
func medianRun(runs []RunResult) RunResult {
	if len(runs) == 1 {
		return runs[0]
	}
	var out RunResult
	out.Seconds = medianOf(runs, func(r RunResult) (float64, bool) { return r.Seconds, true })
	out.Ops = int64(medianOf(runs, func(r RunResult) (float64, bool) { return float64(r.Ops), true }))

	var names []Metric
	for _, r := range runs {
		for _, m := range r.Metrics {
			if !slices.ContainsFunc(names, func(n Metric) bool { return n.Name == m.Name }) {
				names = append(names, m)
			}
		}
	}
	for _, n := range names {
		n.Value = medianOf(runs, func(r RunResult) (float64, bool) {
			i := slices.IndexFunc(r.Metrics, func(m Metric) bool { return m.Name == n.Name })
			if i < 0 {
				return 0, false
			}
			return r.Metrics[i].Value, true
		})
		out.Metrics = append(out.Metrics, n)
	}

	var ops []string
	for _, r := range runs {
		for _, l := range r.Latencies {
			if !slices.Contains(ops, l.Op) {
				ops = append(ops, l.Op)
			}
		}
	}
	for _, op := range ops {
		field := func(f func(Latency) float64) float64 {
			return medianOf(runs, func(r RunResult) (float64, bool) {
				i := slices.IndexFunc(r.Latencies, func(l Latency) bool { return l.Op == op })
				if i < 0 {
					return 0, false
				}
				return f(r.Latencies[i]), true
			})
		}
		out.Latencies = append(out.Latencies, Latency{
			Op:    op,
			Count: int(field(func(l Latency) float64 { return float64(l.Count) })),
			Mean:  field(func(l Latency) float64 { return l.Mean }),
			P50:   field(func(l Latency) float64 { return l.P50 }),
			P90:   field(func(l Latency) float64 { return l.P90 }),
			P99:   field(func(l Latency) float64 { return l.P99 }),
			Max:   field(func(l Latency) float64 { return l.Max }),
		})
	}

	if slices.ContainsFunc(runs, func(r RunResult) bool { return r.Server != nil }) {
		u := func(f func(*Usage) float64) float64 {
			return medianOf(runs, func(r RunResult) (float64, bool) {
				if r.Server == nil {
					return 0, false
				}
				return f(r.Server), true
			})
		}
		out.Server = &Usage{
			Processes:    int(u(func(s *Usage) float64 { return float64(s.Processes) })),
			CPUSeconds:   u(func(s *Usage) float64 { return s.CPUSeconds }),
			RSSBeforeKiB: int64(u(func(s *Usage) float64 { return float64(s.RSSBeforeKiB) })),
			RSSAfterKiB:  int64(u(func(s *Usage) float64 { return float64(s.RSSAfterKiB) })),
			RSSPeakKiB:   int64(u(func(s *Usage) float64 { return float64(s.RSSPeakKiB) })),
		}
	}
	return out
}

// medianOf is the median of f over the runs for which it has a value.
func medianOf(runs []RunResult, f func(RunResult) (float64, bool)) float64 {
	var vs []float64
	for _, r := range runs {
		if v, ok := f(r); ok {
			vs = append(vs, v)
		}
	}
	return median(vs)
}
