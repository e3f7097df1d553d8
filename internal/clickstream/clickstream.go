// Package clickstream generates synthetic tracker traffic from a seed: users
// with traits, each following one of the behaviours of SCENARIOS.md (a
// pricing revisit, an abandoned cart, a hesitant checkout, ...) amid ordinary
// browsing (one browsing user in ten saves a product to the wishlist,
// another starts a trial on a phone from a paid campaign).
// Benchmarks use it for their million-event streams and the
// differential tests for streams that exercise every trigger. The same seed
// gives the same stream, byte for byte; nothing here is used at run time.
package clickstream

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"
)

// Event is one generated record: its event time, key (the user) and JSON.
type Event struct {
	Time  time.Time
	Key   []byte
	Value []byte
}

// Config shapes a stream.
type Config struct {
	Users int
	// EventsPerUser is the average number of events per user (>= the
	// scripted ones). Default 10.
	EventsPerUser int
	Start         time.Time
	// Span is how long the users' activity is spread over. Default 2 days.
	Span time.Duration
	Seed uint64
	// Noise is the share of users with no scripted behaviour, browsing
	// only. Default 0.3.
	Noise float64
	// Prefix is put before every user id and message id, so that
	// clickstreams generated apart can share a topic.
	Prefix string
}

// Behaviours lists the scripted behaviours; each scripted user follows one.
func Behaviours() []string {
	return []string{
		"pricing-revisit", "cart", "cart-bought", "checkout-hesitation", "product-interest", "demo-hover",
		"form-abandoned", "form-submitted", "high-value", "features", "inactive", "help-center", "vip",
		"no-consent", "unsubscribed", "tokyo", "duplicates", "erased",
	}
}

type gen struct {
	r      *rand.Rand
	out    []Event
	seq    int
	prefix string
}

// Generate returns the stream in event-time order (stable for equal times).
func Generate(c Config) []Event {
	if c.EventsPerUser <= 0 {
		c.EventsPerUser = 10
	}
	if c.Span <= 0 {
		c.Span = 48 * time.Hour
	}
	if c.Start.IsZero() {
		c.Start = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	}
	if c.Noise == 0 {
		c.Noise = 0.3
	}
	g := &gen{r: rand.New(rand.NewPCG(c.Seed, c.Seed^0x9e3779b97f4a7c15)), prefix: c.Prefix}
	all := Behaviours()
	for i := 0; i < c.Users; i++ {
		g.user(c, i, all)
	}
	sort.SliceStable(g.out, func(i, j int) bool { return g.out[i].Time.Before(g.out[j].Time) })
	return g.out
}

func (g *gen) emit(t time.Time, user string, m map[string]any) {
	g.seq++
	if _, ok := m["messageId"]; !ok {
		m["messageId"] = fmt.Sprintf("%sg-%08d", g.prefix, g.seq)
	}
	g.emitAs(t, user, m)
}

// emitAs emits m with the messageId it holds, drawing no sequence number.
func (g *gen) emitAs(t time.Time, user string, m map[string]any) {
	m["userId"] = user
	m["timestamp"] = t.UTC().Format("2006-01-02T15:04:05.000Z")
	b, err := json.Marshal(m)
	if err != nil {
		panic(err) // generated data always encodes
	}
	g.out = append(g.out, Event{Time: t.Truncate(time.Millisecond), Key: []byte(user), Value: b})
}

func page(path string) map[string]any {
	return map[string]any{"type": "page", "context": map[string]any{"page": map[string]any{"path": path}}}
}

func track(name string, props map[string]any, path string) map[string]any {
	m := map[string]any{"type": "track", "event": name}
	if props != nil {
		m["properties"] = props
	}
	if path != "" {
		m["context"] = map[string]any{"page": map[string]any{"path": path}}
	}
	return m
}

func (g *gen) user(c Config, i int, behaviours []string) {
	id := fmt.Sprintf("%suser-%06d", c.Prefix, i)
	behaviour := "browse"
	if g.r.Float64() >= c.Noise {
		behaviour = behaviours[g.r.IntN(len(behaviours))]
	}
	t := c.Start.Add(time.Duration(g.r.Int64N(int64(c.Span))))
	zone := "UTC"
	if behaviour == "tokyo" {
		zone = "Asia/Tokyo"
	}
	traits := map[string]any{"email": id + "@example.com", "email_opt_in": behaviour != "no-consent", "timezone": zone}
	if behaviour == "vip" {
		traits["lifetime_value"] = 1000 + float64(g.r.IntN(5000))
	}
	g.emit(t.Add(-time.Minute), id, map[string]any{"type": "identify", "traits": traits})
	if behaviour == "browse" && i%10 == 0 {
		// One browsing user in ten saves a product to the wishlist and
		// leaves it there (the timing A/B test of wishlist-reminder).
		// Chosen by index, with a messageId of its own and no random draw,
		// so that the rest of the stream is what it was without it.
		m := track("Product Added to Wishlist", map[string]any{"product_id": "p2", "name": "Desk Lamp", "price": 45.0}, "/products/p2")
		m["messageId"] = id + "-wishlist"
		g.emitAs(t, id, m)
	}
	if behaviour == "browse" && i%10 == 5 {
		// Another one in ten starts a trial on a phone, from a paid
		// search ad (trial-mobile-app reads the event's context), in
		// the same way: no random draw.
		m := track("Trial Started", nil, "/signup")
		m["messageId"] = id + "-trial"
		m["context"] = map[string]any{
			"page":     map[string]any{"path": "/signup", "referrer": "https://www.google.com/"},
			"device":   map[string]any{"type": "mobile"},
			"locale":   "en-US",
			"campaign": map[string]any{"source": "google", "medium": "cpc", "name": "spring-trial"},
		}
		g.emitAs(t, id, m)
	}
	n := 1
	at := func(d time.Duration) time.Time { n++; return t.Add(d) }
	min := time.Minute
	switch behaviour {
	case "pricing-revisit", "no-consent", "tokyo":
		g.emit(at(0), id, page("/pricing"))
		g.emit(at(time.Duration(2+g.r.IntN(5))*min), id, page("/pricing"))
	case "cart", "cart-bought":
		price := float64(20 + g.r.IntN(200))
		g.emit(at(0), id, track("Product Added", map[string]any{"product_id": "p1", "name": "Tote", "price": price}, ""))
		if behaviour == "cart-bought" {
			g.emit(at(time.Duration(30+g.r.IntN(300))*min), id, track("Order Completed", map[string]any{"order_id": id, "total": price}, ""))
		}
	case "checkout-hesitation":
		g.emit(at(0), id, track("Checkout Started", map[string]any{"value": 99.0}, "/checkout"))
		for k := 1; k <= 7; k++ {
			g.emit(at(time.Duration(2*k)*min), id, track("Page Heartbeat", map[string]any{"seconds": 120.0}, "/checkout"))
		}
	case "product-interest":
		g.emit(at(0), id, page("/products/p3"))
		g.emit(at(min), id, track("Page Scrolled", map[string]any{"percent": 75.0}, "/products/p3"))
		g.emit(at(2*min), id, track("Video Content Playing", map[string]any{"position": 12.0}, "/products/p3"))
	case "demo-hover":
		for k := 0; k < 3; k++ {
			g.emit(at(time.Duration(2*k)*min), id, track("Element Hovered", map[string]any{"element": "book-demo"}, "/"))
		}
	case "form-abandoned", "form-submitted":
		g.emit(at(0), id, track("Form Started", map[string]any{"form": "trial-signup"}, "/signup"))
		if behaviour == "form-submitted" {
			g.emit(at(time.Duration(5+g.r.IntN(20))*min), id, track("Form Submitted", map[string]any{"form": "trial-signup"}, "/signup"))
		}
	case "high-value":
		for k := 0; k < 3; k++ {
			g.emit(at(time.Duration(k*(60+g.r.IntN(600)))*min), id, track("Product Viewed", map[string]any{"product_id": "p9", "name": "Leica M6", "price": 4200.0}, "/products/p9"))
		}
	case "features":
		g.emit(at(0), id, page("/features"))
		g.emit(at(time.Duration(10+g.r.IntN(60))*min), id, page("/features"))
	case "inactive":
		g.emit(at(0), id, track("Signed In", nil, "/login"))
		return // nothing after the sign-in
	case "help-center":
		for k, p := range []string{"/help/billing", "/help/refunds", "/help/contact"} {
			g.emit(at(time.Duration(k*(5+g.r.IntN(120)))*min), id, page(p))
		}
	case "vip":
		g.emit(at(0), id, track("Product Added", map[string]any{"product_id": "p7", "name": "Coat", "price": 900.0, "category": "premium"}, ""))
	case "unsubscribed":
		g.emit(at(0), id, track("Unsubscribed", nil, ""))
		g.emit(at(5*min), id, page("/pricing"))
		g.emit(at(8*min), id, page("/pricing"))
	case "duplicates":
		dup := map[string]any{"messageId": id + "-dup"}
		for k, v := range page("/pricing") {
			dup[k] = v
		}
		g.emit(at(0), id, dup)
		again := map[string]any{"messageId": id + "-dup"}
		for k, v := range page("/pricing") {
			again[k] = v
		}
		g.emit(at(3*min), id, again)
	case "erased":
		g.emit(at(0), id, track("Product Added", map[string]any{"product_id": "p1", "price": 50.0}, ""))
		g.emit(at(10*min), id, map[string]any{"type": "delete"})
		return
	}
	// Ordinary browsing around the scripted part.
	for n < c.EventsPerUser {
		d := time.Duration(g.r.Int64N(int64(6 * time.Hour)))
		if g.r.IntN(2) == 0 {
			d = -d / 3
		}
		p := [...]string{"/", "/blog", "/blog/how-to", "/about", "/features", "/products/p1", "/products/p2", "/products/p3", "/careers"}[g.r.IntN(9)]
		switch g.r.IntN(4) {
		case 0:
			g.emit(at(d), id, track("Page Scrolled", map[string]any{"percent": float64(25 * (1 + g.r.IntN(4)))}, p))
		case 1:
			g.emit(at(d), id, track("Page Heartbeat", map[string]any{"seconds": 15.0}, p))
		default:
			g.emit(at(d), id, page(p))
		}
	}
}
