package store

import (
	"context"
	"fmt"
	"strings"
)

// Checker is implemented by stores that can verify their own consistency:
// `buzon check` and the crash tests use it. Find it by type assertion.
type Checker interface {
	// Check verifies the store: every message has its body, counters agree
	// with the messages, no stray files are left behind, the databases are
	// intact. With repair, it fixes what it can (removes stray files,
	// recomputes counters) and says so in the report. A problem that cannot
	// be repaired (a message whose body is lost) is reported, never hidden.
	// Check may run while the store is in use; it is not fast.
	Check(ctx context.Context, repair bool) (CheckReport, error)
}

// CheckReport is what Check found.
type CheckReport struct {
	Accounts int   // accounts checked
	Messages int64 // messages checked
	Problems []CheckProblem
}

// OK reports whether the store is sound: with repaired false, whether
// Check found no problem; with repaired true, whether it repaired every
// problem it found.
func (r CheckReport) OK(repaired bool) bool {
	for _, p := range r.Problems {
		if !repaired || !p.Repaired {
			return false
		}
	}
	return true
}

// String formats the report for a person, one problem per line.
func (r CheckReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "checked %s, %s: ", Count(r.Accounts, "account"), Count(r.Messages, "message"))
	if len(r.Problems) == 0 {
		b.WriteString("no problems\n")
		return b.String()
	}
	fmt.Fprintf(&b, "%s\n", Count(len(r.Problems), "problem"))
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "  %s\n", p)
	}
	return b.String()
}

// Count writes n things, in the singular for one ("1 message", "2
// messages"): for reports to people, as Check's and buzon backup's.
func Count[N int | int64](n N, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// CheckProblem is one inconsistency Check found.
type CheckProblem struct {
	// AccountID is the account concerned, or 0 for the store as a whole.
	AccountID int64
	// What describes the problem for a person.
	What string
	// Repaired is set when Check ran with repair and fixed it.
	Repaired bool
}

// String formats the problem for a person.
func (p CheckProblem) String() string {
	s := p.What
	if p.AccountID != 0 {
		s = fmt.Sprintf("account %d: %s", p.AccountID, s)
	}
	if p.Repaired {
		s += " (repaired)"
	}
	return s
}
