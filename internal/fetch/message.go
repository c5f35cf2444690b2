package fetch

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
)

// memoryLimit is the largest message a spool keeps in memory; larger ones
// go to an unlinked temporary file.
const memoryLimit = 1 << 20

// Message is a message downloaded from a server, spooled whole before it
// goes to a destination, so that a broken connection never leaves half a
// message there.
type Message struct {
	// ID is the message's identity at its source, for logs and an MDA's
	// environment: "pop3:<UIDL>" or "imap:<folder>/<UIDVALIDITY>/<UID>".
	ID string
	// Size is its length in bytes as the server sent it.
	Size int64
	// SHA256 is the hash of those bytes.
	SHA256 [sha256.Size]byte

	mem  []byte
	file *os.File
}

// Open returns a reader over the message as the server sent it (normally
// CRLF line endings), from the start each time.
func (m *Message) Open() io.Reader {
	if m.file != nil {
		return bufio.NewReaderSize(io.NewSectionReader(m.file, 0, m.Size), 64*1024)
	}
	return bytes.NewReader(m.mem)
}

// Hash is SHA256 in hex.
func (m *Message) Hash() string { return hex.EncodeToString(m.SHA256[:]) }

// Close releases the spooled copy.
func (m *Message) Close() error {
	if m.file != nil {
		err := m.file.Close()
		m.file = nil
		return err
	}
	return nil
}

// spoolWriter receives a message from the network.
type spoolWriter struct {
	dir  string // for the temporary file
	buf  bytes.Buffer
	file *os.File
	h    hash.Hash
	n    int64
}

func newSpoolWriter(dir string) *spoolWriter { return &spoolWriter{dir: dir, h: sha256.New()} }

func (w *spoolWriter) Write(p []byte) (int, error) {
	if w.file == nil && int64(w.buf.Len()+len(p)) > memoryLimit {
		f, err := os.CreateTemp(w.dir, "fetch-*")
		if err != nil {
			return 0, fmt.Errorf("spool: %w", err)
		}
		os.Remove(f.Name()) // nothing to clean up after a crash
		if _, err := f.Write(w.buf.Bytes()); err != nil {
			f.Close()
			return 0, fmt.Errorf("spool: %w", err)
		}
		w.file = f
		w.buf = bytes.Buffer{}
	}
	var err error
	if w.file != nil {
		_, err = w.file.Write(p)
	} else {
		w.buf.Write(p)
	}
	if err != nil {
		return 0, fmt.Errorf("spool: %w", err)
	}
	w.h.Write(p)
	w.n += int64(len(p))
	return len(p), nil
}

// message ends the spool and returns the message.
func (w *spoolWriter) message(id string) *Message {
	m := &Message{ID: id, Size: w.n, file: w.file}
	if w.file == nil {
		m.mem = w.buf.Bytes()
	}
	w.h.Sum(m.SHA256[:0])
	w.file = nil
	return m
}

// discard drops a partly received message.
func (w *spoolWriter) discard() {
	if w.file != nil {
		w.file.Close()
		w.file = nil
	}
}

// lfWriter converts CRLF line endings to LF on the way to w, as Maildir,
// mbox and MDAs expect (they are Unix files); a lone CR stays.
type lfWriter struct {
	w  io.Writer
	cr bool // the last byte seen was a CR not yet written
}

func (l *lfWriter) Write(p []byte) (int, error) {
	out := make([]byte, 0, len(p)+1)
	for _, c := range p {
		if l.cr {
			l.cr = false
			if c != '\n' {
				out = append(out, '\r')
			}
		}
		if c == '\r' {
			l.cr = true
			continue
		}
		out = append(out, c)
	}
	if _, err := l.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// flush writes a CR left at the very end.
func (l *lfWriter) flush() error {
	if !l.cr {
		return nil
	}
	l.cr = false
	_, err := l.w.Write([]byte{'\r'})
	return err
}

// copyLF copies a message to w with LF line endings, returning whether
// it ended with a line break.
func copyLF(w io.Writer, r io.Reader) (endsInLF bool, err error) {
	tail := &tailWriter{w: w}
	lw := &lfWriter{w: tail}
	if _, err := io.Copy(lw, r); err != nil {
		return false, err
	}
	if err := lw.flush(); err != nil {
		return false, err
	}
	return tail.last == '\n', nil
}

// tailWriter remembers the last byte written through it.
type tailWriter struct {
	w    io.Writer
	last byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	if len(p) > 0 {
		t.last = p[len(p)-1]
	}
	return t.w.Write(p)
}
