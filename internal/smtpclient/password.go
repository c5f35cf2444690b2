package smtpclient

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

// passwordTimeout bounds a password command.
const passwordTimeout = 30 * time.Second

// CommandPassword returns a Config.Password that runs command with
// sh -c at each connection and takes the first line it prints: a secret
// kept in a password manager, or a token that expires.
func CommandPassword(command string) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		ctx, cancel := context.WithTimeout(ctx, passwordTimeout)
		defer cancel()
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
		cmd.Stderr = &stderr
		cmd.WaitDelay = time.Second
		out, err := cmd.Output()
		if err != nil && !errors.Is(err, exec.ErrWaitDelay) {
			msg := stderr.String()
			return "", fmt.Errorf("password_command: %w: %s", err, strings.TrimSpace(msg[:min(len(msg), 512)]))
		}
		line, _, _ := bufio.NewReader(bytes.NewReader(out)).ReadLine()
		if len(line) == 0 {
			return "", errors.New("password_command printed no password")
		}
		return strings.TrimRight(string(line), "\r"), nil
	}
}

// StaticPassword returns a Config.Password that returns password.
func StaticPassword(password string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return password, nil }
}
