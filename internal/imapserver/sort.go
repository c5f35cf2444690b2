package imapserver

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/buzon-mail/buzon/internal/message"
	"github.com/buzon-mail/buzon/internal/store"
	"golang.org/x/text/unicode/norm"
)

// SORT (RFC 5256), with the DISPLAYFROM and DISPLAYTO keys of RFC 5957:
// webmail such as Roundcube lists a folder in the order the user chose
// with it, rather than fetching every message's header to sort them
// itself.

// sortCriterion is one sort key, as the client wrote it.
type sortCriterion struct {
	key     string // "ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM" or "DISPLAYTO"
	reverse bool
}

type sortArgs struct {
	criteria []sortCriterion
	search   *searchArgs
}

// RFC 5256 3: SORT (criteria) charset search-key...; RFC 5267 3 (ESORT):
// SORT RETURN (options) (criteria) ...
func parseSort(p *parser, _ *command) any {
	a := &sortArgs{}
	p.xspace()
	var ret []string
	hasReturn := p.take("RETURN (")
	if hasReturn {
		ret = p.xsearchReturn()
		p.xspace()
	}
	p.xtake("(")
	for i := 0; i == 0 || !p.take(")"); i++ {
		if i > 0 {
			p.xspace()
		}
		var c sortCriterion
		key := strings.ToUpper(p.xatom())
		if key == "REVERSE" {
			c.reverse = true
			p.xspace()
			key = strings.ToUpper(p.xatom())
		}
		switch key {
		case "ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO":
		default:
			p.xerrorf("unknown sort key %s", key)
		}
		c.key = key
		a.criteria = append(a.criteria, c)
	}
	p.xspace()
	a.search = p.xsearchCriteria()
	a.search.hasReturn, a.search.ret = hasReturn, ret
	return a
}

// savesSearchRes reports whether a command's arguments are those of a
// SEARCH or SORT that saves its result for "$" (RFC 5182 2.1): execute
// then empties "$" when the command, or the sync after it, ends in NO.
func savesSearchRes(args any) bool {
	switch a := args.(type) {
	case *searchArgs:
		return a.saves()
	case *sortArgs:
		return a.search.saves()
	}
	return false
}

// sortValue is a message's value for one criterion: a number (an Unix
// time, a size) or a string, compared as RFC 5256 3 says.
type sortValue struct {
	n int64
	s string
}

func compareValues(x, y sortValue) int {
	if c := cmp.Compare(x.n, y.n); c != 0 {
		return c
	}
	return strings.Compare(x.s, y.s)
}

type sortItem struct {
	seq    uint32
	uid    store.UID
	modSeq store.ModSeq
	vals   []sortValue // by criterion
}

// RFC 5256 3, RFC 7162 3.1.5 (MODSEQ), RFC 5267 3 (ESORT)
func (c *conn) cmdSort(cmd *command) {
	defer c.dropDecoder()
	a := cmd.args.(*sortArgs)
	var items []sortItem
	var highest store.ModSeq
	modSeqUsed, ok := c.xsearchEach(a.search, func(m *store.MessageInfo, seq uint32) {
		items = append(items, sortItem{seq: seq, uid: m.UID, modSeq: m.ModSeq})
		highest = max(highest, m.ModSeq)
	})
	if !ok {
		return // the mailbox is gone
	}
	c.xsortValues(a.criteria, items)
	slices.SortFunc(items, func(x, y sortItem) int {
		for i, cr := range a.criteria {
			d := compareValues(x.vals[i], y.vals[i])
			if cr.reverse {
				d = -d
			}
			if d != 0 {
				return d
			}
		}
		// RFC 5256 3: equal messages in ascending sequence order,
		// whatever REVERSE said.
		return cmp.Compare(x.seq, y.seq)
	})
	if a.search.hasReturn {
		c.writeESort(cmd, a.search.ret, items, modSeqUsed, highest)
		return
	}
	w := c.w
	w.str("* SORT")
	for _, it := range items {
		w.byte(' ')
		if cmd.uid {
			w.num(uint64(it.uid))
		} else {
			w.num(uint64(it.seq))
		}
	}
	if modSeqUsed && len(items) > 0 {
		w.str(" (MODSEQ ")
		w.num(uint64(highest))
		w.str(")")
	}
	w.str("\r\n")
}

// writeESort answers a SORT RETURN with ESEARCH (RFC 5267 3), items in
// their sorted order: MIN and MAX are the first and last of that order,
// not the lowest and highest numbers, and ALL keeps it. It saves the
// result for "$" when the options say SAVE (RFC 5182).
func (c *conn) writeESort(cmd *command, ret []string, items []sortItem, modSeqUsed bool, highest store.ModSeq) {
	save := slices.Contains(ret, "SAVE")
	if len(ret) == 0 {
		ret = []string{"ALL"} // RFC 4731 3.1, which RFC 5267 3 follows
	}
	onlyMin, onlyMax := minMaxOnly(ret)
	// The messages the answer stands for: with MIN or MAX alone, those
	// (RFC 5182 2.4, RFC 4731 3.2).
	named := minMaxNamed(items, onlyMin, onlyMax)
	if save {
		// "$" is a set: its order is the mailbox's, not the sort's.
		uids := make([]store.UID, len(named))
		for i, it := range named {
			uids[i] = it.uid
		}
		slices.Sort(uids)
		c.searchRes = uids
		if len(ret) == 1 {
			return // RFC 5182 2.2: SAVE alone answers nothing
		}
	}
	num := func(it sortItem) uint64 {
		if cmd.uid {
			return uint64(it.uid)
		}
		return uint64(it.seq)
	}
	w := c.w
	c.writeESearchStart(cmd)
	for _, opt := range ret {
		switch {
		case opt == "MIN" && len(items) > 0:
			w.str(" MIN ")
			w.num(num(items[0]))
		case opt == "MAX" && len(items) > 0:
			w.str(" MAX ")
			w.num(num(items[len(items)-1]))
		case opt == "COUNT":
			w.str(" COUNT ")
			w.num(uint64(len(items)))
		case opt == "ALL" && len(items) > 0:
			w.str(" ALL ")
			c.writeSortedSet(items, num)
		}
	}
	if modSeqUsed && len(items) > 0 {
		// RFC 4731 3.2, RFC 7162 3.1.5: the highest MODSEQ of the
		// messages the answer names.
		if len(named) < len(items) {
			highest = 0
			for _, it := range named {
				highest = max(highest, it.modSeq)
			}
		}
		w.str(" MODSEQ ")
		w.num(uint64(highest))
	}
	w.str("\r\n")
}

// writeSortedSet writes the numbers of items, in their order, as a
// sequence-set (RFC 5267 3: ALL keeps the sort's order). Only a run of
// numbers ascending one by one becomes a range, "4:6" for 4,5,6, which
// reads the same as a set and in order; any other order is written a
// number at a time, since "6:4" is the same set as "4:6" (RFC 9051 9)
// and no order at all.
func (c *conn) writeSortedSet(items []sortItem, num func(sortItem) uint64) {
	w := c.w
	for i := 0; i < len(items); {
		j := i + 1
		for j < len(items) && num(items[j]) == num(items[j-1])+1 {
			j++
		}
		if i > 0 {
			w.byte(',')
		}
		w.num(num(items[i]))
		if j-i > 1 {
			w.byte(':')
			w.num(num(items[j-1]))
		}
		i = j
	}
}

// xsortValues reads, for each message found, its value for each
// criterion, from the stored structure: a message expunged meanwhile
// keeps zero values.
func (c *conn) xsortValues(criteria []sortCriterion, items []sortItem) {
	if len(items) == 0 {
		return
	}
	var fields store.Field
	for _, cr := range criteria {
		switch cr.key {
		case "ARRIVAL":
			fields |= store.FieldDate
		case "SIZE":
			fields |= store.FieldSize
		case "DATE":
			fields |= store.FieldDate | store.FieldStructure // the arrival stands in for a Date the header lacks
		default:
			fields |= store.FieldStructure
		}
	}
	uids := make([]store.UID, len(items))
	for i := range items {
		uids[i] = items[i].uid
		items[i].vals = make([]sortValue, len(criteria))
	}
	err := c.eachFound(uids, fields, func(i int, m *store.MessageInfo, _ *message.Part, env *message.Envelope) error {
		for j, cr := range criteria {
			items[i].vals[j] = sortValueOf(cr.key, m, env)
		}
		return nil
	})
	xcheckf(err, "sort")
}

// eachFound calls f with each message of uids, those SEARCH found for
// SORT or THREAD, that the store still has, and its index in uids: a
// message expunged meanwhile is skipped. fields are what the store reads;
// with store.FieldStructure, part is the message's structure and env its
// envelope, else part is nil; env is empty where there is none.
func (c *conn) eachFound(uids []store.UID, fields store.Field, f func(i int, m *store.MessageInfo, part *message.Part, env *message.Envelope) error) error {
	index := make(map[store.UID]int, len(uids))
	for i, u := range uids {
		index[u] = i
	}
	return c.sess.Messages(c.ctx, c.sel.mb.ID, store.UIDSetOf(uids...), fields, func(m *store.MessageInfo) error {
		i, ok := index[m.UID]
		if !ok {
			return nil
		}
		var part *message.Part
		var env *message.Envelope
		if fields&store.FieldStructure != 0 {
			part = c.structure(m, nil)
			env = part.Envelope
		}
		if env == nil {
			env = &message.Envelope{}
		}
		return f(i, m, part, env)
	})
}

func sortValueOf(key string, m *store.MessageInfo, env *message.Envelope) sortValue {
	switch key {
	case "ARRIVAL":
		return sortValue{n: m.InternalDate.Unix()}
	case "SIZE":
		return sortValue{n: m.Size}
	case "DATE":
		return sortValue{n: sentDate(m, env)}
	case "SUBJECT":
		key, _ := subjectKey(message.DecodeHeaderValue(env.Subject))
		return sortValue{s: key}
	case "FROM":
		return sortValue{s: sortFold(firstMailbox(env.From))}
	case "TO":
		return sortValue{s: sortFold(firstMailbox(env.To))}
	case "CC":
		return sortValue{s: sortFold(firstMailbox(env.Cc))}
	case "DISPLAYFROM":
		return sortValue{s: sortFold(displayName(env.From))}
	case "DISPLAYTO":
		return sortValue{s: sortFold(displayName(env.To))}
	}
	return sortValue{}
}

// sentDate is the sent date that SORT's DATE and THREAD compare, in
// Unix seconds (RFC 5256 2.2): the Date field in UTC, or the internal
// date when the field is missing or cannot be read.
func sentDate(m *store.MessageInfo, env *message.Envelope) int64 {
	if t, ok := sentTime(env.Date); ok {
		return t.Unix()
	}
	return m.InternalDate.Unix()
}

// subjectKey is what SORT's SUBJECT and THREAD compare of a decoded
// Subject: its base subject (RFC 5256 2.1), folded; refwd as baseSubject
// reports it.
func subjectKey(s string) (key string, refwd bool) {
	base, refwd := baseSubject(s)
	return sortFold(base), refwd
}

// sortFold is how SORT compares strings, i;unicode-casemap (RFC 5051 2):
// in title case, decomposed, so that "é" sorts with "E"; for ASCII the
// same order as i;ascii-casemap, RFC 5256's default.
func sortFold(s string) string { return norm.NFD.String(strings.ToTitle(s)) }

// firstAddress is the first address of a list as ENVELOPE gives it: a
// group's start, whose mailbox is the group's name, is an address there
// (RFC 9051 7.5.2), and Dovecot sorts "undisclosed-recipients:;" by that
// name too.
func firstAddress(list []message.Address) (message.Address, bool) {
	if len(list) == 0 || list[0].GroupEnd {
		return message.Address{}, false
	}
	return list[0], true
}

// firstMailbox is what RFC 5256 3 sorts FROM, TO and CC by: the local
// part (addr-mailbox) of the first address, or "".
func firstMailbox(list []message.Address) string {
	a, _ := firstAddress(list)
	return a.Mailbox
}

// displayName is what RFC 5957 sorts DISPLAYFROM and DISPLAYTO by: the
// first address's display name, decoded, or where it has none its
// address (addr-mailbox "@" addr-host).
func displayName(list []message.Address) string {
	a, ok := firstAddress(list)
	if !ok {
		return ""
	}
	if name := strings.TrimSpace(message.DecodeHeaderValue(a.Name)); name != "" {
		return name
	}
	if a.Host == "" {
		return a.Mailbox
	}
	return a.Mailbox + "@" + a.Host
}

// baseSubject extracts the base subject of RFC 5256 2.1 from a decoded
// subject: what is left once the "Re:", "Fwd:", "[list]" and "(fwd)"
// marks that replies and forwards add are gone, so that a thread sorts
// together. refwd reports whether a mark of a reply or forward went, a
// "Re:", "Fw:" or "Fwd:" (subj-refwd), a "(fwd)" trailer or a "[fwd:
// ...]" around the subject: what REFERENCES calls a reply or forward (RFC
// 5256 4). A "[list]" blob alone is neither.
func baseSubject(s string) (base string, refwd bool) {
	// (1) Runs of white space become one space.
	s = strings.Join(strings.Fields(s), " ")
	for {
		// (2) Trailing "(fwd)" and white space.
		for {
			s = strings.TrimRight(s, " ")
			if len(s) < 5 || !strings.EqualFold(s[len(s)-5:], "(fwd)") {
				break
			}
			s = s[:len(s)-5]
			refwd = true
		}
		// (3), (4) and (5): leaders, and a leading blob that does not
		// leave the subject empty, until none is left.
		for {
			t, leader := trimLeaders(s)
			refwd = refwd || leader
			if _, rest, ok := cutBlob(t); ok && rest != "" {
				t = rest
			}
			if t == s {
				break
			}
			s = t
		}
		// (6) "[fwd: ...]" around the rest, and again from (2).
		if len(s) >= 6 && strings.EqualFold(s[:5], "[fwd:") && s[len(s)-1] == ']' {
			s = s[5 : len(s)-1]
			refwd = true
			continue
		}
		return s, refwd
	}
}

// trimLeaders removes every subj-leader from the front of s (RFC 5256 5):
// white space, and "re", "fw" or "fwd" with any blobs before it and one
// after, and a colon. leader reports whether it removed more than white
// space.
func trimLeaders(s string) (rest string, leader bool) {
	for {
		if strings.HasPrefix(s, " ") {
			s = s[1:]
			continue
		}
		t := s
		for {
			_, rest, ok := cutBlob(t)
			if !ok {
				break
			}
			t = rest
		}
		switch {
		case len(t) >= 3 && strings.EqualFold(t[:3], "fwd"):
			t = t[3:]
		case len(t) >= 2 && (strings.EqualFold(t[:2], "re") || strings.EqualFold(t[:2], "fw")):
			t = t[2:]
		default:
			return s, leader
		}
		t = strings.TrimLeft(t, " ")
		if _, rest, ok := cutBlob(t); ok {
			t = rest
		}
		if !strings.HasPrefix(t, ":") {
			return s, leader
		}
		s, leader = t[1:], true
	}
}

// cutBlob cuts a subj-blob from the front of s (RFC 5256 5): "[", text
// without brackets, "]" and white space.
func cutBlob(s string) (blob, rest string, ok bool) {
	if !strings.HasPrefix(s, "[") {
		return "", s, false
	}
	end := strings.IndexAny(s[1:], "[]")
	if end < 0 || s[1+end] != ']' {
		return "", s, false
	}
	return s[:end+2], strings.TrimLeft(s[end+2:], " "), true
}

// sentTime reads a Date field for SORT, which compares sent dates in UTC
// (RFC 5256 3), as leniently as sentDay reads the day: besides RFC 5322
// 3.3, a time written with dots, an ISO 8601 date-time, a zone that is
// missing (taken as +0000) or named: RFC 5322 4.3's North American ones
// ("EST" is -0500), the military letters and others counted as +0000, as
// it advises. A comment ("(PST)" after "-0800") says nothing.
func sentTime(s string) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339, strings.TrimSpace(s)); err == nil {
		return t, true
	}
	date, ok := sentDay(s)
	if !ok {
		return time.Time{}, false
	}
	var clock, zone time.Duration
	depth := 0
	for _, w := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' }) {
		if depth += strings.Count(w, "(") - strings.Count(w, ")"); depth > 0 || strings.HasSuffix(w, ")") {
			depth = max(depth, 0)
			continue
		}
		if c, ok := clockTime(w); ok {
			clock = c
			continue
		}
		if len(w) == 5 && (w[0] == '+' || w[0] == '-') && number(w[1:], 4) {
			h, _ := strconv.Atoi(w[1:3])
			m, _ := strconv.Atoi(w[3:])
			zone = time.Duration(h)*time.Hour + time.Duration(m)*time.Minute
			if w[0] == '-' {
				zone = -zone
			}
			continue
		}
		if off, ok := obsZones[strings.ToUpper(w)]; ok {
			zone = time.Duration(off) * time.Hour
		}
	}
	return date.Add(clock - zone), true
}

// obsZones are RFC 5322 4.3's named zones, in hours east of UTC.
var obsZones = map[string]int{
	"UT": 0, "GMT": 0, "Z": 0,
	"EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7,
}

// clockTime reads a time of day, "10:00", "10:00:00" or with dots.
func clockTime(w string) (time.Duration, bool) {
	parts := strings.FieldsFunc(w, func(r rune) bool { return r == ':' || r == '.' })
	if len(parts) < 2 || len(parts) > 3 || !strings.ContainsAny(w, ":.") {
		return 0, false
	}
	var d time.Duration
	for i, unit := range []time.Duration{time.Hour, time.Minute, time.Second}[:len(parts)] {
		if !number(parts[i], 2) {
			return 0, false
		}
		n, _ := strconv.Atoi(parts[i])
		d += time.Duration(n) * unit
	}
	return d, true
}
