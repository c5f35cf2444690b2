package sieve

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Match types (RFC 5228 2.7.1), :regex (draft-ietf-sieve-regex) and the
// relational ones (RFC 5231).
type matchKind int

const (
	matchIs matchKind = iota
	matchContains
	matchMatches
	matchRegex
	matchValue
	matchCount
)

// Comparators (RFC 4790 9): the default is i;ascii-casemap (RFC 5228
// 2.7.3).
type comparator int

const (
	cmpOctet comparator = iota
	cmpCasemap
	cmpNumeric
)

// matcher is the comparator, match type and keys of a test.
type matcher struct {
	kind matchKind
	cmp  comparator
	rel  string // :value and :count's operator
	keys []str
	// res are the compiled :matches and :regex keys, nil for those that
	// hold variables and are compiled at each run.
	res []*regexp.Regexp
}

// maxPattern bounds a :matches or :regex key after variable expansion.
const maxPattern = 4096

// compile makes the regular expression of a :matches or :regex key.
//
// A :matches pattern (RFC 5228 2.7.1) becomes an anchored expression in
// which each * is a lazy group and each ? a one-character group: the
// groups are the match variables of RFC 5229 3.2, each * taking as little
// as the rest of the pattern allows, as Pigeonhole does. Under
// i;ascii-casemap both the pattern and the value are folded to lower case
// (ASCII letters only, which keeps byte offsets), so that no other
// character folds.
//
// A :regex key is Go's RE2 syntax, a superset of POSIX extended
// expressions (it adds \d, non-greedy operators and so on, and lacks back
// references and collating elements [[.x.]] [[=x=]]); matching is
// leftmost-longest, as POSIX asks, and takes time linear in the value,
// whatever the pattern. Under i;ascii-casemap it matches case-insensitively
// by Unicode simple folding.
func (m *matcher) compile(key string) (*regexp.Regexp, error) {
	if len(key) > maxPattern {
		return nil, fmt.Errorf("pattern longer than %d bytes", maxPattern)
	}
	if m.kind == matchRegex {
		expr := key
		if m.cmp == cmpCasemap {
			expr = "(?i)" + expr
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, fmt.Errorf("invalid regular expression %q: %v", key, err)
		}
		re.Longest()
		return re, nil
	}
	if m.cmp == cmpCasemap {
		key = asciiLower(key)
	}
	var b strings.Builder
	b.WriteString(`(?s)\A`)
	for i := 0; i < len(key); i++ {
		switch c := key[i]; c {
		case '*':
			b.WriteString(`(.*?)`)
		case '?':
			b.WriteString(`(.)`)
		case '\\':
			if i+1 < len(key) {
				i++
				b.WriteString(regexp.QuoteMeta(key[i : i+1]))
			}
		default:
			b.WriteString(regexp.QuoteMeta(key[i : i+1]))
		}
	}
	b.WriteString(`\z`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("pattern %q: %v", key, err)
	}
	return re, nil
}

// asciiLower folds ASCII letters to lower case and leaves every other byte.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// compare orders a and b by the comparator (RFC 4790 9.2, 9.3, 9.1).
func compare(cmp comparator, a, b string) int {
	switch cmp {
	case cmpCasemap:
		// i;ascii-casemap maps a-z to A-Z before comparing.
		return strings.Compare(asciiUpper(a), asciiUpper(b))
	case cmpNumeric:
		return compareNumbers(a, b)
	}
	return strings.Compare(a, b)
}

func asciiUpper(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' {
			return r - ('a' - 'A')
		}
		return r
	}, s)
}

// compareNumbers is i;ascii-numeric (RFC 4790 9.1): the digits a string
// starts with, as a number of any size; a string that does not start with
// a digit is positive infinity, equal to any other such string.
func compareNumbers(a, b string) int {
	na, oka := leadingNumber(a)
	nb, okb := leadingNumber(b)
	switch {
	case !oka && !okb:
		return 0
	case !oka:
		return 1
	case !okb:
		return -1
	}
	if len(na) != len(nb) {
		if len(na) < len(nb) {
			return -1
		}
		return 1
	}
	return strings.Compare(na, nb)
}

// leadingNumber returns the digits s starts with, without leading zeros.
func leadingNumber(s string) (string, bool) {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	if n == 0 {
		return "", false
	}
	d := strings.TrimLeft(s[:n], "0")
	return d, true
}

// relation tells whether c, the result of a comparison, satisfies the
// relational operator (RFC 5231 5).
func relation(op string, c int) bool {
	switch op {
	case "gt":
		return c > 0
	case "ge":
		return c >= 0
	case "lt":
		return c < 0
	case "le":
		return c <= 0
	case "eq":
		return c == 0
	}
	return c != 0 // "ne"
}

// match tells whether any of the values matches any key, setting the
// match variables from the first match of :matches and :regex (RFC 5229
// 3.2).
func (r *run) match(m *matcher, values []string) (bool, error) {
	if m.kind == matchCount {
		count := strconv.Itoa(len(values))
		for _, k := range m.keys {
			key, err := r.expand(k)
			if err != nil {
				return false, err
			}
			if relation(m.rel, compare(m.cmp, count, key)) {
				return true, nil
			}
		}
		return false, nil
	}
	for i, k := range m.keys {
		key, err := r.expand(k)
		if err != nil {
			return false, err
		}
		var re *regexp.Regexp
		if m.kind == matchMatches || m.kind == matchRegex {
			if m.res != nil && m.res[i] != nil {
				re = m.res[i]
			} else if re, err = r.regexp(m, key); err != nil {
				return false, err
			}
		}
		for _, v := range values {
			if err := r.spend(int64(len(v)) + int64(len(key))); err != nil {
				return false, err
			}
			if r.matchOne(m, re, v, key) {
				return true, nil
			}
		}
	}
	return false, nil
}

// matchOne matches one value against one key.
func (r *run) matchOne(m *matcher, re *regexp.Regexp, v, key string) bool {
	switch m.kind {
	case matchIs:
		if m.cmp == cmpCasemap {
			return asciiLower(v) == asciiLower(key)
		}
		return compare(m.cmp, v, key) == 0
	case matchContains:
		if m.cmp == cmpCasemap {
			return strings.Contains(asciiLower(v), asciiLower(key))
		}
		return strings.Contains(v, key)
	case matchValue:
		return relation(m.rel, compare(m.cmp, v, key))
	case matchMatches:
		in := v
		if m.cmp == cmpCasemap {
			in = asciiLower(v)
		}
		idx := re.FindStringSubmatchIndex(in)
		if idx == nil {
			return false
		}
		r.setMatch(v, idx)
		return true
	case matchRegex:
		idx := re.FindStringSubmatchIndex(v)
		if idx == nil {
			return false
		}
		r.setMatch(v, idx)
		return true
	}
	return false
}

// setMatch sets ${0}..${9} from a match's submatch offsets in v.
func (r *run) setMatch(v string, idx []int) {
	if !r.s.req["variables"] {
		return
	}
	r.matchVars = r.matchVars[:0]
	for i := 0; i+1 < len(idx) && i/2 < maxMatchVars; i += 2 {
		if idx[i] < 0 {
			r.matchVars = append(r.matchVars, "")
			continue
		}
		r.matchVars = append(r.matchVars, v[idx[i]:idx[i+1]])
	}
}

// regexp compiles a key that held variables, once per run.
func (r *run) regexp(m *matcher, key string) (*regexp.Regexp, error) {
	ck := fmt.Sprint(m.kind, m.cmp, key)
	if re, ok := r.res[ck]; ok {
		return re, nil
	}
	if err := r.spend(int64(len(key)) * 16); err != nil {
		return nil, err
	}
	re, err := m.compile(key)
	if err != nil {
		return nil, fmt.Errorf("sieve: %w", err)
	}
	if r.res == nil {
		r.res = map[string]*regexp.Regexp{}
	}
	r.res[ck] = re
	return re, nil
}
