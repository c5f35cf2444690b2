package imapserver

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// TestThreadGoIMAP threads testdata/thread with go-imap's client, whose
// parser of THREAD answers is independent of ours: it reads the
// algorithms offered, and for each algorithm, by number and by UID, the
// threads it parses are the ones the raw answer shows.
func TestThreadGoIMAP(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	files, err := filepath.Glob("testdata/thread/*.eml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/thread: %v", err)
	}
	var msgs []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, string(b))
	}
	raw := e.loginWithGap(msgs...)

	c := e.goClient()
	caps, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	algorithms := caps.ThreadAlgorithms()
	slices.Sort(algorithms) // from a map: in no order
	if len(algorithms) != 2 || algorithms[0] != imap.ThreadOrderedSubject || algorithms[1] != imap.ThreadReferences {
		t.Errorf("thread algorithms: %q", algorithms)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	for _, alg := range algorithms {
		for _, uid := range []bool{false, true} {
			opts := &imapclient.ThreadOptions{Algorithm: alg, SearchCriteria: &imap.SearchCriteria{}}
			cmd, prefix := c.Thread(opts), "THREAD "
			if uid {
				cmd, prefix = c.UIDThread(opts), "UID THREAD "
			}
			data, err := cmd.Wait()
			if err != nil {
				t.Fatalf("%s%s: %v", prefix, alg, err)
			}
			want := raw.mustOK(prefix + string(alg) + " UTF-8 ALL")
			if len(want) != 1 || !strings.HasPrefix(want[0], "* THREAD (") {
				t.Fatalf("%s%s: %q", prefix, alg, want)
			}
			if got := "* THREAD " + goThreads(data); got != want[0] {
				t.Errorf("%s%s through go-imap:\n  %s\nraw:\n  %s", prefix, alg, got, want[0])
			}
		}
	}
}

// goThreads writes go-imap's threads back as RFC 5256 5 does.
func goThreads(threads []imapclient.ThreadData) string {
	var b strings.Builder
	for _, th := range threads {
		b.WriteByte('(')
		for i, n := range th.Chain {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(strconv.FormatUint(uint64(n), 10))
		}
		if len(th.Chain) > 0 && len(th.SubThreads) > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(goThreads(th.SubThreads))
		b.WriteByte(')')
	}
	return b.String()
}
