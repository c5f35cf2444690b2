package imapserver

import (
	"bufio"
	"bytes"
	"container/list"
	"sync"

	"github.com/buzon-mail/buzon/internal/store"
)

// lru is a map that forgets its least recently used entries beyond max
// bytes, each entry's size given by whoever puts it. Safe for concurrent
// use.
type lru[K comparable, V any] struct {
	max int64

	mu   sync.Mutex
	size int64               // guarded by mu; bytes held
	l    list.List           // guarded by mu; of *lruEntry, most recent first
	m    map[K]*list.Element // guarded by mu
}

type lruEntry[K comparable, V any] struct {
	key  K
	val  V
	size int64
}

func newLRU[K comparable, V any](max int64) *lru[K, V] {
	return &lru[K, V]{max: max, m: map[K]*list.Element{}}
}

func (c *lru[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[k]
	if e == nil {
		var zero V
		return zero, false
	}
	c.l.MoveToFront(e)
	return e.Value.(*lruEntry[K, V]).val, true
}

// put adds an entry of about size bytes, unless it is one sixty-fourth
// of the whole or more: it would push out many ordinary ones.
func (c *lru[K, V]) put(k K, v V, size int64) {
	if size > c.max/64 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; ok {
		return
	}
	c.m[k] = c.l.PushFront(&lruEntry[K, V]{key: k, val: v, size: size})
	c.size += size
	for c.size > c.max {
		old := c.l.Remove(c.l.Back()).(*lruEntry[K, V])
		delete(c.m, old.key)
		c.size -= old.size
	}
}

// renderCache keeps the ENVELOPE, BODYSTRUCTURE and BODY items of recently
// fetched messages as they were written, so that a client syncing a
// mailbox again costs neither decoding structures nor formatting them
// (Dovecot keeps the same in its index cache file). A stored message never
// changes and its UID is never reused in a mailbox, whose ID is never
// reused either, so an entry never goes stale: the least recently used go
// when the cache is full.
type renderCache = lru[renderKey, []byte]

// renderKey names one rendered item. utf8 and rev2 are the session's
// modes, which change how items are written: utf8 decides between quoted
// strings and literals and how non-ASCII parameters are sent, rev2 whether
// message/global parts show what they hold.
type renderKey struct {
	mailbox int64
	uid     store.UID
	item    renderItem
	utf8    bool
	rev2    bool
}

type renderItem uint8

const (
	renderEnvelope renderItem = iota
	renderBodyStructure
	renderBody // BODY, the non-extensible BODYSTRUCTURE
)

// entryOverhead approximates the memory of an entry beyond its content.
const entryOverhead = 128

// renderedSize is what the items of a message take in the cache, about.
const renderedSize = 1024

// fitsCache reports whether a FETCH of n messages should use rc: one of
// more than half of what the cache holds would only push out everything
// else, and find nothing of its own on the next pass.
func fitsCache(rc *renderCache, n int) bool {
	return rc != nil && int64(n)*renderedSize <= rc.max/2
}

// writeRendered writes an item of message uid of the selected mailbox
// from the cache, or renders it with render and, with useCache, keeps a
// copy.
func (c *conn) writeRendered(useCache bool, item renderItem, uid store.UID, render func()) {
	rc := c.srv.rendered
	if !useCache {
		render()
		return
	}
	k := renderKey{mailbox: c.sel.mb.ID, uid: uid, item: item, utf8: c.w.utf8, rev2: c.rev2}
	if b, ok := rc.get(k); ok {
		c.w.bytes(b)
		return
	}
	// Render into a scratch buffer through a writer of the same mode.
	var buf bytes.Buffer
	out := c.w
	scratch := &writer{bw: bufio.NewWriterSize(&buf, 1024), utf8: out.utf8}
	c.w = scratch
	defer func() { c.w = out }()
	render()
	scratch.flush()
	c.w = out
	b := buf.Bytes()
	c.w.bytes(b)
	rc.put(k, b, int64(len(b))+entryOverhead)
}
