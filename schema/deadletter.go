package schema

import (
	"strconv"
)

// Header keys of a dead-letter record. Its value is the original record's
// bytes, untouched, and its key the original key; these headers say where
// it came from and why it was refused.
const (
	HeaderDLQReason    = "dlq.reason"
	HeaderDLQMessage   = "dlq.message"
	HeaderDLQTopic     = "dlq.topic"
	HeaderDLQPartition = "dlq.partition"
	HeaderDLQOffset    = "dlq.offset"
)

// Dead-letter reasons beyond DecodeEvent's.
const (
	// ReasonBadCommand: a send-command the sink cannot decode.
	ReasonBadCommand Reason = "bad_command"
	// ReasonUnknownTemplate: a command names a template the sink lacks.
	ReasonUnknownTemplate Reason = "unknown_template"
	// ReasonRejected: the mail provider refused the message (4xx).
	ReasonRejected Reason = "rejected"
	// ReasonRetriesExhausted: the retry budget ran out.
	ReasonRetriesExhausted Reason = "retries_exhausted"
	// ReasonOutcomeUnknown: the request carrying the message reached the
	// provider, or may have, but no answer came back (the connection broke,
	// the sink stopped mid-request). The message may have been delivered;
	// the sink does not send it again.
	ReasonOutcomeUnknown Reason = "outcome_unknown"
	// ReasonExpired: the sink read the command after its expires_at (a
	// backlog: a processor or sink back from an outage, a consumer group
	// reset), when the email could no longer go out in its window. It is
	// not sent.
	ReasonExpired Reason = "expired"
)

// DeadLetter is a refused record: the original bytes, where they came from,
// a machine-readable reason and a sentence for people.
type DeadLetter struct {
	Key       []byte
	Value     []byte
	Topic     string
	Partition int32
	Offset    int64
	Reason    Reason
	Message   string
}

// Header is one Kafka record header. It mirrors kgo.RecordHeader so that
// this package needs no Kafka client.
type Header struct {
	Key   string
	Value []byte
}

// Headers returns the dead-letter headers of d.
func (d *DeadLetter) Headers() []Header {
	return []Header{
		{HeaderDLQReason, []byte(d.Reason)},
		{HeaderDLQMessage, []byte(d.Message)},
		{HeaderDLQTopic, []byte(d.Topic)},
		{HeaderDLQPartition, strconv.AppendInt(nil, int64(d.Partition), 10)},
		{HeaderDLQOffset, strconv.AppendInt(nil, d.Offset, 10)},
	}
}

// ParseDeadLetter rebuilds a DeadLetter from a record's key, value and
// headers.
func ParseDeadLetter(key, value []byte, headers []Header) DeadLetter {
	d := DeadLetter{Key: key, Value: value}
	for _, h := range headers {
		switch h.Key {
		case HeaderDLQReason:
			d.Reason = Reason(h.Value)
		case HeaderDLQMessage:
			d.Message = string(h.Value)
		case HeaderDLQTopic:
			d.Topic = string(h.Value)
		case HeaderDLQPartition:
			p, _ := strconv.ParseInt(string(h.Value), 10, 32)
			d.Partition = int32(p)
		case HeaderDLQOffset:
			d.Offset, _ = strconv.ParseInt(string(h.Value), 10, 64)
		}
	}
	return d
}
