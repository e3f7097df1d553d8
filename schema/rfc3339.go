package schema

import "time"

// parseRFC3339 parses the times time.Parse(time.RFC3339Nano, v) reads on
// its own fast path (the standard library's parseRFC3339), to the same
// instant, without its work for the zone: the event time is kept in UTC.
// It returns false for anything else, which time.Parse then decides.
func parseRFC3339(v string) (time.Time, bool) {
	if len(v) < len("2006-01-02T15:04:05Z") ||
		v[4] != '-' || v[7] != '-' || v[10] != 'T' || v[13] != ':' || v[16] != ':' {
		return time.Time{}, false
	}
	year, ok1 := digits(v[0:4], 0, 9999)
	month, ok2 := digits(v[5:7], 1, 12)
	hour, ok3 := digits(v[11:13], 0, 23)
	minute, ok4 := digits(v[14:16], 0, 59)
	sec, ok5 := digits(v[17:19], 0, 59)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 {
		return time.Time{}, false
	}
	day, ok := digits(v[8:10], 1, daysIn(month, year))
	if !ok {
		return time.Time{}, false
	}
	s := v[19:]
	nsec := 0
	if len(s) >= 2 && s[0] == '.' && isDigit(s[1]) {
		n := 2
		for n < len(s) && isDigit(s[n]) {
			n++
		}
		// Nanoseconds: the first nine digits, the others dropped.
		frac := s[1:min(n, 10)]
		for _, c := range []byte(frac) {
			nsec = nsec*10 + int(c-'0')
		}
		for range 9 - len(frac) {
			nsec *= 10
		}
		s = s[n:]
	}
	offset := 0
	if s != "Z" {
		if len(s) != len("-07:00") || s[0] != '+' && s[0] != '-' || s[3] != ':' {
			return time.Time{}, false
		}
		hh, ok1 := digits(s[1:3], 0, 23)
		mm, ok2 := digits(s[4:6], 0, 59)
		if !ok1 || !ok2 {
			return time.Time{}, false
		}
		offset = (hh*60 + mm) * 60
		if s[0] == '-' {
			offset = -offset
		}
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	return t.Add(-time.Duration(offset) * time.Second), true
}

// digits parses the decimal digits s, in [lo, hi].
func digits(s string, lo, hi int) (int, bool) {
	x := 0
	for _, c := range []byte(s) {
		if !isDigit(c) {
			return 0, false
		}
		x = x*10 + int(c-'0')
	}
	return x, lo <= x && x <= hi
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
