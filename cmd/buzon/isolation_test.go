package main

// Isolation: no session reaches another account's data, whatever names it
// uses, and no mailbox name reaches the filesystem. See SECURITY.md.

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// nameArg is a mailbox name as a client sends it: quoted, or as a
// synchronising literal (which can carry NUL, CR and LF).
type nameArg struct {
	s   string
	lit bool
}

// sendNames writes a command whose %s verbs are names, waiting for the
// continuation before each literal, and returns the responses. A command
// the server refuses before all its literals are sent ends early with the
// refusal, as a real client's would.
func (ic *rawIMAP) sendNames(format string, names ...nameArg) (untagged []string, tagged string) {
	ic.t.Helper()
	tag := ic.nextTag()
	parts := strings.Split(format, "%s")
	if len(parts) != len(names)+1 {
		ic.t.Fatalf("format %q for %d names", format, len(names))
	}
	line := tag + " " + parts[0]
	for i, n := range names {
		if !n.lit {
			line += `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(n.s) + `"` + parts[i+1]
			continue
		}
		ic.send(line + fmt.Sprintf("{%d}\r\n", len(n.s)))
		resp, err := ic.readResp()
		if err != nil {
			ic.t.Fatalf("waiting for continuation: %v", err)
		}
		if rest, ok := strings.CutPrefix(resp, tag+" "); ok {
			return nil, rest
		}
		if !strings.HasPrefix(resp, "+") {
			ic.t.Fatalf("want continuation, got %q", resp)
		}
		line = n.s + parts[i+1]
	}
	ic.send(line + "\r\n")
	return ic.until(tag)
}

// accountState describes everything of an account an attack could change
// or reveal: mailboxes, subscriptions, status, and every message's UID,
// flags and content hash.
func accountState(t *testing.T, addr, user, pass string) string {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	var b strings.Builder
	boxes, err := c.List("", "*", &imap.ListOptions{ReturnSubscribed: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(boxes, func(x, y *imap.ListData) int { return strings.Compare(x.Mailbox, y.Mailbox) })
	for _, mb := range boxes {
		fmt.Fprintf(&b, "mailbox %q %v\n", mb.Mailbox, mb.Attrs)
		sel, err := c.Select(mb.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			t.Fatalf("select %s: %v", mb.Mailbox, err)
		}
		fmt.Fprintf(&b, "  uidvalidity %d uidnext %d messages %d\n", sel.UIDValidity, sel.UIDNext, sel.NumMessages)
		if sel.NumMessages == 0 {
			continue
		}
		msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true,
			BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			fmt.Fprintf(&b, "  uid %d flags %v sha256 %x\n", m.UID, m.Flags, sha256.Sum256(m.BodySection[0].Bytes))
		}
	}
	return b.String()
}

// treeState describes a folder tree: every path with its mode, size,
// modification time and content hash.
func treeState(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v %d %v", path, info.Mode(), info.Size(), info.ModTime().UnixNano())
		if info.Mode().IsRegular() {
			content, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " %x", sha256.Sum256(content))
		}
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestIsolation has alice try every name trick there is to reach bob's
// mail through IMAP and POP3 (and LMTP recipients): parent paths, escaped
// slashes, absolute paths, LIST wildcards in every command, modified UTF-7
// and UTF-8 spellings, INBOX in other cases, NUL and control bytes in
// quoted strings and literals, overlong names, other users' namespaces,
// names that look like bob's address, and acting as bob with SASL
// authorization identities. Every attempt gets OK, NO or BAD (never
// [SERVERBUG], never a dropped connection); no response carries bob's
// mail or his mailbox names; bob's account is exactly as it was; and
// nothing outside the data folder, nor any file named after a mailbox
// inside it, is created or changed.
func TestIsolation(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	data := filepath.Join(parent, "data")
	sentinel := filepath.Join(parent, "sentinel")
	if err := os.MkdirAll(filepath.Join(sentinel, "deep"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"passwd", "INBOX", "deep/mail.db"} {
		if err := os.WriteFile(filepath.Join(sentinel, f), []byte("sentinel "+f+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sentinelBefore := treeState(t, sentinel)
	outside := "/tmp/buzon-isolation-" + strings.ToLower(rand.Text()[:8])

	const alice, alicePass = "alice@example.org", "alice-pw"
	const bob, bobPass = "bob@example.org", "bob-pw"
	addUser(t, data, alice, alicePass)
	addUser(t, data, bob, bobPass)
	secret := "BOBSECRET" + rand.Text()[:10]
	bobBox := "BobOnly" + rand.Text()[:6]
	// Failed logins are part of the attack; the throttle is tested elsewhere.
	in := start(t, data, "--config", writeConfig(t, `
[limits]
commands_per_second = 100000
[auth]
failure_delay = "1ms"
max_failure_delay = "1ms"
lockout_after = 0
`))

	// Bob's mail, in INBOX and in mailboxes of his own.
	for i := range 2 {
		mustBuzon(t, string(testMessage(fmt.Sprintf("bob-%d-%s@isolation.test", i, secret), 500)), "deliver", "--data", data, bob)
	}
	bc := dialIMAP(t, "", in.ports["imap"])
	bc.login(bob, bobPass)
	for _, name := range []string{bobBox, bobBox + "/Deep", "Secret", "alice@example.org"} {
		bc.mustOK("CREATE " + imapQuote(name))
		bc.mustOK("SUBSCRIBE " + imapQuote(name))
		if _, tagged := bc.cmdLiteral("APPEND "+imapQuote(name)+" ", testMessage("bob-in-"+name+"-"+secret+"@isolation.test", 300), ""); !strings.HasPrefix(tagged, "OK") {
			t.Fatalf("bob's APPEND: %q", tagged)
		}
	}
	bc.mustOK("LOGOUT")
	bobBefore := accountState(t, in.ports["imap"], bob, bobPass)

	// Alice's own mail.
	aliceMsg := testMessage("alice-own@isolation.test", 500)
	mustBuzon(t, string(aliceMsg), "deliver", "--data", data, alice)
	ac := dialIMAP(t, "", in.ports["imap"])
	ac.login(alice, alicePass)
	ac.mustOK("CREATE Work")
	if _, tagged := ac.cmdLiteral("APPEND Work ", testMessage("alice-work@isolation.test", 300), ""); !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("APPEND Work: %q", tagged)
	}
	aliceBoxes := listNames(t, ac, `LIST "" "*"`)

	// Every response alice gets. Tagged ones may echo the name she sent;
	// untagged ones are data, where nothing of bob's may show.
	var transcript, shown strings.Builder
	record := func(cmd string, untagged []string, tagged string) {
		fmt.Fprintf(&transcript, "> %.200q\n", cmd)
		for _, u := range untagged {
			fmt.Fprintf(&transcript, "< %.300q\n", u)
			fmt.Fprintf(&shown, "%s\n", u)
		}
		fmt.Fprintf(&transcript, "< %.300q\n", tagged)
		if respCode(tagged) == "SERVERBUG" || !(strings.HasPrefix(tagged, "OK") || strings.HasPrefix(tagged, "NO") || strings.HasPrefix(tagged, "BAD")) {
			t.Errorf("%.120q: not a clean answer: %q", cmd, tagged)
		}
		for _, u := range untagged {
			if strings.HasPrefix(u, "* BYE") {
				t.Fatalf("%.120q: the server hung up: %q", cmd, u)
			}
		}
	}

	tricks := []string{
		// Parent paths, escaped slashes, absolute paths.
		"..", "../", "../" + bob, "../../" + bob + "/INBOX", "./../" + bob, "INBOX/../../" + bob,
		"..%2F" + bob, "..%2f..%2fsentinel", "%2e%2e%2f" + bob, "..\\" + bob, "../sentinel/passwd",
		"/etc/passwd", outside, sentinel, filepath.Join(sentinel, "passwd"), "//" + bob, "/" + bob + "/INBOX",
		// Other users' namespaces (RFC 2342) and their usual spellings.
		"#shared/" + bob, "#shared/INBOX", "#user/" + bob, "#user/bob", "#user/bob/INBOX", "#public/INBOX",
		"~bob", "~bob/INBOX", "~" + bob + "/INBOX", "Other Users/" + bob, "Other Users/bob/INBOX",
		"Shared Folders/" + bob, "user/bob", "user.bob", "shared/" + bob,
		// Names that look like bob's address, or are his mailboxes.
		bob, bob + "/INBOX", bob + "/" + bobBox, strings.ToUpper(bob) + "/INBOX", bob + "\\INBOX",
		bobBox, bobBox + "/Deep", "Secret", "bob", "bob@example.org@example.org",
		// Modified UTF-7 (RFC 3501 5.1.3): "../", "/etc/passwd", bob's
		// mailbox with a letter encoded; and UTF-8 look-alikes.
		"&AC4ALgAv-" + bob, "&AC8-etc&AC8-passwd", "Secr&AGU-t", "&-" + bob, "&AC4-&AC4-/" + bob,
		"\u2024\u2024/" + bob, "bob\uff20example.org", "b\u043eb@example.org", "\uff0e\uff0e\uff0f" + bob,
		// INBOX spelt otherwise, and near it.
		"INBOX/..", "INBOX/", "INBOX.", "INBOX/" + bob, "INBOX\x00", "inbox/../" + bobBox,
		// NUL and control bytes.
		"Work\x00/../" + bob, "\x00", bob + "\x00", "Work\r\nt99 SELECT " + bobBox, "\x1b[2J", "\x7f" + bob,
		// Wildcards where a name goes.
		"*", "%", "*/*", "%/%", "~*", "#*", "*bob*", "%@%", "../*",
		// Overlong names.
		strings.Repeat("a", 2000), strings.Repeat("../", 700) + bob, strings.Repeat("x/", 600) + "y",
		strings.Repeat("\u00e9", 600),
	}
	var forms []nameArg
	for _, s := range tricks {
		if !strings.ContainsAny(s, "\r\n") && len(s) < 1000 {
			forms = append(forms, nameArg{s, false})
		}
		forms = append(forms, nameArg{s, true})
	}
	isInbox := func(s string) bool { return strings.EqualFold(s, "INBOX") }

	// Naming them in SELECT, EXAMINE, STATUS, GETQUOTAROOT, DELETE and
	// SUBSCRIBE: alice has none of these mailboxes, so all fail
	// (UNSUBSCRIBE of a name not subscribed may succeed, RFC 9051 6.3.8).
	// Then as LIST and LSUB patterns and references: only alice's
	// mailboxes are listed.
	for _, cmd := range []string{"SELECT %s", "EXAMINE %s", "STATUS %s (MESSAGES UIDNEXT UIDVALIDITY)", "GETQUOTAROOT %s", "DELETE %s",
		"SUBSCRIBE %s", "UNSUBSCRIBE %s"} {
		for _, n := range forms {
			untagged, tagged := ac.sendNames(cmd, n)
			record(cmd+" "+n.s, untagged, tagged)
			if strings.HasPrefix(tagged, "OK") && !isInbox(n.s) && !strings.HasPrefix(cmd, "UNSUBSCRIBE") {
				t.Errorf("%s with %.80q succeeded: %q %q", cmd, n.s, untagged, tagged)
			}
			if strings.HasPrefix(cmd, "SELECT") && strings.HasPrefix(tagged, "OK") {
				checkOwnMessages(t, ac, "alice-")
			}
		}
	}
	for _, cmd := range []string{`LIST "" %s`, `LIST %s "*"`, `LIST %s "%"`, `LSUB "" %s`, `LSUB %s "*"`,
		`LIST (SUBSCRIBED RECURSIVEMATCH) "" %s`, `LIST "" %s RETURN (STATUS (MESSAGES) SUBSCRIBED CHILDREN)`} {
		for _, n := range forms {
			untagged, tagged := ac.sendNames(cmd, n)
			record(cmd+" "+n.s, untagged, tagged)
			for _, name := range parseListNames(untagged) {
				if !slices.Contains(aliceBoxes, name) {
					t.Errorf("%s with %.80q lists %q, which is not alice's", cmd, n.s, name)
				}
			}
		}
	}
	if untagged := ac.mustOK("NAMESPACE"); len(untagged) != 1 || untagged[0] != `* NAMESPACE (("" "/")) NIL NIL` {
		t.Errorf("NAMESPACE offers more than the personal namespace: %q", untagged)
	}

	// Writing into those names: APPEND, COPY, MOVE (from Work, which
	// holds one message of alice's), RENAME to and from them, CREATE.
	// Reaching bob's account is impossible; a name that is valid in
	// alice's own namespace may be created there, and stays there.
	ac.mustOK("SELECT Work")
	created := map[string]bool{}
	for _, n := range forms {
		// A non-synchronising literal (RFC 7888), so the message goes
		// whether or not the name is accepted.
		msg := testMessage("alice-append@isolation.test", 200)
		untagged, tagged := ac.sendNames(fmt.Sprintf("APPEND %%s {%d+}\r\n%s", len(msg), msg), n)
		record("APPEND "+n.s, untagged, tagged)
		if strings.HasPrefix(tagged, "OK") {
			t.Errorf("APPEND to %.80q succeeded: %q", n.s, tagged)
		}
		for _, cmd := range []string{"COPY 1 %s", "MOVE 1 %s", "UID COPY 1:* %s", "UID MOVE 1:* %s"} {
			untagged, tagged := ac.sendNames(cmd, n)
			record(cmd+" "+n.s, untagged, tagged)
			if strings.HasPrefix(tagged, "OK") && !isInbox(n.s) {
				t.Errorf("%s with %.80q succeeded: %q", cmd, n.s, tagged)
			}
		}
		for _, cmd := range []string{"RENAME %s Renamed", "RENAME Nonexistent %s"} {
			untagged, tagged := ac.sendNames(cmd, n)
			record(cmd+" "+n.s, untagged, tagged)
			if strings.HasPrefix(tagged, "OK") {
				t.Errorf("%s with %.80q succeeded: %q", cmd, n.s, tagged)
			}
		}
	}
	for _, n := range forms {
		untagged, tagged := ac.sendNames("CREATE %s", n)
		record("CREATE "+n.s, untagged, tagged)
		if strings.HasPrefix(tagged, "OK") {
			created[n.s] = true
		}
	}
	var made []string
	for s := range created {
		made = append(made, s)
	}
	slices.Sort(made)
	t.Logf("names alice could create in her own account: %q", made)
	for _, n := range forms {
		if !created[n.s] {
			continue
		}
		// What alice made is hers: she can select it, it holds nothing,
		// and she can delete it.
		untagged, tagged := ac.sendNames("SELECT %s", n)
		record("SELECT "+n.s, untagged, tagged)
		if !slices.Contains(untagged, "* 0 EXISTS") {
			t.Errorf("mailbox %.80q that alice created: %q %q", n.s, untagged, tagged)
		}
		ac.mustOK("UNSELECT") // deleting the selected mailbox would end the session
		untagged, tagged = ac.sendNames("DELETE %s", n)
		record("DELETE "+n.s, untagged, tagged)
		delete(created, n.s)
	}

	// Acting as bob: SASL authorization identities (RFC 4616, RFC 5802)
	// that name bob with alice's credentials.
	for _, resp := range []string{
		bob + "\x00" + alice + "\x00" + alicePass,
		"\x00" + bob + "\x00" + alicePass,
		"\x00" + alice + "\x00" + bob + "\x00" + alicePass,
		"\x00" + alice + "/../" + bob + "\x00" + alicePass,
		"\x00" + bob + "\x00\x00" + alicePass,
	} {
		c := dialIMAP(t, "", in.ports["imap"])
		_, tagged := c.cmd("AUTHENTICATE PLAIN " + b64(resp))
		record("AUTHENTICATE PLAIN "+resp, nil, tagged)
		if strings.HasPrefix(tagged, "OK") {
			t.Errorf("AUTHENTICATE PLAIN %q succeeded", resp)
		}
		pc := dialPOP3(t, "", in.ports["pop3"])
		if r := pc.cmd("AUTH PLAIN " + b64(resp)); !strings.HasPrefix(r, "-ERR") {
			t.Errorf("POP3 AUTH PLAIN %q: %q", resp, r)
		}
	}
	scram := dialIMAP(t, "", in.ports["imap"])
	tag := scram.nextTag()
	scram.send(tag + " AUTHENTICATE SCRAM-SHA-256 " + b64("n,a="+bob+",n="+alice+",r=abcdefgh") + "\r\n")
	if line, _ := scram.readResp(); !strings.HasPrefix(line, tag+" NO") && !strings.HasPrefix(line, tag+" BAD") {
		t.Errorf("SCRAM with authzid bob: %q", line)
	}

	// POP3: user names with tricks, and alice's maildrop only.
	for _, user := range []string{bob + "\x00", alice + "\x00" + bob, alice + "/../" + bob, "../" + bob, bob + "/" + alice, "*", "%"} {
		pc := dialPOP3(t, "", in.ports["pop3"])
		if r := pc.login(user, alicePass); !strings.HasPrefix(r, "-ERR") {
			t.Errorf("POP3 login as %q with alice's password: %q", user, r)
		}
		pc = dialPOP3(t, "", in.ports["pop3"])
		if r := pc.login(user, bobPass); !strings.HasPrefix(r, "-ERR") && user != bob+"\x00" {
			t.Errorf("POP3 login as %q with bob's password: %q", user, r)
		}
	}
	pc := dialPOP3(t, "", in.ports["pop3"])
	if r := pc.login(alice, alicePass); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("alice's POP3 login: %q", r)
	}
	for _, cmd := range []string{"RETR 0", "RETR 2", "RETR 99999", "RETR -1", "RETR 4294967297", "TOP 2 0", "UIDL 2", "LIST 2", "DELE 2", "RETR 1 2", "RETR ../2"} {
		if r := pc.cmd(cmd); !strings.HasPrefix(r, "-ERR") {
			t.Errorf("POP3 %s: %q", cmd, r)
		}
	}
	if r := pc.cmd("RETR 1"); !strings.HasPrefix(r, "+OK") {
		t.Errorf("POP3 RETR 1: %q", r)
	} else if body := strings.Join(pc.multiline(), "\n"); strings.Contains(body, secret) || !strings.Contains(body, "alice-own@isolation.test") {
		t.Errorf("alice's POP3 RETR 1 is not her message")
	}
	pc.cmd("QUIT")

	// LMTP: recipients that try to end up in bob's account by path.
	lc := dialLMTP(t, in.ports["lmtp"])
	for _, rcpt := range []string{alice + "/../" + bob, "../" + bob, bob + "/../x@example.org", "bob", "b\u043eb@example.org", bob + "\x00"} {
		if r, err := lc.deliver(rcpt, testMessage("lmtp-trick@isolation.test", 200)); err != nil || !strings.HasPrefix(r, "5") {
			t.Errorf("LMTP to %q: %q %v, want a 5xx refusal", rcpt, r, err)
		}
	}
	lc.cmd("QUIT")

	// Nothing of bob's reached alice, and bob's account is unchanged.
	leak := strings.Index(transcript.String(), secret)
	if leak < 0 && !slices.ContainsFunc(made, func(s string) bool { return strings.Contains(s, bobBox) }) {
		if i := strings.Index(shown.String(), bobBox); i >= 0 {
			t.Errorf("alice was shown bob's mailbox name: %q", shown.String()[max(0, i-200):min(shown.Len(), i+100)])
		}
	}
	if leak >= 0 {
		t.Errorf("alice saw bob's mail:\n%s", transcript.String()[max(0, leak-600):min(transcript.Len(), leak+200)])
	}
	if after := accountState(t, in.ports["imap"], bob, bobPass); after != bobBefore {
		t.Errorf("bob's account changed:\nbefore:\n%s\nafter:\n%s", bobBefore, after)
	}
	if !bytes.Equal(fetchAll(t, in.ports["imap"], alice, alicePass, "INBOX")[0], aliceMsg) {
		t.Errorf("alice's own message changed")
	}
	in.stop()

	// Nothing outside the data folder, and no file named after a mailbox
	// inside it.
	if after := treeState(t, sentinel); after != sentinelBefore {
		t.Errorf("the folder next to the data folder changed:\nbefore:\n%s\nafter:\n%s", sentinelBefore, after)
	}
	for _, p := range []string{outside, filepath.Join(parent, bob), filepath.Join(parent, "Renamed")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s exists", p)
		}
	}
	entries, _ := os.ReadDir(parent)
	for _, e := range entries {
		if e.Name() != "data" && e.Name() != "sentinel" {
			t.Errorf("new entry next to the data folder: %s", e.Name())
		}
	}
	tokens := []string{"inbox", "work", strings.ToLower(bobBox), "secret", "passwd", "isolation", "shared", "other users",
		"@", "..", "renamed", "deep", "bob", "alice", "\x00", "\x1b"}
	filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := strings.ToLower(d.Name())
		for _, tok := range tokens {
			if path != data && strings.Contains(name, tok) {
				t.Errorf("a file in the data folder is named after a mailbox or account: %s", path)
			}
		}
		return nil
	})
	if out, _, code := buzon(t, "", "check", "--data", data); code != 0 {
		t.Errorf("buzon check: exit %d\n%s", code, out)
	}
}

// listNames runs a LIST command and returns the names it lists.
func listNames(t *testing.T, ic *rawIMAP, cmd string) []string {
	t.Helper()
	return parseListNames(ic.mustOK(cmd))
}

// parseListNames takes the mailbox names out of LIST and LSUB responses
// (the last field: an atom, a quoted string or an inlined literal).
func parseListNames(untagged []string) []string {
	var names []string
	for _, u := range untagged {
		if !strings.HasPrefix(u, "* LIST ") && !strings.HasPrefix(u, "* LSUB ") {
			continue
		}
		// "* LIST (attrs) "/" name [extended data]"
		_, rest, ok := strings.Cut(u, `) "/" `)
		if !ok {
			_, rest, _ = strings.Cut(u, ") NIL ")
		}
		switch {
		case strings.HasPrefix(rest, `"`):
			var b strings.Builder
			for i := 1; i < len(rest); i++ {
				if rest[i] == '\\' && i+1 < len(rest) {
					i++
				} else if rest[i] == '"' {
					break
				}
				b.WriteByte(rest[i])
			}
			names = append(names, b.String())
		case strings.HasPrefix(rest, "{"):
			_, lit, _ := strings.Cut(rest, "}\r\n")
			names = append(names, lit) // with any extended data after it
		default:
			name, _, _ := strings.Cut(rest, " ")
			names = append(names, name)
		}
	}
	return names
}

// checkOwnMessages fetches the Message-IDs of the selected mailbox and
// checks every one starts with prefix.
func checkOwnMessages(t *testing.T, ic *rawIMAP, prefix string) {
	t.Helper()
	untagged, tagged := ic.cmd("FETCH 1:* (BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
	if !strings.HasPrefix(tagged, "OK") {
		return // an empty mailbox
	}
	for _, u := range untagged {
		if strings.Contains(u, "Message-ID") && !strings.Contains(u, "<"+prefix) {
			t.Errorf("a selected mailbox shows a message that is not alice's: %q", u)
		}
	}
}
