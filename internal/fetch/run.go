package fetch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/buzon-mail/buzon/internal/bytesize"
	"github.com/buzon-mail/buzon/internal/delivery"
	"github.com/buzon-mail/buzon/internal/durable"
	"github.com/buzon-mail/buzon/internal/progress"
	"github.com/buzon-mail/buzon/internal/secret"
)

// Options are what a Fetcher needs besides its Config.
type Options struct {
	// Logger receives one line per event. Default: discard.
	Logger *slog.Logger
	// Now tells the time for keep_days and the records of first
	// downloads. Default: time.Now.
	Now func() time.Time
	// OpenStore opens the store of store destinations. Required when an
	// account has one.
	OpenStore StoreOpener
	// Progress makes the progress display of one run of an account.
	// Default: progress.NewLog.
	Progress func(account string) progress.Progress
	// Hostname goes into Maildir file names. Default: os.Hostname.
	Hostname string
}

// Fetcher fetches the accounts of a Config. Its methods may be called
// from several goroutines, for different accounts.
type Fetcher struct {
	cfg  Config
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	stores map[StoreTarget]*openStore // guarded by mu; by data and config only

	// crash, when set (by tests), is called at each step of storing and
	// deleting a message; a test panics there to stop the run as a crash
	// would, and leaves everything as it is.
	crash func(point string)
	// syncDir makes the entries of a destination's folder durable:
	// durable.SyncDir, or in tests one that also records the folder.
	syncDir func(dir string) error
}

// openStore is a store shared by the accounts delivering into it.
type openStore struct {
	d  *delivery.Deliverer // its Store is the store
	sp *delivery.Spooler
}

// New returns a Fetcher for a loaded, valid configuration.
func New(cfg Config, opts Options) *Fetcher {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Hostname == "" {
		opts.Hostname, _ = os.Hostname()
		if opts.Hostname == "" {
			opts.Hostname = "localhost"
		}
	}
	if opts.Progress == nil {
		log := opts.Logger
		opts.Progress = func(account string) progress.Progress { return progress.NewLog(log.With("account", account)) }
	}
	return &Fetcher{cfg: cfg, opts: opts, log: opts.Logger, stores: map[StoreTarget]*openStore{}, syncDir: durable.SyncDir}
}

// Close closes the stores the Fetcher opened.
func (f *Fetcher) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	for k, s := range f.stores {
		errs = append(errs, s.d.Store.Close())
		delete(f.stores, k)
	}
	return errors.Join(errs...)
}

// Summary is what one run of one account did.
type Summary struct {
	Account string
	// Fetched messages were downloaded and stored, Bytes their size.
	Fetched int
	Bytes   int64
	// Recovered messages were found stored by a run that was interrupted
	// before it recorded them; they were not stored again.
	Recovered int
	// Deleted messages were removed from the server; Moved ones were
	// moved to move_to.
	Deleted int
	Moved   int
	// Flagged messages were to be deleted or moved, and are flagged
	// \Deleted on the server (and copied to move_to) but not expunged:
	// the server lacks UIDPLUS, and an EXPUNGE would have removed
	// messages flagged \Deleted elsewhere that are not stored here.
	Flagged int
	// AlreadyFetched messages were fetched by an earlier run and stay on
	// the server (mode keep, or keep_days not yet due); they are not
	// fetched again. The summary counts them as "skipped", as getmail's
	// does, and says why, lest it read like a problem.
	AlreadyFetched int
	// Failed messages could not be stored, or not deleted or moved as the
	// mode asks, and stay on the server.
	Failed int
	// Err ended the run early, or is nil.
	Err      error
	Duration time.Duration
}

// String is a one-line report for people.
func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: fetched %d (%s)", s.Account, s.Fetched, bytesize.Format(s.Bytes))
	if s.Recovered > 0 {
		fmt.Fprintf(&b, ", recovered %d", s.Recovered)
	}
	fmt.Fprintf(&b, ", deleted %d", s.Deleted)
	if s.Moved > 0 {
		fmt.Fprintf(&b, ", moved %d", s.Moved)
	}
	if s.Flagged > 0 {
		fmt.Fprintf(&b, ", left flagged \\Deleted %d", s.Flagged)
	}
	fmt.Fprintf(&b, ", skipped %d", s.AlreadyFetched)
	if s.AlreadyFetched > 0 {
		b.WriteString(" (already fetched)")
	}
	fmt.Fprintf(&b, ", errors %d", s.Failed)
	if s.Err != nil {
		fmt.Fprintf(&b, "; stopped: %v", s.Err)
	}
	return b.String()
}

// RunOnce fetches each account once, one after the other, and returns a
// Summary for each. names selects accounts; none means all.
func (f *Fetcher) RunOnce(ctx context.Context, names ...string) ([]Summary, error) {
	accts, err := f.accounts(names)
	if err != nil {
		return nil, err
	}
	var out []Summary
	for _, a := range accts {
		if ctx.Err() != nil {
			break
		}
		w, err := f.newWorker(ctx, a)
		if err != nil {
			s := Summary{Account: a.Name, Err: err}
			f.logSummary(s)
			out = append(out, s)
			continue
		}
		out = append(out, func() Summary {
			defer w.close()
			return w.run(ctx)
		}())
	}
	return out, nil
}

// accounts returns the named accounts, or all.
func (f *Fetcher) accounts(names []string) ([]*Account, error) {
	var out []*Account
	for i := range f.cfg.Accounts {
		a := &f.cfg.Accounts[i]
		if len(names) == 0 || slices.Contains(names, a.Name) {
			out = append(out, a)
		}
	}
	for _, n := range names {
		if !slices.Contains(accountNames(out), n) {
			return nil, fmt.Errorf("no account %q in the configuration", n)
		}
	}
	return out, nil
}

func accountNames(as []*Account) []string {
	names := make([]string, len(as))
	for i, a := range as {
		names[i] = a.Name
	}
	return names
}

func (f *Fetcher) logSummary(s Summary) {
	args := []any{"account", s.Account, "fetched", s.Fetched, "bytes", s.Bytes, "recovered", s.Recovered,
		"deleted", s.Deleted, "moved", s.Moved, "flagged", s.Flagged, "skipped", s.AlreadyFetched, "errors", s.Failed,
		"duration", s.Duration.Round(time.Millisecond)}
	if s.Err != nil {
		f.log.Error("fetch failed", append(args, "err", s.Err)...)
		return
	}
	f.log.Info("fetch done", args...)
}

// destination opens an account's destination.
func (f *Fetcher) destination(ctx context.Context, a *Account) (Destination, error) {
	switch {
	case a.Maildir != "":
		return newMaildir(a.Maildir, f.opts.Hostname, f.opts.Now, f.syncDir)
	case a.Mbox != "":
		if err := mkdirAll(filepath.Dir(a.Mbox), f.syncDir); err != nil {
			return nil, fmt.Errorf("mbox: %w", err)
		}
		// The file's own entry, which a run that crashed after creating
		// it may have left unsynced (see mbox.lock).
		if err := f.syncDir(filepath.Dir(a.Mbox)); err != nil && !errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("mbox: %w", err)
		}
		return newMbox(a.Mbox, f.opts.Now, f.syncDir), nil
	case a.MDA != "":
		return &mda{command: a.MDA, account: a.Name}, nil
	case a.Store != nil:
		s, err := f.openStore(*a.Store)
		if err != nil {
			return nil, err
		}
		// The Deliverer finds the account as LMTP would.
		return newStoreDest(ctx, *a.Store, s.sp, s.d)
	}
	return nil, errors.New("no destination")
}

func (f *Fetcher) openStore(t StoreTarget) (*openStore, error) {
	key := StoreTarget{Data: t.Data, Config: t.Config}
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.stores[key]; s != nil {
		return s, nil
	}
	if f.opts.OpenStore == nil {
		return nil, errors.New("store destination: no store available")
	}
	d, sp, err := f.opts.OpenStore(t)
	if err != nil {
		return nil, fmt.Errorf("store destination %s: %w", t.Data, err)
	}
	d.Now = f.opts.Now // before any delivery; the accounts delivering into the store share d
	s := &openStore{d: d, sp: sp}
	f.stores[key] = s
	return s, nil
}

// worker fetches one account: its state, its destination and, between
// the runs of a daemon, its IMAP connection.
type worker struct {
	f    *Fetcher
	a    *Account
	log  *slog.Logger
	st   *state
	dest Destination
	// spooler spools downloads, those too large for memory in the state
	// folder's tmp/.
	spooler *delivery.Spooler
	// imap is the connection kept between runs for IDLE, or nil.
	imap *imapConn
	// idleMark is the first folder's UIDVALIDITY and UIDNEXT when the
	// last run selected it: mail that arrived after that was not fetched.
	idleMark [2]uint32
	// foldersChecked is set once a run looked for folders that hold the
	// others' messages too (imapCheckFolders).
	foldersChecked bool
}

func (f *Fetcher) newWorker(ctx context.Context, a *Account) (*worker, error) {
	st, err := openState(f.cfg.StateDir, a.Name, a.source())
	if err != nil {
		return nil, err
	}
	if st.asidePath != "" {
		f.log.Warn("the account names another server account than its state is about; that state was set aside and "+
			"the account starts with none: every message on the server is fetched as new (a duplicate at worst, never a loss)",
			"account", a.Name, "was", st.asideFrom, "now", a.source(), "set_aside", st.asidePath)
	}
	dest, err := f.destination(ctx, a)
	if err != nil {
		st.Close()
		return nil, err
	}
	spool := filepath.Join(f.cfg.StateDir, "tmp")
	if err := os.MkdirAll(spool, 0o700); err != nil {
		st.Close()
		dest.Close()
		return nil, fmt.Errorf("spool folder: %w", err)
	}
	return &worker{f: f, a: a, log: f.log.With("account", a.Name), st: st, dest: dest,
		spooler: &delivery.Spooler{Dir: spool, MemoryLimit: memoryLimit}}, nil
}

func (w *worker) close() {
	if w.imap != nil {
		w.imap.logout()
		w.imap = nil
	}
	if w.st.records > 0 {
		if err := w.st.compact(); err != nil {
			w.log.Warn("state compaction", "err", err)
		}
	}
	w.dest.Close()
	w.st.Close()
}

// run fetches the account once.
func (w *worker) run(ctx context.Context) Summary {
	start := time.Now()
	r := &run{w: w, a: w.a, log: w.log, st: w.st, dest: w.dest, now: w.f.opts.Now(),
		prog: w.f.opts.Progress(w.a.Name), crash: w.f.crash}
	r.sum.Account = w.a.Name
	var err error
	switch w.a.Protocol {
	case ProtoPOP3:
		err = r.pop3(ctx)
	case ProtoIMAP:
		err = r.imap(ctx)
	}
	r.prog.Finish()
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("stopped: %w", ctx.Err())
	}
	r.sum.Err = err
	r.sum.Duration = time.Since(start)
	if w.st.records > 0 {
		if err := w.st.compact(); err != nil {
			w.log.Warn("state compaction", "err", err)
		}
	}
	w.f.logSummary(r.sum)
	return r.sum
}

// run is one run of one account.
type run struct {
	w    *worker
	a    *Account
	log  *slog.Logger
	st   *state
	dest Destination
	// now is the time of the run, for keep_days.
	now   time.Time
	prog  progress.Progress
	sum   Summary
	crash func(point string)
}

func (r *run) at(point string) {
	if r.crash != nil {
		r.crash(point)
	}
}

// password returns the account's password, running its command.
func (r *run) password(ctx context.Context) (string, error) {
	if r.a.PasswordCommand != "" {
		return secret.Command(ctx, r.a.PasswordCommand)
	}
	return r.a.Password, nil
}

// recover settles a message whose intent was recorded but not its
// storing: stored reports whether the destination has it (now recorded);
// otherwise prev is the intent, for the next attempt.
func (r *run) recover(ctx context.Context, folder, id string, e *entry) (stored bool, prev *Ref, err error) {
	if e == nil || e.stored() || e.Intent == nil {
		return e != nil && e.stored(), nil, nil
	}
	has, err := r.dest.Has(ctx, *e.Intent)
	if err != nil {
		return false, nil, classifyDestErr(err)
	}
	if !has {
		_, isMDA := r.dest.(*mda)
		switch {
		case e.Failed != "":
			r.log.Info("the last attempt to store the message failed; trying again", "folder", folder, "id", id, "err", e.Failed)
		case isMDA:
			// Nothing tells whether the MDA got it.
			r.log.Info("a run was interrupted while the MDA had the message, which may have reached it; delivering it again",
				"folder", folder, "id", id)
		default:
			r.log.Info("an interrupted download did not reach the destination; fetching it again", "folder", folder, "id", id)
		}
		return false, e.Intent, nil
	}
	r.log.Info("an interrupted download had reached the destination; recording it", "folder", folder, "id", id)
	if err := r.st.stored(folder, id, r.now, e.FP, r.markSeen()); err != nil {
		return false, nil, err
	}
	r.sum.Recovered++
	return true, nil, nil
}

// deliver stores a downloaded message and records it: intent, store,
// record. Only after deliver returns nil may the message be deleted on
// the server. The store is not interrupted by ctx: a shutdown lets the
// message in progress finish. fp is an IMAP message's fingerprint, size a
// POP3 message's LIST size (see entry).
func (r *run) deliver(ctx context.Context, folder string, uidValidity uint32, id, fp string, size int64, m *Message, prev *Ref) error {
	dctx := context.WithoutCancel(ctx)
	intended := false
	err := r.dest.Deliver(dctx, m, prev, func(ref Ref) error {
		r.at("intent")
		if err := r.st.intent(folder, uidValidity, id, ref, fp, size); err != nil {
			return err
		}
		intended = true
		r.at("store")
		return nil
	})
	if err != nil {
		if intended {
			if ferr := r.st.failed(folder, id, err); ferr != nil {
				r.log.Warn("recording a failed attempt", "folder", folder, "id", id, "err", ferr)
			}
		}
		return classifyDestErr(err)
	}
	r.at("record")
	if err := r.st.stored(folder, id, r.now, fp, r.markSeen()); err != nil {
		return err
	}
	r.sum.Fetched++
	r.sum.Bytes += m.Size
	r.prog.Stored(m.Size)
	r.log.Debug("stored", "folder", folder, "id", id, "size", m.Size)
	return nil
}

// failed counts a message that stays on the server because it could not
// be stored. When the run must stop it returns err, naming the message,
// for the run's summary to log; otherwise it logs err itself.
func (r *run) failed(folder, id string, err error) error {
	r.sum.Failed++
	if stopsRun(err) {
		if folder != "" {
			id = folder + "/" + id
		}
		return fmt.Errorf("%s: storing message %s: %w", r.dest, id, err)
	}
	r.log.Warn("message not stored; it stays on the server", "folder", folder, "id", id, "dest", r.dest.String(), "err", err)
	return nil
}

// markSeen reports whether messages stored are to be flagged \Seen on
// the server (mark_seen, which validate allows for IMAP only).
func (r *run) markSeen() bool { return r.a.MarkSeen }

// removable reports whether a stored message is to be deleted from the
// server now: always in delete mode, after keep_days with keep.
func (r *run) removable(e *entry) bool {
	if e == nil || !e.stored() {
		return false
	}
	switch {
	case r.a.Mode == ModeDelete:
		return true
	case r.a.KeepDays > 0:
		// Calendar days: a Duration of as many days overflows past 292
		// years, which a keep_days meant as "for ever" reaches.
		return !r.now.Before(e.Stored.AddDate(0, 0, r.a.KeepDays))
	}
	return false
}

// prune forgets messages of a folder that are no longer on the server.
func (r *run) prune(folder string, present map[string]bool) error {
	var gone []string
	for id := range r.st.folder(folder).Messages {
		if !present[id] {
			gone = append(gone, id)
		}
	}
	return r.st.forget(folder, gone)
}
