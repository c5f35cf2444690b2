package bench

import (
	"math"
	"slices"
	"time"
)

// sample keeps every latency of one operation, so percentiles are exact.
// A run of a few million operations costs a few tens of megabytes, which a
// load generator can afford; an HDR histogram would trade exactness for
// space we do not need.
type sample struct {
	d      []time.Duration
	sorted bool
}

func (s *sample) add(d time.Duration) {
	s.d = append(s.d, d)
	s.sorted = false
}

func (s *sample) merge(o *sample) {
	s.d = append(s.d, o.d...)
	s.sorted = false
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100): the
// smallest value that at least p percent of the sample do not exceed.
func (s *sample) percentile(p float64) time.Duration {
	if len(s.d) == 0 {
		return 0
	}
	if !s.sorted {
		slices.Sort(s.d)
		s.sorted = true
	}
	rank := int(math.Ceil(p / 100 * float64(len(s.d))))
	rank = min(max(rank, 1), len(s.d))
	return s.d[rank-1]
}

func (s *sample) mean() time.Duration {
	if len(s.d) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range s.d {
		sum += d
	}
	return sum / time.Duration(len(s.d))
}

// summary describes the sample as a Latency.
func (s *sample) summary(op string) Latency {
	return Latency{
		Op:    op,
		Count: len(s.d),
		Mean:  ms(s.mean()),
		P50:   ms(s.percentile(50)),
		P90:   ms(s.percentile(90)),
		P99:   ms(s.percentile(99)),
		Max:   ms(s.percentile(100)),
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// recorder collects what one client did in a run: latencies per
// operation, and the count and bytes of the profile's main operation. A
// nil recorder records nothing (warm-up).
type recorder struct {
	names   []string // operations in the order first seen
	samples map[string]*sample
	ops     int64 // main operations: messages, sessions, commands
	bytes   int64 // message bytes moved
	items   int64 // secondary count: messages retrieved, messages listed
	retries int64 // attempts repeated because the server asked to wait
}

func newRecorder() *recorder { return &recorder{samples: map[string]*sample{}} }

func (r *recorder) record(op string, d time.Duration) {
	if r == nil {
		return
	}
	s := r.samples[op]
	if s == nil {
		s = &sample{}
		r.samples[op] = s
		r.names = append(r.names, op)
	}
	s.add(d)
}

// done counts one main operation that moved n bytes.
func (r *recorder) done(n int64) {
	if r == nil {
		return
	}
	r.ops++
	r.bytes += n
}

func (r *recorder) addItems(n int64) {
	if r != nil {
		r.items += n
	}
}

func (r *recorder) retried() {
	if r != nil {
		r.retries++
	}
}

func (r *recorder) merge(o *recorder) {
	if o == nil {
		return
	}
	for _, name := range o.names {
		s := r.samples[name]
		if s == nil {
			s = &sample{}
			r.samples[name] = s
			r.names = append(r.names, name)
		}
		s.merge(o.samples[name])
	}
	r.ops += o.ops
	r.bytes += o.bytes
	r.items += o.items
	r.retries += o.retries
}

// latencies summarises every operation, in the order first seen.
func (r *recorder) latencies() []Latency {
	out := make([]Latency, 0, len(r.names))
	for _, name := range r.names {
		out = append(out, r.samples[name].summary(name))
	}
	return out
}

// median returns the median of vs (the mean of the middle two for an even
// count); vs is reordered.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	slices.Sort(vs)
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2]
	}
	return (vs[n/2-1] + vs[n/2]) / 2
}
