package report

import (
	"fmt"
	"math"
	"strconv"
)

// Chart is an SVG chart laid out in Go: the template only draws the
// shapes, so the page needs no script and no network to show it.
type Chart struct {
	ID, Title string
	W, H      float64
	Rects     []Rect
	Lines     []Line
	Circles   []Circle
	Texts     []Text
}

// Rect is a bar; Tip shows on hover.
type Rect struct {
	X, Y, W, H float64
	Fill, Tip  string
}

// Line is an axis, a grid line or a whisker.
type Line struct {
	X1, Y1, X2, Y2 float64
	Stroke         string
	Width          float64
	Dash           string
}

// Circle is a point estimate.
type Circle struct {
	X, Y, R   float64
	Fill, Tip string
}

// Text is a label. Anchor is start, middle or end.
type Text struct {
	X, Y   float64
	S      string
	Anchor string
	Size   float64
	Weight string
	Fill   string
}

// palette is Tableau 10: distinct, and readable by most colour-blind
// viewers.
func palette() []string {
	return []string{"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"}
}

// colors gives each trigger a colour, by its position in names.
func colors(names []string) map[string]string {
	m := map[string]string{}
	colors := palette()
	for i, n := range names {
		m[n] = colors[i%len(colors)]
	}
	return m
}

const (
	font      = 12.0
	small     = 11.0
	ink       = "#222"
	faint     = "#666"
	gridColor = "#e3e3e3"
)

// niceMax rounds v up to 1, 2, 2.5 or 5 times a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func fmtNum(v float64) string {
	if v == math.Trunc(v) {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// legend lays out swatches and names in rows from y; it returns the height
// used.
func (c *Chart) legend(x0, y, width float64, names []string, col map[string]string) float64 {
	x, rows := x0, 1.0
	for _, n := range names {
		w := 22 + 7*float64(len([]rune(n)))
		if x+w > x0+width && x > x0 {
			x, y, rows = x0, y+18, rows+1
		}
		c.Rects = append(c.Rects, Rect{X: x, Y: y - 9, W: 10, H: 10, Fill: col[n], Tip: n})
		c.Texts = append(c.Texts, Text{X: x + 14, Y: y, S: n, Size: small, Fill: ink})
		x += w
	}
	return rows * 18
}

// yAxis draws a vertical scale from 0 to a round number above peak, with
// its grid lines, and returns the function mapping values to y.
func yAxis(c *Chart, left, top, plotW, plotH float64, peak int64) func(float64) float64 {
	ymax := niceMax(float64(peak))
	y := func(v float64) float64 { return top + plotH - v/ymax*plotH }
	for i := 0; i <= 4; i++ {
		v := ymax * float64(i) / 4
		c.Lines = append(c.Lines, Line{X1: left, Y1: y(v), X2: left + plotW, Y2: y(v), Stroke: gridColor, Width: 1})
		c.Texts = append(c.Texts, Text{X: left - 6, Y: y(v) + 4, S: fmtNum(v), Anchor: "end", Size: small, Fill: faint})
	}
	return y
}

// sendsPerDayChart stacks each day's sends by trigger.
func sendsPerDayChart(run *Run, names []string, col map[string]string) *Chart {
	if len(run.SendsPerDay) == 0 {
		return nil
	}
	c := &Chart{ID: "chart-sends-per-day", Title: "Sends per day, by trigger", W: 960}
	left, right, top, plotH := 56.0, 16.0, 12.0, 220.0
	plotW := c.W - left - right
	var peak int64
	for _, d := range run.SendsPerDay {
		peak = max(peak, d.Total)
	}
	y := yAxis(c, left, top, plotW, plotH, peak)
	n := len(run.SendsPerDay)
	step := plotW / float64(n)
	bw := math.Min(math.Max(step*0.8, 1), 48)
	every := int(math.Ceil(float64(n) / 12))
	for i, d := range run.SendsPerDay {
		x := left + float64(i)*step + (step-bw)/2
		base := 0.0
		for _, name := range names {
			v := float64(d.Sends[name])
			if v == 0 {
				continue
			}
			c.Rects = append(c.Rects, Rect{X: x, Y: y(base + v), W: bw, H: y(base) - y(base+v), Fill: col[name],
				Tip: fmt.Sprintf("%s: %s, %d sends", d.Date, name, d.Sends[name])})
			base += v
		}
		if i%every == 0 {
			c.Texts = append(c.Texts, Text{X: x + bw/2, Y: top + plotH + 16, S: d.Date[5:], Anchor: "middle", Size: small, Fill: faint})
		}
	}
	c.Lines = append(c.Lines, Line{X1: left, Y1: top + plotH, X2: left + plotW, Y2: top + plotH, Stroke: ink, Width: 1})
	h := c.legend(left, top+plotH+40, plotW, names, col)
	c.H = top + plotH + 30 + h + 8
	return c
}

// hbars is a horizontal bar chart of rows, each a stack of segments.
type hrow struct {
	label string
	segs  []seg
	note  string // printed after the bar
}

type seg struct {
	v    float64
	fill string
	tip  string
}

func hbarChart(id, title string, rows []hrow, legendNames []string, col map[string]string) *Chart {
	if len(rows) == 0 {
		return nil
	}
	c := &Chart{ID: id, Title: title, W: 960}
	left, right, top, rowH := 200.0, 90.0, 8.0, 26.0
	plotW := c.W - left - right
	peak := 0.0
	for _, r := range rows {
		s := 0.0
		for _, g := range r.segs {
			s += g.v
		}
		peak = math.Max(peak, s)
	}
	xmax := niceMax(peak)
	for i, r := range rows {
		y := top + float64(i)*rowH
		c.Texts = append(c.Texts, Text{X: left - 8, Y: y + rowH/2 + 4, S: r.label, Anchor: "end", Size: font, Fill: ink})
		x := left
		for _, g := range r.segs {
			if g.v <= 0 {
				continue
			}
			w := g.v / xmax * plotW
			c.Rects = append(c.Rects, Rect{X: x, Y: y + 4, W: w, H: rowH - 8, Fill: g.fill, Tip: g.tip})
			x += w
		}
		c.Texts = append(c.Texts, Text{X: x + 6, Y: y + rowH/2 + 4, S: r.note, Size: small, Fill: faint})
	}
	bottom := top + float64(len(rows))*rowH
	c.Lines = append(c.Lines, Line{X1: left, Y1: top, X2: left, Y2: bottom, Stroke: ink, Width: 1})
	c.H = bottom + 10
	if len(legendNames) > 0 {
		c.H += c.legend(left, bottom+22, plotW, legendNames, col) + 8
	}
	return c
}

// suppressionChart shows suppressions by reason, stacked by trigger.
func suppressionChart(run *Run, reasons, names []string, col map[string]string) *Chart {
	var rows []hrow
	for _, reason := range reasons {
		total := run.Totals.Suppressed[reason]
		if total == 0 {
			continue
		}
		label := reason
		if reason == "quiet_hours" {
			label = "quiet_hours (deferred)"
		}
		r := hrow{label: label, note: strconv.FormatInt(total, 10)}
		for _, t := range run.Triggers {
			if v := t.Suppressed[reason]; v > 0 {
				r.segs = append(r.segs, seg{v: float64(v), fill: col[t.Name], tip: fmt.Sprintf("%s, %s: %d", reason, t.Name, v)})
			}
		}
		rows = append(rows, r)
	}
	return hbarChart("chart-suppressions", "Suppressions by reason, by trigger", rows, names, col)
}

// funnelChart shows, per trigger, the users it fired for, those emailed
// and those who converted.
func funnelChart(run *Run) *Chart {
	stages := []struct {
		name, fill string
		get        func(*Funnel) int64
	}{
		{"fired", "#a0cbe8", func(f *Funnel) int64 { return f.Fired }},
		{"emailed", "#4e79a7", func(f *Funnel) int64 { return f.Emailed }},
		{"converted", "#59a14f", func(f *Funnel) int64 { return f.Converted }},
	}
	var rows []hrow
	for _, t := range run.Triggers {
		if t.Funnel.Fired == 0 {
			continue
		}
		for i, st := range stages {
			v := st.get(&t.Funnel)
			label := ""
			if i == 0 {
				label = t.Name
			}
			note := fmt.Sprintf("%s %d", st.name, v)
			if i > 0 && t.Funnel.Fired > 0 {
				note += fmt.Sprintf(" (%s of fired)", Percent(float64(v)/float64(t.Funnel.Fired)))
			}
			rows = append(rows, hrow{label: label, note: note,
				segs: []seg{{v: float64(v), fill: st.fill, tip: fmt.Sprintf("%s: %s %d users", t.Name, st.name, v)}}})
		}
	}
	col := map[string]string{}
	var names []string
	for _, st := range stages {
		col[st.name] = st.fill
		names = append(names, st.name)
	}
	c := hbarChart("chart-funnel", "Conversion funnel: users fired for, emailed and converted, by trigger", rows, names, col)
	return c
}

// effectChart draws each difference in conversion rate (sent − holdout)
// with its 95% interval.
func effectChart(run *Run) *Chart {
	type est struct {
		label string
		e     *Effect
		sent  *Group
		held  *Group
	}
	var ests []est
	for _, t := range run.Triggers {
		if t.Effect != nil {
			ests = append(ests, est{t.Name, t.Effect, &t.Sent, &t.Holdout})
		}
		for _, v := range t.Variants {
			if v.Effect != nil {
				ests = append(ests, est{t.Name + " / " + v.Name, v.Effect, &v.Sent, &v.Holdout})
			}
		}
	}
	if len(ests) == 0 {
		return nil
	}
	c := &Chart{ID: "chart-effect", Title: "Conversion rate, sent minus holdout, with 95% confidence interval", W: 960}
	left, right, top, rowH := 220.0, 200.0, 24.0, 28.0
	plotW := c.W - left - right
	lo, hi := 0.0, 0.0
	for _, e := range ests {
		lo, hi = math.Min(lo, e.e.Low), math.Max(hi, e.e.High)
	}
	span := math.Max(niceMax(math.Max(-lo, hi)), 0.01)
	if lo >= 0 {
		lo = 0
	} else {
		lo = -span
	}
	hi = span
	x := func(v float64) float64 { return left + (v-lo)/(hi-lo)*plotW }
	bottom := top + float64(len(ests))*rowH
	for i := 0; i <= 4; i++ {
		v := lo + (hi-lo)*float64(i)/4
		c.Lines = append(c.Lines, Line{X1: x(v), Y1: top - 4, X2: x(v), Y2: bottom, Stroke: gridColor, Width: 1})
		c.Texts = append(c.Texts, Text{X: x(v), Y: top - 8, S: Points(v), Anchor: "middle", Size: small, Fill: faint})
	}
	c.Lines = append(c.Lines, Line{X1: x(0), Y1: top - 4, X2: x(0), Y2: bottom, Stroke: ink, Width: 1, Dash: "4 3"})
	for i, e := range ests {
		y := top + float64(i)*rowH + rowH/2
		c.Texts = append(c.Texts, Text{X: left - 8, Y: y + 4, S: e.label, Anchor: "end", Size: font, Fill: ink})
		tip := fmt.Sprintf("%s: %s [%s, %s]", e.label, Points(e.e.Diff), Points(e.e.Low), Points(e.e.High))
		c.Lines = append(c.Lines, Line{X1: x(e.e.Low), Y1: y, X2: x(e.e.High), Y2: y, Stroke: "#4e79a7", Width: 2})
		c.Lines = append(c.Lines, Line{X1: x(e.e.Low), Y1: y - 5, X2: x(e.e.Low), Y2: y + 5, Stroke: "#4e79a7", Width: 2})
		c.Lines = append(c.Lines, Line{X1: x(e.e.High), Y1: y - 5, X2: x(e.e.High), Y2: y + 5, Stroke: "#4e79a7", Width: 2})
		c.Circles = append(c.Circles, Circle{X: x(e.e.Diff), Y: y, R: 4.5, Fill: "#e15759", Tip: tip})
		c.Texts = append(c.Texts, Text{X: left + plotW + 10, Y: y + 4, Size: small, Fill: faint,
			S: fmt.Sprintf("%s: %s vs %s", Points(e.e.Diff), groupText(e.sent), groupText(e.held))})
	}
	c.H = bottom + 12
	return c
}

// ttcChart is the histogram of times to conversion.
func ttcChart(run *Run) *Chart {
	var total int64
	for _, b := range run.TimeToConversion {
		total += b.Count
	}
	if total == 0 {
		return nil
	}
	c := &Chart{ID: "chart-time-to-conversion", Title: "Time from send to conversion (converted sent runs, all triggers)", W: 960}
	left, right, top, plotH := 56.0, 16.0, 12.0, 180.0
	plotW := c.W - left - right
	var peak int64
	for _, b := range run.TimeToConversion {
		peak = max(peak, b.Count)
	}
	y := yAxis(c, left, top, plotW, plotH, peak)
	n := len(run.TimeToConversion)
	step := plotW / float64(n)
	for i, b := range run.TimeToConversion {
		x := left + float64(i)*step + step*0.1
		v := float64(b.Count)
		c.Rects = append(c.Rects, Rect{X: x, Y: y(v), W: step * 0.8, H: y(0) - y(v), Fill: "#59a14f", Tip: fmt.Sprintf("%s: %d", b.Label, b.Count)})
		c.Texts = append(c.Texts, Text{X: x + step*0.4, Y: top + plotH + 16, S: b.Label, Anchor: "middle", Size: small, Fill: faint})
		if b.Count > 0 {
			c.Texts = append(c.Texts, Text{X: x + step*0.4, Y: y(v) - 4, S: strconv.FormatInt(b.Count, 10), Anchor: "middle", Size: small, Fill: ink})
		}
	}
	c.Lines = append(c.Lines, Line{X1: left, Y1: top + plotH, X2: left + plotW, Y2: top + plotH, Stroke: ink, Width: 1})
	c.H = top + plotH + 28
	return c
}

// compareChart sets each trigger's sends under A and B side by side.
func compareChart(r *Report) *Chart {
	if r.Compare == nil || len(r.Compare.Triggers) == 0 {
		return nil
	}
	col := map[string]string{"A: " + r.Run.Rules: "#4e79a7", "B: " + r.Compare.Run.Rules: "#f28e2b"}
	names := []string{"A: " + r.Run.Rules, "B: " + r.Compare.Run.Rules}
	var rows []hrow
	for _, d := range r.Compare.Triggers {
		rows = append(rows,
			hrow{label: d.Name, note: fmt.Sprintf("A %d", d.Sends.A), segs: []seg{{v: float64(d.Sends.A), fill: col[names[0]], tip: fmt.Sprintf("%s, A: %d sends", d.Name, d.Sends.A)}}},
			hrow{label: "", note: fmt.Sprintf("B %d (%+d)", d.Sends.B, d.Sends.Delta), segs: []seg{{v: float64(d.Sends.B), fill: col[names[1]], tip: fmt.Sprintf("%s, B: %d sends", d.Name, d.Sends.B)}}})
	}
	return hbarChart("chart-compare", "Sends by trigger, A against B", rows, names, col)
}
