package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// deliver: LMTP deliveries over connections kept open, one recipient per
// transaction, the users and the pool's messages in turn.
func (b *bench) deliver(ctx context.Context, warmup bool) (RunResult, error) {
	rec, elapsed, err := b.loop(ctx, warmup, func(i int) client { return &deliverClient{b: b, addr: nodeAddr(b.lmtpAddrs, i)} })
	if err != nil || warmup {
		return RunResult{}, err
	}
	return result(rec, elapsed,
		metric("messages/s", "1/s", perSecond(rec.ops, elapsed), true),
		metric("MB/s", "MB/s", mbPerSecond(rec.bytes, elapsed), true),
	), nil
}

type deliverClient struct {
	b    *bench
	addr string // the LMTP node this client delivers to
	conn *lmtpConn
}

func (c *deliverClient) step(ctx context.Context, rec *recorder) error {
	b := c.b
	if c.conn == nil {
		conn, err := dialLMTP(ctx, b.d, c.addr, b.cfg.Timeout)
		if err != nil {
			return fmt.Errorf("connect LMTP: %w", err)
		}
		c.conn = conn
	}
	k := b.next.Add(1) - 1
	msg := b.pool[k%uint64(len(b.pool))]
	rcpt := b.cfg.user(int(k % uint64(b.cfg.Users)))
	if err := timed(rec, "deliver", func() error { return c.conn.deliver(sender, []string{rcpt}, msg.data) }); err != nil {
		return err
	}
	rec.done(int64(len(msg.raw)))
	return nil
}

func (c *deliverClient) close() {
	if c.conn != nil {
		c.conn.quit()
	}
}

// userQueue hands out users to clients so that no two hold one at once (a
// POP3 server locks the maildrop for a session, RFC 1939 8; and a mail
// client does not sync one mailbox twice at once). A user given back goes
// to the end of the queue, so it is used again as late as possible.
type userQueue chan int

func newUserQueue(users int) userQueue {
	q := make(userQueue, users)
	for u := range users {
		q <- u
	}
	return q
}

// pop3Download: whole POP3 sessions, each downloading a user's mailbox
// with RETR.
func (b *bench) pop3Download(ctx context.Context, warmup bool) (RunResult, error) {
	q := newUserQueue(b.cfg.Users)
	rec, elapsed, err := b.loop(ctx, warmup, func(i int) client { return &pop3Client{b: b, addr: nodeAddr(b.pop3Addrs, i), users: q} })
	if err != nil || warmup {
		return RunResult{}, err
	}
	return result(rec, elapsed,
		metric("sessions/s", "1/s", perSecond(rec.ops, elapsed), true),
		metric("MB/s", "MB/s", mbPerSecond(rec.bytes, elapsed), true),
		metric("messages/s", "1/s", perSecond(rec.items, elapsed), true),
		metric("logins retried, maildrop in use", "", float64(rec.retries), false),
	), nil
}

type pop3Client struct {
	b     *bench
	addr  string // the POP3 node this client uses
	users userQueue
}

// inUseRetry is how long a client waits before it tries again a maildrop
// another session still holds: the server releases it only after its
// reply to QUIT (RFC 1939 6).
const inUseRetry = 2 * time.Millisecond

func (c *pop3Client) step(ctx context.Context, rec *recorder) error {
	b := c.b
	u := <-c.users
	defer func() { c.users <- u }()
	user := b.cfg.user(u)
	start := time.Now()
	var conn *pop3Conn
	for {
		var err error
		if conn, err = dialPOP3(ctx, b.d, c.addr, b.cfg.Timeout); err != nil {
			return fmt.Errorf("connect POP3: %w", err)
		}
		err = timed(rec, "login", func() error { return conn.login(user, b.cfg.Password) })
		if err == nil {
			break
		}
		conn.close()
		var pe *pop3Error
		if !errors.As(err, &pe) || !strings.Contains(pe.resp, "[IN-USE]") || time.Since(start) > b.cfg.Timeout {
			return fmt.Errorf("%s: %w", user, err)
		}
		rec.retried()
		select {
		case <-time.After(inUseRetry):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	defer conn.close()
	n, _, err := conn.stat()
	if err != nil {
		return fmt.Errorf("%s: %w", user, err)
	}
	var total int64
	for i := 1; i <= n; i++ {
		if err := timed(rec, "retr", func() error {
			size, err := conn.retr(i)
			total += size
			return err
		}); err != nil {
			return fmt.Errorf("%s: %w", user, err)
		}
	}
	if err := conn.quit(); err != nil {
		return fmt.Errorf("%s: %w", user, err)
	}
	rec.record("session", time.Since(start))
	rec.done(total)
	rec.addItems(int64(n))
	return nil
}

func (c *pop3Client) close() {}

// syncItems is what a client's first sync fetches for every message.
const syncItems = "(FLAGS UID RFC822.SIZE ENVELOPE BODYSTRUCTURE)"

// imapSync: sessions that sync a mailbox as a client does the first time
// and again later.
func (b *bench) imapSync(ctx context.Context, warmup bool) (RunResult, error) {
	q := newUserQueue(b.cfg.Users)
	rec, elapsed, err := b.loop(ctx, warmup, func(i int) client { return &syncClient{b: b, addr: nodeAddr(b.imapAddrs, i), users: q} })
	if err != nil || warmup {
		return RunResult{}, err
	}
	return result(rec, elapsed,
		metric("sessions/s", "1/s", perSecond(rec.ops, elapsed), true),
		metric("messages listed/s", "1/s", perSecond(rec.items, elapsed), true),
		metric("MB/s", "MB/s", mbPerSecond(rec.bytes, elapsed), true),
	), nil
}

type syncClient struct {
	b     *bench
	addr  string // the IMAP node this client uses
	users userQueue
}

// firstSync reports whether no session synced user u before, and marks it
// synced.
func (b *bench) firstSync(u int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	first := !b.synced[u]
	b.synced[u] = true
	return first
}

func (c *syncClient) step(ctx context.Context, rec *recorder) error {
	b := c.b
	u := <-c.users
	defer func() { c.users <- u }()
	user := b.cfg.user(u)
	first := b.firstSync(u)
	start := time.Now()
	conn, err := dialIMAP(ctx, b.d, c.addr, b.cfg.Timeout, 64*1024)
	if err != nil {
		return fmt.Errorf("connect IMAP: %w", err)
	}
	defer conn.close()
	if err := timed(rec, "login", func() error { return conn.login(user, b.cfg.Password) }); err != nil {
		return fmt.Errorf("%s: %w", user, err)
	}
	var n int
	if err := timed(rec, "select", func() (err error) { n, err = conn.selectMailbox("INBOX"); return err }); err != nil {
		return fmt.Errorf("%s: %w", user, err)
	}
	if n > 0 {
		if err := timed(rec, "fetch-all", func() error {
			got, _, err := conn.fetch("1:*", syncItems)
			if err == nil && got != n {
				err = fmt.Errorf("FETCH 1:* returned %d messages, SELECT said %d", got, n)
			}
			return err
		}); err != nil {
			return fmt.Errorf("%s: %w", user, err)
		}
		lo := max(1, n-b.cfg.NewestBodies+1)
		if err := timed(rec, "fetch-newest", func() error {
			got, size, err := conn.fetch(fmt.Sprintf("%d:%d", lo, n), "BODY.PEEK[]")
			if err == nil && (got != n-lo+1 || size == 0) {
				err = fmt.Errorf("FETCH %d:%d BODY.PEEK[] returned %d messages, %d bytes", lo, n, got, size)
			}
			return err
		}); err != nil {
			return fmt.Errorf("%s: %w", user, err)
		}
	}
	if err := timed(rec, "logout", conn.logout); err != nil {
		return fmt.Errorf("%s: %w", user, err)
	}
	if first {
		rec.record("first-sync", time.Since(start))
	} else {
		rec.record("resync", time.Since(start))
	}
	rec.done(conn.in)
	rec.addItems(int64(n))
	return nil
}

func (c *syncClient) close() {}

// imapMixed: each client keeps a session on its own user's INBOX and
// sends a weighted mix of commands, logging out and in again every
// cfg.SessionOps commands. APPEND and EXPUNGE balance: EXPUNGE removes
// what lies beyond the mailbox's size at the client's first SELECT.
func (b *bench) imapMixed(ctx context.Context, warmup bool) (RunResult, error) {
	rec, elapsed, err := b.loop(ctx, warmup, func(i int) client {
		return &mixedClient{b: b, addr: nodeAddr(b.imapAddrs, i), user: b.cfg.user(i % b.cfg.Users), target: -1,
			rng: newRNG(b.cfg.Seed, uint64(i), 0x6d6978)}
	})
	if err != nil || warmup {
		return RunResult{}, err
	}
	return result(rec, elapsed,
		metric("ops/s", "1/s", perSecond(rec.ops, elapsed), true),
	), nil
}

// mixWeights are the imap-mixed operations and their weights.
var mixWeights = []struct {
	op     string
	weight int
}{
	{"fetch", 30}, {"fetch-body", 15}, {"store", 20}, {"search", 10}, {"append", 10}, {"expunge", 10}, {"idle", 5},
}

type mixedClient struct {
	b      *bench
	addr   string // the IMAP node this client uses
	user   string
	rng    *rng
	conn   *imapConn
	ops    int // commands in this session
	target int // mailbox size EXPUNGE brings the mailbox back to; -1 before the first SELECT
}

func (c *mixedClient) step(ctx context.Context, rec *recorder) error {
	b := c.b
	if c.conn == nil {
		conn, err := dialIMAP(ctx, b.d, c.addr, b.cfg.Timeout, 64*1024)
		if err != nil {
			return fmt.Errorf("connect IMAP: %w", err)
		}
		c.conn, c.ops = conn, 0
		if err := timed(rec, "login", func() error { return conn.login(c.user, b.cfg.Password) }); err != nil {
			return fmt.Errorf("%s: %w", c.user, err)
		}
		if err := timed(rec, "select", func() error { _, err := conn.selectMailbox("INBOX"); return err }); err != nil {
			return fmt.Errorf("%s: %w", c.user, err)
		}
		if c.target < 0 {
			c.target = conn.exists
		}
		rec.done(0)
		rec.done(0)
		return nil
	}
	if c.ops >= b.cfg.SessionOps {
		err := timed(rec, "logout", c.conn.logout)
		c.conn = nil
		if err != nil {
			return fmt.Errorf("%s: %w", c.user, err)
		}
		rec.done(0)
		return nil
	}
	op, err := c.op(rec)
	if err != nil {
		return fmt.Errorf("%s %s: %w", c.user, op, err)
	}
	c.ops++
	rec.done(0)
	return nil
}

// op sends one command of the mix.
func (c *mixedClient) op(rec *recorder) (string, error) {
	conn, r := c.conn, c.rng
	w := r.intn(100)
	op := mixWeights[len(mixWeights)-1].op
	for _, m := range mixWeights {
		if w < m.weight {
			op = m.op
			break
		}
		w -= m.weight
	}
	n := conn.exists
	switch {
	case n == 0 && op != "search" && op != "idle":
		op = "append"
	case op == "expunge" && n <= c.target:
		op = "append"
	}
	seq := r.between(1, max(n, 1))
	var run func() error
	switch op {
	case "fetch":
		run = func() error {
			_, _, err := conn.fetch(fmt.Sprintf("%d:%d", max(1, seq-19), seq), "(UID FLAGS RFC822.SIZE ENVELOPE)")
			return err
		}
	case "fetch-body":
		run = func() error { _, _, err := conn.fetch(strconv.Itoa(seq), "BODY.PEEK[]"); return err }
	case "store":
		change := []string{`+FLAGS (\Seen)`, `-FLAGS (\Seen)`, `+FLAGS (\Flagged)`, `-FLAGS (\Flagged)`}[r.intn(4)]
		run = func() error { return conn.command("STORE", nil, "STORE %d %s", seq, change) }
	case "search":
		criteria := []string{"UNSEEN", "FLAGGED", `SUBJECT "meeting"`}[r.intn(3)]
		run = func() error { _, err := conn.search(criteria); return err }
	case "append":
		msg := c.b.pool[r.intn(len(c.b.pool))]
		run = func() error { return conn.appendMessage("INBOX", "", msg.raw) }
	case "expunge":
		run = func() error {
			if err := conn.command("STORE", nil, `STORE %d:* +FLAGS.SILENT (\Deleted)`, c.target+1); err != nil {
				return err
			}
			return conn.command("EXPUNGE", nil, "EXPUNGE")
		}
	case "idle":
		run = func() error {
			tag, err := conn.idle()
			if err != nil {
				return err
			}
			return conn.done(tag)
		}
	}
	return op, timed(rec, op, run)
}

func (c *mixedClient) close() {
	if c.conn != nil {
		c.conn.logout()
	}
}

// fill makes every user hold at least cfg.MailboxSize messages in INBOX,
// delivering the missing ones over LMTP: user number u's message i is
// always the same, so servers filled alike hold the same mail.
func (b *bench) fill(ctx context.Context, warmup bool) (RunResult, error) {
	if warmup {
		return RunResult{}, nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	gen := Generator{Seed: b.cfg.Seed, MinSize: b.cfg.MinSize, MaxSize: b.cfg.MaxSize}
	users := make(chan int)
	go func() {
		defer close(users)
		for u := range b.cfg.Users {
			select {
			case users <- u:
			case <-ctx.Done():
				return
			}
		}
	}()
	var delivered atomic.Int64
	recs := make([]*recorder, min(b.cfg.Concurrency, b.cfg.Users))
	start := time.Now()
	var wg sync.WaitGroup
	for w := range recs {
		recs[w] = newRecorder()
		wg.Go(func() {
			var conn *lmtpConn
			defer func() {
				if conn != nil {
					conn.quit()
				}
			}()
			for u := range users {
				user := b.cfg.user(u)
				have, err := b.mailboxSize(ctx, user)
				if err != nil {
					cancel(fmt.Errorf("%s: %w", user, err))
					return
				}
				for i := have + 1; i <= b.cfg.MailboxSize && ctx.Err() == nil; i++ {
					if conn == nil {
						if conn, err = dialLMTP(ctx, b.d, nodeAddr(b.lmtpAddrs, w), b.cfg.Timeout); err != nil {
							cancel(fmt.Errorf("connect LMTP: %w", err))
							return
						}
					}
					msg := gen.Message(b.cfg.FirstUser+u, i)
					data := dotStuff(msg)
					if err := timed(recs[w], "deliver", func() error { return conn.deliver(sender, []string{user}, data) }); err != nil {
						cancel(fmt.Errorf("message %d: %w", i, err))
						return
					}
					recs[w].done(int64(len(msg)))
					delivered.Add(1)
				}
			}
		})
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				b.cfg.Logger.Info("filling", "delivered", delivered.Load(), "elapsed", time.Since(start).Round(time.Second))
			}
		}
	}()
	wg.Wait()
	close(done)
	elapsed := time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return RunResult{}, err
	}
	rec := newRecorder()
	for _, r := range recs {
		rec.merge(r)
	}
	return result(rec, elapsed,
		metric("messages added", "", float64(rec.ops), true),
		metric("messages/s", "1/s", perSecond(rec.ops, elapsed), true),
		metric("MB/s", "MB/s", mbPerSecond(rec.bytes, elapsed), true),
	), nil
}

// mailboxSize returns the number of messages in a user's INBOX (STATUS,
// RFC 9051 6.3.11), as the first node sees it: the nodes of one server
// share its store.
func (b *bench) mailboxSize(ctx context.Context, user string) (int, error) {
	conn, err := dialIMAP(ctx, b.d, b.imapAddrs[0], b.cfg.Timeout, 4096)
	if err != nil {
		return 0, fmt.Errorf("connect IMAP: %w", err)
	}
	defer conn.close()
	if err := conn.login(user, b.cfg.Password); err != nil {
		return 0, err
	}
	n := -1
	err = conn.command("STATUS", func(line []byte) error {
		if !hasPrefixFold(line[2:], "STATUS ") {
			return nil
		}
		i := bytes.Index(bytes.ToUpper(line), []byte("MESSAGES "))
		if i < 0 {
			return nil
		}
		v, _, ok := leadingNumber(line[i+len("MESSAGES "):])
		if ok {
			n = v
		}
		return nil
	}, "STATUS INBOX (MESSAGES)")
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, fmt.Errorf("STATUS INBOX gave no MESSAGES count")
	}
	conn.logout()
	return n, nil
}
