package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/buzon-mail/buzon/internal/durable"
	"github.com/buzon-mail/buzon/internal/store"
)

// ErrInUse is Restore's error when a buzon process has the data folder
// open.
var ErrInUse = errors.New("a buzon process (the server?) has the data folder open")

// RestoreOptions configures Restore. The zero value is the safe choice.
type RestoreOptions struct {
	// Force restores into a data folder that is not empty: the folder is
	// first renamed aside (RestoreReport.MovedAside), never deleted.
	Force bool
	// KeepUIDValidity keeps every mailbox's UIDVALIDITY as the backup has
	// it. Only for a backup taken while nothing else had the store open
	// (BackupReport.Quiescent, which Restore checks) and after which no
	// server ran on the store: then clients' cached UIDs and POP3 UIDLs
	// still name the same messages. Otherwise mail that came after the
	// backup had UIDs the restored store hands out again, to other
	// messages. Restore also refuses it over the very store the backup
	// was taken of once that store has changed (changedSince).
	KeepUIDValidity bool
	// Owner, if set, is given every restored file and folder: for root
	// restoring the data folder of the user the server runs as, who
	// cannot write beside it (/var/lib/buzon in a root-owned /var/lib).
	Owner *Owner

	// beforeSwap, set by tests, runs once the copy is whole, before the
	// old folder is moved aside.
	beforeSwap func()
}

// Owner is a user and group, by number.
type Owner struct{ UID, GID int }

// RestoreReport says what Restore did.
type RestoreReport struct {
	Taken      time.Time // when the backup was finished
	Accounts   int
	Messages   int64
	MovedAside string // where Force put the folder's old contents, or ""
	// UIDValidity is the lowest new UIDVALIDITY, 0 if kept.
	UIDValidity uint32
}

// uidValidityMargin is how far above the clock restored mailboxes'
// UIDVALIDITY starts. The store that made the backup may have handed out
// values ahead of its clock (several mailboxes made in one second, see
// createMailbox) after the backup, and the clock of the machine restoring
// may be behind that one's: a day covers both, as it does in
// uidValidityMark.
const uidValidityMargin = 86400

// Restore makes the data folder dir a copy of the backup in backupDir
// (made by Store.Backup), which it leaves as it is. It refuses while a
// buzon process has dir open (ErrInUse) and, unless opts.Force, when dir
// is not empty. The copy is made in <dir>.partial, checked and synced;
// only then is a folder that was there moved aside and the copy renamed
// to dir.
//
// Unless opts.KeepUIDValidity, every mailbox gets a new UIDVALIDITY,
// higher than any the backup's store can have handed out (RFC 9051
// 2.3.1.1): mail that arrived after the backup was taken got UIDs the
// restored store will give other messages, and a client that cached
// them, or a QRESYNC client trusting VANISHED (RFC 7162 3.2.5), would
// show the wrong mail. The new UIDVALIDITY makes every client read the
// mailbox afresh; POP3 UIDLs, made from it, change too.
func Restore(ctx context.Context, backupDir, dir string, opts RestoreOptions) (RestoreReport, error) {
	var rep RestoreReport
	backupDir, err := filepath.Abs(backupDir)
	if err == nil {
		dir, err = filepath.Abs(dir)
	}
	if err == nil {
		// A data folder reached through a symbolic link (/var/lib/buzon
		// pointing to a bigger disk) is restored where the link points:
		// moving the link aside and putting a folder in its place would
		// put the mail on the link's disk and leave the link's target
		// holding the old store.
		dir, err = resolveLink(dir)
	}
	if err != nil {
		return rep, fmt.Errorf("restore into %s: %w", dir, err)
	}
	partial := dir + partialSuffix
	// <dir>.partial is removed first, so it must not be, or hold, the
	// backup either.
	if within(backupDir, dir) || within(dir, backupDir) || within(backupDir, partial) || within(partial, backupDir) {
		return rep, fmt.Errorf("restore into %s: it or %s overlaps the backup %s", dir, partial, backupDir)
	}
	m, err := readManifest(backupDir)
	if err != nil {
		return rep, err // it names the backup
	}
	rep.Taken = m.Taken
	if err := checkSchemas(backupDir); err != nil {
		return rep, fmt.Errorf("restore of %s: %w", backupDir, err)
	}
	if opts.KeepUIDValidity && !m.Quiescent {
		return rep, fmt.Errorf("restore of %s: the backup was taken while the store was in use, "+
			"so mail may have come after it: its UIDVALIDITY cannot be kept", backupDir)
	}

	// The old folder stays where it is, locked, while the copy is made
	// (the long part), so that a server started meanwhile waits for its
	// lock in Open instead of making a new, empty store where the old
	// one was; it is moved aside only once the copy is whole.
	exists, empty, hasLock := false, false, false
	switch entries, err := os.ReadDir(dir); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return rep, fmt.Errorf("restore into %s: %w", dir, err)
	default:
		if mountPoint(dir) {
			return rep, fmt.Errorf("restore into %s: it is a mount point, which restore cannot replace or move aside: "+
				"restore into a new folder inside it, and give the server that --data", dir)
		}
		lock, err := lockAway(dir)
		if err != nil {
			return rep, fmt.Errorf("restore into %s: %w", dir, err)
		}
		if lock != nil {
			defer lock.Close()
			hasLock = true
		}
		exists, empty = true, len(entries) == 0
		if !empty && !opts.Force {
			return rep, fmt.Errorf("restore into %s: it is not empty (--force moves it aside)", dir)
		}
	}

	if err := removePartial(partial); err != nil {
		return rep, fmt.Errorf("restore into %s: %w", dir, err)
	}
	if err := os.MkdirAll(partial, 0o700); err != nil {
		return rep, fmt.Errorf("restore into %s: %w", dir, err)
	}
	if err := restoreInto(ctx, backupDir, partial, opts, &rep); err != nil {
		os.RemoveAll(partial)
		return rep, fmt.Errorf("restore %s into %s: %w", backupDir, dir, err)
	}
	if opts.KeepUIDValidity && exists && !empty {
		// The one misuse restore can see: the folder holds the very store
		// the backup was taken of, and a server ran on it since.
		name, err := changedSince(ctx, partial, dir)
		if err == nil && name != "" {
			err = fmt.Errorf("account %s changed after the backup was taken (a server ran on this store since, or a restore gave it new UIDVALIDITY values), "+
				"and its clients know UIDs that the restored store would give other mail: restore without --keep-uidvalidity", name)
		}
		if err != nil {
			os.RemoveAll(partial)
			return rep, fmt.Errorf("restore into %s: %w", dir, err)
		}
	}
	if hasLock {
		// A server started during the copy waits in Open for the lock on
		// the old folder's store.lock, and takes it when restore ends:
		// the restored folder gets that very file, so the lock the server
		// then holds is the one later restores and backups look at.
		if err := shareLock(dir, partial); err != nil {
			os.RemoveAll(partial)
			return rep, fmt.Errorf("restore into %s: %w", dir, err)
		}
	}
	if opts.beforeSwap != nil {
		opts.beforeSwap()
	}

	// From here the copy is whole and kept whatever happens, for the
	// person to see to: an error says where it and the old folder are.
	switch {
	case exists && !empty:
		aside, err := moveAside(dir, time.Now())
		if err != nil {
			os.RemoveAll(partial)
			return rep, fmt.Errorf("restore into %s: move it aside: %w", dir, err)
		}
		rep.MovedAside = aside
		if hasLock {
			// Its own again, should a server ever start there.
			os.Remove(filepath.Join(aside, "store.lock"))
		}
	case exists:
		// rename(2) would replace an empty folder, but not one a buzon
		// process has just filled: this says so.
		if err := os.Remove(dir); err != nil {
			return rep, fmt.Errorf("restore into %s: %w (did a buzon process start on it?); the restored copy is in %s", dir, err, partial)
		}
	}
	if err := os.Rename(partial, dir); err != nil {
		where := ""
		if rep.MovedAside != "" {
			where = ", and the folder's former contents in " + rep.MovedAside
		}
		if errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTEMPTY) {
			err = fmt.Errorf("a buzon process (the server?) made a new store there while restore ran: stop it, "+
				"move %s aside and rename %s to it; the restored copy is in %s%s", dir, partial, partial, where)
		} else {
			err = fmt.Errorf("%w; the restored copy is in %s%s", err, partial, where)
		}
		return rep, fmt.Errorf("restore into %s: %w", dir, err)
	}
	if err := durable.SyncDir(filepath.Dir(dir)); err != nil {
		return rep, fmt.Errorf("restore into %s: %w", dir, err)
	}
	return rep, nil
}

// checkSchemas refuses, before anything is copied, a backup whose
// databases a newer buzon wrote, which this one cannot open. It reads
// their headers only: the backup stays as it is.
func checkSchemas(backupDir string) error {
	paths, err := filepath.Glob(filepath.Join(backupDir, accountsDir, "*", mailDBName))
	if err != nil {
		return err
	}
	for _, path := range append([]string{filepath.Join(backupDir, accountsDB)}, paths...) {
		v, err := schemaVersion(path)
		if err != nil {
			return err
		}
		known := len(mailSchema)
		if filepath.Base(path) == accountsDB {
			known = len(accountsSchema)
		}
		if v > known {
			return fmt.Errorf("%s is of schema version %d, and this buzon knows up to %d: restore it with the buzon that made the backup, or a newer one", path, v, known)
		}
	}
	return nil
}

// schemaVersion reads the user_version (what migrate sets) in the header
// of the SQLite database at path.
func schemaVersion(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	// https://sqlite.org/fileformat.html 1.3: the magic string, and the
	// user version, big-endian, at offset 60 of the 100-byte header.
	var h [100]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return 0, fmt.Errorf("%s: not a database: %w", path, err)
	}
	if string(h[:16]) != "SQLite format 3\x00" {
		return 0, fmt.Errorf("%s: not a database", path)
	}
	return int(binary.BigEndian.Uint32(h[60:64])), nil
}

// changedSince returns the name of an account of the store restored in
// copy that the store in old, the same store later, has changed: the
// same account (ID, name and creation time) with a higher MODSEQ or more
// mailboxes made. "" if there is none, or old is another store.
func changedSince(ctx context.Context, copy, old string) (string, error) {
	type account struct {
		name    string
		created int64
	}
	accounts := func(dir string) (map[int64]account, error) {
		path := filepath.Join(dir, accountsDB)
		if _, err := os.Stat(path); err != nil {
			return nil, err
		}
		db, err := openDB(path, 1, time.Second)
		if err != nil {
			return nil, err
		}
		defer db.Close()
		rows, err := db.QueryContext(ctx, `SELECT id, name, created FROM account`)
		if err != nil {
			return nil, mapErr(err)
		}
		defer rows.Close()
		m := map[int64]account{}
		for rows.Next() {
			var id int64
			var a account
			if err := rows.Scan(&id, &a.name, &a.created); err != nil {
				return nil, mapErr(err)
			}
			m[id] = a
		}
		return m, mapErr(rows.Err())
	}
	// meta is what grows with every change to an account's mail.
	type meta struct{ modseq, nextMailbox, nextUIDValidity int64 }
	metaOf := func(dir string, id int64) (meta, bool, error) {
		var m meta
		path := filepath.Join(dir, accountsDir, strconv.FormatInt(id, 10), mailDBName)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return m, false, nil
		}
		db, err := openDB(path, 1, time.Second)
		if err != nil {
			return m, false, err
		}
		defer db.Close()
		err = db.QueryRowContext(ctx, `SELECT modseq, next_mailbox, next_uidvalidity FROM meta`).
			Scan(&m.modseq, &m.nextMailbox, &m.nextUIDValidity)
		return m, err == nil, mapErr(err)
	}

	oldAccts, err := accounts(old)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("read the store there: %w", err)
	}
	copyAccts, err := accounts(copy)
	if err != nil {
		return "", err
	}
	for id, a := range copyAccts {
		if oldAccts[id] != a {
			continue
		}
		was, ok, err := metaOf(copy, id)
		if err != nil || !ok {
			return "", err
		}
		now, ok, err := metaOf(old, id)
		if err != nil {
			return "", fmt.Errorf("read the store there: %w", err)
		}
		if ok && (now.modseq > was.modseq || now.nextMailbox > was.nextMailbox || now.nextUIDValidity > was.nextUIDValidity) {
			return a.name, nil
		}
	}
	return "", nil
}

// moveAside renames dir to dir.before-restore-<now>, or, when a restore
// in the same second took that name, to the first of -2, -3, ... that is
// free; rename(2) would put an empty folder of that name in the way. It
// returns the new name.
func moveAside(dir string, now time.Time) (string, error) {
	base := dir + ".before-restore-" + now.UTC().Format("20060102T150405Z")
	for n := 1; ; n++ {
		aside := base
		if n > 1 {
			aside = fmt.Sprintf("%s-%d", base, n)
		}
		if _, err := os.Lstat(aside); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		if err := os.Rename(dir, aside); err != nil {
			return "", err
		}
		return aside, durable.SyncDir(filepath.Dir(dir))
	}
}

// shareLock makes the store.lock of the restored copy in partial the
// same file as the one of the folder dir it replaces.
func shareLock(dir, partial string) error {
	lock := filepath.Join(partial, "store.lock")
	if err := os.Remove(lock); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Link(filepath.Join(dir, "store.lock"), lock); err != nil {
		return err
	}
	return durable.SyncDir(partial)
}

// lockAway takes the data folder dir's store lock exclusively, which
// fails while any Store has it open, and returns the locked file, to be
// closed to unlock. Without a store.lock there is no store there to be
// open, and lock is nil.
func lockAway(dir string) (lock *os.File, err error) {
	f, err := os.OpenFile(filepath.Join(dir, "store.lock"), os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrInUse
		}
		return nil, err
	}
	return f, nil
}

// restoreInto copies the backup into the new folder dir, gives its
// mailboxes new UIDVALIDITY values unless told not to, checks it and
// syncs it.
func restoreInto(ctx context.Context, backupDir, dir string, opts RestoreOptions, rep *RestoreReport) error {
	_, err := copyTree(ctx, backupDir, dir, func(rel string) bool {
		return rel != backupManifest && rel != "store.lock"
	})
	if err != nil {
		return err
	}
	st, err := Open(Config{Dir: dir})
	if err != nil {
		return err
	}
	err = renewAndVerify(ctx, st, opts, rep)
	if cerr := st.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close the restored store: %w", cerr)
	}
	if err != nil {
		return err
	}
	if opts.Owner != nil {
		if err := chownTree(dir, *opts.Owner); err != nil {
			return err
		}
	}
	return syncTree(dir)
}

// renewAndVerify gives the mailboxes of the restored store st new
// UIDVALIDITY values unless opts says not to, and checks it.
func renewAndVerify(ctx context.Context, st *Store, opts RestoreOptions, rep *RestoreReport) error {
	if !opts.KeepUIDValidity {
		// The backup was taken before anything it lacks came: a clock
		// behind its taking is wrong, and must not pull the new values
		// under ones handed out since.
		now := time.Now()
		if rep.Taken.After(now) {
			now = rep.Taken
		}
		var err error
		if rep.UIDValidity, err = renewUIDValidity(ctx, st, now); err != nil {
			return err
		}
	}
	check, err := verifyStore(ctx, st)
	if err != nil {
		return err
	}
	rep.Accounts, rep.Messages = check.Accounts, check.Messages
	return nil
}

// chownTree gives everything under dir, dir included, to o.
func chownTree(dir string, o Owner) error {
	return filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, o.UID, o.GID)
	})
}

// resolveLink returns the absolute path dir names once symbolic links
// are followed, or dir when there is nothing there yet.
func resolveLink(dir string) (string, error) {
	real, err := filepath.EvalSymlinks(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return dir, nil
	} else if err != nil {
		return dir, err
	}
	return filepath.Abs(real)
}

// renewUIDValidity gives every mailbox of the store st a new
// UIDVALIDITY, the lowest of them base: at least a margin above the clock
// (now) and above every value the store had handed out or reserved. It
// returns base.
func renewUIDValidity(ctx context.Context, st *Store, now time.Time) (uint32, error) {
	accts, err := st.Accounts(ctx)
	if err != nil {
		return 0, err
	}
	base := uint32(now.Unix()) + uidValidityMargin
	mark, err := uidValidityCounter(ctx, st.adb)
	if err != nil {
		return 0, err
	}
	high := mark + 1
	for _, acct := range accts {
		a, err := st.acquire(ctx, acct.ID)
		if err != nil {
			return 0, err
		}
		var next int64
		err = a.db.QueryRowContext(ctx, `SELECT next_uidvalidity FROM meta`).Scan(&next)
		st.release(a)
		if err != nil {
			return 0, fmt.Errorf("account %d: %w", acct.ID, mapErr(err))
		}
		high = max(high, next)
	}
	if high > math.MaxUint32 {
		return 0, fmt.Errorf("UIDVALIDITY %d is beyond 32 bits", high)
	}
	base = max(base, uint32(high))

	top := int64(base)
	for _, acct := range accts {
		a, err := st.acquire(ctx, acct.ID)
		if err != nil {
			return 0, err
		}
		err = st.write(ctx, a, func(ctx context.Context, tx *sql.Tx) error {
			var n int64
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM mailbox`).Scan(&n); err != nil {
				return err
			}
			if int64(base)+n > math.MaxUint32 {
				return fmt.Errorf("%w: no UIDVALIDITY left above %d", store.ErrLimit, base)
			}
			top = max(top, int64(base)+n)
			// In mailbox ID order, each its own value, as they were made.
			if _, err := tx.ExecContext(ctx, `UPDATE mailbox
				SET uidvalidity = ?1 + (SELECT count(*) FROM mailbox AS m WHERE m.id < mailbox.id)`, base); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `UPDATE meta SET next_uidvalidity = ?`, int64(base)+n)
			return err
		})
		st.release(a)
		if err != nil {
			return 0, fmt.Errorf("new UIDVALIDITY for account %d: %w", acct.ID, err)
		}
	}
	// Accounts made after the restore start above the restored ones too.
	err = st.writeAccounts(ctx, func(tx *sql.Tx) error {
		return raiseUIDValidityCounter(ctx, tx, top)
	})
	if err != nil {
		return 0, fmt.Errorf("new UIDVALIDITY: %w", err)
	}
	return base, nil
}

// within reports whether path is dir or inside it; both are absolute and
// clean.
func within(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+string(filepath.Separator))
}

// mountPoint reports whether dir is on another file system than its
// parent folder: a mount point, which rename(2) can neither replace nor
// move.
func mountPoint(dir string) bool {
	var st, parent syscall.Stat_t
	if syscall.Stat(dir, &st) != nil || syscall.Stat(filepath.Dir(dir), &parent) != nil {
		return false
	}
	return st.Dev != parent.Dev
}
