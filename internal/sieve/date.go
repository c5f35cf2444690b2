package sieve

import (
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"
)

// dateParts are the date parts of RFC 5260 4.2, and how each is written.
var dateParts = map[string]func(t time.Time) string{
	"year":  func(t time.Time) string { return fmt.Sprintf("%04d", t.Year()) },
	"month": func(t time.Time) string { return fmt.Sprintf("%02d", int(t.Month())) },
	"day":   func(t time.Time) string { return fmt.Sprintf("%02d", t.Day()) },
	"date":  func(t time.Time) string { return t.Format("2006-01-02") },
	"julian": func(t time.Time) string {
		// The Modified Julian Day: days since 1858-11-17.
		d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		return strconv.FormatInt(int64(d.Sub(time.Date(1858, 11, 17, 0, 0, 0, 0, time.UTC))/(24*time.Hour)), 10)
	},
	"hour":    func(t time.Time) string { return fmt.Sprintf("%02d", t.Hour()) },
	"minute":  func(t time.Time) string { return fmt.Sprintf("%02d", t.Minute()) },
	"second":  func(t time.Time) string { return fmt.Sprintf("%02d", t.Second()) },
	"time":    func(t time.Time) string { return t.Format("15:04:05") },
	"iso8601": func(t time.Time) string { return t.Format(time.RFC3339) },
	"std11":   func(t time.Time) string { return t.Format("Mon, 02 Jan 2006 15:04:05 -0700") },
	"zone":    func(t time.Time) string { return t.Format("-0700") },
	"weekday": func(t time.Time) string { return strconv.Itoa(int(t.Weekday())) },
}

// parseZone parses a :zone argument, +hhmm or -hhmm (RFC 5260 4.1).
func parseZone(s string) (*time.Location, bool) {
	if len(s) != 5 || s[0] != '+' && s[0] != '-' {
		return nil, false
	}
	hh, err1 := strconv.Atoi(s[1:3])
	mm, err2 := strconv.Atoi(s[3:5])
	if err1 != nil || err2 != nil || mm > 59 || strings.ContainsAny(s[1:], "+-") {
		return nil, false
	}
	off := (hh*60 + mm) * 60
	if s[0] == '-' {
		off = -off
	}
	return time.FixedZone(s, off), true
}

// dateValues returns the date part a date or currentdate test compares
// (RFC 5260 4, 5): none when the header field is missing or is not a
// date.
func (r *run) dateValues(t *test) ([]string, error) {
	var when time.Time
	if t.kind == testCurrentDate {
		when = time.Now()
	} else {
		names, err := r.expandAll(t.names)
		if err != nil {
			return nil, err
		}
		idx := t.index
		if idx == 0 {
			idx = 1 // RFC 5260 4: the first occurrence
		}
		raw, err := r.header(names[0], idx, t.last)
		if err != nil || len(raw) == 0 {
			return nil, err
		}
		if when, err = mail.ParseDate(r.headerText(raw[0])); err != nil {
			return nil, nil
		}
	}
	switch {
	case t.originalZone:
	case t.hasZone:
		z, err := r.expand(t.zone)
		if err != nil {
			return nil, err
		}
		loc, ok := parseZone(z)
		if !ok {
			return nil, nil
		}
		when = when.In(loc)
	default:
		// RFC 5260 4.1: without :zone, the local time zone.
		when = when.In(time.Local)
	}
	part, err := r.expand(t.datePart)
	if err != nil {
		return nil, err
	}
	f, ok := dateParts[strings.ToLower(part)]
	if !ok {
		return nil, nil
	}
	return []string{f(when)}, nil
}
