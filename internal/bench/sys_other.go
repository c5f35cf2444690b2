//go:build !linux

package bench

import "syscall"

func bindNoPort(syscall.RawConn) error { return nil }

func raiseNoFile(uint64) error { return nil }
