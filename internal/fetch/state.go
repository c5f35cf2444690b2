package fetch

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/buzon-mail/buzon/internal/durable"
)

// The state of an account lives in three files in the state folder:
//
//	<name>.state    snapshot: JSON, replaced atomically (temp file, fsync,
//	                rename, fsync of the folder)
//	<name>.journal  changes since the snapshot, one JSON record a line,
//	                each synced before the step it records is taken
//	<name>.lock     flock held while a process works on the account
//	<name>.state.<time>.old
//	                the state of the server account the account named
//	                before its server, port or user changed (see
//	                openState), kept for the person
//
// Records are appended and synced one at a time, and one that fails to be
// written or synced is cut off again, so a crash can tear at most the
// last line, which loading ignores (the step it would have recorded was
// never taken). At the end of each run the journal is folded into a new
// snapshot. The journal's first line names the generation of
// the snapshot it applies to; a journal left over from a crash between
// writing a new snapshot and truncating the journal names the old one and
// is ignored, so no record is ever applied twice.
//
// Per message the order is: record the intent (with where the message
// will go), store it at the destination, record it stored, and only then
// delete it on the server. A rerun finding an intent without "stored"
// asks the destination whether the copy exists (Destination.Has).

// stateVersion is the snapshot format.
const stateVersion = 1

// snapshot is the whole state of an account.
type snapshot struct {
	Version int `json:"version"`
	// Gen counts snapshots; the journal names the one it extends.
	Gen uint64 `json:"gen"`
	// Source is the server account the state is about (Account.source).
	Source string `json:"source"`
	// Folders maps an IMAP folder name ("" for POP3) to its state.
	Folders map[string]*folderState `json:"folders"`
}

// folderState is what was fetched from one folder.
type folderState struct {
	// UIDValidity of the IMAP folder the UIDs belong to; 0 for POP3.
	UIDValidity uint32 `json:"uidvalidity,omitempty"`
	// Messages maps a message's identity (POP3 UIDL, IMAP UID in decimal)
	// to what is known of it.
	Messages map[string]*entry `json:"messages"`
}

// entry is one message fetched, or being fetched.
type entry struct {
	// Stored is when the message was first stored here (what keep_days
	// counts from); zero while only the intent is recorded.
	Stored time.Time `json:"stored,omitzero"`
	// Intent is where the message is being stored, until it is.
	Intent *Ref `json:"intent,omitempty"`
	// FP identifies an IMAP message across a UIDVALIDITY change (see
	// fingerprint).
	FP string `json:"fp,omitempty"`
	// Size is the size a POP3 server's LIST gave the message when its
	// intent was recorded: a message listed under the same UIDL with
	// another size is another message (see pop3Reused). 0 for IMAP, and
	// for messages recorded before buzon kept it: unknown, taken to match.
	Size int64 `json:"size,omitempty"`
	// Copied is set on an IMAP message copied to move_to on a server
	// without MOVE, until it is expunged: it is not copied again.
	Copied bool `json:"copied,omitempty"`
	// Failed is why the last attempt to store the message, after its
	// intent, failed: the next attempt says so rather than speak of an
	// interrupted one.
	Failed string `json:"failed,omitempty"`
	// SeenDue is set on an IMAP message stored for an account with
	// mark_seen until the server has it \Seen: a run that stopped before
	// it set the flag leaves it to the next.
	SeenDue bool `json:"seen_due,omitempty"`
}

func (e *entry) stored() bool { return !e.Stored.IsZero() }

// Ref is where a message went at its destination, recorded before it is
// written, so that a run after a crash can tell whether it got there.
type Ref struct {
	// Name is the Maildir file name.
	Name string `json:"name,omitempty"`
	// Offset is where the message starts in the mbox file, or 0.
	Offset int64 `json:"offset,omitempty"`
	// Length is the bytes written to the mbox file, or the size of the
	// message in the store.
	Length int64 `json:"length,omitempty"`
	// SHA256 is the hash of those bytes, in hex.
	SHA256 string `json:"sha256,omitempty"`
	// FromLine is the mbox From_ line, without its LF.
	FromLine string `json:"from,omitempty"`
	// UIDValidity and UIDNext are the store mailbox's before the append:
	// the message, if stored, has a UID at least UIDNext.
	UIDValidity uint32 `json:"uidvalidity,omitempty"`
	UIDNext     uint32 `json:"uidnext,omitempty"`
}

// record is one line of the journal.
type record struct {
	// Op is "gen" (the first line), "intent", "stored", "failed",
	// "copied", "seen" or "forget".
	Op     string    `json:"op"`
	Gen    uint64    `json:"gen,omitempty"`
	Folder string    `json:"f,omitempty"`
	ID     string    `json:"id,omitempty"`
	Ref    *Ref      `json:"ref,omitempty"`
	FP     string    `json:"fp,omitempty"`
	At     time.Time `json:"at,omitzero"`
	// UIDValidity is the folder's, with "intent".
	UIDValidity uint32 `json:"uv,omitempty"`
	// Size is the POP3 LIST size, with "intent".
	Size int64 `json:"size,omitempty"`
	// Err is why an attempt failed, with "failed".
	Err string `json:"err,omitempty"`
	// SeenDue, with "stored", says \Seen is to be set on the server.
	SeenDue bool `json:"seen_due,omitempty"`
}

// state is an account's state, open for one run (or a daemon's runs).
// Not safe for concurrent use.
type state struct {
	dir, name string
	lock      *os.File    // flock held while open
	journal   journalFile // open for appending
	snap      snapshot
	// records counts journal lines since the snapshot.
	records int
	// size is the journal's length: where the next record starts.
	size int64
	// broken is set when the journal may end in part of a record (a
	// failed write that could not be cut off) or may not be of the
	// snapshot's generation (a compaction that stopped half-way):
	// nothing may be appended to it until a compaction starts a new one.
	broken bool
	// asideFrom and asidePath say, when openState set aside the state of
	// another server account, which one and where it went.
	asideFrom, asidePath string
	// writeFile, when set, replaces durable.WriteFile for the snapshot
	// (for tests).
	writeFile func(name string, data []byte, perm os.FileMode) error
}

// journalFile is the open journal: an *os.File, or in tests one that
// fails.
type journalFile interface {
	io.Writer
	Sync() error
	Truncate(size int64) error
	Close() error
}

var _ journalFile = (*os.File)(nil)

// openState locks an account's state and loads it. It fails at once if
// another process holds the account.
//
// A state about another server account (Account.source: the server, port
// or user changed) says nothing about this one: its POP3 UIDLs and IMAP
// UIDs would name other messages here, which would be skipped as fetched,
// or deleted without being downloaded. It is set aside, in a file next to
// the state for the person to keep or delete, and the account starts
// with an empty state: everything on the server is fetched as new, a
// duplicate at worst, never a loss. A source of "" takes the state as it
// is (for tests).
func openState(dir, name, source string) (*state, error) {
	if err := mkdirAll(dir, durable.SyncDir); err != nil {
		return nil, fmt.Errorf("state folder: %w", err)
	}
	s := &state{dir: dir, name: name}
	lock, err := os.OpenFile(s.path(".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("account %s is being fetched by another buzon fetch (%s)", name, s.path(".lock"))
		}
		return nil, fmt.Errorf("state lock: %w", err)
	}
	s.lock = lock
	if err := s.load(); err != nil {
		s.Close()
		return nil, err
	}
	if source != "" && s.snap.Source != source && s.snap.Source != "" && s.messages() > 0 {
		if err := s.setAside(); err != nil {
			s.Close()
			return nil, err
		}
	}
	if source != "" {
		s.snap.Source = source
	}
	// Fold whatever the journal holds into a fresh snapshot, so this run
	// starts with a journal of its own generation.
	if err := s.compact(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *state) path(ext string) string { return filepath.Join(s.dir, s.name+ext) }

// setAside writes the state, as loaded, to a file of its own and empties
// it. The state files are not touched: the compaction that follows
// replaces them, and a crash before it leaves the old state to be set
// aside again.
func (s *state) setAside() error {
	b, err := json.MarshalIndent(s.snap, "", "  ")
	if err != nil {
		return err
	}
	stamp := time.Now().UTC().Format("20060102T150405Z")
	path := s.path(".state." + stamp + ".old")
	for n := 2; ; n++ {
		if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
			break
		}
		path = s.path(fmt.Sprintf(".state.%s-%d.old", stamp, n))
	}
	if err := durable.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("setting aside the state of %s: %w", s.snap.Source, err)
	}
	s.asideFrom, s.asidePath = s.snap.Source, path
	s.snap.Folders = map[string]*folderState{}
	return nil
}

// load reads the snapshot and replays the journal of its generation.
func (s *state) load() error {
	s.snap = snapshot{Version: stateVersion, Folders: map[string]*folderState{}}
	b, err := os.ReadFile(s.path(".state"))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("state: %w", err)
	default:
		if err := json.Unmarshal(b, &s.snap); err != nil {
			return fmt.Errorf("state %s: %w", s.path(".state"), err)
		}
		if s.snap.Version != stateVersion {
			return fmt.Errorf("state %s: format %d, this buzon reads %d", s.path(".state"), s.snap.Version, stateVersion)
		}
		if s.snap.Folders == nil {
			s.snap.Folders = map[string]*folderState{}
		}
	}
	f, err := os.Open(s.path(".journal"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("state journal: %w", err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			// A last line without its newline was being written when the
			// process died: the step it records never happened.
			return nil
		}
		if err != nil {
			return fmt.Errorf("state journal: %w", err)
		}
		var r record
		if err := json.Unmarshal(bytes.TrimSpace(line), &r); err != nil {
			if _, peekErr := br.Peek(1); errors.Is(peekErr, io.EOF) {
				return nil // a torn last line
			}
			return fmt.Errorf("state journal %s line %d: %w (not the last line: the file is damaged)", s.path(".journal"), n, err)
		}
		if n == 1 {
			if r.Op != "gen" || r.Gen != s.snap.Gen {
				// Already folded into the snapshot.
				return nil
			}
			continue
		}
		s.apply(r)
	}
}

// messages counts the messages the state knows, in every folder.
func (s *state) messages() int {
	n := 0
	for _, fs := range s.snap.Folders {
		n += len(fs.Messages)
	}
	return n
}

// folder returns a folder's state, creating it empty.
func (s *state) folder(name string) *folderState {
	fs := s.snap.Folders[name]
	if fs == nil {
		fs = &folderState{Messages: map[string]*entry{}}
		s.snap.Folders[name] = fs
	}
	if fs.Messages == nil {
		fs.Messages = map[string]*entry{}
	}
	return fs
}

// apply changes the in-memory state as a record says. Applying a record
// twice changes nothing more.
func (s *state) apply(r record) {
	fs := s.folder(r.Folder)
	switch r.Op {
	case "intent":
		if r.UIDValidity != 0 && fs.UIDValidity != r.UIDValidity {
			// The first record about a folder carries its UIDVALIDITY.
			fs.UIDValidity = r.UIDValidity
		}
		e := fs.Messages[r.ID]
		if e == nil {
			e = &entry{}
			fs.Messages[r.ID] = e
		}
		if !e.stored() {
			e.Intent = r.Ref
			if r.Size != 0 {
				e.Size = r.Size
			}
		}
		e.Failed = ""
		if r.FP != "" {
			e.FP = r.FP
		}
	case "failed":
		if e := fs.Messages[r.ID]; e != nil && !e.stored() {
			e.Failed = r.Err
		}
	case "stored":
		e := fs.Messages[r.ID]
		if e == nil {
			e = &entry{}
			fs.Messages[r.ID] = e
		}
		if !e.stored() {
			e.Stored = r.At
			e.SeenDue = r.SeenDue
		}
		e.Intent = nil
		e.Failed = ""
		if r.FP != "" {
			e.FP = r.FP
		}
	case "copied":
		if e := fs.Messages[r.ID]; e != nil {
			e.Copied = true
		}
	case "seen":
		if e := fs.Messages[r.ID]; e != nil {
			e.SeenDue = false
		}
	case "forget":
		delete(fs.Messages, r.ID)
	}
}

// write appends records to the journal and syncs it: when write returns
// nil they survive a crash. When it fails they are not applied in memory
// and, unless the journal could not be cut back (see append), not in the
// journal either.
func (s *state) write(recs ...record) error {
	var buf bytes.Buffer
	for _, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	if s.broken {
		// What is in memory is what was synced: write it as a snapshot
		// and start a journal free of whatever went wrong.
		if err := s.compact(); err != nil {
			return err
		}
	}
	if err := s.append(buf.Bytes()); err != nil {
		return fmt.Errorf("state journal: %w", err)
	}
	for _, r := range recs {
		s.apply(r)
	}
	s.records += len(recs)
	return nil
}

// append writes b at the end of the journal and syncs it. If either
// fails (a short write on a full disk, say), the journal is cut back to
// where b was to start: records written later must not follow part of
// one, since load takes a damaged line for a crash's doing only when it
// is the last. If cutting it fails too, the state is broken until the
// next compaction. The cut needs no sync: if a crash brings the part back,
// it is the last line.
func (s *state) append(b []byte) error {
	_, err := s.journal.Write(b)
	if err == nil {
		err = s.journal.Sync()
	}
	if err != nil {
		if terr := s.journal.Truncate(s.size); terr != nil {
			s.broken = true
			return fmt.Errorf("%w; cutting off the part written: %w", err, terr)
		}
		return err
	}
	s.size += int64(len(b))
	return nil
}

// intent records that a message is about to be stored at ref; size is
// its POP3 LIST size, 0 for IMAP.
func (s *state) intent(folder string, uidValidity uint32, id string, ref Ref, fp string, size int64) error {
	return s.write(record{Op: "intent", Folder: folder, UIDValidity: uidValidity, ID: id, Ref: &ref, FP: fp, Size: size})
}

// failed records that the attempt to store a message whose intent was
// recorded failed, and why.
func (s *state) failed(folder, id string, why error) error {
	text := why.Error()
	if len(text) > 300 {
		text = text[:300] + "…"
	}
	return s.write(record{Op: "failed", Folder: folder, ID: id, Err: text})
}

// stored records that a message is stored; keep_days counts from at.
// seenDue says \Seen is to be set on the server (mark_seen), until seen
// records it done.
func (s *state) stored(folder, id string, at time.Time, fp string, seenDue bool) error {
	return s.write(record{Op: "stored", Folder: folder, ID: id, At: at.UTC(), FP: fp, SeenDue: seenDue})
}

// seen records that \Seen was set on messages on the server.
func (s *state) seen(folder string, ids []string) error {
	return s.writeEach("seen", folder, ids)
}

// forget drops messages that are no longer on the server.
func (s *state) forget(folder string, ids []string) error {
	return s.writeEach("forget", folder, ids)
}

// copied records that messages were copied to move_to.
func (s *state) copied(folder string, ids []string) error {
	return s.writeEach("copied", folder, ids)
}

// writeEach writes one record of op for each message, at once.
func (s *state) writeEach(op, folder string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	recs := make([]record, len(ids))
	for i, id := range ids {
		recs[i] = record{Op: op, Folder: folder, ID: id}
	}
	return s.write(recs...)
}

// replaceFolder replaces a folder's state at once (after a UIDVALIDITY
// change) by writing a new snapshot.
func (s *state) replaceFolder(name string, fs *folderState) error {
	s.snap.Folders[name] = fs
	return s.compact()
}

// compact writes the in-memory state as a new snapshot and starts an
// empty journal of the new generation.
func (s *state) compact() error {
	next := s.snap
	next.Gen++
	b, err := json.Marshal(next)
	if err != nil {
		return err
	}
	// From here the journal on disk may be of the old generation, ignored
	// by load: nothing may be appended until the new one is in place. A
	// WriteFile that fails may have failed after its rename (the sync of
	// the folder), with the new snapshot in place all the same.
	s.broken = true
	writeFile := s.writeFile
	if writeFile == nil {
		writeFile = durable.WriteFile
	}
	if err := writeFile(s.path(".state"), b, 0o600); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	s.snap.Gen = next.Gen
	if s.journal != nil {
		s.journal.Close()
		s.journal = nil
	}
	j, err := os.OpenFile(s.path(".journal"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("state journal: %w", err)
	}
	s.journal = j
	s.records = 0
	s.size = 0
	hdr, _ := json.Marshal(record{Op: "gen", Gen: s.snap.Gen})
	if err := s.append(append(hdr, '\n')); err != nil {
		return fmt.Errorf("state journal: %w", err)
	}
	if err := durable.SyncDir(s.dir); err != nil {
		return err
	}
	s.broken = false
	return nil
}

// Close releases the account; the journal stays for the next run.
func (s *state) Close() error {
	var err error
	if s.journal != nil {
		err = s.journal.Close()
	}
	if s.lock != nil {
		s.lock.Close() // releases the flock
	}
	return err
}
