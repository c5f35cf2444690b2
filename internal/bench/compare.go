package bench

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// comparedRun is one server's runs of one case, from any number of
// result files.
type comparedRun struct {
	label  string
	config Config
	runs   []RunResult
}

func mainCompare(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("base", "", "`label` the others are compared with (default: the last label seen)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: buzon bench compare [--base LABEL] RESULT.json...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("bench compare: no result files")
	}
	var results []Result
	for _, path := range fs.Args() {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var r Result
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if r.Config.Label == "" {
			r.Config.Label = path
		}
		results = append(results, r)
	}
	return Compare(stdout, results, *base)
}

// Compare writes a markdown table per case (Config.Name) of the results:
// for each metric, each server's (Config.Label) median over all its runs,
// and how each compares with the base label's ("1.50× better").
func Compare(w io.Writer, results []Result, base string) error {
	var names []string
	groups := map[string][]*comparedRun{}
	for _, r := range results {
		name := r.Config.Name
		if name == "" {
			name = r.Config.Profile
		}
		if _, ok := groups[name]; !ok {
			names = append(names, name)
		}
		i := slices.IndexFunc(groups[name], func(c *comparedRun) bool { return c.label == r.Config.Label })
		if i < 0 {
			groups[name] = append(groups[name], &comparedRun{label: r.Config.Label, config: r.Config})
			i = len(groups[name]) - 1
		}
		groups[name][i].runs = append(groups[name][i].runs, r.Runs...)
	}
	for _, name := range names {
		g := groups[name]
		bi := len(g) - 1
		if base != "" {
			if j := slices.IndexFunc(g, func(c *comparedRun) bool { return c.label == base }); j >= 0 {
				bi = j
			}
		}
		// The base goes last, the ones compared with it first.
		g = append(slices.Delete(slices.Clone(g), bi, bi+1), g[bi])
		if err := compareCase(w, name, g); err != nil {
			return err
		}
	}
	return nil
}

// comparedMetrics flattens a median run into metrics: its own, then p50
// and p99 of each latency.
func comparedMetrics(r RunResult) []Metric {
	ms := slices.Clone(r.Metrics)
	for _, l := range r.Latencies {
		ms = append(ms, metric(l.Op+" p50", "ms", l.P50, false), metric(l.Op+" p99", "ms", l.P99, false))
	}
	return ms
}

func compareCase(w io.Writer, name string, g []*comparedRun) error {
	base := g[len(g)-1]
	c := base.config
	fmt.Fprintf(w, "### %s\n\n", name)
	fmt.Fprintf(w, "%s: %d users, concurrency %d", c.Profile, c.Users, c.Concurrency)
	switch c.Profile {
	case ProfileIDLEFanout:
		fmt.Fprintf(w, ", %d connections", c.Connections)
	case ProfileFill:
		fmt.Fprintf(w, ", mailbox size %d", c.MailboxSize)
	default:
		fmt.Fprintf(w, ", runs of %s", c.Duration)
	}
	for _, s := range g {
		fmt.Fprintf(w, "; %s: %d runs", s.label, len(s.runs))
	}
	fmt.Fprint(w, "\n\n| metric |")
	for _, s := range g {
		fmt.Fprintf(w, " %s |", s.label)
	}
	for _, s := range g[:len(g)-1] {
		fmt.Fprintf(w, " %s vs %s |", s.label, base.label)
	}
	fmt.Fprint(w, "\n|---|")
	fmt.Fprint(w, strings.Repeat("---:|", len(g)))
	fmt.Fprint(w, strings.Repeat("---|", len(g)-1))
	fmt.Fprintln(w)

	medians := make([][]Metric, len(g))
	var order []Metric
	for i, s := range g {
		medians[i] = comparedMetrics(medianRun(s.runs))
		for _, m := range medians[i] {
			if !slices.ContainsFunc(order, func(o Metric) bool { return o.Name == m.Name }) {
				order = append(order, m)
			}
		}
	}
	value := func(i int, name string) (float64, bool) {
		j := slices.IndexFunc(medians[i], func(m Metric) bool { return m.Name == name })
		if j < 0 {
			return 0, false
		}
		return medians[i][j].Value, true
	}
	for _, m := range order {
		unit := ""
		if m.Unit != "" {
			unit = " (" + m.Unit + ")"
		}
		fmt.Fprintf(w, "| %s%s |", m.Name, unit)
		for i := range g {
			if v, ok := value(i, m.Name); ok {
				fmt.Fprintf(w, " %s |", formatNumber(v))
			} else {
				fmt.Fprint(w, " - |")
			}
		}
		bv, bok := value(len(g)-1, m.Name)
		for i := range g[:len(g)-1] {
			v, ok := value(i, m.Name)
			fmt.Fprintf(w, " %s |", versus(v, bv, ok && bok, m.Higher))
		}
		fmt.Fprintln(w)
	}
	_, err := fmt.Fprintln(w)
	return err
}

// versus says how v compares with base: "1.50× better", "2.00× worse".
func versus(v, base float64, ok, higher bool) string {
	if !ok || v <= 0 || base <= 0 {
		return "-"
	}
	f := v / base
	if !higher {
		f = base / v
	}
	switch {
	case f >= 1.005:
		return fmt.Sprintf("%.2f× better", f)
	case f <= 1/1.005:
		return fmt.Sprintf("%.2f× worse", 1/f)
	default:
		return "same"
	}
}
