package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/buzon-mail/buzon/internal/pop3client"
)

// pop3Folder is the state folder of a POP3 account, which has one
// mailbox.
const pop3Folder = ""

// inUseAttempts is how many times a run tries to log in to a maildrop
// locked by another session (RFC 2449 8.1.1 [IN-USE]).
const inUseAttempts = 3

// pop3Msg is one message of the maildrop.
type pop3Msg struct {
	n    int
	size int64
	id   string
	// ambiguous is set on a message that cannot be told apart from
	// another with the same UIDL: it is neither fetched nor deleted.
	ambiguous bool
}

// pop3Session is a logged-in POP3 connection under the watchdog.
type pop3Session struct {
	c *pop3client.Client
	w *watchedConn
	a *Account
}

// do runs a command under the watchdog, describing network failures.
func (s *pop3Session) do(fn func() error) error {
	err := s.w.do(fn)
	var pe *pop3client.Error
	if err != nil && !errors.As(err, &pe) {
		return describeNetErr(err, s.a)
	}
	return err
}

// pop3Connect connects, starts TLS and logs in.
func (r *run) pop3Connect(ctx context.Context) (*pop3Session, error) {
	tc, err := tlsConfig(r.a)
	if err != nil {
		return nil, err
	}
	nc, w, err := dial(ctx, r.a, tc)
	if err != nil {
		return nil, err
	}
	s := &pop3Session{w: w, a: r.a}
	err = s.do(func() error {
		var err error
		s.c, err = pop3client.NewClient(nc)
		return err
	})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("pop3 greeting from %s: %w", r.a.addr(), err)
	}
	if err := r.pop3Login(ctx, s); err != nil {
		s.c.Close()
		return nil, err
	}
	return s, nil
}

func (r *run) pop3Login(ctx context.Context, s *pop3Session) error {
	caps := func() pop3client.Capabilities {
		var caps pop3client.Capabilities
		if err := s.do(func() error { var err error; caps, err = s.c.Capa(); return err }); err != nil {
			return nil // RFC 2449 is optional: a server without CAPA
		}
		return caps
	}
	c := caps()
	if r.a.TLS == TLSStartTLS {
		if c != nil && !c.Has("STLS") {
			return fmt.Errorf("%s does not offer STLS (RFC 2595); use tls = %q or another port", r.a.addr(), TLSImplicit)
		}
		tc, err := tlsConfig(r.a)
		if err != nil {
			return err
		}
		if err := s.do(func() error { return s.c.STLS(tc) }); err != nil {
			return describeTLSErr(err, r.a)
		}
		c = caps() // RFC 2595 4: capabilities may change after STLS
	}
	pass, err := r.password(ctx)
	if err != nil {
		return err
	}
	oauth := r.a.oauthClient(pass)
	if oauth != nil && c != nil && !c.Has("SASL", oauth.mech) {
		return fmt.Errorf("%s does not offer SASL %s (RFC 5034)", r.a.addr(), oauth.mech)
	}
	err = s.do(func() error {
		switch {
		case oauth != nil:
			return s.c.Auth(oauth.mech, oauth.ir)
		case c.Has("SASL", "PLAIN"):
			return s.c.AuthPlain(r.a.User, pass)
		}
		return s.c.User(r.a.User, pass)
	})
	var pe *pop3client.Error
	switch {
	case err == nil:
		return nil
	case pop3client.HasCode(err, pop3client.CodeInUse):
		return fmt.Errorf("%s: the mailbox is in use by another POP3 session: %w", r.a.addr(), err)
	case pop3client.HasCode(err, pop3client.CodeLoginDelay), pop3client.HasCode(err, pop3client.CodeSysTemp):
		return fmt.Errorf("%s: login refused for now: %w", r.a.addr(), err)
	case errors.As(err, &pe) && pe.Challenge != "":
		return r.loginRefused(oauthRefusal([]byte(pe.Challenge)).Error())
	case errors.As(err, &pe):
		return r.loginRefused(pe.Text)
	}
	return err
}

// maxReconnects bounds the sessions a POP3 run opens after its first,
// each to go on after a message that broke the one before.
const maxReconnects = 5

// pop3Progress is what a POP3 run carries from one session to the next.
type pop3Progress struct {
	// failed holds the ids of the messages that failed in this run: later
	// sessions of the run leave them alone.
	failed map[string]bool
	// storedNow holds the ids of the messages this run stored or found
	// stored, which are not "already fetched".
	storedNow map[string]bool
	// uidlEach is set once a UIDL listing broke a session: the sessions
	// after it ask for each message's UIDL on its own.
	uidlEach bool
	// listed is set once a session listed the maildrop, and counted what
	// it holds for the progress display and the summary.
	listed bool
}

// pop3Held is a downloaded message waiting for the server's next reply to
// show that the download ended where the server meant it to.
type pop3Held struct {
	m    pop3Msg
	msg  *Message
	prev *Ref
}

// pop3 runs POP3 sessions until one gets through the maildrop: a message
// that breaks a session (a RETR that drops the connection, a copy cut
// short) is left on the server and the next session goes on after it; a
// UIDL listing that breaks one makes the next ask for each message's UIDL
// on its own. Up to maxReconnects times.
func (r *run) pop3(ctx context.Context) error {
	p := &pop3Progress{failed: map[string]bool{}, storedNow: map[string]bool{}}
	for session := 0; ; session++ {
		s, err := r.pop3Open(ctx)
		if err != nil {
			return err
		}
		again, err := r.pop3Session(ctx, s, p)
		if !again {
			return err
		}
		if session == maxReconnects {
			return fmt.Errorf("%d POP3 sessions in a row ended early on what the server sent (a message, or a UIDL listing, that could not be read); the rest waits for the next run", session+1)
		}
		r.log.Info("connecting again to go on")
	}
}

// pop3Open connects and logs in, trying again while the maildrop is in
// use: a session of ours that died (a crash, a dropped connection) may
// hold its lock until the server notices.
func (r *run) pop3Open(ctx context.Context) (*pop3Session, error) {
	for attempt := 1; ; attempt++ {
		s, err := r.pop3Connect(ctx)
		if err == nil {
			return s, nil
		}
		if !pop3client.HasCode(err, pop3client.CodeInUse) || attempt == inUseAttempts {
			return nil, err
		}
		wait := time.Duration(attempt) * time.Second
		r.log.Info("the mailbox is in use; trying again", "in", wait)
		sleep(ctx, wait)
	}
}

// cutShort reports whether a copy of got octets, counted with CRLF line
// ends as the spool keeps it, is clearly shorter than the size LIST
// announced. RFC 1939 5 wants the exact size, but honest servers differ a
// little: one counting LF line ends announces less than it sends, and so
// does one that ends a message without a final line break for the "."
// line; one may count a header it leaves out. A copy short by more than 2
// octets and 1/16 of the size is taken to be cut short.
func cutShort(got, announced int64) bool {
	return got < announced-announced/16-2
}

// pop3Session runs one POP3 session: list, download and store what is
// new, DELE what is to go, and QUIT, which is when the server deletes
// (RFC 1939 6). It reports reconnect when a message or the UIDL listing
// broke the session, leaving the rest of the maildrop to a new one.
//
// A server that fails to dot-stuff a line of a message holding only "."
// (RFC 1939 3) ends the message there for us and sends the rest, which we
// would read as its next replies. So a copy clearly shorter than LIST
// announced (cutShort) is refused, and every copy is held until the
// server's next reply, to the next RETR or to a NOOP, comes as a status
// line: only then is it stored. A reply out of step, or a copy cut short,
// drops the session without QUIT, so that none of its DELEs takes effect.
// DELEs come last, after every download, in a session that stayed in step.
func (r *run) pop3Session(ctx context.Context, s *pop3Session, p *pop3Progress) (reconnect bool, err error) {
	defer s.c.Close()
	stop := context.AfterFunc(ctx, func() { s.c.Close() })
	defer stop()
	msgs, err := r.pop3List(s, p)
	if errors.Is(err, errUIDLUnreadable) {
		r.log.Warn("the server's UIDL listing is unreadable; asking for each message's UIDL on its own", "err", err)
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if err := r.pop3Reused(msgs); err != nil {
		return false, err
	}
	fs := r.st.folder(pop3Folder)
	if !p.listed {
		p.listed = true
		var newCount int
		var newBytes int64
		for _, m := range msgs {
			switch e := fs.Messages[m.id]; {
			case m.ambiguous:
				r.sum.Failed++ // logged by pop3List
			case e == nil || !e.stored():
				newCount++
				newBytes += m.size
			}
		}
		r.prog.Start(newCount, newBytes)
	}

	var held *pop3Held
	defer func() {
		if held != nil {
			held.msg.Close()
		}
	}()
	// settle stores the held message, now known to be whole.
	settle := func() error {
		h := held
		held = nil
		err := r.deliver(ctx, pop3Folder, 0, h.m.id, "", h.m.size, h.msg, h.prev)
		h.msg.Close()
		if err != nil {
			p.failed[h.m.id] = true
			return r.failed(pop3Folder, h.m.id, err)
		}
		p.storedNow[h.m.id] = true
		return nil
	}
	// refuse leaves a message on the server for the rest of the run.
	refuse := func(id, why string, err error) {
		r.sum.Failed++
		p.failed[id] = true
		r.log.Warn(why, "id", id, "err", err)
	}
	// outOfStep ends a session whose reply to cmd was not a status line:
	// the message held was cut short and the rest of it read as the
	// reply.
	// outOfStep refuses the message a reply out of step is blamed on; the
	// session then ends without QUIT.
	outOfStep := func(cmd string, m pop3Msg, err error) {
		if held == nil {
			refuse(m.id, "the server's reply to "+cmd+" was not a status line; the message stays on the server", err)
			return
		}
		refuse(held.m.id, "the server's reply after a message was not a status line: the message was cut short "+
			`(a line holding only "." not dot-stuffed?) and its rest read as the reply; it is not stored and stays on the server`, err)
	}

	var stopErr error
	for _, m := range msgs {
		if ctx.Err() != nil || stopErr != nil {
			break
		}
		if m.ambiguous || p.failed[m.id] {
			continue
		}
		e := fs.Messages[m.id]
		storedBefore := e != nil && e.stored()
		stored, prev, err := r.recover(ctx, pop3Folder, m.id, e)
		if err != nil {
			stopErr = err
			break
		}
		if stored {
			if !storedBefore {
				p.storedNow[m.id] = true
			}
			continue
		}
		dl := newDownload(r.w.spooler)
		var n int64
		err = s.do(func() error { var err error; n, err = s.c.Retr(m.n, dl); return err })
		var pe *pop3client.Error
		switch {
		case errors.Is(err, pop3client.ErrProtocol):
			dl.Close()
			outOfStep(fmt.Sprintf("RETR %d", m.n), m, err)
			return true, nil
		case err == nil, errors.As(err, &pe), n > 0, dl.err != nil:
			// A status line came: what was held ended where the server
			// meant it to.
			if held != nil {
				if stopErr = settle(); stopErr != nil {
					dl.Close()
					if err != nil && !errors.As(err, &pe) {
						return false, stopErr // and the connection is gone
					}
					continue
				}
			}
		}
		switch {
		case errors.As(err, &pe):
			// Refused (removed by another session, say); the session goes
			// on.
			dl.Close()
			refuse(m.id, "the server refused a message; it stays there", err)
			continue
		case dl.err != nil:
			dl.Close()
			return false, fmt.Errorf("RETR %d: spooling the message: %w", m.n, dl.err)
		case err != nil:
			// The connection failed during RETR, perhaps at this message
			// every time: the next session goes on without it.
			dl.Close()
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			refuse(m.id, "the connection failed while the server sent a message; it stays there, and a new session goes on after it", err)
			return true, nil
		}
		msg, err := dl.message("pop3:" + m.id)
		if err != nil {
			return false, fmt.Errorf("RETR %d: %w", m.n, err)
		}
		if cutShort(msg.Size, m.size) {
			msg.Close()
			refuse(m.id, "a message came shorter than LIST announced, cut short "+
				`(a line holding only "." not dot-stuffed?); it is not stored and stays on the server`,
				fmt.Errorf("RETR %d: %d octets, LIST announced %d", m.n, msg.Size, m.size))
			return true, nil
		}
		held = &pop3Held{m: m, msg: msg, prev: prev}
	}
	if held != nil && ctx.Err() == nil {
		err := s.do(s.c.Noop)
		var pe *pop3client.Error
		switch {
		case errors.Is(err, pop3client.ErrProtocol):
			outOfStep("NOOP", held.m, err)
			return true, nil
		case err == nil, errors.As(err, &pe):
			if err := settle(); err != nil && stopErr == nil {
				stopErr = err
			}
		default:
			return false, fmt.Errorf("NOOP: %w", err)
		}
	}
	if ctx.Err() != nil {
		// Shutting down: the connection is closed, no DELE is applied;
		// the next run makes them.
		return false, ctx.Err()
	}

	var deleted []string
	for _, m := range msgs {
		if m.ambiguous {
			continue
		}
		e := fs.Messages[m.id] // a message that failed was not recorded stored
		if e == nil || !e.stored() {
			continue
		}
		if !r.removable(e) {
			if !p.storedNow[m.id] {
				r.sum.AlreadyFetched++
			}
			continue
		}
		r.at("dele")
		err := s.do(func() error { return s.c.Dele(m.n) })
		var pe *pop3client.Error
		switch {
		case errors.As(err, &pe):
			// An error, so that a maildrop that never empties shows.
			r.sum.Failed++
			r.log.Warn("the server refused to delete a message; it stays there", "id", m.id, "err", err)
		case err != nil:
			return false, fmt.Errorf("DELE %d: %w", m.n, err)
		default:
			deleted = append(deleted, m.id)
		}
	}
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	r.at("quit")
	if err := s.do(s.c.Quit); err != nil {
		return false, fmt.Errorf("QUIT (the messages marked for deletion may still be on the server): %w", err)
	}
	r.sum.Deleted += len(deleted)
	if err := r.st.forget(pop3Folder, deleted); err != nil {
		return false, err
	}
	present := map[string]bool{}
	for _, m := range msgs {
		if !m.ambiguous {
			present[m.id] = true
		}
	}
	for _, id := range deleted {
		delete(present, id)
	}
	if err := r.prune(pop3Folder, present); err != nil {
		return false, err
	}
	return false, stopErr
}

// pop3Reused forgets what the state knows under a UIDL that now names a
// message of another size than the one recorded: a server that gives a
// new message the UIDL of one gone (against RFC 1939 7, which wants a
// UIDL to name one message for good) would otherwise have the new
// message skipped as fetched, or deleted without being downloaded, in
// the old one's stead. Forgotten, the new message is fetched as new, and
// deleted (delete mode, keep_days) only once it is stored. Two messages of
// the same size under one UIDL are not told apart: TOP for every known
// message on every run would cost more than such a server deserves.
func (r *run) pop3Reused(msgs []pop3Msg) error {
	fs := r.st.folder(pop3Folder)
	var reused []string
	for _, m := range msgs {
		e := fs.Messages[m.id]
		if m.ambiguous || e == nil || e.Size == 0 || e.Size == m.size {
			continue
		}
		r.log.Warn("the server lists a new message under the UIDL of a message fetched before (RFC 1939 7 wants a UIDL to name one message for good); "+
			"told apart by its size, it is fetched as new", "id", m.id, "size", m.size, "recorded size", e.Size)
		reused = append(reused, m.id)
	}
	return r.st.forget(pop3Folder, reused)
}

// pop3List lists the maildrop with each message's identity: its UIDL
// (RFC 1939 7). A server without UIDL only works with mode = "delete", and
// then a message is known by the hash of its header (TOP n 0) and size:
// enough to recognise, after a crash, a message stored but not yet
// deleted. Two messages with the same header and size are numbered apart.
//
// A server that gives several messages one UIDL breaks RFC 1939 7; taken
// at its word, it would have the second of them deleted as stored when
// only the first was. Those messages are known by their UIDL and the hash
// of their header, and without TOP to tell them apart they are left
// alone: neither fetched nor deleted. (One fetched while its UIDL was
// still its own is fetched again: a copy too many rather than one lost.)
//
// A message the listing gives no id (a number alone on its line) is
// known by its header, as on a server without UIDL, in delete mode; with
// keep it is left alone, and the rest of the maildrop is fetched. A
// listing the client cannot read at all (a line without a number) breaks
// the session; the next one asks for each message's UIDL on its own
// (p.uidlEach).
func (r *run) pop3List(s *pop3Session, p *pop3Progress) ([]pop3Msg, error) {
	var sizes []pop3client.MessageSize
	if err := s.do(func() error { var err error; sizes, err = s.c.List(); return err }); err != nil {
		return nil, fmt.Errorf("LIST: %w", err)
	}
	msgs := make([]pop3Msg, len(sizes))
	listed := map[int]bool{}
	for i, sz := range sizes {
		if listed[sz.Number] {
			return nil, fmt.Errorf("LIST names message %d twice", sz.Number)
		}
		listed[sz.Number] = true
		msgs[i] = pop3Msg{n: sz.Number, size: sz.Size}
	}
	var uidls []pop3client.MessageUID
	var err error
	if p.uidlEach {
		uidls, err = r.pop3UIDLEach(s, msgs)
	} else {
		err = s.do(func() error { var err error; uidls, err = s.c.UIDL(); return err })
	}
	var pe *pop3client.Error
	switch {
	case err == nil:
		byNumber := map[int]string{}
		for _, u := range uidls {
			byNumber[u.Number] = u.UID
		}
		holders := map[string]int{}
		var unnamed []int
		for i := range msgs {
			id, ok := byNumber[msgs[i].n]
			if !ok {
				unnamed = append(unnamed, i)
				continue
			}
			msgs[i].id = id
			holders[id]++
		}
		var shared []int
		for i := range msgs {
			if msgs[i].id != "" && holders[msgs[i].id] > 1 {
				shared = append(shared, i)
			}
		}
		if len(shared) > 0 {
			r.log.Warn("the server gives several messages the same UIDL (RFC 1939 7 wants them unique); they are told apart by a hash of their header",
				"messages", len(shared))
			if err := r.pop3HeaderIDs(s, msgs, shared, false); err != nil {
				return nil, err
			}
		}
		if len(unnamed) > 0 {
			if err := r.pop3Unnamed(s, msgs, unnamed); err != nil {
				return nil, err
			}
		}
		return msgs, nil
	case errors.Is(err, pop3client.ErrProtocol) && !p.uidlEach:
		p.uidlEach = true
		return nil, fmt.Errorf("%w: %w", errUIDLUnreadable, err)
	case !errors.As(err, &pe):
		return nil, fmt.Errorf("UIDL: %w", err)
	}
	if r.a.Mode != ModeDelete {
		return nil, fmt.Errorf(`%s does not support UIDL, which mode = %q needs to know which messages were fetched; only mode = "delete" works with it`, r.a.addr(), r.a.Mode)
	}
	r.log.Warn("the server lacks UIDL; messages are recognised by a hash of their header")
	all := make([]int, len(msgs))
	for i := range msgs {
		all[i] = i
	}
	if err := r.pop3HeaderIDs(s, msgs, all, true); err != nil {
		return nil, err
	}
	return msgs, nil
}

// errUIDLUnreadable is a UIDL listing the client could not read, which
// broke the session: the next asks for each message's UIDL on its own.
var errUIDLUnreadable = errors.New("unreadable UIDL listing")

// pop3UIDLEach asks for the UIDL of each message on its own ("UIDL n"),
// leaving out those the server gives none, or one the client cannot read.
func (r *run) pop3UIDLEach(s *pop3Session, msgs []pop3Msg) ([]pop3client.MessageUID, error) {
	var out []pop3client.MessageUID
	for _, m := range msgs {
		var id string
		err := s.do(func() error { var err error; id, err = s.c.UIDLOne(m.n); return err })
		var pe *pop3client.Error
		switch {
		case err == nil:
			out = append(out, pop3client.MessageUID{Number: m.n, UID: id})
		case errors.As(err, &pe), errors.Is(err, pop3client.ErrProtocol):
			r.log.Debug("no UIDL for a message", "n", m.n, "err", err)
		default:
			return nil, fmt.Errorf("UIDL %d: %w", m.n, err)
		}
	}
	return out, nil
}

// pop3Unnamed settles the messages at the indexes given that the server
// gives no UIDL (RFC 1939 7 wants one for each): in delete mode they are
// known by their header, as on a server without UIDL; otherwise they are
// left alone.
func (r *run) pop3Unnamed(s *pop3Session, msgs []pop3Msg, which []int) error {
	if r.a.Mode == ModeDelete {
		r.log.Warn("the server gives some messages no UIDL (RFC 1939 7 wants one for each); they are recognised by a hash of their header",
			"messages", len(which))
		return r.pop3HeaderIDs(s, msgs, which, false)
	}
	for _, i := range which {
		msgs[i].ambiguous = true
		r.log.Warn(`the server gives a message no UIDL (RFC 1939 7 wants one for each), which mode = "keep" needs to know whether it was fetched; it stays on the server`,
			"n", msgs[i].n)
	}
	return nil
}

// pop3HeaderIDs gives the messages at the indexes of which an identity
// from the hash of their header (TOP n 0) and size: "hdr:<hash>", after
// their UIDL and a space when they have one (a UIDL has no spaces, RFC
// 1939 7, so no other message's UIDL can be the same; a server that breaks
// that rule too would have to give a message this very id), and "#2",
// "#3" after the second and later with the same. A message that TOP
// cannot read is marked ambiguous; on a server without UIDL (noUIDL) that
// ends the listing.
func (r *run) pop3HeaderIDs(s *pop3Session, msgs []pop3Msg, which []int, noUIDL bool) error {
	seen := map[string]int{}
	for _, i := range which {
		m := &msgs[i]
		h := sha256.New()
		err := s.do(func() error { _, err := s.c.Top(m.n, 0, h); return err })
		var pe *pop3client.Error
		switch {
		case err == nil:
		case noUIDL:
			return fmt.Errorf("the server lacks both UIDL and TOP; cannot tell messages apart safely: %w", err)
		case errors.As(err, &pe):
			r.log.Warn("a message has no UIDL of its own and TOP cannot tell it apart; it stays on the server",
				"n", m.n, "uidl", m.id, "err", err)
			m.ambiguous = true
			continue
		default:
			return fmt.Errorf("TOP %d: %w", m.n, err)
		}
		fmt.Fprintf(h, "\x00%d", m.size)
		id := "hdr:" + hex.EncodeToString(h.Sum(nil))[:32]
		if m.id != "" {
			id = m.id + " " + id
		}
		seen[id]++
		if seen[id] > 1 {
			id += fmt.Sprintf("#%d", seen[id])
		}
		m.id = id
	}
	return nil
}
