// Package mailimport moves mail kept by another server or client into a
// buzon account: a Maildir or Maildir++ tree (Dovecot's and Courier's
// layout, and Dovecot's LAYOUT=fs) and mbox files (mboxrd and mboxo, as
// mutt, Thunderbird and Google Takeout write them), with their folders,
// flags, keywords and dates.
//
// An import is idempotent and resumable: before it appends a message to a
// folder it looks for the same bytes there, so running it again, or after
// a crash, adds only what is missing (see Import). It reads the files an
// administrator names and nothing else: symbolic links inside a source
// are not followed.
package mailimport

import (
	"fmt"
	"io"
	"os"
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

// Open returns the message's bytes.
func (it *Item) Open() (io.ReadCloser, error) {
	if it.open == nil {
		return nil, fmt.Errorf("%s: nothing to read", it.Where)
	}
	return it.open()
}

// Source is something to import from.
type Source interface {
	// Scan lists the source's messages, in the order to import them
	// (folder by folder, oldest first where the source keeps an order).
	Scan() ([]*Item, error)
	// String names the source for reports.
	String() string
}

// openNoFollow opens a file of a source for reading, refusing a symbolic
// link put there since the scan.
func openNoFollow(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
}
