package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// TestCrashSafety kills the server with SIGKILL at random moments while
// mail arrives over LMTP and IMAP APPEND and flags change and messages are
// expunged, then restarts it and checks the promises: every acknowledged
// message is there byte for byte, nothing appears twice, acknowledged flag
// changes and expunges stuck, UIDs never go backwards or get reused,
// UIDVALIDITY never changes, and `buzon check --repair` leaves no orphan.
//
// CRASH_KILLS (default 50) sets the number of kills, CRASH_SEED (default 1)
// the random plan; a failure names the seed and cycle to replay.
func TestCrashSafety(t *testing.T) {
	t.Parallel()
	kills := envInt("CRASH_KILLS", 50)
	seed := uint64(envInt("CRASH_SEED", 1))
	if testing.Short() {
		kills = min(kills, 10)
	}
	data := t.TempDir()
	const user, pass = "crash@example.org", "pw"
	mustBuzon(t, pass+"\n", "user", "add", "--data", data, user)

	m := newCrashModel()
	rng := rand.New(rand.NewPCG(seed, 0))
	for cycle := range kills {
		in := start(t, data)
		m.verify(t, in, user, pass, fmt.Sprintf("seed %d, before cycle %d", seed, cycle))
		run := time.Duration(20+rng.IntN(300)) * time.Millisecond
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w, work := range []func(*crashWorker){(*crashWorker).lmtp, (*crashWorker).appendLoop, (*crashWorker).flagsAndExpunge} {
			cw := &crashWorker{m: m, in: in, user: user, pass: pass, stop: stop,
				rng: rand.New(rand.NewPCG(seed, uint64(cycle*10+w+1))), id: fmt.Sprintf("c%d-w%d", cycle, w)}
			wg.Add(1)
			go func() { defer wg.Done(); work(cw) }()
		}
		time.Sleep(run) // when to crash is the random part of the plan, not an assertion
		in.kill()
		close(stop)
		wg.Wait()
	}
	in := start(t, data)
	m.verify(t, in, user, pass, fmt.Sprintf("seed %d, after the last kill", seed))
	in.stop()
	t.Logf("%d kills: %d messages acknowledged, %d expunges acknowledged, %d flag changes acknowledged",
		kills, len(m.acked), len(m.expunged), len(m.flagged))
	if len(m.acked) == 0 {
		t.Fatal("no delivery was ever acknowledged: the test did not exercise the server")
	}

	out, _, code := buzon(t, "", "check", "--data", data, "--repair")
	if code != 0 {
		t.Fatalf("buzon check --repair: exit %d\n%s", code, out)
	}
	if out, _, code := buzon(t, "", "check", "--data", data); code != 0 || !strings.Contains(out, "no problems") {
		t.Fatalf("buzon check after repair: exit %d\n%s", code, out)
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// crashModel is what the clients were told, and so what must survive.
type crashModel struct {
	mu        sync.Mutex
	attempted map[string][]byte   // Message-ID -> body, sent whether or not acknowledged
	acked     map[string]bool     // acknowledged deliveries and appends
	uids      map[string]imap.UID // Message-ID -> UID, once known
	flagged   map[string]bool     // acknowledged +FLAGS (\Flagged)
	expunging map[string]bool     // expunge sent
	expunged  map[string]bool     // expunge acknowledged
	maxUID    imap.UID            // highest UID ever seen
	validity  uint32
}

func newCrashModel() *crashModel {
	return &crashModel{attempted: map[string][]byte{}, acked: map[string]bool{}, uids: map[string]imap.UID{},
		flagged: map[string]bool{}, expunging: map[string]bool{}, expunged: map[string]bool{}}
}

var messageIDRE = regexp.MustCompile(`(?m)^Message-ID: <([^>]+)>\r$`)

// crashMessage makes a distinct message of a few kilobytes.
func crashMessage(id string, rng *rand.Rand) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: load@example.net\r\nTo: crash@example.org\r\nMessage-ID: <%s>\r\nSubject: crash test %s\r\n\r\n", id, id)
	for range 20 + rng.IntN(100) {
		fmt.Fprintf(&b, "%s %016x line of a message that must survive a crash\r\n", id, rng.Uint64())
	}
	return b.Bytes()
}

// verify reads the whole INBOX and checks it against the model.
func (m *crashModel) verify(t *testing.T, in *instance, user, pass, when string) {
	t.Helper()
	c, err := imapclient.DialInsecure(in.ports["imap"], nil)
	if err != nil {
		t.Fatalf("%s: dial: %v\n%s", when, err, in.logs())
	}
	defer c.Close()
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Fatalf("%s: login: %v", when, err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatalf("%s: select: %v", when, err)
	}
	var msgs []*imapclient.FetchMessageBuffer
	if sel.NumMessages > 0 {
		msgs, err = c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true,
			BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
		if err != nil {
			t.Fatalf("%s: fetch: %v\n%s", when, err, in.logs())
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.validity == 0 {
		m.validity = sel.UIDValidity
	} else if sel.UIDValidity != m.validity {
		t.Fatalf("%s: UIDVALIDITY changed from %d to %d", when, m.validity, sel.UIDValidity)
	}
	seen := map[string]bool{}
	prevMax := m.maxUID
	for _, msg := range msgs {
		if len(msg.BodySection) != 1 {
			t.Fatalf("%s: UID %d: no body", when, msg.UID)
		}
		body := msg.BodySection[0].Bytes
		match := messageIDRE.FindSubmatch(body)
		if match == nil {
			t.Fatalf("%s: UID %d holds a message nobody sent: %.200q", when, msg.UID, body)
		}
		id := string(match[1])
		if seen[id] {
			t.Fatalf("%s: message %s appears twice", when, id)
		}
		seen[id] = true
		if want, ok := m.attempted[id]; !ok || !bytes.Equal(body, want) {
			t.Fatalf("%s: message %s (UID %d) is not byte for byte what was sent (%d bytes, sent %d)", when, id, msg.UID, len(body), len(want))
		}
		if m.expunged[id] {
			t.Fatalf("%s: message %s came back after its expunge was acknowledged", when, id)
		}
		if old, ok := m.uids[id]; ok && old != msg.UID {
			t.Fatalf("%s: message %s moved from UID %d to %d", when, id, old, msg.UID)
		}
		if _, known := m.uids[id]; !known && msg.UID <= prevMax {
			t.Fatalf("%s: new message %s got UID %d, not above the highest UID seen before (%d): a UID went backwards or was reused",
				when, id, msg.UID, prevMax)
		}
		m.uids[id] = msg.UID
		m.maxUID = max(m.maxUID, msg.UID)
		if m.flagged[id] && !hasFlag(msg.Flags, imap.FlagFlagged) {
			t.Fatalf("%s: message %s lost its acknowledged \\Flagged", when, id)
		}
	}
	for id := range m.acked {
		if !seen[id] && !m.expunging[id] {
			t.Fatalf("%s: acknowledged message %s is missing", when, id)
		}
	}
}

func hasFlag(flags []imap.Flag, f imap.Flag) bool {
	for _, x := range flags {
		if strings.EqualFold(string(x), string(f)) {
			return true
		}
	}
	return false
}

// crashWorker is one client doing its part of the load until the server
// dies under it.
type crashWorker struct {
	m          *crashModel
	in         *instance
	user, pass string
	stop       chan struct{}
	rng        *rand.Rand
	id         string
	n          int
}

func (w *crashWorker) stopped() bool {
	select {
	case <-w.stop:
		return true
	default:
		return false
	}
}

func (w *crashWorker) next() (string, []byte) {
	w.n++
	id := fmt.Sprintf("%s-%d@crash.test", w.id, w.n)
	body := crashMessage(id, w.rng)
	w.m.mu.Lock()
	w.m.attempted[id] = body
	w.m.mu.Unlock()
	return id, body
}

func (w *crashWorker) ack(id string, uid imap.UID) {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	w.m.acked[id] = true
	if uid != 0 {
		w.m.uids[id] = uid
	}
}

// lmtp delivers over LMTP, one transaction per message.
func (w *crashWorker) lmtp() {
	c, err := net.Dial("tcp", w.in.ports["lmtp"])
	if err != nil {
		return
	}
	defer c.Close()
	r := bufio.NewReader(c)
	reply := func() (string, error) {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return "", err
			}
			if len(line) >= 4 && line[3] == ' ' {
				return line, nil
			}
		}
	}
	if _, err := reply(); err != nil {
		return
	}
	fmt.Fprintf(c, "LHLO crash.test\r\n")
	if _, err := reply(); err != nil {
		return
	}
	for !w.stopped() {
		id, body := w.next()
		fmt.Fprintf(c, "MAIL FROM:<load@example.net>\r\nRCPT TO:<%s>\r\nDATA\r\n", w.user)
		for range 3 {
			if line, err := reply(); err != nil || (line[0] != '2' && line[0] != '3') {
				return
			}
		}
		c.Write(body)
		fmt.Fprintf(c, ".\r\n")
		line, err := reply()
		if err != nil {
			return
		}
		if strings.HasPrefix(line, "250") {
			w.ack(id, 0)
		}
	}
}

// appendLoop appends over IMAP; an OK with APPENDUID acknowledges.
func (w *crashWorker) appendLoop() {
	c, err := imapclient.DialInsecure(w.in.ports["imap"], nil)
	if err != nil {
		return
	}
	defer c.Close()
	if c.Login(w.user, w.pass).Wait() != nil {
		return
	}
	for !w.stopped() {
		id, body := w.next()
		cmd := c.Append("INBOX", int64(len(body)), nil)
		cmd.Write(body)
		if cmd.Close() != nil {
			return
		}
		data, err := cmd.Wait()
		if err != nil {
			return
		}
		w.ack(id, data.UID)
	}
}

// flagsAndExpunge flags known messages and expunges some of them.
func (w *crashWorker) flagsAndExpunge() {
	c, err := imapclient.DialInsecure(w.in.ports["imap"], nil)
	if err != nil {
		return
	}
	defer c.Close()
	if c.Login(w.user, w.pass).Wait() != nil {
		return
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		return
	}
	for !w.stopped() {
		id, uid := w.pick()
		if uid == 0 {
			time.Sleep(5 * time.Millisecond) // nothing known yet; let deliveries come
			continue
		}
		if w.rng.IntN(3) > 0 {
			err := c.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true,
				Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close()
			if err != nil {
				return
			}
			w.m.mu.Lock()
			w.m.flagged[id] = true
			w.m.mu.Unlock()
			continue
		}
		w.m.mu.Lock()
		w.m.expunging[id] = true
		w.m.mu.Unlock()
		err := c.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true,
			Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
		if err != nil {
			return
		}
		if _, err := c.UIDExpunge(imap.UIDSetNum(uid)).Collect(); err != nil {
			return
		}
		w.m.mu.Lock()
		w.m.expunged[id] = true
		w.m.mu.Unlock()
	}
}

// pick chooses a message whose UID is known and that is not being
// expunged.
func (w *crashWorker) pick() (string, imap.UID) {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	var ids []string
	for id := range w.m.uids {
		if !w.m.expunging[id] {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return "", 0
	}
	// Map order is random; sort for a reproducible choice.
	slices.Sort(ids)
	id := ids[w.rng.IntN(len(ids))]
	return id, w.m.uids[id]
}
