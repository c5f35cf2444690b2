package secret

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestCommand(t *testing.T) {
	for _, tc := range []struct {
		name, command, want, wantErr string
	}{
		{"first line", "printf 's3cret\\r\\nsecond\\n'", "s3cret", ""},
		{"spaces kept", "echo ' pass phrase '", " pass phrase ", ""},
		{"fails", "echo vault locked >&2; exit 3", "", "vault locked"},
		{"prints nothing", "true", "", "printed no password"},
		{"not found", "no-such-password-manager", "", "password_command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Command(context.Background(), tc.command)
			switch {
			case tc.wantErr == "" && (err != nil || got != tc.want):
				t.Errorf("Command = %q, %v; want %q", got, err, tc.want)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Command = %q, %v; want an error saying %q", got, err, tc.wantErr)
			}
		})
	}
}

// TestCommandLeavesABackgroundProcess: a command that leaves a process in
// the background holding its output (a gpg-agent started by pass) is done
// when it exits, rather than when that process ends, hours later.
func TestCommandLeavesABackgroundProcess(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	t.Cleanup(func() {
		b, err := os.ReadFile(pidFile)
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil && pid > 0 {
			syscall.Kill(pid, syscall.SIGTERM)
		}
	})
	// It waits waitDelay for the pipes the sleep holds.
	pass, err := Command(context.Background(), "echo s3cret; sleep 600 & echo $! > "+pidFile)
	if err != nil || pass != "s3cret" {
		t.Errorf("password %q, %v", pass, err)
	}
}
