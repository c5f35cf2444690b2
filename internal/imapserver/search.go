package imapserver

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"

	"github.com/buzon-mail/buzon/internal/message"
	"github.com/buzon-mail/buzon/internal/store"
)

// searchKey is one search criterion (RFC 9051 6.4.4), or a list of them
// ("and"), OR, NOT.
type searchKey struct {
	op    string // upper-case key name; "AND" for a parenthesised list
	kids  []*searchKey
	str   string    // BCC, BODY, CC, FROM, SUBJECT, TEXT, TO, KEYWORD, HEADER value
	field string    // HEADER field name
	num   int64     // LARGER, SMALLER, MODSEQ; OLDER, YOUNGER in seconds
	date  time.Time // the date keys'; OLDER and YOUNGER's instant (see prepare)
	set   numSet

	folded string // the string keys' str as they compare it (see prepare)
	needle []byte // folded, for the body's bytes
}

// Costs of evaluating a key: what it needs beyond the message list.
const (
	costMeta   = iota // flags, size, dates, UIDs, numbers
	costHeader        // the structure and the header bytes
	costBody          // the body text
)

func (k *searchKey) cost() int {
	switch k.op {
	case "AND", "OR", "NOT":
		c := costMeta
		for _, kid := range k.kids {
			c = max(c, kid.cost())
		}
		return c
	case "BCC", "CC", "FROM", "SUBJECT", "TO", "HEADER", "SENTBEFORE", "SENTON", "SENTSINCE":
		return costHeader
	case "BODY", "TEXT":
		return costBody
	}
	return costMeta
}

// fields is what evaluating the key needs from the store besides UIDs,
// flags and MODSEQs, which every search reads.
func (k *searchKey) fields() store.Field {
	var f store.Field
	switch k.op {
	case "LARGER", "SMALLER":
		f = store.FieldSize
	case "BEFORE", "ON", "SINCE", "OLDER", "YOUNGER":
		f = store.FieldDate
	case "SAVEDBEFORE", "SAVEDON", "SAVEDSINCE":
		f = store.FieldSaveDate | store.FieldDate // the internal date stands in for a save date unknown
	}
	if k.cost() >= costHeader {
		f |= store.FieldStructure | store.FieldSize
	}
	for _, kid := range k.kids {
		f |= kid.fields()
	}
	return f
}

// viewOnly reports whether the key needs nothing but system flags, UIDs
// and message numbers, which the view knows, and with envelope also the
// subject and addresses of the envelope cache.
func (k *searchKey) viewOnly(envelope bool) bool {
	switch k.op {
	case "AND", "OR", "NOT":
	case "ALL", "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "SEEN", "UNANSWERED", "UNDELETED",
		"UNDRAFT", "UNFLAGGED", "UNSEEN", "NEW", "OLD", "RECENT", "UID", "SEQ":
	case "BCC", "CC", "FROM", "SUBJECT", "TO":
		if !envelope {
			return false
		}
	default:
		return false
	}
	for _, kid := range k.kids {
		if !kid.viewOnly(envelope) {
			return false
		}
	}
	return true
}

// xsearchEnvelopes returns the search envelopes of the view's messages,
// by position, from the server's cache, reading those it lacks (nil for
// messages expunged meanwhile). ok is false when a message has no usable
// structure: the search must read the messages themselves.
func (c *conn) xsearchEnvelopes() (envs []*searchEnvelope, ok bool) {
	sel := c.sel
	envs = make([]*searchEnvelope, len(sel.uids))
	var missing []store.UID
	for i, u := range sel.uids {
		if e, ok := c.srv.envelopes.get(msgKey{sel.mb.ID, u}); ok {
			envs[i] = e
		} else {
			missing = append(missing, u)
		}
	}
	if len(missing) == 0 {
		return envs, true
	}
	ok = true
	err := c.sess.Messages(c.ctx, sel.mb.ID, store.UIDSetOf(missing...), store.FieldStructure, func(m *store.MessageInfo) error {
		p, err := message.Unmarshal(m.Structure)
		if err != nil || p.Envelope == nil {
			ok = false
			return errStopSearch
		}
		e := newSearchEnvelope(p.Envelope)
		c.srv.envelopes.put(msgKey{sel.mb.ID, m.UID}, e, e.size())
		if seq := sel.seq(m.UID); seq > 0 {
			envs[seq-1] = e
		}
		return nil
	})
	if !ok {
		return nil, false
	}
	xcheckf(err, "search")
	return envs, true
}

// errStopSearch ends a read that found a message the cache cannot serve.
var errStopSearch = errors.New("stop")

// msgKey names a message of the store.
type msgKey struct {
	mailbox int64
	uid     store.UID
}

// usesModSeq reports whether a MODSEQ key is in the tree (RFC 7162 3.1.5).
func (k *searchKey) usesModSeq() bool {
	if k.op == "MODSEQ" {
		return true
	}
	return slices.ContainsFunc(k.kids, (*searchKey).usesModSeq)
}

// toUTF8 converts the strings of the string keys from the named charset,
// one the charset package knows, to UTF-8. A string that does not convert
// is left as it is.
func (k *searchKey) toUTF8(cs string) {
	switch k.op {
	case "BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO", "HEADER":
		if r, err := charset.Reader(cs, strings.NewReader(k.str)); err == nil {
			if b, err := io.ReadAll(r); err == nil {
				k.str = string(b)
			}
		}
	}
	for _, kid := range k.kids {
		kid.toUTF8(cs)
	}
}

// prepare folds the strings of the string keys for matching, and turns
// the intervals of OLDER and YOUNGER into instants before now, once for
// the whole search.
func (k *searchKey) prepare(now time.Time) {
	switch k.op {
	case "BCC", "BODY", "CC", "FROM", "HEADER", "SUBJECT", "TEXT", "TO":
		k.folded = fold(k.str)
		k.needle = []byte(k.folded)
	case "OLDER", "YOUNGER":
		k.date = now.Add(-time.Duration(k.num) * time.Second)
	}
	for _, kid := range k.kids {
		kid.prepare(now)
	}
}

// inHeader reports whether the header text v, folded, holds the key's
// string.
func (k *searchKey) inHeader(v string) bool {
	return strings.Contains(v, k.folded)
}

// sortByCost orders the keys of every AND list cheapest first, so costly
// keys run only for messages the cheap ones let through.
func (k *searchKey) sortByCost() {
	for _, kid := range k.kids {
		kid.sortByCost()
	}
	if k.op == "AND" {
		slices.SortStableFunc(k.kids, func(a, b *searchKey) int { return a.cost() - b.cost() })
	}
}

func parseSearch(p *parser, cmd *command) any {
	a := &searchArgs{}
	p.xspace()
	if p.take("RETURN (") {
		a.hasReturn = true
		a.ret = p.xsearchReturn()
		p.xspace()
	}
	if p.take("CHARSET ") {
		a.charset = strings.ToUpper(p.xastring())
		p.xspace()
	}
	a.key = p.xsearchKeys()
	return a
}

// xsearchReturn reads the result options of SEARCH RETURN (RFC 4731 3.1)
// or SORT RETURN (RFC 5267 3), after "RETURN (", to the ")" that ends
// them.
func (p *parser) xsearchReturn() []string {
	ret := []string{}
	for i := 0; !p.take(")"); i++ {
		if i > 0 {
			p.xspace()
		}
		opt := strings.ToUpper(p.xatom())
		switch opt {
		case "MIN", "MAX", "COUNT", "ALL", "SAVE":
		default:
			p.xerrorf("unknown RETURN option %s", opt)
		}
		// An option named twice is answered once, as Dovecot does.
		if !slices.Contains(ret, opt) {
			ret = append(ret, opt)
		}
	}
	return ret
}

// xsearchCriteria reads what SORT and THREAD end with, a charset, which
// they require where SEARCH has it optional, and the search keys (RFC
// 5256 5: search-criteria = charset 1*(SP search-key)).
func (p *parser) xsearchCriteria() *searchArgs {
	a := &searchArgs{charset: strings.ToUpper(p.xastring())}
	p.xspace()
	a.key = p.xsearchKeys()
	return a
}

// xsearchKeys reads the search keys ending a SEARCH, SORT or THREAD
// command, which all must match.
func (p *parser) xsearchKeys() *searchKey {
	root := &searchKey{op: "AND"}
	for {
		root.kids = append(root.kids, p.xsearchKey(0))
		if !p.take(" ") {
			return root
		}
	}
}

// maxSearchDepth bounds nesting, so a hostile command cannot exhaust the
// stack.
const maxSearchDepth = 64

func (p *parser) xsearchKey(depth int) *searchKey {
	if depth > maxSearchDepth {
		p.xerrorf("search nested too deeply")
	}
	if p.take("(") {
		k := &searchKey{op: "AND"}
		for {
			k.kids = append(k.kids, p.xsearchKey(depth+1))
			if p.take(")") {
				return k
			}
			p.xspace()
		}
	}
	if c := p.peek(); c == '*' || c == '$' || (c >= '1' && c <= '9') {
		return &searchKey{op: "SEQ", set: p.xnumSet(true)}
	}
	op := strings.ToUpper(p.xatom())
	k := &searchKey{op: op}
	switch op {
	case "ALL", "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "NEW", "OLD", "RECENT", "SEEN",
		"UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED", "UNSEEN", "SAVEDATESUPPORTED":
	case "BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO":
		p.xspace()
		k.str = p.xastring()
	case "KEYWORD", "UNKEYWORD":
		p.xspace()
		if c := p.peek(); c == '"' || c == '{' {
			// A keyword is an atom (RFC 9051 9), which some clients
			// quote; Dovecot takes it too.
			k.str = p.xastring()
		} else {
			k.str = p.xflag()
		}
	case "BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE", "SAVEDBEFORE", "SAVEDON", "SAVEDSINCE":
		p.xspace()
		k.date = p.xdate()
	case "OLDER", "YOUNGER":
		// RFC 5032 4: an interval in seconds, nz-number.
		p.xspace()
		k.num = int64(p.xnznumber())
	case "HEADER":
		p.xspace()
		k.field = p.xastring()
		p.xspace()
		k.str = p.xastring()
	case "LARGER", "SMALLER":
		p.xspace()
		k.num = int64(p.xnumber64())
	case "NOT":
		p.xspace()
		k.kids = []*searchKey{p.xsearchKey(depth + 1)}
	case "OR":
		p.xspace()
		a := p.xsearchKey(depth + 1)
		p.xspace()
		k.kids = []*searchKey{a, p.xsearchKey(depth + 1)}
	case "UID":
		p.xspace()
		k.set = p.xnumSet(true)
	case "MODSEQ":
		// RFC 7162 3.1.5, 7: MODSEQ [entry-name entry-type-req]
		// mod-sequence-valzer, where the entry names a flag and its type is
		// "priv", "shared" or "all". Flags have no MODSEQ of their own
		// here: the entry is checked, then the message's MODSEQ compared.
		p.xspace()
		if p.peek() == '"' {
			const prefix = "/flags/"
			if name := p.xquoted(); len(name) <= len(prefix) || !strings.EqualFold(name[:len(prefix)], prefix) {
				p.xerrorf("MODSEQ entry %q names no flag", name)
			}
			p.xspace()
			switch typ := p.xatom(); strings.ToLower(typ) {
			case "priv", "shared", "all":
			default:
				p.xerrorf("unknown MODSEQ entry type %s", typ)
			}
			p.xspace()
		}
		k.num = int64(p.xnumber64())
	default:
		p.xerrorf("unknown search key %s", op)
	}
	return k
}

// searchMsg is a message under evaluation; the header and body are read
// only when a key needs them.
type searchMsg struct {
	c      *conn
	m      *store.MessageInfo
	seq    uint32
	env    *searchEnvelope // from the cache, or nil
	body   store.Body
	part   *message.Part
	header []byte
	gone   bool           // the body could not be opened: text keys fail
	bufs   *searchBuffers // the command's, for the text keys
}

// searchBuffers hold what the text keys read, from one part and one
// message to the next of a search, so that a search of a large mailbox
// does not allocate as much as it reads.
type searchBuffers struct {
	header []byte // the header of a body part
	lower  []byte // a header, lower-cased
	chunk  []byte // what streamContains reads
	hay    []byte // what it searches, lower-cased
}

func (sm *searchMsg) close() {
	if sm.body != nil {
		sm.body.Close()
	}
}

func (sm *searchMsg) openBody() bool {
	if sm.body != nil || sm.gone {
		return !sm.gone
	}
	b, err := sm.c.sess.OpenBody(sm.c.ctx, sm.c.sel.mb.ID, sm.m.UID)
	if errors.Is(err, store.ErrNoMessage) {
		sm.gone = true
		return false
	}
	xcheckf(err, "open message %d", sm.m.UID)
	sm.body = b
	sm.part = sm.c.structure(sm.m, b)
	return true
}

// structure returns the message's structure, which the Date keys need
// without opening the body.
func (sm *searchMsg) structure() *message.Part {
	if sm.part == nil {
		sm.part = sm.c.structure(sm.m, nil)
	}
	return sm.part
}

// headerBytes returns the message's header block.
func (sm *searchMsg) headerBytes() []byte {
	if sm.header != nil || !sm.openBody() {
		return sm.header
	}
	start, end := clip(sm.part.HeaderStart, sm.part.BodyStart, sm.m.Size)
	end = min(end, start+1<<20) // bounded; headers beyond are not searched
	sm.header = make([]byte, end-start)
	n, _ := sm.body.ReadAt(sm.header, start)
	sm.header = sm.header[:n]
	return sm.header
}

// headerValues returns the values of the named field, decoded and folded
// (fold).
func (sm *searchMsg) headerValues(name string) []string {
	fields := message.HeaderFields(sm.headerBytes(), []string{name}, false)
	var vals []string
	for _, line := range splitFields(fields) {
		_, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		vals = append(vals, fold(message.DecodeHeaderValue(strings.TrimSpace(v))))
	}
	return vals
}

// envelopeValues answers the address and subject keys from the envelope
// stored with the message, so that they need no message body (Dovecot
// answers them from its cache): the values, folded (fold). ok is
// false for a message stored without a usable structure.
func (sm *searchMsg) envelopeValues(op string) (vals []string, ok bool) {
	if sm.env != nil {
		return sm.env[envelopeKey(op)], true
	}
	if len(sm.m.Structure) == 0 {
		return nil, false
	}
	e := sm.structure().Envelope
	if e == nil {
		return nil, false
	}
	return envelopeField(e, op), true
}

// envelopeKey numbers the search keys an envelope answers.
func envelopeKey(op string) int {
	switch op {
	case "SUBJECT":
		return 0
	case "FROM":
		return 1
	case "TO":
		return 2
	case "CC":
		return 3
	}
	return 4 // BCC
}

// searchEnvelope holds the values of the envelope keys, decoded and
// folded (fold), in the order of envelopeKey.
type searchEnvelope [5][]string

func newSearchEnvelope(e *message.Envelope) *searchEnvelope {
	var se searchEnvelope
	for _, op := range []string{"SUBJECT", "FROM", "TO", "CC", "BCC"} {
		se[envelopeKey(op)] = envelopeField(e, op)
	}
	return &se
}

// size approximates the memory se takes.
func (se *searchEnvelope) size() int64 {
	n := int64(entryOverhead)
	for _, vals := range se {
		for _, v := range vals {
			n += int64(len(v)) + 16
		}
	}
	return n
}

// envelopeField is what a search key compares of an envelope, folded
// (fold): the decoded subject, or each address as it would be
// written, the decoded name, then the address in angle brackets.
func envelopeField(e *message.Envelope, op string) []string {
	var list []message.Address
	switch op {
	case "SUBJECT":
		if e.Subject == "" && e.Empty&message.EmptySubject == 0 {
			return nil // no Subject field, or (stored before structure version 2) an empty one
		}
		return []string{fold(message.DecodeHeaderValue(e.Subject))}
	case "FROM":
		list = e.From
	case "TO":
		list = e.To
	case "CC":
		list = e.Cc
	case "BCC":
		list = e.Bcc
	}
	var vals []string
	for _, a := range list {
		switch {
		case a.GroupStart:
			vals = append(vals, fold(a.Mailbox))
		case !a.GroupEnd:
			vals = append(vals, fold(strings.TrimSpace(message.DecodeHeaderValue(a.Name)+" <"+a.Mailbox+"@"+a.Host+">")))
		}
	}
	return vals
}

// splitFields splits a header block into fields, keeping folded lines
// with their field.
func splitFields(b []byte) []string {
	var out []string
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line == "" || line == "\r\n" || line == "\n" {
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && len(out) > 0 {
			out[len(out)-1] += line
			continue
		}
		out = append(out, line)
	}
	return out
}

// RFC 9051 6.4.4: the string keys match substrings, case-insensitively.
// Both the text searched and the key's string are folded before they
// are compared: case by foldRune, and every run of white space and line
// breaks to one space. A line break in mail is mostly where a line was
// wrapped: a header folded, a paragraph hard-wrapped at 72 columns or
// flowed (RFC 3676). A phrase is found as it reads across one ("headers
// and folded" in a subject written "headers and" CRLF TAB "folded", "see
// you on Friday" in a body wrapped after "on").

// foldRune returns the case of r that matching compares: the lower case
// of its upper case, so that a letter with two lower cases meets both
// (σ and final ς, s and long ſ, i and dotless ı), which plain lower-casing
// misses ("ΣΊΣΥΦΟΣ" and "σίσυφος").
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return r
	}
	return unicode.ToLower(unicode.ToUpper(r))
}

// fold returns s folded for matching. Most header values, lower-case
// ASCII words with single spaces, come back as they are.
func fold(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' || isFoldSpace(c) && (c != ' ' || i+1 < len(s) && isFoldSpace(s[i+1])) {
			b, _ := appendFoldText(make([]byte, 0, len(s)), []byte(s), false)
			return string(b)
		}
	}
	return s
}

// isFoldSpace tells the bytes a run of which folds to one space.
func isFoldSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// appendFoldText appends text s, folded for matching, to dst. space tells
// whether what went before s ended in white space, whose run s may go on
// with; the result tells whether s did.
func appendFoldText(dst, s []byte, space bool) ([]byte, bool) {
	for i := 0; i < len(s); {
		j := i
		if isFoldSpace(s[i]) {
			for j < len(s) && isFoldSpace(s[j]) {
				j++
			}
			if !space {
				dst = append(dst, ' ')
			}
			space = true
		} else {
			for j < len(s) && !isFoldSpace(s[j]) {
				j++
			}
			dst = appendFold(dst, s[i:j])
			space = false
		}
		i = j
	}
	return dst, space
}

// bodyContains searches the decoded text of the message's text parts for
// sub, and with header (TEXT) every header of the message too: its own,
// and those of its body parts and of the messages encapsulated in it, all
// of which are in its body (RFC 9051 6.4.4: TEXT is "in the header or body
// of the message"; an attachment's file name is found so). BODY reads no
// header, not even a part's, as Dovecot's does not: a part's header says
// how to read the text, it is not the text. The needle is the key's
// string, folded. The empty string is in every message, one without a
// text part too.
func (sm *searchMsg) bodyContains(needle []byte, header bool) bool {
	if !sm.openBody() {
		return false
	}
	if len(needle) == 0 {
		return true
	}
	var walk func(p *message.Part) bool
	walk = func(p *message.Part) bool {
		if header && sm.headerContains(p, needle) {
			return true
		}
		if len(p.Parts) > 0 {
			for i := range p.Parts {
				if walk(&p.Parts[i]) {
					return true
				}
			}
			return false
		}
		if p.MediaType != "text" && p.MediaType != "message" {
			return false
		}
		start, end := clip(p.BodyStart, p.End, sm.m.Size)
		return sm.bufs.streamContains(p.TextReader(io.NewSectionReader(sm.body, start, end-start)), needle)
	}
	return walk(sm.part)
}

// headerContains reports whether the header of part p, the message's own
// for the root, holds the needle once folded (appendFoldText) and its
// encoded words decoded.
func (sm *searchMsg) headerContains(p *message.Part, needle []byte) bool {
	var h []byte
	if p == sm.part {
		h = sm.headerBytes()
	} else {
		start, end := clip(p.HeaderStart, p.BodyStart, sm.m.Size)
		if start == end {
			return false
		}
		size := int(min(end-start, 1<<20)) // bounded, as headerBytes is
		b := sm.bufs
		b.header = slices.Grow(b.header[:0], size)[:size]
		n, _ := sm.body.ReadAt(b.header, start)
		h = b.header[:n]
	}
	return sm.bufs.foldedContains(h, needle)
}

// foldedContains reports whether the header block h holds the needle,
// once folded (appendFoldText) and its encoded words decoded. A header
// in ASCII without encoded words, most of them, is folded into the buffer
// as it is.
func (b *searchBuffers) foldedContains(h, needle []byte) bool {
	// Other 8-bit text needs no decoding here: appendFoldText reads it as
	// DecodeHeaderValue would, UTF-8 where it is valid, else byte by byte
	// (message.StrayRune).
	if bytes.Contains(h, []byte("=?")) {
		h = []byte(message.DecodeHeaderValue(string(h)))
	}
	b.lower, _ = appendFoldText(b.lower[:0], h, false)
	return bytes.Contains(b.lower, needle)
}

// streamContains looks for a folded needle in the text of r, folded
// (appendFoldText), chunk by chunk, each searched with the end of the
// one before (the needle's length less one byte), so memory stays small
// whatever the size of the part.
func (b *searchBuffers) streamContains(r io.Reader, needle []byte) bool {
	if len(needle) == 0 {
		return true
	}
	if b.chunk == nil {
		b.chunk = make([]byte, 64*1024)
	}
	hay := b.hay[:0]
	defer func() { b.hay = hay[:0] }()
	pending := 0   // bytes at the start of chunk: a rune the last read cut short
	space := false // the text read so far ends in white space
	for {
		n, err := io.ReadFull(r, b.chunk[pending:])
		data := b.chunk[:pending+n]
		cut := len(data)
		if err == nil {
			cut = fullRunes(data)
		}
		hay, space = appendFoldText(hay, data[:cut], space)
		if bytes.Contains(hay, needle) {
			return true
		}
		if err != nil {
			return false
		}
		pending = copy(b.chunk, data[cut:])
		keep := min(len(hay), len(needle)-1)
		hay = hay[:copy(hay, hay[len(hay)-keep:])]
	}
}

// appendFold appends s to dst with its case folded (foldRune). A byte
// that is not part of a UTF-8 character is read as the character it
// stands for in 8-bit text with no charset, or one not known
// (message.StrayRune), as in header text: "café" finds the "caf\xe9" of
// an unlabelled message, and "don’t" its "don\x92t".
func appendFold(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			r = message.StrayRune(c)
		}
		dst = utf8.AppendRune(dst, foldRune(r))
		i += size
	}
	return dst
}

// fullRunes returns the length of b without a UTF-8 sequence cut short at
// its end.
func fullRunes(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return i
			}
			break
		}
	}
	return len(b)
}

// sentDate is the message's Date header, as a calendar date.
func (sm *searchMsg) sentDate() (time.Time, bool) {
	p := sm.structure()
	if p.Envelope == nil || p.Envelope.Date == "" {
		return time.Time{}, false
	}
	return sentDay(p.Envelope.Date)
}

// sentDay reads the calendar date of a Date field as its sender wrote it,
// which is all the SENT keys compare (RFC 9051 6.4.4: "disregarding time
// and timezone"). Besides RFC 5322 3.3 and its obsolete forms (4.3: a
// two-digit year, a named zone), it reads what mailers write and mail
// readers still show: no zone or a military one, dots in the time, RFC
// 850's "Monday, 04-Mar-24", asctime's "Mon Mar  4 10:00:00 2024" and ISO
// 8601's "2024-03-04T10:00:00Z". Only the day, the month and the year are
// needed; the day of the week, the time and the zone are not looked at.
func sentDay(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if len(s) >= 10 && s[4] == '-' && s[7] == '-' && number(s[:4], 4) && number(s[5:7], 2) && number(s[8:10], 2) {
		// ISO 8601: "2024-03-04".
		y, _ := strconv.Atoi(s[:4])
		m, _ := strconv.Atoi(s[5:7])
		d, _ := strconv.Atoi(s[8:10])
		return calendarDate(y, m, d)
	}
	// Comments (RFC 5322 3.2.2) go, and the separators: commas, and the
	// dashes inside a word ("04-Mar-24"; "-0500" is a zone).
	var b strings.Builder
	depth := 0
	prev := ' '
	for _, r := range s {
		switch {
		case r == '(':
			depth++
		case r == ')' && depth > 0:
			depth--
		case depth > 0:
		case r == ',' || r == '\t' || r == '\r' || r == '\n' || r == '-' && prev != ' ':
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
		prev = r
	}
	// The day is the number before the month ("4 Mar 2024") or after
	// it (asctime's "Mar 4 10:00:00 2024"), the year the first number
	// after both.
	f := strings.Fields(b.String())
	month := slices.IndexFunc(f, func(w string) bool { return monthOf(w) > 0 })
	if month < 0 {
		return time.Time{}, false
	}
	var y, d int
	rest := f[month+1:]
	if month > 0 && number(f[month-1], 2) {
		d, _ = strconv.Atoi(f[month-1])
	} else if len(rest) > 0 && number(rest[0], 2) {
		d, _ = strconv.Atoi(rest[0])
		rest = rest[1:]
	}
	for _, w := range rest {
		if number(w, 4) {
			y, _ = strconv.Atoi(w)
			if len(w) <= 3 {
				// RFC 5322 4.3: 00 to 49 are 2000 to 2049, the rest 19xx.
				y += 1900
				if len(w) <= 2 && y < 1950 {
					y += 100
				}
			}
			break
		}
	}
	return calendarDate(y, monthOf(f[month]), d)
}

// calendarDate returns the date y-m-d, if there is one.
func calendarDate(y, m, d int) (time.Time, bool) {
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if y == 0 || m < 1 || m > 12 || t.Day() != d {
		return time.Time{}, false // no date, or the 31st of February
	}
	return t, true
}

// monthOf returns the number of the month w names in English (RFC 5322
// 3.3: "Jan", case-insensitively; the whole name too), or 0.
func monthOf(w string) int {
	if len(w) < 3 {
		return 0
	}
	for i, name := range [...]string{"january", "february", "march", "april", "may", "june", "july",
		"august", "september", "october", "november", "december"} {
		if len(w) <= len(name) && strings.EqualFold(w, name[:len(w)]) {
			return i + 1
		}
	}
	return 0
}

// number reports whether w is a number of at most n digits.
func number(w string, n int) bool {
	if w == "" || len(w) > n {
		return false
	}
	for i := range len(w) {
		if w[i] < '0' || w[i] > '9' {
			return false
		}
	}
	return true
}

// day is a time's calendar date, in its own zone (RFC 9051 6.4.4:
// "disregarding time and timezone").
// savedOrInternal is what the save-date keys compare: the save date, or
// for a message stored before buzon kept save dates the internal date
// (RFC 8514 4.3 has the server use it for a message without one).
func savedOrInternal(m *store.MessageInfo) time.Time {
	if m.SaveDate.IsZero() {
		return m.InternalDate
	}
	return m.SaveDate
}

func day(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// match evaluates a key for a message.
func (c *conn) match(sm *searchMsg, k *searchKey) bool {
	m := sm.m
	sys := m.Flags.System
	switch k.op {
	case "AND":
		for _, kid := range k.kids {
			if !c.match(sm, kid) {
				return false
			}
		}
		return true
	case "OR":
		return c.match(sm, k.kids[0]) || c.match(sm, k.kids[1])
	case "NOT":
		return !c.match(sm, k.kids[0])
	case "ALL":
		return true
	case "ANSWERED":
		return sys&store.FlagAnswered != 0
	case "DELETED":
		return sys&store.FlagDeleted != 0
	case "DRAFT":
		return sys&store.FlagDraft != 0
	case "FLAGGED":
		return sys&store.FlagFlagged != 0
	case "SEEN":
		return sys&store.FlagSeen != 0
	case "UNANSWERED":
		return sys&store.FlagAnswered == 0
	case "UNDELETED":
		return sys&store.FlagDeleted == 0
	case "UNDRAFT":
		return sys&store.FlagDraft == 0
	case "UNFLAGGED":
		return sys&store.FlagFlagged == 0
	case "UNSEEN":
		return sys&store.FlagSeen == 0
	case "NEW", "RECENT":
		return false // \Recent is not kept: no message is recent
	case "OLD":
		return true
	case "KEYWORD":
		return m.Flags.Has(k.str)
	case "UNKEYWORD":
		return !m.Flags.Has(k.str)
	case "LARGER":
		return m.Size > k.num
	case "SMALLER":
		return m.Size < k.num
	case "BEFORE":
		return day(m.InternalDate).Before(k.date)
	case "ON":
		return day(m.InternalDate).Equal(k.date)
	case "SINCE":
		return !day(m.InternalDate).Before(k.date)
	case "SAVEDBEFORE":
		return day(savedOrInternal(m)).Before(k.date)
	case "SAVEDON":
		return day(savedOrInternal(m)).Equal(k.date)
	case "SAVEDSINCE":
		return !day(savedOrInternal(m)).Before(k.date)
	case "SAVEDATESUPPORTED":
		// RFC 8514 4.3: every mailbox keeps save dates, so every message
		// matches, those stored before buzon kept them too.
		return true
	case "OLDER":
		// RFC 5032 4: the internal date's instant, whatever its zone, at
		// least the interval before now (as Dovecot counts); YOUNGER is
		// the rest, so that every message is one or the other.
		return !m.InternalDate.After(k.date)
	case "YOUNGER":
		return m.InternalDate.After(k.date)
	case "SENTBEFORE", "SENTON", "SENTSINCE":
		d, ok := sm.sentDate()
		if !ok {
			return false
		}
		switch k.op {
		case "SENTBEFORE":
			return d.Before(k.date)
		case "SENTON":
			return d.Equal(k.date)
		}
		return !d.Before(k.date)
	case "MODSEQ":
		return int64(m.ModSeq) >= k.num
	case "UID":
		return k.set.containsUID(c, m.UID)
	case "SEQ":
		return k.set.containsSeq(c, sm.seq, m.UID)
	case "BCC", "CC", "FROM", "SUBJECT", "TO":
		vals, ok := sm.envelopeValues(k.op)
		if !ok {
			vals = sm.headerValues(k.op)
		}
		return slices.ContainsFunc(vals, k.inHeader)
	case "HEADER":
		vals := sm.headerValues(k.field)
		if k.str == "" {
			return len(vals) > 0 // RFC 9051 6.4.4: the field is present
		}
		return slices.ContainsFunc(vals, k.inHeader)
	case "BODY":
		return sm.bodyContains(k.needle, false)
	case "TEXT":
		return sm.bodyContains(k.needle, true)
	}
	return false
}

// inSearchRes reports whether "$" holds uid. The saved UIDs are
// ascending: a search finds them in view order, and expunges only take
// some out.
func inSearchRes(c *conn, uid store.UID) bool {
	_, found := slices.BinarySearch(c.searchRes, uid)
	return found
}

// containsUID reports whether a UID set (or "$") holds uid.
func (s numSet) containsUID(c *conn, uid store.UID) bool {
	if s.searchRes {
		return inSearchRes(c, uid)
	}
	last := c.sel.lastUID()
	for _, r := range s.ranges {
		first, end := store.UID(r.first), store.UID(r.last)
		if first == 0 {
			first = last
		}
		if end == 0 {
			end = last
		}
		if first > end {
			first, end = end, first
		}
		if uid >= first && uid <= end {
			return true
		}
	}
	return false
}

// containsSeq reports whether a sequence set (or "$") holds seq.
func (s numSet) containsSeq(c *conn, seq uint32, uid store.UID) bool {
	if s.searchRes {
		return inSearchRes(c, uid)
	}
	n := uint32(len(c.sel.uids))
	for _, r := range s.ranges {
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
		if seq >= first && seq <= last {
			return true
		}
	}
	return false
}

// rangeBuilder collects ascending numbers as ranges, so a result of
// 100,000 consecutive messages is one range.
type rangeBuilder struct {
	ranges []store.UIDRange
	count  int
}

func (b *rangeBuilder) add(n uint32) {
	b.count++
	if l := len(b.ranges); l > 0 && uint32(b.ranges[l-1].Stop)+1 == n {
		b.ranges[l-1].Stop = store.UID(n)
		return
	}
	b.ranges = append(b.ranges, store.UIDRange{Start: store.UID(n), Stop: store.UID(n)})
}

// saves reports whether the search saves its result for "$" (RFC 5182
// RETURN (SAVE)).
func (a *searchArgs) saves() bool { return slices.Contains(a.ret, "SAVE") }

// searchResOnFailure, deferred by execute for a search or a sort with
// SAVE (savesSearchRes), sets the search result variable to the empty
// sequence when the search fails with NO, and leaves it as it was when it
// fails with BAD (RFC 5182 2.1).
// A search that found its messages still ends in NO when the sync after
// it fails, and that empties the variable too. It looks at the failure
// on its way to the command loop, so no place that raises one needs to
// know about SAVE.
func (c *conn) searchResOnFailure() {
	x := recover()
	if x == nil {
		return
	}
	if _, bad := x.(syntaxError); !bad {
		c.searchRes = nil
	}
	panic(x)
}

// RFC 9051 6.4.4, RFC 4731 (ESEARCH), RFC 5182 (SEARCHRES), RFC 7162
// 3.1.5 (MODSEQ)
func (c *conn) cmdSearch(cmd *command) {
	defer c.dropDecoder()
	a := cmd.args.(*searchArgs)
	save := a.saves()
	var result rangeBuilder
	var uids []store.UID            // for SAVE
	var highest store.ModSeq        // of all the messages found
	var minN, maxN uint32           // numbers of the first and last found
	var minMod, maxMod store.ModSeq // and their MODSEQs
	modSeqUsed, ok := c.xsearchEach(a, func(m *store.MessageInfo, seq uint32) {
		n := seq
		if cmd.uid {
			n = uint32(m.UID)
		}
		if minN == 0 {
			minN, minMod = n, m.ModSeq
		}
		maxN, maxMod = n, m.ModSeq
		result.add(n)
		if save {
			uids = append(uids, m.UID)
		}
		highest = max(highest, m.ModSeq)
	})
	if !ok {
		return // the mailbox is gone
	}

	esearch := a.hasReturn || c.rev2
	ret := a.ret
	if a.hasReturn && len(ret) == 0 || !a.hasReturn && c.rev2 {
		ret = []string{"ALL"} // RFC 4731 3.1: RETURN () means ALL
	}
	onlyMin, onlyMax := minMaxOnly(ret)
	if save {
		// RFC 5182 2.4: with MIN or MAX only, only those are saved.
		c.searchRes = minMaxNamed(uids, onlyMin, onlyMax)
	}
	w := c.w
	if !esearch {
		w.str("* SEARCH")
		for _, r := range result.ranges {
			for n := uint64(r.Start); n <= uint64(r.Stop); n++ {
				w.byte(' ')
				w.num(n)
			}
		}
		if modSeqUsed && result.count > 0 {
			w.str(" (MODSEQ ")
			w.num(uint64(highest))
			w.str(")")
		}
		w.str("\r\n")
		return
	}
	if save && len(ret) == 1 {
		return // RFC 5182 2.2: SAVE alone answers nothing
	}
	c.writeESearchStart(cmd)
	for _, opt := range ret {
		switch {
		case opt == "MIN" && result.count > 0:
			w.str(" MIN ")
			w.num(uint64(minN))
		case opt == "MAX" && result.count > 0:
			w.str(" MAX ")
			w.num(uint64(maxN))
		case opt == "COUNT":
			w.str(" COUNT ")
			w.num(uint64(result.count))
		case opt == "ALL" && result.count > 0:
			w.str(" ALL " + store.UIDSet(result.ranges).String())
		}
	}
	if modSeqUsed && result.count > 0 {
		// RFC 4731 3.2: the MODSEQ of the messages the response names.
		mod := highest
		switch {
		case onlyMin && onlyMax:
			mod = max(minMod, maxMod)
		case onlyMin:
			mod = minMod
		case onlyMax:
			mod = maxMod
		}
		w.str(" MODSEQ ")
		w.num(uint64(mod))
	}
	w.str("\r\n")
}

// xsearchEach prepares the search key of a and calls found for each
// message of the selected mailbox that it matches, in order (m holds the
// UID, and the flags and MODSEQ where the key needs them). It reports whether the key uses
// MODSEQ, which enables CONDSTORE (RFC 7162 3.1.5), and ok false when the
// mailbox was deleted meanwhile: the command then answers nothing.
func (c *conn) xsearchEach(a *searchArgs, found func(m *store.MessageInfo, seq uint32)) (modSeqUsed, ok bool) {
	key := a.key
	switch a.charset {
	case "", "UTF-8", "US-ASCII":
	default:
		// RFC 9051 6.4.4: other charsets "MAY be supported". Clients
		// that send a search in the charset of the folder or of the
		// system (ISO-8859-1, windows-1252, KOI8-R) find what they look
		// for.
		if _, err := charset.Reader(a.charset, strings.NewReader("")); err != nil {
			xuserErrorf("BADCHARSET (UTF-8 US-ASCII)", "charset %s not supported", a.charset)
		}
		key.toUTF8(a.charset)
	}
	key.prepare(c.srv.cfg.now())
	key.sortByCost()
	modSeqUsed = key.usesModSeq()
	if modSeqUsed {
		c.enableCondstore()
	}
	sel := c.sel
	bufs := &searchBuffers{}
	visit := func(m *store.MessageInfo, seq uint32, env *searchEnvelope) {
		sm := &searchMsg{c: c, m: m, seq: seq, env: env, bufs: bufs}
		defer sm.close()
		if c.match(sm, key) {
			found(m, seq)
		}
	}
	fromView := key.viewOnly(false) || key.viewOnly(true) && c.srv.envelopes != nil
	if fromView {
		// The view knows every message's flags once caught up, and the
		// envelope cache what the envelope keys compare.
		c.sync(false)
		if c.closing {
			return modSeqUsed, false
		}
		c.xloadFlags()
	}
	var envs []*searchEnvelope
	if fromView && !key.viewOnly(false) {
		envs, fromView = c.xsearchEnvelopes()
	}
	switch {
	case fromView:
		var m store.MessageInfo
		for i, u := range sel.uids {
			if _, gone := slices.BinarySearch(sel.pendingExpunge, u); gone {
				continue
			}
			m = store.MessageInfo{UID: u, Flags: store.Flags{System: sel.flags[i]}}
			var env *searchEnvelope
			if envs != nil {
				env = envs[i]
			}
			visit(&m, uint32(i+1), env)
		}
	case len(sel.uids) > 0:
		// Every stored UID between the view's first and last is in the view.
		set := store.NewUIDSet(store.UIDRange{Start: sel.uids[0], Stop: sel.lastUID()})
		err := c.sess.Messages(c.ctx, sel.mb.ID, set, store.FieldFlags|key.fields(), func(m *store.MessageInfo) error {
			if seq := sel.seq(m.UID); seq > 0 {
				visit(m, seq, nil)
			}
			return nil
		})
		xcheckf(err, "search")
	}
	return modSeqUsed, true
}

// minMaxOnly reports which of MIN and MAX the result options ask for when
// they ask for neither ALL nor COUNT: the search then stands for those
// messages alone, in what SAVE saves (RFC 5182 2.4) and in the MODSEQ
// returned (RFC 4731 3.2).
func minMaxOnly(ret []string) (onlyMin, onlyMax bool) {
	if slices.Contains(ret, "ALL") || slices.Contains(ret, "COUNT") {
		return false, false
	}
	return slices.Contains(ret, "MIN"), slices.Contains(ret, "MAX")
}

// minMaxNamed returns what an answer with the flags of minMaxOnly stands
// for, of a result in its order: its first, its last or both, or all of
// it when neither flag is set.
func minMaxNamed[T any](result []T, onlyMin, onlyMax bool) []T {
	if (!onlyMin && !onlyMax) || len(result) == 0 {
		return result
	}
	var named []T
	if onlyMin {
		named = append(named, result[0])
	}
	if onlyMax && (len(result) > 1 || !onlyMin) {
		named = append(named, result[len(result)-1])
	}
	return named
}

// writeESearchStart writes the start of an ESEARCH answer to cmd, a
// SEARCH or SORT with RETURN: its tag, and UID for a UID command (RFC
// 4731 3.1, RFC 5267 3). The results follow.
func (c *conn) writeESearchStart(cmd *command) {
	c.w.str(`* ESEARCH (TAG `)
	c.w.quoted(cmd.tag)
	c.w.str(")")
	if cmd.uid {
		c.w.str(" UID")
	}
}
