package delivery

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/buzon-mail/buzon/internal/bytesize"
	"github.com/buzon-mail/buzon/internal/store"
)

// Quota warnings. A delivery that takes an account's use across one of the
// Deliverer's QuotaWarnings levels, by size or by number of messages,
// puts a short notice into the account's INBOX, so that the owner hears
// the mailbox is filling up before senders hear it is full.
//
// A crossing is told from the use read before the delivery's copies are
// stored and after, with the notice counted (its size and one message):
// below a level before and at or above it once the notice is in, so that
// the notice names the level it lands on and never itself takes the
// account past a level no one warns of. The store keeps no record of
// notices sent, so a mailbox that sits above a level gets no further
// notice for it, and one that falls below it (mail deleted) and rises
// again gets one again. Deliveries to one account running at once in
// this process would each see the same crossing; the account's warnGate
// lets the first of them send the notice and the others, whose "before"
// predates it, stay quiet, without making them wait for one another (a
// queue of deliveries to one account shares the embedded store's group
// commit). Deliveries in other processes (`buzon deliver`, another node
// on PostgreSQL) are not seen: two of them crossing a level at the same
// instant may send a notice each, a rare duplicate rather than a missed
// warning.
//
// The notice goes straight to INBOX, past the account's Sieve script: it
// is the server telling the owner about the account, and a filter written
// for mail from others (bounces to a folder, say) must not file away the
// one warning before mail starts being refused. It counts against the
// quota like any message, and is skipped when it does not fit; it is
// stored after the delivery's copies and whatever becomes of it the
// delivery succeeds. It is appended directly, not delivered, so it warns
// of nothing itself.

// quotaWatch is one delivery's view of its account's quota: the use before
// its copies were stored, and where its account's gate stood then.
type quotaWatch struct {
	account int64
	gate    *warnGate
	epoch   uint64 // gate's notices sent when before was read
	before  store.QuotaUsage
}

// watchQuota reads the account's use before a delivery stores its copies,
// when there are levels to warn at and the account may have a quota
// (limited: false when it is known to have none, which spares the read).
// It returns nil when there is nothing to watch; unwatchQuota ends a
// watch.
func (d *Deliverer) watchQuota(ctx context.Context, sess store.Session, account string, limited bool) *quotaWatch {
	if len(d.QuotaWarnings) == 0 || !limited {
		return nil
	}
	// The epoch is taken before the read: a notice sent after it may
	// have been sent for a use this read did not see.
	gate, epoch := d.warnGates.enter(sess.AccountID())
	before, err := sess.QuotaUsage(ctx)
	if err != nil || before.Quota == (store.Quota{}) {
		d.warnGates.leave(sess.AccountID(), gate)
		if err != nil {
			d.logger().Warn("quota warning: cannot read the quota; no warning for this delivery", "account", account, "err", err)
		}
		return nil
	}
	return &quotaWatch{account: sess.AccountID(), gate: gate, epoch: epoch, before: before}
}

// unwatchQuota ends a watch; nil is none.
func (d *Deliverer) unwatchQuota(w *quotaWatch) {
	if w != nil {
		d.warnGates.leave(w.account, w.gate)
	}
}

// warnQuota puts a notice into the account's INBOX when the delivery
// watched by w, with the notice, takes its use across a level (see
// crossed), naming the highest. It never fails the delivery: whatever goes wrong is logged.
func (d *Deliverer) warnQuota(ctx context.Context, sess store.Session, account string, w *quotaWatch) {
	if w == nil {
		return
	}
	after, err := sess.QuotaUsage(ctx)
	if err != nil {
		d.logger().Warn("quota warning: cannot read the quota after the delivery; no warning", "account", account, "err", err)
		return
	}
	// The notice counts too: the levels are those the use reaches once it
	// is stored, so that it names the level it lands on rather than leave
	// the account past one it never warns of.
	date := d.now()
	raw, landed := d.quotaNotice(account, after, date)
	level := d.warnGates.claim(w.gate, w.epoch, crossed(d.QuotaWarnings, w.before, landed))
	if level == 0 {
		return
	}
	log := d.logger().With("account", account, "quota_level", level, // not "level", the record's own
		"bytes", landed.Bytes, "max_bytes", landed.MaxBytes,
		"messages", landed.Messages, "max_messages", landed.MaxMessages)
	notice, err := (&Spooler{MemoryLimit: maxNoticeSize}).Spool(bytes.NewReader(raw))
	if err != nil {
		log.Error("quota warning: the notice does not parse", "err", err) // a bug
		return
	}
	defer notice.Close()
	inbox, err := sess.Mailbox(ctx, "INBOX")
	if err != nil {
		log.Warn("quota warning not stored", "err", err)
		return
	}
	res, err := sess.Append(ctx, inbox.ID, notice.NewMessage(store.Flags{}, date))
	switch {
	case errors.Is(err, store.ErrOverQuota):
		log.Info("quota warning not stored: it does not fit in the quota", "size", notice.Size())
		return
	case err != nil:
		log.Warn("quota warning not stored", "err", err)
		return
	}
	log.Info("quota warning stored", "uid", res.UID, "size", notice.Size())
	if d.Warned != nil {
		d.Warned(level)
	}
}

// maxNoticeSize is more than a notice ever is: it stays in memory.
const maxNoticeSize = 16 << 10

// quotaNotice returns the notice for an account whose use after the
// delivery is after, and the use once the notice is stored too (one
// message more, and its size), which the notice itself tells.
//
// The size the notice tells is part of its text: it is found by writing
// the notice again with the size of the last one until the size holds
// (the second time, but where a number gains a digit or a unit). The
// size assumed only grows, so this ends; where the notice came out
// shorter than the size assumed, the use returned is the notice's real
// one, a few bytes below what it tells, so that the levels it is
// checked against are those it really reaches, and its percentages are
// never below them.
func (d *Deliverer) quotaNotice(account string, after store.QuotaUsage, date time.Time) ([]byte, store.QuotaUsage) {
	host := d.hostname()
	id := "<quota." + rand.Text() + "@" + host + ">"
	with := func(size int64) store.QuotaUsage {
		u := after
		u.Bytes += size
		u.Messages++
		return u
	}
	var raw []byte
	for size := int64(0); ; {
		raw = quotaNotice(host, account, id, with(size), date)
		if int64(len(raw)) <= size {
			break
		}
		size = int64(len(raw))
	}
	return raw, with(int64(len(raw)))
}

// crossed returns the levels, in ascending order, that the account's use
// reached between before and after (at or above the level after, below
// it before), by size or by number of messages. Each reading is measured
// against its own quota: one lowered in between counts as the use rising.
func crossed(levels []int, before, after store.QuotaUsage) []int {
	var out []int
	for _, l := range levels {
		if reached(after.Bytes, after.MaxBytes, l) && !reached(before.Bytes, before.MaxBytes, l) ||
			reached(after.Messages, after.MaxMessages, l) && !reached(before.Messages, before.MaxMessages, l) {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// reached reports whether use is at least level percent of limit; never
// for no limit (0).
func reached(use, limit int64, level int) bool {
	return limit > 0 && percent(use, limit) >= int64(level)
}

// percent is use as a whole percentage of limit (which is above 0),
// rounded down, computed exactly however large the two are.
func percent(use, limit int64) int64 {
	hi, lo := bits.Mul64(uint64(max(use, 0)), 100)
	if hi >= uint64(limit) {
		return math.MaxInt64 // the quotient would not fit; no real use is that far over
	}
	q, _ := bits.Div64(hi, lo, uint64(limit))
	return int64(min(q, math.MaxInt64))
}

// warnGates keeps a warnGate for each account with deliveries watching
// its quota in this process. The zero value is ready to use.
type warnGates struct {
	mu        sync.Mutex
	byAccount map[int64]*warnGate // guarded by mu
}

// warnGate is one account's record of the notices sent while deliveries
// to it were running, which goes when the last of them ends.
type warnGate struct {
	users int            // deliveries watching; guarded by warnGates.mu
	epoch uint64         // notices sent; guarded by warnGates.mu
	sent  map[int]uint64 // level -> the epoch its last notice began; guarded by warnGates.mu
}

// enter returns the gate of the account, and its epoch now.
func (g *warnGates) enter(accountID int64) (*warnGate, uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.byAccount == nil {
		g.byAccount = map[int64]*warnGate{}
	}
	gate := g.byAccount[accountID]
	if gate == nil {
		gate = &warnGate{sent: map[int]uint64{}}
		g.byAccount[accountID] = gate
	}
	gate.users++
	return gate, gate.epoch
}

// leave ends a delivery's use of its account's gate.
func (g *warnGates) leave(accountID int64, gate *warnGate) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if gate.users--; gate.users == 0 {
		delete(g.byAccount, accountID)
	}
}

// claim returns the highest of the levels a delivery crossed for which
// no other delivery has sent a notice since the delivery's epoch (when
// it read its "before"), or 0 if there is none; the levels are marked
// sent. Another delivery's notice since then may be for the very
// crossing this one saw, its before having been read before the other's
// copies were stored.
func (g *warnGates) claim(gate *warnGate, epoch uint64, levels []int) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	top := 0
	for _, l := range levels {
		if s, ok := gate.sent[l]; ok && s >= epoch {
			continue
		}
		top = l
	}
	if top == 0 {
		return 0
	}
	for _, l := range levels {
		gate.sent[l] = gate.epoch
	}
	gate.epoch++
	return top
}

// quotaNotice is the message that tells account its mailbox is filling
// up, its use u: plain text, short, in words a person who never heard of
// quotas understands.
func quotaNotice(hostname, account, messageID string, u store.QuotaUsage, date time.Time) []byte {
	full := int64(0)
	var lines []string
	if u.MaxBytes > 0 {
		p := percent(u.Bytes, u.MaxBytes)
		full = max(full, p)
		lines = append(lines, fmt.Sprintf("  Size:      %s of %s (%d%%)", bytesize.Format(u.Bytes), bytesize.Format(u.MaxBytes), p))
	}
	if u.MaxMessages > 0 {
		p := percent(u.Messages, u.MaxMessages)
		full = max(full, p)
		lines = append(lines, fmt.Sprintf("  Messages:  %s of %s (%d%%)", thousands(u.Messages), thousands(u.MaxMessages), p))
	}
	var b strings.Builder
	field := func(name, value string) { b.WriteString(name + ": " + value + "\r\n") }
	field("From", "Mail server <postmaster@"+hostname+">")
	if to := noticeTo(account); to != "" {
		field("To", to)
	}
	field("Subject", fmt.Sprintf("Your mailbox is %d%% full", full))
	field("Date", date.Format(time.RFC1123Z))
	field("Message-ID", messageID)
	// RFC 3834 5: made by a program; vacation replies and other
	// responders leave it alone.
	field("Auto-Submitted", "auto-generated")
	field("MIME-Version", "1.0")
	// RFC 2046 4.1.2: the plainest charset that fits. An account name
	// in UTF-8 (RFC 6532, which To carries as it is: RFC 2047 5 has no
	// encoded word in an address) makes the text UTF-8 and 8bit (RFC
	// 2045 2.8: lines stay short, no NUL).
	charset, encoding := "us-ascii", "7bit"
	if !isASCII(account) || !isASCII(hostname) {
		charset, encoding = "utf-8", "8bit"
	}
	field("Content-Type", "text/plain; charset="+charset)
	field("Content-Transfer-Encoding", encoding)
	b.WriteString("\r\n")
	for _, l := range []string{
		"Your mailbox " + account + " is " + strconv.FormatInt(full, 10) + "% full.",
		"",
		strings.Join(lines, "\r\n"),
		"",
		"When it is full, new mail sent to you will be refused: the",
		"sender's mail server will return it to them as undeliverable, or",
		"keep trying for a few days before it does.",
		"",
		"To make room, delete mail you no longer need, the largest first,",
		"and empty your Trash and Junk folders: deleted mail still counts",
		"until it is gone from there.",
		"",
		"This message was sent automatically by the mail server",
		hostname + ".",
	} {
		b.WriteString(l + "\r\n")
	}
	return []byte(b.String())
}

// noticeTo is the notice's To field for account: its address as RFC 5322
// 3.4.1 writes it, the local part quoted where it is no dot-atom (the
// store allows "a,b@" and "a(b@"), or "" when no field can name it (a
// domain that is no dot-atom, such as "exa(mple.org", which the store
// allows too): RFC 5322 3.6 makes To optional, and the notice is no less
// the account's for going without.
func noticeTo(account string) string { return mailboxField("", account) }

// mailboxField writes a mailbox for a header field (RFC 5322 3.4): the
// display name as RFC 2047 encoded words where it is not ASCII (RFC 2047
// 5), the local part quoted where it is no dot-atom; "" when no field can
// name the address, or when what is written would not read back as it.
func mailboxField(name, addr string) string {
	s := (&mail.Address{Name: name, Address: addr}).String()
	if a, err := mail.ParseAddress(s); err != nil || a.Address != addr || strings.ContainsAny(s, "\r\n") {
		return ""
	}
	return s
}

// isASCII reports whether s is all ASCII.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// thousands writes n with commas between groups of three digits.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// hostname is the Deliverer's Hostname, or "localhost".
func (d *Deliverer) hostname() string {
	if d.Hostname != "" {
		return d.Hostname
	}
	return "localhost"
}
