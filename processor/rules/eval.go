package rules

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// EvalError is a CEL evaluation that failed at run time (a missing map key,
// a type mismatch on dynamic data, the cost limit). It never carries values
// of the user's data, only the expression's position.
type EvalError struct {
	Pos Pos
	Err error
}

func (e *EvalError) Error() string { return fmt.Sprintf("%s: evaluate: %v", e.Pos, e.Err) }
func (e *EvalError) Unwrap() error { return e.Err }

func (p *Program) eval(v *Vars) (ref.Val, error) {
	out, _, err := p.prg.Eval(v)
	if err != nil {
		return nil, &EvalError{Pos: p.Pos, Err: err}
	}
	return out, nil
}

// Bool evaluates a condition.
func (p *Program) Bool(v *Vars) (bool, error) {
	if p.fast != nil && v.Event != nil {
		if b, ok := p.fast.bool(v.Event); ok {
			return b, nil
		}
	}
	out, err := p.eval(v)
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, &EvalError{Pos: p.Pos, Err: fmt.Errorf("condition gave %s, not bool", out.Type())}
	}
	return bool(b), nil
}

// Number evaluates a numeric expression.
func (p *Program) Number(v *Vars) (float64, error) {
	if p.fast != nil && p.fast.num != nil && v.Event != nil {
		return p.fast.num(v.Event), nil
	}
	out, err := p.eval(v)
	if err != nil {
		return 0, err
	}
	switch x := out.(type) {
	case types.Double:
		return float64(x), nil
	case types.Int:
		return float64(x), nil
	case types.Uint:
		return float64(x), nil
	}
	return 0, &EvalError{Pos: p.Pos, Err: fmt.Errorf("value gave %s, not a number", out.Type())}
}

// String evaluates a string expression.
func (p *Program) String(v *Vars) (string, error) {
	if p.fast != nil && p.fast.str != nil && v.Event != nil {
		return p.fast.str(v.Event), nil
	}
	out, err := p.eval(v)
	if err != nil {
		return "", err
	}
	s, ok := out.(types.String)
	if !ok {
		return "", &EvalError{Pos: p.Pos, Err: fmt.Errorf("value gave %s, not string", out.Type())}
	}
	return string(s), nil
}

// Value evaluates an expression to plain Go data for JSON: nil, bool,
// int64, float64, string, []any or map[string]any. Timestamps become RFC
// 3339 strings and durations Go duration strings.
func (p *Program) Value(v *Vars) (any, error) {
	out, err := p.eval(v)
	if err != nil {
		return nil, err
	}
	x, err := native(out)
	if err != nil {
		return nil, &EvalError{Pos: p.Pos, Err: err}
	}
	return x, nil
}

func native(v ref.Val) (any, error) {
	switch x := v.(type) {
	case types.Null:
		return nil, nil
	case types.Bool:
		return bool(x), nil
	case types.Int:
		return int64(x), nil
	case types.Uint:
		return uint64(x), nil
	case types.Double:
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("merge data is not a finite number")
		}
		return f, nil
	case types.String:
		return string(x), nil
	case types.Timestamp:
		return x.Time.UTC().Format("2006-01-02T15:04:05.999999999Z07:00"), nil
	case types.Duration:
		return x.Duration.String(), nil
	}
	if l, ok := v.(traits.Lister); ok {
		n := int(l.Size().(types.Int))
		out := make([]any, 0, n)
		for i := 0; i < n; i++ {
			e, err := native(l.Get(types.Int(i)))
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		return out, nil
	}
	if m, ok := v.(traits.Mapper); ok {
		out := map[string]any{}
		it := m.Iterator()
		for it.HasNext() == types.True {
			k := it.Next()
			ks, ok := k.(types.String)
			if !ok {
				return nil, fmt.Errorf("merge data map keys must be strings")
			}
			e, err := native(m.Get(k))
			if err != nil {
				return nil, err
			}
			out[string(ks)] = e
		}
		return out, nil
	}
	// A native Go value (a cart item, a page): go through its JSON form.
	if rv := reflect.ValueOf(v.Value()); rv.IsValid() {
		b, err := json.Marshal(v.Value())
		if err != nil {
			return nil, fmt.Errorf("merge data: %w", err)
		}
		var out any
		if err := json.Unmarshal(b, &out); err != nil {
			return nil, fmt.Errorf("merge data: %w", err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("merge data of type %s is not supported", v.Type())
}
