package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/buzon-mail/buzon/internal/delivery"
	"github.com/buzon-mail/buzon/internal/store"
)

// deliverError is what a failed delivery to rcpt says on standard error,
// which an MTA puts in its bounce or its log: the reason and its enhanced
// status code (RFC 3463), then what the store said, without the store's
// account and mailbox numbers where it said something a person can act on
// (store.Reason).
func deliverError(rcpt string, err error) error {
	o := delivery.Classify(err)
	return fmt.Errorf("%s: %s (%d.%d.%d): %w", rcpt, o.Text, o.Enhanced[0], o.Enhanced[1], o.Enhanced[2], store.Reason(err))
}

// Exit codes from sysexits.h, which MTAs read from a mailbox_command.
const (
	exNoUser   = 67 // unknown recipient: bounce
	exTempFail = 75 // try again later: the MTA keeps the message
	exNoPerm   = 77 // permanent refusal (over quota, too large): bounce
)

func runDeliver(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("deliver", "usage: buzon deliver [--data DIR] [--config FILE] [--from SENDER] RECIPIENT... < message", stderr)
	var cf commonFlags
	cf.register(fs)
	var from *string
	fs.Func("from", "the envelope sender, for Sieve scripts: \"$SENDER\" in Postfix's mailbox_command, \"\" or \"<>\" for none (default: the message's Return-Path)", func(s string) error {
		a := argAddress(s)
		from = &a
		return nil
	})
	// A command line that cannot run is a mailbox_command to fix: the MTA
	// keeps the message (75) rather than bounce it, as it would for an
	// exit code outside sysexits. --help exits 75 too: it delivers nothing.
	rcpts, err := parseInterleaved(fs, args)
	if err != nil {
		return &exitError{exTempFail, flagError(err)}
	}
	if len(rcpts) == 0 {
		fs.Usage()
		return &exitError{exTempFail, usageError{"no recipient"}}
	}
	cfg, err := cf.load()
	if err != nil {
		return &exitError{exTempFail, err}
	}
	log := newLogger(cfg.Log, stderr)
	st, err := openStore(cfg, log, useExisting)
	if err != nil {
		return &exitError{exTempFail, err}
	}
	defer st.Close()
	sp := &delivery.Spooler{Dir: spoolDir(cfg), MemoryLimit: cfg.Delivery.MemorySpool, MaxSize: cfg.Limits.MaxMessageSize}
	msg, err := sp.Spool(skipPostmark(stdin))
	if err != nil {
		if errors.Is(err, delivery.ErrTooLarge) {
			return &exitError{exNoPerm, err}
		}
		return &exitError{exTempFail, err}
	}
	defer msg.Close()

	env := delivery.Envelope{From: msg.ReturnPath()}
	if from != nil {
		env.From = *from
	}
	d := &delivery.Deliverer{Store: st, Logger: log, QuotaWarnings: cfg.Delivery.QuotaWarnings, Hostname: cfg.Hostname}
	if err := vacationDeliverer(d, cfg); err != nil {
		return &exitError{exTempFail, err}
	}
	ctx := context.Background()
	// Vacation replies go once the copies are stored and before the
	// command exits, each within sieve.vacation_timeout; the exit status
	// is the delivery's alone.
	defer d.WaitReplies(ctx)
	// Every recipient is looked up before anything is stored, so an
	// unknown one bounces the message without leaving copies behind.
	tos := make([]delivery.Recipient, len(rcpts))
	for i, rcpt := range rcpts {
		if tos[i], err = d.Lookup(ctx, argAddress(rcpt)); err != nil {
			if errors.Is(err, delivery.ErrUnknownRecipient) {
				return &exitError{exNoUser, err}
			}
			return &exitError{exTempFail, err}
		}
	}
	// The worst outcome decides the exit code: a temporary failure for any
	// recipient makes the MTA retry, so it outranks a bounce. A retry after
	// some copies were stored would store those again, so a temporary
	// failure is first retried here for a while.
	// An account named twice, by its address and an alias say, gets one
	// copy (delivery.Recipient.CopyKey), as it does over LMTP.
	code, stored := 0, 0
	var errs []error
	tried := map[string]bool{}
	for i, rcpt := range rcpts {
		if tried[tos[i].CopyKey()] {
			continue
		}
		tried[tos[i].CopyKey()] = true
		env.To = argAddress(rcpt)
		err := deliverRetrying(ctx, d, tos[i].Account, msg, env, stored > 0)
		if err == nil {
			stored++
			continue
		}
		errs = append(errs, deliverError(rcpt, err))
		switch {
		case delivery.Classify(err).Code/100 == 4:
			code = exTempFail
		case code == 0:
			code = exNoPerm
		}
	}
	if code != 0 {
		return &exitError{code, errors.Join(errs...)}
	}
	return nil
}

// deliverRetrying delivers to one account. When copies for other
// recipients are already stored (others), a temporary failure is retried
// for up to half a minute, since giving up makes the MTA deliver to every
// recipient again.
func deliverRetrying(ctx context.Context, d *delivery.Deliverer, acct store.Account, msg *delivery.Spooled, env delivery.Envelope, others bool) error {
	wait := 500 * time.Millisecond
	for deadline := time.Now().Add(30 * time.Second); ; wait *= 2 {
		_, err := d.DeliverAccount(ctx, acct, msg, env)
		if err == nil || !others || delivery.Classify(err).Code/100 != 4 || time.Now().Add(wait).After(deadline) {
			return err
		}
		time.Sleep(wait)
	}
}

// skipPostmark drops the mbox postmark an MTA may put before the message,
// "From sender date" (Postfix's local(8) does for a mailbox_command): it is
// not a header field, and stored it would make the message malformed. A
// header field "From :" (obsolete syntax, RFC 5322 4.5.2) stays.
func skipPostmark(r io.Reader) io.Reader {
	br := bufio.NewReader(r)
	head, _ := br.Peek(6)
	if !bytes.HasPrefix(head, []byte("From ")) || len(head) < 6 || head[5] == ':' || head[5] == ' ' {
		return br
	}
	for {
		_, err := br.ReadSlice('\n')
		if err != bufio.ErrBufferFull {
			return br // the line is gone, or the input ended within it
		}
	}
}

// argAddress is a recipient as an MTA or a person may pass it on the
// command line, "alice@example.org" or "<alice@example.org>", with the
// spaces and angle brackets around it removed.
func argAddress(arg string) string {
	a := strings.TrimSpace(arg)
	if inner, ok := strings.CutPrefix(a, "<"); ok {
		if inner, ok = strings.CutSuffix(inner, ">"); ok {
			return strings.TrimSpace(inner)
		}
	}
	return a
}
