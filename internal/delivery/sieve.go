package delivery

import (
	"container/list"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/buzon-mail/buzon/internal/sieve"
	"github.com/buzon-mail/buzon/internal/store"
)

// Envelope is the SMTP envelope of a delivery, which the account's Sieve
// script may test (RFC 5228 5.4).
type Envelope struct {
	// From is MAIL FROM's reverse path without its angle brackets, ""
	// for the null sender <>.
	From string
	// To is the recipient address as RCPT TO or `buzon deliver` named
	// it, +detail included (RFC 5233).
	To string
}

// maxCachedScripts bounds the compiled scripts a Deliverer keeps. A
// compiled script is a few times its source, which ManageSieve keeps under
// sieve.max_script_size (64 KiB by default): at most a few tens of MiB.
const maxCachedScripts = 128

// maxCachedVersions bounds the script versions whose hash a Deliverer
// remembers: some bytes each, so many more than the compiled scripts,
// which accounts with the same script share.
const maxCachedVersions = 4096

// scriptVersion names a version of an account's active script without its
// text (store.Session.ActiveSieveScriptInfo): a script put or renamed
// gets a new Modified, and its Size is checked too.
type scriptVersion struct {
	account, name string
	size          int64
	modified      int64 // Unix microseconds, as precise as both stores
}

func versionOf(account string, sc store.SieveScript) scriptVersion {
	return scriptVersion{account, sc.Name, sc.Size, sc.Modified.UnixMicro()}
}

// scriptCache keeps compiled scripts by the SHA-256 of their source, the
// least recently used going first: a busy account compiles its script
// once, not per message, and accounts that share a script share one
// compiled copy. A script that does not compile is kept too, with its
// error, so that it is not compiled again for every message. A changed
// script has another hash, so nothing is ever stale.
//
// It also remembers the hash of each script version it compiled, so that
// a delivery that knows the version (name, size, modified) finds the
// compiled script without reading the text or hashing it; a new version
// is a new key. The zero value is ready to use.
type scriptCache struct {
	mu        sync.Mutex
	byHash    map[[sha256.Size]byte]*list.Element // guarded by mu
	recency   list.List                           // of *compiledScript, most recent first; guarded by mu
	byVersion map[scriptVersion][sha256.Size]byte // guarded by mu
}

type compiledScript struct {
	hash   [sha256.Size]byte
	script *sieve.Script
	err    error
}

// lookup returns the compiled script of a version compiled before, if
// it is still cached.
func (c *scriptCache) lookup(v scriptVersion) (cs *compiledScript, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	hash, ok := c.byVersion[v]
	if !ok {
		return nil, false
	}
	e, ok := c.byHash[hash]
	if !ok {
		delete(c.byVersion, v) // its script was evicted
		return nil, false
	}
	c.recency.MoveToFront(e)
	return e.Value.(*compiledScript), true
}

// rememberLocked records that version v's source has that hash; the
// caller holds mu.
func (c *scriptCache) rememberLocked(v scriptVersion, hash [sha256.Size]byte) {
	if c.byVersion == nil {
		c.byVersion = map[scriptVersion][sha256.Size]byte{}
	}
	if _, ok := c.byVersion[v]; !ok && len(c.byVersion) >= maxCachedVersions {
		for old := range c.byVersion { // any one: a miss costs a read and a hash
			delete(c.byVersion, old)
			break
		}
	}
	c.byVersion[v] = hash
}

// compile returns the compiled script for src, version v, compiling it if
// the cache does not have it. Two deliveries may compile the same script
// at once; that costs a compile, not a wrong answer.
func (c *scriptCache) compile(v scriptVersion, src []byte, opts sieve.Options) (*sieve.Script, error) {
	hash := sha256.Sum256(src)
	c.mu.Lock()
	if e, ok := c.byHash[hash]; ok {
		c.recency.MoveToFront(e)
		c.rememberLocked(v, hash)
		cs := e.Value.(*compiledScript)
		c.mu.Unlock()
		return cs.script, cs.err
	}
	c.mu.Unlock()

	script, err := sieve.CompileWith(src, opts)

	c.mu.Lock()
	defer c.mu.Unlock()
	c.rememberLocked(v, hash)
	if c.byHash == nil {
		c.byHash = map[[sha256.Size]byte]*list.Element{}
	}
	if _, ok := c.byHash[hash]; !ok {
		c.byHash[hash] = c.recency.PushFront(&compiledScript{hash: hash, script: script, err: err})
		for c.recency.Len() > maxCachedScripts {
			old := c.recency.Remove(c.recency.Back()).(*compiledScript)
			delete(c.byHash, old.hash)
		}
	}
	return script, err
}

// len is the number of scripts cached.
func (c *scriptCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.recency.Len()
}

// sessionEnv answers a script's questions about its account through the
// delivery's session.
type sessionEnv struct{ sess store.Session }

// MailboxExists implements sieve.Environment.
func (e sessionEnv) MailboxExists(ctx context.Context, name string) (bool, error) {
	_, err := e.sess.Mailbox(ctx, store.CanonicalMailboxName(name))
	switch {
	case errors.Is(err, store.ErrNoMailbox), errors.Is(err, store.ErrInvalidName):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// decision is what a delivery does with a message: the copies to store,
// none when the script discarded it, and the script that decided, if any.
type decision struct {
	script  string // the active script's name, "" when none ran
	actions []sieve.Action
}

// keepOnly is the decision without a script: one copy where mail goes.
func keepOnly() []sieve.Action { return []sieve.Action{{Kind: sieve.Keep}} }

// decide runs the account's active Sieve script on msg. Without an active
// script the message is kept. A script that does not compile or fails as
// it runs keeps the message too, with a warning in the log naming the
// account and the script (RFC 5228 2.10.6): a script never loses a
// message. Only a failure to read the script (the store unavailable) is
// an error, which the protocol answers as a temporary failure.
//
// Which script is active, and its version, comes from
// ActiveSieveScriptInfo, which for a session opened at or after
// notBefore costs no read of its own on PostgreSQL; the text is read
// only for a version the cache has not compiled.
func (d *Deliverer) decide(ctx context.Context, sess store.Session, notBefore time.Time, account string, msg *Spooled, env Envelope) (decision, error) {
	sc, err := sess.ActiveSieveScriptInfo(ctx, notBefore)
	if errors.Is(err, store.ErrNoSieveScript) {
		return decision{actions: keepOnly()}, nil
	}
	if err != nil {
		return decision{}, fmt.Errorf("deliver to %s: read the sieve script: %w", account, err)
	}
	var script *sieve.Script
	cs, ok := d.scripts.lookup(versionOf(account, sc))
	if ok {
		script, err = cs.script, cs.err
	} else {
		sc, err = sess.ActiveSieveScript(ctx)
		if errors.Is(err, store.ErrNoSieveScript) { // made inactive meanwhile
			return decision{actions: keepOnly()}, nil
		}
		if err != nil {
			return decision{}, fmt.Errorf("deliver to %s: read the sieve script: %w", account, err)
		}
		script, err = d.scripts.compile(versionOf(account, sc), sc.Content, d.sieveOptions())
	}
	dec := decision{script: sc.Name, actions: keepOnly()}
	fail := func(what string, err error) (decision, error) {
		d.logger().Warn("sieve script "+what+"; message kept", "account", account, "script", sc.Name, "err", err)
		return dec, nil
	}
	if err != nil {
		return fail("does not compile", err)
	}
	header, err := msg.header()
	if err != nil {
		return decision{}, fmt.Errorf("deliver to %s: %w", account, err)
	}
	m := sieve.Message{
		Header: header,
		Size:   msg.Size(),
		Body:   func() (io.ReadCloser, error) { return io.NopCloser(msg.Reader()), nil },
	}
	actions, err := script.Execute(ctx, m, sieve.Envelope{From: env.From, To: env.To}, sessionEnv{sess})
	if err != nil {
		if ctx.Err() != nil {
			return decision{}, fmt.Errorf("deliver to %s: %w", account, ctx.Err())
		}
		return fail("failed", err)
	}
	if len(actions) > 0 {
		dec.actions = actions
	}
	return dec, nil
}

// target is a mailbox a copy goes to, with the flags it gets.
type target struct {
	mailbox store.Mailbox
	flags   store.Flags
}

// targets resolves the script's actions into mailboxes: a keep goes to
// keepTo (INBOX as a rule); a fileinto to the mailbox it names, created
// first (and its missing parents) when it asked so with :create (RFC 5490
// 3.2), else, when there is no such mailbox or the name is not one, to
// keepTo (RFC 5228 4.1 leaves the choice; keeping it loses nothing).
//
// A mailbox gets one copy however many actions land in it (RFC 5228
// 2.10.3), in the place of the first of them: :create if any fileinto of
// that name asked it, and the flags of the last of them, as Pigeonhole
// does. This is the one place actions are merged, since only here is it
// known which names are one mailbox and where a fileinto falls back to.
// Flags that are not IMAP flags are dropped with a warning.
func (d *Deliverer) targets(ctx context.Context, sess store.Session, account, keepTo string, dec decision) ([]target, error) {
	create := map[string]bool{} // by canonical name
	for _, a := range dec.actions {
		if a.Kind == sieve.FileInto && a.Create {
			create[store.CanonicalMailboxName(a.Mailbox)] = true
		}
	}
	var out []target
	add := func(mb store.Mailbox, flags store.Flags) {
		for i := range out {
			if out[i].mailbox.ID == mb.ID {
				out[i].flags = flags
				return
			}
		}
		out = append(out, target{mb, flags})
	}
	resolved := map[string]store.Mailbox{} // by the name as the script gave it; "" for keepTo
	mailbox := func(a sieve.Action) (store.Mailbox, error) {
		if mb, ok := resolved[a.Mailbox]; ok {
			return mb, nil
		}
		var mb store.Mailbox
		var err error
		if a.Mailbox != "" {
			a.Create = create[store.CanonicalMailboxName(a.Mailbox)]
			mb, err = d.fileIntoMailbox(ctx, sess, a)
			if store.IsTemporary(err) || ctx.Err() != nil {
				// Better to be tried again than filed where the script
				// did not ask: nothing is stored yet.
				return mb, fmt.Errorf("deliver: mailbox %q: %w", a.Mailbox, err)
			}
			if err != nil {
				d.logger().Info("sieve fileinto: mailbox not usable; message kept", "account", account, "script", dec.script,
					"mailbox", a.Mailbox, "kept in", keepTo, "err", err)
			}
		}
		if a.Mailbox == "" || err != nil {
			if mb, err = sess.Mailbox(ctx, keepTo); err != nil {
				return mb, fmt.Errorf("deliver: mailbox %s: %w", keepTo, err)
			}
		}
		resolved[a.Mailbox] = mb
		return mb, nil
	}
	for _, a := range dec.actions {
		switch a.Kind {
		case sieve.Keep:
			a.Mailbox = ""
		case sieve.Discard:
			continue // it comes alone; the caller saw to it
		}
		mb, err := mailbox(a)
		if err != nil {
			return nil, err
		}
		add(mb, d.flags(account, dec.script, a.Flags))
	}
	return out, nil
}

// fileIntoMailbox finds the mailbox a fileinto names, creating it and
// its missing parents for :create.
func (d *Deliverer) fileIntoMailbox(ctx context.Context, sess store.Session, a sieve.Action) (store.Mailbox, error) {
	name := store.CanonicalMailboxName(a.Mailbox)
	if err := store.ValidMailboxName(name); err != nil {
		return store.Mailbox{}, err
	}
	mb, err := sess.Mailbox(ctx, name)
	if !errors.Is(err, store.ErrNoMailbox) || !a.Create {
		return mb, err
	}
	// Parents first, as IMAP CREATE makes them (RFC 9051 6.3.4), so
	// that clients show the new folder where its name says.
	levels := strings.Split(name, string(store.HierarchyDelimiter))
	for i := range levels {
		path := strings.Join(levels[:i+1], string(store.HierarchyDelimiter))
		mb, err = sess.Mailbox(ctx, path)
		if errors.Is(err, store.ErrNoMailbox) {
			mb, err = sess.CreateMailbox(ctx, path, "")
			if errors.Is(err, store.ErrMailboxExists) { // made meanwhile by someone else
				mb, err = sess.Mailbox(ctx, path)
			}
		}
		if err != nil {
			return mb, err
		}
	}
	return mb, nil
}

// flags converts a script's flag names into store Flags, dropping (with
// a warning) those that are not IMAP flags: the script's checker lets any
// string through, and a stored message must not carry one IMAP cannot
// show.
func (d *Deliverer) flags(account, script string, names []string) store.Flags {
	var out store.Flags
	for _, n := range names {
		f, err := store.ParseFlags([]string{n})
		if err != nil {
			d.logger().Warn("sieve flag is not an IMAP flag; left out", "account", account, "script", script, "flag", n)
			continue
		}
		out = out.Apply(store.FlagsAdd, f)
	}
	return out
}
