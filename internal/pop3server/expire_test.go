package pop3server_test

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/pop3server"
	"github.com/buzon-mail/buzon/internal/pop3server/pop3test"
	"github.com/buzon-mail/buzon/internal/store"
)

// TestExpireManyDays: an expire_days as large as the configuration
// allows, or larger (a Server built without Validate), means "practically
// never": a retrieved message stays, where a cutoff computed as a
// Duration of as many days would overflow into the future and expunge
// every retrieved message at once.
func TestExpireManyDays(t *testing.T) {
	t.Parallel()
	for _, days := range []int{106_752, 200_000, config.MaxDays, 999_999_999} {
		t.Run(fmt.Sprint(days), func(t *testing.T) {
			t.Parallel()
			env := pop3test.Start(t, openStore(t, t.TempDir()), pop3test.Options{
				Config: func(c *pop3server.Config) { c.POP3.ExpireDays = days },
			})
			env.Append(t, alice, []byte(msgHello), store.Flags{})
			c := login(t, env, alice)
			if _, err := c.Retr(1, io.Discard); err != nil {
				t.Fatal(err)
			}
			if err := c.Quit(); err != nil {
				t.Fatal(err)
			}
			env.Clock.Advance(365 * 24 * time.Hour)
			if n, err := env.Server.Expire(context.Background()); n != 0 || err != nil {
				t.Fatalf("Expire with expire_days %d = %d, %v; want nothing removed", days, n, err)
			}
			if n := len(env.Inbox(t, alice)); n != 1 {
				t.Errorf("INBOX holds %d messages; want 1", n)
			}
		})
	}
}
