package sieve

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/buzon-mail/buzon/internal/message"
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
	// res are the compiled :regex keys and globs the parsed :matches
	// keys, nil for those that hold variables and are made at each run.
	res   []*regexp.Regexp
	globs [][]globTok
}

// maxPattern bounds a :matches or :regex key after variable expansion.
const maxPattern = 4096

// globTok is one element of a :matches pattern: a literal byte, ? or *.
type globTok struct {
	kind byte // 'c' a literal byte, '?' one character, '*' any characters
	c    byte
	w    int // the wildcard's number, from 0, for ? and *
}

// parseGlob reads a :matches pattern (RFC 5228 2.7.1): * and ? are
// wildcards and a backslash makes the next character literal. Under
// i;ascii-casemap the pattern is folded to lower case, as the values
// it is matched against are.
func parseGlob(key string, cmp comparator) ([]globTok, error) {
	if len(key) > maxPattern {
		return nil, fmt.Errorf("pattern longer than %d bytes", maxPattern)
	}
	if cmp == cmpCasemap {
		key = message.ASCIILower(key)
	}
	toks := make([]globTok, 0, len(key))
	w := 0
	for i := 0; i < len(key); i++ {
		switch c := key[i]; c {
		case '*':
			toks = append(toks, globTok{kind: '*', w: w})
			w++
		case '?':
			toks = append(toks, globTok{kind: '?', w: w})
			w++
		case '\\':
			if i+1 < len(key) {
				i++
				toks = append(toks, globTok{kind: 'c', c: key[i]})
			}
		default:
			toks = append(toks, globTok{kind: 'c', c: c})
		}
	}
	return toks, nil
}

// errTooMuchWork ends a run that compared too much.
var errTooMuchWork = errors.New("sieve: the script does too much work on this message")

// glob matches v against a pattern, filling caps with the offsets of
// each wildcard's match (2 per wildcard) when it is not nil. Each *
// takes as little as the rest of the pattern allows, as Pigeonhole
// does and RFC 5229 3.2's example shows: the classic two-pointer
// algorithm, which goes back only to the last *, in at most
// len(v)*len(toks) steps and no allocation. ? is one character (RFC 5228
// 2.7.1), UTF-8 whatever the comparator, a byte that is not UTF-8 being
// one character too. It fails with errTooMuchWork past budget steps.
func glob(toks []globTok, v string, caps []int, budget int64) (ok bool, steps int64, err error) {
	one := func(i int) int {
		_, n := utf8.DecodeRuneInString(v[i:])
		return n
	}
	pi, si := 0, 0
	starP, starS := -1, 0
	for si < len(v) || pi < len(toks) {
		steps++
		if steps > budget {
			return false, steps, errTooMuchWork
		}
		if pi < len(toks) {
			t := toks[pi]
			switch {
			case t.kind == '*':
				starP, starS = pi, si
				if caps != nil {
					caps[2*t.w], caps[2*t.w+1] = si, si
				}
				pi++
				continue
			case t.kind == '?' && si < len(v):
				n := one(si)
				if caps != nil {
					caps[2*t.w], caps[2*t.w+1] = si, si+n
				}
				si += n
				pi++
				continue
			case t.kind == 'c' && si < len(v) && v[si] == t.c:
				si++
				pi++
				continue
			}
		}
		// A mismatch: the last * takes one more character.
		if starP < 0 || starS >= len(v) {
			return false, steps, nil
		}
		starS += one(starS)
		si, pi = starS, starP+1
		if caps != nil {
			caps[2*toks[starP].w+1] = starS
		}
	}
	return true, steps, nil
}

// compile makes the regular expression of a :regex key
// (draft-ietf-sieve-regex): Go's RE2 syntax, a superset of POSIX
// extended expressions (it adds \d, non-greedy operators and so on, and
// lacks back references and collating elements [[.x.]] [[=x=]]).
// Matching is leftmost-longest, as POSIX asks, and takes time linear in
// the value whatever the pattern. Under i;ascii-casemap it matches
// case-insensitively by Unicode simple folding.
func (m *matcher) compile(key string) (*regexp.Regexp, error) {
	if len(key) > maxPattern {
		return nil, fmt.Errorf("pattern longer than %d bytes", maxPattern)
	}
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

// compare orders a and b by the comparator (RFC 4790 9.2, 9.3, 9.1).
func compare(cmp comparator, a, b string) int {
	switch cmp {
	case cmpCasemap:
		// i;ascii-casemap maps a-z to A-Z before comparing.
		return strings.Compare(message.ASCIIUpper(a), message.ASCIIUpper(b))
	case cmpNumeric:
		return compareNumbers(a, b)
	}
	return strings.Compare(a, b)
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
		var toks []globTok
		switch {
		case m.kind == matchRegex && m.res != nil && m.res[i] != nil:
			re = m.res[i]
		case m.kind == matchRegex:
			if re, err = r.regexp(m, key); err != nil {
				return false, err
			}
		case m.kind == matchMatches && m.globs != nil && m.globs[i] != nil:
			toks = m.globs[i]
		case m.kind == matchMatches:
			if toks, err = parseGlob(key, m.cmp); err != nil {
				return false, fmt.Errorf("sieve: %w", err)
			}
		}
		for _, v := range values {
			// RE2 runs in time linear in the value times the
			// pattern, each step costing some eight of glob's,
			// which counts its own.
			cost := int64(len(v)) + int64(len(key))
			if re != nil {
				cost = 8 * int64(len(v)+1) * int64(len(key)+1)
			}
			if err := r.spend(cost); err != nil {
				return false, err
			}
			ok, err := r.matchOne(m, re, toks, v, key)
			if err != nil || ok {
				return ok, err
			}
		}
	}
	return false, nil
}

// matchOne matches one value against one key.
func (r *run) matchOne(m *matcher, re *regexp.Regexp, toks []globTok, v, key string) (bool, error) {
	switch m.kind {
	case matchIs:
		if m.cmp == cmpCasemap {
			return message.ASCIILower(v) == message.ASCIILower(key), nil
		}
		return compare(m.cmp, v, key) == 0, nil
	case matchContains:
		if m.cmp == cmpCasemap {
			return strings.Contains(message.ASCIILower(v), message.ASCIILower(key)), nil
		}
		return strings.Contains(v, key), nil
	case matchValue:
		return relation(m.rel, compare(m.cmp, v, key)), nil
	case matchMatches:
		in := v
		if m.cmp == cmpCasemap {
			in = message.ASCIILower(v) // same offsets as v
		}
		var caps []int
		if r.s.req["variables"] {
			caps = make([]int, 2+2*countWildcards(toks))
			caps[0], caps[1] = 0, len(v)
		}
		var sub []int
		if caps != nil {
			sub = caps[2:]
		}
		ok, steps, err := glob(toks, in, sub, maxWork-r.work)
		r.work += steps
		if err != nil || !ok {
			return false, err
		}
		if caps != nil {
			r.setMatch(v, caps)
		}
		return true, nil
	case matchRegex:
		if !r.s.req["variables"] {
			return re.MatchString(v), nil
		}
		idx := re.FindStringSubmatchIndex(v)
		if idx == nil {
			return false, nil
		}
		r.setMatch(v, idx)
		return true, nil
	}
	return false, nil
}

func countWildcards(toks []globTok) int {
	n := 0
	for _, t := range toks {
		if t.kind != 'c' {
			n++
		}
	}
	return n
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
