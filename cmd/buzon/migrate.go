package main

import (
	"errors"
	"io"
)

// runMigrate is being written; its file is owned by the engineer building it.
func runMigrate(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return errors.New("not available yet")
}

// runMigrateStore is being written with runMigrate.
func runMigrateStore(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return errors.New("not available yet")
}
