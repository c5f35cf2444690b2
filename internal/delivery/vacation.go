package delivery

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"strings"
	"sync"
	"time"

	"github.com/buzon-mail/buzon/internal/message"
	"github.com/buzon-mail/buzon/internal/sieve"
	"github.com/buzon-mail/buzon/internal/store"
)

// Sieve vacation (RFC 5230, RFC 6131): a script's vacation action asks
// for an automatic reply to the sender. Whether one is due is decided
// here, where the account's addresses and the record of replies sent
// (store.ReplyTracker) are known; the reply is sent through the Sender
// after the message is stored, in the background, best effort: a reply
// that cannot be sent is logged and not retried, and never fails or
// delays the delivery it answers.

// Sender sends mail on through the relay MTA (submission.relay): the
// replies of Sieve vacation and the messages of redirect. cmd/buzon gives
// the Deliverer one when a relay is configured.
type Sender interface {
	// Send sends msg (a whole message, CRLF line ends) from the envelope
	// sender from ("" for the null sender <>) to the recipient to. It
	// returns once the relay took the message or refused it.
	Send(ctx context.Context, from, to string, msg io.Reader) error
}

// VacationConfig bounds the vacation replies a Deliverer sends.
type VacationConfig struct {
	// Off refuses vacation scripts though there is a Sender.
	Off bool
	// MinPeriod, DefaultPeriod and MaxPeriod bound the period of a
	// script's :days or :seconds, and stand for it when the script gives
	// none (RFC 5230 4.1 lets a site set both bounds). Zero values: 1
	// day, 7 days, 90 days.
	MinPeriod, DefaultPeriod, MaxPeriod time.Duration
	// Timeout bounds the sending of one reply, the connection to the
	// relay included. Zero: 30 seconds.
	Timeout time.Duration
	// MaxInFlight bounds the replies being sent at once; a reply due
	// while as many are under way is dropped, with a warning. Zero: 16.
	MaxInFlight int
}

func (c VacationConfig) withDefaults() VacationConfig {
	day := 24 * time.Hour
	if c.MinPeriod == 0 {
		c.MinPeriod = day
	}
	if c.DefaultPeriod == 0 {
		c.DefaultPeriod = 7 * day
	}
	if c.MaxPeriod == 0 {
		c.MaxPeriod = 90 * day
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 16
	}
	return c
}

// period is the period a reply is tracked for: the script's within the
// bounds, or the default.
func (c VacationConfig) period(p time.Duration) time.Duration {
	if p < 0 {
		p = c.DefaultPeriod
	}
	return min(max(p, c.MinPeriod), c.MaxPeriod)
}

// sieveOptions is what the Deliverer's scripts may do.
func (d *Deliverer) sieveOptions() sieve.Options {
	relay := d.Sender != nil
	return sieve.Options{Relay: relay, Vacation: relay && !d.Vacation.Off, Redirect: relay && !d.Redirect.Off}
}

// replies keeps the replies under way, so that Wait can let them finish.
type replies struct {
	once sync.Once
	sem  chan struct{} // a slot per reply under way
	wg   sync.WaitGroup
}

// WaitReplies waits until the vacation replies under way are sent or
// have failed, or ctx ends. A server calls it as it shuts down, and a
// command before it exits, so that a reply found due is not cut off.
func (d *Deliverer) WaitReplies(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		d.replies.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// vacationAction takes the vacation action out of a decision's actions,
// leaving those that store the message.
func vacationAction(dec *decision) *sieve.VacationReply {
	var v *sieve.VacationReply
	kept := dec.actions[:0:0]
	for _, a := range dec.actions {
		if a.Kind == sieve.Vacation {
			v = a.Vacation
			continue
		}
		kept = append(kept, a)
	}
	dec.actions = kept
	return v
}

// vacation sends the reply a script's vacation action asked for, if it
// is due (see replyDue), in the background. It is called once the
// message is stored; it logs what it does, and returns nothing: a reply
// never fails a delivery.
func (d *Deliverer) vacation(ctx context.Context, sess store.Session, account, script string, msg *Spooled, env Envelope, v *sieve.VacationReply) {
	log := d.logger().With("account", account, "script", script, "to", env.From)
	// The slot is taken before replyDue records the reply: a reply
	// recorded and then dropped would leave its sender without one for
	// the whole period.
	r := &d.replies
	r.once.Do(func() { r.sem = make(chan struct{}, d.vacationConfig().MaxInFlight) })
	select {
	case r.sem <- struct{}{}:
	default:
		log.Warn("vacation reply not sent: too many replies under way")
		d.replied("dropped")
		return
	}
	reply, err := d.replyDue(ctx, sess, account, msg, env, v)
	if err != nil {
		<-r.sem
		log.Warn("vacation reply not sent", "err", err)
		d.replied("error")
		return
	}
	if reply == nil {
		<-r.sem
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer func() { <-r.sem }()
		// Not the delivery's context, which ends with its session: the
		// reply goes on after the delivery was acknowledged, bounded by
		// its own timeout.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.vacationConfig().Timeout)
		defer cancel()
		// RFC 5230 5.1 (RFC 3834 3.3): the null reverse path, so that
		// nothing answers the answer.
		if err := d.Sender.Send(ctx, "", env.From, bytes.NewReader(reply)); err != nil {
			log.Warn("vacation reply not sent", "err", err)
			d.replied("failed")
			return
		}
		log.Info("vacation reply sent")
		d.replied("sent")
	}()
}

func (d *Deliverer) vacationConfig() VacationConfig { return d.Vacation.withDefaults() }

func (d *Deliverer) replied(outcome string) {
	if d.Replied != nil {
		d.Replied(outcome)
	}
}

// maxReplyAddresses bounds the header addresses looked up for RFC 5230
// 4.5's check, so that a message naming thousands costs no more.
const maxReplyAddresses = 64

// replyDue decides whether a vacation reply goes to the envelope sender,
// and if so records it and returns it; nil when none is due. RFC 5230
// 4.5 and 4.6, RFC 3834 2: no reply to the null sender, to a mailer
// daemon or list address, to a message an automaton sent (Auto-Submitted
// other than "no", Precedence bulk, list or junk, List-* fields, Outlook's
// X-Auto-Response-Suppress), to the account itself, or to a message that
// names none of the account's addresses (its own, its aliases, their
// +details, :addresses) in To, Cc, Bcc or their Resent- fields; and one
// reply per sender and handle per period (store.ReplyTracker).
func (d *Deliverer) replyDue(ctx context.Context, sess store.Session, account string, msg *Spooled, env Envelope, v *sieve.VacationReply) ([]byte, error) {
	log := d.logger().With("account", account, "to", env.From)
	skip := func(why string) ([]byte, error) {
		log.Info("no vacation reply: " + why)
		d.replied("skipped")
		return nil, nil
	}
	if env.From == "" {
		return skip("the null sender")
	}
	if why := automatedSender(env.From); why != "" {
		return skip(why)
	}
	header, err := msg.header()
	if err != nil {
		return nil, err
	}
	var subject, messageID, references string
	var recipients []string
	for f := range message.Fields(header) {
		name := message.ASCIILower(string(f.Name))
		switch {
		case name == "auto-submitted":
			// RFC 3834 5: a keyword, then parameters and comments.
			kw := strings.TrimSpace(f.Value())
			if i := strings.IndexAny(kw, "(;"); i >= 0 {
				kw = strings.TrimSpace(kw[:i])
			}
			if !strings.EqualFold(kw, "no") {
				return skip("Auto-Submitted: " + f.Value())
			}
		case name == "precedence":
			switch strings.ToLower(f.Value()) {
			case "bulk", "list", "junk":
				return skip("Precedence: " + f.Value())
			}
		case name == "x-auto-response-suppress":
			// Microsoft's: OOF or All asks out-of-office replies not to
			// answer.
			for w := range strings.FieldsFuncSeq(strings.ToLower(f.Value()), func(r rune) bool { return r == ',' || r == ' ' }) {
				if w == "oof" || w == "all" {
					return skip("X-Auto-Response-Suppress: " + f.Value())
				}
			}
		case strings.HasPrefix(name, "list-"):
			// RFC 2369, RFC 2919: a mailing list's message.
			return skip(string(f.Name) + " field")
		case name == "subject" && subject == "":
			subject = message.DecodeHeaderValue(f.SpacedValue())
		case name == "message-id" && messageID == "":
			messageID = f.Value()
		case name == "references" && references == "":
			references = f.SpacedValue()
		case name == "to", name == "cc", name == "bcc", name == "resent-to", name == "resent-cc", name == "resent-bcc":
			for _, a := range message.ParseAddressList(f.Value()) {
				if !a.GroupStart && !a.GroupEnd && len(recipients) < maxReplyAddresses {
					recipients = append(recipients, a.Mailbox+"@"+a.Host)
				}
			}
		}
	}
	me, err := d.Lookup(ctx, account)
	if err != nil {
		return nil, fmt.Errorf("look the account up: %w", err)
	}
	mine := func(addr string) (bool, error) {
		r, err := d.Lookup(ctx, addr)
		if errors.Is(err, ErrUnknownRecipient) {
			return false, nil
		}
		return err == nil && r.Account.ID == me.Account.ID, err
	}
	if ok, err := mine(env.From); err != nil {
		return nil, err
	} else if ok {
		return skip("the account's own address")
	}
	named := false
	for _, rcpt := range recipients {
		for _, a := range v.Addresses {
			if strings.EqualFold(rcpt, a) {
				named = true
			}
		}
		if !named {
			if named, err = mine(rcpt); err != nil {
				return nil, err
			}
		}
		if named {
			break
		}
	}
	if !named {
		return skip("the message is not addressed to the account")
	}
	// The From field is written from the address, never from the
	// script's text, which may come from the message through variables:
	// a value that parses to one address may still hold line breaks and
	// further fields.
	from := mailboxField("", account)
	if v.From != "" {
		// RFC 5230 4.4: the account's own address, as submission holds
		// its users to theirs; any other is not ours to send from.
		addrs := message.ParseAddressList(v.From)
		ok := false
		if len(addrs) == 1 && !addrs[0].GroupStart && !strings.ContainsAny(v.From, "\r\n") {
			addr := addrs[0].Mailbox + "@" + addrs[0].Host
			if ok, err = mine(addr); err != nil {
				return nil, err
			}
			if ok {
				from = mailboxField(message.DecodeHeaderValue(addrs[0].Name), addr)
			}
		}
		if !ok {
			log.Warn("vacation :from is not an address of the account; the account's address used", "from", v.From)
		}
	}
	if from == "" {
		return skip("the account's address cannot be written in a From field")
	}
	to := mailboxField("", env.From)
	if to == "" {
		return skip("the sender's address cannot be written in a To field")
	}

	// RFC 5230 4.2: one reply per sender and handle per period; the
	// record is made before the reply goes, so that deliveries at once
	// send one between them.
	key := sha256.Sum256([]byte(strings.ToLower(env.From) + "\x00" + v.Handle))
	rt, ok := sess.(store.ReplyTracker)
	if !ok {
		return nil, errors.New("the store keeps no record of replies")
	}
	due, err := rt.ReplyDue(ctx, hex.EncodeToString(key[:]), d.now(), d.vacationConfig().period(v.Period))
	if err != nil {
		return nil, err
	}
	if !due {
		return skip("replied to within the period")
	}
	reply, err := vacationReply(d.hostname(), from, to, subject, messageID, references, d.now(), v)
	if err != nil {
		return nil, err
	}
	return reply, nil
}

// automatedSender says why an envelope sender is one no reply goes to
// (RFC 5230 4.6): a mailer daemon or a list's address. "" when none.
func automatedSender(from string) string {
	local, _, _ := strings.Cut(from, "@")
	local = strings.ToLower(local)
	switch {
	case local == "mailer-daemon", local == "listserv", local == "majordomo":
		return "a mailer or list address"
	case strings.HasPrefix(local, "owner-"), strings.HasSuffix(local, "-request"), strings.HasSuffix(local, "-owner"):
		return "a list address"
	}
	return ""
}

// vacationReply writes the reply (RFC 5230 5): to the sender, from the
// account, "Auto: " and the message's subject unless the script gave one
// (RFC 5230 4.3, 5.3), In-Reply-To and References (RFC 5230 5.4),
// Auto-Submitted: auto-replied (RFC 3834 5, RFC 5230 5.5), and the
// reason as plain text in UTF-8, quoted-printable where it is not ASCII,
// or with :mime as the MIME entity the script wrote (RFC 5230 4.8), of
// whose header only the Content- fields are kept. from and to are
// written fields (mailboxField). A value with a line break in it, which
// would end the field early and start another, is refused with an error.
func vacationReply(hostname, from, to, subject, messageID, references string, date time.Time, v *sieve.VacationReply) ([]byte, error) {
	var b bytes.Buffer
	var bad error
	field := func(name, value string) {
		if strings.ContainsAny(value, "\r\n") {
			bad = fmt.Errorf("a line break in the reply's %s field", name)
			return
		}
		writeFolded(&b, name, value)
	}
	field("From", from)
	field("To", to)
	if v.Subject != "" {
		subject = v.Subject
	} else {
		subject = "Auto: " + subject
	}
	field("Subject", encodeWord(strings.TrimSpace(subject)))
	field("Date", date.Format(time.RFC1123Z))
	field("Message-ID", "<vacation."+rand.Text()+"@"+hostname+">")
	if messageID != "" {
		field("In-Reply-To", messageID)
		field("References", replyReferences(references, messageID))
	}
	field("Auto-Submitted", "auto-replied (vacation)")
	// Not in any RFC, but what list software and older responders read.
	field("Precedence", "bulk")
	field("MIME-Version", "1.0")
	reason := crlf(v.Reason)
	if v.MIME {
		// The script's entity: its Content- fields join ours, then its
		// body. Any other field (a second From or To, a Bcc) is dropped:
		// the reply's header is ours to write.
		entity, body := "", reason
		if strings.HasPrefix(reason, "\r\n") {
			body = reason[2:]
		} else if h, rest, ok := strings.Cut(reason, "\r\n\r\n"); ok {
			entity, body = h+"\r\n", rest
		} else {
			entity, body = reason+"\r\n", ""
		}
		for f := range message.Fields([]byte(entity)) {
			if name := string(f.Name); strings.HasPrefix(message.ASCIILower(name), "content-") {
				field(name, f.Value())
			}
		}
		if bad != nil {
			return nil, bad
		}
		b.WriteString("\r\n" + body)
		return b.Bytes(), nil
	}
	if bad != nil {
		return nil, bad
	}
	if isASCII(reason) {
		field("Content-Type", "text/plain; charset=us-ascii")
		field("Content-Transfer-Encoding", "7bit")
		b.WriteString("\r\n" + reason)
	} else {
		field("Content-Type", "text/plain; charset=utf-8")
		field("Content-Transfer-Encoding", "quoted-printable")
		b.WriteString("\r\n")
		w := quotedprintable.NewWriter(&b)
		w.Write([]byte(reason))
		w.Close()
	}
	if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
		b.WriteString("\r\n")
	}
	return b.Bytes(), nil
}

// foldAt is the length past which writeFolded folds a line (RFC 5322
// 2.1.1's 78); a word longer than that goes on a line of its own.
const foldAt = 78

// writeFolded writes a header field, its value folded at spaces (RFC
// 5322 2.2.3) so that its lines stay within foldAt where the words allow:
// a long thread's References, or a subject's encoded words, which
// mime.QEncoding separates by spaces on one line, would pass the 998
// octets RFC 5322 2.1.1 allows a line.
func writeFolded(b *bytes.Buffer, name, value string) {
	b.WriteString(name + ":")
	n := len(name) + 1
	for i, w := range strings.Split(value, " ") {
		// A fold only before a word, so that no line is white space
		// alone (RFC 5322 3.2.2).
		if i > 0 && w != "" && n+1+len(w) > foldAt {
			b.WriteString("\r\n")
			n = 0
		}
		b.WriteString(" " + w)
		n += 1 + len(w)
	}
	b.WriteString("\r\n")
}

// maxReplyReferences bounds the message IDs of a reply's References.
const maxReplyReferences = 10

// replyReferences is the reply's References (RFC 5322 3.6.4): the
// message's References and its Message-ID, of a long thread's the first
// and the last few only, as RFC 5322 3.6.4 allows, so that the field
// does not grow with the thread.
func replyReferences(references, messageID string) string {
	ids := strings.Fields(references + " " + messageID)
	if len(ids) > maxReplyReferences {
		ids = append(ids[:1], ids[len(ids)-maxReplyReferences+1:]...)
	}
	return strings.Join(ids, " ")
}

// encodeWord writes a header value as RFC 2047 encoded words where it is
// not ASCII, and with line breaks made spaces.
func encodeWord(s string) string {
	s = strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
	if isASCII(s) {
		return s
	}
	return mime.QEncoding.Encode("utf-8", s)
}

// crlf makes every line end CRLF: a script's text: has whatever its
// upload had.
func crlf(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}
