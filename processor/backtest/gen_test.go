package backtest_test

import (
	"bufio"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/microtrigger/microtrigger/schema"
)

// clickstream generates a synthetic clickstream from a seeded PRNG: users
// who identify themselves, then revisit pricing, abandon carts, linger on
// checkout, hover over "book a demo", start forms, read the help center,
// compare features, watch product videos, view expensive products, order,
// and browse. It wakes every trigger of the example pack.
type clickstream struct {
	Seed  uint64
	Users int
	// Events, when set, pads each user with browsing to about Events/Users
	// events and cuts the stream at exactly Events.
	Events int
	Start  time.Time
	Span   time.Duration // over which users start their visits
}

type genEvent struct {
	at   time.Time
	user string
	line []byte
}

var zones = []string{"UTC", "UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"}

// generate returns the events in time order (ties in generation order).
func (c clickstream) generate() []genEvent {
	r := rand.New(rand.NewPCG(c.Seed, c.Seed^0x9e3779b97f4a7c15))
	var out []genEvent
	id := 0
	minute := func(lo, hi int) time.Duration { return time.Duration(lo+r.IntN(hi-lo+1)) * time.Minute }
	for u := range c.Users {
		user := "u" + strconv.Itoa(u)
		var evs []genEvent
		add := func(at time.Time, typ, name, path, props string) {
			id++
			b := make([]byte, 0, 256)
			b = append(b, `{"messageId":"m`...)
			b = strconv.AppendInt(b, int64(id), 10)
			b = append(b, `","type":"`...)
			b = append(b, typ...)
			b = append(b, `","userId":"`...)
			b = append(b, user...)
			b = append(b, `","timestamp":"`...)
			b = at.UTC().AppendFormat(b, time.RFC3339)
			b = append(b, '"')
			if name != "" {
				b = append(b, `,"event":"`...)
				b = append(b, name...)
				b = append(b, '"')
			}
			if props != "" {
				b = append(b, `,"properties":{`...)
				b = append(b, props...)
				b = append(b, '}')
			}
			if path != "" {
				b = append(b, `,"context":{"page":{"path":"`...)
				b = append(b, path...)
				b = append(b, `"}}`...)
			}
			b = append(b, '}')
			evs = append(evs, genEvent{at: at, user: user, line: b})
		}
		start := c.Start.Add(time.Duration(r.Int64N(int64(c.Span))))
		optIn := "true"
		if r.IntN(10) == 0 {
			optIn = "false"
		}
		traits := `"email":"` + user + `@example.com","email_opt_in":` + optIn +
			`,"timezone":"` + zones[r.IntN(len(zones))] + `","lifetime_value":` + strconv.Itoa(r.IntN(1500))
		id++
		evs = append(evs, genEvent{at: start.Add(-time.Hour), user: user, line: []byte(`{"messageId":"m` + strconv.Itoa(id) +
			`","type":"identify","userId":"` + user + `","timestamp":"` + schema.FormatTime(start.Add(-time.Hour)) + `","traits":{` + traits + `}}`)})
		for range 1 + r.IntN(3) {
			t := start.Add(time.Duration(r.Int64N(int64(48 * time.Hour))))
			product := strconv.Itoa(r.IntN(40))
			switch r.IntN(10) {
			case 0: // pricing revisit
				add(t, "page", "", "/pricing", "")
				add(t.Add(minute(2, 20)), "page", "", "/pricing", "")
				if r.IntN(3) == 0 {
					add(t.Add(minute(30, 3*24*60)), "track", "Order Completed", "", `"value":`+strconv.Itoa(20+r.IntN(300)))
				}
			case 1: // cart
				cat := "basic"
				if r.IntN(4) == 0 {
					cat = "premium"
				}
				add(t, "track", "Product Added", "", `"product_id":"p`+product+`","price":`+strconv.Itoa(20+r.IntN(200))+`,"category":"`+cat+`"`)
				if r.IntN(3) == 0 {
					add(t.Add(minute(10, 90)), "track", "Checkout Started", "", `"value":120`)
				}
				if r.IntN(4) == 0 {
					add(t.Add(minute(20, 2*24*60)), "track", "Order Completed", "", `"value":120`)
				}
			case 2: // checkout hesitation
				add(t, "track", "Checkout Started", "", `"value":180`)
				for i := range 6 + r.IntN(4) {
					add(t.Add(time.Duration(2*(i+1))*time.Minute), "track", "Page Heartbeat", "/checkout", `"seconds":120`)
				}
			case 3: // demo hover
				for i := range 3 {
					add(t.Add(time.Duration(2*i)*time.Minute), "track", "Element Hovered", "/", `"element":"book-demo"`)
				}
				if r.IntN(5) == 0 {
					add(t.Add(6*time.Minute), "track", "Element Clicked", "/", `"element":"book-demo"`)
				}
			case 4: // form abandonment
				add(t, "track", "Form Started", "/trial", `"form":"trial-signup"`)
				if r.IntN(2) == 0 {
					add(t.Add(minute(5, 60)), "track", "Form Submitted", "/trial", `"form":"trial-signup"`)
				}
			case 5: // help center
				for i, p := range []string{"/help/billing", "/help/sso", "/help/export"} {
					add(t.Add(time.Duration(i*20)*time.Minute), "page", "", p, "")
				}
			case 6: // features, not pricing
				add(t, "page", "", "/features", "")
				add(t.Add(minute(60, 20*60)), "page", "", "/features", "")
			case 7: // product interest
				path := "/products/p" + product
				add(t, "page", "", path, "")
				add(t.Add(time.Minute), "track", "Page Scrolled", path, `"percent":`+strconv.Itoa(40+r.IntN(60)))
				add(t.Add(3*time.Minute), "track", "Video Content Playing", path, `"position":`+strconv.Itoa(5+r.IntN(30)))
			case 8: // high-value repeat view
				for i := range 3 {
					add(t.Add(time.Duration(i)*24*time.Hour+minute(0, 60)), "track", "Product Viewed", "/products/x"+product,
						`"product_id":"x`+product+`","name":"Camera `+product+`","price":`+strconv.Itoa(500+r.IntN(1000)))
				}
			case 9: // signed in, then browsing
				add(t, "track", "Signed In", "", "")
				add(t.Add(minute(1, 30)), "page", "", "/home", "")
			}
		}
		if c.Events > 0 {
			for len(evs) < c.Events/c.Users+r.IntN(3)-1 {
				add(start.Add(time.Duration(r.Int64N(int64(72*time.Hour)))), "page", "", []string{"/home", "/blog", "/about", "/docs"}[r.IntN(4)], "")
			}
		}
		out = append(out, evs...)
	}
	slices.SortStableFunc(out, func(a, b genEvent) int { return a.at.Compare(b.at) })
	if c.Events > 0 && len(out) > c.Events {
		out = out[:c.Events]
	}
	return out
}

// writeJSONL writes the events' lines.
func writeJSONL(w io.Writer, evs []genEvent) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	for _, e := range evs {
		bw.Write(e.line)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}
