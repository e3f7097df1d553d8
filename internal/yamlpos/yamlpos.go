// Package yamlpos parses YAML into nodes that remember their file, line and
// column, so that rule packs and rule test files can report every problem
// as file:line:col, including problems inside CEL expressions held by a
// YAML string. It decodes nothing by itself: callers walk the nodes.
package yamlpos

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// node is a YAML value with its position, converted from goccy/go-yaml's
// AST so that every later error can point into the file.
type Node struct {
	Kind  Kind
	Pos   Pos
	Value string // scalars
	Style Style
	// Block scalars: the first content line and its indentation, to map
	// positions inside the value back onto the file.
	blockLine, blockIndent int
	Keys, Vals             []*Node // mappings
	Items                  []*Node // sequences
}

type Kind uint8

const (
	Scalar Kind = iota + 1
	Map
	Seq
	Null
)

func (k Kind) String() string {
	switch k {
	case Scalar:
		return "a scalar"
	case Map:
		return "a mapping"
	case Seq:
		return "a list"
	default:
		return "null"
	}
}

type Style uint8

const (
	Plain Style = iota
	Quoted
	Block
	Folded
)

// parseYAML parses one file into its document nodes.
func Parse(name string, src []byte, e *Errors) []*Node {
	f, err := parser.ParseBytes(src, 0, parser.AllowDuplicateMapKey())
	if err != nil {
		p := Pos{File: name}
		var se *yaml.SyntaxError
		msg := err.Error()
		if errors.As(err, &se) && se.Token != nil {
			p.Line, p.Col = se.Token.Position.Line, se.Token.Position.Column
			msg = se.Message
		}
		e.Add(p, "invalid YAML: %s", firstLine(msg))
		return nil
	}
	lines := strings.Split(string(src), "\n")
	var docs []*Node
	for _, d := range f.Docs {
		if d.Body == nil {
			continue
		}
		docs = append(docs, convert(name, lines, d.Body, e))
	}
	return docs
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return strings.TrimSpace(s[:i])
	}
	return strings.TrimSpace(s)
}

func posOf(file string, n ast.Node) Pos {
	tk := n.GetToken()
	if tk == nil || tk.Position == nil {
		return Pos{File: file}
	}
	return Pos{File: file, Line: tk.Position.Line, Col: tk.Position.Column}
}

func convert(file string, lines []string, n ast.Node, e *Errors) *Node {
	switch x := n.(type) {
	case *ast.MappingNode:
		out := &Node{Kind: Map, Pos: posOf(file, x)}
		for _, mv := range x.Values {
			out.Keys = append(out.Keys, convert(file, lines, mv.Key, e))
			out.Vals = append(out.Vals, convert(file, lines, mv.Value, e))
		}
		if len(x.Values) > 0 {
			out.Pos = out.Keys[0].Pos
		}
		return out
	case *ast.MappingValueNode:
		out := &Node{Kind: Map, Pos: posOf(file, x.Key)}
		out.Keys = append(out.Keys, convert(file, lines, x.Key, e))
		out.Vals = append(out.Vals, convert(file, lines, x.Value, e))
		return out
	case *ast.SequenceNode:
		out := &Node{Kind: Seq, Pos: posOf(file, x)}
		for _, v := range x.Values {
			out.Items = append(out.Items, convert(file, lines, v, e))
		}
		return out
	case *ast.NullNode:
		return &Node{Kind: Null, Pos: posOf(file, x)}
	case *ast.LiteralNode:
		out := &Node{Kind: Scalar, Value: x.Value.Value, Pos: posOf(file, x), Style: Block}
		if x.Start.Type == token.FoldedType {
			out.Style = Folded
		}
		out.blockLine = x.Start.Position.Line + 1
		for l := out.blockLine; l-1 < len(lines); l++ {
			if s := lines[l-1]; strings.TrimSpace(s) != "" {
				out.blockLine = l
				out.blockIndent = len(s) - len(strings.TrimLeft(s, " "))
				break
			}
		}
		return out
	case *ast.AnchorNode:
		return convert(file, lines, x.Value, e)
	case *ast.TagNode:
		return convert(file, lines, x.Value, e)
	case *ast.AliasNode:
		p := posOf(file, x)
		e.Add(p, "YAML aliases are not supported in rule files")
		return &Node{Kind: Null, Pos: p}
	case *ast.StringNode:
		out := &Node{Kind: Scalar, Value: x.Value, Pos: posOf(file, x)}
		if t := x.Token.Type; t == token.DoubleQuoteType || t == token.SingleQuoteType {
			out.Style = Quoted
		}
		return out
	case ast.ScalarNode:
		// Numbers, booleans, infinities: keep their text; fields decode
		// them by what they expect.
		return &Node{Kind: Scalar, Value: x.GetToken().Value, Pos: posOf(file, n)}
	default:
		p := posOf(file, n)
		e.Add(p, "unsupported YAML node %s", n.Type())
		return &Node{Kind: Null, Pos: p}
	}
}

// exprPos maps a position inside a CEL expression held by n (1-based line,
// 0-based column, as cel-go reports them) onto the YAML file.
func (n *Node) ExprPos(line, col int) Pos {
	p := n.Pos
	if line < 1 {
		line = 1
	}
	switch n.Style {
	case Block:
		p.Line = n.blockLine + line - 1
		p.Col = n.blockIndent + col + 1
	case Folded:
		// Folding joins lines; point at the block's first line.
		p.Line = n.blockLine
		p.Col = n.blockIndent + 1
	case Quoted:
		p.Line += line - 1
		if line == 1 {
			p.Col += 1 + col
		} else {
			p.Col = col + 1
		}
	default:
		p.Line += line - 1
		if line == 1 {
			p.Col += col
		} else {
			p.Col = col + 1
		}
	}
	return p
}

// fields reads a mapping, refusing keys not in allowed and duplicate keys.
func (n *Node) Fields(e *Errors, what string, allowed ...string) map[string]*Node {
	if n.Kind != Map {
		e.Add(n.Pos, "%s must be a mapping, not %s", what, n.Kind)
		return nil
	}
	out := make(map[string]*Node, len(n.Keys))
	for i, k := range n.Keys {
		name := k.Value
		if k.Kind != Scalar {
			e.Add(k.Pos, "%s: keys must be names", what)
			continue
		}
		if _, dup := out[name]; dup {
			e.Add(k.Pos, "%s: field %q appears twice", what, name)
			continue
		}
		known := false
		for _, a := range allowed {
			if a == name {
				known = true
				break
			}
		}
		if !known {
			e.Add(k.Pos, "%s: unknown field %q (want one of %s)", what, name, strings.Join(allowed, ", "))
			continue
		}
		out[name] = n.Vals[i]
	}
	return out
}

func (n *Node) Str(e *Errors, what string) (string, bool) {
	if n.Kind != Scalar {
		e.Add(n.Pos, "%s must be a string, not %s", what, n.Kind)
		return "", false
	}
	return n.Value, true
}

func (n *Node) StrList(e *Errors, what string) ([]string, []*Node) {
	if n.Kind == Scalar {
		return []string{n.Value}, []*Node{n}
	}
	if n.Kind != Seq {
		e.Add(n.Pos, "%s must be a list of strings, not %s", what, n.Kind)
		return nil, nil
	}
	var out []string
	var nodes []*Node
	for _, it := range n.Items {
		if s, ok := it.Str(e, what+" entry"); ok {
			out = append(out, s)
			nodes = append(nodes, it)
		}
	}
	return out, nodes
}

func (n *Node) Bool(e *Errors, what string) (bool, bool) {
	if n.Kind == Scalar && n.Style == Plain {
		switch n.Value {
		case "true":
			return true, true
		case "false":
			return false, true
		}
	}
	e.Add(n.Pos, "%s must be true or false", what)
	return false, false
}

func (n *Node) Number(e *Errors, what string) (float64, bool) {
	if n.Kind == Scalar && n.Style == Plain {
		var f float64
		if _, err := fmt.Sscanf(n.Value, "%g", &f); err == nil && !strings.ContainsAny(n.Value, " \t") {
			return f, true
		}
	}
	e.Add(n.Pos, "%s must be a number", what)
	return 0, false
}

func (n *Node) Int(e *Errors, what string) (int, bool) {
	f, ok := n.Number(e, what)
	if !ok {
		return 0, false
	}
	if f != float64(int(f)) {
		e.Add(n.Pos, "%s must be a whole number", what)
		return 0, false
	}
	return int(f), true
}

// Data converts n to plain Go data as a YAML 1.2 core-schema reader would:
// mappings to map[string]any, sequences to []any, plain scalars to bool,
// int64, float64 or nil when they read as such, everything else to string.
func (n *Node) Data() any {
	switch n.Kind {
	case Map:
		m := make(map[string]any, len(n.Keys))
		for i, k := range n.Keys {
			m[k.Value] = n.Vals[i].Data()
		}
		return m
	case Seq:
		out := make([]any, len(n.Items))
		for i, it := range n.Items {
			out[i] = it.Data()
		}
		return out
	case Null:
		return nil
	}
	if n.Style != Plain {
		return n.Value
	}
	switch n.Value {
	case "true", "True", "TRUE":
		return true
	case "false", "False", "FALSE":
		return false
	case "null", "Null", "NULL", "~", "":
		return nil
	}
	if i, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
		return i
	}
	if f, err := strconv.ParseFloat(n.Value, 64); err == nil && !strings.ContainsAny(n.Value, "xXpP_") {
		return f
	}
	return n.Value
}

// Get returns the value node of key in a mapping, or nil.
func (n *Node) Get(key string) *Node {
	if n == nil || n.Kind != Map {
		return nil
	}
	for i, k := range n.Keys {
		if k.Value == key {
			return n.Vals[i]
		}
	}
	return nil
}
