package message

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// FuzzParse parses arbitrary input, with the default limits and with
// small ones and a tiny read buffer that splits lines into many
// fragments, and checks the invariants and round trip of each tree. Its
// seeds, in testdata/fuzz/FuzzParse, are our test messages (see
// TestFuzzSeeds).
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, ps := range []Parser{{}, {MaxDepth: 3, MaxParts: 8, MaxHeaderBytes: 100, bufSize: 32}} {
			tree, err := ps.Parse(bytes.NewReader(raw))
			if err != nil {
				t.Fatalf("Parse failed without a read error: %v", err)
			}
			checkInvariants(t, raw, tree)
			checkHelpers(t, raw, tree)
		}
	})
}

// FuzzUnmarshal decodes arbitrary input. Unmarshal must not panic, and a
// tree it accepts must hold together: encoding it again and decoding that
// gives the same tree, and sections resolve within its offsets. Its seeds,
// in testdata/fuzz/FuzzUnmarshal, are the encodings of our test messages.
func FuzzUnmarshal(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		tree, err := Unmarshal(b)
		if err != nil {
			return
		}
		again, err := Unmarshal(Marshal(tree))
		if err != nil {
			t.Fatalf("re-encoding an accepted tree: %v", err)
		}
		if !reflect.DeepEqual(tree, again) {
			t.Fatalf("round trip differs:\n%s\nwant\n%s", dumpTree(again), dumpTree(tree))
		}
		for _, path := range allSectionPaths(tree) {
			for spec := SpecifierNone; spec <= SpecifierMIME; spec++ {
				start, end, err := tree.SectionRange(path, spec)
				if err == nil && (start < tree.HeaderStart || start > end || end > tree.End) {
					t.Fatalf("section %v spec %d: [%d, %d) outside [%d, %d)", path, spec, start, end, tree.HeaderStart, tree.End)
				}
			}
		}
	})
}

// TestFuzzSeeds checks that the seed corpora of the fuzz targets hold
// our test messages and their current encodings; -update rewrites them.
func TestFuzzSeeds(t *testing.T) {
	files, err := filepath.Glob("testdata/*.eml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test messages: %v", err)
	}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		tree, err := Parse(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Base(file), ".eml")
		checkSeed(t, filepath.Join("testdata", "fuzz", "FuzzParse", name), raw)
		checkSeed(t, filepath.Join("testdata", "fuzz", "FuzzUnmarshal", name), Marshal(tree))
	}
}

// checkSeed checks (or with -update writes) a seed file in the format of
// go test's fuzzing corpus.
func checkSeed(t *testing.T, path string, value []byte) {
	t.Helper()
	want := "go test fuzz v1\n[]byte(" + strconv.Quote(string(value)) + ")\n"
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(got) != want {
		t.Errorf("%s is out of date (run with -update)", path)
	}
}
