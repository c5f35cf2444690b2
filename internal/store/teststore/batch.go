package teststore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync/atomic"

	"github.com/buzon-mail/buzon/internal/store"
)

// Batching wraps a store so that every session is a store.BodyBatcher,
// and so that the protocol suites exercise reading ahead over both
// backends: the store's own OpenBodies where it has one (PostgreSQL),
// else one made of OpenBody calls that reads whole the bodies of up to
// 1 MiB within the budget, as store/postgres does. It counts the calls and
// the bodies left open.
type Batching struct {
	store.Store
	// OpenBodyCalls and OpenBodiesCalls count the sessions' calls.
	OpenBodyCalls, OpenBodiesCalls atomic.Int32
	// Unclosed counts the bodies opened and not yet closed; ClosedTwice, the
	// bodies closed more than once.
	Unclosed, ClosedTwice atomic.Int32
}

// BatchBodies wraps st.
func BatchBodies(st store.Store) *Batching { return &Batching{Store: st} }

// Open implements store.Store.
func (s *Batching) Open(ctx context.Context, id int64) (store.Session, error) {
	sess, err := s.Store.Open(ctx, id)
	if err != nil {
		return nil, err
	}
	return &batchSession{Session: sess, s: s}, nil
}

type batchSession struct {
	store.Session
	s *Batching
}

var _ store.BodyBatcher = (*batchSession)(nil)

func (ss *batchSession) OpenBody(ctx context.Context, mailboxID int64, uid store.UID) (store.Body, error) {
	ss.s.OpenBodyCalls.Add(1)
	b, err := ss.Session.OpenBody(ctx, mailboxID, uid)
	if err != nil {
		return nil, err
	}
	return ss.s.track(b), nil
}

func (ss *batchSession) OpenBodies(ctx context.Context, mailboxID int64, uids []store.UID, maxBytes int64) ([]store.Body, error) {
	ss.s.OpenBodiesCalls.Add(1)
	var bodies []store.Body
	if bb, ok := ss.Session.(store.BodyBatcher); ok {
		var err error
		if bodies, err = bb.OpenBodies(ctx, mailboxID, uids, maxBytes); err != nil {
			return nil, err
		}
	} else {
		var err error
		if bodies, err = ss.openEach(ctx, mailboxID, uids, maxBytes); err != nil {
			return nil, err
		}
	}
	for i, b := range bodies {
		if b != nil {
			bodies[i] = ss.s.track(b)
		}
	}
	return bodies, nil
}

// openEach is OpenBodies made of OpenBody calls.
func (ss *batchSession) openEach(ctx context.Context, mailboxID int64, uids []store.UID, maxBytes int64) ([]store.Body, error) {
	bodies := make([]store.Body, len(uids))
	for i, uid := range uids {
		b, err := ss.Session.OpenBody(ctx, mailboxID, uid)
		if errors.Is(err, store.ErrNoMessage) {
			continue
		}
		if err != nil {
			return nil, err
		}
		size := b.Size()
		if size > 1<<20 {
			b.Close()
			continue
		}
		if maxBytes -= size; maxBytes < 0 {
			b.Close()
			break
		}
		data := make([]byte, size)
		_, err = b.ReadAt(data, 0)
		b.Close()
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		bodies[i] = memBody{bytes.NewReader(data)}
	}
	return bodies, nil
}

// memBody is a body read whole.
type memBody struct{ *bytes.Reader }

func (memBody) Close() error { return nil }

func (s *Batching) track(b store.Body) store.Body {
	s.Unclosed.Add(1)
	return &trackedBody{Body: b, s: s}
}

type trackedBody struct {
	store.Body
	s      *Batching
	closed atomic.Bool
}

func (b *trackedBody) Close() error {
	if b.closed.Swap(true) {
		b.s.ClosedTwice.Add(1)
	} else {
		b.s.Unclosed.Add(-1)
	}
	return b.Body.Close()
}
