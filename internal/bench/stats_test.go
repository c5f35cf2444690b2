package bench

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		var d []time.Duration
		for _, v := range vs {
			d = append(d, time.Duration(v)*time.Millisecond)
		}
		return d
	}
	tests := []struct {
		name   string
		sample []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"median of odd count", ms(5, 1, 3), 50, 3 * time.Millisecond},
		{"median of even count is the lower middle", ms(4, 1, 3, 2), 50, 2 * time.Millisecond},
		{"p99 of 100 is the 99th", ms(seq(100)...), 99, 99 * time.Millisecond},
		{"p99 of 1000 is the 990th", ms(seq(1000)...), 99, 990 * time.Millisecond},
		{"p90 of 10", ms(seq(10)...), 90, 9 * time.Millisecond},
		{"p100 is the max", ms(3, 9, 1), 100, 9 * time.Millisecond},
		{"tiny p is the min", ms(3, 9, 1), 0.001, 1 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s sample
			for _, d := range tc.sample {
				s.add(d)
			}
			if got := s.percentile(tc.p); got != tc.want {
				t.Errorf("percentile(%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i + 1
	}
	return s
}

func TestRecorderMerge(t *testing.T) {
	a, b := newRecorder(), newRecorder()
	a.record("login", 2*time.Millisecond)
	a.record("fetch", 4*time.Millisecond)
	a.done(100)
	b.record("fetch", 6*time.Millisecond)
	b.record("logout", time.Millisecond)
	b.done(50)
	b.addItems(3)
	b.retried()
	a.merge(b)
	var none *recorder
	none.record("x", time.Second) // a nil recorder records nothing
	none.done(1)
	a.merge(none)

	lat := a.latencies()
	wantOps := []string{"login", "fetch", "logout"}
	if len(lat) != len(wantOps) {
		t.Fatalf("latencies %+v", lat)
	}
	for i, op := range wantOps {
		if lat[i].Op != op {
			t.Errorf("latency %d is %s, want %s", i, lat[i].Op, op)
		}
	}
	if f := lat[1]; f.Count != 2 || f.Mean != 5 || f.P50 != 4 || f.Max != 6 {
		t.Errorf("fetch %+v", f)
	}
	if a.ops != 2 || a.bytes != 150 || a.items != 3 || a.retries != 1 {
		t.Errorf("ops %d bytes %d items %d retries %d", a.ops, a.bytes, a.items, a.retries)
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
	}
	for _, tc := range tests {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
