package main

import (
	"context"
	"errors"
	"fmt"
	"io"

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
	report, err := checker.Check(context.Background(), *repair)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, report.String())
	if !report.OK(*repair) {
		return &exitError{1, errors.New("the store has problems")}
	}
	return nil
}
