package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

// Check implements store.Checker. It checks each account while holding
// its write lock, so counters and files do not move under it.
//
// A body or temporary file that no row names is an orphan unless it may
// still be committed: this process knows its own bodies in flight, and
// when another process has the data folder open (see store.lock), files
// changed less than Config.OrphanGrace ago are left alone. When no other
// process has it open, Check keeps it to itself while it runs: a Store
// opened meanwhile (`buzon deliver`) waits in Open until Check is done.
func (s *Store) Check(ctx context.Context, repair bool) (store.CheckReport, error) {
	var rep store.CheckReport
	exclusive := s.lockExclusive()
	defer func() {
		if exclusive {
			s.unlockExclusive()
		}
	}()
	c := &checker{s: s, repair: repair, exclusive: exclusive, now: time.Now(), rep: &rep}

	c.integrity(ctx, 0, s.adb)

	// Folders first, then rows: an account created in between has a row
	// and is not in the listing, so it cannot pass for an orphan.
	entries, err := os.ReadDir(filepath.Join(s.dir, accountsDir))
	if err != nil {
		return rep, fmt.Errorf("check: %w", err)
	}
	accts, err := s.Accounts(ctx)
	if err != nil {
		return rep, fmt.Errorf("check: %w", err)
	}
	known := map[int64]bool{}
	for _, a := range accts {
		known[a.ID] = true
	}
	for _, e := range entries {
		id, err := strconv.ParseInt(e.Name(), 10, 64)
		switch {
		case err != nil || !e.IsDir() || strconv.FormatInt(id, 10) != e.Name():
			c.problem(0, fmt.Sprintf("unexpected entry %s in %s", e.Name(), accountsDir), false)
		case !known[id]:
			c.problem(0, fmt.Sprintf("folder %s/%s belongs to no account", accountsDir, e.Name()),
				repair && s.removeAccountDir(id) == nil)
		}
	}
	trash, err := os.ReadDir(filepath.Join(s.dir, trashDir))
	if err != nil {
		return rep, fmt.Errorf("check: %w", err)
	}
	for _, e := range trash {
		c.problem(0, fmt.Sprintf("deleted account folder %s/%s left behind", trashDir, e.Name()),
			repair && os.RemoveAll(filepath.Join(s.dir, trashDir, e.Name())) == nil)
	}

	for _, acct := range accts {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		rep.Accounts++
		if err := c.account(ctx, acct.ID); err != nil {
			c.problem(acct.ID, fmt.Sprintf("cannot check: %v", err), false)
		}
	}
	return rep, nil
}

// lockExclusive tries to turn this Store's shared lock on store.lock into
// an exclusive one, which succeeds only if no other Store has the folder
// open.
func (s *Store) lockExclusive() bool {
	if flock(s.dirLock, syscall.LOCK_EX|syscall.LOCK_NB) == nil {
		return true
	}
	// A failed conversion may have dropped the shared lock (flock(2)).
	if err := flock(s.dirLock, syscall.LOCK_SH); err != nil {
		s.log.Error("retake shared lock on data folder", "err", err)
	}
	return false
}

func (s *Store) unlockExclusive() {
	if err := flock(s.dirLock, syscall.LOCK_SH); err != nil {
		s.log.Error("return to shared lock on data folder", "err", err)
	}
}

type checker struct {
	s         *Store
	repair    bool
	exclusive bool
	now       time.Time
	rep       *store.CheckReport
	mailboxes map[int64]string // the account's mailbox names by id, set by account
}

func (c *checker) problem(account int64, what string, repaired bool) {
	c.rep.Problems = append(c.rep.Problems, store.CheckProblem{AccountID: account, What: what, Repaired: repaired})
}

// mailbox names a mailbox in a problem the way its owner knows it. The
// number is only for a row that names no mailbox, which the foreign key
// check reports too.
func (c *checker) mailbox(id int64) string {
	if name, ok := c.mailboxes[id]; ok {
		return fmt.Sprintf("mailbox %q", name)
	}
	return fmt.Sprintf("mailbox number %d (no such mailbox)", id)
}

// loadMailboxes reads the account's mailbox names for c.mailbox.
func (c *checker) loadMailboxes(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, name FROM mailbox`)
	if err != nil {
		return err
	}
	defer rows.Close()
	c.mailboxes = map[int64]string{}
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			return err
		}
		c.mailboxes[id] = name
	}
	return rows.Err()
}

// integrity runs SQLite's own checks on a database.
func (c *checker) integrity(ctx context.Context, account int64, q queryer) {
	for _, pragma := range []string{"integrity_check", "foreign_key_check"} {
		rows, err := q.QueryContext(ctx, "PRAGMA "+pragma)
		if err != nil {
			c.problem(account, fmt.Sprintf("%s: %v", pragma, err), false)
			continue
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				c.problem(account, fmt.Sprintf("%s: %v", pragma, err), false)
				break
			}
			if len(vals) == 1 && fmt.Sprint(vals[0]) == "ok" {
				continue
			}
			c.problem(account, fmt.Sprintf("%s: %v", pragma, vals), false)
		}
		if err := rows.Err(); err != nil {
			c.problem(account, fmt.Sprintf("%s: %v", pragma, err), false)
		}
		rows.Close()
	}
}

// account checks one account inside a write transaction.
func (c *checker) account(ctx context.Context, id int64) error {
	a, err := c.s.acquire(ctx, id)
	if err != nil {
		return err
	}
	defer c.s.release(a)
	var found []store.CheckProblem
	var messages int64
	err = c.s.write(ctx, a, func(ctx context.Context, tx *sql.Tx) error {
		sub := &checker{s: c.s, repair: c.repair, exclusive: c.exclusive, now: c.now, rep: &store.CheckReport{}}
		sub.integrity(ctx, id, tx)
		if err := sub.loadMailboxes(ctx, tx); err != nil {
			return err
		}
		n, err := sub.bodies(ctx, tx, a)
		if err != nil {
			return err
		}
		if err := sub.counters(ctx, tx, id); err != nil {
			return err
		}
		if err := sub.keywords(ctx, tx, id); err != nil {
			return err
		}
		found, messages = sub.rep.Problems, n
		return nil
	})
	c.rep.Problems = append(c.rep.Problems, found...)
	c.rep.Messages += messages
	return err
}

// bodies checks that every message has its body file, of the right size,
// and finds files no message names.
func (c *checker) bodies(ctx context.Context, tx *sql.Tx, a *account) (int64, error) {
	type msg struct {
		mailbox int64
		uid     int64
		size    int64
	}
	rows, err := tx.QueryContext(ctx, `SELECT mailbox, uid, size, file FROM message`)
	if err != nil {
		return 0, err
	}
	files := map[int64]msg{}
	for rows.Next() {
		var m msg
		var f int64
		if err := rows.Scan(&m.mailbox, &m.uid, &m.size, &f); err != nil {
			rows.Close()
			return 0, err
		}
		files[f] = m
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for f, m := range files {
		fi, err := os.Stat(c.s.bodyPath(a, f))
		switch {
		case errors.Is(err, os.ErrNotExist):
			c.problem(a.id, fmt.Sprintf("%s uid %d: body file %s is missing", c.mailbox(m.mailbox), m.uid, fileName(f)), false)
		case err != nil:
			c.problem(a.id, fmt.Sprintf("%s uid %d: %v", c.mailbox(m.mailbox), m.uid, err), false)
		case fi.Size() != m.size:
			c.problem(a.id, fmt.Sprintf("%s uid %d: body file has %d bytes, message %d",
				c.mailbox(m.mailbox), m.uid, fi.Size(), m.size), false)
		}
	}

	shards, err := os.ReadDir(filepath.Join(a.dir, msgDir))
	if err != nil {
		return 0, err
	}
	for _, sh := range shards {
		dir := filepath.Join(a.dir, msgDir, sh.Name())
		if !sh.IsDir() {
			c.stray(a, dir, "unexpected file")
			continue
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return 0, err
		}
		for _, e := range entries {
			path := filepath.Join(dir, e.Name())
			f, err := strconv.ParseInt(e.Name(), 16, 64)
			if err != nil || f <= 0 || c.s.shardDir(a, f) != dir {
				c.stray(a, path, "unexpected file")
				continue
			}
			if _, ok := files[f]; ok || c.s.isInflight(a.id, f) {
				continue
			}
			c.stray(a, path, "body file no message names")
		}
	}
	// Earlier versions wrote bodies to tmp/ first.
	tmps, err := os.ReadDir(filepath.Join(a.dir, tmpDir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	for _, e := range tmps {
		if f, err := strconv.ParseInt(e.Name(), 16, 64); err == nil && c.s.isInflight(a.id, f) {
			continue
		}
		c.stray(a, filepath.Join(a.dir, tmpDir, e.Name()), "temporary file left behind")
	}
	return int64(len(files)), nil
}

// stray reports (and with repair removes) a file no row names, unless it
// may belong to a write in progress in another process.
func (c *checker) stray(a *account, path, what string) {
	fi, err := os.Lstat(path)
	if err != nil {
		return
	}
	if !c.exclusive {
		changed := fi.ModTime()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			// link(2) updates the inode's ctime, not its mtime: a copy
			// just linked from an old body is young by its ctime.
			changed = time.Unix(st.Ctim.Unix())
		}
		if c.now.Sub(changed) < c.s.cfg.OrphanGrace {
			return
		}
	}
	rel, _ := filepath.Rel(a.dir, path)
	c.problem(a.id, fmt.Sprintf("%s: %s", what, rel), c.repair && os.RemoveAll(path) == nil)
}

// counters compares the counters kept by writes with the rows, and with
// repair sets them right.
func (c *checker) counters(ctx context.Context, tx *sql.Tx, id int64) error {
	type counters struct {
		messages, unseen, deleted, size int64
		uidNext, modseq                 int64
		tombstones                      int64
	}
	kept := map[int64]counters{}
	rows, err := tx.QueryContext(ctx, `SELECT id, messages, unseen, deleted, size, uidnext, modseq, tombstones FROM mailbox`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var mb int64
		var k counters
		if err := rows.Scan(&mb, &k.messages, &k.unseen, &k.deleted, &k.size, &k.uidNext, &k.modseq, &k.tombstones); err != nil {
			rows.Close()
			return err
		}
		kept[mb] = k
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	actual := map[int64]counters{}
	for mb, k := range kept {
		// UIDNEXT and HIGHESTMODSEQ may run ahead of the rows (a UID
		// whose append was refused, a rename); they must not lag.
		actual[mb] = counters{uidNext: k.uidNext, modseq: k.modseq}
	}
	rows, err = tx.QueryContext(ctx, fmt.Sprintf(`SELECT mailbox, count(*), total(flags & %d = 0), total(flags & %d != 0),
		total(size), max(uid), max(modseq) FROM message GROUP BY mailbox`, store.FlagSeen, store.FlagDeleted))
	if err != nil {
		return err
	}
	var totalBytes, totalMessages, maxModSeq int64
	for rows.Next() {
		var mb, n, maxUID, ms int64
		var unseen, deleted, size float64
		if err := rows.Scan(&mb, &n, &unseen, &deleted, &size, &maxUID, &ms); err != nil {
			rows.Close()
			return err
		}
		k := actual[mb]
		k.messages, k.unseen, k.deleted, k.size = n, int64(unseen), int64(deleted), int64(size)
		k.uidNext, k.modseq = max(k.uidNext, maxUID+1), max(k.modseq, ms)
		actual[mb] = k
		totalBytes += int64(size)
		totalMessages += n
		maxModSeq = max(maxModSeq, ms)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = tx.QueryContext(ctx, `SELECT mailbox, max(uid), max(modseq), count(*) FROM tombstone GROUP BY mailbox`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var mb, maxUID, ms, n int64
		if err := rows.Scan(&mb, &maxUID, &ms, &n); err != nil {
			rows.Close()
			return err
		}
		if k, ok := actual[mb]; ok {
			k.uidNext, k.modseq, k.tombstones = max(k.uidNext, maxUID+1), max(k.modseq, ms), n
			actual[mb] = k
		}
		maxModSeq = max(maxModSeq, ms)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	for mb, k := range kept {
		a := actual[mb]
		maxModSeq = max(maxModSeq, a.modseq)
		if a == k {
			continue
		}
		fixed := false
		if c.repair {
			_, err := tx.ExecContext(ctx, `UPDATE mailbox SET messages = ?, unseen = ?, deleted = ?, size = ?,
				uidnext = ?, modseq = ?, tombstones = ? WHERE id = ?`, a.messages, a.unseen, a.deleted, a.size, a.uidNext, a.modseq, a.tombstones, mb)
			if err != nil {
				return err
			}
			fixed = true
		}
		c.problem(id, fmt.Sprintf("%s: counters %+v, should be %+v", c.mailbox(mb), k, a), fixed)
	}

	var bytes, messages, modseq, nextMailbox, maxMailbox int64
	err = tx.QueryRowContext(ctx, `SELECT bytes, messages, modseq, next_mailbox,
		(SELECT coalesce(max(id & 4294967295), 0) FROM mailbox) FROM meta`).
		Scan(&bytes, &messages, &modseq, &nextMailbox, &maxMailbox)
	if err != nil {
		return err
	}
	if bytes != totalBytes || messages != totalMessages || modseq < maxModSeq || nextMailbox <= maxMailbox {
		fixed := false
		if c.repair {
			_, err := tx.ExecContext(ctx, `UPDATE meta SET bytes = ?, messages = ?, modseq = ?, next_mailbox = ?`,
				totalBytes, totalMessages, max(modseq, maxModSeq), max(nextMailbox, maxMailbox+1))
			if err != nil {
				return err
			}
			fixed = true
		}
		c.problem(id, fmt.Sprintf("account counters: use %d bytes in %d messages, modseq %d, next mailbox %d; "+
			"should be %d bytes in %d messages, modseq >= %d, next mailbox > %d",
			bytes, messages, modseq, nextMailbox, totalBytes, totalMessages, maxModSeq, maxMailbox), fixed)
	}
	return nil
}

// keywords compares the per-mailbox keyword counts with the messages.
func (c *checker) keywords(ctx context.Context, tx *sql.Tx, id int64) error {
	type key struct {
		mailbox int64
		name    string // lower case
	}
	actual := map[key]int64{}
	spelling := map[key]string{}
	rows, err := tx.QueryContext(ctx, `SELECT mailbox, keywords FROM message WHERE keywords != ''`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var mb int64
		var kws string
		if err := rows.Scan(&mb, &kws); err != nil {
			rows.Close()
			return err
		}
		for _, k := range splitKeywords(kws) {
			kk := key{mb, strings.ToLower(k)}
			actual[kk]++
			if _, ok := spelling[kk]; !ok {
				spelling[kk] = k
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	kept := map[key]int64{}
	rows, err = tx.QueryContext(ctx, `SELECT mailbox, name, count FROM keyword`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var mb, n int64
		var name string
		if err := rows.Scan(&mb, &name, &n); err != nil {
			rows.Close()
			return err
		}
		kk := key{mb, strings.ToLower(name)}
		kept[kk] = n
		spelling[kk] = name
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	var wrong []key
	for kk, n := range actual {
		if kept[kk] != n {
			wrong = append(wrong, kk)
		}
	}
	for kk, n := range kept {
		if _, ok := actual[kk]; !ok && n != 0 {
			wrong = append(wrong, kk)
		}
	}
	slices.SortFunc(wrong, func(x, y key) int { return strings.Compare(x.name, y.name) })
	for _, kk := range wrong {
		fixed := false
		if c.repair {
			if _, err := tx.ExecContext(ctx, `DELETE FROM keyword WHERE mailbox = ? AND name = ?`, kk.mailbox, kk.name); err != nil {
				return err
			}
			if n := actual[kk]; n > 0 {
				if _, err := tx.ExecContext(ctx, `INSERT INTO keyword (mailbox, name, count) VALUES (?, ?, ?)`,
					kk.mailbox, spelling[kk], n); err != nil {
					return err
				}
			}
			fixed = true
		}
		c.problem(id, fmt.Sprintf("%s keyword %q: counted %d, used by %d messages",
			c.mailbox(kk.mailbox), spelling[kk], kept[kk], actual[kk]), fixed)
	}
	return nil
}
