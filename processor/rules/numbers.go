package rules

import (
	"fmt"
	"regexp"
	"strings"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/parser"
)

// Numbers in rules: CEL keeps int (2) and double (2.0) apart, and user
// functions return one or the other (user.views is an int, user.agg a
// double). Ordering across them (<, <=, >, >=) is CEL's cross-type numeric
// comparison, enabled in newEnv. Equality and membership (==, !=, in) the
// checker refuses across types, although CEL compares 0 and 0.0 as equal at
// run time; compile settles them by converting the int side to double
// before checking: an int literal becomes the double literal of the same
// value (so `user.agg("x") == 0` is `user.agg("x") == 0.0`), any other int
// expression is wrapped in double(...). CEL compares a double with an int
// as with the double the int converts to, so the result is CEL's own. What
// is still refused (arithmetic and the branches of ?: across int and
// double) is reported with the rewrite that fixes it.

// checkerIssue is one problem the parser or checker reported, with the
// position CEL gives (1-based line, 0-based column) and, for type errors
// on numbers, the fix.
type checkerIssue struct {
	line, col int
	msg       string
}

// maxNumberFixes bounds the rounds of compile: each round settles every
// comparison it can; a nested one ((a == 1) == (b == 2)) may need another.
const maxNumberFixes = 8

// noOverload reads the checker's "found no matching overload" message,
// the only report of the argument types of a call it refused: cel-go has
// no structured form of it. The rules tests pin the format.
var noOverload = regexp.MustCompile(`^found no matching overload for '([^']+)' applied to '(.*)'$`)

// numberFix is a conversion of one argument of one call, found by the
// parsed expression's ids (stable: the same source parses to the same ids).
type numberFix struct {
	call int64
	arg  int
}

// compile parses and checks src, converting the int side of int-double
// equality and membership tests to double; see above.
func compile(env *cel.Env, src string) (*cel.Ast, []checkerIssue) {
	var fixes []numberFix
	for round := 0; ; round++ {
		parsed, iss := env.Parse(src)
		if iss != nil && iss.Err() != nil {
			return nil, issuesOf(iss, nil)
		}
		for _, f := range fixes {
			applyFix(parsed.NativeRep(), f)
		}
		checked, iss := env.Check(parsed)
		if iss == nil || iss.Err() == nil {
			return checked, nil
		}
		var more []numberFix
		if round < maxNumberFixes {
			fresh, _ := env.Parse(src)
			for _, f := range fixes {
				applyFix(fresh.NativeRep(), f)
			}
			for _, ce := range iss.Errors() {
				more = append(more, comparisonFixes(fresh.NativeRep(), ce.ExprID, ce.Message)...)
			}
		}
		if len(more) == 0 {
			fresh, _ := env.Parse(src)
			for _, f := range fixes {
				applyFix(fresh.NativeRep(), f)
			}
			return nil, issuesOf(iss, fresh.NativeRep())
		}
		fixes = append(fixes, more...)
	}
}

func issuesOf(iss *cel.Issues, a *celast.AST) []checkerIssue {
	var out []checkerIssue
	for _, ce := range iss.Errors() {
		msg := ce.Message
		if a != nil {
			if h := numberHint(a, ce.ExprID, msg); h != "" {
				msg += "; " + h
			}
		}
		out = append(out, checkerIssue{line: ce.Location.Line(), col: ce.Location.Column(), msg: msg})
	}
	return out
}

// overloadArgs splits the checker's message into the function and its
// argument types; ok is false for any other message.
func overloadArgs(msg string) (fn string, args []string, ok bool) {
	m := noOverload.FindStringSubmatch(msg)
	if m == nil || !strings.HasSuffix(m[2], ")") {
		return "", nil, false
	}
	// "(int, double)", or "target.(args)" for a member call, where the
	// target's type may hold dots and parentheses: find the parenthesis
	// that opens the last group.
	sig, depth, open := m[2], 0, -1
	for i := len(sig) - 1; i >= 0 && open < 0; i-- {
		switch sig[i] {
		case ')':
			depth++
		case '(':
			depth--
			if depth == 0 {
				open = i
			}
		}
	}
	if open < 0 {
		return "", nil, false
	}
	args = splitTypes(sig[open+1 : len(sig)-1])
	if target := sig[:open]; target != "" {
		if !strings.HasSuffix(target, ".") {
			return "", nil, false
		}
		args = append([]string{strings.TrimSuffix(target, ".")}, args...)
	}
	return m[1], args, true
}

// splitTypes splits "double, map(int, string)" at its top-level commas.
func splitTypes(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	if rest := strings.TrimSpace(s[start:]); rest != "" {
		out = append(out, rest)
	}
	return out
}

func isIntType(t string) bool { return t == "int" || t == "uint" }

// comparisonFixes returns the conversions that make a refused ==, != or
// in between int and double check, or none.
func comparisonFixes(a *celast.AST, id int64, msg string) []numberFix {
	fn, args, ok := overloadArgs(msg)
	if !ok || len(args) != 2 {
		return nil
	}
	call := exprByID(a, id)
	if call == nil || call.Kind() != celast.CallKind || len(call.AsCall().Args()) != 2 {
		return nil
	}
	switch fn {
	case operators.Equals, operators.NotEquals:
		switch {
		case args[0] == "double" && isIntType(args[1]):
			return []numberFix{{id, 1}}
		case isIntType(args[0]) && args[1] == "double":
			return []numberFix{{id, 0}}
		}
	case operators.In:
		switch {
		case isIntType(args[0]) && args[1] == "list(double)":
			return []numberFix{{id, 0}}
		case args[0] == "double" && (args[1] == "list(int)" || args[1] == "list(uint)"):
			// Only a list written out can be converted element by element.
			if call.AsCall().Args()[1].Kind() == celast.ListKind {
				return []numberFix{{id, 1}}
			}
		}
	}
	return nil
}

// applyFix converts argument f.arg of call f.call to double: a list
// literal element by element, an int literal to the double of its value,
// anything else wrapped in double(...).
func applyFix(a *celast.AST, f numberFix) {
	call := exprByID(a, f.call)
	if call == nil || call.Kind() != celast.CallKind {
		return
	}
	args := call.AsCall().Args()
	if f.arg >= len(args) {
		return
	}
	arg := args[f.arg]
	if arg.Kind() == celast.ListKind {
		for _, el := range arg.AsList().Elements() {
			toDouble(a, el)
		}
		return
	}
	toDouble(a, arg)
}

func toDouble(a *celast.AST, e celast.Expr) {
	fac := celast.NewExprFactory()
	if e.Kind() == celast.LiteralKind {
		switch v := e.AsLiteral().(type) {
		case types.Int:
			e.SetKindCase(fac.NewLiteral(e.ID(), types.Double(v)))
			return
		case types.Uint:
			e.SetKindCase(fac.NewLiteral(e.ID(), types.Double(v)))
			return
		case types.Double:
			return
		}
	}
	// e keeps its id (and position) as the double(...) call; what it held
	// moves to a new id at the same position.
	inner := fac.NewUnspecifiedExpr(celast.MaxID(a) + 1)
	inner.SetKindCase(e)
	if r, ok := a.SourceInfo().GetOffsetRange(e.ID()); ok {
		a.SourceInfo().SetOffsetRange(inner.ID(), r)
	}
	e.SetKindCase(fac.NewCall(e.ID(), "double", inner))
}

// exprByID finds the node of that id.
func exprByID(a *celast.AST, id int64) celast.Expr {
	m := celast.MatchDescendants(celast.NavigateAST(a), func(e celast.NavigableExpr) bool { return e.ID() == id })
	if len(m) == 0 {
		return nil
	}
	return m[0]
}

// numberHint says how to fix a call CEL refused for mixing int and double:
// which int to write as a double, or to convert.
func numberHint(a *celast.AST, id int64, msg string) string {
	fn, args, ok := overloadArgs(msg)
	if !ok {
		return ""
	}
	hasDouble, hasInt := false, false
	for _, t := range args {
		hasDouble = hasDouble || t == "double"
		hasInt = hasInt || isIntType(t)
	}
	if !hasDouble || !hasInt {
		return ""
	}
	var fixes []string
	if call := exprByID(a, id); call != nil && call.Kind() == celast.CallKind {
		cargs := call.AsCall().Args()
		if call.AsCall().IsMemberFunction() {
			cargs = append([]celast.Expr{call.AsCall().Target()}, cargs...)
		}
		if len(cargs) == len(args) {
			for i, t := range args {
				if isIntType(t) {
					fixes = append(fixes, asDouble(a, cargs[i]))
				}
			}
		}
	}
	fix := "write the int as a double (2.0, not 2) or convert it with double(...)"
	if len(fixes) > 0 {
		fix = strings.Join(fixes, " and ")
	}
	switch fn {
	case operators.Add, operators.Subtract, operators.Multiply, operators.Divide, operators.Modulo:
		return "CEL does not mix int and double in arithmetic: " + fix
	case operators.Conditional:
		return "both results of ?: must be of one type: " + fix
	}
	return "CEL does not convert between int and double here: " + fix
}

// asDouble says how to write e as a double.
func asDouble(a *celast.AST, e celast.Expr) string {
	src, err := parser.Unparse(e, a.SourceInfo())
	if err != nil {
		src = "it"
	}
	if e.Kind() == celast.LiteralKind {
		switch v := e.AsLiteral().(type) {
		case types.Int:
			return fmt.Sprintf("write %d.0 for %s", int64(v), src)
		case types.Uint:
			return fmt.Sprintf("write %d.0 for %s", uint64(v), src)
		}
	}
	return fmt.Sprintf("write double(%s) for %s", src, src)
}
