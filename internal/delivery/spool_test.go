package delivery

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/buzon-mail/buzon/internal/message"
	"github.com/buzon-mail/buzon/internal/store"
)

func TestSpoolNormalisesLineEndings(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"Subject: a\r\n\r\nbody\r\n", "Subject: a\r\n\r\nbody\r\n"},
		{"Subject: a\n\nbody\n", "Subject: a\r\n\r\nbody\r\n"},
		{"Subject: a\r\rbody\r", "Subject: a\r\n\r\nbody\r\n"},
		{"Subject: a\r\r\nFrom: b\r\r\n\r\r\nbody\r\r", "Subject: a\r\nFrom: b\r\n\r\nbody\r\n\r\n"},
		// A header passed on twice by a Windows program keeps its From.
		{"Subject: a\r\r\r\nFrom: b\r\r\r\n\r\nbody\r\n", "Subject: a\r\nFrom: b\r\n\r\nbody\r\n"},
		{"mixed\r\nlf\ncr\rend", "mixed\r\nlf\r\ncr\r\nend"},
		{"8-bit: \xe9t\xe9\n", "8-bit: \xe9t\xe9\r\n"},
		{"", ""},
	}
	for _, tt := range tests {
		for _, limit := range []int64{0, 1 << 20} { // file and memory spools
			sp := &Spooler{Dir: t.TempDir(), MemoryLimit: limit}
			// One byte at a time, so CR LF pairs straddle reads.
			msg, err := sp.Spool(iotest.OneByteReader(strings.NewReader(tt.in)))
			if err != nil {
				t.Fatal(err)
			}
			got := readAll(t, msg)
			if got != tt.want || msg.Size() != int64(len(tt.want)) {
				t.Errorf("Spool(%q) with memory limit %d = %q (size %d), want %q", tt.in, limit, got, msg.Size(), tt.want)
			}
			msg.Close()
		}
	}
}

// BenchmarkSpool spools a 1 MiB message in memory, arriving with CRLF
// line breaks (LMTP) and with LF ones (buzon deliver from an MTA).
func BenchmarkSpool(b *testing.B) {
	for _, tc := range []struct{ name, eol string }{{"crlf", "\r\n"}, {"lf", "\n"}} {
		msg := append([]byte("Subject: bench"+tc.eol+tc.eol), bytes.Repeat([]byte("a line of text in a message body, about 70 octets long, give or take"+tc.eol), 1<<20/70)...)
		b.Run(tc.name, func(b *testing.B) {
			sp := &Spooler{MemoryLimit: 4 << 20}
			b.SetBytes(int64(len(msg)))
			for range b.N {
				m, err := sp.Spool(bytes.NewReader(msg))
				if err != nil {
					b.Fatal(err)
				}
				m.Close()
			}
		})
	}
}

func readAll(t *testing.T, msg *Spooled) string {
	t.Helper()
	nm := msg.NewMessage(store.Flags{}, time.Time{})
	b, err := io.ReadAll(nm.Body)
	if err != nil {
		t.Fatal(err)
	}
	if nm.Size != int64(len(b)) {
		t.Errorf("NewMessage says %d bytes, reads %d", nm.Size, len(b))
	}
	return string(b)
}

func TestSpoolParsesOnce(t *testing.T) {
	t.Parallel()
	raw := "From: a@example.org\r\nSubject: hi\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b\r\n\r\ntwo\r\n--b--\r\n"
	sp := &Spooler{MemoryLimit: 1 << 20}
	msg, err := sp.Spool(strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	defer msg.Close()
	if msg.Part().Envelope == nil || msg.Part().Envelope.Subject != "hi" || len(msg.Part().Parts) != 2 {
		t.Fatalf("parsed structure %+v", msg.Part())
	}
	nm := msg.NewMessage(store.Flags{System: store.FlagSeen}, time.Time{})
	back, err := message.Unmarshal(nm.Structure)
	if err != nil || len(back.Parts) != 2 {
		t.Fatalf("stored structure does not decode: %v", err)
	}
	// Each NewMessage reads from the start.
	if a, b := readAll(t, msg), readAll(t, msg); a != raw || b != raw {
		t.Errorf("second read differs")
	}
}

func TestSpoolSizeLimit(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("0123456789abcde\n"), 4096) // 64 KiB, 68 KiB with CRLF
	for _, tt := range []struct {
		max  int64
		want error
	}{
		{64 << 10, ErrTooLarge},   // the CRLF form counts
		{68 << 10, nil},           // exactly at the limit
		{68<<10 - 1, ErrTooLarge}, // one byte short
		{0, nil},                  // no limit
	} {
		sp := &Spooler{Dir: t.TempDir(), MemoryLimit: 1024, MaxSize: tt.max}
		msg, err := sp.Spool(bytes.NewReader(big))
		if !errors.Is(err, tt.want) {
			t.Errorf("max %d: err %v, want %v", tt.max, err, tt.want)
		}
		if msg != nil {
			msg.Close()
		}
	}
}

// TestSpoolSizeLimitFinalCR: a bare CR at the very end becomes CRLF, and
// the limit counts its LF too.
func TestSpoolSizeLimitFinalCR(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		max  int64
		want error
	}{
		{6, ErrTooLarge},
		{7, nil},
	} {
		sp := &Spooler{MemoryLimit: 1 << 20, MaxSize: tt.max}
		msg, err := sp.Spool(strings.NewReader("a\r\nbc\r")) // 7 octets as CRLF
		if !errors.Is(err, tt.want) {
			t.Errorf("max %d: err %v, want %v", tt.max, err, tt.want)
		}
		if msg != nil {
			if msg.Size() != 7 {
				t.Errorf("max %d: size %d, want 7", tt.max, msg.Size())
			}
			msg.Close()
		}
	}
}

func TestSpoolReadError(t *testing.T) {
	t.Parallel()
	sp := &Spooler{MemoryLimit: 1 << 20}
	boom := errors.New("connection reset")
	if _, err := sp.Spool(io.MultiReader(strings.NewReader("Subject: x\r\n"), iotest.ErrReader(boom))); !errors.Is(err, boom) {
		t.Errorf("err %v, want %v", err, boom)
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		code int
		enh  [3]int
	}{
		{nil, 250, [3]int{2, 0, 0}},
		{ErrUnknownRecipient, 550, [3]int{5, 1, 1}},
		{store.ErrOverQuota, 552, [3]int{5, 2, 2}},
		{ErrTooLarge, 552, [3]int{5, 3, 4}},
		{store.ErrStorageFull, 452, [3]int{4, 3, 1}},
		{store.ErrUnavailable, 451, [3]int{4, 3, 0}},
		{errors.New("disk on fire"), 451, [3]int{4, 3, 0}},
	}
	for _, tt := range tests {
		if o := Classify(tt.err); o.Code != tt.code || o.Enhanced != tt.enh {
			t.Errorf("Classify(%v) = %d %v, want %d %v", tt.err, o.Code, o.Enhanced, tt.code, tt.enh)
		}
	}
}

// TestSpoolWriter: a message written in pieces is spooled like one read,
// the tee sees exactly the spooled bytes, and the size limit holds.
func TestSpoolWriter(t *testing.T) {
	t.Parallel()
	raw := "Subject: pieces\n\n" + strings.Repeat("line\n", 300)
	for _, limit := range []int64{64, 1 << 20} { // file and memory spools
		var tee bytes.Buffer
		w := (&Spooler{Dir: t.TempDir(), MemoryLimit: limit}).Writer(&tee)
		for i := 0; i < len(raw); i += 7 {
			if _, err := w.Write([]byte(raw[i:min(i+7, len(raw))])); err != nil {
				t.Fatal(err)
			}
		}
		msg, err := w.Finish()
		if err != nil {
			t.Fatal(err)
		}
		want := strings.ReplaceAll(raw, "\n", "\r\n")
		if got := readAll(t, msg); got != want || tee.String() != want {
			t.Errorf("memory limit %d: spooled %d bytes, tee %d, want %d", limit, len(got), tee.Len(), len(want))
		}
		if msg.Part().Envelope == nil || msg.Part().Envelope.Subject != "pieces" {
			t.Errorf("not parsed: %+v", msg.Part())
		}
		msg.Close()
	}
	w := (&Spooler{MemoryLimit: 1 << 20, MaxSize: 100}).Writer(nil)
	_, err := w.Write(bytes.Repeat([]byte("x"), 200))
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the size limit: %v", err)
	}
	if _, err := w.Finish(); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Finish after the limit: %v", err)
	}
}
