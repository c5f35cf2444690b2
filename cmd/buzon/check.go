package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/buzon-mail/buzon/internal/store"
)

func runCheck(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", "usage: buzon check [--data DIR] [--config FILE] [--repair]", stderr)
	var cf commonFlags
	cf.register(fs)
	repair := fs.Bool("repair", false, "fix what can be fixed: remove orphan files, recompute counters")
	if pos, err := parseInterleaved(fs, args); err != nil {
		return flagError(err)
	} else if len(pos) > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", pos[0])}
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	st, err := openStore(cfg, newLogger(cfg.Log, stderr), useExisting)
	if err != nil {
		return err
	}
	defer st.Close()
	checker, ok := st.(store.Checker)
	if !ok {
		return fmt.Errorf("the %s store cannot be checked", cfg.Store.Backend)
	}
	ctx := context.Background()
	report, err := checker.Check(ctx, *repair)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, namedReport(ctx, st, report))
	switch {
	case report.OK(*repair):
		return nil
	case !*repair:
		return &exitError{1, errors.New("the store has problems: buzon check --repair fixes those it can (stray files, counters)")}
	}
	// What --repair leaves is not only a lost body: a body cut short or
	// unreadable, a database that fails its integrity check, an entry
	// the store does not know; the lines say which.
	return &exitError{1, errors.New("the store has problems --repair cannot fix (those not marked repaired): " +
		"a message whose body is missing or damaged is lost, and a mail client can delete it; " +
		"buzon restore brings back a backup")}
}

// namedReport is the report for a person: each account is named by its
// address rather than by the number report.String gives it, which a
// person has no way to look up.
func namedReport(ctx context.Context, st store.Store, report store.CheckReport) string {
	accts, err := st.Accounts(ctx)
	if err != nil {
		return report.String() // the numbers, then, rather than nothing
	}
	names := make(map[int64]string, len(accts))
	for _, a := range accts {
		names[a.ID] = a.Name
	}
	report.Problems = slices.Clone(report.Problems)
	for i, p := range report.Problems {
		if name, ok := names[p.AccountID]; ok {
			// Named in What, so String has no number to add.
			report.Problems[i].What = name + ": " + p.What
			report.Problems[i].AccountID = 0
		}
	}
	return report.String()
}
