package bench

import (
	"bytes"
	"io"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseSources(t *testing.T) {
	addrs := func(ss ...string) []netip.Addr {
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out
	}
	tests := []struct {
		in, host string
		want     []netip.Addr
		wantLen  int
		wantErr  bool
	}{
		{in: "none", host: "127.0.0.1"},
		{in: "", host: "127.0.0.1"},
		{in: "auto", host: "192.0.2.1"},
		{in: "auto", host: "localhost"},
		{in: "auto", host: "127.0.0.1", wantLen: 49},
		{in: "127.0.0.2", want: addrs("127.0.0.2")},
		{in: "127.0.0.2-127.0.0.4, 10.0.0.1", want: addrs("127.0.0.2", "127.0.0.3", "127.0.0.4", "10.0.0.1")},
		{in: "127.0.0.1-127.0.1.0", wantLen: 256},
		{in: "127.0.0.9-127.0.0.2", wantErr: true},
		{in: "127.0.0.2-::1", wantErr: true},
		{in: "bogus", wantErr: true},
		{in: "10.0.0.0-10.255.255.255", wantErr: true},
	}
	for _, tc := range tests {
		got, err := ParseSources(tc.in, tc.host)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseSources(%q, %q): err = %v", tc.in, tc.host, err)
			continue
		}
		if tc.want != nil && !slices.Equal(got, tc.want) {
			t.Errorf("ParseSources(%q) = %v, want %v", tc.in, got, tc.want)
		}
		if tc.want == nil && len(got) != tc.wantLen {
			t.Errorf("ParseSources(%q, %q) gave %d addresses, want %d", tc.in, tc.host, len(got), tc.wantLen)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{Profile: ProfileDeliver}.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Name != ProfileDeliver || c.Warmup != 2*time.Second || c.Users != 1 || c.user(0) != "user1" {
		t.Errorf("defaults: %+v", c)
	}
	for _, p := range []string{ProfileFill, ProfileIMAPSync} {
		if w := (Config{Profile: p}).Defaults().Warmup; w >= 0 {
			t.Errorf("%s warms up for %v by default", p, w)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"unknown profile", Config{Profile: "smtp"}, "not one of"},
		{"pattern without %d", Config{Profile: ProfileDeliver, UserPattern: "alice"}, "exactly one %d"},
		{"pattern with two verbs", Config{Profile: ProfileDeliver, UserPattern: "u%d%s"}, "exactly one %d"},
		{"fill without size", Config{Profile: ProfileFill}, "mailbox size"},
		{"pop3 with more clients than users", Config{Profile: ProfilePOP3Download, Users: 2, Concurrency: 3}, "users >= concurrency"},
		{"sizes upside down", Config{Profile: ProfileDeliver, MinSize: 5000, MaxSize: 4000}, "message sizes"},
		{"bad port", Config{Profile: ProfileDeliver, IMAPPorts: []int{143, 70000}}, "imap port 70000"},
		{"fine", Config{Profile: ProfileIMAPMixed, Users: 1, Concurrency: 8}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg.Defaults()
			err := c.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one with %q", err, tc.wantErr)
			}
		})
	}
}

func TestParsePIDs(t *testing.T) {
	tests := []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{"", nil, false},
		{"12", []int{12}, false},
		{"12,13, 14", []int{12, 13, 14}, false},
		{"12\n13\n", []int{12, 13}, false},
		{"12,x", nil, true},
		{"0", nil, true},
	}
	for _, tc := range tests {
		got, err := parsePIDs(tc.in)
		if (err != nil) != tc.wantErr || !slices.Equal(got, tc.want) {
			t.Errorf("parsePIDs(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestPortsFlag(t *testing.T) {
	tests := []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{"143", []int{143}, false},
		{"13143,13243", []int{13143, 13243}, false},
		{"13143, 13243", []int{13143, 13243}, false},
		{"", nil, true},
		{"143,", nil, true},
		{"0", nil, true},
		{"70000", nil, true},
	}
	for _, tc := range tests {
		var p portsFlag
		err := p.Set(tc.in)
		if (err != nil) != tc.wantErr || (err == nil && !slices.Equal(p, tc.want)) {
			t.Errorf("Set(%q) = %v, %v; want %v, error %v", tc.in, p, err, tc.want, tc.wantErr)
		}
	}
	if got := nodeAddr([]string{"a", "b"}, 3); got != "b" {
		t.Errorf("client 3 of two nodes uses %s, want b", got)
	}
}

// TestHelp: --help lists the flags and exits cleanly; no profile is an
// error that shows the same usage.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, nil} {
		var out bytes.Buffer
		err := Main(args, io.Discard, &out)
		if (err == nil) != (len(args) > 0) {
			t.Errorf("Main(%q) = %v", args, err)
		}
		for _, want := range []string{"usage: buzon bench PROFILE", "-imap-port ports", "-mailbox-size"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("Main(%q) printed no %q:\n%s", args, want, out.String())
			}
		}
	}
}
