package sieve

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// addSeeds adds the differential test's scripts to a fuzz target's seeds,
// besides those of testdata/fuzz.
func addSeeds(f *testing.F, add func(script []byte)) {
	scripts, _ := filepath.Glob("testdata/diff/*.sieve")
	for _, sf := range scripts {
		b, err := os.ReadFile(sf)
		if err != nil {
			f.Fatal(err)
		}
		add(b)
	}
}

// FuzzCompile checks that no script makes Compile panic, and that every
// error it returns is a *CompileError with a line inside the script.
func FuzzCompile(f *testing.F) {
	addSeeds(f, func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, src []byte) {
		_, err := Compile(src)
		if err == nil {
			return
		}
		ce, ok := err.(*CompileError)
		if !ok {
			t.Fatalf("Compile returned %T %v, not a *CompileError", err, err)
		}
		if lines := strings.Count(string(src), "\n") + 1; ce.Line < 1 || ce.Line > lines {
			t.Fatalf("error at line %d of a script of %d lines: %v", ce.Line, lines, err)
		}
	})
}

// FuzzExecute runs scripts that compile against fuzzed messages: no
// panic, and the actions are never empty, never more than MaxActions and
// the implicit keep, and a discard comes alone.
func FuzzExecute(f *testing.F) {
	msgs, _ := filepath.Glob("testdata/diff/*.eml")
	var first []byte
	for _, mf := range msgs {
		if b, err := os.ReadFile(mf); err == nil && first == nil {
			first = b
		}
	}
	addSeeds(f, func(b []byte) {
		for _, mf := range msgs {
			m, err := os.ReadFile(mf)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b, m)
		}
	})
	f.Fuzz(func(t *testing.T, src, msg []byte) {
		s, err := Compile(src)
		if err != nil {
			return
		}
		acts, err := s.Execute(context.Background(), testMessage(msg), Envelope{From: "a@example.org", To: "b+c@example.net"}, inboxOnly{})
		if err != nil {
			return
		}
		if len(acts) == 0 || len(acts) > MaxActions+1 {
			t.Fatalf("%d actions", len(acts))
		}
		for _, a := range acts {
			if a.Kind == Discard && len(acts) > 1 {
				t.Fatalf("discard with other actions: %+v", acts)
			}
		}
	})
}
