package imapserver

import (
	"strings"
	"testing"
)

// TestAliasAsParent: CREATE of a folder below an alias ("Sent Items/2024"
// from Outlook) is refused rather than make the alias a second Sent, which
// the alias would name from then on.
func TestAliasAsParent(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	c := e.login()
	if _, tagged := c.cmd(`CREATE "Sent Items/2024"`); !strings.Contains(tagged, "NO [CANNOT]") {
		t.Errorf(`CREATE "Sent Items/2024": %q, want NO [CANNOT]`, tagged)
	}
	c.mustOK(`CREATE x`)
	if _, tagged := c.cmd(`RENAME x "Deleted Items/x"`); !strings.Contains(tagged, "NO [CANNOT]") {
		t.Errorf(`RENAME x "Deleted Items/x": %q, want NO [CANNOT]`, tagged)
	}
	for _, l := range c.mustOK(`LIST "" "*"`) {
		if strings.Contains(l, "Items") {
			t.Errorf("an alias became a mailbox: %q", l)
		}
	}
	c.mustOK(`CREATE "Sent/2024"`)
	c.mustOK(`CREATE "Projects/Sent Items"`) // only a top-level name is an alias
}

// TestRenameToOwnAlias: the Sent mailbox may be renamed to an alias of
// itself; another mailbox may not take the name.
func TestRenameToOwnAlias(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	c := e.login()
	c.mustOK(`RENAME Sent "Sent Items"`)
	c.mustOK(`CREATE y`)
	if _, tagged := c.cmd(`RENAME y "Sent Items"`); !strings.Contains(tagged, "NO [ALREADYEXISTS]") {
		t.Errorf(`RENAME y "Sent Items" after Sent took the name: %q`, tagged)
	}
}

// TestRenameToItself: RENAME of the selected mailbox to its own name is
// refused and leaves it selected.
func TestRenameToItself(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	c := e.login()
	c.mustOK(`CREATE x`)
	c.mustOK(`SELECT x`)
	for _, name := range []string{"x", "Sent"} {
		if _, tagged := c.cmd(`RENAME ` + name + ` ` + name); !strings.Contains(tagged, "NO [ALREADYEXISTS]") {
			t.Errorf("RENAME %s %s: %q, want NO [ALREADYEXISTS]", name, name, tagged)
		}
	}
	c.mustOK(`FETCH 1:* (FLAGS)`)
}
