package fetch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/buzon-mail/buzon/internal/durable"
)

// maildir delivers into a Maildir folder (https://cr.yp.to/proto/maildir.html):
// the message is written to tmp/ under a unique name, synced, then linked
// into new/, and new/ is synced; a reader never sees half a message.
type maildir struct {
	dir  string
	host string // the host part of file names, with "/" and ":" escaped
	pid  int
	now  func() time.Time
	// syncDir makes a folder's entries durable (durable.SyncDir).
	syncDir func(dir string) error
	// deliveries counts messages written by this destination, for unique
	// names ("Q" in the name).
	deliveries atomic.Uint64
}

var _ Destination = (*maildir)(nil)

// newMaildir opens a Maildir, creating what it lacks durably (see
// mkdirAll); syncDir is durable.SyncDir, or nil for it.
func newMaildir(dir, hostname string, now func() time.Time, syncDir func(string) error) (*maildir, error) {
	if syncDir == nil {
		syncDir = durable.SyncDir
	}
	for _, sub := range []string{"", "tmp", "new", "cur"} {
		if err := mkdirAll(filepath.Join(dir, sub), syncDir); err != nil {
			return nil, fmt.Errorf("maildir: %w", err)
		}
	}
	// The spec: "/" becomes \057 and ":" \072 in the host name.
	host := strings.NewReplacer("/", `\057`, ":", `\072`).Replace(hostname)
	return &maildir{dir: dir, host: host, pid: os.Getpid(), now: now, syncDir: syncDir}, nil
}

// mkdirAll makes a folder and the parents it lacks, and makes every
// level durable in its parent, those it found too: a folder a run creates
// must survive a power cut after the server deleted the messages stored
// in it, as their files do, and one that a run which crashed before
// syncing it left behind is found by the next, unsynced. (A sync of a
// folder found, that we may not open, is left out: someone else made it.)
func mkdirAll(dir string, syncDir func(string) error) error {
	dir = filepath.Clean(dir)
	fi, err := os.Stat(dir)
	found := err == nil
	switch {
	case found && !fi.IsDir():
		return fmt.Errorf("%s is not a folder", dir)
	case !found && !errors.Is(err, os.ErrNotExist):
		return err
	}
	parent := filepath.Dir(dir)
	if parent == dir {
		return nil // the root, in no parent
	}
	if err := mkdirAll(parent, syncDir); err != nil {
		return err
	}
	if !found {
		// Another program may have made it meanwhile, and not synced it.
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	if err := syncDir(parent); err != nil && !(found && errors.Is(err, fs.ErrPermission)) {
		return err
	}
	return nil
}

func (d *maildir) String() string { return "maildir " + d.dir }

func (d *maildir) Close() error { return nil }

// uniqueName makes a name that no other delivery, in this process or
// another, on this host or another, will use: the time to the
// microsecond, the process, a per-destination counter and random bits.
func (d *maildir) uniqueName() string {
	t := d.now()
	var rnd [6]byte
	rand.Read(rnd[:])
	return fmt.Sprintf("%d.M%dP%dQ%dR%s.%s", t.Unix(), t.Nanosecond()/1000, d.pid,
		d.deliveries.Add(1), hex.EncodeToString(rnd[:]), d.host)
}

func (d *maildir) Deliver(ctx context.Context, m *Message, prev *Ref, intent func(Ref) error) error {
	if prev != nil && prev.Name != "" {
		// A crash while the earlier attempt was in tmp/.
		os.Remove(filepath.Join(d.dir, "tmp", prev.Name))
	}
	name := d.uniqueName()
	if err := intent(Ref{Name: name}); err != nil {
		return err
	}
	tmp := filepath.Join(d.dir, "tmp", name)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	_, err = copyLF(f, m.Open())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("maildir: write %s: %w", tmp, err)
	}
	dst := filepath.Join(d.dir, "new", name)
	if err := os.Link(tmp, dst); err != nil {
		if errors.Is(err, os.ErrExist) {
			os.Remove(tmp)
			return fmt.Errorf("maildir: %s exists", dst)
		}
		// Filesystems without hard links: rename, which never replaces
		// here since the name is unique.
		if err := os.Rename(tmp, dst); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("maildir: %w", err)
		}
	} else {
		os.Remove(tmp)
	}
	if err := d.syncDir(filepath.Join(d.dir, "new")); err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	return nil
}

// Has looks for the file in new/ and, since a mail client moves what it
// has seen to cur/ adding ":2,<flags>" (or ",<info>" for some), in cur/.
// Found, the folder that holds it is synced before Has says so: a run
// stopped between the link into new/ and the sync of new/ (a crash, a
// sync that failed) left an entry a power cut may still take, and the
// caller deletes the message on the server once Has reports it. Then a
// second link to it left in tmp/ by a crash between link and unlink goes.
func (d *maildir) Has(_ context.Context, ref Ref) (bool, error) {
	if ref.Name == "" {
		return false, nil
	}
	sub, err := d.find(ref.Name)
	if sub == "" || err != nil {
		return false, err
	}
	if err := d.syncDir(filepath.Join(d.dir, sub)); err != nil {
		return false, fmt.Errorf("maildir: %w", err)
	}
	os.Remove(filepath.Join(d.dir, "tmp", ref.Name))
	return true, nil
}

// find returns the subfolder, "new" or "cur", that holds the message
// named name, or "" when neither does.
func (d *maildir) find(name string) (string, error) {
	if _, err := os.Stat(filepath.Join(d.dir, "new", name)); err == nil {
		return "new", nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("maildir: %w", err)
	}
	entries, err := os.ReadDir(filepath.Join(d.dir, "cur"))
	if err != nil {
		return "", fmt.Errorf("maildir: %w", err)
	}
	for _, e := range entries {
		if rest, ok := strings.CutPrefix(e.Name(), name); ok && (rest == "" || rest[0] == ':' || rest[0] == ',') {
			return "cur", nil
		}
	}
	return "", nil
}
