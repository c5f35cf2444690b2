package clienttest

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// DovecotScript controls the reference peer, a real Dovecot the tests
// compare buzon with (read its header).
const DovecotScript = "/work/shared/peers/dovecot.sh"

// Dovecot is a Dovecot of a test's own, in a folder and on loopback ports
// of its own, with users user1..userN whose password is "pass".
type Dovecot struct {
	// Dir is its PEER_DIR: configuration, TLS certificate (tls/cert.pem),
	// Maildirs.
	Dir string
	// Ports are its listeners' ports by name: IMAP, IMAPS, POP3, POP3S,
	// LMTP.
	Ports map[string]int

	env []string
}

// CanRunDovecot skips the test where no Dovecot can start: with -short,
// without the dovecot packages or the peer script, or without root,
// which the script needs.
func CanRunDovecot(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("Dovecot tests skipped with -short")
	}
	if _, err := os.Stat("/usr/sbin/dovecot"); err != nil {
		t.Skip("dovecot not installed (scripts/deps.sh)")
	}
	if _, err := os.Stat(DovecotScript); err != nil {
		t.Skip("no " + DovecotScript)
	}
	if os.Getuid() != 0 {
		t.Skip("dovecot.sh needs root")
	}
}

// StartDovecot starts a Dovecot with the given number of users, stopped
// and removed when the test ends, or skips the test where none can run.
// Its folder is named after prefix.
func StartDovecot(t testing.TB, prefix string, users int) *Dovecot {
	t.Helper()
	CanRunDovecot(t)
	d, err := LaunchDovecot(prefix, users)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if out, err := d.Clean(); err != nil {
			t.Errorf("dovecot.sh clean: %v\n%s", err, out)
		}
	})
	return d
}

// LaunchDovecot starts a Dovecot for tests that share one (call
// CanRunDovecot first); Clean stops and removes it.
func LaunchDovecot(prefix string, users int) (*Dovecot, error) {
	// Ports picked free can be taken before Dovecot binds them, by
	// another Dovecot starting beside this one: it is started again on
	// others.
	for attempt := 1; ; attempt++ {
		d, out, err := launchDovecot(prefix, users)
		if err == nil {
			return d, nil
		}
		if attempt == 5 || !bytes.Contains(out, []byte("already in use")) {
			return nil, err
		}
	}
}

// launchDovecot is one attempt of LaunchDovecot, which returns the
// script's output with its error.
func launchDovecot(prefix string, users int) (*Dovecot, []byte, error) {
	// Dovecot's processes run as other users: the folder is not in the
	// test's own temporary directory, which is closed to them.
	dir, err := os.MkdirTemp("/tmp", prefix+"-")
	if err != nil {
		return nil, nil, err
	}
	d := &Dovecot{Dir: dir, Ports: map[string]int{}}
	d.env = append(os.Environ(), "PEER_DIR="+dir, fmt.Sprintf("USERS=%d", users))
	for _, name := range []string{"IMAP", "IMAPS", "POP3", "POP3S", "LMTP"} {
		port, err := peerPort(slices.Collect(maps.Values(d.Ports)))
		if err != nil {
			os.RemoveAll(dir)
			return nil, nil, err
		}
		d.Ports[name] = port
		d.env = append(d.env, fmt.Sprintf("%s_PORT=%d", name, port))
	}
	if out, err := d.Script("start"); err != nil {
		d.Clean()
		return nil, out, fmt.Errorf("dovecot.sh start: %v\n%s", err, out)
	}
	return d, nil, nil
}

// peerPort picks a free loopback port for a Dovecot listener, other than
// those it has already, below the kernel's range of ephemeral ports
// (32768 and up on Linux): the servers and clients of tests running
// beside it bind port 0 and get ports from that range, which would take
// one picked there before Dovecot binds it.
func peerPort(taken []int) (int, error) {
	for range 100 {
		port := 20000 + rand.IntN(12000)
		if slices.Contains(taken, port) {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		l.Close()
		return port, nil
	}
	return 0, errors.New("no free loopback port in 20000-31999")
}

// Addr is the loopback address of the listener called name ("IMAP").
func (d *Dovecot) Addr(name string) string {
	return fmt.Sprintf("127.0.0.1:%d", d.Ports[name])
}

// Script runs dovecot.sh with args for this Dovecot.
func (d *Dovecot) Script(args ...string) ([]byte, error) {
	c := exec.Command(DovecotScript, args...)
	c.Env = d.env
	return c.CombinedOutput()
}

// Clean stops the Dovecot and removes its folder.
func (d *Dovecot) Clean() ([]byte, error) {
	out, err := d.Script("clean")
	os.RemoveAll(d.Dir)
	return out, err
}

// Corpus is the shared corpus of real-world and malformed messages,
// shared/corpus in a folder above the test's (the checkout sits next to
// it), or "" when there is none.
func Corpus() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		c := filepath.Join(dir, "shared", "corpus")
		if fi, err := os.Stat(c); err == nil && fi.IsDir() {
			return c
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// NeedCorpus returns Corpus, or skips the test when there is none.
func NeedCorpus(t testing.TB) string {
	t.Helper()
	c := Corpus()
	if c == "" {
		t.Skip("no shared/corpus above the test directory")
	}
	return c
}
