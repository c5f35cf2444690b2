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

// TestRespTextASCII: an error that names a mailbox is 7-bit for a client
// that has not enabled UTF-8, with the name as the client spelt it in
// modified UTF-7; one that has gets UTF-8. No control character the
// client sent breaks the response line.
func TestRespTextASCII(t *testing.T) {
	e := newTestEnv(t)
	c := e.login()
	_, tagged := c.cmd("SELECT Caf&AOk-")
	if !strings.Contains(tagged, " NO ") || !strings.Contains(tagged, "Caf&AOk-") || !isASCII(tagged) {
		t.Errorf("SELECT Caf&AOk-: %q, want NO naming Caf&AOk-, in ASCII", tagged)
	}

	c.mustOK("ENABLE UTF8=ACCEPT")
	if _, tagged := c.cmd(`SELECT "Café"`); !strings.Contains(tagged, " NO ") || !strings.Contains(tagged, "Café") {
		t.Errorf("SELECT Café with UTF8=ACCEPT: %q, want NO naming Café", tagged)
	}
	_, tagged = c.cmd("SELECT {7+}\r\nx\ny\rzé")
	if !strings.Contains(tagged, " NO ") || !strings.Contains(tagged, "x y zé") {
		t.Errorf("SELECT of a name with a CR and LF: %q, want NO naming x y zé", tagged)
	}
	c.mustOK("NOOP") // nothing of the name was taken for a command
}
