package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat. Linux
// reports them in 1/100 s on every architecture, whatever the kernel's HZ.
const clockTicks = 100

// procStat is what a benchmark needs from /proc/PID/stat.
type procStat struct {
	ppid int
	// cpu is the process's user and system time plus that of its
	// children it has waited for: summed over a process tree, children
	// that ended during the run still count, once, in their parent.
	cpu time.Duration
}

// parseProcStat reads /proc/PID/stat (proc(5)). The command name, field 2,
// is in parentheses and may itself hold spaces and parentheses, so fields
// are counted from the last ')'.
func parseProcStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("no command name")
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state): ppid is field 4, utime..cstime 14..17.
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("%d fields after the command name, want at least 15", len(f))
	}
	ppid, err := strconv.Atoi(string(f[1]))
	if err != nil {
		return procStat{}, fmt.Errorf("ppid: %w", err)
	}
	var ticks int64
	for _, field := range f[11:15] {
		v, err := strconv.ParseInt(string(field), 10, 64)
		if err != nil {
			return procStat{}, fmt.Errorf("cpu time: %w", err)
		}
		ticks += v
	}
	return procStat{ppid: ppid, cpu: time.Duration(ticks) * time.Second / clockTicks}, nil
}

// parseKiBField returns the value of a "Name:   123 kB" line of
// /proc/PID/status or /proc/PID/smaps_rollup; 0 if there is none (kernel
// threads have no VmRSS).
func parseKiBField(b []byte, name string) (int64, error) {
	key := []byte(name + ":")
	for line := range bytes.Lines(b) {
		if !bytes.HasPrefix(line, key) {
			continue
		}
		f := bytes.Fields(line[len(key):])
		if len(f) == 0 {
			return 0, fmt.Errorf("%s: no value", name)
		}
		v, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		return v, nil
	}
	return 0, nil
}

// procSnapshot is the state of a server's process tree at one moment.
type procSnapshot struct {
	procs  int
	rssKiB int64 // sum of VmRSS: shared pages count once per process
	pssKiB int64 // sum of Pss: shared pages divided among their sharers
	cpu    time.Duration
}

// procWatcher measures a server's processes: the given pids, those the
// command prints, and all their descendants, found anew at each snapshot
// because servers such as Dovecot start and end processes per connection.
//
// The command runs once, at the first snapshot: new processes are found as
// descendants, and a command run at every sample would load the machine
// while it measures.
type procWatcher struct {
	root string // "/proc"
	pids []int
	cmd  string

	cmdPIDs []int // what cmd printed; nil before it ran
}

// serverPIDs returns the watched roots and all their descendants.
func (w *procWatcher) serverPIDs(ctx context.Context) ([]int, error) {
	if w.cmd != "" && w.cmdPIDs == nil {
		out, err := exec.CommandContext(ctx, "sh", "-c", w.cmd).Output()
		if err != nil {
			return nil, fmt.Errorf("pid command %q: %w", w.cmd, err)
		}
		w.cmdPIDs = []int{}
		for _, f := range bytes.Fields(out) {
			pid, err := strconv.Atoi(string(f))
			if err != nil {
				w.cmdPIDs = nil
				return nil, fmt.Errorf("pid command %q printed %q", w.cmd, f)
			}
			w.cmdPIDs = append(w.cmdPIDs, pid)
		}
	}
	roots := append(slices.Clone(w.pids), w.cmdPIDs...)
	if len(roots) == 0 {
		return nil, errors.New("no server process")
	}
	entries, err := os.ReadDir(w.root)
	if err != nil {
		return nil, err
	}
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(w.root, e.Name(), "stat"))
		if err != nil {
			continue // it ended meanwhile
		}
		st, err := parseProcStat(b)
		if err != nil {
			continue
		}
		children[st.ppid] = append(children[st.ppid], pid)
	}
	seen := map[int]bool{}
	var all []int
	for len(roots) > 0 {
		pid := roots[len(roots)-1]
		roots = roots[:len(roots)-1]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		all = append(all, pid)
		roots = append(roots, children[pid]...)
	}
	slices.Sort(all)
	return all, nil
}

// snapshot sums memory and CPU time over the server's processes; Pss,
// slower to read, only when pss is set.
func (w *procWatcher) snapshot(ctx context.Context, pss bool) (procSnapshot, error) {
	pids, err := w.serverPIDs(ctx)
	if err != nil {
		return procSnapshot{}, err
	}
	var s procSnapshot
	for _, pid := range pids {
		dir := filepath.Join(w.root, strconv.Itoa(pid))
		statB, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue // ended between listing and reading
		}
		st, err := parseProcStat(statB)
		if err != nil {
			return procSnapshot{}, fmt.Errorf("%s/stat: %w", dir, err)
		}
		statusB, err := os.ReadFile(filepath.Join(dir, "status"))
		if err != nil {
			continue
		}
		rss, err := parseKiBField(statusB, "VmRSS")
		if err != nil {
			return procSnapshot{}, fmt.Errorf("%s/status: %w", dir, err)
		}
		s.procs++
		s.cpu += st.cpu
		s.rssKiB += rss
		if pss {
			if b, err := os.ReadFile(filepath.Join(dir, "smaps_rollup")); err == nil {
				v, err := parseKiBField(b, "Pss")
				if err != nil {
					return procSnapshot{}, fmt.Errorf("%s/smaps_rollup: %w", dir, err)
				}
				s.pssKiB += v
			}
		}
	}
	if s.procs == 0 {
		return procSnapshot{}, fmt.Errorf("server processes %v: none readable", pids)
	}
	return s, nil
}

// peak samples the server's resident memory until stop is closed, and
// returns the largest sum seen. It samples every interval, or less often
// when a sample takes long (thousands of processes), so as to spend at most
// a twentieth of a CPU on it.
func (w *procWatcher) peak(ctx context.Context, interval time.Duration, stop <-chan struct{}) int64 {
	var top int64
	for {
		start := time.Now()
		if s, err := w.snapshot(ctx, false); err == nil {
			top = max(top, s.rssKiB)
		}
		select {
		case <-stop:
			return top
		case <-ctx.Done():
			return top
		case <-time.After(max(interval, 20*time.Since(start))):
		}
	}
}
