// Package bytesize writes sizes in bytes for people, in units of 1024
// named the way mail programs name them (KB, MB, GB), so that a size
// buzon reports reads as the number the user's mail program shows, and
// in the short form buzon's commands take sizes in ("2G").
package bytesize

import (
	"strconv"
	"strings"
)

// Format writes n for a sentence: "0 bytes", "1 byte", "1023 bytes",
// "1 KB", "1.5 KB", "950 MB", "1.8 GB", "2 GB", up to EB. A size below 10
// units has one decimal, unless it is 0; above, none.
func Format(n int64) string {
	if n < 1024 {
		if n == 1 {
			return "1 byte"
		}
		return strconv.FormatInt(n, 10) + " bytes"
	}
	s, u := scale(n, len(units), func(v float64) int {
		if v < 10 {
			return 1
		}
		return 0
	})
	return strings.TrimSuffix(s, ".0") + " " + units[u] + "B"
}

// Short writes n for a column, in the form `buzon user quota` takes a
// size: bytes below 1K as they are ("1023"), else with one decimal and
// the unit's letter, up to T ("1.0K", "1.8G", "950.0M", "2048.0T").
func Short(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10)
	}
	s, u := scale(n, shortUnits, func(float64) int { return 1 })
	return s + units[u]
}

// units are the prefixes of the units of 1024 bytes, bytes themselves
// first.
var units = [...]string{"", "K", "M", "G", "T", "P", "E"}

// shortUnits is how many of units Short uses: up to T, as far as the
// sizes `buzon user quota` takes go.
const shortUnits = 5

// scale returns n in the largest of the first count units in which it is at
// least 1 once written with decimals(v) decimals, and the unit's index:
// 1048575 bytes is 1023.999 KB, which rounds to 1 MB, not 1024 KB.
func scale(n int64, count int, decimals func(v float64) int) (string, int) {
	v, u := float64(n), 0
	for v >= 1024 && u < count-1 {
		v /= 1024
		u++
	}
	s := strconv.FormatFloat(v, 'f', decimals(v), 64)
	if r, _ := strconv.ParseFloat(s, 64); r >= 1024 && u < count-1 {
		v /= 1024
		u++
		s = strconv.FormatFloat(v, 'f', decimals(v), 64)
	}
	return s, u
}
