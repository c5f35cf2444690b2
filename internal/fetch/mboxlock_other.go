//go:build !linux

package fetch

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// kernelLock takes, without waiting, the flock that mail programs on BSD
// systems take on an mbox file. It reports busy when another program
// holds it.
func kernelLock(f *os.File) (busy bool, unlock func(), err error) {
	fd := int(f.Fd())
	if err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return true, nil, nil
		}
		return false, nil, fmt.Errorf("flock: %w", err)
	}
	return false, func() { syscall.Flock(fd, syscall.LOCK_UN) }, nil
}
