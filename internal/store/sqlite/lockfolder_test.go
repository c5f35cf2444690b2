package sqlite

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestOpenAfterFolderReplaced: a process waiting in Open while another
// holds the folder (a restore) and replaces it ends up holding the lock of
// the folder now there, where a later Check, Backup or Restore looks for
// it, not of the one moved aside.
func TestOpenAfterFolderReplaced(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "data")
	st := openTest(t, Config{Dir: dir})
	st.Close()
	// The restore's exclusive lock on the folder's store.lock.
	held, err := os.OpenFile(filepath.Join(dir, "store.lock"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if err := flock(held, syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	type result struct {
		st  *Store
		err error
	}
	opened := make(chan result, 1)
	go func() {
		st, err := Open(Config{Dir: dir})
		opened <- result{st, err}
	}()
	waitBlocked(t, held)
	if err := os.Rename(dir, dir+".before"); err != nil {
		t.Fatal(err)
	}
	openTest(t, Config{Dir: dir}).Close() // the restored folder
	if err := flock(held, syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	r := <-opened
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.st.Close()
	got, err := r.st.dirLock.Stat()
	if err != nil {
		t.Fatal(err)
	}
	now, err := os.Stat(filepath.Join(dir, "store.lock"))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(got, now) {
		t.Error("Open holds the lock of the folder moved aside")
	}
	// And a restore's exclusive lock would now wait for it.
	if err := flock(openLock(t, dir), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		t.Error("the new folder's lock can be taken exclusively while a Store has it open")
	}
}

func openLock(t *testing.T, dir string) *os.File {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "store.lock"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// waitBlocked waits until a process waits for a flock on f's file, as
// /proc/locks shows it ("->" before a request not yet granted).
func waitBlocked(t *testing.T, f *os.File) {
	t.Helper()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	inode := fmt.Sprintf(":%d ", st.Ino)
	deadline := time.Now().Add(time.Minute) // a hang guard, not an assertion
	for time.Now().Before(deadline) {
		locks, err := os.Open("/proc/locks")
		if err != nil {
			t.Skip("no /proc/locks to see Open wait")
		}
		sc := bufio.NewScanner(locks)
		for sc.Scan() {
			if line := sc.Text(); strings.Contains(line, "->") && strings.Contains(line, inode) {
				locks.Close()
				return
			}
		}
		locks.Close()
		time.Sleep(time.Millisecond)
	}
	t.Fatal("Open never waited for the folder's lock")
}
