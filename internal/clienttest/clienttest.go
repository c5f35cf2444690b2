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
