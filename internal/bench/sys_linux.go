package bench

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// bindNoPort asks the kernel to choose the source port at connect rather
// than at bind, so a source address's ports are shared among destinations
// instead of being used up by bind (ip(7) IP_BIND_ADDRESS_NO_PORT).
func bindNoPort(c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// raiseNoFile makes room for n open files in this process: the soft limit
// up to the hard one, and the hard one too when privileged.
func raiseNoFile(n uint64) error {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return err
	}
	if rl.Cur >= n {
		return nil
	}
	want := rl
	want.Cur = n
	if want.Max < n {
		want.Max = n
	}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &want); err == nil {
		return nil
	}
	if rl.Max >= n {
		return fmt.Errorf("raise open-file limit to %d: setrlimit failed", n)
	}
	return fmt.Errorf("need %d open files, the hard limit is %d (raise it with ulimit -Hn, or run as root)", n, rl.Max)
}
