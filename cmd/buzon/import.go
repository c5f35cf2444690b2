package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"text/tabwriter"

	"golang.org/x/term"

	"github.com/buzon-mail/buzon/internal/bytesize"
	"github.com/buzon-mail/buzon/internal/delivery"
	"github.com/buzon-mail/buzon/internal/mailimport"
	"github.com/buzon-mail/buzon/internal/progress"
	"github.com/buzon-mail/buzon/internal/store"
)

// runImport is `buzon import`: mail kept by another server or client, as
// Maildir or mbox, into an account, folders, flags and dates kept.
func runImport(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("import", `usage: buzon import [--data DIR] [--config FILE] [--folder NAME] [--gmail-labels] ADDRESS SOURCE...

Imports into the account ADDRESS the mail of each SOURCE:
  a Maildir (cur/ new/ tmp/), with its Maildir++ sub-folders (.Work.Sub,
    as Dovecot and Courier keep them) or LAYOUT=fs ones;
  an mbox file, into the folder named as the file (--folder to choose,
    INBOX for the inbox);
  a folder of mbox files, as Thunderbird keeps its local folders.
Flags, Dovecot keywords and dates are kept; Sent Items, Deleted Messages,
Spam and the like go into the account's special folders. A message already
in its folder is not imported again: run the same import again after an
interruption, or after raising the quota, and it adds what is missing.
Give the same --data or --config as the server; it sees the mail at once.`, stderr)
	var cf commonFlags
	cf.register(fs)
	folder := fs.String("folder", "", "folder that receives the messages of mbox files (default: the file's name)")
	gmail := fs.Bool("gmail-labels", false, "file mbox messages by their X-Gmail-Labels (Google Takeout): a copy in each label's folder, Archive for none")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(pos) < 2 {
		fs.Usage()
		return usageError{"an address and at least one source"}
	}
	sources, err := importSources(pos[1:], *folder, *gmail)
	if err != nil {
		return usageError{err.Error()}
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, stderr)
	st, err := openStore(cfg, log, useExisting)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals()...)
	defer stop()
	address := store.CanonicalAccountName(pos[0])
	acct, err := st.LookupAccount(ctx, address)
	if errors.Is(err, store.ErrNoAccount) {
		return fmt.Errorf("no account %s: add it first (buzon user add %s)", address, address)
	}
	if err != nil {
		return err
	}
	opts := mailimport.Options{
		Store:   st,
		Account: acct,
		Spooler: &delivery.Spooler{Dir: spoolDir(cfg), MemoryLimit: cfg.Delivery.MemorySpool, MaxSize: cfg.Limits.MaxMessageSize},
		Logger:  log,
	}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		opts.Progress = progress.NewBar(stderr, address)
	}
	sum, err := mailimport.Import(ctx, opts, sources...)
	if sum != nil {
		printImportSummary(stdout, address, sum)
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return errors.New("interrupted: run the same command again to import the rest; what is imported already is not imported twice")
	}
	return err
}

// importSources makes a source of each argument (mailimport.NewSource).
func importSources(args []string, folder string, gmail bool) ([]mailimport.Source, error) {
	var sources []mailimport.Source
	for _, arg := range args {
		src, err := mailimport.NewSource(arg, folder, gmail)
		if err != nil {
			return nil, err
		}
		sources = append(sources, src)
	}
	return sources, nil
}

// printImportSummary tells what an import did: per folder, then what was
// made and what was skipped, with why.
func printImportSummary(w io.Writer, address string, sum *mailimport.Summary) {
	fmt.Fprintf(w, "imported %s (%s) into %s, %d already there\n", store.Count(sum.Imported, "message"), bytesize.Format(sum.Bytes), address, sum.Present)
	names := make([]string, 0, len(sum.Folders))
	for name := range sum.Folders {
		names = append(names, name)
	}
	slices.Sort(names)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, name := range names {
		c := sum.Folders[name]
		fmt.Fprintf(tw, "  %s\t%d imported\t%d already there\n", name, c.Imported, c.Present)
	}
	tw.Flush()
	if len(sum.Created) > 0 {
		fmt.Fprintln(w, "created folders:")
		for _, name := range sum.Created {
			fmt.Fprintf(w, "  %s\n", name)
		}
	}
	if len(sum.Skipped) > 0 {
		fmt.Fprintf(w, "skipped, not imported: %d\n", len(sum.Skipped))
		for _, s := range sum.Skipped {
			fmt.Fprintf(w, "  %s: %s\n", s.Where, s.Reason)
		}
	}
}
