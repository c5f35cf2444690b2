// Package secret reads the passwords buzon's settings give as a command
// (password_command) rather than written down: a secret kept in a
// password manager, or an OAuth token that expires and must be fetched
// fresh for each connection.
package secret

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

const (
	// timeout bounds a command: a password manager may ask its user to
	// unlock it first.
	timeout = 2 * time.Minute
	// waitDelay is how long the command's output is waited for once it
	// has exited: a process it left running in the background (a
	// gpg-agent it started) inherits the pipes and may keep them open
	// for hours.
	waitDelay = 5 * time.Second
	// maxStderr is how much of a failing command's error output goes
	// into the error.
	maxStderr = 2048
)

// Command runs command with sh -c and returns the first line it prints.
func Command(ctx context.Context, command string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.WaitDelay = waitDelay
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	// ErrWaitDelay: it exited 0, and something it left running still
	// holds its output.
	if err != nil && !errors.Is(err, exec.ErrWaitDelay) {
		msg := strings.TrimSpace(stderr.String())
		return "", fmt.Errorf("password_command: %w: %s", err, msg[:min(len(msg), maxStderr)])
	}
	line, _, _ := bufio.NewReader(bytes.NewReader(out)).ReadLine()
	if len(line) == 0 {
		return "", errors.New("password_command printed no password")
	}
	return strings.TrimRight(string(line), "\r"), nil
}
