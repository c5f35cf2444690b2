package fetch

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestCommandsLeaveABackgroundProcess: an MDA that leaves a process in
// the background holding its output (a notifier started with "&") is done
// when it exits, rather than when that process ends, hours later. (The
// password_command's case is package secret's.)
func TestCommandsLeaveABackgroundProcess(t *testing.T) {
	dir := t.TempDir()
	// background starts a long sleep that inherits the command's output,
	// and notes its pid for the cleanup to end it.
	background := func(name string) string {
		pidFile := filepath.Join(dir, name+".pid")
		t.Cleanup(func() {
			b, err := os.ReadFile(pidFile)
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil && pid > 0 {
				syscall.Kill(pid, syscall.SIGTERM)
			}
		})
		return "sleep 600 & echo $! > " + pidFile
	}

	// It waits commandWaitDelay for the pipes the sleep holds.
	t.Run("mda", func(t *testing.T) {
		t.Parallel()
		out := filepath.Join(dir, "delivered")
		d := &mda{command: "cat > " + out + "; " + background("mda"), account: "test"}
		msg := testMessage(1, 0)
		if err := d.Deliver(context.Background(), spooled(t, "pop3:1", msg), nil, noIntent); err != nil {
			t.Fatalf("deliver: %v", err)
		}
		if got, _ := os.ReadFile(out); !bytes.Equal(got, lf(msg)) {
			t.Errorf("the MDA got %q", got)
		}
	})
}

// TestMDAReadsPart: an MDA that exits 0 having read only part of the
// message has not delivered it: an error for the message, which stays on
// the server, saying so; and not one that stops the run.
func TestMDAReadsPart(t *testing.T) {
	d := &mda{command: "head -c 100 > /dev/null", account: "test"}
	big := testMessage(1, 4*memoryLimit) // far more than a pipe holds
	err := d.Deliver(context.Background(), spooled(t, "pop3:1", big), nil, noIntent)
	if err == nil || !strings.Contains(err.Error(), "without reading the whole message") || stopsRun(classifyDestErr(err)) {
		t.Errorf("deliver: %v, want an error for the message saying it was not read whole", err)
	}
}
