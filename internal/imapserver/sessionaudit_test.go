package imapserver

import (
	"strings"
	"testing"
)

// TestEnableOnce: ENABLED lists what the command turned on, not what was
// on before (RFC 5161 3.2); UTF8=ACCEPT is implied by IMAP4rev2.
func TestEnableOnce(t *testing.T) {
	e := newTestEnv(t)
	for _, tc := range []struct {
		name string
		cmds []string // ENABLE arguments
		want []string // their ENABLED responses
	}{
		{"UTF8=ACCEPT twice", []string{"UTF8=ACCEPT", "UTF8=ACCEPT"}, []string{"* ENABLED UTF8=ACCEPT", "* ENABLED"}},
		{"after IMAP4rev2", []string{"IMAP4rev2", "UTF8=ACCEPT"}, []string{"* ENABLED IMAP4rev2", "* ENABLED"}},
		{"CONDSTORE twice", []string{"CONDSTORE UTF8=ACCEPT", "UTF8=ACCEPT CONDSTORE"}, []string{"* ENABLED CONDSTORE UTF8=ACCEPT", "* ENABLED"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.login()
			for i, args := range tc.cmds {
				if got := strings.Join(c.mustOK("ENABLE "+args), "\n"); got != tc.want[i] {
					t.Errorf("ENABLE %s: %q, want %q", args, got, tc.want[i])
				}
			}
		})
	}
}
