package sieve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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

// The differential test: every script of testdata/diff against every
// message there (and the corpus's, with the scripts that read bodies and
// headers), run by us and by Pigeonhole's sieve-test, the reference
// interpreter; the actions must be the same.

// diffEnvelopes is the SMTP envelope each test message arrives with.
var diffEnvelopes = map[string]Envelope{
	"plain.eml": {From: "alice@example.org", To: "bob+shopping@example.net"},
	"list.eml":  {From: "owner-news@lists.example.com", To: "bob@example.net"},
	// sieve-test cannot be given the null sender (it refuses -f "" and
	// without -f takes the From field), so the null sender is left to
	// the unit tests.
	"bounce.eml": {From: "MAILER-DAEMON@mx.example.net", To: "bob+bounces@example.net"},
	"latin1.eml": {From: "helpdesk@example.fr", To: "bob@example.net"},
	"edge.eml":   {From: "john.doe@example.com", To: "bob@example.net"},
}

// knownDifferences are the pairs where buzon and Pigeonhole disagree and
// buzon is right by the RFCs, or the difference is deliberate; each says
// why. The key is "script/message".
var knownDifferences = map[string]string{
	"addrparts.sieve/list.eml": "To: undisclosed-recipients:; is an empty group, which holds no address (RFC 5322 3.4); " +
		"Pigeonhole, failing to parse it, compares the group's name as if it were one",
	"decoded.sieve/latin1.eml": "? is one character (RFC 5228 2.7.1), so \"R?sum? du projet\" matches \"Résumé du projet\"; " +
		"Pigeonhole's ? takes one octet of a UTF-8 character in some places and the whole character in others " +
		"(\"R?sum*\" matches there, \"R?sum? du*\" does not)",
	"rfc5322.sieve/edge.eml":    "an empty Cc: holds no address, so :count is 0 (RFC 5322 3.6.3, Pigeonhole counts one)",
	"relational.sieve/edge.eml": "an empty Cc: holds no address: To's three are all there are (Pigeonhole counts four)",
	"relational.sieve/list.eml": "i;ascii-casemap orders by mapping letters to upper case (RFC 4790 9.2), so \"[\" (0x5B) " +
		"sorts after \"M\"; Pigeonhole maps to lower case, where \"[\" sorts before \"m\"",
}

// pigeonhole runs sieve-test in its own throwaway configuration.
type pigeonhole struct {
	bin, dir, conf string
}

func newPigeonhole(t *testing.T) *pigeonhole {
	t.Helper()
	bin := clienttest.Need(t, "sieve-test", "dovecot-sieve")
	// Not t.TempDir: its parent is private to root.
	dir, err := os.MkdirTemp("", "sieve-pigeonhole-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// sieve-test drops root's privileges to mail_uid, which must then
	// read the script and message and write the mail location.
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	uid, gid := os.Geteuid(), os.Getegid()
	if uid == 0 {
		uid, gid = 65534, 65534
	}
	for _, d := range []string{"mail", "run", "home"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o777); err != nil {
			t.Fatal(err)
		}
		os.Chmod(filepath.Join(dir, d), 0o777)
	}
	conf := filepath.Join(dir, "dovecot.conf")
	cfg := fmt.Sprintf("mail_uid = %d\nmail_gid = %d\nmail_location = maildir:%s/mail\nbase_dir = %s/run\nlog_path = /dev/stderr\n",
		uid, gid, dir, dir)
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return &pigeonhole{bin: bin, dir: dir, conf: conf}
}

// run runs a script on a message and returns its actions, normalized as
// normalize does, or ok false when Pigeonhole does not compile the script.
func (p *pigeonhole) run(t *testing.T, script, msg []byte, env Envelope) (actions []string, ok bool) {
	t.Helper()
	sf := filepath.Join(p.dir, "script.sieve")
	mf := filepath.Join(p.dir, "message.eml")
	os.Remove(filepath.Join(p.dir, "script.svbin"))
	if err := os.WriteFile(sf, script, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mf, msg, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(p.bin, "-c", p.conf, "-f", env.From, "-r", env.To, "-a", env.To, sf, mf)
	cmd.Env = append(os.Environ(), "HOME="+filepath.Join(p.dir, "home"), "TZ=UTC")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		if strings.Contains(errOut.String(), "failed to compile") && !strings.Contains(errOut.String(), "failed to open") {
			t.Logf("Pigeonhole: %s", errOut.String())
			return nil, false
		}
		t.Fatalf("sieve-test: %v\n%s%s", err, out.String(), errOut.String())
	}
	return parsePigeonhole(out.String()), true
}

// parsePigeonhole reads the actions sieve-test prints:
//
//   - store message in folder: NAME
//   - create mailbox if it does not exist
//   - add IMAP flags: \seen work
//   - discard
func parsePigeonhole(out string) []string {
	type act struct {
		what   string
		create bool
		flags  []string
	}
	var acts []*act
	for _, line := range strings.Split(out, "\n") {
		l := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(l, "* store message in folder: "):
			acts = append(acts, &act{what: "store " + strings.TrimPrefix(l, "* store message in folder: ")})
		case l == "* discard":
			acts = append(acts, &act{what: "discard"})
		case strings.HasPrefix(l, "* "):
			acts = append(acts, &act{what: strings.TrimPrefix(l, "* ")})
		case strings.HasPrefix(l, "+ create mailbox") && len(acts) > 0:
			acts[len(acts)-1].create = true
		case strings.HasPrefix(l, "+ add IMAP flags: ") && len(acts) > 0:
			acts[len(acts)-1].flags = strings.Fields(strings.TrimPrefix(l, "+ add IMAP flags: "))
		}
	}
	var out2 []string
	for _, a := range acts {
		out2 = append(out2, actionString(a.what, a.create, a.flags))
	}
	return normalize(out2)
}

func actionString(what string, create bool, flags []string) string {
	if strings.EqualFold(what, "store INBOX") {
		what, create = "store INBOX", false
	}
	s := what
	if create {
		s += " :create"
	}
	if len(flags) > 0 {
		fl := make([]string, len(flags))
		for i, f := range flags {
			fl[i] = strings.ToLower(f)
		}
		slices.Sort(fl)
		s += " flags=" + strings.Join(fl, ",")
	}
	return s
}

// normalize sorts actions and drops a discard that comes with other
// actions (Pigeonhole lists it; Execute returns it only alone).
func normalize(acts []string) []string {
	if len(acts) > 1 {
		acts = slices.DeleteFunc(acts, func(s string) bool { return s == "discard" })
	}
	slices.Sort(acts)
	return acts
}

// ours runs a script with this package, normalized like Pigeonhole's.
func ours(t *testing.T, script, msg []byte, env Envelope) (actions []string, ok bool) {
	t.Helper()
	s, err := Compile(script)
	if err != nil {
		t.Logf("buzon: %v", err)
		return nil, false
	}
	acts, err := s.Execute(context.Background(), testMessage(msg), env, inboxOnly{})
	if err != nil {
		return []string{"error: " + err.Error()}, true
	}
	var out []string
	for _, a := range storeOnce(acts) {
		switch a.Kind {
		case Keep:
			out = append(out, actionString("store INBOX", false, a.Flags))
		case FileInto:
			out = append(out, actionString("store "+a.Mailbox, a.Create, a.Flags))
		case Discard:
			out = append(out, "discard")
		}
	}
	return normalize(out), true
}

// storeOnce merges the actions into one mailbox as delivery does, which
// is Pigeonhole's rule too (RFC 5228 2.10.3): the copy goes where the
// first of them was, with :create if any asked it and the last one's
// flags; fileinto "INBOX" is keep.
func storeOnce(acts []Action) []Action {
	var out []Action
	where := map[string]int{}
	for _, a := range acts {
		key := a.Mailbox
		if a.Kind == Keep || strings.EqualFold(key, "INBOX") {
			a.Kind, key = Keep, "INBOX"
		}
		if i, ok := where[key]; ok {
			out[i].Flags = a.Flags
			out[i].Create = out[i].Create || a.Create
			continue
		}
		where[key] = len(out)
		out = append(out, a)
	}
	return out
}

// testMessage makes a Message of a raw message.
func testMessage(raw []byte) Message {
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	header := raw
	if end >= 0 {
		header = raw[:end+4]
	} else if end = bytes.Index(raw, []byte("\n\n")); end >= 0 {
		header = raw[:end+2]
	}
	return Message{
		Header: header,
		Size:   int64(len(raw)),
		Body:   func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil },
	}
}

// inboxOnly is an account with only its INBOX.
type inboxOnly struct{}

func (inboxOnly) MailboxExists(_ context.Context, name string) (bool, error) {
	return strings.EqualFold(name, "INBOX"), nil
}

func TestPigeonhole(t *testing.T) {
	ph := newPigeonhole(t)
	scripts, _ := filepath.Glob("testdata/diff/*.sieve")
	msgs, _ := filepath.Glob("testdata/diff/*.eml")
	if len(scripts) == 0 || len(msgs) == 0 {
		t.Fatal("no scripts or messages in testdata/diff")
	}
	for _, sf := range scripts {
		script, err := os.ReadFile(sf)
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range msgs {
			msg, err := os.ReadFile(mf)
			if err != nil {
				t.Fatal(err)
			}
			name := filepath.Base(sf) + "/" + filepath.Base(mf)
			env := diffEnvelopes[filepath.Base(mf)]
			t.Run(name, func(t *testing.T) {
				comparePigeonhole(t, ph, name, script, msg, env)
			})
		}
	}
}

// TestPigeonholeCorpus runs the scripts that look at headers, addresses
// and bodies over the shared corpus of real and broken messages.
func TestPigeonholeCorpus(t *testing.T) {
	msgs, _ := filepath.Glob(filepath.Join(clienttest.NeedCorpus(t), "enmime/testdata/*/*.raw"))
	if len(msgs) == 0 {
		t.Skip("no enmime messages in the shared corpus")
	}
	ph := newPigeonhole(t)
	env := Envelope{From: "sender@example.org", To: "rcpt+box@example.net"}
	for _, sn := range []string{"capture.sieve", "body.sieve", "addrparts.sieve", "decoded.sieve", "matchvars.sieve", "roundcube.sieve"} {
		script, err := os.ReadFile(filepath.Join("testdata/diff", sn))
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range msgs {
			msg, err := os.ReadFile(mf)
			if err != nil {
				t.Fatal(err)
			}
			name := sn + "/" + filepath.Base(filepath.Dir(mf)) + "/" + filepath.Base(mf)
			t.Run(name, func(t *testing.T) {
				comparePigeonhole(t, ph, name, script, msg, env)
			})
		}
	}
}

func comparePigeonhole(t *testing.T, ph *pigeonhole, name string, script, msg []byte, env Envelope) {
	t.Helper()
	got, gotOK := ours(t, script, msg, env)
	want, wantOK := ph.run(t, script, msg, env)
	same := gotOK == wantOK && slices.Equal(got, want)
	t.Logf("actions: %q", got)
	if why, known := knownDifferences[name]; known {
		if same {
			t.Errorf("listed as a known difference (%s) but buzon and Pigeonhole now agree: remove it from knownDifferences", why)
		}
		t.Logf("known difference: %s", why)
		return
	}
	if !same {
		t.Errorf("actions differ\n buzon (compiles %v): %q\n Pigeonhole (compiles %v): %q", gotOK, got, wantOK, want)
	}
}

// pigeonholeLine is where sieve-test reports a script's first error.
var pigeonholeLine = regexp.MustCompile(`script: line (\d+): error`)

// TestPigeonholeErrors compiles the broken scripts of testdata/broken
// with both: both must refuse each, and at the same line, unless listed
// in knownLineDifferences.
func TestPigeonholeErrors(t *testing.T) {
	ph := newPigeonhole(t)
	scripts, _ := filepath.Glob("testdata/broken/*.sieve")
	if len(scripts) == 0 {
		t.Fatal("no scripts in testdata/broken")
	}
	for _, sf := range scripts {
		script, err := os.ReadFile(sf)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(sf)
		t.Run(name, func(t *testing.T) {
			_, err := Compile(script)
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("buzon compiles it (%v)", err)
			}
			if why, ok := onlyBuzonRefuses[name]; ok {
				if !strings.Contains(ce.Msg, why) {
					t.Errorf("buzon refuses it with %q, want a reason with %q", ce.Msg, why)
				}
				return
			}
			out := ph.compileErrors(t, script)
			m := pigeonholeLine.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("Pigeonhole compiles it, or says no line:\n%s", out)
			}
			line, _ := strconv.Atoi(m[1])
			t.Logf("buzon: %v; Pigeonhole: %s", ce, strings.TrimSpace(strings.SplitN(out, "\n", 2)[0]))
			if why, known := knownLineDifferences[name]; known {
				if ce.Line == line {
					t.Errorf("listed as a known difference (%s) but both say line %d", why, line)
				}
				return
			}
			if ce.Line != line {
				t.Errorf("buzon says line %d, Pigeonhole line %d", ce.Line, line)
			}
		})
	}
}

// onlyBuzonRefuses are scripts Pigeonhole takes and buzon refuses, with
// a part of the reason buzon gives.
var onlyBuzonRefuses = map[string]string{
	// Without a relay: TestPigeonholeVacation compares vacation with one.
	"vacation.sieve": "no relay to send replies through",
	"redirect.sieve": "no relay to forward mail through",
	// RFC 5228 5.4 defines "from" and "to"; Pigeonhole adds "auth",
	// which mail arriving at buzon (no AUTH on SMTP or LMTP) never has.
	"envelope-part.sieve": `unknown envelope part "auth"`,
}

// knownLineDifferences are broken scripts whose first error buzon finds
// at another line than Pigeonhole, and why.
var knownLineDifferences = map[string]string{}

// compileErrors runs sieve-test on a script that should not compile and
// returns what it says.
func (p *pigeonhole) compileErrors(t *testing.T, script []byte) string {
	t.Helper()
	sf := filepath.Join(p.dir, "script.sieve")
	mf := filepath.Join(p.dir, "message.eml")
	if err := os.WriteFile(sf, script, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mf, []byte("Subject: x\r\n\r\nx\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(p.bin, "-c", p.conf, sf, mf)
	cmd.Env = append(os.Environ(), "HOME="+filepath.Join(p.dir, "home"))
	out, _ := cmd.CombinedOutput()
	return string(out)
}

// sievelibScript has Python's sievelib (which webmails such as Modoboa
// build their filter editors on) write a set of filters, the way it
// writes them for its users.
const sievelibScript = `
import io
from sievelib.factory import FiltersSet
fs = FiltersSet("buzon")
fs.addfilter("sender", [("Sender", ":is", "owner-news@lists.example.com")], [("fileinto", "News")])
fs.addfilter("spam", [("Subject", ":contains", "digest"), ("From", ":matches", "*@bad.example")],
             [("fileinto", ":copy", "Junk"), ("addflag", "$Junk"), ("stop",)], matchtype="anyof")
fs.addfilter("drop", [("Subject", ":is", "nothing")], [("discard",)])
fs.addfilter("big", [("size", ":over", "100k")], [("fileinto", "Big")])
fs.addfilter("mailer", [("exists", "X-Priority")], [("setflag", "$Priority")])
fs.addfilter("body", [("body", ":text", ":contains", "budget")], [("fileinto", "Money")])
fs.addfilter("envelope", [("envelope", ":is", ["From"], ["alice@example.org"])], [("fileinto", "Alice")])
fs.addfilter("all", [("Subject", ":contains", "Caf"), ("To", ":contains", "bob")], [("keep",)], matchtype="allof")
out = io.StringIO()
fs.tosieve(out)
print(out.getvalue())
`

// TestSievelib compiles the filters sievelib writes, and runs them on the
// test messages with both interpreters.
func TestSievelib(t *testing.T) {
	py := "/usr/bin/python3" // where Debian's python3-sievelib is
	if err := exec.Command(py, "-c", "import sievelib.factory").Run(); err != nil {
		t.Skipf("%s cannot import sievelib (apt-get install python3-sievelib, or scripts/deps.sh): %v", py, err)
	}
	script, err := exec.Command(py, "-c", sievelibScript).Output()
	if err != nil {
		t.Fatalf("sievelib: %v", err)
	}
	if _, err := Compile(script); err != nil {
		t.Fatalf("the script sievelib wrote does not compile: %v\n%s", err, script)
	}
	ph := newPigeonhole(t)
	msgs, _ := filepath.Glob("testdata/diff/*.eml")
	for _, mf := range msgs {
		msg, err := os.ReadFile(mf)
		if err != nil {
			t.Fatal(err)
		}
		name := "sievelib/" + filepath.Base(mf)
		t.Run(filepath.Base(mf), func(t *testing.T) {
			comparePigeonhole(t, ph, name, script, msg, diffEnvelopes[filepath.Base(mf)])
		})
	}
}

// TestPigeonholeVacation runs vacation scripts (Roundcube's and
// Thunderbird's dialogs among them) in both, vacation-seconds on in
// Pigeonhole as buzon has it with a relay, and compares the replies asked
// for: period (Pigeonhole's minimum of a day and default of 7 applied to
// ours, as delivery applies them), subject, from, handle and text, and
// the actions beside them. sieve-test lists the reply whether or not it
// would be sent (RFC 5230 4.5's checks come later in both).
func TestPigeonholeVacation(t *testing.T) {
	ph := newPigeonhole(t)
	f, err := os.OpenFile(ph.conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(f, "plugin {\n  sieve_extensions = +vacation-seconds\n}\n")
	f.Close()
	msg, err := os.ReadFile("testdata/diff/plain.eml")
	if err != nil {
		t.Fatal(err)
	}
	env := diffEnvelopes["plain.eml"]
	scripts := map[string]string{
		"plain":       `require "vacation"; vacation "I am away.";`,
		"days":        `require "vacation"; vacation :days 3 :subject "Away" "back Monday";`,
		"seconds":     `require "vacation-seconds"; vacation :seconds 100000 :handle "h" "x";`,
		"short":       `require "vacation-seconds"; vacation :seconds 5 "x";`,
		"from":        `require "vacation"; vacation :from "bob@example.net" :addresses ["bob@example.org"] "x";`,
		"mime":        "require \"vacation\";\nvacation :mime text:\nContent-Type: text/plain; charset=utf-8\n\nweg\n.\n;\n",
		"discard":     `require ["vacation", "fileinto"]; vacation "x"; fileinto "Away";`,
		"roundcube":   "require [\"vacation\"];\n# rule:[Out of office]\nif true\n{\n\tvacation :days 7 :addresses \"bob@example.net\" :subject \"Out of office\" \"I am away until Monday.\";\n}\n",
		"thunderbird": "require [\"vacation\",\"variables\"];\nif header :matches \"subject\" \"*\" {\n  set \"subject\" \"${1}\";\n}\nvacation :days 1 :subject \"Auto: ${subject}\" \"Away.\";\n",
	}
	for name, script := range scripts {
		t.Run(name, func(t *testing.T) {
			s, err := CompileWith([]byte(script), Options{Vacation: true})
			if err != nil {
				t.Fatalf("buzon: %v", err)
			}
			acts, err := s.Execute(context.Background(), testMessage(msg), env, folders{"Away"})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			var stores []string
			for _, a := range acts {
				switch a.Kind {
				case Vacation:
					v := a.Vacation
					period := v.Period
					switch {
					case period < 0:
						period = 7 * 24 * time.Hour
					case period < 24*time.Hour:
						period = 24 * time.Hour
					}
					got = append(got, fmt.Sprintf("seconds=%d", int64(period/time.Second)))
					if v.Subject != "" {
						got = append(got, "subject="+v.Subject)
					}
					if v.From != "" {
						got = append(got, "from="+v.From)
					}
					got = append(got, "handle="+v.Handle, "text="+strings.TrimRight(v.Reason, "\r\n"))
				case Keep:
					stores = append(stores, "store INBOX")
				case FileInto:
					stores = append(stores, "store "+a.Mailbox)
				}
			}
			got = append(got, stores...)
			want := ph.vacation(t, []byte(script), msg, env)
			// sieve-test prints a handle of many lines in part, and
			// the text with LF.
			for i, g := range got {
				g = strings.ReplaceAll(g, "\r\n", "\n")
				if strings.HasPrefix(g, "handle=") {
					g, _, _ = strings.Cut(g, "\n")
				}
				got[i] = g
			}
			if !slices.Equal(got, want) {
				t.Errorf("buzon:      %q\nPigeonhole: %q", got, want)
			}
		})
	}
}

// vacation runs a script in sieve-test and returns the vacation it
// lists, as "key=value" in the order TestPigeonholeVacation writes them,
// then the stores.
func (p *pigeonhole) vacation(t *testing.T, script, msg []byte, env Envelope) []string {
	t.Helper()
	sf := filepath.Join(p.dir, "script.sieve")
	mf := filepath.Join(p.dir, "message.eml")
	os.Remove(filepath.Join(p.dir, "script.svbin"))
	if err := os.WriteFile(sf, script, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mf, msg, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(p.bin, "-c", p.conf, "-f", env.From, "-r", env.To, "-a", env.To, sf, mf)
	cmd.Env = append(os.Environ(), "HOME="+filepath.Join(p.dir, "home"), "TZ=UTC")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sieve-test: %v\n%s", err, out)
	}
	fields := map[string]string{}
	var text, stores []string
	inText := false
	for line := range strings.SplitSeq(string(out), "\n") {
		l := strings.TrimSpace(line)
		switch {
		case l == "START MESSAGE":
			inText = true
		case l == "END MESSAGE":
			inText = false
		case inText:
			text = append(text, strings.TrimRight(line, "\r"))
		case strings.HasPrefix(l, "=> "):
			k, v, _ := strings.Cut(strings.TrimPrefix(l, "=> "), ":")
			fields[strings.TrimSpace(k)] = strings.TrimSpace(v)
		case strings.HasPrefix(l, "* store message in folder: "):
			stores = append(stores, "store "+strings.TrimPrefix(l, "* store message in folder: "))
		}
	}
	var res []string
	res = append(res, "seconds="+fields["seconds"])
	for _, k := range []string{"subject", "from"} {
		if v, ok := fields[k]; ok {
			res = append(res, k+"="+v)
		}
	}
	res = append(res, "handle="+fields["handle"], "text="+strings.TrimRight(strings.Join(text, "\n"), "\n"))
	return append(res, stores...)
}

// TestPigeonholeRedirect runs redirect scripts in both and compares the
// actions: the addresses forwarded to (domains lower-cased, as
// Pigeonhole writes them), :copy keeping the implicit keep. A fifth
// redirect fails the run in both (Pigeonhole's sieve_max_redirects is 4
// too), which sieve-test reports as a failure; TestRedirect checks ours.
func TestPigeonholeRedirect(t *testing.T) {
	ph := newPigeonhole(t)
	msg, err := os.ReadFile("testdata/diff/plain.eml")
	if err != nil {
		t.Fatal(err)
	}
	env := diffEnvelopes["plain.eml"]
	scripts := map[string]string{
		"plain":     `redirect "carol@example.org";`,
		"name":      `redirect "Carol <carol@example.org>";`,
		"copy":      `require "copy"; redirect :copy "carol@example.org";`,
		"two":       `require ["copy", "fileinto"]; redirect :copy "a@example.org"; redirect "b@example.org"; fileinto "Sent";`,
		"variables": `require "variables"; if address :matches "from" "*@*" { set "d" "${2}"; } redirect "archive@${d}";`,
		"discard":   `redirect "a@x.org"; discard;`,
		"roundcube": "# rule:[forward]\nif true\n{\n\tredirect \"alice@example.net\";\n}\n",
	}
	for name, script := range scripts {
		t.Run(name, func(t *testing.T) {
			s, err := CompileWith([]byte(script), Options{Redirect: true})
			if err != nil {
				t.Fatalf("buzon: %v", err)
			}
			var got []string
			acts, err := s.Execute(context.Background(), testMessage(msg), env, folders{"Sent"})
			if err != nil {
				got = []string{"store INBOX"} // the caller keeps it
			}
			for _, a := range acts {
				switch a.Kind {
				case Keep:
					got = append(got, "store INBOX")
				case FileInto:
					got = append(got, "store "+a.Mailbox)
				case Redirect:
					got = append(got, "redirect message to: <"+a.Address+">")
				case Discard:
					got = append(got, "discard")
				}
			}
			got = normalize(got)
			want, ok := ph.run(t, []byte(script), msg, env)
			if !ok {
				t.Fatal("Pigeonhole does not compile it")
			}
			if !slices.Equal(got, want) {
				t.Errorf("buzon:      %q\nPigeonhole: %q", got, want)
			}
		})
	}
}
