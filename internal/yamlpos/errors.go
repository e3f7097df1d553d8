package yamlpos

import (
	"fmt"
	"sort"
	"strings"
)

// Pos is a position in a file: 1-based line and column.
type Pos struct {
	File string
	Line int
	Col  int
}

func (p Pos) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Col == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	default:
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
	}
}

// Error is one positioned problem.
type Error struct {
	Pos Pos
	Msg string
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// ErrorList is a list of problems, printed one per line.
type ErrorList []*Error

func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap exposes the errors to errors.Is and errors.As.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// Sorted sorts the list by position and returns it.
func (l ErrorList) Sorted() ErrorList {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i].Pos, l[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return l
}

// Errors collects problems while walking nodes.
type Errors struct{ List ErrorList }

// Add records a problem at p.
func (e *Errors) Add(p Pos, format string, args ...any) {
	e.List = append(e.List, &Error{Pos: p, Msg: fmt.Sprintf(format, args...)})
}

// Err returns the sorted list, or nil when there is no problem.
func (e *Errors) Err() error {
	if len(e.List) == 0 {
		return nil
	}
	return e.List.Sorted()
}
