package bench

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Generator makes realistic RFC 5322 messages with CRLF line endings:
// plain text, quoted-printable, multipart/alternative, and multipart/mixed
// with attachments and now and then a forwarded message/rfc822. A message
// depends only on the seed, the user number and the index, never on the
// server or the user's address, so two servers filled alike hold the same
// bytes.
type Generator struct {
	// Seed selects the corpus.
	Seed uint64
	// MinSize and MaxSize bound a message's size in bytes; sizes are
	// uniform in between, the result within a few hundred bytes of it.
	MinSize, MaxSize int
}

// rng is splitmix64: tiny, fast, and its output is fixed by its
// definition, so the corpus never changes with the Go release (math/rand
// promises that only for some of its functions).
type rng struct{ s uint64 }

func newRNG(keys ...uint64) *rng {
	r := &rng{s: 0x6a09e667f3bcc909}
	for _, k := range keys {
		r.s ^= k
		r.s = r.next()
	}
	return r
}

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intn returns a number in [0, n).
func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

// between returns a number in [lo, hi].
func (r *rng) between(lo, hi int) int { return lo + r.intn(hi-lo+1) }

// chance is true with probability p.
func (r *rng) chance(p float64) bool { return float64(r.next()>>11)/(1<<53) < p }

func pick[T any](r *rng, s []T) T { return s[r.intn(len(s))] }

var (
	genWords = strings.Fields(`the of and to in is that for it as was with be by on not he this are or his
		from at which but have an they you were her she there been one all we their has would when if so no
		will more can out up about who them into some could time what other than then now only its like over
		also new just any these may people two first year because after most work well should meeting project
		report budget quarter review update deadline customer server release invoice schedule proposal draft
		contract team office travel agenda minutes feedback question answer please thanks regards attached
		document summary estimate numbers figures monday friday`)
	genFirst   = strings.Fields("Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Mallory Niaj Olivia Peggy Rupert Sybil Trent Victor Walter Zoë José Ærø Björn Chloé")
	genLast    = strings.Fields("Smith Jones Müller García Rossi Dubois Nowak Svensson Tanaka Kowalski Silva Novak Brown Wilson Lee")
	genDomains = strings.Fields("example.com example.org example.net mail.example.com corp.example lists.example.org")
	genSubject = []string{"Quarterly report", "Meeting notes", "Invoice %d", "Re: budget for %s", "Project status update",
		"Draft proposal v%d", "Travel plans for %s", "Question about the release", "Weekly summary",
		"Contract review", "Photos from the offsite", "Server maintenance window", "Lunch on Friday?",
		"Résumé and cover letter", "Überprüfung der Zahlen", "Preguntas sobre el contrato", "日本語のテスト"}
	genMonths  = strings.Fields("January February March April May June July August September October November December")
	genMailers = []string{"Thunderbird 115.6", "Apple Mail (2.3774)", "Microsoft Outlook 16.0", "mutt 2.2.9"}
	genQPWords = []string{"caf=C3=A9", "na=C3=AFve", "=C3=BCber", "d=C3=A9j=C3=A0", "stra=C3=9Fe"}
	genAttach  = [][2]string{{"application/pdf", "pdf"}, {"image/png", "png"}, {"image/jpeg", "jpg"},
		{"application/octet-stream", "bin"}, {"application/zip", "zip"}, {"text/csv", "csv"}}
	genZones = []int{-8, -5, 0, 1, 2, 5, 9}
)

// encodedWord returns s as an RFC 2047 encoded word when it is not ASCII.
func encodedWord(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return "=?UTF-8?B?" + base64.StdEncoding.EncodeToString([]byte(s)) + "?="
		}
	}
	return s
}

func person(r *rng) (display, addr string) {
	first, last := pick(r, genFirst), pick(r, genLast)
	local := strings.Map(func(c rune) rune {
		if c < 0x80 {
			return c
		}
		return -1
	}, strings.ToLower(first+"."+last))
	return encodedWord(first + " " + last), local + "@" + pick(r, genDomains)
}

// msgWriter builds a message with CRLF line endings.
type msgWriter struct{ bytes.Buffer }

func (w *msgWriter) line(format string, args ...any) {
	fmt.Fprintf(&w.Buffer, format, args...)
	w.WriteString("\r\n")
}

// text writes lines of words until about n bytes were written; lines stay
// within 73 columns, so quoted-printable text keeps to its 76.
func (w *msgWriter) text(r *rng, n int, extra []string) {
	end := w.Len() + n
	for w.Len() < end {
		width, col := r.between(50, 72), 0
		for {
			word := pick(r, genWords)
			if extra != nil && r.chance(0.08) {
				word = pick(r, extra)
			}
			if col > 0 && col+1+len(word) > width {
				break
			}
			if col > 0 {
				w.WriteByte(' ')
				col++
			}
			w.WriteString(word)
			col += len(word)
		}
		if r.chance(0.3) {
			w.WriteByte(".,;!?"[r.intn(5)])
		}
		w.WriteString("\r\n")
		if r.chance(0.12) {
			w.WriteString("\r\n")
		}
	}
}

// html writes an HTML rendering of about n bytes of text.
func (w *msgWriter) html(r *rng, n int) {
	w.line(`<!DOCTYPE html>`)
	w.line(`<html><head><meta charset="utf-8"></head><body>`)
	end := w.Len() + n
	for w.Len() < end {
		w.WriteString("<p>")
		w.text(r, min(end-w.Len(), r.between(200, 800)), nil)
		w.line("</p>")
	}
	w.line("</body></html>")
}

// base64 writes about n bytes of base64 of random data, in 76-column lines.
func (w *msgWriter) base64(r *rng, n int) {
	raw := make([]byte, max(16, n*3/4)/57*57+57)
	for i := 0; i < len(raw); i += 8 {
		v := r.next()
		for j := 0; j < 8 && i+j < len(raw); j++ {
			raw[i+j] = byte(v >> (8 * j))
		}
	}
	var enc [76]byte
	for i := 0; i < len(raw); i += 57 {
		base64.StdEncoding.Encode(enc[:], raw[i:i+57])
		w.Write(enc[:])
		w.WriteString("\r\n")
	}
}

func (w *msgWriter) csv(r *rng, n int) {
	w.line("date,item,quantity,amount")
	end := w.Len() + n
	for w.Len() < end {
		w.line("2024-%02d-%02d,%s,%d,%d.%02d", r.between(1, 12), r.between(1, 28), pick(r, genWords),
			r.between(1, 99), r.between(0, 999), r.intn(100))
	}
}

// Message returns message i of the given user.
func (g Generator) Message(user, i int) []byte {
	r := newRNG(g.Seed, uint64(user), uint64(i))
	target := r.between(g.MinSize, max(g.MinSize, g.MaxSize))
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	zone := pick(r, genZones)
	when := base.Add(-time.Duration(r.intn(365*86400)) * time.Second).In(time.FixedZone("", zone*3600))
	date := when.Format("Mon, 02 Jan 2006 15:04:05 -0700")
	fromName, from := person(r)
	fromDomain := from[strings.IndexByte(from, '@')+1:]
	subject := pick(r, genSubject)
	switch {
	case strings.Contains(subject, "%d"):
		subject = fmt.Sprintf(subject, r.between(1, 9999))
	case strings.Contains(subject, "%s"):
		subject = fmt.Sprintf(subject, pick(r, genMonths))
	}
	rcpt := fmt.Sprintf("user%d@example.org", user)

	w := &msgWriter{}
	w.Grow(target + 4096)
	w.line("Return-Path: <%s>", from)
	w.line("Received: from mx%d.%s (mx.%s [192.0.2.%d])", r.between(1, 9), fromDomain, fromDomain, r.between(1, 254))
	w.line("\tby mail.example.org (Postfix) with ESMTPS id %010X", r.next()>>24)
	w.line("\tfor <%s>; %s", rcpt, date)
	w.line("Date: %s", date)
	w.line("From: %s <%s>", fromName, from)
	w.line("To: User %d <%s>", user, rcpt)
	if r.chance(0.3) {
		ccName, cc := person(r)
		w.line("Cc: %s <%s>", ccName, cc)
	}
	w.line("Subject: %s", encodedWord(subject))
	w.line("Message-ID: <%016x.%d.%d.%d@%s>", r.next(), g.Seed, user, i, fromDomain)
	if strings.HasPrefix(subject, "Re:") || r.chance(0.15) {
		ref := fmt.Sprintf("<%016x@%s>", r.next(), pick(r, genDomains))
		w.line("In-Reply-To: %s", ref)
		w.line("References: %s", ref)
	}
	if r.chance(0.2) {
		w.line("List-Id: Team discussion <team.%s>", pick(r, genDomains))
	}
	w.line("X-Mailer: %s", pick(r, genMailers))
	w.line("MIME-Version: 1.0")
	budget := max(200, target-w.Len()-300)
	boundary := fmt.Sprintf("=_b%012x", r.next()>>16)

	switch kind := r.intn(100); {
	case kind < 35:
		w.line("Content-Type: text/plain; charset=utf-8; format=flowed")
		w.line("Content-Transfer-Encoding: 7bit")
		w.line("")
		w.text(r, budget, nil)
	case kind < 45:
		w.line("Content-Type: text/plain; charset=utf-8")
		w.line("Content-Transfer-Encoding: quoted-printable")
		w.line("")
		w.text(r, budget, genQPWords)
	case kind < 65:
		w.line(`Content-Type: multipart/alternative; boundary="%s"`, boundary)
		w.line("")
		w.line("This is a multi-part message in MIME format.")
		w.line("")
		w.line("--%s", boundary)
		w.line("Content-Type: text/plain; charset=utf-8")
		w.line("Content-Transfer-Encoding: 7bit")
		w.line("")
		w.text(r, budget*2/5, nil)
		w.line("--%s", boundary)
		w.line("Content-Type: text/html; charset=utf-8")
		w.line("Content-Transfer-Encoding: 7bit")
		w.line("")
		w.html(r, budget*3/5)
		w.line("--%s--", boundary)
	default:
		w.line(`Content-Type: multipart/mixed; boundary="%s"`, boundary)
		w.line("")
		w.line("This is a multi-part message in MIME format.")
		w.line("")
		w.line("--%s", boundary)
		start := w.Len()
		textSize := min(budget/4, r.between(300, 6000))
		if r.chance(0.5) {
			alt := fmt.Sprintf("=_a%012x", r.next()>>16)
			w.line(`Content-Type: multipart/alternative; boundary="%s"`, alt)
			w.line("")
			w.line("--%s", alt)
			w.line("Content-Type: text/plain; charset=utf-8")
			w.line("")
			w.text(r, textSize, nil)
			w.line("--%s", alt)
			w.line("Content-Type: text/html; charset=utf-8")
			w.line("")
			w.html(r, textSize)
			w.line("--%s--", alt)
		} else {
			w.line("Content-Type: text/plain; charset=utf-8")
			w.line("Content-Transfer-Encoding: 7bit")
			w.line("")
			w.text(r, textSize, nil)
		}
		forward := r.chance(0.15) && budget > 4000
		attachments := r.between(1, 3)
		if forward {
			budget -= 1000
		}
		each := max(64, (budget-(w.Len()-start))/attachments-250)
		for range attachments {
			a := pick(r, genAttach)
			name := fmt.Sprintf("%s-%d.%s", pick(r, genWords), r.between(1, 999), a[1])
			w.line("--%s", boundary)
			w.line(`Content-Type: %s; name="%s"`, a[0], name)
			if a[1] == "csv" {
				w.line("Content-Transfer-Encoding: 7bit")
			} else {
				w.line("Content-Transfer-Encoding: base64")
			}
			w.line(`Content-Disposition: attachment; filename="%s"`, name)
			w.line("")
			if a[1] == "csv" {
				w.csv(r, each)
			} else {
				w.base64(r, each)
			}
		}
		if forward {
			fwdName, fwd := person(r)
			w.line("--%s", boundary)
			w.line("Content-Type: message/rfc822")
			w.line("Content-Disposition: inline")
			w.line("")
			w.line("From: %s <%s>", fwdName, fwd)
			w.line("To: %s", rcpt)
			w.line("Subject: forwarded note")
			w.line("Date: %s", when.AddDate(0, 0, -3).Format("Mon, 02 Jan 2006 15:04:05 -0700"))
			w.line("Message-ID: <fwd.%d.%d.%d@%s>", g.Seed, user, i, fwd[strings.IndexByte(fwd, '@')+1:])
			w.line("MIME-Version: 1.0")
			w.line("Content-Type: text/plain; charset=us-ascii")
			w.line("")
			w.text(r, 400, nil)
		}
		w.line("--%s--", boundary)
	}
	return w.Bytes()
}

// dotStuff returns msg as the data of an LMTP DATA command (RFC 5321
// 4.5.2): lines starting with a dot get another one, and the terminating
// ".CRLF" follows. msg has CRLF line endings.
func dotStuff(msg []byte) []byte {
	out := make([]byte, 0, len(msg)+len(msg)/1000+5)
	atStart := true
	for len(msg) > 0 {
		if atStart && msg[0] == '.' {
			out = append(out, '.')
		}
		i := bytes.IndexByte(msg, '\n')
		if i < 0 {
			out = append(out, msg...)
			out = append(out, '\r', '\n')
			break
		}
		out = append(out, msg[:i+1]...)
		msg = msg[i+1:]
		atStart = true
	}
	return append(out, '.', '\r', '\n')
}

// toCRLF returns b with every bare LF made CRLF.
func toCRLF(b []byte) []byte {
	if !bytes.Contains(b, []byte("\n")) {
		return b
	}
	out := make([]byte, 0, len(b)+bytes.Count(b, []byte("\n")))
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

// readMbox splits an mbox (mboxrd: ">From " lines unescaped) into messages
// with CRLF line endings.
func readMbox(r io.Reader) ([][]byte, error) {
	br := bufio.NewReaderSize(r, 64*1024)
	var msgs [][]byte
	var cur []byte
	inMsg := false
	finish := func() {
		if inMsg {
			// mbox separates messages with a blank line that is not part of them.
			cur = bytes.TrimSuffix(cur, []byte("\n"))
			msgs = append(msgs, toCRLF(cur))
		}
		cur = nil
	}
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			switch {
			case bytes.HasPrefix(line, []byte("From ")):
				finish()
				inMsg = true
			case inMsg:
				if t := bytes.TrimLeft(line, ">"); len(t) < len(line) && bytes.HasPrefix(t, []byte("From ")) {
					line = line[1:]
				}
				cur = append(cur, line...)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	finish()
	return msgs, nil
}

// poolMessage is one message ready to be delivered or appended.
type poolMessage struct {
	raw  []byte // CRLF message, for APPEND
	data []byte // dot-stuffed with the terminating ".CRLF", for LMTP DATA
}

// poolSize is the number of distinct generated messages deliver, APPEND
// and idle-fanout cycle through: enough for a realistic size mix, few
// enough to build in a moment.
const poolSize = 128

// messagePool returns the messages deliver, APPEND and idle-fanout send:
// those of cfg.Mbox, or generated ones (user number 0).
func messagePool(cfg *Config) ([]poolMessage, error) {
	var raws [][]byte
	if cfg.Mbox != "" {
		f, err := os.Open(cfg.Mbox)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if raws, err = readMbox(f); err != nil {
			return nil, fmt.Errorf("read mbox %s: %w", cfg.Mbox, err)
		}
		if len(raws) == 0 {
			return nil, fmt.Errorf("mbox %s holds no messages", cfg.Mbox)
		}
	} else {
		g := Generator{Seed: cfg.Seed, MinSize: cfg.MinSize, MaxSize: cfg.MaxSize}
		for i := range poolSize {
			raws = append(raws, g.Message(0, i+1))
		}
	}
	pool := make([]poolMessage, len(raws))
	for i, raw := range raws {
		pool[i] = poolMessage{raw: raw, data: dotStuff(raw)}
	}
	return pool, nil
}
