package imapserver

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/buzon-mail/buzon/internal/store"
)

// feed is the change feed of one mailbox, shared by every session of the
// server that has it selected. When a delivery wakes ten thousand IDLE
// sessions of a few mailboxes, the sessions of one mailbox, all at the
// same MODSEQ, ask the store once between them instead of once each.
type feed struct {
	mailbox int64
	refs    int            // guarded by Server.mu; sessions that hold the feed
	wakes   *atomic.Uint64 // Server.wakes

	mu sync.Mutex
	// reading is closed when the read in flight ends; nil when none is.
	reading chan struct{} // guarded by mu
	// last is the latest change set read, from MODSEQ since, by a read
	// that began when Server.wakes was readAt; nil before the first. One
	// read from below forgotten expunges holds every UID of the mailbox
	// (store.ChangeSet.Present) until the next read replaces it.
	since  store.ModSeq     // guarded by mu
	last   *store.ChangeSet // guarded by mu
	readAt uint64           // guarded by mu
}

// changes returns what changed in the mailbox after since, from a read
// new enough for the caller: one that found the mailbox's highest MODSEQ
// at need or above (the caller saw need), or, when wake is not 0, one
// that began after the wake-up numbered wake (see Server.wakes; the
// change that caused it was committed before). The result is shared:
// callers must not modify it.
func (f *feed) changes(ctx context.Context, sess store.Session, since, need store.ModSeq, wake uint64) (*store.ChangeSet, error) {
	for {
		f.mu.Lock()
		if cs := f.last; cs != nil && f.since == since &&
			(need > 0 && cs.HighestModSeq >= need || wake > 0 && f.readAt >= wake) {
			f.mu.Unlock()
			return cs, nil
		}
		if wait := f.reading; wait != nil {
			f.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		done := make(chan struct{})
		f.reading = done
		f.mu.Unlock()

		readAt := f.wakes.Load()
		cs, err := sess.Changes(ctx, f.mailbox, since)
		f.mu.Lock()
		f.reading = nil
		if err == nil {
			f.since, f.last, f.readAt = since, cs, readAt
		}
		f.mu.Unlock()
		close(done)
		return cs, err
	}
}

// feed returns the mailbox's feed, counting a reference; release it with
// releaseFeed.
func (s *Server) feed(mailboxID int64) *feed {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.feeds[mailboxID]
	if f == nil {
		f = &feed{mailbox: mailboxID, wakes: &s.wakes}
		s.feeds[mailboxID] = f
	}
	f.refs++
	return f
}

// releaseFeed drops a reference taken by feed; the last one forgets the
// feed.
func (s *Server) releaseFeed(f *feed) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f.refs--
	if f.refs == 0 {
		delete(s.feeds, f.mailbox)
	}
}
