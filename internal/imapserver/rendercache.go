package imapserver

import (
	"bufio"
	"bytes"
	"container/list"
	"sync"

	"github.com/buzon-mail/buzon/internal/store"
)

// renderCache keeps the ENVELOPE, BODYSTRUCTURE and BODY items of recently
// fetched messages as they were written, so that a client syncing a
// mailbox again costs neither decoding structures nor formatting them
// (Dovecot keeps the same in its index cache file). A stored message never
// changes and its UID is never reused in a mailbox, whose ID is never
// reused either, so an entry never goes stale: the least recently used go
// when the cache is full. Safe for concurrent use.
type renderCache struct {
	max int64 // bytes

	mu   sync.Mutex
	size int64                       // guarded by mu; bytes held
	lru  list.List                   // guarded by mu; of *renderEntry, most recent first
	m    map[renderKey]*list.Element // guarded by mu
}

// renderKey names one rendered item. utf8 is the writer's mode: it
// decides between quoted strings and literals.
type renderKey struct {
	mailbox int64
	uid     store.UID
	item    renderItem
	utf8    bool
}

type renderItem uint8

const (
	renderEnvelope renderItem = iota
	renderBodyStructure
	renderBody // BODY, the non-extensible BODYSTRUCTURE
)

type renderEntry struct {
	key renderKey
	b   []byte
}

// entryOverhead approximates the memory of an entry beyond its bytes.
const entryOverhead = 128

func newRenderCache(max int64) *renderCache {
	return &renderCache{max: max, m: map[renderKey]*list.Element{}}
}

func (rc *renderCache) get(k renderKey) ([]byte, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	e := rc.m[k]
	if e == nil {
		return nil, false
	}
	rc.lru.MoveToFront(e)
	return e.Value.(*renderEntry).b, true
}

func (rc *renderCache) put(k renderKey, b []byte) {
	n := int64(len(b)) + entryOverhead
	if n > rc.max/64 {
		return // a huge structure would push out many ordinary ones
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if _, ok := rc.m[k]; ok {
		return
	}
	rc.m[k] = rc.lru.PushFront(&renderEntry{key: k, b: b})
	rc.size += n
	for rc.size > rc.max {
		last := rc.lru.Back()
		old := rc.lru.Remove(last).(*renderEntry)
		delete(rc.m, old.key)
		rc.size -= int64(len(old.b)) + entryOverhead
	}
}

// renderedSize is what the items of a message take in the cache, about.
const renderedSize = 1024

// fits reports whether a FETCH of n messages should use the cache: one of
// more than half of what the cache holds would only push out everything
// else, and find nothing of its own on the next pass.
func (rc *renderCache) fits(n int) bool {
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
	k := renderKey{mailbox: c.sel.mb.ID, uid: uid, item: item, utf8: c.w.utf8}
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
	rc.put(k, b)
}
