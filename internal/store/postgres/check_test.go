package postgres

import "testing"

// TestCheck damages counters behind the store's back; Check reports it,
// repairs it, and then finds nothing.
func TestCheck(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	ns := nodes(t, 1)
	s := ns[0]
	_, ss, inbox := newAccount(t, s, "alice@example.org")
	for i := range 3 {
		if _, err := ss.Append(ctx, inbox.ID, message(i)); err != nil {
			t.Fatal(err)
		}
	}
	damage := []string{
		`UPDATE account_state SET bytes = bytes + 7, modseq = 1`,
		`UPDATE mailboxes SET uidnext = 2, highest_modseq = 0 WHERE name = 'INBOX'`,
		`INSERT INTO bodies (account_id, size) SELECT id, 0 FROM accounts`,
		`UPDATE mailboxes SET tombstones = 3 WHERE name = 'Trash'`,
	}
	for _, q := range damage {
		if _, err := s.pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := s.Check(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK(false) || len(rep.Problems) != 6 || rep.Messages != 3 {
		t.Fatalf("Check found %d problems in %d messages: %v", len(rep.Problems), rep.Messages, rep.Problems)
	}
	if rep, err = s.Check(ctx, true); err != nil || !rep.OK(true) {
		t.Fatalf("Check with repair: %v, %v", rep.Problems, err)
	}
	if rep, err = s.Check(ctx, false); err != nil || len(rep.Problems) != 0 {
		t.Fatalf("Check after repair: %v, %v", rep.Problems, err)
	}
	res, err := ss.Append(ctx, inbox.ID, message(9))
	if err != nil || res.UID != 4 || res.ModSeq != 4 {
		t.Errorf("append after repair: %+v, %v; want UID 4, MODSEQ 4", res, err)
	}
}
