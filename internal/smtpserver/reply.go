package smtpserver

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/buzon-mail/buzon/internal/delivery"
	"github.com/buzon-mail/buzon/internal/store"
)

// reply is one reply line: a code (RFC 5321 4.2), an enhanced
// status code (RFC 3463; sent on every reply that has a class for it,
// RFC 2034 3) and text. Command code raises one with xreply; the parsers
// return them as errors.
type reply struct {
	code int
	// enh is the enhanced status code; zero for replies that carry none
	// (the greeting, LHLO's, 354: RFC 3463 has no class 3).
	enh  [3]int
	text string
}

func (r reply) Error() string { return r.String() }

// String is the reply as sent, CRLF included.
func (r reply) String() string {
	return string(r.appendTo(nil, ' '))
}

// appendTo appends the reply line to b, sep after the code: ' ' for the
// last line of a reply, '-' for the others.
func (r reply) appendTo(b []byte, sep byte) []byte {
	b = strconv.AppendInt(b, int64(r.code), 10)
	b = append(b, sep)
	if r.enh != [3]int{} {
		b = strconv.AppendInt(b, int64(r.enh[0]), 10)
		b = append(b, '.')
		b = strconv.AppendInt(b, int64(r.enh[1]), 10)
		b = append(b, '.')
		b = strconv.AppendInt(b, int64(r.enh[2]), 10)
		b = append(b, ' ')
	}
	b = append(b, r.text...)
	return append(b, '\r', '\n')
}

// xreply ends the command with a reply.
func xreply(code int, enh [3]int, format string, args ...any) {
	panic(reply{code, enh, fmt.Sprintf(format, args...)})
}

// abortError ends the session; whatever the client was to hear has been
// written.
type abortError struct{ err error }

// xabort ends the session.
func xabort(err error) {
	panic(abortError{err})
}

// Replies named for what they refuse.
var (
	replyShuttingDown = reply{421, [3]int{4, 3, 2}, "shutting down; try again later"}
	replyLineTooLong  = reply{500, [3]int{5, 5, 2}, "line too long"} // RFC 5321 4.5.3.1.4
	// RFC 5321 4.5.3.1.6: the data of a message with a line over
	// MaxLineLength. Trying again will not shorten it, so the refusal
	// is permanent (RFC 5321 4.2.1).
	replyDataLineTooLong = reply{554, [3]int{5, 6, 0}, "message has a line too long to take; limits.max_line_length bounds it"}
	// RFC 1870 6.1: SIZE= over the limit, or data that passed it.
	replyTooLarge = reply{552, [3]int{5, 3, 4}, "message size exceeds fixed maximum message size"}
)

// errLineTooLong is a message line over MaxLineLength.
var errLineTooLong = errors.New("message line too long")

// errLoop is a message with more Received fields than MaxReceived.
var errLoop = errors.New("mail loop")

// failureReply turns the outcome of a delivery, of the spooling before
// it or of a quota check into the reply the client gets: deliveryReply's,
// but in SMTP a full mailbox is a temporary failure (RFC 3463 4.2.2):
// its owner can make room, and the sender's queue keeps the message
// until then. LMTP keeps the permanent 552 5.2.2 that its MTA expects
// from Dovecot, and bounces on.
func (c *conn) failureReply(err error) reply {
	if c.srv.cfg.Protocol == SMTP && errors.Is(err, store.ErrOverQuota) {
		return reply{452, [3]int{4, 2, 2}, "mailbox full; try again later"}
	}
	return deliveryReply(err)
}

// replyCode is the code of failureReply(err), for the delivery metrics
// (delivery.Deliverer.DeliverAccountAs): in SMTP a full mailbox counts
// as the 452 it is answered, not LMTP's 552. A copy counts by its own
// outcome, also when SMTP's one reply to the message is a 451 for all
// (messageReply): a stored copy is a 250, and its bytes are delivered.
func (c *conn) replyCode(err error) int { return c.failureReply(err).code }

// deliveryReply turns the outcome of a delivery (or of the spooling
// before it) into the reply a recipient gets.
func deliveryReply(err error) reply {
	switch {
	case errors.Is(err, errLineTooLong):
		return replyDataLineTooLong
	case errors.Is(err, delivery.ErrTooLarge):
		return replyTooLarge
	case errors.Is(err, errLoop):
		// RFC 5321 6.3; RFC 3463 5.4.6: routing loop detected.
		return reply{554, [3]int{5, 4, 6}, "too many Received fields: a mail loop?"}
	}
	o := delivery.Classify(err)
	return reply{o.Code, o.Enhanced, o.Text}
}
