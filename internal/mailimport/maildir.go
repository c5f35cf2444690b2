package mailimport

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/buzon-mail/buzon/internal/mutf7"
	"github.com/buzon-mail/buzon/internal/store"
)

// Maildir is a Maildir tree: cur/, new/ and tmp/ at its root for INBOX,
// and sub-folders either as Maildir++ ".Folder.Sub" directories (Dovecot's
// default layout and Courier's) or as plain nested directories (Dovecot's
// LAYOUT=fs). Folder names are decoded from modified UTF-7, as Dovecot
// and Courier write them.
//
// The internal date of a message is its file's modification time: that is
// what Dovecot and Courier report as INTERNALDATE, and what mbsync and
// offlineimap set to keep an arrival date, while the time at the start of
// the file's name is when the file was made, which a copy renews.
type Maildir struct {
	Dir string
}

var _ Source = Maildir{}

func (m Maildir) String() string { return "Maildir " + m.Dir }

// Scan lists the messages of every folder, INBOX first, then the others by
// name. A directory is a folder when it has cur/ or new/.
//
// The Maildir is opened once, as an os.Root, and every folder and file is
// reached through it, now and when the messages are read: someone who can
// write the Maildir cannot lead the import out of it by swapping a folder
// for a link between the scan and the read. The root stays open while
// the items are kept (os.Root closes itself when they are dropped).
func (m Maildir) Scan() ([]*Item, error) {
	// The directory the administrator names is followed if it is a link:
	// that is their choice; links inside it are not.
	root, err := os.OpenRoot(m.Dir)
	if err != nil {
		return nil, err
	}
	items, err := m.scan(root)
	if err != nil || len(items) == 0 {
		root.Close()
	}
	return items, err
}

func (m Maildir) scan(root *os.Root) ([]*Item, error) {
	if !isMaildir(root, ".") {
		return nil, fmt.Errorf("%s is not a Maildir: it has neither cur/ nor new/", m.Dir)
	}
	folders := map[string]string{"INBOX": "."} // folder name -> directory in the root
	entries, err := readDir(root, ".")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		name := e.Name()
		// Maildir++: ".Work.Projects" is Work/Projects. A symbolic link
		// is not followed.
		if e.Type().IsDir() && len(name) > 1 && name[0] == '.' && name != ".." && isMaildir(root, name) {
			folders[folderName(strings.ReplaceAll(name[1:], ".", "/"))] = name
		}
	}
	if err := fsFolders(root, ".", "", folders); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(folders))
	for name := range folders {
		names = append(names, name)
	}
	slices.SortFunc(names, func(a, b string) int {
		switch {
		case a == b:
			return 0
		case a == "INBOX":
			return -1
		case b == "INBOX":
			return 1
		}
		return strings.Compare(a, b)
	})
	var items []*Item
	for _, name := range names {
		its, err := scanMaildirFolder(root, folders[name], name)
		if err != nil {
			return nil, err
		}
		items = append(items, its...)
	}
	return items, nil
}

// readDir lists a directory of the root.
func readDir(root *os.Root, dir string) ([]os.DirEntry, error) {
	f, err := root.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	slices.SortFunc(entries, func(a, b os.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries, err
}

// fsFolders adds the folders of Dovecot's LAYOUT=fs below dir: plain
// directories holding a Maildir, nested as the folders are.
func fsFolders(root *os.Root, dir, prefix string, folders map[string]string) error {
	entries, err := readDir(root, dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsDir() || name[0] == '.' || name == "cur" || name == "new" || name == "tmp" {
			continue
		}
		sub := path.Join(dir, name)
		full := prefix + name
		if isMaildir(root, sub) {
			folders[folderName(full)] = sub
		}
		if err := fsFolders(root, sub, full+"/", folders); err != nil {
			return err
		}
	}
	return nil
}

// isMaildir reports whether dir, in the root, holds a Maildir: a cur/ or
// new/ directory, not a link. It is the one test of what is a Maildir,
// for Scan and for NewSource.
func isMaildir(root *os.Root, dir string) bool {
	for _, sub := range []string{"cur", "new"} {
		if fi, err := root.Lstat(path.Join(dir, sub)); err == nil && fi.IsDir() {
			return true
		}
	}
	return false
}

// folderName decodes a folder name as Dovecot and Courier write it, in
// modified UTF-7 (RFC 3501 5.1.3); a name that is no valid modified UTF-7
// but valid UTF-8 (Dovecot with the UTF8 option) is taken as it is.
func folderName(raw string) string {
	if name, err := mutf7.Decode(raw); err == nil {
		return store.CanonicalMailboxName(name)
	}
	if utf8.ValidString(raw) {
		return store.CanonicalMailboxName(raw)
	}
	return strings.ToValidUTF8(raw, "?")
}

// scanMaildirFolder lists the messages of one Maildir folder, dir in the
// root: those of new/ (unseen, as delivered) and cur/, in the order of
// Dovecot's dovecot-uidlist where there is one, so that they keep their
// order, and by the delivery time at the start of their names otherwise.
// A file a client moved from new/ to cur/ while the scan read the folder
// is listed in both: it is taken once, as cur/ has it.
func scanMaildirFolder(root *os.Root, dir, folder string) ([]*Item, error) {
	keywords, err := readDovecotKeywords(root, path.Join(dir, "dovecot-keywords"))
	if err != nil {
		return nil, err
	}
	order, err := readDovecotUIDList(root, path.Join(dir, "dovecot-uidlist"))
	if err != nil {
		return nil, err
	}
	type file struct {
		item *Item
		base string
	}
	var files []file
	byBase := map[string]int{} // index in files
	for _, sub := range []string{"new", "cur"} {
		if fi, err := root.Lstat(path.Join(dir, sub)); err != nil || !fi.IsDir() {
			continue // missing, or a link
		}
		entries, err := readDir(root, path.Join(dir, sub))
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			name := e.Name()
			if name[0] == '.' {
				continue
			}
			rel := path.Join(dir, sub, name)
			it := &Item{Folders: []string{folder}, Where: filepath.Join(root.Name(), filepath.FromSlash(rel))}
			base, info, _ := strings.Cut(name, ":")
			if i, ok := byBase[base]; ok {
				files[i].item = it
			} else {
				byBase[base] = len(files)
				files = append(files, file{it, base})
			}
			fi, err := root.Lstat(rel)
			switch {
			case err != nil:
				it.Skip = err.Error()
				continue
			case fi.Mode()&os.ModeSymlink != 0:
				it.Skip = "a symbolic link, not followed"
				continue
			case !fi.Mode().IsRegular():
				it.Skip = "not a regular file"
				continue
			}
			it.Size, it.Date = fi.Size(), fi.ModTime()
			if sub == "cur" {
				it.Flags = maildirFlags(info, keywords)
			}
			it.open = func() (io.ReadCloser, error) {
				f, err := openRegular(root, rel)
				if !errors.Is(err, fs.ErrNotExist) {
					return f, err
				}
				// A client renamed the file since the scan: it changed
				// its flags, or moved it from new/ to cur/. The flags
				// are those it has now.
				now, info, ok := findMaildirFile(root, dir, base)
				if !ok {
					return nil, err
				}
				if f, err = openRegular(root, now); err == nil {
					it.Where = filepath.Join(root.Name(), filepath.FromSlash(now))
					if path.Base(path.Dir(now)) == "cur" {
						it.Flags = maildirFlags(info, keywords)
					}
				}
				return f, err
			}
		}
	}
	slices.SortStableFunc(files, func(a, b file) int {
		ua, oka := order[a.base]
		ub, okb := order[b.base]
		switch {
		case oka && okb:
			return cmp.Compare(ua, ub)
		case oka:
			return -1
		case okb:
			return 1
		}
		return compareMaildirNames(a.base, b.base)
	})
	items := make([]*Item, len(files))
	for i, f := range files {
		items[i] = f.item
	}
	return items, nil
}

// findMaildirFile looks in a folder's new/, then cur/, for the file whose
// name starts with base (the part before ":", which no client changes),
// and returns its path in the root and its info ("2,S").
func findMaildirFile(root *os.Root, dir, base string) (name, info string, ok bool) {
	if fi, err := root.Lstat(path.Join(dir, "new", base)); err == nil && fi.Mode().IsRegular() {
		return path.Join(dir, "new", base), "", true
	}
	entries, err := readDir(root, path.Join(dir, "cur"))
	if err != nil {
		return "", "", false
	}
	for _, e := range entries {
		if b, info, _ := strings.Cut(e.Name(), ":"); b == base && e.Type().IsRegular() {
			return path.Join(dir, "cur", e.Name()), info, true
		}
	}
	return "", "", false
}

// compareMaildirNames orders unique names by the delivery time they start
// with: the seconds, then the microseconds of the "M" field that follows
// in the names Dovecot, Python's mailbox and Courier write
// ("1700000000.M123456P42Q7.host"), unpadded, so "M99999" comes before
// "M123456"; then as strings.
func compareMaildirNames(a, b string) int {
	return cmp.Or(
		cmp.Compare(nameNumber(a, ""), nameNumber(b, "")),
		cmp.Compare(nameNumber(a, ".M"), nameNumber(b, ".M")),
		strings.Compare(a, b))
}

// nameNumber reads the number after the seconds of a unique name and
// then prefix ("" for the seconds themselves); 0 where there is none.
func nameNumber(name, prefix string) int64 {
	if prefix != "" {
		rest, ok := strings.CutPrefix(name[len(leadingDigits(name)):], prefix)
		if !ok {
			return 0
		}
		name = rest
	}
	n, _ := strconv.ParseInt(leadingDigits(name), 10, 64)
	return n
}

func leadingDigits(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

// maildirFlags reads the info part of a Maildir file name, "2,FRS" (the
// "experimental semantics" of the Maildir specification): S seen, R
// replied, F flagged, D draft, T trashed, which Dovecot shows as \Deleted
// and so do we: the message was not expunged yet, and a client that
// expunges will; P (passed on) has no IMAP flag. Dovecot writes keywords as
// lower-case letters, a for the first of dovecot-keywords.
func maildirFlags(info string, keywords []string) store.Flags {
	var f store.Flags
	letters, ok := strings.CutPrefix(info, "2,")
	if !ok {
		return f
	}
	for _, c := range letters {
		switch {
		case c == 'S':
			f.System |= store.FlagSeen
		case c == 'R':
			f.System |= store.FlagAnswered
		case c == 'F':
			f.System |= store.FlagFlagged
		case c == 'D':
			f.System |= store.FlagDraft
		case c == 'T':
			f.System |= store.FlagDeleted
		case c >= 'a' && c <= 'z':
			if i := int(c - 'a'); i < len(keywords) && keywords[i] != "" {
				f = f.Apply(store.FlagsAdd, store.Flags{Keywords: []string{keywords[i]}})
			}
		}
	}
	return f
}

// readDovecotKeywords reads Dovecot's dovecot-keywords: lines "N name",
// N from 0 for the letter a. Names that are no IMAP keyword are left out.
func readDovecotKeywords(root *os.Root, name string) ([]string, error) {
	f, err := openRegular(root, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var kw []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		num, name, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || n < 0 || n >= 26 || !store.ValidKeyword(name) {
			continue
		}
		for len(kw) <= n {
			kw = append(kw, "")
		}
		kw[n] = name
	}
	return kw, sc.Err()
}

// readDovecotUIDList reads the UIDs Dovecot gave a folder's files, by the
// base of their names (before ":"). The first line is a header; each other
// line is "UID [extensions] :name" (version 3) or "UID name" (version 1),
// the name the last one Dovecot knew, flags and all
// ("25017 W2481 :1276533073.M242911P3632.kurkku:2,F").
func readDovecotUIDList(root *os.Root, name string) (map[string]uint32, error) {
	f, err := openRegular(root, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	uids := map[string]uint32{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for first := true; sc.Scan(); first = false {
		if first {
			continue
		}
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		uid, err := strconv.ParseUint(fields[0], 10, 32)
		if err != nil {
			continue
		}
		name := fields[len(fields)-1]
		if _, after, ok := strings.Cut(sc.Text(), " :"); ok {
			name = after
		}
		base, _, _ := strings.Cut(name, ":")
		uids[base] = uint32(uid)
	}
	return uids, sc.Err()
}
