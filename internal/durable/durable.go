// Package durable writes files and folder entries so that they survive a
// crash: the data is synced before it is named, and the name is synced
// after.
package durable

import (
	"fmt"
	"os"
	"path/filepath"
)

// SyncDir makes a folder's entries (files created, linked, renamed,
// removed) durable.
func SyncDir(dir string) error { return syncPath(dir, "folder ") }

// SyncFile makes what was written to the file at path durable, by
// whichever process wrote it.
func SyncFile(path string) error { return syncPath(path, "") }

func syncPath(path, what string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s%s: %w", what, path, err)
	}
	return nil
}

// WriteFile replaces name with data atomically and durably: a temporary
// file in the same folder is written, synced and renamed over name, then
// the folder is synced. After a crash name holds the old data or the new,
// never a mix, and so it does after an error: the new only when the
// folder's sync failed, after the rename. No temporary file is left.
func WriteFile(name string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	return SyncDir(filepath.Dir(name))
}
