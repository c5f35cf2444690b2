package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/store/migrate"
	"github.com/buzon-mail/buzon/internal/store/postgres"
)

// runMigrate applies the PostgreSQL schema migrations. `buzon serve` does
// this on start too; this command lets an operator do it first, and is
// safe to run from several nodes at once.
func runMigrate(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", "usage: buzon migrate [--config FILE] [--dsn DSN]", stderr)
	var cf commonFlags // --config alone: the schema has nothing to do with a data folder
	fs.StringVar(&cf.configFile, "config", "", "TOML configuration file, for its store.dsn")
	dsn := fs.String("dsn", "", "PostgreSQL connection string (default: store.dsn from the config)")
	if pos, err := parseInterleaved(fs, args); err != nil {
		return flagError(err)
	} else if len(pos) > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", pos[0])}
	}
	cfg, err := cf.load()
	if err != nil && *dsn == "" {
		return err
	}
	if *dsn == "" {
		*dsn = cfg.Store.DSN
	}
	if *dsn == "" {
		return usageError{"no PostgreSQL DSN: give --dsn or store.dsn in --config"}
	}
	if err := postgres.Migrate(context.Background(), *dsn); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "schema at version %d\n", postgres.SchemaVersion())
	return nil
}

// runMigrateStore copies an embedded store into PostgreSQL, keeping UIDs,
// UIDVALIDITY, flags, MODSEQs and so POP3 UIDLs. It can be rerun after an
// interruption: accounts already copied are skipped, a half-copied one is
// resumed.
func runMigrateStore(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate-store", "usage: buzon migrate-store --from DIR --to DSN", stderr)
	from := fs.String("from", "", "data folder of the embedded store to copy")
	to := fs.String("to", "", "PostgreSQL connection string to copy into")
	if pos, err := parseInterleaved(fs, args); err != nil {
		return flagError(err)
	} else if len(pos) > 0 || *from == "" || *to == "" {
		fs.Usage()
		return usageError{"--from and --to are required"}
	}
	log := newLogger(config.Log{Level: "warn"}, stderr)
	cfg := config.Default()
	cfg.Data = *from
	src, err := openStore(cfg, log, useExisting)
	if err != nil {
		return err
	}
	defer src.Close()
	ctx := context.Background()
	pc := postgres.DefaultConfig()
	pc.DSN, pc.Logger = *to, log
	dst, err := postgres.Open(ctx, pc)
	if err != nil {
		return err
	}
	defer dst.Close()

	progress := progressReporter(stderr)
	if err := migrate.Copy(ctx, src, dst, progress); err != nil {
		return err
	}
	accts, err := dst.Accounts(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "copied %d accounts into PostgreSQL\n", len(accts))
	return nil
}

// progressReporter shows a byte progress bar on a terminal and a log line
// every few seconds otherwise.
func progressReporter(w io.Writer) func(done, total int64) {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		var bar *progressbar.ProgressBar
		return func(done, total int64) {
			if bar == nil {
				bar = progressbar.DefaultBytes(total, "copying mail")
			}
			bar.Set64(done)
		}
	}
	var last time.Time
	return func(done, total int64) {
		if time.Since(last) < 5*time.Second && done != total {
			return
		}
		last = time.Now()
		fmt.Fprintf(w, "copied %s of %s\n", formatSize(done), formatSize(total))
	}
}
