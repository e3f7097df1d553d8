package cli

import (
	"context"
	"fmt"

	"github.com/alecthomas/kingpin/v2"

	"github.com/microtrigger/microtrigger/internal/broker"
)

func registerBroker(app *kingpin.Application, e *env) {
	var o broker.Options
	cmd := app.Command("broker", "Run the embedded Kafka-protocol broker alone (franz-go kfake), for kcat and local clients.")
	cmd.Flag("port", "Port to listen on, on 127.0.0.1.").Default("9092").IntVar(&o.Port)
	cmd.Flag("partitions", "Partitions of events, send-commands and the changelogs.").Default("12").Int32Var(&o.Partitions)
	cmd.Flag("data-dir", "Keep records and group offsets in this directory across restarts (default: in memory).").StringVar(&o.DataDir)
	cmd.Action(e.selects(func(ctx context.Context) error {
		c, err := broker.Start(o)
		if err != nil {
			return err
		}
		defer c.Close()
		addr := broker.Addr(c)
		fmt.Fprintf(e.stdout, "embedded broker listening on %s\n", addr)
		fmt.Fprintf(e.stdout, "topics: events, send-commands, events-dlq, commands-dlq, processor-changelog, sink-changelog, sink-outcomes\n")
		fmt.Fprintf(e.stdout, "try:    kcat -b %s -L\n", addr)
		fmt.Fprintf(e.stdout, "        kcat -b %s -P -t events -K '|' -X partitioner=murmur2_random\n", addr)
		<-ctx.Done()
		return nil
	}))
}
