package store

import "testing"

// TestCheckReportString counts in words a person reads.
func TestCheckReportString(t *testing.T) {
	for _, tc := range []struct {
		r    CheckReport
		want string
	}{
		{CheckReport{Accounts: 1, Messages: 1}, "checked 1 account, 1 message: no problems\n"},
		{CheckReport{Accounts: 2, Messages: 0}, "checked 2 accounts, 0 messages: no problems\n"},
		{CheckReport{Accounts: 1, Messages: 3, Problems: []CheckProblem{{AccountID: 1, What: "x"}}}, "checked 1 account, 3 messages: 1 problem\n"},
	} {
		if got := tc.r.String(); got[:min(len(got), len(tc.want))] != tc.want {
			t.Errorf("%+v: %q, want it to begin %q", tc.r, got, tc.want)
		}
	}
}
