// Command buzon is the whole mail server in one binary: it serves IMAP
// and POP3, receives mail over SMTP (as its accounts' MX) and LMTP,
// manages accounts, delivers local mail and fetches mail from other
// servers.
//
// Usage:
//
//	buzon serve   [--data DIR] [--config FILE] [--hostname NAME] [--imap ADDR] [--imaps ADDR] [--pop3 ADDR] [--pop3s ADDR] [--lmtp ADDR] [--smtp ADDR] [--sieve ADDR] [--autoconfig ADDR] [--autoconfigs ADDR]
//	buzon user    add|del|list|passwd [--data DIR] [--config FILE] [ADDRESS]
//	buzon user    quota [--data DIR] [--config FILE] ADDRESS [SIZE [MESSAGES]]
//	buzon alias   add|del|list [--data DIR] [--config FILE] [ALIAS [ACCOUNT]]
//	buzon sieve   list|get|put|activate|deactivate|del|rename|check [--data DIR] [--config FILE] ACCOUNT [NAME [NEWNAME]]
//	buzon deliver [--data DIR] [--config FILE] [--from SENDER] RECIPIENT... < message
//	buzon check   [--data DIR] [--config FILE] [--repair]
//	buzon backup  [--data DIR] [--config FILE] DEST
//	buzon restore [--data DIR] [--config FILE] [--force] [--keep-uidvalidity] BACKUP
//	buzon fetch   [--config FILE] [--once | --daemon] [ACCOUNT...]
//	buzon import  [--data DIR] [--config FILE] [--folder NAME] [--gmail-labels] ADDRESS SOURCE...
//	buzon migrate [--config FILE] [--dsn DSN]
//	buzon migrate-store --from DIR --to DSN
//	buzon bench   PROFILE [flags]
//	buzon autoconfig dns [--config FILE] [DOMAIN...]
//	buzon config  example
//	buzon version
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitError carries a process exit code, for commands whose callers read
// it (deliver's sysexits).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError is a command line that cannot be run.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// flagError is the error for a command line the flag package could not
// parse: a usageError, or flag.ErrHelp itself for -h and --help, whose
// usage text is already printed and which is not a failure.
func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return flag.ErrHelp
	}
	return usageError{err.Error()}
}

type command struct {
	name    string
	summary string
	run     func(args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run the mail server", runServe},
		{"user", "add, delete, list accounts; set passwords and quotas", runUser},
		{"alias", "add, delete, list aliases: other addresses of an account", runAlias},
		{"sieve", "list, get, put, activate, delete an account's Sieve filters", runSieve},
		{"deliver", "deliver a message from standard input (run by an MTA's pipe transport)", runDeliver},
		{"check", "verify (and with --repair, fix) the store's consistency", runCheck},
		{"backup", "copy the embedded store consistently, while the server runs or not", runBackup},
		{"restore", "make the data folder a copy of a backup (server stopped)", runRestore},
		{"fetch", "fetch mail from other POP3/IMAP accounts", runFetch},
		{"import", "import Maildir and mbox mail (another server's, Thunderbird's, Google Takeout) into an account", runImport},
		{"migrate", "apply the PostgreSQL schema migrations", runMigrate},
		{"migrate-store", "copy an embedded store into PostgreSQL", runMigrateStore},
		{"autoconfig", "print the DNS records that let mail clients find the server (autoconfig dns)", runAutoconfig},
		{"bench", "load-test an IMAP/POP3/LMTP server (buzon or another)", runBench},
		{"config", "print a commented sample configuration (config example)", runConfig},
		{"version", "print the version", func(_ []string, _ io.Reader, stdout, _ io.Writer) error {
			_, err := fmt.Fprintln(stdout, "buzon", version)
			return err
		}},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one command line and returns the process exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 2 && args[0] == "help" {
		return run([]string{args[1], "--help"}, stdin, stdout, stderr)
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printUsage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(args[1:], stdin, stdout, stderr)
		if err == nil {
			return 0
		}
		// --help printed the usage, which is all that was asked: no error
		// to print, and success unless the command says otherwise
		// (deliver's, which must never look like a delivery).
		help := errors.Is(err, flag.ErrHelp)
		if !help {
			fmt.Fprintf(stderr, "buzon %s: %v\n", c.name, err)
		}
		var ee *exitError
		var ue usageError
		switch {
		case errors.As(err, &ee):
			return ee.code
		case help:
			return 0
		case errors.As(err, &ue):
			return 2
		}
		return 1
	}
	fmt.Fprintf(stderr, "buzon: unknown command %q\n", args[0])
	printUsage(stderr)
	return 2
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: buzon COMMAND [flags] [arguments]\n\ncommands:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range commands() {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nRun 'buzon help COMMAND' (or 'buzon COMMAND --help') for a command's flags.")
}
