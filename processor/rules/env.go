package rules

import (
	"reflect"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"

	"github.com/microtrigger/microtrigger/processor/state"
	"github.com/microtrigger/microtrigger/schema"
)

// Event is the CEL variable `event`: the event being evaluated, by the
// names rules use. It is defined only in what an event evaluates (a
// trigger's when, exit conditions, aggregates; eventvar.go): the one other
// place it is read is the when of a trigger that waits without a recheck,
// checked again when the wait ends, where it is the run's entry event
// (EventOfEntry).
type Event struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"` // track name, or page/screen/identify
	Type       string         `json:"type"`
	Time       time.Time      `json:"time"`
	Path       string         `json:"path"`
	URL        string         `json:"url"`
	Properties map[string]any `json:"properties"`
	Traits     map[string]any `json:"traits"`
	// Context is the event's context as the decoder reads it:
	// event.context.device.type, .userAgent, .locale, .timezone,
	// .page.{path,url,title,referrer} and .campaign.{name,source,medium,
	// term,content}, each "" when the event has none.
	Context schema.Context `json:"context"`
}

// EventOf builds the CEL view of an event.
func EventOf(ev *schema.Event) Event {
	return Event{
		ID: ev.MessageID, Name: ev.Key(), Type: ev.Type, Time: ev.Timestamp,
		Path: ev.Path(), URL: ev.Context.Page.URL, Properties: ev.Properties, Traits: ev.Traits,
		Context: ev.Context,
	}
}

// EventOfEntry rebuilds the CEL view of a run's entry event: what the run
// keeps of it, the type following from the name (the key of a page,
// screen or identify call is its type), no url and no traits.
func EventOfEntry(e *state.Entry) Event {
	typ := schema.TypeTrack
	switch e.Name {
	case schema.TypePage, schema.TypeScreen, schema.TypeIdentify:
		typ = e.Name
	}
	return Event{ID: e.ID, Name: e.Name, Type: typ, Time: e.Time, Path: e.Path, Properties: e.Properties}
}

const (
	userType  = "state.User"
	eventType = "rules.Event"
	entryType = "state.Entry"
)

// Vars are the variables of one evaluation. A Vars may be reused for
// several evaluations; it resolves the CEL variables itself, without
// building a map.
type Vars struct {
	Event *Event
	User  *state.User
	Now   time.Time
	Entry *state.Entry

	now    ref.Val // Now as a CEL value, built once
	nowFor time.Time
}

// ResolveName implements interpreter.Activation.
func (v *Vars) ResolveName(name string) (any, bool) {
	switch name {
	case "event":
		return v.Event, true
	case "user":
		return v.User, true
	case "now":
		if v.now == nil || !v.nowFor.Equal(v.Now) {
			v.now, v.nowFor = types.Timestamp{Time: v.Now}, v.Now
		}
		return v.now, true
	case "entry":
		return v.Entry, true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (v *Vars) Parent() interpreter.Activation { return nil }

// newEnv declares the variables and functions every expression may use.
// Functions are pure and total: an absent page, event or aggregate gives 0,
// false or the zero timestamp, never an error.
func newEnv(aggs map[string]*Aggregate) (*cel.Env, error) {
	user := cel.ObjectType(userType)
	event := cel.ObjectType(eventType)
	userOf := func(v ref.Val) *state.User { return v.Value().(*state.User) }
	eventOf := func(v ref.Val) *Event { return v.Value().(*Event) }
	entry := cel.ObjectType(entryType)
	entryOf := func(v ref.Val) *state.Entry { return v.Value().(*state.Entry) }
	str := func(v ref.Val) string { return string(v.(types.String)) }
	zero := types.Timestamp{Time: time.Unix(0, 0).UTC()}

	return cel.NewEnv(
		ext.NativeTypes(
			reflect.TypeFor[state.User](),
			reflect.TypeFor[Event](),
			ext.ParseStructTag("json"),
		),
		cel.Variable("user", user),
		cel.Variable("event", event),
		cel.Variable("entry", entry),
		cel.Variable("now", cel.TimestampType),
		cel.CrossTypeNumericComparisons(true),
		cel.OptionalTypes(),
		cel.DefaultUTCTimeZone(true),
		ext.Strings(),
		ext.Math(),

		cel.Function("views",
			cel.MemberOverload("user_views_string", []*cel.Type{user, cel.StringType}, cel.IntType,
				cel.BinaryBinding(func(u, p ref.Val) ref.Val {
					if pg := userOf(u).Pages[str(p)]; pg != nil {
						return types.Int(pg.Views)
					}
					return types.Int(0)
				}))),
		cel.Function("scroll",
			cel.MemberOverload("user_scroll_string", []*cel.Type{user, cel.StringType}, cel.DoubleType,
				cel.BinaryBinding(func(u, p ref.Val) ref.Val {
					if pg := userOf(u).Pages[str(p)]; pg != nil {
						return types.Double(pg.MaxScroll)
					}
					return types.Double(0)
				}))),
		cel.Function("dwell",
			cel.MemberOverload("user_dwell_string", []*cel.Type{user, cel.StringType}, cel.DoubleType,
				cel.BinaryBinding(func(u, p ref.Val) ref.Val {
					if pg := userOf(u).Pages[str(p)]; pg != nil {
						return types.Double(pg.Dwell)
					}
					return types.Double(0)
				}))),
		cel.Function("sessionScroll",
			cel.MemberOverload("user_session_scroll_string", []*cel.Type{user, cel.StringType}, cel.DoubleType,
				cel.BinaryBinding(func(u, p ref.Val) ref.Val {
					return types.Double(userOf(u).Session.Scroll[str(p)])
				}))),
		cel.Function("sessionVideo",
			cel.MemberOverload("user_session_video_string", []*cel.Type{user, cel.StringType}, cel.DoubleType,
				cel.BinaryBinding(func(u, p ref.Val) ref.Val {
					return types.Double(userOf(u).Session.Video[str(p)])
				}))),
		cel.Function("hovers",
			cel.MemberOverload("user_hovers_string", []*cel.Type{user, cel.StringType}, cel.IntType,
				cel.BinaryBinding(func(u, e ref.Val) ref.Val {
					return types.Int(userOf(u).Hovers[str(e)])
				}))),
		cel.Function("count",
			cel.MemberOverload("user_count_string", []*cel.Type{user, cel.StringType}, cel.IntType,
				cel.BinaryBinding(func(u, k ref.Val) ref.Val {
					return types.Int(userOf(u).Counts[str(k)])
				}))),
		cel.Function("seen",
			cel.MemberOverload("user_seen_string", []*cel.Type{user, cel.StringType}, cel.BoolType,
				cel.BinaryBinding(func(u, k ref.Val) ref.Val {
					_, ok := userOf(u).LastSeen[str(k)]
					return types.Bool(ok)
				}))),
		cel.Function("last",
			cel.MemberOverload("user_last_string", []*cel.Type{user, cel.StringType}, cel.TimestampType,
				cel.BinaryBinding(func(u, k ref.Val) ref.Val {
					if t, ok := userOf(u).LastSeen[str(k)]; ok {
						return types.Timestamp{Time: t}
					}
					return zero
				}))),
		cel.Function("seenSince",
			cel.MemberOverload("user_seen_since_string_timestamp", []*cel.Type{user, cel.StringType, cel.TimestampType}, cel.BoolType,
				cel.FunctionBinding(func(args ...ref.Val) ref.Val {
					t, ok := userOf(args[0]).LastSeen[str(args[1])]
					return types.Bool(ok && !t.Before(args[2].(types.Timestamp).Time))
				}))),
		cel.Function("agg",
			cel.MemberOverload("user_agg_string", []*cel.Type{user, cel.StringType}, cel.DoubleType,
				cel.BinaryBinding(func(u, name ref.Val) ref.Val {
					return types.Double(aggValue(aggs, userOf(u), str(name), "", false))
				})),
			cel.MemberOverload("user_agg_string_string", []*cel.Type{user, cel.StringType, cel.StringType}, cel.DoubleType,
				cel.FunctionBinding(func(args ...ref.Val) ref.Val {
					return types.Double(aggValue(aggs, userOf(args[0]), str(args[1]), str(args[2]), true))
				}))),
		cel.Function("num",
			cel.MemberOverload("event_num_string", []*cel.Type{event, cel.StringType}, cel.DoubleType,
				cel.BinaryBinding(func(e, k ref.Val) ref.Val {
					return types.Double(eventNum(eventOf(e), str(k)))
				}))),
		cel.Function("str",
			cel.MemberOverload("event_str_string", []*cel.Type{event, cel.StringType}, cel.StringType,
				cel.BinaryBinding(func(e, k ref.Val) ref.Val {
					return types.String(eventStr(eventOf(e), str(k)))
				}))),
		cel.Function("num",
			cel.MemberOverload("entry_num_string", []*cel.Type{entry, cel.StringType}, cel.DoubleType,
				cel.BinaryBinding(func(e, k ref.Val) ref.Val {
					return types.Double(propNum(entryOf(e).Properties, str(k)))
				}))),
		cel.Function("str",
			cel.MemberOverload("entry_str_string", []*cel.Type{entry, cel.StringType}, cel.StringType,
				cel.BinaryBinding(func(e, k ref.Val) ref.Val {
					return types.String(propStr(entryOf(e).Properties, str(k)))
				}))),
		cel.Function("trait",
			cel.MemberOverload("user_trait_string", []*cel.Type{user, cel.StringType}, cel.DynType,
				cel.BinaryBinding(func(u, k ref.Val) ref.Val {
					v, ok := userOf(u).Traits[str(k)]
					if !ok {
						return types.NullValue
					}
					return types.DefaultTypeAdapter.NativeToValue(v)
				}))),
	)
}

// eventNum is event.num(k): a numeric property, else 0.
func eventNum(ev *Event, k string) float64 { return propNum(ev.Properties, k) }

// eventStr is event.str(k): a string property, else "".
func eventStr(ev *Event, k string) string { return propStr(ev.Properties, k) }

// propNum is a numeric property (event.num, entry.num), else 0.
func propNum(props map[string]any, k string) float64 {
	switch v := props[k].(type) {
	case float64:
		return v
	case int64:
		return float64(v)
	}
	return 0
}

// propStr is a string property (event.str, entry.str), else "".
func propStr(props map[string]any, k string) string {
	s, _ := props[k].(string)
	return s
}

// aggValue computes a declared aggregate over the entries the engine keeps
// (it drops those older than the window before every evaluation).
func aggValue(aggs map[string]*Aggregate, u *state.User, name, key string, byKey bool) float64 {
	spec := aggs[name]
	a := u.Aggs[name]
	if spec == nil || a == nil {
		return 0
	}
	var out float64
	n := 0
	for _, e := range a.Entries {
		if byKey && e.K != key {
			continue
		}
		n++
		switch spec.Kind {
		case AggSum:
			out += e.V
		case AggMax:
			if n == 1 || e.V > out {
				out = e.V
			}
		}
	}
	if spec.Kind == AggCount {
		return float64(n)
	}
	return out
}
