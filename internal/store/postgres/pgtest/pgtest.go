// Package pgtest runs throwaway PostgreSQL clusters for tests: one shared
// cluster per test binary, started on first use, with a fresh database per
// test, and private clusters for tests that stop and restart the server.
//
// A test package that uses Start calls Main from its TestMain so that the
// shared cluster stops when the test binary exits:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// Tests skip, saying why, when PostgreSQL's initdb and pg_ctl cannot be
// found (on PATH, then in /usr/lib/postgresql/*/bin). When the tests run as
// root, the server runs as the "postgres" system user (created if missing),
// since PostgreSQL refuses to run as root.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// shared is the cluster of this test binary. It is package state because a
// test binary is one process that must start at most one shared cluster and
// stop it on exit; nothing outside tests imports this package.
var shared struct {
	once    sync.Once
	cluster *Cluster
	err     error // why the cluster could not start
	skip    string
	dbs     atomic.Int64   // databases created, for unique names
	drops   sync.WaitGroup // databases of ended tests being dropped
}

// Main runs the tests and then stops the shared cluster, if one was started.
// Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	StopShared()
	os.Exit(code)
}

// StopShared stops the shared cluster, if one was started, and removes it.
// A TestMain with its own work after m.Run calls it instead of Main.
func StopShared() {
	if c := shared.cluster; c != nil {
		shared.drops.Wait()
		if err := c.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
		os.RemoveAll(c.dir)
	}
}

// Start returns the connection string of a new, empty database in the test
// binary's shared cluster, starting the cluster on first use. The database
// is dropped after the test ends, in the background. Tests that use it may
// run in parallel.
func Start(tb testing.TB) (dsn string) {
	tb.Helper()
	return startShared(tb, "template0")
}

// Template is a database that StartFrom copies: made once per test binary
// in the shared cluster, on first use, and filled by Prepare, which must
// close every connection it opens to it. A copy costs less than filling a
// new database again (a store's schema migrations, say).
type Template struct {
	Name    string                 // of the database, unique among templates
	Prepare func(dsn string) error // fills the new, empty database

	once sync.Once
	err  error
}

// StartFrom is Start with a new database that is a copy of tmpl.
func StartFrom(tb testing.TB, tmpl *Template) (dsn string) {
	tb.Helper()
	c := sharedCluster(tb)
	tmpl.once.Do(func() {
		if tmpl.err = c.exec("CREATE DATABASE " + tmpl.Name + " TEMPLATE template0 ENCODING 'UTF8'"); tmpl.err == nil {
			tmpl.err = tmpl.Prepare(c.DSN(tmpl.Name))
		}
	})
	if tmpl.err != nil {
		tb.Fatalf("pgtest: template %s: %v", tmpl.Name, tmpl.err)
	}
	return startShared(tb, tmpl.Name)
}

// sharedCluster returns the shared cluster, started on first use; it
// skips the test when PostgreSQL is not installed.
func sharedCluster(tb testing.TB) *Cluster {
	tb.Helper()
	shared.once.Do(func() {
		shared.cluster, shared.skip, shared.err = newCluster()
	})
	if shared.skip != "" {
		tb.Skip(shared.skip)
	}
	if shared.err != nil {
		tb.Fatalf("pgtest: %v", shared.err)
	}
	return shared.cluster
}

// startShared returns the connection string of a new database in the
// shared cluster, a copy of template, dropped in the background when the
// test ends: the drop, which syncs, need not keep the test's parallel
// peers waiting.
func startShared(tb testing.TB, template string) (dsn string) {
	tb.Helper()
	c := sharedCluster(tb)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), shared.dbs.Add(1))
	if err := c.exec("CREATE DATABASE " + name + " TEMPLATE " + template + " ENCODING 'UTF8'"); err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	shared.drops.Add(1)
	tb.Cleanup(func() {
		go func() {
			defer shared.drops.Done()
			if err := c.dropDB(name); err != nil {
				fmt.Fprintf(os.Stderr, "pgtest: drop database %s: %v\n", name, err)
			}
		}()
	})
	return c.DSN(name)
}

// Cluster is a private PostgreSQL cluster for one test, which may stop and
// restart it.
type Cluster struct {
	bin  string // folder of initdb, pg_ctl and postgres
	dir  string // temporary folder: data/, sock/, log
	port int
	// runAs is the user the server runs as when the tests run as root,
	// else "".
	runAs string
}

// NewCluster starts a private cluster, stopped and removed when the test
// ends, and returns it with the connection string of one empty database in
// it.
func NewCluster(tb testing.TB) (c *Cluster, dsn string) {
	tb.Helper()
	c, skip, err := newCluster()
	if skip != "" {
		tb.Skip(skip)
	}
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(func() {
		if err := c.stop(); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
		os.RemoveAll(c.dir)
	})
	return c, c.createDB(tb, "test")
}

// Stop stops the server at once (pg_ctl stop -m immediate), as a crash
// would: open connections break and nothing is flushed beyond what was
// already synced.
func (c *Cluster) Stop(tb testing.TB) {
	tb.Helper()
	if err := c.pgctl("stop", "-m", "immediate"); err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
}

// Restart starts the server again after Stop, on the same port.
func (c *Cluster) Restart(tb testing.TB) {
	tb.Helper()
	if err := c.start(); err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
}

// DSN returns the connection string of database name in the cluster.
func (c *Cluster) DSN(name string) string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable",
		filepath.Join(c.dir, "sock"), c.port, name)
}

// newCluster initializes and starts a cluster in a new temporary folder.
// skip is set, and err nil, when PostgreSQL is not installed.
func newCluster() (c *Cluster, skip string, err error) {
	bin, err := findBin()
	if err != nil {
		return nil, fmt.Sprintf("PostgreSQL is not installed (%v); scripts/deps.sh installs it", err), nil
	}
	c = &Cluster{bin: bin}
	reapStale(bin)
	if os.Geteuid() == 0 {
		if c.runAs, err = serverUser(); err != nil {
			return nil, "", err
		}
	}
	if c.dir, err = os.MkdirTemp("", dirPrefix); err != nil {
		return nil, "", err
	}
	// The owner file lets a later test binary stop this cluster should
	// this one die without cleaning up (a panic, a kill).
	if err := os.WriteFile(filepath.Join(c.dir, "owner"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(c.dir)
		return nil, "", err
	}
	fail := func(err error) (*Cluster, string, error) {
		os.RemoveAll(c.dir)
		return nil, "", err
	}
	for _, d := range []string{"data", "sock"} {
		if err := os.Mkdir(filepath.Join(c.dir, d), 0o700); err != nil {
			return fail(err)
		}
	}
	if c.runAs != "" {
		if err := c.chown(); err != nil {
			return fail(err)
		}
	}
	if c.port, err = freePort(); err != nil {
		return fail(err)
	}
	// --no-sync only skips initdb's own final sync; the server below runs
	// with fsync=on, so commits are durable as in production.
	if out, err := c.run(filepath.Join(bin, "initdb"), "-D", filepath.Join(c.dir, "data"),
		"-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		return fail(fmt.Errorf("initdb: %w\n%s", err, out))
	}
	conf := fmt.Sprintf("\nport = %d\nlisten_addresses = ''\nunix_socket_directories = '%s'\n"+
		"fsync = on\nsynchronous_commit = on\nmax_connections = 300\nshared_buffers = 128MB\n",
		c.port, filepath.Join(c.dir, "sock"))
	f, err := os.OpenFile(filepath.Join(c.dir, "data", "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fail(err)
	}
	_, err = f.WriteString(conf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail(err)
	}
	if err := c.start(); err != nil {
		return fail(err)
	}
	return c, "", nil
}

func (c *Cluster) start() error {
	return c.pgctl("start", "-w", "-t", "60", "-l", filepath.Join(c.dir, "log"))
}

func (c *Cluster) stop() error {
	return c.pgctl("stop", "-m", "fast", "-w")
}

func (c *Cluster) pgctl(args ...string) error {
	args = append([]string{"-D", filepath.Join(c.dir, "data")}, args...)
	out, err := c.run(filepath.Join(c.bin, "pg_ctl"), args...)
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		return fmt.Errorf("pg_ctl %s: %w\n%s\nserver log:\n%s", args[2], err, out, log)
	}
	return nil
}

// run runs a PostgreSQL program, as c.runAs when set.
func (c *Cluster) run(prog string, args ...string) ([]byte, error) {
	if c.runAs != "" {
		args = append([]string{"-u", c.runAs, "--", prog}, args...)
		prog = "runuser"
	}
	cmd := exec.Command(prog, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// pg_ctl start leaves the server running with our output pipes
	// otherwise; the log file takes its output.
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	return out.Bytes(), err
}

// createDB creates database name and returns its connection string; the
// database is dropped when the test ends.
func (c *Cluster) createDB(tb testing.TB, name string) string {
	tb.Helper()
	if err := c.exec("CREATE DATABASE " + name + " TEMPLATE template0 ENCODING 'UTF8'"); err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		if err := c.dropDB(name); err != nil {
			tb.Logf("pgtest: drop database %s: %v", name, err)
		}
	})
	return c.DSN(name)
}

// dropDB drops database name, if the cluster still runs.
func (c *Cluster) dropDB(name string) error {
	err := c.exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	var conn *pgconn.ConnectError
	if errors.As(err, &conn) {
		return nil // the cluster is gone; so is the database
	}
	return err
}

// exec runs one statement in the cluster's postgres database.
func (c *Cluster) exec(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// chown gives the cluster's folder to c.runAs, and lets it reach the folder.
func (c *Cluster) chown() error {
	u, err := user.Lookup(c.runAs)
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, p := range []string{c.dir, filepath.Join(c.dir, "data"), filepath.Join(c.dir, "sock")} {
		if err := os.Chown(p, uid, gid); err != nil {
			return err
		}
	}
	// The temporary folder's parents must be searchable by that user; the
	// system temporary folder is.
	return os.Chmod(c.dir, 0o711)
}

// dirPrefix starts the names of the clusters' temporary folders.
const dirPrefix = "buzon-pg-"

// reapStale stops and removes the clusters of test binaries that died
// without stopping them: a test binary that panics runs no cleanup.
func reapStale(bin string) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "owner"))
		if err != nil {
			continue // being created, or not ours
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue // its test binary still runs
		}
		c := &Cluster{bin: bin, dir: dir}
		if os.Geteuid() == 0 {
			c.runAs = "postgres"
		}
		if _, err := os.Stat(filepath.Join(dir, "data", "postmaster.pid")); err == nil {
			c.pgctl("stop", "-m", "immediate", "-w")
		}
		os.RemoveAll(dir)
	}
}

// findBin returns the folder holding initdb and pg_ctl: the one on PATH,
// else the newest /usr/lib/postgresql/*/bin.
func findBin() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("no initdb on PATH or in /usr/lib/postgresql/*/bin")
}

// serverUser returns the unprivileged user to run the server as when the
// tests run as root: postgres, created as a system user if missing.
func serverUser() (string, error) {
	const name = "postgres"
	if _, err := user.Lookup(name); err == nil {
		return name, nil
	}
	out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("create user %s to run PostgreSQL as: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return name, nil
}

// freePort returns a TCP port nothing listens on now; the server uses it
// only to name its socket, but a free one keeps it from clashing with a
// server on the machine if listen_addresses is ever set.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
