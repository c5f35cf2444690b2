package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/buzon-mail/buzon/internal/delivery"
	"github.com/buzon-mail/buzon/internal/mutf7"
)

// Batches of IMAP FETCH commands.
const (
	// metaBatch is the most messages whose size and envelope one FETCH
	// asks for.
	metaBatch = 500
	// bodyBatch and bodyBatchBytes bound the messages one FETCH
	// downloads before they are stored.
	bodyBatch      = 50
	bodyBatchBytes = 16 << 20
)

// imapConn is a logged-in IMAP connection under the watchdog.
type imapConn struct {
	c *imapclient.Client
	w *watchedConn
	a *Account
	// exists is signalled when the server reports new messages in the
	// selected folder (an untagged EXISTS outside SELECT), for IDLE.
	exists chan struct{}
	// strays keeps the bodies that come outside the FETCH that asked for
	// them.
	strays strayBodies
}

// strayBodies keeps, for the FETCH of bodies under way, the bodies the
// client library hands to the unilateral handler rather than to the
// command. It routes a response by the UID it has read when the body
// starts, so a response that sends its UID after the body (RFC 9051 7.5.2
// allows any order, and some servers put UID last) is not the command's;
// nor is one whose UID came first in a response of its own (its flags,
// changed by another client), since the library gives each message's
// first response to the command. The handler spools the body here, and
// imapBodies takes it once its FETCH ended.
type strayBodies struct {
	spooler *delivery.Spooler
	// wg counts the handlers spooling a body. Each joins before it reads
	// the body, which the library waits for before it reads on, so every
	// one of a FETCH has joined by the time the FETCH ends.
	wg sync.WaitGroup

	mu sync.Mutex
	// id names the messages of the FETCH under way (Message.ID) by UID;
	// nil between them. Guarded by mu.
	id map[imap.UID]string
	// got holds the bodies kept. Guarded by mu.
	got map[imap.UID]*Message
}

// begin starts keeping the bodies of a FETCH; ids names its messages.
func (s *strayBodies) begin(ids map[imap.UID]string) {
	s.mu.Lock()
	s.id, s.got = ids, map[imap.UID]*Message{}
	s.mu.Unlock()
}

// end stops keeping bodies and returns those kept, once spooled.
func (s *strayBodies) end() map[imap.UID]*Message {
	s.mu.Lock()
	s.id = nil
	s.mu.Unlock()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	got := s.got
	s.got = nil
	return got
}

// spool downloads a body that came outside its FETCH, if a FETCH of
// bodies is under way, and returns it with the names of that FETCH's
// messages for keep, which must then be called; otherwise it returns nil
// and the caller discards what is left of the body.
func (s *strayBodies) spool(body io.Reader) (*download, map[imap.UID]string) {
	s.mu.Lock()
	ids := s.id
	if ids != nil {
		s.wg.Add(1)
	}
	s.mu.Unlock()
	if ids == nil {
		return nil, nil
	}
	dl := newDownload(s.spooler)
	if _, err := io.Copy(dl, body); err != nil {
		// The connection failed, and so does the FETCH.
		dl.Close()
		s.wg.Done()
		return nil, nil
	}
	return dl, ids
}

// keep ends a spool: the body is kept for message uid if its FETCH asked
// for it (uid is 0 when the response had none), and dropped otherwise. It
// reports whether the body was kept.
func (s *strayBodies) keep(uid imap.UID, dl *download, ids map[imap.UID]string) bool {
	defer s.wg.Done()
	id, ok := ids[uid]
	if !ok {
		dl.Close()
		return false
	}
	m, err := dl.message(id)
	if err != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.got == nil {
		m.Close()
		return false
	}
	if old := s.got[uid]; old != nil {
		old.Close()
	}
	s.got[uid] = m
	return true
}

// do runs commands under the watchdog, describing network failures.
func (ic *imapConn) do(fn func() error) error {
	err := ic.w.do(fn)
	var ie *imap.Error
	if err != nil && !errors.As(err, &ie) {
		return describeNetErr(err, ic.a)
	}
	return err
}

// alive reports whether the connection is still open.
func (ic *imapConn) alive() bool {
	select {
	case <-ic.c.Closed():
		return false
	default:
		return true
	}
}

// logout ends the session politely and closes the connection.
func (ic *imapConn) logout() {
	if ic.alive() {
		ic.do(func() error { return ic.c.Logout().Wait() })
	}
	ic.c.Close()
}

// imapMeta is what is known of a message before its download.
type imapMeta struct {
	size int64
	fp   string
}

// fingerprint identifies a message across a UIDVALIDITY change: its
// Message-ID, date, subject and size. Without a Message-ID there is none,
// and such a message is fetched again after a change rather than risk
// taking another message for it (and, in delete mode, deleting it).
func fingerprint(env *imap.Envelope, size int64) string {
	if env == nil || env.MessageID == "" {
		return ""
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d", env.MessageID, env.Date.UTC().Format(time.RFC3339), env.Subject, size)
	return hex.EncodeToString(h.Sum(nil))[:32]
}

func uidID(uid imap.UID) string { return strconv.FormatUint(uint64(uid), 10) }

// imapConnect connects, starts TLS and logs in.
func (r *run) imapConnect(ctx context.Context) (*imapConn, error) {
	tc, err := tlsConfig(r.a)
	if err != nil {
		return nil, err
	}
	nc, w, err := dial(ctx, r.a, tc)
	if err != nil {
		return nil, err
	}
	// Progress is timed by the watchdog, under the account's timeout.
	w.noDeadlines = true
	ic := &imapConn{w: w, a: r.a, exists: make(chan struct{}, 1), strays: strayBodies{spooler: r.w.spooler}}
	opts := &imapclient.Options{
		TLSConfig: tc,
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					select {
					case ic.exists <- struct{}{}:
					default:
					}
				}
			},
			// A body outside the FETCH that asked for it goes to that
			// FETCH (see strayBodies) when it came with its UID. One
			// without (RFC 9051 6.4.8 wants it in the answer to a UID
			// FETCH) cannot be told, and stays on the server, counted by
			// imapMissing.
			Fetch: func(msg *imapclient.FetchMessageData) {
				var uid imap.UID
				var dl *download
				var ids map[imap.UID]string
				body := false
				for item := msg.Next(); item != nil; item = msg.Next() {
					switch it := item.(type) {
					case imapclient.FetchItemDataUID:
						uid = it.UID
					case imapclient.FetchItemDataBodySection:
						if it.Literal == nil {
							continue
						}
						body = true
						if dl != nil {
							ic.strays.keep(0, dl, ids) // a second body: drop the first
						}
						if dl, ids = ic.strays.spool(it.Literal); dl == nil {
							io.Copy(io.Discard, it.Literal)
						}
					}
				}
				if dl != nil && ic.strays.keep(uid, dl, ids) {
					return
				}
				if body && uid == 0 {
					r.log.Warn("the server sent a message without its UID: there is no telling which one it is", "seq", msg.SeqNum)
				}
			},
		},
	}
	if r.a.TLS == TLSStartTLS {
		err = w.do(func() error {
			var err error
			ic.c, err = imapclient.NewStartTLS(nc, opts)
			return err
		})
		if err != nil {
			nc.Close()
			var ie *imap.Error
			if errors.As(err, &ie) {
				return nil, fmt.Errorf("%s refused STARTTLS (RFC 9051 6.2.1): %w", r.a.addr(), err)
			}
			return nil, describeTLSErr(err, r.a)
		}
	} else {
		ic.c = imapclient.New(nc, opts)
		if err := ic.do(ic.c.WaitGreeting); err != nil {
			ic.c.Close()
			return nil, fmt.Errorf("imap greeting from %s: %w", r.a.addr(), err)
		}
	}
	if err := r.imapLogin(ctx, ic); err != nil {
		ic.c.Close()
		return nil, err
	}
	return ic, nil
}

func (r *run) imapLogin(ctx context.Context, ic *imapConn) error {
	var caps imap.CapSet
	if err := ic.do(func() error { caps = ic.c.Caps(); return nil }); err != nil {
		return err
	}
	oauth := r.a.oauthClient("")
	switch {
	case oauth != nil && !caps.Has(imap.Cap("AUTH="+oauth.mech)):
		return fmt.Errorf("%s does not offer AUTH=%s (RFC 9051 6.2.2)", r.a.addr(), oauth.mech)
	case oauth == nil && caps.Has(imap.CapLoginDisabled):
		return fmt.Errorf("%s refuses LOGIN on this connection (LOGINDISABLED, RFC 9051 6.2.3); use TLS", r.a.addr())
	}
	pass, err := r.password(ctx)
	if err != nil {
		return err
	}
	err = ic.do(func() error {
		if oauth != nil {
			// The exchange ends here when the server refuses the token:
			// the connection is closed after.
			return ic.c.Authenticate(r.a.oauthClient(pass))
		}
		return ic.c.Login(r.a.User, pass).Wait()
	})
	var ie *imap.Error
	switch {
	case errors.Is(err, errOAuthRefused):
		return r.loginRefused(err.Error())
	case errors.As(err, &ie):
		if ie.Code == imap.ResponseCodeUnavailable {
			return fmt.Errorf("%s: login refused for now: %w", r.a.addr(), err)
		}
		return r.loginRefused(ie.Text)
	}
	return err
}

// imap runs the account's folders over one connection, kept in the
// worker for IDLE between a daemon's runs.
func (r *run) imap(ctx context.Context) error {
	ic := r.w.imap
	if ic != nil && !ic.alive() {
		ic.c.Close()
		ic = nil
	}
	if ic == nil {
		var err error
		if ic, err = r.imapConnect(ctx); err != nil {
			return err
		}
	}
	r.w.imap = ic
	stop := context.AfterFunc(ctx, func() { ic.c.Close() })
	defer stop()
	// What arrived before this run is fetched by it.
	select {
	case <-ic.exists:
	default:
	}
	if !r.w.foldersChecked {
		r.w.foldersChecked = true
		r.imapCheckFolders(ic)
	}
	var errs []error
	for _, folder := range r.a.Folders {
		if ctx.Err() != nil {
			break
		}
		err := r.imapFolder(ctx, ic, folder)
		var ie *imap.Error
		switch {
		case err == nil:
		case errors.As(err, &ie) && ic.alive() && !stopsRun(err):
			// A folder the server refuses; the others may work.
			errs = append(errs, err)
		default:
			ic.c.Close()
			r.w.imap = nil
			return errors.Join(append(errs, err)...)
		}
	}
	return errors.Join(errs...)
}

// imapFolder fetches one folder: settle what an interrupted run left,
// act on what earlier runs stored (keep_days), then download and store
// what is new, batch by batch, deleting or moving after each batch.
func (r *run) imapFolder(ctx context.Context, ic *imapConn, folder string) error {
	readOnly := r.a.Mode == ModeKeep && r.a.KeepDays == 0 && !r.a.MarkSeen && r.a.MoveTo == ""
	var sel *imap.SelectData
	err := ic.do(func() error {
		var err error
		sel, err = ic.c.Select(folder, &imap.SelectOptions{ReadOnly: readOnly}).Wait()
		return err
	})
	var ie *imap.Error
	if errors.As(err, &ie) {
		return fmt.Errorf("folder %s: %w%s", folder, err, r.imapFolderHint(ic, folder))
	}
	if err != nil {
		return fmt.Errorf("folder %s: %w", folder, err)
	}
	uv := sel.UIDValidity
	if uv == 0 {
		return fmt.Errorf("folder %s: the server sent no UIDVALIDITY (RFC 9051 7.1)", folder)
	}
	if folder == r.a.Folders[0] {
		r.w.idleMark = [2]uint32{uv, uint32(sel.UIDNext)}
	}
	var uids []imap.UID
	if sel.NumMessages > 0 {
		err := ic.do(func() error {
			data, err := ic.c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
			if err == nil {
				uids = data.AllUIDs()
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("folder %s: UID SEARCH: %w", folder, err)
		}
	}
	slices.Sort(uids)
	present := map[string]bool{}
	for _, uid := range uids {
		present[uidID(uid)] = true
	}
	meta := map[imap.UID]imapMeta{}
	fs := r.st.folder(folder)
	switch {
	case fs.UIDValidity == uv:
	case fs.UIDValidity != 0 && len(fs.Messages) > 0:
		if fs, err = r.uidValidityChanged(ctx, ic, folder, fs, uv, uids, meta); err != nil {
			return err
		}
	default:
		fs.UIDValidity = uv
	}

	var fresh, old, recovered []imap.UID
	prevs := map[imap.UID]*Ref{}
	for _, uid := range uids {
		e := fs.Messages[uidID(uid)]
		if e != nil && e.stored() {
			old = append(old, uid)
			continue
		}
		stored, prev, err := r.recover(ctx, folder, uidID(uid), e)
		if err != nil {
			return err
		}
		if stored {
			recovered = append(recovered, uid)
			continue
		}
		fresh = append(fresh, uid)
		if prev != nil {
			prevs[uid] = prev
		}
	}
	fr := &imapFolderRun{folder: folder, present: present, flagged: map[imap.UID]bool{}}
	ic.do(func() error {
		caps := ic.c.Caps()
		fr.canMove, fr.uidPlus = caps.Has(imap.CapMove), caps.Has(imap.CapUIDPlus)
		return nil
	})
	if err := r.imapAfterStore(ic, fr, old, false); err != nil {
		return err
	}
	if err := r.imapAfterStore(ic, fr, recovered, true); err != nil {
		return err
	}

	if err := r.imapMeta(ic, fresh, meta); err != nil {
		return fmt.Errorf("folder %s: %w", folder, err)
	}
	var total int64
	for _, uid := range fresh {
		total += meta[uid].size
	}
	r.prog.Start(len(fresh), total)
	var stopErr error
	for len(fresh) > 0 && stopErr == nil && ctx.Err() == nil {
		n, bytes := 0, int64(0)
		for n < len(fresh) && n < bodyBatch && (n == 0 || bytes+meta[fresh[n]].size <= bodyBatchBytes) {
			bytes += meta[fresh[n]].size
			n++
		}
		batch := fresh[:n]
		fresh = fresh[n:]
		// What came is stored even if the FETCH failed after it.
		bodies, refused, err := r.imapBodies(ic, folder, uv, batch)
		var done, missing []imap.UID
		for _, uid := range batch {
			m := bodies[uid]
			if m == nil {
				missing = append(missing, uid)
				continue
			}
			if stopErr != nil {
				m.Close()
				continue
			}
			err := r.deliver(ctx, folder, uv, uidID(uid), meta[uid].fp, 0, m, prevs[uid])
			m.Close()
			if err != nil {
				stopErr = r.failed(folder, uidID(uid), err)
				continue
			}
			done = append(done, uid)
		}
		if err != nil {
			return fmt.Errorf("folder %s: %w", folder, err)
		}
		if err := r.imapMissing(ic, fr, missing, refused); err != nil {
			return err
		}
		if err := r.imapAfterStore(ic, fr, done, true); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := r.imapExpungeFlagged(ic, fr); err != nil {
		return err
	}
	if err := r.prune(folder, present); err != nil {
		return err
	}
	return stopErr
}

// list lists every folder of the server (LIST "" "*", RFC 9051 6.3.9).
func (ic *imapConn) list() ([]*imap.ListData, error) {
	var list []*imap.ListData
	err := ic.do(func() error {
		var err error
		list, err = ic.c.List("", "*", nil).Collect()
		return err
	})
	return list, err
}

// imapCheckFolders warns when the folders to fetch include one that the
// server marks as holding every message (\All, RFC 6154 2: Gmail's
// "[Gmail]/All Mail") and others: what they hold is in it too, and is
// fetched twice.
func (r *run) imapCheckFolders(ic *imapConn) {
	if len(r.a.Folders) < 2 {
		return
	}
	list, err := ic.list()
	if err != nil {
		return
	}
	for _, l := range list {
		if slices.Contains(r.a.Folders, l.Mailbox) && slices.Contains(l.Attrs, imap.MailboxAttrAll) {
			r.log.Warn("a folder to fetch holds every message (\\All), those of the other folders too: they are fetched twice; fetch it alone, or the others",
				"folder", l.Mailbox, "folders", r.a.Folders)
		}
	}
}

// imapFolderHint names, for a folder the server refused to select, the
// folders it has that the person may have meant: the same name in other
// case, the folder whose name in modified UTF-7 (RFC 3501 5.1.3, as
// fetchmail and getmail configurations hold them) was written, or one
// whose last level has that name ("Archive" for "INBOX.Archive" on a
// server that keeps every folder under INBOX, "All Mail" for Gmail's
// "[Gmail]/All Mail"). It returns "" when it finds none.
func (r *run) imapFolderHint(ic *imapConn, folder string) string {
	list, err := ic.list()
	if err != nil {
		return ""
	}
	var names []string
	for _, l := range list {
		last := l.Mailbox
		if i := strings.LastIndex(last, string(l.Delim)); l.Delim != 0 && i >= 0 {
			last = last[i+len(string(l.Delim)):]
		}
		if l.Mailbox != folder && (strings.EqualFold(l.Mailbox, folder) || mutf7.Encode(l.Mailbox) == folder ||
			strings.EqualFold(last, folder)) {
			names = append(names, strconv.Quote(l.Mailbox))
		}
	}
	if len(names) == 0 || len(names) > 5 {
		return ""
	}
	return fmt.Sprintf("; the server has %s (folders are written in full, in UTF-8, as mail clients show them)",
		strings.Join(names, " and "))
}

// imapFolderRun is what a run knows of the folder it works on.
type imapFolderRun struct {
	folder string
	// present holds the ids of the messages on the server.
	present map[string]bool
	// canMove and uidPlus are the server's MOVE (RFC 6851) and UIDPLUS
	// (RFC 4315).
	canMove, uidPlus bool
	// flagged holds the messages this run flagged \Deleted to remove them
	// that a server without UIDPLUS could not expunge alone: true for those
	// copied to move_to.
	flagged map[imap.UID]bool
}

// forgetUIDs drops messages removed from the server from the state and from
// present.
func (r *run) forgetUIDs(fr *imapFolderRun, uids []imap.UID) error {
	ids := make([]string, len(uids))
	for i, uid := range uids {
		ids[i] = uidID(uid)
		delete(fr.present, ids[i])
	}
	return r.st.forget(fr.folder, ids)
}

// imapAfterStore acts on stored messages: \Seen for those that still
// need it (mark_seen: those just stored, and those of a run that stopped
// before it set the flag), then the move to move_to, or the deletion of
// those due (mode delete, keep_days). Messages removed are forgotten.
func (r *run) imapAfterStore(ic *imapConn, fr *imapFolderRun, uids []imap.UID, justStored bool) error {
	if len(uids) == 0 {
		return nil
	}
	folder := fr.folder
	fs := r.st.folder(folder)
	var unseen []imap.UID
	for _, uid := range uids {
		if e := fs.Messages[uidID(uid)]; e != nil && e.SeenDue {
			unseen = append(unseen, uid)
		}
	}
	if len(unseen) > 0 {
		err := ic.do(func() error {
			return ic.c.Store(imap.UIDSetNum(unseen...), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close()
		})
		if err != nil {
			return fmt.Errorf("folder %s: STORE \\Seen: %w", folder, err)
		}
		ids := make([]string, len(unseen))
		for i, uid := range unseen {
			ids[i] = uidID(uid)
		}
		if err := r.st.seen(folder, ids); err != nil {
			return err
		}
	}
	var remove []imap.UID
	moving := r.a.MoveTo != ""
	switch {
	case moving && fr.canMove:
		r.at("move")
		err := ic.do(func() error { _, err := ic.c.Move(imap.UIDSetNum(uids...), r.a.MoveTo).Wait(); return err })
		if err != nil {
			return fmt.Errorf("folder %s: move to %s: %w", folder, r.a.MoveTo, err)
		}
		r.sum.Moved += len(uids)
		return r.forgetUIDs(fr, uids)
	case moving:
		// RFC 6851 3.3: without MOVE, COPY and then \Deleted and EXPUNGE,
		// each once the one before succeeded. (imapclient's fallback sends
		// the three at once, so a COPY refused, over quota or for want of
		// the folder, still expunges.) What was copied is recorded, so
		// that a message left unexpunged is not copied again.
		var toCopy []imap.UID
		for _, uid := range uids {
			if e := fs.Messages[uidID(uid)]; e == nil || !e.Copied {
				toCopy = append(toCopy, uid)
			}
		}
		if len(toCopy) > 0 {
			r.at("move")
			err := ic.do(func() error { _, err := ic.c.Copy(imap.UIDSetNum(toCopy...), r.a.MoveTo).Wait(); return err })
			if err != nil {
				return fmt.Errorf("folder %s: copy to %s (the messages stay where they are): %w", folder, r.a.MoveTo, err)
			}
			ids := make([]string, len(toCopy))
			for i, uid := range toCopy {
				ids[i] = uidID(uid)
			}
			if err := r.st.copied(folder, ids); err != nil {
				return err
			}
		}
		remove = uids
	default:
		for _, uid := range uids {
			if r.removable(fs.Messages[uidID(uid)]) {
				remove = append(remove, uid)
			}
		}
		if !justStored {
			r.sum.AlreadyFetched += len(uids) - len(remove)
		}
	}
	if len(remove) == 0 {
		return nil
	}
	r.at("expunge")
	set := imap.UIDSetNum(remove...)
	err := ic.do(func() error {
		return ic.c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
	})
	if err != nil {
		return fmt.Errorf("folder %s: STORE \\Deleted: %w", folder, err)
	}
	if !fr.uidPlus {
		// EXPUNGE would also remove other messages flagged \Deleted: see
		// imapExpungeFlagged.
		for _, uid := range remove {
			fr.flagged[uid] = moving
		}
		return nil
	}
	// RFC 4315 2.1: UID EXPUNGE removes only these.
	err = ic.do(func() error { return ic.c.UIDExpunge(set).Close() })
	if err != nil {
		return fmt.Errorf("folder %s: UID EXPUNGE: %w", folder, err)
	}
	if moving {
		r.sum.Moved += len(remove)
	} else {
		r.sum.Deleted += len(remove)
	}
	return r.forgetUIDs(fr, remove)
}

// imapExpungeFlagged expunges, on a server without UIDPLUS, the messages
// of the folder the run flagged \Deleted to delete or move them, once
// every new message of the folder had its turn. A plain EXPUNGE removes
// every message flagged \Deleted (RFC 9051 6.4.3), whoever flagged it,
// so it is sent only if UID SEARCH DELETED finds nothing that is not
// stored here; otherwise the messages stay flagged, and the next run
// tries again. (A message flagged by another client between the SEARCH
// and the EXPUNGE would still go: only UIDPLUS closes that gap.)
func (r *run) imapExpungeFlagged(ic *imapConn, fr *imapFolderRun) error {
	if len(fr.flagged) == 0 {
		return nil
	}
	var deleted []imap.UID
	err := ic.do(func() error {
		data, err := ic.c.UIDSearch(&imap.SearchCriteria{Flag: []imap.Flag{imap.FlagDeleted}}, nil).Wait()
		if err == nil {
			deleted = data.AllUIDs()
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("folder %s: UID SEARCH DELETED: %w", fr.folder, err)
	}
	fs := r.st.folder(fr.folder)
	strangers := 0
	for _, uid := range deleted {
		if e := fs.Messages[uidID(uid)]; e == nil || !e.stored() {
			strangers++
		}
	}
	if strangers > 0 {
		r.sum.Flagged += len(fr.flagged)
		r.log.Warn("messages flagged \\Deleted here are not expunged: the server lacks UIDPLUS (RFC 4315), and its EXPUNGE "+
			"would also remove messages flagged \\Deleted elsewhere that are not stored here",
			"folder", fr.folder, "flagged", len(fr.flagged), "not_stored", strangers)
		return nil
	}
	r.at("expunge")
	if err := ic.do(func() error { return ic.c.Expunge().Close() }); err != nil {
		return fmt.Errorf("folder %s: EXPUNGE: %w", fr.folder, err)
	}
	for _, uid := range deleted {
		if moved, ok := fr.flagged[uid]; ok && moved {
			r.sum.Moved++
		} else if ok {
			r.sum.Deleted++
		}
	}
	// Messages flagged by another client went too; all were stored.
	return r.forgetUIDs(fr, deleted)
}

// imapMeta fetches the size and fingerprint of messages not yet in meta.
func (r *run) imapMeta(ic *imapConn, uids []imap.UID, meta map[imap.UID]imapMeta) error {
	var need []imap.UID
	for _, uid := range uids {
		if _, ok := meta[uid]; !ok {
			need = append(need, uid)
		}
	}
	for len(need) > 0 {
		n := min(len(need), metaBatch)
		chunk := need[:n]
		need = need[n:]
		var bufs []*imapclient.FetchMessageBuffer
		err := ic.do(func() error {
			var err error
			bufs, err = ic.c.Fetch(imap.UIDSetNum(chunk...), &imap.FetchOptions{UID: true, RFC822Size: true, Envelope: true}).Collect()
			return err
		})
		if err != nil {
			return fmt.Errorf("FETCH RFC822.SIZE ENVELOPE: %w", err)
		}
		for _, b := range bufs {
			if b.UID != 0 {
				meta[b.UID] = imapMeta{size: b.RFC822Size, fp: fingerprint(b.Envelope, b.RFC822Size)}
			}
		}
	}
	return nil
}

// imapBodies downloads a batch of messages (BODY.PEEK[], which leaves
// \Seen alone, RFC 9051 6.4.5) into spools. It returns the messages that
// came whole even when the FETCH failed: refused is the server's NO or
// BAD (Gmail answers NO for a message it cannot read, after sending the
// others), err a failure of the connection or of the spool. A message
// sent with a NIL body is logged and left out; one sent without its UID
// never reaches the command (see imapConnect).
func (r *run) imapBodies(ic *imapConn, folder string, uv uint32, uids []imap.UID) (out map[imap.UID]*Message, refused, err error) {
	out = map[imap.UID]*Message{}
	ids := map[imap.UID]string{}
	for _, uid := range uids {
		ids[uid] = fmt.Sprintf("imap:%s/%d/%d", folder, uv, uid)
	}
	ic.strays.begin(ids)
	defer func() {
		for uid, m := range ic.strays.end() {
			if out[uid] == nil {
				r.log.Debug("the server sent a message apart from the FETCH response that asked for it", "folder", folder, "uid", uid)
				out[uid] = m
			} else {
				m.Close()
			}
		}
	}()
	err = ic.do(func() error {
		cmd := ic.c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{
			UID:         true,
			BodySection: []*imap.FetchItemBodySection{{Peek: true}},
		})
		for {
			msg := cmd.Next()
			if msg == nil {
				break
			}
			var uid imap.UID
			var dl *download
			nilBody := false
			for {
				item := msg.Next()
				if item == nil {
					break
				}
				switch it := item.(type) {
				case imapclient.FetchItemDataUID:
					uid = it.UID
				case imapclient.FetchItemDataBodySection:
					if it.Literal == nil {
						nilBody = true
						continue
					}
					if dl != nil {
						dl.Close()
					}
					dl = newDownload(r.w.spooler)
					if _, err := io.Copy(dl, it.Literal); err != nil {
						dl.Close()
						cmd.Close()
						return err
					}
				}
			}
			switch {
			case dl != nil && uid != 0:
				m, err := dl.message(ids[uid])
				if err != nil {
					cmd.Close()
					return err
				}
				if old := out[uid]; old != nil {
					old.Close()
				}
				out[uid] = m
			case dl != nil:
				dl.Close()
			case uid != 0 && nilBody:
				r.log.Warn("the server sent a message without its body (BODY[] NIL)", "folder", folder, "uid", uid)
			}
		}
		return cmd.Close()
	})
	var ie *imap.Error
	if errors.As(err, &ie) {
		return out, fmt.Errorf("FETCH BODY.PEEK[]: %w", err), nil
	}
	if err != nil {
		err = fmt.Errorf("FETCH BODY.PEEK[]: %w", err)
	}
	return out, nil, err
}

// imapMissing settles the messages of a batch that the FETCH did not
// bring: one still on the server (it could not read it, or sent it without
// its UID or body) is an error of the run and stays there; one gone was
// expunged by another client meanwhile.
func (r *run) imapMissing(ic *imapConn, fr *imapFolderRun, missing []imap.UID, refused error) error {
	if len(missing) == 0 {
		if refused != nil {
			r.log.Warn("the server refused part of a FETCH, yet sent every message", "folder", fr.folder, "err", refused)
		}
		return nil
	}
	var still []imap.UID
	err := ic.do(func() error {
		data, err := ic.c.UIDSearch(&imap.SearchCriteria{UID: []imap.UIDSet{imap.UIDSetNum(missing...)}}, nil).Wait()
		if err == nil {
			still = data.AllUIDs()
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("folder %s: UID SEARCH: %w", fr.folder, err)
	}
	for _, uid := range missing {
		if !slices.Contains(still, uid) {
			delete(fr.present, uidID(uid))
			continue
		}
		r.sum.Failed++
		args := []any{"folder", fr.folder, "uid", uid}
		if refused != nil {
			args = append(args, "err", refused)
		}
		r.log.Warn("the server did not send a message; it stays there", args...)
	}
	return nil
}

// uidValidityChanged handles a folder whose UIDVALIDITY changed (RFC 9051
// 2.3.1.1): the old UIDs mean nothing now. Messages stored before are
// recognised by fingerprint (Message-ID, date, subject and size) and keep
// their first-download time and what is still owed them: a \Seen to set
// (mark_seen), and the record of a copy to move_to made but not yet
// expunged, which must not be made again. The rest are fetched as new.
// The new state of the folder replaces the old in one snapshot.
func (r *run) uidValidityChanged(ctx context.Context, ic *imapConn, folder string, old *folderState, uv uint32, uids []imap.UID, meta map[imap.UID]imapMeta) (*folderState, error) {
	r.log.Warn("folder UIDVALIDITY changed; recognising messages fetched before by Message-ID, date, subject and size",
		"folder", folder, "old", old.UIDValidity, "new", uv)
	// pool holds, per fingerprint, the entries of the messages stored
	// before, oldest first.
	pool := map[string][]*entry{}
	for _, e := range old.Messages {
		if e.FP == "" {
			continue
		}
		switch {
		case e.stored():
			pool[e.FP] = append(pool[e.FP], &entry{Stored: e.Stored, FP: e.FP, Copied: e.Copied, SeenDue: e.SeenDue})
		case e.Intent != nil:
			has, err := r.dest.Has(ctx, *e.Intent)
			if err != nil {
				return nil, classifyDestErr(err)
			}
			if has {
				// As recover records it.
				pool[e.FP] = append(pool[e.FP], &entry{Stored: r.now, FP: e.FP, SeenDue: r.markSeen()})
			}
		}
	}
	for _, es := range pool {
		slices.SortFunc(es, func(a, b *entry) int { return a.Stored.Compare(b.Stored) })
	}
	if err := r.imapMeta(ic, uids, meta); err != nil {
		return nil, fmt.Errorf("folder %s: %w", folder, err)
	}
	nfs := &folderState{UIDValidity: uv, Messages: map[string]*entry{}}
	recognised := 0
	for _, uid := range uids {
		fp := meta[uid].fp
		if fp == "" || len(pool[fp]) == 0 {
			continue
		}
		nfs.Messages[uidID(uid)] = pool[fp][0]
		pool[fp] = pool[fp][1:]
		recognised++
	}
	if err := r.st.replaceFolder(folder, nfs); err != nil {
		return nil, err
	}
	r.log.Info("folder renumbered", "folder", folder, "recognised", recognised, "new", len(uids)-recognised)
	return nfs, nil
}

// idle waits on the account's first folder with IDLE (RFC 2177) until
// new mail arrives, d passes or ctx ends. It returns false when the
// connection cannot IDLE; the caller then just sleeps.
func (w *worker) idle(ctx context.Context, d time.Duration) bool {
	ic := w.imap
	if ic == nil || !ic.alive() {
		return false
	}
	var canIdle bool
	ic.do(func() error { canIdle = ic.c.Caps().Has(imap.CapIdle); return nil })
	if !canIdle {
		return false
	}
	folder := w.a.Folders[0]
	var sel *imap.SelectData
	err := ic.do(func() error {
		var err error
		sel, err = ic.c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
		return err
	})
	if err != nil {
		w.log.Warn("IDLE: cannot select the folder; polling instead", "folder", folder, "err", err)
		return false
	}
	if [2]uint32{sel.UIDValidity, uint32(sel.UIDNext)} != w.idleMark {
		// Mail came after the run looked (its EXISTS went to this
		// SELECT, not to IDLE): fetch it now.
		w.log.Debug("IDLE: new mail since the last run", "folder", folder)
		return true
	}
	var cmd *imapclient.IdleCommand
	if err := ic.do(func() error { var err error; cmd, err = ic.c.Idle(); return err }); err != nil {
		w.log.Warn("IDLE refused; polling instead", "err", err)
		return false
	}
	// The client library ends and starts IDLE again every 28 minutes, so
	// that a server's inactivity timer does not end it (RFC 2177 3).
	w.log.Debug("IDLE: waiting", "folder", folder)
	timer := time.NewTimer(d)
	defer timer.Stop()
	dropped := false
	select {
	case <-ic.exists:
		w.log.Debug("IDLE: new mail", "folder", folder)
	case <-timer.C:
	case <-ctx.Done():
	case <-ic.c.Closed():
		dropped = true
	}
	err = ic.do(func() error {
		if err := cmd.Close(); err != nil {
			return err
		}
		return cmd.Wait()
	})
	switch {
	case err == nil || ctx.Err() != nil:
		return true
	case dropped:
		// Servers end idle connections after a while: what came
		// meanwhile is fetched over a new one.
		w.log.Info("IDLE: the server closed the connection; connecting again", "folder", folder)
	default:
		w.log.Warn("IDLE ended with an error; reconnecting at the next run", "err", err)
	}
	ic.c.Close()
	w.imap = nil
	return true
}
