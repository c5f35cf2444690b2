package fetch

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeIMAP is a small IMAP4rev1 server (RFC 3501), just enough for the
// fetch client, for what buzon's own server and Dovecot never do: lack
// MOVE or UIDPLUS, refuse a COPY, fail to FETCH some messages, or send
// them without their UID or body.
type fakeIMAP struct {
	addr string
	// noMove and noUIDPlus leave MOVE (RFC 6851) and UIDPLUS (RFC 4315)
	// out of CAPABILITY, and refuse their commands.
	noMove, noUIDPlus bool
	// idle offers IDLE (RFC 2177).
	idle bool
	// oauth, when set, offers its SASL mechanism (RFC 9051 6.2.2), with
	// SASL-IR (RFC 4959) if saslIR.
	oauth  *fakeOAuth
	saslIR bool

	mu sync.Mutex // guards what follows
	// folders holds the messages; INBOX always exists.
	folders map[string]*fakeFolder
	// copyNo refuses every COPY with NO [TRYCREATE].
	copyNo bool
	// fetchNo holds the UIDs whose body a FETCH leaves out, ending NO as
	// Gmail does.
	fetchNo map[uint32]bool
	// noUID holds the UIDs whose body comes in a FETCH response without
	// UID; nilBody those whose body is NIL.
	noUID, nilBody map[uint32]bool
	// vanish holds the UIDs another client expunges just before a FETCH
	// of their body.
	vanish map[uint32]bool
	// seenNo refuses a STORE of \Seen with NO.
	seenNo bool
	// idles counts IDLE commands; dropIdle closes the connection at the
	// next, as a server tired of an idle client does.
	idles    int
	dropIdle bool
	// interleave sends, before each message of a FETCH of bodies, what
	// a server may send at any time (RFC 9051 7): a flag change another
	// client made, without the UID, and EXISTS.
	interleave bool
	// flagsFirst holds the UIDs whose flags, with their UID, a FETCH of
	// bodies sends in a response of their own before the body, as a
	// server reporting another client's change may.
	flagsFirst map[uint32]bool
	// uidLast sends a message's UID after its body, as some servers
	// order a FETCH response.
	uidLast bool
}

// fakeFolder is a folder of a fakeIMAP.
type fakeFolder struct {
	uidValidity, uidNext uint32
	msgs                 []*fakeMessage
}

type fakeMessage struct {
	uid   uint32
	flags []string
	body  []byte
}

func startFakeIMAP(t *testing.T, f *fakeIMAP) *fakeIMAP {
	t.Helper()
	f.folders = map[string]*fakeFolder{"INBOX": {uidValidity: 7, uidNext: 1}}
	f.fetchNo, f.noUID, f.nilBody, f.vanish = map[uint32]bool{}, map[uint32]bool{}, map[uint32]bool{}, map[uint32]bool{}
	f.flagsFirst = map[uint32]bool{}
	f.addr = serveFake(t, f.serve)
	return f
}

// add appends messages to a folder, creating it.
func (f *fakeIMAP) add(folder string, msgs ...[]byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fo := f.folders[folder]
	if fo == nil {
		fo = &fakeFolder{uidValidity: 7, uidNext: 1}
		f.folders[folder] = fo
	}
	for _, m := range msgs {
		fo.msgs = append(fo.msgs, &fakeMessage{uid: fo.uidNext, body: m})
		fo.uidNext++
	}
}

// flag sets a flag on a message, as another client would.
func (f *fakeIMAP) flag(folder string, uid uint32, flag string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.folders[folder].msgs {
		if m.uid == uid {
			m.flags = append(m.flags, flag)
		}
	}
}

// set runs fn under the lock, to change the quirks between runs.
func (f *fakeIMAP) set(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

// messages returns the bodies in a folder.
func (f *fakeIMAP) messages(folder string) [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	fo := f.folders[folder]
	if fo == nil {
		return nil
	}
	var out [][]byte
	for _, m := range fo.msgs {
		out = append(out, m.body)
	}
	return out
}

// flagged counts the messages of a folder flagged \Deleted.
func (f *fakeIMAP) flagged(folder string) int { return f.withFlag(folder, `\Deleted`) }

// withFlag counts the messages of a folder with a flag.
func (f *fakeIMAP) withFlag(folder, flag string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, m := range f.folders[folder].msgs {
		if slices.Contains(m.flags, flag) {
			n++
		}
	}
	return n
}

// unflag removes a flag from a message, as another client would.
func (f *fakeIMAP) unflag(folder string, uid uint32, flag string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.folders[folder].msgs {
		if m.uid == uid {
			m.flags = slices.DeleteFunc(m.flags, func(s string) bool { return s == flag })
		}
	}
}

func (f *fakeIMAP) caps() string {
	caps := "IMAP4rev1"
	if !f.noMove {
		caps += " MOVE"
	}
	if !f.noUIDPlus {
		caps += " UIDPLUS"
	}
	if f.idle {
		caps += " IDLE"
	}
	if f.oauth != nil {
		caps += " AUTH=" + f.oauth.mech
	}
	if f.saslIR {
		caps += " SASL-IR"
	}
	return caps
}

// parseUIDSet reads a sequence set of UIDs ("1:3,5,7:*").
func parseUIDSet(s string, last uint32) map[uint32]bool {
	out := map[uint32]bool{}
	num := func(s string) uint32 {
		if s == "*" {
			return last
		}
		n, _ := strconv.ParseUint(s, 10, 32)
		return uint32(n)
	}
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, ok := strings.Cut(part, ":")
		a, b := num(lo), num(lo)
		if ok {
			b = num(hi)
		}
		for n := min(a, b); n <= max(a, b) && n != 0; n++ {
			out[n] = true
		}
	}
	return out
}

// imapWords splits a command line at spaces, taking a quoted string
// (a folder name with spaces) as one word without its quotes.
func imapWords(line string) []string {
	var words []string
	var w strings.Builder
	quoted, escaped, inWord := false, false, false
	for _, c := range strings.TrimRight(line, "\r\n") {
		switch {
		case escaped:
			w.WriteRune(c)
			escaped = false
		case quoted && c == '\\':
			escaped = true
		case c == '"':
			quoted, inWord = !quoted, true
		case c == ' ' && !quoted:
			if inWord {
				words = append(words, w.String())
			}
			w.Reset()
			inWord = false
		default:
			w.WriteRune(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

func imapQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// envelope is a message's ENVELOPE with its date, subject and
// Message-ID, and no addresses.
func envelope(body []byte) string {
	field := func(name string) string {
		for _, line := range strings.Split(string(body), "\r\n") {
			if line == "" {
				break
			}
			if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, name) {
				return imapQuote(strings.TrimSpace(v))
			}
		}
		return "NIL"
	}
	return fmt.Sprintf("(%s %s NIL NIL NIL NIL NIL NIL NIL %s)", field("Date"), field("Subject"), field("Message-ID"))
}

func (f *fakeIMAP) serve(c net.Conn) {
	br := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	send := func(format string, args ...any) {
		fmt.Fprintf(w, format+"\r\n", args...)
	}
	send("* OK [CAPABILITY %s] fake IMAP", f.caps())
	w.Flush()
	var sel *fakeFolder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		words := imapWords(line)
		if len(words) < 2 {
			send("* BAD no command")
			w.Flush()
			continue
		}
		tag, cmd, args := words[0], strings.ToUpper(words[1]), words[2:]
		uid := cmd == "UID" && len(args) > 0
		if uid {
			cmd, args = strings.ToUpper(args[0]), args[1:]
		}
		if cmd == "AUTHENTICATE" && f.oauth != nil {
			if !f.authenticate(br, send, w, tag, args) {
				return
			}
			continue
		}
		if cmd == "IDLE" && f.idle {
			f.mu.Lock()
			f.idles++
			drop := f.dropIdle
			f.mu.Unlock()
			send("+ idling")
			w.Flush()
			if drop {
				return
			}
			if _, err := br.ReadString('\n'); err != nil { // DONE
				return
			}
			send("%s OK idle done", tag)
			w.Flush()
			continue
		}
		f.mu.Lock()
		done := f.command(send, &sel, tag, cmd, uid, args)
		f.mu.Unlock()
		w.Flush()
		if done {
			return
		}
	}
}

// authenticate answers AUTHENTICATE with the fake's OAuth mechanism
// (RFC 9051 6.2.2): the initial response on the line (SASL-IR) or after an
// empty challenge; a refusal is a challenge holding the error, which the
// client answers. It reports whether the connection stays up.
func (f *fakeIMAP) authenticate(br *bufio.Reader, send func(string, ...any), w *bufio.Writer, tag string, args []string) bool {
	defer w.Flush()
	if len(args) == 0 || !strings.EqualFold(args[0], f.oauth.mech) {
		send("%s NO unknown mechanism", tag)
		return true
	}
	var resp string
	if len(args) > 1 && f.saslIR {
		resp = args[1]
	} else {
		send("+ ")
		w.Flush()
		var err error
		if resp, err = br.ReadString('\n'); err != nil {
			return false
		}
	}
	challenge := f.oauth.check(resp)
	if challenge == "" {
		send("%s OK logged in", tag)
		return true
	}
	send("+ %s", challenge)
	w.Flush()
	answer, err := br.ReadString('\n')
	if err != nil {
		return false
	}
	f.oauth.answered(answer)
	send("%s NO [AUTHENTICATIONFAILED] token refused", tag)
	return true
}

// command answers one command; it reports whether the session ended.
func (f *fakeIMAP) command(send func(string, ...any), sel **fakeFolder, tag, cmd string, uid bool, args []string) bool {
	fo := *sel
	maxUID := uint32(0)
	if fo != nil && len(fo.msgs) > 0 {
		maxUID = fo.msgs[len(fo.msgs)-1].uid
	}
	switch {
	case cmd == "CAPABILITY":
		send("* CAPABILITY %s", f.caps())
	case cmd == "LOGIN", cmd == "NOOP":
	case cmd == "LIST":
		// Every folder, whatever the pattern; names as on the wire.
		names := slices.Sorted(maps.Keys(f.folders))
		for _, name := range names {
			attrs := ""
			if name == "[Gmail]/All Mail" {
				attrs = `\All`
			}
			send(`* LIST (%s) "/" %s`, attrs, imapQuote(name))
		}
	case cmd == "LOGOUT":
		send("* BYE")
		send("%s OK bye", tag)
		return true
	case cmd == "SELECT" || cmd == "EXAMINE":
		*sel = f.folders[args[0]]
		if *sel == nil {
			send("%s NO [NONEXISTENT] no such folder", tag)
			return false
		}
		fo = *sel
		send("* %d EXISTS", len(fo.msgs))
		send(`* FLAGS (\Seen \Deleted)`)
		send("* OK [UIDVALIDITY %d] ok", fo.uidValidity)
		send("* OK [UIDNEXT %d] ok", fo.uidNext)
	case fo == nil:
		send("%s BAD no folder selected", tag)
		return false
	case cmd == "SEARCH" && uid:
		crit := strings.ToUpper(strings.Join(args, " "))
		var found []string
		for _, m := range fo.msgs {
			ok := crit == "ALL" || crit == "DELETED" && slices.Contains(m.flags, `\Deleted`)
			if rest, isUID := strings.CutPrefix(crit, "UID "); isUID {
				ok = parseUIDSet(rest, maxUID)[m.uid]
			}
			if ok {
				found = append(found, strconv.Itoa(int(m.uid)))
			}
		}
		send("* SEARCH %s", strings.Join(found, " "))
	case cmd == "FETCH" && uid:
		want := parseUIDSet(args[0], maxUID)
		items := strings.ToUpper(strings.Join(args[1:], " "))
		body := strings.Contains(items, "BODY")
		if body {
			// No EXPUNGE response during a FETCH (RFC 3501 7.4.1).
			fo.msgs = slices.DeleteFunc(fo.msgs, func(m *fakeMessage) bool { return f.vanish[m.uid] })
		}
		refused := false
		for i, m := range fo.msgs {
			if !want[m.uid] {
				continue
			}
			if body && f.fetchNo[m.uid] {
				refused = true
				continue
			}
			if body && f.interleave {
				send(`* %d FETCH (FLAGS (\Seen))`, len(fo.msgs)-i)
				send("* %d EXISTS", len(fo.msgs))
			}
			if body && f.flagsFirst[m.uid] {
				send(`* %d FETCH (UID %d FLAGS (\Seen))`, i+1, m.uid)
			}
			var parts []string
			if !body || !f.noUID[m.uid] {
				parts = append(parts, fmt.Sprintf("UID %d", m.uid))
			}
			if strings.Contains(items, "RFC822.SIZE") {
				parts = append(parts, fmt.Sprintf("RFC822.SIZE %d", len(m.body)))
			}
			if strings.Contains(items, "ENVELOPE") {
				parts = append(parts, "ENVELOPE "+envelope(m.body))
			}
			switch {
			case body && f.nilBody[m.uid]:
				parts = append(parts, "BODY[] NIL")
			case body:
				parts = append(parts, fmt.Sprintf("BODY[] {%d}\r\n%s", len(m.body), m.body))
			}
			if f.uidLast && len(parts) > 1 && strings.HasPrefix(parts[0], "UID ") {
				parts = append(parts[1:], parts[0])
			}
			send("* %d FETCH (%s)", i+1, strings.Join(parts, " "))
		}
		if refused {
			send("%s NO Some messages could not be FETCHed (Failure)", tag)
			return false
		}
	case cmd == "STORE" && uid:
		want := parseUIDSet(args[0], maxUID)
		add := strings.HasPrefix(strings.ToUpper(args[1]), "+")
		flags := strings.Fields(strings.Trim(strings.Join(args[2:], " "), "()"))
		if f.seenNo && slices.Contains(flags, `\Seen`) {
			send("%s NO cannot store flags now", tag)
			return false
		}
		for _, m := range fo.msgs {
			if !want[m.uid] {
				continue
			}
			for _, fl := range flags {
				has := slices.Contains(m.flags, fl)
				switch {
				case add && !has:
					m.flags = append(m.flags, fl)
				case !add && has:
					m.flags = slices.DeleteFunc(m.flags, func(s string) bool { return s == fl })
				}
			}
		}
	case (cmd == "COPY" || cmd == "MOVE" && !f.noMove) && uid:
		dst := f.folders[args[1]]
		if dst == nil || f.copyNo {
			send("%s NO [TRYCREATE] cannot copy there", tag)
			return false
		}
		want := parseUIDSet(args[0], maxUID)
		for _, m := range fo.msgs {
			if want[m.uid] {
				dst.msgs = append(dst.msgs, &fakeMessage{uid: dst.uidNext, body: m.body})
				dst.uidNext++
			}
		}
		if cmd == "MOVE" {
			f.expunge(send, fo, func(m *fakeMessage) bool { return want[m.uid] })
		}
	case cmd == "EXPUNGE" && !uid:
		f.expunge(send, fo, func(m *fakeMessage) bool { return slices.Contains(m.flags, `\Deleted`) })
	case cmd == "EXPUNGE" && !f.noUIDPlus:
		want := parseUIDSet(args[0], maxUID)
		f.expunge(send, fo, func(m *fakeMessage) bool { return want[m.uid] && slices.Contains(m.flags, `\Deleted`) })
	default:
		send("%s BAD unknown command", tag)
		return false
	}
	send("%s OK done", tag)
	return false
}

// expunge removes the messages gone says, reporting each.
func (f *fakeIMAP) expunge(send func(string, ...any), fo *fakeFolder, gone func(*fakeMessage) bool) {
	var keep []*fakeMessage
	for _, m := range fo.msgs {
		if gone(m) {
			send("* %d EXPUNGE", len(keep)+1) // those before it are gone
			continue
		}
		keep = append(keep, m)
	}
	fo.msgs = keep
}

// fakeIMAPAccount is a fetch account for a fake IMAP server, without
// TLS.
func fakeIMAPAccount(t *testing.T, f *fakeIMAP) Account {
	host, port := splitAddr(t, f.addr)
	return Account{Name: "fake", Protocol: ProtoIMAP, Host: host, Port: port, TLS: TLSNone, AllowInsecure: true,
		User: "u", Password: "p", Mode: ModeDelete, Maildir: t.TempDir() + "/Maildir", Folders: []string{"INBOX"}}
}

// TestIMAPMoveWithoutMOVE: on a server without MOVE, move_to copies the
// messages and only once the COPY succeeded flags and expunges them. A
// COPY refused leaves them where they are, and they are not copied twice.
func TestIMAPMoveWithoutMOVE(t *testing.T) {
	t.Run("copy refused", func(t *testing.T) {
		f := startFakeIMAP(t, &fakeIMAP{noMove: true})
		f.add("INBOX", testMessages(1, 3)...)
		f.add("Archive")
		f.set(func() { f.copyNo = true })
		a := fakeIMAPAccount(t, f)
		a.Mode, a.MoveTo = ModeKeep, "Archive"
		cfg := testConfig(t, a)
		s := fetchOnce(t, cfg, testOptions(t))[0]
		if s.Err == nil || !strings.Contains(s.Err.Error(), "copy to Archive") || s.Fetched != 3 || s.Moved != 0 {
			t.Errorf("COPY refused: %v", s)
		}
		if n := len(f.messages("INBOX")); n != 3 || f.flagged("INBOX") != 0 {
			t.Errorf("INBOX holds %d, %d flagged \\Deleted; want 3, none", n, f.flagged("INBOX"))
		}
		// Once the COPY works, the messages move, stored once.
		f.set(func() { f.copyNo = false })
		if s := mustFetch(t, cfg, testOptions(t)); s.Fetched != 0 || s.Moved != 3 {
			t.Errorf("COPY accepted: %v", s)
		}
		if len(f.messages("INBOX")) != 0 || len(f.messages("Archive")) != 3 {
			t.Errorf("INBOX holds %d, Archive %d", len(f.messages("INBOX")), len(f.messages("Archive")))
		}
		checkMaildir(t, a.Maildir, [2]int{1, 3})
	})
	t.Run("no UIDPLUS", func(t *testing.T) {
		// Without UID EXPUNGE, an EXPUNGE is safe when every message
		// flagged \Deleted is stored here (see TestIMAPWithoutUIDPLUS).
		f := startFakeIMAP(t, &fakeIMAP{noMove: true, noUIDPlus: true})
		f.add("INBOX", testMessages(1, 3)...)
		f.add("Archive")
		f.flag("INBOX", 2, `\Deleted`) // by another client
		a := fakeIMAPAccount(t, f)
		a.Mode, a.MoveTo = ModeKeep, "Archive"
		cfg := testConfig(t, a)
		if s := mustFetch(t, cfg, testOptions(t)); s.Fetched != 3 || s.Moved != 3 || s.Flagged != 0 {
			t.Errorf("run: %v", s)
		}
		if len(f.messages("INBOX")) != 0 || len(f.messages("Archive")) != 3 {
			t.Errorf("INBOX holds %d, Archive %d", len(f.messages("INBOX")), len(f.messages("Archive")))
		}
		checkMaildir(t, a.Maildir, [2]int{1, 3})
	})
}

// TestIMAPWithoutUIDPLUS: on a server without UIDPLUS, whose EXPUNGE
// removes every message flagged \Deleted, a message flagged by another
// client is fetched before any EXPUNGE, in delete mode and with
// keep_days, rather than expunged unfetched after the first batch.
func TestIMAPWithoutUIDPLUS(t *testing.T) {
	t.Run("delete", func(t *testing.T) {
		f := startFakeIMAP(t, &fakeIMAP{noUIDPlus: true})
		f.add("INBOX", testMessages(1, bodyBatch+3)...)
		f.flag("INBOX", bodyBatch+2, `\Deleted`)
		a := fakeIMAPAccount(t, f)
		s := mustFetch(t, testConfig(t, a), testOptions(t))
		if s.Fetched != bodyBatch+3 || s.Deleted != bodyBatch+3 || s.Flagged != 0 {
			t.Errorf("run: %v", s)
		}
		if n := len(f.messages("INBOX")); n != 0 {
			t.Errorf("%d left on the server", n)
		}
		checkMaildir(t, a.Maildir, [2]int{1, bodyBatch + 3})
	})
	t.Run("one not stored", func(t *testing.T) {
		// A message flagged \Deleted elsewhere that cannot be fetched
		// keeps the others from being expunged: they stay flagged.
		f := startFakeIMAP(t, &fakeIMAP{noUIDPlus: true, noMove: true})
		f.add("INBOX", testMessages(1, 3)...)
		f.flag("INBOX", 2, `\Deleted`)
		f.set(func() { f.fetchNo[2] = true })
		a := fakeIMAPAccount(t, f)
		cfg := testConfig(t, a)
		for run := 1; run <= 2; run++ {
			s := mustFetch(t, cfg, testOptions(t))
			if s.Deleted != 0 || s.Flagged != 2 || s.Failed != 1 {
				t.Errorf("run %d: %v", run, s)
			}
			if n := len(f.messages("INBOX")); n != 3 || f.flagged("INBOX") != 3 {
				t.Errorf("run %d: %d left on the server, %d flagged", run, n, f.flagged("INBOX"))
			}
		}
		checkMaildir(t, a.Maildir, [2]int{1, 1}, [2]int{3, 3})
		// The move_to copies are kept from a second COPY the same way.
		f.add("Archive")
		cfg.Accounts[0].Mode, cfg.Accounts[0].MoveTo = ModeKeep, "Archive"
		for run := 1; run <= 2; run++ {
			if s := mustFetch(t, cfg, testOptions(t)); s.Moved != 0 || s.Flagged != 2 {
				t.Errorf("move run %d: %v", run, s)
			}
			if n := len(f.messages("Archive")); n != 2 {
				t.Errorf("move run %d: Archive holds %d, want 2", run, n)
			}
		}
	})
	t.Run("keep_days", func(t *testing.T) {
		f := startFakeIMAP(t, &fakeIMAP{noUIDPlus: true})
		f.add("INBOX", testMessages(1, 3)...)
		a := fakeIMAPAccount(t, f)
		a.Mode, a.KeepDays = ModeKeep, 7
		cfg := testConfig(t, a)
		clock := newTestClock()
		opts := testOptions(t)
		opts.Now = clock.Now
		if s := mustFetch(t, cfg, opts); s.Fetched != 3 {
			t.Fatalf("first run: %v", s)
		}
		f.add("INBOX", testMessage(4, 0))
		f.flag("INBOX", 4, `\Deleted`)
		clock.Advance(8 * 24 * time.Hour)
		if s := mustFetch(t, cfg, opts); s.Fetched != 1 || s.Deleted != 3 {
			t.Errorf("second run: %v", s)
		}
		if n := len(f.messages("INBOX")); n != 0 {
			t.Errorf("%d left on the server", n)
		}
		checkMaildir(t, a.Maildir, [2]int{1, 4})
	})
}

// TestIMAPPartialFetch: messages a FETCH leaves out, or sends without
// their UID or body, stay on the server and are errors of the run; the
// others of the batch are stored and deleted, run after run. One expunged
// by another client meanwhile is no error.
func TestIMAPPartialFetch(t *testing.T) {
	for _, tc := range []struct {
		name   string
		quirk  func(f *fakeIMAP)
		failed int
	}{
		{"FETCH NO", func(f *fakeIMAP) { f.fetchNo[3] = true }, 1},
		{"no UID or body", func(f *fakeIMAP) { f.noUID[2], f.nilBody[4] = true, true }, 2},
		{"expunged meanwhile", func(f *fakeIMAP) { f.vanish[3] = true }, 0},
		{"flags and EXISTS interleaved", func(f *fakeIMAP) { f.interleave = true }, 0},
		{"flags before the body", func(f *fakeIMAP) { f.flagsFirst[2], f.flagsFirst[5] = true, true }, 0},
		{"UID after the body", func(f *fakeIMAP) { f.uidLast = true }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFakeIMAP(t, &fakeIMAP{})
			f.add("INBOX", testMessages(1, 5)...)
			f.set(func() { tc.quirk(f) })
			a := fakeIMAPAccount(t, f)
			cfg := testConfig(t, a)
			s := mustFetch(t, cfg, testOptions(t))
			if want := 5 - tc.failed - len(f.vanish); s.Fetched != want || s.Deleted != want || s.Failed != tc.failed {
				t.Errorf("first run: %v, want %d fetched and deleted, %d errors", s, want, tc.failed)
			}
			if n := len(f.messages("INBOX")); n != tc.failed {
				t.Errorf("%d left on the server, want %d", n, tc.failed)
			}
			if s := mustFetch(t, cfg, testOptions(t)); s.Fetched != 0 || s.Failed != tc.failed {
				t.Errorf("second run: %v", s)
			}
			var stored []string
			for _, m := range f.messages("INBOX") {
				stored = append(stored, subjects([][]byte{m})...)
			}
			for _, subj := range subjects(maildirMessages(t, a.Maildir)) {
				if slices.Contains(stored, subj) {
					t.Errorf("%s is both stored and on the server", subj)
				}
			}
			if got := len(maildirMessages(t, a.Maildir)); got != 5-tc.failed-len(f.vanish) {
				t.Errorf("maildir holds %d messages", got)
			}
		})
	}
}

// TestIMAPFolderNames: folders named as mail clients show them, with
// spaces, hierarchy and non-ASCII letters, are fetched (the names go in
// modified UTF-7, RFC 3501 5.1.3); a folder the server does not have is
// an error naming the folders that were likely meant, and the others are
// fetched all the same.
func TestIMAPFolderNames(t *testing.T) {
	f := startFakeIMAP(t, &fakeIMAP{})
	wire := []string{"[Gmail]/All Mail", "Entw&APw-rfe", "Tom &- Jerry", "Lists/Go"}
	for i, name := range wire {
		f.add(name, testMessage(i+1, 0))
	}
	a := fakeIMAPAccount(t, f)
	a.Mode = ModeKeep
	a.Folders = []string{"[Gmail]/All Mail", "Entwürfe", "Tom & Jerry", "Lists/Go"}
	var logs logBuffer
	opts := testOptions(t)
	opts.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(&logs, testLogWriter{t}), nil))
	if s := mustFetch(t, testConfig(t, a), opts); s.Fetched != 4 {
		t.Errorf("run: %v", s)
	}
	checkMaildir(t, a.Maildir, [2]int{1, 4})
	// Gmail's All Mail (\All) holds the other folders' messages too.
	if logs.count("fetched twice") != 1 {
		t.Errorf("no warning that [Gmail]/All Mail holds the other folders' messages")
	}

	for _, tc := range []struct{ written, hint string }{
		{"All Mail", `the server has "[Gmail]/All Mail"`},
		{"Entw&APw-rfe", `the server has "Entwürfe"`},
		{"lists/go", `the server has "Lists/Go"`},
		{"Go", `the server has "Lists/Go"`},
		{"Nowhere", ""},
	} {
		t.Run(tc.written, func(t *testing.T) {
			a := fakeIMAPAccount(t, f)
			a.Mode = ModeKeep
			a.Folders = []string{tc.written, "Tom & Jerry"}
			s := fetchOnce(t, testConfig(t, a), testOptions(t))[0]
			if s.Err == nil || !strings.Contains(s.Err.Error(), "folder "+tc.written+": ") {
				t.Fatalf("run: %v, want an error for folder %s", s, tc.written)
			}
			if msg := s.Err.Error(); tc.hint != "" && !strings.Contains(msg, tc.hint) || tc.hint == "" && strings.Contains(msg, "the server has") {
				t.Errorf("error %q, want the hint %q", msg, tc.hint)
			}
			if s.Fetched != 1 {
				t.Errorf("the other folder was not fetched: %v", s)
			}
		})
	}
}

// TestIMAPMarkSeenLater: with mark_seen, messages stored by a run that
// could not set \Seen on the server (a STORE refused, a connection lost)
// get it from the next run; a message someone marked unread on the server
// afterwards is left so.
func TestIMAPMarkSeenLater(t *testing.T) {
	f := startFakeIMAP(t, &fakeIMAP{})
	f.add("INBOX", testMessages(1, 3)...)
	f.set(func() { f.seenNo = true })
	a := fakeIMAPAccount(t, f)
	a.Mode, a.MarkSeen = ModeKeep, true
	cfg := testConfig(t, a)
	if s := fetchOnce(t, cfg, testOptions(t))[0]; s.Err == nil || s.Fetched != 3 {
		t.Errorf("run with STORE refused: %v", s)
	}
	if n := f.withFlag("INBOX", `\Seen`); n != 0 {
		t.Fatalf("%d messages \\Seen", n)
	}
	f.set(func() { f.seenNo = false })
	if s := mustFetch(t, cfg, testOptions(t)); s.Fetched != 0 || s.AlreadyFetched != 3 {
		t.Errorf("next run: %v", s)
	}
	if n := f.withFlag("INBOX", `\Seen`); n != 3 {
		t.Errorf("%d messages \\Seen after the next run, want 3", n)
	}
	f.unflag("INBOX", 2, `\Seen`)
	mustFetch(t, cfg, testOptions(t))
	if n := f.withFlag("INBOX", `\Seen`); n != 2 {
		t.Errorf("%d messages \\Seen, want the one marked unread left so", n)
	}
	checkMaildir(t, a.Maildir, [2]int{1, 3})
}

// TestIMAPUIDValidityKeepsWhatIsOwed: messages recognised after a
// UIDVALIDITY change keep what the state owed them: a \Seen not yet set
// (mark_seen) is set, and a message already copied to move_to but left
// unexpunged (no UIDPLUS, another message flagged \Deleted) is not copied
// again.
func TestIMAPUIDValidityKeepsWhatIsOwed(t *testing.T) {
	renumber := func(f *fakeIMAP) { f.set(func() { f.folders["INBOX"].uidValidity++ }) }
	t.Run("seen due", func(t *testing.T) {
		f := startFakeIMAP(t, &fakeIMAP{})
		f.add("INBOX", testMessages(1, 3)...)
		f.set(func() { f.seenNo = true })
		a := fakeIMAPAccount(t, f)
		a.Mode, a.MarkSeen = ModeKeep, true
		cfg := testConfig(t, a)
		if s := fetchOnce(t, cfg, testOptions(t))[0]; s.Err == nil || s.Fetched != 3 {
			t.Fatalf("run with STORE refused: %v", s)
		}
		renumber(f)
		f.set(func() { f.seenNo = false })
		if s := mustFetch(t, cfg, testOptions(t)); s.Fetched != 0 {
			t.Errorf("run after the UIDVALIDITY change: %v", s)
		}
		if n := f.withFlag("INBOX", `\Seen`); n != 3 {
			t.Errorf("%d messages \\Seen after the UIDVALIDITY change, want 3", n)
		}
		checkMaildir(t, a.Maildir, [2]int{1, 3})
	})
	t.Run("copied", func(t *testing.T) {
		f := startFakeIMAP(t, &fakeIMAP{noUIDPlus: true, noMove: true})
		f.add("INBOX", testMessages(1, 3)...)
		f.add("Archive")
		f.flag("INBOX", 2, `\Deleted`)
		f.set(func() { f.fetchNo[2] = true })
		a := fakeIMAPAccount(t, f)
		a.Mode, a.MoveTo = ModeKeep, "Archive"
		cfg := testConfig(t, a)
		if s := mustFetch(t, cfg, testOptions(t)); s.Fetched != 2 || s.Flagged != 2 {
			t.Fatalf("first run: %v", s)
		}
		renumber(f)
		if s := mustFetch(t, cfg, testOptions(t)); s.Fetched != 0 || s.Moved != 0 {
			t.Errorf("run after the UIDVALIDITY change: %v", s)
		}
		if n := len(f.messages("Archive")); n != 2 {
			t.Errorf("Archive holds %d, want the 2 copied once", n)
		}
		checkMaildir(t, a.Maildir, [2]int{1, 1}, [2]int{3, 3})
	})
}
