package imapserver

import (
	"cmp"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/buzon-mail/buzon/internal/message"
	"github.com/buzon-mail/buzon/internal/store"
)

// THREAD (RFC 5256) with the ORDEREDSUBJECT and REFERENCES algorithms:
// Roundcube, Alpine and mail apps on phones show a folder as
// conversations the server works out, rather than fetching every
// message's header to thread it themselves.
//
// Everything but References comes from the structure stored at delivery
// (the envelope's Message-ID, In-Reply-To, Subject and Date); References
// is read from the header block of each message, as SEARCH HEADER reads
// fields, never by parsing the message again.

type threadArgs struct {
	algorithm string // "ORDEREDSUBJECT" or "REFERENCES", the THREAD= capabilities
	search    *searchArgs
}

// RFC 5256 4, 5: THREAD algorithm charset search-key...
func parseThread(p *parser, _ *command) any {
	a := &threadArgs{}
	p.xspace()
	a.algorithm = strings.ToUpper(p.xatom())
	switch a.algorithm {
	case "ORDEREDSUBJECT", "REFERENCES":
	default:
		p.xerrorf("unknown threading algorithm %s", a.algorithm)
	}
	p.xspace()
	a.search = p.xsearchCriteria()
	return a
}

// threadMsg is what threading compares of a message.
type threadMsg struct {
	seq     uint32
	uid     store.UID
	date    int64    // the sent date (RFC 5256 2.2), Unix seconds
	subject string   // the base subject (RFC 5256 2.1), folded as SORT folds it
	reply   bool     // the subject says reply or forward (RFC 5256 4, REFERENCES)
	id      string   // the Message-ID, normalised (msgIDs); "" for none
	refs    []string // the IDs of References, or In-Reply-To's first: normalised
}

// setSubject sets the subject fields from a decoded Subject.
func (t *threadMsg) setSubject(s string) {
	t.subject, t.reply = subjectKey(s)
}

// threadNode is a message, or a dummy standing for one that is referred
// to but not among those threaded, in a tree of threads.
type threadNode struct {
	msg    int // index in the messages threaded; -1 for a dummy
	parent *threadNode
	kids   []*threadNode
}

func (n *threadNode) dummy() bool { return n.msg < 0 }

// RFC 5256 4
func (c *conn) cmdThread(cmd *command) {
	defer c.dropDecoder()
	a := cmd.args.(*threadArgs)
	var msgs []threadMsg
	_, ok := c.xsearchEach(a.search, func(m *store.MessageInfo, seq uint32) {
		msgs = append(msgs, threadMsg{seq: seq, uid: m.UID})
	})
	if !ok {
		return // the mailbox is gone
	}
	refs := a.algorithm == "REFERENCES"
	c.xthreadValues(msgs, refs)
	var roots []*threadNode
	if refs {
		roots = threadReferences(msgs)
	} else {
		roots = threadOrderedSubject(msgs)
	}
	num := func(i int) uint64 { return uint64(msgs[i].seq) }
	if cmd.uid {
		num = func(i int) uint64 { return uint64(msgs[i].uid) }
	}
	c.w.str("* THREAD")
	if len(roots) > 0 {
		c.w.byte(' ')
	}
	// Written a thread at a time: the answer for a large mailbox is
	// never whole in memory.
	var b []byte
	for i := range roots {
		b = appendThreads(b[:0], roots[i:i+1], num)
		c.w.bytes(b)
	}
	c.w.str("\r\n")
}

// xthreadValues reads what threading compares of each message found,
// from the stored structure and, with refs, the References field of the
// header. A message expunged meanwhile keeps zero values, as in SORT.
func (c *conn) xthreadValues(msgs []threadMsg, refs bool) {
	if len(msgs) == 0 {
		return
	}
	uids := make([]store.UID, len(msgs))
	for i := range msgs {
		uids[i] = msgs[i].uid
	}
	// What a THREAD before found of a message's References is in the
	// server's cache: reading it costs a body opened and its header read,
	// each time, where Roundcube threads the mailbox at every listing. A
	// message never changes and its UID is never reused in its mailbox.
	known := map[store.UID][]string{}
	cache := c.srv.references
	var ahead *bodyAhead
	if refs {
		unknown := uids
		if cache != nil {
			unknown = nil
			for _, u := range uids {
				if r, ok := cache.get(msgKey{c.sel.mb.ID, u}); ok {
					known[u] = r
				} else {
					unknown = append(unknown, u)
				}
			}
		}
		// Where each OpenBody is a query (PostgreSQL), bodies are
		// opened several at a time, as FETCH opens them.
		if len(unknown) > 0 {
			ahead = c.newBodyAhead(store.UIDSetOf(unknown...))
			defer ahead.close()
		}
	}
	fields := store.FieldDate | store.FieldStructure | store.FieldSize
	err := c.eachFound(uids, fields, func(i int, m *store.MessageInfo, part *message.Part, env *message.Envelope) error {
		t := &msgs[i]
		t.date = sentDate(m, env)
		t.setSubject(message.DecodeHeaderValue(env.Subject))
		if !refs {
			return nil
		}
		t.id = firstMsgID(env.MessageID)
		if r, ok := known[m.UID]; ok {
			t.refs = r
			return nil
		}
		// RFC 5256 4: the IDs of References, or when it has none the
		// first of In-Reply-To.
		b, err := c.openBody(ahead, m.UID)
		switch {
		case errors.Is(err, store.ErrNoMessage):
		case err != nil:
			return err
		default:
			sm := &searchMsg{c: c, m: m, body: b, part: part}
			field := message.HeaderFields(sm.headerBytes(), []string{"References"}, false)
			sm.close()
			if fields := splitFields(field); len(fields) > 0 {
				_, v, _ := strings.Cut(fields[0], ":")
				t.refs = references(v, env.InReplyTo)
			}
		}
		if t.refs == nil {
			t.refs = references("", env.InReplyTo)
		}
		if err == nil && cache != nil {
			size := int64(entryOverhead)
			for _, id := range t.refs {
				size += int64(len(id)) + 16 // a string header each
			}
			cache.put(msgKey{c.sel.mb.ID, m.UID}, t.refs, size)
		}
		return nil
	})
	xcheckf(err, "thread")
}

// maxReferences is how many of a message's references threading follows,
// the last ones: mailers cut References to a dozen or two, and a message
// with thousands would only make the links' loop checks long.
const maxReferences = 256

// references returns what REFERENCES links a message to (RFC 5256 4): the
// IDs of its References field, or when that has none, the first of its
// In-Reply-To; at most the last maxReferences.
func references(refs, inReplyTo string) []string {
	ids := msgIDs(refs, -1)
	if len(ids) == 0 {
		ids = msgIDs(inReplyTo, 1)
	}
	return ids[max(0, len(ids)-maxReferences):]
}

// firstMsgID returns the first message ID of a field's value, or "".
func firstMsgID(s string) string {
	if ids := msgIDs(s, 1); len(ids) > 0 {
		return ids[0]
	}
	return ""
}

// msgIDs returns up to max (all when max < 0) of the message IDs of a
// Message-ID, In-Reply-To or References value (RFC 5322 3.6.4),
// normalised as RFC 5256 4 asks, so that differences of quoting do not
// keep two IDs apart: the quotes of a quoted local part, white space and
// comments are not part of an ID ("<\"a.b\"@example.org>" is
// "<a.b@example.org>"). An ID is valid, and counted, only with a local
// part and a domain; the phrases some mailers put in In-Reply-To ("your
// message of ...") are skipped. IDs compare case-sensitively.
func msgIDs(s string, max int) []string {
	var ids []string
	var id []byte
	in := false // within "<" and ">"
	for i := 0; i < len(s) && (max < 0 || len(ids) < max); i++ {
		c := s[i]
		switch {
		case c == '(':
			i = len(s) - len(message.SkipComment(s[i:])) - 1 // at its ")"
		case c == '"':
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				if in {
					id = append(id, s[j])
				}
			}
			i = j
		case c == '<':
			in, id = true, append(id[:0], '<')
		case !in:
		case c == '>':
			in = false
			if at := slices.Index(id, '@'); at > 1 && at < len(id)-1 {
				ids = append(ids, string(id)+">")
			}
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
		default:
			id = append(id, c)
		}
	}
	return ids
}

// RFC 5256 4, ORDEREDSUBJECT: messages are grouped by base subject; each
// group is a thread whose first message by sent date is the parent of all
// the others, and the threads go by the sent date of their first message.
func threadOrderedSubject(msgs []threadMsg) []*threadNode {
	order := make([]int, len(msgs))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(x, y int) int {
		if c := strings.Compare(msgs[x].subject, msgs[y].subject); c != 0 {
			return c
		}
		return compareSent(msgs, x, y)
	})
	var roots []*threadNode
	var first *threadNode
	for k, i := range order {
		if k == 0 || msgs[i].subject != msgs[order[k-1]].subject {
			first = &threadNode{msg: i}
			roots = append(roots, first)
			continue
		}
		first.kids = append(first.kids, &threadNode{msg: i, parent: first})
	}
	sortThreads(roots, msgs)
	return roots
}

// compareSent orders messages by sent date and, for the same date, by
// message number (RFC 5256 2.2).
func compareSent(msgs []threadMsg, x, y int) int {
	if c := cmp.Compare(msgs[x].date, msgs[y].date); c != 0 {
		return c
	}
	return cmp.Compare(msgs[x].seq, msgs[y].seq)
}

// first returns the message a node sorts by: its own, or for a dummy its
// first child's.
func (n *threadNode) first() int {
	for n.dummy() {
		n = n.kids[0]
	}
	return n.msg
}

// sortThreads sorts nodes by the sent date of what each stands for (RFC
// 5256 4, REFERENCES steps 4 and 6); a dummy's children must be sorted
// already.
func sortThreads(nodes []*threadNode, msgs []threadMsg) {
	slices.SortFunc(nodes, func(x, y *threadNode) int { return compareSent(msgs, x.first(), y.first()) })
}

// RFC 5256 4, REFERENCES: messages are linked to the messages their
// References (or In-Reply-To) name, messages of the same base subject
// are gathered, and each set of siblings is sorted by sent date. msgs are
// in message number order.
func threadReferences(msgs []threadMsg) []*threadNode {
	var all []*threadNode // in the order made, so that the result never depends on a map's
	byID := map[string]*threadNode{}
	node := func(id string) *threadNode {
		n := byID[id]
		if n == nil {
			n = &threadNode{msg: -1}
			byID[id] = n
			all = append(all, n)
		}
		return n
	}
	// (1)(A): a message's own node. A message without a valid
	// Message-ID, or with one a message numbered lower has, gets a node
	// of its own, as if a unique ID.
	nodes := make([]*threadNode, len(msgs))
	for i := range msgs {
		if id := msgs[i].id; id != "" {
			if n := node(id); n.dummy() {
				n.msg = i
				nodes[i] = n
				continue
			}
		}
		nodes[i] = &threadNode{msg: i}
		all = append(all, nodes[i])
	}
	for i := range msgs {
		refs := msgs[i].refs
		// (1)(A): each reference is the parent of the next, unless
		// that one has a parent already or the link makes a loop.
		for k := 0; k+1 < len(refs); k++ {
			parent, kid := node(refs[k]), node(refs[k+1])
			if kid.parent == nil && !kid.ancestorOf(parent) {
				kid.setParent(parent)
			}
		}
		// (1)(B): the last reference is the message's parent, in
		// place of one (1)(A) gave it from another message's
		// references, which may have been cut short; no reference, no
		// parent. A link that would make a loop is not made.
		n := nodes[i]
		if len(refs) == 0 {
			n.setParent(nil)
		} else if parent := node(refs[len(refs)-1]); !n.ancestorOf(parent) {
			n.setParent(parent)
		}
	}
	// (2): the messages without a parent are the roots.
	var roots []*threadNode
	for _, n := range all {
		if n.parent == nil {
			roots = append(roots, n)
		}
	}
	// (3)
	roots = pruneDummies(roots, nil)
	// (4)
	for _, n := range roots {
		if n.dummy() {
			sortThreads(n.kids, msgs)
		}
	}
	sortThreads(roots, msgs)
	// (5)
	roots = mergeSubjects(roots, msgs)
	// (6)
	sortTree(roots, msgs)
	return roots
}

// ancestorOf reports whether n is m or one of m's ancestors: making n a
// child of m would make a loop.
func (n *threadNode) ancestorOf(m *threadNode) bool {
	if len(n.kids) == 0 {
		return n == m // the usual case, a reference seen the first time
	}
	for ; m != nil; m = m.parent {
		if m == n {
			return true
		}
	}
	return false
}

// setParent makes n a child of p, the last of its children, or of nobody
// when p is nil.
func (n *threadNode) setParent(p *threadNode) {
	if n.parent == p {
		return
	}
	if old := n.parent; old != nil {
		old.kids = slices.DeleteFunc(old.kids, func(k *threadNode) bool { return k == n })
	}
	n.parent = p
	if p != nil {
		p.kids = append(p.kids, n)
	}
}

// pruneDummies returns the nodes, children of parent (nil: of the root),
// with the dummies among them and their descendants pruned (RFC 5256 4,
// REFERENCES step 3): a dummy without children goes; one with children
// gives way to them, unless that would make several children of the
// root.
func pruneDummies(nodes []*threadNode, parent *threadNode) []*threadNode {
	var out []*threadNode
	for _, n := range nodes {
		n.kids = pruneDummies(n.kids, n)
		switch {
		case !n.dummy():
			out = append(out, n)
		case len(n.kids) == 0:
		case parent != nil || len(n.kids) == 1:
			for _, k := range n.kids {
				k.parent = parent
			}
			out = append(out, n.kids...)
		default:
			out = append(out, n)
		}
	}
	return out
}

// mergeSubjects gathers the threads of the same base subject (RFC 5256
// 4, REFERENCES step 5): under the thread that is not a reply, or under
// a dummy.
func mergeSubjects(roots []*threadNode, msgs []threadMsg) []*threadNode {
	subject := func(n *threadNode) string { return msgs[n.first()].subject }
	reply := func(n *threadNode) bool { return !n.dummy() && msgs[n.msg].reply }
	// (B) The subject table: a dummy, else a thread that is not a reply,
	// else the first.
	table := map[string]*threadNode{}
	for _, n := range roots {
		s := subject(n)
		if s == "" {
			continue
		}
		t := table[s]
		if t == nil || !t.dummy() && (n.dummy() || reply(t) && !reply(n)) {
			table[s] = n
		}
	}
	// (C) Every other thread of the subject joins the table's.
	pos := make(map[*threadNode]int, len(table))
	for i, n := range roots {
		pos[n] = i
	}
	adopt := func(p *threadNode, kids ...*threadNode) {
		for _, k := range kids {
			k.parent = p
		}
		p.kids = append(p.kids, kids...)
	}
	for i, n := range roots {
		if n == nil {
			continue
		}
		s := subject(n)
		t := table[s]
		if s == "" || t == n {
			continue
		}
		roots[i] = nil
		switch {
		case t.dummy() && n.dummy():
			adopt(t, n.kids...)
		case t.dummy(), reply(n) && !reply(t):
			adopt(t, n)
		default:
			d := &threadNode{msg: -1}
			adopt(d, t, n)
			roots[pos[t]] = d
			pos[d] = pos[t]
			table[s] = d
		}
	}
	return slices.DeleteFunc(roots, func(n *threadNode) bool { return n == nil })
}

// sortTree sorts every set of siblings by sent date, children before
// their parents (RFC 5256 4, REFERENCES step 6).
func sortTree(nodes []*threadNode, msgs []threadMsg) {
	for _, n := range nodes {
		sortTree(n.kids, msgs)
	}
	sortThreads(nodes, msgs)
}

// appendThreads appends the threads of roots as RFC 5256 5 writes them,
// one thread-list each, num giving a message's number or UID: a parent
// with one child is followed by it ("1 2"), one with several by one
// thread-list each ("1 (2)(3 4)"), and a dummy shows as its children
// alone ("((2)(3))").
func appendThreads(b []byte, roots []*threadNode, num func(int) uint64) []byte {
	for _, n := range roots {
		b = append(b, '(')
		b = appendThreadMembers(b, n, num)
		b = append(b, ')')
	}
	return b
}

func appendThreadMembers(b []byte, n *threadNode, num func(int) uint64) []byte {
	for {
		if !n.dummy() {
			b = strconv.AppendUint(b, num(n.msg), 10)
			if len(n.kids) > 0 {
				b = append(b, ' ')
			}
		}
		if len(n.kids) != 1 {
			return appendThreads(b, n.kids, num)
		}
		n = n.kids[0] // a chain, written without nesting
	}
}
