package main

import (
	"flag"
	"io"
	"slices"
	"testing"
)

func TestParseInterleaved(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args     []string
		wantPos  []string
		wantData string
	}{
		{[]string{"add", "a@b.c", "--data", "/d"}, []string{"add", "a@b.c"}, "/d"},
		{[]string{"--data=/d", "add", "a@b.c"}, []string{"add", "a@b.c"}, "/d"},
		{[]string{"add", "--data", "/d", "a@b.c"}, []string{"add", "a@b.c"}, "/d"},
		{[]string{"add", "--", "--data"}, []string{"add", "--data"}, ""},
		{nil, nil, ""},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		data := fs.String("data", "", "")
		pos, err := parseInterleaved(fs, tt.args)
		if err != nil || !slices.Equal(pos, tt.wantPos) || *data != tt.wantData {
			t.Errorf("%q: positional %q data %q err %v; want %q %q", tt.args, pos, *data, err, tt.wantPos, tt.wantData)
		}
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"0": 0, "1024": 1024, "500K": 500 << 10, "20m": 20 << 20, "2GB": 2 << 30, "1T": 1 << 40} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "1X", "K", "99999999999T"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}
