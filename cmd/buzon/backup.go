package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/store/sqlite"
)

// notEmbedded is the error of backup and restore on a PostgreSQL store,
// which PostgreSQL's own tools back up better than buzon could.
func notEmbedded(cfg config.Config) error {
	return fmt.Errorf("the %s store is backed up with its own tools (pg_dump, pg_basebackup), "+
		"not buzon backup: see README.md, Backups, for how, and for what a restore must do about UIDVALIDITY", cfg.Store.Backend)
}

func runBackup(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("backup", `usage: buzon backup [--data DIR] [--config FILE] DEST

Copies the embedded store, consistently, into the new folder DEST, while
the server runs or not. DEST is itself a data folder, written as
DEST.partial and renamed once complete and checked. Restore it with
buzon restore. A backup of a stopped store keeps the store to itself
while it runs: a server or buzon deliver started meanwhile waits.`, stderr)
	var cf commonFlags
	cf.register(fs)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(pos) != 1 {
		fs.Usage()
		return usageError{"want one destination folder"}
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	if cfg.Store.Backend != "sqlite" {
		return notEmbedded(cfg)
	}
	st, err := openStore(cfg, newLogger(cfg.Log, stderr), useExisting)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	progress, done := backupProgress(stderr)
	rep, err := st.(*sqlite.Store).Backup(ctx, pos[0], sqlite.BackupOptions{Progress: progress})
	done()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up %s, %s, %s into %s\n", things(rep.Accounts, "account"), things(rep.Messages, "message"),
		formatSize(rep.Bytes), pos[0])
	if rep.Quiescent {
		fmt.Fprintln(stdout, "the store was not in use: the backup is the store as it is now")
	}
	if rep.Expunged > 0 || rep.Deleted > 0 {
		fmt.Fprintf(stdout, "while it ran, %s expunged and %s deleted: the backup has them so too\n",
			things(rep.Expunged, "message"), things(rep.Deleted, "account"))
	}
	if len(rep.Damage) > 0 {
		for _, d := range rep.Damage {
			fmt.Fprintln(stderr, "buzon backup:", d)
		}
		return fmt.Errorf("%s had no body in the store itself (see buzon check); the backup has them expunged",
			things(len(rep.Damage), "message"))
	}
	return nil
}

// backupProgress returns Backup's progress callback, which on a terminal
// rewrites one line, and done, which ends that line.
func backupProgress(w io.Writer) (progress func(sqlite.BackupProgress), done func()) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, func() {}
	}
	var last time.Time
	shown := false
	return func(p sqlite.BackupProgress) {
			if time.Since(last) < 200*time.Millisecond && p.AccountsDone != p.Accounts {
				return
			}
			last, shown = time.Now(), true
			fmt.Fprintf(w, "\rbackup: %d of %d accounts, %d messages, %s ", p.AccountsDone, p.Accounts, p.Messages, formatSize(p.Bytes))
		}, func() {
			if shown {
				fmt.Fprintln(w)
			}
		}
}

func runRestore(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("restore", `usage: buzon restore [--data DIR] [--config FILE] [--force] [--keep-uidvalidity] BACKUP

Makes the data folder a copy of BACKUP (made by buzon backup), which stays
as it is. Stop the server first. Every mailbox gets a new UIDVALIDITY, so
that mail which came after the backup cannot be confused with other mail:
IMAP clients read their mailboxes afresh, and POP3 clients that leave mail
on the server download it all once more.`, stderr)
	var cf commonFlags
	cf.register(fs)
	force := fs.Bool("force", false, "restore into a data folder that is not empty, after moving it aside (never deleted)")
	keep := fs.Bool("keep-uidvalidity", false, "keep UIDVALIDITY, so clients keep their caches: only for a backup of a stopped server that never ran again after it (moving to a new machine)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(pos) != 1 {
		fs.Usage()
		return usageError{"want one backup folder"}
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	if cfg.Store.Backend != "sqlite" {
		return notEmbedded(cfg)
	}
	if err := checkOwner(cfg.Data); err != nil {
		return err
	}
	if err := checkFolderOwner(cfg.Data); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := sqlite.Restore(ctx, pos[0], cfg.Data, sqlite.RestoreOptions{Force: *force, KeepUIDValidity: *keep})
	if errors.Is(err, sqlite.ErrInUse) {
		return fmt.Errorf("%w: stop it before restoring", err)
	}
	if err != nil {
		return err
	}
	if rep.MovedAside != "" {
		fmt.Fprintf(stdout, "moved the former contents of %s to %s\n", cfg.Data, rep.MovedAside)
	}
	fmt.Fprintf(stdout, "restored %s, %s from the backup of %s into %s\n",
		things(rep.Accounts, "account"), things(rep.Messages, "message"), rep.Taken.Local().Format(time.DateTime), cfg.Data)
	if *keep {
		fmt.Fprintln(stdout, "UIDVALIDITY kept: clients keep their caches")
	} else {
		fmt.Fprintln(stdout, "every mailbox has a new UIDVALIDITY: IMAP clients will read their mailboxes again, "+
			"and POP3 clients that leave mail on the server will download it again")
	}
	return nil
}

// things writes n things, in the singular for one.
func things[N int | int64](n N, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// checkFolderOwner refuses root a restore into a data folder that another
// user (the server's) owns, empty or not: what root restores there, the
// server could not open. checkOwner looks at the store, which an empty
// folder does not have yet.
func checkFolderOwner(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil // no folder: it will be root's
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 {
		return nil
	}
	name := strconv.FormatUint(uint64(st.Uid), 10)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	return fmt.Errorf("%s belongs to user %s: run buzon restore as that user (sudo -u %s ...), since what root restores there the server could not open", dir, name, name)
}
