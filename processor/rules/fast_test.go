package rules

import (
	"fmt"
	"math"
	"os"
	"testing"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"

	"github.com/microtrigger/microtrigger/processor/state"
)

// TestFastAgreesWithCEL checks, over conditions and values of the shapes
// the fast paths recognise (and some they must not), that what Go
// computes is exactly what CEL computes, errors included: a settled
// condition is one CEL evaluates without error to the same value.
func TestFastAgreesWithCEL(t *testing.T) {
	aggs := map[string]*Aggregate{"n": {Name: "n", Kind: AggCount}}
	env, err := newEnv(aggs)
	if err != nil {
		t.Fatal(err)
	}
	conds := []string{
		`event.path == "/pricing"`,
		`"/pricing" == event.path`,
		`event.path != "/pricing"`,
		`!(event.path == "/pricing")`,
		`event.name == "page" && event.type == "page" && event.id != "" && event.url == ""`,
		`event.path.startsWith("/help")`,
		`event.path.endsWith("/p3") || event.path == "/"`,
		`event.path.contains("blog") && user.agg("n") >= 0.0`,
		`event.str("element") == "book-demo"`,
		`event.str("element") == event.str("other")`,
		`event.num("price") >= 500.0`,
		`event.num("price") >= 500`,
		`500 < event.num("price")`,
		`event.num("price") <= -1.5 && event.num("price") > -1e300`,
		`event.num("price") == 0.0`,
		`event.num("price") == 500`,
		`500 != event.num("price")`,
		`event.num("price") in [500, 3]`,
		`event.num("quantity") == int(event.num("price"))`,
		`event.num("price") != 3.0`,
		`event.num("price") == event.num("quantity")`,
		`event.path == "/x" && event.properties.missing > 1`,
		`event.properties.missing > 1 && event.path == "/x"`,
		`event.path == "/x" && 1 / int(event.num("price")) > 0`,
		`event.num("price") > 1.0 && (event.path == "/a" && event.str("k") == "v")`,
		`user.agg("n") == 0.0`,
		`true`,
	}
	strs := []string{`event.path`, `event.str("product_id")`, `event.name`, `"x"`, `event.path + "x"`}
	nums := []string{`event.num("seconds")`, `event.num("price")`, `2.0`}
	props := []map[string]any{
		nil,
		{},
		{"price": 500.0, "quantity": 500.0, "element": "book-demo", "other": "book-demo", "product_id": "p9", "seconds": 15.0},
		{"price": 499.99, "element": "Book-Demo", "product_id": 9.0, "seconds": "15"},
		{"price": int64(500), "quantity": int64(-3), "k": "v"},
		{"price": math.NaN(), "quantity": math.NaN(), "seconds": math.NaN()},
		{"price": math.Inf(1), "quantity": math.Inf(-1)},
		{"price": -2.0, "element": "", "product_id": ""},
		{"price": 1e300, "k": []any{"v"}, "missing": 2.0},
		{"price": 0.0, "quantity": 0.0},
		{"price": 3.0, "missing": "x"},
	}
	paths := []string{"", "/", "/pricing", "/pricing/", "/help", "/help/billing", "/blog", "/products/p3", "/x", "/a"}
	u := state.New("u")
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	var events []Event
	for _, pr := range props {
		for _, p := range paths {
			events = append(events, Event{ID: "m1", Name: "page", Type: "page", Time: now, Path: p, Properties: pr})
		}
	}
	build := func(src string) *Program {
		t.Helper()
		ast, issues := compile(env, src)
		if len(issues) > 0 {
			t.Fatalf("%s: %v", src, issues)
		}
		prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
		if err != nil {
			t.Fatal(err)
		}
		return &Program{Source: src, prg: prg, fast: fastOf(ast.NativeRep())}
	}
	settledSome := 0
	for _, src := range conds {
		p := build(src)
		for i := range events {
			ev := &events[i]
			v := &Vars{Event: ev, User: u, Now: now}
			out, celErr := p.eval(v)
			var got bool
			var settled bool
			if p.fast != nil {
				got, settled = p.fast.bool(ev)
			}
			if !settled {
				continue
			}
			settledSome++
			b, isBool := out.(types.Bool)
			if celErr != nil || !isBool || bool(b) != got {
				t.Errorf("%s on path %q, properties %v: Go says %v, CEL %v (%v)", src, ev.Path, ev.Properties, got, out, celErr)
			}
		}
	}
	if settledSome == 0 {
		t.Fatal("no condition was settled in Go")
	}
	for _, src := range strs {
		p := build(src)
		for i := range events {
			v := &Vars{Event: &events[i], User: u, Now: now}
			out, celErr := p.eval(v)
			if p.fast == nil || p.fast.str == nil {
				continue
			}
			if got := p.fast.str(&events[i]); celErr != nil || out != types.String(got) {
				t.Errorf("%s: Go says %q, CEL %v (%v)", src, got, out, celErr)
			}
		}
	}
	for _, src := range nums {
		p := build(src)
		for i := range events {
			v := &Vars{Event: &events[i], User: u, Now: now}
			out, celErr := p.eval(v)
			if p.fast == nil || p.fast.num == nil {
				continue
			}
			got := p.fast.num(&events[i])
			d, ok := out.(types.Double)
			if celErr != nil || !ok || !(float64(d) == got || math.IsNaN(got) && math.IsNaN(float64(d))) {
				t.Errorf("%s: Go says %v, CEL %v (%v)", src, got, out, celErr)
			}
		}
	}
}

// TestFastRecognises pins which forms run without CEL, so that a change
// of the recogniser (or of cel-go's checked trees) is seen.
func TestFastRecognises(t *testing.T) {
	env, err := newEnv(map[string]*Aggregate{"n": {Name: "n", Kind: AggCount}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		src  string
		want string
	}{
		{`event.path == "/pricing" && user.agg("n") >= 2.0`, "1 guard"},
		{`event.path.startsWith("/help") && user.agg("n") >= 3.0`, "1 guard"},
		{`event.str("element") == "book-demo"`, "1 guard, complete"},
		{`event.num("price") >= 500.0 && user.agg("n") >= 3.0 && user.agg("n") == 0.0`, "1 guard"},
		{`!(event.path == "/x") && event.num("p") < 2`, "2 guards, complete"},
		{`event.path`, "str"},
		{`event.num("seconds")`, "num"},
		{`user.agg("n") > 1.0 || event.path == "/x"`, "none"},
		{`[event].exists(event, event.path == "/x")`, "none"},
		{`event.properties.form == "x"`, "none"},
		// An int compared with a double is compared as a double.
		{`event.num("price") == 500`, "1 guard, complete"},
		{`event.num("price") == int(event.num("q"))`, "none"},
	} {
		ast, issues := compile(env, c.src)
		if len(issues) > 0 {
			t.Fatalf("%s: %v", c.src, issues)
		}
		f := fastOf(ast.NativeRep())
		got := "none"
		switch {
		case f == nil:
		case f.str != nil:
			got = "str"
		case f.num != nil:
			got = "num"
		default:
			got = fmt.Sprintf("%d guard", len(f.guards))
			if len(f.guards) != 1 {
				got += "s"
			}
			if f.complete {
				got += ", complete"
			}
		}
		if got != c.want {
			t.Errorf("%s: %s, want %s", c.src, got, c.want)
		}
	}
	// The example pack's conditions mostly open with a guard.
	p, err := Load(os.DirFS("../../testdata/rules"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, tr := range p.Triggers {
		if tr.When != nil && tr.When.fast != nil {
			n++
		}
	}
	if n < 6 {
		t.Errorf("%d example triggers have a guard, want at least 6", n)
	}
}
