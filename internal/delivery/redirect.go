package delivery

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"
	"time"

	"github.com/buzon-mail/buzon/internal/message"
	"github.com/buzon-mail/buzon/internal/sieve"
	"github.com/buzon-mail/buzon/internal/store"
)

// Sieve redirect (RFC 5228 4.2, :copy of RFC 3894): the message goes on
// to another address through the Sender, synchronously, before the copies
// are stored, so that a redirect that fails keeps the message in INBOX
// (RFC 5228 2.10.6) and the delivery is acknowledged only once the
// message is either forwarded or stored.
//
// A forward the relay took is recorded (store.ReplyTracker.RecordReply),
// and the same message is not forwarded to the same address again within
// RedirectConfig.DuplicatePeriod, as Pigeonhole's duplicate database
// does: the sender's retry of a delivery whose copies failed to store
// after the forward, or the message coming again by another route,
// forwards nothing more. A redirect found recorded is kept as one that
// failed is (RFC 5228 2.10.6), not counted done: nothing can tell for
// sure that two deliveries are one message, nor a retry from a forward
// come back in a loop, and a false match must cost a copy in INBOX that
// should have gone, never the message. A true retry ends forwarded once
// and kept once. The record is made after the relay's reply, not before
// the sending as vacation's is: a forward that failed and was recorded
// would not be made at the retry.

// RedirectedFromField is the field a redirected message gets on top, naming
// the account that forwarded it, as Pigeonhole names it: the next
// delivery's loop check reads it.
const RedirectedFromField = "X-Sieve-Redirected-From"

// maxRedirectHops bounds the forwards a message may have been through
// (its RedirectedFromField fields) for it to be forwarded again: a chain
// of accounts forwarding to each other ends there, even across servers
// that keep the field.
const maxRedirectHops = 4

// RedirectConfig says how redirect forwards.
type RedirectConfig struct {
	// Off refuses redirect scripts though there is a Sender.
	Off bool
	// EnvelopeFrom is the envelope sender of a forwarded message:
	// "account" (the zero value), the account's own address, so that SPF
	// at the next hop checks buzon's domain and bounces come back to the
	// account; or "sender", the original envelope sender (which SPF at
	// the next hop fails for a sender whose domain is not buzon's).
	EnvelopeFrom string
	// Timeout bounds the forwarding of one message, the connection to
	// the relay included; the delivery waits for it. Zero: 30 seconds.
	Timeout time.Duration
	// DuplicatePeriod is how long a message forwarded to an address is
	// not forwarded to it again (see messageIdentity for what makes it
	// the same message); a redirect so skipped keeps the message, as one
	// that failed does. Zero or negative: no check, every delivery
	// forwards (the configuration's default is 12 hours, Pigeonhole's
	// sieve_redirect_duplicate_period).
	DuplicatePeriod time.Duration
}

// redirectActions takes the redirects out of a decision's actions,
// leaving those that store the message, each address once.
func redirectActions(dec *decision) []sieve.Action {
	var out []sieve.Action
	kept := dec.actions[:0:0]
	for _, a := range dec.actions {
		if a.Kind != sieve.Redirect {
			kept = append(kept, a)
			continue
		}
		dup := false
		for i, r := range out {
			if strings.EqualFold(r.Address, a.Address) {
				dup = true
				out[i].Copy = out[i].Copy && a.Copy
			}
		}
		if !dup {
			out = append(out, a)
		}
	}
	dec.actions = kept
	return out
}

// redirect forwards the message to each redirect's address, and returns
// the targets to store the message in: those given, and keepTo when a
// redirect without :copy failed and the script's other actions do not
// store it there already (RFC 5228 2.10.6: the implicit keep). Nothing is
// stored yet, so an error here is the delivery's, with nothing stored.
//
// A message is not forwarded again by an account it names as having
// forwarded it, nor once it has been forwarded maxRedirectHops times: it
// is kept instead, which ends any loop of forwards. A forward the relay
// took is recorded, and one found recorded within the duplicate period
// (see sentForwards) is not made again and keeps the message as a
// failed one does, whether the delivery is a retry, the message come by
// another route, a forward come back through a server that dropped our
// field, or another message taken for it.
func (d *Deliverer) redirect(ctx context.Context, sess store.Session, account, keepTo, script string, msg *Spooled, env Envelope, redirects []sieve.Action, targets []target) ([]target, error) {
	log := d.logger().With("account", account, "script", script)
	header, err := msg.header()
	if err != nil {
		return nil, fmt.Errorf("deliver to %s: %w", account, err)
	}
	me, err := d.Lookup(ctx, account)
	if err != nil {
		return nil, fmt.Errorf("deliver to %s: %w", account, err)
	}
	// Each distinct name is looked up once, and none once the hops are
	// too many, when the message is kept whoever forwarded it: a header
	// of thousands of fields costs a few lookups, not thousands.
	hops, loop := 0, false
	seen := make(map[string]bool)
	for f := range message.Fields(header) {
		if !strings.EqualFold(string(f.Name), RedirectedFromField) {
			continue
		}
		if hops++; hops >= maxRedirectHops {
			break
		}
		name := strings.ToLower(f.Value())
		if seen[name] {
			continue
		}
		seen[name] = true
		if r, err := d.Lookup(ctx, name); err == nil && r.Account.ID == me.Account.ID {
			loop = true
		} else if err != nil && !errors.Is(err, ErrUnknownRecipient) {
			return nil, fmt.Errorf("deliver to %s: %w", account, err)
		}
	}
	from := account
	// RFC 5321 4.5.5: a bounce (the null sender) is forwarded as one,
	// whatever the setting: were it forwarded from the account, a forward
	// to an address that no longer exists would bounce back to the
	// account, be forwarded and bounce again, without end.
	if d.Redirect.EnvelopeFrom == "sender" || env.From == "" {
		from = env.From
	}
	// The record of forwards, when the check is on and the store keeps
	// one (both backends do); without, every delivery forwards.
	var sent *sentForwards
	if period := d.Redirect.DuplicatePeriod; period > 0 && !loop && hops < maxRedirectHops {
		if rt, ok := sess.(store.ReplyTracker); ok {
			id, err := messageIdentity(msg, header, d.now(), period)
			if err != nil {
				return nil, fmt.Errorf("deliver to %s: %w", account, err)
			}
			if id != nil {
				sent = &sentForwards{rt: rt, account: account, id: id, period: period}
			}
		}
	}
	// Every address's record is read before the first forward: a read
	// that failed after a forward went would fail the delivery, and the
	// sender's retry would forward that one again.
	done := make([]bool, len(redirects))
	for i, r := range redirects {
		if done[i], err = sent.recorded(ctx, r.Address, d.now()); err != nil {
			return nil, fmt.Errorf("deliver to %s: %w", account, err)
		}
	}
	failed := false
	for i, r := range redirects {
		var err error
		switch {
		case loop:
			err = fmt.Errorf("the message was forwarded by %s before: a loop", account)
		case hops >= maxRedirectHops:
			err = fmt.Errorf("the message was forwarded %d times already", hops)
		case done[i]:
			log.Info("redirect already sent; message kept", "to", r.Address, "from", env.From, "size", msg.Size(), "copy", r.Copy)
			failed = failed || !r.Copy
			continue
		default:
			err = d.forward(ctx, account, from, r.Address, msg)
			if err == nil {
				// Recorded whether or not the sending server is still
				// there: the forward is done.
				if err := sent.record(context.WithoutCancel(ctx), r.Address, d.now()); err != nil {
					log.Warn("redirect sent but not recorded; a retry of this delivery forwards it again", "to", r.Address, "err", err)
				}
			}
		}
		if err != nil {
			log.Warn("sieve redirect failed; message kept", "to", r.Address, "err", err)
			failed = failed || !r.Copy
			continue
		}
		log.Info("redirected", "to", r.Address, "from", env.From, "envelope from", from, "size", msg.Size(), "copy", r.Copy)
	}
	if !failed {
		return targets, nil
	}
	inbox, err := sess.Mailbox(ctx, keepTo)
	if err != nil {
		return nil, fmt.Errorf("deliver to %s: mailbox %s: %w", account, keepTo, err)
	}
	for _, t := range targets {
		if t.mailbox.ID == inbox.ID {
			return targets, nil
		}
	}
	return append(targets, target{mailbox: inbox}), nil
}

// sentForwards is the record of an account's forwards of one message,
// through the store; a nil one records nothing and finds nothing.
type sentForwards struct {
	rt      store.ReplyTracker
	account string
	id      []byte // messageIdentity
	period  time.Duration
}

// recorded reports whether the message went to the address within the
// period before now.
func (s *sentForwards) recorded(ctx context.Context, to string, now time.Time) (bool, error) {
	if s == nil {
		return false, nil
	}
	return s.rt.ReplyRecorded(ctx, redirectKey(s.account, to, s.id), now, s.period)
}

// record records that the relay took the message for the address.
func (s *sentForwards) record(ctx context.Context, to string, now time.Time) error {
	if s == nil {
		return nil
	}
	return s.rt.RecordReply(ctx, redirectKey(s.account, to, s.id), now, s.period)
}

// redirectKey is the key of the record of a forward of a message (its
// messageIdentity) by an account to an address: a digest apart from
// vacation's, which digest a sender and a handle.
func redirectKey(account, to string, id []byte) string {
	h := sha256.New()
	for _, s := range []string{"redirect", strings.ToLower(account), strings.ToLower(to)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write(id)
	return hex.EncodeToString(h.Sum(nil))
}

// messageIdentity is what makes two deliveries one message for the
// record of forwards: a digest of the message below the trace fields at
// its top (traceLen), the same whether or not it has a Message-ID. A
// retry, or the message come by another route, differs in those fields
// alone, whoever wrote them: the relays before, or the delivery here,
// whose SMTP listener writes a Received of its own at each try. Another
// message differs below them, if only in its Date or Subject, even when
// it reuses a Message-ID (some programs send every message with one).
//
// It is nil, and the forwards are neither looked up nor recorded, for a
// message without a Date that could be its sending's (datePlausible).
// The originator writes the Date once, to the second (RFC 5322 3.6.1): a
// retry or another route carries the same one, and the same words sent
// again (an alert repeated) another. Without one, nothing tells the two
// apart, and the second, taken for the first, would be kept but not
// forwarded, where the person wants each alert forwarded; a retry
// forwarded twice is only a duplicate. The Date decides even with a
// Message-ID: a device that writes one Message-ID, one text and one Date
// sends byte-identical alerts.
func messageIdentity(msg *Spooled, header []byte, now time.Time, period time.Duration) ([]byte, error) {
	if env := msg.Part().Envelope; env == nil || !datePlausible(env.Date, now, period) {
		return nil, nil
	}
	h := sha256.New()
	body := msg.Reader()
	if _, err := io.CopyN(io.Discard, body, int64(traceLen(header))); err != nil {
		return nil, fmt.Errorf("spool: read the message: %w", err)
	}
	if _, err := io.Copy(h, body); err != nil {
		return nil, fmt.Errorf("spool: read the message: %w", err)
	}
	return h.Sum(nil), nil
}

// queueLifetime is how long after its Date a message may still arrive as
// its sender's retry: qmail's queuelifetime, 7 days, the longest of the
// usual MTAs' defaults (Postfix's maximal_queue_lifetime and sendmail's
// Timeout.queuereturn are 5 days, Exim's usual retry rule gives up after
// 4). A message composed offline and sent later carries an older Date
// still, but is sent once.
const queueLifetime = 7 * 24 * time.Hour

// dateAhead is how far ahead of the clock a Date may be and still be its
// sending's: a day covers a sender's clock off by hours, or one writing
// its local time with another zone.
const dateAhead = 24 * time.Hour

// datePlausible reports whether a Date field's value can be when the
// message was sent, for a delivery at now that may find a forward
// recorded up to period before: one that net/mail reads (RFC 5322 3.3),
// at most dateAhead ahead of now and at most queueLifetime and the period
// behind it. Any retry or other route the record finds comes within
// that. Devices without a clock (cameras, recorders, alarm panels) write
// a fixed Date, often the Unix epoch, in every alert: such a Date, like
// none, tells nothing of which sending a message is.
func datePlausible(date string, now time.Time, period time.Duration) bool {
	t, err := mail.ParseDate(date)
	if err != nil {
		return false
	}
	return !t.After(now.Add(dateAhead)) && !t.Before(now.Add(-queueLifetime-period))
}

// forward sends the message, under a field naming the account and
// without the Return-Path its delivery here added, to one address,
// within the redirect timeout.
func (d *Deliverer) forward(ctx context.Context, account, from, to string, msg *Spooled) error {
	timeout := d.Redirect.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	header, err := msg.header()
	if err != nil {
		return err
	}
	// RFC 5321 4.4: the Return-Path final delivery wrote is not sent on;
	// the next final delivery writes its own.
	body := msg.Reader()
	if _, err := io.CopyN(io.Discard, body, int64(returnPathLen(header))); err != nil {
		return err
	}
	trace := RedirectedFromField + ": " + account + "\r\n"
	return d.Sender.Send(ctx, from, to, io.MultiReader(strings.NewReader(trace), body))
}

// returnPathLen is the length of the Return-Path fields at the top of a
// header, folded lines included.
func returnPathLen(header []byte) int {
	return leadingFieldsLen(header, func(name string) bool { return strings.EqualFold(name, "Return-Path") })
}

// traceLen is the length of the trace fields at the top of a header: those
// a relay, a list, a forwarder or the delivery here puts above a message
// in transit (RFC 5321 4.4, RFC 5322 3.6.7), in which a retry of one
// message, or the message come by another route, differs and nothing
// else does. They are known by name, and end at the first field that is
// none of them: a field lower down is the message's. Resent- fields are
// not among them, though they go on top: they are a person's new sending
// of the message (RFC 5322 3.6.6), to be told from the first.
func traceLen(header []byte) int {
	return leadingFieldsLen(header, isTraceField)
}

// isTraceField reports whether a field name is one that traceLen skips:
// Return-Path and Received (RFC 5321 4.4), the Delivered-To and
// X-Original-To of Postfix and qmail, a forward's RedirectedFromField,
// and the signatures and results of checks that each relay, list or
// forwarder adds anew: DKIM-Signature (RFC 6376), ARC-Seal,
// ARC-Message-Signature and ARC-Authentication-Results (RFC 8617),
// Authentication-Results (RFC 8601) and Received-SPF (RFC 7208 9.1).
func isTraceField(name string) bool {
	switch strings.ToLower(name) {
	case "return-path", "received", "delivered-to", "x-original-to", "x-sieve-redirected-from",
		"dkim-signature", "arc-seal", "arc-message-signature", "arc-authentication-results",
		"authentication-results", "received-spf":
		return true
	}
	return false
}

// leadingFieldsLen is the length of the fields at the top of a header
// whose names is reports, folded lines included.
func leadingFieldsLen(header []byte, is func(name string) bool) int {
	n := 0
	for {
		rest := header[n:]
		eol := bytes.Index(rest, []byte("\r\n"))
		if eol < 0 {
			return n
		}
		// RFC 5322 4.5.3: white space may come before the colon.
		colon := bytes.IndexByte(rest[:eol], ':')
		if colon <= 0 || !is(strings.TrimRight(string(rest[:colon]), " \t")) {
			return n
		}
		for {
			n += eol + 2
			if n >= len(header) || (header[n] != ' ' && header[n] != '\t') {
				break
			}
			if eol = bytes.Index(header[n:], []byte("\r\n")); eol < 0 {
				return n
			}
		}
	}
}
