package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

const usageText = `usage: buzon bench PROFILE [flags]
       buzon bench compare [--base LABEL] RESULT.json...

Profiles:
  fill           make each user hold --mailbox-size messages (delivered over LMTP;
                 the same seed gives every server the same mail)
  deliver        LMTP deliveries: messages/s, MB/s, latency
  pop3-download  POP3 sessions that RETR a whole mailbox: sessions/s, MB/s
  imap-sync      LOGIN, SELECT, FETCH 1:* (FLAGS UID RFC822.SIZE ENVELOPE
                 BODYSTRUCTURE), BODY.PEEK[] of the newest --newest, LOGOUT
  imap-mixed     a steady mix of FETCH, STORE, SEARCH, APPEND, EXPUNGE, IDLE
  idle-fanout    --connections IDLE connections, one delivery to the users
                 they watch: time until all saw EXISTS, server memory per connection

compare reads result files written with --json or --out and prints, per case
(--name), a markdown table of each server's (--label) medians and their ratios.

Flags:
`

// Main is the command line of the load generator: `bench PROFILE [flags]`
// runs a profile and prints a table (or JSON with --json); `bench compare`
// turns result files into a markdown comparison. args exclude the program
// name.
func Main(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "compare" {
		return mainCompare(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	var cfg Config
	fs.StringVar(&cfg.Name, "name", "", "case `name` in reports (default: the profile)")
	fs.StringVar(&cfg.Label, "label", "", "`label` of the server under test in reports, e.g. buzon")
	fs.StringVar(&cfg.Host, "host", "127.0.0.1", "server `address`")
	fs.Var((*portsFlag)(&cfg.IMAPPorts), "imap-port", "IMAP `ports`, comma-separated: one per node, clients spread over them (default 143)")
	fs.Var((*portsFlag)(&cfg.POP3Ports), "pop3-port", "POP3 `ports`, as --imap-port (default 110)")
	fs.Var((*portsFlag)(&cfg.LMTPPorts), "lmtp-port", "LMTP `ports`, as --imap-port (default 24)")
	fs.StringVar(&cfg.UserPattern, "user", "user%d", "user name `pattern` (login and LMTP recipient), e.g. user%d@example.org")
	fs.IntVar(&cfg.FirstUser, "first-user", 1, "`number` of the first user")
	fs.IntVar(&cfg.Users, "users", 1, "number of users")
	fs.StringVar(&cfg.Password, "password", "pass", "every user's `password`")
	fs.IntVar(&cfg.Concurrency, "c", 4, "concurrent clients (idle-fanout: connections being set up at once)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 4, "same as -c")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "length of each measured run")
	fs.IntVar(&cfg.Count, "count", 0, "end a run after this many operations (0: only --duration)")
	warmup := fs.String("warmup", "default", "unrecorded load before the first run: a `duration`, or none (default: 2s; none for fill and imap-sync)")
	fs.IntVar(&cfg.Repeat, "repeat", 1, "measured runs; their median is reported with each one")
	fs.DurationVar(&cfg.Timeout, "timeout", 60*time.Second, "longest wait for a server response or an IDLE notification")
	fs.IntVar(&cfg.MailboxSize, "mailbox-size", 0, "fill: messages each user is to hold")
	fs.IntVar(&cfg.NewestBodies, "newest", 50, "imap-sync: newest messages fetched whole")
	fs.IntVar(&cfg.SessionOps, "session-ops", 100, "imap-mixed: commands per session before logging in again")
	fs.IntVar(&cfg.Connections, "connections", 100, "idle-fanout: IDLE connections")
	fs.DurationVar(&cfg.Settle, "settle", time.Second, "idle-fanout: wait before measuring server memory")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "message generator seed")
	fs.IntVar(&cfg.MinSize, "min-size", 1024, "smallest generated message, bytes")
	fs.IntVar(&cfg.MaxSize, "max-size", 100*1024, "largest generated message, bytes")
	fs.StringVar(&cfg.Mbox, "mbox", "", "send the messages of this mbox `file` instead of generated ones (deliver, imap-mixed, idle-fanout)")
	sources := fs.String("source", "auto", "client source `addresses`: auto (127.0.0.2-127.0.0.50 for a loopback server), none, or a list of addresses and ranges")
	pids := fs.String("pid", "", "comma-separated server `pids` to measure (with their descendants)")
	fs.StringVar(&cfg.PIDCmd, "pid-cmd", "", "shell `command` printing the server's pids, e.g. \"dovecot.sh pids\"")
	asJSON := fs.Bool("json", false, "print the result as JSON instead of a table")
	out := fs.String("out", "", "also write the result as JSON to this `file`")
	verbose := fs.Bool("v", false, "log progress in detail")
	// The flags are defined first, so that the usage lists them.
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs.Usage()
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			return nil
		}
		return errors.New("bench: missing profile")
	}
	cfg.Profile = args[0]
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench: unexpected argument %q", fs.Arg(0))
	}
	switch *warmup {
	case "default":
	case "none", "0":
		cfg.Warmup = -1
	default:
		d, err := time.ParseDuration(*warmup)
		if err != nil || d < 0 {
			return fmt.Errorf("bench: --warmup %q is not a duration or none", *warmup)
		}
		cfg.Warmup = d
	}
	var err error
	if cfg.Sources, err = ParseSources(*sources, cfg.Host); err != nil {
		return fmt.Errorf("bench: --source: %w", err)
	}
	if cfg.PIDs, err = parsePIDs(*pids); err != nil {
		return fmt.Errorf("bench: --pid: %w", err)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, runErr := Run(ctx, cfg)
	if len(res.Runs) > 0 || runErr == nil {
		if *out != "" {
			if err := writeJSONFile(*out, res); err != nil {
				return errors.Join(runErr, err)
			}
		}
		if *asJSON {
			err = writeJSON(stdout, res)
		} else {
			err = writeTable(stdout, res)
		}
		if err != nil {
			return errors.Join(runErr, err)
		}
	}
	return runErr
}

// portsFlag is a comma-separated list of ports, one per node.
type portsFlag []int

func (p *portsFlag) String() string {
	if p == nil {
		return ""
	}
	s := make([]string, len(*p))
	for i, v := range *p {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func (p *portsFlag) Set(s string) error {
	var ports []int
	for f := range strings.SplitSeq(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v < 1 || v > 65535 {
			return fmt.Errorf("%q is not a port", f)
		}
		ports = append(ports, v)
	}
	*p = ports
	return nil
}

func parsePIDs(s string) ([]int, error) {
	var pids []int
	for f := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("%q is not a process id", f)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

func writeJSON(w io.Writer, res Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

func writeJSONFile(path string, res Result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := writeJSON(f, res); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// formatNumber prints v with about three significant digits, no exponent.
func formatNumber(v float64) string {
	a := v
	if a < 0 {
		a = -a
	}
	switch {
	case a >= 100 || a == 0:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}

// writeTable prints a result for people: the settings, each metric's
// median and per-run values, the median latencies, and the server's
// resource use.
func writeTable(w io.Writer, res Result) error {
	c := res.Config
	label := ""
	if c.Label != "" {
		label = " [" + c.Label + "]"
	}
	fmt.Fprintf(w, "%s%s: %s, users %s..%d, concurrency %d, %d run(s)", c.Name, label, c.Host,
		c.user(0), c.FirstUser+c.Users-1, c.Concurrency, len(res.Runs))
	switch c.Profile {
	case ProfileFill:
		fmt.Fprintf(w, ", mailbox size %d", c.MailboxSize)
	case ProfileIDLEFanout:
		fmt.Fprintf(w, ", %d connections", c.Connections)
	default:
		fmt.Fprintf(w, ", %s each", c.Duration)
	}
	fmt.Fprintln(w)
	if len(res.Runs) == 0 {
		return nil
	}
	// Names are padded to one width, so that with the numbers aligned
	// right they still read as a left-aligned column.
	width := len("latency ms")
	for _, m := range res.Median.Metrics {
		width = max(width, len(m.Name))
	}
	for _, l := range res.Median.Latencies {
		width = max(width, len(l.Op))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\tunit\tmedian\t", width, "metric")
	if len(res.Runs) > 1 {
		for i := range res.Runs {
			fmt.Fprintf(tw, "run %d\t", i+1)
		}
	}
	fmt.Fprintln(tw)
	for _, m := range res.Median.Metrics {
		fmt.Fprintf(tw, "%-*s\t%s\t%s\t", width, m.Name, m.Unit, formatNumber(m.Value))
		if len(res.Runs) > 1 {
			for _, r := range res.Runs {
				v := "-"
				for _, rm := range r.Metrics {
					if rm.Name == m.Name {
						v = formatNumber(rm.Value)
					}
				}
				fmt.Fprintf(tw, "%s\t", v)
			}
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(res.Median.Latencies) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "%-*s\tcount\tmean\tp50\tp90\tp99\tmax\t\n", width, "latency ms")
		for _, l := range res.Median.Latencies {
			fmt.Fprintf(tw, "%-*s\t%d\t%s\t%s\t%s\t%s\t%s\t\n", width, l.Op, l.Count, formatNumber(l.Mean),
				formatNumber(l.P50), formatNumber(l.P90), formatNumber(l.P99), formatNumber(l.Max))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if s := res.Median.Server; s != nil {
		fmt.Fprintf(w, "\nserver: %d processes, CPU %ss, RSS %s -> %s MiB (peak %s)\n", s.Processes,
			formatNumber(s.CPUSeconds), formatNumber(float64(s.RSSBeforeKiB)/1024),
			formatNumber(float64(s.RSSAfterKiB)/1024), formatNumber(float64(s.RSSPeakKiB)/1024))
	}
	return nil
}
