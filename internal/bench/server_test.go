package bench

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// target is a server the profiles run against.
type target struct {
	imap, pop3, lmtp int
	userPattern      string
	pids             []int
}

// checkProfiles fills two mailboxes, runs every profile briefly against
// the server, and checks that each reports sane figures.
func checkProfiles(t *testing.T, tg target) {
	base := Config{
		Host: "127.0.0.1", IMAPPorts: []int{tg.imap}, POP3Ports: []int{tg.pop3}, LMTPPorts: []int{tg.lmtp},
		UserPattern: tg.userPattern, Users: 2, Password: "pass", PIDs: tg.pids,
		Concurrency: 2, Duration: 300 * time.Millisecond, Warmup: -1, Timeout: 30 * time.Second,
		MinSize: 1024, MaxSize: 8 * 1024, Sources: mustSources(t, "auto"),
	}
	cases := []struct {
		profile string
		tweak   func(*Config)
		metrics []string // metrics that must be positive
		ops     []string // operations that must have latencies
	}{
		{ProfileFill, func(c *Config) { c.MailboxSize = 30 }, nil, nil},
		{ProfileDeliver, func(c *Config) { c.FirstUser = 3 }, []string{"messages/s", "MB/s"}, []string{"deliver"}},
		{ProfilePOP3Download, nil, []string{"sessions/s", "MB/s", "messages/s"}, []string{"login", "retr", "session"}},
		{ProfileIMAPSync, nil, []string{"sessions/s", "MB/s", "messages listed/s"},
			[]string{"login", "select", "fetch-all", "fetch-newest", "logout", "first-sync"}},
		{ProfileIMAPMixed, nil, []string{"ops/s"}, []string{"login", "select"}},
		{ProfileIDLEFanout, func(c *Config) { c.Connections = 20; c.Concurrency = 5; c.Settle = 100 * time.Millisecond },
			[]string{"connections", "connections set up/s"}, []string{"setup", "notify"}},
	}
	for _, tc := range cases {
		t.Run(tc.profile, func(t *testing.T) {
			cfg := base
			cfg.Profile = tc.profile
			if tc.tweak != nil {
				tc.tweak(&cfg)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			res, err := Run(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Runs) != 1 {
				t.Fatalf("%d runs, want 1", len(res.Runs))
			}
			r := res.Median
			if r.Seconds <= 0 {
				t.Errorf("run took %v s", r.Seconds)
			}
			if tc.profile != ProfileFill && r.Ops <= 0 {
				t.Errorf("ops = %d", r.Ops)
			}
			for _, m := range r.Metrics {
				// Memory per connection is a difference of two samples: with
				// a few connections, the server's own churn can outweigh it.
				canBeNegative := strings.HasSuffix(m.Name, "per idle connection")
				if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) || (m.Value < 0 && !canBeNegative) {
					t.Errorf("metric %s = %v", m.Name, m.Value)
				}
			}
			for _, name := range tc.metrics {
				found := false
				for _, m := range r.Metrics {
					if m.Name == name {
						found = true
						if m.Value <= 0 {
							t.Errorf("metric %s = %v, want > 0", name, m.Value)
						}
					}
				}
				if !found {
					t.Errorf("metric %s missing", name)
				}
			}
			for _, op := range tc.ops {
				found := false
				for _, l := range r.Latencies {
					if l.Op == op {
						found = true
					}
				}
				if !found {
					t.Errorf("no latencies for %s", op)
				}
			}
			for _, l := range r.Latencies {
				if l.Count <= 0 || l.P50 < 0 || l.P50 > l.P99 || l.P99 > l.Max {
					t.Errorf("latency %+v is not sane", l)
				}
			}
			if len(tg.pids) > 0 {
				s := r.Server
				if s == nil {
					t.Fatal("no server usage though pids were given")
				}
				if s.Processes < 1 || s.RSSAfterKiB <= 0 || s.RSSPeakKiB < s.RSSAfterKiB || s.CPUSeconds < 0 {
					t.Errorf("server usage %+v is not sane", *s)
				}
			}
		})
	}
}

func mustSources(t *testing.T, s string) []netip.Addr {
	a, err := ParseSources(s, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// freePort returns a loopback port nobody listens on now.
func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestProfilesBuzon builds the buzon binary, serves a throwaway data
// folder on free ports, and runs every profile against it.
func TestProfilesBuzon(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the buzon binary")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build buzon with")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "buzon")
	build := exec.Command(gobin, "build", "-o", bin, "github.com/buzon-mail/buzon/cmd/buzon")
	if out, err := build.CombinedOutput(); err != nil {
		t.Skipf("buzon does not build yet, so it cannot be benchmarked: %v\n%s", err, firstLines(out, 5))
	}
	data := filepath.Join(dir, "data")
	tg := target{imap: freePort(t), pop3: freePort(t), lmtp: freePort(t), userPattern: "user%d@example.org"}
	conf := filepath.Join(dir, "buzon.toml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`[listen]
imap = "127.0.0.1:%d"
imaps = "off"
pop3 = "127.0.0.1:%d"
pop3s = "off"
lmtp = "127.0.0.1:%d"
smtp = "off"
sieve = "off"

[auth]
scheme = "bcrypt"
bcrypt_cost = 4

[limits]
max_connections_per_ip = 0
max_connections_per_account = 1000
commands_per_second = 100000
`, tg.imap, tg.pop3, tg.lmtp)), 0o600); err != nil {
		t.Fatal(err)
	}
	for u := 1; u <= 4; u++ {
		add := exec.Command(bin, "user", "add", "--data", data, "--config", conf, fmt.Sprintf(tg.userPattern, u))
		add.Stdin = strings.NewReader("pass\n")
		if out, err := add.CombinedOutput(); err != nil {
			t.Skipf("buzon user add does not work yet: %v\n%s", err, firstLines(out, 5))
		}
	}
	serve := exec.Command(bin, "serve", "--data", data, "--config", conf)
	logf, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	serve.Stdout, serve.Stderr = logf, logf
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- serve.Wait() }()
	t.Cleanup(func() {
		serve.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			serve.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("buzon serve log:\n%s", firstLines(b, 40))
		}
	})
	tg.pids = []int{serve.Process.Pid}
	for _, port := range []int{tg.imap, tg.pop3, tg.lmtp} {
		if err := waitPort(port, exited); err != nil {
			b, _ := os.ReadFile(logf.Name())
			t.Skipf("buzon serve does not serve yet: %v\n%s", err, firstLines(b, 10))
		}
	}
	checkProfiles(t, tg)
}

// TestProfilesDovecot runs every profile against a Dovecot started with
// ../../../shared/peers/dovecot.sh, when BENCH_DOVECOT names its IMAP,
// POP3 and LMTP ports ("10143,10110,10024") and BENCH_DOVECOT_PIDCMD, if
// set, prints its pids.
func TestProfilesDovecot(t *testing.T) {
	ports := strings.Split(os.Getenv("BENCH_DOVECOT"), ",")
	if len(ports) != 3 {
		t.Skip("BENCH_DOVECOT is not set to the Dovecot peer's IMAP,POP3,LMTP ports")
	}
	tg := target{userPattern: "user%d"}
	for i, p := range []*int{&tg.imap, &tg.pop3, &tg.lmtp} {
		v, err := strconv.Atoi(ports[i])
		if err != nil {
			t.Fatalf("BENCH_DOVECOT: %v", err)
		}
		*p = v
	}
	if cmd := os.Getenv("BENCH_DOVECOT_PIDCMD"); cmd != "" {
		out, err := exec.Command("sh", "-c", cmd).Output()
		if err != nil {
			t.Fatalf("BENCH_DOVECOT_PIDCMD: %v", err)
		}
		if tg.pids, err = parsePIDs(string(out)); err != nil {
			t.Fatal(err)
		}
	}
	checkProfiles(t, tg)
}

// waitPort waits until something listens on a loopback port, or the
// server exits.
func waitPort(port int, exited <-chan error) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("exited: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("nothing listens on port %d after 30s", port)
}

func firstLines(b []byte, n int) string {
	lines := strings.SplitN(string(b), "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}
