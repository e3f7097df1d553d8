package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/microtrigger/microtrigger/schema"
)

func registerErase(app *kingpin.Application, e *env) {
	cmd := app.Command("erase", "Right to erasure: ask the processor to delete everything it holds about a user.")
	var k kafkaFlags
	addKafkaFlags(cmd, &k, "")
	var user, topic string
	var timeout time.Duration
	cmd.Flag("user", "The user key: userId, or anonymousId for anonymous users.").Required().StringVar(&user)
	cmd.Flag("topic.events", "The events topic.").Default(schema.TopicEvents).StringVar(&topic)
	cmd.Flag("timeout", "Longest wait for the brokers to answer and acknowledge the request; past it erase stops and says so (exit 1).").
		Default("30s").DurationVar(&timeout)
	cmd.Action(e.selects(func(ctx context.Context) error {
		opts, err := k.opts()
		if err != nil {
			return e.usageError("erase", "%v", err)
		}
		if timeout <= 0 {
			return e.usageError("erase", "--timeout %s: must be positive", timeout)
		}
		rec, err := eraseRecord(topic, user, time.Now())
		if err != nil {
			return e.usageError("erase", "--user: %v", err)
		}
		return e.erase(ctx, opts, k.brokers, timeout, rec)
	}))
}

// erase publishes rec and waits for the brokers to acknowledge it, at most
// timeout: an unreachable cluster is said to be one, not waited on.
func (e *env) erase(ctx context.Context, opts []kgo.Opt, brokers string, timeout time.Duration, rec *kgo.Record) error {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := within(tctx, cl.Ping); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("nothing was published: %w", err)
		}
		if tctx.Err() != nil {
			err = fmt.Errorf("no answer within %s (--timeout)", timeout)
		}
		return fmt.Errorf("brokers unreachable (--brokers %s): %w; nothing was published: check the addresses and that Kafka is up, then run erase again", brokers, err)
	}
	if err := within(tctx, func(ctx context.Context) error { return cl.ProduceSync(ctx, rec).FirstErr() }); err != nil {
		const again = "the erasure request may or may not have been published: run erase again (a repeated request is harmless)"
		switch {
		case ctx.Err() != nil:
			return fmt.Errorf("%s: %w", again, err)
		case tctx.Err() != nil:
			return fmt.Errorf("the brokers did not acknowledge the request within %s (--timeout); %s", timeout, again)
		}
		return fmt.Errorf("publish the erasure request to %s: %w; %s", rec.Topic, err, again)
	}
	fmt.Fprintf(e.stdout, "erasure of user %s requested (partition %d, offset %d); the processor deletes their state and pending timers and drops their later events\n",
		schema.MaskUser(string(rec.Key)), rec.Partition, rec.Offset)
	return nil
}

// eraseRecord builds the delete call for a user, keyed by the user so that
// it reaches the partition that holds their state.
func eraseRecord(topic, user string, now time.Time) (*kgo.Record, error) {
	var nonce [8]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, err
	}
	v, err := json.Marshal(map[string]any{
		"type":      schema.TypeDelete,
		"userId":    user,
		"messageId": "erase-" + hex.EncodeToString(nonce[:]),
		"timestamp": schema.FormatTime(now),
	})
	if err != nil {
		return nil, err
	}
	if _, err := schema.DecodeEvent(v); err != nil {
		return nil, fmt.Errorf("user key: %w", err)
	}
	return &kgo.Record{Topic: topic, Key: []byte(user), Value: v, Timestamp: now}, nil
}

// within returns f's error, or ctx's once it ends, whichever comes first:
// the client's connection setup and reads keep their own timeouts (10s and
// more) whatever the context, and an operator's --timeout or SIGTERM
// should not wait for them. f goes on until they end; closing the client
// ends it.
func within(ctx context.Context, f func(context.Context) error) error {
	errc := make(chan error, 1)
	go func() { errc <- f(ctx) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
