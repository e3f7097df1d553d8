package rules

import (
	"fmt"

	celast "cel.dev/cel-go/common/ast"
)

// Where `event` is defined. The variable is the event being evaluated,
// which exists only for the expressions an event runs: a trigger's when as
// the event wakes it, exit_on conditions and aggregates. What a run
// evaluates later (recheck at the end of the wait, each step's when and
// data, the trigger's and the variants' data) runs when the run's timer
// fires, or right after the event that started the run when nothing
// delays it: there the event of the run is entry, and the checker refuses
// event with a message that says so, rather than let it quietly mean the
// entry event.
//
// One expression is evaluated in both places: the when of a trigger that
// waits and gives no recheck is checked again when the wait ends, where
// event is the run's entry event. The same event, but the run keeps only
// part of it (state.Entry: id, name, time, path and properties; the type
// follows from the name), so there the checker refuses reads of what it
// does not keep (event.url, event.traits).

// eventUse is one use of the variable event in a checked expression.
type eventUse struct {
	pos Pos
	id  int64
	// use is how it is used, as written: "event.path", "event.num(...)",
	// or "event" alone (passed whole, iterated over).
	use string
	// kept: the run keeps what this use reads (see above).
	kept bool
	// entry is the same read from entry, when there is one.
	entry string
}

// eventUses lists the uses of the variable event.
func eventUses(a *celast.AST) []eventUse {
	var out []eventUse
	for _, e := range celast.MatchDescendants(celast.NavigateAST(a), celast.KindMatcher(celast.IdentKind)) {
		if !isEvent(a, e) || shadowed(e) {
			continue
		}
		u := eventUse{id: e.ID(), use: "event"}
		if p, ok := e.Parent(); ok {
			switch p.Kind() {
			case celast.SelectKind:
				f := p.AsSelect().FieldName()
				u.use = "event." + f
				switch f {
				case "id", "name", "time", "path", "properties":
					u.kept, u.entry = true, "entry."+f
				case "type":
					u.kept = true
				}
			case celast.CallKind:
				c := p.AsCall()
				if c.IsMemberFunction() && c.Target().ID() == e.ID() {
					u.use = "event." + c.FunctionName() + "(...)"
					switch c.FunctionName() {
					case "num", "str":
						u.kept = true
						u.entry = "entry." + c.FunctionName() + "(...)"
						if k, ok := literalArg(c); ok {
							u.use = fmt.Sprintf("event.%s(%q)", c.FunctionName(), k)
							u.entry = fmt.Sprintf("entry.%s(%q)", c.FunctionName(), k)
						}
					}
				}
			}
		}
		out = append(out, u)
	}
	return out
}

// refuseEvent reports every use of event in an expression a run
// evaluates; it reports whether there was one.
func (c *compiler) refuseEvent(uses []eventUse, what string) bool {
	for _, u := range uses {
		fix := "entry keeps its id, name, time, path and properties"
		if u.entry != "" {
			fix = "write " + u.entry
		}
		if u.use == "event.context" {
			fix += "; the user's latest device type is user.device"
		}
		c.e.Add(u.pos, "%s: %s: event is not defined here: a run evaluates recheck and its steps' when and data when its timer fires, not on an event; the event that started the run is entry: %s",
			what, u.use, fix)
	}
	return len(uses) > 0
}

// refuseUnkept reports the uses of event in a trigger's when that the run
// does not keep for checking it again at the end of the wait.
func (c *compiler) refuseUnkept(p *Program, what string) {
	if p == nil {
		return
	}
	for _, u := range p.events {
		if u.kept {
			continue
		}
		c.e.Add(u.pos, "%s: %s: without a recheck, when is checked again when the wait ends, where event is the run's entry event, which keeps only its id, name, type, time, path and properties; give the trigger a recheck",
			what, u.use)
	}
}

// shadowed reports whether the identifier event at e names a variable of
// a comprehension around it ([1].exists(event, ...)), not the event.
func shadowed(e celast.NavigableExpr) bool {
	child := e
	for p, ok := e.Parent(); ok; p, ok = p.Parent() {
		if p.Kind() == celast.ComprehensionKind {
			c := p.AsComprehension()
			binds := c.IterVar() == "event" || c.IterVar2() == "event" || c.AccuVar() == "event"
			if binds && child.ID() != c.IterRange().ID() {
				return true
			}
		}
		child = p
	}
	return false
}
