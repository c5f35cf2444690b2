package main

// offlineimap (Debian's offlineimap3) syncing an account both ways with a
// local Maildir, over implicit TLS that trusts only the server's own
// self-signed certificate. This file also holds what the getmail tests
// share with it: reading an account's mailboxes as the server holds them.

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/clienttest"
)

// clientTimeout bounds one run of a real client; each run takes well under
// a second, so only a hang reaches it.
const clientTimeout = 2 * time.Minute

// mbMsg is one message as the server holds it.
type mbMsg struct {
	flags []string // sorted
	body  string
}

// mbState is a mailbox as the server holds it.
type mbState struct {
	uidValidity int64
	modSeq      int64 // HIGHESTMODSEQ
	msgs        map[int64]mbMsg
}

// serverState reads every selectable mailbox of user's account through an
// IMAP session that changes nothing (STATUS, EXAMINE, BODY.PEEK), keyed by
// the names LIST gives a client that has not enabled UTF-8 (modified UTF-7,
// as offlineimap and getmail see them).
func serverState(t *testing.T, in *instance, user string) map[string]mbState {
	t.Helper()
	c := clDial(t, in, "imaps", "state reader", "r%d")
	c.ok("AUTHENTICATE PLAIN " + clPlainIR(user))
	out := map[string]mbState{}
	for name, l := range clLists(t, "LIST", c.ok(`LIST "" "*"`).untagged) {
		if l.has(`\Noselect`) || l.has(`\NonExistent`) {
			continue
		}
		q := imapQuote(name)
		st := clStatus(t, c.ok("STATUS "+q+" (MESSAGES UIDVALIDITY HIGHESTMODSEQ)").untagged)[name]
		mb := mbState{uidValidity: st["UIDVALIDITY"], modSeq: st["HIGHESTMODSEQ"], msgs: map[int64]mbMsg{}}
		c.ok("EXAMINE " + q)
		if st["MESSAGES"] > 0 {
			for uid, f := range clByUID(t, clFetches(t, "state reader", c.ok("UID FETCH 1:* (FLAGS BODY.PEEK[])").untagged)) {
				body, ok := f.section("BODY[]")
				if !ok {
					t.Fatalf("%s UID %d: FETCH without BODY[]: %v", name, uid, f.order)
				}
				// \Recent belongs to a session, not to the message.
				flags := slices.DeleteFunc(f.flags(), func(s string) bool { return strings.EqualFold(s, `\Recent`) })
				slices.Sort(flags)
				mb.msgs[uid] = mbMsg{flags: flags, body: body}
			}
		}
		if int64(len(mb.msgs)) != st["MESSAGES"] {
			t.Fatalf("%s: STATUS says %d messages, UID FETCH 1:* gave %d", name, st["MESSAGES"], len(mb.msgs))
		}
		c.ok("UNSELECT")
		out[name] = mb
	}
	c.ok("LOGOUT")
	c.raw.Close()
	return out
}

// serverUnchanged checks that nothing changed on the server between two
// states: no mailbox, UID, flag or byte, and no HIGHESTMODSEQ moved.
func serverUnchanged(t *testing.T, what string, before, after map[string]mbState) {
	t.Helper()
	if b, a := slices.Sorted(maps.Keys(before)), slices.Sorted(maps.Keys(after)); !slices.Equal(b, a) {
		t.Errorf("%s: server mailboxes %q -> %q", what, b, a)
	}
	for name, b := range before {
		a := after[name]
		if a.uidValidity != b.uidValidity || a.modSeq != b.modSeq {
			t.Errorf("%s: %s UIDVALIDITY %d -> %d, HIGHESTMODSEQ %d -> %d", what, name, b.uidValidity, a.uidValidity, b.modSeq, a.modSeq)
		}
		if !maps.EqualFunc(b.msgs, a.msgs, func(x, y mbMsg) bool { return slices.Equal(x.flags, y.flags) && x.body == y.body }) {
			t.Errorf("%s: %s changed on the server:\n%v\n->\n%v", what, name, b.msgs, a.msgs)
		}
	}
}

// oiKeywords are the keywords of the test and the Maildir letters
// offlineimap's customflag_x settings give them. offlineimap carries
// keywords from the server to the Maildir only: a letter removed or added
// locally never reaches the server.
var oiKeywords = map[string]byte{"$Label1": 'a', "Project-X": 'b', "$Forwarded": 'c'}

// oiFlagLetters spells IMAP flags as a Maildir file name does, the letters
// sorted as offlineimap sorts them.
func oiFlagLetters(t *testing.T, flags []string) string {
	t.Helper()
	var b []byte
	for _, f := range flags {
		switch strings.ToLower(f) {
		case `\draft`:
			b = append(b, 'D')
		case `\flagged`:
			b = append(b, 'F')
		case `\answered`:
			b = append(b, 'R')
		case `\seen`:
			b = append(b, 'S')
		case `\deleted`:
			b = append(b, 'T')
		default:
			l, ok := oiKeywords[f]
			if !ok {
				t.Fatalf("flag %s has no Maildir letter in the test", f)
			}
			b = append(b, l)
		}
	}
	slices.Sort(b)
	return string(b)
}

// oiFile is a message file of the local Maildir.
type oiFile struct {
	name  string // relative to the folder
	uid   int64  // the server UID offlineimap put in the name (U=n), 0 if none
	flags string // the letters after ":2,"
	body  string
}

var oiUIDRE = regexp.MustCompile(`,U=(\d+),`)

// oiLocal reads the Maildir tree under root: folder name (the server's
// name, "/" separated) -> message files.
func oiLocal(t *testing.T, root string) map[string][]oiFile {
	t.Helper()
	out := map[string][]oiFile{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if _, err := os.Stat(filepath.Join(path, "cur")); err != nil || path == root {
			return nil
		}
		folder, _ := filepath.Rel(root, path)
		files := []oiFile{}
		for _, sub := range []string{"new", "cur"} {
			ents, err := os.ReadDir(filepath.Join(path, sub))
			if err != nil {
				return err
			}
			for _, e := range ents {
				b, err := os.ReadFile(filepath.Join(path, sub, e.Name()))
				if err != nil {
					return err
				}
				f := oiFile{name: sub + "/" + e.Name(), body: string(b)}
				if m := oiUIDRE.FindStringSubmatch(e.Name()); m != nil {
					f.uid, _ = strconv.ParseInt(m[1], 10, 64)
				}
				_, f.flags, _ = strings.Cut(e.Name(), ":2,")
				files = append(files, f)
			}
		}
		out[filepath.ToSlash(folder)] = files
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// oiAgree checks that the Maildir holds what the server holds: the same
// folders, and in each the same UIDs with the same flags and bytes
// (offlineimap keeps LF line ends on disk).
func oiAgree(t *testing.T, when string, server map[string]mbState, local map[string][]oiFile) {
	t.Helper()
	if s, l := slices.Sorted(maps.Keys(server)), slices.Sorted(maps.Keys(local)); !slices.Equal(s, l) {
		t.Errorf("%s: server folders %q, local %q", when, s, l)
	}
	for name, mb := range server {
		files, ok := local[name]
		if !ok {
			continue
		}
		byUID := map[int64]oiFile{}
		for _, f := range files {
			if f.uid == 0 {
				t.Errorf("%s: %s/%s has no server UID in its name", when, name, f.name)
				continue
			}
			if _, dup := byUID[f.uid]; dup {
				t.Errorf("%s: %s has two files for UID %d", when, name, f.uid)
			}
			byUID[f.uid] = f
		}
		if s, l := slices.Sorted(maps.Keys(mb.msgs)), slices.Sorted(maps.Keys(byUID)); !slices.Equal(s, l) {
			t.Errorf("%s: %s UIDs on the server %v, in the Maildir %v", when, name, s, l)
		}
		for uid, m := range mb.msgs {
			f, ok := byUID[uid]
			if !ok {
				continue
			}
			if want := oiFlagLetters(t, m.flags); f.flags != want {
				t.Errorf("%s: %s UID %d: Maildir flags %q, server %v (%q)", when, name, uid, f.flags, m.flags, want)
			}
			if want := strings.ReplaceAll(m.body, "\r\n", "\n"); f.body != want {
				t.Errorf("%s: %s UID %d: Maildir has\n%q\nserver has\n%q", when, name, uid, f.body, m.body)
			}
		}
	}
}

// oiSync is an offlineimap setup for one account.
type oiSync struct {
	t    *testing.T
	bin  string
	conf string
	mail string // the Maildir tree
}

// newOISync writes offlineimap's configuration: the server on its implicit
// TLS port under the name its certificate carries, that certificate as the
// only one trusted, a Maildir tree with "/" between folder levels, and the
// Maildir letters of oiKeywords.
func newOISync(t *testing.T, in *instance, user string) *oiSync {
	dir := t.TempDir()
	s := &oiSync{t: t, bin: clienttest.Need(t, "offlineimap", "offlineimap3"),
		conf: filepath.Join(dir, "offlineimaprc"), mail: filepath.Join(dir, "mail")}
	_, port := in.hostPort("imaps")
	var custom strings.Builder
	for _, kw := range slices.Sorted(maps.Keys(oiKeywords)) {
		fmt.Fprintf(&custom, "customflag_%c = %s\n", oiKeywords[kw], kw)
	}
	conf := fmt.Sprintf(`[general]
accounts = buzon
metadata = %s
socktimeout = 15

[Account buzon]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = %s
sep = /
%s
[Repository remote]
type = IMAP
remotehost = localhost
remoteport = %s
ssl = yes
sslcacertfile = %s
remoteuser = %s
remotepass = %s
`, filepath.Join(dir, "metadata"), s.mail, custom.String(), port,
		filepath.Join(in.data, "tls", "cert.pem"), user, clPass)
	if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(s.mail, 0o700); err != nil {
		t.Fatal(err)
	}
	return s
}

// oiTroubleRE finds what offlineimap says when something went wrong. It
// exits 0 after some of its warnings (a folder it skipped), so a sync is
// judged by its output as well.
var oiTroubleRE = regexp.MustCompile(`(?m)^(ERROR|WARNING).*$`)

// run syncs once and returns what offlineimap printed. It fails the test
// unless offlineimap exits 0 without an error or warning.
func (s *oiSync) run(what string) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, "-c", s.conf, "-o", "-u", "basic")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		s.t.Fatalf("offlineimap, %s: no end within %v:\n%s", what, clientTimeout, out.String())
	}
	if err != nil || oiTroubleRE.MatchString(out.String()) {
		s.t.Fatalf("offlineimap, %s: %v\n%s", what, err, out.String())
	}
	s.t.Logf("offlineimap, %s:\n%s", what, out.String())
	return out.String()
}

// oiActionRE finds the lines where offlineimap reports a change it made.
var oiActionRE = regexp.MustCompile(`(?m)^(Copy message|Adding flag|Deleting|Creating|Unknown keywords).*$`)

// noop runs a sync that must change nothing on either side.
func (s *oiSync) noop(in *instance, user, what string) {
	t := s.t
	t.Helper()
	server, local := serverState(t, in, user), oiLocal(t, s.mail)
	out := s.run(what)
	if acts := oiActionRE.FindAllString(out, -1); acts != nil {
		t.Errorf("%s did something:\n%s", what, strings.Join(acts, "\n"))
	}
	serverUnchanged(t, what, server, serverState(t, in, user))
	if after := oiLocal(t, s.mail); !oiSameFiles(local, after) {
		t.Errorf("%s changed the Maildir:\nbefore %v\nafter  %v", what, local, after)
	}
}

func oiSameFiles(a, b map[string][]oiFile) bool {
	return maps.EqualFunc(a, b, func(x, y []oiFile) bool { return slices.Equal(x, y) })
}

// oiFind returns the file of folder whose bytes contain s.
func oiFind(t *testing.T, local map[string][]oiFile, folder, s string) oiFile {
	t.Helper()
	for _, f := range local[folder] {
		if strings.Contains(f.body, s) {
			return f
		}
	}
	t.Fatalf("no message with %q in the Maildir's %s: %v", s, folder, local[folder])
	return oiFile{}
}

// TestOfflineimap syncs an account with folders, flags and keywords both
// ways: the first sync copies everything and leaves the server as it was,
// a second one does nothing, local flag changes, deletions, messages and
// folders reach the server, and what another IMAP session appends,
// flags, expunges and creates reaches the Maildir.
func TestOfflineimap(t *testing.T) {
	t.Parallel()
	const user = "olga@example.org"
	in := clServer(t, user)
	oi := newOISync(t, in, user)

	// INBOX mail arrives over LMTP; the other folders get theirs by
	// APPEND, with flags and keywords.
	inbox := []string{
		clMsg("From: Bob <bob@example.net>", "To: "+user, "Subject: one", "Message-ID: <one@example.net>", "", "the first"),
		clMsg("From: bob@example.net", "To: "+user, "Subject: two", "X-Folded: a", " b", "\tc", "",
			".", "..two dots", "From the start of a line", ">From quoted", "", "", "end"),
		clMsg("From: =?UTF-8?Q?Jos=C3=A9?= <jose@example.net>", "To: "+user, "Subject: three",
			"MIME-Version: 1.0", "Content-Type: multipart/mixed; boundary=b1", "",
			"--b1", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit", "", "ma\u00f1ana \u20ac",
			"--b1", "Content-Type: application/octet-stream", "Content-Transfer-Encoding: base64", "",
			clBase64(clBlob(5000)), "--b1--"),
	}
	clDeliver(t, in, user, inbox...)
	seed := clDial(t, in, "imaps", "seed", "s%d")
	seed.ok("AUTHENTICATE PLAIN " + clPlainIR(user))
	seed.ok("CREATE Work/Projects")
	for _, a := range []struct{ mailbox, flags, msg string }{
		{"Archive", `(\Seen \Answered Project-X)`, clMsg("Subject: old", "", "archived")},
		{"Work/Projects", `($Forwarded \Seen)`, clMsg("Subject: plan", "", "the plan")},
		{"Work/Projects", `(\Draft)`, clMsg("Subject: draft", "", "unfinished")},
	} {
		if r := seed.appendMsg(a.mailbox, a.flags, a.msg, true); r.status != "OK" {
			t.Fatalf("APPEND to %s: %s", a.mailbox, r.text)
		}
	}
	seed.ok("SELECT INBOX")
	seed.ok(`UID STORE 1 +FLAGS.SILENT (\Seen)`)
	seed.ok(`UID STORE 2 +FLAGS.SILENT (\Flagged $Label1)`)
	seed.ok("LOGOUT")

	before := serverState(t, in, user)
	for _, name := range []string{"INBOX", "Archive", "Work/Projects"} {
		if len(before[name].msgs) == 0 {
			t.Fatalf("%s is empty before the first sync: %v", name, slices.Sorted(maps.Keys(before)))
		}
	}
	for i, msg := range inbox {
		if got := before["INBOX"].msgs[int64(i+1)].body; got != msg {
			t.Fatalf("INBOX UID %d holds %q, delivered %q", i+1, got, msg)
		}
	}

	oi.run("first sync")
	oiAgree(t, "after the first sync", before, oiLocal(t, oi.mail))
	serverUnchanged(t, "the first sync", before, serverState(t, in, user))

	oi.noop(in, user, "second sync")

	// Local changes: a deletion, flags added and removed, a new message
	// and a new folder.
	local := oiLocal(t, oi.mail)
	rename := func(f oiFile, flags string) {
		t.Helper()
		dir := filepath.Join(oi.mail, "INBOX")
		base, _, _ := strings.Cut(filepath.Base(f.name), ":2,")
		if err := os.Rename(filepath.Join(dir, f.name), filepath.Join(dir, "cur", base+":2,"+flags)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(oi.mail, "INBOX", oiFind(t, local, "INBOX", "Subject: one").name)); err != nil {
		t.Fatal(err)
	}
	rename(oiFind(t, local, "INBOX", "Subject: two"), "a")    // \Flagged off, the keyword kept
	rename(oiFind(t, local, "INBOX", "Subject: three"), "FS") // \Flagged and \Seen on
	offline := "Subject: written offline\nMessage-ID: <offline@example.org>\n\nsent from the train\n"
	if err := os.WriteFile(filepath.Join(oi.mail, "Work", "Projects", "new", "offline.eml"), []byte(offline), 0o600); err != nil {
		t.Fatal(err)
	}
	note := "Subject: note\n\nremember the milk\n"
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(oi.mail, "Notes", sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(oi.mail, "Notes", "cur", "note.eml:2,S"), []byte(note), 0o600); err != nil {
		t.Fatal(err)
	}

	// Server changes from another session: an APPEND, flags set and
	// cleared, an expunge, and a folder (non-ASCII, nested) with mail.
	other := clDial(t, in, "imaps", "other device", "d%d")
	other.ok("AUTHENTICATE PLAIN " + clPlainIR(user))
	fresh := clMsg("From: carol@example.net", "Subject: fresh", "", "new on the server")
	if r := other.appendMsg("Archive", `(\Flagged Project-X)`, fresh, false); r.status != "OK" {
		t.Fatalf("APPEND: %s", r.text)
	}
	other.ok("CREATE Listas/Caf&AOk-")
	list := clMsg("Subject: lista", "", "list mail")
	if r := other.appendMsg("Listas/Caf&AOk-", "", list, false); r.status != "OK" {
		t.Fatalf("APPEND: %s", r.text)
	}
	other.ok("SELECT Work/Projects")
	other.ok(`UID STORE 1 +FLAGS.SILENT (\Flagged)`)
	other.ok(`UID STORE 1 -FLAGS.SILENT ($Forwarded)`)
	other.ok(`UID STORE 2 +FLAGS.SILENT (\Deleted)`)
	other.ok("UID EXPUNGE 2")
	other.ok("LOGOUT")

	oi.run("third sync")
	server, local := serverState(t, in, user), oiLocal(t, oi.mail)
	oiAgree(t, "after the third sync", server, local)
	want := map[string]map[int64][]string{
		"INBOX":           {2: {"$Label1"}, 3: {`\Flagged`, `\Seen`}},
		"Archive":         {1: {`\Answered`, `\Seen`, "Project-X"}, 2: {`\Flagged`, "Project-X"}},
		"Work/Projects":   {1: {`\Flagged`, `\Seen`}, 3: {}},
		"Notes":           {1: {`\Seen`}},
		"Listas/Caf&AOk-": {1: {}},
	}
	for name, msgs := range want {
		got := map[int64][]string{}
		for uid, m := range server[name].msgs {
			got[uid] = m.flags
		}
		if !maps.EqualFunc(got, msgs, func(a, b []string) bool { return slices.Equal(a, slices.Sorted(slices.Values(b))) }) {
			t.Errorf("after the third sync, server %s: UIDs and flags %v, want %v", name, got, msgs)
		}
	}
	if uv := server["INBOX"].uidValidity; uv != before["INBOX"].uidValidity {
		t.Errorf("INBOX UIDVALIDITY %d -> %d", before["INBOX"].uidValidity, uv)
	}
	for _, c := range []struct {
		mailbox string
		uid     int64
		want    string
	}{
		{"Work/Projects", 3, strings.ReplaceAll(offline, "\n", "\r\n")},
		{"Notes", 1, strings.ReplaceAll(note, "\n", "\r\n")},
		{"Archive", 2, fresh},
		{"Listas/Caf&AOk-", 1, list},
		{"INBOX", 2, inbox[1]},
		{"INBOX", 3, inbox[2]},
	} {
		if got := server[c.mailbox].msgs[c.uid].body; got != c.want {
			t.Errorf("after the third sync, server %s UID %d holds\n%q\nwant\n%q", c.mailbox, c.uid, got, c.want)
		}
	}

	oi.noop(in, user, "fourth sync")
}
