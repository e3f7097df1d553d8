package schema

import (
	"log/slog"
	"strings"
)

// Email is an address that masks itself in logs: slog prints "a***@example.com".
type Email string

// LogValue implements slog.LogValuer.
func (e Email) LogValue() slog.Value { return slog.StringValue(MaskEmail(string(e))) }

// UserKey is a user id that masks itself in logs: slog prints a short hash.
type UserKey string

// LogValue implements slog.LogValuer.
func (u UserKey) LogValue() slog.Value { return slog.StringValue(MaskUser(string(u))) }

// MaskEmail keeps the first character of the local part and the domain:
// "ada@example.com" becomes "a***@example.com".
func MaskEmail(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 {
		return "***"
	}
	return addr[:1] + "***" + addr[at:]
}

// MaskUser replaces a user key by "u:" and the first 8 hex digits of its
// hash: stable enough to follow one user through logs, useless to identify
// them.
func MaskUser(key string) string {
	h := UserHash(key)
	const hexdigits = "0123456789abcdef"
	b := []byte("u:00000000")
	for i := 0; i < 4; i++ {
		b[2+2*i] = hexdigits[h[i]>>4]
		b[3+2*i] = hexdigits[h[i]&0xf]
	}
	return string(b)
}
