package imapserver

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/message"
	"github.com/buzon-mail/buzon/internal/store"
)

// benchPreviewMessages is the size of the mailbox BenchmarkPreview lists.
const benchPreviewMessages = 5000

// benchPreviewMessage returns message i of the benchmark's mailbox: in
// turn a plain message, a multipart/alternative reply, an HTML-only
// newsletter with a 20 KB <head>, and a message whose text is followed
// by a 200 KB attachment, each with a header of about 1.5 KB.
func benchPreviewMessage(i int) string {
	var h strings.Builder
	for r := range 6 {
		fmt.Fprintf(&h, "Received: from mx%d.example.net (mx%d.example.net [192.0.2.%d])\n\tby mail.example.org (Postfix) with ESMTPS id %08X\n\tfor <user@example.org>; Mon, 1 Jan 2024 10:00:00 +0000\n", r, r, r+1, i*7+r)
	}
	fmt.Fprintf(&h, "Date: Mon, 1 Jan 2024 10:00:00 +0000\nFrom: Person %d <p%d@example.org>\nTo: user@example.org\nMessage-ID: <%d@bench.example>\nSubject: Message %d\nMIME-Version: 1.0\n", i, i, i, i)
	words := strings.Repeat("Some words of a message body, as people write them.\n", 20)
	switch i % 4 {
	case 0:
		h.WriteString("Content-Type: text/plain; charset=utf-8\n\n" + words)
	case 1:
		h.WriteString("Content-Type: multipart/alternative; boundary=alt\n\n--alt\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n" +
			"> a quoted line of the message before\n" + words + "--alt\nContent-Type: text/html; charset=utf-8\n\n<html><body><p>" + words + "</p></body></html>\n--alt--\n")
	case 2:
		h.WriteString("Content-Type: text/html; charset=utf-8\n\n<html><head><style>\n" + strings.Repeat(".c { color: #333; margin: 0; }\n", 650) +
			"</style></head><body><span style=\"display:none\">This week's offers</span><table><tr><td>" + words + "</td></tr></table></body></html>\n")
	case 3:
		h.WriteString("Content-Type: multipart/mixed; boundary=mix\n\n--mix\nContent-Type: text/plain; charset=utf-8\n\n" + words +
			"--mix\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=a.pdf\n\n" +
			strings.Repeat(strings.Repeat("QUJD", 19)+"\n", 2700) + "--mix--\n")
	}
	return h.String()
}

// BenchmarkPreview measures FETCH 1:* (PREVIEW) on a mailbox of
// benchPreviewMessages messages against the items a client fetches to
// list a mailbox without it (ENVELOPE, a few header fields, the first
// 2 KB of the text), on a server on the embedded store (or
// BUZON_TEST_STORE's), and Part.Preview alone on messages in memory. It
// is what ARCHITECTURE.md's choice of making previews at FETCH time
// rests on.
//
//	go test -run '^$' -bench BenchmarkPreview ./internal/imapserver
func BenchmarkPreview(b *testing.B) {
	e := newTestEnv(b)
	sess := e.session()
	ctx := context.Background()
	mb, err := sess.Mailbox(ctx, "INBOX")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				raw := crlf(benchPreviewMessage(i))
				if _, err := testAppend(ctx, sess, mb.ID, strings.NewReader(raw), int64(len(raw)), store.Flags{}, time.Now()); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := range benchPreviewMessages {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}

	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	br := bufio.NewReaderSize(nc, 1<<20)
	do := func(cmd string) (n int) {
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
				return n
			}
			if strings.Contains(l, " FETCH (") {
				n++
			}
		}
	}
	if _, err := br.ReadString('\n'); err != nil { // greeting
		b.Fatal(err)
	}
	do("LOGIN " + testUser + " " + testPass)
	do("EXAMINE INBOX")
	for _, item := range []string{"PREVIEW", "ENVELOPE", "BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE)]", "BODY.PEEK[TEXT]<0.2048>"} {
		b.Run(strings.Fields(strings.NewReplacer("[", " ", ".PEEK", "").Replace(item))[0], func(b *testing.B) {
			for b.Loop() {
				if n := do("FETCH 1:* (" + item + ")"); n != benchPreviewMessages {
					b.Fatalf("%s: %d answers", item, n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/benchPreviewMessages, "µs/msg")
		})
	}
	b.Run("algorithm", func(b *testing.B) {
		var raws [][]byte
		var trees []*message.Part
		for i := range 4 {
			raw := []byte(crlf(benchPreviewMessage(i)))
			tree, err := message.Parse(bytes.NewReader(raw))
			if err != nil {
				b.Fatal(err)
			}
			raws, trees = append(raws, raw), append(trees, tree)
		}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := trees[i%4].Preview(bytes.NewReader(raws[i%4])); err != nil {
				b.Fatal(err)
			}
		}
	})
}
