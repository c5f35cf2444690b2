package mailimport

import (
	"bufio"
	"fmt"
	"io"
	"os"
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
func (m Maildir) Scan() ([]*Item, error) {
	if !isMaildir(m.Dir) {
		return nil, fmt.Errorf("%s is not a Maildir: it has neither cur/ nor new/", m.Dir)
	}
	folders := map[string]string{"INBOX": m.Dir} // folder name -> directory
	entries, err := os.ReadDir(m.Dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		name := e.Name()
		// Maildir++: ".Work.Projects" is Work/Projects. A symbolic link
		// is not followed: it could lead out of the tree.
		if e.Type().IsDir() && len(name) > 1 && name[0] == '.' && name != ".." {
			dir := filepath.Join(m.Dir, name)
			if isMaildir(dir) {
				folders[folderName(strings.ReplaceAll(name[1:], ".", "/"))] = dir
			}
		}
	}
	if err := fsFolders(m.Dir, "", folders); err != nil {
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
		its, err := scanMaildirFolder(folders[name], name)
		if err != nil {
			return nil, err
		}
		items = append(items, its...)
	}
	return items, nil
}

// fsFolders adds the folders of Dovecot's LAYOUT=fs below dir: plain
// directories holding a Maildir, nested as the folders are.
func fsFolders(dir, prefix string, folders map[string]string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsDir() || name[0] == '.' || name == "cur" || name == "new" || name == "tmp" {
			continue
		}
		sub := filepath.Join(dir, name)
		full := prefix + name
		if isMaildir(sub) {
			folders[folderName(full)] = sub
		}
		if err := fsFolders(sub, full+"/", folders); err != nil {
			return err
		}
	}
	return nil
}

// isMaildir reports whether dir holds a Maildir: a cur/ or new/ directory,
// not a link.
func isMaildir(dir string) bool {
	for _, sub := range []string{"cur", "new"} {
		if fi, err := os.Lstat(filepath.Join(dir, sub)); err == nil && fi.IsDir() {
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

// scanMaildirFolder lists the messages of one Maildir folder: those of
// new/ (unseen, as delivered) and cur/, in the order of Dovecot's
// dovecot-uidlist where there is one, so that they keep their order, and
// by the delivery time at the start of their names otherwise.
func scanMaildirFolder(dir, folder string) ([]*Item, error) {
	keywords, err := readDovecotKeywords(filepath.Join(dir, "dovecot-keywords"))
	if err != nil {
		return nil, err
	}
	order, err := readDovecotUIDList(filepath.Join(dir, "dovecot-uidlist"))
	if err != nil {
		return nil, err
	}
	type file struct {
		item *Item
		base string
	}
	var files []file
	for _, sub := range []string{"new", "cur"} {
		if fi, err := os.Lstat(filepath.Join(dir, sub)); err != nil || !fi.IsDir() {
			continue // missing, or a link out of the tree
		}
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			name := e.Name()
			if name[0] == '.' {
				continue
			}
			path := filepath.Join(dir, sub, name)
			it := &Item{Folders: []string{folder}, Where: path}
			base, info, _ := strings.Cut(name, ":")
			files = append(files, file{it, base})
			fi, err := os.Lstat(path)
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
			it.open = func() (io.ReadCloser, error) { return openNoFollow(path) }
		}
	}
	slices.SortStableFunc(files, func(a, b file) int {
		ua, oka := order[a.base]
		ub, okb := order[b.base]
		switch {
		case oka && okb:
			return int(ua) - int(ub)
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

// compareMaildirNames orders unique names by the delivery time in seconds
// they start with, then as strings.
func compareMaildirNames(a, b string) int {
	ta, _ := strconv.ParseInt(leadingDigits(a), 10, 64)
	tb, _ := strconv.ParseInt(leadingDigits(b), 10, 64)
	if ta != tb {
		if ta < tb {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
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
func readDovecotKeywords(path string) ([]string, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
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
// line is "UID [extensions] :base" (version 3) or "UID base" (version 1).
func readDovecotUIDList(path string) (map[string]uint32, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
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
		base := fields[len(fields)-1]
		if i := strings.IndexByte(sc.Text(), ':'); i >= 0 {
			base = sc.Text()[i+1:]
		}
		uids[base] = uint32(uid)
	}
	return uids, sc.Err()
}
