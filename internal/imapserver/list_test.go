package imapserver

import "testing"

func TestMatchPattern(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"*", "Work/2024", true},
		{"%", "Work/2024", false},
		{"Work/%", "Work/2024", true},
		{"work/%", "Work/2024", false}, // other names keep their case
		{"W*4", "Work/2024", true},
		// INBOX, and the first level of the names under it, in any case.
		{"inbox", "INBOX", true},
		{"inb*", "INBOX", true},
		{"In%", "INBOX", true},
		{"inbox/%", "INBOX/Lists", true},
		{"Inbox/lists", "INBOX/Lists", false},
		{"inbox*", "INBOXES", false}, // not INBOX: its own case
		{"INBOX*", "INBOXES", true},
		{"i*", "Invoices", false},
	}
	for _, tt := range tests {
		if got := matchPattern(tt.pattern, tt.name); got != tt.want {
			t.Errorf("matchPattern(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}
