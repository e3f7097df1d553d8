// Package broker starts the embedded Kafka-protocol broker (franz-go's kfake)
// with microtrigger's topics, for `microtrigger run`, `microtrigger broker`
// and tests. It is a development broker: in memory unless given a directory,
// one process, loopback only. Production runs against a real Kafka cluster,
// and nothing else in microtrigger knows which one it talks to.
package broker

import (
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/microtrigger/microtrigger/schema"
)

// Options configures the embedded cluster.
type Options struct {
	// Port to listen on (127.0.0.1 only); 0 picks a free one.
	Port int
	// Partitions of events, send-commands, the changelogs and sink-outcomes.
	// Default 12.
	Partitions int32
	// DataDir persists records and group offsets across restarts; empty
	// keeps everything in memory.
	DataDir string
	// Topics overrides the topic names; zero fields keep the defaults.
	Topics Topics
}

// Topics names the topics to create.
type Topics struct {
	Events, Commands, EventsDLQ, CommandsDLQ, Changelog, SinkChangelog, SinkOutcomes string
}

// DefaultTopics returns the contract's topic names.
func DefaultTopics() Topics {
	return Topics{
		Events:        schema.TopicEvents,
		Commands:      schema.TopicCommands,
		EventsDLQ:     schema.TopicEventsDLQ,
		CommandsDLQ:   schema.TopicCommandsDLQ,
		Changelog:     schema.TopicChangelog,
		SinkChangelog: schema.TopicSinkChangelog,
		SinkOutcomes:  schema.TopicSinkOutcomes,
	}
}

func (t Topics) withDefaults() Topics {
	d := DefaultTopics()
	for _, f := range []struct{ v, def *string }{
		{&t.Events, &d.Events}, {&t.Commands, &d.Commands}, {&t.EventsDLQ, &d.EventsDLQ},
		{&t.CommandsDLQ, &d.CommandsDLQ}, {&t.Changelog, &d.Changelog}, {&t.SinkChangelog, &d.SinkChangelog},
		{&t.SinkOutcomes, &d.SinkOutcomes},
	} {
		if *f.v == "" {
			*f.v = *f.def
		}
	}
	return t
}

// Start starts the cluster and creates the topics. Records never expire:
// sample and test events carry fixed, old timestamps, which time-based
// retention would delete when the cleaner runs. Changelogs are compacted.
func Start(o Options) (*kfake.Cluster, error) {
	if o.Partitions <= 0 {
		o.Partitions = 12
	}
	t := o.Topics.withDefaults()
	opts := []kfake.Opt{
		kfake.Ports(o.Port),
		kfake.BrokerConfigs(map[string]string{"log.retention.ms": "-1"}),
	}
	if o.DataDir != "" {
		opts = append(opts, kfake.DataDir(o.DataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded broker on port %d: %w", o.Port, err)
	}
	keep := map[string]string{"retention.ms": "-1"}
	compact := map[string]string{"cleanup.policy": "compact", "retention.ms": "-1"}
	for _, tp := range []struct {
		name  string
		parts int32
		cfg   map[string]string
	}{
		{t.Events, o.Partitions, keep},
		{t.Commands, o.Partitions, keep},
		{t.EventsDLQ, 3, keep},
		{t.CommandsDLQ, 3, keep},
		{t.Changelog, o.Partitions, compact},
		{t.SinkChangelog, o.Partitions, compact},
		{t.SinkOutcomes, o.Partitions, keep},
	} {
		if c.TopicInfo(tp.name) != nil {
			continue // reloaded from DataDir
		}
		if err := c.CreateTopic(tp.name, tp.parts, tp.cfg); err != nil {
			c.Close()
			return nil, fmt.Errorf("create topic %s: %w", tp.name, err)
		}
	}
	return c, nil
}

// ClientOpts returns the client options that reach the cluster. Fetches
// wait at most 100ms: the embedded broker does not always end a waiting
// fetch when records arrive (a real broker does), and a clickstream played
// on a simulated clock waits on every fetch.
func ClientOpts(c *kfake.Cluster) []kgo.Opt {
	return []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.FetchMaxWait(100 * time.Millisecond)}
}

// Addr returns the cluster's first listen address as host:port.
func Addr(c *kfake.Cluster) string { return c.ListenAddrs()[0] }

// PortOf returns the port of a host:port address, or 0.
func PortOf(addr string) int {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			p, _ := strconv.Atoi(addr[i+1:])
			return p
		}
	}
	return 0
}
