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
	add([]byte("require \"copy\"; redirect :copy \"Carol <carol@example.org>\"; redirect \"d@example.org\";\n"))
	add([]byte("require [\"vacation\", \"vacation-seconds\", \"variables\"];\nvacation :seconds 0 :subject \"Re: ${1}\" :addresses [\"a@b\"] :mime :handle \"h\" text:\nx\n.\n;\n"))
}

// FuzzCompile checks that no script makes Compile panic, and that every
// error it returns is a *CompileError with a line inside the script;
// vacation is allowed (CompileWith), so that its arguments are fuzzed
// too.
func FuzzCompile(f *testing.F) {
	addSeeds(f, func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, src []byte) {
		_, err := CompileWith(src, Options{Vacation: true, Redirect: true})
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
// the implicit keep, a discard comes last and only when nothing is
// stored, a vacation action says what to send, and there are at most
// MaxRedirects redirects, each to an address.
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
		s, err := CompileWith(src, Options{Vacation: true, Redirect: true})
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
		vacations, stores, redirects := 0, 0, 0
		for i, a := range acts {
			switch a.Kind {
			case Keep, FileInto:
				stores++
			case Redirect:
				if redirects++; redirects > MaxRedirects || a.Address == "" {
					t.Fatalf("redirect actions %+v", acts)
				}
			case Discard:
				if i != len(acts)-1 || stores > 0 {
					t.Fatalf("discard with copies stored: %+v", acts)
				}
			case Vacation:
				vacations++
				if a.Vacation == nil || vacations > 1 {
					t.Fatalf("vacation action %+v", acts)
				}
			}
		}
	})
}
