package rules

import (
	"math"
	"strings"

	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/overloads"
	"cel.dev/cel-go/common/types"
)

// fast holds what of a program can be computed in Go, exactly as CEL
// would: most conditions open with a test of the event alone
// (`event.path == "/pricing" && ...`), and most events fail it, so they
// need not run CEL at all. Only forms whose Go meaning is certainly CEL's
// are recognised: the event's string fields and event.str / event.num
// compared with constants, and startsWith, endsWith and contains.
type fast struct {
	// guards are conjuncts of a condition's top-level &&. One that is
	// false makes the condition false, whatever the others give: CEL's &&
	// is false as soon as one side is, even when another side errs.
	guards []guard
	// complete: the condition is nothing but its guards.
	complete bool
	// str and num are a whole String or Number program.
	str func(*Event) string
	num func(*Event) float64
}

// guard evaluates one conjunct; ok is false when Go cannot tell what CEL
// would (a NaN, which CEL refuses to order), and CEL must run.
type guard func(*Event) (v, ok bool)

// fastOf analyses a checked expression.
func fastOf(a *celast.AST) *fast {
	f := &fast{}
	e := a.Expr()
	if s, ok := strTerm(a, e); ok {
		f.str = s
	}
	if n, ok := numTermOf(a, e); ok && n.get != nil {
		f.num = n.get
	}
	conj := conjuncts(a, e, nil)
	f.complete = true
	for _, c := range conj {
		if g, ok := guardOf(a, c); ok {
			f.guards = append(f.guards, g)
		} else {
			f.complete = false
		}
	}
	if f.str == nil && f.num == nil && len(f.guards) == 0 {
		return nil
	}
	return f
}

// bool evaluates the condition when the guards settle it.
func (f *fast) bool(ev *Event) (v, settled bool) {
	for _, g := range f.guards {
		if x, ok := g(ev); ok && !x {
			return false, true
		} else if !ok {
			return false, false
		}
	}
	return true, f.complete
}

func overload(a *celast.AST, e celast.Expr, ids ...string) bool {
	got := a.GetOverloadIDs(e.ID())
	if len(got) != 1 {
		return false
	}
	for _, id := range ids {
		if got[0] == id {
			return true
		}
	}
	return false
}

func conjuncts(a *celast.AST, e celast.Expr, out []celast.Expr) []celast.Expr {
	if e.Kind() == celast.CallKind {
		c := e.AsCall()
		if c.FunctionName() == operators.LogicalAnd && overload(a, e, overloads.LogicalAnd) && len(c.Args()) == 2 {
			return conjuncts(a, c.Args()[1], conjuncts(a, c.Args()[0], out))
		}
	}
	return append(out, e)
}

// isEvent reports whether e is the variable event.
func isEvent(a *celast.AST, e celast.Expr) bool {
	if e.Kind() != celast.IdentKind || e.AsIdent() != "event" {
		return false
	}
	r := a.ReferenceMap()[e.ID()]
	return r != nil && r.Name == "event" && r.Value == nil
}

// literalArg returns the string literal argument of an event function.
func literalArg(c celast.CallExpr) (string, bool) {
	if len(c.Args()) != 1 || c.Args()[0].Kind() != celast.LiteralKind {
		return "", false
	}
	s, ok := c.Args()[0].AsLiteral().(types.String)
	return string(s), ok
}

// strTerm: a string constant, a string field of event, or event.str(k).
func strTerm(a *celast.AST, e celast.Expr) (func(*Event) string, bool) {
	switch e.Kind() {
	case celast.LiteralKind:
		s, ok := e.AsLiteral().(types.String)
		if !ok {
			return nil, false
		}
		c := string(s)
		return func(*Event) string { return c }, true
	case celast.SelectKind:
		s := e.AsSelect()
		if s.IsTestOnly() || !isEvent(a, s.Operand()) {
			return nil, false
		}
		switch s.FieldName() {
		case "id":
			return func(ev *Event) string { return ev.ID }, true
		case "name":
			return func(ev *Event) string { return ev.Name }, true
		case "type":
			return func(ev *Event) string { return ev.Type }, true
		case "path":
			return func(ev *Event) string { return ev.Path }, true
		case "url":
			return func(ev *Event) string { return ev.URL }, true
		}
	case celast.CallKind:
		c := e.AsCall()
		if c.FunctionName() != "str" || !c.IsMemberFunction() || !isEvent(a, c.Target()) || !overload(a, e, "event_str_string") {
			return nil, false
		}
		k, ok := literalArg(c)
		if !ok {
			return nil, false
		}
		return func(ev *Event) string { return eventStr(ev, k) }, true
	}
	return nil, false
}

// numTerm is a number constant (get nil, c set) or event.num(k).
type numTerm struct {
	get func(*Event) float64
	c   float64
}

func numTermOf(a *celast.AST, e celast.Expr) (numTerm, bool) {
	switch e.Kind() {
	case celast.LiteralKind:
		switch x := e.AsLiteral().(type) {
		case types.Double:
			return numTerm{c: float64(x)}, true
		case types.Int:
			// CEL orders a double against an int as against the double
			// it converts to (compareDoubleInt).
			return numTerm{c: float64(x)}, true
		}
	case celast.CallKind:
		c := e.AsCall()
		if c.FunctionName() != "num" || !c.IsMemberFunction() || !isEvent(a, c.Target()) || !overload(a, e, "event_num_string") {
			return numTerm{}, false
		}
		k, ok := literalArg(c)
		if !ok {
			return numTerm{}, false
		}
		return numTerm{get: func(ev *Event) float64 { return eventNum(ev, k) }}, true
	}
	return numTerm{}, false
}

func (n numTerm) at(ev *Event) float64 {
	if n.get == nil {
		return n.c
	}
	return n.get(ev)
}

// guardOf recognises a conjunct computable in Go.
func guardOf(a *celast.AST, e celast.Expr) (guard, bool) {
	if e.Kind() != celast.CallKind {
		return nil, false
	}
	c := e.AsCall()
	args := c.Args()
	switch c.FunctionName() {
	case operators.LogicalNot:
		if len(args) != 1 || !overload(a, e, overloads.LogicalNot) {
			return nil, false
		}
		g, ok := guardOf(a, args[0])
		if !ok {
			return nil, false
		}
		return func(ev *Event) (bool, bool) { v, ok := g(ev); return !v, ok }, true
	case operators.Equals, operators.NotEquals:
		if len(args) != 2 {
			return nil, false
		}
		eq := c.FunctionName() == operators.Equals
		if !overload(a, e, overloads.Equals, overloads.NotEquals) {
			return nil, false
		}
		if x, ok := strTerm(a, args[0]); ok {
			if y, ok := strTerm(a, args[1]); ok {
				return func(ev *Event) (bool, bool) { return (x(ev) == y(ev)) == eq, true }, true
			}
		}
		x, okx := numTermOf(a, args[0])
		y, oky := numTermOf(a, args[1])
		if !okx || !oky || (x.get == nil && y.get == nil) {
			return nil, false
		}
		return func(ev *Event) (bool, bool) {
			p, q := x.at(ev), y.at(ev)
			if math.IsNaN(p) || math.IsNaN(q) {
				return false, false
			}
			return (p == q) == eq, true
		}, true
	case operators.Less, operators.LessEquals, operators.Greater, operators.GreaterEquals:
		if len(args) != 2 {
			return nil, false
		}
		x, okx := numTermOf(a, args[0])
		y, oky := numTermOf(a, args[1])
		if !okx || !oky || (x.get == nil && y.get == nil) {
			return nil, false
		}
		ids := a.GetOverloadIDs(e.ID())
		if len(ids) != 1 || !strings.HasSuffix(strings.TrimSuffix(ids[0], "_int64"), "_double") {
			return nil, false
		}
		var cmp func(p, q float64) bool
		switch c.FunctionName() {
		case operators.Less:
			cmp = func(p, q float64) bool { return p < q }
		case operators.LessEquals:
			cmp = func(p, q float64) bool { return p <= q }
		case operators.Greater:
			cmp = func(p, q float64) bool { return p > q }
		default:
			cmp = func(p, q float64) bool { return p >= q }
		}
		return func(ev *Event) (bool, bool) {
			p, q := x.at(ev), y.at(ev)
			if math.IsNaN(p) || math.IsNaN(q) {
				return false, false // CEL errs: let it say so
			}
			return cmp(p, q), true
		}, true
	case overloads.StartsWith, overloads.EndsWith, overloads.Contains:
		if !c.IsMemberFunction() || len(args) != 1 {
			return nil, false
		}
		var fn func(s, t string) bool
		switch {
		case c.FunctionName() == overloads.StartsWith && overload(a, e, overloads.StartsWithString):
			fn = strings.HasPrefix
		case c.FunctionName() == overloads.EndsWith && overload(a, e, overloads.EndsWithString):
			fn = strings.HasSuffix
		case c.FunctionName() == overloads.Contains && overload(a, e, overloads.ContainsString):
			fn = strings.Contains
		default:
			return nil, false
		}
		x, okx := strTerm(a, c.Target())
		y, oky := strTerm(a, args[0])
		if !okx || !oky {
			return nil, false
		}
		return func(ev *Event) (bool, bool) { return fn(x(ev), y(ev)), true }, true
	}
	return nil, false
}
