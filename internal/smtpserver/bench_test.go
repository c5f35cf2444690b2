package smtpserver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/buzon-mail/buzon/internal/delivery"
	"github.com/buzon-mail/buzon/internal/store"
)

// discardStore is a real store for the accounts, whose sessions have an
// INBOX and no quota, and whose appends read the message and keep
// nothing: a benchmark measures the server's work per message rather
// than the store's.
type discardStore struct{ store.Store }

func (s discardStore) Open(ctx context.Context, id int64) (store.Session, error) {
	return discardSession{}, nil
}

// discardSession implements the calls delivery and the RCPT quota check
// make; any other panics.
type discardSession struct{ store.Session }

func (discardSession) Mailbox(context.Context, string) (store.Mailbox, error) {
	return store.Mailbox{ID: 1, Name: "INBOX", UIDValidity: 1}, nil
}

func (discardSession) QuotaUsage(context.Context) (store.QuotaUsage, error) {
	return store.QuotaUsage{}, nil
}

func (discardSession) Append(_ context.Context, _ int64, msg *store.NewMessage) (store.AppendResult, error) {
	if _, err := io.CopyN(io.Discard, msg.Body, msg.Size); err != nil {
		return store.AppendResult{}, err
	}
	return store.AppendResult{UIDValidity: 1, UID: 1}, nil
}

func (discardSession) Close() error { return nil }

// BenchmarkSMTPMessage sends one message after another over one SMTP
// session, MAIL, RCPT and DATA pipelined, to a store that keeps nothing:
// the server's cost per message (reading, spooling, parsing, the retry
// memory) with the client's.
func BenchmarkSMTPMessage(b *testing.B) {
	for _, size := range []int{4 << 10, 256 << 10} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			f, _ := newSMTPFixture(b, 0, func(c *Config) {
				c.Deliverer = &delivery.Deliverer{Store: discardStore{c.Deliverer.Store}}
				c.Logger = nil
			})
			var body strings.Builder
			body.WriteString("From: carol@example.net\r\nTo: alice@example.org\r\nSubject: bench\r\n\r\n")
			for body.Len() < size {
				body.WriteString("A line of text such as a message holds, some seventy octets long.\r\n")
			}
			data := body.String() + ".\r\n"
			nc, err := net.Dial("tcp", f.addr)
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			r := bufio.NewReader(nc)
			reply := func(want string) {
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						b.Fatal(err)
					}
					if !strings.HasPrefix(line, want) {
						b.Fatalf("reply %q, want %s", line, want)
					}
					if line[3] == ' ' {
						return
					}
				}
			}
			reply("220")
			io.WriteString(nc, "EHLO client.example.net\r\n")
			reply("250")
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				io.WriteString(nc, "MAIL FROM:<dave@example.net>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
				reply("250")
				reply("250")
				reply("354")
				io.WriteString(nc, data)
				reply("250")
			}
		})
	}
}

// BenchmarkSMTPDeliver is the server's work on a message once its
// envelope is taken, without the network: the data read into the spool
// in 32 KiB pieces (trace fields, limits, the hop count, and whatever the
// retry memory asks for), parsed, and handed to a store that keeps
// nothing, for one recipient.
func BenchmarkSMTPDeliver(b *testing.B) {
	for _, size := range []int{4 << 10, 256 << 10} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			f, _ := newSMTPFixture(b, 0, func(c *Config) {
				c.Deliverer = &delivery.Deliverer{Store: discardStore{c.Deliverer.Store}}
				c.Logger = nil
			})
			to, err := f.srv.cfg.Deliverer.Lookup(context.Background(), "alice@example.org")
			if err != nil {
				b.Fatal(err)
			}
			client, server := net.Pipe()
			defer client.Close()
			go io.Copy(io.Discard, client)
			c := newConn(f.srv, server, false)
			var body strings.Builder
			body.WriteString("From: carol@example.net\r\nTo: alice@example.org\r\nSubject: bench\r\n\r\n")
			for body.Len() < size {
				body.WriteString("A line of text such as a message holds, some seventy octets long.\r\n")
			}
			data := []byte(body.String())
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				c.from = path{mailbox: "dave@example.net"}
				c.rcpts = []recipient{{addr: "alice@example.org", key: "alice@example.org", acct: to.Account, copyKey: to.CopyKey()}}
				m := c.newData()
				for p := data; len(p) > 0; {
					n := min(len(p), 32<<10)
					m.write(p[:n])
					p = p[n:]
				}
				c.deliver(m)
			}
		})
	}
}
