package sieve

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestRedirect(t *testing.T) {
	tests := []struct {
		name, script string
		want         []string // "redirect ADDR [copy]", "keep", "fileinto X", "discard"
		err          string
	}{
		{"plain", `redirect "carol@example.org";`, []string{"redirect carol@example.org", "discard"}, ""},
		{"display name", `redirect "Carol <carol@EXAMPLE.org>";`, []string{"redirect carol@example.org", "discard"}, ""},
		{"copy", `require "copy"; redirect :copy "carol@example.org";`, []string{"redirect carol@example.org copy", "keep"}, ""},
		{"with keep", `redirect "carol@example.org"; keep;`, []string{"redirect carol@example.org", "keep"}, ""},
		{"with fileinto", `require "fileinto"; redirect "c@example.org"; fileinto "A";`, []string{"redirect c@example.org", "fileinto A"}, ""},
		{"four", `redirect "a@x.org"; redirect "b@x.org"; redirect "c@x.org"; redirect "d@x.org";`,
			[]string{"redirect a@x.org", "redirect b@x.org", "redirect c@x.org", "redirect d@x.org", "discard"}, ""},
		{"five", `redirect "a@x.org"; redirect "b@x.org"; redirect "c@x.org"; redirect "d@x.org"; redirect "e@x.org";`, nil, "more than 4 redirects"},
		{"variable not an address", `require "variables"; set "a" "nobody"; redirect "${a}";`, nil, `"nobody" is not an address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := CompileWith([]byte(tt.script), Options{Redirect: true})
			if err != nil {
				t.Fatal(err)
			}
			acts, err := s.Execute(context.Background(), testMessage([]byte(testMsg)), Envelope{}, folders{"A"})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Execute = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range acts {
				switch a.Kind {
				case Redirect:
					s := "redirect " + a.Address
					if a.Copy {
						s += " copy"
					}
					got = append(got, s)
				case Keep:
					got = append(got, "keep")
				case FileInto:
					got = append(got, "fileinto "+a.Mailbox)
				case Discard:
					got = append(got, "discard")
				}
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("actions %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRedirectCompileErrors(t *testing.T) {
	for _, tt := range []struct {
		name, script, msg string
		opts              Options
	}{
		{"no relay", `redirect "a@example.org";`, "no relay to forward mail through (submission.relay)", Options{}},
		{"turned off", `redirect "a@example.org";`, "forwarding is turned off on this server (sieve.redirect)", Options{Relay: true, Vacation: true}},
		{"both turned off", `redirect "a@example.org";`, "forwarding is turned off on this server (sieve.redirect)", Options{Relay: true}},
		{"vacation, both turned off", `require "vacation"; vacation "x";`, "out-of-office replies are turned off on this server (sieve.vacation)", Options{Relay: true}},
		{"not an address", `redirect "carol";`, `"carol" is not an address`, Options{Redirect: true}},
		{"two addresses", `redirect "a@x.org, b@x.org";`, "is not an address", Options{Redirect: true}},
		{"a list", `redirect ["a@x.org", "b@x.org"];`, "must be a single string", Options{Redirect: true}},
		{"copy not required", `redirect :copy "a@x.org";`, `:copy needs require "copy"`, Options{Redirect: true}},
		{"unknown tag", `redirect :create "a@x.org";`, "unknown tag :create", Options{Redirect: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CompileWith([]byte(tt.script), tt.opts)
			var ce *CompileError
			if !errors.As(err, &ce) || !strings.Contains(ce.Msg, tt.msg) {
				t.Errorf("CompileWith = %v, want %q", err, tt.msg)
			}
		})
	}
}
