package fetch

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/buzon-mail/buzon/internal/delivery"
	"github.com/buzon-mail/buzon/internal/store"
)

// TestStoreDestSieve: the account's Sieve script decides where a fetched
// message goes, as it does for LMTP: the envelope's sender is the
// message's Return-Path and its recipient the target's address, +detail
// and all; the script's keep goes to the target's mailbox.
func TestStoreDestSieve(t *testing.T) {
	ctx := context.Background()
	local := startLocalStore(t, store.Quota{})
	sess, err := local.st.Open(ctx, local.acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sess.CreateMailbox(ctx, "Fetched", ""); err != nil {
		t.Fatal(err)
	}
	script := `require ["envelope", "fileinto", "mailbox", "subaddress"];
		if envelope :is "from" "list-bounces@example.net" { fileinto :create "Lists"; stop; }
		if allof (envelope :detail "to" "pop", header :contains "subject" "message 3") { discard; }`
	if err := sess.PutSieveScript(ctx, "main", []byte(script), 0); err != nil {
		t.Fatal(err)
	}
	if err := sess.ActivateSieveScript(ctx, "main"); err != nil {
		t.Fatal(err)
	}
	sess.Close()

	local0, domain, _ := strings.Cut(localUser, "@")
	target := StoreTarget{Account: local0 + "+pop@" + domain, Mailbox: "Fetched"}
	d := &delivery.Deliverer{Store: local.st}
	dest, err := newStoreDest(ctx, target, &delivery.Spooler{MemoryLimit: 1 << 20}, d)
	if err != nil {
		t.Fatal(err)
	}
	for i, msg := range [][]byte{
		append([]byte("Return-Path: <list-bounces@example.net>\r\n"), testMessage(1, 0)...),
		testMessage(2, 0),
		testMessage(3, 0),
	} {
		if err := dest.Deliver(ctx, spooled(t, string(rune('1'+i)), msg), nil, noIntent); err != nil {
			t.Fatal(err)
		}
	}
	for box, want := range map[string][]string{"Lists": {"message 1"}, "Fetched": {"message 2"}, "INBOX": nil} {
		if got := local.subjects(t, box); !slices.Equal(got, want) {
			t.Errorf("%s holds %q, want %q", box, got, want)
		}
	}
}
