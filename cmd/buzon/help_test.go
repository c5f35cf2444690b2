package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestHelp: every command's -h and --help, and "buzon help COMMAND", print
// its usage and succeed, without an error line; only deliver, which an MTA
// runs, exits 75, as for any command line that delivers nothing.
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, c := range commands() {
		if c.name == "version" || c.name == "bench" {
			continue // no flags; bench's usage is internal/bench's
		}
		for _, args := range [][]string{{c.name, "-h"}, {c.name, "--help"}, {"help", c.name}} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				var stdout, stderr bytes.Buffer
				code := run(args, strings.NewReader(""), &stdout, &stderr)
				want := 0
				if c.name == "deliver" {
					want = exTempFail
				}
				if code != want {
					t.Errorf("exit %d, want %d", code, want)
				}
				if !strings.HasPrefix(stderr.String(), "usage: buzon "+c.name) {
					t.Errorf("stderr does not start with the usage line:\n%s", stderr.String())
				}
				if strings.Contains(stderr.String(), "help requested") {
					t.Errorf("help reported as an error:\n%s", stderr.String())
				}
				// The prose between the usage lines and the flags reads on
				// an 80-column terminal.
				_, prose, _ := strings.Cut(stderr.String(), "\n\n")
				prose, _, _ = strings.Cut(prose, "\n  -")
				for _, line := range strings.Split(prose, "\n") {
					if len([]rune(line)) > 80 {
						t.Errorf("help line of %d columns: %s", len([]rune(line)), line)
					}
				}
			})
		}
	}
}
