// Package report turns a backtest's output into its report: the figures
// of report.json (Build, WriteJSON), a self-contained HTML page with
// inline SVG charts (WriteHTML) and the summary table printed on stdout
// (WriteSummary).
//
// Per trigger and per A/B variant it counts sends, distinct users emailed,
// suppressions by reason, and trigger runs. A run is one firing for one
// user; the sent group is every run that sent at least one email, the
// holdout group every run the engine held out at its first email, taken as
// "sent" at that moment. A run converts when its user has a conversion
// event after that send and at most the conversion window later (once per
// run). The difference in conversion rate, sent minus holdout, comes with
// the 95% Newcombe hybrid score interval built from two Wilson intervals
// (Newcombe, Statistics in Medicine 17:873, 1998, method 10), which stays
// inside [−1, 1] and behaves with the small counts and rates near 0 that
// backtests produce, where the Wald interval does not. Each variant is
// compared with the trigger's whole holdout group.
//
// It must not leak people: the report holds counts, rates and durations,
// never a user id, an email address or a value from an event. The HTML
// page loads nothing from the network and needs no script to show its
// charts; its only script checks that they rendered.
//
// It reads nothing but its arguments and writes only to the writers it is
// given; processor/backtest decides where the files go.
package report
