package fetch

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// kernelLock takes, without waiting, the kernel locks that mail programs
// on Linux take on an mbox file: an fcntl lock, the convention there
// (Debian Policy 22.6; procmail, mutt, Postfix's local and Dovecot, whose
// readers take nothing else, use it), and an flock, the BSD one that some
// programs use instead. It reports busy when another program holds one.
//
// The fcntl lock is an open file description lock (F_OFD_SETLK): it
// conflicts with the classic fcntl locks of other processes, yet belongs
// to this open file, so two accounts appending to one mbox in this
// process exclude each other and another descriptor of the file closing
// does not release it. On NFS the kernel emulates flock with an fcntl
// lock of the file's own, which would conflict with ours: there the fcntl
// lock alone stands for both.
func kernelLock(f *os.File) (busy bool, unlock func(), err error) {
	fd := f.Fd()
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart} // the whole file
	if err := unix.FcntlFlock(fd, unix.F_OFD_SETLK, &lk); err != nil {
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return true, nil, nil
		}
		return false, nil, fmt.Errorf("fcntl lock: %w", err)
	}
	unlockFcntl := func() {
		un := unix.Flock_t{Type: unix.F_UNLCK, Whence: io.SeekStart}
		unix.FcntlFlock(fd, unix.F_OFD_SETLK, &un)
	}
	var fs unix.Statfs_t
	if unix.Fstatfs(int(fd), &fs) == nil && fs.Type == unix.NFS_SUPER_MAGIC {
		return false, unlockFcntl, nil
	}
	if err := unix.Flock(int(fd), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unlockFcntl()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return true, nil, nil
		}
		return false, nil, fmt.Errorf("flock: %w", err)
	}
	return false, func() {
		unix.Flock(int(fd), unix.LOCK_UN)
		unlockFcntl()
	}, nil
}
