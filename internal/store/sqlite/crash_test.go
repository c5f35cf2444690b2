package sqlite

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

// crashChildEnv, when set to a data folder, makes TestKill9 the child that
// writes until it is killed.
const crashChildEnv = "BUZON_SQLITE_CRASH_CHILD"

func crashBody(seq int) string {
	return fmt.Sprintf("Subject: crash %d\r\n\r\n%s\r\n", seq, strings.Repeat("data ", seq%500))
}

// TestKill9 kills a process writing to the store at random moments and
// checks that everything it acknowledged is there, whole, and that Check
// repairs what the kills left behind.
func TestKill9(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("kills processes")
	}
	dir := t.TempDir()
	st, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	acct, err := st.CreateAccount(t.Context(), "crash@example.org", store.Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()

	type ack struct {
		mailbox string
		uid     store.UID
		seq     int
	}
	var acked []ack
	for round := range 6 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKill9$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.AfterFunc(time.Duration(300+rand.IntN(700))*time.Millisecond, func() { cmd.Process.Kill() })
		sc := bufio.NewScanner(out)
		n := 0
		for sc.Scan() {
			var a ack
			if _, err := fmt.Sscanf(sc.Text(), "ok %s %d %d", &a.mailbox, &a.uid, &a.seq); err == nil {
				acked = append(acked, a)
				n++
			}
		}
		cmd.Wait()
		t.Logf("round %d: %d acknowledged before the kill", round, n)
	}

	st, err = Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := t.Context()
	rep, err := st.Check(ctx, true)
	if err != nil || !rep.OK(true) {
		t.Fatalf("Check after the kills: %v, %v", rep, err)
	}
	t.Logf("after the kills:\n%s", rep)
	ss, err := st.Open(ctx, acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	for _, a := range acked {
		mb, err := ss.Mailbox(ctx, a.mailbox)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ss.OpenBody(ctx, mb.ID, a.uid)
		if err != nil {
			t.Errorf("acknowledged %s uid %d: %v", a.mailbox, a.uid, err)
			continue
		}
		got, _ := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
		b.Close()
		if string(got) != crashBody(a.seq) {
			t.Errorf("acknowledged %s uid %d: body %.40q, want message %d", a.mailbox, a.uid, got, a.seq)
		}
	}
	rep, err = st.Check(ctx, false)
	if err != nil || !rep.OK(false) {
		t.Errorf("Check after repair: %v, %v", rep, err)
	}
}

// crashChild appends, copies and flags from several goroutines, printing
// each acknowledged message, until it is killed.
func crashChild(dir string) {
	st, err := Open(Config{Dir: dir})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	ctx := context.Background()
	acct, err := st.LookupAccount(ctx, "crash@example.org")
	if err != nil {
		os.Exit(1)
	}
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		fmt.Printf(format+"\n", args...)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			ss, err := st.Open(ctx, acct.ID)
			if err != nil {
				return
			}
			inbox, _ := ss.Mailbox(ctx, "INBOX")
			archive, _ := ss.Mailbox(ctx, "Archive")
			for i := 0; ; i++ {
				seq := rand.IntN(1 << 30)
				body := crashBody(seq)
				res, err := ss.Append(ctx, inbox.ID, &store.NewMessage{Body: strings.NewReader(body), Size: int64(len(body))})
				if err != nil {
					say("append: %v", err)
					continue
				}
				say("ok INBOX %d %d", res.UID, seq)
				switch i % 3 {
				case 0:
					cr, err := ss.Copy(ctx, inbox.ID, store.UIDSetOf(res.UID), archive.ID)
					if err == nil && len(cr.Dest) == 1 {
						say("ok Archive %d %d", cr.Dest[0], seq)
					}
				case 1:
					ss.StoreFlags(ctx, inbox.ID, store.UIDSetOf(res.UID), store.FlagsAdd, store.Flags{System: store.FlagSeen}, 0)
				case 2:
					if w == 0 {
						// Expunge something never reported: a throwaway copy.
						cr, err := ss.Copy(ctx, inbox.ID, store.UIDSetOf(res.UID), inbox.ID)
						if err == nil && len(cr.Dest) == 1 {
							ss.Expunge(ctx, inbox.ID, store.UIDSetOf(cr.Dest[0]), false)
						}
					}
				}
			}
		})
	}
	wg.Wait()
}
