package main

import "testing"

func TestArgAddress(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ arg, want string }{
		{"bob@example.org", "bob@example.org"},
		{" <bob@example.org> ", "bob@example.org"},
		{"<bob@example.org", "<bob@example.org"}, // unbalanced: left for Lookup to refuse
		{"bob@example.org>", "bob@example.org>"},
		{"<<bob@example.org>>", "<bob@example.org>"},
	} {
		if got := argAddress(tt.arg); got != tt.want {
			t.Errorf("argAddress(%q) = %q, want %q", tt.arg, got, tt.want)
		}
	}
}
