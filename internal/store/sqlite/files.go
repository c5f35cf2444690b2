package sqlite

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/buzon-mail/buzon/internal/durable"
)

// Body files are named by a 63-bit ID, in hex, in one of 256 shard
// folders picked by its low byte. The high bits are random: a random name
// needs no counter (and so no database write) before the body is on disk,
// and lets several processes write bodies for one account at once;
// os.Link refuses to replace an existing name, so a collision is retried,
// never a loss. The low byte is the minute: bodies written together land
// in one folder, which the group committer then syncs once for all of
// them, and over time the folders fill evenly.

// fileKey identifies a body file in the in-flight set.
type fileKey struct{ account, file int64 }

func newFileID() int64 {
	return (rand.Int64N(1<<55-1)+1)<<8 | time.Now().Unix()/60&0xff
}

func fileName(id int64) string { return strconv.FormatInt(id, 16) }

// shardPath is the folder, in the account folder dir, of the body file
// id: msg/ and the file ID's low byte in hex, 256 folders at most.
func shardPath(dir string, id int64) string {
	return filepath.Join(dir, msgDir, fmt.Sprintf("%02x", id&0xff))
}

// bodyFilePath is the path of the body file id in the account folder dir.
func bodyFilePath(dir string, id int64) string {
	return filepath.Join(shardPath(dir, id), fileName(id))
}

func (s *Store) shardDir(a *account, id int64) string { return shardPath(a.dir, id) }

func (s *Store) bodyPath(a *account, id int64) string { return bodyFilePath(a.dir, id) }

// addInflight records a body file that no committed row names yet, so that
// Check does not take it for an orphan.
func (s *Store) addInflight(account, file int64) {
	s.inflightMu.Lock()
	s.inflight[fileKey{account, file}] = struct{}{}
	s.inflightMu.Unlock()
}

func (s *Store) dropInflight(account, file int64) {
	s.inflightMu.Lock()
	delete(s.inflight, fileKey{account, file})
	s.inflightMu.Unlock()
}

func (s *Store) isInflight(account, file int64) bool {
	s.inflightMu.Lock()
	defer s.inflightMu.Unlock()
	_, ok := s.inflight[fileKey{account, file}]
	return ok
}

// writeBody stores exactly size bytes from r as a new body file, written
// straight into its shard folder and synced. It returns the file's ID,
// registered in flight, and the shard folder, which must be synced before
// the row naming the file commits (Store.write does it). The caller drops
// the ID from the in-flight set once the row is committed or the file
// removed. On error nothing is left behind, and a full disk is
// store.ErrStorageFull. A crash while the file is written leaves a body
// no row names, which Check removes.
func (s *Store) writeBody(a *account, r io.Reader, size int64) (int64, string, error) {
	for range 3 {
		id := newFileID()
		s.addInflight(a.id, id)
		dir, err := s.writeBodyAs(a, id, r, size)
		if err == nil {
			return id, dir, nil
		}
		s.dropInflight(a.id, id)
		if !errors.Is(err, os.ErrExist) {
			return 0, "", mapErr(err)
		}
	}
	return 0, "", errors.New("write body: no free file name after 3 tries")
}

func (s *Store) writeBodyAs(a *account, id int64, r io.Reader, size int64) (string, error) {
	dir := s.shardDir(a, id)
	path := filepath.Join(dir, fileName(id))
	f, err := s.createBody(path)
	if errors.Is(err, os.ErrNotExist) {
		if err = s.makeShard(dir); err == nil {
			f, err = s.createBody(path)
		}
	}
	if err != nil {
		return "", fmt.Errorf("write body: %w", err)
	}
	err = copyBody(f, r, size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return "", fmt.Errorf("write body: %w", err)
	}
	return dir, nil
}

// copyBody copies exactly size bytes of r to w. A message held in memory
// (a bytes.Reader, as delivery spools most mail) goes in one write.
func copyBody(w io.Writer, r io.Reader, size int64) error {
	var err error
	if mem, ok := r.(interface {
		io.WriterTo
		Len() int
	}); ok && int64(mem.Len()) == size {
		_, err = mem.WriteTo(w)
	} else {
		_, err = io.CopyN(w, r, size)
	}
	if errors.Is(err, io.EOF) {
		err = fmt.Errorf("message body shorter than its size %d: %w", size, io.ErrUnexpectedEOF)
	}
	return err
}

// linkBody gives an existing body file a second name, for a copy, and
// returns the new ID (registered in flight) and the folder to sync before
// the row commits. It fails with os.ErrNotExist if the source is gone
// (expunged).
func (s *Store) linkBody(a *account, src int64) (int64, string, error) {
	for range 3 {
		id := newFileID()
		s.addInflight(a.id, id)
		dir, err := s.link(a, s.bodyPath(a, src), id)
		if err == nil {
			return id, dir, nil
		}
		s.dropInflight(a.id, id)
		if !errors.Is(err, os.ErrExist) {
			return 0, "", mapErr(err)
		}
	}
	return 0, "", errors.New("link body: no free file name after 3 tries")
}

// link links src to body file id, creating its shard folder if needed. It
// returns the shard folder, which the caller syncs.
func (s *Store) link(a *account, src string, id int64) (string, error) {
	dir := s.shardDir(a, id)
	err := os.Link(src, filepath.Join(dir, fileName(id)))
	if errors.Is(err, os.ErrNotExist) {
		if _, serr := os.Stat(src); serr != nil {
			return "", err
		}
		if err := s.makeShard(dir); err != nil {
			return "", fmt.Errorf("link body: %w", err)
		}
		err = os.Link(src, filepath.Join(dir, fileName(id)))
	}
	if err != nil {
		return "", fmt.Errorf("link body: %w", err)
	}
	return dir, nil
}

// makeShard creates a shard folder and makes its creation durable.
func (s *Store) makeShard(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return durable.SyncDir(filepath.Dir(dir))
}

// removeBodies unlinks body files whose rows are gone (or never
// committed). Failures only leave orphans for Check, so they are logged.
func (s *Store) removeBodies(a *account, ids []int64) {
	for _, id := range ids {
		if err := os.Remove(s.bodyPath(a, id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("remove message body", "account", a.id, "file", fileName(id), "err", err)
		}
	}
}
