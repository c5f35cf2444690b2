package delivery

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

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
