package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/store"
	"github.com/buzon-mail/buzon/internal/store/postgres"
	"github.com/buzon-mail/buzon/internal/store/sqlite"
)

// How a command opens the store (openStore).
type storeUse int

const (
	// useServe: the server, which creates an embedded store on first
	// start and listens for the other processes' change notifications.
	useServe storeUse = iota
	// useCreate: a command that may create the store (user add before
	// the first start).
	useCreate
	// useExisting: a command that only makes sense on a store that
	// exists. A wrong --data for `buzon deliver` must not create an
	// empty store and bounce every message as for an unknown user.
	useExisting
)

// openStore opens the configured backend; this is the one place that knows
// which backends exist. With sqlite, only the server listens for other
// processes' change notifications; commands just send them. PostgreSQL
// carries notifications between every process and node itself.
func openStore(cfg config.Config, log *slog.Logger, use storeUse) (store.Store, error) {
	switch cfg.Store.Backend {
	case "sqlite":
		if err := checkOwner(cfg.Data); err != nil {
			return nil, err
		}
		if use == useExisting {
			switch ok, err := sqlite.Exists(cfg.Data); {
			case err != nil:
				return nil, fmt.Errorf("data folder: %w", err)
			case !ok:
				return nil, fmt.Errorf("no store in data folder %s: is the folder right? (buzon serve, or buzon user add, makes one)", cfg.Data)
			}
		} else if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
			return nil, fmt.Errorf("data folder: %w", err)
		}
		sc := sqlite.DefaultConfig()
		sc.Dir = cfg.Data
		sc.Logger = log
		sc.Listen = use == useServe
		sc.MaxOpenAccounts = cfg.Store.MaxOpenAccounts
		sc.MaxMailboxes = cfg.Limits.MaxMailboxes
		sc.CachedUIDs, sc.KeptExpunges = cachedUIDs(cfg.Store), cfg.Store.KeptExpunges
		return sqlite.Open(sc)
	case "postgres":
		pc := postgres.DefaultConfig()
		pc.DSN = cfg.Store.DSN
		pc.Logger = log
		pc.MaxMailboxes = cfg.Limits.MaxMailboxes
		pc.CachedUIDs, pc.KeptExpunges = cachedUIDs(cfg.Store), cfg.Store.KeptExpunges
		return postgres.Open(context.Background(), pc)
	}
	return nil, fmt.Errorf("store backend %q is not available", cfg.Store.Backend)
}

// checkOwner refuses root the use of an embedded store that another user
// made, the user the server runs as: a file root made there (an account's
// database, by user add) would be one the server may not open. A store
// root made (a server running as root) is root's to use.
func checkOwner(dir string) error {
	// The embedded store's shared database, made by whoever made the store.
	if name := foreignOwner(filepath.Join(dir, "accounts.db")); name != "" {
		return fmt.Errorf("the store in %s belongs to user %s: run buzon as that user (sudo -u %s ...), since what root makes there the server may not open", dir, name, name)
	}
	return nil
}

// foreignOwner returns, when we run as root, the name (or else the
// number) of the user other than root who owns path; "" when we are not
// root (another user's files are not ours to write anyway), when root
// owns path, and when it does not exist (it will be root's).
func foreignOwner(path string) string {
	if os.Geteuid() != 0 {
		return ""
	}
	uid, _, ok := fileOwner(path)
	if !ok || uid == 0 {
		return ""
	}
	name := strconv.Itoa(uid)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	return name
}

// fileOwner returns the user and group, by number, that own path; ok is
// false when path cannot be read (it does not exist, say).
func fileOwner(path string) (uid, gid int, ok bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}

// storeExists reports whether the configured store has been made: an
// embedded one in its data folder. A PostgreSQL store counts as made; its
// schema is applied by whoever opens it first.
func storeExists(cfg config.Config) (bool, error) {
	if cfg.Store.Backend != "sqlite" {
		return true, nil
	}
	return sqlite.Exists(cfg.Data)
}

// cachedUIDs is the backends' CachedUIDs for the configuration's, whose 0
// turns the cache off where theirs means "the default".
func cachedUIDs(c config.Store) int {
	if c.CachedUIDs == 0 {
		return -1
	}
	return c.CachedUIDs
}

// spoolDir is where large incoming messages wait while they are parsed:
// inside the data folder, so they are on the store's filesystem.
func spoolDir(cfg config.Config) string {
	dir := filepath.Join(cfg.Data, "tmp")
	os.MkdirAll(dir, 0o700)
	return dir
}
