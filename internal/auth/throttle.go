package auth

import (
	"container/list"
	"net/netip"
	"sync"
	"time"
)

// throttle counts failed logins per client address and per account name and
// turns them into a growing delay and, past a threshold, a lockout. It is
// shared by every protocol, so guessing over IMAP and POP3 counts once.
//
// It also remembers the addresses each account logged in from lately
// (known), and spares them the account's lockout: otherwise anyone who
// knows a name could lock its owner out of their usual devices. Failures
// from such an address count as any other, and its own lockout still
// applies.
type throttle struct {
	base, maxDelay time.Duration
	lockoutAfter   int
	window         time.Duration
	now            func() time.Time

	mu      sync.Mutex
	entries map[string]*failures // guarded by mu; key "ip:..." or "acct:..."
	known   knownAddrs           // guarded by mu
}

type failures struct {
	count int
	last  time.Time
}

// maxEntries bounds the memory an attacker can make the throttle use; past
// it, entries older than the window are swept, then the oldest half.
const maxEntries = 100_000

// Bounds of the known addresses. An address is known for knownFor after
// the account last logged in from it, long enough to cover a device used
// once a month. Each account keeps its knownPerAccount most recent ones (a
// phone changes address often; home and work come back), and all accounts
// together maxKnown, beyond which the accounts that logged in least
// recently are forgotten.
const (
	knownFor        = 30 * 24 * time.Hour
	knownPerAccount = 16
	maxKnown        = 100_000
)

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

// lockedOut reports whether a login to the account name from remote is
// refused: the address has had too many recent failures, or the account
// has and did not log in from this address within knownFor.
func (t *throttle) lockedOut(remote netip.Addr, name string) bool {
	if t.lockoutAfter <= 0 {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	ip := ipKey(remote)
	return t.lockedOutLocked(ip, now) || (t.lockedOutLocked(acctKey(name), now) && !t.known.has(name, ip, now))
}

func (t *throttle) lockedOutLocked(key string, now time.Time) bool {
	f := t.entries[key]
	return f != nil && now.Sub(f.last) < t.window && f.count >= t.lockoutAfter
}

// failed records a failed login to name from remote and returns the delay
// to wait before answering: base doubled per earlier failure of the
// address or the account, whichever has more.
func (t *throttle) failed(remote netip.Addr, name string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	worst := 0
	for _, k := range []string{ipKey(remote), acctKey(name)} {
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

// succeeded records a good login to name from remote: the address becomes
// known for the account. The account's failures are not forgotten: its
// owner logs in often, through a lockout from a known address, and each
// time would give a guesser elsewhere a fresh count. They age out with the
// window instead.
func (t *throttle) succeeded(remote netip.Addr, name string) {
	if t.lockoutAfter <= 0 {
		return // nothing to spare anyone
	}
	t.mu.Lock()
	t.known.add(name, ipKey(remote), t.now())
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

// knownAddrs remembers, per account, the addresses (ipKey) it logged in
// from within knownFor, at most knownPerAccount each and maxKnown in all.
// Only a good login adds one, so a flood of failures cannot grow it, and
// a name without an account never has one. Its user holds the lock.
type knownAddrs struct {
	accounts map[string]*list.Element // account name to its knownAccount in lru
	lru      list.List                // *knownAccount, the latest login at the front
	n        int                      // addresses held, over all accounts
}

type knownAccount struct {
	name  string
	addrs []knownAddr // the latest login last
}

type knownAddr struct {
	ip   string
	last time.Time
}

// has reports whether the account logged in from ip within knownFor.
func (k *knownAddrs) has(name, ip string, now time.Time) bool {
	e := k.accounts[name]
	if e == nil {
		return false
	}
	for _, a := range e.Value.(*knownAccount).addrs {
		if a.ip == ip {
			return now.Sub(a.last) < knownFor
		}
	}
	return false
}

// add records a login to the account from ip at now.
func (k *knownAddrs) add(name, ip string, now time.Time) {
	if k.accounts == nil {
		k.accounts = map[string]*list.Element{}
	}
	var acct *knownAccount
	if e := k.accounts[name]; e != nil {
		k.lru.MoveToFront(e)
		acct = e.Value.(*knownAccount)
	} else {
		acct = &knownAccount{name: name}
		k.accounts[name] = k.lru.PushFront(acct)
	}
	// Drop this address's old entry and any that expired, and the oldest
	// if still full, then add it as the latest.
	kept := acct.addrs[:0]
	for _, a := range acct.addrs {
		if a.ip != ip && now.Sub(a.last) < knownFor {
			kept = append(kept, a)
		}
	}
	if len(kept) == knownPerAccount {
		kept = kept[:copy(kept, kept[1:])]
	}
	clear(acct.addrs[len(kept):]) // let the strings dropped go
	kept = append(kept, knownAddr{ip: ip, last: now})
	k.n += len(kept) - len(acct.addrs)
	acct.addrs = kept
	for k.n > maxKnown {
		oldest := k.lru.Remove(k.lru.Back()).(*knownAccount)
		delete(k.accounts, oldest.name)
		k.n -= len(oldest.addrs)
	}
}
