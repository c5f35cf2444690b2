package imapserver

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/buzon-mail/buzon/internal/message"
	"github.com/buzon-mail/buzon/internal/mutf7"
	"github.com/buzon-mail/buzon/internal/store"
)

// xmailboxName turns a mailbox name as the client sent it into the
// store's canonical UTF-8 form: modified UTF-7 from IMAP4rev1 clients
// (RFC 3501 5.1.3), UTF-8 from the others (RFC 9051 5.1, RFC 6855 3).
func (c *conn) xmailboxName(raw string) string {
	name := raw
	if !utf8.ValidString(raw) {
		xuserErrorf("CANNOT", "mailbox name is not UTF-8")
	}
	if !c.utf8 {
		dec, err := mutf7.Decode(raw)
		switch {
		case err == nil:
			name = dec
		case !isASCII(raw):
			// A client that sends UTF-8 without enabling it means UTF-8.
		default:
			xuserErrorf("CANNOT", "mailbox name is not valid modified UTF-7")
		}
	}
	return store.CanonicalMailboxName(name)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// mailboxOut spells a store name for this client.
func (c *conn) mailboxOut(name string) string {
	if c.utf8 {
		return name
	}
	return mutf7.Encode(name)
}

// writeMailbox writes a mailbox name as a string.
func (c *conn) writeMailbox(name string) { c.w.string(c.mailboxOut(name)) }

// aliasSpecialUse maps the names Outlook and Apple Mail use for the
// special folders to the special-use attribute they stand for. Such a
// name, when no mailbox has it, is an alias of the mailbox with that
// attribute: clients that do not read SPECIAL-USE find the folders by
// their own names, and none appears twice.
func aliasSpecialUse(name string) string {
	switch name {
	case "Sent Items", "Sent Messages":
		return store.SpecialSent
	case "Deleted Items", "Deleted Messages":
		return store.SpecialTrash
	case "Junk E-mail", "Junk Email": // Outlook 2010; Outlook 2013 and Outlook.com
		return store.SpecialJunk
	}
	return ""
}

// specialUseMailbox finds the mailbox with a special-use attribute.
func specialUseMailbox(mbs []store.Mailbox, use string) (store.Mailbox, bool) {
	for _, m := range mbs {
		if m.SpecialUse == use {
			return m, true
		}
	}
	return store.Mailbox{}, false
}

// lookupMailbox finds a mailbox by canonical name, or the special-use
// mailbox an alias stands for (aliasSpecialUse).
func (c *conn) lookupMailbox(name string) (store.Mailbox, error) {
	mb, err := c.sess.Mailbox(c.ctx, name)
	if errors.Is(err, store.ErrNoMailbox) {
		if use := aliasSpecialUse(name); use != "" {
			mbs, lerr := c.sess.Mailboxes(c.ctx)
			if lerr != nil {
				return store.Mailbox{}, lerr
			}
			if m, ok := specialUseMailbox(mbs, use); ok {
				return m, nil
			}
		}
	}
	return mb, err
}

func (c *conn) xlookupMailbox(name string) store.Mailbox {
	mb, err := c.lookupMailbox(name)
	xcheckf(err, "mailbox %s", name)
	return mb
}

// xcheckNewName validates a name for CREATE and RENAME.
func (c *conn) xcheckNewName(name string) {
	if limit := c.srv.cfg.Limits.MaxMailboxNameLength; limit > 0 && len(name) > limit {
		xuserErrorf("LIMIT", "mailbox name too long")
	}
	if err := store.ValidMailboxName(name); err != nil {
		xuserErrorf("CANNOT", "%v", err)
	}
}

// xcreateParents creates the missing superiors of name (RFC 9051 6.3.4),
// within the mailbox limit.
func (c *conn) xcreateParents(name string, existing []store.Mailbox, adding int) {
	var missing []string
	for i := 0; i < len(name); i++ {
		if name[i] != store.HierarchyDelimiter {
			continue
		}
		parent := name[:i]
		if !slices.ContainsFunc(existing, func(m store.Mailbox) bool { return m.Name == parent }) {
			missing = append(missing, parent)
		}
	}
	for _, parent := range missing {
		// A parent named like an alias would become a second Sent or
		// Trash, and the alias would name it from then on.
		alias := aliasSpecialUse(parent)
		if m, ok := specialUseMailbox(existing, alias); alias != "" && ok {
			xuserErrorf("CANNOT", "%s is %s here; create the folder below %s", parent, m.Name, m.Name)
		}
	}
	if limit := c.srv.cfg.Limits.MaxMailboxes; limit > 0 && len(existing)+len(missing)+adding > limit {
		xuserErrorf("LIMIT", "too many mailboxes")
	}
	for _, parent := range missing {
		_, err := c.sess.CreateMailbox(c.ctx, parent, "")
		if errors.Is(err, store.ErrMailboxExists) {
			continue
		}
		xcheckf(err, "create %s", parent)
	}
}

// RFC 9051 6.3.4, RFC 6154 3 (CREATE-SPECIAL-USE)
func (c *conn) cmdCreate(cmd *command) {
	a := cmd.args.(*createArgs)
	name := c.xmailboxName(a.mailbox)
	// A trailing delimiter only says that children will follow.
	name = strings.TrimSuffix(name, string(store.HierarchyDelimiter))
	if name == "INBOX" {
		xuserErrorf("ALREADYEXISTS", "INBOX always exists")
	}
	c.xcheckNewName(name)
	var use string
	switch len(a.use) {
	case 0:
	case 1:
		use = specialUseName(a.use[0])
		if use == "" {
			xuserErrorf("USEATTR", "unknown special-use attribute %s", a.use[0])
		}
	default:
		xuserErrorf("USEATTR", "one special-use attribute per mailbox")
	}
	mbs, err := c.sess.Mailboxes(c.ctx)
	xcheckf(err, "list mailboxes")
	if alias := aliasSpecialUse(name); alias != "" && !slices.ContainsFunc(mbs, func(m store.Mailbox) bool { return m.Name == name }) {
		// Outlook creates its special folders when LIST does not show
		// them by its names; a second Sent would split the sent mail.
		if m, ok := specialUseMailbox(mbs, alias); ok {
			xuserErrorf("ALREADYEXISTS", "mailbox %s is %s", name, m.Name)
		}
		if use == "" {
			use = alias
		}
	}
	c.xcreateParents(name, mbs, 1)
	_, err = c.sess.CreateMailbox(c.ctx, name, use)
	xcheckf(err, "create %s", name)
}

// specialUseName returns the canonical spelling of a special-use attribute,
// or "" when it is unknown.
func specialUseName(s string) string {
	for _, u := range []string{store.SpecialAll, store.SpecialArchive, store.SpecialDrafts,
		store.SpecialFlagged, store.SpecialJunk, store.SpecialSent, store.SpecialTrash} {
		if strings.EqualFold(u, s) {
			return u
		}
	}
	return ""
}

// RFC 9051 6.3.5
func (c *conn) cmdDelete(cmd *command) {
	name := c.xmailboxName(cmd.args.(*mailboxArgs).mailbox)
	if name == "INBOX" {
		xuserErrorf("CANNOT", "INBOX cannot be deleted")
	}
	// A session that deletes its own selected mailbox is told goodbye by
	// the sync after the command, as one whose mailbox another session
	// deleted is: a client that believes a mailbox is selected would get
	// BAD for its next command otherwise.
	xcheckf(c.sess.DeleteMailbox(c.ctx, name), "delete %s", name)
}

// RFC 9051 6.3.6
func (c *conn) cmdRename(cmd *command) {
	a := cmd.args.(*renameArgs)
	from, to := c.xmailboxName(a.from), c.xmailboxName(a.to)
	to = strings.TrimSuffix(to, string(store.HierarchyDelimiter))
	if to == "INBOX" {
		xuserErrorf("ALREADYEXISTS", "INBOX always exists")
	}
	c.xcheckNewName(to)
	// Renaming INBOX moves its messages and leaves it and its children
	// in place (RFC 9051 6.3.6), so INBOX/old is a name it may take.
	if from != "INBOX" && strings.HasPrefix(to, from+string(store.HierarchyDelimiter)) {
		xuserErrorf("CANNOT", "cannot rename a mailbox below itself")
	}
	mb, err := c.sess.Mailbox(c.ctx, from)
	xcheckf(err, "mailbox %s", from)
	switch other, err := c.lookupMailbox(to); {
	case errors.Is(err, store.ErrNoMailbox):
	case err != nil:
		xcheckf(err, "mailbox %s", to)
	case other.ID != mb.ID || other.Name == to: // Sent may take its own alias's name
		xuserErrorf("ALREADYEXISTS", "mailbox %s exists", to) // or an alias of it
	}
	mbs, err := c.sess.Mailboxes(c.ctx)
	xcheckf(err, "list mailboxes")
	c.xcreateParents(to, mbs, 0)
	xcheckf(c.sess.RenameMailbox(c.ctx, from, to), "rename %s", from)
	if from == "INBOX" {
		// INBOX's messages moved and INBOX stays (RFC 9051 6.3.6), with
		// its children.
		return
	}
	// The selected mailbox, if it was renamed (itself or as a child),
	// stays selected under its new name: RFC 9051 leaves the selected
	// state only by CLOSE, UNSELECT, SELECT or LOGOUT.
	if c.sel != nil {
		c.renameSelected()
	}
}

// renameSelected gives the selected mailbox the name it has now. It keeps
// its ID, UIDs, UIDVALIDITY and MODSEQs through a rename (see
// store.Session RenameMailbox), so the view and the feed stay as they
// are, and it is found by ID: the name the session holds may be stale
// (another session may have renamed it since), and one worked out from
// it could name another mailbox.
func (c *conn) renameSelected() {
	mbs, err := c.sess.Mailboxes(c.ctx)
	xcheckf(err, "list mailboxes")
	for _, mb := range mbs {
		if mb.ID == c.sel.mb.ID {
			c.sel.mb = mb
			return
		}
	}
}

// RFC 9051 6.3.7, 6.3.8. An alias (aliasSpecialUse) subscribes the
// mailbox it stands for: a subscription of the alias would list as a
// mailbox that does not exist.
func (c *conn) cmdSubscribe(cmd *command) {
	name := c.xmailboxName(cmd.args.(*mailboxArgs).mailbox)
	subscribe := cmd.name == "SUBSCRIBE"
	mb, err := c.lookupMailbox(name)
	switch {
	case err == nil:
	case subscribe || !errors.Is(err, store.ErrNoMailbox):
		xcheckf(err, "mailbox %s", name)
	default:
		mb.Name = name // unsubscribing a mailbox that is gone
	}
	verb := strings.ToLower(cmd.name)
	xcheckf(c.sess.SetSubscribed(c.ctx, mb.Name, subscribe), "%s %s", verb, name)
	if !subscribe && mb.Name != name {
		// The alias itself, subscribed before aliases were resolved.
		xcheckf(c.sess.SetSubscribed(c.ctx, name, false), "%s %s", verb, name)
	}
}

// RFC 9051 6.3.10, RFC 2342
func (c *conn) cmdNamespace(cmd *command) {
	c.w.str(`* NAMESPACE (("" "/")) NIL NIL` + "\r\n")
}

// xstatusItems refuses STATUS items the server does not know, before
// HIGHESTMODSEQ turns CONDSTORE on (RFC 7162 3.1: a CONDSTORE enabling
// command): a command answered BAD has no effect.
func (c *conn) xstatusItems(items []string) {
	for _, it := range items {
		switch it {
		case "MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED", "SIZE", "RECENT", "APPENDLIMIT", "HIGHESTMODSEQ":
		default:
			xsyntaxErrorf("unknown STATUS item %s", it)
		}
	}
	if slices.Contains(items, "HIGHESTMODSEQ") {
		c.enableCondstore()
	}
}

// writeStatus writes "* STATUS name (...)" (RFC 9051 7.3.2) for mb, under
// the name the client asked for: clients match the answer to the command
// by name, and an alias (aliasSpecialUse) names a mailbox called otherwise.
func (c *conn) writeStatus(name string, mb store.Mailbox, items []string) {
	st, err := c.sess.Status(c.ctx, mb.ID)
	xcheckf(err, "status of %s", mb.Name)
	c.w.str("* STATUS ")
	c.writeMailbox(name)
	c.w.str(" (")
	for i, it := range items {
		if i > 0 {
			c.w.byte(' ')
		}
		c.w.str(it + " ")
		switch it {
		case "MESSAGES":
			c.w.num(uint64(st.Messages))
		case "UIDNEXT":
			c.w.num(uint64(st.UIDNext))
		case "UIDVALIDITY":
			c.w.num(uint64(st.UIDValidity))
		case "UNSEEN":
			c.w.num(uint64(st.Unseen))
		case "DELETED":
			c.w.num(uint64(st.Deleted)) // RFC 9051 6.3.11
		case "SIZE":
			c.w.num(uint64(st.Size)) // RFC 8438
		case "HIGHESTMODSEQ":
			c.w.num(uint64(st.HighestModSeq)) // RFC 7162 3.1.2.3
		case "RECENT":
			c.w.num(0) // \Recent is not kept
		case "APPENDLIMIT":
			c.w.num(uint64(c.srv.cfg.Limits.MaxMessageSize)) // RFC 7889 4
		}
	}
	c.w.str(")\r\n")
}

// RFC 9051 6.3.11
func (c *conn) cmdStatus(cmd *command) {
	a := cmd.args.(*statusArgs)
	c.xstatusItems(a.items)
	name := c.xmailboxName(a.mailbox)
	c.writeStatus(name, c.xlookupMailbox(name), a.items)
}

// literalReader reads an APPEND literal of size bytes and counts what was
// read. A literal that ends early (the client went away) ends in
// io.ErrUnexpectedEOF, not io.EOF: whoever reads it must not take the part
// that came for a whole message.
type literalReader struct {
	r    io.Reader
	n    int64
	size int64
}

func (r *literalReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.n += int64(n)
	if err == io.EOF && r.n < r.size {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// errBareLineEnd: see lineEndChecker.
var errBareLineEnd = errors.New("bare CR or LF in binary content")

// lineEndChecker fails a binary APPEND (RFC 3516 literal8) whose bytes
// hold a CR or LF that is not part of a CRLF. Messages are stored with
// CRLF line endings, which would change such bytes: a binary part of
// bare line ends cannot be kept as sent, and RFC 3516 4.4 forbids a
// transformation that loses data. NULs and 8-bit bytes are stored as
// they are.
type lineEndChecker struct {
	r    io.Reader
	ends message.LineEnds
}

func (l *lineEndChecker) Read(b []byte) (int, error) {
	n, err := l.r.Read(b)
	if l.ends.Bare(b[:n]) || err == io.EOF && l.ends.BareAtEnd() {
		return n, errBareLineEnd
	}
	return n, err
}

// RFC 9051 6.3.12, RFC 3502 (MULTIAPPEND), RFC 4315 (APPENDUID)
func (c *conn) cmdAppend(cmd *command) {
	a := cmd.args.(*appendArgs)
	p := cmd.p
	name := c.xmailboxName(a.mailbox)
	mb, err := c.lookupMailbox(name)
	if errors.Is(err, store.ErrNoMailbox) {
		xuserErrorf("TRYCREATE", "no mailbox %s", name)
	}
	xcheckf(err, "mailbox %s", name)
	var uids []store.UID
	var uidValidity uint32
	// What each message became, for the view (takeOwn).
	type appended struct {
		res   store.AppendResult
		flags store.Flags
	}
	var added []appended
	// RFC 3502 6: all or nothing. A message is stored once its literal
	// is read, but the command is done only at its final CRLF: what went
	// in before a failure (the connection lost, a syntax error after a
	// literal) is taken out again, also when the session is ending.
	defer func() {
		if x := recover(); x != nil {
			if len(uids) > 0 {
				ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), 30*time.Second)
				if _, err := c.sess.Expunge(ctx, mb.ID, store.UIDSetOf(uids...), false); err != nil {
					c.log.Error("undoing an APPEND that did not complete", "uids", store.UIDSetOf(uids...).String(), "err", err)
				}
				cancel()
			}
			panic(x)
		}
	}()
	m := a.first
	for {
		if m.lit.size > c.srv.cfg.Limits.MaxMessageSize {
			p.refuseLiteral(m.lit, "TOOBIG", "message too big") // RFC 7889 APPENDLIMIT
		}
		flags, err := store.ParseFlags(m.flags)
		if err != nil {
			xuserErrorf("CANNOT", "%v", err)
		}
		if m.lit.sync {
			c.xroomFor(p, m.lit)
		}
		c.awaitLiteral(m.lit.sync)
		cr := &literalReader{r: io.LimitReader(p.r.br, m.lit.size), size: m.lit.size}
		var msg io.Reader = cr
		if m.lit.binary {
			msg = &lineEndChecker{r: cr}
		}
		res, err := c.srv.cfg.Append(c.ctx, c.sess, mb.ID, msg, m.lit.size, flags, m.date)
		if err == nil {
			uids = append(uids, res.UID) // undone if the command fails from here on
			uidValidity = res.UIDValidity
			added = append(added, appended{res, flags})
		}
		if _, derr := io.Copy(io.Discard, cr); derr != nil || cr.n != m.lit.size {
			panic(ioError{errors.New("reading APPEND literal: connection ended")})
		}
		p.nextLine()
		if m.utf8 {
			p.xtake(")")
		}
		if errors.Is(err, errBareLineEnd) {
			// RFC 3516 4.4: a transformation must not lose data, and
			// one that cannot be stored as sent is refused so.
			xuserErrorf("UNKNOWN-CTE", "binary content with a bare CR or LF cannot be stored; send it base64-encoded")
		}
		xcheckf(err, "append to %s", name)
		if p.atEnd() {
			break
		}
		p.xspace()
		m = p.xappendMessage()
	}
	for _, ap := range added {
		c.takeOwn(mb.ID, ap.res.Written, store.ChangeSet{Added: []store.MessageInfo{{UID: ap.res.UID, ModSeq: ap.res.ModSeq, Flags: ap.flags}}})
	}
	c.ok("[APPENDUID %d %s] APPEND completed", uidValidity, store.UIDSetOf(uids...).String())
}

// xroomFor refuses with NO [OVERQUOTA], before the client sends it, a
// message whose synchronising literal would take the account over its
// quota: a client re-uploading a large message (a phone saving to
// Sent) is spared the upload. Append checks the quota again, atomically
// with the insert; an account without a quota when it logged in is not
// asked here.
func (c *conn) xroomFor(p *parser, lit literalHeader) {
	if c.acct.Quota == (store.Quota{}) {
		return
	}
	q, err := c.sess.QuotaUsage(c.ctx)
	xcheckf(err, "quota")
	if q.MaxBytes > 0 && q.Bytes+lit.size > q.MaxBytes || q.MaxMessages > 0 && q.Messages >= q.MaxMessages {
		p.refuseLiteral(lit, "OVERQUOTA", "over quota")
	}
}

// RFC 9208 4.1.1
func (c *conn) cmdGetQuota(cmd *command) {
	root := cmd.args.(*quotaArgs).root
	q, err := c.sess.QuotaUsage(c.ctx)
	xcheckf(err, "quota")
	if root != "" || !hasQuota(q) {
		xuserErrorf("NONEXISTENT", "no such quota root")
	}
	c.writeQuota(q)
}

// RFC 9208 4.1.2
func (c *conn) cmdGetQuotaRoot(cmd *command) {
	name := c.xmailboxName(cmd.args.(*mailboxArgs).mailbox)
	c.xlookupMailbox(name) // NONEXISTENT for a name that is not a mailbox
	q, err := c.sess.QuotaUsage(c.ctx)
	xcheckf(err, "quota")
	c.w.str("* QUOTAROOT ")
	c.writeMailbox(name) // as asked, like STATUS
	if hasQuota(q) {
		c.w.str(` ""`)
	}
	c.w.str("\r\n")
	if hasQuota(q) {
		c.writeQuota(q)
	}
}

// RFC 9208 4.1.3: quotas are set by the administrator.
func (c *conn) cmdSetQuota(cmd *command) {
	xuserErrorf("NOPERM", "quotas are set by the administrator")
}

func hasQuota(q store.QuotaUsage) bool { return q.MaxBytes > 0 || q.MaxMessages > 0 }

// writeQuota writes the one quota root "" with the resources that have a
// limit (RFC 9208 5.1: STORAGE in units of 1024 octets).
func (c *conn) writeQuota(q store.QuotaUsage) {
	c.w.str(`* QUOTA "" (`)
	sep := ""
	if q.MaxBytes > 0 {
		c.w.str("STORAGE ")
		c.w.num(uint64((q.Bytes + 1023) / 1024))
		c.w.byte(' ')
		c.w.num(uint64(q.MaxBytes / 1024))
		sep = " "
	}
	if q.MaxMessages > 0 {
		c.w.str(sep + "MESSAGE ")
		c.w.num(uint64(q.Messages))
		c.w.byte(' ')
		c.w.num(uint64(q.MaxMessages))
	}
	c.w.str(")\r\n")
}
