package delivery

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/buzon-mail/buzon/internal/message"
	"github.com/buzon-mail/buzon/internal/smtpclient"
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
	w := s.Writer(nil)
	chunk := make([]byte, 32*1024)
	for {
		n, rerr := r.Read(chunk)
		if n > 0 {
			if _, err := w.Write(chunk[:n]); err != nil {
				return nil, err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			w.Close()
			return nil, rerr
		}
	}
	return w.Finish()
}

// Writer returns a SpoolWriter, which spools as Spool does a message
// that is written rather than read (as a POP3 client's RETR hands one
// over). tee, when not nil, receives the message as spooled, line endings
// made CRLF: to hash it on the way, say.
func (s *Spooler) Writer(tee io.Writer) *SpoolWriter {
	return &SpoolWriter{s: s, tee: tee, sp: &Spooled{}}
}

// SpoolWriter spools the message written to it. Finish ends it; Close
// drops one that is not to be finished.
type SpoolWriter struct {
	s    *Spooler
	tee  io.Writer    // receives the spooled bytes, or nil
	sp   *Spooled     // being filled; nil once finished or dropped
	buf  bytes.Buffer // the message while it fits in memory
	ends message.LineEnds
	size int64 // bytes spooled so far, line endings made CRLF
	err  error // the first error, returned by every call after it
}

var _ io.Writer = (*SpoolWriter)(nil)

// errSpoolDone is a write to a SpoolWriter that was finished or closed.
var errSpoolDone = errors.New("spool: message already finished")

// Write spools p. It returns ErrTooLarge once the message passes the
// limit, and drops what was spooled.
func (w *SpoolWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.sp == nil {
		return 0, errSpoolDone
	}
	if err := w.put(w.ends.Convert(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// put spools norm, bytes with their line endings made CRLF.
func (w *SpoolWriter) put(norm []byte) error {
	w.size += int64(len(norm))
	if w.s.MaxSize > 0 && w.size > w.s.MaxSize {
		return w.fail(ErrTooLarge)
	}
	if w.sp.file == nil && w.size > w.s.MemoryLimit {
		if err := w.toFile(); err != nil {
			return w.fail(err)
		}
	}
	if err := w.write(norm); err != nil {
		return w.fail(err)
	}
	return nil
}

// toFile moves the message from memory to a temporary file.
func (w *SpoolWriter) toFile() error {
	f, err := os.CreateTemp(w.s.Dir, "spool-*")
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	// Unlinked at once: a crash leaves nothing behind.
	os.Remove(f.Name())
	if _, err := f.Write(w.buf.Bytes()); err != nil {
		f.Close()
		return fmt.Errorf("spool: %w", err)
	}
	w.sp.file = f
	w.buf = bytes.Buffer{}
	return nil
}

// write appends spooled bytes to memory or the file, and to the tee.
func (w *SpoolWriter) write(b []byte) error {
	if w.sp.file != nil {
		if _, err := w.sp.file.Write(b); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
	} else {
		w.buf.Write(b)
	}
	if w.tee != nil {
		if _, err := w.tee.Write(b); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
	}
	return nil
}

// fail drops the message and makes err the answer to every later call.
func (w *SpoolWriter) fail(err error) error {
	w.Close()
	w.err = err
	return err
}

// Finish ends the message and returns it, parsed. The Spooled is the
// caller's to close.
func (w *SpoolWriter) Finish() (*Spooled, error) {
	if w.err != nil {
		return nil, w.err
	}
	if w.sp == nil {
		return nil, errSpoolDone
	}
	if err := w.put(w.ends.End()); err != nil {
		return nil, err
	}
	sp := w.sp
	w.sp = nil
	sp.size = w.size
	if sp.file == nil {
		sp.mem = w.buf.Bytes()
	}
	part, err := message.Parse(sp.Reader())
	if err != nil {
		sp.Close()
		return nil, fmt.Errorf("spool: parse: %w", err)
	}
	sp.part = part
	sp.enc = message.Marshal(part)
	return sp, nil
}

// Close drops a message that was not finished, with its temporary file.
// After Finish it does nothing.
func (w *SpoolWriter) Close() error {
	if w.sp == nil {
		return nil
	}
	err := w.sp.Close()
	w.sp = nil
	w.buf = bytes.Buffer{}
	return err
}

// Reader returns a fresh reader over the whole message, as spooled.
func (sp *Spooled) Reader() io.Reader {
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
	return &store.NewMessage{Body: sp.Reader(), Size: sp.size, Structure: sp.enc, Flags: flags, InternalDate: date}
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

// header returns the message's header section, up to and including the
// empty line that ends it (the whole message when it has no body).
func (sp *Spooled) header() ([]byte, error) {
	n := sp.part.BodyStart // a Spooled is parsed before it is handed out
	if sp.file == nil {
		return sp.mem[:n], nil
	}
	h := make([]byte, n)
	if _, err := sp.file.ReadAt(h, 0); err != nil {
		return nil, fmt.Errorf("spool: read the header: %w", err)
	}
	return h, nil
}

// ReturnPath is the address of the message's first Return-Path field
// (RFC 5321 4.4), which the MTA that delivered it wrote from its MAIL
// FROM, without angle brackets: "" when there is none, it is the null
// path <>, or it is no path in angle brackets that could go to a relay
// as one (smtpclient.CheckPath): the field is the message's text, and
// the address goes on as the envelope sender of replies and forwards. It
// is the envelope sender of a message that comes without one (from the
// fetch client, or `buzon deliver` run without --from).
func (sp *Spooled) ReturnPath() string {
	h, err := sp.header()
	if err != nil {
		return ""
	}
	for f := range message.Fields(h) {
		if !bytes.EqualFold(f.Name, []byte("Return-Path")) {
			continue
		}
		v := f.Value() // unfolded: a folded field keeps its address
		inner, ok := strings.CutPrefix(v, "<")
		if inner, ok2 := strings.CutSuffix(inner, ">"); ok && ok2 {
			if path := strings.TrimSpace(inner); smtpclient.CheckPath(path) == nil {
				return path
			}
		}
		return ""
	}
	return ""
}
