package processor

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/microtrigger/microtrigger/internal/tracing"
	"github.com/microtrigger/microtrigger/processor/task"
	"github.com/microtrigger/microtrigger/schema"
)

// maxBatchLinks bounds the links of a batch span to the traced events it
// read.
const maxBatchLinks = 128

func newTracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return nil
	}
	return tp.Tracer("github.com/microtrigger/microtrigger/processor")
}

// startBatchSpan starts the span of one batch transaction, from the
// batch's start, linked to the traced events it read. With tracing off it
// returns ctx and a nil span.
func (p *Processor) startBatchSpan(ctx context.Context, start time.Time, ids []int32, outs []task.Output) (context.Context, trace.Span) {
	if p.tracer == nil {
		return ctx, nil
	}
	var links []trace.Link
	commands := 0
	for i, id := range ids {
		commands += len(outs[i].Commands)
		for _, sc := range p.parts[id].traces {
			if len(links) < maxBatchLinks {
				links = append(links, trace.Link{SpanContext: sc})
			}
		}
	}
	return p.tracer.Start(ctx, "microtrigger.processor.batch",
		trace.WithTimestamp(start), trace.WithLinks(links...), trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.Int("microtrigger.partitions", len(ids)), attribute.Int("microtrigger.commands", commands),
			attribute.String("messaging.system", "kafka"), attribute.String("messaging.destination.name", p.cfg.Topics.Events)))
}

func (p *Processor) endBatchSpan(span trace.Span, outcome string) {
	if span == nil {
		return
	}
	span.SetAttributes(attribute.String("microtrigger.outcome", outcome))
	if outcome != "committed" {
		span.SetStatus(codes.Error, "transaction "+outcome)
	}
	span.End()
}

// traceCommand gives a send-command a span, child of its event's span
// when that event's record carried one in this batch (else of the batch's),
// and writes the span's traceparent into the command's record.
func (p *Processor) traceCommand(batchCtx context.Context, part *partition, cmd *schema.SendCommand, rec *kgo.Record) {
	if p.tracer == nil {
		return
	}
	parent := batchCtx
	if sc, ok := part.traces[cmd.Cause]; ok {
		parent = trace.ContextWithRemoteSpanContext(batchCtx, sc)
	}
	ctx, span := p.tracer.Start(parent, "microtrigger.processor.command",
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithLinks(trace.LinkFromContext(batchCtx)),
		trace.WithAttributes(attribute.String("microtrigger.trigger", cmd.Trigger), attribute.Int("microtrigger.step", cmd.Step),
			attribute.String("messaging.system", "kafka"), attribute.String("messaging.destination.name", p.cfg.Topics.Commands)))
	tracing.Inject(ctx, rec)
	span.End()
}
