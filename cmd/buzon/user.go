package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"golang.org/x/term"

	"github.com/buzon-mail/buzon/internal/auth"
	"github.com/buzon-mail/buzon/internal/bytesize"
	"github.com/buzon-mail/buzon/internal/store"
)

func runUser(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("user", `usage: buzon user add|del|passwd [--data DIR] [--config FILE] ADDRESS
       buzon user list [--data DIR] [--config FILE]
       buzon user quota [--data DIR] [--config FILE] ADDRESS [SIZE [MESSAGES]]

Give the same --data or --config as the server, or they work on another
store. del removes the account's mail and aliases too (buzon alias adds
other addresses to an account). The password for add and passwd is read
from standard input when it is not a terminal, and asked for otherwise.
SIZE takes K, M, G, T suffixes; 0 is unlimited. quota without SIZE shows
the account's quota; user list shows every account's.`, stderr)
	var cf commonFlags
	cf.register(fs)
	sub, pos, err := parseSubcommand(fs, args, map[string][2]int{"add": {1, 1}, "del": {1, 1}, "passwd": {1, 1}, "list": {0, 0}, "quota": {1, 3}})
	if err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	// Only add may make a store, so that the others, run on a wrong data
	// folder, say so instead of finding no account in a new empty store.
	use, fresh := useExisting, false
	if sub == "add" {
		use = useCreate
		exists, err := storeExists(cfg)
		fresh = err == nil && !exists
	}
	log := newLogger(cfg.Log, stderr)
	st, err := openStore(cfg, log, use)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := context.Background()
	hasher := auth.NewHasher(cfg.Auth)

	switch sub {
	case "add":
		name := store.CanonicalAccountName(pos[0])
		if err := store.ValidAccountName(name); err != nil {
			return err
		}
		pw, err := readPassword(stdin, stderr)
		if err != nil {
			return err
		}
		cred, err := hasher.Credentials(pw)
		if err != nil {
			return err
		}
		if _, err := st.CreateAccount(ctx, name, cred); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "added %s\n", name)
		if fresh {
			// A store made here when the server runs on another data
			// folder would leave the account where no client sees it.
			// Its first start gives the domain a postmaster.
			fmt.Fprintf(stderr, "buzon user: made a new store in %s; a server on another data folder does not see this account\n", cfg.Data)
			return nil
		}
		return postmasterHint(ctx, st, name, name, stdout)
	case "del":
		name := store.CanonicalAccountName(pos[0])
		all, err := aliasesByAccount(ctx, st)
		if err != nil {
			return err
		}
		aliases := all[name]
		if err := st.DeleteAccount(ctx, name); err != nil {
			return err
		}
		if len(aliases) > 0 {
			fmt.Fprintf(stdout, "deleted %s and its aliases %s\n", name, strings.Join(aliases, ", "))
		} else {
			fmt.Fprintf(stdout, "deleted %s\n", name)
		}
	case "passwd":
		if _, err := st.LookupAccount(ctx, pos[0]); err != nil {
			return err
		}
		pw, err := readPassword(stdin, stderr)
		if err != nil {
			return err
		}
		cred, err := hasher.Credentials(pw)
		if err != nil {
			return err
		}
		if err := st.SetCredentials(ctx, pos[0], cred); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "password changed for %s\n", store.CanonicalAccountName(pos[0]))
	case "list":
		return listAccounts(ctx, st, stdout)
	case "quota":
		var q store.Quota
		if len(pos) == 1 {
			a, err := st.LookupAccount(ctx, pos[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "quota for %s: %s, %s\n", a.Name, formatLimit(a.Quota.MaxBytes, true), formatLimit(a.Quota.MaxMessages, false))
			return nil
		}
		if q.MaxBytes, err = parseSize(pos[1]); err != nil {
			return usageError{err.Error()}
		}
		if len(pos) == 3 {
			if q.MaxMessages, err = strconv.ParseInt(pos[2], 10, 64); err != nil || q.MaxMessages < 0 {
				return usageError{fmt.Sprintf("bad message count %q", pos[2])}
			}
		}
		if err := st.SetQuota(ctx, pos[0], q); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "quota for %s: %s, %s\n", store.CanonicalAccountName(pos[0]), formatLimit(q.MaxBytes, true), formatLimit(q.MaxMessages, false))
	}
	return nil
}

// listAccounts prints the accounts with their use, quota and aliases.
func listAccounts(ctx context.Context, st store.Store, stdout io.Writer) error {
	accts, err := st.Accounts(ctx)
	if err != nil {
		return err
	}
	aliases, err := aliasesByAccount(ctx, st)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tMESSAGES\tSIZE\tQUOTA\tALIASES")
	for _, a := range accts {
		sess, err := st.Open(ctx, a.ID)
		if err != nil {
			return err
		}
		u, err := sess.QuotaUsage(ctx)
		sess.Close()
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s, %s\t%s\n", a.Name, u.Messages, formatSize(u.Bytes),
			formatLimit(a.Quota.MaxBytes, true), formatLimit(a.Quota.MaxMessages, false), strings.Join(aliases[a.Name], ", "))
	}
	return tw.Flush()
}

// readPassword reads a password: the first line of stdin when it is not a
// terminal (scripts, tests), or typed twice without echo.
func readPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(stderr, "Again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		if string(a) != string(b) {
			return "", errors.New("the passwords differ")
		}
		return checkPassword(string(a))
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return checkPassword(strings.TrimRight(line, "\r\n"))
}

func checkPassword(pw string) (string, error) {
	if pw == "" {
		return "", errors.New("empty password (give it on standard input)")
	}
	return pw, nil
}

// parseSize reads "0", "1048576", "500K", "20M", "2G", "1T".
func parseSize(s string) (int64, error) {
	mult := int64(1)
	num := strings.ToUpper(strings.TrimSpace(s))
	num = strings.TrimSuffix(num, "B")
	for suffix, m := range map[string]int64{"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40} {
		if strings.HasSuffix(num, suffix) {
			mult, num = m, strings.TrimSuffix(num, suffix)
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("bad size %q (use bytes or K, M, G, T)", s)
	}
	return n * mult, nil
}

// formatSize writes a size for the commands' output in the short form
// `buzon user quota` takes sizes in ("1.8G"), where the columns of `buzon
// user list` have room for no more.
func formatSize(n int64) string { return bytesize.Short(n) }

func formatLimit(n int64, bytes bool) string {
	switch {
	case n == 0 && bytes:
		return "no size limit"
	case n == 0:
		return "no message limit"
	case bytes:
		return formatSize(n)
	}
	return strconv.FormatInt(n, 10) + " messages"
}
