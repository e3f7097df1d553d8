package report

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteJSON writes r as indented JSON (report.json).
func WriteJSON(w io.Writer, r *Report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// ReadJSON decodes a report.json.
func ReadJSON(b []byte) (*Report, error) {
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode report: %w", err)
	}
	return &r, nil
}

// WriteSummary writes the summary table printed on stdout: one row per
// trigger (and per variant), totals, and the comparison when there is one.
func WriteSummary(w io.Writer, r *Report) error {
	ew := &errWriter{w: w}
	in := &r.Input
	fmt.Fprintf(ew, "backtest of %s on %s %s\n", r.Run.Rules, in.Source, in.Name)
	fmt.Fprintf(ew, "range:       %s\n", rangeText(&r.Range))
	fmt.Fprintf(ew, "input:       %d records, %d events in range, %d out of range, %d refused%s\n",
		in.Records, in.Events, in.OutOfRange, in.Refused, reasonsText(in.RefusedByReason))
	for i, rf := range in.Refusals {
		if i == maxRefusalsPrinted {
			fmt.Fprintf(ew, "             ... %d more in report.json\n", in.Refused-int64(i))
			break
		}
		fmt.Fprintf(ew, "             refused %s: %s\n", where(rf), refusalText(rf))
	}
	fmt.Fprintf(ew, "conversions: %d %q events; a run converts when its user sends one within %s after the send\n",
		r.Conversion.Events, r.Conversion.Event, r.Conversion.Window)
	fmt.Fprintf(ew, "             (holdout: after the moment the first email would have been sent); CI: 95%% Newcombe hybrid score\n\n")
	writeRunTable(ew, &r.Run)
	if c := r.Compare; c != nil {
		fmt.Fprintf(ew, "\ncompared with %s (B; A is %s):\n\n", c.Run.Rules, r.Run.Rules)
		writeRunTable(ew, &c.Run)
		fmt.Fprintln(ew)
		writeCompareTable(ew, r)
	}
	return ew.err
}

// maxRefusalsPrinted bounds the refused records the summary lists.
const maxRefusalsPrinted = 5

// where locates a refused record: its line, or its partition and offset.
func where(rf Refusal) string {
	if rf.Partition != nil && rf.Offset != nil {
		return fmt.Sprintf("partition %d offset %d", *rf.Partition, *rf.Offset)
	}
	return fmt.Sprintf("line %d", rf.Line)
}

func refusalText(rf Refusal) string {
	if rf.Field != "" {
		return fmt.Sprintf("%s: %s: %s", rf.Reason, rf.Field, rf.Message)
	}
	return fmt.Sprintf("%s: %s", rf.Reason, rf.Message)
}

func rangeText(rg *Range) string {
	from, to := rg.From, rg.To
	if from == "" {
		from = "(start)"
	}
	if to == "" {
		to = "(end)"
	}
	s := from + " .. " + to
	if rg.FirstEvent != "" {
		s += fmt.Sprintf("; events %s .. %s; timers fired up to %s", rg.FirstEvent, rg.LastEvent, rg.End)
	} else {
		s += "; no events"
	}
	return s
}

func reasonsText(m map[string]int64) string {
	if len(m) == 0 {
		return ""
	}
	return " (" + countsText(m, "") + ")"
}

// countsText prints "a 1, b 2" in key order.
func countsText(m map[string]int64, none string) string {
	keys := make([]string, 0, len(m))
	for k, v := range m {
		if v != 0 {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return none
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func writeRunTable(w io.Writer, run *Run) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TRIGGER\tSENDS\tUSERS\tSUPPRESSED\tDEFERRED\tHOLDOUT\tCONVERTED (SENT)\tCONVERTED (HOLDOUT)\tDIFFERENCE [95% CI]\tMEDIAN TIME TO CONVERT")
	for i := range run.Triggers {
		t := &run.Triggers[i]
		row(tw, t.Name, &t.Counts)
		for j := range t.Variants {
			v := &t.Variants[j]
			row(tw, "  variant "+v.Name+v.TimingNote(t.Timing), &v.Counts)
		}
	}
	tot := &run.Totals
	fmt.Fprintf(tw, "TOTAL\t%d\t%d\t%d\t%d\t%d\t%d\t-\t-\t-\n", tot.Sends, tot.Users, tot.SuppressedTotal, tot.Deferred, tot.Suppressed["holdout"], tot.Converted)
	tw.Flush()
	fmt.Fprintf(w, "suppressed by reason: %s\n", countsText(tot.Suppressed, "none"))
	p := &run.Processing
	fmt.Fprintf(w, "processing: %d timers fired, %d late events, %d duplicates, %d erasures, %d rule evaluation errors\n",
		p.Timers, p.Late, p.Duplicates, p.Erased, p.RuleErrors)
}

func row(w io.Writer, name string, c *Counts) {
	effect := "-"
	if e := c.Effect; e != nil {
		effect = fmt.Sprintf("%s [%s, %s]", Points(e.Diff), Points(e.Low), Points(e.High))
	}
	ttc := "-"
	if d := c.Sent.TimeToConversion; d != nil {
		ttc = Duration(d.Median)
	}
	fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", name, c.Sends, c.Users, c.SuppressedTotal, c.Deferred,
		c.Holdout.Runs, groupText(&c.Sent), groupText(&c.Holdout), effect, ttc)
}

func groupText(g *Group) string {
	if g.Rate == nil {
		return "-"
	}
	return fmt.Sprintf("%d/%d %s", g.Converted, g.Runs, Percent(*g.Rate))
}

func writeCompareTable(w io.Writer, r *Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TRIGGER\tSENDS A\tSENDS B\tΔ\tSUPPRESSED A\tSUPPRESSED B\tCONVERTED A\tCONVERTED B\tRATE A\tRATE B\tΔ RATE\tSAME\tONLY A\tONLY B")
	for _, d := range r.Compare.Triggers {
		name := d.Name
		switch {
		case !d.InA:
			name += " (B only)"
		case !d.InB:
			name += " (A only)"
		}
		sa, sb := suppressedSum(d.Suppressed)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%+d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%d\t%d\t%d\n", name, d.Sends.A, d.Sends.B, d.Sends.Delta,
			sa, sb, d.Converted.A, d.Converted.B, ratePtr(d.Rate.A), ratePtr(d.Rate.B), pointsPtr(d.Rate.Delta),
			d.Commands.Same, d.Commands.OnlyA, d.Commands.OnlyB)
	}
	t := &r.Compare.Totals
	sa, sb := suppressedSum(t.Suppressed)
	fmt.Fprintf(tw, "TOTAL\t%d\t%d\t%+d\t%d\t%d\t%d\t%d\t-\t-\t-\t%d\t%d\t%d\n", t.Sends.A, t.Sends.B, t.Sends.Delta, sa, sb,
		t.Converted.A, t.Converted.B, t.Commands.Same, t.Commands.OnlyA, t.Commands.OnlyB)
	tw.Flush()
}

// suppressedSum adds up suppressions other than quiet-hours deferrals.
func suppressedSum(m map[string]Delta) (a, b int64) {
	for k, d := range m {
		if k != "quiet_hours" {
			a += d.A
			b += d.B
		}
	}
	return a, b
}

func ratePtr(r *float64) string {
	if r == nil {
		return "-"
	}
	return Percent(*r)
}

func pointsPtr(r *float64) string {
	if r == nil {
		return "-"
	}
	return Points(*r)
}

// Percent prints a rate in [0,1] as a percentage: 0.1234 → "12.3%".
func Percent(x float64) string { return fmt.Sprintf("%.1f%%", x*100) }

// Points prints a difference of rates in percentage points: 0.05 → "+5.0pp".
func Points(x float64) string {
	v := x * 100
	if math.Abs(v) < 0.05 {
		v = 0 // no "-0.0"
	}
	return fmt.Sprintf("%+.1fpp", v)
}

// Duration prints seconds in the two largest units: 93784 → "1d2h".
func Duration(secs float64) string {
	d := time.Duration(secs * float64(time.Second)).Round(time.Second)
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	h := d / time.Hour
	d -= h * time.Hour
	m := d / time.Minute
	d -= m * time.Minute
	s := d / time.Second
	switch {
	case days > 0:
		return fmt.Sprintf("%dd%dh", days, h)
	case h > 0:
		return fmt.Sprintf("%dh%02dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm%02ds", m, s)
	default:
		return fmt.Sprintf("%ds", s)
	}
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
