package fetch

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/buzon-mail/buzon/internal/store"
)

// TestStoreQuotaWarning: a run into a buzon account that takes it past a
// level of its quota puts a notice into INBOX, as LMTP would, and logs
// it; the next run, which stays above the
// level, adds none.
func TestStoreQuotaWarning(t *testing.T) {
	for _, proto := range []string{ProtoPOP3, ProtoIMAP} {
		t.Run(proto, func(t *testing.T) {
			b := startBuzon(t)
			var msgs [][]byte
			for i := 1; i <= 3; i++ {
				msgs = append(msgs, testMessage(i, 30_000))
			}
			b.deliver(t, "INBOX", msgs...)
			local := startLocalStore(t, store.Quota{})
			local.quotaWarnings = []int{80, 95} // the default of delivery.quota_warnings
			a := b.account(t, proto, TLSImplicit)
			a.Mode, a.Maildir = ModeDelete, ""
			a.Store = &StoreTarget{Data: "local", Account: localUser}
			cfg := testConfig(t, a)
			opts := testOptions(t)
			opts.OpenStore = local.opener
			var logs logBuffer
			opts.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(&logs, testLogWriter{t}), nil))
			local.log = opts.Logger

			// Three messages of 30,000 bytes in 100 KiB: the third takes
			// the account from 59% past 80%, its notice to 89%.
			local.setQuota(t, store.Quota{MaxBytes: 100 << 10})
			if s := mustFetch(t, cfg, opts); s.Fetched != 3 {
				t.Fatalf("first run: %v", s)
			}
			got := local.subjects(t, "INBOX")
			want := append(wantSubjects([2]int{1, 3}), "Your mailbox is 89% full")
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("INBOX holds %q, want %q", got, want)
			}
			if n := logs.count(fmt.Sprintf(`msg="quota warning stored" account=%s quota_level=80 `, localUser)); n != 1 {
				t.Errorf("%d log lines tell of the notice, want 1", n)
			}
			// Above 80 already: another message warns of nothing.
			b.deliver(t, "INBOX", testMessage(4, 2_000))
			if s := mustFetch(t, cfg, opts); s.Fetched != 1 {
				t.Fatalf("second run: %v", s)
			}
			if got := local.subjects(t, "INBOX"); len(got) != 5 || strings.Count(strings.Join(got, "|"), "Your mailbox is") != 1 {
				t.Errorf("INBOX holds %q, want the 4 messages and one notice", got)
			}
		})
	}
}
