// Package mailimport moves mail kept by another server or client into a
// buzon account: a Maildir or Maildir++ tree (Dovecot's and Courier's
// layout, and Dovecot's LAYOUT=fs) and mbox files (mboxrd and mboxo, as
// mutt, Thunderbird and Google Takeout write them), with their folders,
// flags, keywords and dates.
//
// An import is idempotent and resumable: before it appends a message to a
// folder it looks for the same bytes there, so running it again, or after
// a crash, adds only what is missing (see Import). It reads the files an
// administrator names and nothing else: a source is opened once, as an
// os.Root for a tree, and every file of it is reached through that, so a
// symbolic link, or a folder swapped for one, cannot lead out of it; links
// inside a source are not followed.
package mailimport

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

// Item is one message of a source, found by a scan and read later.
type Item struct {
	// Folders are the folders the message goes into, '/' between levels,
	// as the source names them ("INBOX" for the inbox). Most sources give
	// one; Gmail labels may give several.
	Folders []string
	// Flags are the message's flags in the source.
	Flags store.Flags
	// Date is the internal date to keep; zero for the time of the import.
	Date time.Time
	// Size is the message's size in the source, for progress.
	Size int64
	// Where names the message for reports: a file, or a file and offset.
	Where string
	// Skip, when not "", is why the message is not to be imported; the
	// scan reports it rather than failing.
	Skip string
	// open reads the message as the store should keep it, before line
	// endings are made CRLF.
	open func() (io.ReadCloser, error)
}

// Open returns the message's bytes. Its errors, and those of reading
// what it returns, wrap a readError.
func (it *Item) Open() (io.ReadCloser, error) {
	if it.open == nil {
		return nil, &readError{fmt.Errorf("%s: nothing to read", it.Where)}
	}
	r, err := it.open()
	if err != nil {
		return nil, &readError{err}
	}
	return sourceReader{r}, nil
}

// Source is something to import from.
type Source interface {
	// Scan lists the source's messages, in the order to import them
	// (folder by folder, oldest first where the source keeps an order).
	Scan() ([]*Item, error)
	// String names the source for reports.
	String() string
}

// openRegular opens a file of a source tree for reading, refusing
// anything but a regular file: a FIFO put in its place would block the
// read for ever (O_NONBLOCK lets its open return, and the check refuses
// it), a device would never end. The root keeps the open inside the tree
// whatever links its folders are swapped for.
func openRegular(root *os.Root, name string) (*os.File, error) {
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	if err := checkRegular(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// errNotRegular is a file of a source that is no regular file.
var errNotRegular = errors.New("not a regular file")

func checkRegular(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: %w", f.Name(), errNotRegular)
	}
	return nil
}

// readError is an error reading a message from its source, as opposed to
// one spooling or storing it: the first is the message's (skip it), the
// second the import's (stop).
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// sourceReader marks the errors of a source's reader as readErrors.
type sourceReader struct{ r io.ReadCloser }

func (s sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		err = &readError{err}
	}
	return n, err
}

func (s sourceReader) Close() error { return s.r.Close() }

// NewSource makes the source a path the administrator names stands for: a
// Maildir (a directory with cur/ or new/), a folder of mbox files, or an
// mbox file. The path itself is followed if it is a link: naming it is
// the administrator's choice; the links inside it are not. folder and
// gmailLabels are Mbox's, for an mbox file only: a tree names its folders
// itself.
func NewSource(path, folder string, gmailLabels bool) (Source, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		if folder == "" {
			name := filepath.Base(path)
			if parent := filepath.Base(filepath.Dir(path)); name == "mbox" && strings.HasSuffix(strings.ToLower(parent), ".mbox") {
				name = parent // Apple Mail's export: Work.mbox/mbox
			}
			folder = store.CanonicalMailboxName(MboxFolder(name))
		}
		return Mbox{Path: path, Folder: folder, GmailLabels: gmailLabels}, nil
	}
	if folder != "" || gmailLabels {
		return nil, fmt.Errorf("%s is a folder: --folder and --gmail-labels are for mbox files", path)
	}
	root, err := os.OpenRoot(path)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	if isMaildir(root, ".") {
		return Maildir{Dir: path}, nil
	}
	return MboxTree{Dir: path}, nil
}
