// Package migrate copies mail from one store to another with its identity
// kept, for `buzon migrate-store` (moving the embedded store into
// PostgreSQL when one machine is no longer enough).
//
// What is kept, per mailbox: the name, special use, UIDVALIDITY and UIDNEXT;
// per message: the UID, MODSEQ, flags and keywords, internal date, save
// date (RFC 8514), POP3 retrieval time, the opaque MIME structure and the bytes of the body; per
// account: credentials, quota, creation time, subscriptions, Sieve
// scripts (which one is active included), aliases, and the records of the
// vacation replies sent and the messages redirected (store.ReplyTracker),
// so that the move sends no sender a second reply within its period and
// forwards no message twice;
// and the server's secrets (store.SecretKeeper), so that SCRAM answers unknown names
// as before (a secret the target already has stays: servers on it may be
// using it). POP3 UIDLs are derived from UIDVALIDITY and UID, so they are
// kept too, and IMAP clients keep their caches (RFC 9051 2.3.1.1, RFC 7162).
package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/buzon-mail/buzon/internal/store"
)

// batch is how many messages Copy lists at once from the source.
const batch = 256

// Copy copies every account of from into to, reading from through the
// ordinary Store and Session interfaces, so any backend can be the source.
// The source should not change meanwhile (stop the server first): mail
// delivered to it during the copy may be missed.
//
// Copy is idempotent per account: run again after an interruption, it
// skips the accounts already finished, resumes the one it was copying, and
// copies the rest. An account of the same name that exists in to and was
// not made by an import stops it with store.ErrAccountExists.
//
// progress, if not nil, is called after each message with the bytes done
// and the total bytes of mail to copy (from the source's quota usage), and
// once at the start.
func Copy(ctx context.Context, from store.Store, to store.Importer, progress func(done, total int64)) error {
	if progress == nil {
		progress = func(int64, int64) {}
	}
	accts, err := from.Accounts(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	sizes := make([]int64, len(accts))
	var total int64
	for i, a := range accts {
		ss, err := from.Open(ctx, a.ID)
		if err != nil {
			return fmt.Errorf("migrate account %s: %w", a.Name, err)
		}
		qu, err := ss.QuotaUsage(ctx)
		ss.Close()
		if err != nil {
			return fmt.Errorf("migrate account %s: %w", a.Name, err)
		}
		sizes[i] = qu.Bytes
		total += qu.Bytes
	}
	if err := copySecrets(ctx, from, to); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	c := &copier{ctx: ctx, to: to, total: total, progress: progress}
	progress(0, total)
	for i, a := range accts {
		if err := c.account(from, a, sizes[i]); err != nil {
			return fmt.Errorf("migrate account %s: %w", a.Name, err)
		}
	}
	// The aliases come last, once the accounts they name are visible.
	if err := copyAliases(ctx, from, to); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// copier is one run of Copy.
type copier struct {
	ctx         context.Context
	to          store.Importer
	done, total int64
	progress    func(done, total int64)
}

// account copies one account, or skips it if an earlier run finished it.
func (c *copier) account(from store.Store, a store.Account, size int64) error {
	id, finished, err := c.to.ImportAccount(c.ctx, a)
	if err != nil {
		return err
	}
	if finished {
		c.done += size
		c.progress(c.done, c.total)
		return nil
	}
	ss, err := from.Open(c.ctx, a.ID)
	if err != nil {
		return err
	}
	defer ss.Close()
	mbs, err := ss.Mailboxes(c.ctx)
	if err != nil {
		return err
	}
	var modseq store.ModSeq
	for _, mb := range mbs {
		hms, err := c.mailbox(ss, id, mb)
		if err != nil {
			return fmt.Errorf("mailbox %q: %w", mb.Name, err)
		}
		modseq = max(modseq, hms)
	}
	subs, err := ss.Subscriptions(c.ctx)
	if err != nil {
		return err
	}
	// The scripts go in before the account is visible, so that no
	// message reaches it unfiltered.
	scripts, err := sieveScripts(c.ctx, ss)
	if err != nil {
		return err
	}
	if err := c.to.ImportSieveScripts(c.ctx, id, scripts); err != nil {
		return err
	}
	if err := c.replies(ss, id); err != nil {
		return err
	}
	return c.to.FinishImport(c.ctx, id, modseq, subs)
}

// replies copies the account's records of automatic replies and
// redirects, before the account is visible, so that no delivery to it
// finds them missing.
func (c *copier) replies(ss store.Session, account int64) error {
	rt, ok := ss.(store.ReplyTracker)
	if !ok {
		return nil // the source sent none
	}
	list, err := rt.Replies(c.ctx)
	if err != nil {
		return err
	}
	ri, ok := c.to.(store.ReplyImporter)
	switch {
	case ok:
		return ri.ImportReplies(c.ctx, account, list)
	case len(list) > 0:
		return fmt.Errorf("%T keeps no record of automatic replies", c.to)
	}
	return nil
}

// mailbox copies one mailbox and returns its highest MODSEQ.
func (c *copier) mailbox(ss store.Session, account int64, mb store.Mailbox) (store.ModSeq, error) {
	st, err := ss.Status(c.ctx, mb.ID)
	if err != nil {
		return 0, err
	}
	// Changes since 0 lists the expunged UIDs the source still knows,
	// for clients resynchronizing with QRESYNC.
	cs, err := ss.Changes(c.ctx, mb.ID, 0)
	if err != nil {
		return 0, err
	}
	dst, err := c.to.ImportMailbox(c.ctx, account, store.ImportMailbox{
		Name:          mb.Name,
		SpecialUse:    mb.SpecialUse,
		UIDValidity:   mb.UIDValidity,
		UIDNext:       st.UIDNext,
		HighestModSeq: st.HighestModSeq,
		Expunged:      cs.Expunged,
		ForgottenTo:   cs.ForgottenTo,
	})
	if err != nil {
		return 0, err
	}
	var uids []store.UID
	if err := ss.Messages(c.ctx, mb.ID, store.AllUIDs(), 0, func(m *store.MessageInfo) error {
		uids = append(uids, m.UID)
		return nil
	}); err != nil {
		return 0, err
	}
	// A batch's metadata is read first, with no body open, then each body
	// is copied: no source transaction is open while the target writes.
	for chunk := range slices.Chunk(uids, batch) {
		var infos []store.MessageInfo
		if err := ss.Messages(c.ctx, mb.ID, store.UIDSetOf(chunk...), store.FieldAll, func(m *store.MessageInfo) error {
			info := *m
			info.Structure = slices.Clone(m.Structure)
			info.Flags.Keywords = slices.Clone(m.Flags.Keywords)
			infos = append(infos, info)
			return nil
		}); err != nil {
			return 0, err
		}
		for i := range infos {
			if err := c.message(ss, account, mb.ID, dst, &infos[i]); err != nil {
				return 0, fmt.Errorf("message %d: %w", infos[i].UID, err)
			}
		}
	}
	return st.HighestModSeq, nil
}

// message copies one message's body and metadata.
func (c *copier) message(ss store.Session, account, src, dst int64, m *store.MessageInfo) error {
	body, err := ss.OpenBody(c.ctx, src, m.UID)
	if errors.Is(err, store.ErrNoMessage) {
		return nil // expunged since it was listed
	}
	if err != nil {
		return err
	}
	defer body.Close()
	if body.Size() != m.Size {
		return fmt.Errorf("body has %d bytes, metadata says %d", body.Size(), m.Size)
	}
	if err := c.to.ImportMessage(c.ctx, account, dst, m, io.NewSectionReader(body, 0, body.Size())); err != nil {
		return err
	}
	c.done += m.Size
	c.progress(c.done, c.total)
	return nil
}

// sieveScripts reads an account's Sieve scripts with their contents.
func sieveScripts(ctx context.Context, ss store.Session) ([]store.SieveScript, error) {
	list, err := ss.SieveScripts(ctx)
	if err != nil {
		return nil, err
	}
	for i, sc := range list {
		full, err := ss.SieveScript(ctx, sc.Name)
		if err != nil {
			return nil, err
		}
		list[i] = full
	}
	return list, nil
}

// copySecrets gives to the secrets from keeps, if it keeps any.
func copySecrets(ctx context.Context, from store.Store, to store.Importer) error {
	k, ok := from.(store.SecretKeeper)
	if !ok {
		return nil
	}
	secrets, err := k.Secrets(ctx)
	if err != nil {
		return err
	}
	for name, v := range secrets {
		if err := to.ImportSecret(ctx, name, v); err != nil {
			return err
		}
	}
	return nil
}

// copyAliases gives to the aliases from has. One to has already, naming
// the same account, was copied by an earlier run; one naming another
// account, or the name of an account of to's own, stops the copy.
func copyAliases(ctx context.Context, from store.Store, to store.Importer) error {
	aliases, err := from.Aliases(ctx)
	if err != nil {
		return err
	}
	list, err := to.Aliases(ctx)
	if err != nil {
		return err
	}
	have := make(map[string]string, len(list)) // alias -> account
	for _, a := range list {
		have[a.Name] = a.Account
	}
	for _, a := range aliases {
		switch account, ok := have[a.Name]; {
		case ok && account == a.Account:
			continue
		case ok:
			return fmt.Errorf("alias %s of %s: %w, of %s", a.Name, a.Account, store.ErrAliasExists, account)
		}
		if err := to.AddAlias(ctx, a.Name, a.Account); err != nil {
			return err
		}
	}
	return nil
}
