package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strconv"

	"github.com/microtrigger/microtrigger/schema"
)

//go:embed report.html.tmpl
var pageSource string

// page is what the HTML template renders.
type page struct {
	R *Report
	// By section, for placement.
	SendsPerDay, Effect, Funnel, Suppressions, TTC, Compare *Chart
	CompareSendsPerDay                                      *Chart
	Reasons                                                 []string
	Colors                                                  map[string]string
}

// MaxRefusalsShown bounds the refused records listed in the HTML page.
const MaxRefusalsShown = 50

// WriteHTML writes the report as one self-contained HTML page: inline CSS,
// inline SVG charts, a few lines of inline script that only check the
// charts rendered; nothing is loaded from the network.
func WriteHTML(w io.Writer, r *Report) error {
	tmpl, err := template.New("report").Funcs(template.FuncMap{
		"num": func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
		"pct": Percent,
		"pp":  Points,
		"dur": Duration,
		"group": func(g Group) string {
			if g.Rate == nil {
				return "–"
			}
			return groupText(&g)
		},
		"rate":      ratePtr,
		"ppp":       pointsPtr,
		"thousands": func(n int64) string { return thousandsInt(n) },
		"sup": func(m map[string]Delta) Delta {
			a, b := suppressedSum(m)
			return delta(a, b)
		},
		"limit": func(rs []Refusal, n int) []Refusal {
			if len(rs) > n {
				return rs[:n]
			}
			return rs
		},
		"loc":     where,
		"reasons": countsText,
	}).Parse(pageSource)
	if err != nil {
		return fmt.Errorf("parse report template: %w", err)
	}
	p := &page{R: r}
	for _, reason := range schema.SuppressReasons() {
		p.Reasons = append(p.Reasons, string(reason))
	}
	var names []string
	for _, t := range r.Run.Triggers {
		names = append(names, t.Name)
	}
	if r.Compare != nil {
		seen := map[string]bool{}
		for _, n := range names {
			seen[n] = true
		}
		for _, t := range r.Compare.Run.Triggers {
			if !seen[t.Name] {
				names = append(names, t.Name)
			}
		}
	}
	p.Colors = colors(names)
	p.SendsPerDay = sendsPerDayChart(&r.Run, names, p.Colors)
	p.Effect = effectChart(&r.Run)
	p.Funnel = funnelChart(&r.Run)
	p.Suppressions = suppressionChart(&r.Run, p.Reasons, names, p.Colors)
	p.TTC = ttcChart(&r.Run)
	if r.Compare != nil {
		p.Compare = compareChart(r)
		p.CompareSendsPerDay = sendsPerDayChart(&r.Compare.Run, names, p.Colors)
		if p.CompareSendsPerDay != nil {
			p.CompareSendsPerDay.ID = "chart-compare-sends-per-day"
			p.CompareSendsPerDay.Title = "Sends per day under B, by trigger"
		}
	}
	if err := tmpl.Execute(w, p); err != nil {
		return fmt.Errorf("render report: %w", err)
	}
	return nil
}

func thousandsInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n < 0 {
		return "-" + thousandsInt(-n)
	}
	out := make([]byte, 0, len(s)+len(s)/3)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
