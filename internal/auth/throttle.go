package auth

import (
	"net/netip"
	"sync"
	"time"
)

// throttle counts failed logins per client address and per account name and
// turns them into a growing delay and, past a threshold, a lockout. It is
// shared by every protocol, so guessing over IMAP and POP3 counts once.
type throttle struct {
	base, maxDelay time.Duration
	lockoutAfter   int
	window         time.Duration
	now            func() time.Time

	mu      sync.Mutex
	entries map[string]*failures // guarded by mu; key "ip:..." or "acct:..."
}

type failures struct {
	count int
	last  time.Time
}

// maxEntries bounds the memory an attacker can make the throttle use; past
// it, entries older than the window are swept, then the oldest half.
const maxEntries = 100_000

func newThrottle(base, maxDelay time.Duration, lockoutAfter int, window time.Duration) *throttle {
	return &throttle{base: base, maxDelay: maxDelay, lockoutAfter: lockoutAfter, window: window,
		now: time.Now, entries: map[string]*failures{}}
}

// ipKey groups IPv6 addresses by /64, the block one host usually has.
func ipKey(ip netip.Addr) string {
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return "ip:" + p.String()
	}
	return "ip:" + ip.String()
}

func acctKey(name string) string { return "acct:" + name }

// lockedOut reports whether any key has had too many recent failures.
func (t *throttle) lockedOut(keys ...string) bool {
	if t.lockoutAfter <= 0 {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	for _, k := range keys {
		if f := t.entries[k]; f != nil && now.Sub(f.last) < t.window && f.count >= t.lockoutAfter {
			return true
		}
	}
	return false
}

// failed records a failure for every key and returns the delay to wait
// before answering: base doubled per earlier failure of the worst key.
func (t *throttle) failed(keys ...string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	worst := 0
	for _, k := range keys {
		f := t.entries[k]
		if f == nil || now.Sub(f.last) >= t.window {
			f = &failures{}
			t.entries[k] = f
		}
		f.count++
		f.last = now
		worst = max(worst, f.count)
	}
	if len(t.entries) > maxEntries {
		t.sweepLocked(now)
	}
	d := t.base
	for i := 1; i < worst && d < t.maxDelay; i++ {
		d *= 2
	}
	return min(d, t.maxDelay)
}

// succeeded forgets the failures of a key (an account that logged in).
func (t *throttle) succeeded(key string) {
	t.mu.Lock()
	delete(t.entries, key)
	t.mu.Unlock()
}

func (t *throttle) sweepLocked(now time.Time) {
	for k, f := range t.entries {
		if now.Sub(f.last) >= t.window {
			delete(t.entries, k)
		}
	}
	// Still flooded (many addresses or names, each failing a little):
	// forget keys below the lockout threshold, never one that is locked
	// out, or a flood of fresh names would lift a lockout. Locked-out keys
	// are few: each costs an attacker lockoutAfter failures with growing
	// delays.
	for k, f := range t.entries {
		if len(t.entries) <= maxEntries/2 {
			return
		}
		if t.lockoutAfter <= 0 || f.count < t.lockoutAfter {
			delete(t.entries, k)
		}
	}
}
