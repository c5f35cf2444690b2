package bench

import (
	"flag"
	"os"
	"testing"
)

// TestManual runs the command line from the test binary, for use before
// the buzon binary has a bench command:
//
//	go test -c -o /tmp/bench.test ./internal/bench
//	/tmp/bench.test -test.run '^TestManual$' -test.timeout 0 PROFILE [flags]
//
// or: go test ./internal/bench -run '^TestManual$' -args PROFILE [flags].
// Without arguments it is skipped.
func TestManual(t *testing.T) {
	if flag.NArg() == 0 {
		t.Skip("manual driver: pass a bench command line after -args")
	}
	if err := Main(flag.Args(), os.Stdout, os.Stderr); err != nil {
		t.Fatal(err)
	}
}
