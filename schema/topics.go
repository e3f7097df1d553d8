package schema

// Default topic names. Every one can be renamed by flag or environment; these
// are what `microtrigger run`, the embedded broker and the docs use.
const (
	TopicEvents        = "events"        // input; key = user key
	TopicCommands      = "send-commands" // processor output; key = user key
	TopicEventsDLQ     = "events-dlq"    // refused events, original bytes
	TopicCommandsDLQ   = "commands-dlq"  // commands the sink could not deliver
	TopicChangelog     = "processor-changelog"
	TopicSinkChangelog = "sink-changelog"
	// SendGrid's events about our messages, as the webhook received them;
	// key = user key, co-partitioned with send-commands, so the sink that
	// owns a command's partition reads the events that settle it.
	TopicSinkOutcomes = "sink-outcomes"
)
