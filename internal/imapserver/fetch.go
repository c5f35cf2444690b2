package imapserver

import (
	"bytes"
	"cmp"
	"errors"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/buzon-mail/buzon/internal/message"
	"github.com/buzon-mail/buzon/internal/store"
)

// fetchItem is one FETCH data item (RFC 9051 6.4.5).
type fetchItem struct {
	// name is the item as it is answered: FLAGS, ENVELOPE, ..., and for
	// sections "BODY", "BINARY" or "BINARY.SIZE" (the section follows).
	name string
	// section is set for BODY[...], BINARY[...], BINARY.SIZE[...] and the
	// RFC822 forms.
	section *sectionSpec
	peek    bool // BODY.PEEK, BINARY.PEEK: \Seen is not set
	partial bool
	origin  int64
	count   int64
}

// sectionSpec is what goes between the brackets.
type sectionSpec struct {
	path   []int
	spec   message.Specifier
	fields []string // HEADER.FIELDS (.NOT) names
	not    bool
	text   string // as written back: "1.HEADER.FIELDS (SUBJECT)"
}

func parseFetch(p *parser, cmd *command) any {
	p.xspace()
	a := &fetchArgs{set: p.xnumSet(true)}
	p.xspace()
	switch {
	case p.take("("):
		// RFC 9051 9: at least one fetch-att.
		a.items = append(a.items, p.xfetchAtt())
		for !p.take(")") {
			p.xspace()
			a.items = append(a.items, p.xfetchAtt())
		}
	case p.take("ALL"):
		a.items = fetchMacro("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE")
	case p.take("FAST"):
		a.items = fetchMacro("FLAGS", "INTERNALDATE", "RFC822.SIZE")
	case p.take("FULL"):
		a.items = fetchMacro("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY")
	default:
		a.items = append(a.items, p.xfetchAtt())
	}
	if p.take(" (") {
		// RFC 7162 3.1.4, 3.2.6: fetch modifiers.
		for i := 0; !p.take(")"); i++ {
			if i > 0 {
				p.xspace()
			}
			switch {
			case p.take("CHANGEDSINCE "):
				a.changedSince = p.xnumber64()
				a.hasChanged = true
			case p.take("VANISHED"):
				a.vanished = true
			default:
				p.xerrorf("unknown FETCH modifier")
			}
		}
	}
	return a
}

// RFC 9051 6.4.5: ALL, FAST and FULL.
func fetchMacro(names ...string) []fetchItem {
	items := make([]fetchItem, len(names))
	for i, n := range names {
		items[i] = fetchItem{name: n}
	}
	return items
}

func (p *parser) xfetchAtt() fetchItem {
	name := strings.ToUpper(p.takeWhile(func(c byte) bool { return isAtomChar(c) && c != '[' && c != '<' }))
	switch name {
	case "ENVELOPE", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "BODYSTRUCTURE", "UID", "MODSEQ", "SAVEDATE":
		return fetchItem{name: name}
	case "PREVIEW":
		p.xpreviewMods()
		return fetchItem{name: name}
	case "RFC822":
		return fetchItem{name: name, section: &sectionSpec{}}
	case "RFC822.HEADER":
		return fetchItem{name: name, section: &sectionSpec{spec: message.SpecifierHeader}, peek: true}
	case "RFC822.TEXT":
		return fetchItem{name: name, section: &sectionSpec{spec: message.SpecifierText}}
	case "BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK", "BINARY.SIZE":
	default:
		p.xerrorf("unknown FETCH item %q", name)
	}
	if name == "BODY" && p.peek() != '[' {
		return fetchItem{name: "BODY"} // the non-extensible BODYSTRUCTURE
	}
	it := fetchItem{name: strings.TrimSuffix(name, ".PEEK"), peek: strings.HasSuffix(name, ".PEEK")}
	p.xtake("[")
	if it.name == "BODY" {
		it.section = p.xsection()
	} else {
		// RFC 3516 section-binary: part numbers only.
		s := &sectionSpec{}
		if p.peek() != ']' {
			s.path = p.xsectionPart()
		}
		s.text = formatPath(s.path)
		it.section = s
	}
	p.xtake("]")
	if it.name != "BINARY.SIZE" && p.take("<") {
		// RFC 9051 9: partial = "<" number64 "." nz-number64 ">"; RFC
		// 3501's 32-bit numbers are a subset.
		it.partial = true
		it.origin = int64(p.xnumber64())
		p.xtake(".")
		if it.count = int64(p.xnumber64()); it.count == 0 {
			p.xerrorf("expected non-zero number")
		}
		p.xtake(">")
	}
	return it
}

// xpreviewMods reads the modifiers that may follow PREVIEW (RFC 8970's
// formal syntax: fetch-att =/ "PREVIEW" [SP "(" preview-mod *(SP
// preview-mod) ")"]).
// The one there is, LAZY, lets a server answer NIL for a preview it does
// not have at hand (RFC 8970 4.1); this one makes every preview when it
// is asked for, from a bounded read of the message, so LAZY changes
// nothing. After a PREVIEW alone, " (" may begin the command's own
// modifiers instead ("FETCH 1 PREVIEW (CHANGEDSINCE 5)"): what follows
// it tells which.
func (p *parser) xpreviewMods() {
	start := p.pos
	if !p.take(" (") {
		return
	}
	switch mod := strings.ToUpper(p.takeWhile(isAtomChar)); mod {
	case "LAZY":
	case "CHANGEDSINCE", "VANISHED":
		p.pos = start
		return
	default:
		p.xerrorf("unknown PREVIEW modifier %q", mod)
	}
	for p.take(" ") {
		if mod := p.takeWhile(isAtomChar); !strings.EqualFold(mod, "LAZY") {
			p.xerrorf("unknown PREVIEW modifier %q", mod)
		}
	}
	p.xtake(")")
}

func (p *parser) xsectionPart() []int {
	var path []int
	for {
		path = append(path, int(p.xnznumber()))
		if p.pos+1 < len(p.line) && p.line[p.pos] == '.' && p.line[p.pos+1] >= '0' && p.line[p.pos+1] <= '9' {
			p.pos++
			continue
		}
		return path
	}
}

func formatPath(path []int) string {
	var b strings.Builder
	for i, n := range path {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

// xsection reads a section-spec (RFC 9051 9).
func (p *parser) xsection() *sectionSpec {
	s := &sectionSpec{}
	start := p.pos
	if c := p.peek(); c >= '1' && c <= '9' {
		s.path = p.xsectionPart()
		if !p.take(".") {
			s.text = string(p.line[start:p.pos])
			return s
		}
		if p.take("MIME") {
			s.spec = message.SpecifierMIME
			s.text = strings.ToUpper(string(p.line[start:p.pos]))
			return s
		}
	}
	switch {
	case p.take("HEADER.FIELDS"):
		s.spec = message.SpecifierHeader
		s.not = p.take(".NOT")
		p.xspace()
		p.xtake("(")
		for i := 0; !p.take(")"); i++ {
			if i > 0 {
				p.xspace()
			}
			s.fields = append(s.fields, p.xastring())
		}
		if len(s.fields) == 0 {
			p.xerrorf("empty header list")
		}
		prefix := ""
		if len(s.path) > 0 {
			prefix = formatPath(s.path) + "."
		}
		kw := "HEADER.FIELDS"
		if s.not {
			kw += ".NOT"
		}
		names := make([]string, len(s.fields))
		for i, f := range s.fields {
			names[i] = headerFieldName(f)
		}
		s.text = prefix + kw + " (" + strings.Join(names, " ") + ")"
		return s
	case p.take("HEADER"):
		s.spec = message.SpecifierHeader
	case p.take("TEXT"):
		s.spec = message.SpecifierText
	case len(s.path) > 0:
		p.xerrorf("bad section text")
	}
	s.text = strings.ToUpper(string(p.line[start:p.pos]))
	return s
}

// headerFieldName is a HEADER.FIELDS name as the response writes it back,
// an astring (RFC 9051 9: header-fld-name): upper-cased, as Dovecot does
// too, and quoted or a literal when it is not an atom, so that a name the
// client quoted, with a space, a parenthesis or a bracket, cannot break
// the client's reading of the response.
func headerFieldName(name string) string {
	b := []byte(name)
	atom, quotable := len(b) > 0, true
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
		atom = atom && isAtomChar(c)
		quotable = quotable && c >= ' ' && c < 0x7f
	}
	switch {
	case atom:
		return string(b)
	case quotable:
		return strconv.Quote(string(b)) // printable ASCII: Go's quoting is IMAP's
	}
	return "{" + strconv.Itoa(len(b)) + "}\r\n" + string(b)
}

// whole reports whether the section is the whole message (BODY[],
// RFC822), which needs no structure.
func (s *sectionSpec) whole() bool {
	return len(s.path) == 0 && s.spec == message.SpecifierNone && s.fields == nil
}

// fetchPlan is what a FETCH needs from the store, worked out once.
type fetchPlan struct {
	items    []fetchItem
	fields   store.Field
	body     bool // a message body must be opened
	setsSeen bool // some item sets \Seen (RFC 9051 6.4.5)
	// cache says whether rendered items go through the server's
	// renderCache: not for a FETCH of more messages than it holds, which
	// would only push out everything else.
	cache bool
	// ahead opens bodies several at a time, or is nil (each alone).
	ahead *bodyAhead
}

func (c *conn) planFetch(items []fetchItem, uid bool) fetchPlan {
	var fp fetchPlan
	if hasItem(items, "MODSEQ") {
		c.enableCondstore() // RFC 7162 3.1: an enabling command
	}
	// RFC 9051 6.4.9: UID FETCH answers with the UID.
	if uid && !hasItem(items, "UID") {
		items = append([]fetchItem{{name: "UID"}}, items...)
	}
	fp.items = items
	for _, it := range items {
		switch it.name {
		case "FLAGS", "MODSEQ":
			fp.fields |= store.FieldFlags
		case "INTERNALDATE":
			fp.fields |= store.FieldDate
		case "SAVEDATE":
			fp.fields |= store.FieldSaveDate
		case "RFC822.SIZE":
			fp.fields |= store.FieldSize
		case "ENVELOPE", "BODYSTRUCTURE", "BODY":
			fp.fields |= store.FieldStructure | store.FieldSize
		case "PREVIEW":
			// Made from the text part's first bytes, which the
			// structure locates. No \Seen: the client has not read
			// the message.
			fp.fields |= store.FieldStructure | store.FieldSize
			fp.body = true
		}
		if it.section != nil {
			fp.body = true
			fp.fields |= store.FieldSize
			if !it.section.whole() || it.name != "BODY" && it.name != "RFC822" {
				fp.fields |= store.FieldStructure
			}
			if !it.peek && it.name != "BINARY.SIZE" {
				fp.setsSeen = true
			}
		}
	}
	return fp
}

// RFC 9051 6.4.5, 6.4.9; RFC 3516 (BINARY); RFC 7162 3.1.4, 3.2.6
// (CHANGEDSINCE, VANISHED)
func (c *conn) cmdFetch(cmd *command) {
	defer c.dropDecoder()
	a := cmd.args.(*fetchArgs)
	sel := c.sel
	items := a.items
	// Refused before CHANGEDSINCE turns CONDSTORE on: a command answered
	// BAD has no effect.
	if a.vanished && (!cmd.uid || !c.qresync || !a.hasChanged) {
		xsyntaxErrorf("VANISHED needs UID FETCH, QRESYNC enabled and CHANGEDSINCE") // RFC 7162 3.2.6
	}
	if a.hasChanged {
		c.enableCondstore()
		if !hasItem(items, "MODSEQ") {
			items = append(items, fetchItem{name: "MODSEQ"})
		}
	}
	plan := c.planFetch(items, cmd.uid)
	// RFC 7162 3.2.6: the expunges since CHANGEDSINCE, read before the
	// view catches up (xresolve may), so that those it holds then are
	// left for the plain VANISHED that catching up sends: see vanished.
	var earlier store.UIDSet
	if a.vanished {
		cs, err := c.sess.Changes(c.ctx, sel.mb.ID, store.ModSeq(a.changedSince))
		xcheckf(err, "changes")
		earlier = vanished(rawUIDSet(a.set), cs, sel.uids, cs.UIDNext)
	}
	set := c.xresolve(a.set, cmd.uid)
	plan.cache = fitsCache(c.srv.rendered, sel.inView(set))
	if plan.body && !a.hasChanged { // CHANGEDSINCE skips messages: no telling which
		plan.ahead = c.newBodyAhead(set)
		defer plan.ahead.close()
	}

	c.writeVanishedEarlier(earlier)
	if set.Empty() {
		return
	}

	// Implicit \Seen first, so the answers carry the new flags (RFC 9051
	// 6.4.5); EXAMINE never changes flags. Each answer reports the flags
	// and MODSEQ the change gave its message, which the view records as
	// reported: not what Messages reads after, which may hold a later
	// change the sync after the command reports in turn.
	seen := map[store.UID]*store.FlagUpdate{}
	if plan.setsSeen && !sel.readOnly {
		res, err := c.sess.StoreFlags(c.ctx, sel.mb.ID, set, store.FlagsAdd, store.Flags{System: store.FlagSeen}, 0)
		xcheckf(err, "set \\Seen")
		for i := range res.Updated {
			u := &res.Updated[i]
			seen[u.UID] = u
			sel.reported[u.UID] = u.ModSeq
			c.announceKeywords(u.Flags)
		}
		c.takeOwn(sel.mb.ID, res.Written, store.ChangeSet{Updated: res.Updated})
	}

	found := 0
	var skipped []store.UID // found, but the body was gone
	err := c.sess.Messages(c.ctx, sel.mb.ID, set, plan.fields, func(m *store.MessageInfo) error {
		seq := sel.seq(m.UID)
		if seq == 0 {
			return nil
		}
		found++
		if a.hasChanged && m.ModSeq <= store.ModSeq(a.changedSince) {
			return nil
		}
		if !c.fetchMessage(seq, m, plan, seen[m.UID]) {
			skipped = append(skipped, m.UID)
		}
		return nil
	})
	xcheckf(err, "fetch")
	if found < sel.inView(set) || len(skipped) > 0 {
		c.xexpungeIssued(cmd.uid, skipped)
	}
}

func hasItem(items []fetchItem, name string) bool {
	for _, it := range items {
		if it.name == name {
			return true
		}
	}
	return false
}

// rawUIDSet is a UID set as the client wrote it, for VANISHED: that of
// UID FETCH (RFC 7162 3.2.6) and a QRESYNC SELECT's known UIDs (3.2.5).
// "*" stands for every UID above: the highest UIDs the client knows may be
// the very ones expunged, and the view's highest is only what is left
// ("1:*" after the last messages went must still report them).
func rawUIDSet(set numSet) store.UIDSet {
	var rs []store.UIDRange
	for _, r := range set.ranges {
		first, end := store.UID(r.first), store.UID(r.last)
		if first == 0 {
			first = math.MaxUint32
		}
		if end == 0 {
			end = math.MaxUint32
		}
		rs = append(rs, store.UIDRange{Start: first, Stop: end})
	}
	return store.NewUIDSet(rs...)
}

// fetchMessage writes one "* n FETCH (...)". It returns false, writing
// nothing, when the message's body is gone, or goes while its preview is
// read. seen is the change of flags that the FETCH's implicit \Seen made
// to the message, or nil.
func (c *conn) fetchMessage(seq uint32, m *store.MessageInfo, plan fetchPlan, seen *store.FlagUpdate) bool {
	var body store.Body
	if plan.body {
		b, err := c.openBody(plan.ahead, m.UID)
		if errors.Is(err, store.ErrNoMessage) {
			return false
		}
		xcheckf(err, "open message %d", m.UID)
		defer b.Close()
		body = b
	}
	// The structure is decoded when an item needs it: not for cached ones.
	var part *message.Part
	structure := func() *message.Part {
		if part == nil && plan.fields&store.FieldStructure != 0 {
			part = c.structure(m, body)
		}
		return part
	}
	// Problems that make a NO are found before anything is written. Only a
	// part to be decoded can have an encoding we cannot undo: BINARY[] is
	// the whole message as it is. A preview is made here too: reading the
	// body for it may fail.
	var preview string
	havePreview := false
	for _, it := range plan.items {
		if (it.name == "BINARY" || it.name == "BINARY.SIZE") && len(it.section.path) > 0 {
			if sp, err := structure().Section(it.section.path); err == nil && !message.KnownEncoding(sp.Encoding) {
				xuserErrorf("UNKNOWN-CTE", "unknown Content-Transfer-Encoding %s", sp.Encoding) // RFC 3516 4.3
			}
		}
		if it.name == "PREVIEW" && !havePreview {
			var err error
			preview, err = structure().Preview(body)
			if errors.Is(err, store.ErrNoMessage) {
				// Expunged by another session while the preview read
				// it (PostgreSQL reads a large body in pieces): as for a
				// body gone when opened, nothing is written yet.
				return false
			}
			xcheckf(err, "preview of message %d", m.UID)
			havePreview = true
		}
	}
	flags, modSeq := m.Flags, m.ModSeq
	if seen != nil {
		flags, modSeq = seen.Flags, seen.ModSeq
	}
	w := c.w
	w.str("* ")
	w.num(uint64(seq))
	w.str(" FETCH (")
	hasUID, hasFlags, hasModSeq := false, false, false
	for i, it := range plan.items {
		if i > 0 {
			w.byte(' ')
		}
		switch it.name {
		case "UID":
			hasUID = true
			w.str("UID ")
			w.num(uint64(m.UID))
		case "FLAGS":
			hasFlags = true
			w.str("FLAGS (" + strings.Join(flags.Names(), " ") + ")")
		case "MODSEQ":
			hasModSeq = true
			w.str("MODSEQ (")
			w.num(uint64(modSeq))
			w.str(")")
		case "INTERNALDATE":
			w.str(`INTERNALDATE "` + m.InternalDate.Format(dateTimeLayout) + `"`)
		case "SAVEDATE":
			// RFC 8514 4.2: NIL when the message has no save date, as
			// those stored before buzon kept them.
			if m.SaveDate.IsZero() {
				w.str("SAVEDATE NIL")
			} else {
				w.str(`SAVEDATE "` + m.SaveDate.Format(dateTimeLayout) + `"`)
			}
		case "RFC822.SIZE":
			w.str("RFC822.SIZE ")
			w.num(uint64(m.Size))
		case "ENVELOPE":
			w.str("ENVELOPE ")
			c.writeRendered(plan.cache, renderEnvelope, m.UID, func() { c.writeEnvelope(structure().Envelope) })
		case "BODYSTRUCTURE":
			w.str("BODYSTRUCTURE ")
			c.writeRendered(plan.cache, renderBodyStructure, m.UID, func() { c.writeBodyStructure(structure(), true) })
		case "BODY":
			if it.section == nil {
				w.str("BODY ")
				c.writeRendered(plan.cache, renderBody, m.UID, func() { c.writeBodyStructure(structure(), false) })
				break
			}
			c.writeSection(it, structure(), body, m.Size)
		case "RFC822", "RFC822.HEADER", "RFC822.TEXT":
			c.writeSection(it, structure(), body, m.Size)
		case "BINARY", "BINARY.SIZE":
			c.writeBinary(it, structure(), body, m.Size)
		case "PREVIEW":
			// RFC 8970 3.2: "" for a message without text, never NIL
			// but for LAZY; UTF-8, in a literal for a client that has
			// not enabled it in quoted strings.
			w.str("PREVIEW ")
			w.string(preview)
		}
	}
	if seen != nil {
		if !hasFlags {
			w.str(" FLAGS (" + strings.Join(flags.Names(), " ") + ")")
		}
		// RFC 7162 3.1: once CONDSTORE is on, every FETCH response that
		// reports a flag change carries UID and MODSEQ, one caused by a
		// FETCH that set \Seen included.
		if c.condstore && !hasUID {
			w.str(" UID ")
			w.num(uint64(m.UID))
		}
		if c.condstore && !hasModSeq {
			w.str(" MODSEQ (")
			w.num(uint64(modSeq))
			w.str(")")
		}
	}
	w.str(")\r\n")
	return true
}

// Bodies read ahead. Where opening a body is a round trip to a database
// server (a store.BodyBatcher, store/postgres), a FETCH of bodies over
// several messages opens them in calls of up to fetchAheadMessages
// messages and fetchAheadBytes: Messages hands the messages over in
// ascending UID order, so the set and the view say which come next. A
// body opened ahead is read whole at once, so a message expunged
// meanwhile is sent as it was, as the view still shows it.
const (
	fetchAheadMessages = 16
	fetchAheadBytes    = 2 << 20
)

// bodyAhead is a FETCH's window of bodies opened ahead.
type bodyAhead struct {
	bb  store.BodyBatcher
	set store.UIDSet // what the FETCH names
	// uids are the window's messages, ascending; bodies[i] is uids[i]'s,
	// nil once handed out or when the store did not open it.
	uids   []store.UID
	bodies []store.Body
}

// newBodyAhead returns a window for a FETCH of bodies over set, or nil
// when the store opens bodies one at a time or set names one message.
func (c *conn) newBodyAhead(set store.UIDSet) *bodyAhead {
	bb, ok := c.sess.(store.BodyBatcher)
	if !ok || c.sel.inView(set) < 2 {
		return nil
	}
	return &bodyAhead{bb: bb, set: set}
}

// openBody opens message uid's body for FETCH, from the window a if it
// holds it, else from a new window beginning with uid, else alone. The
// caller closes it.
func (c *conn) openBody(a *bodyAhead, uid store.UID) (store.Body, error) {
	if a != nil {
		i, ok := slices.BinarySearch(a.uids, uid)
		if !ok {
			if err := c.readAhead(a, uid); err != nil {
				return nil, err
			}
			i, ok = slices.BinarySearch(a.uids, uid)
		}
		if ok && a.bodies[i] != nil {
			b := a.bodies[i]
			a.bodies[i] = nil
			return b, nil
		}
	}
	return c.sess.OpenBody(c.ctx, c.sel.mb.ID, uid)
}

// readAhead replaces the window with the messages of the view in the set
// from UID from on, when there are at least two.
func (c *conn) readAhead(a *bodyAhead, from store.UID) error {
	a.close()
	view := c.sel.uids
	k, _ := slices.BinarySearchFunc(a.set, from, func(r store.UIDRange, u store.UID) int { return cmp.Compare(r.Stop, u) })
	for _, r := range a.set[k:] {
		i, _ := slices.BinarySearch(view, max(r.Start, from))
		for ; i < len(view) && view[i] <= r.Stop && len(a.uids) < fetchAheadMessages; i++ {
			a.uids = append(a.uids, view[i])
		}
		if len(a.uids) == fetchAheadMessages {
			break
		}
	}
	if len(a.uids) < 2 {
		a.uids = a.uids[:0]
		return nil
	}
	bodies, err := a.bb.OpenBodies(c.ctx, c.sel.mb.ID, a.uids, fetchAheadBytes)
	if err != nil {
		a.uids = a.uids[:0]
		return err
	}
	a.bodies = bodies
	return nil
}

// close closes the bodies of the window not handed out.
func (a *bodyAhead) close() {
	if a == nil {
		return
	}
	for _, b := range a.bodies {
		if b != nil {
			b.Close()
		}
	}
	a.uids, a.bodies = a.uids[:0], nil
}

// dropDecoder lets go of what the decoder holds, once a command is done:
// one message with thousands of parts must not stay with an idle session.
func (c *conn) dropDecoder() { c.dec = message.Decoder{} }

// structure decodes a message's stored structure, into the connection's
// decoder: the tree lasts until the next message's. A message without a
// usable one (never parsed, or corrupt) is shown as text/plain: its header
// ends at the first empty line when the body is at hand, its body is the
// rest.
func (c *conn) structure(m *store.MessageInfo, body store.Body) *message.Part {
	if len(m.Structure) > 0 {
		p, err := c.dec.Unmarshal(m.Structure)
		if err == nil {
			return p
		}
		c.log.Warn("unusable message structure", "mailbox", c.sel.mb.Name, "uid", m.UID, "err", err)
	}
	p := &message.Part{End: m.Size, MediaType: "text", MediaSubtype: "plain", Encoding: "7BIT",
		Params: []message.Param{{Name: "charset", Value: "us-ascii"}}}
	if body == nil {
		// Rare enough (a broken message) to open the body just for this.
		b, err := c.sess.OpenBody(c.ctx, c.sel.mb.ID, m.UID)
		if err != nil {
			return p
		}
		defer b.Close()
		body = b
	}
	buf := make([]byte, min(m.Size, 256*1024))
	n, _ := body.ReadAt(buf, 0)
	if i := bytes.Index(buf[:n], []byte("\r\n\r\n")); i >= 0 {
		p.BodyStart = int64(i + 4)
	}
	p.Lines = int64(bytes.Count(buf[p.BodyStart:n], []byte("\n")))
	return p
}

// writeSectionName writes "BODY[...]" (or the RFC822 name) and the origin of
// a partial fetch (RFC 9051 7.5.2).
func (c *conn) writeSectionName(it fetchItem) {
	w := c.w
	if strings.HasPrefix(it.name, "RFC822") {
		w.str(it.name)
		return
	}
	w.str(it.name + "[" + it.section.text + "]")
	if it.partial {
		w.byte('<')
		w.num(uint64(it.origin))
		w.byte('>')
	}
}

// clip bounds a byte range to the message, so a bad structure can never
// make the server read beyond the body or serve another message's bytes.
func clip(start, end, size int64) (int64, int64) {
	start = min(max(start, 0), size)
	end = min(max(end, start), size)
	return start, end
}

// partialRange applies <origin.count> to a range of length n.
func partialRange(it fetchItem, n int64) (off, length int64) {
	if !it.partial {
		return 0, n
	}
	if it.origin >= n {
		return n, 0
	}
	return it.origin, min(it.count, n-it.origin)
}

// writeSection writes a BODY[section] item, streaming from the body.
func (c *conn) writeSection(it fetchItem, part *message.Part, body store.Body, size int64) {
	c.writeSectionName(it)
	c.w.byte(' ')
	start, end := int64(0), size
	if !it.section.whole() {
		var err error
		start, end, err = part.SectionRange(it.section.path, it.section.spec)
		if err != nil {
			c.w.str("NIL") // no such part
			return
		}
	}
	start, end = clip(start, end, size)
	if it.section.fields != nil {
		hdr := make([]byte, end-start)
		if _, err := body.ReadAt(hdr, start); err != nil && !errors.Is(err, io.EOF) {
			xcheckf(err, "read header")
		}
		data := message.HeaderFields(hdr, it.section.fields, it.section.not)
		off, n := partialRange(it, int64(len(data)))
		c.w.literal(bytes.NewReader(data[off:off+n]), n, false)
		return
	}
	off, n := partialRange(it, end-start)
	c.w.literal(io.NewSectionReader(body, start+off, n), n, false)
}

// writeBinary writes BINARY[part] or BINARY.SIZE[part] (RFC 3516 4):
// content with its transfer encoding undone, and a text part's line breaks
// made CRLF. The decoded size is found by decoding once before streaming.
func (c *conn) writeBinary(it fetchItem, part *message.Part, body store.Body, size int64) {
	w := c.w
	sp, err := part.Section(it.section.path)
	if err != nil {
		if it.name == "BINARY.SIZE" {
			// RFC 3516 7 gives BINARY.SIZE a number, never NIL. BODY[n]
			// and BINARY[n] of a part the message lacks answer NIL, no
			// content: its size is 0.
			w.str("BINARY.SIZE[" + it.section.text + "] 0")
			return
		}
		c.writeSectionName(it)
		w.str(" NIL")
		return
	}
	whole := len(it.section.path) == 0 // BINARY[]: the message as it is
	start, end := clip(sp.BodyStart, sp.End, size)
	if whole {
		start, end = clip(part.HeaderStart, part.End, size)
	}
	raw := func() io.Reader {
		r := io.Reader(io.NewSectionReader(body, start, end-start))
		if !whole {
			r = message.DecodeTransfer(sp.Encoding, r)
			if sp.MediaType == "text" {
				// Decoded text in its canonical form (RFC 2046 4.1.1),
				// as a client asking for BINARY rather than BODY takes it.
				r = message.CanonicalText(r)
			}
		}
		return r
	}
	cw := &nulCounter{}
	if _, err := io.Copy(cw, raw()); err != nil {
		xcheckf(err, "decode section")
	}
	if it.name == "BINARY.SIZE" {
		w.str("BINARY.SIZE[" + it.section.text + "] ")
		w.num(uint64(cw.n))
		return
	}
	c.writeSectionName(it)
	w.byte(' ')
	off, n := partialRange(it, cw.n)
	r := raw()
	if off > 0 {
		if _, err := io.CopyN(io.Discard, r, off); err != nil {
			panic(ioError{err})
		}
	}
	w.literal(r, n, cw.nul)
}

// nulCounter counts bytes and notes NULs, which need literal8.
type nulCounter struct {
	n   int64
	nul bool
}

func (w *nulCounter) Write(b []byte) (int, error) {
	w.n += int64(len(b))
	if !w.nul && bytes.IndexByte(b, 0) >= 0 {
		w.nul = true
	}
	return len(b), nil
}

// writeEnvelope writes an ENVELOPE (RFC 9051 7.5.2).
func (c *conn) writeEnvelope(e *message.Envelope) {
	w := c.w
	if e == nil {
		w.str("(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)")
		return
	}
	// RFC 9051 7.5.2: NIL for a field the header lacks, "" for one it
	// has but empty.
	field := func(s string, f message.EmptyFields) {
		if s == "" && e.Empty&f != 0 {
			w.str(`""`)
			return
		}
		w.nstring(s)
	}
	w.byte('(')
	field(e.Date, message.EmptyDate)
	w.byte(' ')
	field(e.Subject, message.EmptySubject)
	for _, l := range [][]message.Address{e.From, e.Sender, e.ReplyTo, e.To, e.Cc, e.Bcc} {
		w.byte(' ')
		c.writeAddresses(l)
	}
	w.byte(' ')
	field(e.InReplyTo, message.EmptyInReplyTo)
	w.byte(' ')
	field(e.MessageID, message.EmptyMessageID)
	w.byte(')')
}

func (c *conn) writeAddresses(l []message.Address) {
	w := c.w
	if len(l) == 0 {
		w.str("NIL")
		return
	}
	w.byte('(')
	for _, a := range l {
		w.byte('(')
		switch {
		case a.GroupStart:
			w.str("NIL NIL ")
			w.nstring(a.Mailbox)
			w.str(" NIL")
		case a.GroupEnd:
			w.str("NIL NIL NIL NIL")
		default:
			w.nstring(a.Name)
			w.byte(' ')
			w.nstring(a.Adl)
			w.byte(' ')
			w.nstring(a.Mailbox)
			w.byte(' ')
			w.nstring(a.Host)
		}
		w.byte(')')
	}
	w.byte(')')
}

// writeBodyStructure writes BODYSTRUCTURE, or BODY without extension
// data (RFC 9051 7.5.2).
func (c *conn) writeBodyStructure(p *message.Part, ext bool) {
	w := c.w
	if p.MediaType == "multipart" && len(p.Parts) > 0 {
		w.byte('(')
		for i := range p.Parts {
			c.writeBodyStructure(&p.Parts[i], ext)
		}
		w.byte(' ')
		w.upper(p.MediaSubtype)
		if ext {
			w.byte(' ')
			c.writeParams(p.Params)
			w.byte(' ')
			c.writeDisposition(p)
			w.byte(' ')
			c.writeLanguage(p.Language)
			w.byte(' ')
			w.nstring(p.Location)
		}
		w.byte(')')
		return
	}
	mt, st := p.MediaType, p.MediaSubtype
	if mt == "multipart" || mt == "" || st == "" {
		mt, st = "text", "plain" // a multipart without parts is shown as text
	}
	enc := p.Encoding
	if enc == "" {
		enc = "7BIT"
	}
	w.byte('(')
	w.upper(mt)
	w.byte(' ')
	w.upper(st)
	w.byte(' ')
	c.writeParams(p.Params)
	w.byte(' ')
	w.nstring(p.ID)
	w.byte(' ')
	w.nstring(p.Description)
	w.byte(' ')
	w.string(enc)
	w.byte(' ')
	w.num(uint64(max(p.End-p.BodyStart, 0)))
	if inner := p.Message(); inner != nil && (st == "rfc822" || c.rev2) {
		// RFC 3501's grammar gives envelope, structure and lines to
		// MESSAGE/RFC822 alone; RFC 9051's to MESSAGE/GLOBAL too
		// (RFC 6532 3.7). An IMAP4rev1 client gets message/global as a
		// leaf, which its parser expects.
		w.byte(' ')
		c.writeEnvelope(inner.Envelope)
		w.byte(' ')
		c.writeBodyStructure(inner, ext)
		w.byte(' ')
		w.num(uint64(p.Lines))
	} else if strings.EqualFold(mt, "text") {
		w.byte(' ')
		w.num(uint64(p.Lines))
	}
	if ext {
		w.byte(' ')
		w.nstring(p.MD5)
		w.byte(' ')
		c.writeDisposition(p)
		w.byte(' ')
		c.writeLanguage(p.Language)
		w.byte(' ')
		w.nstring(p.Location)
	}
	w.byte(')')
}

// writeParams writes a body parameter list. Values are stored decoded
// (RFC 2231 continuations and charsets undone, in UTF-8 where the
// message named a charset the server knows); what is still not UTF-8, a
// raw 8-bit value or one in an unknown charset, is read byte by byte
// (message.StrayRune), as raw header text is. A client that takes UTF-8
// (UTF8=ACCEPT, IMAP4rev2) gets the values so; another gets a value with
// non-ASCII characters as RFC 2231 writes it, NAME* with a
// percent-encoded UTF-8 value, which MIME clients decode, rather than
// 8-bit bytes it has no charset for (RFC 3501 4.3).
func (c *conn) writeParams(params []message.Param) {
	w := c.w
	if len(params) == 0 {
		w.str("NIL")
		return
	}
	w.byte('(')
	for i, p := range params {
		if i > 0 {
			w.byte(' ')
		}
		v := message.ValidUTF8(p.Value)
		if !c.utf8 && !isASCII(v) {
			w.upper(p.Name + "*")
			w.byte(' ')
			w.string(rfc2231Value(v))
			continue
		}
		w.upper(p.Name)
		w.byte(' ')
		w.string(v)
	}
	w.byte(')')
}

// rfc2231Value encodes s as an RFC 2231 extended value (section 7): the
// charset utf-8, an empty language between two apostrophes, then s with
// every octet outside attribute-char percent-encoded.
func rfc2231Value(s string) string {
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len("utf-8''")+3*len(s))
	b = append(b, "utf-8''"...)
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch > ' ' && ch < 0x7f && !strings.ContainsRune(`*'%()<>@,;:\"/[]?=`, rune(ch)) {
			b = append(b, ch)
			continue
		}
		b = append(b, '%', hex[ch>>4], hex[ch&0xf])
	}
	return string(b)
}

func (c *conn) writeDisposition(p *message.Part) {
	if p.Disposition == "" {
		c.w.str("NIL")
		return
	}
	c.w.byte('(')
	c.w.upper(p.Disposition)
	c.w.byte(' ')
	c.writeParams(p.DispositionParams)
	c.w.byte(')')
}

func (c *conn) writeLanguage(l []string) {
	if len(l) == 0 {
		c.w.str("NIL")
		return
	}
	c.w.byte('(')
	for i, s := range l {
		if i > 0 {
			c.w.byte(' ')
		}
		c.w.string(s)
	}
	c.w.byte(')')
}
