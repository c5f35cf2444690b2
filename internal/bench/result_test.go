package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMedianRun(t *testing.T) {
	run := func(rate, p99 float64, cpu float64, extra bool) RunResult {
		r := RunResult{
			Seconds: rate / 10, Ops: int64(rate),
			Metrics:   []Metric{metric("messages/s", "1/s", rate, true)},
			Latencies: []Latency{{Op: "deliver", Count: int(rate), P50: p99 / 2, P99: p99, Max: p99 * 2}},
			Server:    &Usage{Processes: 1, CPUSeconds: cpu, RSSPeakKiB: int64(cpu * 1000)},
		}
		if extra {
			r.Metrics = append(r.Metrics, metric("first only", "", 7, true))
			r.Latencies = append(r.Latencies, Latency{Op: "first-sync", Count: 1, P99: 9})
		}
		return r
	}
	m := medianRun([]RunResult{run(100, 30, 3, true), run(300, 10, 1, false), run(200, 20, 2, false)})
	if m.Ops != 200 || m.Seconds != 20 {
		t.Errorf("ops %d seconds %v", m.Ops, m.Seconds)
	}
	if len(m.Metrics) != 2 || m.Metrics[0].Value != 200 || !m.Metrics[0].Higher || m.Metrics[1].Value != 7 {
		t.Errorf("metrics %+v", m.Metrics)
	}
	if len(m.Latencies) != 2 || m.Latencies[0].P99 != 20 || m.Latencies[0].Max != 40 || m.Latencies[1].P99 != 9 {
		t.Errorf("latencies %+v", m.Latencies)
	}
	if m.Server == nil || m.Server.CPUSeconds != 2 || m.Server.RSSPeakKiB != 2000 {
		t.Errorf("server %+v", m.Server)
	}
}

func TestVersus(t *testing.T) {
	tests := []struct {
		v, base float64
		higher  bool
		want    string
	}{
		{150, 100, true, "1.50× better"},
		{50, 100, true, "2.00× worse"},
		{5, 10, false, "2.00× better"},
		{20, 10, false, "2.00× worse"},
		{100.1, 100, true, "same"},
		{0, 100, true, "-"},
	}
	for _, tc := range tests {
		if got := versus(tc.v, tc.base, true, tc.higher); got != tc.want {
			t.Errorf("versus(%v, %v, higher %v) = %q, want %q", tc.v, tc.base, tc.higher, got, tc.want)
		}
	}
}

func TestCompare(t *testing.T) {
	res := func(label string, rate float64) Result {
		return Result{
			Config: Config{Profile: ProfileDeliver, Name: "deliver", Label: label, Users: 10, Concurrency: 4},
			Runs: []RunResult{{Seconds: 10, Ops: int64(rate * 10),
				Metrics:   []Metric{metric("messages/s", "1/s", rate, true)},
				Latencies: []Latency{{Op: "deliver", Count: 10, P50: 1000 / rate, P99: 2000 / rate}}}},
		}
	}
	dir := t.TempDir()
	var files []string
	for i, r := range []Result{res("buzon", 300), res("dovecot", 100), res("buzon", 500), res("dovecot", 100), res("buzon", 400)} {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, string(rune('a'+i))+".json")
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	var out, errOut bytes.Buffer
	if err := Main(append([]string{"compare", "--base", "dovecot"}, files...), &out, &errOut); err != nil {
		t.Fatal(err, errOut.String())
	}
	got := out.String()
	for _, want := range []string{
		"### deliver",
		"| metric | buzon | dovecot | buzon vs dovecot |",
		"| messages/s (1/s) | 400 | 100 | 4.00× better |",
		"| deliver p50 (ms) | 2.50 | 10.0 | 4.00× better |",
		"buzon: 3 runs; dovecot: 2 runs",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("compare output lacks %q:\n%s", want, got)
		}
	}
}

func TestWriteTable(t *testing.T) {
	r := RunResult{Seconds: 1, Ops: 10, Metrics: []Metric{metric("ops/s", "1/s", 10, true)},
		Latencies: []Latency{{Op: "fetch", Count: 10, P50: 1, P99: 2, Max: 3}},
		Server:    &Usage{Processes: 3, CPUSeconds: 0.5, RSSAfterKiB: 2048, RSSPeakKiB: 4096}}
	res := Result{Config: Config{Profile: ProfileIMAPMixed}.Defaults(), Runs: []RunResult{r, r}, Median: r}
	var b bytes.Buffer
	if err := writeTable(&b, res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"imap-mixed: 127.0.0.1", "run 2", "ops/s", "fetch", "3 processes"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestMainArgs(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{nil, "missing profile"},
		{[]string{"--help"}, ""},
		{[]string{"smtp"}, "not one of"},
		{[]string{"deliver", "--warmup", "soon"}, "--warmup"},
		{[]string{"deliver", "--source", "nowhere"}, "--source"},
		{[]string{"deliver", "--pid", "x"}, "--pid"},
		{[]string{"deliver", "extra"}, "unexpected argument"},
		{[]string{"fill", "--imap-port", "1"}, "mailbox size"},
		{[]string{"compare"}, "no result files"},
	}
	for _, tc := range tests {
		var out, errOut bytes.Buffer
		err := Main(tc.args, &out, &errOut)
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("Main(%q): %v", tc.args, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("Main(%q) = %v, want an error with %q", tc.args, err, tc.wantErr)
		}
	}
}
