package fetch

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/buzon-mail/buzon/internal/durable"
)

// Lock timing for mbox files.
const (
	// lockWait is how long an append waits for another program's lock.
	lockWait = 2 * time.Minute
	// staleDotlock is the age after which a .lock file is taken to be left
	// by a dead program and removed (as procmail and mutt do).
	staleDotlock = 5 * time.Minute
)

// mbox appends to an mbox file in the mboxrd format (RFC 4155 and its
// appendix): each message starts with a "From " line and ends with an
// empty line; body lines matching ^>*From  get one more ">". While
// appending it holds a <file>.lock dotlock, where the folder allows one,
// and the kernel locks of the system's convention (kernelLock), as mail
// programs do.
type mbox struct {
	path string
	now  func() time.Time
	// syncDir makes a folder's entries durable (durable.SyncDir).
	syncDir func(dir string) error
	// lockWait, when set, replaces the package's lockWait (for tests).
	lockWait time.Duration
	// createDotlock, when set, replaces the creation of the dotlock file
	// (for tests).
	createDotlock func(name string) (*os.File, error)
	// syncFile, when set, replaces (*os.File).Sync (for tests).
	syncFile func(*os.File) error
}

var _ Destination = (*mbox)(nil)

// newMbox returns the mbox file at path, which is created when first
// needed; syncDir is durable.SyncDir, or nil for it.
func newMbox(path string, now func() time.Time, syncDir func(string) error) *mbox {
	if syncDir == nil {
		syncDir = durable.SyncDir
	}
	return &mbox{path: path, now: now, syncDir: syncDir}
}

// sync makes what was written to f durable.
func (b *mbox) sync(f *os.File) error {
	if b.syncFile != nil {
		return b.syncFile(f)
	}
	return f.Sync()
}

func (b *mbox) String() string { return "mbox " + b.path }

func (b *mbox) Close() error { return nil }

// lock opens the file and takes its locks, the dotlock and then the
// kernel's (kernelLock), trying each without waiting so that a program
// taking them in another order cannot deadlock us.
func (b *mbox) lock(ctx context.Context) (f *os.File, unlock func(), err error) {
	f, err = os.OpenFile(b.path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		// A new file: its name is made durable in its folder, as its
		// contents will be when a message is appended.
		f, err = os.OpenFile(b.path, os.O_RDWR|os.O_CREATE, 0o600)
		if err == nil {
			if err = b.syncDir(filepath.Dir(b.path)); err != nil {
				f.Close()
			}
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("mbox: %w", err)
	}
	dot := b.path + ".lock"
	wait := b.lockWait
	if wait == 0 {
		wait = lockWait
	}
	deadline := time.Now().Add(wait)
	for {
		dotted, err := b.dotlock(dot)
		switch {
		case err == nil:
			busy, kernelUnlock, err := kernelLock(f)
			if err == nil && !busy {
				return f, func() {
					kernelUnlock()
					if dotted {
						os.Remove(dot)
					}
					f.Close()
				}, nil
			}
			if dotted {
				os.Remove(dot)
			}
			if err != nil {
				f.Close()
				return nil, nil, fmt.Errorf("mbox %s: %w", b.path, err)
			}
		case !errors.Is(err, os.ErrExist):
			f.Close()
			return nil, nil, fmt.Errorf("mbox: dotlock: %w", err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, nil, fmt.Errorf("%w: mbox %s stayed locked by another program for %v", ErrTryLater, b.path, wait)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// dotlock makes the <file>.lock dotlock, reporting whether it did, or
// os.ErrExist while another program holds one. One older than
// staleDotlock is taken to be left by a dead program and removed (as
// procmail and mutt do). Where the folder does not let us make one (a
// system mailbox in /var/mail, whose programs make theirs with the mail
// group's rights), the kernel's locks alone keep the others out: on Linux
// the programs that make dotlocks take an fcntl lock too (Debian Policy
// 22.6), and some take only that. A dotlock another program made there
// is still waited for.
func (b *mbox) dotlock(dot string) (made bool, err error) {
	create := b.createDotlock
	if create == nil {
		create = func(name string) (*os.File, error) {
			return os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		}
	}
	for range 2 {
		lf, err := create(dot)
		if err == nil {
			fmt.Fprintf(lf, "%d\n", os.Getpid())
			lf.Close()
			return true, nil
		}
		denied := errors.Is(err, fs.ErrPermission)
		if !denied && !errors.Is(err, os.ErrExist) {
			return false, err
		}
		fi, serr := os.Stat(dot)
		switch {
		case serr == nil && time.Since(fi.ModTime()) <= staleDotlock:
			return false, os.ErrExist
		case denied:
			return false, nil
		case serr == nil && os.Remove(dot) != nil:
			// Stale, but not ours to remove (a sticky folder): wait
			// for its owner, and give up at lockWait.
			return false, os.ErrExist
		}
		// Stale and removed, or gone meanwhile: once more.
	}
	return false, os.ErrExist
}

func (b *mbox) Deliver(ctx context.Context, m *Message, prev *Ref, intent func(Ref) error) error {
	f, unlock, err := b.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("mbox: %w", err)
	}
	size := fi.Size()
	if prev != nil && prev.Offset <= size && size < prev.Offset+prev.Length {
		// The file ends inside where the earlier attempt was writing. If
		// what is there is exactly the start of that attempt, it is a
		// message cut short by a crash: remove it.
		sep, err := separatorBefore(f, prev.Offset)
		if err != nil {
			return err
		}
		cmp := &prefixMatcher{want: make([]byte, size-prev.Offset)}
		if _, err := f.ReadAt(cmp.want, prev.Offset); err != nil {
			return fmt.Errorf("mbox: %w", err)
		}
		if err := renderMbox(cmp, sep, prev.FromLine, m); err != nil && !errors.Is(err, errPrefixDone) {
			return err
		}
		if cmp.matched == len(cmp.want) {
			if err := f.Truncate(prev.Offset); err != nil {
				return fmt.Errorf("mbox: %w", err)
			}
			size = prev.Offset
		}
	}
	sep, err := separatorBefore(f, size)
	if err != nil {
		return err
	}
	from := "From " + envelopeSender(m) + " " + b.now().UTC().Format(time.ANSIC)
	h := sha256.New()
	cw := &countWriter{w: h}
	if err := renderMbox(cw, sep, from, m); err != nil {
		return err
	}
	ref := Ref{Offset: size, Length: cw.n, SHA256: hex.EncodeToString(h.Sum(nil)), FromLine: from}
	if err := intent(ref); err != nil {
		return err
	}
	fail := func(err error) error {
		// Leave the file as it was.
		f.Truncate(size)
		b.sync(f)
		return fmt.Errorf("mbox %s: %w", b.path, err)
	}
	bw := bufio.NewWriterSize(io.NewOffsetWriter(f, size), 64*1024)
	if err := renderMbox(bw, sep, from, m); err != nil {
		return fail(err)
	}
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	if err := b.sync(f); err != nil {
		return fail(err)
	}
	return nil
}

// Has reports whether the file holds, at the intent's offset, the
// message the intent describes. Found, the file is synced before Has says
// so: a run stopped between the write and its sync (a crash, a sync that
// failed) wrote bytes that a power cut may still take, and the caller
// deletes the message on the server once Has reports it.
func (b *mbox) Has(ctx context.Context, ref Ref) (bool, error) {
	if ref.Length == 0 {
		return false, nil
	}
	f, unlock, err := b.lock(ctx)
	if err != nil {
		return false, err
	}
	defer unlock()
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("mbox: %w", err)
	}
	if fi.Size() < ref.Offset+ref.Length {
		return false, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, ref.Offset, ref.Length)); err != nil {
		return false, fmt.Errorf("mbox: %w", err)
	}
	if hex.EncodeToString(h.Sum(nil)) != ref.SHA256 {
		return false, nil
	}
	if err := b.sync(f); err != nil {
		return false, fmt.Errorf("mbox %s: %w", b.path, err)
	}
	return true, nil
}

// separatorBefore returns what must precede a message written at off so
// that it starts after an empty line (RFC 4155 2): nothing at the start of
// the file or after "\n\n".
func separatorBefore(f *os.File, off int64) (string, error) {
	if off == 0 {
		return "", nil
	}
	var tail [2]byte
	start := max(off-2, 0)
	n, err := f.ReadAt(tail[:off-start], start)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("mbox: %w", err)
	}
	t := string(tail[:n])
	switch {
	case t == "\n\n" || (off == 1 && t == "\n"):
		return "", nil
	case strings.HasSuffix(t, "\n"):
		return "\n", nil
	}
	return "\n\n", nil
}

// renderMbox writes one mbox entry: sep, the From_ line, the message with
// LF line endings and mboxrd quoting, a line break if the message lacks
// one at the end, and the empty line that ends the entry.
func renderMbox(w io.Writer, sep, fromLine string, m *Message) error {
	if _, err := io.WriteString(w, sep+fromLine+"\n"); err != nil {
		return err
	}
	q := &mboxrdWriter{w: w}
	endsInLF, err := copyLF(q, m.Open())
	if err != nil {
		return err
	}
	if err := q.flush(); err != nil {
		return err
	}
	end := "\n"
	if !endsInLF {
		end = "\n\n"
	}
	_, err = io.WriteString(w, end)
	return err
}

// mboxrdWriter adds a ">" to lines matching ^>*From  (mboxrd), so that
// reading removes exactly one and gets the message back.
type mboxrdWriter struct {
	w io.Writer
	// inLine is set past the start of a line that is decided.
	inLine bool
	// pend holds the start of a line that may still turn out to be
	// ">*From ".
	pend []byte
}

var _ io.Writer = (*mboxrdWriter)(nil)

func (q *mboxrdWriter) Write(p []byte) (int, error) {
	out := make([]byte, 0, len(p)+8)
	for _, c := range p {
		if q.inLine {
			out = append(out, c)
			q.inLine = c != '\n'
			continue
		}
		q.pend = append(q.pend, c)
		rest := bytes.TrimLeft(q.pend, ">")
		switch {
		case c == '\n' || (len(rest) > 0 && !bytes.HasPrefix([]byte("From "), rest) && !bytes.HasPrefix(rest, []byte("From "))):
			// Not a From line.
			out = append(out, q.pend...)
		case bytes.HasPrefix(rest, []byte("From ")):
			out = append(out, '>')
			out = append(out, q.pend...)
		default:
			continue // still undecided
		}
		q.inLine = c != '\n'
		q.pend = q.pend[:0]
	}
	if _, err := q.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// flush writes an undecided start of the last line.
func (q *mboxrdWriter) flush() error {
	if len(q.pend) == 0 {
		return nil
	}
	_, err := q.w.Write(q.pend)
	q.pend = q.pend[:0]
	return err
}

// envelopeSender is the address of the message's Return-Path header, or
// MAILER-DAEMON, for the From_ line.
func envelopeSender(m *Message) string {
	br := bufio.NewReader(io.LimitReader(m.Open(), 64*1024))
	for {
		line, err := br.ReadString('\n')
		trimmed := strings.TrimRight(line, "\r\n")
		if trimmed == "" {
			break
		}
		if name, value, ok := strings.Cut(trimmed, ":"); ok && strings.EqualFold(name, "Return-Path") {
			addr := strings.Trim(strings.TrimSpace(value), "<>")
			if addr != "" && !strings.ContainsAny(addr, " \t") && strconv.IsPrint(rune(addr[0])) {
				return addr
			}
			break
		}
		if err != nil {
			break
		}
	}
	return "MAILER-DAEMON"
}

// countWriter counts bytes on their way to w.
type countWriter struct {
	w io.Writer
	n int64
}

var _ io.Writer = (*countWriter)(nil)

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// errPrefixDone stops a rendering once a prefixMatcher has seen enough.
var errPrefixDone = errors.New("prefix compared")

// prefixMatcher compares what is written to it with want, counting how
// many leading bytes match.
type prefixMatcher struct {
	want    []byte
	matched int
}

var _ io.Writer = (*prefixMatcher)(nil)

func (p *prefixMatcher) Write(b []byte) (int, error) {
	rest := p.want[p.matched:]
	n := min(len(b), len(rest))
	if !bytes.Equal(b[:n], rest[:n]) {
		return 0, errPrefixDone
	}
	p.matched += n
	if p.matched == len(p.want) {
		return 0, errPrefixDone
	}
	return len(b), nil
}
