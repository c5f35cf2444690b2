package imapserver

import (
	"errors"
	"strings"

	"github.com/buzon-mail/buzon/internal/store"
)

// RFC 9051 6.4.2: expunge silently, then leave.
func (c *conn) cmdClose(cmd *command) {
	sel := c.sel
	if !sel.readOnly {
		_, err := c.sess.Expunge(c.ctx, sel.mb.ID, store.UIDSetOf(sel.uids...), true)
		xcheckf(err, "expunge %s", sel.mb.Name)
	}
	c.unselect()
}

// RFC 3691
func (c *conn) cmdUnselect(cmd *command) { c.unselect() }

// xwritable refuses changes in a mailbox opened with EXAMINE.
func (c *conn) xwritable() {
	if c.sel.readOnly {
		xuserErrorf("READ-ONLY", "mailbox is read-only")
	}
}

// RFC 9051 6.4.3; UID EXPUNGE is RFC 4315 2.1.
func (c *conn) cmdExpunge(cmd *command) {
	c.xwritable()
	sel := c.sel
	set := store.UIDSetOf(sel.uids...)
	if a, ok := cmd.args.(*numSetArgs); ok {
		set = c.xresolve(a.set, true)
	}
	if set.Empty() {
		return
	}
	res, err := c.sess.Expunge(c.ctx, sel.mb.ID, set, true)
	xcheckf(err, "expunge")
	c.reportExpunged(res.UIDs)
	c.takeOwn(sel.mb.ID, res.Written, store.ChangeSet{Expunged: res.UIDs})
	if c.condstore {
		// RFC 7162 3.2.10 asks for the new HIGHESTMODSEQ.
		c.ok("[HIGHESTMODSEQ %d] %s completed", res.ModSeq, cmd.name)
	}
}

// RFC 9051 6.4.6; RFC 7162 3.1.3 (UNCHANGEDSINCE)
func (c *conn) cmdStore(cmd *command) {
	a := cmd.args.(*storeArgs)
	c.xwritable()
	sel := c.sel
	flags, err := store.ParseFlags(a.flags)
	if err != nil {
		xsyntaxErrorf("%v", err)
	}
	if a.hasUnchanged {
		c.enableCondstore()
	}
	viewed := sel.modSeq
	set := c.xresolve(a.set, cmd.uid)
	if set.Empty() {
		return
	}
	var res store.FlagsResult
	if a.hasUnchanged && a.unchangedSince == 0 {
		// UNCHANGEDSINCE 0 fails for every message (RFC 7162 3.1.3); the
		// store reads 0 as "unconditional".
		for _, u := range sel.uids {
			if set.Contains(u) {
				res.Failed = append(res.Failed, u)
			}
		}
	} else {
		res, err = c.sess.StoreFlags(c.ctx, sel.mb.ID, set, a.op, flags, store.ModSeq(a.unchangedSince))
		xcheckf(err, "store flags")
	}
	updated, failed := res.Updated, res.Failed
	// .SILENT sends no flags: the client then knows a message's flags only
	// if it knew them before the command, that is if nothing changed the
	// mailbox between the view and the write: neither a change the view
	// has not taken in (another session's, to the same message) nor one
	// xresolve reported while catching up for UIDs beyond the view, whose
	// flags the client could not tell from those after its write.
	// Otherwise the sync after the command reports the flags, as RFC 9051
	// 6.4.6 asks for changes made elsewhere.
	known := !a.silent || res.Written.Prior == viewed
	changed := map[store.UID]store.ModSeq{}
	for _, u := range updated {
		changed[u.UID] = u.ModSeq
		if known {
			sel.reported[u.UID] = u.ModSeq
		}
		c.announceKeywords(u.Flags)
	}
	failedSet := store.UIDSetOf(failed...)
	// Report the flags of every message named (RFC 9051 6.4.6), or with
	// .SILENT only the new MODSEQs (RFC 7162 3.1.3).
	report := func(uid store.UID, modSeq store.ModSeq, flags store.Flags) {
		seq := sel.seq(uid)
		if seq == 0 || failedSet.Contains(uid) {
			return
		}
		if _, ok := changed[uid]; a.silent && !ok {
			return
		}
		c.w.str("* ")
		c.w.num(uint64(seq))
		c.w.str(" FETCH (")
		sep := ""
		if cmd.uid || c.condstore {
			c.w.str("UID ")
			c.w.num(uint64(uid))
			sep = " "
		}
		if !a.silent {
			c.w.str(sep + "FLAGS (" + strings.Join(flags.Names(), " ") + ")")
			sep = " "
		}
		if c.condstore {
			c.w.str(sep + "MODSEQ (")
			c.w.num(uint64(modSeq))
			c.w.str(")")
		}
		c.w.str(")\r\n")
	}
	switch {
	case a.silent && (!known || !c.condstore || len(changed) == 0):
		// Nothing now; when the flags are not known, the sync after the
		// command reports them with their MODSEQs.
	case a.silent:
		for _, u := range updated {
			report(u.UID, u.ModSeq, u.Flags)
		}
	default:
		// StoreFlags gave the flags of every message named, in two
		// ascending lists. What is reported here the sync need not
		// report again.
		for _, k := range res.Unchanged {
			sel.reported[k.UID] = k.ModSeq
		}
		kept := res.Unchanged
		for _, u := range updated {
			for len(kept) > 0 && kept[0].UID < u.UID {
				report(kept[0].UID, kept[0].ModSeq, kept[0].Flags)
				kept = kept[1:]
			}
			report(u.UID, u.ModSeq, u.Flags)
		}
		for _, k := range kept {
			report(k.UID, k.ModSeq, k.Flags)
		}
	}
	c.takeOwn(sel.mb.ID, res.Written, store.ChangeSet{Updated: updated})
	if len(failed) > 0 {
		// RFC 7162 3.1.3: MODIFIED lists what was left alone.
		var nums []store.UID
		for _, u := range failed {
			if cmd.uid {
				nums = append(nums, u)
			} else if seq := sel.seq(u); seq > 0 {
				nums = append(nums, store.UID(seq))
			}
		}
		c.ok("[MODIFIED %s] conditional STORE failed for some messages", store.UIDSetOf(nums...).String())
	}
}

// RFC 9051 6.4.7 COPY, RFC 6851 MOVE, RFC 4315 COPYUID
func (c *conn) cmdCopy(cmd *command) {
	a := cmd.args.(*copyArgs)
	move := strings.HasSuffix(cmd.name, "MOVE")
	if move {
		c.xwritable()
	}
	sel := c.sel
	set := c.xresolve(a.set, cmd.uid)
	name := c.xmailboxName(a.mailbox)
	dst, err := c.lookupMailbox(name)
	if errors.Is(err, store.ErrNoMailbox) {
		xuserErrorf("TRYCREATE", "no mailbox %s", name)
	}
	xcheckf(err, "mailbox %s", name)
	if !cmd.uid {
		c.xnotExpunged(set)
	}
	if set.Empty() {
		return
	}
	var res store.CopyResult
	if move {
		// Into the selected mailbox itself too: RFC 6851 defines MOVE as
		// COPY and EXPUNGE, and the sync announces the new messages.
		res, err = c.sess.Move(c.ctx, sel.mb.ID, set, dst.ID)
	} else {
		res, err = c.sess.Copy(c.ctx, sel.mb.ID, set, dst.ID)
	}
	if errors.Is(err, store.ErrOverQuota) {
		xuserErrorf("OVERQUOTA", "over quota")
	}
	xcheckf(err, "%s to %s", strings.ToLower(cmd.name), name)
	// A message expunged between xnotExpunged's look and the copy is
	// left out: by number, the command must not pass for done.
	partial := !cmd.uid && len(res.Source) < c.sel.inView(set)
	if len(res.Source) > 0 {
		code := "COPYUID " + itoa(res.UIDValidity) + " " + store.UIDSetOf(res.Source...).String() + " " + store.UIDSetOf(res.Dest...).String()
		switch {
		case move:
			// RFC 6851 4.3: COPYUID in an untagged OK before the expunges.
			c.w.str("* OK [" + code + "] moved\r\n")
			c.reportExpunged(res.Source)
		case !partial:
			c.ok("[%s] %s completed", code, cmd.name)
			return
		}
	}
	if partial {
		xuserErrorf("EXPUNGEISSUED", "some of the messages were expunged meanwhile; %d of them were %s",
			len(res.Source), map[bool]string{true: "moved", false: "copied"}[move])
	}
}

// xnotExpunged refuses a COPY or MOVE by message numbers that names
// messages another session expunged (RFC 5530 EXPUNGEISSUED), before
// anything is copied. Copying the others and saying OK would tell a client
// that cannot read COPYUID, or that copies by number because it does not
// care for UIDs, that every message it named was copied; it would then
// delete them from here, believing them safe elsewhere. The view first
// catches up, holding the expunges back, so that one committed just
// before the command counts too; the sync after the NO reports them (RFC
// 9051 7.5.1 allows it during COPY and MOVE), and the client can try again
// with the numbers as they are. Dovecot answers the same. By UID, a
// message that is gone is simply not copied: COPYUID says what was.
func (c *conn) xnotExpunged(set store.UIDSet) {
	c.sync(false)
	for _, u := range c.sel.pendingExpunge {
		if set.Contains(u) {
			xuserErrorf("EXPUNGEISSUED", "some of the messages were expunged meanwhile")
		}
	}
}

func itoa(n uint32) string {
	var b [10]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}
