package delivery

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

// TestRedirect: a redirect forwards the message through the Sender, from
// the account's address (or the sender's, as configured), under a field
// naming the account; without :copy nothing is stored, with it the
// message is kept too; a redirect the relay refuses keeps the message; a
// message the account forwarded before, or forwarded four times, is kept
// and not forwarded again; a bounce (the null sender) is forwarded as one
// (RFC 5321 4.5.5), so that a forward to an address gone cannot loop.
func TestRedirect(t *testing.T) {
	t.Parallel()
	const msg = "From: bob@example.net\r\nTo: alice@example.org\r\nSubject: hi\r\n\r\nHello.\r\n"
	for _, tc := range []struct {
		name, script, header string
		envFrom              string // RedirectConfig.EnvelopeFrom
		fail                 bool   // the relay refuses
		forwarded            []string
		stored               []string
	}{
		{"plain", `redirect "carol@example.net";`, "", "", false, []string{"carol@example.net"}, nil},
		{"copy", `require "copy"; redirect :copy "carol@example.net";`, "", "", false, []string{"carol@example.net"}, []string{"INBOX"}},
		{"and fileinto", `require ["fileinto", "mailbox"]; redirect "carol@example.net"; fileinto :create "Fwd";`, "", "", false,
			[]string{"carol@example.net"}, []string{"Fwd"}},
		{"twice to one address", `redirect "carol@example.net"; redirect "Carol <CAROL@example.net>";`, "", "", false, []string{"carol@example.net"}, nil},
		{"two", `redirect "carol@example.net"; redirect "dave@example.net";`, "", "", false, []string{"carol@example.net", "dave@example.net"}, nil},
		{"sender's envelope", `redirect "carol@example.net";`, "", "sender", false, []string{"carol@example.net"}, nil},
		{"relay refuses", `redirect "carol@example.net";`, "", "", true, nil, []string{"INBOX"}},
		{"relay refuses a copy", `require "copy"; redirect :copy "carol@example.net";`, "", "", true, nil, []string{"INBOX"}},
		{"relay refuses, fileinto", `require ["fileinto", "mailbox"]; redirect "carol@example.net"; fileinto :create "Fwd";`, "", "", true,
			nil, []string{"Fwd", "INBOX"}},
		{"loop", `redirect "carol@example.net";`, "X-Sieve-Redirected-From: Alice+x@Example.org\r\n", "", false, nil, []string{"INBOX"}},
		{"others forwarded it", `redirect "carol@example.net";`, "X-Sieve-Redirected-From: a@example.net\r\nX-Sieve-Redirected-From: b@example.net\r\n", "", false,
			[]string{"carol@example.net"}, nil},
		{"Return-Path dropped", `redirect "carol@example.net";`, "Return-Path: <bob@example.net>\r\nReturn-Path:\r\n <x@example.net>\r\n", "", false, []string{"carol@example.net"}, nil},
		{"a bounce", `redirect "carol@example.net";`, "", "", false, []string{"carol@example.net"}, nil},
		{"a bounce, sender's envelope", `redirect "carol@example.net";`, "", "sender", false, []string{"carol@example.net"}, nil},
		{"four hops", `redirect "carol@example.net";`, strings.Repeat("X-Sieve-Redirected-From: x@example.net\r\n", 4), "", false, nil, []string{"INBOX"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, s, _ := newVacationFixture(t)
			f.d.Redirect.EnvelopeFrom = tc.envFrom
			if tc.fail {
				s.err = errors.New("554 5.7.1 relay refuses")
			}
			f.activate(tc.script)
			envFrom := "bob@example.net"
			if strings.HasPrefix(tc.name, "a bounce") {
				envFrom = ""
			}
			got := f.deliverFrom(envFrom, tc.header+msg)
			var stored []string
			for _, c := range got.Copies {
				stored = append(stored, c.Mailbox)
			}
			if !slices.Equal(stored, tc.stored) {
				t.Errorf("stored in %q, want %q\n%s", stored, tc.stored, f.log.String())
			}
			sent := s.take()
			var to []string
			for _, m := range sent {
				to = append(to, m.to)
				wantFrom := "alice@example.org"
				if tc.envFrom == "sender" || envFrom == "" {
					wantFrom = envFrom
				}
				if m.from != wantFrom {
					t.Errorf("forwarded from <%s>, want <%s>", m.from, wantFrom)
				}
				if want := strings.TrimPrefix(tc.header, "Return-Path: <bob@example.net>\r\nReturn-Path:\r\n <x@example.net>\r\n"); !strings.HasPrefix(m.raw, "X-Sieve-Redirected-From: alice@example.org\r\n"+want+msg) {
					t.Errorf("forwarded:\n%q", m.raw)
				}
			}
			if !slices.Equal(to, tc.forwarded) {
				t.Errorf("forwarded to %q, want %q\n%s", to, tc.forwarded, f.log.String())
			}
			if (len(tc.forwarded) == 0) != strings.Contains(f.log.String(), `msg="sieve redirect failed; message kept"`) {
				t.Errorf("log:\n%s", f.log.String())
			}
		})
	}
}

// countingStore counts the address lookups made through it.
type countingStore struct {
	store.Store
	lookups atomic.Int64
}

func (s *countingStore) LookupAddress(ctx context.Context, address string) (store.Account, error) {
	s.lookups.Add(1)
	return s.Store.LookupAddress(ctx, address)
}

// TestRedirectHopLookups: the loop check looks each forwarder up once and
// stops at maxRedirectHops, so that a header of thousands of
// X-Sieve-Redirected-From fields costs a few lookups.
func TestRedirectHopLookups(t *testing.T) {
	t.Parallel()
	const msg = "From: bob@example.net\r\nTo: alice@example.org\r\nSubject: hi\r\n\r\nHello.\r\n"
	for _, tc := range []struct {
		name, header string
		forwarded    bool
		max          int64 // lookups at most, beyond the delivery's own
	}{
		{"thousands", strings.Repeat("X-Sieve-Redirected-From: a+b@example.net\r\n", 5000), false, 2 * maxRedirectHops},
		{"one repeated", "X-Sieve-Redirected-From: A+b@example.net\r\nX-Sieve-Redirected-From: a+b@example.net\r\n", true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, s, _ := newVacationFixture(t)
			f.activate(`redirect "carol@example.net";`)
			cs := &countingStore{Store: f.d.Store}
			f.d.Store = cs
			f.deliverFrom("bob@example.net", msg)
			base := cs.lookups.Load()
			s.take()
			cs.lookups.Store(0)
			f.deliverFrom("bob@example.net", tc.header+msg)
			if n := cs.lookups.Load() - base; n > tc.max {
				t.Errorf("%d lookups for the loop check, want at most %d", n, tc.max)
			}
			if got := len(s.take()); got != btoi(tc.forwarded) {
				t.Errorf("forwarded %d times, want %v\n%s", got, tc.forwarded, f.log.String())
			}
		})
	}
}

// flakyStore is a Store whose sessions fail every Append while fail is
// set, as a full or failing disk does, every RecordReply while
// failRecord is, and every ReplyRecorded but the first readsOK while
// failRead is, and keep their record of replies.
type flakyStore struct {
	store.Store
	fail, failRecord, failRead atomic.Bool
	readsOK                    atomic.Int64
}

func (s *flakyStore) Open(ctx context.Context, accountID int64) (store.Session, error) {
	ss, err := s.Store.Open(ctx, accountID)
	if err != nil {
		return nil, err
	}
	return flakySession{ss, ss.(store.ReplyTracker), s}, nil
}

type flakySession struct {
	store.Session
	store.ReplyTracker
	st *flakyStore
}

func (s flakySession) Append(ctx context.Context, mailboxID int64, msg *store.NewMessage) (store.AppendResult, error) {
	if s.st.fail.Load() {
		return store.AppendResult{}, errors.New("the disk failed")
	}
	return s.Session.Append(ctx, mailboxID, msg)
}

func (s flakySession) ReplyRecorded(ctx context.Context, key string, now time.Time, period time.Duration) (bool, error) {
	if s.st.failRead.Load() && s.st.readsOK.Add(-1) < 0 {
		return false, errors.New("the disk failed")
	}
	return s.ReplyTracker.ReplyRecorded(ctx, key, now, period)
}

func (s flakySession) RecordReply(ctx context.Context, key string, now time.Time, period time.Duration) error {
	if s.st.failRecord.Load() {
		return errors.New("the disk failed")
	}
	return s.ReplyTracker.RecordReply(ctx, key, now, period)
}

// TestRedirectOnce: a message the relay took for an address is not
// forwarded to it again within the period, and is kept instead, as if
// the forward had failed (the implicit keep, unless the script stores it
// in INBOX already or the redirect was :copy): at the sender's retry of a
// delivery whose copies failed to store after the forward, when it comes
// again by another route, when it comes back through a server that
// dropped the account's field (from any sender, through any node, under
// any trace fields), and when another message is taken for it (a Date
// without seconds). A forward that failed is not recorded, so the retry
// forwards; a record that fails is logged and fails nothing; addresses
// are apart; after the period it goes again; the same Message-ID on
// another header or another body is another message, while trace fields
// on top are another try or another route of the same, with or without a
// Message-ID; a message without a Date that can be its sending's (none,
// one unreadable, a stuck clock's far behind the delivery's, or one a
// day ahead) is forwarded every time.
func TestRedirectOnce(t *testing.T) {
	t.Parallel()
	const (
		body  = "From: bob@example.net\r\nTo: alice@example.org\r\nSubject: hi\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\nMessage-ID: <m1@example.net>\r\n\r\nHello.\r\n"
		noID  = "From: bob@example.net\r\nTo: alice@example.org\r\nSubject: hi\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\n\r\nHello.\r\n"
		route = "Received: from list.example.net by mx.example.org\r\n" // another way in
		// What the SMTP listener puts on top, its id and time another at
		// each try.
		try1 = "Return-Path: <bob@example.net>\r\nReceived: from mx.example.net ([192.0.2.1])\r\n\tby mx.example.org (buzon) with ESMTPS\r\n\tid 3KQ7PZ6Q2V5T for <alice@example.org>; Fri, 27 Nov 2026 10:00:01 +0000\r\n"
		try2 = "Return-Path: <bob@example.net>\r\nReceived: from mx.example.net ([192.0.2.1])\r\n\tby mx.example.org (buzon) with ESMTPS\r\n\tid 5TV2Q6ZP7QK3 for <alice@example.org>; Fri, 27 Nov 2026 10:05:01 +0000\r\n"
		// carol's server forwarding to alice the copy alice forwarded,
		// under our listener's Received of its first try, then alice's
		// delivery of it here.
		carolRcvd = "Received: from mx.example.net ([192.0.2.7])\r\n\tby mx.example.net (Postfix) with ESMTPS id 4QzB1; Fri, 27 Nov 2026 10:00:03 +0000\r\n"
		cameBack  = "Return-Path: <SRS0=Xy1z=KN=example.net=bob@example.net>\r\nReceived: from mx.example.net ([192.0.2.7])\r\n\tby mx.example.org (buzon) with ESMTPS\r\n\tid 9PT4KQ2VZ7Q3 for <alice@example.org>; Fri, 27 Nov 2026 10:00:04 +0000\r\n" +
			carolRcvd + "Received: from mx.example.net ([192.0.2.1])\r\n\tby mx.example.org (buzon) with ESMTPS\r\n\tid 3KQ7PZ6Q2V5T for <alice@example.org>; Fri, 27 Nov 2026 10:00:01 +0000\r\n"
		// Gmail's fields between its Received and the one above.
		xReceived = "X-Received: by 2002:a05:6a00:1a8e:b0:6d9 with SMTP id x; Fri, 27 Nov 2026 01:59:58 -0800 (PST)\r\n" +
			"Received: from mail-sor-f41.google.com by mx.google.com with SMTPS id y; Fri, 27 Nov 2026 01:59:58 -0800 (PST)\r\n"
		plain = `redirect "carol@example.net";`
		copy  = `require "copy"; redirect :copy "carol@example.net";`
		carol = "carol@example.net"
		alarm = "From: nvr@cam.example\r\nTo: alice@example.org\r\nSubject: Alarm\r\nDate: Thu, 01 Jan 1970 00:00:00 +0000\r\n\r\nMotion on camera 1\r\n"
		// The device writes one Message-ID too.
		alarmID = "From: nvr@cam.example\r\nTo: alice@example.org\r\nSubject: Alarm\r\nDate: Thu, 01 Jan 1970 00:00:00 +0000\r\nMessage-ID: <alarm@cam.example>\r\n\r\nMotion on camera 1\r\n"
	)
	type step struct {
		script    string        // "": as before
		msg       string        //
		from      string        // the envelope sender; "": bob@example.net
		relayErr  bool          // the relay refuses
		storeErr  bool          // the store fails: the delivery fails
		recordErr bool          // the record of the forward fails
		later     time.Duration // the clock moves on first
		forwarded []string
		skipped   int // forwards found done
		stored    []string
	}
	for _, tc := range []struct {
		name   string
		period time.Duration // RedirectConfig.DuplicatePeriod; 0: the configuration's default, 12 h
		steps  []step
	}{
		{"store fails after the forward", 0, []step{
			{script: copy, msg: body, storeErr: true, forwarded: []string{carol}},
			{msg: body, skipped: 1, stored: []string{"INBOX"}},
		}},
		{"the record fails", 0, []step{
			{script: copy, msg: body, recordErr: true, forwarded: []string{carol}, stored: []string{"INBOX"}},
			{msg: body, forwarded: []string{carol}, stored: []string{"INBOX"}},
			{msg: body, skipped: 1, stored: []string{"INBOX"}},
		}},
		{"again by another route", 0, []step{
			{script: plain, msg: body, forwarded: []string{carol}},
			{msg: route + body, skipped: 1, stored: []string{"INBOX"}},
			{msg: body, later: 12*time.Hour - time.Second, skipped: 1, stored: []string{"INBOX"}},
		}},
		{"after the period", 0, []step{
			{script: plain, msg: body, forwarded: []string{carol}},
			{msg: body, later: 12 * time.Hour, forwarded: []string{carol}},
		}},
		{"a period of our own", time.Hour, []step{
			{script: plain, msg: body, forwarded: []string{carol}},
			{msg: body, later: 59 * time.Minute, skipped: 1, stored: []string{"INBOX"}},
			{msg: body, later: time.Minute, forwarded: []string{carol}},
		}},
		{"no check", -1, []step{
			{script: plain, msg: body, forwarded: []string{carol}},
			{msg: body, forwarded: []string{carol}},
		}},
		{"a failed forward is not recorded", 0, []step{
			{script: plain, msg: body, relayErr: true, stored: []string{"INBOX"}},
			{msg: body, forwarded: []string{carol}},
			{msg: body, skipped: 1, stored: []string{"INBOX"}},
		}},
		{"addresses apart", 0, []step{
			{script: plain, msg: body, forwarded: []string{carol}},
			{script: `redirect "carol@example.net"; redirect "dave@example.net";`, msg: body, forwarded: []string{"dave@example.net"}, skipped: 1, stored: []string{"INBOX"}},
			{script: `redirect "CAROL@example.net"; redirect "dave@example.net";`, msg: body, skipped: 2, stored: []string{"INBOX"}},
		}},
		{"the Message-ID written otherwise", 0, []step{
			{script: plain, msg: body, forwarded: []string{carol}},
			{msg: strings.Replace(body, "<m1@example.net>", "(list copy) <m1@example.net> ", 1), forwarded: []string{carol}},
		}},
		{"the Message-ID of another message", 0, []step{
			{script: plain, msg: body, forwarded: []string{carol}},
			{msg: strings.Replace(body, "Hello.", "Hello again.", 1), forwarded: []string{carol}},
		}},
		// A program that sends every message with one Message-ID: its
		// messages differ in their header only, or have no body.
		{"the Message-ID of another header", 0, []step{
			{script: plain, msg: strings.Replace(body, "Subject: hi", "Subject: backup OK", 1), forwarded: []string{carol}},
			{msg: strings.Replace(body, "Subject: hi", "Subject: backup FAILED", 1), forwarded: []string{carol}},
			{msg: route + strings.Replace(body, "Subject: hi", "Subject: backup FAILED", 1), skipped: 1, stored: []string{"INBOX"}},
			{msg: strings.Replace(body, "To: alice@example.org", "To: alice+backup@example.org", 1), forwarded: []string{carol}},
		}},
		{"the Message-ID of another header, no body", 0, []step{
			{script: plain, msg: strings.TrimSuffix(body, "\r\nHello.\r\n"), forwarded: []string{carol}},
			{msg: strings.Replace(strings.TrimSuffix(body, "\r\nHello.\r\n"), "Subject: hi", "Subject: ho", 1), forwarded: []string{carol}},
		}},
		{"again by a route of many trace fields", 0, []step{
			{script: plain, msg: body, forwarded: []string{carol}},
			{msg: "Return-Path: <bob@example.net>\r\nDelivered-To: alice@example.org\r\nX-Original-To: al@example.org\r\n" +
				"Received: from mx.example.net\r\n by mx.example.org; Fri, 27 Nov 2026 10:00:00 +0000\r\n" +
				"Authentication-Results: mx.example.org; dkim=pass\r\nReceived-SPF: pass\r\n" +
				"ARC-Seal: i=1; a=rsa-sha256; cv=none\r\nARC-Message-Signature: i=1; b=x\r\nARC-Authentication-Results: i=1; dkim=pass\r\n" +
				"dkim-signature: v=1; d=list.example.net;\r\n\tb=xyz\r\nX-Sieve-Redirected-From: dave@example.net\r\n" + route + body, skipped: 1, stored: []string{"INBOX"}},
		}},
		{"no Message-ID", 0, []step{
			{script: plain, msg: noID, forwarded: []string{carol}},
			{msg: noID, skipped: 1, stored: []string{"INBOX"}},
			{msg: "Return-Path: <bob@example.net>\r\n" + noID, skipped: 1, stored: []string{"INBOX"}},
			{msg: route + noID, skipped: 1, stored: []string{"INBOX"}},
			{msg: strings.Replace(noID, "Subject: hi", "Subject: ho", 1), forwarded: []string{carol}},
			{msg: strings.Replace(noID, "Hello.", "Hello again.", 1), forwarded: []string{carol}},
			{msg: strings.Replace(noID, "10:00:00", "10:00:01", 1), forwarded: []string{carol}},
		}},
		// carol's server forwards it back, without alice's field, from
		// the envelope sender it came with: alice's address. Found
		// recorded, it is kept, as any message found recorded is.
		{"come back from the account's address", 0, []step{
			{script: `redirect "carol@example.net"; redirect "dave@example.net";`, msg: body, forwarded: []string{carol, "dave@example.net"}},
			{msg: route + body, from: "Alice@example.org", skipped: 2, stored: []string{"INBOX"}},
			{msg: body, skipped: 2, stored: []string{"INBOX"}},
		}},
		{"from the account's address", 0, []step{
			{script: plain, msg: body, from: "alice@example.org", forwarded: []string{carol}},
			{script: copy, msg: route + body, from: "alice@example.org", skipped: 1, stored: []string{"INBOX"}},
		}},
		// Nothing tells one sending of the same text from the next: a
		// device's alert, sent again.
		{"neither Message-ID nor Date", 0, []step{
			{script: plain, msg: strings.Replace(noID, "Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n", "", 1), forwarded: []string{carol}},
			{msg: strings.Replace(noID, "Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n", "", 1), forwarded: []string{carol}},
			{msg: strings.Replace(body, "Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n", "", 1), forwarded: []string{carol}},
			{msg: strings.Replace(body, "Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n", "", 1), forwarded: []string{carol}},
		}},
		{"no Message-ID, retried over SMTP", 0, []step{
			{script: copy, msg: try1 + noID, storeErr: true, forwarded: []string{carol}},
			{msg: try2 + noID, skipped: 1, stored: []string{"INBOX"}},
		}},
		// carol's server forwards it back from another sender (SRS,
		// its own address, or the null sender of a forwarded bounce),
		// without alice's field: found recorded, it is kept, whatever
		// the trace fields say of where it went.
		{"come back through a server that dropped our field", 0, []step{
			{script: plain, msg: try1 + body, forwarded: []string{carol}},
			{msg: cameBack + body, from: "SRS0=Xy1z=KN=example.net=bob@example.net", skipped: 1, stored: []string{"INBOX"}},
			{msg: cameBack + body, from: "postmaster@example.net", skipped: 1, stored: []string{"INBOX"}},
			{msg: cameBack + body, from: "", skipped: 1, stored: []string{"INBOX"}},
			{msg: cameBack + body, skipped: 1, stored: []string{"INBOX"}}, // redirect_envelope_from = "sender"
			{script: copy, msg: cameBack + body, from: "SRS0=Xy1z=KN=example.net=bob@example.net", skipped: 1, stored: []string{"INBOX"}},
		}},
		// The first forward went out from another node of a cluster,
		// whose listener names itself otherwise: nothing here knows its
		// name, and the message is kept all the same.
		{"come back through another node", 0, []step{
			{script: plain, msg: strings.Replace(try1, "by mx.example.org", "by mx2.example.org", 1) + body, forwarded: []string{carol}},
			{msg: try2 + carolRcvd + strings.Replace(try1, "by mx.example.org", "by mx2.example.org", 1) + body,
				from: "SRS0=Xy1z=KN=example.net=bob@example.net", skipped: 1, stored: []string{"INBOX"}},
		}},
		// A server that writes X-Received among its Received fields, as
		// Gmail does, on the way in and on the way back: the trace
		// fields end at it, and the message is kept however they read.
		{"come back with X-Received among the Received", 0, []step{
			{script: plain, msg: try1 + xReceived + body, forwarded: []string{carol}},
			{msg: try2 + carolRcvd + try1[len("Return-Path: <bob@example.net>\r\n"):] + xReceived + body,
				from: "SRS0=Xy1z=KN=example.net=bob@example.net", skipped: 1, stored: []string{"INBOX"}},
		}},
		// The sender's retries, by any MX, are kept too: forwarded once,
		// kept once.
		{"retried by another MX", 0, []step{
			{script: plain, msg: try1 + body, forwarded: []string{carol}},
			{msg: try2 + body, skipped: 1, stored: []string{"INBOX"}},
			{msg: try2 + "Received: from mx.example.net\r\n\tby mx.example.org (Postfix) with ESMTPS; Fri, 27 Nov 2026 10:00:02 +0000\r\n" + body, from: "fwd@example.net", skipped: 1, stored: []string{"INBOX"}},
		}},
		// A Date without seconds (RFC 5322 3.3 allows it): two alerts of
		// the same words within a minute are one message to the record.
		// The second is not forwarded, but kept.
		{"a Date without seconds", 0, []step{
			{script: plain, msg: strings.Replace(noID, "10:00:00 +0000", "10:00 +0000", 1), forwarded: []string{carol}},
			{msg: strings.Replace(noID, "10:00:00 +0000", "10:00 +0000", 1), later: 40 * time.Second, skipped: 1, stored: []string{"INBOX"}},
			{script: `require ["fileinto", "mailbox"]; redirect "carol@example.net"; fileinto :create "Alerts";`,
				msg: strings.Replace(noID, "10:00:00 +0000", "10:00 +0000", 1), skipped: 1, stored: []string{"Alerts", "INBOX"}},
			{script: `redirect "carol@example.net"; keep;`, msg: strings.Replace(noID, "10:00:00 +0000", "10:00 +0000", 1), skipped: 1, stored: []string{"INBOX"}},
		}},
		// Nothing recorded: the message is forwarded, wherever it went.
		{"through our listener before, not recorded", 0, []step{
			{script: plain, msg: cameBack + body, from: "SRS0=Xy1z=KN=example.net=bob@example.net", forwarded: []string{carol}},
		}},
		// A camera without a clock: the same Date (and words) at each
		// alarm. Retries come within a sender's queue lifetime of the
		// Date, so one further off than that and the period, or ahead
		// of the clock by more than a day, tells nothing.
		{"a stuck clock", 0, []step{
			{script: plain, msg: alarm, forwarded: []string{carol}},
			{msg: alarm, later: 10 * time.Minute, forwarded: []string{carol}},
			{msg: try1 + alarm, forwarded: []string{carol}},
		}},
		{"a stuck clock, a Message-ID", 0, []step{
			{script: plain, msg: alarmID, forwarded: []string{carol}},
			{msg: alarmID, later: 10 * time.Minute, forwarded: []string{carol}},
		}},
		{"a Date at the end of a queue lifetime", 0, []step{
			{script: plain, msg: body, later: 7 * 24 * time.Hour, forwarded: []string{carol}},
			{msg: body, later: 12*time.Hour - 10*time.Second, skipped: 1, stored: []string{"INBOX"}},
			{msg: body, later: 6 * time.Second, forwarded: []string{carol}},
		}},
		{"a Date a day ahead", 0, []step{
			{script: plain, msg: strings.Replace(body, "27 Nov 2026 10:00:00 +0000", "28 Nov 2026 10:00:00 +0000", 1), forwarded: []string{carol}},
			{msg: strings.Replace(body, "27 Nov 2026 10:00:00 +0000", "28 Nov 2026 10:00:00 +0000", 1), skipped: 1, stored: []string{"INBOX"}},
			{msg: strings.Replace(body, "27 Nov 2026 10:00:00 +0000", "28 Nov 2026 10:00:06 +0000", 1), forwarded: []string{carol}},
			{msg: strings.Replace(body, "27 Nov 2026 10:00:00 +0000", "28 Nov 2026 10:00:06 +0000", 1), forwarded: []string{carol}},
		}},
		{"an unreadable Date", 0, []step{
			{script: plain, msg: strings.Replace(body, "Fri, 27 Nov 2026 10:00:00 +0000", "today", 1), forwarded: []string{carol}},
			{msg: strings.Replace(body, "Fri, 27 Nov 2026 10:00:00 +0000", "today", 1), forwarded: []string{carol}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, s, _ := newVacationFixture(t)
			f.d.Redirect.DuplicatePeriod = cmp.Or(tc.period, 12*time.Hour)
			fs := &flakyStore{Store: f.d.Store}
			f.d.Store = fs
			// The clock starts a few seconds after the messages' Date,
			// as a delivery's does.
			now := time.Date(2026, 11, 27, 10, 0, 5, 0, time.UTC)
			f.d.Now = func() time.Time { return now }
			for i, st := range tc.steps {
				if st.script != "" {
					f.activate(st.script)
				}
				now = now.Add(st.later)
				s.err = nil
				if st.relayErr {
					s.err = errors.New("451 4.3.0 try later")
				}
				fs.fail.Store(st.storeErr)
				fs.failRecord.Store(st.recordErr)
				f.log.Reset()
				from := st.from
				if from == "" {
					from = "bob@example.net"
				}
				got, err := f.d.DeliverAccount(t.Context(), f.acct, f.spool(st.msg), Envelope{From: from, To: "alice@example.org"})
				if (err != nil) != st.storeErr {
					t.Fatalf("step %d: delivery: %v, want failed %v", i, err, st.storeErr)
				}
				var stored, to []string
				for _, c := range got.Copies {
					stored = append(stored, c.Mailbox)
				}
				for _, m := range s.take() {
					to = append(to, m.to)
				}
				if !slices.Equal(to, st.forwarded) || !slices.Equal(stored, st.stored) {
					t.Errorf("step %d: forwarded to %q and stored in %q, want %q and %q\n%s", i, to, stored, st.forwarded, st.stored, f.log.String())
				}
				if n := strings.Count(f.log.String(), `msg="redirect already sent; message kept"`); n != st.skipped {
					t.Errorf("step %d: %d redirects found done, want %d\n%s", i, n, st.skipped, f.log.String())
				}
				if st.recordErr != strings.Contains(f.log.String(), `msg="redirect sent but not recorded; a retry of this delivery forwards it again"`) {
					t.Errorf("step %d: log, want a record failed %v:\n%s", i, st.recordErr, f.log.String())
				}
			}
		})
	}
}

// TestTraceLen: the trace fields at the top of a header, folded or not,
// written in any case, end at the first field that is none of them, a
// Resent- block included.
func TestTraceLen(t *testing.T) {
	t.Parallel()
	const msg = "Subject: hi\r\nReceived: from below\r\n\r\nHello.\r\n"
	for _, tc := range []struct{ trace, rest string }{
		{"", msg},
		{"Return-Path: <a@example.net>\r\n", msg},
		{"received: from a\r\n\tby b\r\n  ; Fri, 27 Nov 2026 10:00:00 +0000\r\nReceived : from c\r\n", msg},
		{"Delivered-To: a@example.org\r\nX-Original-To: b@example.org\r\nX-Sieve-Redirected-From: c@example.org\r\n" +
			"DKIM-Signature: v=1;\r\n b=x\r\nARC-Seal: i=1\r\nARC-Message-Signature: i=1\r\nARC-Authentication-Results: i=1\r\n" +
			"Authentication-Results: mx; spf=pass\r\nReceived-SPF: pass\r\n", msg},
		{"Received: from a\r\n", "Resent-Date: Fri, 27 Nov 2026 10:00:00 +0000\r\nReceived: from b\r\n" + msg},
		{"Received: from a\r\n", "X-Received: from b\r\n" + msg},
		{"Received: from a\r\n", "Received from b\r\n" + msg},
		{"Received: from a\r\n", "\r\nReceived: from b\r\n"},
		{"Received: from a\r\n", "Received: from b"},
	} {
		if got := traceLen([]byte(tc.trace + tc.rest)); got != len(tc.trace) {
			t.Errorf("traceLen(%q) = %d, want %d", tc.trace+tc.rest, got, len(tc.trace))
		}
	}
}

// TestRedirectRecordUnread: the records of all the addresses are read
// before the first forward, so that a store that fails the read of the
// second address's record (and the write of the first's) fails the
// delivery with nothing forwarded, rather than after the first forward:
// the sender's retry would forward that one again.
func TestRedirectRecordUnread(t *testing.T) {
	t.Parallel()
	const msg = "From: bob@example.net\r\nTo: alice@example.org\r\nSubject: hi\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\nMessage-ID: <m1@example.net>\r\n\r\nHello.\r\n"
	f, s, _ := newVacationFixture(t)
	f.d.Redirect.DuplicatePeriod = 12 * time.Hour
	fs := &flakyStore{Store: f.d.Store}
	f.d.Store = fs
	f.d.Now = func() time.Time { return time.Date(2026, 11, 27, 10, 0, 5, 0, time.UTC) } // the Date's, for the record
	f.activate(`redirect "carol@example.net"; redirect "dave@example.net";`)
	env := Envelope{From: "bob@example.net", To: "alice@example.org"}

	fs.failRead.Store(true)
	fs.readsOK.Store(1)
	fs.failRecord.Store(true)
	if _, err := f.d.DeliverAccount(t.Context(), f.acct, f.spool(msg), env); err == nil {
		t.Fatalf("delivery with a failing store: no error\n%s", f.log.String())
	}
	var to []string
	for _, m := range s.take() {
		to = append(to, m.to)
	}
	if len(to) != 0 {
		t.Errorf("forwarded to %q before the delivery failed", to)
	}

	// The sender retries, the store back.
	fs.failRead.Store(false)
	fs.failRecord.Store(false)
	got, err := f.d.DeliverAccount(t.Context(), f.acct, f.spool(msg), env)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range s.take() {
		to = append(to, m.to)
	}
	if want := []string{"carol@example.net", "dave@example.net"}; !slices.Equal(to, want) || len(got.Copies) != 0 {
		t.Errorf("over both tries forwarded to %q and stored %d copies, want %q and none\n%s", to, len(got.Copies), want, f.log.String())
	}
}

// TestRedirectKeptInKeepTo: on the fetch client's path, a message found
// forwarded is kept where that path keeps mail, not in INBOX, as after a
// failed forward.
func TestRedirectKeptInKeepTo(t *testing.T) {
	t.Parallel()
	const msg = "From: bob@example.net\r\nTo: alice@example.org\r\nSubject: hi\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\n\r\nHello.\r\n"
	f, s, _ := newVacationFixture(t)
	f.d.Redirect.DuplicatePeriod = 12 * time.Hour
	f.d.Now = func() time.Time { return time.Date(2026, 11, 27, 10, 0, 5, 0, time.UTC) }
	f.activate(`redirect "carol@example.net";`)
	sess, err := f.d.Store.Open(t.Context(), f.acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if _, err := sess.CreateMailbox(t.Context(), "Fetched", ""); err != nil {
		t.Fatal(err)
	}
	env := Envelope{From: "bob@example.net", To: "alice@example.org"}
	for i, want := range [][]string{nil, {"Fetched"}} {
		got, err := f.d.DeliverSession(t.Context(), sess, f.acct.Name, "Fetched", f.spool(msg), env)
		if err != nil {
			t.Fatal(err)
		}
		var stored []string
		for _, c := range got.Copies {
			stored = append(stored, c.Mailbox)
		}
		if sent := len(s.take()); sent != 1-i || !slices.Equal(stored, want) {
			t.Errorf("delivery %d: forwarded %d times and stored in %q, want %d and %q\n%s", i, sent, stored, 1-i, want, f.log.String())
		}
	}
}
