package delivery

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/buzon-mail/buzon/internal/message"
	"github.com/buzon-mail/buzon/internal/store"
)

// ErrTooLarge means a message passed the configured size limit.
var ErrTooLarge = errors.New("message exceeds the size limit")

// Spooler reads incoming messages once into memory or a temporary file,
// normalising line endings to CRLF (so sizes are the octets every protocol
// serves), enforcing the size limit, and parsing the MIME structure.
type Spooler struct {
	// Dir holds temporary files for messages above MemoryLimit. It should
	// be on the same filesystem as the store. Empty: os.TempDir().
	Dir string
	// MemoryLimit is the largest message kept in memory.
	MemoryLimit int64
	// MaxSize is the largest message accepted; 0 means no limit.
	MaxSize int64
}

// Spooled is a message read by a Spooler. Close it when done.
type Spooled struct {
	mem  []byte   // the message, when it fits in memory
	file *os.File // otherwise, an unlinked temporary file
	size int64
	part *message.Part
	enc  []byte // message.Marshal(part)
}

// Spool reads r to its end. It returns ErrTooLarge, with r consumed only
// up to the limit, when the message is too big.
func (s *Spooler) Spool(r io.Reader) (*Spooled, error) {
	sp := &Spooled{}
	var buf bytes.Buffer
	var out io.Writer = &buf
	w := &crlfWriter{}
	flushToFile := func() error {
		f, err := os.CreateTemp(s.Dir, "spool-*")
		if err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		// Unlinked at once: a crash leaves nothing behind.
		os.Remove(f.Name())
		if _, err := f.Write(buf.Bytes()); err != nil {
			f.Close()
			return fmt.Errorf("spool: %w", err)
		}
		sp.file, out = f, f
		buf = bytes.Buffer{}
		return nil
	}
	chunk := make([]byte, 32*1024)
	for {
		n, rerr := r.Read(chunk)
		if n > 0 {
			norm := w.convert(chunk[:n])
			if s.MaxSize > 0 && w.total > s.MaxSize {
				sp.Close()
				return nil, ErrTooLarge
			}
			if sp.file == nil && w.total > s.MemoryLimit {
				if err := flushToFile(); err != nil {
					return nil, err
				}
			}
			if _, err := out.Write(norm); err != nil {
				sp.Close()
				return nil, fmt.Errorf("spool: %w", err)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			sp.Close()
			return nil, rerr
		}
	}
	if tail := w.finish(); len(tail) > 0 {
		if _, err := out.Write(tail); err != nil {
			sp.Close()
			return nil, fmt.Errorf("spool: %w", err)
		}
	}
	sp.size = w.total
	if sp.file == nil {
		sp.mem = buf.Bytes()
	}
	part, err := message.Parse(sp.reader())
	if err != nil {
		sp.Close()
		return nil, fmt.Errorf("spool: parse: %w", err)
	}
	sp.part = part
	sp.enc = message.Marshal(part)
	return sp, nil
}

// reader returns a fresh reader over the whole message.
func (sp *Spooled) reader() io.Reader {
	if sp.file != nil {
		return bufio.NewReaderSize(io.NewSectionReader(sp.file, 0, sp.size), 64*1024)
	}
	return bytes.NewReader(sp.mem)
}

// Size is the message's length in bytes, after CRLF normalisation.
func (sp *Spooled) Size() int64 { return sp.size }

// Part is the parsed MIME structure.
func (sp *Spooled) Part() *message.Part { return sp.part }

// NewMessage returns the message ready for store.Session.Append, reading
// from the start each time it is called.
func (sp *Spooled) NewMessage(flags store.Flags, date time.Time) *store.NewMessage {
	return &store.NewMessage{Body: sp.reader(), Size: sp.size, Structure: sp.enc, Flags: flags, InternalDate: date}
}

// Close releases the spooled message.
func (sp *Spooled) Close() error {
	if sp.file != nil {
		err := sp.file.Close()
		sp.file = nil
		return err
	}
	return nil
}

// crlfWriter converts line endings to CRLF across chunk boundaries: a bare
// LF becomes CRLF, and so does a bare CR, which no protocol can carry.
type crlfWriter struct {
	out   []byte
	cr    bool  // the previous chunk ended in CR
	total int64 // bytes produced so far
}

// convert returns in with its line endings made CRLF. Input that has them
// already, as SMTP and LMTP carry it, comes back as it is, uncopied.
func (w *crlfWriter) convert(in []byte) []byte {
	if !w.cr && crlfOnly(in) {
		w.total += int64(len(in))
		return in
	}
	w.out = w.out[:0]
	for _, c := range in {
		switch {
		case w.cr && c == '\n':
			w.out = append(w.out, '\n')
			w.cr = false
			continue
		case w.cr:
			w.out = append(w.out, '\n')
			w.cr = false
		}
		switch c {
		case '\r':
			w.out = append(w.out, '\r')
			w.cr = true
		case '\n':
			w.out = append(w.out, '\r', '\n')
		default:
			w.out = append(w.out, c)
		}
	}
	w.total += int64(len(w.out))
	return w.out
}

// crlfOnly reports whether every CR in b is followed by LF and every LF
// follows a CR: then b needs no conversion.
func crlfOnly(b []byte) bool {
	crs := 0
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\r')
		if j < 0 {
			break
		}
		i += j + 1
		if i == len(b) || b[i] != '\n' {
			return false
		}
		crs++
	}
	return bytes.Count(b, []byte{'\n'}) == crs
}

// finish completes a CR left at the very end.
func (w *crlfWriter) finish() []byte {
	if !w.cr {
		return nil
	}
	w.cr = false
	w.total++
	return []byte{'\n'}
}
