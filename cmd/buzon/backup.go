package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/sqlite"
)

// notEmbedded is the error of backup and restore on a PostgreSQL store,
// which PostgreSQL's own tools back up better than buzon could.
func notEmbedded(cfg config.Config) error {
	return fmt.Errorf("the %s store is backed up with its own tools (pg_dump, pg_basebackup), "+
		"not buzon backup: see README.md, Backups, for how, and for what a restore must do about UIDVALIDITY", cfg.Store.Backend)
}

// parseFolderArgs parses the arguments of backup and restore, the
// common flags (registered here) and those already on fs and one folder
// (what, for the usage), and loads the configuration, which must be of
// an embedded store.
func parseFolderArgs(fs *flag.FlagSet, args []string, what string) (folder string, cfg config.Config, err error) {
	var cf commonFlags
	cf.register(fs)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return "", cfg, flagError(err)
	}
	if len(pos) != 1 {
		fs.Usage()
		return "", cfg, usageError{"want one " + what}
	}
	if cfg, err = cf.load(); err != nil {
		return "", cfg, err
	}
	if cfg.Store.Backend != "sqlite" {
		return "", cfg, notEmbedded(cfg)
	}
	return pos[0], cfg, nil
}

func runBackup(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("backup", `usage: buzon backup [--data DIR] [--config FILE] DEST

Copies the embedded store, consistently, into the new folder DEST, while
the server runs or not. DEST is itself a data folder, written as
DEST.partial and renamed once complete and checked. Restore it with
buzon restore. A backup of a stopped store keeps the store to itself
while it runs: a server or buzon deliver started meanwhile waits.`, stderr)
	dest, cfg, err := parseFolderArgs(fs, args, "destination folder")
	if err != nil {
		return err
	}
	st, err := openStore(cfg, newLogger(cfg.Log, stderr), useExisting)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	progress, done := backupProgress(stderr)
	rep, err := st.(*sqlite.Store).Backup(ctx, dest, sqlite.BackupOptions{Progress: progress})
	done()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up %s, %s, %s into %s\n", store.Count(rep.Accounts, "account"), store.Count(rep.Messages, "message"),
		formatSize(rep.Bytes), dest)
	if rep.Quiescent {
		fmt.Fprintln(stdout, "the store was not in use: the backup is the store as it is now")
	}
	if rep.Expunged > 0 || rep.Deleted > 0 {
		fmt.Fprintf(stdout, "while it ran, %s expunged and %s deleted: the backup has them so too\n",
			store.Count(rep.Expunged, "message"), store.Count(rep.Deleted, "account"))
	}
	if len(rep.Damage) > 0 {
		for _, d := range rep.Damage {
			fmt.Fprintln(stderr, "buzon backup:", d)
		}
		return fmt.Errorf("%s had no body in the store itself (see buzon check); the backup has them expunged",
			store.Count(len(rep.Damage), "message"))
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
	force := fs.Bool("force", false, "restore into a data folder that is not empty, after moving it aside (never deleted)")
	keep := fs.Bool("keep-uidvalidity", false, "keep UIDVALIDITY, so clients keep their caches: only for a backup of a stopped server that never ran again after it (moving to a new machine)")
	backup, cfg, err := parseFolderArgs(fs, args, "backup folder")
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	owner := restoreOwner(cfg.Data)
	rep, err := sqlite.Restore(ctx, backup, cfg.Data, sqlite.RestoreOptions{Force: *force, KeepUIDValidity: *keep, Owner: owner})
	switch {
	case errors.Is(err, sqlite.ErrInUse):
		return fmt.Errorf("%w: stop it before restoring", err)
	case errors.Is(err, os.ErrPermission) && os.Geteuid() != 0:
		// Restore writes beside the data folder (DIR.partial, and
		// DIR.before-restore-<time>), in a folder that is often root's.
		return fmt.Errorf("%w\nrestore writes beside %s, in %s: run it as root, which gives the restored files the data folder's owner",
			err, cfg.Data, filepath.Dir(filepath.Clean(cfg.Data)))
	case err != nil:
		return err
	}
	if rep.MovedAside != "" {
		fmt.Fprintf(stdout, "moved the former contents of %s to %s\n", cfg.Data, rep.MovedAside)
	}
	fmt.Fprintf(stdout, "restored %s, %s from the backup of %s into %s\n",
		store.Count(rep.Accounts, "account"), store.Count(rep.Messages, "message"), rep.Taken.Local().Format(time.DateTime), cfg.Data)
	if *keep {
		fmt.Fprintln(stdout, "UIDVALIDITY kept: clients keep their caches")
	} else {
		fmt.Fprintln(stdout, "every mailbox has a new UIDVALIDITY: IMAP clients will read their mailboxes again, "+
			"and POP3 clients that leave mail on the server will download it again")
	}
	if os.Geteuid() == 0 && owner == nil {
		// Nothing there said whose it is: a new machine's folder, say.
		fmt.Fprintf(stdout, "the restored files belong to root: if the server runs as another user, give them to it (chown -R USER: %s)\n", cfg.Data)
	}
	return nil
}

// restoreOwner returns, when root restores the data folder dir of
// another user (the server's: README has it made with install -o), that
// user and the folder's group, for the restored files: the user could not
// restore it, as restore writes beside the folder, in a folder that is
// root's. Whoever owns the store in dir decides, else whoever owns dir.
func restoreOwner(dir string) *sqlite.Owner {
	if os.Geteuid() != 0 {
		return nil
	}
	for _, path := range []string{filepath.Join(dir, "accounts.db"), dir} {
		uid, gid, ok := fileOwner(path)
		if !ok {
			continue
		}
		if uid == 0 {
			return nil
		}
		return &sqlite.Owner{UID: uid, GID: gid}
	}
	return nil
}
