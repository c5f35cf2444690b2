package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/buzon-mail/buzon/internal/store"
)

// runAlias manages aliases: other addresses of an account, which mail is
// delivered to the account through (SMTP, LMTP, deliver), and which are
// no login names.
func runAlias(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("alias", `usage: buzon alias add [--data DIR] [--config FILE] ALIAS ACCOUNT
       buzon alias del [--data DIR] [--config FILE] ALIAS
       buzon alias list [--data DIR] [--config FILE]

Mail to ALIAS (and to ALIAS with a +detail) is delivered to the account
ACCOUNT. An alias names one account, never another alias, and is no login
name: clients log in with the account's. For an address that reaches
several accounts, a list, let your MTA expand it. Give the same --data or
--config as the server; it sees the change at once.`, stderr)
	var cf commonFlags
	cf.register(fs)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(pos) == 0 {
		fs.Usage()
		return usageError{"missing subcommand"}
	}
	sub, pos := pos[0], pos[1:]
	want := map[string]int{"add": 2, "del": 1, "list": 0}
	n, ok := want[sub]
	if !ok {
		return usageError{fmt.Sprintf("unknown subcommand %q", sub)}
	}
	if len(pos) != n {
		fs.Usage()
		return usageError{fmt.Sprintf("alias %s: wrong number of arguments", sub)}
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	// An alias names an account, so there is no store to make here.
	st, err := openStore(cfg, newLogger(cfg.Log, stderr), useExisting)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := context.Background()

	switch sub {
	case "add":
		alias, account := store.CanonicalAccountName(pos[0]), store.CanonicalAccountName(pos[1])
		if err := st.AddAlias(ctx, alias, account); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "added alias %s of %s\n", alias, account)
	case "del":
		if err := st.DeleteAlias(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted alias %s\n", store.CanonicalAccountName(pos[0]))
	case "list":
		return listAliases(ctx, st, stdout)
	}
	return nil
}

func listAliases(ctx context.Context, st store.Store, stdout io.Writer) error {
	aliases, err := st.Aliases(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ALIAS\tACCOUNT")
	for _, a := range aliases {
		fmt.Fprintf(tw, "%s\t%s\n", a.Name, a.Account)
	}
	return tw.Flush()
}

// aliasesOf returns the names of an account's aliases, in order.
func aliasesOf(ctx context.Context, st store.Store, account string) ([]string, error) {
	aliases, err := st.Aliases(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, a := range aliases {
		if a.Account == account {
			names = append(names, a.Name)
		}
	}
	return names, nil
}

// postmasterAliases makes postmaster@ the account's domain and
// postmaster@hostname, which RCPT TO:<postmaster> reaches, aliases of the
// account, where neither an account nor an alias has the name already:
// RFC 5321 4.5.1 wants every domain that takes mail to take it for
// postmaster. It returns the aliases it made.
func postmasterAliases(ctx context.Context, st store.Store, account, hostname string) ([]string, error) {
	domain := account[strings.LastIndexByte(account, '@')+1:]
	var made []string
	for _, name := range []string{"postmaster@" + domain, store.CanonicalAccountName("postmaster@" + hostname)} {
		if name == account || slices.Contains(made, name) {
			continue
		}
		err := st.AddAlias(ctx, name, account)
		switch {
		case errors.Is(err, store.ErrAccountExists), errors.Is(err, store.ErrAliasExists), errors.Is(err, store.ErrInvalidName):
			continue // taken, or a host name that makes no address
		case err != nil:
			return made, err
		}
		made = append(made, name)
	}
	return made, nil
}
