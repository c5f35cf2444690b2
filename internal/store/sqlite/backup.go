package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/buzon-mail/buzon/internal/durable"
	"github.com/buzon-mail/buzon/internal/store"
)

// A backup is a data folder like any other, made in <dest>.partial and
// renamed to <dest> once it is whole, with a manifest (backupManifest)
// that says it is finished.
//
// Why the copy is consistent while the store is in use:
//   - each database is copied with VACUUM INTO, which reads it in one read
//     transaction: the copy is the database as of one commit;
//   - a body file is written and synced before the row naming it commits,
//     never changes after, and is unlinked only after the commit that
//     deletes its row. So every body a copied row names either still
//     exists, with the bytes it had at the commit, or was expunged by a
//     commit after the copy's. Opening it tells which. A body gone may
//     live on under another name (COPY then EXPUNGE), so the database is
//     copied again and the new copy's bodies not yet in the backup are
//     copied, until none is gone: the backup then holds the account as
//     it was at that last copy (bodies copied before are the same files,
//     and those the last copy does not name are removed). After a few
//     tries (snapshots) a body still gone is expunged in the copy (a
//     tombstone, counters kept), as the live store did. A body gone while
//     the live store still names it is damage, reported, never hidden;
//   - accounts.db is copied first: an account made after it is not in the
//     backup; one deleted after it is dropped from the copy.
//
// Bodies are copied, never linked: a backup must survive the disk the
// store lives on.

// backupManifest names the file that marks a finished backup. It is
// written last, before the rename; restore wants it.
const backupManifest = "buzon-backup"

// partialSuffix marks a backup or restore being made.
const partialSuffix = ".partial"

// BackupOptions configures Store.Backup. The zero value is usable.
type BackupOptions struct {
	// Progress, if set, is called as the copy goes on: after every
	// progressEvery messages and after each account; never by two
	// goroutines at once.
	Progress func(BackupProgress)

	// afterSnapshot, set by tests, runs after each copy of an account's
	// database and before its bodies are copied.
	afterSnapshot func(accountID int64)
	// workers, set by benchmarks, replaces copyWorkers.
	workers int
}

// BackupProgress is how far a backup is.
type BackupProgress struct {
	Accounts, AccountsDone int
	Messages               int64 // copied so far
	Bytes                  int64 // written so far
}

// progressEvery is how many messages Backup copies between two calls of
// BackupOptions.Progress within an account.
const progressEvery = 500

// BackupReport says what a backup holds.
type BackupReport struct {
	Accounts int   // accounts in the backup
	Messages int64 // messages in the backup
	Bytes    int64 // bytes written: databases, bodies, other files
	// Quiescent: no other process had the data folder open while the
	// backup ran (it kept them out), so the backup is the store as it
	// was, and is, until a server starts on it again.
	Quiescent bool
	// Expunged counts messages expunged while the backup ran, after the
	// last copy of their account's database (one that kept changing
	// through every copy): the backup has them expunged too.
	Expunged int64
	// Deleted counts accounts deleted while the backup ran, left out.
	Deleted int
	// Damage lists bodies the store itself names and lacks (what buzon
	// check reports as missing): the backup has those messages expunged.
	Damage []string
}

// Backup copies the store into a new folder dest, itself a data folder,
// while the store is in use or not. It writes <dest>.partial (removing one
// left by an interrupted backup) and renames it to dest when it is
// complete, synced and passes Check; on error it removes what it wrote,
// and returns it with the report so far. dest must not exist.
//
// Files other parts of buzon keep in the data folder (the generated
// certificate, markers) are copied too. When no other process has the
// folder open, Backup keeps it to itself while it runs, as Check does:
// a server or `buzon deliver` started meanwhile waits in Open.
func (s *Store) Backup(ctx context.Context, dest string, opts BackupOptions) (BackupReport, error) {
	var rep BackupReport
	dest, err := filepath.Abs(dest)
	if err != nil {
		return rep, fmt.Errorf("backup to %s: %w", dest, err)
	}
	partial := dest + partialSuffix
	// <dest>.partial is removed first, so it must not be, or hold, the
	// data folder either (buzon backup --data mail.partial mail).
	if within(dest, s.dir) || within(s.dir, dest) || within(s.dir, partial) || within(partial, s.dir) {
		return rep, fmt.Errorf("backup to %s: it or %s overlaps the data folder %s", dest, partial, s.dir)
	}
	if _, err := os.Lstat(dest); err == nil {
		// Never into an existing folder: it may be an earlier backup, and
		// a mix of two would restore as neither.
		return rep, fmt.Errorf("backup to %s: the folder exists already; a backup goes into a new folder: "+
			"give another name, or remove the old backup first", dest)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return rep, fmt.Errorf("backup to %s: %w", dest, err)
	}
	if err := removePartial(partial); err != nil {
		return rep, fmt.Errorf("backup to %s: %w", dest, err)
	}
	if err := os.MkdirAll(filepath.Join(partial, accountsDir), 0o700); err != nil {
		return rep, fmt.Errorf("backup to %s: %w", dest, err)
	}
	b := &backup{s: s, dir: partial, opts: opts, rep: &rep}
	if err := b.run(ctx); err != nil {
		os.RemoveAll(partial)
		return rep, fmt.Errorf("backup to %s: %w", dest, err)
	}
	if err := os.Rename(partial, dest); err != nil {
		os.RemoveAll(partial)
		return rep, fmt.Errorf("backup to %s: %w", dest, err)
	}
	if err := durable.SyncDir(filepath.Dir(dest)); err != nil {
		return rep, fmt.Errorf("backup to %s: %w", dest, err)
	}
	return rep, nil
}

// removePartial removes the folder an interrupted backup or restore left
// at path, if there is one; it refuses one that holds what neither makes
// first (the accounts folder or accounts.db), which is someone else's.
func removePartial(path string) error {
	entries, err := os.ReadDir(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("remove the unfinished %s: %w", path, err)
	}
	ours := len(entries) == 0
	for _, e := range entries {
		if e.Name() == accountsDir || e.Name() == accountsDB {
			ours = true
		}
	}
	if !ours {
		return fmt.Errorf("%s is in the way, and is not what an interrupted backup or restore leaves: move it away", path)
	}
	if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("remove the unfinished %s: %w", path, err)
	}
	return nil
}

// backup is one run of Store.Backup.
type backup struct {
	s    *Store
	dir  string // the backup being made
	opts BackupOptions
	rep  *BackupReport

	accounts, accountsDone int   // for Progress
	copied                 int64 // messages copied, expunged ones included
}

func (b *backup) progress() {
	if b.opts.Progress != nil {
		b.opts.Progress(BackupProgress{Accounts: b.accounts, AccountsDone: b.accountsDone, Messages: b.copied, Bytes: b.rep.Bytes})
	}
}

func (b *backup) run(ctx context.Context) error {
	if b.s.lockExclusive() {
		b.rep.Quiescent = true
		defer b.s.unlockExclusive()
	}
	adb := filepath.Join(b.dir, accountsDB)
	if err := b.vacuumInto(ctx, b.s.adb, adb); err != nil {
		return fmt.Errorf("copy %s: %w", accountsDB, err)
	}
	ids, err := backupAccountIDs(ctx, adb)
	if err != nil {
		return err
	}
	var deleted []int64
	b.accounts = len(ids)
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		gone, err := b.account(ctx, id)
		if err != nil {
			return fmt.Errorf("account %d: %w", id, err)
		}
		if gone {
			deleted = append(deleted, id)
		}
		b.accountsDone++
		b.copied = b.rep.Messages
		b.progress()
	}
	if err := dropAccounts(ctx, adb, deleted); err != nil {
		return err
	}
	b.rep.Deleted = len(deleted)
	b.rep.Accounts = len(ids) - len(deleted)
	n, err := copyTree(ctx, b.s.dir, b.dir, notStoreFile)
	if err != nil {
		return fmt.Errorf("copy other files: %w", err)
	}
	b.rep.Bytes += n
	if _, err := verify(ctx, b.dir); err != nil {
		return err
	}
	if err := syncTree(b.dir); err != nil {
		return err
	}
	m := manifest{Taken: time.Now().UTC(), Quiescent: b.rep.Quiescent, Accounts: b.rep.Accounts, Messages: b.rep.Messages}
	return durable.WriteFile(filepath.Join(b.dir, backupManifest), m.encode(), 0o600)
}

// vacuumInto writes a consistent copy of db to path (which must not
// exist), readable by its owner alone, and syncs it.
func (b *backup) vacuumInto(ctx context.Context, db *sql.DB, path string) error {
	// VACUUM INTO writes into an empty file as it finds it, so the mode
	// is ours, not the umask's.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		return mapErr(err)
	}
	// VACUUM INTO does not sync what it writes.
	if err := f.Sync(); err != nil {
		return err
	}
	if fi, err := f.Stat(); err == nil {
		b.rep.Bytes += fi.Size()
	}
	return nil
}

// backupAccountIDs lists the accounts in the copy of accounts.db.
func backupAccountIDs(ctx context.Context, path string) ([]int64, error) {
	db, err := openDB(path, 1, time.Second)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	ids, err := queryColumn[int64](ctx, db, `SELECT id FROM account ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list accounts of the copy: %w", err)
	}
	return ids, nil
}

// dropAccounts deletes from the copy of accounts.db the accounts deleted
// while the backup ran.
func dropAccounts(ctx context.Context, path string, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	db, err := openDB(path, 1, time.Second)
	if err != nil {
		return err
	}
	defer db.Close()
	for _, id := range ids {
		if _, err := db.ExecContext(ctx, `DELETE FROM account WHERE id = ?`, id); err != nil {
			return fmt.Errorf("drop deleted account %d from the copy: %w", id, err)
		}
	}
	return nil
}

// snapshots is how many times Backup copies an account's database
// before it settles for expunging, in the copy, the bodies gone since.
const snapshots = 4

// account copies one account's database and the bodies its rows name. It
// reports gone if the account was deleted meanwhile; then nothing of it is
// left in the backup.
//
// A body gone between the copy of the database and the copy of the body
// was expunged, but its message may live on under another name: COPY
// then EXPUNGE (how many clients move mail) links the body under a new
// name the copy does not know. So the database is copied again, and the
// bodies of the new copy that are not in the backup yet are copied, until
// every body the copy names is there: the account as it was at that last
// copy's commit. Only after snapshots tries are the gone bodies expunged
// in the copy instead.
func (b *backup) account(ctx context.Context, id int64) (gone bool, err error) {
	dir := filepath.Join(b.dir, accountsDir, strconv.FormatInt(id, 10))
	if err := os.MkdirAll(filepath.Join(dir, msgDir), 0o700); err != nil {
		return false, err
	}
	have := map[int64]bool{} // bodies in the backup
	for try := 1; ; try++ {
		gone, done, err := b.snapshot(ctx, id, dir, have, try == snapshots)
		if gone {
			return true, os.RemoveAll(dir)
		}
		if err != nil || done {
			return false, err
		}
	}
}

// snapshot copies the account id's database into dir, replacing an
// earlier copy, and the bodies it names that are not among those the
// backup has (which it adds to have). It reports done once every body the
// copy names is in the backup, or, when last, after expunging those gone
// in the copy; gone if the account was deleted meanwhile.
func (b *backup) snapshot(ctx context.Context, id int64, dir string, have map[int64]bool, last bool) (gone, done bool, err error) {
	path := filepath.Join(dir, mailDBName)
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(path + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, false, err
		}
	}
	a, err := b.acquireLive(ctx, id)
	if errors.Is(err, store.ErrNoAccount) {
		return true, false, nil
	} else if err != nil {
		return false, false, err
	}
	err = b.vacuumInto(ctx, a.db, path)
	b.s.release(a)
	if err != nil {
		return false, false, fmt.Errorf("copy %s: %w", mailDBName, err)
	}
	if b.opts.afterSnapshot != nil {
		b.opts.afterSnapshot(id)
	}

	db, err := openDB(path, 1, time.Second)
	if err != nil {
		return false, false, err
	}
	defer db.Close()
	files, err := queryColumn[int64](ctx, db, `SELECT file FROM message`)
	if err != nil {
		return false, false, err
	}
	var todo []int64
	for _, f := range files {
		if !have[f] {
			todo = append(todo, f)
		}
	}
	// Released, a still names the account's folder, which is all
	// copyBodies needs of it.
	missing, err := b.copyBodies(ctx, a, dir, todo)
	if err != nil {
		return false, false, err
	}
	for _, f := range todo {
		have[f] = true
	}
	for _, f := range missing {
		delete(have, f)
	}
	var damaged map[int64]bool
	if len(missing) > 0 {
		damaged, err = b.liveFiles(ctx, id, missing)
		if errors.Is(err, store.ErrNoAccount) {
			return true, false, nil
		} else if err != nil {
			return false, false, err
		}
		if len(damaged) < len(missing) && !last {
			return false, false, nil // an expunge since: copy again
		}
		for _, f := range missing {
			if damaged[f] {
				b.rep.Damage = append(b.rep.Damage, fmt.Sprintf("account %d: body file %s is missing", id, fileName(f)))
			} else {
				b.rep.Expunged++
			}
		}
		if err := b.expungeInCopy(ctx, db, missing); err != nil {
			return false, false, err
		}
	}
	// Bodies an earlier copy named and this one does not (expunged in
	// between) are not the backup's.
	named := map[int64]bool{}
	for _, f := range files {
		named[f] = true
	}
	shards := map[string]bool{}
	for f := range have {
		if !named[f] {
			shard := shardPath(dir, f)
			if err := os.Remove(bodyFilePath(dir, f)); err != nil {
				return false, false, err
			}
			delete(have, f)
			shards[shard] = true
		}
	}
	for shard := range shards {
		if err := durable.SyncDir(shard); err != nil {
			return false, false, err
		}
	}
	b.rep.Messages += int64(len(files) - len(missing))
	return false, true, nil
}

// copyBodies copies body files of the account a into the backup's account
// folder dir, synced, and syncs their shard folders. It returns those
// that are gone from the store.
func (b *backup) copyBodies(ctx context.Context, a *account, dir string, files []int64) ([]int64, error) {
	shards := map[string]bool{}
	for _, f := range files {
		shard := shardPath(dir, f)
		if !shards[shard] {
			if err := os.Mkdir(shard, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return nil, err
			}
			shards[shard] = true
		}
	}
	var missing []int64
	jobs := func(yield func(copyJob) bool) error {
		for _, f := range files {
			if !yield(copyJob{src: b.s.bodyPath(a, f), dst: bodyFilePath(dir, f), perm: 0o600, file: f}) {
				break
			}
		}
		return nil
	}
	workers := cmp.Or(b.opts.workers, copyWorkers)
	err := copyFiles(ctx, workers, jobs, func(j copyJob, n int64, err error) error {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			missing = append(missing, j.file)
			return nil
		case err != nil:
			return err
		}
		b.rep.Bytes += n
		if b.copied++; b.copied%progressEvery == 0 {
			b.progress()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for shard := range shards {
		if err := durable.SyncDir(shard); err != nil {
			return nil, err
		}
	}
	return missing, nil
}

// acquireLive is acquire for an account that accounts.db still has: a
// database this process opened before another deleted the account stays
// open, and would be copied or read as if nothing happened.
func (b *backup) acquireLive(ctx context.Context, id int64) (*account, error) {
	if _, err := b.s.accountQuota(ctx, id); err != nil {
		return nil, err
	}
	return b.s.acquire(ctx, id)
}

// liveFiles returns which of the body files missing from the live store
// its database still names (damage, not an expunge), or
// store.ErrNoAccount if the account is gone.
func (b *backup) liveFiles(ctx context.Context, id int64, missing []int64) (map[int64]bool, error) {
	a, err := b.acquireLive(ctx, id)
	if err != nil {
		return nil, err
	}
	defer b.s.release(a)
	want := map[int64]bool{}
	for _, f := range missing {
		want[f] = true
	}
	// One walk over the rows: message.file has no index, and an expunge
	// during a long backup may have removed thousands.
	files, err := queryColumn[int64](ctx, a.db, `SELECT file FROM message`)
	if err != nil {
		return nil, mapErr(err)
	}
	named := map[int64]bool{}
	for _, f := range files {
		if want[f] {
			named[f] = true
		}
	}
	return named, nil
}

// expungeInCopy expunges from the copied database the messages whose
// bodies are missing, as an expunge in the live store does: tombstones
// at a new MODSEQ, counters kept.
func (b *backup) expungeInCopy(ctx context.Context, db *sql.DB, files []int64) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return mapErr(err)
	}
	defer tx.Rollback()
	// One walk over the rows: message.file has no index, and an expunge
	// during a long backup may have removed thousands.
	want := map[int64]bool{}
	for _, f := range files {
		want[f] = true
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+msgRowColumns+`, mailbox FROM message`)
	if err != nil {
		return fmt.Errorf("expunge in the copy: %w", mapErr(err))
	}
	defer rows.Close()
	byMailbox := map[int64][]msgRow{}
	found := map[int64]bool{}
	for rows.Next() {
		var mb int64
		m, err := scanMsgRow(rows, &mb)
		if err != nil {
			return fmt.Errorf("expunge in the copy: %w", mapErr(err))
		}
		if want[m.file] {
			byMailbox[mb] = append(byMailbox[mb], m)
			found[m.file] = true
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("expunge in the copy: %w", mapErr(err))
	}
	rows.Close()
	for f := range want {
		if !found[f] {
			return fmt.Errorf("expunge body %s in the copy: no message names it", fileName(f))
		}
	}
	for mb, rows := range byMailbox {
		slices.SortFunc(rows, func(x, y msgRow) int { return cmp.Compare(x.uid, y.uid) })
		ms, err := nextModSeq(ctx, tx)
		if err != nil {
			return err
		}
		if err := expungeRows(ctx, tx, mb, rows, ms, b.s.cfg.KeptExpunges); err != nil {
			return fmt.Errorf("expunge in the copy: %w", err)
		}
	}
	return mapErr(tx.Commit())
}

// notStoreFile tells, for a path relative to the data folder, whether
// it is not the store's own (databases, locks, sockets, account folders,
// the spool): what copyTree copies besides the store.
func notStoreFile(rel string) bool {
	first, _, _ := strings.Cut(rel, string(filepath.Separator))
	switch first {
	case accountsDir, trashDir, tmpDir, "store.lock", notifySocket, backupManifest:
		return false
	}
	return !strings.HasPrefix(first, accountsDB)
}

// copyTree copies the regular files and folders under src that keep
// accepts (by their path relative to src) into dst, byte for byte, with
// their permission bits, each synced. It returns the bytes copied.
// Sockets and other special files are left out, and so are files removed
// while it runs.
func copyTree(ctx context.Context, src, dst string, keep func(rel string) bool) (int64, error) {
	var total int64
	jobs := func(yield func(copyJob) bool) error {
		return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) && path != src {
					return nil
				}
				return err
			}
			rel, err := filepath.Rel(src, path)
			if err != nil || rel == "." {
				return err
			}
			if !keep(rel) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			info, err := d.Info()
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			} else if err != nil {
				return err
			}
			target := filepath.Join(dst, rel)
			switch {
			case d.IsDir():
				// Before the files in it: WalkDir goes in lexical order.
				if err := os.Mkdir(target, info.Mode().Perm()|0o700); err != nil && !errors.Is(err, fs.ErrExist) {
					return err
				}
			case info.Mode().IsRegular():
				if !yield(copyJob{src: path, dst: target, perm: info.Mode().Perm()}) {
					return fs.SkipAll
				}
			}
			return nil
		})
	}
	err := copyFiles(ctx, copyWorkers, jobs, func(_ copyJob, n int64, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		total += n
		return err
	})
	return total, err
}

// copyJob is a file for copyFiles to copy.
type copyJob struct {
	src, dst string
	perm     fs.FileMode
	file     int64 // the body file ID, for copyBodies
}

// copyWorkers is how many files Backup and Restore copy at once: each copy
// ends in an fsync, and a disk serves several at once faster than one
// after another (BenchmarkBackup, BENCHMARKS.md).
const copyWorkers = 8

// copyFiles copies the files jobs yields, workers at a time, each with
// copyFile, and calls done with the outcome of each, never two at once.
// The first error done returns stops the copy, and is returned; so is an
// error of jobs, or of ctx.
func copyFiles(ctx context.Context, workers int, jobs func(yield func(copyJob) bool) error, done func(copyJob, int64, error) error) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan copyJob)
	var (
		mu       sync.Mutex
		firstErr error // guarded by mu
		wg       sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				n, err := copyFile(j.src, j.dst, j.perm)
				mu.Lock()
				if firstErr == nil {
					if err := done(j, n, err); err != nil {
						firstErr = err
						cancel()
					}
				}
				mu.Unlock()
			}
		}()
	}
	jerr := jobs(func(j copyJob) bool {
		select {
		case work <- j:
			return true
		case <-wctx.Done():
			return false
		}
	})
	close(work)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if jerr != nil {
		return jerr
	}
	return ctx.Err()
}

// copyFile copies the file src to the new file dst, with mode perm, and
// syncs it. The error is fs.ErrNotExist (from opening src) when src is
// gone.
func copyFile(src, dst string, perm fs.FileMode) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return 0, fmt.Errorf("copy %s: %w", src, errNotMissing(err))
	}
	n, err := io.Copy(out, in)
	if err == nil {
		err = out.Chmod(perm) // whatever the umask
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
		return 0, fmt.Errorf("copy %s: %w", src, errNotMissing(mapErr(err)))
	}
	return n, nil
}

// errNotMissing keeps a failure to write the copy from passing for a
// missing source.
func errNotMissing(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%v", err)
	}
	return err
}

// syncTree syncs every folder under dir, and every file that is not a
// body (bodies are synced as they are copied): the databases after the
// last writes to them.
func syncTree(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			// Every folder, the shards of msg/ too: restore's copyTree
			// makes them without a sync.
			return durable.SyncDir(path)
		}
		if !d.Type().IsRegular() || filepath.Base(filepath.Dir(filepath.Dir(path))) == msgDir {
			return nil // not a file, or a body, which copyFile synced
		}
		return durable.SyncFile(path)
	})
}

// verify opens the store in dir and checks it: a backup or restore passes
// Check or is not finished. It returns Check's report.
func verify(ctx context.Context, dir string) (store.CheckReport, error) {
	st, err := Open(Config{Dir: dir})
	if err != nil {
		return store.CheckReport{}, fmt.Errorf("verify: %w", err)
	}
	rep, err := verifyStore(ctx, st)
	if cerr := st.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("verify: %w", cerr)
	}
	return rep, err
}

// verifyStore is verify of a store already open.
func verifyStore(ctx context.Context, st *Store) (store.CheckReport, error) {
	rep, err := st.Check(ctx, false)
	if err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	if !rep.OK(false) {
		return rep, fmt.Errorf("verify: the copy has problems: %s", strings.TrimSpace(rep.String()))
	}
	return rep, nil
}

// manifest is what backupManifest says, one "name value" a line.
// Accounts and Messages are there for people to read: restore counts
// what it restored, and readManifest skips them.
type manifest struct {
	Taken     time.Time
	Quiescent bool
	Accounts  int
	Messages  int64
}

func (m manifest) encode() []byte {
	return fmt.Appendf(nil, "buzon backup 1\ntaken %s\nquiescent %t\naccounts %d\nmessages %d\n",
		m.Taken.Format(time.RFC3339), m.Quiescent, m.Accounts, m.Messages)
}

// readManifest reads the manifest of the backup in dir.
func readManifest(dir string) (manifest, error) {
	var m manifest
	data, err := os.ReadFile(filepath.Join(dir, backupManifest))
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(dir); errors.Is(serr, fs.ErrNotExist) {
			return m, fmt.Errorf("no backup at %s: there is no such folder", dir)
		}
		if strings.HasSuffix(dir, partialSuffix) {
			return m, fmt.Errorf("%s is a backup that was interrupted, not a finished one: restore another, or take a new one", dir)
		}
		return m, fmt.Errorf("%s is not a finished buzon backup (no %s file)", dir, backupManifest)
	} else if err != nil {
		return m, err
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) == 0 || lines[0] != "buzon backup 1" {
		return m, fmt.Errorf("%s: not a backup this buzon knows", filepath.Join(dir, backupManifest))
	}
	for _, l := range lines[1:] {
		name, v, _ := strings.Cut(l, " ")
		switch name {
		case "taken":
			m.Taken, err = time.Parse(time.RFC3339, v)
		case "quiescent":
			m.Quiescent, err = strconv.ParseBool(v)
		}
		if err != nil {
			return m, fmt.Errorf("%s: %q: %w", filepath.Join(dir, backupManifest), l, err)
		}
	}
	return m, nil
}
