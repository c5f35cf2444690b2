package store

import (
	"container/list"
	"sync"
)

// UIDCache keeps the UID lists of recently read mailboxes, so that a
// backend's Snapshot of a large mailbox reads only what changed since the
// last one: the UIDs at or above the cached UIDNext, and the UIDs
// expunged after the cached MODSEQ. The backend checks the result against
// its own message count and reads the whole list when they disagree.
//
// Lists held here are never modified; Snapshot hands out copies. The cache
// holds at most a fixed number of UIDs in all, dropping the least recently
// used mailboxes first; each list is charged entryCost UIDs more than it
// holds, for its bookkeeping. It is safe for concurrent use.
type UIDCache struct {
	max int // UIDs in all, entryCost per list included

	mu      sync.Mutex
	byID    map[int64]*list.Element // guarded by mu; of *CachedUIDs
	lru     *list.List              // guarded by mu; most recent first
	holding int                     // guarded by mu; UIDs in all entries
}

// CachedUIDs is a mailbox's UID list as one read transaction saw it.
type CachedUIDs struct {
	MailboxID   int64
	UIDValidity uint32
	// UIDs lists every message, ascending; never modified.
	UIDs    []UID
	UIDNext UID
	// ModSeq is the mailbox's highest MODSEQ, expunges included.
	ModSeq ModSeq
}

// entryCost is what a list costs beyond its UIDs, counted in UIDs (about
// 200 bytes of map entry, list element and struct).
const entryCost = 50

// NewUIDCache returns a cache holding at most maxUIDs UIDs in all; with
// maxUIDs 0 it holds nothing.
func NewUIDCache(maxUIDs int) *UIDCache {
	return &UIDCache{max: maxUIDs, byID: map[int64]*list.Element{}, lru: list.New()}
}

// Get returns the cached list of a mailbox, or nil.
func (c *UIDCache) Get(mailboxID int64) *CachedUIDs {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.byID[mailboxID]
	if e == nil {
		return nil
	}
	c.lru.MoveToFront(e)
	return e.Value.(*CachedUIDs)
}

// Put caches u, unless the cache holds a list of the same mailbox read
// later (a concurrent Snapshot's), or u alone is over the limit.
func (c *UIDCache) Put(u *CachedUIDs) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.byID[u.MailboxID]; e != nil {
		old := e.Value.(*CachedUIDs)
		if old.UIDValidity == u.UIDValidity && old.ModSeq > u.ModSeq {
			return
		}
		c.removeLocked(e)
	}
	if len(u.UIDs)+entryCost > c.max {
		return
	}
	c.byID[u.MailboxID] = c.lru.PushFront(u)
	c.holding += len(u.UIDs) + entryCost
	for c.holding > c.max {
		c.removeLocked(c.lru.Back())
	}
}

func (c *UIDCache) removeLocked(e *list.Element) {
	u := c.lru.Remove(e).(*CachedUIDs)
	delete(c.byID, u.MailboxID)
	c.holding -= len(u.UIDs) + entryCost
}

// Remove drops a mailbox's list: one that no longer fits the mailbox.
func (c *UIDCache) Remove(mailboxID int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.byID[mailboxID]; e != nil {
		c.removeLocked(e)
	}
}

// Advance returns uids without the expunged ones and with the added ones
// after them: the list a cached one becomes. uids, expunged and added are
// ascending; an added UID not above the last one kept (which a mailbox
// whose UIDNEXT fell behind its messages could hold) is not added twice.
// The result is a new slice.
func Advance(uids, expunged, added []UID) []UID {
	out := make([]UID, 0, len(uids)+len(added))
	for _, u := range uids {
		for len(expunged) > 0 && expunged[0] < u {
			expunged = expunged[1:]
		}
		if len(expunged) > 0 && expunged[0] == u {
			continue
		}
		out = append(out, u)
	}
	for _, u := range added {
		if len(out) == 0 || u > out[len(out)-1] {
			out = append(out, u)
		}
	}
	return out
}
