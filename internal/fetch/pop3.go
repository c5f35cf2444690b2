package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
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
	useSASL := c != nil && slices.ContainsFunc(c["SASL"], func(m string) bool { return m == "PLAIN" })
	err = s.do(func() error {
		if useSASL {
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
	case errors.As(err, &pe):
		return fmt.Errorf("%w: %s refused user %q: %s", ErrLogin, r.a.addr(), r.a.User, pe.Text)
	}
	return err
}

// pop3 runs one POP3 session: list, store what is new, mark what is to
// go, and QUIT, which is when the server deletes (RFC 1939 6).
func (r *run) pop3(ctx context.Context) error {
	var s *pop3Session
	for attempt := 1; ; attempt++ {
		var err error
		s, err = r.pop3Connect(ctx)
		if err == nil {
			break
		}
		// A session of ours that died (a crash, a dropped connection)
		// may hold the maildrop lock until the server notices.
		if !pop3client.HasCode(err, pop3client.CodeInUse) || attempt == inUseAttempts {
			return err
		}
		wait := time.Duration(attempt) * time.Second
		r.log.Info("the mailbox is in use; trying again", "in", wait)
		sleep(ctx, wait)
	}
	defer s.c.Close()
	stop := context.AfterFunc(ctx, func() { s.c.Close() })
	defer stop()

	msgs, err := r.pop3List(s)
	if err != nil {
		return err
	}
	fs := r.st.folder(pop3Folder)
	var newCount int
	var newBytes int64
	for _, m := range msgs {
		if m.ambiguous {
			continue
		}
		if e := fs.Messages[m.id]; e == nil || !e.stored() {
			newCount++
			newBytes += m.size
		}
	}
	r.prog.Start(newCount, newBytes)

	var deleted []string
	var stopErr error
	for _, m := range msgs {
		if ctx.Err() != nil {
			break
		}
		if m.ambiguous {
			r.sum.Failed++ // logged by pop3List
			continue
		}
		e := fs.Messages[m.id]
		storedBefore := e != nil && e.stored()
		stored, prev, err := r.recover(ctx, pop3Folder, m.id, e)
		if err != nil {
			stopErr = err
			break
		}
		if !stored {
			dl := newDownload(r.w.spooler)
			if err := s.do(func() error { _, err := s.c.Retr(m.n, dl); return err }); err != nil {
				dl.Close()
				var pe *pop3client.Error
				if errors.As(err, &pe) {
					// Refused (removed by another session, say); the
					// session goes on.
					r.sum.Failed++
					r.log.Warn("the server refused a message; it stays there", "id", m.id, "err", err)
					continue
				}
				return fmt.Errorf("RETR %d: %w", m.n, err)
			}
			msg, err := dl.message("pop3:" + m.id)
			if err != nil {
				return fmt.Errorf("RETR %d: %w", m.n, err)
			}
			err = r.deliver(ctx, pop3Folder, 0, m.id, "", msg, prev)
			msg.Close()
			if err != nil {
				if stopErr = r.failed(pop3Folder, m.id, err); stopErr != nil {
					break
				}
				continue
			}
		} else if storedBefore && !r.removable(fs.Messages[m.id]) {
			r.sum.Skipped++
		}
		if r.removable(fs.Messages[m.id]) {
			r.at("dele")
			err := s.do(func() error { return s.c.Dele(m.n) })
			var pe *pop3client.Error
			switch {
			case errors.As(err, &pe):
				// An error, so that a maildrop that never empties shows.
				r.sum.Failed++
				r.log.Warn("the server refused to delete a message; it stays there", "id", m.id, "err", err)
			case err != nil:
				return fmt.Errorf("DELE %d: %w", m.n, err)
			default:
				deleted = append(deleted, m.id)
			}
		}
	}
	if ctx.Err() != nil {
		// Shutting down: the connection is closed, the deletions marked
		// are not applied; the next run makes them.
		return ctx.Err()
	}
	r.at("quit")
	if err := s.do(s.c.Quit); err != nil {
		return fmt.Errorf("QUIT (the messages marked for deletion may still be on the server): %w", err)
	}
	r.sum.Deleted += len(deleted)
	if err := r.st.forget(pop3Folder, deleted); err != nil {
		return err
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
		return err
	}
	return stopErr
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
func (r *run) pop3List(s *pop3Session) ([]pop3Msg, error) {
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
	err := s.do(func() error { var err error; uidls, err = s.c.UIDL(); return err })
	var pe *pop3client.Error
	switch {
	case err == nil:
		byNumber := map[int]string{}
		for _, u := range uidls {
			byNumber[u.Number] = u.UID
		}
		holders := map[string]int{}
		for i := range msgs {
			id, ok := byNumber[msgs[i].n]
			if !ok {
				return nil, fmt.Errorf("UIDL lists no id for message %d", msgs[i].n)
			}
			msgs[i].id = id
			holders[id]++
		}
		var shared []int
		for i := range msgs {
			if holders[msgs[i].id] > 1 {
				shared = append(shared, i)
			}
		}
		if len(shared) > 0 {
			r.log.Warn("the server gives several messages the same UIDL (RFC 1939 7 wants them unique); they are told apart by a hash of their header",
				"messages", len(shared))
			if err := r.pop3HeaderIDs(s, msgs, shared); err != nil {
				return nil, err
			}
		}
		return msgs, nil
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
	if err := r.pop3HeaderIDs(s, msgs, all); err != nil {
		return nil, err
	}
	return msgs, nil
}

// pop3HeaderIDs gives the messages at the indexes of which an identity
// from the hash of their header (TOP n 0) and size: "hdr:<hash>", after
// their UIDL and a space when they have one (a UIDL has no spaces, RFC
// 1939 7, so no other message's UIDL can be the same; a server that breaks
// that rule too would have to give a message this very id), and "#2",
// "#3" after the second and later with the same. A message with a UIDL that
// TOP cannot read is marked ambiguous; without a UIDL that ends the
// listing.
func (r *run) pop3HeaderIDs(s *pop3Session, msgs []pop3Msg, which []int) error {
	seen := map[string]int{}
	for _, i := range which {
		m := &msgs[i]
		h := sha256.New()
		err := s.do(func() error { _, err := s.c.Top(m.n, 0, h); return err })
		var pe *pop3client.Error
		switch {
		case err == nil:
		case m.id == "":
			return fmt.Errorf("the server lacks both UIDL and TOP; cannot tell messages apart safely: %w", err)
		case errors.As(err, &pe):
			r.log.Warn("a message shares its UIDL with another and TOP cannot tell them apart; it stays on the server",
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
