package fetch

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"

	"github.com/buzon-mail/buzon/internal/delivery"
)

// memoryLimit is the largest message a download keeps in memory; larger
// ones go to an unlinked temporary file.
const memoryLimit = 1 << 20

// Message is a message downloaded from a server, spooled whole before it
// goes to a destination, so that a broken connection never leaves half a
// message there. It is spooled as delivery spools a message for the
// store, so that a store destination takes it as it is.
type Message struct {
	// ID is the message's identity at its source, for logs and an MDA's
	// environment: "pop3:<UIDL>" or "imap:<folder>/<UIDVALIDITY>/<UID>".
	ID string
	// Size is its length in bytes as spooled.
	Size int64
	// SHA256 is the hash of those bytes.
	SHA256 [sha256.Size]byte

	sp *delivery.Spooled
}

// Open returns a reader over the message with CRLF line endings (a bare
// CR or LF from the server made CRLF, as the store keeps it), from the
// start each time.
func (m *Message) Open() io.Reader { return m.sp.Reader() }

// Hash is SHA256 in hex.
func (m *Message) Hash() string { return hex.EncodeToString(m.SHA256[:]) }

// Close releases the spooled copy.
func (m *Message) Close() error { return m.sp.Close() }

// download receives a message from the network into a spool, hashing it
// on the way. Close drops one that is not finished.
type download struct {
	*delivery.SpoolWriter
	h hash.Hash
	// err is the first error of the spool, which is ours rather than the
	// network's.
	err error
}

var _ io.Writer = (*download)(nil)

func (d *download) Write(p []byte) (int, error) {
	n, err := d.SpoolWriter.Write(p)
	if err != nil && d.err == nil {
		d.err = err
	}
	return n, err
}

func newDownload(sp *delivery.Spooler) *download {
	h := sha256.New()
	return &download{SpoolWriter: sp.Writer(h), h: h}
}

// message ends the download and returns the message.
func (d *download) message(id string) (*Message, error) {
	sp, err := d.Finish()
	if err != nil {
		return nil, err
	}
	m := &Message{ID: id, Size: sp.Size(), sp: sp}
	d.h.Sum(m.SHA256[:0])
	return m, nil
}

// lfWriter converts CRLF line endings to LF on the way to w, as Maildir,
// mbox and MDAs expect (they are Unix files); a lone CR stays.
type lfWriter struct {
	w  io.Writer
	cr bool // the last byte seen was a CR not yet written
}

var _ io.Writer = (*lfWriter)(nil)

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

var _ io.Writer = (*tailWriter)(nil)

func (t *tailWriter) Write(p []byte) (int, error) {
	if len(p) > 0 {
		t.last = p[len(p)-1]
	}
	return t.w.Write(p)
}
