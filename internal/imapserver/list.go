package imapserver

import (
	"maps"
	"slices"
	"strings"

	"github.com/buzon-mail/buzon/internal/store"
)

// matchPattern reports whether name matches a LIST pattern: "*" matches
// anything, "%" anything but the hierarchy delimiter (RFC 9051 6.3.9).
// INBOX, as a name or as the first level of one, matches in any case
// ("inb*", "Inbox/%"), as the name INBOX does everywhere else (RFC 9051
// 5.1). It runs in time proportional to len(pattern)*len(name), whatever
// the pattern.
func matchPattern(pattern, name string) bool {
	// The octets of name, from the start, that match in any case.
	folded := 0
	if rest, ok := strings.CutPrefix(name, "INBOX"); ok && (rest == "" || rest[0] == store.HierarchyDelimiter) {
		folded = len("INBOX")
	}
	// prev[j]: pattern[:i] matches name[:j].
	prev := make([]bool, len(name)+1)
	cur := make([]bool, len(name)+1)
	prev[0] = true
	for i := 0; i < len(pattern); i++ {
		pc := pattern[i]
		cur[0] = prev[0] && (pc == '*' || pc == '%')
		for j := 1; j <= len(name); j++ {
			switch pc {
			case '*':
				cur[j] = prev[j] || cur[j-1]
			case '%':
				cur[j] = prev[j] || (cur[j-1] && name[j-1] != store.HierarchyDelimiter)
			default:
				c := name[j-1]
				cur[j] = prev[j-1] && (c == pc || j <= folded && c == upperASCII(pc))
			}
		}
		prev, cur = cur, prev
	}
	return prev[len(name)]
}

func upperASCII(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

// listItem is one candidate name of a LIST.
type listItem struct {
	name       string
	mb         *store.Mailbox // nil: the name exists only as a superior of others
	subscribed bool
}

// RFC 9051 6.3.9, RFC 5258 (LIST-EXTENDED), RFC 5819 (LIST-STATUS),
// RFC 6154 (SPECIAL-USE), RFC 3348 (CHILDREN); LSUB is RFC 3501 6.3.9.
func (c *conn) cmdList(cmd *command) {
	a := cmd.args.(*listArgs)
	var selSubscribed, selSpecial, recursive bool
	for _, o := range a.selOpts {
		switch o {
		case "SUBSCRIBED":
			selSubscribed = true
		case "SPECIAL-USE":
			selSpecial = true
		case "RECURSIVEMATCH":
			recursive = true
		case "REMOTE":
		default:
			xsyntaxErrorf("unknown LIST selection option %s", o)
		}
	}
	if recursive && !selSubscribed && !selSpecial {
		xsyntaxErrorf("RECURSIVEMATCH needs another selection option") // RFC 5258 3.1
	}
	var retSubscribed, retStatus bool
	for _, o := range a.retOpts {
		switch o {
		case "SUBSCRIBED":
			retSubscribed = true
		case "CHILDREN", "SPECIAL-USE":
			// Always returned.
		case "STATUS":
			retStatus = true
			c.xstatusItems(a.statusItems)
		default:
			xsyntaxErrorf("unknown LIST return option %s", o)
		}
	}
	verb := "LIST"
	if a.lsub {
		verb, selSubscribed, retSubscribed = "LSUB", true, false
	}

	ref := c.xmailboxName(a.ref)
	var patterns []string
	for _, pat := range a.patterns {
		if pat == "" && len(a.patterns) == 1 {
			// RFC 9051 6.3.9: the delimiter and root of the reference.
			c.w.str("* " + verb + ` (\Noselect) "/" ""` + "\r\n")
			return
		}
		full := pat
		if ref != "" && !strings.HasPrefix(pat, string(store.HierarchyDelimiter)) {
			full = ref + pat
		}
		patterns = append(patterns, c.xlistPattern(full))
	}

	mbs, err := c.sess.Mailboxes(c.ctx)
	xcheckf(err, "list mailboxes")
	var subs []string
	if selSubscribed || retSubscribed {
		subs, err = c.sess.Subscriptions(c.ctx)
		xcheckf(err, "list subscriptions")
		for i, s := range subs {
			subs[i] = store.CanonicalMailboxName(s)
		}
	}

	// Candidates: every mailbox, every superior of one, every subscription.
	items := map[string]*listItem{}
	add := func(name string) *listItem {
		it := items[name]
		if it == nil {
			it = &listItem{name: name}
			items[name] = it
		}
		return it
	}
	for i := range mbs {
		add(mbs[i].Name).mb = &mbs[i]
		for j := 0; j < len(mbs[i].Name); j++ {
			if mbs[i].Name[j] == store.HierarchyDelimiter {
				add(mbs[i].Name[:j])
			}
		}
	}
	for _, s := range subs {
		add(s).subscribed = true
	}
	// names is sorted for the search for descendants; the output puts
	// INBOX first.
	names := slices.Sorted(maps.Keys(items))
	order := names
	if i := slices.Index(names, "INBOX"); i > 0 {
		order = append([]string{"INBOX"}, slices.Delete(slices.Clone(names), i, i+1)...)
	}
	matches := func(name string) bool {
		for _, p := range patterns {
			if matchPattern(p, name) {
				return true
			}
		}
		return false
	}
	// descendants reports whether name has existing children, children
	// that do not match, and subscribed ones that do not match.
	descendants := func(name string) (children, unmatched, subUnmatched bool) {
		prefix := name + string(store.HierarchyDelimiter)
		i, _ := slices.BinarySearch(names, prefix)
		for ; i < len(names); i++ {
			n := names[i]
			if !strings.HasPrefix(n, prefix) {
				break
			}
			it := items[n]
			if it.mb != nil {
				children = true
			}
			if !matches(n) {
				unmatched = true
				if it.subscribed {
					subUnmatched = true
				}
			}
		}
		return
	}

	for _, name := range order {
		it := items[name]
		if !matches(name) {
			continue
		}
		children, unmatched, subUnmatched := descendants(name)
		var attrs []string
		childInfo := false
		lsubParent := false
		switch {
		case a.lsub && !it.subscribed:
			// RFC 3501 6.3.9: a superior of subscribed names that "%"
			// does not reach is listed \Noselect.
			if !subUnmatched {
				continue
			}
			lsubParent = true
		case selSubscribed && !it.subscribed:
			// RFC 5258 3.5: a superior of unmatched subscribed names.
			if !recursive || !subUnmatched {
				continue
			}
			childInfo = true
		case selSubscribed && subUnmatched && recursive && !a.lsub:
			childInfo = true
		}
		if selSpecial && (it.mb == nil || it.mb.SpecialUse == "") && !childInfo {
			continue
		}
		if it.mb == nil && !(it.subscribed && selSubscribed) && !unmatched {
			// A superior shown only when "%" stops above its children. A
			// subscription that names no mailbox is listed only when the
			// selection asks for subscriptions: RETURN (SUBSCRIBED) adds
			// no names (RFC 5258 3.2).
			continue
		}
		switch {
		case it.mb == nil && (it.subscribed && !a.lsub):
			attrs = append(attrs, `\NonExistent`)
		case it.mb == nil || lsubParent:
			attrs = append(attrs, `\Noselect`)
		}
		if !a.lsub {
			if children {
				attrs = append(attrs, `\HasChildren`)
			} else if it.mb != nil {
				attrs = append(attrs, `\HasNoChildren`)
			}
		}
		if (retSubscribed || (selSubscribed && !a.lsub)) && it.subscribed {
			attrs = append(attrs, `\Subscribed`)
		}
		if it.mb != nil && it.mb.SpecialUse != "" && !a.lsub {
			attrs = append(attrs, it.mb.SpecialUse)
		}
		c.w.str("* " + verb + " (" + strings.Join(attrs, " ") + `) "/" `)
		c.writeMailbox(name)
		if childInfo {
			c.w.str(` ("CHILDINFO" ("SUBSCRIBED"))`)
		}
		c.w.str("\r\n")
		if retStatus && it.mb != nil {
			c.writeStatus(it.mb.Name, *it.mb, a.statusItems)
		}
	}
}

// xlistPattern decodes a LIST pattern like a mailbox name, keeping the
// wildcards, and spells INBOX canonically.
func (c *conn) xlistPattern(pat string) string {
	return c.xmailboxName(pat)
}
