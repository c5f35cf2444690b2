// Package delivery puts arriving messages into the store: it spools and
// parses each message once, finds the recipient's account, runs the
// account's active Sieve script (RFC 5228), if it has one, and appends
// to INBOX, or where the script says, with the quota checked atomically
// by the store; a delivery that takes the account's use across a
// warning level of its quota puts a notice into its INBOX; a script's
// vacation reply, when one is due, goes out through the Sender once the
// message is stored (vacation.go), and its redirects before it is, a
// redirect that fails keeping it (redirect.go). LMTP, SMTP,
// `buzon deliver` and the fetch client come through here; so does IMAP
// APPEND (Append), which runs no script and warns of nothing: it is the
// user's own doing, and the client hears of a full mailbox in its answer.
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

	"github.com/buzon-mail/buzon/internal/sieve"
	"github.com/buzon-mail/buzon/internal/store"
)

// ErrUnknownRecipient means no account receives mail for the address.
var ErrUnknownRecipient = errors.New("no such recipient")

// Deliverer delivers spooled messages to accounts, as their Sieve
// scripts decide. It is safe for concurrent use.
type Deliverer struct {
	Store  store.Store
	Logger *slog.Logger
	// QuietDelivered leaves out the line logged for each copy stored
	// ("delivered"), for a caller that logs each message itself (the
	// fetch client, whose line says where the message came from). What
	// goes wrong, Sieve discards and quota notices are logged still.
	QuietDelivered bool
	// Now gives the internal date of delivered messages; tests replace it.
	Now func() time.Time
	// Observe, if set, hears every delivery attempt's reply code (see
	// Classify, and DeliverAccountAs for a protocol that answers
	// otherwise) and size (for metrics).
	Observe func(code int, size int64)

	// QuotaWarnings are the levels, in percent of an account's quota, at
	// which it is warned: a delivery that takes the account's size or
	// number of messages to or past one of them, from below, puts a
	// notice into its INBOX naming the highest (see quotawarn.go). None:
	// no notices.
	QuotaWarnings []int
	// Hostname names the server in the notices' From and Message-ID.
	// Default: "localhost".
	Hostname string
	// Warned, if set, hears each quota notice stored, with its level (for
	// metrics).
	Warned func(level int)

	// Sender, if set, sends the replies of Sieve vacation (RFC 5230)
	// and the messages of redirect (RFC 5228 4.2) through the relay,
	// which lets scripts use them; nil refuses them (see vacation.go
	// and redirect.go).
	Sender Sender
	// Vacation bounds the replies: their periods, the time to send one,
	// how many go at once.
	Vacation VacationConfig
	// Redirect says how redirect forwards.
	Redirect RedirectConfig
	// Replied, if set, hears the outcome of each vacation action (for
	// metrics): "sent", "failed", "dropped", "skipped" (not due) or
	// "error" (the store).
	Replied func(outcome string)

	// scripts are the Sieve scripts compiled so far.
	scripts scriptCache
	// warnGates keep deliveries to one account running at once from
	// sending a notice each for one crossing.
	warnGates warnGates
	// replies are the vacation replies being sent.
	replies replies
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

// Delivered tells what a delivery stored. The servers and the fetch
// client need only the error; this is for a caller that reports where a
// message went, and for tests, which with deliveries running at once
// cannot tell from the store which copies a given delivery made (UIDs
// included).
type Delivered struct {
	// Script is the name of the account's active Sieve script, which
	// decided; "" when the account has none.
	Script string
	// Copies are the copies stored, in the order the script asked for
	// them: one in INBOX without a script, none when the script
	// discarded the message.
	Copies []Copy
}

// Copy is one stored copy of a delivered message.
type Copy struct {
	Mailbox string
	store.AppendResult
}

// Deliver delivers a spooled message to the account behind address, as
// DeliverAccount does, with no envelope sender. When it returns nil the
// message is durable.
func (d *Deliverer) Deliver(ctx context.Context, address string, msg *Spooled) (Delivered, error) {
	to, err := d.Lookup(ctx, address)
	if err != nil {
		d.observe(classifyCode(err), msg)
		return Delivered{}, err
	}
	return d.DeliverAccount(ctx, to.Account, msg, Envelope{To: address})
}

// DeliverAccount delivers a spooled message to an account found by Lookup
// (as LMTP does at RCPT: the lookup is not repeated): into INBOX, or
// where the account's active Sieve script says (see DeliverSession). When
// it returns nil the message is durable.
func (d *Deliverer) DeliverAccount(ctx context.Context, acct store.Account, msg *Spooled, env Envelope) (Delivered, error) {
	return d.DeliverAccountAs(ctx, acct, msg, env, classifyCode)
}

// DeliverAccountAs is DeliverAccount for a protocol that answers some
// outcomes with another code than Classify's, as SMTP answers a full
// mailbox 452 (temporary) where LMTP answers 552: code gives the reply
// code the client is sent for an outcome, and Observe hears it, so that
// the metrics count the replies as they were sent.
func (d *Deliverer) DeliverAccountAs(ctx context.Context, acct store.Account, msg *Spooled, env Envelope, code func(error) int) (Delivered, error) {
	res, err := d.deliverAccount(ctx, acct, msg, env)
	if errors.Is(err, store.ErrNoAccount) {
		// Deleted since the lookup: the address no longer exists.
		err = fmt.Errorf("%w: %s: %w", ErrUnknownRecipient, acct.Name, err)
	}
	d.observe(code(err), msg)
	return res, err
}

func (d *Deliverer) deliverAccount(ctx context.Context, acct store.Account, msg *Spooled, env Envelope) (Delivered, error) {
	began := time.Now()
	sess, err := d.Store.Open(ctx, acct.ID)
	if err != nil {
		return Delivered{}, fmt.Errorf("deliver: open account %s: %w", acct.Name, err)
	}
	defer sess.Close()
	// Open may already know which script is active (began is before it).
	// The account as found says whether it has a quota to warn of.
	return d.deliverSession(ctx, sess, began, acct.Name, acct.Quota != store.Quota{}, "INBOX", msg, env)
}

// DeliverSession delivers a spooled message through an open session of
// the account named account, as its active Sieve script decides (see
// decide and targets), with keepTo where a keep goes (INBOX but for the
// fetch client, whose configuration may name another mailbox). Each copy
// counts against the quota, and one that takes the account's use across
// a level of QuotaWarnings puts a notice into INBOX.
//
// When it returns an error, nothing was stored, so that the sender's
// retry stores no duplicate. Once a copy is stored, a later copy that
// fails (over quota, say) is logged and left out, and the delivery
// succeeds: the message is in the account, and failing it would have the
// sender deliver the stored copies again.
func (d *Deliverer) DeliverSession(ctx context.Context, sess store.Session, account, keepTo string, msg *Spooled, env Envelope) (Delivered, error) {
	return d.deliverSession(ctx, sess, time.Now(), account, true, keepTo, msg, env)
}

// deliverSession is DeliverSession with the time the delivery began, for
// the store to tell whether what the session read at Open is fresh enough
// (store.Session.ActiveSieveScriptInfo), and whether the account may have
// a quota (false when the caller knows it has none, which spares the
// reads of its use).
func (d *Deliverer) deliverSession(ctx context.Context, sess store.Session, began time.Time, account string, limited bool, keepTo string, msg *Spooled, env Envelope) (Delivered, error) {
	dec, err := d.decide(ctx, sess, began, account, msg, env)
	if err != nil {
		return Delivered{}, err
	}
	out := Delivered{Script: dec.script}
	vacation := vacationAction(&dec)
	redirects := redirectActions(&dec)
	if len(dec.actions) == 1 && dec.actions[0].Kind == sieve.Discard && len(redirects) == 0 {
		d.logger().Info("discarded by the sieve script", "account", account, "script", dec.script, "from", env.From, "size", msg.Size())
		if vacation != nil {
			d.vacation(ctx, sess, account, dec.script, msg, env, vacation)
		}
		return out, nil
	}
	targets, err := d.targets(ctx, sess, account, keepTo, dec)
	if err != nil {
		return out, err
	}
	if len(redirects) > 0 {
		// Forwarded before anything is stored: a redirect that fails
		// keeps the message (RFC 5228 2.10.6), in one more target.
		if targets, err = d.redirect(ctx, sess, account, keepTo, dec.script, msg, env, redirects, targets); err != nil {
			return out, err
		}
	}
	w := d.watchQuota(ctx, sess, account, limited)
	defer d.unwatchQuota(w)
	date := d.now()
	for _, t := range targets {
		res, err := sess.Append(ctx, t.mailbox.ID, msg.NewMessage(t.flags, date))
		if err != nil && len(out.Copies) == 0 {
			return out, fmt.Errorf("deliver to %s: mailbox %s: %w", account, t.mailbox.Name, err)
		}
		if err != nil {
			d.logger().Warn("copy not stored; the message is in the mailboxes before it", "account", account, "script", dec.script,
				"mailbox", t.mailbox.Name, "stored in", out.Copies[0].Mailbox, "err", err)
			continue
		}
		out.Copies = append(out.Copies, Copy{t.mailbox.Name, res})
		if d.QuietDelivered {
			continue
		}
		d.logger().Info("delivered", "account", account, "mailbox", t.mailbox.Name, "uid", res.UID, "size", msg.Size(), "script", dec.script)
	}
	d.warnQuota(ctx, sess, account, w)
	if vacation != nil {
		// Once the message is stored: a reply never answers a message
		// the sender will deliver again.
		d.vacation(ctx, sess, account, dec.script, msg, env, vacation)
	}
	return out, nil
}

func (d *Deliverer) observe(code int, msg *Spooled) {
	if d.Observe != nil {
		d.Observe(code, msg.Size())
	}
}

// classifyCode is the reply code Classify gives err.
func classifyCode(err error) int { return Classify(err).Code }

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
