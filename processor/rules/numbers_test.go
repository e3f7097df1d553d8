package rules_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/processor/state"
)

// numberPack loads one trigger whose when is cond, beside two count
// aggregates the conditions read.
func numberPack(t *testing.T, cond string) (*rules.Pack, error) {
	t.Helper()
	src := fmt.Sprintf(`aggregates:
  - {name: orders, on: [Order Completed], window: 7d}
  - {name: views, on: [page], window: 7d}
triggers:
  - name: n
    intent: low
    on: [page]
    when: %q
    template: t
`, cond)
	return rules.LoadSources([]string{"n.yaml"}, map[string][]byte{"n.yaml": []byte(src)}, rules.Options{})
}

// numberVars: no orders, 12 page views, two views of /p, a cart worth
// 120.5, and an event with price 100.
func numberVars() *rules.Vars {
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	u := state.New("u")
	u.Aggs = map[string]*state.Agg{"views": {}}
	for i := 0; i < 12; i++ {
		u.Aggs["views"].Entries = append(u.Aggs["views"].Entries, state.AggEntry{T: now, V: 1})
	}
	u.Pages = map[string]*state.Page{"/p": {Views: 2}}
	u.Cart.Value = 120.5
	ev := &rules.Event{ID: "m", Name: "page", Type: "page", Time: now, Path: "/p", Properties: map[string]any{"price": 100.0}}
	return &rules.Vars{Event: ev, User: u, Now: now, Entry: &state.Entry{ID: "m", Name: "page", Time: now}}
}

// TestNumbersCompareAcrossTypes: comparisons of an int with a double,
// every one of which the checker refused before (except the orderings),
// load and give CEL's run-time answer: 0 and 0.0 are equal.
func TestNumbersCompareAcrossTypes(t *testing.T) {
	for _, c := range []struct {
		cond string
		want bool
	}{
		{`user.agg("orders") == 0`, true},
		{`user.agg("orders") != 0`, false},
		{`0 == user.agg("orders")`, true},
		{`user.agg("views") >= 10`, true},
		{`10 < user.agg("views")`, true},
		{`user.agg("views") == 12 && user.agg("orders") == 0`, true},
		{`user.agg("views") == 11`, false},
		{`user.views("/p") == 2.0`, true},
		{`user.views("/p") != 2.5`, true},
		{`user.cart.value == 120`, false},
		{`user.cart.value != 120`, true},
		{`user.agg("views") in [10, 12]`, true},
		{`user.agg("views") in [10, 11]`, false},
		{`user.views("/p") in [1.0, 2.0]`, true},
		{`event.num("price") == 100`, true},
		{`event.num("price") == 100 && user.agg("orders") == 0`, true},
		{`(user.agg("orders") == 0) == (user.views("/p") == 2.0)`, true},
		{`user.agg("views") == user.views("/p") * 6`, true},
		{`user.views("/p") + 10 == user.agg("views")`, true},
		{`[1, 2].exists(n, n == user.agg("orders") + 1.0)`, true},
		{`user.agg("orders") == 0u`, true},
		{`user.agg("views") == 9007199254740993`, false},
	} {
		t.Run(c.cond, func(t *testing.T) {
			p, err := numberPack(t, c.cond)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			got, err := p.Trigger("n").When.Bool(numberVars())
			if err != nil {
				t.Fatalf("evaluate: %v", err)
			}
			if got != c.want {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

// TestNumberErrorsSayTheFix: what is still refused for mixing int and
// double says which number to write as a double.
func TestNumberErrorsSayTheFix(t *testing.T) {
	for _, c := range []struct {
		cond string
		want string // in the one error
	}{
		{`user.cart.value + 1 > 100.0`, "CEL does not mix int and double in arithmetic: write 1.0 for 1"},
		{`user.views("/p") * 1.5 > 2.0`, `CEL does not mix int and double in arithmetic: write double(user.views("/p")) for user.views("/p")`},
		{`(user.agg("orders") > 0.0 ? 1 : 0.5) > 0.0`, "both results of ?: must be of one type: write 1.0 for 1"},
		{`user.agg("views") - 2 * user.views("/p") > 0.0`, `write double(2 * user.views("/p")) for 2 * user.views("/p")`},
	} {
		t.Run(c.cond, func(t *testing.T) {
			_, err := numberPack(t, c.cond)
			var list rules.ErrorList
			if !errors.As(err, &list) || len(list) != 1 {
				t.Fatalf("want one error, got %v", err)
			}
			if !strings.Contains(list[0].Msg, c.want) {
				t.Errorf("error %q lacks %q", list[0].Error(), c.want)
			}
		})
	}
}
