package mailimport

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/mail"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

// Mbox is an mbox file: messages each after a "From " line, body lines
// that began with "From " escaped as ">From " (mboxrd, which mutt,
// Thunderbird and Google Takeout write; mboxo's escapes read the same).
// A "From " line separates messages when a date follows the sender, as
// mutt's is_from wants: an unescaped "From the desk of Bob," in a body
// stays in its message, and a separator is one with or without an empty
// line before it (the empty line, when there is one, is the mbox's, not
// the message's). The first "From " line of the file needs no date.
type Mbox struct {
	Path string
	// Folder receives the messages; "" for INBOX.
	Folder string
	// GmailLabels files each message into the folders its X-Gmail-Labels
	// header names (Google Takeout), Folder being the one for a message
	// with none (see gmailFolders).
	GmailLabels bool
	// Location is the time zone of the dates of "From " lines that give
	// none (asctime, the writer's local time); nil for this machine's.
	Location *time.Location
}

var _ Source = Mbox{}

func (m Mbox) String() string { return "mbox " + m.Path }

// The header fields of mbox state, which mutt, Thunderbird and Dovecot
// keep the flags in: read into flags and left out of the message stored,
// where they would disagree with the flags once they change.
var stateFields = []string{"status", "x-status", "x-keywords", "x-mozilla-status", "x-mozilla-status2", "x-mozilla-keys", "x-uid", "x-imap", "x-imapbase"}

// Scan reads the file once, noting where each message starts and ends and
// what its header says of its flags, date and labels. The path the
// administrator names is followed if it is a link: that is their choice.
// The file's messages are read later from that same file: one put in its
// place since the scan is refused.
func (m Mbox) Scan() ([]*Item, error) {
	return m.scan(func() (*os.File, error) {
		f, err := os.OpenFile(m.Path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return nil, err
		}
		if err := checkRegular(f); err != nil {
			f.Close()
			return nil, err
		}
		return f, nil
	})
}

// errNotMbox is a file that does not start with a "From " line.
var errNotMbox = errors.New(`not an mbox: it does not start with a "From " line`)

// scan reads the mbox that open opens, each time the same file.
func (m Mbox) scan(open func() (*os.File, error)) ([]*Item, error) {
	f, err := open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	scanned, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !isMbox(f) {
		return nil, fmt.Errorf("%s is %w", m.Path, errNotMbox)
	}
	reopen := func() (*os.File, error) {
		f, err := open()
		if err != nil {
			return nil, err
		}
		if fi, err := f.Stat(); err != nil || !os.SameFile(fi, scanned) {
			f.Close()
			return nil, fmt.Errorf("%s was replaced by another file since it was read", m.Path)
		}
		return f, nil
	}
	folder := m.Folder
	if folder == "" {
		folder = "INBOX"
	}
	br := bufio.NewReaderSize(f, 64*1024)
	var (
		items   []*Item
		cur     *mboxMessage
		off     int64
		blank   = true // the previous line was empty (or there was none)
		lineBuf []byte
	)
	finish := func(end int64) {
		if cur == nil {
			return
		}
		items = append(items, cur.item(m, folder, end, reopen))
		cur = nil
	}
	for {
		line, err := readLine(br, &lineBuf)
		if len(line) > 0 {
			start := off
			off += int64(len(line))
			switch {
			case bytes.HasPrefix(line, []byte("From ")) && (cur == nil || !fromLineDate(string(line), time.UTC).IsZero()):
				// The empty line before a separator is the separator's.
				end := start
				if cur != nil && end > cur.start {
					end -= cur.lastBlank
				}
				finish(end)
				cur = &mboxMessage{start: off, fromLine: strings.TrimRight(string(line), "\r\n"), header: true}
			case cur == nil && blank && len(bytes.TrimRight(line, "\r\n")) == 0:
				// empty lines before the first message
			case cur == nil:
				return nil, fmt.Errorf("%s is %w", m.Path, errNotMbox)
			default:
				cur.headerLine(line)
			}
			trimmed := bytes.TrimRight(line, "\r\n")
			blank = len(trimmed) == 0
			if cur != nil {
				cur.lastBlank = 0
				if blank {
					cur.lastBlank = int64(len(line))
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.Path, err)
		}
	}
	if cur != nil {
		finish(off - cur.lastBlank)
	}
	return items, nil
}

// readLine reads a line, with its end, keeping long lines whole.
func readLine(br *bufio.Reader, buf *[]byte) ([]byte, error) {
	*buf = (*buf)[:0]
	for {
		chunk, err := br.ReadSlice('\n')
		*buf = append(*buf, chunk...)
		if err != bufio.ErrBufferFull {
			return *buf, err
		}
	}
}

// mboxMessage is a message of an mbox as the scan reads it.
type mboxMessage struct {
	start     int64 // after the "From " line
	fromLine  string
	header    bool  // still in the header section
	lastBlank int64 // length of the last line when it was empty, else 0
	field     string
	fields    map[string]string // state fields, Date and X-Gmail-Labels, unfolded
}

func (mm *mboxMessage) headerLine(line []byte) {
	if !mm.header {
		return
	}
	text := strings.TrimRight(string(line), "\r\n")
	if text == "" {
		mm.header = false
		return
	}
	if text[0] == ' ' || text[0] == '\t' {
		if mm.field != "" {
			mm.fields[mm.field] += " " + strings.TrimSpace(text)
		}
		return
	}
	name, value, ok := strings.Cut(text, ":")
	mm.field = ""
	if !ok {
		return
	}
	name = strings.ToLower(strings.TrimSpace(name))
	if name == "date" || name == "x-gmail-labels" || slices.Contains(stateFields, name) {
		if mm.fields == nil {
			mm.fields = map[string]string{}
		}
		if _, dup := mm.fields[name]; !dup {
			mm.field = name
			mm.fields[name] = strings.TrimSpace(value)
		}
	}
}

func (mm *mboxMessage) item(m Mbox, folder string, end int64, open func() (*os.File, error)) *Item {
	start := mm.start
	it := &Item{Folders: []string{folder}, Size: end - start, Where: fmt.Sprintf("%s at byte %d", m.Path, start)}
	loc := m.Location
	if loc == nil {
		loc = time.Local
	}
	it.Date = fromLineDate(mm.fromLine, loc)
	if it.Date.IsZero() {
		it.Date, _ = mail.ParseDate(mm.fields["date"])
	}
	it.Flags = mboxFlags(mm.fields)
	if v, ok := mm.fields["x-mozilla-status"]; ok {
		// Thunderbird marks a deleted message 0x0008 and leaves it in the
		// file until the folder is compacted.
		if n, err := strconv.ParseUint(v, 16, 32); err == nil && n&0x8 != 0 {
			it.Skip = "deleted in Thunderbird (the folder was not compacted since)"
		}
	}
	if m.GmailLabels {
		if labels, ok := mm.fields["x-gmail-labels"]; ok {
			it.Folders, it.Flags = gmailFolders(labels, it.Flags)
		}
	}
	it.open = func() (io.ReadCloser, error) {
		f, err := open()
		if err != nil {
			return nil, err
		}
		return &mboxReader{f: f, br: bufio.NewReaderSize(io.NewSectionReader(f, start, end-start), 64*1024), header: true}, nil
	}
	return it
}

// mboxFlags reads the flags of the state fields: Status R (seen, mutt),
// X-Status A, F, T, D (answered, flagged, draft, deleted), Thunderbird's
// X-Mozilla-Status bits (read 0x1, replied 0x2, marked 0x4) and its
// X-Mozilla-Keys, and Dovecot's X-Keywords.
func mboxFlags(fields map[string]string) store.Flags {
	var f store.Flags
	if strings.ContainsRune(fields["status"], 'R') {
		f.System |= store.FlagSeen
	}
	for _, c := range fields["x-status"] {
		switch c {
		case 'A':
			f.System |= store.FlagAnswered
		case 'F':
			f.System |= store.FlagFlagged
		case 'T':
			f.System |= store.FlagDraft
		case 'D':
			f.System |= store.FlagDeleted
		}
	}
	if v, ok := fields["x-mozilla-status"]; ok {
		if n, err := strconv.ParseUint(v, 16, 32); err == nil {
			for _, b := range []struct {
				bit  uint64
				flag store.SystemFlags
			}{{0x1, store.FlagSeen}, {0x2, store.FlagAnswered}, {0x4, store.FlagFlagged}} {
				if n&b.bit != 0 {
					f.System |= b.flag
				}
			}
		}
	}
	for _, field := range []string{"x-mozilla-keys", "x-keywords"} {
		for _, k := range strings.FieldsFunc(fields[field], func(r rune) bool { return r == ' ' || r == ',' || r == '\t' }) {
			if store.ValidKeyword(k) {
				f = f.Apply(store.FlagsAdd, store.Flags{Keywords: []string{k}})
			}
		}
	}
	return f
}

// fromLineDate reads the date of a "From sender date" line: asctime
// ("Thu Nov 27 10:00:00 2026", the writer's local time, taken as this
// machine's, loc), or with a zone as Google Takeout and some others write
// it, or as RFC 5322 writes dates. Zero when there is none that reads:
// then the line is no separator (see Mbox).
func fromLineDate(line string, loc *time.Location) time.Time {
	fields := strings.Fields(line)
	for skip := 2; skip < len(fields) && skip <= 4; skip++ {
		text := strings.Join(fields[skip:], " ")
		for _, layout := range []string{
			"Mon Jan 2 15:04:05 2006",
			"Mon Jan 2 15:04:05 -0700 2006",
			"Mon Jan 2 15:04:05 MST 2006",
			"Mon Jan 2 15:04:05 2006 -0700",
			"Mon Jan 2 15:04 2006",
			"Mon, 2 Jan 2006 15:04:05 -0700", // RFC 5322's, which a few writers use
			"2 Jan 2006 15:04:05 -0700",
		} {
			if t, err := time.ParseInLocation(layout, text, loc); err == nil {
				return t
			}
		}
	}
	return time.Time{}
}

// mboxReader reads one message of an mbox as it is to be stored: one ">"
// less before a "From " line (mboxrd), and without the state fields.
type mboxReader struct {
	f       *os.File
	br      *bufio.Reader
	header  bool // in the header section
	skip    bool // in a state field, continuation lines included
	pending []byte
	line    []byte
	err     error
}

func (r *mboxReader) Read(p []byte) (int, error) {
	for len(r.pending) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		var line []byte
		line, r.err = readLine(r.br, &r.line)
		r.pending = r.transform(line)
	}
	n := copy(p, r.pending)
	r.pending = r.pending[n:]
	return n, nil
}

func (r *mboxReader) transform(line []byte) []byte {
	if len(line) == 0 {
		return nil
	}
	if r.header {
		text := bytes.TrimRight(line, "\r\n")
		switch {
		case len(text) == 0:
			r.header, r.skip = false, false
		case text[0] == ' ' || text[0] == '\t':
			if r.skip {
				return nil
			}
		default:
			name, _, ok := bytes.Cut(text, []byte(":"))
			r.skip = ok && slices.Contains(stateFields, strings.ToLower(strings.TrimSpace(string(name))))
			if r.skip {
				return nil
			}
		}
	}
	// RFC 4155 does not define the escape; mboxrd's ">From " with any
	// number of ">" loses one.
	if i := bytes.IndexFunc(line, func(c rune) bool { return c != '>' }); i > 0 && bytes.HasPrefix(line[i:], []byte("From ")) {
		return line[1:]
	}
	return line
}

func (r *mboxReader) Close() error { return r.f.Close() }

// MboxTree is a folder of mbox files, one per folder, as Thunderbird
// keeps its local folders: a file "Work" with the sub-folders of Work in
// "Work.sbd/". Apple Mail's exports ("Work.mbox/mbox", sub-folders beside
// the file) and files named "Work.mbox" read the same, and so does the
// folder of one Apple Mail export, named itself ("Inbox.mbox/"). Index
// files (.msf) and the metadata of Thunderbird and Apple Mail are passed
// over; any other file that is no mbox, and any symbolic link, is listed
// as skipped.
//
// The folder is opened once, as an os.Root, as a Maildir is (see
// Maildir.Scan).
type MboxTree struct {
	Dir string
}

var _ Source = MboxTree{}

func (t MboxTree) String() string { return "mbox folder " + t.Dir }

// Scan reads every mbox below the folder.
func (t MboxTree) Scan() ([]*Item, error) {
	root, err := os.OpenRoot(t.Dir)
	if err != nil {
		return nil, err
	}
	var items []*Item
	prefix := ""
	apple := isAppleMailbox(root, ".", filepath.Base(t.Dir))
	if apple {
		prefix = MboxFolder(filepath.Base(t.Dir))
		if err := t.scanFile(root, "mbox", folderName(prefix), &items); err != nil {
			root.Close()
			return nil, err
		}
		prefix += "/"
	}
	if err := t.scan(root, ".", prefix, apple, &items); err != nil {
		root.Close()
		return nil, err
	}
	if len(items) == 0 {
		root.Close()
	}
	return items, nil
}

// isAppleMailbox reports whether dir, named name, is a mailbox Apple Mail
// exported: "Name.mbox/" holding a file "mbox".
func isAppleMailbox(root *os.Root, dir, name string) bool {
	if !strings.HasSuffix(strings.ToLower(name), ".mbox") {
		return false
	}
	fi, err := root.Lstat(path.Join(dir, "mbox"))
	return err == nil && fi.Mode().IsRegular()
}

// mboxMetadata are the files beside mboxes that are none, left out of the
// summary: Thunderbird's and Apple Mail's.
var mboxMetadata = []string{"Info.plist", "table_of_contents", "msgFilterRules.dat", "popstate.dat", "filterlog.html", "junklog.html"}

// scan reads the mboxes of dir, an Apple mailbox when apple (its "mbox"
// read already).
func (t MboxTree) scan(root *os.Root, dir, prefix string, apple bool, items *[]*Item) error {
	entries, err := readDir(root, dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		rel := path.Join(dir, name)
		switch {
		case name[0] == '.':
		case e.Type().IsDir() && strings.HasSuffix(name, ".sbd"):
			if err := t.scan(root, rel, prefix+strings.TrimSuffix(name, ".sbd")+"/", false, items); err != nil {
				return err
			}
		case e.Type().IsDir() && strings.HasSuffix(strings.ToLower(name), ".mbox"):
			// Apple Mail's export: Name.mbox/mbox, sub-folders beside it.
			folder := prefix + MboxFolder(name)
			sub := isAppleMailbox(root, rel, name)
			if sub {
				if err := t.scanFile(root, path.Join(rel, "mbox"), folderName(folder), items); err != nil {
					return err
				}
			}
			if err := t.scan(root, rel, folder+"/", sub, items); err != nil {
				return err
			}
		case e.Type().IsDir():
		case e.Type()&fs.ModeSymlink != 0:
			*items = append(*items, &Item{Where: t.where(rel), Skip: "a symbolic link, not followed"})
		case !e.Type().IsRegular():
			*items = append(*items, &Item{Where: t.where(rel), Skip: "not a regular file"})
		case name == "mbox" && apple, strings.HasSuffix(name, ".msf"), slices.Contains(mboxMetadata, name):
		default:
			if err := t.scanFile(root, rel, folderName(prefix+MboxFolder(name)), items); err != nil {
				return err
			}
		}
	}
	return nil
}

// scanFile reads one mbox of the tree; a non-empty file that is none is
// listed as skipped.
func (t MboxTree) scanFile(root *os.Root, rel, folder string, items *[]*Item) error {
	its, err := Mbox{Path: t.where(rel), Folder: folder}.scan(func() (*os.File, error) { return openRegular(root, rel) })
	switch {
	case errors.Is(err, errNotMbox):
		if fi, serr := root.Lstat(rel); serr == nil && fi.Size() == 0 {
			return nil
		}
		*items = append(*items, &Item{Where: t.where(rel), Skip: errNotMbox.Error()})
		return nil
	case err != nil:
		return err
	}
	*items = append(*items, its...)
	return nil
}

func (t MboxTree) where(rel string) string {
	return filepath.Join(t.Dir, filepath.FromSlash(rel))
}

// MboxFolder names the folder of an mbox file: its name without an .mbox
// or .mbx ending ("Sent.mbox" is Sent).
func MboxFolder(name string) string {
	for _, ext := range []string{".mbox", ".mbx"} {
		if strings.HasSuffix(strings.ToLower(name), ext) && len(name) > len(ext) {
			return name[:len(name)-len(ext)]
		}
	}
	return name
}

// isMbox reports whether a file starts with a "From " line, after the
// empty lines Scan passes over; it reads no more than the first 4 KiB, so
// a large file that is no mbox is not read whole for a line end.
func isMbox(r io.ReaderAt) bool {
	head := make([]byte, 4096)
	n, err := r.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return false
	}
	return bytes.HasPrefix(bytes.TrimLeft(head[:n], "\r\n"), []byte("From "))
}

// gmailFolders files a message of a Google Takeout mbox by its
// X-Gmail-Labels: a copy in each folder a label names, as Gmail's own
// IMAP shows one message in each of its labels, so every folder the user
// knew is whole. Gmail's system labels become folders and flags: Inbox,
// Sent, Drafts, Spam (Junk) and Trash are folders; Starred is \Flagged;
// a message is \Seen unless labelled Unread; Important, Opened, Archived
// and the categories are left out. A message with no folder label was
// archived, and goes to Archive.
func gmailFolders(header string, f store.Flags) ([]string, store.Flags) {
	var folders []string
	f.System |= store.FlagSeen
	for _, label := range splitLabels(header) {
		switch {
		case strings.EqualFold(label, "Inbox"):
			label = "INBOX"
		case strings.EqualFold(label, "Spam"):
			label = "Junk"
		case label == "Starred":
			f.System |= store.FlagFlagged
			continue
		case label == "Unread":
			f.System &^= store.FlagSeen
			continue
		case label == "Important", label == "Opened", label == "Archived", strings.HasPrefix(label, "Category "):
			continue
		}
		if !slices.Contains(folders, label) {
			folders = append(folders, label)
		}
	}
	if len(folders) == 0 {
		folders = []string{"Archive"}
	}
	return folders, f
}

// splitLabels splits X-Gmail-Labels at its commas, outside the double
// quotes a label with a comma is given in, and decodes RFC 2047 words.
func splitLabels(header string) []string {
	dec := &mime.WordDecoder{}
	if d, err := dec.DecodeHeader(header); err == nil {
		header = d
	}
	var labels []string
	var cur strings.Builder
	quoted := false
	flush := func() {
		if l := strings.TrimSpace(cur.String()); l != "" {
			labels = append(labels, l)
		}
		cur.Reset()
	}
	for _, c := range header {
		switch {
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			flush()
		default:
			cur.WriteRune(c)
		}
	}
	flush()
	return labels
}
