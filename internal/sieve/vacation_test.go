package sieve

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

var withRelay = Options{Relay: true, Vacation: true}

// runVacation compiles script with a relay and runs it on testMsg.
func runVacation(t *testing.T, script string) ([]Action, error) {
	t.Helper()
	s, err := CompileWith([]byte(script), withRelay)
	if err != nil {
		t.Fatalf("CompileWith: %v", err)
	}
	return s.Execute(context.Background(), testMessage([]byte(testMsg)), Envelope{From: "alice@example.org", To: "bob@example.net"}, folders(nil))
}

func TestVacationExecute(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		name   string
		script string
		kinds  []ActionKind
		want   VacationReply // Handle checked apart
	}{
		{"plain", `require "vacation"; vacation "I am away.";`,
			[]ActionKind{Vacation, Keep}, VacationReply{Period: -1, Reason: "I am away."}},
		{"days", `require "vacation"; vacation :days 3 "x";`,
			[]ActionKind{Vacation, Keep}, VacationReply{Period: 3 * day, Reason: "x"}},
		// RFC 5230 4.1: :days 0 is taken as the minimum, one day.
		{"days zero", `require "vacation"; vacation :days 0 "x";`,
			[]ActionKind{Vacation, Keep}, VacationReply{Period: day, Reason: "x"}},
		// RFC 6131 2: :seconds 0 asks for a reply every time. Requiring
		// vacation-seconds requires vacation, as in Pigeonhole.
		{"seconds", `require "vacation-seconds"; vacation :seconds 0 "x";`,
			[]ActionKind{Vacation, Keep}, VacationReply{Period: 0, Reason: "x"}},
		{"all tags", `require "vacation"; vacation :subject "Away" :from "bob@example.net" :addresses ["b@example.net", "c@example.net"] :mime :handle "h" "Content-Type: text/plain

x";`,
			[]ActionKind{Vacation, Keep}, VacationReply{Period: -1, Subject: "Away", From: "bob@example.net",
				Addresses: []string{"b@example.net", "c@example.net"}, MIME: true, Handle: "h", Reason: "Content-Type: text/plain\n\nx"}},
		{"variables", `require ["vacation", "variables"]; if header :matches "subject" "*" { set "s" "${1}"; } vacation :subject "Re: ${s}" :handle "${s}" "Back ${s}";`,
			[]ActionKind{Vacation, Keep}, VacationReply{Period: -1, Subject: "Re: Grüße from [list]", Handle: "Grüße from [list]", Reason: "Back Grüße from [list]"}},
		// RFC 5230 4: vacation leaves the implicit keep as it was.
		{"with fileinto", `require ["vacation", "fileinto"]; fileinto "A"; vacation "x";`,
			[]ActionKind{FileInto, Vacation}, VacationReply{Period: -1, Reason: "x"}},
		{"with discard", `require "vacation"; vacation "x"; discard;`,
			[]ActionKind{Vacation, Discard}, VacationReply{Period: -1, Reason: "x"}},
		// Roundcube's managesieve plugin writes this.
		{"roundcube", "require [\"vacation\"];\n# rule:[vacation]\nif true\n{\n\tvacation :days 7 :addresses \"bob@example.net\" :subject \"Out of office\" \"I am away until Monday.\";\n}\n",
			[]ActionKind{Vacation, Keep}, VacationReply{Period: 7 * day, Subject: "Out of office", Addresses: []string{"bob@example.net"}, Reason: "I am away until Monday."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acts, err := runVacation(t, tt.script)
			if err != nil {
				t.Fatal(err)
			}
			var kinds []ActionKind
			var got *VacationReply
			for _, a := range acts {
				kinds = append(kinds, a.Kind)
				if a.Kind == Vacation {
					got = a.Vacation
				}
			}
			if !slices.Equal(kinds, tt.kinds) {
				t.Fatalf("actions %v, want %v", kinds, tt.kinds)
			}
			if tt.want.Handle == "" {
				tt.want.Handle = got.Handle
			}
			if got.Period != tt.want.Period || got.Subject != tt.want.Subject || got.From != tt.want.From ||
				!slices.Equal(got.Addresses, tt.want.Addresses) || got.MIME != tt.want.MIME ||
				got.Handle != tt.want.Handle || got.Reason != tt.want.Reason {
				t.Errorf("vacation %+v\nwant %+v", *got, tt.want)
			}
			if got.Handle == "" {
				t.Error("empty handle")
			}
		})
	}
}

// TestVacationHandle: without :handle, replies that say something else
// are tracked apart (RFC 5230 4.2), and a changed period is the same
// reply.
func TestVacationHandle(t *testing.T) {
	handle := func(script string) string {
		acts, err := runVacation(t, `require "vacation"; `+script)
		if err != nil {
			t.Fatal(err)
		}
		return acts[0].Vacation.Handle
	}
	a := handle(`vacation "away";`)
	if b := handle(`vacation :days 2 :addresses "x@example.org" "away";`); a != b {
		t.Errorf("the period and addresses changed the handle: %q, %q", a, b)
	}
	for _, other := range []string{`vacation "back soon";`, `vacation :subject "away" "";`, `vacation :from "away" "";`, `vacation :mime "away";`} {
		if handle(other) == a {
			t.Errorf("%s has the handle of vacation \"away\"", other)
		}
	}
	if handle(`vacation :handle "h" "a";`) != handle(`vacation :handle "h" "b";`) {
		t.Error(":handle does not name the reply")
	}
}

func TestVacationTwice(t *testing.T) {
	_, err := runVacation(t, `require "vacation"; vacation "a"; vacation "b";`)
	if err == nil || !strings.Contains(err.Error(), "second vacation") {
		t.Errorf("two vacations: %v, want an error", err)
	}
}

func TestVacationCompileErrors(t *testing.T) {
	tests := []struct{ name, script, msg string }{
		{"not required", `vacation "x";`, `vacation needs require "vacation"`},
		{"seconds not required", `require "vacation"; vacation :seconds 5 "x";`, `:seconds needs require "vacation-seconds"`},
		{"days and seconds", `require ["vacation", "vacation-seconds"]; vacation :days 1 :seconds 5 "x";`, ":days and :seconds cannot be used together"},
		{"no reason", `require "vacation"; vacation :days 1;`, "takes 1 positional"},
		{"days not a number", `require "vacation"; vacation :days "1" "x";`, ":days needs a number"},
		{"subject list", `require "vacation"; vacation :subject ["a", "b"] "x";`, ":subject takes a single string"},
		{"tag twice", `require "vacation"; vacation :mime :mime "x";`, ":mime given twice"},
		{"unknown tag", `require "vacation"; vacation :copy "x";`, "unknown tag :copy"},
		{"a test", `require "vacation"; if vacation "x" { keep; }`, "vacation is not a test"},
		{"redirect off", `require "vacation"; redirect "a@example.org";`, "forwarding is turned off on this server (sieve.redirect)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CompileWith([]byte(tt.script), withRelay)
			var ce *CompileError
			if !errors.As(err, &ce) || !strings.Contains(ce.Msg, tt.msg) {
				t.Errorf("CompileWith = %v, want %q", err, tt.msg)
			}
		})
	}
}
