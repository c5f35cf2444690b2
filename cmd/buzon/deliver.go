package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/buzon-mail/buzon/internal/delivery"
)

// Exit codes from sysexits.h, which MTAs read from a mailbox_command.
const (
	exNoUser   = 67 // unknown recipient: bounce
	exTempFail = 75 // try again later: the MTA keeps the message
	exNoPerm   = 77 // permanent refusal (over quota, too large): bounce
)

func runDeliver(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("deliver", stderr)
	var cf commonFlags
	cf.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: buzon deliver [--data DIR] RECIPIENT... < message")
		fs.PrintDefaults()
	}
	rcpts, err := parseInterleaved(fs, args)
	if err != nil {
		return usageError{err.Error()}
	}
	if len(rcpts) == 0 {
		fs.Usage()
		return usageError{"no recipient"}
	}
	cfg, err := cf.load()
	if err != nil {
		return &exitError{exTempFail, err}
	}
	log := newLogger(cfg.Log, stderr)
	st, err := openStore(cfg, log, false)
	if err != nil {
		return &exitError{exTempFail, err}
	}
	defer st.Close()
	sp := &delivery.Spooler{Dir: spoolDir(cfg), MemoryLimit: cfg.Delivery.MemorySpool, MaxSize: cfg.Limits.MaxMessageSize}
	msg, err := sp.Spool(stdin)
	if err != nil {
		if errors.Is(err, delivery.ErrTooLarge) {
			return &exitError{exNoPerm, err}
		}
		return &exitError{exTempFail, err}
	}
	defer msg.Close()

	d := &delivery.Deliverer{Store: st, Logger: log}
	ctx := context.Background()
	// The worst outcome decides the exit code: a temporary failure for any
	// recipient makes the MTA retry, so it outranks a bounce.
	code := 0
	var errs []error
	for _, rcpt := range rcpts {
		_, err := d.Deliver(ctx, rcpt, msg)
		if err == nil {
			continue
		}
		errs = append(errs, fmt.Errorf("%s: %w", rcpt, err))
		o := delivery.Classify(err)
		switch {
		case o.Code/100 == 4:
			code = exTempFail
		case errors.Is(err, delivery.ErrUnknownRecipient) && code != exTempFail:
			code = exNoUser
		case code == 0:
			code = exNoPerm
		}
	}
	if code != 0 {
		return &exitError{code, errors.Join(errs...)}
	}
	return nil
}
