package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/pop3client"
	"github.com/buzon-mail/buzon/internal/pop3server/pop3test"
	"github.com/buzon-mail/buzon/internal/server"
	"github.com/buzon-mail/buzon/internal/store"
)

// TestModes runs each mode over each protocol against buzon's own
// servers: a first run, a second that fetches only what is new, and for
// keep_days a clock moved past the limit.
func TestModes(t *testing.T) {
	for _, proto := range []string{ProtoPOP3, ProtoIMAP} {
		for _, tc := range []struct {
			name     string
			mode     string
			keepDays int
			seen     bool
			moveTo   string
		}{
			{name: "delete", mode: ModeDelete},
			{name: "keep", mode: ModeKeep},
			{name: "keep_days", mode: ModeKeep, keepDays: 7},
			{name: "keep_seen", mode: ModeKeep, seen: true},
			{name: "move", mode: ModeKeep, moveTo: "Archive"},
		} {
			if proto == ProtoPOP3 && (tc.seen || tc.moveTo != "") {
				continue
			}
			t.Run(proto+"/"+tc.name, func(t *testing.T) {
				b := startBuzon(t)
				b.deliver(t, "INBOX", testMessages(1, 5)...)
				a := b.account(t, proto, TLSImplicit)
				a.Mode, a.KeepDays, a.MarkSeen, a.MoveTo = tc.mode, tc.keepDays, tc.seen, tc.moveTo
				cfg := testConfig(t, a)
				clock := newTestClock()
				opts := testOptions(t)
				opts.Now = clock.Now

				s := mustFetch(t, cfg, opts)
				if s.Fetched != 5 || s.Failed != 0 {
					t.Fatalf("first run: %v", s)
				}
				checkMaildir(t, a.Maildir, [2]int{1, 5})
				left := map[string]int{ModeDelete: 0, ModeKeep: 5}[tc.mode]
				if tc.moveTo != "" {
					left = 0
					if n := b.count(t, tc.moveTo); n != 5 {
						t.Errorf("%s holds %d messages, want 5", tc.moveTo, n)
					}
				}
				if n := b.count(t, "INBOX"); n != left {
					t.Errorf("after the first run the server keeps %d, want %d", n, left)
				}
				if tc.seen {
					if n := b.seen(t, "INBOX"); n != 5 {
						t.Errorf("%d messages \\Seen, want 5", n)
					}
				} else if proto == ProtoIMAP && left > 0 {
					if n := b.seen(t, "INBOX"); n != 0 {
						t.Errorf("%d messages \\Seen after BODY.PEEK, want 0", n)
					}
				}

				// A second run fetches only what is new.
				clock.Advance(4 * 24 * time.Hour)
				b.deliver(t, "INBOX", testMessages(6, 7)...)
				s = mustFetch(t, cfg, opts)
				if s.Fetched != 2 {
					t.Fatalf("second run: %v", s)
				}
				wantAlready := map[string]int{ModeDelete: 0, ModeKeep: 5}[tc.mode]
				if tc.moveTo != "" {
					wantAlready = 0
				}
				if s.AlreadyFetched != wantAlready {
					t.Errorf("second run: already fetched %d, want %d", s.AlreadyFetched, wantAlready)
				}
				// The summary says why mail left on the server was
				// skipped, so that it does not read like a problem.
				sum := s.String()
				want := fmt.Sprintf(", skipped %d, ", wantAlready)
				if wantAlready > 0 {
					want = fmt.Sprintf(", skipped %d (already fetched), ", wantAlready)
				}
				if !strings.Contains(sum, want) {
					t.Errorf("second run's summary: %s", sum)
				}
				checkMaildir(t, a.Maildir, [2]int{1, 7})

				if tc.keepDays > 0 {
					// Day 8 after the first five were downloaded; the
					// last two were downloaded on day 4.
					clock.Advance(4 * 24 * time.Hour)
					s = mustFetch(t, cfg, opts)
					if s.Fetched != 0 || s.Deleted != 5 || s.AlreadyFetched != 2 {
						t.Errorf("keep_days run: %v", s)
					}
					if n := b.count(t, "INBOX"); n != 2 {
						t.Errorf("after keep_days the server keeps %d, want 2", n)
					}
					clock.Advance(4 * 24 * time.Hour)
					s = mustFetch(t, cfg, opts)
					if s.Deleted != 2 || b.count(t, "INBOX") != 0 {
						t.Errorf("last keep_days run: %v, %d left", s, b.count(t, "INBOX"))
					}
				}
				checkMaildir(t, a.Maildir, [2]int{1, 7})
			})
		}
	}
}

// TestTLSModes connects with implicit TLS and STARTTLS/STLS, trusting the
// server by pinned fingerprint or by CA file, and without TLS when
// allowed.
func TestTLSModes(t *testing.T) {
	b := startBuzon(t)
	b.deliver(t, "INBOX", testMessages(1, 2)...)
	for _, proto := range []string{ProtoPOP3, ProtoIMAP} {
		for _, mode := range []string{TLSImplicit, TLSStartTLS, TLSNone} {
			for _, trust := range []string{"fingerprint", "ca"} {
				if mode == TLSNone && trust == "ca" {
					continue
				}
				t.Run(proto+"/"+mode+"/"+trust, func(t *testing.T) {
					a := b.account(t, proto, mode)
					if trust == "ca" {
						a.TLSFingerprint, a.TLSCAFile, a.Host = "", b.certFile, "localhost"
					}
					cfg := testConfig(t, a)
					if s := mustFetch(t, cfg, testOptions(t)); s.Fetched != 2 {
						t.Errorf("%v", s)
					}
					checkMaildir(t, a.Maildir, [2]int{1, 2})
				})
			}
		}
	}
}

// TestCertificateErrors: a server the account does not trust is refused
// with its fingerprint in the error, so that the person can pin it.
func TestCertificateErrors(t *testing.T) {
	b := startBuzon(t)
	otherPEM, _, err := server.SelfSignedCert([]string{"localhost", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	otherCA := filepath.Join(t.TempDir(), "other.pem")
	if err := os.WriteFile(otherCA, otherPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, proto := range []string{ProtoPOP3, ProtoIMAP} {
		for _, mode := range []string{TLSImplicit, TLSStartTLS} {
			for _, tc := range []struct {
				name   string
				adjust func(*Account)
				want   string
			}{
				{"untrusted", func(a *Account) { a.TLSFingerprint = "" }, "not trusted"},
				{"wrong pin", func(a *Account) { a.TLSFingerprint = strings.Repeat("ab", 32) }, "not the pinned"},
				{"other CA", func(a *Account) { a.TLSFingerprint, a.TLSCAFile = "", otherCA }, "not trusted"},
			} {
				t.Run(proto+"/"+mode+"/"+tc.name, func(t *testing.T) {
					a := b.account(t, proto, mode)
					tc.adjust(&a)
					s := fetchOnce(t, testConfig(t, a), testOptions(t))[0]
					var ce *CertificateError
					if !errors.As(s.Err, &ce) {
						t.Fatalf("error %v, want a CertificateError", s.Err)
					}
					if ce.Fingerprint != b.fingerprint || !strings.Contains(s.Err.Error(), b.fingerprint) || !strings.Contains(s.Err.Error(), tc.want) {
						t.Errorf("error %q: want the fingerprint %s and %q", s.Err, b.fingerprint, tc.want)
					}
				})
			}
		}
	}
}

// TestWrongPassword reports a refused login as ErrLogin.
func TestWrongPassword(t *testing.T) {
	b := startBuzon(t)
	for _, proto := range []string{ProtoPOP3, ProtoIMAP} {
		t.Run(proto, func(t *testing.T) {
			a := b.account(t, proto, TLSImplicit)
			a.Password = "wrong"
			s := fetchOnce(t, testConfig(t, a), testOptions(t))[0]
			if !errors.Is(s.Err, ErrLogin) || !strings.Contains(s.Err.Error(), remoteUser) {
				t.Errorf("error %v, want ErrLogin naming the user", s.Err)
			}
		})
	}
}

// TestPasswordCommand takes the password from the first line of a
// command's output.
func TestPasswordCommand(t *testing.T) {
	b := startBuzon(t)
	b.deliver(t, "INBOX", testMessages(1, 1)...)
	a := b.account(t, ProtoIMAP, TLSImplicit)
	a.Password, a.PasswordCommand = "", `printf '%s\nsecond line\n' 's3cret pass'`
	if s := mustFetch(t, testConfig(t, a), testOptions(t)); s.Fetched != 1 {
		t.Errorf("%v", s)
	}
	a.PasswordCommand = "echo oops >&2; exit 3"
	s := fetchOnce(t, testConfig(t, a), testOptions(t))[0]
	if s.Err == nil || !strings.Contains(s.Err.Error(), "oops") {
		t.Errorf("failing password_command: %v", s.Err)
	}
}

// TestUIDValidityChange deletes and re-creates a folder on the server:
// the messages fetched before are recognised, only the new ones fetched.
func TestUIDValidityChange(t *testing.T) {
	for _, mode := range []string{ModeKeep, ModeDelete} {
		t.Run(mode, func(t *testing.T) {
			b := startBuzon(t)
			b.deliver(t, "Lists", testMessages(1, 5)...)
			a := b.account(t, ProtoIMAP, TLSImplicit)
			a.Folders, a.Mode = []string{"INBOX", "Lists"}, mode
			cfg := testConfig(t, a)
			if mode == ModeKeep {
				if s := mustFetch(t, cfg, testOptions(t)); s.Fetched != 5 {
					t.Fatalf("first run: %v", s)
				}
			} else {
				// Stored and recorded, but the expunge never happened.
				crashFetch(t, cfg, testOptions(t), "expunge", 1)
				checkMaildir(t, a.Maildir, [2]int{1, 5})
			}
			// Re-create the folder with the same five messages and two
			// new ones.
			sess := b.session(t)
			if err := sess.DeleteMailbox(context.Background(), "Lists"); err != nil {
				t.Fatal(err)
			}
			b.deliver(t, "Lists", testMessages(1, 7)...)
			s := mustFetch(t, cfg, testOptions(t))
			if s.Fetched != 2 {
				t.Errorf("after the UIDVALIDITY change: %v", s)
			}
			checkMaildir(t, a.Maildir, [2]int{1, 7})
			want := map[string]int{ModeKeep: 7, ModeDelete: 0}[mode]
			if n := b.count(t, "Lists"); n != want {
				t.Errorf("server keeps %d, want %d", n, want)
			}
			// And the run after that knows the new UIDs.
			if s := mustFetch(t, cfg, testOptions(t)); s.Fetched != 0 {
				t.Errorf("third run: %v", s)
			}
		})
	}
}

// TestSourceChangedIMAP: an IMAP account whose server is named another
// way starts afresh too: it cannot know that the same mailbox is behind
// it, so it fetches the messages again rather than risk taking another
// mailbox's messages for fetched ones.
func TestSourceChangedIMAP(t *testing.T) {
	b := startBuzon(t)
	b.deliver(t, "INBOX", testMessages(1, 3)...)
	a := b.account(t, ProtoIMAP, TLSImplicit)
	cfg := testConfig(t, a)
	if s := mustFetch(t, cfg, testOptions(t)); s.Fetched != 3 {
		t.Fatalf("first run: %v", s)
	}
	cfg.Accounts[0].Host = "localhost"
	if s := mustFetch(t, cfg, testOptions(t)); s.Fetched != 3 || s.AlreadyFetched != 0 {
		t.Errorf("after the change: %v", s)
	}
	if got, want := subjects(maildirMessages(t, a.Maildir)), wantSubjects([2]int{1, 3}, [2]int{1, 3}); !slices.Equal(got, want) {
		t.Errorf("maildir holds %v, want %v", got, want)
	}
}

// TestQuotaFull delivers into a buzon account that runs out of quota: the
// rest stays on the server, the run says so (in one log line), and a later
// run with room fetches it.
func TestQuotaFull(t *testing.T) {
	b := startBuzon(t)
	b.deliver(t, "INBOX", testMessages(1, 5)...)
	local := startLocalStore(t, store.Quota{MaxMessages: 3})
	for _, proto := range []string{ProtoPOP3} {
		a := b.account(t, proto, TLSImplicit)
		a.Mode, a.Maildir = ModeDelete, ""
		a.Store = &StoreTarget{Data: "local", Account: "bob@example.org"}
		cfg := testConfig(t, a)
		opts := testOptions(t)
		opts.OpenStore = local.opener
		var logs logBuffer
		opts.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(&logs, testLogWriter{t}), nil))
		s := fetchOnce(t, cfg, opts)[0]
		if !errors.Is(s.Err, ErrDestinationFull) || !errors.Is(s.Err, store.ErrOverQuota) || s.Fetched != 3 || s.Failed != 1 || s.Deleted != 3 {
			t.Fatalf("over quota: %v (err %v)", s, s.Err)
		}
		if n := logs.count(store.ErrOverQuota.Error()); n != 1 {
			t.Errorf("the error was logged %d times, want once", n)
		}
		// It names the account and mailbox, not the store's ids.
		if msg := s.Err.Error(); !strings.Contains(msg, "bob@example.org") || !strings.Contains(msg, "INBOX") ||
			regexp.MustCompile(`mailbox \d`).MatchString(msg) {
			t.Errorf("over quota: %s", msg)
		}
		if n := logs.count(`level=ERROR msg="fetch failed"`); n != 1 {
			t.Errorf("%d lines say the fetch failed, want 1", n)
		}
		if n := b.count(t, "INBOX"); n != 2 {
			t.Errorf("server keeps %d, want 2", n)
		}
		local.setQuota(t, store.Quota{})
		if s := mustFetch(t, cfg, opts); s.Fetched != 2 || s.Deleted != 2 {
			t.Errorf("with room: %v", s)
		}
		if got := local.subjects(t, "INBOX"); strings.Join(got, ",") != strings.Join(wantSubjects([2]int{1, 5}), ",") {
			t.Errorf("local account holds %v", got)
		}
	}
}

// TestPOP3InUse: a maildrop locked by another session (as one of ours
// that died may leave it for a moment) is tried again, and the run goes
// on once it is free.
func TestPOP3InUse(t *testing.T) {
	b := startBuzon(t)
	b.deliver(t, "INBOX", testMessages(1, 2)...)
	other, err := pop3client.DialTLS(context.Background(), b.pop3.TLSAddr, b.pop3.ClientTLS)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.User(remoteUser, pop3test.Password); err != nil {
		t.Fatal(err)
	}
	a := b.account(t, ProtoPOP3, TLSImplicit)
	var logs logBuffer
	opts := testOptions(t)
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	f := New(testConfig(t, a), opts)
	defer f.Close()
	done := make(chan Summary, 1)
	go func() {
		sums, _ := f.RunOnce(context.Background())
		done <- sums[0]
	}()
	waitFor(t, "the in-use retry", func() bool { return logs.count("the mailbox is in use") > 0 })
	other.Quit()
	if s := <-done; s.Err != nil || s.Fetched != 2 {
		t.Errorf("%v", s)
	}
}

// TestStoreMailboxMissing: a store destination whose mailbox the account
// lacks fails the account once, saying what to do, and leaves every
// message on the server; once the mailbox exists, they come.
func TestStoreMailboxMissing(t *testing.T) {
	b := startBuzon(t)
	b.deliver(t, "INBOX", testMessages(1, 3)...)
	local := startLocalStore(t, store.Quota{})
	a := b.account(t, ProtoPOP3, TLSImplicit)
	a.Mode, a.Maildir = ModeDelete, ""
	a.Store = &StoreTarget{Data: "local", Account: "bob@example.org", Mailbox: "Lists"}
	cfg := testConfig(t, a)
	opts := testOptions(t)
	opts.OpenStore = local.opener
	s := fetchOnce(t, cfg, opts)[0]
	if !errors.Is(s.Err, store.ErrNoMailbox) || !strings.Contains(s.Err.Error(), `account bob@example.org has no mailbox "Lists"`) ||
		strings.Count(s.Err.Error(), "Lists") != 1 || s.Fetched != 0 || s.Failed > 1 {
		t.Fatalf("missing mailbox: %v (err %v)", s, s.Err)
	}
	if n := b.count(t, "INBOX"); n != 3 {
		t.Errorf("server keeps %d, want 3", n)
	}
	sess, err := local.st.Open(t.Context(), local.acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = sess.CreateMailbox(t.Context(), "Lists", "")
	sess.Close()
	if err != nil {
		t.Fatal(err)
	}
	if s := mustFetch(t, cfg, opts); s.Fetched != 3 || s.Deleted != 3 {
		t.Errorf("once the mailbox exists: %v", s)
	}
	if got := local.subjects(t, "Lists"); len(got) != 3 {
		t.Errorf("Lists holds %v", got)
	}
}
