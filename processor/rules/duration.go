package rules

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseDuration parses Go durations plus days and weeks: "90s", "15m",
// "1h30m", "7d", "2w", "1d12h".
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	if s == "0" {
		return 0, nil
	}
	var total time.Duration
	for s != "" {
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
			i++
		}
		j := i
		for j < len(s) && (s[j] < '0' || s[j] > '9') && s[j] != '.' {
			j++
		}
		if i == 0 || j == i {
			return 0, fmt.Errorf("invalid duration %q: want forms like 90s, 15m, 4h, 7d, 2w", orig)
		}
		num, unit := s[:i], s[i:j]
		var d time.Duration
		switch unit {
		case "d", "w":
			n, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("invalid duration %q", orig)
			}
			day := 24 * time.Hour
			if unit == "w" {
				day *= 7
			}
			d = time.Duration(n * float64(day))
		default:
			var err error
			d, err = time.ParseDuration(num + unit)
			if err != nil {
				return 0, fmt.Errorf("invalid duration %q: want forms like 90s, 15m, 4h, 7d, 2w", orig)
			}
		}
		total += d
		s = s[j:]
	}
	if total < 0 {
		return 0, fmt.Errorf("negative duration %q", orig)
	}
	return total, nil
}

// FormatDuration prints d in the largest whole units, for messages.
func FormatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	default:
		s := d.String()
		s = strings.TrimSuffix(s, "0s")
		s = strings.TrimSuffix(s, "0m")
		return s
	}
}
