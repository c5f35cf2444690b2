package mailimport

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/buzon-mail/buzon/internal/delivery"
	"github.com/buzon-mail/buzon/internal/progress"
	"github.com/buzon-mail/buzon/internal/store"
)

// Options say where an import goes.
type Options struct {
	Store   store.Store
	Account store.Account
	// Spooler reads each message as a delivery does: line endings made
	// CRLF, the size limit enforced, the MIME structure parsed.
	Spooler *delivery.Spooler
	// Progress, if not nil, follows the import: Stored counts each
	// message done, imported, found or skipped.
	Progress progress.Progress
	// Logger, if not nil, logs each message appended and skipped, at
	// debug level: the summary tells the rest.
	Logger *slog.Logger
}

// Summary is what an import did.
type Summary struct {
	// Folders counts per folder of the account the messages imported
	// and those found there already.
	Folders map[string]*FolderCount
	// Created are the folders the import made.
	Created []string
	// Imported and Bytes count the messages appended, a copy in each
	// folder counting once.
	Imported int
	Bytes    int64
	// Present counts messages (copies) already in their folder.
	Present int
	// Skipped are the messages not imported, with why.
	Skipped []Skipped
}

// FolderCount counts one folder's messages of an import.
type FolderCount struct {
	Imported, Present int
}

// Skipped is a message not imported.
type Skipped struct {
	Where, Reason string
}

// ErrOverQuota is Import's error when the account's quota stopped it;
// it wraps store.ErrOverQuota.
var ErrOverQuota = store.ErrOverQuota

// Import imports the sources' messages into the account, folder by
// folder, keeping flags, keywords and internal dates.
//
// It is idempotent: a message whose bytes (as stored, CRLF) a folder holds
// already is not appended there again; two copies of one message in a
// source folder stand for two. The folder itself is the record of what
// was imported, so nothing else has to be kept durably and in step with
// it: after an interruption at any point, kill -9 included, a rerun finds
// every message the store acknowledged and appends the rest. Messages
// already there keep the flags they have (the user may have changed them
// since). A message deleted in buzon after an import comes back with the
// next run of the same import.
//
// Folders are made as needed, with their parents, and subscribed. The
// special folders of other servers (Sent Items, Deleted Messages, Spam
// and the like) go into the account's folder of that special use.
//
// The quota stops the import with an error wrapping ErrOverQuota, the
// summary telling how far it got; run again after the quota is raised,
// it goes on. A message above the size limit, an empty one or one that
// cannot be read is skipped and reported; any other store error stops the
// import.
func Import(ctx context.Context, opts Options, sources ...Source) (*Summary, error) {
	release, err := opts.Store.Lock(ctx, opts.Account.ID, "import")
	if errors.Is(err, store.ErrLocked) {
		return nil, fmt.Errorf("another import into %s is running", opts.Account.Name)
	}
	if err != nil {
		return nil, err
	}
	defer release()
	sum := &Summary{Folders: map[string]*FolderCount{}}
	var items []*Item
	for _, src := range sources {
		its, err := src.Scan()
		if err != nil {
			return sum, fmt.Errorf("read %s: %w", src, err)
		}
		items = append(items, its...)
	}
	var bytes int64
	for _, it := range items {
		bytes += it.Size
	}
	prog := opts.Progress
	if prog == nil {
		prog = progress.None{}
	}
	prog.Start(len(items), bytes)
	defer prog.Finish()

	sess, err := opts.Store.Open(ctx, opts.Account.ID)
	if err != nil {
		return sum, err
	}
	defer sess.Close()
	im := &importer{opts: opts, sess: sess, sum: sum, byName: map[string]*folder{}, byMailbox: map[int64]*folder{}}
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		err := im.item(ctx, it)
		prog.Stored(it.Size)
		if err != nil {
			return sum, err
		}
	}
	return sum, nil
}

// importer is one Import's state.
type importer struct {
	opts Options
	sess store.Session
	sum  *Summary
	// byName finds a source folder's folder; byMailbox holds one per
	// mailbox, so that the source folders going into one mailbox (.Sent
	// and .Sent Items) share what it held, and a message in both is
	// imported twice, as it is there twice.
	byName    map[string]*folder
	byMailbox map[int64]*folder
	// mailboxes are the account's, read once and kept up to date.
	mailboxes []store.Mailbox
}

// folder is a mailbox messages go into, and what is in it already.
type folder struct {
	mb  store.Mailbox
	err error // why the folder cannot be had: its messages are skipped
	// unmatched holds, by size, the UIDs of the messages the folder had
	// when the import first came to it that no source message has been
	// found to be yet; hashes keeps the hashes of those read.
	unmatched map[int64][]store.UID
	hashes    map[store.UID][sha256.Size]byte
}

func (im *importer) skip(it *Item, reason string) {
	im.sum.Skipped = append(im.sum.Skipped, Skipped{it.Where, reason})
	if im.opts.Logger != nil {
		im.opts.Logger.Debug("import: message skipped", "message", it.Where, "reason", reason)
	}
}

// item imports one message into each of its folders. It returns only
// errors that should stop the import.
func (im *importer) item(ctx context.Context, it *Item) error {
	if it.Skip != "" {
		im.skip(it, it.Skip)
		return nil
	}
	r, err := it.Open()
	if err != nil {
		im.skip(it, err.Error())
		return nil
	}
	msg, err := im.opts.Spooler.Spool(r)
	r.Close()
	var rerr *readError
	switch {
	case errors.Is(err, delivery.ErrTooLarge):
		im.skip(it, fmt.Sprintf("larger than the size limit of %d bytes (limits.max_message_size)", im.opts.Spooler.MaxSize))
		return nil
	case errors.As(err, &rerr):
		im.skip(it, err.Error())
		return nil
	case err != nil:
		// The spool's own: a full or unwritable spool directory would
		// skip every message that follows.
		return fmt.Errorf("spool %s: %w", it.Where, err)
	}
	defer msg.Close()
	if msg.Size() == 0 {
		im.skip(it, "empty")
		return nil
	}
	var sum *[sha256.Size]byte
	for _, name := range it.Folders {
		f, err := im.folder(ctx, name)
		if err != nil {
			return err
		}
		if f.err != nil {
			im.skip(it, f.err.Error())
			continue
		}
		count := im.sum.Folders[f.mb.Name]
		if count == nil {
			count = &FolderCount{}
			im.sum.Folders[f.mb.Name] = count
		}
		if len(f.unmatched[msg.Size()]) > 0 {
			if sum == nil {
				h := sha256.New()
				if _, err := io.Copy(h, msg.Reader()); err != nil {
					return err
				}
				sum = (*[sha256.Size]byte)(h.Sum(nil))
			}
			found, err := im.match(ctx, f, msg.Size(), *sum)
			if err != nil {
				return err
			}
			if found {
				count.Present++
				im.sum.Present++
				continue
			}
		}
		res, err := im.sess.Append(ctx, f.mb.ID, msg.NewMessage(it.Flags, it.Date))
		if err != nil {
			if errors.Is(err, store.ErrOverQuota) {
				return fmt.Errorf("the quota of %s is reached, after this run imported %d messages (%d bytes), at %s (%w); raise it (buzon user quota) and run the same import again to import the rest",
					im.opts.Account.Name, im.sum.Imported, im.sum.Bytes, it.Where, store.Reason(err))
			}
			return fmt.Errorf("import %s into %s: %w", it.Where, f.mb.Name, err)
		}
		if im.opts.Logger != nil {
			im.opts.Logger.Debug("import: message appended", "message", it.Where, "mailbox", f.mb.Name, "uid", res.UID)
		}
		count.Imported++
		im.sum.Imported++
		im.sum.Bytes += msg.Size()
	}
	return nil
}

// match looks among the folder's messages of that size, not matched yet,
// for one with those bytes, and takes it as the source message's copy.
func (im *importer) match(ctx context.Context, f *folder, size int64, sum [sha256.Size]byte) (bool, error) {
	uids := f.unmatched[size]
	for i, uid := range uids {
		h, ok := f.hashes[uid]
		if !ok {
			body, err := im.sess.OpenBody(ctx, f.mb.ID, uid)
			if errors.Is(err, store.ErrNoMessage) {
				continue // expunged meanwhile
			}
			if err != nil {
				return false, err
			}
			hh := sha256.New()
			_, err = io.Copy(hh, io.NewSectionReader(body, 0, body.Size()))
			body.Close()
			if err != nil {
				return false, err
			}
			h = [sha256.Size]byte(hh.Sum(nil))
			f.hashes[uid] = h
		}
		if h == sum {
			f.unmatched[size] = slices.Delete(uids, i, i+1)
			delete(f.hashes, uid)
			return true, nil
		}
	}
	return false, nil
}

// folder finds, or makes, the mailbox for a source folder, and notes the
// sizes of the messages it holds.
func (im *importer) folder(ctx context.Context, name string) (*folder, error) {
	if f, ok := im.byName[name]; ok {
		return f, nil
	}
	mb, err := im.mailbox(ctx, name)
	if err != nil {
		if errors.Is(err, store.ErrInvalidName) || errors.Is(err, store.ErrLimit) {
			f := &folder{err: fmt.Errorf("folder %q: %w", name, err)}
			im.byName[name] = f
			return f, nil
		}
		return nil, fmt.Errorf("folder %q: %w", name, err)
	}
	if f, ok := im.byMailbox[mb.ID]; ok {
		im.byName[name] = f
		return f, nil
	}
	f := &folder{mb: mb, unmatched: map[int64][]store.UID{}, hashes: map[store.UID][sha256.Size]byte{}}
	err = im.sess.Messages(ctx, mb.ID, store.AllUIDs(), store.FieldSize, func(mi *store.MessageInfo) error {
		f.unmatched[mi.Size] = append(f.unmatched[mi.Size], mi.UID)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("folder %s: %w", mb.Name, err)
	}
	im.byName[name] = f
	im.byMailbox[mb.ID] = f
	return f, nil
}

// mailbox resolves a source folder name to the account's mailbox: the one
// of the special use the name stands for, if the account has one, or the
// one of that name, made with its parents when missing.
func (im *importer) mailbox(ctx context.Context, name string) (store.Mailbox, error) {
	if im.mailboxes == nil {
		mbs, err := im.sess.Mailboxes(ctx)
		if err != nil {
			return store.Mailbox{}, err
		}
		im.mailboxes = mbs
	}
	name = store.CanonicalMailboxName(name)
	use := SpecialUse(name)
	if use != "" {
		for _, mb := range im.mailboxes {
			if mb.SpecialUse == use {
				return mb, nil
			}
		}
	}
	if err := store.ValidMailboxName(name); err != nil {
		return store.Mailbox{}, err
	}
	levels := strings.Split(name, string(store.HierarchyDelimiter))
	var mb store.Mailbox
	for i := range levels {
		path := strings.Join(levels[:i+1], string(store.HierarchyDelimiter))
		if j := slices.IndexFunc(im.mailboxes, func(m store.Mailbox) bool { return m.Name == path }); j >= 0 {
			mb = im.mailboxes[j]
			continue
		}
		u := ""
		if path == name {
			u = use
		}
		// Subscribed first: a kill between the two would otherwise
		// leave a folder the rerun finds and does not subscribe. A name
		// can be subscribed before it exists (RFC 9051 6.3.7).
		if err := im.sess.SetSubscribed(ctx, path, true); err != nil {
			return store.Mailbox{}, err
		}
		var err error
		mb, err = im.sess.CreateMailbox(ctx, path, u)
		if errors.Is(err, store.ErrMailboxExists) {
			mb, err = im.sess.Mailbox(ctx, path) // made meanwhile, by a client
		} else if err == nil {
			im.sum.Created = append(im.sum.Created, path)
		}
		if err != nil {
			return store.Mailbox{}, err
		}
		im.mailboxes = append(im.mailboxes, mb)
	}
	return mb, nil
}

// SpecialUse returns the special use (RFC 6154) a folder of that name has
// on the servers and clients people move from, or "": the names buzon
// gives its own (store.StandardMailboxes), Outlook's, Apple Mail's,
// Thunderbird's and Gmail's, compared without case. Only a top-level
// folder, or one below Gmail's "[Gmail]", is special.
func SpecialUse(name string) string {
	name = strings.TrimPrefix(strings.TrimPrefix(name, "[Gmail]/"), "[Google Mail]/")
	if strings.ContainsRune(name, store.HierarchyDelimiter) {
		return ""
	}
	for _, m := range store.StandardMailboxes() {
		if strings.EqualFold(name, m.Name) {
			return m.SpecialUse
		}
	}
	for _, a := range otherSpecialNames() {
		if slices.ContainsFunc(a.names, func(n string) bool { return strings.EqualFold(n, name) }) {
			return a.use
		}
	}
	return ""
}

// otherSpecialNames are the names other servers and clients give their
// special folders.
func otherSpecialNames() []struct {
	use   string
	names []string
} {
	return []struct {
		use   string
		names []string
	}{
		{store.SpecialSent, []string{"Sent Items", "Sent Messages", "Sent Mail"}},
		{store.SpecialTrash, []string{"Deleted Items", "Deleted Messages", "Bin"}},
		{store.SpecialJunk, []string{"Spam", "Junk E-mail", "Junk Email", "Bulk Mail"}},
		{store.SpecialArchive, []string{"Archives"}},
	}
}
