package main

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	sub, pos, err := parseSubcommand(fs, args, map[string][2]int{"add": {2, 2}, "del": {1, 1}, "list": {0, 0}})
	if err != nil {
		return err
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
		return postmasterHint(ctx, st, alias, account, stdout)
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

// aliasesByAccount returns the names of each account's aliases, in order.
func aliasesByAccount(ctx context.Context, st store.Store) (map[string][]string, error) {
	aliases, err := st.Aliases(ctx)
	if err != nil {
		return nil, err
	}
	m := map[string][]string{}
	for _, a := range aliases {
		m[a.Account] = append(m[a.Account], a.Name)
	}
	return m, nil
}

// postmasterOf returns postmaster@ the domain of an address.
func postmasterOf(address string) string {
	return "postmaster@" + address[strings.LastIndexByte(address, '@')+1:]
}

// postmasterAliases makes postmaster@ the account's domain and
// postmaster@hostname, which RCPT TO:<postmaster> reaches, aliases of the
// account, where neither an account nor an alias has the name already:
// RFC 5321 4.5.1 wants every domain that takes mail to take it for
// postmaster. It returns the aliases it made.
func postmasterAliases(ctx context.Context, st store.Store, account, hostname string) ([]string, error) {
	var made []string
	for _, name := range []string{postmasterOf(account), store.CanonicalAccountName("postmaster@" + hostname)} {
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

// postmasterHint tells, after an account or alias named address was
// added for account, how to give its domain a postmaster when it has
// none: buzon makes postmaster@ aliases at the first start only, for the
// first account's domain, and a domain added later takes mail without
// one until someone says who reads it.
func postmasterHint(ctx context.Context, st store.Store, address, account string, w io.Writer) error {
	pm := postmasterOf(address)
	_, err := st.LookupAddress(ctx, pm)
	switch {
	case errors.Is(err, store.ErrNoAccount):
		fmt.Fprintf(w, "no one receives mail for %s, which RFC 5321 asks every domain to take; to give it to %s:\n  buzon alias add %s %s\n", pm, account, pm, account)
	case err != nil:
		return err
	}
	return nil
}
