// Package progress follows long runs that store messages one by one (the
// fetch client's downloads, buzon import) for a person: a progress bar on a
// terminal, or a log line every 100 messages.
package progress

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Progress follows one run: the fetch client's of one account, an
// import's.
type Progress interface {
	// Start announces messages about to be stored; it may be called
	// again as more are found.
	Start(messages int, bytes int64)
	// Stored counts one message done, of the given size.
	Stored(bytes int64)
	// Finish ends the run's progress display.
	Finish()
}

// None is a Progress that shows nothing.
type None struct{}

func (None) Start(int, int64) {}
func (None) Stored(int64)     {}
func (None) Finish()          {}

// logEvery is how many messages pass between progress log lines.
const logEvery = 100

// logProgress writes a progress line every logEvery messages of long
// runs: for logs, and when no terminal is watching.
type logProgress struct {
	log      *slog.Logger
	total    int
	bytes    int64
	done     int
	got      int64
	start    time.Time
	announce bool
}

var _ Progress = (*logProgress)(nil)

// NewLog returns a Progress that logs a line every 100 messages when a
// run has more than that to store.
func NewLog(log *slog.Logger) Progress { return &logProgress{log: log} }

func (p *logProgress) Start(messages int, bytes int64) {
	p.total += messages
	p.bytes += bytes
	if p.start.IsZero() {
		p.start = time.Now()
	}
	if !p.announce && p.total > logEvery {
		p.announce = true
		p.log.Info("downloading", "messages", p.total, "bytes", p.bytes)
	}
}

func (p *logProgress) Stored(bytes int64) {
	p.done++
	p.got += bytes
	if p.announce && p.done%logEvery == 0 {
		secs := time.Since(p.start).Seconds()
		p.log.Info("progress", "messages", fmt.Sprintf("%d/%d", p.done, p.total),
			"bytes", fmt.Sprintf("%d/%d", p.got, p.bytes), "bytes_per_second", int64(float64(p.got)/max(secs, 0.001)))
	}
}

func (p *logProgress) Finish() {}

// barThreshold is the fewest messages a run needs for a bar.
const barThreshold = 10

// barProgress draws a progress bar on a terminal: messages, bytes and
// rate. Short runs get none.
type barProgress struct {
	w       io.Writer
	account string
	bar     *progressbar.ProgressBar
	total   int
	done    int
	bytes   int64 // announced
	got     int64 // stored
}

var _ Progress = (*barProgress)(nil)

// NewBar returns a Progress drawing a bar on w, a terminal, for runs of
// at least 10 messages, named for the account.
func NewBar(w io.Writer, account string) Progress {
	return &barProgress{w: w, account: account}
}

func (p *barProgress) Start(messages int, bytes int64) {
	p.total += messages
	p.bytes += bytes
	if p.bar != nil {
		p.bar.ChangeMax64(p.bytes)
		p.describe()
		return
	}
	if p.total < barThreshold {
		return
	}
	p.bar = progressbar.NewOptions64(p.bytes,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.w) }),
		progressbar.OptionSetPredictTime(true),
	)
	p.bar.Set64(p.got)
	p.describe()
}

func (p *barProgress) describe() {
	p.bar.Describe(fmt.Sprintf("%s %d/%d", p.account, p.done, p.total))
}

func (p *barProgress) Stored(bytes int64) {
	p.done++
	p.got += bytes
	if p.bar != nil {
		p.describe()
		p.bar.Add64(bytes)
	}
}

func (p *barProgress) Finish() {
	if p.bar != nil {
		p.bar.Finish()
	}
}
