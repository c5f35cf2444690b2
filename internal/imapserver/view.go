package imapserver

import (
	"errors"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/buzon-mail/buzon/internal/store"
)

// selected is a session's view of its selected mailbox. Message sequence
// numbers exist only here: message n is uids[n-1]. The view changes only
// when the session reports a change to its client, so numbers stay what
// the client believes they are (RFC 9051 7.5.1).
type selected struct {
	mb       store.Mailbox
	readOnly bool // EXAMINE
	// uids holds the UIDs the client knows, ascending, including messages
	// expunged elsewhere and not yet reported.
	uids []store.UID
	// modSeq is the MODSEQ up to which changes were read from the store.
	modSeq store.ModSeq
	// pendingExpunge holds UIDs expunged in the store and still in uids,
	// waiting for a moment when EXPUNGE may be sent. Ascending.
	pendingExpunge []store.UID
	// pendingFloor is modSeq as it was before the first of pendingExpunge
	// came in: every change up to it has reached the client.
	pendingFloor store.ModSeq
	// reported holds flag changes this session announced itself (STORE,
	// FETCH setting \Seen), so the change feed does not repeat them.
	reported map[store.UID]store.ModSeq
	// feed is shared with the server's other sessions of the mailbox.
	feed *feed
	// flags holds the system flags of the messages of uids, in the same
	// order, once a search needed them (nil before); every change the view
	// takes in updates them, so that a search by flags reads no message.
	flags []store.SystemFlags
	// keywords are those the FLAGS response last listed.
	keywords []string
	// unannounced counts messages the view took in (from the store's
	// changes, or the session's own APPEND by takeOwn) that no EXISTS has
	// reported yet.
	unannounced int
}

// takeOwn brings the view past the session's own write to the selected
// mailbox when nothing else changed the mailbox since the view caught up
// (the write began where the view stands): cs, the write's own result,
// is then the whole change up to the write's MODSEQ, and the sync after
// the command does not read back what the session itself just did.
// Otherwise the sync reads the changes as usual, the write's among them.
func (c *conn) takeOwn(mailboxID int64, w store.Written, cs store.ChangeSet) {
	sel := c.sel
	if sel == nil || sel.mb.ID != mailboxID || sel.modSeq != w.Prior || w.ModSeq <= w.Prior {
		return
	}
	cs.HighestModSeq = w.ModSeq
	sel.unannounced += c.applyChanges(&cs)
}

// xloadFlags reads the flags of the view's messages, the first time a
// search needs them. Messages expunged meanwhile keep no flags: they are
// pending expunges, which searches skip.
func (c *conn) xloadFlags() {
	sel := c.sel
	if sel.flags != nil {
		return
	}
	flags := make([]store.SystemFlags, len(sel.uids))
	if len(sel.uids) > 0 {
		set := store.NewUIDSet(store.UIDRange{Start: sel.uids[0], Stop: sel.lastUID()})
		err := c.sess.Messages(c.ctx, sel.mb.ID, set, store.FieldFlags, func(m *store.MessageInfo) error {
			if seq := sel.seq(m.UID); seq > 0 {
				flags[seq-1] = m.Flags.System
			}
			return nil
		})
		xcheckf(err, "read flags")
	}
	sel.flags = flags
}

// seq returns the sequence number of uid, or 0 when it is not in the view.
func (s *selected) seq(uid store.UID) uint32 {
	i, ok := slices.BinarySearch(s.uids, uid)
	if !ok {
		return 0
	}
	return uint32(i + 1)
}

// lastUID is the highest UID in the view, or 0.
func (s *selected) lastUID() store.UID {
	if len(s.uids) == 0 {
		return 0
	}
	return s.uids[len(s.uids)-1]
}

// xresolve turns a sequence set (or, for UID commands, a UID set) into the
// UIDs of the view it names. For UID sets, numbers outside the view are
// ignored (RFC 9051 6.4.9); for message numbers they are an error.
func (c *conn) xresolve(set numSet, isUID bool) store.UIDSet {
	if isUID {
		// A UID command may report expunges (RFC 9051 7.5.1): those the
		// view holds back go first, so the command does not name
		// messages that are gone. When the client names UIDs it learnt
		// elsewhere (an APPENDUID on another connection, another device),
		// the view catches up first, announcing new messages with EXISTS,
		// so the command reaches them.
		if !set.searchRes && c.beyondView(set) {
			c.sync(true)
		} else {
			c.reportPending()
		}
	}
	sel := c.sel
	if set.searchRes {
		// RFC 5182 2.1: only what is still in the view.
		var uids []store.UID
		for _, u := range c.searchRes {
			if sel.seq(u) > 0 {
				uids = append(uids, u)
			}
		}
		return store.UIDSetOf(uids...)
	}
	var ranges []store.UIDRange
	if isUID {
		last := sel.lastUID()
		for _, r := range set.ranges {
			first, end := store.UID(r.first), store.UID(r.last)
			if r.first == 0 {
				first = last
			}
			if r.last == 0 {
				end = last
			}
			if first > end {
				first, end = end, first
			}
			// Clip to the view: every stored UID between two UIDs of the
			// view is in the view.
			lo, _ := slices.BinarySearch(sel.uids, first)
			hi, found := slices.BinarySearch(sel.uids, end)
			if !found {
				hi--
			}
			if lo <= hi && lo < len(sel.uids) && hi >= 0 {
				ranges = append(ranges, store.UIDRange{Start: sel.uids[lo], Stop: sel.uids[hi]})
			}
		}
		return store.NewUIDSet(ranges...)
	}
	n := uint32(len(sel.uids))
	for _, r := range set.ranges {
		first, last := r.first, r.last
		if first == 0 {
			first = n
		}
		if last == 0 {
			last = n
		}
		if first > last {
			first, last = last, first
		}
		if first == 0 {
			continue // "*" in an empty mailbox
		}
		if last > n {
			xsyntaxErrorf("message sequence number %d out of range", last)
		}
		ranges = append(ranges, store.UIDRange{Start: sel.uids[first-1], Stop: sel.uids[last-1]})
	}
	return store.NewUIDSet(ranges...)
}

// beyondView reports whether a UID set reaches past the last UID of the
// view, or uses "*".
func (c *conn) beyondView(set numSet) bool {
	last := uint32(c.sel.lastUID())
	for _, r := range set.ranges {
		if r.first == 0 || r.last == 0 || r.first > last || r.last > last {
			return true
		}
	}
	return false
}

// inView counts the view's UIDs in set.
func (s *selected) inView(set store.UIDSet) int {
	n := 0
	for _, r := range set {
		lo, _ := slices.BinarySearch(s.uids, r.Start)
		hi, found := slices.BinarySearch(s.uids, r.Stop)
		if found {
			hi++
		}
		n += max(0, hi-lo)
	}
	return n
}

// RFC 9051 6.3.2, 6.3.3; RFC 7162 3.1.8 (CONDSTORE), 3.2.5 (QRESYNC)
func (c *conn) cmdSelect(cmd *command) {
	a := cmd.args.(*selectArgs)
	if a.qresync != nil && !c.qresync {
		// RFC 7162 3.2.5. Before the mailbox selected is closed: a
		// command answered BAD leaves the session as it was.
		xsyntaxErrorf("QRESYNC is not enabled")
	}
	if c.sel != nil {
		c.unselect()
		// RFC 9051 7.1; RFC 7162 3.2.11 asks it of every server that
		// offers QRESYNC, enabled or not, and other clients ignore a
		// response code they do not know (RFC 3501 7.1).
		c.w.str("* OK [CLOSED] previous mailbox closed\r\n")
	}
	if a.condstore {
		c.condstore = true // the SELECT's own HIGHESTMODSEQ follows
	}
	name := c.xmailboxName(a.mailbox)
	mb := c.xlookupMailbox(name)
	// The view and the MODSEQ it catches up from come from one snapshot,
	// so no change can fall between them.
	snap, err := c.sess.Snapshot(c.ctx, mb.ID)
	xcheckf(err, "read %s", name)
	// RFC 7162 3.2.5.1: what changed since the client's last session,
	// read after the snapshot and before anything is written or the
	// mailbox selected, so that a read that fails leaves no mailbox
	// selected and the client told nothing of it (RFC 9051 6.3.2).
	var cs *store.ChangeSet
	if q := a.qresync; q != nil && q.uidValidity == mb.UIDValidity {
		cs, err = c.sess.Changes(c.ctx, mb.ID, store.ModSeq(q.modSeq))
		xcheckf(err, "changes of %s", name)
	}
	sel := &selected{mb: mb, readOnly: cmd.name == "EXAMINE", uids: snap.UIDs, modSeq: snap.HighestModSeq,
		reported: map[store.UID]store.ModSeq{}, keywords: snap.Keywords}
	var firstUnseen uint32
	if snap.FirstUnseen > 0 {
		firstUnseen = sel.seq(snap.FirstUnseen)
	}

	w := c.w
	writeFlagsList(w, sel)
	w.str("* ")
	w.num(uint64(len(sel.uids)))
	w.str(" EXISTS\r\n")
	if !c.rev2 {
		w.str("* 0 RECENT\r\n")
		if firstUnseen > 0 {
			w.str("* OK [UNSEEN ")
			w.num(uint64(firstUnseen))
			w.str("] first unseen\r\n")
		}
	}
	w.str("* OK [UIDVALIDITY ")
	w.num(uint64(mb.UIDValidity))
	w.str("] UIDs valid\r\n* OK [UIDNEXT ")
	w.num(uint64(snap.UIDNext))
	w.str("] predicted next UID\r\n")
	// RFC 7162 3.1.2.1
	w.str("* OK [HIGHESTMODSEQ ")
	w.num(uint64(max(snap.HighestModSeq, 1)))
	w.str("] highest\r\n")
	if c.rev2 {
		// RFC 9051 6.3.2: the mailbox's name as the server spells it.
		w.str(`* LIST () "/" `)
		c.writeMailbox(mb.Name)
		w.str("\r\n")
	}
	sel.feed = c.srv.feed(mb.ID)
	c.sel, c.state = sel, stateSelected
	if cs != nil {
		c.qresyncSelect(a.qresync, cs, snap.UIDNext)
	}
	if sel.readOnly {
		c.ok("[READ-ONLY] EXAMINE completed")
	} else {
		c.ok("[READ-WRITE] SELECT completed")
	}
}

// qresyncSelect reports what changed since the client's last session
// (RFC 7162 3.2.5.1): VANISHED (EARLIER) for expunged UIDs, FETCH for
// messages changed or added after the client's MODSEQ. cs holds the
// changes since that MODSEQ, uidNext the UIDNEXT of the snapshot the
// view came from.
func (c *conn) qresyncSelect(q *qresyncArgs, cs *store.ChangeSet, uidNext store.UID) {
	sel := c.sel
	known := store.AllUIDs()
	if q.knownUIDs != nil {
		known = rawUIDSet(*q.knownUIDs) // "*": the largest UID there could be
	}
	// Changes is read after the snapshot the view came from: a message
	// expunged in between is still in the view, and goes as a plain
	// VANISHED once one may be sent, not as one the client never had.
	c.writeVanishedEarlier(vanished(known, cs, sel.uids, uidNext))
	type change struct {
		uid    store.UID
		modSeq store.ModSeq
		flags  store.Flags
	}
	var changes []change
	for _, u := range cs.Updated {
		changes = append(changes, change{u.UID, u.ModSeq, u.Flags})
	}
	for _, m := range cs.Added {
		changes = append(changes, change{m.UID, m.ModSeq, m.Flags})
	}
	slices.SortFunc(changes, func(x, y change) int { return int(x.uid) - int(y.uid) })
	for _, ch := range changes {
		if seq := sel.seq(ch.uid); seq > 0 {
			c.writeFlagsFetch(seq, ch.uid, ch.modSeq, ch.flags, true)
		}
	}
}

// vanished returns the UIDs of known that cs says went, the answer of
// VANISHED (EARLIER): those cs lists or, when the store forgot when some
// went, every one below uidNext that the mailbox lacks (RFC 7162 5).
// Either way it leaves out those the view (its UIDs, ascending) still
// holds: they went after the view was made, and go to the client as a
// plain VANISHED, which takes them out of its count (RFC 7162 3.2.10).
// Told of one by both, a client that drops the UID at VANISHED (EARLIER)
// finds nothing to take out at the VANISHED, and counts one message too
// many.
func vanished(known store.UIDSet, cs *store.ChangeSet, view []store.UID, uidNext store.UID) store.UIDSet {
	if cs.Forgotten {
		return known.Absent(mergeUIDs(cs.Present, view), uidNext)
	}
	var uids []store.UID
	for _, u := range cs.Expunged {
		if _, held := slices.BinarySearch(view, u); known.Contains(u) && !held {
			uids = append(uids, u)
		}
	}
	return store.UIDSetOf(uids...)
}

// mergeUIDs returns the UIDs of a and b, ascending and each once.
func mergeUIDs(a, b []store.UID) []store.UID {
	all := slices.Concat(a, b)
	slices.Sort(all)
	return slices.Compact(all)
}

// writeVanishedEarlier writes VANISHED (EARLIER) for uids, if any (RFC
// 7162 3.2.10).
func (c *conn) writeVanishedEarlier(uids store.UIDSet) {
	if !uids.Empty() {
		c.w.str("* VANISHED (EARLIER) " + uids.String() + "\r\n")
	}
}

// writeFlagsList writes the FLAGS response and PERMANENTFLAGS for the
// view's keywords (RFC 9051 7.3.5, 7.1).
func writeFlagsList(w *writer, sel *selected) {
	flags := append([]string{`\Answered`, `\Flagged`, `\Deleted`, `\Seen`, `\Draft`}, sel.keywords...)
	w.str("* FLAGS (" + strings.Join(flags, " ") + ")\r\n")
	if sel.readOnly {
		w.str("* OK [PERMANENTFLAGS ()] read-only\r\n")
	} else {
		w.str("* OK [PERMANENTFLAGS (" + strings.Join(flags, " ") + ` \*)] flags permitted` + "\r\n")
	}
}

// announceKeywords sends FLAGS and PERMANENTFLAGS again when flags, about
// to be reported, hold keywords the last FLAGS response did not list, so
// that clients that take the mailbox's keywords from it (as tags) learn of
// one another device set, as they would at the next SELECT.
func (c *conn) announceKeywords(flags store.Flags) {
	sel := c.sel
	added := false
	for _, k := range flags.Keywords {
		if !slices.ContainsFunc(sel.keywords, func(s string) bool { return strings.EqualFold(s, k) }) {
			sel.keywords = append(slices.Clip(sel.keywords), k)
			added = true
		}
	}
	if added {
		writeFlagsList(c.w, sel)
	}
}

// writeFlagsFetch writes an unsolicited "* n FETCH (FLAGS ...)", with UID
// and MODSEQ once CONDSTORE is on (RFC 7162 3.1.4, 3.2.4).
func (c *conn) writeFlagsFetch(seq uint32, uid store.UID, modSeq store.ModSeq, flags store.Flags, withFlags bool) {
	w := c.w
	w.str("* ")
	w.num(uint64(seq))
	w.str(" FETCH (")
	sep := ""
	if c.condstore {
		w.str("UID ")
		w.num(uint64(uid))
		sep = " "
	}
	if withFlags {
		w.str(sep + "FLAGS (" + strings.Join(flags.Names(), " ") + ")")
		sep = " "
	}
	if c.condstore {
		w.str(sep + "MODSEQ (")
		w.num(uint64(modSeq))
		w.str(")")
	}
	w.str(")\r\n")
}

// unselect leaves the selected state.
func (c *conn) unselect() {
	if c.sel != nil {
		c.srv.releaseFeed(c.sel.feed)
	}
	c.sel, c.state = nil, stateAuth
	c.searchRes = nil // RFC 5182 2.1
}

// sync brings the view up to date with the store and tells the client.
// It asks the store after every command rather than wait for a
// notification: notifications from other processes and nodes arrive late,
// and a client that sees a change in one session expects the next command
// in another to show it. The question costs at most one cheap read
// (storeChanged) unless something changed. With expungeOK false, expunges
// wait (RFC 9051 7.5.1).
func (c *conn) sync(expungeOK bool) { c.catchUp(expungeOK, 0) }

// catchUp is sync. wake, when not 0, is the wake-up of an idle session
// that calls it: a change set read after it serves, so the session does
// not ask the store for HighestModSeq, and ten thousand sessions woken at
// once cost one read per mailbox. The EXISTS it sends also counts what
// takeOwn took in; a count not sent (the read failed) waits for the next
// catchUp.
func (c *conn) catchUp(expungeOK bool, wake uint64) {
	sel := c.sel
	need, changed := store.ModSeq(0), true
	if wake == 0 {
		need, changed = c.storeChanged()
	}
	if changed {
		cs, err := sel.feed.changes(c.ctx, c.sess, sel.modSeq, need, wake)
		xcheckf(err, "changes of %s", sel.mb.Name)
		if cs.Gone {
			// The mailbox was deleted elsewhere.
			c.w.str("* BYE selected mailbox was deleted\r\n")
			c.w.flush()
			c.closing = true
			return
		}
		sel.unannounced += c.applyChanges(cs)
	}
	if expungeOK {
		c.reportPending()
	}
	if sel.unannounced > 0 {
		c.w.str("* ")
		c.w.num(uint64(len(sel.uids)))
		c.w.str(" EXISTS\r\n")
		sel.unannounced = 0
	}
	if c.condstore && len(sel.pendingExpunge) > 0 {
		// RFC 7162 3.2 (erratum 1810): MODSEQs above expunges held back
		// may have gone out; a client that loses the connection now must
		// resync from below those expunges, or keep their messages.
		c.writeHighestModSeq()
	}
}

// enableCondstore turns CONDSTORE on, for a CONDSTORE enabling command
// (RFC 7162 3.1). Enabled in the selected state, the client has had no
// HIGHESTMODSEQ of the mailbox yet: it gets one.
func (c *conn) enableCondstore() {
	if !c.condstore {
		c.condstore = true
		c.writeHighestModSeq()
	}
}

// writeHighestModSeq writes "* OK [HIGHESTMODSEQ n]" for the selected
// mailbox, n the MODSEQ up to which the client has every change: the
// view's, or below the expunges it still holds back.
func (c *conn) writeHighestModSeq() {
	sel := c.sel
	if sel == nil {
		return
	}
	ms := sel.modSeq
	if len(sel.pendingExpunge) > 0 {
		ms = sel.pendingFloor
	}
	c.w.str("* OK [HIGHESTMODSEQ ")
	c.w.num(uint64(max(ms, 1)))
	c.w.str("] highest\r\n")
}

// expungeAllowed reports whether EXPUNGE responses may be sent during a
// command: not during FETCH, STORE, SEARCH, SORT and THREAD, whose
// message numbers would shift under the client; during their UID forms,
// yes (RFC 9051 7.5.1, RFC 5256 3 and 4).
func expungeAllowed(name string) bool {
	switch name {
	case "FETCH", "STORE", "SEARCH", "SORT", "THREAD":
		return false
	}
	return true
}

// syncAfterNo is sync for a command the server refused: the updates it
// may carry still go to the client, so that the next command does not fail the same
// way on a stale view. A failure here is left for the next command to
// meet.
func (c *conn) syncAfterNo(cmd *command) {
	if c.sel == nil || c.closing {
		return
	}
	defer func() {
		switch x := recover().(type) {
		case nil:
		case ioError:
			c.closing = true
		case userError, serverError:
			c.log.Debug("updates after a failed command", "cmd", cmd.name, "err", x)
		default:
			c.log.Error("updates after a failed command panicked", "cmd", cmd.name, "panic", x, "stack", string(debug.Stack()))
		}
	}()
	c.sync(expungeAllowed(cmd.name))
}

// reportPending reports the expunges the view holds back; the caller
// knows EXPUNGE may be sent now.
func (c *conn) reportPending() {
	if len(c.sel.pendingExpunge) > 0 {
		c.reportExpunged(c.sel.pendingExpunge)
	}
}

// xexpungeIssued ends a FETCH that found fewer of the view's messages than
// it named, or could not read the bodies of some (skipped): another session
// expunged them meanwhile. A UID FETCH may report the expunges (RFC 9051
// 7.5.1) and then has answered for every message the client still knows;
// FETCH cannot, and answers NO [EXPUNGEISSUED] (RFC 5530), as does a UID
// FETCH that skipped a message which is still there.
func (c *conn) xexpungeIssued(uidCmd bool, skipped []store.UID) {
	if uidCmd {
		c.sync(true)
		if !slices.ContainsFunc(skipped, func(u store.UID) bool { return c.sel.seq(u) > 0 }) {
			return
		}
	}
	xuserErrorf("EXPUNGEISSUED", "some messages were expunged meanwhile")
}

// storeChanged reports whether the selected mailbox changed since the
// view last caught up, and its highest MODSEQ: as of the command's
// arrival at least, so that every change a client saw acknowledged
// before it sent the command shows (the store may answer from a read the
// command made).
func (c *conn) storeChanged() (store.ModSeq, bool) {
	hms, err := c.sess.HighestModSeq(c.ctx, c.sel.mb.ID, c.cmdArrived)
	if errors.Is(err, store.ErrNoMailbox) {
		return 0, true // Changes tells the session it is gone
	}
	xcheckf(err, "changes of %s", c.sel.mb.Name)
	return hms, hms != c.sel.modSeq
}

// applyChanges takes a change set into the view: flag changes go to the
// client at once, expunges wait in pendingExpunge, new messages join the
// view. It returns how many joined.
func (c *conn) applyChanges(cs *store.ChangeSet) (added int) {
	sel := c.sel
	if len(sel.pendingExpunge) == 0 {
		sel.pendingFloor = sel.modSeq
	}
	expunged := cs.Expunged
	if cs.Forgotten {
		// The store forgot when some messages went: those of the view
		// it no longer has went after the view's MODSEQ.
		expunged = missing(sel.uids, cs.Present)
	}
	for _, u := range expunged {
		if sel.seq(u) > 0 {
			if i, found := slices.BinarySearch(sel.pendingExpunge, u); !found {
				sel.pendingExpunge = slices.Insert(sel.pendingExpunge, i, u)
			}
		}
	}
	for _, u := range cs.Updated {
		c.announceKeywords(u.Flags)
		seq := sel.seq(u.UID)
		if seq > 0 && sel.flags != nil {
			sel.flags[seq-1] = u.Flags.System
		}
		if seq == 0 || sel.reported[u.UID] >= u.ModSeq {
			continue
		}
		if _, gone := slices.BinarySearch(sel.pendingExpunge, u.UID); gone {
			continue
		}
		c.writeFlagsFetch(seq, u.UID, u.ModSeq, u.Flags, true)
	}
	last := sel.lastUID()
	for _, m := range cs.Added {
		c.announceKeywords(m.Flags)
		if m.UID > last {
			sel.uids = append(sel.uids, m.UID)
			if sel.flags != nil {
				sel.flags = append(sel.flags, m.Flags.System)
			}
			last = m.UID
			added++
		}
	}
	sel.modSeq = max(sel.modSeq, cs.HighestModSeq)
	clear(sel.reported)
	return added
}

// missing returns the UIDs of uids that present lacks; both ascend.
func missing(uids, present []store.UID) []store.UID {
	var out []store.UID
	j := 0
	for _, u := range uids {
		for j < len(present) && present[j] < u {
			j++
		}
		if j == len(present) || present[j] != u {
			out = append(out, u)
		}
	}
	return out
}

// reportExpunged removes UIDs from the view and tells the client:
// VANISHED with QRESYNC (RFC 7162 3.2.10), EXPUNGE otherwise (RFC 9051
// 7.5.1). uids is ascending.
func (c *conn) reportExpunged(uids []store.UID) {
	sel := c.sel
	keep := sel.uids[:0]
	var keepFlags []store.SystemFlags // in step with keep, when the view has flags
	if sel.flags != nil {
		keepFlags = sel.flags[:0]
	}
	var gone []store.UID
	j := 0
	for i, u := range sel.uids {
		for j < len(uids) && uids[j] < u {
			j++
		}
		if j < len(uids) && uids[j] == u {
			if !c.qresync {
				// Each EXPUNGE renumbers the messages after it.
				c.w.str("* ")
				c.w.num(uint64(len(keep) + 1))
				c.w.str(" EXPUNGE\r\n")
			}
			gone = append(gone, u)
			continue
		}
		keep = append(keep, u)
		if sel.flags != nil {
			keepFlags = append(keepFlags, sel.flags[i])
		}
	}
	sel.uids = keep
	if sel.flags != nil {
		sel.flags = keepFlags
	}
	if c.qresync && len(gone) > 0 {
		c.w.str("* VANISHED " + store.UIDSetOf(gone...).String() + "\r\n")
	}
	// Drop expunged UIDs from pending and the saved search result.
	if len(c.searchRes) > 0 {
		c.searchRes = slices.DeleteFunc(c.searchRes, func(u store.UID) bool {
			_, found := slices.BinarySearch(gone, u)
			return found
		})
	}
	sel.pendingExpunge = slices.DeleteFunc(sel.pendingExpunge, func(u store.UID) bool {
		_, found := slices.BinarySearch(gone, u)
		return found
	})
}
