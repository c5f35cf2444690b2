// Package delivery puts arriving messages into the store: it spools and
// parses each message once, finds the recipient's account and appends to
// INBOX with the quota checked atomically by the store. LMTP,
// `buzon deliver`, IMAP APPEND and the fetch client all come through here.
//
// It imports no protocol package; protocols map its errors to their
// replies (see Classify).
package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

// ErrUnknownRecipient means no account receives mail for the address.
var ErrUnknownRecipient = errors.New("no such recipient")

// Deliverer delivers spooled messages to accounts' INBOXes.
type Deliverer struct {
	Store  store.Store
	Logger *slog.Logger
	// Now gives the internal date of delivered messages; tests replace it.
	Now func() time.Time
	// Observe, if set, hears every delivery attempt's reply code (see
	// Classify, and DeliverAccountAs for a protocol that answers
	// otherwise) and size (for metrics).
	Observe func(code int, size int64)
}

// Recipient is the account an address reaches, as Lookup found it.
type Recipient struct {
	Account store.Account
	// Detail is the +detail Lookup took off the address to find the
	// account: "" when the address names an account or alias whole.
	Detail string
}

// CopyKey names the copy of a message this recipient gets: one per account
// and detail. So an address named twice, or an account's address and its
// alias's, are one recipient and get one copy, as Dovecot gives an MTA
// whose aliases expand to one address twice; a +detail address,
// alice+news@ or info+news@ for the alias info@, is a recipient of its
// own, whose owner may want its mail apart. Account IDs are never reused,
// so a key remembered across an account's deletion names no other.
func (r Recipient) CopyKey() string {
	return strconv.FormatInt(r.Account.ID, 10) + "+" + r.Detail
}

// Lookup finds the account that receives mail for an address: the account
// or alias of that name (store.Store.LookupAddress), else the account or
// alias named by the address without a "+detail" suffix on the local part
// (alice+lists@example.org reaches alice@example.org, and info+x@ reaches
// the account of the alias info@). An address that is itself an account
// or alias is never taken apart, so alice+lists@ may be an alias of its
// own. Case aside, the address is taken as written: nothing around it is
// trimmed, so that a quoted local part such as "<alice" or " alice"
// reaches no one.
func (d *Deliverer) Lookup(ctx context.Context, address string) (Recipient, error) {
	name := store.CanonicalAccountName(address)
	if name != strings.ToLower(address) {
		return Recipient{}, fmt.Errorf("%w: %s", ErrUnknownRecipient, address)
	}
	var r Recipient
	var err error
	r.Account, err = d.Store.LookupAddress(ctx, name)
	if errors.Is(err, store.ErrNoAccount) {
		local, domain, ok := strings.Cut(name, "@")
		if base, detail, plus := strings.Cut(local, "+"); ok && plus && base != "" {
			r.Account, err = d.Store.LookupAddress(ctx, base+"@"+domain)
			r.Detail = detail
		}
	}
	if errors.Is(err, store.ErrNoAccount) {
		return Recipient{}, fmt.Errorf("%w: %s", ErrUnknownRecipient, address)
	}
	if err != nil {
		return Recipient{}, err
	}
	return r, nil
}

// Deliver appends a spooled message to the INBOX of the account behind
// address. When it returns nil the message is durable.
func (d *Deliverer) Deliver(ctx context.Context, address string, msg *Spooled) (store.AppendResult, error) {
	r, err := d.Lookup(ctx, address)
	if err != nil {
		d.observe(classifyCode(err), msg)
		return store.AppendResult{}, err
	}
	return d.DeliverAccount(ctx, r.Account, msg)
}

// DeliverAccount is Deliver to an account found by Lookup, as LMTP does
// at RCPT: the lookup is not repeated.
func (d *Deliverer) DeliverAccount(ctx context.Context, acct store.Account, msg *Spooled) (store.AppendResult, error) {
	return d.DeliverAccountAs(ctx, acct, msg, classifyCode)
}

// DeliverAccountAs is DeliverAccount for a protocol that answers some
// outcomes with another code than Classify's, as SMTP answers a full
// mailbox 452 (temporary) where LMTP answers 552: code gives the reply
// code the client is sent for an outcome, and Observe hears it, so that
// the metrics count the replies as they were sent.
func (d *Deliverer) DeliverAccountAs(ctx context.Context, acct store.Account, msg *Spooled, code func(error) int) (store.AppendResult, error) {
	res, err := d.DeliverTo(ctx, acct.ID, "INBOX", msg, store.Flags{})
	if errors.Is(err, store.ErrNoAccount) {
		// Deleted since the lookup: the address no longer exists.
		err = fmt.Errorf("%w: %s: %w", ErrUnknownRecipient, acct.Name, err)
	}
	d.observe(code(err), msg)
	return res, err
}

func (d *Deliverer) observe(code int, msg *Spooled) {
	if d.Observe != nil {
		d.Observe(code, msg.Size())
	}
}

// classifyCode is the reply code Classify gives err.
func classifyCode(err error) int { return Classify(err).Code }

// DeliverTo appends a spooled message to a named mailbox of an account.
func (d *Deliverer) DeliverTo(ctx context.Context, accountID int64, mailbox string, msg *Spooled, flags store.Flags) (store.AppendResult, error) {
	sess, err := d.Store.Open(ctx, accountID)
	if err != nil {
		return store.AppendResult{}, fmt.Errorf("deliver: open account %d: %w", accountID, err)
	}
	defer sess.Close()
	mb, err := sess.Mailbox(ctx, mailbox)
	if err != nil {
		return store.AppendResult{}, fmt.Errorf("deliver: mailbox %s: %w", mailbox, err)
	}
	res, err := sess.Append(ctx, mb.ID, msg.NewMessage(flags, d.now()))
	if err != nil {
		return store.AppendResult{}, fmt.Errorf("deliver to account %d: %w", accountID, err)
	}
	d.logger().Info("delivered", "account", accountID, "mailbox", mailbox, "uid", res.UID, "size", msg.Size())
	return res, nil
}

// Append is the IMAP APPEND path: spool the literal, then append it to the
// session's mailbox.
func Append(ctx context.Context, sp *Spooler, sess store.Session, mailboxID int64, r io.Reader, flags store.Flags, date time.Time) (store.AppendResult, error) {
	msg, err := sp.Spool(r)
	if err != nil {
		return store.AppendResult{}, err
	}
	defer msg.Close()
	return sess.Append(ctx, mailboxID, msg.NewMessage(flags, date))
}

func (d *Deliverer) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Deliverer) logger() *slog.Logger {
	if d.Logger != nil {
		return d.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Outcome classifies a delivery error for protocols that answer with a
// status: whether it is permanent and which RFC 3463 status fits.
type Outcome struct {
	// Code is the basic reply code (RFC 5321 4.2): 250, 451, 452, 550, 552.
	// 4xx are temporary: the sender keeps the message and retries.
	Code int
	// Enhanced is the RFC 3463 status, e.g. [5 1 1].
	Enhanced [3]int
	// Text is a short human explanation.
	Text string
}

// Classify maps a delivery error to an Outcome. nil is success.
func Classify(err error) Outcome {
	switch {
	case err == nil:
		return Outcome{250, [3]int{2, 0, 0}, "delivered"}
	case errors.Is(err, ErrUnknownRecipient):
		return Outcome{550, [3]int{5, 1, 1}, "no such user"}
	case errors.Is(err, store.ErrOverQuota):
		return Outcome{552, [3]int{5, 2, 2}, "mailbox full"}
	case errors.Is(err, ErrTooLarge):
		return Outcome{552, [3]int{5, 3, 4}, "message too large"}
	case errors.Is(err, store.ErrStorageFull), errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return Outcome{452, [3]int{4, 3, 1}, "insufficient system storage; try again later"}
	}
	return Outcome{451, [3]int{4, 3, 0}, "temporary storage failure; try again later"}
}
