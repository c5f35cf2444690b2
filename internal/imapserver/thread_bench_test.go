package imapserver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/store"
)

// benchThreadMessages is the size of the mailbox BenchmarkThread threads:
// a folder Roundcube would thread on every look.
const benchThreadMessages = 10000

// BenchmarkThread measures THREAD on a mailbox of benchThreadMessages
// messages as a person's mail has them: threads of one to thirty
// messages, References growing along each thread (cut to the last ten,
// as mailers do), subjects of replies that repeat, a header block of
// about 1.5 KB with its Received lines. It runs each command through a
// server on the embedded store (or BUZON_TEST_STORE's), and the
// REFERENCES algorithm alone on what the command reads.
//
//	go test -run '^$' -bench BenchmarkThread ./internal/imapserver
func BenchmarkThread(b *testing.B) {
	e := newTestEnv(b)
	msgs := benchThreadMailbox(b, e.session())

	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	br := bufio.NewReaderSize(nc, 1<<20)
	do := func(cmd string) (untagged []string) {
		if _, err := io.WriteString(nc, "a "+cmd+"\r\n"); err != nil {
			b.Fatal(err)
		}
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				b.Fatal(err)
			}
			if strings.HasPrefix(l, "a ") {
				if !strings.HasPrefix(l, "a OK") {
					b.Fatalf("%s: %s", cmd, l)
				}
				return untagged
			}
			untagged = append(untagged, l)
		}
	}
	if _, err := br.ReadString('\n'); err != nil { // greeting
		b.Fatal(err)
	}
	do("LOGIN " + testUser + " " + testPass)
	do("SELECT INBOX")
	for _, cmd := range []string{"THREAD REFERENCES UTF-8 ALL", "THREAD ORDEREDSUBJECT UTF-8 ALL", "SORT (DATE) UTF-8 ALL"} {
		b.Run(strings.Fields(cmd)[1], func(b *testing.B) {
			for b.Loop() {
				out := do(cmd)
				if len(out) != 1 || !strings.HasPrefix(out[0], "* THREAD (") && !strings.HasPrefix(out[0], "* SORT ") {
					b.Fatalf("%s: %.200q", cmd, out)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/benchThreadMessages, "µs/msg")
		})
	}
	b.Run("algorithm", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if roots := threadReferences(msgs); len(roots) == 0 {
				b.Fatal("no threads")
			}
		}
	})
}

// benchThreadMailbox fills INBOX with the benchmark's messages and
// returns what threading them compares, as xthreadValues reads it.
func benchThreadMailbox(b *testing.B, sess store.Session) []threadMsg {
	ctx := context.Background()
	mb, err := sess.Mailbox(ctx, "INBOX")
	if err != nil {
		b.Fatal(err)
	}
	raws := make([]string, benchThreadMessages)
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, thread := 0, 0; i < len(raws); thread++ {
		size := 1 + thread*7919%30
		var ids []string
		for k := 0; k < size && i < len(raws); k, i = k+1, i+1 {
			id := fmt.Sprintf("<%d.%d@bench.example>", thread, k)
			var h strings.Builder
			for r := range 6 {
				fmt.Fprintf(&h, "Received: from mx%d.example.net (mx%d.example.net [192.0.2.%d])\n\tby mail.example.org (Postfix) with ESMTPS id %08X\n\tfor <user@example.org>; Mon, 1 Jan 2024 10:00:00 +0000\n", r, r, r+1, i*7+r)
			}
			fmt.Fprintf(&h, "Date: %s\nFrom: Person %d <p%d@example.org>\nTo: user@example.org\nMessage-ID: %s\n",
				start.Add(time.Duration(i)*time.Minute).Format(time.RFC1123Z), k, k, id)
			subject := fmt.Sprintf("Topic %d", thread%700) // subjects repeat across threads
			if k > 0 {
				subject = "Re: " + subject
				refs := ids[max(0, len(ids)-10):]
				fmt.Fprintf(&h, "In-Reply-To: %s\nReferences: %s\n", ids[len(ids)-1], strings.Join(refs, "\n "))
			}
			fmt.Fprintf(&h, "Subject: %s\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n", subject)
			h.WriteString(strings.Repeat("Some words of a message body, as people write them.\n", 20))
			raws[i] = h.String()
			ids = append(ids, id)
		}
	}
	// Append from several goroutines, which the store commits together.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				raw := crlf(raws[i])
				if _, err := testAppend(ctx, sess, mb.ID, strings.NewReader(raw), int64(len(raw)), store.Flags{}, start); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := range raws {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	msgs := make([]threadMsg, len(raws))
	for i, raw := range raws {
		t := &msgs[i]
		t.seq = uint32(i + 1)
		_, header, _ := strings.Cut(raw, "\nDate: ")
		date, _, _ := strings.Cut(header, "\n")
		if st, ok := sentTime(date); ok {
			t.date = st.Unix()
		}
		_, subject, _ := strings.Cut(raw, "\nSubject: ")
		subject, _, _ = strings.Cut(subject, "\n")
		t.setSubject(subject)
		_, id, _ := strings.Cut(raw, "\nMessage-ID: ")
		t.id = firstMsgID(id)
		if _, refs, ok := strings.Cut(raw, "\nReferences: "); ok {
			refs, _, _ = strings.Cut(refs, "\nSubject:")
			t.refs = msgIDs(refs, -1)
		}
	}
	return msgs
}
