package sieve

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/buzon-mail/buzon/internal/message"
)

// maxExpansion bounds a string after variable expansion: past it a run
// fails, so that a script cannot build large strings out of small ones.
const maxExpansion = 64 << 10

var errExpansion = errors.New("sieve: a string grows past 64 KiB when its variables are expanded")

// expand replaces the variable references of a string by their values
// (RFC 5229 3): ${name} and match variables ${0}..${9}, names compared
// without case. An unset variable is the empty string; text that is not
// a reference is left as it is, and the values are not expanded again.
func (r *run) expand(s str) (string, error) {
	if !s.vars {
		return s.s, nil
	}
	out, read, err := replaceRefs(s.s, maxExpansion, func(name string) (string, bool, error) {
		v, ok := r.lookup(name)
		return v, ok, nil
	})
	if err != nil {
		return "", err
	}
	if err := r.spend(int64(read + len(out))); err != nil {
		return "", err
	}
	return out, nil
}

// replaceRefs writes s with its references, "${" then anything up to
// the first "}", replaced: f gets what is between the braces and returns
// the replacement, or false to leave the text as it is (RFC 5228 2.4.2.4
// and RFC 5229 3 both read strings this way). A "${" followed by another
// before its "}" is text, since neither a variable name nor an encoded
// character holds "${", and f is not asked. So f's arguments never
// overlap, and s is searched once: read counts the bytes searched, for a
// run's budget. It fails with errExpansion when the result grows past
// limit bytes.
func replaceRefs(s string, limit int, f func(inner string) (string, bool, error)) (out string, read int, err error) {
	var b strings.Builder
	pos := 0                     // s[:pos] is written
	next := nextRef(s, 0, &read) // the next "${"
	end := -1                    // the first "}" after it
	for next >= 0 {
		start, inner := next, next+2
		next = nextRef(s, inner, &read)
		if end < inner {
			j := strings.IndexByte(s[inner:], '}')
			if j < 0 {
				read += len(s) - inner
				break // no reference can end: the rest is text
			}
			read += j + 1
			end = inner + j
		}
		if next >= 0 && next < end {
			continue
		}
		v, ok, err := f(s[inner:end])
		if err != nil {
			return "", read, err
		}
		if !ok {
			continue
		}
		b.WriteString(s[pos:start])
		b.WriteString(v)
		pos = end + 1
		if b.Len() > limit {
			return "", read, errExpansion
		}
	}
	b.WriteString(s[pos:])
	if b.Len() > limit {
		return "", read, errExpansion
	}
	return b.String(), read, nil
}

// nextRef returns the index of the first "${" in s at or after from, or
// -1, adding the bytes it searched to read.
func nextRef(s string, from int, read *int) int {
	if from > len(s) {
		return -1
	}
	i := strings.Index(s[from:], "${")
	if i < 0 {
		*read += len(s) - from
		return -1
	}
	*read += i + 2
	return from + i
}

// lookup returns the value of a variable reference's name, and false
// when the name is not a variable name, in which case the reference is
// text (RFC 5229 3).
func (r *run) lookup(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	if name[0] >= '0' && name[0] <= '9' {
		for i := 0; i < len(name); i++ {
			if name[i] < '0' || name[i] > '9' {
				return "", false
			}
		}
		n, err := strconv.Atoi(name)
		if err != nil || n >= len(r.matchVars) {
			return "", true
		}
		return r.matchVars[n], true
	}
	if !isIdentifier(name) {
		return "", false
	}
	return r.vars[strings.ToLower(name)], true
}

// expandAll expands a list of strings.
func (r *run) expandAll(list []str) ([]string, error) {
	out := make([]string, len(list))
	for i, s := range list {
		v, err := r.expand(s)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// setVar sets a variable, cut to maxVariableSize (RFC 5229 3 lets values
// be truncated, on a character boundary).
func (r *run) setVar(name, v string) error {
	if r.vars == nil {
		r.vars = map[string]string{}
	}
	if _, ok := r.vars[name]; !ok && len(r.vars) >= maxVariables {
		return fmt.Errorf("sieve: more than %d variables", maxVariables)
	}
	r.vars[name] = truncate(v)
	return nil
}

// truncate cuts a value to maxVariableSize bytes without splitting a
// UTF-8 character.
func truncate(v string) string {
	if len(v) <= maxVariableSize {
		return v
	}
	n := maxVariableSize
	for n > 0 && !utf8.RuneStart(v[n]) {
		n--
	}
	return v[:n]
}

// modify applies one of set's modifiers (RFC 5229 4.1).
func modify(m, v string) string {
	switch m {
	case "lower":
		return strings.ToLower(v)
	case "upper":
		return strings.ToUpper(v)
	case "lowerfirst", "upperfirst":
		r, n := utf8.DecodeRuneInString(v)
		if n == 0 {
			return v
		}
		if m == "lowerfirst" {
			r = unicode.ToLower(r)
		} else {
			r = unicode.ToUpper(r)
		}
		return string(r) + v[n:]
	case "quotewildcard":
		var b strings.Builder
		for i := 0; i < len(v); i++ {
			if c := v[i]; c == '*' || c == '?' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(v[i])
		}
		return b.String()
	case "quoteregex":
		return regexp.QuoteMeta(v)
	case "length":
		return strconv.Itoa(utf8.RuneCountInString(v))
	}
	return v
}

// addFlags adds flags to a space-separated flag list, each once, IMAP
// flags being case-insensitive (RFC 5232 3, 4). The list stops growing at
// maxVariableSize (RFC 5229 3 lets a value be truncated), a flag that
// does not fit being left out whole. The bytes read are charged to the
// run's budget.
func (r *run) addFlags(cur string, add []string) (string, error) {
	if err := r.spendStrings(cur, add); err != nil {
		return "", err
	}
	var b strings.Builder
	seen := map[string]bool{}
	for _, list := range append([]string{cur}, add...) {
		for f := range strings.FieldsSeq(list) {
			key := message.ASCIILower(f)
			if seen[key] {
				continue
			}
			if b.Len()+1+len(f) > maxVariableSize {
				return b.String(), nil
			}
			seen[key] = true
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(f)
		}
	}
	return b.String(), nil
}

// removeFlags removes flags from a flag list (RFC 5232 3.3), charging
// the bytes read to the run's budget.
func (r *run) removeFlags(cur string, remove []string) (string, error) {
	if err := r.spendStrings(cur, remove); err != nil {
		return "", err
	}
	gone := map[string]bool{}
	for _, list := range remove {
		for f := range strings.FieldsSeq(list) {
			gone[message.ASCIILower(f)] = true
		}
	}
	var kept []string
	for f := range strings.FieldsSeq(cur) {
		if !gone[message.ASCIILower(f)] {
			kept = append(kept, f)
		}
	}
	return strings.Join(kept, " "), nil
}

// spendStrings charges the bytes of strings about to be read.
func (r *run) spendStrings(s string, list []string) error {
	n := int64(len(s))
	for _, x := range list {
		n += int64(len(x))
	}
	return r.spend(n)
}
