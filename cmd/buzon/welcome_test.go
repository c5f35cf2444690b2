package main

import "testing"

// TestClientAddr: the welcome text names the host name where the listener
// takes every interface, which no client can connect to.
func TestClientAddr(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"127.0.0.1:1143", "127.0.0.1:1143"},
		{"0.0.0.0:993", "mail.example.org:993"},
		{"[::]:993", "mail.example.org:993"},
		{":995", "mail.example.org:995"},
		{"[2001:db8::1]:143", "[2001:db8::1]:143"},
		{"mx.example.net:110", "mx.example.net:110"},
	} {
		if got := clientAddr(tc.addr, "mail.example.org"); got != tc.want {
			t.Errorf("clientAddr(%q) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}
