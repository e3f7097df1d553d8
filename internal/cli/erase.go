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
	cmd.Flag("user", "The user key: userId, or anonymousId for anonymous users.").Required().StringVar(&user)
	cmd.Flag("topic.events", "The events topic.").Default(schema.TopicEvents).StringVar(&topic)
	cmd.Action(e.selects(func(ctx context.Context) error {
		opts, err := k.opts()
		if err != nil {
			return e.usageError("erase", "%v", err)
		}
		rec, err := eraseRecord(topic, user, time.Now())
		if err != nil {
			return err
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return err
		}
		defer cl.Close()
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			return fmt.Errorf("publish erasure request: %w", err)
		}
		fmt.Fprintf(e.stdout, "erasure of user %s requested (partition %d, offset %d); the processor deletes their state and pending timers and drops their later events\n",
			schema.MaskUser(user), rec.Partition, rec.Offset)
		return nil
	}))
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
