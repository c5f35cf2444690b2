package bench

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"
)

// Profile names, the values of Config.Profile.
const (
	ProfileFill         = "fill"
	ProfileDeliver      = "deliver"
	ProfilePOP3Download = "pop3-download"
	ProfileIMAPSync     = "imap-sync"
	ProfileIMAPMixed    = "imap-mixed"
	ProfileIDLEFanout   = "idle-fanout"
)

// Profiles lists every profile, in the order a full benchmark runs them.
func Profiles() []string {
	return []string{ProfileFill, ProfileDeliver, ProfilePOP3Download, ProfileIMAPSync, ProfileIMAPMixed, ProfileIDLEFanout}
}

// Config describes one benchmark. Zero values take the default stated on
// each field.
type Config struct {
	// Profile is the workload, one of Profiles(). Required.
	Profile string `json:"profile"`
	// Name labels the case in reports, e.g. "imap-sync-100k" for one of
	// several imap-sync runs. Default: Profile.
	Name string `json:"name"`
	// Label names the server under test in reports, e.g. "buzon".
	Label string `json:"label,omitempty"`

	// Host is the server's address. Default 127.0.0.1.
	Host string `json:"host"`
	// IMAPPorts are the server's plain IMAP ports: one, or one per node
	// of a server that runs as several processes on one host (buzon
	// nodes sharing a PostgreSQL database). Client (or connection, or
	// fill worker) i uses port i modulo their number, so the clients are
	// spread evenly over the nodes. Default [143].
	IMAPPorts []int `json:"imap_ports"`
	// POP3Ports are the server's plain POP3 ports, used as IMAPPorts
	// are. Default [110].
	POP3Ports []int `json:"pop3_ports"`
	// LMTPPorts are the server's LMTP ports, used as IMAPPorts are.
	// Default [24].
	LMTPPorts []int `json:"lmtp_ports"`

	// UserPattern makes a user's login name, also used as its LMTP
	// recipient, from its number with fmt: "user%d" for Dovecot's peer,
	// "user%d@example.org" for buzon. Default "user%d".
	UserPattern string `json:"user_pattern"`
	// FirstUser is the number of the first user. Default 1.
	FirstUser int `json:"first_user"`
	// Users is how many users, numbered FirstUser onwards. Default 1.
	Users int `json:"users"`
	// Password is every user's password. Default "pass".
	Password string `json:"-"`

	// Concurrency is how many clients work at once; for idle-fanout, how
	// many connections are being set up at once. Default 4.
	Concurrency int `json:"concurrency"`
	// Duration is the length of one measured run of deliver,
	// pop3-download, imap-sync and imap-mixed: no operation starts after
	// it, and the ones under way finish. Default 10s.
	Duration time.Duration `json:"duration"`
	// Count ends a run after this many operations (messages delivered,
	// sessions, IMAP commands) even if Duration has not passed. Default 0:
	// Duration alone ends a run.
	Count int `json:"count,omitempty"`
	// Warmup is unrecorded load before the first measured run. 0 means
	// the profile's default: 2s, or none for fill and imap-sync (whose
	// first sync would be warmed); negative means none. For idle-fanout
	// it is one small fan-out of at most 10 connections.
	Warmup time.Duration `json:"warmup"`
	// Repeat is the number of measured runs; results report each and
	// their median. Default 1.
	Repeat int `json:"repeat"`
	// Timeout bounds the wait for any one server response, and
	// idle-fanout's wait for its notifications. Default 60s.
	Timeout time.Duration `json:"timeout"`

	// MailboxSize is the number of messages fill makes each user hold.
	// Required by fill.
	MailboxSize int `json:"mailbox_size,omitempty"`
	// NewestBodies is how many of the newest messages imap-sync fetches
	// whole. Default 50.
	NewestBodies int `json:"newest_bodies,omitempty"`
	// SessionOps is how many commands an imap-mixed client sends before
	// it logs out and logs in again. Default 100.
	SessionOps int `json:"session_ops,omitempty"`
	// Connections is the number of idle-fanout IDLE connections. Default
	// 100.
	Connections int `json:"connections,omitempty"`
	// Settle is how long idle-fanout lets the server settle before it
	// measures its memory: before opening the connections, and with all
	// of them idling. Default 1s.
	Settle time.Duration `json:"settle,omitempty"`

	// Seed makes the generated messages; the same seed gives the same
	// bytes. Default 1.
	Seed uint64 `json:"seed"`
	// MinSize and MaxSize bound the size of generated messages in bytes.
	// Default 1 KiB and 100 KiB.
	MinSize int `json:"min_size"`
	// MaxSize: see MinSize.
	MaxSize int `json:"max_size"`
	// Mbox, if set, is an mbox file (such as `dovecot.sh mbox` writes)
	// whose messages are delivered and appended instead of generated ones.
	Mbox string `json:"mbox,omitempty"`

	// Sources are local addresses the client sockets are bound to in
	// turn, so that tens of thousands of connections neither run out of
	// ephemeral ports nor meet a per-address limit. Default none: the
	// kernel chooses.
	Sources []netip.Addr `json:"-"`
	// PIDs are server processes whose memory and CPU time are measured,
	// together with all their descendants.
	PIDs []int `json:"-"`
	// PIDCmd is a shell command printing the server's process ids, e.g.
	// "dovecot.sh pids", run once; it adds to PIDs.
	PIDCmd string `json:"-"`

	// Logger receives progress and errors. Default: discard.
	Logger *slog.Logger `json:"-"`
}

// Defaults returns c with every zero field set to its default.
func (c Config) Defaults() Config {
	setDefault(&c.Name, c.Profile)
	setDefault(&c.Host, "127.0.0.1")
	if len(c.IMAPPorts) == 0 {
		c.IMAPPorts = []int{143}
	}
	if len(c.POP3Ports) == 0 {
		c.POP3Ports = []int{110}
	}
	if len(c.LMTPPorts) == 0 {
		c.LMTPPorts = []int{24}
	}
	setDefault(&c.UserPattern, "user%d")
	setDefault(&c.FirstUser, 1)
	setDefault(&c.Users, 1)
	setDefault(&c.Password, "pass")
	setDefault(&c.Concurrency, 4)
	setDefault(&c.Duration, 10*time.Second)
	if c.Warmup == 0 {
		switch c.Profile {
		case ProfileFill, ProfileIMAPSync:
			c.Warmup = -1
		default:
			c.Warmup = 2 * time.Second
		}
	}
	setDefault(&c.Repeat, 1)
	setDefault(&c.Timeout, 60*time.Second)
	setDefault(&c.NewestBodies, 50)
	setDefault(&c.SessionOps, 100)
	setDefault(&c.Connections, 100)
	setDefault(&c.Settle, time.Second)
	setDefault(&c.Seed, 1)
	setDefault(&c.MinSize, 1024)
	setDefault(&c.MaxSize, 100*1024)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Validate reports settings Run cannot work with. It expects Defaults to
// have been applied.
func (c *Config) Validate() error {
	var errs []error
	known := false
	for _, p := range Profiles() {
		known = known || p == c.Profile
	}
	if !known {
		errs = append(errs, fmt.Errorf("profile %q is not one of %s", c.Profile, strings.Join(Profiles(), ", ")))
	}
	if strings.Count(c.UserPattern, "%d") != 1 || strings.Count(c.UserPattern, "%") != 1 {
		errs = append(errs, fmt.Errorf("user pattern %q must hold exactly one %%d", c.UserPattern))
	}
	for _, p := range []struct {
		name  string
		ports []int
	}{{"imap port", c.IMAPPorts}, {"pop3 port", c.POP3Ports}, {"lmtp port", c.LMTPPorts}} {
		for _, v := range p.ports {
			if v < 1 || v > 65535 {
				errs = append(errs, fmt.Errorf("%s %d is not 1-65535", p.name, v))
			}
		}
	}
	for _, p := range []struct {
		name string
		v    int
	}{{"users", c.Users}, {"concurrency", c.Concurrency}, {"repeat", c.Repeat}, {"connections", c.Connections},
		{"newest bodies", c.NewestBodies}, {"session ops", c.SessionOps}} {
		if p.v < 1 {
			errs = append(errs, fmt.Errorf("%s must be at least 1 (got %d)", p.name, p.v))
		}
	}
	if c.FirstUser < 0 || c.Count < 0 {
		errs = append(errs, errors.New("first user and count must not be negative"))
	}
	if c.Duration <= 0 || c.Timeout <= 0 || c.Settle < 0 {
		errs = append(errs, errors.New("duration and timeout must be positive"))
	}
	if c.MinSize < 256 || c.MaxSize < c.MinSize {
		errs = append(errs, fmt.Errorf("message sizes %d-%d: need 256 <= min <= max", c.MinSize, c.MaxSize))
	}
	if (c.Profile == ProfilePOP3Download || c.Profile == ProfileIMAPSync) && c.Users < c.Concurrency {
		errs = append(errs, fmt.Errorf("%s gives each client a user of its own: need users >= concurrency (%d < %d)",
			c.Profile, c.Users, c.Concurrency))
	}
	if c.Profile == ProfileFill && c.MailboxSize < 1 {
		errs = append(errs, errors.New("fill needs a mailbox size"))
	}
	return errors.Join(errs...)
}

// user returns the login name of the k-th user (k counts from 0).
func (c *Config) user(k int) string {
	return fmt.Sprintf(c.UserPattern, c.FirstUser+k)
}
