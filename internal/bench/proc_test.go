package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	tail := func(ppid int, utime, stime, cutime, cstime int) string {
		return fmt.Sprintf("S %d 100 100 0 -1 4194560 1000 0 0 0 %d %d %d %d 20 0 1 0 12345 1000000 250",
			ppid, utime, stime, cutime, cstime)
	}
	tests := []struct {
		name    string
		in      string
		want    procStat
		wantErr bool
	}{
		{"plain", "42 (dovecot) " + tail(1, 150, 50, 0, 0), procStat{ppid: 1, cpu: 2 * time.Second}, false},
		{"children's time counts", "43 (imap) " + tail(42, 1, 2, 3, 4), procStat{ppid: 42, cpu: 100 * time.Millisecond}, false},
		{"name with spaces and parens", "44 (a b) (c)) " + tail(7, 100, 0, 0, 0), procStat{ppid: 7, cpu: time.Second}, false},
		{"no name", "45 " + tail(1, 0, 0, 0, 0), procStat{}, true},
		{"truncated", "46 (x) S 1 2 3", procStat{}, true},
		{"not a number", "47 (x) " + tail(1, 0, 0, 0, 0)[:20] + " x y z w v u t s r q", procStat{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcStat([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseKiBField(t *testing.T) {
	status := "Name:\tbuzon\nVmPeak:\t  99 kB\nVmRSS:\t   12345 kB\nThreads:\t8\n"
	tests := []struct {
		name, in, field string
		want            int64
		wantErr         bool
	}{
		{"status", status, "VmRSS", 12345, false},
		{"kernel thread has none", "Name:\tkthreadd\nThreads:\t1\n", "VmRSS", 0, false},
		{"prefix is not the field", "VmRSSX: 5 kB\n", "VmRSS", 0, false},
		{"smaps_rollup", "00400000-7fff [rollup]\nRss:  2000 kB\nPss:  1500 kB\n", "Pss", 1500, false},
		{"malformed", "VmRSS: lots kB\n", "VmRSS", 0, true},
		{"empty", "VmRSS:\n", "VmRSS", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseKiBField([]byte(tc.in), tc.field)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("got %d, %v; want %d, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// TestProcWatcherTree checks descendants and sums on a made-up /proc.
func TestProcWatcherTree(t *testing.T) {
	root := t.TempDir()
	procs := []struct {
		pid, ppid, ticks int
		rss, pss         int64
	}{
		{10, 1, 100, 1000, 500},  // the server
		{11, 10, 50, 200, 100},   // a child
		{12, 11, 25, 300, 150},   // a grandchild
		{20, 1, 1000, 9999, 999}, // unrelated
	}
	for _, p := range procs {
		dir := filepath.Join(root, fmt.Sprint(p.pid))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		write := func(name, content string) {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write("stat", fmt.Sprintf("%d (p%d) S %d 0 0 0 -1 0 0 0 0 0 %d 0 0 0 20 0 1 0 1 1 1", p.pid, p.pid, p.ppid, p.ticks))
		write("status", fmt.Sprintf("Name:\tp\nVmRSS:\t%d kB\n", p.rss))
		write("smaps_rollup", fmt.Sprintf("Rss: %d kB\nPss: %d kB\n", p.rss, p.pss))
	}
	if err := os.Mkdir(filepath.Join(root, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	w := &procWatcher{root: root, pids: []int{10}}
	pids, err := w.serverPIDs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{10, 11, 12}; !slices.Equal(pids, want) {
		t.Errorf("pids %v, want %v", pids, want)
	}
	s, err := w.snapshot(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	want := procSnapshot{procs: 3, rssKiB: 1500, pssKiB: 750, cpu: 1750 * time.Millisecond}
	if s != want {
		t.Errorf("snapshot %+v, want %+v", s, want)
	}
	w = &procWatcher{root: root, cmd: "echo 11; echo 20"}
	if pids, err = w.serverPIDs(context.Background()); err != nil || !slices.Equal(pids, []int{11, 12, 20}) {
		t.Errorf("pid command: %v, %v", pids, err)
	}
	w.cmd = "exit 1" // it ran once; its pids are kept
	if pids, err = w.serverPIDs(context.Background()); err != nil || !slices.Equal(pids, []int{11, 12, 20}) {
		t.Errorf("pid command's second run: %v, %v", pids, err)
	}
	w = &procWatcher{root: root, cmd: "echo eleven"}
	if _, err := w.serverPIDs(context.Background()); err == nil {
		t.Error("a pid command printing a word is not an error")
	}
}

// TestProcWatcherSelf watches this test process and a child on the real
// /proc.
func TestProcWatcherSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	child := exec.Command("sleep", "30")
	if err := child.Start(); err != nil {
		t.Skip("cannot start sleep:", err)
	}
	defer func() {
		child.Process.Kill()
		child.Wait()
	}()
	w := &procWatcher{root: "/proc", pids: []int{os.Getpid()}}
	pids, err := w.serverPIDs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pids, child.Process.Pid) || !slices.Contains(pids, os.Getpid()) {
		t.Errorf("pids %v lack this process or its child %d", pids, child.Process.Pid)
	}
	s, err := w.snapshot(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	if s.procs < 2 || s.rssKiB <= 0 || s.cpu < 0 {
		t.Errorf("snapshot %+v", s)
	}
}
