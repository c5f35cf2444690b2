package bytesize

import (
	"math"
	"testing"
)

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		n           int64
		long, short string
	}{
		{0, "0 bytes", "0"},
		{1, "1 byte", "1"},
		{1023, "1023 bytes", "1023"},
		{1024, "1 KB", "1.0K"},
		{1536, "1.5 KB", "1.5K"},
		{10 << 10, "10 KB", "10.0K"},
		{10<<10 - 1, "10 KB", "10.0K"},
		{950 << 20, "950 MB", "950.0M"},
		{1<<20 - 1, "1 MB", "1.0M"},     // 1023.999 KB
		{1<<20 - 60, "1 MB", "1023.9K"}, // 1023.94 KB: 1024 rounded is 1 MB
		{1<<20 - 600, "1023 KB", "1023.4K"},
		{2 << 30, "2 GB", "2.0G"},
		{1932735283, "1.8 GB", "1.8G"},
		{10 << 30, "10 GB", "10.0G"},
		{3 << 40, "3 TB", "3.0T"},
		{2 << 50, "2 PB", "2048.0T"}, // Short stops at T
		{math.MaxInt64, "8 EB", "8388608.0T"},
		{-5, "-5 bytes", "-5"},
	} {
		if got := Format(tc.n); got != tc.long {
			t.Errorf("Format(%d) = %q, want %q", tc.n, got, tc.long)
		}
		if got := Short(tc.n); got != tc.short {
			t.Errorf("Short(%d) = %q, want %q", tc.n, got, tc.short)
		}
	}
}
