package rules

import (
	"strings"
	"testing"
	"time"

	"cel.dev/cel-go/cel"

	"github.com/microtrigger/microtrigger/processor/state"
)

// TestAbsentKeys pins both sides of the absent-key check over the same
// data: what it accepts evaluates without error whether the keys are
// there or not, and what it refuses does fail at run time on data without
// the key (so each refusal is a failure the checker saw before the run).
func TestAbsentKeys(t *testing.T) {
	env, err := newEnv(map[string]*Aggregate{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	full := map[string]any{"form": "trial", "plan": "pro", "coupon": "x", "step": 1.0, "cart": map[string]any{"items": []any{}}}
	varsWith := func(props map[string]any, traits map[string]any) *Vars {
		u := state.New("u")
		u.Traits = traits
		u.Pages = map[string]*state.Page{}
		u.Counts = map[string]int64{}
		if len(props) > 0 {
			u.Pages["/p"] = &state.Page{Views: 3}
			u.Counts["Order Completed"] = 1
		}
		return &Vars{
			Event: &Event{ID: "m", Name: "Form Started", Type: "track", Time: now, Path: "/p", Properties: props, Traits: traits},
			User:  u, Now: now,
			Entry: &state.Entry{ID: "m0", Name: "Form Started", Time: now, Properties: props},
		}
	}
	datas := []struct {
		name string
		v    *Vars
	}{
		{"nil maps", varsWith(nil, nil)},
		{"empty maps", varsWith(map[string]any{}, map[string]any{})},
		{"every key", varsWith(full, map[string]any{"vip": true, "ltv": 900.0, "plan": "pro"})},
	}
	eval := func(t *testing.T, src string) (func(*Vars) error, []absentRead) {
		t.Helper()
		ast, issues := compile(env, src)
		if len(issues) > 0 {
			t.Fatalf("%s: %v", src, issues)
		}
		prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
		if err != nil {
			t.Fatal(err)
		}
		return func(v *Vars) error { _, _, err := prg.Eval(v); return err }, absentReads(ast.NativeRep())
	}

	for _, src := range []string{
		`has(event.properties.form) && event.properties.form == "trial"`,
		`event.properties.plan == "pro" && has(event.properties.plan)`,
		`!has(event.traits.vip) || event.traits.vip == true`,
		`event.traits.vip == true || !has(event.traits.vip)`,
		`has(user.traits.ltv) ? user.traits.ltv > 500 : true`,
		`!has(user.traits.ltv) ? false : user.traits.ltv > 500`,
		`!(has(user.traits.ltv) && user.traits.ltv > 500)`,
		`"coupon" in event.properties && event.properties["coupon"] != ""`,
		`"coupon" in event.properties && event.properties.coupon != ""`,
		`event.properties.?step.orValue(0) < 3`,
		`event.properties[?"source"].orValue("") != "ads"`,
		`event.properties.?cart.?items.orValue([]).size() == 0`,
		`has(event.properties.cart) && has(event.properties.cart.items) && event.properties.cart.items.size() == 0`,
		`user.counts.exists(k, user.counts[k] > 1)`,
		`event.path in user.pages && user.pages[event.path].views > 1`,
		`event.str("form") == entry.str("form") && entry.num("step") >= 0.0`,
		`user.trait("plan") == "pro"`,
		`has(entry.properties.form) ? entry.properties.form == "trial" : false`,
	} {
		t.Run("accepts "+src, func(t *testing.T) {
			run, reads := eval(t, src)
			if len(reads) > 0 {
				t.Fatalf("refused: %s", reads[0].msg)
			}
			for _, d := range datas {
				if err := run(d.v); err != nil {
					t.Errorf("%s: %v", d.name, err)
				}
			}
		})
	}

	for _, c := range []struct{ src, want string }{
		{`event.properties.form == "trial"`, `event.properties.form is an error when event.properties has no key "form"; write event.str("form")`},
		{`event.properties["form"] == "trial"`, `write event.str("form")`},
		{`entry.properties.form == "trial"`, `write entry.str("form")`},
		{`user.traits.plan == "pro"`, `write user.trait("plan")`},
		{`event.traits.vip == true`, `test it first: has(event.traits.vip) && ..., or write event.traits.?vip.orValue(...)`},
		{`has(user.traits.ltv) ? true : user.traits.ltv > 500`, `write user.trait("ltv")`},
		{`has(event.properties.cart.items)`, `event.properties.cart is an error`},
		{`event.properties.?cart.orValue({}).items == []`, `write event.properties.?cart.orValue({}).?items.orValue(...)`},
		{`user.pages["/p"].views > 1`, `write user.views("/p")`},
		{`user.pages[event.path].views > 1`, `write user.views(event.path)`},
		{`user.counts["Order Completed"] > 0`, `write user.count("Order Completed")`},
		{`event.properties["product-id"] == "x"`, `test it first: "product-id" in event.properties && ...`},
	} {
		t.Run("refuses "+c.src, func(t *testing.T) {
			run, reads := eval(t, c.src)
			if len(reads) == 0 {
				t.Fatal("accepted")
			}
			if !strings.Contains(reads[0].msg, c.want) {
				t.Errorf("message %q lacks %q", reads[0].msg, c.want)
			}
			err := run(datas[1].v)
			if err == nil || !strings.Contains(err.Error(), "no such key") {
				t.Errorf("on empty maps: %v, want a no such key error", err)
			}
		})
	}
}
