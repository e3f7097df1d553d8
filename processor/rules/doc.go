// Package rules loads a rule pack: a directory of YAML files declaring
// triggers, windowed aggregates and the global policy, with CEL expressions
// for conditions, filters and merge data.
//
// Load checks everything a pack can get wrong before it runs: YAML syntax,
// unknown or duplicate fields, duplicate trigger names, bad durations,
// impossible intents, unknown templates, and every CEL expression's syntax,
// type and estimated cost, and reads of map keys that nothing guards (a
// missing key is a run-time error in CEL: see absent.go). Comparisons of an
// int with a double are checked as comparisons of doubles (numbers.go). Each problem is an [Error] positioned at
// file:line:col inside the YAML file, not merely inside the expression.
//
// The result is a [Pack]: compiled CEL programs, each with a worst-case cost
// bounded at load (from the per-user state bounds and the event size limit),
// indexed by the event names that wake them, so that an event evaluates only
// the rules that can fire on it ([Pack.On], one lookup per event). Where a
// condition opens with a test of the event alone against constants
// (event.path == "/pricing" && ...), that test runs in Go, and when it
// fails the condition is false without running CEL: the result is CEL's
// exactly, errors included, since && is false as soon as one side is. The
// pack is the rule format and its compiled form; running
// it against user state is the engine's job (processor/engine), and the
// policy decisions it configures are processor/policy's.
package rules
