package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSender records what the Deliverer sends, or fails.
type fakeSender struct {
	mu   sync.Mutex
	sent []sentMessage // guarded by mu
	err  error
}

type sentMessage struct {
	from, to string
	msg      *mail.Message
	raw      string
}

func (s *fakeSender) Send(_ context.Context, from, to string, r io.Reader) error {
	msg, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m, err := mail.ReadMessage(strings.NewReader(string(msg)))
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.sent = append(s.sent, sentMessage{from, to, m, string(msg)})
	return nil
}

func (s *fakeSender) take() []sentMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.sent
	s.sent = nil
	return out
}

// vacationFixture is sieveFixture with a Sender, an alias and a clock.
func newVacationFixture(t *testing.T) (*sieveFixture, *fakeSender, *[]string) {
	f := newSieveFixture(t)
	s := &fakeSender{}
	f.d.Sender = s
	var mu sync.Mutex
	var outcomes []string
	f.d.Replied = func(o string) {
		mu.Lock()
		defer mu.Unlock()
		outcomes = append(outcomes, o)
	}
	if err := f.st.AddAlias(t.Context(), "al@example.org", "alice@example.org"); err != nil {
		t.Fatal(err)
	}
	return f, s, &outcomes
}

// deliverFrom delivers a message and waits for its reply, if any.
func (f *sieveFixture) deliverFrom(from, msg string) Delivered {
	f.t.Helper()
	got, err := f.d.DeliverAccount(f.t.Context(), f.acct, f.spool(msg), Envelope{From: from, To: "alice@example.org"})
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.d.WaitReplies(f.t.Context()); err != nil {
		f.t.Fatal(err)
	}
	return got
}

func mailFrom(from, to, subject, extra string) string {
	return "From: " + from + "\r\nTo: " + to + "\r\nSubject: " + subject + "\r\nMessage-ID: <m1@example.net>\r\n" +
		"References: <m0@example.net>\r\n" + extra + "\r\nHello.\r\n"
}

// TestVacationWhen: RFC 5230 4.5 and 4.6, RFC 3834: who gets a reply.
func TestVacationWhen(t *testing.T) {
	t.Parallel()
	const script = `require "vacation"; vacation :addresses "alice@old.example" "I am away.";`
	bob := "bob@example.net"
	for _, tc := range []struct {
		name, from, msg string
		reply           bool
	}{
		{"to the account", bob, mailFrom(bob, "alice@example.org", "hi", ""), true},
		{"in Cc, case aside", bob, mailFrom(bob, "carol@example.net", "hi", "Cc: ALICE@example.org\r\n"), true},
		{"to an alias", bob, mailFrom(bob, "al@example.org", "hi", ""), true},
		{"to a +detail", bob, mailFrom(bob, "Alice <alice+work@example.org>", "hi", ""), true},
		{"to :addresses", bob, mailFrom(bob, "alice@old.example", "hi", ""), true},
		{"Resent-To", bob, mailFrom(bob, "carol@example.net", "hi", "Resent-To: alice@example.org\r\n"), true},
		{"Auto-Submitted: no", bob, mailFrom(bob, "alice@example.org", "hi", "Auto-Submitted: no\r\n"), true},
		{"not addressed to her", bob, mailFrom(bob, "carol@example.net", "hi", ""), false},
		{"null sender", "", mailFrom(bob, "alice@example.org", "hi", ""), false},
		{"mailer daemon", "MAILER-DAEMON@example.net", mailFrom(bob, "alice@example.org", "hi", ""), false},
		{"owner-", "owner-go@lists.example.net", mailFrom(bob, "alice@example.org", "hi", ""), false},
		{"-request", "go-request@lists.example.net", mailFrom(bob, "alice@example.org", "hi", ""), false},
		{"listserv", "LISTSERV@lists.example.net", mailFrom(bob, "alice@example.org", "hi", ""), false},
		{"List-Id", bob, mailFrom(bob, "alice@example.org", "hi", "List-Id: <go.lists.example.net>\r\n"), false},
		{"List-Unsubscribe", bob, mailFrom(bob, "alice@example.org", "hi", "List-Unsubscribe: <mailto:u@example.net>\r\n"), false},
		{"Precedence: bulk", bob, mailFrom(bob, "alice@example.org", "hi", "Precedence: Bulk\r\n"), false},
		{"Precedence: list", bob, mailFrom(bob, "alice@example.org", "hi", "Precedence: list\r\n"), false},
		{"Auto-Submitted", bob, mailFrom(bob, "alice@example.org", "hi", "Auto-Submitted: auto-replied (vacation)\r\n"), false},
		{"Auto-Submitted generated", bob, mailFrom(bob, "alice@example.org", "hi", "Auto-Submitted: auto-generated\r\n"), false},
		{"Outlook's suppress", bob, mailFrom(bob, "alice@example.org", "hi", "X-Auto-Response-Suppress: DR, OOF\r\n"), false},
		{"her own", "al@example.org", mailFrom("al@example.org", "alice@example.org", "hi", ""), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, s, _ := newVacationFixture(t)
			f.activate(script)
			got := f.deliverFrom(tc.from, tc.msg)
			if len(got.Copies) != 1 || got.Copies[0].Mailbox != "INBOX" {
				t.Errorf("stored %+v, want INBOX (vacation keeps)", got.Copies)
			}
			sent := s.take()
			if (len(sent) == 1) != tc.reply || len(sent) > 1 {
				t.Fatalf("%d replies sent, want reply %v\n%s", len(sent), tc.reply, f.log.String())
			}
			if tc.reply && sent[0].to != tc.from {
				t.Errorf("reply to %q, want the envelope sender %q", sent[0].to, tc.from)
			}
		})
	}
}

// TestVacationReply: what the reply says and whom it goes to (RFC 5230 5,
// RFC 3834).
func TestVacationReply(t *testing.T) {
	t.Parallel()
	f, s, outcomes := newVacationFixture(t)
	f.activate("require \"vacation\";\nvacation text:\nI am away until Monday.\nRückkehr am Montag.\n.\n;\n")
	f.deliverFrom("bob@example.net", mailFrom("Bob <bob@example.net>", "alice@example.org", "=?utf-8?q?Gr=C3=BC=C3=9Fe?=", ""))
	sent := s.take()
	if len(sent) != 1 {
		t.Fatalf("%d replies, want 1", len(sent))
	}
	r := sent[0]
	if r.from != "" || r.to != "bob@example.net" {
		t.Errorf("envelope %q -> %q, want <> -> bob@example.net", r.from, r.to)
	}
	h := r.msg.Header
	var dec mime.WordDecoder
	subject, err := dec.DecodeHeader(h.Get("Subject"))
	if err != nil || subject != "Auto: Grüße" {
		t.Errorf("Subject %q (%v), want Auto: Grüße", subject, err)
	}
	for name, want := range map[string]string{
		"From": "<alice@example.org>", "To": "<bob@example.net>", "In-Reply-To": "<m1@example.net>",
		"References": "<m0@example.net> <m1@example.net>", "Auto-Submitted": "auto-replied (vacation)",
		"Content-Type": "text/plain; charset=utf-8", "Content-Transfer-Encoding": "quoted-printable",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if h.Get("Message-ID") == "" || h.Get("Date") == "" {
		t.Errorf("no Message-ID or Date:\n%s", r.raw)
	}
	body, _ := io.ReadAll(quotedprintable.NewReader(r.msg.Body))
	if string(body) != "I am away until Monday.\r\nRückkehr am Montag.\r\n" {
		t.Errorf("body %q", body)
	}
	if strings.Contains(strings.ReplaceAll(r.raw, "\r\n", ""), "\n") {
		t.Errorf("a bare LF in the reply:\n%q", r.raw)
	}

	// The same sender within the period: none. Another sender: one.
	f.deliverFrom("bob@example.net", mailFrom("bob@example.net", "alice@example.org", "again", ""))
	f.deliverFrom("carol@example.net", mailFrom("carol@example.net", "alice@example.org", "hi", ""))
	if sent := s.take(); len(sent) != 1 || sent[0].to != "carol@example.net" {
		t.Errorf("after a second message from bob and one from carol: %d replies, want carol's alone", len(sent))
	}
	if want := []string{"sent", "skipped", "sent"}; !slices.Equal(*outcomes, want) {
		t.Errorf("outcomes %q, want %q", *outcomes, want)
	}
}

// TestVacationPeriod: the period is the script's within the configured
// bounds, and a reply is due again once it is over.
func TestVacationPeriod(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, script string
		cfg          VacationConfig
		after        time.Duration // when the next reply is due
	}{
		{"default", `vacation "x";`, VacationConfig{}, 7 * 24 * time.Hour},
		{"days", `vacation :days 2 "x";`, VacationConfig{}, 2 * 24 * time.Hour},
		{"over the max", `vacation :days 365 "x";`, VacationConfig{}, 90 * 24 * time.Hour},
		{"under the min", `require "vacation-seconds"; vacation :seconds 60 "x";`, VacationConfig{}, 24 * time.Hour},
		{"seconds", `require "vacation-seconds"; vacation :seconds 60 "x";`, VacationConfig{MinPeriod: time.Second}, time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, s, _ := newVacationFixture(t)
			f.d.Vacation = tc.cfg
			now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
			f.d.Now = func() time.Time { return now }
			f.activate(`require "vacation"; ` + tc.script)
			msg := mailFrom("bob@example.net", "alice@example.org", "hi", "")
			for _, step := range []struct {
				at    time.Duration
				reply bool
			}{{0, true}, {tc.after - time.Second, false}, {tc.after, true}} {
				now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC).Add(step.at)
				f.deliverFrom("bob@example.net", msg)
				if got := len(s.take()); got != btoi(step.reply) {
					t.Errorf("at +%v: %d replies, want %v", step.at, got, step.reply)
				}
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestVacationFrom: :from is used when it is the account's (RFC 5230 4.4,
// as submission holds users to theirs), else the account's address; the
// field is written from the parsed address, its name RFC 2047-encoded, so
// that a value with line breaks in it (from the message, through
// variables) adds no field.
func TestVacationFrom(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ from, want string }{
		{"Alice <al@example.org>", `"Alice" <al@example.org>`},
		{"alice+away@example.org", "<alice+away@example.org>"},
		{"mallory@example.net", "<alice@example.org>"},
		{"a@example.org, b@example.org", "<alice@example.org>"},
		{"Ålice Müller <al@example.org>", "=?utf-8?q?=C3=85lice_M=C3=BCller?= <al@example.org>"},
		{"=?utf-8?q?=C3=85lice?= <al@example.org>", "=?utf-8?q?=C3=85lice?= <al@example.org>"},
		{"alice@example.org (\r\nFrom: ceo@bank.example\r\n)", "<alice@example.org>"},
		{"alice@example.org\r\n", "<alice@example.org>"},
		{"Alice\r\nBcc: eve@example.net\r\n <al@example.org>", "<alice@example.org>"},
	} {
		f, s, _ := newVacationFixture(t)
		from := strings.NewReplacer(`\r`, "\r", `\n`, "\n").Replace(tc.from)
		f.activate("require \"vacation\"; vacation :from \"" + from + "\" \"x\";")
		f.deliverFrom("bob@example.net", mailFrom("bob@example.net", "alice@example.org", "hi", ""))
		sent := s.take()
		if len(sent) != 1 || sent[0].msg.Header.Get("From") != tc.want || len(sent[0].msg.Header["From"]) != 1 ||
			strings.Contains(sent[0].raw, "ceo@") || strings.Contains(sent[0].raw, "eve@") {
			t.Errorf(":from %q: %d replies, From %q; want %q\n%s", tc.from, len(sent), header(sent, "From"), tc.want, raw(sent))
		}
	}
}

// TestMailboxField: an address the store allows is written so that it
// reads back as one address, or not at all.
func TestMailboxField(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, addr, want string }{
		{"", "alice@example.org", "<alice@example.org>"},
		{"", "a,b@example.org", `<"a,b"@example.org>`},
		{"", "a(b@example.org", `<"a(b"@example.org>`},
		{"Ålice", "alice@example.org", "=?utf-8?q?=C3=85lice?= <alice@example.org>"},
		{"Alice\r\nBcc: eve@example.net", "alice@example.org", "=?utf-8?b?QWxpY2UNCkJjYzogZXZlQGV4YW1wbGUubmV0?= <alice@example.org>"},
		{"", "alice@exa(mple.org", ""},
	} {
		if got := mailboxField(tc.name, tc.addr); got != tc.want {
			t.Errorf("mailboxField(%q, %q) = %q, want %q", tc.name, tc.addr, got, tc.want)
		}
	}
}

func raw(sent []sentMessage) string {
	if len(sent) == 0 {
		return ""
	}
	return sent[0].raw
}

func header(sent []sentMessage, name string) string {
	if len(sent) == 0 {
		return ""
	}
	return sent[0].msg.Header.Get(name)
}

// TestVacationMIME: with :mime the reason is the entity (RFC 5230 4.8),
// of whose header only the Content- fields are kept.
func TestVacationMIME(t *testing.T) {
	t.Parallel()
	f, s, _ := newVacationFixture(t)
	f.activate("require \"vacation\";\nvacation :mime :subject \"Away\" text:\nFrom: ceo@bank.example\nContent-Type: text/html;\n charset=utf-8\nBcc: eve@example.net\n\n<p>Away</p>\n.\n;\n")
	f.deliverFrom("bob@example.net", mailFrom("bob@example.net", "alice@example.org", "hi", ""))
	sent := s.take()
	if len(sent) != 1 {
		t.Fatalf("%d replies", len(sent))
	}
	h := sent[0].msg.Header
	body, _ := io.ReadAll(sent[0].msg.Body)
	if h.Get("Content-Type") != "text/html; charset=utf-8" || h.Get("Subject") != "Away" || h.Get("MIME-Version") != "1.0" ||
		string(body) != "<p>Away</p>\r\n" || len(h["From"]) != 1 || strings.Contains(sent[0].raw, "ceo@") || strings.Contains(sent[0].raw, "eve@") {
		t.Errorf("reply:\n%s", sent[0].raw)
	}
}

// TestVacationBestEffort: a reply the relay refuses is logged and the
// message is stored all the same; a discard with a vacation stores
// nothing and replies; without a Sender a vacation script does not
// compile and the message is kept.
func TestVacationBestEffort(t *testing.T) {
	t.Parallel()
	f, s, outcomes := newVacationFixture(t)
	s.err = errors.New("451 4.3.0 relay down")
	f.activate(`require "vacation"; vacation "x";`)
	got := f.deliverFrom("bob@example.net", mailFrom("bob@example.net", "alice@example.org", "hi", ""))
	if len(got.Copies) != 1 {
		t.Errorf("with the relay down: %d copies, want 1", len(got.Copies))
	}
	if !strings.Contains(f.log.String(), `msg="vacation reply not sent" account=alice@example.org script=main to=bob@example.net err="451 4.3.0 relay down"`) {
		t.Errorf("log:\n%s", f.log.String())
	}
	if !slices.Equal(*outcomes, []string{"failed"}) {
		t.Errorf("outcomes %q", *outcomes)
	}

	f, s, _ = newVacationFixture(t)
	f.activate(`require "vacation"; vacation "x"; discard;`)
	got = f.deliverFrom("bob@example.net", mailFrom("bob@example.net", "alice@example.org", "hi", ""))
	if len(got.Copies) != 0 || len(s.take()) != 1 {
		t.Errorf("vacation and discard: %d copies stored, want none and one reply", len(got.Copies))
	}

	f = newSieveFixture(t)
	f.activate(`require "vacation"; vacation "x";`)
	got = f.deliverFrom("bob@example.net", mailFrom("bob@example.net", "alice@example.org", "hi", ""))
	if len(got.Copies) != 1 || !strings.Contains(f.log.String(), "no relay to send replies through") {
		t.Errorf("without a Sender: %d copies, log:\n%s", len(got.Copies), f.log.String())
	}
}

// TestVacationRace: deliveries from one sender at once send one reply.
func TestVacationRace(t *testing.T) {
	t.Parallel()
	f, s, _ := newVacationFixture(t)
	f.activate(`require "vacation"; vacation "x";`)
	msgs := make([]*Spooled, 8)
	for i := range msgs {
		msgs[i] = f.spool(mailFrom("bob@example.net", "alice@example.org", "hi", ""))
	}
	var wg sync.WaitGroup
	for _, m := range msgs {
		wg.Go(func() {
			if _, err := f.d.DeliverAccount(t.Context(), f.acct, m, Envelope{From: "bob@example.net", To: "alice@example.org"}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := f.d.WaitReplies(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(s.take()); n != 1 {
		t.Errorf("8 deliveries at once: %d replies, want 1", n)
	}
}

// TestVacationFolding: the reply's header lines stay within RFC 5322
// 2.1.1's 998 octets however long the subject and the thread: the
// subject's encoded words and References are folded at spaces, and
// References keeps the thread's first and last IDs.
func TestVacationFolding(t *testing.T) {
	t.Parallel()
	f, s, _ := newVacationFixture(t)
	f.activate(`require "vacation"; vacation "x";`)
	subject := strings.Repeat("休暇中のお知らせです。", 18)
	var refs []string
	for i := range 100 {
		refs = append(refs, fmt.Sprintf("<thread.%03d.a-rather-long-message-id@mail.example.net>", i))
	}
	msg := "From: bob@example.net\r\nTo: alice@example.org\r\nSubject: " + mime.QEncoding.Encode("utf-8", subject) +
		"\r\nMessage-ID: <m1@example.net>\r\nReferences: " + strings.Join(refs, "\r\n ") + "\r\n\r\nHello.\r\n"
	f.deliverFrom("bob@example.net", msg)
	sent := s.take()
	if len(sent) != 1 {
		t.Fatalf("%d replies, want 1", len(sent))
	}
	head, _, _ := strings.Cut(sent[0].raw, "\r\n\r\n")
	for l := range strings.SplitSeq(head, "\r\n") {
		if len(l) > 998 || strings.TrimSpace(l) == "" {
			t.Errorf("a header line of %d octets: %.80q", len(l), l)
		}
	}
	h := sent[0].msg.Header
	var dec mime.WordDecoder
	if got, err := dec.DecodeHeader(h.Get("Subject")); err != nil || got != "Auto: "+subject {
		t.Errorf("Subject %q (%v), want Auto: %s", got, err, subject)
	}
	want := strings.Join(append(append([]string{refs[0]}, refs[len(refs)-maxReplyReferences+2:]...), "<m1@example.net>"), " ")
	if got := h.Get("References"); got != want {
		t.Errorf("References:\n%s\nwant\n%s", got, want)
	}
}

// gatedSender holds each message until its gate is closed.
type gatedSender struct {
	*fakeSender
	gate chan struct{}
}

func (s gatedSender) Send(ctx context.Context, from, to string, r io.Reader) error {
	<-s.gate
	return s.fakeSender.Send(ctx, from, to, r)
}

// TestVacationDroppedNotRecorded: a reply dropped because too many are
// under way is not recorded, so its sender gets one with their next
// message rather than none for the period.
func TestVacationDroppedNotRecorded(t *testing.T) {
	t.Parallel()
	f, s, outcomes := newVacationFixture(t)
	gate := make(chan struct{})
	f.d.Sender = gatedSender{s, gate}
	f.d.Vacation.MaxInFlight = 1
	f.activate(`require "vacation"; vacation "x";`)
	deliver := func(from string) {
		if _, err := f.d.DeliverAccount(t.Context(), f.acct, f.spool(mailFrom(from, "alice@example.org", "hi", "")),
			Envelope{From: from, To: "alice@example.org"}); err != nil {
			t.Fatal(err)
		}
	}
	deliver("bob@example.net")   // takes the one slot, held at the gate
	deliver("carol@example.net") // dropped
	close(gate)
	if err := f.d.WaitReplies(t.Context()); err != nil {
		t.Fatal(err)
	}
	deliver("carol@example.net")
	if err := f.d.WaitReplies(t.Context()); err != nil {
		t.Fatal(err)
	}
	var to []string
	for _, m := range s.take() {
		to = append(to, m.to)
	}
	if want := []string{"bob@example.net", "carol@example.net"}; !slices.Equal(to, want) {
		t.Errorf("replies to %q, want %q", to, want)
	}
	if want := []string{"dropped", "sent", "sent"}; !slices.Equal(*outcomes, want) {
		t.Errorf("outcomes %q, want %q", *outcomes, want)
	}
}
