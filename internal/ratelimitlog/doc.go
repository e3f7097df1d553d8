// Package ratelimitlog holds a [slog.Handler] wrapper that rate-limits
// repeated log lines: of the records with one message (and level), at most
// Burst pass per Interval, and the rest are counted; once the interval is
// over, one record says how many were suppressed. It is what keeps a log
// readable when something fails in a loop: after a broker restart, the
// Kafka client's "unable to open connection to broker" and the retry
// warnings of every partition come by the thousand per second.
//
// Records below Config.Level (warnings, by default) pass unlimited. The
// summaries go to the handler given to [New], at the level of the lines
// they count, with the message [SummaryMessage]: a limiter passes them on
// unlimited, so one handler may wrap another.
//
// A summary is written when the next record of its message comes after the
// interval, when any record comes after it (a sweep, at most once per
// interval), or at [Handler.Flush]. The package reads no clock but the one
// in Config.Now, and does no I/O but the wrapped handler's.
//
// internal/cli wraps every command's log handler in one, so everything the
// binary logs goes through it: the processor's and the sink's retry loops,
// and franz-go's own log lines, which internal/groupwatch hands to the
// Kafka client through the logger of the processor or sink Config.
package ratelimitlog
