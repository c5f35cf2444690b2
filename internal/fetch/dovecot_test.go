package fetch

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/buzon-mail/buzon/internal/clienttest"
	"github.com/buzon-mail/buzon/internal/server"
	"github.com/buzon-mail/buzon/internal/store"
)

// The tests against Dovecot share one instance, started by the first of
// them from /work/shared/peers/dovecot.sh in a folder and on ports of its
// own (the benchmark runs another), and stopped by TestMain. Each test
// takes users of its own.

// dovecotUsers is how many users the instance has.
const dovecotUsers = 500

var peer struct {
	once sync.Once
	d    *dovecot
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if peer.d != nil {
		peer.d.Clean()
	}
	os.Exit(code)
}

// dovecot is a running Dovecot.
type dovecot struct {
	*clienttest.Dovecot
	certFile    string
	fingerprint string
	nextUser    atomic.Int32
}

// startDovecot returns the shared Dovecot, starting it on first use; it
// skips the test where Dovecot cannot run.
func startDovecot(t *testing.T) *dovecot {
	t.Helper()
	clienttest.CanRunDovecot(t)
	peer.once.Do(func() { peer.d, peer.err = launchDovecot() })
	if peer.err != nil {
		t.Fatalf("start dovecot: %v", peer.err)
	}
	return peer.d
}

func launchDovecot() (*dovecot, error) {
	dc, err := clienttest.LaunchDovecot("bzfetch", dovecotUsers)
	if err != nil {
		return nil, err
	}
	d := &dovecot{Dovecot: dc, certFile: filepath.Join(dc.Dir, "tls", "cert.pem")}
	b, err := os.ReadFile(d.certFile)
	if err != nil {
		dc.Clean()
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		dc.Clean()
		return nil, fmt.Errorf("no certificate in %s", d.certFile)
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		dc.Clean()
		return nil, err
	}
	d.fingerprint = server.Fingerprint(block.Bytes)
	return d, nil
}

// user takes a user no other test uses.
func (d *dovecot) user(t *testing.T) string {
	n := d.nextUser.Add(1)
	if n > dovecotUsers {
		t.Fatal("out of Dovecot users; raise dovecotUsers")
	}
	return fmt.Sprintf("user%d", n)
}

// client logs in over plain IMAP, as the test's own view of the server.
func (d *dovecot) client(t *testing.T, user string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(d.Addr("IMAP"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(user, "pass").Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

// put appends messages to a folder, creating it.
func (d *dovecot) put(t *testing.T, user, folder string, msgs ...[]byte) {
	t.Helper()
	c := d.client(t, user)
	defer c.Close()
	if folder != "INBOX" {
		c.Create(folder, nil).Wait() // may exist
	}
	for _, m := range msgs {
		cmd := c.Append(folder, int64(len(m)), nil)
		cmd.Write(m)
		cmd.Close()
		if _, err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	c.Logout().Wait()
}

// count is the number of messages in a folder.
func (d *dovecot) count(t *testing.T, user, folder string) int {
	t.Helper()
	c := d.client(t, user)
	defer c.Close()
	data, err := c.Status(folder, &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	c.Logout().Wait()
	return int(*data.NumMessages)
}

// recreate deletes a folder and creates it again (a new UIDVALIDITY).
func (d *dovecot) recreate(t *testing.T, user, folder string) {
	t.Helper()
	c := d.client(t, user)
	defer c.Close()
	if err := c.Delete(folder).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(folder, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	c.Logout().Wait()
}

// account is a fetch account for a Dovecot user.
func (d *dovecot) account(t *testing.T, user, protocol, tlsMode string) Account {
	port := d.Ports[map[string]string{
		ProtoPOP3 + TLSImplicit: "POP3S", ProtoPOP3 + TLSStartTLS: "POP3", ProtoPOP3 + TLSNone: "POP3",
		ProtoIMAP + TLSImplicit: "IMAPS", ProtoIMAP + TLSStartTLS: "IMAP", ProtoIMAP + TLSNone: "IMAP",
	}[protocol+tlsMode]]
	return Account{
		Name: user + "-" + protocol, Protocol: protocol, Host: "127.0.0.1", Port: port, TLS: tlsMode,
		AllowInsecure: tlsMode == TLSNone, TLSFingerprint: d.fingerprint,
		User: user, Password: "pass", Mode: ModeKeep, Maildir: filepath.Join(t.TempDir(), "Maildir"),
	}
}

// TestDovecotModes: each mode over each protocol, with implicit TLS and
// STARTTLS/STLS, a second run fetching only what is new, keep_days on an
// injected clock.
func TestDovecotModes(t *testing.T) {
	d := startDovecot(t)
	for _, proto := range []string{ProtoPOP3, ProtoIMAP} {
		for _, tlsMode := range []string{TLSImplicit, TLSStartTLS} {
			for _, mode := range []string{ModeDelete, ModeKeep, "keep_days"} {
				t.Run(proto+"/"+tlsMode+"/"+mode, func(t *testing.T) {
					t.Parallel()
					user := d.user(t)
					d.put(t, user, "INBOX", testMessages(1, 4)...)
					a := d.account(t, user, proto, tlsMode)
					if tlsMode == TLSStartTLS {
						// Trust by CA file and host name rather than by pin.
						a.TLSFingerprint, a.TLSCAFile = "", d.certFile
					}
					a.Mode = mode
					if mode == "keep_days" {
						a.Mode, a.KeepDays = ModeKeep, 3
					}
					cfg := testConfig(t, a)
					clock := newTestClock()
					opts := testOptions(t)
					opts.Now = clock.Now
					if s := mustFetch(t, cfg, opts); s.Fetched != 4 {
						t.Fatalf("first run: %v", s)
					}
					left := map[string]int{ModeDelete: 0, ModeKeep: 4, "keep_days": 4}[mode]
					if n := d.count(t, user, "INBOX"); n != left {
						t.Errorf("server keeps %d, want %d", n, left)
					}
					clock.Advance(2 * 24 * time.Hour)
					d.put(t, user, "INBOX", testMessages(5, 6)...)
					if s := mustFetch(t, cfg, opts); s.Fetched != 2 || s.AlreadyFetched != left {
						t.Errorf("second run: %v", s)
					}
					checkMaildir(t, a.Maildir, [2]int{1, 6})
					if mode == "keep_days" {
						clock.Advance(24 * time.Hour)
						if s := mustFetch(t, cfg, opts); s.Deleted != 4 || s.AlreadyFetched != 2 || d.count(t, user, "INBOX") != 2 {
							t.Errorf("keep_days run: %v, %d left", s, d.count(t, user, "INBOX"))
						}
					}
				})
			}
		}
	}
}

// TestDovecotDestinations stores Dovecot's mail in each destination.
func TestDovecotDestinations(t *testing.T) {
	d := startDovecot(t)
	for _, kind := range []string{"maildir", "mbox", "store", "mda"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			user := d.user(t)
			d.put(t, user, "INBOX", testMessages(1, 5)...)
			local := startLocalStore(t, store.Quota{})
			a := d.account(t, user, ProtoIMAP, TLSImplicit)
			a.Mode = ModeDelete
			withDest(t, &a, kind, local)
			opts := testOptions(t)
			opts.OpenStore = local.opener
			if s := mustFetch(t, testConfig(t, a), opts); s.Fetched != 5 || s.Deleted != 5 {
				t.Errorf("%v", s)
			}
			if kind == "mda" {
				files, _ := filepath.Glob(mdaFiles(a))
				var msgs [][]byte
				for _, f := range files {
					b, _ := os.ReadFile(f)
					msgs = append(msgs, b)
				}
				if got := strings.Join(subjects(msgs), ","); got != strings.Join(wantSubjects([2]int{1, 5}), ",") {
					t.Errorf("MDA got %s", got)
				}
				return
			}
			checkDest(t, a, local, 1, 5)
		})
	}
}

// TestDovecotCrash stops runs against Dovecot at the riskiest steps and
// reruns them.
func TestDovecotCrash(t *testing.T) {
	d := startDovecot(t)
	for _, tc := range []struct {
		proto, point string
		n            int
	}{
		{ProtoPOP3, "record", 2}, {ProtoPOP3, "quit", 1},
		{ProtoIMAP, "record", 2}, {ProtoIMAP, "expunge", 1},
	} {
		t.Run(tc.proto+"/"+tc.point, func(t *testing.T) {
			t.Parallel()
			user := d.user(t)
			d.put(t, user, "INBOX", testMessages(1, 4)...)
			a := d.account(t, user, tc.proto, TLSImplicit)
			a.Mode = ModeDelete
			cfg := testConfig(t, a)
			crashFetch(t, cfg, testOptions(t), tc.point, tc.n)
			mustFetch(t, cfg, testOptions(t))
			checkMaildir(t, a.Maildir, [2]int{1, 4})
			if n := d.count(t, user, "INBOX"); n != 0 {
				t.Errorf("%d left on the server", n)
			}
		})
	}
}

// TestDovecotUIDValidity deletes and re-creates a folder on Dovecot.
func TestDovecotUIDValidity(t *testing.T) {
	d := startDovecot(t)
	user := d.user(t)
	d.put(t, user, "Lists", testMessages(1, 3)...)
	a := d.account(t, user, ProtoIMAP, TLSImplicit)
	a.Folders = []string{"Lists"}
	cfg := testConfig(t, a)
	if s := mustFetch(t, cfg, testOptions(t)); s.Fetched != 3 {
		t.Fatalf("first run: %v", s)
	}
	uidValidity := func() uint32 {
		st, err := openState(cfg.StateDir, a.Name, "")
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		return st.folder("Lists").UIDValidity
	}
	before := uidValidity()
	d.recreate(t, user, "Lists")
	d.put(t, user, "Lists", testMessages(1, 5)...)
	if s := mustFetch(t, cfg, testOptions(t)); s.Fetched != 2 {
		t.Errorf("after the change: %v", s)
	}
	checkMaildir(t, a.Maildir, [2]int{1, 5})
	if after := uidValidity(); after == before {
		t.Fatalf("UIDVALIDITY stayed %d", after)
	}
	st, err := openState(cfg.StateDir, a.Name, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n := len(st.folder("Lists").Messages); n != 5 {
		t.Errorf("state knows %d messages of Lists, want 5", n)
	}
}

// TestDovecotWrongPassword: Dovecot's refusal is ErrLogin, over both
// protocols.
func TestDovecotWrongPassword(t *testing.T) {
	d := startDovecot(t)
	user := d.user(t)
	for _, proto := range []string{ProtoPOP3, ProtoIMAP} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel() // Dovecot delays each refusal
			a := d.account(t, user, proto, TLSImplicit)
			a.Password = "wrong"
			s := fetchOnce(t, testConfig(t, a), testOptions(t))[0]
			if !errors.Is(s.Err, ErrLogin) {
				t.Errorf("%v, want ErrLogin", s.Err)
			}
		})
	}
}

// TestDovecotSeenAndMove: mark_seen and move_to on Dovecot, whose MOVE
// and UIDPLUS show only after login.
func TestDovecotSeenAndMove(t *testing.T) {
	d := startDovecot(t)
	for _, tc := range []struct {
		name   string
		adjust func(*Account)
	}{
		{"seen", func(a *Account) { a.MarkSeen = true }},
		{"move", func(a *Account) { a.MoveTo = "Archive" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			user := d.user(t)
			d.put(t, user, "INBOX", testMessages(1, 3)...)
			d.put(t, user, "Archive")
			a := d.account(t, user, ProtoIMAP, TLSStartTLS)
			tc.adjust(&a)
			cfg := testConfig(t, a)
			if s := mustFetch(t, cfg, testOptions(t)); s.Fetched != 3 {
				t.Fatalf("%v", s)
			}
			c := d.client(t, user)
			defer c.Close()
			data, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true, NumUnseen: true}).Wait()
			if err != nil {
				t.Fatal(err)
			}
			archived, err := c.Status("Archive", &imap.StatusOptions{NumMessages: true}).Wait()
			if err != nil {
				t.Fatal(err)
			}
			got := [3]uint32{*data.NumMessages, *data.NumUnseen, *archived.NumMessages}
			want := map[string][3]uint32{"seen": {3, 0, 0}, "move": {0, 0, 3}}[tc.name]
			if got != want {
				t.Errorf("INBOX messages, unseen, Archive messages = %v, want %v", got, want)
			}
			if s := mustFetch(t, cfg, testOptions(t)); s.Fetched != 0 {
				t.Errorf("second run: %v", s)
			}
		})
	}
}
