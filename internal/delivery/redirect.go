package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
// is kept instead, which ends any loop of forwards.
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
	failed := false
	for _, r := range redirects {
		var err error
		switch {
		case loop:
			err = fmt.Errorf("the message was forwarded by %s before: a loop", account)
		case hops >= maxRedirectHops:
			err = fmt.Errorf("the message was forwarded %d times already", hops)
		default:
			err = d.forward(ctx, account, from, r.Address, msg)
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
	n := 0
	for {
		rest := header[n:]
		if len(rest) < len("Return-Path:") || !strings.EqualFold(string(rest[:len("Return-Path:")]), "Return-Path:") {
			return n
		}
		for {
			i := bytes.Index(header[n:], []byte("\r\n"))
			if i < 0 {
				return n
			}
			n += i + 2
			if n >= len(header) || (header[n] != ' ' && header[n] != '\t') {
				break
			}
		}
	}
}
