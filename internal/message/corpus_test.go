package message

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/buzon-mail/buzon/internal/clienttest"
)

// TestCorpus parses every message of the shared corpus of real-world and
// malformed mail and checks the invariants of the tree, and that the
// helpers the IMAP server calls work on every part of it.
func TestCorpus(t *testing.T) {
	root := clienttest.NeedCorpus(t)
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		rel, _ := filepath.Rel(root, path)
		t.Run(rel, func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			tree, err := Parse(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, raw, tree)
			checkHelpers(t, raw, tree)
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Skip("empty corpus")
	}
}

// checkHelpers resolves every section of the tree and decodes every part,
// checking that ranges stay within the message and that nothing fails.
func checkHelpers(t testing.TB, raw []byte, tree *Part) {
	t.Helper()
	for _, path := range allSectionPaths(tree) {
		for spec := SpecifierNone; spec <= SpecifierMIME; spec++ {
			start, end, err := tree.SectionRange(path, spec)
			if err != nil {
				continue
			}
			if start < 0 || start > end || end > int64(len(raw)) {
				t.Errorf("section %v spec %d: range [%d, %d) outside the message", path, spec, start, end)
				continue
			}
			if spec == SpecifierHeader {
				HeaderFields(raw[start:end], []string{"subject", "from"}, false)
				HeaderFields(raw[start:end], []string{"subject"}, true)
			}
		}
		p, err := tree.Section(path)
		if err != nil {
			t.Errorf("section %v: %v", path, err)
			continue
		}
		body := bytes.NewReader(raw[p.BodyStart:p.End])
		if _, err := io.Copy(io.Discard, p.TextReader(body)); err != nil {
			t.Errorf("section %v: decoding: %v", path, err)
		}
		if e := p.Envelope; e != nil {
			for _, v := range []string{e.Subject, e.Date, e.MessageID} {
				if d := DecodeHeaderValue(v); !utf8.ValidString(d) {
					t.Errorf("DecodeHeaderValue(%q) = %q, not UTF-8", v, d)
				}
			}
			for _, a := range e.From {
				if d := DecodeHeaderValue(a.Name); !utf8.ValidString(d) {
					t.Errorf("DecodeHeaderValue(%q) = %q, not UTF-8", a.Name, d)
				}
			}
		}
	}
}

// allSectionPaths lists the section numbers of every part of a message,
// in the numbering of RFC 9051 6.4.5, starting with nil for the message.
func allSectionPaths(root *Part) [][]int {
	return append([][]int{nil}, bodyPaths(root, nil)...)
}

// sectionPaths lists prefix, the section of p, and the sections under it.
func sectionPaths(p *Part, prefix []int) [][]int {
	paths := [][]int{prefix}
	switch {
	case isMessageType(p):
		paths = append(paths, bodyPaths(&p.Parts[0], prefix)...)
	case p.MediaType == "multipart":
		for i := range p.Parts {
			paths = append(paths, sectionPaths(&p.Parts[i], appendPath(prefix, i+1))...)
		}
	}
	return paths
}

// bodyPaths lists the sections of the parts of message m, numbered after
// prefix: those of its body parts, or, for a non-multipart message, part
// 1, the message itself.
func bodyPaths(m *Part, prefix []int) [][]int {
	if m.MediaType != "multipart" {
		return sectionPaths(m, appendPath(prefix, 1))
	}
	var paths [][]int
	for i := range m.Parts {
		paths = append(paths, sectionPaths(&m.Parts[i], appendPath(prefix, i+1))...)
	}
	return paths
}

func appendPath(prefix []int, n int) []int {
	return append(append([]int(nil), prefix...), n)
}
