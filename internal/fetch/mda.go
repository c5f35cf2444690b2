package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Limits on commands the fetch client runs.
const (
	// mdaTimeout bounds one MDA run; it is killed after that.
	mdaTimeout = 10 * time.Minute
	// maxCommandStderr is how much of a failing command's error output
	// goes into the error.
	maxCommandStderr = 2048
	// commandWaitDelay is how long a command's output pipes are waited
	// for once it has exited: a process it left running in the background
	// (a notifier an MDA starts with "&", a gpg-agent a password command
	// starts) inherits them and may keep them open for hours.
	commandWaitDelay = 5 * time.Second
)

// Exit codes an MDA's shell gives that mean something to the fetch
// client.
const (
	// exTempFail is EX_TEMPFAIL from sysexits.h: try again later.
	exTempFail = 75
	// exCannotRun and exNotFound are the shell's for a command it found
	// but could not run, and one it did not find (POSIX 2.8.2).
	exCannotRun = 126
	exNotFound  = 127
)

// errCannotRun is an MDA command the shell cannot run: every message
// would fail the same way, so it ends the account's run.
var errCannotRun = errors.New("cannot be run; check the mda setting")

// mda pipes each message into a command (a mail delivery agent such as
// procmail or maildrop). Deliveries are at least once: see Destination.
type mda struct {
	command string
	account string
}

var _ Destination = (*mda)(nil)

func (d *mda) String() string { return "mda " + d.command }

func (d *mda) Close() error { return nil }

func (d *mda) Deliver(ctx context.Context, m *Message, _ *Ref, intent func(Ref) error) error {
	if err := intent(Ref{}); err != nil {
		return err
	}
	// A shutdown does not interrupt a delivery in progress: an MDA killed
	// half-way may have delivered half a message.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), mdaTimeout)
	defer cancel()
	var stderr limitedBuffer
	cmd := shellCommand(ctx, d.command, &stderr)
	cmd.Env = append(os.Environ(), "BUZON_FETCH_ACCOUNT="+d.account, "BUZON_FETCH_ID="+m.ID)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("mda: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("mda %q: %w", d.command, err)
	}
	sent := &countWriter{w: stdin}
	_, werr := copyLF(sent, m.Open())
	stdin.Close()
	err = exited(cmd.Wait())
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && ee.ExitCode() == exTempFail:
		return fmt.Errorf("%w: mda %q exited with 75 (try later): %s", ErrTryLater, d.command, stderr.text())
	case errors.As(err, &ee) && (ee.ExitCode() == exNotFound || ee.ExitCode() == exCannotRun):
		return fmt.Errorf("mda %q %w (exit %d: %s)", d.command, errCannotRun, ee.ExitCode(), stderr.text())
	case err != nil:
		return fmt.Errorf("mda %q: %w: %s", d.command, err, stderr.text())
	case werr != nil:
		// It exited 0 without reading the whole message: whatever it did
		// with a part of it, it did not deliver the message.
		return fmt.Errorf("mda %q exited 0 without reading the whole message (it stopped reading after at most %d bytes): %w",
			d.command, sent.n, werr)
	}
	return nil
}

// Has cannot know: an MDA keeps no record the fetch client can ask.
func (d *mda) Has(context.Context, Ref) (bool, error) { return false, nil }

// shellCommand prepares a command of the config (an MDA, a
// password_command) to run with sh -c, its error output kept in stderr for
// the error its failure gives.
func shellCommand(ctx context.Context, command string, stderr *limitedBuffer) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.WaitDelay = commandWaitDelay
	cmd.Stderr = stderr
	return cmd
}

// exited reads the error of a shellCommand's Wait or Output: ErrWaitDelay
// means that it exited 0 and a process it left running in the background
// still holds its output.
func exited(err error) error {
	if errors.Is(err, exec.ErrWaitDelay) {
		return nil
	}
	return err
}

// limitedBuffer keeps the first maxCommandStderr bytes written to it.
type limitedBuffer struct{ b bytes.Buffer }

var _ io.Writer = (*limitedBuffer)(nil)

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxCommandStderr - l.b.Len(); room > 0 {
		l.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (l *limitedBuffer) text() string { return strings.TrimSpace(l.b.String()) }
