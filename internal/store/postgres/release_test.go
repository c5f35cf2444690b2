package postgres

import (
	"sync/atomic"
	"testing"

	"github.com/buzon-mail/buzon/internal/store"
)

// TestAskRelease: a request for a lock reaches the other nodes' handlers,
// not the asker's own, and the holder's answer comes back; with no holder
// answering, the answer is NotHeld.
func TestAskRelease(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	ns := nodes(t, 3)
	asker, holder, bystander := ns[0], ns[1], ns[2]

	var askedSelf atomic.Int32
	defer asker.OnAskRelease(func(int64, string) store.ReleaseAnswer {
		askedSelf.Add(1)
		return store.Keeping
	})()
	answers := map[int64]store.ReleaseAnswer{7: store.Releasing, 8: store.Keeping}
	type request struct {
		account int64
		name    string
	}
	heard := make(chan request, 10)
	stopHolder := holder.OnAskRelease(func(account int64, name string) store.ReleaseAnswer {
		heard <- request{account, name}
		return answers[account]
	})
	defer bystander.OnAskRelease(func(int64, string) store.ReleaseAnswer { return store.NotHeld })()

	for _, tc := range []struct {
		account int64
		want    store.ReleaseAnswer
	}{
		{7, store.Releasing},
		{8, store.Keeping},
		{9, store.NotHeld}, // nobody holds it: no answer within answerWait
	} {
		got, err := asker.AskRelease(ctx, tc.account, "pop3 maildrop")
		if err != nil || got != tc.want {
			t.Errorf("AskRelease(%d) = %v, %v; want %v", tc.account, got, err, tc.want)
		}
		if r := <-heard; r != (request{tc.account, "pop3 maildrop"}) {
			t.Errorf("the holder heard %+v; want account %d, lock %q", r, tc.account, "pop3 maildrop")
		}
	}
	if n := askedSelf.Load(); n != 0 {
		t.Errorf("the asker's own handler was called %d times; a node does not answer itself", n)
	}

	stopHolder()
	if got, err := asker.AskRelease(ctx, 7, "pop3"); err != nil || got != store.NotHeld {
		t.Errorf("AskRelease after the holder's handler stopped = %v, %v; want NotHeld", got, err)
	}
}
