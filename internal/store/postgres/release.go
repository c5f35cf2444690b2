package postgres

import (
	"context"
	"crypto/rand"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

// Requests to let go of a lock (store.ReleaseAsker) travel on a channel of
// their own, beside the change notifications, on the same LISTEN
// connection. Payloads, fields separated by single spaces:
//
//	ask NODE REQUEST ACCOUNT NAME   a node wants ACCOUNT's lock NAME
//	ans NODE REQUEST ANSWER         the answer to NODE's REQUEST
//
// NODE names the asking Store (random, made at Open), REQUEST numbers its
// requests, ANSWER is a store.ReleaseAnswer in decimal. Every node sees
// every payload, its own included, and drops what is not for it.
const releaseChannel = "buzon_release"

// answerWait is how long AskRelease waits for a holder to answer.
const answerWait = time.Second

// releases is a Store's side of the requests: its own waiting for
// answers, and the handlers that answer other nodes'.
type releases struct {
	node string // this Store's name in payloads

	mu       sync.Mutex
	next     uint64                              // guarded by mu; the next REQUEST
	pending  map[uint64]chan store.ReleaseAnswer // guarded by mu
	handlers map[*releaseHandler]struct{}        // guarded by mu
}

type releaseHandler struct {
	answer func(accountID int64, name string) store.ReleaseAnswer
}

func newReleases() *releases {
	return &releases{
		node:     rand.Text()[:16],
		pending:  map[uint64]chan store.ReleaseAnswer{},
		handlers: map[*releaseHandler]struct{}{},
	}
}

var _ store.ReleaseAsker = (*Store)(nil)

// AskRelease implements store.ReleaseAsker.
func (s *Store) AskRelease(ctx context.Context, accountID int64, name string) (store.ReleaseAnswer, error) {
	r := s.releases
	answers := make(chan store.ReleaseAnswer, 1)
	r.mu.Lock()
	id := r.next
	r.next++
	r.pending[id] = answers
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.pending, id)
		r.mu.Unlock()
	}()
	payload := fmt.Sprintf("ask %s %d %d %s", r.node, id, accountID, name)
	if _, err := s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, releaseChannel, payload); err != nil {
		return store.NotHeld, fmt.Errorf("ask for lock %q of account %d: %w", name, accountID, mapErr(err))
	}
	t := time.NewTimer(answerWait)
	defer t.Stop()
	select {
	case a := <-answers:
		return a, nil
	case <-t.C:
		return store.NotHeld, nil
	case <-ctx.Done():
		return store.NotHeld, ctx.Err()
	}
}

// OnAskRelease implements store.ReleaseAsker.
func (s *Store) OnAskRelease(answer func(accountID int64, name string) store.ReleaseAnswer) (stop func()) {
	h := &releaseHandler{answer}
	r := s.releases
	r.mu.Lock()
	r.handlers[h] = struct{}{}
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(r.handlers, h)
		r.mu.Unlock()
	}
}

// received handles a payload of releaseChannel; ctx is the listener's.
func (s *Store) received(ctx context.Context, payload string) {
	r := s.releases
	f := strings.SplitN(payload, " ", 5)
	switch {
	case len(f) == 5 && f[0] == "ask" && f[1] != r.node:
		id, err1 := strconv.ParseUint(f[2], 10, 64)
		account, err2 := strconv.ParseInt(f[3], 10, 64)
		if err1 != nil || err2 != nil {
			return
		}
		// Answering may end a session and sends a notification: not in
		// the listener's goroutine, which must go on receiving.
		go s.answer(ctx, f[1], id, account, f[4])
	case len(f) == 4 && f[0] == "ans" && f[1] == r.node:
		id, err1 := strconv.ParseUint(f[2], 10, 64)
		a, err2 := strconv.ParseUint(f[3], 10, 8)
		if err1 != nil || err2 != nil {
			return
		}
		r.mu.Lock()
		answers := r.pending[id]
		r.mu.Unlock()
		select {
		case answers <- store.ReleaseAnswer(a):
		default: // answered already, or nobody waits (nil)
		}
	}
}

// answer asks this Store's handlers about another node's request and
// sends the first answer other than NotHeld back.
func (s *Store) answer(ctx context.Context, node string, id uint64, accountID int64, name string) {
	r := s.releases
	r.mu.Lock()
	handlers := make([]*releaseHandler, 0, len(r.handlers))
	for h := range r.handlers {
		handlers = append(handlers, h)
	}
	r.mu.Unlock()
	a := store.NotHeld
	for _, h := range handlers {
		if a = h.answer(accountID, name); a != store.NotHeld {
			break
		}
	}
	if a == store.NotHeld {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, answerWait)
	defer cancel()
	payload := fmt.Sprintf("ans %s %d %d", node, id, a)
	if _, err := s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, releaseChannel, payload); err != nil && ctx.Err() == nil {
		s.log.Warn("postgres store: answer a request for a lock", "account", accountID, "lock", name, "err", err)
	}
}
