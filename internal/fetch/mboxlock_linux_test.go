package fetch

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// lockHelperEnv names the mbox a re-run of the test binary locks, in the
// way its kind says, as another mail program would.
const lockHelperEnv = "BUZON_FETCH_TEST_LOCK"

// TestMboxLockHelper is not a test: run by TestMboxKernelLocks in a
// process of its own, it takes a lock on the file, says "locked" and
// holds it until its standard input closes.
func TestMboxLockHelper(t *testing.T) {
	path := os.Getenv(lockHelperEnv)
	if path == "" {
		t.Skip("helper process only")
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	switch kind := os.Getenv(lockHelperEnv + "_KIND"); kind {
	case "fcntl":
		// A classic (process-owned) fcntl lock, as procmail and mutt take.
		lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
		err = unix.FcntlFlock(f.Fd(), unix.F_SETLKW, &lk)
	case "flock":
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
	default:
		t.Fatalf("lock kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("locked\n")
	io.Copy(io.Discard, os.Stdin)
}

// TestMboxKernelLocks: while another program holds an fcntl lock on the
// mbox (procmail, mutt, a Dovecot reading it) or an flock, an append
// waits, and gives up after lockWait with ErrTryLater and the file as it
// was; once the lock is released, the append goes through. So it does in
// a folder that does not let us make a dotlock (/var/mail), whose mail
// programs take an fcntl lock too.
func TestMboxKernelLocks(t *testing.T) {
	for _, kind := range []string{"fcntl", "flock", "fcntl, no dotlock allowed"} {
		t.Run(kind, func(t *testing.T) {
			noDotlock := strings.HasSuffix(kind, "no dotlock allowed")
			kind, _, _ := strings.Cut(kind, ",")
			path := filepath.Join(t.TempDir(), "mbox")
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			helper := exec.Command(os.Args[0], "-test.run=^TestMboxLockHelper$")
			helper.Env = append(os.Environ(), lockHelperEnv+"="+path, lockHelperEnv+"_KIND="+kind)
			release, err := helper.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			out, err := helper.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := helper.Start(); err != nil {
				t.Fatal(err)
			}
			defer helper.Wait()
			defer release.Close()
			if line, err := bufio.NewReader(out).ReadString('\n'); line != "locked\n" {
				t.Fatalf("helper: %q, %v", line, err)
			}

			b := newMbox(path, time.Now, nil)
			b.lockWait = 200 * time.Millisecond
			if noDotlock {
				b.createDotlock = denyDotlock
			}
			err = b.Deliver(context.Background(), spooled(t, "1", testMessage(1, 0)), nil, noIntent)
			if !errors.Is(err, ErrTryLater) {
				t.Errorf("append under another program's %s lock: %v, want ErrTryLater", kind, err)
			}
			if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
				t.Errorf("the mbox was written under another program's lock: %v, %v", fi.Size(), err)
			}
			if _, err := os.Stat(path + ".lock"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("dotlock left behind: %v", err)
			}

			release.Close()
			if err := helper.Wait(); err != nil {
				t.Fatalf("helper: %v", err)
			}
			if err := b.Deliver(context.Background(), spooled(t, "2", testMessage(2, 0)), nil, noIntent); err != nil {
				t.Fatalf("append once released: %v", err)
			}
			if n := len(readMbox(t, path)); n != 1 {
				t.Errorf("%d messages, want 1", n)
			}
		})
	}
}
