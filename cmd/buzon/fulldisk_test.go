package main

// A full disk: refusals are temporary, nothing stored is damaged, and the
// server recovers by itself when space returns. See SECURITY.md.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mountTmpfs mounts a tmpfs of the given size on a new folder and unmounts
// it when the test ends (after the servers started later have stopped).
// It skips the test where mounting is not permitted.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "small-disk")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (needs root or CAP_SYS_ADMIN): %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// freeBytes is the space left on the filesystem holding dir.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

var tempFailRE = regexp.MustCompile(`^452 4\.3\.1 `)

// TestFullDisk fills the filesystem of the data folder: deliveries until
// one is refused, then a filler file for the rest. While the disk is full,
// LMTP answers 452 4.3.1 (small and spooled messages alike), `buzon
// deliver` exits 75 (EX_TEMPFAIL), and IMAP APPEND says NO with a
// temporary code (not [SERVERBUG], not [OVERQUOTA]); stored mail can still
// be read over IMAP and POP3, byte for byte. When the filler goes, every
// path delivers again without a restart; no refused message was stored,
// no acknowledged one was damaged, and `buzon check` finds no problem.
func TestFullDisk(t *testing.T) {
	t.Parallel()
	data := mountTmpfs(t, "8m")
	const user, pass = "full@example.org", "full-pw"
	addUser(t, data, user, pass)
	// Messages over 64 KiB are spooled to a file in the data folder, so
	// the spool meets the full disk too.
	in := start(t, data, "--config", writeConfig(t, "[delivery]\nmemory_spool = 65536\n"))

	var acked [][]byte
	var refused []string // Message-IDs
	lc := dialLMTP(t, in.ports["lmtp"])
	deliver := func(id string, size int) string {
		t.Helper()
		msg := testMessage(id, size)
		r, err := lc.deliver(user, msg)
		if err != nil {
			t.Fatalf("LMTP delivery of %s: %v", id, err)
		}
		switch {
		case strings.HasPrefix(r, "250"):
			acked = append(acked, msg)
		case tempFailRE.MatchString(r):
			refused = append(refused, id)
		default:
			t.Fatalf("LMTP delivery of %s on a full disk: %q, want 250 or 452 4.3.1", id, r)
		}
		return r
	}

	// Leave about 1.5 MB, then deliver 40 KB messages until refused.
	filler := filepath.Join(data, "filler")
	fillTo(t, filler, freeBytes(t, data)-1536*1024)
	for i := 0; ; i++ {
		if i == 1000 {
			t.Fatalf("1000 deliveries into 1.5 MB were all accepted; %d bytes free", freeBytes(t, data))
		}
		if r := deliver(fmt.Sprintf("fill-%d@full.test", i), 40*1024); !strings.HasPrefix(r, "250") {
			break
		}
	}
	if len(acked) == 0 {
		t.Fatal("no delivery was accepted before the disk filled up")
	}
	// Whatever space is left (a failed write frees its blocks) goes too.
	fillMore(t, filepath.Join(data, "filler2"))
	t.Logf("%d deliveries accepted before the disk was full; %d bytes free now", len(acked), freeBytes(t, data))

	// Full: every path refuses, temporarily.
	for i, size := range []int{2000, 40 * 1024, 300 * 1024} {
		if r := deliver(fmt.Sprintf("full-%d@full.test", i), size); !tempFailRE.MatchString(r) {
			t.Errorf("LMTP delivery of %d bytes to a full disk: %q, want 452 4.3.1", size, r)
		}
	}
	if _, stderr, code := buzon(t, string(testMessage("deliver-full@full.test", 2000)), "deliver", "--data", data, user); code != exTempFail {
		t.Errorf("buzon deliver to a full disk: exit %d, want %d (EX_TEMPFAIL)\n%s", code, exTempFail, stderr)
	}
	refused = append(refused, "deliver-full@full.test")
	ic := dialIMAP(t, "", in.ports["imap"])
	ic.login(user, pass)
	for i, size := range []int{2000, 300 * 1024} {
		id := fmt.Sprintf("append-full-%d@full.test", i)
		_, tagged := ic.cmdLiteral("APPEND INBOX ", testMessage(id, size), "")
		code := respCode(tagged)
		if !strings.HasPrefix(tagged, "NO") || code == "SERVERBUG" || code == "OVERQUOTA" || code != "UNAVAILABLE" {
			t.Errorf("APPEND of %d bytes to a full disk: %q, want NO [UNAVAILABLE] (temporary; not SERVERBUG, not OVERQUOTA)", size, tagged)
		}
		refused = append(refused, id)
	}
	ic.mustOK("NOOP") // the session goes on
	// Reading works on a full disk.
	checkMailbox(t, in, user, pass, acked, refused, "on a full disk")
	pc := dialPOP3(t, "", in.ports["pop3"])
	if r := pc.login(user, pass); !strings.HasPrefix(r, fmt.Sprintf("+OK maildrop has %d messages", len(acked))) {
		t.Errorf("POP3 login on a full disk: %q", r)
	}
	pc.cmd("QUIT")

	// Space returns: every path works again, without a restart.
	for _, f := range []string{filler, filler + "2"} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		r := deliver(fmt.Sprintf("recovered-%d@full.test", i), 40*1024)
		if strings.HasPrefix(r, "250") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("LMTP still refuses 30s after space returned: %q", r)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if r := deliver("recovered-big@full.test", 300*1024); !strings.HasPrefix(r, "250") {
		t.Errorf("spooled LMTP delivery after space returned: %q", r)
	}
	msg := testMessage("deliver-recovered@full.test", 2000)
	mustBuzon(t, string(msg), "deliver", "--data", data, user)
	acked = append(acked, msg)
	for i, size := range []int{2000, 300 * 1024} {
		msg := testMessage(fmt.Sprintf("append-recovered-%d@full.test", i), size)
		if _, tagged := ic.cmdLiteral("APPEND INBOX ", msg, ""); !strings.HasPrefix(tagged, "OK") {
			t.Errorf("APPEND of %d bytes after space returned: %q", size, tagged)
		}
		acked = append(acked, msg)
	}
	ic.mustOK("LOGOUT")
	lc.cmd("QUIT")
	checkMailbox(t, in, user, pass, acked, refused, "after space returned")
	in.stop()
	if out, _, code := buzon(t, "", "check", "--data", data); code != 0 || !strings.Contains(out, "no problems") {
		t.Errorf("buzon check after a full disk: exit %d\n%s", code, out)
	}
	// And a restart serves the same mail.
	again := start(t, data)
	checkMailbox(t, again, user, pass, acked, refused, "after a restart")
}

// fillTo writes a file of n bytes (in 1 MiB writes, synced).
func fillTo(t *testing.T, path string, n int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := bytes.Repeat([]byte("F"), 1<<20)
	for n > 0 {
		w, err := f.Write(buf[:min(int64(len(buf)), n)])
		if err != nil {
			t.Fatalf("fill %s: %v", path, err)
		}
		n -= int64(w)
	}
}

// fillMore writes to a file until the filesystem refuses.
func fillMore(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		return // not even an inode left: full already
	}
	defer f.Close()
	buf := bytes.Repeat([]byte("F"), 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			return
		}
	}
}

// checkMailbox reads INBOX and checks it holds exactly the acknowledged
// messages, byte for byte, once each, and none of the refused ones.
func checkMailbox(t *testing.T, in *instance, user, pass string, acked [][]byte, refused []string, when string) {
	t.Helper()
	got := fetchAll(t, in.ports["imap"], user, pass, "INBOX")
	if len(got) != len(acked) {
		t.Errorf("%s: INBOX has %d messages, %d were acknowledged", when, len(got), len(acked))
	}
	remaining := map[string]int{}
	for _, m := range acked {
		remaining[string(m)]++
	}
	for i, m := range got {
		if remaining[string(m)] == 0 {
			id := messageIDRE.FindSubmatch(m)
			t.Errorf("%s: message %d (%q, %d bytes) is not an acknowledged message, or is there twice", when, i+1, id, len(m))
			continue
		}
		remaining[string(m)]--
	}
	for _, m := range got {
		for _, id := range refused {
			if bytes.Contains(m, []byte("<"+id+">")) {
				t.Errorf("%s: refused message %s was stored", when, id)
			}
		}
	}
}
