package rules

import (
	"fmt"
	"strconv"
	"strings"

	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/parser"
)

// Absent keys. Reading a key a map does not hold (entry.properties.form,
// event.properties["plan"], user.traits.vip, a field of a dyn value) is an
// error in CEL at run time ("no such key"), which the type checker cannot
// see: a map's keys are data. Such a rule would pass `rules check`, then
// fail on the first event without the key: live, the condition counts as
// false and a data field is left out; in `rules test` the case stops.
//
// So the checker refuses every such read that nothing guards, and says how
// to write it. A read is guarded where it runs only once the key is known
// to be there: under has() of the same path (has(m.k) && m.k > 1,
// has(m.k) ? m.k : 0, !has(m.k) || m.k == "x"), under "k" in m or k in m,
// or inside a comprehension over m by its key (m.exists(k, m[k] > 1)).
// Optional reads (m.?k.orValue(""), m[?"k"]) and the total functions
// (event.str, event.num, entry.str, entry.num, user.trait, user.count, …)
// never fail.

// absentRead is one unguarded read of a key that may be absent.
type absentRead struct {
	id  int64
	msg string
}

// absentReads finds the unguarded reads of a checked expression.
func absentReads(a *celast.AST) []absentRead {
	w := &absentWalk{a: a}
	w.visit(a.Expr(), nil)
	return w.out
}

type absentWalk struct {
	a   *celast.AST
	out []absentRead
}

// mayLack reports whether a value of e's type may lack a key that is read:
// a map, or a dyn (which may be one).
func (w *absentWalk) mayLack(e celast.Expr) bool {
	t, ok := w.a.TypeMap()[e.ID()]
	if !ok {
		return false
	}
	return t.Kind() == types.MapKind || t.Kind() == types.DynKind
}

// pathOf names e when it is a chain of field reads and indexes by a
// constant or a variable from an identifier: event.properties.form,
// m["k"] (the same as m.k), m[k]. ok is false for anything else.
func (w *absentWalk) pathOf(e celast.Expr) (string, bool) {
	switch e.Kind() {
	case celast.IdentKind:
		return e.AsIdent(), true
	case celast.SelectKind:
		s := e.AsSelect()
		if s.IsTestOnly() {
			return "", false
		}
		p, ok := w.pathOf(s.Operand())
		return p + "." + s.FieldName(), ok
	case celast.CallKind:
		c := e.AsCall()
		if c.FunctionName() != operators.Index || len(c.Args()) != 2 {
			return "", false
		}
		p, ok := w.pathOf(c.Args()[0])
		if !ok {
			return "", false
		}
		return w.member(p, c.Args()[1])
	}
	return "", false
}

// member names key k of the map at path p: p.k for a string constant
// (m["k"] is m.k), else p[k] with k as written.
func (w *absentWalk) member(p string, k celast.Expr) (string, bool) {
	if k.Kind() == celast.LiteralKind {
		if s, isStr := k.AsLiteral().(types.String); isStr {
			return p + "." + string(s), true
		}
	}
	src, ok := w.text(k)
	return p + "[" + src + "]", ok
}

// text is e as CEL source.
func (w *absentWalk) text(e celast.Expr) (string, bool) {
	s, err := parser.Unparse(e, w.a.SourceInfo())
	return s, err == nil
}

// guards are the paths known to be present.
type guards []string

func (g guards) has(p string) bool {
	for _, x := range g {
		if x == p {
			return true
		}
	}
	return false
}

func with(g guards, more guards) guards {
	if len(more) == 0 {
		return g
	}
	out := make(guards, 0, len(g)+len(more))
	return append(append(out, g...), more...)
}

// whenTrue lists the paths present whenever e is true.
func (w *absentWalk) whenTrue(e celast.Expr) guards {
	if e.Kind() == celast.SelectKind && e.AsSelect().IsTestOnly() {
		s := e.AsSelect()
		if p, ok := w.pathOf(s.Operand()); ok {
			return guards{p + "." + s.FieldName()}
		}
		return nil
	}
	if e.Kind() != celast.CallKind {
		return nil
	}
	c := e.AsCall()
	args := c.Args()
	switch c.FunctionName() {
	case operators.LogicalAnd:
		var out guards
		for _, x := range args {
			out = append(out, w.whenTrue(x)...)
		}
		return out
	case operators.LogicalNot:
		if len(args) == 1 {
			return w.whenFalse(args[0])
		}
	case operators.In:
		if len(args) != 2 {
			return nil
		}
		if m, ok := w.pathOf(args[1]); ok {
			if p, ok := w.member(m, args[0]); ok {
				return guards{p}
			}
		}
	}
	return nil
}

// whenFalse lists the paths present whenever e is false.
func (w *absentWalk) whenFalse(e celast.Expr) guards {
	if e.Kind() != celast.CallKind {
		return nil
	}
	c := e.AsCall()
	switch c.FunctionName() {
	case operators.LogicalOr:
		var out guards
		for _, x := range c.Args() {
			out = append(out, w.whenFalse(x)...)
		}
		return out
	case operators.LogicalNot:
		if len(c.Args()) == 1 {
			return w.whenTrue(c.Args()[0])
		}
	}
	return nil
}

func (w *absentWalk) visit(e celast.Expr, g guards) {
	switch e.Kind() {
	case celast.SelectKind:
		s := e.AsSelect()
		if !s.IsTestOnly() && w.mayLack(s.Operand()) {
			w.check(e, s.Operand(), strconv.Quote(s.FieldName()), true, g)
		}
		w.visit(s.Operand(), g)
	case celast.CallKind:
		w.call(e, g)
	case celast.ListKind:
		for _, x := range e.AsList().Elements() {
			w.visit(x, g)
		}
	case celast.MapKind:
		for _, en := range e.AsMap().Entries() {
			me := en.AsMapEntry()
			w.visit(me.Key(), g)
			w.visit(me.Value(), g)
		}
	case celast.StructKind:
		for _, f := range e.AsStruct().Fields() {
			w.visit(f.AsStructField().Value(), g)
		}
	case celast.ComprehensionKind:
		c := e.AsComprehension()
		w.visit(c.IterRange(), g)
		w.visit(c.AccuInit(), g)
		inner := g
		if m, ok := w.pathOf(c.IterRange()); ok {
			if t, found := w.a.TypeMap()[c.IterRange().ID()]; found && t.Kind() == types.MapKind {
				// Iterating over a map binds its keys.
				inner = with(g, guards{m + "[" + c.IterVar() + "]"})
			}
		}
		w.visit(c.LoopCondition(), inner)
		w.visit(c.LoopStep(), inner)
		w.visit(c.Result(), g)
	}
}

func (w *absentWalk) call(e celast.Expr, g guards) {
	c := e.AsCall()
	args := c.Args()
	switch c.FunctionName() {
	case operators.LogicalAnd:
		// CEL's && is false when either side is, even if the other errs:
		// a has() on either side guards the other.
		for i, x := range args {
			var others guards
			for j, y := range args {
				if j != i {
					others = append(others, w.whenTrue(y)...)
				}
			}
			w.visit(x, with(g, others))
		}
		return
	case operators.LogicalOr:
		for i, x := range args {
			var others guards
			for j, y := range args {
				if j != i {
					others = append(others, w.whenFalse(y)...)
				}
			}
			w.visit(x, with(g, others))
		}
		return
	case operators.Conditional:
		if len(args) == 3 {
			w.visit(args[0], g)
			w.visit(args[1], with(g, w.whenTrue(args[0])))
			w.visit(args[2], with(g, w.whenFalse(args[0])))
			return
		}
	case operators.Index:
		if len(args) == 2 && w.mayLack(args[0]) {
			key, _ := w.text(args[1])
			w.check(e, args[0], key, false, g)
		}
	}
	if c.IsMemberFunction() {
		w.visit(c.Target(), g)
	}
	for _, x := range args {
		w.visit(x, g)
	}
}

// check reports the read e of key from m unless it is guarded.
func (w *absentWalk) check(e, m celast.Expr, key string, field bool, g guards) {
	p, ok := w.pathOf(e)
	if ok && g.has(p) {
		return
	}
	w.out = append(w.out, absentRead{id: e.ID(), msg: w.message(m, key, field)})
}

// message says why a read of key from m may fail and how to write it; key
// is as written in CEL (a field name quoted as a string).
func (w *absentWalk) message(m celast.Expr, key string, field bool) string {
	mp, ok := w.pathOf(m)
	if !ok {
		if mp, ok = w.text(m); !ok {
			mp = "the map"
		}
	}
	name, isConst := constKey(key)
	what := mp + "[" + key + "]"
	if field {
		what = mp + "." + name
	}
	msg := fmt.Sprintf("%s is an error when %s has no key %s", what, mp, key)
	test := fmt.Sprintf("%s in %s && ...", key, mp)
	opt := fmt.Sprintf("%s[?%s].orValue(...)", mp, key)
	if isConst && isIdent(name) {
		test = fmt.Sprintf("has(%s.%s) && ...", mp, name)
		opt = fmt.Sprintf("%s.?%s.orValue(...)", mp, name)
	}
	switch mp {
	case "event.properties", "entry.properties":
		v := strings.TrimSuffix(mp, ".properties")
		return fmt.Sprintf(`%s; write %s.str(%s) or %s.num(%s) ("" or 0 when absent), or test it first: %s`, msg, v, key, v, key, test)
	case "user.traits":
		return fmt.Sprintf("%s; write user.trait(%s) (null when absent), or test it first: %s", msg, key, test)
	case "user.counts":
		return fmt.Sprintf("%s; write user.count(%s) (0 when absent)", msg, key)
	case "user.last_seen":
		return fmt.Sprintf("%s; write user.last(%s) or user.seen(%s)", msg, key, key)
	case "user.hovers":
		return fmt.Sprintf("%s; write user.hovers(%s) (0 when absent)", msg, key)
	case "user.pages":
		return fmt.Sprintf("%s; write user.views(%s), user.scroll(%s) or user.dwell(%s) (0 when absent)", msg, key, key, key)
	case "user.session.scroll":
		return fmt.Sprintf("%s; write user.sessionScroll(%s) (0 when absent)", msg, key)
	case "user.session.video":
		return fmt.Sprintf("%s; write user.sessionVideo(%s) (0 when absent)", msg, key)
	}
	if _, err := strconv.ParseFloat(strings.TrimSuffix(key, "u"), 64); err == nil {
		// A number: an index into a list, or a key of a map.
		return fmt.Sprintf("%s; write %s", msg, opt)
	}
	return fmt.Sprintf("%s; test it first: %s, or write %s", msg, test, opt)
}

// constKey returns the string a quoted key holds.
func constKey(key string) (string, bool) {
	s, err := strconv.Unquote(key)
	return s, err == nil
}

// isIdent reports whether s can follow a dot in CEL (has(m.s), m.?s).
func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		letter := r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z'
		if !letter && (i == 0 || r < '0' || r > '9') {
			return false
		}
	}
	return true
}
