package message

import (
	"fmt"
	"testing"
)

func TestFields(t *testing.T) {
	tests := []struct {
		name, header string
		want         []string // "Name=value"
	}{
		{"simple", "From: a@b\r\nTo: c@d\r\n\r\nbody: no\r\n", []string{"From=a@b", "To=c@d"}},
		{"folded", "Subject: one\r\n two\r\n\tthree\r\n\r\n", []string{"Subject=one two\tthree"}},
		{"space before colon", "Subject : x\r\n", []string{"Subject=x"}},
		{"not fields skipped", " lost\r\nno colon\r\n more\r\n:x\r\nA: 1\r\n", []string{"A=1"}},
		{"bare LF and no end", "A: 1\nB:2", []string{"A=1", "B=2"}},
		{"empty value", "Cc:\r\n\r\n", []string{"Cc="}},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for f := range Fields([]byte(tt.header)) {
				got = append(got, string(f.Name)+"="+f.Value())
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("Fields = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSpacedValue(t *testing.T) {
	for header, want := range map[string]string{
		"Subject: quarterly\r\n\tbudget\r\n": "quarterly budget", // Outlook's fold
		"Subject: quarterly\n\tbudget\n":     "quarterly budget",
		"Subject: quarterly\r\n budget\r\n":  "quarterly budget",
		"Subject: a\tb\r\n":                  "a\tb", // a tab within a line stays
		"Subject:\r\n\tfolded at once\r\n":   "folded at once",
		"To: a@b,\r\n\t c@d,\r\n\t\te@f\r\n": "a@b,  c@d, \te@f", // the second tab is no fold's
		"Subject: none folded\r\n":           "none folded",
	} {
		for f := range Fields([]byte(header)) {
			if got := f.SpacedValue(); got != want {
				t.Errorf("SpacedValue of %q = %q, want %q", header, got, want)
			}
		}
	}
}

func ExampleFields() {
	header := []byte("Subject: a long\r\n subject\r\nX-Spam: yes\r\n\r\n")
	for f := range Fields(header) {
		fmt.Printf("%s: %q\n", f.Name, f.Value())
	}
	// Output:
	// Subject: "a long subject"
	// X-Spam: "yes"
}
