package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/buzon-mail/buzon/internal/delivery"
	"github.com/buzon-mail/buzon/internal/store"
)

// StoreOpener opens the buzon store a store destination names, with the
// Deliverer that delivers into it as its server would (its Store, and the
// settings of its configuration such as the quota warnings) and the
// Spooler that fits its limits. Only cmd/buzon chooses a store backend, so
// it provides this. The fetch client closes the store when done.
type StoreOpener func(t StoreTarget) (*delivery.Deliverer, *delivery.Spooler, error)

// storeDest delivers into a buzon account the message as fetched, since
// it was spooled and parsed as delivery does for LMTP; the store checks
// the quota in the same transaction as the append. The account's Sieve
// script runs as it does for LMTP, its keep going to the target's
// mailbox; the envelope is the message's Return-Path and the target's
// address, since a fetched message comes without one.
type storeDest struct {
	target StoreTarget
	d      *delivery.Deliverer // its Store is the store delivered into
	// maxSize is the store's limit on a message's size; 0 means none.
	maxSize int64
	acct    store.Account
}

var _ Destination = (*storeDest)(nil)

// newStoreDest looks up the account that receives; sp gives the store's
// limit on message size.
func newStoreDest(ctx context.Context, t StoreTarget, sp *delivery.Spooler, d *delivery.Deliverer) (*storeDest, error) {
	to, err := d.Lookup(ctx, t.Account)
	if err != nil {
		return nil, fmt.Errorf("store destination: %w", err)
	}
	acct := to.Account
	s := &storeDest{target: t, d: d, maxSize: sp.MaxSize, acct: acct}
	// A mailbox that is not there fails the account at once, rather than
	// every message the same way.
	sess, err := d.Store.Open(ctx, acct.ID)
	if err != nil {
		return nil, fmt.Errorf("store destination: %w", err)
	}
	defer sess.Close()
	if _, err := sess.Mailbox(ctx, t.Mailbox); err != nil {
		return nil, s.mailboxErr(err)
	}
	return s, nil
}

// mailboxErr is the error for a failed lookup of the destination's
// mailbox, which says what to do when it is not there. A mailbox deleted
// during a run ends the run (see stopsRun): every message would fail the
// same way.
func (s *storeDest) mailboxErr(err error) error {
	if errors.Is(err, store.ErrNoMailbox) {
		return fmt.Errorf("store destination: account %s has no mailbox %q; create it (with a mail client) or leave store.mailbox out for INBOX: %w",
			s.acct.Name, s.target.Mailbox, store.ErrNoMailbox)
	}
	return fmt.Errorf("store destination: mailbox %q: %w", s.target.Mailbox, err)
}

func (s *storeDest) String() string {
	return fmt.Sprintf("buzon account %s mailbox %s", s.acct.Name, s.target.Mailbox)
}

// Close leaves the store open: the Fetcher shares it between accounts.
// It waits for the Sieve vacation replies of the account's messages, each
// bounded by its own timeout, so that the run does not end before they
// are sent.
func (s *storeDest) Close() error {
	s.d.WaitReplies(context.Background())
	return nil
}

// Deliver reads the mailbox's UIDVALIDITY and UIDNEXT for the intent and
// appends, in one session. The message's hash is of the bytes the store
// keeps (CRLF line endings), which Has looks for.
func (s *storeDest) Deliver(ctx context.Context, m *Message, _ *Ref, intent func(Ref) error) error {
	if s.maxSize > 0 && m.Size > s.maxSize {
		return fmt.Errorf("store destination: %w: %d bytes, the limit is %d", delivery.ErrTooLarge, m.Size, s.maxSize)
	}
	sess, err := s.d.Store.Open(ctx, s.acct.ID)
	if err != nil {
		return fmt.Errorf("store destination: %w", err)
	}
	defer sess.Close()
	mb, err := sess.Mailbox(ctx, s.target.Mailbox)
	if err != nil {
		return s.mailboxErr(err)
	}
	status, err := sess.Status(ctx, mb.ID)
	if err != nil {
		return fmt.Errorf("store destination: %w", err)
	}
	ref := Ref{UIDValidity: status.UIDValidity, UIDNext: uint32(status.UIDNext), Length: m.Size, SHA256: m.Hash()}
	if err := intent(ref); err != nil {
		return err
	}
	env := delivery.Envelope{From: m.sp.ReturnPath(), To: s.target.Account}
	if _, err := s.d.DeliverSession(ctx, sess, s.acct.Name, mb.Name, m.sp, env); err != nil {
		return fmt.Errorf("store destination: %w", store.Reason(err))
	}
	return nil
}

// Has looks among the messages appended since the intent for one of the
// recorded size and hash. Messages others delivered meanwhile are there
// too; only the hash tells them apart. It looks in the target's mailbox
// alone: a message the account's Sieve script filed elsewhere, or
// discarded, is not found, and is delivered again after the crash that
// asks, as the script decides again: a duplicate at worst, never a loss.
func (s *storeDest) Has(ctx context.Context, ref Ref) (bool, error) {
	if ref.SHA256 == "" {
		return false, nil
	}
	sess, err := s.d.Store.Open(ctx, s.acct.ID)
	if err != nil {
		return false, fmt.Errorf("store destination: %w", err)
	}
	defer sess.Close()
	mb, err := sess.Mailbox(ctx, s.target.Mailbox)
	if err != nil {
		return false, s.mailboxErr(err)
	}
	if mb.UIDValidity != ref.UIDValidity {
		// The mailbox was deleted and created again since: whatever was
		// appended went with it.
		return false, nil
	}
	var candidates []store.UID
	err = sess.Messages(ctx, mb.ID, store.NewUIDSet(store.UIDRange{Start: store.UID(ref.UIDNext), Stop: ^store.UID(0)}), store.FieldSize,
		func(mi *store.MessageInfo) error {
			if mi.Size == ref.Length {
				candidates = append(candidates, mi.UID)
			}
			return nil
		})
	if err != nil {
		return false, fmt.Errorf("store destination: %w", err)
	}
	for _, uid := range candidates {
		body, err := sess.OpenBody(ctx, mb.ID, uid)
		if errors.Is(err, store.ErrNoMessage) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("store destination: %w", err)
		}
		h := sha256.New()
		_, err = io.Copy(h, io.NewSectionReader(body, 0, body.Size()))
		body.Close()
		if err != nil {
			return false, fmt.Errorf("store destination: %w", err)
		}
		if hex.EncodeToString(h.Sum(nil)) == ref.SHA256 {
			return true, nil
		}
	}
	return false, nil
}
