// Package clienttest finds the real programs that tests drive against
// buzon: mail clients no one here wrote (mbsync, offlineimap, fetchmail,
// getmail, mpop, mutt, curl) and the Python that runs the scripts using
// imaplib, poplib and smtplib. scripts/deps.sh installs every one, so the
// suite as scripts/test.sh runs it skips no test for a missing client.
//
// It also starts the reference Dovecot tests compare buzon with, and
// finds the shared corpus of real-world messages.
//
// It is for tests only.
package clienttest

import (
	"os/exec"
	"testing"
)

// Need returns the path of the program bin, and skips the test when it is
// not installed, naming pkg, the Debian package that has it.
func Need(t testing.TB, bin, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(bin)
	if err != nil {
		t.Skipf("%s not installed (apt-get install %s, or scripts/deps.sh)", bin, pkg)
	}
	return path
}

// debianPython is Debian's python3, the one that imports the modules
// scripts/deps.sh installs from Debian's packages (python3-sievelib).
const debianPython = "/usr/bin/python3"

// Python returns the python3 that runs the tests' scripts: Debian's,
// where it is installed, so that a python3 put first on PATH by pyenv or
// a virtualenv, without Debian's modules, does not make the tests that
// need them skip; otherwise the python3 on PATH. It skips the test when
// there is none.
func Python(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath(debianPython); err == nil {
		return debianPython
	}
	return Need(t, "python3", "python3")
}
