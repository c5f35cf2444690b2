package sieve

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
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
	res   []*regex
	globs [][]globTok
}

// regex is a compiled :regex key with the size of its program: RE2 runs
// in time linear in the value times the program, which is what a match
// costs, and the program may be far larger than the key ("[a-z]{1000}").
type regex struct {
	re    *regexp.Regexp
	insts int64
}

// regexKey is how a run caches the :regex keys it compiles.
type regexKey struct {
	cmp comparator
	key string
}

// maxRegexInsts bounds the program of one :regex key: a key of
// maxPattern plain characters fits, as do repetitions of some thousand
// steps; a key that makes more is refused, at compile time when it holds
// no variable. maxScriptRegexInsts bounds the sum of a script's, so that
// the compiled script stays small whatever its text.
const (
	maxRegexInsts       = 4 * maxPattern
	maxScriptRegexInsts = 1 << 18
)

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
// the value times the program whatever the pattern. Under
// i;ascii-casemap it matches case-insensitively by Unicode simple
// folding. A key whose program would pass maxRegexInsts is refused
// before the program is made.
func (m *matcher) compile(key string) (*regex, error) {
	if len(key) > maxPattern {
		return nil, fmt.Errorf("pattern longer than %d bytes", maxPattern)
	}
	expr := key
	if m.cmp == cmpCasemap {
		expr = "(?i)" + expr
	}
	tree, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression %q: %v", key, err)
	}
	if n := progSize(tree, maxRegexInsts); n > maxRegexInsts {
		return nil, fmt.Errorf("regular expression %q is too large: more than %d steps (repeat counts multiply its size)", key, maxRegexInsts)
	}
	prog, err := syntax.Compile(tree.Simplify())
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression %q: %v", key, err)
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression %q: %v", key, err)
	}
	re.Longest()
	return &regex{re: re, insts: int64(len(prog.Inst))}, nil
}

// progSize tells about how many instructions a parsed expression
// compiles to, counting each repetition's copies, without making them:
// a number above limit means only that it is above limit.
func progSize(re *syntax.Regexp, limit int) int {
	n := 1
	for _, sub := range re.Sub {
		if n += progSize(sub, limit); n > limit {
			return n
		}
	}
	switch re.Op {
	case syntax.OpLiteral:
		n += len(re.Rune)
	case syntax.OpRepeat:
		copies := re.Max
		if copies < 0 {
			copies = re.Min + 1 // x{n,} is n copies and a star
		}
		n *= max(copies, 1)
	}
	return n
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
		var re *regex
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
			// program, each step costing some eight of glob's,
			// which counts its own.
			cost := int64(len(v)) + int64(len(key))
			if re != nil {
				cost = 8 * int64(len(v)+1) * re.insts
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
func (r *run) matchOne(m *matcher, re *regex, toks []globTok, v, key string) (bool, error) {
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
			return re.re.MatchString(v), nil
		}
		idx := re.re.FindStringSubmatchIndex(v)
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

// regexp compiles a key that held variables, once per run, charging
// its program's size.
func (r *run) regexp(m *matcher, key string) (*regex, error) {
	ck := regexKey{m.cmp, key}
	if re, ok := r.res[ck]; ok {
		return re, nil
	}
	re, err := m.compile(key)
	if err != nil {
		return nil, fmt.Errorf("sieve: %w", err)
	}
	if err := r.spend(16 * (int64(len(key)) + re.insts)); err != nil {
		return nil, err
	}
	if r.res == nil {
		r.res = map[regexKey]*regex{}
	}
	r.res[ck] = re
	return re, nil
}
