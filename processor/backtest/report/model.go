package report

import "strings"

// Report is the content of report.json: aggregates only, never a user id,
// an email address or any other value taken from an event.
type Report struct {
	// Version is the layout version of report.json.
	Version    int         `json:"version"`
	Input      Input       `json:"input"`
	Range      Range       `json:"range"`
	Conversion Conversion  `json:"conversion"`
	Run        Run         `json:"run"`
	Compare    *Comparison `json:"compare,omitempty"`
}

// Input describes what was read.
type Input struct {
	Source string `json:"source"` // "file" or "topic"
	Name   string `json:"name"`   // the file path or the topic name
	// Records counts the records read: non-blank lines of a file, or
	// records of a topic range (control records excluded).
	Records int64 `json:"records"`
	// Events counts the accepted events inside the range: what the rules
	// saw.
	Events int64 `json:"events"`
	// OutOfRange counts accepted events whose event time is outside
	// [from, to].
	OutOfRange int64 `json:"out_of_range"`
	// Refused counts records schema.DecodeEvent refused, by reason in
	// RefusedByReason; Refusals lists the first MaxRefusals of them.
	Refused         int64            `json:"refused"`
	RefusedByReason map[string]int64 `json:"refused_by_reason"`
	Refusals        []Refusal        `json:"refusals"`
}

// MaxRefusals bounds Input.Refusals.
const MaxRefusals = 1000

// Refusal is one refused record: where it was and why, never its content.
type Refusal struct {
	Line      int64  `json:"line,omitempty"`      // file input: 1-based line number
	Partition *int32 `json:"partition,omitempty"` // topic input
	Offset    *int64 `json:"offset,omitempty"`    // topic input
	Reason    string `json:"reason"`
	Field     string `json:"field,omitempty"`
	Message   string `json:"message"`
}

// Range is the time range replayed. Times are RFC 3339 in UTC; an empty
// From or To means unbounded.
type Range struct {
	From       string `json:"from,omitempty"`
	To         string `json:"to,omitempty"`
	FirstEvent string `json:"first_event,omitempty"`
	LastEvent  string `json:"last_event,omitempty"`
	// End is where the replay stopped: timers due at or before it fired.
	// It is To when given, else the last event's time.
	End string `json:"end,omitempty"`
}

// Conversion says how conversions are counted.
type Conversion struct {
	Event string `json:"event"`
	// Window is the longest time from a send (or, for the holdout group,
	// from the moment the first email would have been sent) to a
	// conversion that still counts.
	Window        string  `json:"window"`
	WindowSeconds float64 `json:"window_seconds"`
	// Interval names the confidence interval of the difference in rates.
	Interval string `json:"interval"`
	// Events counts the conversion events in the range.
	Events int64 `json:"events"`
}

// Run is what one rule pack did over the input.
type Run struct {
	Rules      string     `json:"rules"` // the rule directory
	Totals     Totals     `json:"totals"`
	Processing Processing `json:"processing"`
	Triggers   []Trigger  `json:"triggers"` // by name
	// SendsPerDay counts sends per UTC day of send_at, every day from the
	// first send to the last.
	SendsPerDay []Day `json:"sends_per_day"`
	// TimeToConversion is a histogram of the time from send to conversion
	// of converted runs, over every trigger.
	TimeToConversion []Bucket `json:"time_to_conversion"`
}

// Totals add up every trigger.
type Totals struct {
	Sends int64 `json:"sends"`
	// Users counts distinct users sent at least one email.
	Users int64 `json:"users"`
	// Suppressed counts suppression records by reason; quiet_hours
	// counts deferrals, which are not drops.
	Suppressed      map[string]int64 `json:"suppressed"`
	SuppressedTotal int64            `json:"suppressed_total"` // quiet_hours excluded
	Deferred        int64            `json:"deferred"`         // quiet_hours
	Converted       int64            `json:"converted"`        // converted sent runs
}

// Processing counts what the engine did.
type Processing struct {
	// Late counts events applied after the watermark had passed them.
	Late int64 `json:"late"`
	// Duplicates counts events whose messageId the user had already sent.
	Duplicates int64 `json:"duplicates"`
	// Erased counts delete requests applied; ErasedDropped events that
	// arrived for an erased user.
	Erased        int64 `json:"erased"`
	ErasedDropped int64 `json:"erased_dropped"`
	Timers        int64 `json:"timers"`    // timers fired
	Evaluated     int64 `json:"evaluated"` // rule conditions evaluated
	// RuleErrors counts failed rule evaluations (treated as false);
	// RuleErrorMessages lists their distinct messages (positions only).
	RuleErrors        int64    `json:"rule_errors"`
	RuleErrorMessages []string `json:"rule_error_messages,omitempty"`
}

// Trigger is one trigger's outcome.
type Trigger struct {
	Name     string `json:"name"`
	Intent   string `json:"intent"`
	Priority int    `json:"priority"`
	Steps    int    `json:"steps"`
	// HoldoutShare is the trigger's configured holdout share.
	HoldoutShare float64 `json:"holdout_share"`
	// Timing is when the trigger's runs send; a variant may change it.
	Timing Timing `json:"timing"`
	Counts
	// Funnel counts distinct users at each stage.
	Funnel Funnel `json:"funnel"`
	// Variants break the counts down by A/B variant; each variant is
	// compared with the trigger's whole holdout group.
	Variants []Variant `json:"variants,omitempty"`
}

// Variant is one A/B arm of a trigger.
type Variant struct {
	Name string `json:"name"`
	// Timing is when the arm's runs send: the trigger's, or what the arm
	// sets (its wait, its steps' delays, its expire_after).
	Timing Timing `json:"timing"`
	Counts
}

// Timing is when a trigger's runs send: the wait before the first step,
// each step's delay after the one before, and how long after its send
// time an email stays worth sending. Durations as rules write them.
type Timing struct {
	Wait        string   `json:"wait"`
	Delays      []string `json:"delays"`
	ExpireAfter string   `json:"expire_after"`
}

// TimingNote says how the arm's timing differs from the trigger's, as
// " (wait 4h, delays 0s 2d)", or "" when it does not: the label the
// summary and the page give the arm.
func (v Variant) TimingNote(of Timing) string {
	var parts []string
	if v.Timing.Wait != of.Wait {
		parts = append(parts, "wait "+v.Timing.Wait)
	}
	if strings.Join(v.Timing.Delays, " ") != strings.Join(of.Delays, " ") {
		parts = append(parts, "delays "+strings.Join(v.Timing.Delays, " "))
	}
	if v.Timing.ExpireAfter != of.ExpireAfter {
		parts = append(parts, "expire_after "+v.Timing.ExpireAfter)
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// Counts are the figures reported for a trigger and for each variant.
type Counts struct {
	Sends       int64   `json:"sends"`
	SendsByStep []int64 `json:"sends_by_step"`
	// Users counts distinct users sent at least one email.
	Users int64 `json:"users"`
	// Suppressed counts suppression records by reason (quiet_hours:
	// deferrals).
	Suppressed      map[string]int64 `json:"suppressed"`
	SuppressedTotal int64            `json:"suppressed_total"` // quiet_hours excluded
	Deferred        int64            `json:"deferred"`
	// Sent is the treated group: runs that sent at least one email. Holdout
	// is the control group: runs held out at their first email.
	Sent    Group `json:"sent"`
	Holdout Group `json:"holdout"`
	// Effect compares Sent with Holdout; nil when either group is empty.
	Effect *Effect `json:"effect,omitempty"`
}

// Group is a set of trigger runs and how many of them converted.
type Group struct {
	Runs      int64 `json:"runs"`
	Users     int64 `json:"users"`
	Converted int64 `json:"converted"`
	// Rate is Converted/Runs; nil without runs.
	Rate *float64 `json:"rate"`
	// TimeToConversion summarises the converted runs; nil without any.
	TimeToConversion *Durations `json:"time_to_conversion,omitempty"`
	// Truncated counts runs whose conversion window reaches past the end
	// of the range: a conversion there could not be seen.
	Truncated int64 `json:"truncated"`
}

// Durations summarise times to conversion, in seconds.
type Durations struct {
	Median float64 `json:"median"`
	P25    float64 `json:"p25"`
	P75    float64 `json:"p75"`
	Mean   float64 `json:"mean"`
}

// Effect is the difference in conversion rate, sent minus holdout, with its
// 95% confidence interval.
type Effect struct {
	Diff float64 `json:"diff"`
	Low  float64 `json:"low"`
	High float64 `json:"high"`
}

// Funnel counts distinct users: those the trigger fired for (a send or a
// suppression other than exited and cooldown), those emailed, and those
// with a converted sent run.
type Funnel struct {
	Fired     int64 `json:"fired"`
	Emailed   int64 `json:"emailed"`
	Converted int64 `json:"converted"`
}

// Day is one day of sends.
type Day struct {
	Date  string           `json:"date"` // YYYY-MM-DD, UTC
	Sends map[string]int64 `json:"sends"`
	Total int64            `json:"total"`
}

// Bucket is one bar of a histogram.
type Bucket struct {
	Label string `json:"label"`
	// UpTo is the bucket's upper bound in seconds (inclusive); 0 for the
	// last, open bucket.
	UpTo  float64 `json:"up_to"`
	Count int64   `json:"count"`
}

// Comparison sets a second rule pack (B) against the first (A, Report.Run)
// over the same input.
type Comparison struct {
	Run      Run           `json:"run"`
	Totals   TotalsDiff    `json:"totals"`
	Triggers []TriggerDiff `json:"triggers"`
}

// TotalsDiff compares the totals of A and B.
type TotalsDiff struct {
	Sends      Delta            `json:"sends"`
	Users      Delta            `json:"users"`
	Suppressed map[string]Delta `json:"suppressed"`
	Converted  Delta            `json:"converted"`
	Commands   Overlap          `json:"commands"`
}

// TriggerDiff compares one trigger across the two packs.
type TriggerDiff struct {
	Name       string           `json:"name"`
	InA        bool             `json:"in_a"`
	InB        bool             `json:"in_b"`
	Sends      Delta            `json:"sends"`
	Users      Delta            `json:"users"`
	Suppressed map[string]Delta `json:"suppressed"`
	Converted  Delta            `json:"converted"`
	Rate       RateDelta        `json:"rate"`
	Commands   Overlap          `json:"commands"`
}

// Delta is a count under A and under B.
type Delta struct {
	A     int64 `json:"a"`
	B     int64 `json:"b"`
	Delta int64 `json:"delta"` // B − A
}

// RateDelta is a conversion rate under A and under B.
type RateDelta struct {
	A     *float64 `json:"a"`
	B     *float64 `json:"b"`
	Delta *float64 `json:"delta"` // B − A
}

// Overlap compares the send-commands of A and B by id (user, trigger,
// step and cause): the same command, or one only one pack sends.
type Overlap struct {
	Same  int64 `json:"same"`
	OnlyA int64 `json:"only_a"`
	OnlyB int64 `json:"only_b"`
}
