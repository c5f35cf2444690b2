package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"

	"golang.org/x/term"

	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/delivery"
	"github.com/buzon-mail/buzon/internal/fetch"
	"github.com/buzon-mail/buzon/internal/progress"
)

// runFetch is `buzon fetch`: fetch mail from other POP3/IMAP accounts into
// a Maildir, an mbox, a buzon account or an MDA, once or as a daemon.
func runFetch(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("fetch", "usage: buzon fetch [--config FILE] [--once | --daemon] [ACCOUNT...]\n       buzon fetch --example > fetch.toml", stderr)
	configFile := fs.String("config", "", "fetch configuration file (default: "+defaultFetchConfig()+")")
	once := fs.Bool("once", false, "fetch each account once and exit (the default)")
	daemon := fs.Bool("daemon", false, "keep fetching, each account on its interval, until SIGTERM")
	example := fs.Bool("example", false, "print a commented sample configuration and exit")
	names, err := parseInterleaved(fs, args)
	if err != nil {
		return flagError(err)
	}
	if *example {
		ex, err := fetch.Example()
		if err != nil {
			return err
		}
		_, err = fmt.Fprint(stdout, ex)
		return err
	}
	if *once && *daemon {
		return usageError{"--once and --daemon: one or the other"}
	}
	if *daemon && len(names) > 0 {
		return usageError{"--daemon fetches every account; leave out account names"}
	}
	path := *configFile
	if path == "" {
		path = defaultFetchConfig()
	}
	cfg, err := fetch.Load(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w\nWrite one with: mkdir -p %s && %s fetch --example > %s, then edit it", err, shellQuote(filepath.Dir(path)), self(), shellQuote(path))
	}
	if err != nil {
		return err
	}
	log := newLogger(config.Log{Level: cfg.LogLevel, Format: cfg.LogFormat}, stderr)
	opts := fetch.Options{Logger: log, OpenStore: fetchStoreOpener(log)}
	if f, ok := stderr.(*os.File); ok && !*daemon && term.IsTerminal(int(f.Fd())) {
		opts.Progress = func(account string) progress.Progress { return progress.NewBar(stderr, account) }
	}
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals()...)
	defer stop()
	f := fetch.New(cfg, opts)
	defer f.Close()
	if *daemon {
		log.Info("buzon fetch started", "accounts", len(cfg.Accounts), "state", cfg.StateDir)
		err := f.Daemon(ctx)
		log.Info("buzon fetch stopped")
		return err
	}
	sums, err := f.RunOnce(ctx, names...)
	if err != nil {
		return usageError{err.Error()}
	}
	failed := 0
	for _, s := range sums {
		fmt.Fprintln(stdout, s)
		if s.Err != nil || s.Failed > 0 {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d accounts had errors; what was not stored, deleted or moved stays on the server", failed, len(sums))
	}
	if ctx.Err() != nil {
		return errors.New("interrupted")
	}
	return nil
}

// defaultFetchConfig is $XDG_CONFIG_HOME/buzon/fetch.toml (or the
// platform's equivalent).
func defaultFetchConfig() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "fetch.toml"
	}
	return filepath.Join(dir, "buzon", "fetch.toml")
}

// fetchStoreOpener opens the store a store destination names, the way
// `buzon deliver` does: the server's configuration file if given, its data
// folder overridden by the destination's.
func fetchStoreOpener(log *slog.Logger) fetch.StoreOpener {
	return func(t fetch.StoreTarget) (*delivery.Deliverer, *delivery.Spooler, error) {
		cfg := config.Default()
		if t.Config != "" {
			var err error
			if cfg, err = config.Load(t.Config); err != nil {
				return nil, nil, err
			}
		}
		if t.Data != "" {
			cfg.Data = t.Data
		}
		if cfg.Hostname == "" {
			cfg.Hostname = config.DefaultHostname()
		}
		if err := cfg.Validate(); err != nil {
			return nil, nil, err
		}
		st, err := openStore(cfg, log, useExisting)
		if err != nil {
			return nil, nil, err
		}
		sp := &delivery.Spooler{Dir: spoolDir(cfg), MemoryLimit: cfg.Delivery.MemorySpool, MaxSize: cfg.Limits.MaxMessageSize}
		// Quota warnings as the server gives them, logged with the run's
		// lines; the run logs each message itself (at debug), so the
		// Deliverer does not log it again.
		d := &delivery.Deliverer{Store: st, Logger: log, QuietDelivered: true,
			QuotaWarnings: cfg.Delivery.QuotaWarnings, Hostname: cfg.Hostname}
		// The account's vacation replies, as the server sends them.
		if err := vacationDeliverer(d, cfg); err != nil {
			st.Close()
			return nil, nil, err
		}
		return d, sp, nil
	}
}
